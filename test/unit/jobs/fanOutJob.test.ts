import { describe, expect, it } from 'vitest';
import type { CreatedSnapshot, Ec2Gateway } from '../../../lib/aws/Ec2Gateway.ts';
import type { FanOutQueueGateway } from '../../../lib/aws/FanOutQueueGateway.ts';
import type { RunHistoryGateway } from '../../../lib/aws/RunHistoryGateway.ts';
import { loadConfig, type SnapkeeperConfig } from '../../../lib/config/environment.ts';
import type { InstanceFacts, SnapshotSetRequest } from '../../../lib/domain/backupPlan.ts';
import type {
  BatchCheckpoint,
  BatchMessage,
  BatchStatus,
  Target,
} from '../../../lib/domain/fanOut.ts';
import { targetLabel } from '../../../lib/domain/fanOut.ts';
import type { RunRecordStatus } from '../../../lib/domain/runHistory.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import type { TagMap } from '../../../lib/domain/tagPolicy.ts';
import { BatchRetryError } from '../../../lib/jobs/errors.ts';
import {
  type BatchDependencies,
  BUSY_RECHECK_SECONDS,
  type FanOutDependencies,
  type FanOutInput,
  planFanOut,
  runFanOutBatch,
} from '../../../lib/jobs/fanOutJob.ts';
import type { CreationLedger } from '../../../lib/jobs/ownership.ts';
import type { SnapshotTiersPort } from '../../../lib/jobs/ports.ts';
import { silentLogger } from '../../../lib/jobs/runReport.ts';
import { RecordingEvents } from '../../support/recordingEvents.ts';
import { RecordingMetrics } from '../../support/recordingMetrics.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const RUN_ID = '20261123T030007Z-a1b2c3d4';
const SLOT = '2026-11-23T03:00:00Z';
/** Seven seconds after the daily schedule fired. */
const NOW = '2026-11-23T03:00:07.000Z';
const OTHER_ACCOUNT = '210987654321';
const SELF_IRELAND: Target = { account: 'self', region: 'eu-west-1' };
const SELF_VIRGINIA: Target = { account: 'self', region: 'us-east-1' };
const OTHER_IRELAND: Target = { account: OTHER_ACCOUNT, region: 'eu-west-1' };

function configWith(env: Record<string, string> = {}): SnapkeeperConfig {
  return loadConfig({ AWS_REGION: 'eu-west-1', DEPLOYMENT: 'prod', ...env });
}

const config = configWith();
const { keys } = config;

const accessDenied = () =>
  sdkError(
    'AccessDenied',
    `User: arn:aws:sts::123456789012:assumed-role/snapkeeper/fanout is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::${OTHER_ACCOUNT}:role/snapkeeper-target`,
    403,
  );

/** How the planner reports a target it could not read: the describe that failed. */
const deniedMessage = () => `DescribeInstances failed: AccessDenied: ${accessDenied().message}`;

function instanceId(n: number): string {
  return `i-${n.toString(16).padStart(8, '0')}`;
}

function instance(id: string, backup = 'daily', extra: TagMap = {}): InstanceFacts {
  return {
    instanceId: id,
    state: 'running',
    rootDeviceName: '/dev/xvda',
    tags: { [keys.backup]: backup, ...extra },
    volumes: [
      { volumeId: `vol-${id.slice(2)}-root`, deviceName: '/dev/xvda' },
      { volumeId: `vol-${id.slice(2)}-data`, deviceName: '/dev/xvdb' },
    ],
  };
}

function fixedClock(iso: string): () => Date {
  return () => new Date(iso);
}

// ---------------------------------------------------------------------------------------
// The planner
// ---------------------------------------------------------------------------------------

type PlannerEc2 = ReturnType<FanOutDependencies['ec2For']>;

interface TargetFleet {
  readonly instances?: readonly InstanceFacts[];
  readonly volumeTags?: ReadonlyMap<string, TagMap>;
  /** Thrown by the first call to the target (a role that cannot be assumed, say). */
  readonly error?: unknown;
  /** Thrown by `ec2For` itself, before any call. */
  readonly buildError?: unknown;
}

/** One target's EC2, as the planner reads it: streams the fleet, answers skip tags. */
class FakeTargetEc2 implements PlannerEc2 {
  public readonly listedTagKeys: string[] = [];
  public readonly volumeTagKeys: string[] = [];
  readonly #fleet: TargetFleet;

  public constructor(fleet: TargetFleet) {
    this.#fleet = fleet;
  }

