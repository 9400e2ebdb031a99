import { describe, expect, it, vi } from 'vitest';
import type { CreatedSnapshot } from '../../../lib/aws/Ec2Gateway.ts';
import {
  AwsCallError,
  ConcurrentSnapshotLimitError,
  CreateSnapshotSetError,
} from '../../../lib/aws/errors.ts';
import { RateLimiter } from '../../../lib/aws/rateLimiter.ts';
import type { InstanceFacts, SnapshotSetRequest } from '../../../lib/domain/backupPlan.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { TagMap } from '../../../lib/domain/tagPolicy.ts';
import {
  type BackupJobDependencies,
  type BackupJobInput,
  runBackupJob,
} from '../../../lib/jobs/backupJob.ts';
import type { ActionRecord } from '../../../lib/jobs/ports.ts';
import { recordingLogger } from '../../support/recordingLogger.ts';
import { RecordingMetrics } from '../../support/recordingMetrics.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const keys = tagKeys();
const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES);
const RUN_ID = '20261123T030007Z-a1b2c3d4';
/** Seven seconds after the daily schedule fired. */
const NOW = '2026-11-23T03:00:07.000Z';
const DAILY_SLOT_TIME = new Date('2026-11-23T03:00:00.000Z');

/**
 * A hand-rolled EC2 gateway: the job depends on our gateway interface, not on the SDK.
 * It streams the instances it is given, answers volume tags from a map, records every
 * snapshot set request and answers each with the outcome set for its instance.
 */
type GatewayPort = BackupJobDependencies['ec2'];

interface FakeEc2Options {
  readonly instances?: readonly InstanceFacts[];
  readonly volumeTags?: ReadonlyMap<string, TagMap>;
  /** Per instance id: the snapshots to return, or an error to throw. */
  readonly outcomes?: ReadonlyMap<string, readonly CreatedSnapshot[] | Error>;
  readonly describeError?: unknown;
  readonly volumesError?: unknown;
  /** How long each CreateSnapshots takes, so that calls overlap. */
  readonly latencyMs?: number;
  /** Snapshots already made for the slot (what a resumed run finds). */
  readonly slotSnapshots?: readonly SnapshotFacts[];
  /**
   * What the n-th listing (1-based) answers instead of `slotSnapshots`: the snapshots
   * it lists (EC2's describes are eventually consistent), or an error it throws.
   */
  readonly listing?: (n: number) => readonly SnapshotFacts[] | Error;
  /** Thrown by every DeleteSnapshot. */
  readonly deleteError?: Error;
  /** Every call, in order, for tests of what happens before what. */
  readonly events?: string[];
}

class FakeEc2 implements GatewayPort {
  public readonly requests: SnapshotSetRequest[] = [];
  public readonly listedTagKeys: string[] = [];
  public readonly volumeTagKeys: string[] = [];
  public inFlight = 0;
  public maxInFlight = 0;

  readonly #options: FakeEc2Options;

  public constructor(options: FakeEc2Options = {}) {
    this.#options = options;
  }

  public async *listInstancesWithTagKey(tagKey: string): AsyncGenerator<InstanceFacts> {
    this.listedTagKeys.push(tagKey);
    for (const instance of this.#options.instances ?? []) yield instance;
    if (this.#options.describeError !== undefined) throw this.#options.describeError;
  }

  public async volumeTagsWithKey(tagKey: string): Promise<Map<string, TagMap>> {
    this.volumeTagKeys.push(tagKey);
    if (this.#options.volumesError !== undefined) throw this.#options.volumesError;
    return new Map(this.#options.volumeTags ?? []);
  }

  public readonly snapshotQueries: Readonly<Record<string, string>>[] = [];
  public readonly deleted: string[] = [];

  public async *listSnapshotsTagged(
    tags: Readonly<Record<string, string>>,
  ): AsyncGenerator<SnapshotFacts> {
    this.snapshotQueries.push(tags);
    this.#options.events?.push('list');
    const listed = this.#options.listing?.(this.snapshotQueries.length);
    if (listed instanceof Error) throw listed;
    for (const snapshot of listed ?? this.#options.slotSnapshots ?? []) yield snapshot;
  }

  public readonly idQueries: (readonly string[])[] = [];

  public async *listInstancesByIds(instanceIds: readonly string[]): AsyncGenerator<InstanceFacts> {
    this.idQueries.push(instanceIds);
    for (const instance of this.#options.instances ?? []) {
      if (instanceIds.includes(instance.instanceId)) yield instance;
    }
  }

  public async deleteSnapshot(snapshotId: string): Promise<void> {
    this.#options.events?.push(`delete ${snapshotId}`);
    if (this.#options.deleteError) throw this.#options.deleteError;
    this.deleted.push(snapshotId);
  }

  public async createSnapshotSet(request: SnapshotSetRequest): Promise<CreatedSnapshot[]> {
    this.requests.push(request);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, this.#options.latencyMs ?? 0));
      const outcome = this.#options.outcomes?.get(request.instanceId);
      if (outcome instanceof Error) throw outcome;
      return outcome
        ? [...outcome]
        : request.included.map((v) => ({
            snapshotId: `snap-${v.volumeId}`,
            volumeId: v.volumeId,
            sizeGiB: 8,
            state: 'pending',
          }));
    } finally {
      this.inFlight -= 1;
    }
  }

  public requestedInstanceIds(): string[] {
    return this.requests.map((r) => r.instanceId).sort();
  }
}

function instance(
  instanceId: string,
  tags: TagMap,
  volumes: InstanceFacts['volumes'] = [
    { volumeId: `vol-${instanceId}-root`, deviceName: '/dev/xvda' },
  ],
  state = 'running',
): InstanceFacts {
  return { instanceId, state, rootDeviceName: '/dev/xvda', tags, volumes };
}

function optedIn(instanceId: string, schedules = 'daily', extra: TagMap = {}): InstanceFacts {
  return instance(instanceId, { [keys.backup]: schedules, ...extra });
}

function fixedClock(iso: string): () => Date {
  return () => new Date(iso);
}

function dependencies(
  ec2: FakeEc2,
  overrides: Partial<Omit<BackupJobDependencies, 'config'>> & {
    readonly config?: Partial<BackupJobDependencies['config']>;
  } = {},
): BackupJobDependencies {
  const { config, ...rest } = overrides;
  return {
    ec2,
    config: {
      deployment: 'prod',
      keys,
      catalog,
      copyTags: ['CostCenter'],
      backupConcurrency: 4,
      manualRetainDays: 30,
      ...config,
    },
    clock: fixedClock(NOW),
    runId: RUN_ID,
    logger: recordingLogger(),
    // The re-reads after a lost CreateSnapshots answer wait on a fake clock.
    reconcile: { sleep: async () => undefined },
    ...rest,
  };
}

function dailyRun(overrides: Partial<BackupJobInput> = {}): BackupJobInput {
  return {
    schedule: 'daily',
    scheduledTime: DAILY_SLOT_TIME,
    dryRun: false,
    trigger: 'schedule',
    ...overrides,
  };
}

describe('Function: runBackupJob', () => {
  describe('Selecting the instances', () => {
    it('creates a snapshot set only for the instances due on the schedule; the others are absent from the report', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        instances: [
          optedIn('i-daily', 'daily'),
          optedIn('i-default', 'true'),
          optedIn('i-list', 'weekly, Daily'),
          optedIn('i-weekly', 'weekly'),
          optedIn('i-monthly', 'monthly,weekly'),
          optedIn('i-off', 'false'),
          optedIn('i-empty', ''),
        ],
      });

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess
      expect(ec2.requestedInstanceIds()).toEqual(['i-daily', 'i-default', 'i-list']);
      expect(report.instances.map((i) => i.instanceId)).toEqual(['i-daily', 'i-default', 'i-list']);
      expect(report.counts.due).toBe(3);
    });

    it('reads the instances by the opt-in tag key and the volumes by the skip tag key', async () => {
      // Prepare
      const ec2 = new FakeEc2({ instances: [optedIn('i-1')] });

      // Act
      await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess: then every tagged instance once (tag-key "*"), for keys that miss the opt-in.
      expect(ec2.listedTagKeys).toEqual(['snapkeeper:backup', '*']);
      expect(ec2.volumeTagKeys).toEqual(['snapkeeper:skip']);
    });

    it('tags every snapshot set with the deployment, schedule, slot, run id and creation time of the run', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        instances: [optedIn('i-1', 'daily', { Name: 'web-1', CostCenter: '42' })],
      });

      // Act
      await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess
      expect(ec2.requests).toHaveLength(1);
      expect(ec2.requests[0]?.tags).toEqual([
        { Key: 'snapkeeper:managed', Value: 'true' },
        { Key: 'snapkeeper:deployment', Value: 'prod' },
        { Key: 'snapkeeper:schedule', Value: 'daily' },
        { Key: 'snapkeeper:slot', Value: '2026-11-23T03:00:00Z' },
        { Key: 'snapkeeper:instance-id', Value: 'i-1' },
        { Key: 'snapkeeper:run-id', Value: RUN_ID },
        { Key: 'snapkeeper:created-at', Value: NOW },
        { Key: 'Name', Value: 'web-1' },
        { Key: 'CostCenter', Value: '42' },
      ]);
    });
  });

