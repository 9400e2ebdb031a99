/**
 * The IAM simulation itself (test/iam), held to what it must prove: recorded calls are
 * evaluated against the PACKAGED roles with AWS's evaluation logic
 * (@cloud-copilot/iam-simulate), so removing a needed permission or adding a too-broad
 * one fails it, and a condition key an action does not support is flagged. `npm test`
 * packages the stack before vitest; the simulation over the integration tests' own
 * recording runs after vitest (scripts/test.sh).
 */
import { describe, expect, it } from 'vitest';
import type { CallerContext, RecordedCall } from '../../lib/aws/callRecorder.ts';
import {
  type CfnTemplate,
  type PolicyDocument,
  readPackagedTemplate,
  readTargetRoleTemplate,
  type Statement,
} from '../iam/policies.ts';
import { simulate, unsupportedConditionKeys } from '../iam/simulation.ts';

const REGION = 'eu-west-1';
const DEPLOYMENT = 'itest';
const TARGET_ROLE = 'arn:aws:iam::210987654321:role/snapkeeper-target';

const caller = (functionName: string, extra: Partial<CallerContext> = {}): CallerContext => ({
  functionName,
  region: REGION,
  deployment: DEPLOYMENT,
  tagPrefix: 'snapkeeper:',
  localTagAfterCreate: false,
  ...extra,
});
const managed = { 'snapkeeper:managed': 'true', 'snapkeeper:deployment': DEPLOYMENT };
const tags = (record: Record<string, string>) =>
  Object.entries(record).map(([Key, Value]) => ({ Key, Value }));
const call = (
  fn: string,
  service: string,
  action: string,
  input: unknown,
  extra: Partial<RecordedCall> = {},
): RecordedCall => ({ caller: caller(fn), service, action, region: REGION, input, ...extra });

/** A recording with one of each kind of call the functions make. */
function representativeRecording(): RecordedCall[] {
  return [
    call('backup', 'ec2', 'DescribeInstances', {}),
    call(
      'backup',
      'ec2',
      'CreateSnapshots',
      {
        InstanceSpecification: { InstanceId: 'i-0123' },
        TagSpecifications: [{ ResourceType: 'snapshot', Tags: tags(managed) }],
      },
      { created: ['snap-0001'] },
    ),
    call('backup', 'dynamodb', 'PutItem', { TableName: 'snapkeeper-test-runs' }),
    call('backup', 'dynamodb', 'Query', { TableName: 'snapkeeper-test-runs', IndexName: 'GSI2' }),
    call('backup', 'eventbridge', 'PutEvents', { Entries: [{}] }),
    call(
      'retention',
      'ec2',
      'DeleteSnapshot',
      { SnapshotId: 'snap-0001' },
      { resourceTags: { 'snap-0001': managed } },
    ),
    // The local fallback: CreateImage untagged, then CreateTags on the image it made.
    {
      ...call(
        'amis',
        'ec2',
        'CreateImage',
        { InstanceId: 'i-0123', Name: 'x' },
        { created: ['ami-0001'] },
      ),
      caller: caller('amis', { localTagAfterCreate: true }),
    },
    {
      ...call('amis', 'ec2', 'CreateTags', { Resources: ['ami-0001'], Tags: tags(managed) }),
      caller: caller('amis', { localTagAfterCreate: true }),
    },
    call(
      'amis',
      'ec2',
      'DeregisterImage',
      { ImageId: 'ami-0001' },
      { resourceTags: { 'ami-0001': managed } },
    ),
    call(
      'ops',
      'ec2',
      'RegisterImage',
      {
        Name: 'restore',
        BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-0001' } }],
        TagSpecifications: [{ ResourceType: 'image', Tags: tags(managed) }],
      },
      { created: ['ami-0002'], resourceTags: { 'snap-0001': managed } },
    ),
    call(
      'ops',
      'ec2',
      'CreateVolume',
      {
        SnapshotId: 'snap-0001',
        KmsKeyId: 'alias/restores',
        Encrypted: true,
        TagSpecifications: [{ ResourceType: 'volume', Tags: tags(managed) }],
      },
      { created: ['vol-0001'], resourceTags: { 'snap-0001': managed } },
    ),
    call(
      'copy',
      'ec2',
      'CopySnapshot',
      {
        SourceSnapshotId: 'snap-0001',
        KmsKeyId: 'alias/dr',
        Encrypted: true,
        TagSpecifications: [{ ResourceType: 'snapshot', Tags: tags(managed) }],
      },
      { created: ['snap-0002'], resourceTags: { 'snap-0001': managed } },
    ),
    call(
      'copy',
      'ec2',
      'ModifyImageAttribute',
      { ImageId: 'ami-0002', LaunchPermission: { Add: [{ UserId: '111122223333' }] } },
      { resourceTags: { 'ami-0002': managed } },
    ),
    call(
      'copy',
      'ec2',
      'ModifySnapshotAttribute',
      {
        SnapshotId: 'snap-0002',
        Attribute: 'createVolumePermission',
        OperationType: 'add',
        UserIds: ['111122223333'],
      },
      { resourceTags: { 'snap-0002': managed } },
    ),
    call('fanout', 'dynamodb', 'BatchWriteItem', { RequestItems: { 'snapkeeper-test-runs': [] } }),
    call('fanout', 'sqs', 'SendMessageBatch', {
      QueueUrl: 'http://127.0.0.1/123456789012/q',
    }),
    call(
      'worker',
      'ec2',
      'DeleteSnapshot',
      { SnapshotId: 'snap-0003' },
      { assumedRole: TARGET_ROLE, resourceTags: { 'snap-0003': managed } },
    ),
  ];
}