  public async *listInstancesWithTagKey(tagKey: string): AsyncGenerator<InstanceFacts> {
    this.listedTagKeys.push(tagKey);
    if (this.#fleet.error !== undefined) throw this.#fleet.error;
    // As EC2 filters: by the exact (case-sensitive) key, or "*" for any tagged instance.
    for (const item of this.#fleet.instances ?? []) {
      const tagged = Object.keys(item.tags).length > 0;
      if (tagKey === '*' ? tagged : item.tags[tagKey] !== undefined) yield item;
    }
  }

  public async volumeTagsWithKey(tagKey: string): Promise<Map<string, TagMap>> {
    this.volumeTagKeys.push(tagKey);
    if (this.#fleet.error !== undefined) throw this.#fleet.error;
    return new Map(this.#fleet.volumeTags ?? []);
  }
}

type PlannerHistory = FanOutDependencies['history'];
type PutBatch = Parameters<PlannerHistory['putBatches']>[1][number];
type FinishedBatch = Parameters<PlannerHistory['finishBatch']>[2];

/** Every call of the planner's history and queue, in order, in one log. */
class CallLog {
  public readonly calls: string[] = [];
}

class FakePlannerHistory implements PlannerHistory {
  public readonly put: { runId: string; batches: PutBatch[]; at: string }[] = [];
  public readonly finished: { runId: string; batchId: string; result: FinishedBatch }[] = [];
  public putError: unknown;
  readonly #log: CallLog;

  public constructor(log: CallLog) {
    this.#log = log;
  }

  public async putBatches(runId: string, batches: readonly PutBatch[], now: Date): Promise<void> {
    this.#log.calls.push(`putBatches ${batches.map((b) => b.batchId).join(',')}`);
    if (this.putError !== undefined) throw this.putError;
    this.put.push({ runId, batches: [...batches], at: now.toISOString() });
  }

  public async finishBatch(runId: string, batchId: string, result: FinishedBatch): Promise<void> {
    this.#log.calls.push(`finishBatch ${batchId} ${result.status}`);
    this.finished.push({ runId, batchId, result });
  }
}

class FakeQueue implements Pick<FanOutQueueGateway, 'send'> {
  public readonly sent: BatchMessage[] = [];
  public sendError: unknown;
  /** Batch ids SQS does not take. */
  public refused: readonly string[] = [];
  readonly #log: CallLog;

  public constructor(log: CallLog) {
    this.#log = log;
  }

  public async send(messages: readonly BatchMessage[]): Promise<string[]> {
    this.#log.calls.push(`send ${messages.map((m) => m.batchId).join(',')}`);
    if (this.sendError !== undefined) throw this.sendError;
    const refused = messages.filter((m) => this.refused.includes(m.batchId));
    this.sent.push(...messages.filter((m) => !this.refused.includes(m.batchId)));
    return refused.map((m) => m.batchId);
  }
}

interface PlannerWorld {
  readonly deps: FanOutDependencies;
  readonly log: CallLog;
  readonly history: FakePlannerHistory;
  readonly queue: FakeQueue;
  readonly metrics: RecordingMetrics;
  readonly ec2: Map<string, FakeTargetEc2>;
  readonly built: string[];
}

function plannerWorld(
  fleets: readonly [Target, TargetFleet][],
  env: Record<string, string> = {},
): PlannerWorld {
  const log = new CallLog();
  const history = new FakePlannerHistory(log);
  const queue = new FakeQueue(log);
  const metrics = new RecordingMetrics();
  const ec2 = new Map<string, FakeTargetEc2>();
  const built: string[] = [];
  const byLabel = new Map(fleets.map(([target, fleet]) => [targetLabel(target), fleet]));
  const deps: FanOutDependencies = {
    targets: fleets.map(([target]) => target),
    ec2For: (target) => {
      const label = targetLabel(target);
      built.push(label);
      const fleet = byLabel.get(label) ?? {};
      if (fleet.buildError !== undefined) throw fleet.buildError;
      const gateway = ec2.get(label) ?? new FakeTargetEc2(fleet);
      ec2.set(label, gateway);
      return gateway;
    },
    queue,
    history,
    config: configWith(env),
    clock: fixedClock(NOW),
    runId: RUN_ID,
    logger: silentLogger,
    metrics,
  };
  return { deps, log, history, queue, metrics, ec2, built };
}

function dailyBackup(overrides: Partial<FanOutInput> = {}): FanOutInput {
  return {
    job: 'backup',
    schedule: 'daily',
    slot: SLOT,
    dryRun: false,
    trigger: 'schedule',
    resuming: false,
    ...overrides,
  };
}

describe('Function: planFanOut', () => {
  describe('given a backup over several targets', () => {
    it('records every batch pending before it sends any message', async () => {
      // Prepare
      const world = plannerWorld([
        [SELF_IRELAND, { instances: [instance(instanceId(1))] }],
        [SELF_VIRGINIA, { instances: [instance(instanceId(2))] }],
      ]);

      // Act
      await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(world.log.calls).toEqual([
        'putBatches self/eu-west-1/0001,self/us-east-1/0001',
        'send self/eu-west-1/0001,self/us-east-1/0001',
      ]);
      expect(world.history.put).toEqual([
        {
          runId: RUN_ID,
          at: NOW,
          batches: [
            { batchId: 'self/eu-west-1/0001', target: SELF_IRELAND, instances: 1 },
            { batchId: 'self/us-east-1/0001', target: SELF_VIRGINIA, instances: 1 },
          ],
        },
      ]);
    });

    it('sends one message per batch, naming the run, job, schedule, slot and number of batches', async () => {
      // Prepare
      const world = plannerWorld(
        [[SELF_IRELAND, { instances: [1, 2, 3, 4, 5].map((n) => instance(instanceId(n))) }]],
        { FANOUT_BATCH_SIZE: '2' },
      );

      // Act
      const report = await planFanOut(dailyBackup(), world.deps);

      // Assess
      const common = {
        runId: RUN_ID,
        job: 'backup',
        schedule: 'daily',
        slot: SLOT,
        dryRun: false,
        batches: 3,
        target: SELF_IRELAND,
      };
      expect(world.queue.sent).toEqual([
        { ...common, batchId: 'self/eu-west-1/0001', instanceIds: [instanceId(1), instanceId(2)] },
        { ...common, batchId: 'self/eu-west-1/0002', instanceIds: [instanceId(3), instanceId(4)] },
        { ...common, batchId: 'self/eu-west-1/0003', instanceIds: [instanceId(5)] },
      ]);
      expect(report).toMatchObject({
        runId: RUN_ID,
        job: 'backup',
        deployment: 'prod',
        schedule: 'daily',
        slot: SLOT,
        status: 'running',
        startedAt: NOW,
        endedAt: NOW,
        counts: { targets: 1, targetsFailed: 0, instances: 5, batches: 3 },
        targets: [{ ...SELF_IRELAND, instances: 5, batches: 3 }],
      });
      expect(report.error).toBeUndefined();
      expect(world.metrics.counts).toContainEqual(['FanOutBatchesSent', 3]);
    });

    it('spreads a large target over the workers running at once, in whole rounds', async () => {
      // Prepare
      const world = plannerWorld(
        [
          [
            SELF_IRELAND,
            { instances: Array.from({ length: 800 }, (_, n) => instance(instanceId(n + 1))) },
          ],
        ],
        { FANOUT_WORKERS: '4' },
      );

      // Act
      await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(world.queue.sent.map((m) => m.instanceIds?.length)).toEqual([200, 200, 200, 200]);
    });

    it('staggers the first round of a plan of two rounds or more, and sends it first (issue 19)', async () => {
      // Prepare
      const world = plannerWorld(
        [
          [
            SELF_IRELAND,
            { instances: Array.from({ length: 2000 }, (_, n) => instance(instanceId(n + 1))) },
          ],
        ],
        { FANOUT_WORKERS: '4', FANOUT_BATCH_SIZE: '200' },
      );

      // Act
      await planFanOut(dailyBackup(), world.deps);

      // Assess: 12 batches; the first round's workers change batch at different moments.
      const sent = world.queue.sent;
      expect(sent.map((m) => m.instanceIds?.length)).toEqual([
        166, 145, 125, 104, 183, 183, 183, 183, 182, 182, 182, 182,
      ]);
      expect(sent.map((m) => m.batchId)).toEqual(
        sent.map((_, i) => `self/eu-west-1/${String(i + 1).padStart(4, '0')}`),
      );
    });

    it('keeps a small target in one batch rather than pay a describe per worker', async () => {
      // Prepare
      const world = plannerWorld(
        [
          [
            SELF_IRELAND,
            { instances: Array.from({ length: 8 }, (_, n) => instance(instanceId(n + 1))) },
          ],
        ],
        { FANOUT_WORKERS: '4' },
      );

      // Act
      await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(world.queue.sent.map((m) => m.instanceIds?.length)).toEqual([8]);
    });

    it('reads each target once: one describe of opted-in instances, one of skip-tagged volumes', async () => {
      // Prepare
      const world = plannerWorld([
        [SELF_IRELAND, { instances: [instance(instanceId(1))] }],
        [OTHER_IRELAND, { instances: [instance(instanceId(2))] }],
      ]);

      // Act
      await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(world.built).toEqual(['self/eu-west-1', `${OTHER_ACCOUNT}/eu-west-1`]);
      for (const gateway of world.ec2.values()) {
        // Then every tagged instance once (tag-key "*"), for opt-in keys that miss ours.
        expect(gateway.listedTagKeys).toEqual([keys.backup, '*']);
        expect(gateway.volumeTagKeys).toEqual([keys.skip]);
      }
    });

    it('leaves out the instances not due for the schedule', async () => {
      // Prepare
      const world = plannerWorld([
        [
          SELF_IRELAND,
          {
            instances: [
              instance(instanceId(1), 'daily'),
              instance(instanceId(2), 'weekly'),
              instance(instanceId(3), 'false'),
              instance(instanceId(4), 'weekly,daily'),
            ],
          },
        ],
      ]);

      // Act
      const report = await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(world.queue.sent.map((m) => m.instanceIds)).toEqual([[instanceId(1), instanceId(4)]]);
      expect(report.counts.instances).toBe(2);
    });

    it('sends an instance whose only opt-in key misses ours to a batch, whose run reports it', async () => {
      // Prepare: EC2 lists i-2 only for "*" (it has no snapkeeper:backup key).
      const typo: InstanceFacts = {
        ...instance(instanceId(2)),
        tags: { 'Snapkeeper:backup': 'daily', Name: 'typo' },
      };
      const other: InstanceFacts = { ...instance(instanceId(3)), tags: { Backup: 'true' } };
      const world = plannerWorld([
        [SELF_IRELAND, { instances: [instance(instanceId(1)), typo, other] }],
      ]);

      // Act
      const report = await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(world.queue.sent.flatMap((m) => m.instanceIds)).toEqual([
        instanceId(1),
        instanceId(2),
      ]);
      expect(report.counts.instances).toBe(2);
    });

    it('sends an instance whose only AMI opt-in key misses ours to a batch too, as a single run reports it', async () => {
      // Prepare: no snapkeeper:backup key, and an AMI opt-in key in the wrong case
      const typo: InstanceFacts = {
        ...instance(instanceId(2)),
        tags: { 'Snapkeeper:ami': 'daily', Name: 'ami-typo' },
      };
      const world = plannerWorld([[SELF_IRELAND, { instances: [instance(instanceId(1)), typo] }]]);

      // Act
      const report = await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(world.queue.sent.flatMap((m) => m.instanceIds)).toEqual([
        instanceId(1),
        instanceId(2),
      ]);
      expect(report.counts.instances).toBe(2);
    });

    it('hands each batch the skip tags of its own volumes', async () => {
      // Prepare
      const skipped = `vol-${instanceId(2).slice(2)}-data`;
      const world = plannerWorld(
        [
          [
            SELF_IRELAND,
            {
              instances: [instance(instanceId(1)), instance(instanceId(2))],
              volumeTags: new Map([[skipped, { [keys.skip]: 'true' }]]),
            },
          ],
        ],
        { FANOUT_BATCH_SIZE: '1' },
      );

      // Act
      await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(world.queue.sent.map((m) => m.volumeTags)).toEqual([
        undefined,
        { [skipped]: { [keys.skip]: 'true' } },
      ]);
    });

    it('marks every message for reconciliation when it took the slot over', async () => {
      // Prepare
      const world = plannerWorld([
        [SELF_IRELAND, { instances: [instance(instanceId(1))] }],
        [SELF_VIRGINIA, { instances: [instance(instanceId(2))] }],
      ]);

      // Act
      await planFanOut(dailyBackup({ resuming: true }), world.deps);

      // Assess
      expect(world.queue.sent.map((m) => m.reconcile)).toEqual([true, true]);
    });

    it('sends no reconcile flag on a first run of the slot', async () => {
      // Prepare
      const world = plannerWorld([[SELF_IRELAND, { instances: [instance(instanceId(1))] }]]);

      // Act
      await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect('reconcile' in (world.queue.sent[0] ?? {})).toBe(false);
    });

    it('passes the dry run on to every message', async () => {
      // Prepare
      const world = plannerWorld([[SELF_IRELAND, { instances: [instance(instanceId(1))] }]]);

      // Act
      const report = await planFanOut(dailyBackup({ dryRun: true }), world.deps);

      // Assess
      expect(world.queue.sent.map((m) => m.dryRun)).toEqual([true]);
      expect(report.dryRun).toBe(true);
    });
  });

  describe('given a target that cannot be read', () => {
    it('records it as a failed batch <account>/<region>/list and sends the others', async () => {
      // Prepare
      const world = plannerWorld([
        [SELF_IRELAND, { instances: [instance(instanceId(1))] }],
        [OTHER_IRELAND, { error: accessDenied() }],
      ]);

      // Act
      const report = await planFanOut(dailyBackup(), world.deps);

      // Assess
      const listBatch = `${OTHER_ACCOUNT}/eu-west-1/list`;
      expect(world.log.calls).toEqual([
        `putBatches self/eu-west-1/0001,${listBatch}`,
        `finishBatch ${listBatch} failed`,
        'send self/eu-west-1/0001',
      ]);
      expect(world.history.put[0]?.batches).toEqual([
        { batchId: 'self/eu-west-1/0001', target: SELF_IRELAND, instances: 1 },
        { batchId: listBatch, target: OTHER_IRELAND },
      ]);
      expect(world.history.finished).toEqual([
        {
          runId: RUN_ID,
          batchId: listBatch,
          result: {
            status: 'failed',
            endedAt: NOW,
            errorSummary: deniedMessage(),
          },
        },
      ]);
      expect(world.queue.sent.map((m) => [m.batchId, m.batches])).toEqual([
        ['self/eu-west-1/0001', 2],
      ]);
      expect(report.status).toBe('running');
      expect(report.counts).toEqual({ targets: 2, targetsFailed: 1, instances: 1, batches: 2 });
      expect(report.targets).toEqual([
        { ...SELF_IRELAND, instances: 1, batches: 1 },
        {
          ...OTHER_IRELAND,
          batches: 0,
          error: { code: 'AccessDenied', message: deniedMessage() },
        },
      ]);
    });

    it('ends partial, sending nothing, when the targets it could read have nothing due', async () => {
      // Prepare
      const world = plannerWorld([
        [SELF_IRELAND, { instances: [] }],
        [OTHER_IRELAND, { error: accessDenied() }],
      ]);

      // Act
      const report = await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(report.status).toBe('partial');
      expect(report.error).toEqual({ code: 'AccessDenied', message: deniedMessage() });
      expect(world.queue.sent).toEqual([]);
    });

    it('fails when no target could be read', async () => {
      // Prepare
      const world = plannerWorld([[OTHER_IRELAND, { error: accessDenied() }]]);

      // Act
      const report = await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(report.status).toBe('failed');
      expect(world.queue.sent).toEqual([]);
    });

    it('treats a gateway that cannot even be built like one that cannot be read', async () => {
      // Prepare
      const world = plannerWorld([
        [SELF_IRELAND, { instances: [instance(instanceId(1))] }],
        [OTHER_IRELAND, { buildError: new Error('no credentials') }],
      ]);

      // Act
      const report = await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(world.history.finished.map((f) => f.batchId)).toEqual([
        `${OTHER_ACCOUNT}/eu-west-1/list`,
      ]);
      expect(world.queue.sent).toHaveLength(1);
      expect(report.status).toBe('running');
    });

    it('fails the run without recording or sending anything when no target can be read', async () => {
      // Prepare
      const world = plannerWorld([[OTHER_IRELAND, { error: accessDenied() }]]);

      // Act
      const report = await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(world.log.calls).toEqual([]);
      expect(report.status).toBe('failed');
      expect(report.error).toEqual({ code: 'AccessDenied', message: deniedMessage() });
    });
  });

  describe('given nothing to send', () => {
    it('succeeds at once when no instance is due anywhere', async () => {
      // Prepare
      const world = plannerWorld([
        [SELF_IRELAND, { instances: [instance(instanceId(1), 'weekly')] }],
        [SELF_VIRGINIA, {}],
      ]);

      // Act
      const report = await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(report.status).toBe('succeeded');
      expect(report.counts).toEqual({ targets: 2, targetsFailed: 0, instances: 0, batches: 0 });
      expect(report.error).toBeUndefined();
      expect(world.log.calls).toEqual([]);
    });
  });

  describe('given a retention run', () => {
    it('sends one batch per target, without instances and without reading any target', async () => {
      // Prepare
      const world = plannerWorld([
        [SELF_IRELAND, {}],
        [OTHER_IRELAND, {}],
      ]);

      // Act
      const report = await planFanOut(dailyBackup({ job: 'retention' }), world.deps);

      // Assess
      expect(world.built).toEqual([]);
      expect(world.history.put[0]?.batches).toEqual([
        { batchId: 'self/eu-west-1/0001', target: SELF_IRELAND, instances: undefined },
        { batchId: `${OTHER_ACCOUNT}/eu-west-1/0001`, target: OTHER_IRELAND, instances: undefined },
      ]);
      expect(world.queue.sent).toEqual([
        {
          batchId: 'self/eu-west-1/0001',
          target: SELF_IRELAND,
          runId: RUN_ID,
          job: 'retention',
          schedule: 'daily',
          slot: SLOT,
          dryRun: false,
          batches: 2,
          rateShare: 1,
        },
        {
          batchId: `${OTHER_ACCOUNT}/eu-west-1/0001`,
          target: OTHER_IRELAND,
          runId: RUN_ID,
          job: 'retention',
          schedule: 'daily',
          slot: SLOT,
          dryRun: false,
          batches: 2,
          rateShare: 1,
        },
      ]);
      expect(report.targets).toEqual([
        { ...SELF_IRELAND, batches: 1 },
        { ...OTHER_IRELAND, batches: 1 },
      ]);
      expect(report.status).toBe('running');
    });
  });

  describe('when the history or the queue fails', () => {
    it('fails the run and sends nothing when the batches cannot be recorded', async () => {
      // Prepare
      const world = plannerWorld([[SELF_IRELAND, { instances: [instance(instanceId(1))] }]]);
      world.history.putError = sdkError('ProvisionedThroughputExceededException', 'slow down');

      // Act
      const report = await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(report.status).toBe('failed');
      expect(report.error).toEqual({
        code: 'ProvisionedThroughputExceededException',
        message:
          'the batches could not be recorded, so none was sent: BatchWriteItem failed: ProvisionedThroughputExceededException: slow down',
      });
      expect(world.log.calls).toEqual(['putBatches self/eu-west-1/0001']);
      expect(world.queue.sent).toEqual([]);
    });

    it('fails the run when the queue takes none of the batches', async () => {
      // Prepare
      const world = plannerWorld([
        [SELF_IRELAND, { instances: [instance(instanceId(1))] }],
        [SELF_VIRGINIA, { instances: [instance(instanceId(2))] }],
      ]);
      world.queue.sendError = sdkError('AWS.SimpleQueueService.NonExistentQueue', 'no queue');

      // Act
      const report = await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(report.status).toBe('failed');
      expect(report.error).toEqual({
        code: 'FanOutNotSent',
        message: 'none of the 2 batches could be sent to the queue',
      });
    });

    it('fails the run when every message is refused', async () => {
      // Prepare
      const world = plannerWorld([[SELF_IRELAND, { instances: [instance(instanceId(1))] }]]);
      world.queue.refused = ['self/eu-west-1/0001'];

      // Act
      const report = await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(report.status).toBe('failed');
      expect(report.error?.code).toBe('FanOutNotSent');
    });

    it('keeps the run going, naming the batches not sent, when some were refused', async () => {
      // Prepare
      const world = plannerWorld([
        [SELF_IRELAND, { instances: [instance(instanceId(1))] }],
        [SELF_VIRGINIA, { instances: [instance(instanceId(2))] }],
      ]);
      world.queue.refused = ['self/us-east-1/0001'];

      // Act
      const report = await planFanOut(dailyBackup(), world.deps);

      // Assess
      expect(report.status).toBe('running');
      expect(report.error).toEqual({
        code: 'FanOutPartlySent',
        message: '1 of 2 batches could not be sent: self/us-east-1/0001',
      });
      expect(world.metrics.counts).toContainEqual(['FanOutBatchesSent', 1]);
    });
  });
});

// ---------------------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------------------

type WorkerHistory = BatchDependencies['history'];
type CompleteResult = Parameters<RunHistoryGateway['completeRun']>[1];
type Claim = Awaited<ReturnType<WorkerHistory['claimBatch']>>;

interface StoredBatch {
  status: BatchStatus;
  attempts: number;
  leaseAt?: string;
  counts?: Readonly<Record<string, number>> | undefined;
  errorSummary?: string | undefined;
}

/** Lets another worker's pending work run between two table calls. */
const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A run history with the table's checkpoint semantics: a batch `pending` or `retry` (or
 * `running` with a lease older than the stale mark) is claimed with one more attempt; a
 * final one is reported `final`, any other `busy`; a run is completed only while running.
 */
class FakeBatchHistory implements WorkerHistory {
  public readonly batches = new Map<string, StoredBatch>();
  public runStatus: RunRecordStatus = 'running';
  public readonly claims: { runId: string; batchId: string; now: string; stale: string }[] = [];
  public readonly finished: { batchId: string; status: BatchStatus }[] = [];
  public readonly completions: CompleteResult[] = [];
  public completeAttempts = 0;
  public readonly renewals: string[] = [];
  /** Forces `completeRun` to lose (another worker finished the run first). */
  public completeLoses = false;

  public seed(
    batchId: string,
    status: BatchStatus,
    attempts = 0,
    extra: Partial<StoredBatch> = {},
  ) {
    this.batches.set(batchId, { status, attempts, ...extra });
  }

  public async claimBatch(
    runId: string,
    batchId: string,
    now: Date,
    staleBefore: Date,
  ): Promise<Claim> {
    this.claims.push({ runId, batchId, now: now.toISOString(), stale: staleBefore.toISOString() });
    await yieldTurn();
    const batch = this.batches.get(batchId);
    const claimable =
      !batch ||
      batch.status === 'pending' ||
      batch.status === 'retry' ||
      (batch.status === 'running' && (batch.leaseAt ?? '') < staleBefore.toISOString());
    if (claimable) {
      const claimed: StoredBatch = {
        ...batch,
        status: 'running',
        attempts: (batch?.attempts ?? 0) + 1,
        leaseAt: now.toISOString(),
      };
      this.batches.set(batchId, claimed);
      return { kind: 'claimed', checkpoint: this.#checkpoint(batchId, claimed) };
    }
    const checkpoint = this.#checkpoint(batchId, batch);
    return ['succeeded', 'partial', 'failed'].includes(batch.status)
      ? { kind: 'final', checkpoint }
      : { kind: 'busy', checkpoint };
  }

  public async finishBatch(
    _runId: string,
    batchId: string,
    result: Parameters<WorkerHistory['finishBatch']>[2],
  ): Promise<void> {
    await yieldTurn();
    this.finished.push({ batchId, status: result.status });
    const batch = this.batches.get(batchId);
    this.batches.set(batchId, {
      ...batch,
      attempts: batch?.attempts ?? 0,
      status: result.status,
      counts: result.counts,
      errorSummary: result.errorSummary,
    });
  }

  public async runBatches(_runId: string): Promise<BatchCheckpoint[]> {
    await yieldTurn();
    return [...this.batches.entries()].map(([batchId, batch]) => this.#checkpoint(batchId, batch));
  }

  public async completeRun(_runId: string, result: CompleteResult): Promise<boolean> {
    this.completeAttempts += 1;
    await yieldTurn();
    if (this.completeLoses || this.runStatus !== 'running') return false;
    this.runStatus = result.status;
    this.completions.push(result);
    return true;
  }

  public async renewLease(runId: string, now: Date): Promise<void> {
    this.renewals.push(`${runId} ${now.toISOString()}`);
  }

  public async getRun(runId: string) {
    await yieldTurn();
    return {
      runId,
      deployment: 'prod',
      job: 'backup',
      trigger: 'schedule',
      dryRun: false,
      startedAt: PLANNER_STARTED_AT,
      status: this.runStatus,
    };
  }

  public statusOf(batchId: string): BatchStatus | undefined {
    return this.batches.get(batchId)?.status;
  }

  #checkpoint(batchId: string, batch: StoredBatch): BatchCheckpoint {
    return {
      batchId,
      status: batch.status,
      attempts: batch.attempts,
      ...(batch.counts ? { counts: batch.counts } : {}),
      ...(batch.errorSummary ? { errorSummary: batch.errorSummary } : {}),
    };
  }
}

/** What `runBackupJob` calls on a target's gateway. */
type BackupEc2 = Pick<
  Ec2Gateway,
  | 'listInstancesWithTagKey'
  | 'volumeTagsWithKey'
  | 'createSnapshotSet'
  | 'listSnapshotsTagged'
  | 'deleteSnapshot'
  | 'listInstancesByIds'
>;

/**
 * A target's EC2 for the worker: describes instances by id, answers snapshot queries by
 * their tag filters (a list value matches any of its values), and makes snapshot sets,
 * failing for the instances told to fail.
 */
class FakeWorkerEc2 implements BackupEc2 {
  public readonly calls: string[] = [];
  public readonly idQueries: (readonly string[])[] = [];
  public readonly snapshotQueries: Readonly<Record<string, string | readonly string[]>>[] = [];
  public readonly requests: SnapshotSetRequest[] = [];
  public readonly snapshots: SnapshotFacts[] = [];
  /** Instance ids whose CreateSnapshots fails. */
  public failing = new Set<string>();
  readonly #instances: readonly InstanceFacts[];

  public constructor(instances: readonly InstanceFacts[], existing: readonly SnapshotFacts[] = []) {
    this.#instances = instances;
    this.snapshots.push(...existing);
  }

  public async *listInstancesWithTagKey(tagKey: string): AsyncGenerator<InstanceFacts> {
    this.calls.push(`listInstancesWithTagKey ${tagKey}`);
    yield* this.#instances;
  }

  public async *listInstancesByIds(ids: readonly string[]): AsyncGenerator<InstanceFacts> {
    this.calls.push('listInstancesByIds');
    this.idQueries.push(ids);
    for (const item of this.#instances) if (ids.includes(item.instanceId)) yield item;
  }

  public async volumeTagsWithKey(tagKey: string): Promise<Map<string, TagMap>> {
    this.calls.push(`volumeTagsWithKey ${tagKey}`);
    return new Map();
  }

  public async *listSnapshotsTagged(
    tags: Readonly<Record<string, string | readonly string[]>>,
  ): AsyncGenerator<SnapshotFacts> {
    this.calls.push('listSnapshotsTagged');
    this.snapshotQueries.push(tags);
    const matches = (snapshot: SnapshotFacts) =>
      Object.entries(tags).every(([key, value]) => {
        const actual = snapshot.tags[key];
        return typeof value === 'string'
          ? actual === value
          : actual !== undefined && value.includes(actual);
      });
    for (const snapshot of this.snapshots) if (matches(snapshot)) yield snapshot;
  }

  public async deleteSnapshot(snapshotId: string): Promise<void> {
    this.calls.push(`deleteSnapshot ${snapshotId}`);
  }

  public async createSnapshotSet(request: SnapshotSetRequest): Promise<CreatedSnapshot[]> {
    this.calls.push(`createSnapshotSet ${request.instanceId}`);
    this.requests.push(request);
    if (this.failing.has(request.instanceId)) {
      throw sdkError('IncorrectState', `instance ${request.instanceId} is not in a valid state`);
    }
    const made = request.included.map((volume) => ({
      snapshotId: `snap-${volume.volumeId.slice(4)}`,
      volumeId: volume.volumeId,
      sizeGiB: 8,
      state: 'pending',
    }));
    for (const snapshot of made) {
      this.snapshots.push({
        ...snapshot,
        startTime: new Date(NOW),
        tags: Object.fromEntries(request.tags.map((t) => [t.Key, t.Value])),
      });
    }
    return made;
  }

  public createdFor(): string[] {
    return this.requests.map((r) => r.instanceId);
  }
}

/** A snapshot an earlier attempt made for the slot. */
function slotSnapshot(id: string, byRun = RUN_ID): SnapshotFacts {
  return {
    snapshotId: `snap-${id.slice(2)}-root-earlier`,
    volumeId: `vol-${id.slice(2)}-root`,
    state: 'completed',
    startTime: new Date('2026-11-23T03:00:09.000Z'),
    sizeGiB: 8,
    tags: {
      [keys.managed]: 'true',
      [keys.deployment]: 'prod',
      [keys.schedule]: 'daily',
      [keys.slot]: SLOT,
      [keys.instanceId]: id,
      [keys.runId]: byRun,
    },
  };
}

interface WorkerWorld {
  readonly deps: BatchDependencies;
  readonly history: FakeBatchHistory;
  readonly ec2: FakeWorkerEc2;
  readonly events: RecordingEvents;
  readonly targetsAsked: string[];
}

function workerWorld(
  ec2: FakeWorkerEc2,
  options: { readonly env?: Record<string, string>; readonly history?: FakeBatchHistory } = {},
): WorkerWorld {
  const history = options.history ?? new FakeBatchHistory();
  const events = new RecordingEvents();
  const targetsAsked: string[] = [];
  const deps: BatchDependencies = {
    history,
    ec2For: (target, share) => {
      targetsAsked.push(
        share === undefined ? targetLabel(target) : `${targetLabel(target)}@${share}`,
      );
      // The job uses only the methods of BackupEc2; the gateway class has private state.
      return ec2 as unknown as Ec2Gateway;
    },
    config: configWith({ FANOUT_MAX_ATTEMPTS: '3', ...options.env }),
    clock: fixedClock(NOW),
    logger: silentLogger,
    events,
  };
  return { deps, history, ec2, events, targetsAsked };
}

const PLANNER_STARTED_AT = '2026-11-23T03:00:01.000Z';

function batchMessage(overrides: Partial<BatchMessage> = {}): BatchMessage {
  return {
    runId: RUN_ID,
    job: 'backup',
    schedule: 'daily',
    slot: SLOT,
    dryRun: false,
    batches: 1,
    batchId: `${OTHER_ACCOUNT}/eu-west-1/0001`,
    target: OTHER_IRELAND,
    instanceIds: [instanceId(1), instanceId(2)],
    ...overrides,
  };
}

async function retryError(work: Promise<unknown>): Promise<BatchRetryError> {
  try {
    await work;
  } catch (error) {
    if (error instanceof BatchRetryError) return error;
    throw error;
  }
  throw new Error('expected a BatchRetryError');
}

describe('Function: runFanOutBatch', () => {
  describe('given a first delivery of a batch', () => {
    it("backs up the batch's instances in its target and finishes the batch succeeded", async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([
        instance(instanceId(1)),
        instance(instanceId(2)),
        instance(instanceId(3)),
      ]);
      const world = workerWorld(ec2);

      // Act
      const outcome = await runFanOutBatch(batchMessage({ batches: 2 }), world.deps);

      // Assess
      expect(world.targetsAsked).toEqual([`${OTHER_ACCOUNT}/eu-west-1`]);
      expect(ec2.idQueries).toEqual([[instanceId(1), instanceId(2)]]);
      expect(ec2.createdFor().sort()).toEqual([instanceId(1), instanceId(2)]);
      expect(ec2.calls).not.toContain('listSnapshotsTagged');
      expect(outcome).toEqual({
        runId: RUN_ID,
        batchId: `${OTHER_ACCOUNT}/eu-west-1/0001`,
        status: 'succeeded',
        attempt: 1,
        counts: {
          due: 2,
          backedUp: 2,
          skipped: 0,
          failed: 0,
          snapshots: 4,
          covered: 0,
          deferred: 0,
          duplicatesRemoved: 0,
        },
      });
      expect(world.history.statusOf(`${OTHER_ACCOUNT}/eu-west-1/0001`)).toBe('succeeded');
    });

    it('plans only when the worker runs with DRY_RUN=true, whatever the message says', async () => {
      // Prepare: a live message (sent before DRY_RUN was set) read by a DRY_RUN worker
      const ec2 = new FakeWorkerEc2([instance(instanceId(1))]);
      const world = workerWorld(ec2, { env: { DRY_RUN: 'true' } });

      // Act
      const outcome = await runFanOutBatch(
        batchMessage({ instanceIds: [instanceId(1)], dryRun: false }),
        world.deps,
      );

      // Assess
      expect(ec2.requests).toEqual([]);
      expect(outcome.counts).toMatchObject({ due: 1, backedUp: 0, snapshots: 0 });
    });

    it('reports an instance whose only AMI opt-in key misses ours, and backs it up not', async () => {
      // Prepare: the planner sent it for its near-miss key
      const typo: InstanceFacts = {
        ...instance(instanceId(2)),
        tags: { 'Snapkeeper:ami': 'daily', Name: 'ami-typo' },
      };
      const ec2 = new FakeWorkerEc2([instance(instanceId(1)), typo]);
      const world = workerWorld(ec2);

      // Act
      const outcome = await runFanOutBatch(batchMessage(), world.deps);

      // Assess
      expect(ec2.createdFor()).toEqual([instanceId(1)]);
      expect(outcome).toMatchObject({ status: 'partial', counts: { skipped: 1 } });
    });

    it('tags the snapshots with the fan-out run id and the slot', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1))]);
      const world = workerWorld(ec2);

      // Act
      await runFanOutBatch(batchMessage({ instanceIds: [instanceId(1)] }), world.deps);

      // Assess
      const tags = Object.fromEntries(ec2.requests[0]?.tags.map((t) => [t.Key, t.Value]) ?? []);
      expect(tags).toMatchObject({ [keys.runId]: RUN_ID, [keys.slot]: SLOT });
    });

    it('uses the skip tags the planner read instead of reading the volumes again', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1))]);
      const world = workerWorld(ec2);
      const dataVolume = `vol-${instanceId(1).slice(2)}-data`;

      // Act
      await runFanOutBatch(
        batchMessage({
          instanceIds: [instanceId(1)],
          volumeTags: { [dataVolume]: { [keys.skip]: 'true' } },
        }),
        world.deps,
      );

      // Assess
      expect(ec2.calls.some((c) => c.startsWith('volumeTagsWithKey'))).toBe(false);
      expect(ec2.requests[0]?.excluded.map((e) => e.volume.volumeId)).toEqual([dataVolume]);
    });

    it('claims the batch with a stale mark of the function timeout plus two minutes', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1))]);
      const world = workerWorld(ec2, { env: { FUNCTION_TIMEOUT_SECONDS: '600' } });

      // Act
      await runFanOutBatch(batchMessage({ instanceIds: [instanceId(1)] }), world.deps);

      // Assess
      expect(world.history.claims).toEqual([
        {
          runId: RUN_ID,
          batchId: `${OTHER_ACCOUNT}/eu-west-1/0001`,
          now: NOW,
          stale: '2026-11-23T02:48:07.000Z',
        },
      ]);
    });
  });

  describe('given a batch already final', () => {
    it.each<BatchStatus>(['succeeded', 'partial', 'failed'])(
      'treats a delivery of a %s batch as a duplicate and makes no EC2 call',
      async (status) => {
        // Prepare: one of two batches, the other still pending
        const ec2 = new FakeWorkerEc2([instance(instanceId(1)), instance(instanceId(2))]);
        const world = workerWorld(ec2);
        world.history.seed(`${OTHER_ACCOUNT}/eu-west-1/0001`, status, 2);
        world.history.seed(`${OTHER_ACCOUNT}/eu-west-1/0002`, 'pending', 0);

        // Act
        const outcome = await runFanOutBatch(batchMessage({ batches: 2 }), world.deps);

        // Assess
        expect(outcome).toEqual({
          runId: RUN_ID,
          batchId: `${OTHER_ACCOUNT}/eu-west-1/0001`,
          status: 'duplicate',
          attempt: 2,
        });
        expect(world.targetsAsked).toEqual([]);
        expect(ec2.calls).toEqual([]);
        expect(world.history.finished).toEqual([]);
        expect(world.history.statusOf(`${OTHER_ACCOUNT}/eu-west-1/0001`)).toBe(status);
      },
    );
  });

  describe('given the last batch final but the run never finished (the first delivery died in between)', () => {
    it('finishes the run on the redelivery, once, and announces it with the planner’s start time', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1))]);
      const world = workerWorld(ec2);
      world.history.seed(`${OTHER_ACCOUNT}/eu-west-1/0001`, 'succeeded', 1, {
        counts: { backedUp: 2 },
      });

      // Act
      const first = await runFanOutBatch(batchMessage(), world.deps);
      const second = await runFanOutBatch(batchMessage(), world.deps);

      // Assess
      expect(first).toMatchObject({ status: 'duplicate', run: { status: 'succeeded' } });
      expect(second).not.toHaveProperty('run');
      expect(world.history.runStatus).toBe('succeeded');
      expect(world.history.completions).toHaveLength(1);
      expect(world.events.published).toHaveLength(1);
      expect(world.events.published[0]).toMatchObject({
        runId: RUN_ID,
        status: 'succeeded',
        startedAt: PLANNER_STARTED_AT,
      });
      expect(ec2.calls).toEqual([]);
    });
  });

  describe('given a batch that runs out of time after some progress', () => {
    /** Time enough for the first instance only. */
    const runningOut = () => {
      let calls = 0;
      return () => (calls++ === 0 ? 600_000 : 1_000);
    };

    it('continues it in a new message, without using up an attempt or failing the record', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1)), instance(instanceId(2))]);
      const world = workerWorld(ec2);
      const requeued: BatchMessage[] = [];
      const deps: BatchDependencies = {
        ...world.deps,
        remainingMs: runningOut(),
        requeue: async (message) => {
          requeued.push(message);
        },
      };

      // Act
      const outcome = await runFanOutBatch(batchMessage(), deps);

      // Assess
      expect(outcome).toMatchObject({
        status: 'retry',
        attempt: 1,
        counts: { backedUp: 1, deferred: 1 },
      });
      expect(requeued).toEqual([batchMessage()]);
      expect(world.history.statusOf(`${OTHER_ACCOUNT}/eu-west-1/0001`)).toBe('retry');
      expect(world.history.completeAttempts).toBe(0);
    });

    it('asks the queue for another delivery when it cannot send a new message', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1)), instance(instanceId(2))]);
      const world = workerWorld(ec2);

      // Act
      const error = await retryError(
        runFanOutBatch(batchMessage(), { ...world.deps, remainingMs: runningOut() }),
      );

      // Assess
      expect(error.message).toMatch(/incomplete: 1 left for the next delivery/);
    });
  });

  describe('given a batch with a rate share of its own (retention)', () => {
    it('reaches the target with that share of the rate', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1))]);
      const world = workerWorld(ec2);

      // Act
      await runFanOutBatch(
        batchMessage({ instanceIds: [instanceId(1)], rateShare: 1 }),
        world.deps,
      );

      // Assess
      expect(world.targetsAsked).toEqual([`${OTHER_ACCOUNT}/eu-west-1@1`]);
    });
  });

  describe('given snapshot locks asked by the instance tag (issue 21)', () => {
    /** A tiers port recording the locks asked, answering each locked. */
    function fakeTiers() {
      const locked: string[] = [];
      const tiers: SnapshotTiersPort = {
        lockSnapshot: async (r) => {
          locked.push(r.snapshotId);
          return { snapshotId: r.snapshotId, state: 'governance' };
        },
        lockedSnapshots: async () => new Map(),
        archiveSnapshot: async () => ({}),
        tierStatuses: async () => new Map(),
        restoreSnapshotTier: async () => {
          throw new Error('not in a batch');
        },
      };
      return { tiers, locked };
    }

    it("locks the backup batch's new snapshots through its own target's tiers gateway", async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([
        instance(instanceId(1), 'daily', { [keys.lock]: 'daily=30d' }),
      ]);
      const world = workerWorld(ec2);
      const { tiers, locked } = fakeTiers();
      const asked: string[] = [];
      const deps: BatchDependencies = {
        ...world.deps,
        tiersFor: (target, share) => {
          asked.push(`${targetLabel(target)}@${share}`);
          return tiers;
        },
      };

      // Act
      const outcome = await runFanOutBatch(
        batchMessage({ instanceIds: [instanceId(1)], rateShare: 0.5 }),
        deps,
      );

      // Assess
      expect(asked).toEqual([`${OTHER_ACCOUNT}/eu-west-1@0.5`]);
      expect(locked).toHaveLength(2);
      expect(outcome.status).toBe('succeeded');
    });

    it('locks nothing without a tiers gateway (as before the worker had one)', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([
        instance(instanceId(1), 'daily', { [keys.lock]: 'daily=30d' }),
      ]);
      const world = workerWorld(ec2);

      // Act
      const outcome = await runFanOutBatch(
        batchMessage({ instanceIds: [instanceId(1)] }),
        world.deps,
      );

      // Assess
      expect(outcome.status).toBe('succeeded');
    });
  });

  describe('given a batch another worker is running, and a queue to send to', () => {
    it('looks again later in a new message instead of using up a delivery, touching nothing', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1))]);
      const world = workerWorld(ec2);
      world.history.seed(`${OTHER_ACCOUNT}/eu-west-1/0001`, 'running', 1, { leaseAt: NOW });
      const requeued: { batchId: string; delaySeconds?: number | undefined }[] = [];

      // Act
      const outcome = await runFanOutBatch(batchMessage(), {
        ...world.deps,
        requeue: async (message, delaySeconds) => {
          requeued.push({ batchId: message.batchId, delaySeconds });
        },
      });

      // Assess
      expect(outcome).toEqual({
        runId: RUN_ID,
        batchId: `${OTHER_ACCOUNT}/eu-west-1/0001`,
        status: 'running',
        attempt: 1,
      });
      expect(requeued).toEqual([
        { batchId: `${OTHER_ACCOUNT}/eu-west-1/0001`, delaySeconds: BUSY_RECHECK_SECONDS },
      ]);
      expect(ec2.calls).toEqual([]);
      expect(world.history.statusOf(`${OTHER_ACCOUNT}/eu-west-1/0001`)).toBe('running');
    });
  });

  describe('given a batch another worker is running', () => {
    it('asks for another delivery, without touching EC2', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1))]);
      const world = workerWorld(ec2);
      world.history.seed(`${OTHER_ACCOUNT}/eu-west-1/0001`, 'running', 1, { leaseAt: NOW });

      // Act
      const error = await retryError(runFanOutBatch(batchMessage(), world.deps));

      // Assess
      expect(error.batchId).toBe(`${OTHER_ACCOUNT}/eu-west-1/0001`);
      expect(error.message).toBe(
        `batch ${OTHER_ACCOUNT}/eu-west-1/0001 will be retried: another worker is running it now`,
      );
      expect(ec2.calls).toEqual([]);
      expect(world.history.finished).toEqual([]);
    });

    it('takes the batch over when the other worker is long dead, as a resumed attempt', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1))]);
      const world = workerWorld(ec2);
      world.history.seed(`${OTHER_ACCOUNT}/eu-west-1/0001`, 'running', 1, {
        leaseAt: '2026-11-23T02:30:00.000Z',
      });

      // Act
      const outcome = await runFanOutBatch(
        batchMessage({ instanceIds: [instanceId(1)] }),
        world.deps,
      );

      // Assess
      expect(outcome.attempt).toBe(2);
      expect(ec2.calls[0]).toBe('listInstancesByIds');
      expect(ec2.calls).toContain('listSnapshotsTagged');
    });
  });

  describe('given an instance that fails', () => {
    it('marks the batch retry and asks for another delivery before the last attempt', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1)), instance(instanceId(2))]);
      ec2.failing.add(instanceId(2));
      const world = workerWorld(ec2);

      // Act
      const error = await retryError(runFanOutBatch(batchMessage(), world.deps));

      // Assess
      expect(error.message).toContain(`${instanceId(2)}: IncorrectState`);
      expect(world.history.statusOf(`${OTHER_ACCOUNT}/eu-west-1/0001`)).toBe('retry');
      expect(world.history.batches.get(`${OTHER_ACCOUNT}/eu-west-1/0001`)?.counts).toMatchObject({
        backedUp: 1,
        failed: 1,
      });
      expect(world.history.completions).toEqual([]);
      expect(world.events.published).toEqual([]);
    });

    it.each([
      ['some instances failed', [instanceId(2)], 'partial'],
      ['every instance failed', [instanceId(1), instanceId(2)], 'failed'],
    ])(
      'makes the failure final on the last attempt when %s, without asking again',
      async (_case, failing, status) => {
        // Prepare
        const ec2 = new FakeWorkerEc2([instance(instanceId(1)), instance(instanceId(2))]);
        for (const id of failing) ec2.failing.add(id);
        const world = workerWorld(ec2);
        world.history.seed(`${OTHER_ACCOUNT}/eu-west-1/0001`, 'retry', 2);

        // Act
        const outcome = await runFanOutBatch(batchMessage(), world.deps);

        // Assess
        expect(outcome.attempt).toBe(3);
        expect(outcome.status).toBe(status);
        expect(outcome.errorSummary).toContain('IncorrectState');
        expect(world.history.statusOf(`${OTHER_ACCOUNT}/eu-west-1/0001`)).toBe(status);
      },
    );

    it('honours a lower FANOUT_MAX_ATTEMPTS: one attempt makes the failure final', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1))]);
      ec2.failing.add(instanceId(1));
      const world = workerWorld(ec2, { env: { FANOUT_MAX_ATTEMPTS: '1' } });

      // Act
      const outcome = await runFanOutBatch(
        batchMessage({ instanceIds: [instanceId(1)] }),
        world.deps,
      );

      // Assess
      expect(outcome.status).toBe('failed');
      expect(world.history.statusOf(`${OTHER_ACCOUNT}/eu-west-1/0001`)).toBe('failed');
    });

    it('does not retry a batch whose only problem is a bad tag', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([
        instance(instanceId(1)),
        instance(instanceId(2), 'daily', { [keys.retain]: 'forever' }),
      ]);
      const world = workerWorld(ec2);

      // Act
      const outcome = await runFanOutBatch(batchMessage(), world.deps);

      // Assess
      expect(outcome.status).toBe('partial');
      expect(outcome.attempt).toBe(1);
      expect(world.history.statusOf(`${OTHER_ACCOUNT}/eu-west-1/0001`)).toBe('partial');
    });
  });

  describe('given a job that throws', () => {
    it('marks the batch retry with the reason and asks for another delivery', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1))]);
      const world = workerWorld(ec2);

      // Act
      const error = await retryError(
        runFanOutBatch(batchMessage({ schedule: 'hourly' }), world.deps),
      );

      // Assess
      expect(error.message).toContain('"hourly" is not a known schedule');
      expect(world.history.statusOf(`${OTHER_ACCOUNT}/eu-west-1/0001`)).toBe('retry');
    });
  });

  describe('given a second attempt', () => {
    it("reads the slot's snapshots of the batch's instances and skips those backed up", async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2(
        [instance(instanceId(1)), instance(instanceId(2)), instance(instanceId(9))],
        [slotSnapshot(instanceId(1)), slotSnapshot(instanceId(9))],
      );
      const world = workerWorld(ec2);
      world.history.seed(`${OTHER_ACCOUNT}/eu-west-1/0001`, 'retry', 1);

      // Act
      const outcome = await runFanOutBatch(batchMessage(), world.deps);

      // Assess
      expect(ec2.snapshotQueries).toEqual([
        {
          [keys.managed]: 'true',
          [keys.deployment]: 'prod',
          [keys.schedule]: 'daily',
          [keys.slot]: SLOT,
          [keys.instanceId]: [instanceId(1), instanceId(2)],
        },
      ]);
      expect(ec2.createdFor()).toEqual([instanceId(2)]);
      expect(outcome).toMatchObject({
        status: 'succeeded',
        attempt: 2,
        counts: { covered: 1, backedUp: 1, failed: 0 },
      });
    });

    it('makes no create at all when the first attempt had backed up every instance', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2(
        [instance(instanceId(1)), instance(instanceId(2))],
        [slotSnapshot(instanceId(1)), slotSnapshot(instanceId(2))],
      );
      const world = workerWorld(ec2);
      world.history.seed(`${OTHER_ACCOUNT}/eu-west-1/0001`, 'retry', 1);

      // Act
      const outcome = await runFanOutBatch(batchMessage(), world.deps);

      // Assess
      expect(ec2.requests).toEqual([]);
      expect(outcome.counts).toMatchObject({ covered: 2 });
    });

    it('retries only the instance that failed, across deliveries of the same batch', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1)), instance(instanceId(2))]);
      ec2.failing.add(instanceId(2));
      const world = workerWorld(ec2);
      await retryError(runFanOutBatch(batchMessage(), world.deps));
      ec2.failing.clear();

      // Act
      const outcome = await runFanOutBatch(batchMessage(), world.deps);

      // Assess
      expect(ec2.createdFor()).toEqual([instanceId(1), instanceId(2), instanceId(2)]);
      expect(outcome).toMatchObject({ status: 'succeeded', attempt: 2 });
    });
  });

  describe('given a batch of a run that took its slot over', () => {
    it('reconciles by the slot tag on its first attempt', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2(
        [instance(instanceId(1)), instance(instanceId(2))],
        [slotSnapshot(instanceId(1), '20261123T030001Z-deadbeef')],
      );
      const world = workerWorld(ec2);

      // Act
      const outcome = await runFanOutBatch(batchMessage({ reconcile: true }), world.deps);

      // Assess
      expect(outcome.attempt).toBe(1);
      expect(ec2.snapshotQueries).toHaveLength(1);
      expect(ec2.createdFor()).toEqual([instanceId(2)]);
    });
  });

  describe('given the last batch of the run', () => {
    it('completes the run once and announces it', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1)), instance(instanceId(2))]);
      const world = workerWorld(ec2);
      world.history.seed('self/eu-west-1/0001', 'succeeded', 1, {
        counts: { due: 3, backedUp: 3, snapshots: 6, failed: 0 },
      });
      const message = batchMessage({ batches: 2 });

      // Act
      const outcome = await runFanOutBatch(message, world.deps);

      // Assess
      const counts = {
        due: 5,
        backedUp: 5,
        skipped: 0,
        failed: 0,
        snapshots: 10,
        covered: 0,
        deferred: 0,
        duplicatesRemoved: 0,
        batches: 2,
        batchesFailed: 0,
      };
      expect(world.history.completions).toEqual([
        { status: 'succeeded', endedAt: NOW, counts, errorSummary: undefined },
      ]);
      expect(world.events.published).toEqual([
        {
          runId: RUN_ID,
          deployment: 'prod',
          job: 'backup',
          trigger: 'schedule',
          schedule: 'daily',
          slot: SLOT,
          dryRun: false,
          status: 'succeeded',
          startedAt: PLANNER_STARTED_AT,
          endedAt: NOW,
          counts,
          errorSummary: undefined,
        },
      ]);
      expect(outcome.run).toEqual({ status: 'succeeded', batches: 2, finished: 2, counts });
    });

    it('leaves the run running while another batch is not final', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1)), instance(instanceId(2))]);
      const world = workerWorld(ec2);
      world.history.seed('self/eu-west-1/0001', 'retry', 1);

      // Act
      const outcome = await runFanOutBatch(batchMessage({ batches: 2 }), world.deps);

      // Assess
      expect(world.history.completions).toEqual([]);
      expect(world.events.published).toEqual([]);
      expect(outcome.run).toBeUndefined();
    });

    it('ends the run partial when a target could not be read', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1)), instance(instanceId(2))]);
      const world = workerWorld(ec2);
      world.history.seed('999999999999/eu-west-1/list', 'failed', 0, {
        errorSummary: 'AccessDenied: not authorized to perform sts:AssumeRole',
      });

      // Act
      await runFanOutBatch(batchMessage({ batches: 2 }), world.deps);

      // Assess
      expect(world.history.completions).toMatchObject([
        {
          status: 'partial',
          counts: { batches: 2, batchesFailed: 1 },
          errorSummary:
            '1 batch(es) with problems; 999999999999/eu-west-1/list: AccessDenied: not authorized to perform sts:AssumeRole',
        },
      ]);
      expect(world.events.published.map((e) => e.status)).toEqual(['partial']);
    });

    it('completes the run only once when the last two batches finish together', async () => {
      // Prepare
      const history = new FakeBatchHistory();
      const first = workerWorld(new FakeWorkerEc2([instance(instanceId(1))]), { history });
      const second = workerWorld(new FakeWorkerEc2([instance(instanceId(2))]), { history });
      const events = new RecordingEvents();
      const one = batchMessage({
        batches: 2,
        batchId: 'self/eu-west-1/0001',
        target: SELF_IRELAND,
      });
      const two = batchMessage({
        batches: 2,
        batchId: 'self/eu-west-1/0002',
        target: SELF_IRELAND,
      });

      // Act
      const outcomes = await Promise.all([
        runFanOutBatch({ ...one, instanceIds: [instanceId(1)] }, { ...first.deps, events }),
        runFanOutBatch({ ...two, instanceIds: [instanceId(2)] }, { ...second.deps, events }),
      ]);

      // Assess
      expect(history.completeAttempts).toBe(2);
      expect(history.completions).toHaveLength(1);
      expect(events.published).toHaveLength(1);
      expect(outcomes.filter((o) => o.run !== undefined)).toHaveLength(1);
    });

    it('announces nothing when another worker completed the run first', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1)), instance(instanceId(2))]);
      const world = workerWorld(ec2);
      world.history.completeLoses = true;

      // Act
      const outcome = await runFanOutBatch(batchMessage(), world.deps);

      // Assess
      expect(world.events.published).toEqual([]);
      expect(outcome.run).toBeUndefined();
      expect(outcome.status).toBe('succeeded');
    });

    it('finishes the batch all the same when the announcement cannot be published', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1)), instance(instanceId(2))]);
      const world = workerWorld(ec2);
      world.events.failure = sdkError('AccessDeniedException', 'no events:PutEvents');

      // Act
      const outcome = await runFanOutBatch(batchMessage(), world.deps);

      // Assess
      expect(outcome.status).toBe('succeeded');
      expect(outcome.run?.status).toBe('succeeded');
      expect(world.history.completions).toHaveLength(1);
    });

    it('completes the run even without an events bus', async () => {
      // Prepare
      const ec2 = new FakeWorkerEc2([instance(instanceId(1)), instance(instanceId(2))]);
      const world = workerWorld(ec2);
      const { events: _none, ...withoutEvents } = world.deps;

      // Act
      const outcome = await runFanOutBatch(batchMessage(), withoutEvents);

      // Assess
      expect(outcome.run?.status).toBe('succeeded');
      expect(world.history.runStatus).toBe('succeeded');
    });
  });
});

