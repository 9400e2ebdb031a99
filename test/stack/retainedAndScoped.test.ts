/**
 * What outlives the stack and what the keys may be used for: the run-history table is
 * retained and deletion-protected, the alerts key serves only this account's rules and
 * alarms, and EC2 may use KMS keys for ops and copy only through EC2 in the stage's
 * regions. Read from the packaged template (`npm test` packages it before vitest).
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { readPackagedTemplate, type Statement } from '../iam/policies.ts';

const require = createRequire(import.meta.url);
const variables = require('../../scripts/serverlessVariables.cjs') as {
  stageRegions: (resolveVariable: (name: string) => Promise<unknown>) => Promise<string[]>;
};

const KMS_ACTIONS = [
  'kms:CreateGrant',
  'kms:Decrypt',
  'kms:DescribeKey',
  'kms:GenerateDataKeyWithoutPlaintext',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
];

function roleStatements(role: string): Statement[] {
  const policies = readPackagedTemplate().Resources[role]?.Properties?.Policies as
    | { PolicyDocument: { Statement: Statement[] } }[]
    | undefined;
  return (policies ?? []).flatMap((p) => p.PolicyDocument.Statement);
}

const actionsOf = (s: Statement): string[] =>
  s.Action === undefined ? [] : Array.isArray(s.Action) ? [...s.Action] : [s.Action as string];

function resolver(values: Record<string, unknown>) {
  return async (name: string) => {
    if (!(name in values)) throw new Error(`unexpected variable ${name}`);
    return values[name];
  };
}

const STACK = {
  'aws:region': 'eu-west-1',
  'self:custom.fanOut.regions': '',
  'self:custom.schedules': [{ name: 'daily', cron: 'cron(0 3 * * ? *)', retain: 7 }],
  'self:custom.copyKmsKeys': '{}',
  'self:custom.kmsRegions': '',
};

describe('Stack: nothing lost on remove', () => {
  it('retains the run-history table on stack deletion and replacement, with deletion protection on', () => {
    // Act
    const table = readPackagedTemplate().Resources.RunHistoryTable;

    // Assess
    expect(table?.DeletionPolicy).toBe('Retain');
    expect(table?.UpdateReplacePolicy).toBe('Retain');
    expect(table?.Properties?.DeletionProtectionEnabled).toBe(true);
  });

  it("lets services use the alerts key only for this account's rules and alarms (aws:SourceAccount)", () => {
    // Prepare
    const key = readPackagedTemplate().Resources.AlertsKey?.Properties?.KeyPolicy as {
      Statement: (Statement & { Principal: { Service?: unknown } })[];
    };

    // Act
    const services = key.Statement.filter((s) => s.Principal.Service !== undefined);

    // Assess
    expect(services.length).toBeGreaterThan(0);
    for (const statement of services)
      expect(statement.Condition?.StringEquals?.['aws:SourceAccount']).toEqual({
        Ref: 'AWS::AccountId',
      });
  });
});

describe('Stack: KMS for encrypted restores and copies', () => {
  it.each(['OpsRole', 'CopyRole'])(
    'lets %s use keys only through EC2 in the stage region',
    (role) => {
      // Act
      const kms = roleStatements(role).filter((s) =>
        actionsOf(s).some((a) => a.startsWith('kms:')),
      );

      // Assess
      expect(kms.flatMap(actionsOf).sort()).toEqual(expect.arrayContaining(KMS_ACTIONS));
      for (const statement of kms) {
        expect(statement.Effect).toBe('Allow');
        expect(statement.Condition?.StringEquals?.['kms:ViaService']).toEqual([
          'ec2.us-east-1.amazonaws.com',
        ]);
        if (actionsOf(statement).includes('kms:CreateGrant'))
          expect(statement.Condition?.Bool?.['kms:GrantIsForAWSResource']).toBe('true');
      }
    },
  );

  it('gives no other function role any KMS action', () => {
    // Act
    const others = ['BackupRole', 'RetentionRole', 'AmisRole', 'FanoutRole', 'WorkerRole'].filter(
      (role) => roleStatements(role).some((s) => actionsOf(s).some((a) => a.startsWith('kms:'))),
    );

    // Assess
    expect(others).toEqual([]);
  });

  it("counts as the stage's regions its own, the fan-out regions, every copyTo, the copyKmsKeys regions and kmsRegions", async () => {
    // Prepare
    const resolve = resolver({
      ...STACK,
      'self:custom.fanOut.regions': 'us-east-1, eu-west-1',
      'self:custom.schedules': [
        { name: 'daily', cron: 'cron(0 3 * * ? *)', retain: 7, copyTo: ['eu-central-1'] },
      ],
      'self:custom.copyKmsKeys': '{"us-west-2":"alias/dr"}',
      'self:custom.kmsRegions': 'ap-south-1',
    });

    // Act
    const regions = await variables.stageRegions(resolve);

    // Assess
    expect(regions).toEqual(['ap-south-1', 'eu-central-1', 'eu-west-1', 'us-east-1', 'us-west-2']);
  });

  it('refuses a kmsRegions entry that is not a region, naming it', async () => {
    // Prepare
    const resolve = resolver({ ...STACK, 'self:custom.kmsRegions': 'eu-west-1,Ireland' });

    // Act & assess
    await expect(variables.stageRegions(resolve)).rejects.toThrow(/"Ireland" is not a region/);
  });

  it('refuses copyKmsKeys that are not JSON, naming the option', async () => {
    // Prepare
    const resolve = resolver({ ...STACK, 'self:custom.copyKmsKeys': 'us-west-2=alias/dr' });

    // Act & assess
    await expect(variables.stageRegions(resolve)).rejects.toThrow(
      /custom\.copyKmsKeys must be JSON/,
    );
  });
});