  describe('Tag keys that miss the opt-in key (issue 15, defect 12)', () => {
    /** EC2 as it filters: by the exact (case-sensitive) key, or `*` for any tagged instance. */
    class FilteringEc2 extends FakeEc2 {
      readonly #fleet: readonly InstanceFacts[];

      public constructor(fleet: readonly InstanceFacts[]) {
        super({ instances: fleet });
        this.#fleet = fleet;
      }

      public override async *listInstancesWithTagKey(
        tagKey: string,
      ): AsyncGenerator<InstanceFacts> {
        this.listedTagKeys.push(tagKey);
        for (const i of this.#fleet) {
          const tagged = Object.keys(i.tags).length > 0;
          if (tagKey === '*' ? tagged : i.tags[tagKey] !== undefined) yield i;
        }
      }
    }

    it('reports each instance whose only opt-in key is a near miss, by instance and key, and ends partial', async () => {
      // Prepare
      const ec2 = new FilteringEc2([
        optedIn('i-good'),
        instance('i-case', { 'Snapkeeper:backup': 'daily' }),
        instance('i-upper', { 'snapkeeper:Backup': 'daily' }),
        instance('i-plural', { 'snapkeeper:backups': 'daily' }),
        instance('i-space', { 'snapkeeper:backup ': 'daily' }),
        instance('i-typo', { 'snapkeper:bakup': 'true' }),
        instance('i-ami', { 'Snapkeeper:AMI': 'daily' }),
      ]);

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess
      expect(ec2.requests.map((r) => r.instanceId)).toEqual(['i-good']);
      const byId = new Map(report.instances.map((r) => [r.instanceId, r]));
      for (const [id, key] of [
        ['i-case', 'Snapkeeper:backup'],
        ['i-upper', 'snapkeeper:Backup'],
        ['i-plural', 'snapkeeper:backups'],
        ['i-space', 'snapkeeper:backup '],
        ['i-typo', 'snapkeper:bakup'],
      ] as const) {
        const result = byId.get(id);
        expect(result, id).toMatchObject({ outcome: 'skipped', error: { code: 'InvalidTag' } });
        expect(result?.problems).toEqual([expect.stringContaining(`${key}=`)]);
        expect(result?.problems?.[0]).toContain('rename it');
        expect(result?.problems?.[0]).toContain(keys.backup);
      }
      expect(byId.get('i-ami')?.problems?.[0]).toContain(keys.ami);
      expect(report.status).toBe('partial');
    });

    it("never reports Name, aws: keys, other vendors' keys or an exact key as a near miss", async () => {
      // Prepare
      const ec2 = new FilteringEc2([
        optedIn('i-good'),
        instance('i-other', {
          Name: 'web',
          Backup: 'true',
          backup: 'daily',
          'aws:cloudformation:stack-name': 'stack',
          'aws:snapkeeper:backup': 'true',
          'kubernetes.io/cluster/prod': 'owned',
          'dlm:managed': 'true',
          'snapshot:backup': 'daily',
          CostCenter: '42',
        }),
        instance('i-untagged', {}),
      ]);

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess
      expect(report.instances.map((r) => r.instanceId)).toEqual(['i-good']);
      expect(report.status).toBe('succeeded');
    });

    it('reports a near-miss opt-in key on an opted-in instance in the runs it is not due in', async () => {
      // Prepare: daily is read; the weekly key has a typo, so weekly never happens.
      const ec2 = new FilteringEc2([optedIn('i-1', 'daily', { 'Snapkeeper:backup': 'weekly' })]);

      // Act
      const report = await runBackupJob(
        dailyRun({ schedule: 'weekly', scheduledTime: undefined }),
        dependencies(ec2),
      );

      // Assess
      expect(report.instances).toEqual([
        expect.objectContaining({ instanceId: 'i-1', outcome: 'skipped' }),
      ]);
      expect(report.instances[0]?.problems?.[0]).toContain('Snapkeeper:backup="weekly"');
    });

    it('makes the backups and warns when the fleet cannot be read for near misses', async () => {
      // Prepare
      class FailingScan extends FilteringEc2 {
        public override async *listInstancesWithTagKey(
          tagKey: string,
        ): AsyncGenerator<InstanceFacts> {
          if (tagKey === '*') throw sdkError('UnauthorizedOperation', 'not allowed', 403);
          yield* super.listInstancesWithTagKey(tagKey);
        }
      }
      const ec2 = new FailingScan([optedIn('i-1')]);

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess
      expect(ec2.requests).toHaveLength(1);
      expect(report.warnings).toEqual([expect.stringContaining('could not be checked')]);
      expect(report.status).toBe('partial');
    });

    it('looks for near misses only in whole-fleet runs, never for named instances', async () => {
      // Prepare
      const ec2 = new FilteringEc2([optedIn('i-1')]);

      // Act
      await runBackupJob(dailyRun({ batch: { instanceIds: ['i-1'] } }), dependencies(ec2));

      // Assess
      expect(ec2.listedTagKeys).not.toContain('*');
    });
  });

