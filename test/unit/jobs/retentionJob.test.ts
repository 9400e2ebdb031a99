import { describe, expect, it, vi } from 'vitest';
import {
  AwsCallError,
  SnapshotInUseError,
  SnapshotNotFoundError,
} from '../../../lib/aws/errors.ts';
import { RateLimiter } from '../../../lib/aws/rateLimiter.ts';
import type { InstanceFacts } from '../../../lib/domain/backupPlan.ts';
import { InvalidEventError } from '../../../lib/domain/errors.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { TagMap } from '../../../lib/domain/tagPolicy.ts';
import { parseRetentionEvent } from '../../../lib/jobs/events.ts';
import { HistoryPipeline } from '../../../lib/jobs/historyPipeline.ts';
import type { CreationLedger } from '../../../lib/jobs/ownership.ts';
import type { ActionJournal, ActionRecord } from '../../../lib/jobs/ports.ts';
import {
  type RetentionJobDependencies,
  type RetentionJobInput,
  type RetentionReport,
  runRetentionJob,
  type VolumeRetentionResult,
} from '../../../lib/jobs/retentionJob.ts';
import { RecordingJournal } from '../../support/recordingJournal.ts';
import { recordingLogger } from '../../support/recordingLogger.ts';
import { RecordingMetrics } from '../../support/recordingMetrics.ts';

const keys = tagKeys();
const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const DEPLOYMENT = 'prod';
const RUN_ID = '20261123T120000Z-r3t3nt10';
/** Nine hours after the daily backup of 2026-11-23 (03:00 UTC) ran. */
const NOW = '2026-11-23T12:00:00.000Z';
const DAY_MS = 86_400_000;
/** When the daily snapshot of the day `daysAgo` before NOW was taken. */
const dailyAt = (daysAgo: number): string =>
  new Date(Date.parse('2026-11-23T03:00:05.000Z') - daysAgo * DAY_MS)
    .toISOString()
    .replace('.000Z', 'Z');

type GatewayPort = RetentionJobDependencies['ec2'];

interface FakeEc2Options {
  readonly snapshots?: readonly SnapshotFacts[];
  readonly holders?: ReadonlyMap<string, readonly string[]>;
  readonly instances?: readonly InstanceFacts[];
  readonly volumeTags?: ReadonlyMap<string, TagMap>;
  /** Per snapshot id: what DeleteSnapshot throws. */
  readonly deleteErrors?: ReadonlyMap<string, Error>;
  readonly snapshotsError?: unknown;
  readonly holdersError?: unknown;
  /** How long each DeleteSnapshot takes, so that calls overlap. */
  readonly deleteLatencyMs?: number;
  /** Shared with the journal, to check the order of journal writes and deletions. */
  readonly events?: string[];
}

/**
 * A hand-rolled EC2 gateway: the job depends on our gateway interface, not on the SDK.
 * It streams what it is given (it does not filter: a snapshot that slipped through the
 * server-side filters reaches the job), and records every call.
 */
class FakeEc2 implements GatewayPort {
  public readonly snapshotTagRequests: Record<string, string>[] = [];
  public readonly instanceTagKeys: string[] = [];
  public readonly volumeTagKeys: string[] = [];
  public readonly deleted: string[] = [];
  public inFlight = 0;
  public maxInFlight = 0;

  readonly #options: FakeEc2Options;

  public constructor(options: FakeEc2Options = {}) {
    this.#options = options;
  }

