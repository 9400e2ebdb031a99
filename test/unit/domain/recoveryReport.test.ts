import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { InstanceFacts } from '../../../lib/domain/backupPlan.ts';
import type { ImageFacts } from '../../../lib/domain/imagePlan.ts';
import {
  buildRecoveryReport,
  type RecoveryReportInput,
  RPO_GRACE_MS,
} from '../../../lib/domain/recoveryReport.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';

const KEYS = tagKeys();
const CATALOG = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const DEPLOYMENT = 'prod';
/** A Monday: daily fired at 03:00 today, weekly on Sunday 04:00, monthly on the 1st 05:00. */
const NOW = new Date('2026-11-23T10:00:00.000Z');
const HOUR = 3_600_000;
const MINUTE = 60_000;

const WEB = 'i-0aaaaaaaaaaaaaaa1';
const DB = 'i-0bbbbbbbbbbbbbbb2';
const GONE = 'i-0ccccccccccccccc3';
const GONE_TOO = 'i-0ddddddddddddddd4';

function ago(ms: number): Date {
  return new Date(NOW.getTime() - ms);
}

function instance(instanceId: string, tags: Record<string, string>): InstanceFacts {
  return { instanceId, state: 'running', rootDeviceName: '/dev/xvda', tags, volumes: [] };
}

let snapshotCounter = 0;

/** A snapshot of this deployment, taken `ageMs` ago (StartTime), completed unless told. */
function snapshot(options: {
  instanceId: string;
  schedule: string;
  ageMs: number;
  runId?: string;
  state?: string;
  createdAt?: string;
  sizeGiB?: number;
  tags?: Record<string, string>;
  id?: string;
}): SnapshotFacts {
  snapshotCounter += 1;
  const id = options.id ?? `snap-${String(snapshotCounter).padStart(17, '0')}`;
  return {
    snapshotId: id,
    volumeId: 'vol-0123456789abcdef0',
    state: options.state ?? 'completed',
    startTime: ago(options.ageMs),
    sizeGiB: options.sizeGiB ?? 8,
    tags: {
      [KEYS.managed]: 'true',
      [KEYS.deployment]: DEPLOYMENT,
      [KEYS.instanceId]: options.instanceId,
      [KEYS.schedule]: options.schedule,
      [KEYS.runId]: options.runId ?? `run-${id}`,
      ...(options.createdAt ? { [KEYS.createdAt]: options.createdAt } : {}),
      ...options.tags,
    },
  };
}

function image(options: {
  imageId: string;
  instanceId: string;
  schedule: string;
  ageMs: number;
  state?: string;
  tags?: Record<string, string>;
}): ImageFacts {
  return {
    imageId: options.imageId,
    state: options.state ?? 'available',
    creationDate: ago(options.ageMs),
    tags: {
      [KEYS.managed]: 'true',
      [KEYS.deployment]: DEPLOYMENT,
      [KEYS.instanceId]: options.instanceId,
      [KEYS.schedule]: options.schedule,
      ...options.tags,
    },
    snapshotIds: [],
    sizeGiB: 8,
    deregistrationProtected: false,
    isPublic: false,
  };
}

function report(input: Partial<RecoveryReportInput>) {
  return buildRecoveryReport({
    instances: [],
    snapshots: [],
    images: [],
    catalog: CATALOG,
    keys: KEYS,
    deployment: DEPLOYMENT,
    now: NOW,
    ...input,
  });
}

function only<T>(items: readonly T[]): T {
  expect(items).toHaveLength(1);
  return items[0] as T;
}

const daily = { [KEYS.backup]: 'daily', Name: 'web-1' };