  describe('The report', () => {
    it('names the run, its deployment, schedule, slot, trigger and times, and counts the outcomes', async () => {
      // Prepare
      const ec2 = new FakeEc2({ instances: [optedIn('i-1', 'daily', { Name: 'web-1' })] });

      // Act
      const report = await runBackupJob(dailyRun({ trigger: 'retry' }), dependencies(ec2));

      // Assess
      expect(report).toEqual({
        runId: RUN_ID,
        job: 'backup',
        deployment: 'prod',
        schedule: 'daily',
        slot: '2026-11-23T03:00:00Z',
        trigger: 'retry',
        dryRun: false,
        status: 'succeeded',
        startedAt: NOW,
        endedAt: NOW,
        counts: {
          due: 1,
          backedUp: 1,
          skipped: 0,
          failed: 0,
          snapshots: 1,
          covered: 0,
          deferred: 0,
          duplicatesRemoved: 0,
        },
        instances: [
          {
            instanceId: 'i-1',
            name: 'web-1',
            outcome: 'created',
            snapshots: [
              {
                volumeId: 'vol-i-1-root',
                deviceName: '/dev/xvda',
                snapshotId: 'snap-vol-i-1-root',
                sizeGiB: 8,
                state: 'pending',
              },
            ],
          },
        ],
      });
    });

    it('takes the start time from the first clock reading and the end time from the last', async () => {
      // Prepare
      const ec2 = new FakeEc2({ instances: [optedIn('i-1')] });
      const readings = [new Date('2026-11-23T03:00:07.000Z'), new Date('2026-11-23T03:00:09.500Z')];
      const clock = vi.fn(() => readings.shift() ?? new Date('2026-11-23T03:00:09.500Z'));

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2, { clock }));

      // Assess
      expect(report.startedAt).toBe('2026-11-23T03:00:07.000Z');
      expect(report.endedAt).toBe('2026-11-23T03:00:09.500Z');
    });

    it('formats the slot from scheduledTime to the second, in UTC', async () => {
      // Prepare
      const ec2 = new FakeEc2();
      const scheduledTime = new Date('2026-11-23T03:00:00.123Z');

      // Act
      const report = await runBackupJob(dailyRun({ scheduledTime }), dependencies(ec2));

      // Assess
      expect(report.slot).toBe('2026-11-23T03:00:00Z');
    });

    it.each([
      ['daily', '2026-11-23T03:00:00Z'],
      ['weekly', '2026-11-22T04:00:00Z'],
      ['monthly', '2026-11-01T05:00:00Z'],
    ])(
      'serves the previous fire time of %s when no scheduledTime is given',
      async (schedule, slot) => {
        // Prepare
        const ec2 = new FakeEc2();
        const deps = dependencies(ec2, { clock: fixedClock('2026-11-23T10:15:42.000Z') });

        // Act
        const report = await runBackupJob({ schedule, dryRun: false, trigger: 'console' }, deps);

        // Assess
        expect(report.slot).toBe(slot);
      },
    );

    it('names the schedule in lower case whatever case the input used', async () => {
      // Prepare
      const ec2 = new FakeEc2({ instances: [optedIn('i-1', 'daily')] });

      // Act
      const report = await runBackupJob(dailyRun({ schedule: 'Daily' }), dependencies(ec2));

      // Assess
      expect(report.schedule).toBe('daily');
      expect(ec2.requestedInstanceIds()).toEqual(['i-1']);
    });