function clone(template: CfnTemplate): CfnTemplate {
  return JSON.parse(JSON.stringify(template)) as CfnTemplate;
}

function statementsOf(template: CfnTemplate, role: string): Statement[] {
  const policies = template.Resources[role]?.Properties?.Policies as
    | { PolicyDocument: { Statement: Statement[] } }[]
    | undefined;
  const policy = policies?.[0];
  if (!policy) throw new Error(`the template has no policy on ${role}`);
  return policy.PolicyDocument.Statement;
}

describe('IAM simulation (test/iam) over the packaged roles', () => {
  it('allows every call of a representative recording and denies the whole negative set', async () => {
    // Act
    const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), [
      representativeRecording(),
    ]);

    // Assess
    expect(report.verdicts.filter((v) => v.unexpected)).toEqual([]);
    expect(report.unsupportedKeys).toEqual([]);
    expect(report.summary).toMatch(
      /^\d+ calls simulated, \d+ allowed, \d+ denied as expected, 0 unexpected$/,
    );
    expect(report.verdicts.filter((v) => v.expected === 'denied').length).toBeGreaterThan(50);
    expect(report.verdicts.map((v) => v.request.action)).toEqual(
      expect.arrayContaining(['ec2:CreateTags', 'kms:CreateGrant', 'sts:AssumeRole']),
    );
  });

  it('fails when a needed permission is removed (retention loses DeleteOnlyOwnManagedSnapshots)', async () => {
    // Prepare
    const template = clone(readPackagedTemplate());
    const statements = statementsOf(template, 'RetentionRole');
    statements.splice(
      statements.findIndex((s) => s.Sid === 'DeleteOnlyOwnManagedSnapshots'),
      1,
    );

    // Act
    const report = await simulate(template, readTargetRoleTemplate(), [representativeRecording()]);

    // Assess
    expect(report.summary).not.toMatch(/ 0 unexpected$/);
    expect(
      report.verdicts
        .filter((v) => v.unexpected)
        .map((v) => `${v.role} ${v.request.action} ${v.expected}`),
    ).toEqual(['retention ec2:DeleteSnapshot allowed']);
  });

  it('fails when a too-broad permission is added (backup gets ec2:* on every resource)', async () => {
    // Prepare
    const template = clone(readPackagedTemplate());
    statementsOf(template, 'BackupRole').push({
      Sid: 'TooBroad',
      Effect: 'Allow',
      Action: 'ec2:*',
      Resource: '*',
    });

    // Act
    const report = await simulate(template, readTargetRoleTemplate(), [representativeRecording()]);
    const unexpected = report.verdicts.filter((v) => v.unexpected);

    // Assess
    expect(report.summary).not.toMatch(/ 0 unexpected$/);
    expect(unexpected.every((v) => v.role === 'backup' && v.expected === 'denied')).toBe(true);
    expect(unexpected.map((v) => v.why)).toEqual(
      expect.arrayContaining([
        'DeleteSnapshot of an untagged snapshot',
        "DeregisterImage of an another stage's image",
        'CreateTags on an existing snapshot (after creation)',
      ]),
    );
  });

  it('fails when the KMS statements lose their kms:ViaService scope', async () => {
    // Prepare
    const template = clone(readPackagedTemplate());
    for (const statement of statementsOf(template, 'CopyRole'))
      if (statement.Sid === 'UseKeysThroughEc2InStageRegions')
        delete (statement as { Condition?: unknown }).Condition;

    // Act
    const report = await simulate(template, readTargetRoleTemplate(), [representativeRecording()]);

    // Assess
    expect(
      report.verdicts
        .filter((v) => v.unexpected)
        .map((v) => `${v.role} ${v.request.action} ${v.expected}`),
    ).toEqual(['copy kms:Decrypt denied', 'copy kms:Decrypt denied']);
  });

  it('denies a CreateTags after creation that is not the local fallback (tags only at creation)', async () => {
    // Prepare
    const recording = [
      call('amis', 'ec2', 'CreateImage', { InstanceId: 'i-1', Name: 'x' }, { created: ['ami-9'] }),
      call('amis', 'ec2', 'CreateTags', { Resources: ['ami-9'], Tags: tags(managed) }),
    ];

    // Act
    const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), [recording]);

    // Assess
    expect(
      report.verdicts
        .filter((v) => v.unexpected)
        .map((v) => `${v.role} ${v.request.action} ${v.request.resource}`),
    ).toEqual([
      'amis ec2:CreateImage arn:aws:ec2:eu-west-1::image/ami-9',
      'amis ec2:CreateImage arn:aws:ec2:eu-west-1::snapshot/snap-00000000000000000',
      'amis ec2:CreateTags arn:aws:ec2:eu-west-1::image/ami-9',
    ]);
  });
});

