/**
 * The IAM of the snapshot lock and archive tier calls (issue 21), simulated against the
 * PACKAGED roles: each function's own calls on this stage's managed snapshots are allowed;
 * the same calls on a snapshot this stage did not create, and any UnlockSnapshot, are
 * denied (the negative set in test/iam/simulation.ts), and the functions that do not
 * make a call are refused it.
 */
import { describe, expect, it } from 'vitest';
import type { CallerContext, RecordedCall } from '../../lib/aws/callRecorder.ts';
import { readPackagedTemplate, readTargetRoleTemplate } from '../iam/policies.ts';
import { simulate } from '../iam/simulation.ts';

const REGION = 'eu-west-1';
const DEPLOYMENT = 'itest';
const managed = { 'snapkeeper:managed': 'true', 'snapkeeper:deployment': DEPLOYMENT };
const foreign = { Name: 'made-by-hand' };

const caller = (functionName: string): CallerContext => ({
  functionName,
  region: REGION,
  deployment: DEPLOYMENT,
  tagPrefix: 'snapkeeper:',
  localTagAfterCreate: false,
});
const call = (
  fn: string,
  action: string,
  input: unknown,
  tags?: Record<string, string>,
): RecordedCall => ({
  caller: caller(fn),
  service: 'ec2',
  action,
  region: REGION,
  input,
  ...(tags ? { resourceTags: { 'snap-0001': tags } } : {}),
});

/** What the functions call: backup locks, retention re-locks and archives, ops restores. */
function tierRecording(): RecordedCall[] {
  return [
    call(
      'backup',
      'LockSnapshot',
      { SnapshotId: 'snap-0001', LockMode: 'governance', LockDuration: 365 },
      managed,
    ),
    call('backup', 'DescribeLockedSnapshots', { SnapshotIds: ['snap-0001'] }),
    call('retention', 'DescribeLockedSnapshots', {}),
    call('retention', 'DescribeSnapshotTierStatus', {}),
    call(
      'retention',
      'LockSnapshot',
      { SnapshotId: 'snap-0001', LockMode: 'governance', ExpirationDate: '2027-11-23T03:00:00Z' },
      managed,
    ),
    call(
      'retention',
      'ModifySnapshotTier',
      { SnapshotId: 'snap-0001', StorageTier: 'archive' },
      managed,
    ),
    call(
      'ops',
      'RestoreSnapshotTier',
      { SnapshotId: 'snap-0001', TemporaryRestoreDays: 1 },
      managed,
    ),
    call('ops', 'DescribeSnapshotTierStatus', {}),
  ];
}

describe('IAM of snapshot locks and the archive tier', () => {
  it('allows each function its own calls on own managed snapshots, and denies the negative set', async () => {
    // Act
    const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), [
      tierRecording(),
    ]);

    // Assess
    expect(report.verdicts.filter((v) => v.unexpected)).toEqual([]);
    expect(report.unsupportedKeys).toEqual([]);
    const denied = report.verdicts.filter((v) => v.expected === 'denied').map((v) => v.why);
    expect(denied).toEqual(
      expect.arrayContaining([
        'LockSnapshot of an unmanaged snapshot',
        "ModifySnapshotTier of an another stage's snapshot",
        'RestoreSnapshotTier of an untagged snapshot',
        'UnlockSnapshot of an own managed snapshot (no role may unlock)',
      ]),
    );
  });

  it('refuses the tier calls on a snapshot this stage did not create', async () => {
    // Act
    const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), [
      [
        call(
          'backup',
          'LockSnapshot',
          { SnapshotId: 'snap-0001', LockMode: 'governance', LockDuration: 1 },
          foreign,
        ),
        call(
          'retention',
          'ModifySnapshotTier',
          { SnapshotId: 'snap-0001', StorageTier: 'archive' },
          foreign,
        ),
        call(
          'ops',
          'RestoreSnapshotTier',
          { SnapshotId: 'snap-0001', PermanentRestore: true },
          foreign,
        ),
      ],
    ]);

    // Assess: recorded calls are expected allowed, so each shows up as unexpectedly denied.
    const refused = report.verdicts
      .filter((v) => v.unexpected)
      .map((v) => [v.role, v.request.action, v.result]);
    expect(refused).toEqual([
      ['backup', 'ec2:LockSnapshot', 'ImplicitlyDenied'],
      ['retention', 'ec2:ModifySnapshotTier', 'ImplicitlyDenied'],
      ['ops', 'ec2:RestoreSnapshotTier', 'ImplicitlyDenied'],
    ]);
  });

  it('gives the calls only to the functions that make them', async () => {
    // Act
    const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), [
      [
        call(
          'amis',
          'LockSnapshot',
          { SnapshotId: 'snap-0001', LockMode: 'governance', LockDuration: 1 },
          managed,
        ),
        call(
          'backup',
          'ModifySnapshotTier',
          { SnapshotId: 'snap-0001', StorageTier: 'archive' },
          managed,
        ),
        call(
          'retention',
          'RestoreSnapshotTier',
          { SnapshotId: 'snap-0001', TemporaryRestoreDays: 1 },
          managed,
        ),
      ],
    ]);

    // Assess
    expect(report.verdicts.filter((v) => v.unexpected).map((v) => v.role)).toEqual([
      'amis',
      'backup',
      'retention',
    ]);
  });
});