    it('maps each snapshot EC2 reports to the device of its volume', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        instances: [
          instance('i-db', { [keys.backup]: 'daily' }, [
            { volumeId: 'vol-root', deviceName: '/dev/xvda' },
            { volumeId: 'vol-data', deviceName: '/dev/sdf' },
            { volumeId: 'vol-logs', deviceName: '/dev/sdg' },
          ]),
        ],
        outcomes: new Map([
          [
            'i-db',
            [
              { snapshotId: 'snap-3', volumeId: 'vol-logs', sizeGiB: 20, state: 'pending' },
              { snapshotId: 'snap-1', volumeId: 'vol-root', sizeGiB: 8, state: 'pending' },
              { snapshotId: 'snap-2', volumeId: 'vol-data', sizeGiB: 100, state: 'completed' },
            ],
          ],
        ]),
      });

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess
      expect(report.instances[0]?.snapshots).toEqual([
        {
          volumeId: 'vol-logs',
          deviceName: '/dev/sdg',
          snapshotId: 'snap-3',
          sizeGiB: 20,
          state: 'pending',
        },
        {
          volumeId: 'vol-root',
          deviceName: '/dev/xvda',
          snapshotId: 'snap-1',
          sizeGiB: 8,
          state: 'pending',
        },
        {
          volumeId: 'vol-data',
          deviceName: '/dev/sdf',
          snapshotId: 'snap-2',
          sizeGiB: 100,
          state: 'completed',
        },
      ]);
      expect(report.counts.snapshots).toBe(3);
    });

    it('flags a snapshot of a volume the request excluded as unexpected', async () => {
      // Prepare
      const logger = recordingLogger();
      const ec2 = new FakeEc2({
        instances: [
          instance('i-app', { [keys.backup]: 'daily' }, [
            { volumeId: 'vol-root', deviceName: '/dev/xvda' },
            { volumeId: 'vol-data', deviceName: '/dev/sdf' },
            { volumeId: 'vol-scratch', deviceName: '/dev/sdg' },
          ]),
        ],
        volumeTags: new Map([['vol-scratch', { [keys.skip]: 'true' }]]),
        // Like the local AWS, which ignores ExcludeDataVolumeIds: every volume is snapshotted.
        outcomes: new Map([
          [
            'i-app',
            [
              { snapshotId: 'snap-root', volumeId: 'vol-root', state: 'pending' },
              { snapshotId: 'snap-data', volumeId: 'vol-data', state: 'pending' },
              { snapshotId: 'snap-scratch', volumeId: 'vol-scratch', state: 'pending' },
            ],
          ],
        ]),
      });

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2, { logger }));

      // Assess
      expect(ec2.requests[0]?.excludeDataVolumeIds).toEqual(['vol-scratch']);
      const [result] = report.instances;
      expect(result?.excludedVolumes).toEqual([
        {
          volumeId: 'vol-scratch',
          deviceName: '/dev/sdg',
          reason: 'volume tagged snapkeeper:skip=true',
        },
      ]);
      const byVolume = new Map(result?.snapshots?.map((s) => [s.volumeId, s]));
      expect(byVolume.get('vol-scratch')).toMatchObject({
        snapshotId: 'snap-scratch',
        deviceName: '/dev/sdg',
        unexpected: true,
      });
      expect(byVolume.get('vol-root')).not.toHaveProperty('unexpected');
      expect(byVolume.get('vol-data')).not.toHaveProperty('unexpected');
      expect(logger.warn).toHaveBeenCalledWith(
        'EC2 snapshotted a volume the request excluded',
        expect.objectContaining({ instanceId: 'i-app', volumeId: 'vol-scratch' }),
      );
    });
  });

  describe('The run status', () => {
    it('is succeeded when every due instance got its snapshot set', async () => {
      // Prepare
      const ec2 = new FakeEc2({ instances: [optedIn('i-1'), optedIn('i-2'), optedIn('i-3')] });

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess
      expect(report.status).toBe('succeeded');
      expect(report.instances.map((i) => i.outcome)).toEqual(['created', 'created', 'created']);
      expect(report.counts).toEqual({
        due: 3,
        backedUp: 3,
        skipped: 0,
        failed: 0,
        snapshots: 3,
        covered: 0,
        deferred: 0,
        duplicatesRemoved: 0,
      });
      expect(report).not.toHaveProperty('error');
    });

    it('is succeeded when no instance is due', async () => {
      // Prepare
      const ec2 = new FakeEc2({ instances: [optedIn('i-weekly', 'weekly')] });

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess
      expect(report.status).toBe('succeeded');
      expect(report.counts).toEqual({
        due: 0,
        backedUp: 0,
        skipped: 0,
        failed: 0,
        snapshots: 0,
        covered: 0,
        deferred: 0,
        duplicatesRemoved: 0,
      });
      expect(ec2.requests).toHaveLength(0);
    });

    it('is partial when one instance fails, and that failure never stops the others', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        instances: [optedIn('i-first'), optedIn('i-second'), optedIn('i-third')],
        outcomes: new Map([['i-first', new ConcurrentSnapshotLimitError('i-first')]]),
      });
      // One at a time, the failing instance first: the others still come after it.
      const deps = dependencies(ec2, { config: { backupConcurrency: 1 } });

      // Act
      const report = await runBackupJob(dailyRun(), deps);

      // Assess
      expect(report.status).toBe('partial');
      expect(ec2.requestedInstanceIds()).toEqual(['i-first', 'i-second', 'i-third']);
      expect(report.instances.map((i) => [i.instanceId, i.outcome])).toEqual([
        ['i-first', 'failed'],
        ['i-second', 'created'],
        ['i-third', 'created'],
      ]);
      expect(report.instances[0]?.error?.code).toBe('ConcurrentSnapshotLimitExceeded');
      expect(report.instances[0]?.error?.message).toContain(
        'earlier snapshots of i-first are still pending',
      );
      expect(report.counts).toEqual({
        due: 3,
        backedUp: 2,
        skipped: 0,
        failed: 1,
        snapshots: 2,
        covered: 0,
        deferred: 0,
        duplicatesRemoved: 0,
      });
    });

    it('reports an SDK-style error of one instance by its AWS code', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        instances: [optedIn('i-ok'), optedIn('i-gone')],
        outcomes: new Map([
          [
            'i-gone',
            sdkError('InvalidInstanceID.NotFound', "The instance ID 'i-gone' does not exist"),
          ],
        ]),
      });

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess
      expect(report.status).toBe('partial');
      expect(report.instances[1]).toMatchObject({
        instanceId: 'i-gone',
        outcome: 'failed',
        error: { code: 'InvalidInstanceID.NotFound' },
      });
    });

    it('is partial when an instance has a malformed opt-in tag, reported by key and instance name', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        instances: [optedIn('i-good'), optedIn('i-typo', 'dialy', { Name: 'db-1' })],
      });

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess
      expect(report.status).toBe('partial');
      expect(ec2.requestedInstanceIds()).toEqual(['i-good']);
      const typo = report.instances.find((i) => i.instanceId === 'i-typo');
      expect(typo).toMatchObject({ name: 'db-1', outcome: 'skipped' });
      expect(typo?.error?.code).toBe('InvalidTag');
      expect(typo?.error?.message).toContain('snapkeeper:backup="dialy" is not a known schedule');
      expect(typo?.problems).toEqual([
        expect.stringContaining('snapkeeper:backup="dialy" is not a known schedule'),
      ]);
      expect(report.counts).toMatchObject({ due: 2, backedUp: 1, skipped: 1, failed: 0 });
    });

    it('is partial, and still backs the instance up, when one name in its opt-in list is unknown', async () => {
      // Prepare
      const ec2 = new FakeEc2({ instances: [optedIn('i-list', 'daily,wekly')] });

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess
      expect(report.status).toBe('partial');
      expect(ec2.requestedInstanceIds()).toEqual(['i-list']);
      expect(report.instances[0]?.outcome).toBe('created');
      expect(report.instances[0]?.problems).toEqual([
        expect.stringContaining('"wekly" is not a known schedule'),
      ]);
    });

    it('is failed, with the AWS code, when the instances cannot be described', async () => {
      // Prepare
      const metrics = new RecordingMetrics();
      const ec2 = new FakeEc2({
        instances: [optedIn('i-1')],
        describeError: sdkError('UnauthorizedOperation', 'You are not authorized', 403),
      });

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2, { metrics }));

      // Assess
      expect(report.status).toBe('failed');
      expect(report.error?.code).toBe('UnauthorizedOperation');
      expect(report.error?.message).toContain('You are not authorized');
      expect(report.instances).toEqual([]);
      expect(report.counts).toEqual({
        due: 0,
        backedUp: 0,
        skipped: 0,
        failed: 0,
        snapshots: 0,
        covered: 0,
        deferred: 0,
        duplicatesRemoved: 0,
      });
      expect(report).toMatchObject({
        runId: RUN_ID,
        schedule: 'daily',
        slot: '2026-11-23T03:00:00Z',
      });
      expect(ec2.requests).toHaveLength(0);
      expect(metrics.valueOf('BackupRunsFailed')).toBe(1);
    });

    it('is failed, keeping the gateway error, when the volume tags cannot be read', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        instances: [optedIn('i-1')],
        volumesError: new AwsCallError(
          'DescribeVolumes',
          'RequestLimitExceeded',
          'Request limit exceeded.',
        ),
      });

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess
      expect(report.status).toBe('failed');
      expect(report.error).toEqual({
        code: 'RequestLimitExceeded',
        message: 'DescribeVolumes failed: RequestLimitExceeded: Request limit exceeded.',
      });
      expect(ec2.requests).toHaveLength(0);
    });

    it('is failed when every due instance failed', async () => {
      // Prepare
      const metrics = new RecordingMetrics();
      const ec2 = new FakeEc2({
        instances: [optedIn('i-1'), optedIn('i-2')],
        outcomes: new Map([
          ['i-1', new ConcurrentSnapshotLimitError('i-1')],
          ['i-2', sdkError('InternalError', 'An internal error has occurred', 500)],
        ]),
      });

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2, { metrics }));

      // Assess
      expect(report.status).toBe('failed');
      expect(report.counts).toEqual({
        due: 2,
        backedUp: 0,
        skipped: 0,
        failed: 2,
        snapshots: 0,
        covered: 0,
        deferred: 0,
        duplicatesRemoved: 0,
      });
      expect(report.instances.map((i) => i.error?.code)).toEqual([
        'ConcurrentSnapshotLimitExceeded',
        'InternalError',
      ]);
      expect(metrics.valueOf('BackupRunsFailed')).toBe(1);
      expect(metrics.valueOf('BackupRunsSucceeded')).toBeUndefined();
    });

    it('stays succeeded when an instance is skipped because no volume is left after exclusions', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        instances: [
          optedIn('i-normal'),
          instance('i-bootonly', { [keys.backup]: 'daily', [keys.excludeBoot]: 'true' }),
          instance('i-allskipped', { [keys.backup]: 'daily' }, [
            { volumeId: 'vol-skip-1', deviceName: '/dev/xvda' },
            { volumeId: 'vol-skip-2', deviceName: '/dev/sdf' },
          ]),
        ],
        volumeTags: new Map([
          ['vol-skip-1', { [keys.skip]: 'true' }],
          ['vol-skip-2', { [keys.skip]: 'true' }],
        ]),
      });

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess
      expect(report.status).toBe('succeeded');
      expect(ec2.requestedInstanceIds()).toEqual(['i-normal']);
      const skipped = report.instances.filter((i) => i.outcome === 'skipped');
      expect(skipped.map((i) => [i.instanceId, i.reason])).toEqual([
        ['i-bootonly', 'no volumes left after exclusions'],
        ['i-allskipped', 'no volumes left after exclusions'],
      ]);
      for (const result of skipped) expect(result).not.toHaveProperty('error');
      expect(report.counts).toEqual({
        due: 3,
        backedUp: 1,
        skipped: 2,
        failed: 0,
        snapshots: 1,
        covered: 0,
        deferred: 0,
        duplicatesRemoved: 0,
      });
    });
  });

  describe('A dry run', () => {
    it('creates nothing, reports what it would create as planned and counts it as wouldBackUp, never backedUp', async () => {
      // Prepare
      const metrics = new RecordingMetrics();
      const ec2 = new FakeEc2({
        instances: [
          instance('i-db', { [keys.backup]: 'daily', Name: 'db-1' }, [
            { volumeId: 'vol-root', deviceName: '/dev/xvda' },
            { volumeId: 'vol-data', deviceName: '/dev/sdf' },
          ]),
          optedIn('i-web'),
        ],
      });

      // Act
      const report = await runBackupJob(dailyRun({ dryRun: true }), dependencies(ec2, { metrics }));

      // Assess
      expect(ec2.requests).toHaveLength(0);
      expect(report.dryRun).toBe(true);
      expect(report.status).toBe('succeeded');
      expect(report.instances[0]).toEqual({
        instanceId: 'i-db',
        name: 'db-1',
        outcome: 'planned',
        snapshots: [
          { volumeId: 'vol-root', deviceName: '/dev/xvda', state: 'planned' },
          { volumeId: 'vol-data', deviceName: '/dev/sdf', state: 'planned' },
        ],
      });
      expect(report.instances[1]?.outcome).toBe('planned');
      expect(report.counts).toEqual({
        due: 2,
        backedUp: 0,
        wouldBackUp: 2,
        skipped: 0,
        failed: 0,
        snapshots: 0,
        covered: 0,
        deferred: 0,
        duplicatesRemoved: 0,
      });
      expect(metrics.valueOf('SnapshotsCreated')).toBe(0);
      expect(metrics.valueOf('InstancesBackedUp')).toBe(0);
    });
  });

  describe('Concurrency', () => {
    it.each([1, 3])(
      'never has more than maxInFlight=%i snapshot sets in flight, and uses them all',
      async (maxInFlight) => {
        // Prepare
        const ec2 = new FakeEc2({
          instances: Array.from({ length: 8 }, (_, n) => optedIn(`i-${n}`)),
          latencyMs: 5,
        });

        // Act
        const report = await runBackupJob(
          dailyRun(),
          dependencies(ec2, { config: { backupConcurrency: 1, maxInFlight } }),
        );

        // Assess
        expect(ec2.requests).toHaveLength(8);
        expect(ec2.maxInFlight).toBeLessThanOrEqual(maxInFlight);
        expect(ec2.maxInFlight).toBe(maxInFlight);
        expect(report.counts.backedUp).toBe(8);
      },
    );

    it('creates at ≥ 0.95 of a raised 20/s refill with 300 ms per CreateSnapshots and a table as slow as EC2 (300 ms a history write)', async () => {
      // Prepare: CreateSnapshots raised to 100 then 20 a second, behind its bucket.
      vi.useFakeTimers({ now: Date.parse(NOW) });
      try {
        const limiter = new RateLimiter({
          overrides: { CreateSnapshots: { burst: 100, refillPerSecond: 20 } },
        });
        const sentAt: number[] = [];
        const ec2 = new FakeEc2({
          instances: Array.from({ length: 400 }, (_, n) => optedIn(`i-${n}`)),
          latencyMs: 300,
        });
        const create = ec2.createSnapshotSet.bind(ec2);
        ec2.createSnapshotSet = async (request) => {
          await limiter.acquire('CreateSnapshots');
          sentAt.push(Date.now());
          return create(request);
        };
        const records: string[] = [];
        const journal = {
          record: async (entry: { resourceId: string }) => {
            await new Promise((resolve) => setTimeout(resolve, 300));
            records.push(entry.resourceId);
          },
        };

        // Act
        const running = runBackupJob(
          dailyRun(),
          dependencies(ec2, { journal, config: { backupConcurrency: 10 } }),
        );
        await vi.runAllTimersAsync();
        const report = await running;

        // Assess: 10 fixed slots, each held for the create and its record in sequence
        // (600 ms), make 16.7 a second (0.83); the pool grows and records behind.
        const after = [...sentAt].sort((a, b) => a - b).slice(100);
        const rate = (after.length - 1) / (((after.at(-1) ?? 0) - (after[0] ?? 0)) / 1000) / 20;
        expect(report.counts.backedUp).toBe(400);
        expect(rate).toBeGreaterThanOrEqual(0.95);
        expect(records.length).toBeGreaterThanOrEqual(400);
      } finally {
        vi.useRealTimers();
      }
    });
  });

  describe('Metrics', () => {
    it('counts the snapshots created, and the instances backed up, skipped and failed', async () => {
      // Prepare
      const metrics = new RecordingMetrics();
      const ec2 = new FakeEc2({
        instances: [
          instance('i-two', { [keys.backup]: 'daily' }, [
            { volumeId: 'vol-a', deviceName: '/dev/xvda' },
            { volumeId: 'vol-b', deviceName: '/dev/sdf' },
          ]),
          instance('i-three', { [keys.backup]: 'daily' }, [
            { volumeId: 'vol-c', deviceName: '/dev/xvda' },
            { volumeId: 'vol-d', deviceName: '/dev/sdf' },
            { volumeId: 'vol-e', deviceName: '/dev/sdg' },
          ]),
          optedIn('i-broken'),
          instance('i-bootonly', { [keys.backup]: 'daily', [keys.excludeBoot]: 'true' }),
        ],
        outcomes: new Map([['i-broken', sdkError('InternalError', 'oops', 500)]]),
      });

      // Act
      await runBackupJob(dailyRun(), dependencies(ec2, { metrics }));

      // Assess
      expect(metrics.counts).toEqual(
        expect.arrayContaining([
          ['SnapshotsCreated', 5],
          ['InstancesBackedUp', 2],
          ['InstancesSkipped', 1],
          ['InstancesFailed', 1],
          ['BackupRunsSucceeded', 1],
        ]),
      );
      expect(metrics.counts.filter(([name]) => name === 'SnapshotsCreated')).toHaveLength(1);
    });
  });
});

