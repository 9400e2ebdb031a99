/**
 * The retention job with locks and the archive tier wired in: locked points are blocked
 * (never deleted) with their hold and GiB, a lock that cannot be re-applied makes the run
 * partial, locks that cannot be read fail the run before anything is deleted, and a
 * schedule with archiveAfterDays archives what pays.
 */
import { describe, expect, it } from 'vitest';
import { toAwsCallError } from '../../../lib/aws/errors.ts';
import type { InstanceFacts } from '../../../lib/domain/backupPlan.ts';
import { parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import type { SnapshotLockStatus } from '../../../lib/domain/snapshotLock.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { TagMap } from '../../../lib/domain/tagPolicy.ts';
import type { SnapshotTiersPort } from '../../../lib/jobs/ports.ts';
import { type RetentionJobDependencies, runRetentionJob } from '../../../lib/jobs/retentionJob.ts';
import { RecordingJournal } from '../../support/recordingJournal.ts';
import { recordingLogger } from '../../support/recordingLogger.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const keys = tagKeys();
const NOW = new Date('2026-11-23T12:00:00Z');
const DAY_MS = 86_400_000;
const catalog = parseScheduleCatalog(
  [
    { name: 'daily', cron: 'cron(0 3 * * ? *)', retain: 2 },
    { name: 'monthly', cron: 'cron(0 5 1 * ? *)', retain: 12, archiveAfterDays: 60 },
  ],
  'daily',
);

function point(
  id: string,
  daysAgo: number,
  schedule = 'daily',
  extra: Partial<SnapshotFacts> = {},
): SnapshotFacts {
  const at = new Date(NOW.getTime() - daysAgo * DAY_MS);
  return {
    snapshotId: id,
    volumeId: 'vol-1',
    state: 'completed',
    startTime: at,
    sizeGiB: 40,
    tags: {
      [keys.managed]: 'true',
      [keys.deployment]: 'prod',
      [keys.schedule]: schedule,
      [keys.instanceId]: 'i-1',
      [keys.createdAt]: `${at.toISOString().slice(0, 19)}Z`,
    },
    ...extra,
  };
}

function instance(tags: TagMap, schedule = 'daily'): InstanceFacts {
  return {
    instanceId: 'i-1',
    state: 'running',
    tags: { [keys.backup]: schedule, ...tags },
    volumes: [{ volumeId: 'vol-1', deviceName: '/dev/xvda' }],
  } as InstanceFacts;
}

function ec2(
  snapshots: SnapshotFacts[],
  instances: InstanceFacts[],
  deleted: string[],
): RetentionJobDependencies['ec2'] {
  return {
    async *listSnapshotsTagged() {
      yield* snapshots;
    },
    async snapshotHolders() {
      return new Map();
    },
    async *listInstancesWithTagKey() {
      yield* instances;
    },
    async volumeTagsWithKey() {
      return new Map();
    },
    async deleteSnapshot(id) {
      deleted.push(id);
    },
  };
}

function tiers(options: {
  locks?: Map<string, SnapshotLockStatus>;
  lockError?: Error;
  readError?: Error;
  archived?: string[];
}): SnapshotTiersPort {
  return {
    async lockSnapshot(request) {
      if (options.lockError) throw options.lockError;
      return { snapshotId: request.snapshotId, state: request.mode, expiresOn: request.expiresAt };
    },
    async lockedSnapshots(ids) {
      // The gateway names the action it failed on.
      if (options.readError) throw toAwsCallError('DescribeLockedSnapshots', options.readError);
      return new Map([...(options.locks ?? [])].filter(([id]) => ids.includes(id)));
    },
    async archiveSnapshot(id) {
      options.archived?.push(id);
      return { startedAt: NOW };
    },
    async tierStatuses() {
      return new Map();
    },
    async restoreSnapshotTier(snapshotId) {
      return { snapshotId, permanent: false };
    },
  };
}

function deps(
  snapshots: SnapshotFacts[],
  instances: InstanceFacts[],
  deleted: string[],
  port: SnapshotTiersPort | undefined,
): RetentionJobDependencies {
  return {
    ec2: ec2(snapshots, instances, deleted),
    tiers: port,
    config: {
      deployment: 'prod',
      keys,
      catalog,
      maxDeletions: { kind: 'count', value: 100 },
      manualRetainDays: 30,
      deleteConcurrency: 2,
    },
    clock: () => NOW,
    runId: 'run-1',
    logger: recordingLogger(),
    journal: new RecordingJournal(),
    ledger: undefined,
  };
}

const history = () => [
  point('snap-0', 0),
  point('snap-1', 1),
  point('snap-2', 2),
  point('snap-3', 3),
];
const lockedUntil = new Date('2027-11-20T03:00:00Z');

describe('Function: runRetentionJob with locks and the archive tier', () => {
  it('never deletes a locked point: it is blocked, "locked until", with the GiB it keeps', async () => {
    // Prepare
    const deleted: string[] = [];
    const locks = new Map<string, SnapshotLockStatus>([
      ['snap-2', { snapshotId: 'snap-2', state: 'governance', expiresOn: lockedUntil }],
      ['snap-3', { snapshotId: 'snap-3', state: 'governance', expiresOn: lockedUntil }],
    ]);

    // Act
    const report = await runRetentionJob(
      { schedule: 'daily', dryRun: false, trigger: 'schedule' },
      deps(history(), [instance({ 'snapkeeper:lock': 'daily=365d' })], deleted, tiers({ locks })),
    );

    // Assess
    expect(deleted).toEqual([]);
    expect(report.counts).toMatchObject({ deleted: 0, blocked: 2, blockedGiB: 80 });
    expect(report.volumes[0]?.blocked[0]).toMatchObject({
      snapshotId: 'snap-2',
      heldBy: ['locked (governance) until 2027-11-20'],
    });
    expect(report.volumes[0]?.blocked[0]?.reason).toContain(
      'but held by locked (governance) until 2027-11-20',
    );
    // snap-0 and snap-1 had no lock reported: both re-locked.
    expect(report.locks?.map((l) => [l.snapshotId, l.outcome])).toEqual([
      ['snap-0', 'relocked'],
      ['snap-1', 'relocked'],
    ]);
  });

  it('deletes the same points when nothing is locked (the lock is what blocks)', async () => {
    const deleted: string[] = [];
    await runRetentionJob(
      { schedule: 'daily', dryRun: false, trigger: 'schedule' },
      deps(history(), [instance({})], deleted, tiers({})),
    );
    expect(deleted.sort()).toEqual(['snap-2', 'snap-3']);
  });

  it('reports a lock that cannot be re-applied, and ends partial', async () => {
    const report = await runRetentionJob(
      { schedule: 'daily', dryRun: false, trigger: 'schedule' },
      deps(
        [point('snap-0', 0)],
        [instance({ 'snapkeeper:lock': 'daily=30d' })],
        [],
        tiers({ lockError: sdkError('UnauthorizedOperation', 'not authorized', 403) }),
      ),
    );
    expect(report.status).toBe('partial');
    expect(report.locks).toEqual([
      expect.objectContaining({
        snapshotId: 'snap-0',
        outcome: 'failed',
        error: expect.objectContaining({ code: 'UnauthorizedOperation' }),
      }),
    ]);
  });

  it('deletes nothing when the locks cannot be read', async () => {
    const deleted: string[] = [];
    const report = await runRetentionJob(
      { schedule: 'daily', dryRun: false, trigger: 'schedule' },
      deps(
        history(),
        [instance({ 'snapkeeper:lock': 'daily=30d' })],
        deleted,
        tiers({ readError: sdkError('UnauthorizedOperation', 'not authorized', 403) }),
      ),
    );
    expect(deleted).toEqual([]);
    expect(report.status).toBe('failed');
    expect(report.error).toMatchObject({ code: 'UnauthorizedOperation' });
    expect(report.error?.message).toContain('DescribeLockedSnapshots');
  });

  it('reports a bad lock tag, and the run is partial', async () => {
    const report = await runRetentionJob(
      { schedule: 'daily', dryRun: true, trigger: 'console' },
      deps(history(), [instance({ 'snapkeeper:lock': 'daily=forever' })], [], tiers({})),
    );
    expect(report.status).toBe('partial');
    expect(report.lockProblems).toEqual([
      expect.stringContaining('snapkeeper:lock="daily=forever"'),
    ]);
  });

  it('archives old monthly points of a schedule with archiveAfterDays; a dry run only plans', async () => {
    // Prepare
    const monthly = [
      point('snap-m0', 22, 'monthly'),
      point('snap-m1', 53, 'monthly'),
      point('snap-m2', 83, 'monthly'),
      point('snap-m3', 114, 'monthly', { storageTier: 'archive' }),
    ];
    const archived: string[] = [];

    // Act
    const dry = await runRetentionJob(
      { schedule: 'monthly', dryRun: true, trigger: 'console' },
      deps(monthly, [instance({}, 'monthly')], [], tiers({ archived })),
    );
    const real = await runRetentionJob(
      { schedule: 'monthly', dryRun: false, trigger: 'schedule' },
      deps(monthly, [instance({}, 'monthly')], [], tiers({ archived })),
    );

    // Assess
    expect(dry.archive?.map((a) => [a.snapshotId, a.outcome])).toEqual([['snap-m2', 'planned']]);
    expect(archived).toEqual(['snap-m2']);
    expect(real.archive?.map((a) => [a.snapshotId, a.outcome])).toEqual([['snap-m2', 'archived']]);
    expect(real.status).toBe('succeeded');
  });

  it('makes no lock or tier call without the tiers port (benches, other tests)', async () => {
    const deleted: string[] = [];
    const report = await runRetentionJob(
      { schedule: 'daily', dryRun: false, trigger: 'schedule' },
      deps(history(), [instance({ 'snapkeeper:lock': 'daily=365d' })], deleted, undefined),
    );
    expect(report.locks).toBeUndefined();
    expect(deleted.sort()).toEqual(['snap-2', 'snap-3']);
  });
});