  public async *listSnapshotsTagged(
    tags: Readonly<Record<string, string>>,
  ): AsyncGenerator<SnapshotFacts> {
    this.snapshotTagRequests.push({ ...tags });
    for (const snapshot of this.#options.snapshots ?? []) yield snapshot;
    if (this.#options.snapshotsError !== undefined) throw this.#options.snapshotsError;
  }

  public async snapshotHolders(): Promise<Map<string, string[]>> {
    if (this.#options.holdersError !== undefined) throw this.#options.holdersError;
    return new Map([...(this.#options.holders ?? [])].map(([id, amis]) => [id, [...amis]]));
  }

  public async *listInstancesWithTagKey(tagKey: string): AsyncGenerator<InstanceFacts> {
    this.instanceTagKeys.push(tagKey);
    for (const instance of this.#options.instances ?? []) yield instance;
  }

  public async volumeTagsWithKey(tagKey: string): Promise<Map<string, TagMap>> {
    this.volumeTagKeys.push(tagKey);
    return new Map(this.#options.volumeTags ?? []);
  }

  public async deleteSnapshot(snapshotId: string): Promise<void> {
    this.#options.events?.push(`delete ${snapshotId}`);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, this.#options.deleteLatencyMs ?? 0));
      const error = this.#options.deleteErrors?.get(snapshotId);
      if (error) throw error;
      this.deleted.push(snapshotId);
    } finally {
      this.inFlight -= 1;
    }
  }
}

/** The tags snapkeeper writes on a daily snapshot of this deployment. */
function ourTags(instanceId: string, createdAt: string, extra: TagMap = {}): TagMap {
  return {
    [keys.managed]: 'true',
    [keys.deployment]: DEPLOYMENT,
    [keys.schedule]: 'daily',
    [keys.instanceId]: instanceId,
    [keys.createdAt]: createdAt,
    Name: 'web-1',
    ...extra,
  };
}

/**
 * One snapshot. EC2's start time is always NOW (as moto stamps it): the age comes
 * from the `created-at` tag only.
 */
function snapshot(
  snapshotId: string,
  volumeId: string,
  tags: TagMap,
  overrides: Partial<SnapshotFacts> = {},
): SnapshotFacts {
  return {
    snapshotId,
    volumeId,
    state: 'completed',
    startTime: new Date(NOW),
    tags,
    sizeGiB: 8,
    ...overrides,
  };
}

/**
 * The daily history of one volume: one snapshot per `daysAgo`, newest first, with ids
 * such as `snap-data-d0` (today's) for `vol-data`.
 */
function history(
  volumeId: string,
  instanceId: string,
  daysAgo: readonly number[],
  overrides: Partial<SnapshotFacts> = {},
): SnapshotFacts[] {
  return daysAgo.map((d) =>
    snapshot(
      `${volumeId.replace(/^vol-/, 'snap-')}-d${d}`,
      volumeId,
      ourTags(instanceId, dailyAt(d)),
      overrides,
    ),
  );
}

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

/** i-web: root on /dev/xvda, data on /dev/sdf, opted into daily. */
function webInstance(tags: TagMap = {}, volumes?: InstanceFacts['volumes']): InstanceFacts {
  return {
    instanceId: 'i-web',
    state: 'running',
    rootDeviceName: '/dev/xvda',
    tags: { [keys.backup]: 'daily', Name: 'web-1', ...tags },
    volumes: volumes ?? [
      { volumeId: 'vol-root', deviceName: '/dev/xvda' },
      { volumeId: 'vol-data', deviceName: '/dev/sdf' },
    ],
  };
}

function input(overrides: Partial<RetentionJobInput> = {}): RetentionJobInput {
  return { schedule: 'daily', dryRun: false, trigger: 'schedule', ...overrides };
}

function dependencies(
  ec2: FakeEc2,
  overrides: Partial<Omit<RetentionJobDependencies, 'config'>> & {
    readonly config?: Partial<RetentionJobDependencies['config']>;
  } = {},
): RetentionJobDependencies {
  const { config, ...rest } = overrides;
  return {
    ec2,
    config: {
      deployment: DEPLOYMENT,
      keys,
      catalog,
      maxDeletions: { kind: 'count', value: 100 },
      manualRetainDays: 30,
      deleteConcurrency: 5,
      ...config,
    },
    clock: () => new Date(NOW),
    runId: RUN_ID,
    logger: recordingLogger(),
    journal: new RecordingJournal(),
    // The ownership rules have their own tests (issue 15); these judge by the tags.
    ledger: undefined,
    ...rest,
  };
}

function volumeOf(report: RetentionReport, volumeId: string): VolumeRetentionResult {
  const found = report.volumes.find((v) => v.volumeId === volumeId);
  if (!found) throw new Error(`no result for ${volumeId} in the report`);
  return found;
}

function deletedIds(volume: VolumeRetentionResult): string[] {
  return volume.deletions.map((d) => d.snapshotId);
}

describe('Function: runRetentionJob', () => {
  describe('Scope: only our own snapshots', () => {
    it("asks EC2 only for this deployment's managed snapshots of the schedule, the opted-in fleet and skipped volumes", async () => {
      // Prepare
      const ec2 = new FakeEc2();

      // Act
      await runRetentionJob(input({ schedule: 'Daily' }), dependencies(ec2));

      // Assess
      expect(ec2.snapshotTagRequests).toEqual([
        {
          'snapkeeper:managed': 'true',
          'snapkeeper:deployment': 'prod',
          'snapkeeper:schedule': 'daily',
        },
      ]);
      expect(ec2.instanceTagKeys).toEqual(['snapkeeper:backup']);
      expect(ec2.volumeTagKeys).toEqual(['snapkeeper:skip']);
    });

    it('never deletes a snapshot that slipped through without our tags, however old', async () => {
      // Prepare: our 4 daily snapshots, retain 2, and old foreign snapshots of the same volume.
      const foreign = [
        snapshot(
          'snap-staging',
          'vol-data',
          ourTags('i-web', dailyAt(30), { [keys.deployment]: 'staging' }),
        ),
        snapshot('snap-no-deployment', 'vol-data', {
          [keys.managed]: 'true',
          [keys.createdAt]: dailyAt(31),
        }),
        snapshot('snap-by-hand', 'vol-data', {
          Name: 'before upgrade',
          [keys.createdAt]: dailyAt(32),
        }),
        snapshot('snap-dlm', 'vol-data', {
          'aws:dlm:lifecycle-policy-id': 'policy-0abc',
          [keys.createdAt]: dailyAt(33),
        }),
        snapshot(
          'snap-managed-false',
          'vol-data',
          ourTags('i-web', dailyAt(34), { [keys.managed]: 'false' }),
        ),
      ];
      const ec2 = new FakeEc2({
        snapshots: [...history('vol-data', 'i-web', range(4)), ...foreign],
        instances: [webInstance({ [keys.retain]: '2' })],
      });

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2));

      // Assess
      expect(ec2.deleted.sort()).toEqual(['snap-data-d2', 'snap-data-d3']);
      const volume = volumeOf(report, 'vol-data');
      expect(deletedIds(volume)).toEqual(['snap-data-d2', 'snap-data-d3']);
      expect(volume.kept).toEqual([
        { snapshotId: 'snap-data-d0', reason: 'kept: newest 1 of 2' },
        { snapshotId: 'snap-data-d1', reason: 'kept: newest 2 of 2' },
        ...foreign.map((s) => ({
          snapshotId: s.snapshotId,
          reason: 'kept: not created by this deployment',
        })),
      ]);
      expect(report.status).toBe('succeeded');
    });
  });

  describe('Rule: count per volume', () => {
    it("keeps the newest N completed snapshots, N from the instance's snapkeeper:retain number", async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(5)),
        instances: [webInstance({ [keys.retain]: '3' })],
      });

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2));

      // Assess
      expect(report.volumes).toEqual([
        {
          volumeId: 'vol-data',
          instanceId: 'i-web',
          name: 'web-1',
          orphan: false,
          rule: { count: 3 },
          kept: [
            { snapshotId: 'snap-data-d0', reason: 'kept: newest 1 of 3' },
            { snapshotId: 'snap-data-d1', reason: 'kept: newest 2 of 3' },
            { snapshotId: 'snap-data-d2', reason: 'kept: newest 3 of 3' },
          ],
          deletions: [
            {
              snapshotId: 'snap-data-d3',
              reason: 'beyond count 3',
              sizeGiB: 8,
              outcome: 'deleted',
            },
            {
              snapshotId: 'snap-data-d4',
              reason: 'beyond count 3',
              sizeGiB: 8,
              outcome: 'deleted',
            },
          ],
          blocked: [],
        },
      ]);
      expect(ec2.deleted.sort()).toEqual(['snap-data-d3', 'snap-data-d4']);
      expect(report).toMatchObject({
        runId: RUN_ID,
        job: 'retention',
        deployment: 'prod',
        schedule: 'daily',
        trigger: 'schedule',
        dryRun: false,
        status: 'succeeded',
        startedAt: NOW,
        endedAt: NOW,
        counts: {
          volumes: 1,
          snapshotsInScope: 5,
          kept: 3,
          planned: 2,
          deleted: 2,
          skipped: 0,
          blocked: 0,
          failed: 0,
          blockedGiB: 0,
        },
        cap: { limit: 100, planned: 2, exceeded: false },
      });
      expect(report.error).toBeUndefined();
    });

    it('takes the count for this schedule from the per-schedule form of snapkeeper:retain', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(4)),
        instances: [webInstance({ [keys.retain]: 'weekly=5,daily=2' })],
      });

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2));

      // Assess
      const volume = volumeOf(report, 'vol-data');
      expect(volume.rule).toEqual({ count: 2 });
      expect(deletedIds(volume)).toEqual(['snap-data-d2', 'snap-data-d3']);
      expect(ec2.deleted.sort()).toEqual(['snap-data-d2', 'snap-data-d3']);
    });

    it("falls back to the schedule's default count (daily: 7) when the instance sets none, or only for other schedules", async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: [
          ...history('vol-data', 'i-web', range(9)),
          ...history('vol-db', 'i-db', range(9)),
        ],
        instances: [
          webInstance(),
          {
            instanceId: 'i-db',
            state: 'running',
            rootDeviceName: '/dev/xvda',
            tags: { [keys.backup]: 'daily,weekly', [keys.retain]: 'weekly=2' },
            volumes: [{ volumeId: 'vol-db', deviceName: '/dev/sdf' }],
          },
        ],
      });

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2));

      // Assess
      for (const volumeId of ['vol-data', 'vol-db']) {
        const volume = volumeOf(report, volumeId);
        expect(volume.rule).toEqual({ count: 7 });
        expect(volume.kept).toHaveLength(7);
        expect(volume.deletions.map((d) => [d.snapshotId, d.reason])).toEqual([
          [`${volumeId.replace('vol-', 'snap-')}-d7`, 'beyond count 7'],
          [`${volumeId.replace('vol-', 'snap-')}-d8`, 'beyond count 7'],
        ]);
      }
      expect(ec2.deleted).toHaveLength(4);
    });
  });

  describe('Mode: dry run', () => {
    it("deletes nothing, journals nothing, and reports each deletion as 'planned'", async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(5)),
        instances: [webInstance({ [keys.retain]: '3' })],
      });
      const journal = new RecordingJournal();

      // Act
      const report = await runRetentionJob(input({ dryRun: true }), dependencies(ec2, { journal }));

      // Assess
      expect(ec2.deleted).toEqual([]);
      expect(ec2.maxInFlight).toBe(0);
      expect(journal.records).toEqual([]);
      expect(volumeOf(report, 'vol-data').deletions).toEqual([
        { snapshotId: 'snap-data-d3', reason: 'beyond count 3', sizeGiB: 8, outcome: 'planned' },
        { snapshotId: 'snap-data-d4', reason: 'beyond count 3', sizeGiB: 8, outcome: 'planned' },
      ]);
      expect(report.dryRun).toBe(true);
      expect(report.status).toBe('succeeded');
      expect(report.counts).toMatchObject({ planned: 2, deleted: 0, skipped: 0, failed: 0 });
    });
  });

  describe('Deadline: no deletion starts below the safety margin', () => {
    it("defers every deletion when the invocation is almost out of time, and ends 'incomplete' with what is left", async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(5)),
        instances: [webInstance({ [keys.retain]: '3' })],
      });

      // Act
      const report = await runRetentionJob(
        input({ remainingMs: () => 30_000, safetyMarginMs: 60_000 }),
        dependencies(ec2),
      );

      // Assess
      expect(ec2.deleted).toEqual([]);
      expect(report.status).toBe('incomplete');
      expect(report.remaining).toEqual(['snap-data-d3', 'snap-data-d4']);
      expect(volumeOf(report, 'vol-data').deletions.map((d) => d.outcome)).toEqual([
        'deferred',
        'deferred',
      ]);
    });

    it('deletes as usual with time to spare', async () => {
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(5)),
        instances: [webInstance({ [keys.retain]: '3' })],
      });

      const report = await runRetentionJob(
        input({ remainingMs: () => 600_000, safetyMarginMs: 60_000 }),
        dependencies(ec2),
      );

      expect(ec2.deleted.sort()).toEqual(['snap-data-d3', 'snap-data-d4']);
      expect(report.status).toBe('succeeded');
    });
  });

  describe('Journal: every deletion recorded before and after', () => {
    it("writes 'before', deletes, then writes 'after' with outcome done, one snapshot after another", async () => {
      // Prepare
      const events: string[] = [];
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(3)),
        instances: [webInstance({ [keys.retain]: '1' })],
        events,
      });
      const journal = new RecordingJournal({ events });

      // Act
      await runRetentionJob(
        input(),
        dependencies(ec2, { journal, config: { deleteConcurrency: 1 } }),
      );

      // Assess
      expect(events).toEqual([
        'before snap-data-d1',
        'delete snap-data-d1',
        'after snap-data-d1 done',
        'before snap-data-d2',
        'delete snap-data-d2',
        'after snap-data-d2 done',
      ]);
      const common = {
        runId: RUN_ID,
        job: 'retention',
        action: 'delete-snapshot',
        resourceId: 'snap-data-d1',
        reason: 'beyond count 1',
        details: { volumeId: 'vol-data', instanceId: 'i-web', sizeGiB: 8 },
      };
      expect(journal.records[0]).toEqual({ ...common, phase: 'before' });
      expect(journal.records[1]).toEqual({ ...common, phase: 'after', outcome: 'done' });
    });

    it("keeps each snapshot's before → delete → after order when deletions run in parallel", async () => {
      // Prepare
      const events: string[] = [];
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(6)),
        instances: [webInstance({ [keys.retain]: '1' })],
        events,
        deleteLatencyMs: 5,
      });
      const journal = new RecordingJournal({ events });

      // Act
      await runRetentionJob(
        input(),
        dependencies(ec2, { journal, config: { deleteConcurrency: 3 } }),
      );

      // Assess
      for (const id of range(5, 1).map((d) => `snap-data-d${d}`)) {
        const own = events.filter((e) => e.endsWith(id) || e.includes(`${id} `));
        expect(own).toEqual([`before ${id}`, `delete ${id}`, `after ${id} done`]);
      }
    });

    it('does not delete a snapshot whose "before" record cannot be written, and fails it with JournalUnavailable', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(3)),
        instances: [webInstance({ [keys.retain]: '1' })],
      });
      const journal = new RecordingJournal({ failBefore: ['snap-data-d1'] });

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2, { journal }));

      // Assess
      expect(ec2.deleted).toEqual(['snap-data-d2']);
      const failed = volumeOf(report, 'vol-data').deletions.find(
        (d) => d.snapshotId === 'snap-data-d1',
      );
      expect(failed).toMatchObject({ outcome: 'failed', error: { code: 'JournalUnavailable' } });
      expect(failed?.error?.message).toContain('Requested resource not found');
      expect(journal.records.filter((r) => r.resourceId === 'snap-data-d1')).toEqual([]);
      expect(report.status).toBe('partial');
      expect(report.counts).toMatchObject({ deleted: 1, failed: 1 });
    });
  });

  describe('Races at delete time', () => {
    it('skips a snapshot an image took since the plan (InUse) and one already gone (NotFound), with the reason, without failing the run', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(4)),
        instances: [webInstance({ [keys.retain]: '1' })],
        deleteErrors: new Map<string, Error>([
          ['snap-data-d1', new SnapshotInUseError('snap-data-d1')],
          ['snap-data-d2', new SnapshotNotFoundError('snap-data-d2')],
        ]),
      });
      const journal = new RecordingJournal();

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2, { journal }));

      // Assess
      expect(volumeOf(report, 'vol-data').deletions).toEqual([
        {
          snapshotId: 'snap-data-d1',
          reason:
            'beyond count 1; skipped: an image started using it after the plan (InvalidSnapshot.InUse)',
          sizeGiB: 8,
          outcome: 'skipped',
        },
        {
          snapshotId: 'snap-data-d2',
          reason:
            'beyond count 1; skipped: already deleted by someone else (InvalidSnapshot.NotFound)',
          sizeGiB: 8,
          outcome: 'skipped',
        },
        { snapshotId: 'snap-data-d3', reason: 'beyond count 1', sizeGiB: 8, outcome: 'deleted' },
      ]);
      expect(report.status).toBe('succeeded');
      expect(report.counts).toMatchObject({ deleted: 1, skipped: 2, failed: 0 });
      const after = journal.records.filter((r) => r.phase === 'after');
      expect(after.map((r) => [r.resourceId, r.outcome])).toEqual(
        expect.arrayContaining([
          ['snap-data-d1', 'skipped'],
          ['snap-data-d2', 'skipped'],
          ['snap-data-d3', 'done'],
        ]),
      );
      expect(after).toHaveLength(3);
    });

    it('fails a deletion on any other error, with its code, while the other deletions still happen', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(4)),
        instances: [webInstance({ [keys.retain]: '1' })],
        deleteErrors: new Map([
          [
            'snap-data-d2',
            new AwsCallError('DeleteSnapshot', 'UnauthorizedOperation', 'not authorized'),
          ],
        ]),
      });
      const journal = new RecordingJournal();

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2, { journal }));

      // Assess
      expect(ec2.deleted.sort()).toEqual(['snap-data-d1', 'snap-data-d3']);
      expect(volumeOf(report, 'vol-data').deletions[1]).toEqual({
        snapshotId: 'snap-data-d2',
        reason: 'beyond count 1',
        sizeGiB: 8,
        outcome: 'failed',
        error: {
          code: 'UnauthorizedOperation',
          message: 'DeleteSnapshot failed: UnauthorizedOperation: not authorized',
        },
      });
      expect(report.status).toBe('partial');
      expect(report.counts).toMatchObject({ deleted: 2, skipped: 0, failed: 1 });
      expect(
        journal.records.find((r) => r.resourceId === 'snap-data-d2' && r.phase === 'after'),
      ).toMatchObject({
        outcome: 'failed',
        error: { code: 'UnauthorizedOperation' },
      });
    });
  });

  describe('Invariant: the deletion cap', () => {
    it('deletes nothing and fails, saying how to lift it, when planned deletions exceed MAX_DELETIONS', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(4)),
        instances: [webInstance({ [keys.retain]: '1' })],
      });
      const journal = new RecordingJournal();

      // Act
      const report = await runRetentionJob(
        input(),
        dependencies(ec2, { journal, config: { maxDeletions: { kind: 'count', value: 1 } } }),
      );

      // Assess
      expect(ec2.deleted).toEqual([]);
      expect(ec2.maxInFlight).toBe(0);
      expect(journal.records).toEqual([]);
      expect(report.status).toBe('failed');
      expect(report.error?.code).toBe('DeletionCapExceeded');
      expect(report.cap).toMatchObject({ limit: 1, planned: 3, exceeded: true });
      expect(report.cap.reason).toContain('above MAX_DELETIONS=1');
      expect(report.cap.reason).toContain('{"maxDeletions": 3, "confirm": true}');
      expect(report.error?.message).toBe(report.cap.reason);
      expect(volumeOf(report, 'vol-data').deletions.map((d) => d.outcome)).toEqual([
        'planned',
        'planned',
        'planned',
      ]);
      expect(report.counts).toMatchObject({ planned: 3, deleted: 0 });
    });

    it('lets a maxDeletions override lift the cap for the run', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(4)),
        instances: [webInstance({ [keys.retain]: '1' })],
      });

      // Act
      const report = await runRetentionJob(
        input({ maxDeletions: 3, trigger: 'console' }),
        dependencies(ec2, { config: { maxDeletions: { kind: 'count', value: 1 } } }),
      );

      // Assess
      expect(ec2.deleted.sort()).toEqual(['snap-data-d1', 'snap-data-d2', 'snap-data-d3']);
      expect(report.cap).toEqual({ limit: 3, planned: 3, exceeded: false });
      expect(report.status).toBe('succeeded');
      expect(report.error).toBeUndefined();
    });

    it('holds the run to the override when the override is below the plan', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(4)),
        instances: [webInstance({ [keys.retain]: '1' })],
      });

      // Act
      const report = await runRetentionJob(
        input({ maxDeletions: 2 }),
        dependencies(ec2, { config: { maxDeletions: { kind: 'count', value: 100 } } }),
      );

      // Assess
      expect(ec2.deleted).toEqual([]);
      expect(report.status).toBe('failed');
      expect(report.cap.reason).toContain('the maxDeletions override of 2');
    });
  });

  describe('Invariant: a snapshot an image uses is never deleted', () => {
    it('reports a held snapshot as blocked, with the images and size, and never asks EC2 to delete it', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: [
          ...history('vol-data', 'i-web', range(5), { sizeGiB: 100 }),
          ...history('vol-root', 'i-web', range(3)),
        ],
        instances: [webInstance({ [keys.retain]: '2' })],
        holders: new Map([
          ['snap-data-d4', ['ami-golden', 'ami-rollback']],
          ['snap-root-d2', ['ami-golden']],
          ['snap-unrelated', ['ami-other']],
        ]),
      });

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2));

      // Assess
      expect(ec2.deleted.sort()).toEqual(['snap-data-d2', 'snap-data-d3']);
      const data = volumeOf(report, 'vol-data');
      expect(data.blocked).toEqual([
        {
          snapshotId: 'snap-data-d4',
          reason: 'beyond count 2, but held by ami-golden, ami-rollback',
          heldBy: ['ami-golden', 'ami-rollback'],
          sizeGiB: 100,
        },
      ]);
      expect(deletedIds(data)).toEqual(['snap-data-d2', 'snap-data-d3']);
      expect(volumeOf(report, 'vol-root').blocked).toEqual([
        {
          snapshotId: 'snap-root-d2',
          reason: 'beyond count 2, but held by ami-golden',
          heldBy: ['ami-golden'],
          sizeGiB: 8,
        },
      ]);
      expect(report.counts).toMatchObject({ blocked: 2, blockedGiB: 108, deleted: 2, planned: 2 });
      expect(report.status).toBe('succeeded');
    });

    it('reports a held snapshot as blocked in a dry run too', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(3)),
        instances: [webInstance({ [keys.retain]: '2' })],
        holders: new Map([['snap-data-d2', ['ami-golden']]]),
      });

      // Act
      const report = await runRetentionJob(input({ dryRun: true }), dependencies(ec2));

      // Assess
      expect(volumeOf(report, 'vol-data').deletions).toEqual([]);
      expect(volumeOf(report, 'vol-data').blocked.map((b) => b.heldBy)).toEqual([['ami-golden']]);
    });
  });

  describe('Rule: orphans', () => {
    const dataOnSdf = [
      { volumeId: 'vol-root', deviceName: '/dev/xvda' },
      { volumeId: 'vol-data', deviceName: '/dev/sdf' },
    ];

    it.each<[string, string, readonly InstanceFacts[], ReadonlyMap<string, TagMap>]>([
      ['the instance is gone', 'vol-data', [], new Map()],
      [
        'the instance no longer lists the schedule',
        'vol-data',
        [webInstance({ [keys.backup]: 'weekly' })],
        new Map(),
      ],
      ['the instance opted out', 'vol-data', [webInstance({ [keys.backup]: 'false' })], new Map()],
      [
        'the volume is no longer attached',
        'vol-data',
        [webInstance({}, [{ volumeId: 'vol-root', deviceName: '/dev/xvda' }])],
        new Map(),
      ],
      [
        'the volume is tagged snapkeeper:skip=true',
        'vol-data',
        [webInstance()],
        new Map([['vol-data', { [keys.skip]: 'true' }]]),
      ],
      [
        'the boot volume is excluded by snapkeeper:exclude-boot',
        'vol-root',
        [webInstance({ [keys.excludeBoot]: 'true' }, dataOnSdf)],
        new Map(),
      ],
    ])(
      'treats the history as an orphan when %s',
      async (_case, volumeId, instances, volumeTags) => {
        // Prepare
        const ec2 = new FakeEc2({
          snapshots: history(volumeId, 'i-web', range(3)),
          instances,
          volumeTags,
        });

        // Act
        const report = await runRetentionJob(input(), dependencies(ec2));

        // Assess
        const volume = volumeOf(report, volumeId);
        expect(volume.orphan).toBe(true);
        expect(volume.instanceId).toBe('i-web');
        // Issue 17: only a gone instance's volume is called orphaned; a live instance's
        // volume that no longer opts in is said to be no longer backed up.
        expect(volume.kept[0]).toEqual({
          snapshotId: `${volumeId.replace('vol-', 'snap-')}-d0`,
          reason:
            instances.length === 0
              ? 'kept: last completed point of an orphaned source'
              : 'kept: last completed point of a volume no longer backed up (its instance is live)',
        });
      },
    );

    it.each<[string, string, TagMap, ReadonlyMap<string, TagMap>]>([
      ['an opted-in data volume', 'vol-data', {}, new Map()],
      ['a boot volume without exclude-boot', 'vol-root', {}, new Map()],
      [
        'a data volume of an instance that excludes its boot volume',
        'vol-data',
        { [keys.excludeBoot]: 'true' },
        new Map(),
      ],
      [
        'a volume tagged snapkeeper:skip=false',
        'vol-data',
        {},
        new Map([['vol-data', { [keys.skip]: 'false' }]]),
      ],
    ])(
      'does not treat %s of a live instance as an orphan',
      async (_case, volumeId, tags, volumeTags) => {
        // Prepare
        const ec2 = new FakeEc2({
          snapshots: history(volumeId, 'i-web', range(3)),
          instances: [webInstance(tags)],
          volumeTags,
        });

        // Act
        const report = await runRetentionJob(input(), dependencies(ec2));

        // Assess
        const volume = volumeOf(report, volumeId);
        expect(volume.orphan).toBe(false);
        expect(volume.kept[0]?.reason).toBe('kept: newest 1 of 7');
      },
    );

    it('keeps the last snapshot of a stale orphan and rotates the rest, without calling it failing', async () => {
      // Prepare: the instance is gone; its last backup is 20 days old.
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(9, 20)),
        instances: [],
      });

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2));

      // Assess
      const volume = volumeOf(report, 'vol-data');
      expect(volume.failing).toBeUndefined();
      expect(volume.rule).toEqual({ count: 7 });
      expect(volume.kept).toHaveLength(7);
      expect(deletedIds(volume)).toEqual(['snap-data-d27', 'snap-data-d28']);
      expect(report.status).toBe('succeeded');
    });
  });

  describe('Invariant: nothing deleted while backups are failing', () => {
    it("deletes nothing of a live volume whose newest snapshot is older than twice the schedule's interval", async () => {
      // Prepare: daily, newest taken 3 days (and 9 hours) ago.
      const ec2 = new FakeEc2({
        snapshots: [
          ...history('vol-data', 'i-web', range(8, 3)),
          ...history('vol-root', 'i-web', range(3)),
        ],
        instances: [webInstance({ [keys.retain]: '2' })],
      });

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2));

      // Assess
      const volume = volumeOf(report, 'vol-data');
      expect(volume.deletions).toEqual([]);
      expect(volume.failing).toBe(
        "no backup started for 3 days (over twice the schedule's interval of 24 hours)",
      );
      expect(volume.kept).toHaveLength(8);
      expect(volume.kept[0]?.reason).toBe(`kept: backups failing, ${volume.failing}`);
      expect(ec2.deleted).toEqual(['snap-root-d2']);
      expect(report.status).toBe('partial');
    });

    it('deletes nothing when the newest snapshot of a live volume is in error', async () => {
      // Prepare
      const snapshots = history('vol-data', 'i-web', range(4));
      const [newest, ...rest] = snapshots;
      if (!newest) throw new Error('empty history');
      const ec2 = new FakeEc2({
        snapshots: [{ ...newest, state: 'error' }, ...rest],
        instances: [webInstance({ [keys.retain]: '1' })],
      });

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2));

      // Assess
      expect(ec2.deleted).toEqual([]);
      expect(volumeOf(report, 'vol-data').failing).toBe('newest backup snap-data-d0 is in error');
      expect(report.status).toBe('partial');
    });

    it('rotates normally when the newest snapshot is just under two days old', async () => {
      // Prepare: newest at 2026-11-21T12:00:01Z, 47 h 59 min 59 s before NOW.
      const snapshots = [
        snapshot('snap-data-new', 'vol-data', ourTags('i-web', '2026-11-21T12:00:01Z')),
        ...history('vol-data', 'i-web', range(2, 3)),
      ];
      const ec2 = new FakeEc2({ snapshots, instances: [webInstance({ [keys.retain]: '1' })] });

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2));

      // Assess
      expect(volumeOf(report, 'vol-data').failing).toBeUndefined();
      expect(ec2.deleted.sort()).toEqual(['snap-data-d3', 'snap-data-d4']);
    });

    it('treats a pending newest snapshot as normal: never deleted or counted, blocks nothing', async () => {
      // Prepare
      const snapshots = history('vol-data', 'i-web', range(4));
      const [newest, ...rest] = snapshots;
      if (!newest) throw new Error('empty history');
      const ec2 = new FakeEc2({
        snapshots: [{ ...newest, state: 'pending' }, ...rest],
        instances: [webInstance({ [keys.retain]: '2' })],
      });

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2));

      // Assess
      const volume = volumeOf(report, 'vol-data');
      expect(volume.failing).toBeUndefined();
      expect(volume.kept).toEqual([
        { snapshotId: 'snap-data-d0', reason: 'kept: pending (not counted, never deleted)' },
        { snapshotId: 'snap-data-d1', reason: 'kept: newest 1 of 2' },
        { snapshotId: 'snap-data-d2', reason: 'kept: newest 2 of 2' },
      ]);
      expect(ec2.deleted).toEqual(['snap-data-d3']);
    });
  });

  describe('Tags that cannot be read', () => {
    it.each([
      ['seven', '"seven"'],
      // The value is printed once: `snapkeeper:retain="0" is out of range`, never `"0" 0 is`.
      ['0', '"0" is out of range'],
      ['daily=7,dialy=3', '"dialy" is not a known schedule'],
    ])(
      'deletes nothing for an instance whose snapkeeper:retain is %s, and names the key and value',
      async (value, detail) => {
        // Prepare
        const ec2 = new FakeEc2({
          snapshots: [
            ...history('vol-data', 'i-web', range(9)),
            ...history('vol-db', 'i-db', range(3)),
          ],
          instances: [
            webInstance({ [keys.retain]: value }),
            {
              instanceId: 'i-db',
              state: 'running',
              tags: { [keys.backup]: 'daily', [keys.retain]: '1' },
              volumes: [{ volumeId: 'vol-db', deviceName: '/dev/sdf' }],
            },
          ],
        });

        // Act
        const report = await runRetentionJob(input(), dependencies(ec2));

        // Assess
        const volume = volumeOf(report, 'vol-data');
        expect(volume.deletions).toEqual([]);
        expect(volume.rule).toBeUndefined();
        expect(volume.kept).toHaveLength(9);
        expect(volume.problems).toHaveLength(1);
        expect(volume.problems?.[0]).toContain(`snapkeeper:retain=${JSON.stringify(value)}`);
        expect(volume.problems?.[0]).toContain(detail);
        expect(volume.kept[0]?.reason).toBe(
          `kept: retention tags cannot be read (${volume.problems?.[0]})`,
        );
        expect(ec2.deleted.sort()).toEqual(['snap-db-d1', 'snap-db-d2']);
        expect(report.status).toBe('partial');
      },
    );

    it('deletes nothing for an instance whose snapkeeper:retain-days is malformed', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(4)),
        instances: [webInstance({ [keys.retain]: '1', [keys.retainDays]: 'two weeks' })],
      });

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2));

      // Assess
      expect(ec2.deleted).toEqual([]);
      expect(volumeOf(report, 'vol-data').problems).toEqual([
        'snapkeeper:retain-days="two weeks" is not a whole number of days from 0 to 36500',
      ]);
      expect(report.status).toBe('partial');
    });
  });

  describe('Failure to read', () => {
    it('fails the run with the error code and deletes nothing when the snapshots cannot be described', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(9)),
        instances: [webInstance({ [keys.retain]: '1' })],
        snapshotsError: new AwsCallError(
          'DescribeSnapshots',
          'UnauthorizedOperation',
          'You are not authorized',
        ),
      });
      const metrics = new RecordingMetrics();

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2, { metrics }));

      // Assess
      expect(ec2.deleted).toEqual([]);
      expect(report).toEqual({
        runId: RUN_ID,
        job: 'retention',
        deployment: 'prod',
        schedule: 'daily',
        trigger: 'schedule',
        dryRun: false,
        status: 'failed',
        startedAt: NOW,
        endedAt: NOW,
        counts: {
          volumes: 0,
          snapshotsInScope: 0,
          kept: 0,
          planned: 0,
          deleted: 0,
          skipped: 0,
          blocked: 0,
          failed: 0,
          blockedGiB: 0,
        },
        cap: { limit: 0, planned: 0, exceeded: false },
        volumes: [],
        error: {
          code: 'UnauthorizedOperation',
          message: 'DescribeSnapshots failed: UnauthorizedOperation: You are not authorized',
        },
      });
      expect(metrics.counts).toEqual([['RetentionRunsFailed', 1]]);
    });

    it('fails the run when the images holding snapshots cannot be described (no guessing what is held)', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(9)),
        instances: [webInstance({ [keys.retain]: '1' })],
        holdersError: Object.assign(new Error('Rate exceeded'), { name: 'RequestLimitExceeded' }),
      });
      const logger = recordingLogger();

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2, { logger }));

      // Assess
      expect(ec2.deleted).toEqual([]);
      expect(report.status).toBe('failed');
      expect(report.error).toEqual({
        code: 'RequestLimitExceeded',
        message: 'Describe failed: RequestLimitExceeded: Rate exceeded',
      });
      expect(logger.error).toHaveBeenCalledWith(
        'retention run failed: could not read snapshots or fleet',
        expect.anything(),
      );
    });
  });

  describe('Throttling: deleteConcurrency and maxInFlight', () => {
    it('never has more than maxInFlight deletions in flight, across volumes', async () => {
      // Prepare: 3 volumes with 3 deletions each.
      const ec2 = new FakeEc2({
        snapshots: [
          ...history('vol-a', 'i-many', range(4)),
          ...history('vol-b', 'i-many', range(4)),
          ...history('vol-c', 'i-many', range(4)),
        ],
        instances: [
          {
            instanceId: 'i-many',
            state: 'running',
            tags: { [keys.backup]: 'daily', [keys.retain]: '1' },
            volumes: [
              { volumeId: 'vol-a', deviceName: '/dev/sdf' },
              { volumeId: 'vol-b', deviceName: '/dev/sdg' },
              { volumeId: 'vol-c', deviceName: '/dev/sdh' },
            ],
          },
        ],
        deleteLatencyMs: 5,
      });

      // Act
      const report = await runRetentionJob(
        input(),
        dependencies(ec2, { config: { deleteConcurrency: 1, maxInFlight: 2 } }),
      );

      // Assess
      expect(ec2.deleted).toHaveLength(9);
      expect(ec2.maxInFlight).toBe(2);
      expect(report.counts.deleted).toBe(9);
    });
  });

  describe('Pace: the bucket decides, not the slots', () => {
    /** DeleteSnapshot behind a token bucket (as the rate-limited client is), timestamped when it leaves. */
    class BucketEc2 extends FakeEc2 {
      public readonly sentAt: number[] = [];
      readonly #limiter: RateLimiter;

      public constructor(options: FakeEc2Options, limiter: RateLimiter) {
        super(options);
        this.#limiter = limiter;
      }

      public override async deleteSnapshot(snapshotId: string): Promise<void> {
        await this.#limiter.acquire('DeleteSnapshot');
        this.sentAt.push(Date.now());
        return super.deleteSnapshot(snapshotId);
      }
    }

    /** A history table that takes `latencyMs` a write. */
    class SlowJournal extends RecordingJournal {
      public constructor(private readonly latencyMs: number) {
        super();
      }

      public override async record(entry: ActionRecord): Promise<void> {
        await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
        return super.record(entry);
      }
    }

    /** Calls a second after the burst, over the refill: what the bucket allowed that was used. */
    const rateAfterBurst = (sentAt: readonly number[], burst: number, refill: number): number => {
      const after = [...sentAt].sort((a, b) => a - b).slice(burst);
      const seconds = ((after.at(-1) ?? 0) - (after[0] ?? 0)) / 1000;
      return (after.length - 1) / seconds / refill;
    };

    it('deletes at ≥ 0.95 of a raised 20/s refill with 300 ms per EC2 write and 25 ms per history write', async () => {
      // Prepare: 400 deletions; DeleteSnapshot raised to 100 then 20 a second.
      vi.useFakeTimers({ now: Date.parse(NOW) });
      try {
        const limiter = new RateLimiter({
          overrides: { DeleteSnapshot: { burst: 100, refillPerSecond: 20 } },
        });
        const ec2 = new BucketEc2(
          {
            snapshots: history('vol-data', 'i-web', range(401)),
            instances: [webInstance({ [keys.retain]: '1' })],
            deleteLatencyMs: 300,
          },
          limiter,
        );

        // Act
        const running = runRetentionJob(
          input(),
          dependencies(ec2, {
            journal: new SlowJournal(25),
            config: { maxDeletions: { kind: 'count', value: 1000 }, deleteConcurrency: 5 },
          }),
        );
        await vi.runAllTimersAsync();
        const report = await running;

        // Assess: 5 fixed slots of 350 ms would make 14 a second (0.71); the pool grows.
        expect(report.counts.deleted).toBe(400);
        expect(rateAfterBurst(ec2.sentAt, 100, 20)).toBeGreaterThanOrEqual(0.95);
        expect(ec2.maxInFlight).toBeLessThanOrEqual(64);
      } finally {
        vi.useRealTimers();
      }
    });

    it('still writes each "before" record before its deletion leaves, and every "after" record before it reports', async () => {
      // Prepare
      const events: string[] = [];
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(30)),
        instances: [webInstance({ [keys.retain]: '1' })],
        events,
        deleteLatencyMs: 2,
      });
      const journal = new HistoryPipeline({
        recordMany: async (entries) => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          for (const e of entries) events.push(`${e.phase} ${e.resourceId}`);
        },
      });

      // Act
      const report = await runRetentionJob(input(), dependencies(ec2, { journal }));

      // Assess
      expect(report.counts.deleted).toBe(29);
      for (const d of range(29, 1)) {
        const id = `snap-data-d${d}`;
        const own = events.filter((e) => e.endsWith(` ${id}`));
        expect(own).toEqual([`before ${id}`, `delete ${id}`, `after ${id}`]);
      }
      expect(journal.calls).toBeLessThan(58);
    });

    it('a run that crashed between the "before" records and the deletions is reconciled by the next run: what is still there is recorded and deleted again', async () => {
      // Prepare: the first run's table takes the "before" records, then the process dies
      // before any DeleteSnapshot leaves (the deletion throws as the crash would stop it).
      const snapshots = history('vol-data', 'i-web', range(4));
      const table: ActionRecord[] = [];
      const crashed = new FakeEc2({
        snapshots,
        instances: [webInstance({ [keys.retain]: '1' })],
        deleteErrors: new Map(
          range(3, 1).map((d) => [`snap-data-d${d}`, new Error('process killed') as Error]),
        ),
      });
      const journalOf = (records: ActionRecord[]): ActionJournal => ({
        record: async (entry) => {
          records.push(entry);
        },
      });
      await runRetentionJob(input(), dependencies(crashed, { journal: journalOf(table) }));
      const unmatched = table.filter(
        (r) =>
          r.phase === 'before' &&
          !table.some(
            (a) => a.phase === 'after' && a.resourceId === r.resourceId && a.outcome === 'done',
          ),
      );
      expect(unmatched.map((r) => r.resourceId).sort()).toEqual([
        'snap-data-d1',
        'snap-data-d2',
        'snap-data-d3',
      ]);

      // Act: the next run reads EC2, where the snapshots are still there.
      const next = new FakeEc2({ snapshots, instances: [webInstance({ [keys.retain]: '1' })] });
      const records: ActionRecord[] = [];
      const report = await runRetentionJob(
        input(),
        dependencies(next, { journal: journalOf(records), runId: 'next-run' }),
      );

      // Assess: each is recorded again before and after its deletion, by the new run.
      expect(report.counts.deleted).toBe(3);
      expect(next.deleted.sort()).toEqual(['snap-data-d1', 'snap-data-d2', 'snap-data-d3']);
      for (const id of next.deleted) {
        expect(records.filter((r) => r.resourceId === id).map((r) => r.phase)).toEqual([
          'before',
          'after',
        ]);
      }
    });
  });

  describe('Metrics', () => {
    it('counts deleted, blocked and failed deletions and the run', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        snapshots: history('vol-data', 'i-web', range(5)),
        instances: [webInstance({ [keys.retain]: '1' })],
        holders: new Map([['snap-data-d4', ['ami-1']]]),
        deleteErrors: new Map([['snap-data-d3', new AwsCallError('DeleteSnapshot', 'X', 'y')]]),
      });
      const metrics = new RecordingMetrics();

      // Act
      await runRetentionJob(input(), dependencies(ec2, { metrics }));

      // Assess
      expect(metrics.counts).toEqual([
        ['SnapshotsDeleted', 2],
        ['SnapshotDeletionsBlocked', 1],
        ['SnapshotDeletionsFailed', 1],
        ['RetentionRunsSucceeded', 1],
      ]);
    });
  });
});

