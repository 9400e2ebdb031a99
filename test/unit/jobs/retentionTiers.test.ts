import { describe, expect, it } from 'vitest';
import type { TierStatus } from '../../../lib/domain/archiveTier.ts';
import type { InstanceFacts } from '../../../lib/domain/backupPlan.ts';
import type { PlannedVolumeRetention } from '../../../lib/domain/retentionRun.ts';
import type { ScheduleDefinition } from '../../../lib/domain/schedules.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import type { LockRequest, SnapshotLockStatus } from '../../../lib/domain/snapshotLock.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { SnapshotTiersPort } from '../../../lib/jobs/ports.ts';
import {
  holdArchiveMinimum,
  type RetentionTiersDependencies,
  recheckScheduleLocks,
} from '../../../lib/jobs/retentionTiers.ts';
import { RecordingJournal } from '../../support/recordingJournal.ts';
import { recordingLogger } from '../../support/recordingLogger.ts';

const DAY_MS = 86_400_000;
const NOW = new Date('2026-11-23T12:00:00Z');
const keys = tagKeys();
const MANAGED = { 'snapkeeper:managed': 'true', 'snapkeeper:deployment': 'prod' };
const monthly: ScheduleDefinition = {
  name: 'monthly',
  cron: 'cron(0 5 1 * ? *)',
  timezone: 'UTC',
  retain: 12,
};

function snapshot(id: string, ageDays: number, extra: Partial<SnapshotFacts> = {}): SnapshotFacts {
  return {
    snapshotId: id,
    volumeId: 'vol-1',
    state: 'completed',
    startTime: new Date(NOW.getTime() - ageDays * DAY_MS),
    tags: { ...MANAGED, 'snapkeeper:instance-id': 'i-1' },
    sizeGiB: 50,
    ...extra,
  };
}

function instance(tags: Record<string, string>): Map<string, InstanceFacts> {
  return new Map([
    ['i-1', { instanceId: 'i-1', state: 'running', tags, volumes: [] } as InstanceFacts],
  ]);
}

function fakeTiers(
  locks = new Map<string, SnapshotLockStatus>(),
  tiers = new Map<string, TierStatus>(),
) {
  const calls: string[] = [];
  const locked: LockRequest[] = [];
  const port: SnapshotTiersPort = {
    async lockSnapshot(request) {
      locked.push(request);
      return { snapshotId: request.snapshotId, state: request.mode, expiresOn: request.expiresAt };
    },
    async lockedSnapshots(ids) {
      calls.push(`DescribeLockedSnapshots ${ids.join(',')}`);
      return new Map([...locks].filter(([id]) => ids.includes(id)));
    },
    async archiveSnapshot() {
      return {};
    },
    async tierStatuses(ids) {
      calls.push(`DescribeSnapshotTierStatus ${ids.join(',')}`);
      return new Map([...tiers].filter(([id]) => ids.includes(id)));
    },
    async restoreSnapshotTier(snapshotId) {
      return { snapshotId, permanent: false };
    },
  };
  return { port, calls, locked };
}

function deps(tiers: SnapshotTiersPort | undefined): RetentionTiersDependencies {
  return {
    tiers,
    journal: new RecordingJournal(),
    logger: recordingLogger(),
    runId: 'run-1',
    keys,
    deployment: 'prod',
    knownSchedules: ['daily', 'monthly'],
    allowComplianceLocks: false,
  };
}