describe('Function: runBackupJob, resuming a slot', () => {
  const slotSnapshot = (
    snapshotId: string,
    instanceId: string,
    runId: string,
    startedAt: string,
  ): SnapshotFacts => ({
    snapshotId,
    volumeId: `vol-${instanceId}-root`,
    state: 'completed',
    startTime: new Date(startedAt),
    sizeGiB: 8,
    tags: {
      [keys.managed]: 'true',
      [keys.deployment]: 'prod',
      [keys.schedule]: 'daily',
      [keys.slot]: '2026-11-23T03:00:00Z',
      [keys.instanceId]: instanceId,
      [keys.runId]: runId,
    },
  });

  it('lists the slot’s snapshots once and skips instances already covered', async () => {
    // Prepare
    const ec2 = new FakeEc2({
      instances: [optedIn('i-done'), optedIn('i-todo')],
      slotSnapshots: [slotSnapshot('snap-old', 'i-done', 'run-1', '2026-11-23T03:00:05Z')],
    });

    // Act
    const report = await runBackupJob(dailyRun({ resuming: true }), dependencies(ec2));

    // Assess
    expect(ec2.snapshotQueries).toEqual([
      {
        [keys.managed]: 'true',
        [keys.deployment]: 'prod',
        [keys.schedule]: 'daily',
        [keys.slot]: '2026-11-23T03:00:00Z',
      },
    ]);
    expect(ec2.requests.map((r) => r.instanceId)).toEqual(['i-todo']);
    expect(report.instances.find((r) => r.instanceId === 'i-done')).toMatchObject({
      outcome: 'covered',
      reason: 'already backed up for this slot by run run-1',
    });
    expect(report.status).toBe('succeeded');
  });

  it('does not list the slot when it is not resuming', async () => {
    const ec2 = new FakeEc2({ instances: [optedIn('i-1')] });

    await runBackupJob(dailyRun(), dependencies(ec2));

    expect(ec2.snapshotQueries).toEqual([]);
  });

  it('removes the extra copy of a duplicate set, keeping the first, recorded before and after', async () => {
    // Prepare
    const ec2 = new FakeEc2({
      instances: [optedIn('i-1')],
      slotSnapshots: [
        slotSnapshot('snap-first', 'i-1', 'run-1', '2026-11-23T03:00:05Z'),
        slotSnapshot('snap-second', 'i-1', 'run-2', '2026-11-23T03:02:00Z'),
      ],
    });
    const records: ActionRecord[] = [];

    // Act
    const report = await runBackupJob(
      dailyRun({ resuming: true }),
      dependencies(ec2, { journal: { record: async (r) => void records.push(r) } }),
    );

    // Assess
    expect(ec2.deleted).toEqual(['snap-second']);
    expect(report.duplicates).toEqual([
      {
        instanceId: 'i-1',
        runId: 'run-2',
        kept: 'run-1',
        snapshotIds: ['snap-second'],
        outcome: 'deleted',
      },
    ]);
    expect(records.map((r) => [r.action, r.resourceId, r.phase])).toEqual([
      ['delete-snapshot', 'snap-second', 'before'],
      ['delete-snapshot', 'snap-second', 'after'],
      // The kept set, made by a run that may have died before recording it.
      ['create-snapshot', 'snap-first', 'after'],
    ]);
    expect(ec2.requests).toEqual([]);
  });

  it('never counts, covers with or removes a disaster-recovery copy or an AMI snapshot carrying the slot’s tags', async () => {
    // Prepare: the slot's set of i-1 (run-1); two sets of copies another region's deployment
    // of this stage made of the same slot (vol-ffffffff, source markers); an AMI's snapshot.
    const copy = (snapshotId: string, runId: string, at: string): SnapshotFacts => {
      const base = slotSnapshot(snapshotId, 'i-1', runId, at);
      return {
        ...base,
        volumeId: 'vol-ffffffff',
        tags: { ...base.tags, [keys.sourceRegion]: 'us-east-1' },
      };
    };
    const amiSnapshot: SnapshotFacts = {
      ...slotSnapshot('snap-ami', 'i-2', 'run-ami', '2026-11-23T03:00:09Z'),
      description: 'Created by CreateImage(i-2) for ami-0abc from vol-i-2-root',
    };
    const ec2 = new FakeEc2({
      instances: [optedIn('i-1'), optedIn('i-2')],
      slotSnapshots: [
        slotSnapshot('snap-first', 'i-1', 'run-1', '2026-11-23T03:00:05Z'),
        copy('snap-copy-a', 'run-src-1', '2026-11-23T03:10:00Z'),
        copy('snap-copy-b', 'run-src-2', '2026-11-23T03:20:00Z'),
        amiSnapshot,
      ],
    });

    // Act
    const report = await runBackupJob(dailyRun({ resuming: true }), dependencies(ec2));

    // Assess: nothing deleted; i-1 covered by its own set; i-2 (only an AMI snapshot) backed up.
    expect(ec2.deleted).toEqual([]);
    expect(report.duplicates ?? []).toEqual([]);
    expect(report.instances.find((r) => r.instanceId === 'i-1')).toMatchObject({
      outcome: 'covered',
      reason: 'already backed up for this slot by run run-1',
    });
    expect(ec2.requests.map((r) => r.instanceId)).toEqual(['i-2']);
  });

  it('stops starting instances below the safety margin and ends incomplete with what is left', async () => {
    // Prepare
    const ec2 = new FakeEc2({ instances: [optedIn('i-1'), optedIn('i-2'), optedIn('i-3')] });
    let remaining = 120_000;
    const deps = dependencies(ec2, { config: { backupConcurrency: 1 } });
    const original = ec2.createSnapshotSet.bind(ec2);
    ec2.createSnapshotSet = async (request) => {
      remaining -= 50_000;
      return original(request);
    };

    // Act
    const report = await runBackupJob(
      dailyRun({ remainingMs: () => remaining, safetyMarginMs: 60_000 }),
      deps,
    );

    // Assess
    expect(ec2.requests.map((r) => r.instanceId)).toEqual(['i-1', 'i-2']);
    expect(report.status).toBe('incomplete');
    expect(report.remaining).toEqual(['i-3']);
    expect(report.instances.find((r) => r.instanceId === 'i-3')?.outcome).toBe('deferred');
  });

  it('records every snapshot made, with its instance and volume', async () => {
    const ec2 = new FakeEc2({ instances: [optedIn('i-1')] });
    const records: ActionRecord[] = [];

    await runBackupJob(
      dailyRun(),
      dependencies(ec2, { journal: { record: async (r) => void records.push(r) } }),
    );

    expect(records).toEqual([
      expect.objectContaining({
        action: 'create-snapshot',
        resourceId: 'snap-vol-i-1-root',
        phase: 'after',
        outcome: 'done',
        details: expect.objectContaining({ instanceId: 'i-1', volumeId: 'vol-i-1-root' }),
      }),
    ]);
  });

  it('makes backups even when the history is unavailable, and says so', async () => {
    const ec2 = new FakeEc2({ instances: [optedIn('i-1')] });

    const report = await runBackupJob(dailyRun({ historyUnavailable: true }), dependencies(ec2));

    expect(ec2.requests).toHaveLength(1);
    expect(report.status).toBe('partial');
    expect(report.warnings?.[0]).toContain('run history could not be written');
  });
});