describe('Function: parseRetentionEvent', () => {
  function eventError(event: unknown): InvalidEventError {
    try {
      parseRetentionEvent(event, catalog);
    } catch (error) {
      if (error instanceof InvalidEventError) return error;
      throw error;
    }
    throw new Error('expected parseRetentionEvent to throw an InvalidEventError');
  }

  it('accepts a plain retention event, without an override', () => {
    // Act
    const invocation = parseRetentionEvent({ schedule: 'Daily' }, catalog);

    // Assess
    expect(invocation).toEqual({ schedule: 'daily', scheduledTime: undefined, dryRun: false });
    expect('maxDeletions' in invocation).toBe(false);
  });

  it('rejects maxDeletions without confirm, saying that it needs "confirm": true', () => {
    // Act
    const error = eventError({ schedule: 'daily', maxDeletions: 500 });

    // Assess
    expect(error.message).toContain('"maxDeletions"');
    expect(error.message).toContain('"confirm": true');
  });

  it('rejects maxDeletions with confirm false', () => {
    // Act
    const error = eventError({ schedule: 'daily', maxDeletions: 500, confirm: false });

    // Assess
    expect(error.message).toContain('"confirm": true');
  });

  it('accepts maxDeletions without confirm in a dry run (a preview)', () => {
    // Act
    const invocation = parseRetentionEvent(
      { schedule: 'daily', maxDeletions: 500, dryRun: true },
      catalog,
    );

    // Assess
    expect(invocation).toEqual({
      schedule: 'daily',
      scheduledTime: undefined,
      dryRun: true,
      maxDeletions: 500,
    });
  });

  it('accepts maxDeletions with "confirm": true, for a real run', () => {
    // Act
    const invocation = parseRetentionEvent(
      { schedule: 'daily', maxDeletions: 500, confirm: true },
      catalog,
    );

    // Assess
    expect(invocation).toEqual({
      schedule: 'daily',
      scheduledTime: undefined,
      dryRun: false,
      maxDeletions: 500,
    });
  });

  it('accepts a zero override', () => {
    // Act
    const invocation = parseRetentionEvent(
      { schedule: 'daily', maxDeletions: 0, confirm: true },
      catalog,
    );

    // Assess
    expect(invocation.maxDeletions).toBe(0);
  });

  it.each([
    [-1, 'must be 0 or more'],
    [2.5, 'must be a whole number of deletions'],
    ['500', 'must be a whole number of deletions'],
    [1_000_001, 'must be at most 1000000'],
  ])('rejects maxDeletions %j, naming the field', (maxDeletions, reason) => {
    // Act
    const error = eventError({ schedule: 'daily', maxDeletions, confirm: true });

    // Assess
    expect(error.message).toBe(`field "maxDeletions" ${reason}`);
  });

  it('rejects a confirm that is not a boolean, naming the field', () => {
    // Act
    const error = eventError({ schedule: 'daily', maxDeletions: 5, confirm: 'yes' });

    // Assess
    expect(error.message).toBe('field "confirm" must be true or false');
  });

  it('rejects an extra field, naming it and the fields it takes', () => {
    // Act
    const error = eventError({ schedule: 'daily', maxDeletions: 5, confirm: true, force: true });

    // Assess
    expect(error.message).toBe(
      'unexpected field(s) "force"; the event takes schedule, scheduledTime, dryRun, maxDeletions and confirm only',
    );
  });
});

