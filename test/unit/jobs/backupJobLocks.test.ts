/**
 * The backup job's lock step: each snapshot of a new set is locked right after the
 * run's sets are made and recorded, when the instance's `snapkeeper:lock` tag (or the
 * schedule's `lock` option) locks the schedule; a lock failure makes the run partial,
 * never a silent unlocked point; a dry run only plans.
 */
import { describe, expect, it } from 'vitest';
import type { CreatedSnapshot } from '../../../lib/aws/Ec2Gateway.ts';
import type { InstanceFacts, SnapshotSetRequest } from '../../../lib/domain/backupPlan.ts';
import { parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import type { LockRequest } from '../../../lib/domain/snapshotLock.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import { type BackupJobDependencies, runBackupJob } from '../../../lib/jobs/backupJob.ts';
import type { SnapshotTiersPort } from '../../../lib/jobs/ports.ts';
import { RecordingJournal } from '../../support/recordingJournal.ts';
import { recordingLogger } from '../../support/recordingLogger.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const keys = tagKeys();
const NOW = new Date('2026-12-01T05:00:05Z');
const catalog = parseScheduleCatalog(
  [
    { name: 'daily', cron: 'cron(0 3 * * ? *)', retain: 7 },
    { name: 'monthly', cron: 'cron(0 5 1 * ? *)', retain: 12, lock: '30d' },
  ],
  'daily',
);

function instance(id: string, tags: Record<string, string>): InstanceFacts {
  return {
    instanceId: id,
    state: 'running',
    rootDeviceName: '/dev/xvda',
    tags: { [keys.backup]: 'daily,monthly', ...tags },
    volumes: [
      { volumeId: `vol-${id}-root`, deviceName: '/dev/xvda' },
      { volumeId: `vol-${id}-data`, deviceName: '/dev/sdf' },
    ],
  };
}

function ec2(instances: InstanceFacts[], events: string[]): BackupJobDependencies['ec2'] {
  return {
    async *listInstancesWithTagKey() {
      yield* instances;
    },
    async *listInstancesByIds() {
      yield* instances;
    },
    async volumeTagsWithKey() {
      return new Map();
    },
    async createSnapshotSet(request: SnapshotSetRequest): Promise<CreatedSnapshot[]> {
      events.push(`create ${request.instanceId}`);
      return request.included.map((v) => ({
        snapshotId: `snap-${v.volumeId.slice(4)}`,
        volumeId: v.volumeId,
        state: 'pending',
        sizeGiB: 8,
      }));
    },
    async *listSnapshotsTagged() {},
    async deleteSnapshot() {},
  };
}

function tiers(events: string[], refuse: readonly string[] = []) {
  const locked: LockRequest[] = [];
  const port: Pick<SnapshotTiersPort, 'lockSnapshot' | 'lockedSnapshots'> = {
    async lockSnapshot(request) {
      events.push(`lock ${request.snapshotId}`);
      if (refuse.includes(request.snapshotId)) throw sdkError('InvalidSnapshot.NotFound', 'gone');
      locked.push(request);
      return { snapshotId: request.snapshotId, state: request.mode };
    },
    async lockedSnapshots() {
      return new Map();
    },
  };
  return { port, locked };
}

function deps(
  instances: InstanceFacts[],
  events: string[],
  port?: BackupJobDependencies['tiers'],
): BackupJobDependencies {
  return {
    ec2: ec2(instances, events),
    tiers: port,
    config: {
      deployment: 'prod',
      keys,
      catalog,
      copyTags: [],
      backupConcurrency: 2,
      manualRetainDays: 30,
    },
    clock: () => NOW,
    runId: 'run-1',
    logger: recordingLogger(),
    journal: new RecordingJournal({ events, withOutcome: false }),
    reconcile: { sleep: async () => undefined },
  };
}

const monthlyRun = (dryRun = false) => ({
  schedule: 'monthly',
  scheduledTime: new Date('2026-12-01T05:00:00Z'),
  dryRun,
  trigger: 'schedule' as const,
});

describe('Function: runBackupJob, the lock step', () => {
  it('locks every snapshot of the new sets after they are made and recorded', async () => {
    // Prepare
    const events: string[] = [];
    const { port, locked } = tiers(events);

    // Act
    const report = await runBackupJob(
      monthlyRun(),
      deps(
        [instance('i-a', { 'snapkeeper:lock': 'monthly=365d' }), instance('i-b', {})],
        events,
        port,
      ),
    );

    // Assess: the tag's 365 days for i-a, the schedule's 30 days for i-b.
    expect(locked.map((l) => [l.snapshotId, l.days, l.mode])).toEqual([
      ['snap-i-a-root', 365, 'governance'],
      ['snap-i-a-data', 365, 'governance'],
      ['snap-i-b-root', 30, 'governance'],
      ['snap-i-b-data', 30, 'governance'],
    ]);
    const firstLock = events.indexOf('lock snap-i-a-root');
    expect(events.slice(0, firstLock)).toEqual(
      expect.arrayContaining([
        'create i-a',
        'create i-b',
        'after snap-i-a-root',
        'after snap-i-b-data',
      ]),
    );
    expect(report.status).toBe('succeeded');
    expect(report.locks).toHaveLength(4);
  });

  it('reports a lock failure and ends partial: never a silent unlocked point', async () => {
    // Prepare
    const events: string[] = [];
    const { port } = tiers(events, ['snap-i-a-data']);

    // Act
    const report = await runBackupJob(monthlyRun(), deps([instance('i-a', {})], events, port));

    // Assess
    expect(report.status).toBe('partial');
    expect(report.locks?.find((l) => l.snapshotId === 'snap-i-a-data')).toMatchObject({
      outcome: 'failed',
      error: { code: 'InvalidSnapshot.NotFound' },
    });
  });

  it('locks nothing for a schedule and instance that do not ask for it', async () => {
    const events: string[] = [];
    const { port, locked } = tiers(events);
    const report = await runBackupJob(
      { ...monthlyRun(), schedule: 'daily', scheduledTime: new Date('2026-12-01T03:00:00Z') },
      deps([instance('i-a', { 'snapkeeper:lock': 'monthly=365d' })], events, port),
    );
    expect(locked).toEqual([]);
    expect(report.locks).toBeUndefined();
  });

  it('reports a bad lock tag and still applies the schedule lock', async () => {
    const events: string[] = [];
    const { port, locked } = tiers(events);
    const report = await runBackupJob(
      monthlyRun(),
      deps([instance('i-a', { 'snapkeeper:lock': 'monthly=7y:compliance' })], events, port),
    );
    expect(report.status).toBe('partial');
    expect(report.lockProblems).toEqual([
      expect.stringContaining('custom.snapshotLock.allowCompliance'),
    ]);
    expect(locked.map((l) => l.days)).toEqual([30, 30]);
  });

  it('sends no lock in a dry run, and plans one per snapshot', async () => {
    const events: string[] = [];
    const { port, locked } = tiers(events);
    const report = await runBackupJob(monthlyRun(true), deps([instance('i-a', {})], events, port));
    expect(locked).toEqual([]);
    expect(report.locks?.map((l) => l.outcome)).toEqual(['planned', 'planned']);
  });
});