describe('Function: buildRecoveryReport', () => {
  describe('the newest snapshot of an instance', () => {
    it('is its newest completed snapshot; pending and error ones are ignored', () => {
      // Prepare
      const snapshots = [
        snapshot({
          id: 'snap-completed-old',
          instanceId: WEB,
          schedule: 'daily',
          ageMs: 30 * HOUR,
        }),
        snapshot({ id: 'snap-completed-new', instanceId: WEB, schedule: 'daily', ageMs: 6 * HOUR }),
        snapshot({
          id: 'snap-pending',
          instanceId: WEB,
          schedule: 'daily',
          ageMs: 1 * HOUR,
          state: 'pending',
        }),
        snapshot({
          id: 'snap-error',
          instanceId: WEB,
          schedule: 'daily',
          ageMs: 2 * HOUR,
          state: 'error',
        }),
      ];

      // Act
      const result = report({ instances: [instance(WEB, daily)], snapshots });

      // Assess
      expect(only(result.instances).newestSnapshot).toEqual({
        snapshotId: 'snap-completed-new',
        createdAt: ago(6 * HOUR).toISOString(),
        ageHours: 6,
        schedule: 'daily',
      });
    });

    it('is dated by its created-at tag rather than its StartTime', () => {
      // Prepare
      const snapshots = [
        snapshot({
          id: 'snap-started-late',
          instanceId: WEB,
          schedule: 'daily',
          ageMs: 1 * HOUR,
          createdAt: '2026-11-22T03:00:00Z',
        }),
        snapshot({
          id: 'snap-started-early',
          instanceId: WEB,
          schedule: 'daily',
          ageMs: 5 * HOUR,
          createdAt: '2026-11-23T03:00:00Z',
        }),
      ];

      // Act
      const result = report({ instances: [instance(WEB, daily)], snapshots });

      // Assess
      expect(only(result.instances).newestSnapshot).toEqual({
        snapshotId: 'snap-started-early',
        createdAt: '2026-11-23T03:00:00.000Z',
        ageHours: 7,
        schedule: 'daily',
      });
      expect(only(result.instances).rpo).toEqual([
        { schedule: 'daily', intervalHours: 24, newestAgeHours: 7, met: true },
      ]);
    });

    it.each([
      ['3 h 20 min', 3 * HOUR + 20 * MINUTE, 3.3],
      ['3 h 40 min', 3 * HOUR + 40 * MINUTE, 3.7],
      ['59 min', 59 * MINUTE, 1],
      ['2 h 2 min', 2 * HOUR + 2 * MINUTE, 2],
      ['12 s', 12_000, 0],
      ['49 h 54 min', 49 * HOUR + 54 * MINUTE, 49.9],
    ])('gives an age of %s as %d hours (rounded to 0.1)', (_what, ageMs, hours) => {
      // Prepare
      const snapshots = [snapshot({ instanceId: WEB, schedule: 'daily', ageMs })];

      // Act
      const result = report({ instances: [instance(WEB, daily)], snapshots });

      // Assess
      const recovery = only(result.instances);
      expect(recovery.newestSnapshot?.ageHours).toBe(hours);
      expect(recovery.rpo[0]?.newestAgeHours).toBe(hours);
    });
  });

  describe('the recovery point objective', () => {
    it('is met for daily at exactly 25 hours (interval 24 h plus 1 h of grace)', () => {
      // Prepare
      const snapshots = [snapshot({ instanceId: WEB, schedule: 'daily', ageMs: 25 * HOUR })];

      // Act
      const result = report({ instances: [instance(WEB, daily)], snapshots });

      // Assess
      expect(RPO_GRACE_MS).toBe(HOUR);
      expect(only(result.instances).rpo).toEqual([
        { schedule: 'daily', intervalHours: 24, newestAgeHours: 25, met: true },
      ]);
      expect(result.rpoMissed).toEqual([]);
      expect(result.totals).toMatchObject({ rpoMet: 1, rpoMissed: 0 });
    });

    it('is missed for daily at 25.1 hours, and listed with the instance name', () => {
      // Prepare
      const snapshots = [
        snapshot({ instanceId: WEB, schedule: 'daily', ageMs: 25 * HOUR + 6 * MINUTE }),
      ];

      // Act
      const result = report({ instances: [instance(WEB, daily)], snapshots });

      // Assess
      expect(only(result.instances).rpo).toEqual([
        { schedule: 'daily', intervalHours: 24, newestAgeHours: 25.1, met: false },
      ]);
      expect(result.rpoMissed).toEqual([{ instanceId: WEB, name: 'web-1', schedule: 'daily' }]);
      expect(result.totals).toMatchObject({ rpoMet: 0, rpoMissed: 1 });
    });

    it('is missed one second past 25 hours, though the age still reads 25.0', () => {
      // Prepare
      const snapshots = [
        snapshot({ instanceId: WEB, schedule: 'daily', ageMs: 25 * HOUR + 1_000 }),
      ];

      // Act
      const result = report({ instances: [instance(WEB, daily)], snapshots });

      // Assess
      expect(only(result.instances).rpo).toEqual([
        { schedule: 'daily', intervalHours: 24, newestAgeHours: 25, met: false },
      ]);
    });

    it('is judged per schedule for an instance on daily and weekly', () => {
      // Prepare
      const snapshots = [
        snapshot({ instanceId: WEB, schedule: 'daily', ageMs: 7 * HOUR }),
        snapshot({ instanceId: WEB, schedule: 'weekly', ageMs: 170 * HOUR }),
      ];

      // Act
      const result = report({
        instances: [instance(WEB, { [KEYS.backup]: 'daily,weekly', Name: 'web-1' })],
        snapshots,
      });

      // Assess
      const recovery = only(result.instances);
      expect(recovery.schedules).toEqual(['daily', 'weekly']);
      expect(recovery.rpo).toEqual([
        { schedule: 'daily', intervalHours: 24, newestAgeHours: 7, met: true },
        { schedule: 'weekly', intervalHours: 168, newestAgeHours: 170, met: false },
      ]);
      expect(result.rpoMissed).toEqual([{ instanceId: WEB, name: 'web-1', schedule: 'weekly' }]);
    });

    it("does not let one schedule's snapshots meet another's objective", () => {
      // Prepare
      const snapshots = [snapshot({ instanceId: WEB, schedule: 'daily', ageMs: 2 * HOUR })];

      // Act
      const result = report({
        instances: [instance(WEB, { [KEYS.backup]: 'daily,weekly' })],
        snapshots,
      });

      // Assess
      expect(only(result.instances).rpo[1]).toEqual({
        schedule: 'weekly',
        intervalHours: 168,
        newestAgeHours: undefined,
        met: false,
      });
    });

    it('measures weekly against 169 hours and monthly against a 30-day November plus an hour', () => {
      // Prepare
      const snapshots = [
        snapshot({ instanceId: WEB, schedule: 'weekly', ageMs: 169 * HOUR }),
        snapshot({ instanceId: WEB, schedule: 'monthly', ageMs: 721 * HOUR + 6 * MINUTE }),
      ];

      // Act
      const result = report({
        instances: [instance(WEB, { [KEYS.backup]: 'weekly,monthly' })],
        snapshots,
      });

      // Assess
      expect(only(result.instances).rpo).toEqual([
        { schedule: 'weekly', intervalHours: 168, newestAgeHours: 169, met: true },
        { schedule: 'monthly', intervalHours: 720, newestAgeHours: 721.1, met: false },
      ]);
    });

    it('reads "true" as the default schedule', () => {
      // Prepare
      const snapshots = [snapshot({ instanceId: WEB, schedule: 'daily', ageMs: HOUR })];

      // Act
      const result = report({ instances: [instance(WEB, { [KEYS.backup]: 'true' })], snapshots });

      // Assess
      expect(only(result.instances).rpo).toEqual([
        { schedule: 'daily', intervalHours: 24, newestAgeHours: 1, met: true },
      ]);
    });

    it('uses the newest available AMI for a schedule the instance takes AMIs on only', () => {
      // Prepare
      const images = [
        image({
          imageId: 'ami-0000000000000old',
          instanceId: WEB,
          schedule: 'weekly',
          ageMs: 200 * HOUR,
        }),
        image({
          imageId: 'ami-000000000000fresh',
          instanceId: WEB,
          schedule: 'weekly',
          ageMs: 30 * HOUR,
        }),
        image({
          imageId: 'ami-00000000000pending',
          instanceId: WEB,
          schedule: 'weekly',
          ageMs: HOUR,
          state: 'pending',
        }),
        image({
          imageId: 'ami-000000000000failed',
          instanceId: WEB,
          schedule: 'weekly',
          ageMs: 2 * HOUR,
          state: 'failed',
        }),
      ];
      const snapshots = [snapshot({ instanceId: WEB, schedule: 'daily', ageMs: 3 * HOUR })];

      // Act
      const result = report({
        instances: [instance(WEB, { [KEYS.backup]: 'daily', [KEYS.ami]: 'weekly' })],
        snapshots,
        images,
      });

      // Assess
      const recovery = only(result.instances);
      expect(recovery.schedules).toEqual(['daily', 'weekly']);
      expect(recovery.rpo).toEqual([
        { schedule: 'daily', intervalHours: 24, newestAgeHours: 3, met: true },
        { schedule: 'weekly', intervalHours: 168, newestAgeHours: 30, met: true },
      ]);
      expect(recovery.newestImage).toEqual({
        imageId: 'ami-000000000000fresh',
        createdAt: ago(30 * HOUR).toISOString(),
        ageHours: 30,
        schedule: 'weekly',
      });
      expect(recovery.images).toBe(2);
    });

    it('misses an AMI-only schedule whose newest available AMI is too old', () => {
      // Prepare
      const images = [
        image({
          imageId: 'ami-0000000000000old',
          instanceId: WEB,
          schedule: 'daily',
          ageMs: 26 * HOUR,
        }),
      ];

      // Act
      const result = report({ instances: [instance(WEB, { [KEYS.ami]: 'daily' })], images });

      // Assess
      expect(only(result.instances).rpo).toEqual([
        { schedule: 'daily', intervalHours: 24, newestAgeHours: 26, met: false },
      ]);
      expect(only(result.instances).neverBackedUp).toBe(false);
    });
  });

  describe('the recovery points', () => {
    it('count the distinct run ids among completed snapshots', () => {
      // Prepare
      const snapshots = [
        snapshot({ instanceId: WEB, schedule: 'daily', ageMs: 50 * HOUR, runId: 'run-a' }),
        snapshot({ instanceId: WEB, schedule: 'daily', ageMs: 50 * HOUR, runId: 'run-a' }),
        snapshot({ instanceId: WEB, schedule: 'daily', ageMs: 26 * HOUR, runId: 'run-b' }),
        snapshot({ instanceId: WEB, schedule: 'weekly', ageMs: 26 * HOUR, runId: 'run-b' }),
        snapshot({
          instanceId: WEB,
          schedule: 'daily',
          ageMs: 2 * HOUR,
          runId: 'run-c',
          state: 'pending',
        }),
        snapshot({
          instanceId: WEB,
          schedule: 'daily',
          ageMs: 3 * HOUR,
          runId: 'run-d',
          state: 'error',
        }),
        snapshot({
          instanceId: WEB,
          schedule: 'daily',
          ageMs: 1 * HOUR,
          runId: 'run-e',
          tags: { [KEYS.deployment]: 'staging' },
        }),
        snapshot({ instanceId: DB, schedule: 'daily', ageMs: 1 * HOUR, runId: 'run-f' }),
      ];

      // Act
      const result = report({ instances: [instance(WEB, daily)], snapshots });

      // Assess
      expect(only(result.instances).recoveryPoints).toBe(2);
    });

    it('are none for an instance without completed snapshots', () => {
      // Prepare
      const snapshots = [
        snapshot({ instanceId: WEB, schedule: 'daily', ageMs: HOUR, state: 'pending' }),
      ];

      // Act
      const result = report({ instances: [instance(WEB, daily)], snapshots });

      // Assess
      expect(only(result.instances).recoveryPoints).toBe(0);
    });
  });

  describe('the instances never backed up', () => {
    it('are the opted-in instances with neither a completed snapshot nor an available AMI', () => {
      // Prepare
      const instances = [
        instance(WEB, { [KEYS.backup]: 'daily', Name: 'web-1' }),
        instance(DB, { [KEYS.backup]: 'daily,weekly', Name: 'db-1' }),
      ];
      const snapshots = [
        snapshot({ instanceId: WEB, schedule: 'daily', ageMs: HOUR }),
        snapshot({ instanceId: DB, schedule: 'daily', ageMs: HOUR, state: 'pending' }),
        snapshot({ instanceId: DB, schedule: 'daily', ageMs: 2 * HOUR, state: 'error' }),
      ];
      const images = [
        image({
          imageId: 'ami-0000000000000pend',
          instanceId: DB,
          schedule: 'weekly',
          ageMs: HOUR,
          state: 'pending',
        }),
      ];

      // Act
      const result = report({ instances, snapshots, images });

      // Assess
      expect(result.instances.map((i) => [i.instanceId, i.neverBackedUp])).toEqual([
        [WEB, false],
        [DB, true],
      ]);
      expect(result.neverBackedUp).toEqual([{ instanceId: DB, name: 'db-1' }]);
      expect(result.instances[1]?.newestSnapshot).toBeUndefined();
      expect(result.instances[1]?.newestImage).toBeUndefined();
      expect(result.instances[1]?.rpo.map((r) => r.met)).toEqual([false, false]);
      expect(result.totals.neverBackedUp).toBe(1);
    });

    it('include an instance backed up only by another deployment or by hand', () => {
      // Prepare
      const snapshots = [
        snapshot({
          instanceId: WEB,
          schedule: 'daily',
          ageMs: HOUR,
          tags: { [KEYS.deployment]: 'staging' },
        }),
        snapshot({
          instanceId: WEB,
          schedule: 'daily',
          ageMs: HOUR,
          tags: { [KEYS.managed]: 'false' },
        }),
      ];

      // Act
      const result = report({ instances: [instance(WEB, daily)], snapshots });

      // Assess
      expect(result.neverBackedUp).toEqual([{ instanceId: WEB, name: 'web-1' }]);
    });
  });

  describe('the orphaned histories', () => {
    it('are the managed snapshots of instances no longer opted in or alive, counted and summed', () => {
      // Prepare
      const snapshots = [
        snapshot({ instanceId: WEB, schedule: 'daily', ageMs: HOUR }),
        snapshot({
          instanceId: GONE_TOO,
          schedule: 'weekly',
          ageMs: 400 * HOUR,
          sizeGiB: 100,
          tags: { Name: 'old-db' },
        }),
        snapshot({
          instanceId: GONE,
          schedule: 'daily',
          ageMs: 80 * HOUR,
          sizeGiB: 8,
          tags: { Name: 'old-web' },
        }),
        snapshot({
          instanceId: GONE,
          schedule: 'daily',
          ageMs: 30 * HOUR,
          sizeGiB: 20,
          tags: { Name: 'old-web' },
          createdAt: '2026-11-22T03:00:00Z',
        }),
        snapshot({
          instanceId: GONE,
          schedule: 'weekly',
          ageMs: 60 * HOUR,
          sizeGiB: 30,
          tags: { Name: 'old-web' },
        }),
      ];

      // Act
      const result = report({ instances: [instance(WEB, daily)], snapshots });

      // Assess
      expect(result.orphaned).toEqual([
        {
          instanceId: GONE,
          name: 'old-web',
          snapshots: 3,
          sizeGiB: 58,
          newestCreatedAt: '2026-11-22T03:00:00.000Z',
        },
        {
          instanceId: GONE_TOO,
          name: 'old-db',
          snapshots: 1,
          sizeGiB: 100,
          newestCreatedAt: ago(400 * HOUR).toISOString(),
        },
      ]);
    });

    it('leave out a live instance, even one outside the schedule asked for', () => {
      // Prepare
      const snapshots = [snapshot({ instanceId: WEB, schedule: 'daily', ageMs: HOUR })];

      // Act
      const result = report({ instances: [instance(WEB, daily)], snapshots, schedule: 'weekly' });

      // Assess
      expect(result.instances).toEqual([]);
      expect(result.orphaned).toEqual([]);
    });

    it("never label a live instance's volume orphaned, whatever instance its snapshots' tag names", () => {
      // Prepare: GONE's old volume now hangs on web-1; another of its volumes on a live,
      // untagged instance; a third volume is gone with it.
      const moved = {
        ...snapshot({ instanceId: GONE, schedule: 'daily', ageMs: 30 * HOUR }),
        volumeId: 'vol-0moved00000000001',
      };
      const elsewhere = {
        ...snapshot({ instanceId: GONE, schedule: 'daily', ageMs: 30 * HOUR }),
        volumeId: 'vol-0elsewhere000001',
      };
      const gone = {
        ...snapshot({ instanceId: GONE, schedule: 'daily', ageMs: 30 * HOUR, sizeGiB: 5 }),
        volumeId: 'vol-0gone0000000001',
      };
      const web = {
        ...instance(WEB, daily),
        volumes: [{ volumeId: 'vol-0moved00000000001', deviceName: '/dev/sdf' }],
      };

      // Act
      const result = report({
        instances: [web],
        snapshots: [moved, elsewhere, gone],
        otherLiveVolumeIds: new Set(['vol-0elsewhere000001']),
      });
      const allLive = report({ instances: [web], snapshots: [moved] });

      // Assess
      expect(result.orphaned).toEqual([
        expect.objectContaining({ instanceId: GONE, snapshots: 1, sizeGiB: 5 }),
      ]);
      expect(allLive.orphaned).toEqual([]);
    });

    it('property: no orphaned history counts a snapshot of a live volume', () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              volume: fc.integer({ min: 0, max: 5 }),
              owner: fc.constantFrom(GONE, GONE_TOO, WEB),
            }),
            { maxLength: 20 },
          ),
          fc.subarray([0, 1, 2, 3, 4, 5]),
          (specs, attached) => {
            const volumeId = (n: number) => `vol-0${String(n).padStart(16, '0')}`;
            const snapshots = specs.map((spec) => ({
              ...snapshot({ instanceId: spec.owner, schedule: 'daily', ageMs: HOUR }),
              volumeId: volumeId(spec.volume),
            }));
            const web = {
              ...instance(WEB, daily),
              volumes: attached.map((n) => ({ volumeId: volumeId(n), deviceName: '/dev/sdf' })),
            };
            const result = report({ instances: [web], snapshots });
            const counted = result.orphaned.reduce((n, o) => n + o.snapshots, 0);
            const expected = specs.filter(
              (s) => s.owner !== WEB && !attached.includes(s.volume),
            ).length;
            expect(counted).toBe(expected);
          },
        ),
      );
    });

    it("leave out other deployments' and unmanaged snapshots", () => {
      // Prepare
      const snapshots = [
        snapshot({
          instanceId: GONE,
          schedule: 'daily',
          ageMs: HOUR,
          tags: { [KEYS.deployment]: 'staging' },
        }),
        snapshot({
          instanceId: GONE,
          schedule: 'daily',
          ageMs: HOUR,
          tags: { [KEYS.managed]: 'false' },
        }),
      ];

      // Act
      const result = report({ snapshots });

      // Assess
      expect(result.orphaned).toEqual([]);
      expect(result.totals.managedSnapshots).toBe(0);
    });
  });

  describe("only this deployment's managed resources", () => {
    it('count: newer snapshots and AMIs of another deployment or unmanaged ones are ignored', () => {
      // Prepare
      const snapshots = [
        snapshot({ id: 'snap-ours', instanceId: WEB, schedule: 'daily', ageMs: 30 * HOUR }),
        snapshot({
          id: 'snap-staging',
          instanceId: WEB,
          schedule: 'daily',
          ageMs: HOUR,
          tags: { [KEYS.deployment]: 'staging' },
        }),
        snapshot({
          id: 'snap-by-hand',
          instanceId: WEB,
          schedule: 'daily',
          ageMs: 2 * HOUR,
          tags: { [KEYS.managed]: 'false' },
        }),
        {
          ...snapshot({ id: 'snap-untagged', instanceId: WEB, schedule: 'daily', ageMs: 3 * HOUR }),
          tags: { [KEYS.instanceId]: WEB, [KEYS.schedule]: 'daily' },
        },
      ];
      const images = [
        image({
          imageId: 'ami-0000000000000ours',
          instanceId: WEB,
          schedule: 'weekly',
          ageMs: 200 * HOUR,
        }),
        image({
          imageId: 'ami-00000000000staging',
          instanceId: WEB,
          schedule: 'weekly',
          ageMs: HOUR,
          tags: { [KEYS.deployment]: 'staging' },
        }),
      ];

      // Act
      const result = report({
        instances: [instance(WEB, { [KEYS.backup]: 'daily', [KEYS.ami]: 'weekly' })],
        snapshots,
        images,
      });

      // Assess
      const recovery = only(result.instances);
      expect(recovery.newestSnapshot?.snapshotId).toBe('snap-ours');
      expect(recovery.newestImage?.imageId).toBe('ami-0000000000000ours');
      expect(recovery.recoveryPoints).toBe(1);
      expect(recovery.images).toBe(1);
      expect(recovery.rpo.map((r) => r.met)).toEqual([false, false]);
      expect(result.totals).toMatchObject({ managedSnapshots: 1, managedImages: 1 });
    });
  });

  describe('the schedule filter', () => {
    it('keeps only the instances, objectives and orphans of that schedule', () => {
      // Prepare
      const instances = [
        instance(WEB, { [KEYS.backup]: 'daily,weekly', Name: 'web-1' }),
        instance(DB, { [KEYS.backup]: 'daily', Name: 'db-1' }),
      ];
      const snapshots = [
        snapshot({ instanceId: WEB, schedule: 'daily', ageMs: HOUR }),
        snapshot({ instanceId: WEB, schedule: 'weekly', ageMs: 200 * HOUR }),
        snapshot({ instanceId: DB, schedule: 'daily', ageMs: HOUR }),
        snapshot({ instanceId: GONE, schedule: 'daily', ageMs: HOUR }),
        snapshot({ instanceId: GONE_TOO, schedule: 'weekly', ageMs: 300 * HOUR, sizeGiB: 4 }),
      ];

      // Act
      const result = report({ instances, snapshots, schedule: 'weekly' });

      // Assess
      expect(result.schedule).toBe('weekly');
      expect(result.instances.map((i) => i.instanceId)).toEqual([WEB]);
      expect(only(result.instances).schedules).toEqual(['weekly']);
      expect(only(result.instances).rpo).toEqual([
        { schedule: 'weekly', intervalHours: 168, newestAgeHours: 200, met: false },
      ]);
      expect(result.rpoMissed).toEqual([{ instanceId: WEB, name: 'web-1', schedule: 'weekly' }]);
      expect(result.orphaned.map((o) => o.instanceId)).toEqual([GONE_TOO]);
      expect(result.totals).toMatchObject({ instances: 1, rpoMet: 0, rpoMissed: 1 });
    });

    it('is absent from a report of every schedule', () => {
      // Act
      const result = report({});

      // Assess
      expect(result).not.toHaveProperty('schedule');
    });
  });

  describe('the totals', () => {
    it('add up the fleet', () => {
      // Prepare
      const instances = [
        instance(WEB, { [KEYS.backup]: 'daily,weekly', Name: 'web-1' }),
        instance(DB, { [KEYS.backup]: 'daily', [KEYS.ami]: 'monthly', Name: 'db-1' }),
        instance('i-0eeeeeeeeeeeeeee5', { [KEYS.backup]: 'weekly' }),
        instance('i-0fffffffffffffff6', { [KEYS.backup]: 'false' }),
        instance('i-0999999999999999f', { Name: 'not-opted-in' }),
      ];
      const snapshots = [
        snapshot({ instanceId: WEB, schedule: 'daily', ageMs: 3 * HOUR }),
        snapshot({ instanceId: WEB, schedule: 'weekly', ageMs: 20 * HOUR }),
        snapshot({ instanceId: DB, schedule: 'daily', ageMs: 48 * HOUR }),
        snapshot({ instanceId: DB, schedule: 'daily', ageMs: HOUR, state: 'pending' }),
        snapshot({ instanceId: GONE, schedule: 'daily', ageMs: 5 * HOUR }),
        snapshot({
          instanceId: GONE,
          schedule: 'daily',
          ageMs: 5 * HOUR,
          tags: { [KEYS.deployment]: 'staging' },
        }),
      ];
      const images = [
        image({
          imageId: 'ami-00000000000000db1',
          instanceId: DB,
          schedule: 'monthly',
          ageMs: 100 * HOUR,
        }),
        image({
          imageId: 'ami-0000000000000stag',
          instanceId: DB,
          schedule: 'monthly',
          ageMs: HOUR,
          tags: { [KEYS.managed]: 'false' },
        }),
      ];

      // Act
      const result = report({ instances, snapshots, images });

      // Assess
      expect(result.generatedAt).toBe('2026-11-23T10:00:00.000Z');
      expect(result.instances.map((i) => i.instanceId)).toEqual([WEB, DB, 'i-0eeeeeeeeeeeeeee5']);
      expect(result.totals).toEqual({
        instances: 3,
        rpoMet: 3,
        rpoMissed: 2,
        neverBackedUp: 1,
        managedSnapshots: 5,
        managedImages: 1,
      });
      expect(result.rpoMissed).toEqual([
        { instanceId: DB, name: 'db-1', schedule: 'daily' },
        { instanceId: 'i-0eeeeeeeeeeeeeee5', name: undefined, schedule: 'weekly' },
      ]);
      expect(result.orphaned.map((o) => [o.instanceId, o.snapshots])).toEqual([[GONE, 1]]);
    });
  });

  describe('properties', () => {
    const scheduleNames = ['daily', 'weekly', 'monthly'] as const;
    const subset = fc.subarray([...scheduleNames]);
    const instanceIds = [WEB, DB, GONE, GONE_TOO];

    it('counts rpoMet plus rpoMissed as the number of (instance, schedule) pairs', () => {
      const fleet = fc.tuple(
        fc.array(fc.record({ backup: subset, ami: subset }), { minLength: 0, maxLength: 4 }),
        fc.array(
          fc.record({
            instance: fc.constantFrom(...instanceIds),
            schedule: fc.constantFrom(...scheduleNames),
            ageMs: fc.integer({ min: 0, max: 2_000 * HOUR }),
            state: fc.constantFrom('completed', 'pending', 'error'),
            deployment: fc.constantFrom(DEPLOYMENT, 'staging'),
            runId: fc.constantFrom('run-1', 'run-2', 'run-3'),
          }),
          { maxLength: 20 },
        ),
        fc.array(
          fc.record({
            instance: fc.constantFrom(...instanceIds),
            schedule: fc.constantFrom(...scheduleNames),
            ageMs: fc.integer({ min: 0, max: 2_000 * HOUR }),
            state: fc.constantFrom('available', 'pending', 'failed'),
          }),
          { maxLength: 6 },
        ),
        fc.option(fc.constantFrom(...scheduleNames), { nil: undefined }),
      );
      fc.assert(
        fc.property(fleet, ([specs, snapshotSpecs, imageSpecs, filter]) => {
          // Prepare
          const instances = specs.map((spec, n) =>
            instance(instanceIds[n] as string, {
              ...(spec.backup.length > 0 ? { [KEYS.backup]: spec.backup.join(',') } : {}),
              ...(spec.ami.length > 0 ? { [KEYS.ami]: spec.ami.join(',') } : {}),
            }),
          );
          const snapshots = snapshotSpecs.map((s) =>
            snapshot({
              instanceId: s.instance,
              schedule: s.schedule,
              ageMs: s.ageMs,
              state: s.state,
              runId: s.runId,
              tags: { [KEYS.deployment]: s.deployment },
            }),
          );
          const images = imageSpecs.map((s, n) =>
            image({
              imageId: `ami-${String(n).padStart(17, '0')}`,
              instanceId: s.instance,
              schedule: s.schedule,
              ageMs: s.ageMs,
              state: s.state,
            }),
          );
          const pairs = specs
            .map(
              (spec) =>
                new Set([...spec.backup, ...spec.ami].filter((s) => !filter || s === filter)).size,
            )
            .reduce((n, size) => n + size, 0);

          // Act
          const result = report({ instances, snapshots, images, schedule: filter });

          // Assess
          expect(result.totals.rpoMet + result.totals.rpoMissed).toBe(pairs);
          expect(result.rpoMissed).toHaveLength(result.totals.rpoMissed);
          expect(result.totals.neverBackedUp).toBe(result.neverBackedUp.length);
        }),
        { numRuns: 300 },
      );
    });
  });
});