/** A run history whose creation records hold `recorded` (it began long before), or that fails. */
function ledger(recorded: readonly SnapshotFacts[] | Error): CreationLedger & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    ledgerStart: async () => new Date('2025-01-01T00:00:00Z'),
    recordedCreations: async (ids) => {
      asked.push(...ids);
      if (recorded instanceof Error) throw recorded;
      const byId = new Map(recorded.map((s) => [s.snapshotId, s]));
      return new Map(
        ids.flatMap((id) => {
          const s = byId.get(id);
          return s
            ? [
                [
                  id,
                  {
                    resourceId: id,
                    kind: 'snapshot' as const,
                    runId: 'r0',
                    job: 'backup',
                    at: '',
                    volumeId: s.volumeId,
                  },
                ] as const,
              ]
            : [];
        }),
      );
    },
  };
}

describe('Function: runRetentionJob, what it owns (issue 15)', () => {
  it('never deletes a disaster-recovery copy carrying the stage tags (defect 2)', async () => {
    // Prepare: 12 copies in this region (vol-ffffffff, source markers) and no snapshot of its own.
    const copies = history('vol-data', 'i-web', range(12)).map((s, i) => ({
      ...s,
      snapshotId: `snap-copy-${i}`,
      volumeId: 'vol-ffffffff',
      tags: { ...s.tags, [keys.sourceRegion]: 'us-east-1', [keys.sourceSnapshotId]: s.snapshotId },
    }));
    const ec2 = new FakeEc2({ snapshots: copies });

    // Act
    const report = await runRetentionJob(input(), dependencies(ec2, { ledger: ledger([]) }));

    // Assess
    expect(ec2.deleted).toEqual([]);
    expect(report.counts.excluded).toBe(12);
    expect(report.excluded?.every((e) => e.kind === 'copy')).toBe(true);
  });

  it('deletes only snapshots recorded as created, and reports the others by id (defect 11)', async () => {
    // Prepare: 9 days of the data volume, retain 7 (default), d8 was never recorded.
    const snaps = history('vol-data', 'i-web', range(9));
    const ec2 = new FakeEc2({ snapshots: snaps, instances: [webInstance()] });
    const recorded = snaps.filter((s) => s.snapshotId !== 'snap-data-d8');

    // Act
    const report = await runRetentionJob(input(), dependencies(ec2, { ledger: ledger(recorded) }));

    // Assess
    expect(ec2.deleted).toEqual(['snap-data-d7']);
    expect(report.excluded).toEqual([
      {
        snapshotId: 'snap-data-d8',
        kind: 'unrecorded',
        reason: expect.stringContaining('no record of creating it'),
        sizeGiB: 8,
      },
    ]);
  });

  it('deletes nothing, and reports partial, when the history cannot be read (defect 11)', async () => {
    // Prepare
    const snaps = history('vol-data', 'i-web', range(12));
    const ec2 = new FakeEc2({ snapshots: snaps, instances: [webInstance()] });
    const failing = ledger(
      Object.assign(new Error('Throughput exceeds the current capacity'), {
        name: 'ProvisionedThroughputExceededException',
      }),
    );

    // Act
    const report = await runRetentionJob(input(), dependencies(ec2, { ledger: failing }));

    // Assess
    expect(ec2.deleted).toEqual([]);
    expect(report.status).toBe('partial');
    expect(volumeOf(report, 'vol-data').problems).toEqual([
      expect.stringContaining('run history cannot be read'),
    ]);
  });
});