describe('Function: runBackupJob, console backup of named instances', () => {
  it('backs up the named instances whatever their tags, as schedule manual, and reports unknown ids', async () => {
    // Prepare
    const ec2 = new FakeEc2({
      instances: [instance('i-untagged', { Name: 'db' }), optedIn('i-tagged')],
    });

    // Act
    const report = await runBackupJob(
      dailyRun({
        schedule: 'manual',
        trigger: 'console',
        instanceIds: ['i-untagged', 'i-0000000000000000f'],
      }),
      dependencies(ec2),
    );

    // Assess
    expect(ec2.idQueries).toEqual([['i-untagged', 'i-0000000000000000f']]);
    expect(ec2.requests.map((r) => r.instanceId)).toEqual(['i-untagged']);
    expect(ec2.requests[0]?.tags).toContainEqual({ Key: keys.schedule, Value: 'manual' });
    expect(report.instances.find((r) => r.instanceId === 'i-0000000000000000f')).toMatchObject({
      outcome: 'failed',
      error: { code: 'UnknownInstance' },
    });
    expect(report.status).toBe('partial');
  });
});

describe('Function: runBackupJob, a CreateSnapshots the SDK had to retry', () => {
  const ofThisRun = (snapshotId: string, volumeId: string, startedAt: string): SnapshotFacts => ({
    snapshotId,
    volumeId,
    state: 'completed',
    startTime: new Date(startedAt),
    sizeGiB: 8,
    tags: {
      [keys.managed]: 'true',
      [keys.deployment]: 'prod',
      [keys.runId]: RUN_ID,
      [keys.instanceId]: 'i-1',
    },
  });

  it('deletes the copy an attempt with a lost answer made, keeping the one the answer named', async () => {
    // Prepare: the first attempt made snap-lost, its answer was lost; the retry made snap-answered.
    const ec2 = new FakeEc2({
      instances: [optedIn('i-1')],
      outcomes: new Map([
        [
          'i-1',
          [
            {
              snapshotId: 'snap-answered',
              volumeId: 'vol-i-1-root',
              sizeGiB: 8,
              state: 'pending',
              attempts: 2,
            },
          ],
        ],
      ]),
      slotSnapshots: [
        ofThisRun('snap-lost', 'vol-i-1-root', '2026-11-23T03:00:07Z'),
        ofThisRun('snap-answered', 'vol-i-1-root', '2026-11-23T03:00:09Z'),
      ],
    });

    // Act
    const report = await runBackupJob(dailyRun(), dependencies(ec2));

    // Assess
    expect(ec2.snapshotQueries).toEqual([
      {
        [keys.managed]: 'true',
        [keys.deployment]: 'prod',
        [keys.runId]: RUN_ID,
        [keys.instanceId]: 'i-1',
      },
    ]);
    expect(ec2.deleted).toEqual(['snap-lost']);
    expect(report.instances[0]).toMatchObject({
      outcome: 'created',
      snapshots: [expect.objectContaining({ snapshotId: 'snap-answered' })],
      duplicates: [{ snapshotId: 'snap-lost', volumeId: 'vol-i-1-root', outcome: 'deleted' }],
    });
  });

  it('adopts the set a timed-out CreateSnapshots made after all', async () => {
    const timeout = Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
    const ec2 = new FakeEc2({
      instances: [optedIn('i-1')],
      outcomes: new Map([['i-1', timeout]]),
      slotSnapshots: [ofThisRun('snap-made', 'vol-i-1-root', '2026-11-23T03:00:07Z')],
    });

    const report = await runBackupJob(dailyRun(), dependencies(ec2));

    expect(ec2.deleted).toEqual([]);
    expect(report.instances[0]).toMatchObject({
      outcome: 'created',
      snapshots: [expect.objectContaining({ snapshotId: 'snap-made' })],
    });
    expect(report.status).toBe('succeeded');
  });

  it('does not list anything after a first-attempt success', async () => {
    const ec2 = new FakeEc2({ instances: [optedIn('i-1')] });

    await runBackupJob(dailyRun(), dependencies(ec2));

    expect(ec2.snapshotQueries).toEqual([]);
  });
});

