/**
 * The cost ledger's IAM (issue 22 part 1), on the packaged roles: retention alone may
 * read block lists (`ebs:ListSnapshotBlocks`, `ebs:ListChangedBlocks`), of this stage's
 * managed snapshots only (`aws:ResourceTag`, which both actions support on the snapshot
 * resource type: Service Authorization Reference, Amazon Elastic Block Store).
 */
import { describe, expect, it } from 'vitest';
import type { RecordedCall } from '../../lib/aws/callRecorder.ts';
import {
  type CfnTemplate,
  readPackagedTemplate,
  readTargetRoleTemplate,
  type Statement,
} from '../iam/policies.ts';
import { simulate } from '../iam/simulation.ts';

const REGION = 'eu-west-1';
const managed = { 'snapkeeper:managed': 'true', 'snapkeeper:deployment': 'itest' };

function measuring(fn: string): RecordedCall[] {
  const caller = {
    functionName: fn,
    region: REGION,
    deployment: 'itest',
    tagPrefix: 'snapkeeper:',
    localTagAfterCreate: false,
  };
  return [
    {
      caller,
      service: 'ebs',
      action: 'ListSnapshotBlocks',
      region: REGION,
      input: { SnapshotId: 'snap-0001' },
      resourceTags: { 'snap-0001': managed },
    },
    {
      caller,
      service: 'ebs',
      action: 'ListChangedBlocks',
      region: REGION,
      input: { FirstSnapshotId: 'snap-0001', SecondSnapshotId: 'snap-0002' },
      resourceTags: { 'snap-0001': managed, 'snap-0002': managed },
    },
  ];
}

function statementsOf(template: CfnTemplate, role: string): Statement[] {
  const policies = template.Resources[role]?.Properties?.Policies as
    | { PolicyDocument: { Statement: Statement[] } }[]
    | undefined;
  return policies?.[0]?.PolicyDocument.Statement ?? [];
}

describe('IAM of the cost ledger (EBS direct APIs)', () => {
  it("allows retention to list blocks of the stage's managed snapshots, and refuses every other snapshot and role", async () => {
    // Act
    const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), [
      measuring('retention'),
    ]);

    // Assess
    const ebs = report.verdicts.filter((v) => v.request.action.startsWith('ebs:'));
    expect(ebs.filter((v) => v.unexpected)).toEqual([]);
    expect(ebs.filter((v) => v.expected === 'allowed')).toHaveLength(3);
    const refused = ebs.filter((v) => v.expected === 'denied');
    expect(refused.map((v) => v.why)).toEqual(
      expect.arrayContaining([
        'ebs:ListSnapshotBlocks of an unmanaged snapshot (the cost ledger measures only its own)',
        "ebs:ListChangedBlocks of an another stage's snapshot (the cost ledger measures only its own)",
        'reading block lists outside retention (the one function that measures sizes)',
      ]),
    );
    expect(refused.every((v) => v.result !== 'Allowed')).toBe(true);
  });

  it('refuses the same calls from the backup function', async () => {
    // Act
    const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), [
      measuring('backup'),
    ]);

    // Assess
    const recorded = report.verdicts.filter(
      (v) => v.request.action.startsWith('ebs:') && v.expected === 'allowed',
    );
    expect(recorded.length).toBeGreaterThan(0);
    expect(recorded.every((v) => v.unexpected && v.result !== 'Allowed')).toBe(true);
  });

  it('fails when the tag condition is dropped (a too-broad grant is caught)', async () => {
    // Prepare
    const template = JSON.parse(JSON.stringify(readPackagedTemplate())) as CfnTemplate;
    const statement = statementsOf(template, 'RetentionRole').find(
      (s) => s.Sid === 'MeasureOnlyOwnManagedSnapshots',
    );
    expect(statement).toBeDefined();
    if (statement) delete (statement as { Condition?: unknown }).Condition;

    // Act
    const report = await simulate(template, readTargetRoleTemplate(), [measuring('retention')]);

    // Assess
    expect(
      report.verdicts.filter((v) => v.unexpected && v.request.action.startsWith('ebs:')).length,
    ).toBeGreaterThan(0);
  });
});