describe('Function: runRetentionJob, the cost ledger (issue 22)', () => {
  const GIB = 2 ** 30;
  /** 9 daily snapshots of vol-data, EC2 start times in the order taken. */
  const snapshots = history('vol-data', 'i-web', range(9)).map((s, i) => ({
    ...s,
    startTime: new Date(Date.parse(NOW) - i * DAY_MS),
    fullSizeBytes: 8 * GIB,
  }));
  function costDeps(): {
    ebs: {
      calls: string[];
      snapshotBytes(id: string): Promise<{ bytes: number }>;
      changedBytes(a: string, b: string): Promise<{ bytes: number }>;
    };
    sizes: {
      written: string[];
      recordedSizes(ids: readonly string[]): Promise<Map<string, never>>;
      recordSizes(s: readonly { snapshotId: string }[]): Promise<void>;
    };
  } {
    const calls: string[] = [];
    const written: string[] = [];
    return {
      ebs: {
        calls,
        snapshotBytes: async (id) => {
          calls.push(id);
          return { bytes: 8 * GIB };
        },
        changedBytes: async (_a, b) => {
          calls.push(b);
          return { bytes: GIB };
        },
      },
      sizes: {
        written,
        recordedSizes: async () => new Map<string, never>(),
        recordSizes: async (s) => void written.push(...s.map((x) => x.snapshotId)),
      },
    };
  }
  const priced = {
    priceTable: {
      name: 'test',
      currency: 'USD',
      standardPerGbMonth: 0.05,
      archivePerGbMonth: 0.0125,
      source: 'test',
    },
    snapshotMeasureLimit: 100,
  };

  it('measures the snapshots it keeps in a scheduled run and reports the cost of the plan', async () => {
    // Prepare
    const ec2 = new FakeEc2({ snapshots, instances: [webInstance()] });
    const { ebs, sizes } = costDeps();

    // Act
    const report = await runRetentionJob(
      input(),
      dependencies(ec2, { costs: { ebs, sizes, config: priced } }),
    );

    // Assess: 2 of 9 deleted (keep 7); the 7 kept are measured, the deleted are not.
    expect(ec2.deleted).toHaveLength(2);
    expect(sizes.written).toHaveLength(7);
    expect(ebs.calls.some((id) => ec2.deleted.includes(id))).toBe(false);
    expect(report.costs).toMatchObject({ currency: 'USD', priceTable: 'test', measured: 7 });
    expect(report.costs?.monthlyCostNow).toBeCloseTo((8 + 6) * 0.05, 6);
  });

  it('counts SnapshotsMeasured once a run, with the number measured', async () => {
    // Prepare
    const ec2 = new FakeEc2({ snapshots, instances: [webInstance()] });
    const { ebs, sizes } = costDeps();
    const metrics = new RecordingMetrics();

    // Act
    await runRetentionJob(
      input(),
      dependencies(ec2, { metrics, costs: { ebs, sizes, config: priced } }),
    );

    // Assess: one data point of 7 (a second one would double the metric's sum).
    expect(metrics.counts.filter(([name]) => name === 'SnapshotsMeasured')).toEqual([
      ['SnapshotsMeasured', 7],
    ]);
  });

  it('measures nothing in a dry run and still shows the cost effect of the plan from what is recorded', async () => {
    // Prepare
    const ec2 = new FakeEc2({ snapshots, instances: [webInstance()] });
    const { ebs, sizes } = costDeps();

    // Act
    const report = await runRetentionJob(
      input({ dryRun: true, trigger: 'console' }),
      dependencies(ec2, { costs: { ebs, sizes, config: priced } }),
    );

    // Assess
    expect(ebs.calls).toEqual([]);
    expect(sizes.written).toEqual([]);
    expect(report.costs).toMatchObject({ measured: 0, unmeasured: 2 });
  });

  it('carries no costs without the ledger', async () => {
    // Act
    const report = await runRetentionJob(
      input(),
      dependencies(new FakeEc2({ snapshots, instances: [webInstance()] })),
    );

    // Assess
    expect(report.costs).toBeUndefined();
  });
});