describe('Function: runBackupJob, a lost CreateSnapshots answer and eventually consistent describes (issue 15 #7, #8, #9)', () => {
  const ofThisRun = (
    snapshotId: string,
    startedAt: string,
    state = 'completed',
    volumeId = 'vol-i-1-root',
  ): SnapshotFacts => ({
    snapshotId,
    volumeId,
    state,
    startTime: new Date(startedAt),
    sizeGiB: 8,
    tags: {
      [keys.managed]: 'true',
      [keys.deployment]: 'prod',
      [keys.runId]: RUN_ID,
      [keys.instanceId]: 'i-1',
    },
  });
  /** The second attempt's answer; the first attempt's answer was lost (it may have made a set). */
  const answeredAfterLostAttempt = (uncertainAttempts = 1): CreatedSnapshot[] => [
    {
      snapshotId: 'snap-answered',
      volumeId: 'vol-i-1-root',
      sizeGiB: 8,
      state: 'pending',
      attempts: 2,
      uncertainAttempts,
    },
  ];
  const lost = ofThisRun('snap-lost', '2026-11-23T03:00:07Z');
  const answered = ofThisRun('snap-answered', '2026-11-23T03:00:09Z', 'pending');
  const recording = (events?: string[]) => {
    const records: ActionRecord[] = [];
    const journal = {
      record: async (r: ActionRecord) => {
        records.push(r);
        events?.push(`record ${r.action} ${r.resourceId} ${r.phase}`);
      },
    };
    return { records, journal };
  };

  describe('#7: the describe has not caught up yet', () => {
    it('lists again after each wait until the lost set appears, then deletes it and keeps the answered one', async () => {
      // Prepare: the first two listings show nothing yet (eventual consistency).
      const ec2 = new FakeEc2({
        instances: [optedIn('i-1')],
        outcomes: new Map([['i-1', answeredAfterLostAttempt()]]),
        listing: (n) => (n <= 2 ? [] : [lost, answered]),
      });
      const sleeps: number[] = [];
      const { records, journal } = recording();

      // Act
      const report = await runBackupJob(
        dailyRun(),
        dependencies(ec2, {
          journal,
          reconcile: { waitsMs: [100, 200, 400], sleep: async (ms) => void sleeps.push(ms) },
        }),
      );

      // Assess
      expect(ec2.snapshotQueries).toHaveLength(3);
      expect(sleeps).toEqual([100, 200]);
      expect(ec2.deleted).toEqual(['snap-lost']);
      expect(report.instances[0]).toMatchObject({
        outcome: 'created',
        snapshots: [expect.objectContaining({ snapshotId: 'snap-answered' })],
        duplicates: [{ snapshotId: 'snap-lost', volumeId: 'vol-i-1-root', outcome: 'deleted' }],
      });
      expect(report.status).toBe('succeeded');
      expect(records.map((r) => [r.action, r.resourceId, r.phase])).toEqual([
        ['create-snapshot', 'snap-answered', 'after'],
        ['delete-snapshot', 'snap-lost', 'before'],
        ['delete-snapshot', 'snap-lost', 'after'],
      ]);
    });

    it('ends partial, naming the run id to look for, when the waits run out before every possible set is visible', async () => {
      // Prepare: only the answered set ever shows.
      const ec2 = new FakeEc2({
        instances: [optedIn('i-1')],
        outcomes: new Map([['i-1', answeredAfterLostAttempt()]]),
        listing: () => [answered],
      });
      const sleeps: number[] = [];

      // Act
      const report = await runBackupJob(
        dailyRun(),
        dependencies(ec2, {
          reconcile: { waitsMs: [100, 200], sleep: async (ms) => void sleeps.push(ms) },
        }),
      );

      // Assess
      expect(ec2.snapshotQueries).toHaveLength(3);
      expect(sleeps).toEqual([100, 200]);
      expect(report.status).toBe('partial');
      expect(report.instances[0]).toMatchObject({
        outcome: 'created',
        snapshots: [expect.objectContaining({ snapshotId: 'snap-answered' })],
        error: { code: 'DuplicateUnconfirmed' },
      });
      expect(report.instances[0]?.error?.message).toContain(`${keys.runId}=${RUN_ID}`);
      expect(report.counts).toMatchObject({ backedUp: 1, failed: 0 });
    });

    it('never spends more than half the time the invocation has left (before its margin) on a wait', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        instances: [optedIn('i-1')],
        outcomes: new Map([['i-1', answeredAfterLostAttempt()]]),
        listing: () => [answered],
      });
      const sleeps: number[] = [];

      // Act
      await runBackupJob(
        dailyRun({ remainingMs: () => 33_000, safetyMarginMs: 30_000 }),
        dependencies(ec2, {
          reconcile: { waitsMs: [1_000, 2_000], sleep: async (ms) => void sleeps.push(ms) },
        }),
      );

      // Assess
      expect(sleeps).toEqual([1_000]);
      expect(ec2.snapshotQueries).toHaveLength(2);
    });

    it('adopts the sets a failed CreateSnapshots made after all, keeping the first of two and deleting the other', async () => {
      // Prepare: two attempts lost their answers; the sets appear on the second listing.
      const failure = new CreateSnapshotSetError(
        Object.assign(new Error('socket hang up'), { name: 'TimeoutError' }),
        2,
      );
      const second = ofThisRun('snap-second', '2026-11-23T03:00:12Z');
      const ec2 = new FakeEc2({
        instances: [optedIn('i-1')],
        outcomes: new Map([['i-1', failure]]),
        listing: (n) => (n === 1 ? [] : [second, lost]),
      });
      const { records, journal } = recording();

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2, { journal }));

      // Assess
      expect(ec2.deleted).toEqual(['snap-second']);
      expect(report.instances[0]).toMatchObject({
        outcome: 'created',
        snapshots: [expect.objectContaining({ snapshotId: 'snap-lost' })],
      });
      expect(report.status).toBe('succeeded');
      expect(records).toContainEqual(
        expect.objectContaining({ action: 'create-snapshot', resourceId: 'snap-lost' }),
      );
    });

    it('lists nothing when the only retried attempts were throttled (EC2 refused them)', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        instances: [optedIn('i-1')],
        outcomes: new Map([['i-1', answeredAfterLostAttempt(0)]]),
      });

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess
      expect(ec2.snapshotQueries).toEqual([]);
      expect(report.status).toBe('succeeded');
    });
  });

  describe('#8: every describe after the create fails', () => {
    it('reports the answered set as created and records it, and the run is partial with the reason', async () => {
      // Prepare
      const describeDown = new AwsCallError('DescribeSnapshots', 'InternalError', 'boom');
      const events: string[] = [];
      const ec2 = new FakeEc2({
        instances: [optedIn('i-1')],
        outcomes: new Map([['i-1', answeredAfterLostAttempt()]]),
        listing: () => describeDown,
        events,
      });
      const { records, journal } = recording(events);

      // Act
      const report = await runBackupJob(
        dailyRun(),
        dependencies(ec2, { journal, reconcile: { waitsMs: [10, 20], sleep: async () => {} } }),
      );

      // Assess
      expect(report.instances[0]).toMatchObject({
        outcome: 'created',
        snapshots: [expect.objectContaining({ snapshotId: 'snap-answered', state: 'pending' })],
        error: { code: 'InternalError' },
      });
      expect(report.instances[0]?.error?.message).toContain('the answered set is recorded');
      expect(report.counts).toMatchObject({ backedUp: 1, failed: 0, snapshots: 1 });
      expect(report.status).toBe('partial');
      expect(records).toEqual([
        expect.objectContaining({
          action: 'create-snapshot',
          resourceId: 'snap-answered',
          phase: 'after',
          outcome: 'done',
        }),
      ]);
      // Recorded as soon as the create answered, before any listing.
      expect(events).toEqual([
        'record create-snapshot snap-answered after',
        'list',
        'list',
        'list',
      ]);
    });
  });

  describe('#9: a duplicate that cannot be deleted', () => {
    it('makes the run partial when deleting the extra copy fails, and records the copy as made', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        instances: [optedIn('i-1')],
        outcomes: new Map([['i-1', answeredAfterLostAttempt()]]),
        listing: () => [lost, answered],
        deleteError: new AwsCallError('DeleteSnapshot', 'UnauthorizedOperation', 'denied'),
      });
      const { records, journal } = recording();

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2, { journal }));

      // Assess
      expect(report.instances[0]).toMatchObject({
        outcome: 'created',
        duplicates: [{ snapshotId: 'snap-lost', outcome: 'failed' }],
      });
      expect(report.status).toBe('partial');
      expect(records).toContainEqual(
        expect.objectContaining({
          action: 'create-snapshot',
          resourceId: 'snap-lost',
          reason: expect.stringContaining('its deletion failed'),
        }),
      );
    });

    it('makes the run partial when the extra copy is still pending (never deleted)', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        instances: [optedIn('i-1')],
        outcomes: new Map([['i-1', answeredAfterLostAttempt()]]),
        listing: () => [ofThisRun('snap-lost', '2026-11-23T03:00:07Z', 'pending'), answered],
      });

      // Act
      const report = await runBackupJob(dailyRun(), dependencies(ec2));

      // Assess
      expect(ec2.deleted).toEqual([]);
      expect(report.instances[0]?.duplicates).toEqual([
        { snapshotId: 'snap-lost', volumeId: 'vol-i-1-root', outcome: 'kept' },
      ]);
      expect(report.status).toBe('partial');
    });

    it('makes a resumed run partial when a duplicate set of the slot is pending, reported as kept', async () => {
      // Prepare
      const slotTags = (runId: string) => ({
        [keys.managed]: 'true',
        [keys.deployment]: 'prod',
        [keys.schedule]: 'daily',
        [keys.slot]: '2026-11-23T03:00:00Z',
        [keys.instanceId]: 'i-1',
        [keys.runId]: runId,
      });
      const ec2 = new FakeEc2({
        instances: [optedIn('i-1')],
        slotSnapshots: [
          { ...lost, snapshotId: 'snap-first', tags: slotTags('run-1') },
          {
            ...lost,
            snapshotId: 'snap-second',
            state: 'pending',
            startTime: new Date('2026-11-23T03:02:00Z'),
            tags: slotTags('run-2'),
          },
        ],
      });

      // Act
      const report = await runBackupJob(dailyRun({ resuming: true }), dependencies(ec2));

      // Assess
      expect(ec2.deleted).toEqual([]);
      expect(report.duplicates).toEqual([
        {
          instanceId: 'i-1',
          runId: 'run-2',
          kept: 'run-1',
          snapshotIds: ['snap-second'],
          outcome: 'kept',
        },
      ]);
      expect(report.status).toBe('partial');
    });
  });
});