describe('IAM of snapshot locks and the archive tier in fan-out batches (the worker, and the target-account role)', () => {
  const OTHER_ACCOUNT = '210987654321';
  const targetRole = `arn:aws:iam::${OTHER_ACCOUNT}:role/snapkeeper-target`;
  /** A backup batch locks what it made; a retention batch re-checks locks and archives. */
  const batchCalls = (tags: Record<string, string>, assumedRole?: string): RecordedCall[] =>
    [
      call(
        'worker',
        'LockSnapshot',
        { SnapshotId: 'snap-0001', LockMode: 'governance', LockDuration: 30 },
        tags,
      ),
      call('worker', 'DescribeLockedSnapshots', { SnapshotIds: ['snap-0001'] }),
      call('worker', 'DescribeSnapshotTierStatus', {}),
      call(
        'worker',
        'ModifySnapshotTier',
        { SnapshotId: 'snap-0001', StorageTier: 'archive' },
        tags,
      ),
    ].map((c) => (assumedRole ? { ...c, assumedRole } : c));

  it('allows the worker, in its own account and through the target role, on own managed snapshots', async () => {
    // Act
    const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), [
      batchCalls(managed),
      batchCalls(managed, targetRole),
    ]);

    // Assess
    expect(report.verdicts.filter((v) => v.unexpected)).toEqual([]);
    const allowed = report.verdicts
      .filter((v) => v.expected === 'allowed' && v.request.action.startsWith('ec2:'))
      .map((v) => `${v.role} ${v.request.action}`);
    expect(allowed).toEqual(
      expect.arrayContaining([
        'worker ec2:LockSnapshot',
        'worker ec2:ModifySnapshotTier',
        'target ec2:LockSnapshot',
        'target ec2:ModifySnapshotTier',
        'target ec2:DescribeLockedSnapshots',
      ]),
    );
  });

  it('refuses both the lock and the archive of a snapshot this stage did not create', async () => {
    // Act
    const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), [
      batchCalls(foreign),
      batchCalls(foreign, targetRole),
    ]);

    // Assess: recorded calls are expected allowed, so each shows up as unexpectedly denied.
    const refused = report.verdicts
      .filter((v) => v.unexpected)
      .map((v) => `${v.role} ${v.request.action} ${v.result}`);
    expect(refused.sort()).toEqual([
      'target ec2:LockSnapshot ImplicitlyDenied',
      'target ec2:ModifySnapshotTier ImplicitlyDenied',
      'worker ec2:LockSnapshot ImplicitlyDenied',
      'worker ec2:ModifySnapshotTier ImplicitlyDenied',
    ]);
  });
});