describe('Function: recheckScheduleLocks', () => {
  it('makes no call when neither the schedule nor any instance asks for locks', async () => {
    const { port, calls } = fakeTiers();
    const result = await recheckScheduleLocks(
      monthly,
      [snapshot('snap-1', 1)],
      instance({}),
      NOW,
      false,
      deps(port),
    );
    expect(calls).toEqual([]);
    expect(result.holds.size).toBe(0);
  });

  it("re-locks a point the instance's tag locks, and holds every lock EC2 reports", async () => {
    // Prepare
    const until = new Date(NOW.getTime() + 100 * DAY_MS);
    const { port, locked } = fakeTiers(
      new Map([['snap-2', { snapshotId: 'snap-2', state: 'governance', expiresOn: until }]]),
    );

    // Act
    const result = await recheckScheduleLocks(
      monthly,
      [snapshot('snap-1', 10), snapshot('snap-2', 40)],
      instance({ 'snapkeeper:lock': 'monthly=365d' }),
      NOW,
      false,
      deps(port),
    );

    // Assess
    expect(locked).toEqual([
      {
        snapshotId: 'snap-1',
        mode: 'governance',
        expiresAt: new Date(NOW.getTime() - 10 * DAY_MS + 365 * DAY_MS),
      },
    ]);
    expect([...result.holds.keys()].sort()).toEqual(['snap-1', 'snap-2']);
    expect(result.problems).toEqual([]);
  });

  it("reports an unreadable lock tag and applies the schedule's own lock", async () => {
    const { port, locked } = fakeTiers();
    const result = await recheckScheduleLocks(
      { ...monthly, lock: '30d' },
      [snapshot('snap-1', 1)],
      instance({ 'snapkeeper:lock': 'monthly=forever' }),
      NOW,
      false,
      deps(port),
    );
    expect(result.problems).toEqual([expect.stringContaining('snapkeeper:lock="monthly=forever"')]);
    expect(locked.map((l) => l.snapshotId)).toEqual(['snap-1']);
  });
});

describe('Function: holdArchiveMinimum', () => {
  const plan = (
    decisions: PlannedVolumeRetention['plan']['decisions'],
  ): PlannedVolumeRetention[] => [
    {
      lineage: { volumeId: 'vol-1', orphan: false, problems: [] },
      plan: { decisions },
    },
  ];

  it('keeps an archived point deleted before its 90-day minimum, saying why', async () => {
    // Prepare
    const { port } = fakeTiers(
      new Map(),
      new Map([
        [
          'snap-young',
          {
            snapshotId: 'snap-young',
            tier: 'archive',
            lastTieringStartTime: new Date('2026-11-01T00:00:00Z'),
          },
        ],
        [
          'snap-old',
          {
            snapshotId: 'snap-old',
            tier: 'archive',
            lastTieringStartTime: new Date('2026-06-01T00:00:00Z'),
          },
        ],
      ]),
    );

    // Act
    const held = await holdArchiveMinimum(
      plan([
        { id: 'snap-young', action: 'delete', reason: 'beyond count 1' },
        { id: 'snap-old', action: 'delete', reason: 'beyond count 1' },
        { id: 'snap-std', action: 'delete', reason: 'beyond count 1' },
      ]),
      [
        snapshot('snap-young', 100, { storageTier: 'archive' }),
        snapshot('snap-old', 300, { storageTier: 'archive' }),
        snapshot('snap-std', 200),
      ],
      NOW,
      { tiers: port },
    );

    // Assess
    expect(held.plannedDeletes).toBe(2);
    expect(held.volumes[0]?.plan.decisions).toEqual([
      {
        id: 'snap-young',
        action: 'keep',
        reason:
          'kept: beyond count 1, but archived: deleting before 2027-01-30 still bills the rest of the 90-day archive minimum for its 50 GiB, so keeping it until then costs nothing more',
      },
      { id: 'snap-old', action: 'delete', reason: 'beyond count 1' },
      { id: 'snap-std', action: 'delete', reason: 'beyond count 1' },
    ]);
  });

  it('makes no call when no deleted point is archived', async () => {
    const { port, calls } = fakeTiers();
    const held = await holdArchiveMinimum(
      plan([{ id: 'snap-std', action: 'delete', reason: 'x' }]),
      [snapshot('snap-std', 200)],
      NOW,
      { tiers: port },
    );
    expect(calls).toEqual([]);
    expect(held.plannedDeletes).toBe(1);
  });
});
