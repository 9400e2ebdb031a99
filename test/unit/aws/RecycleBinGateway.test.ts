import 'aws-sdk-client-mock-vitest/extend';
import {
  GetRuleCommand,
  type GetRuleCommandInput,
  type GetRuleCommandOutput,
  ListRulesCommand,
  RbinClient,
} from '@aws-sdk/client-rbin';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import { RecycleBinGateway } from '../../../lib/aws/RecycleBinGateway.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const rbinMock = mockClient(RbinClient);

function newGateway(): RecycleBinGateway {
  return new RecycleBinGateway(new RbinClient({ region: 'eu-west-1' }));
}

/** The GetRule answer for a rule of the given id. */
function ruleDetail(
  identifier: string,
  overrides: Partial<GetRuleCommandOutput> = {},
): Partial<GetRuleCommandOutput> {
  return {
    Identifier: identifier,
    ResourceType: 'EC2_IMAGE',
    RetentionPeriod: { RetentionPeriodValue: 7, RetentionPeriodUnit: 'DAYS' },
    Status: 'available',
    ...overrides,
  };
}

afterEach(() => {
  rbinMock.reset();
});

describe('Class: RecycleBinGateway', () => {
  describe('Method: imageRules', () => {
    it('lists the rules for EC2 images, 100 a page', async () => {
      // Prepare
      rbinMock.on(ListRulesCommand).resolves({ Rules: [] });
      const gateway = newGateway();

      // Act
      const rules = await gateway.imageRules();

      // Assess
      expect(rules).toEqual([]);
      expect(rbinMock.commandCalls(ListRulesCommand).map((c) => c.args[0].input)).toEqual([
        { ResourceType: 'EC2_IMAGE', MaxResults: 100 },
      ]);
      expect(rbinMock).not.toHaveReceivedCommand(GetRuleCommand);
    });

    it('reads each rule with GetRule for its resource tags and retention period', async () => {
      // Prepare
      rbinMock.on(ListRulesCommand).resolves({
        Rules: [{ Identifier: 'rule-region' }, { Identifier: 'rule-tags' }],
      });
      rbinMock.on(GetRuleCommand).callsFake((input: GetRuleCommandInput) =>
        input.Identifier === 'rule-region'
          ? ruleDetail('rule-region', {
              RetentionPeriod: { RetentionPeriodValue: 14, RetentionPeriodUnit: 'DAYS' },
            })
          : ruleDetail('rule-tags', {
              RetentionPeriod: { RetentionPeriodValue: 30, RetentionPeriodUnit: 'DAYS' },
              ResourceTags: [
                { ResourceTagKey: 'team', ResourceTagValue: 'web' },
                { ResourceTagKey: 'bin' },
              ],
            }),
      );
      const gateway = newGateway();

      // Act
      const rules = await gateway.imageRules();

      // Assess
      expect(rules).toEqual([
        { identifier: 'rule-region', retentionDays: 14, resourceTags: [], excludeTags: [] },
        {
          identifier: 'rule-tags',
          retentionDays: 30,
          resourceTags: [
            { key: 'team', value: 'web' },
            { key: 'bin', value: undefined },
          ],
          excludeTags: [],
        },
      ]);
      expect(rbinMock.commandCalls(GetRuleCommand).map((c) => c.args[0].input)).toEqual([
        { Identifier: 'rule-region' },
        { Identifier: 'rule-tags' },
      ]);
    });

    it('follows NextToken through every page of rules', async () => {
      // Prepare
      rbinMock
        .on(ListRulesCommand)
        .resolvesOnce({ Rules: [{ Identifier: 'rule-1' }], NextToken: 'token-page-2' })
        .resolvesOnce({ Rules: [{ Identifier: 'rule-2' }] });
      rbinMock
        .on(GetRuleCommand)
        .callsFake((input: GetRuleCommandInput) => ruleDetail(input.Identifier ?? ''));
      const gateway = newGateway();

      // Act
      const rules = await gateway.imageRules();

      // Assess
      expect(rules.map((r) => r.identifier)).toEqual(['rule-1', 'rule-2']);
      expect(rbinMock).toHaveReceivedCommandTimes(ListRulesCommand, 2);
      expect(rbinMock).toHaveReceivedNthCommandWith(ListRulesCommand, 2, {
        ResourceType: 'EC2_IMAGE',
        NextToken: 'token-page-2',
      });
    });

    it('skips a rule whose status is not available', async () => {
      // Prepare
      rbinMock.on(ListRulesCommand).resolves({
        Rules: [{ Identifier: 'rule-pending' }, { Identifier: 'rule-ready' }],
      });
      rbinMock
        .on(GetRuleCommand)
        .callsFake((input: GetRuleCommandInput) =>
          input.Identifier === 'rule-pending'
            ? ruleDetail('rule-pending', { Status: 'pending' })
            : ruleDetail('rule-ready'),
        );
      const gateway = newGateway();

      // Act
      const rules = await gateway.imageRules();

      // Assess
      expect(rules.map((r) => r.identifier)).toEqual(['rule-ready']);
    });

    it('skips a rule summary without identifier', async () => {
      // Prepare
      rbinMock.on(ListRulesCommand).resolves({ Rules: [{}, { Identifier: 'rule-1' }] });
      rbinMock.on(GetRuleCommand).resolves(ruleDetail('rule-1'));
      const gateway = newGateway();

      // Act
      const rules = await gateway.imageRules();

      // Assess
      expect(rules.map((r) => r.identifier)).toEqual(['rule-1']);
      expect(rbinMock).toHaveReceivedCommandTimes(GetRuleCommand, 1);
    });

    it('wraps a failure to list rules as an AwsCallError', async () => {
      // Prepare
      rbinMock.on(ListRulesCommand).rejects(sdkError('AccessDeniedException', 'denied', 403));
      const gateway = newGateway();

      // Act
      const failure = await gateway.imageRules().catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({
        action: 'ListRules',
        code: 'AccessDeniedException',
        httpStatus: 403,
      });
    });

    it('wraps a failure to read a rule as an AwsCallError', async () => {
      // Prepare
      rbinMock.on(ListRulesCommand).resolves({ Rules: [{ Identifier: 'rule-1' }] });
      rbinMock.on(GetRuleCommand).rejects(sdkError('ResourceNotFoundException', 'gone', 404));
      const gateway = newGateway();

      // Act
      const failure = await gateway.imageRules().catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({ code: 'ResourceNotFoundException', httpStatus: 404 });
    });
  });
});