describe('Fan-out metrics: the job they belong to (the failure alarms watch job=backup and job=retention)', () => {
  /** The worker's own metrics and those it publishes under each job's dimension. */
  function metricsByJob() {
    const own = new RecordingMetrics();
    const byJob = new Map<string, RecordingMetrics>();
    const metricsFor = (job: string) => {
      const recorder = byJob.get(job) ?? new RecordingMetrics();
      byJob.set(job, recorder);
      return recorder;
    };
    return { own, byJob, metricsFor };
  }

  it('counts BackupRunsFailed once, under job=backup, when the last batch ends the run failed', async () => {
    // Prepare: the other batch failed for good; this one fails on its last attempt.
    const ec2 = new FakeWorkerEc2([instance(instanceId(1)), instance(instanceId(2))]);
    ec2.failing.add(instanceId(1));
    ec2.failing.add(instanceId(2));
    const world = workerWorld(ec2);
    world.history.seed('self/eu-west-1/0001', 'failed', 3);
    world.history.seed(`${OTHER_ACCOUNT}/eu-west-1/0001`, 'retry', 2);
    const metrics = metricsByJob();

    // Act
    const outcome = await runFanOutBatch(batchMessage({ batches: 2 }), {
      ...world.deps,
      metrics: metrics.own,
      metricsFor: metrics.metricsFor,
    });

    // Assess
    expect(outcome.run?.status).toBe('failed');
    const backup = metrics.byJob.get('backup')?.counts ?? [];
    expect(backup.filter(([name]) => /Runs(Failed|Succeeded)$/.test(name))).toEqual([
      ['BackupRunsFailed', 1],
    ]);
    expect(backup).toContainEqual(['InstancesFailed', 2]);
    expect(metrics.own.counts.map(([name]) => name)).not.toContain('BackupRunsFailed');
    expect(metrics.own.counts).toContainEqual(['FanOutBatchesFinished', 1]);
  });

  it('counts no run outcome for a batch that is not the run’s last (a batch is not a run)', async () => {
    // Prepare
    const ec2 = new FakeWorkerEc2([instance(instanceId(1))]);
    ec2.failing.add(instanceId(1));
    const world = workerWorld(ec2);
    world.history.seed('self/eu-west-1/0001', 'retry', 1);
    world.history.seed(`${OTHER_ACCOUNT}/eu-west-1/0001`, 'retry', 2);
    const metrics = metricsByJob();

    // Act
    await runFanOutBatch(batchMessage({ batches: 2, instanceIds: [instanceId(1)] }), {
      ...world.deps,
      metrics: metrics.own,
      metricsFor: metrics.metricsFor,
    });

    // Assess
    const all = [...metrics.own.counts, ...(metrics.byJob.get('backup')?.counts ?? [])];
    expect(all.map(([name]) => name).filter((n) => /Runs(Failed|Succeeded)$/.test(n))).toEqual([]);
  });

  it('counts RetentionRunsSucceeded under job=retention when a retention run ends', async () => {
    // Prepare: its only batch is final; the delivery that made it so died before the end.
    const world = workerWorld(new FakeWorkerEc2([]));
    world.history.seed(`${OTHER_ACCOUNT}/eu-west-1/0001`, 'succeeded', 1);
    const metrics = metricsByJob();

    // Act
    const outcome = await runFanOutBatch(
      batchMessage({ job: 'retention', instanceIds: undefined, batches: 1 }),
      { ...world.deps, metrics: metrics.own, metricsFor: metrics.metricsFor },
    );

    // Assess
    expect(outcome.run?.status).toBe('succeeded');
    expect(metrics.byJob.get('retention')?.counts).toEqual([['RetentionRunsSucceeded', 1]]);
  });

  it('counts BackupRunsFailed under job=backup when the planner can send nothing', async () => {
    // Prepare
    const world = plannerWorld([[SELF_IRELAND, { instances: [instance(instanceId(1))] }]]);
    world.queue.sendError = sdkError('ServiceUnavailable', 'SQS is unavailable', 503);
    const metrics = metricsByJob();

    // Act
    const report = await planFanOut(dailyBackup(), {
      ...world.deps,
      metricsFor: metrics.metricsFor,
    });

    // Assess
    expect(report.status).toBe('failed');
    expect(metrics.byJob.get('backup')?.counts).toEqual([['BackupRunsFailed', 1]]);
  });
});