describe('Condition keys an action does not support', () => {
  it('flags ec2:Add/group on ModifyImageAttribute and request tags on the snapshots RegisterImage reads (the old policies)', async () => {
    // Prepare
    const old: PolicyDocument = {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'NeverMakeAnythingPublic',
          Effect: 'Deny',
          Action: ['ec2:ModifySnapshotAttribute', 'ec2:ModifyImageAttribute'],
          Resource: '*',
          Condition: { StringEquals: { 'ec2:Add/group': 'all' } },
        },
        {
          Sid: 'RegisterManagedImagesFromSnapshots',
          Effect: 'Allow',
          Action: 'ec2:RegisterImage',
          Resource: ['arn:aws:ec2:*::image/*', 'arn:aws:ec2:*::snapshot/*'],
          Condition: { StringEquals: { 'aws:RequestTag/snapkeeper:managed': 'true' } },
        },
      ],
    };

    // Act
    const findings = await unsupportedConditionKeys('OpsRole', old);

    // Assess
    expect(findings.map((f) => `${f.action} ${f.key} ${f.resourceTypes.join()}`)).toEqual([
      'ec2:ModifyImageAttribute ec2:Add/group image',
      'ec2:RegisterImage aws:RequestTag/snapkeeper:managed snapshot',
    ]);
  });

  it('finds none in any packaged role or in the target-account role', async () => {
    // Act
    const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), []);

    // Assess
    expect(report.unsupportedKeys).toEqual([]);
  });
});