/** The worker's EC2 for a retention batch: it also answers which images hold snapshots. */
class FakeRetentionEc2 extends FakeWorkerEc2 {
  public async snapshotHolders(): Promise<Map<string, string[]>> {
    this.calls.push('snapshotHolders');
    return new Map();
  }
}

describe('Function: runFanOutBatch, a retention batch deletes only what the history recorded (issue 15)', () => {
  /** Nine daily snapshots of instance 1's root volume, d0 the newest; d8 made by hand with our tags. */
  const days = Array.from({ length: 9 }, (_, d) => d);
  const snapshots: SnapshotFacts[] = days.map((d) => ({
    snapshotId: `snap-root-d${d}`,
    volumeId: `vol-${instanceId(1).slice(2)}-root`,
    state: 'completed',
    startTime: new Date(Date.parse(NOW) - d * 86_400_000),
    sizeGiB: 8,
    tags: {
      [keys.managed]: 'true',
      [keys.deployment]: 'prod',
      [keys.schedule]: 'daily',
      [keys.instanceId]: instanceId(1),
      [keys.createdAt]: new Date(Date.parse(NOW) - d * 86_400_000).toISOString(),
    },
  }));
  const ledger = (recorded: readonly string[]): CreationLedger => ({
    ledgerStart: async () => new Date('2025-01-01T00:00:00Z'),
    recordedCreations: async (ids) =>
      new Map(
        ids
          .filter((id) => recorded.includes(id))
          .map((id) => [
            id,
            { resourceId: id, kind: 'snapshot' as const, runId: 'r0', job: 'backup', at: '' },
          ]),
      ),
  });

  it('keeps and never deletes a snapshot with our tags that the history never recorded', async () => {
    // Prepare
    const ec2 = new FakeRetentionEc2([instance(instanceId(1))], snapshots);
    const world = workerWorld(ec2);
    const recorded = snapshots.map((s) => s.snapshotId).filter((id) => id !== 'snap-root-d8');

    // Act
    await runFanOutBatch(batchMessage({ job: 'retention', instanceIds: [], rateShare: 1 }), {
      ...world.deps,
      ledger: ledger(recorded),
    });

    // Assess: default 7 kept; d7 goes, d8 (unrecorded) stays.
    expect(ec2.calls.filter((c) => c.startsWith('deleteSnapshot'))).toEqual([
      'deleteSnapshot snap-root-d7',
    ]);
  });
});
