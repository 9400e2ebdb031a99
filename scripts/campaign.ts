/**
 * The fault campaign: `npm run campaign`.
 *
 * Starts a local AWS (moto, through scripts/localStack.ts) and runs a compact version of
 * the scenarios of test/integration/faultCampaign*.test.ts against it, each in a child
 * process of its own (the handlers read their environment once, at import), each in its
 * own region and behind its own fault proxy. Prints what was injected and what was lost:
 * backups expected vs made, deletions due vs done, duplicate sets, history records
 * expected vs found. Every loss has a target of 0; the exit code is 1 when one is missed.
 *
 * The fault rules and the measurements are exported: the integration tests use the same.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreateSnapshotCommand,
  DeleteSnapshotCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  type Image,
  RegisterImageCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { createRunHistoryGateway, type RunHistoryGateway } from '../lib/aws/RunHistoryGateway.ts';
import { tagKeys } from '../lib/domain/tagKeys.ts';
import type { AmiReport } from '../lib/jobs/amiJob.ts';
import type { BackupReport } from '../lib/jobs/backupJob.ts';
import type { CopyReport } from '../lib/jobs/copyJob.ts';
import type { RetentionReport } from '../lib/jobs/retentionJob.ts';
import type { SweepReport } from '../lib/jobs/sweepJob.ts';
import { lambdaContext } from '../test/support/lambdaContext.ts';
import {
  type AwsErrorEffect,
  always,
  awsError,
  copiesReportUnknownVolume,
  eventualConsistency,
  type FaultDecider,
  type FaultProxy,
  type FaultRule,
  firstCalls,
  hang,
  loseAnswer,
  type ProxyCall,
  reset,
  seededRandom,
  startFaultProxy,
} from './faultProxy.ts';
import { useLocalAwsEnvironment } from './localAws.ts';
import {
  type InstanceSpec,
  type LaunchedInstance,
  launchFleet,
  ROOT_DEVICE,
} from './localFleet.ts';
import { startLocalStack } from './localStack.ts';
import { createLocalHistoryTable } from './localTable.ts';

/** The default tag keys (`snapkeeper:`). */
export const KEYS = tagKeys();
const DAY_MS = 86_400_000;

// ---------------------------------------------------------------------------------
// Fault rules

/** EC2 throttling as AWS answers it: `RequestLimitExceeded`, HTTP 503. */
export const throttled = (): AwsErrorEffect =>
  awsError('RequestLimitExceeded', 503, 'Request limit exceeded.');

/** EC2's per-volume creation rate limit (HTTP 400, not retried by the SDK). */
export const perVolumeRateExceeded = (): AwsErrorEffect =>
  awsError(
    'SnapshotCreationPerVolumeRateExceeded',
    400,
    'The maximum per volume CreateSnapshot request rate has been exceeded.',
  );

/** Bad EC2 weather: what {@link ec2Weather} injected so far. */
export interface Weather {
  readonly rule: FaultRule;
  readonly stats: { throttled: number; serverErrors: number };
}

/**
 * Seeded EC2 weather: each EC2 call (DynamoDB and the rest pass) is throttled with
 * probability `throttled` and answered 500 `InternalError` or 503 `Unavailable` with
 * probability `serverErrors`. A burst is bounded: the same request (action and body,
 * which a retry repeats) is faulted at most `maxConsecutive` times in a row, so that a
 * client with more attempts than that always gets through, and a run's outcome does not
 * depend on the order in which concurrent calls draw.
 *
 * @example
 * const weather = ec2Weather({ seed: 23 });
 * proxy.rules.add(weather.rule);
 */
export function ec2Weather(options: {
  seed: number;
  throttled?: number;
  serverErrors?: number;
  maxConsecutive?: number;
}): Weather {
  const pThrottled = options.throttled ?? 0.3;
  const pServer = options.serverErrors ?? 0.05;
  const maxConsecutive = options.maxConsecutive ?? 3;
  const random = seededRandom(options.seed);
  const streaks = new Map<string, number>();
  const stats = { throttled: 0, serverErrors: 0 };
  const rule: FaultRule = {
    name: `EC2 weather (seed ${options.seed})`,
    decide: (call) => {
      if (call.service !== 'ec2') return undefined;
      const key = `${call.action}\n${call.body}`;
      const streak = streaks.get(key) ?? 0;
      const draw = random();
      if (streak >= maxConsecutive || draw >= pThrottled + pServer) {
        streaks.delete(key);
        return undefined;
      }
      streaks.set(key, streak + 1);
      if (draw < pThrottled) {
        stats.throttled += 1;
        return throttled();
      }
      stats.serverErrors += 1;
      return draw < pThrottled + pServer / 2
        ? awsError('InternalError', 500, 'An internal error has occurred.')
        : awsError('Unavailable', 503, 'The service is unavailable.');
    },
  };
  return { rule, stats };
}

/**
 * A rule for the `CreateSnapshots` calls of one instance; `decide` sees only those,
 * numbered from 1.
 *
 * @example
 * proxy.rules.add(forInstance(web.instanceId, firstCalls(1, perVolumeRateExceeded())));
 */
export function forInstance(instanceId: string, decide: FaultDecider): FaultRule {
  let seen = 0;
  return {
    name: `CreateSnapshots of ${instanceId}`,
    action: 'CreateSnapshots',
    decide: (call) => {
      if (call.params['InstanceSpecification.InstanceId'] !== instanceId) return undefined;
      seen += 1;
      return decide(call, seen);
    },
  };
}

/**
 * A rule for the `DeleteSnapshot` calls of one snapshot; `decide` sees only those,
 * numbered from 1.
 *
 * @example
 * proxy.rules.add(forSnapshot('snap-0abc', always(awsError('InvalidSnapshot.InUse', 400))));
 */
export function forSnapshot(snapshotId: string, decide: FaultDecider): FaultRule {
  let seen = 0;
  return {
    name: `DeleteSnapshot of ${snapshotId}`,
    action: 'DeleteSnapshot',
    decide: (call) => {
      if (call.params.SnapshotId !== snapshotId) return undefined;
      seen += 1;
      return decide(call, seen);
    },
  };
}

/**
 * What a DynamoDB `PutItem` writes, from its JSON body: the item's `type` (`slot`,
 * `run`, `action`) and, for an action, its `action` and `phase`.
 *
 * @example
 * dynamoItem(call).type === 'action';
 */
export function dynamoItem(call: ProxyCall): { type?: string; action?: string; phase?: string } {
  const item = (call.json as { Item?: Record<string, { S?: string }> } | undefined)?.Item;
  const text = (key: string) => item?.[key]?.S;
  const found: { type?: string; action?: string; phase?: string } = {};
  const type = text('type');
  const action = text('action');
  const phase = text('phase');
  if (type !== undefined) found.type = type;
  if (action !== undefined) found.action = action;
  if (phase !== undefined) found.phase = phase;
  return found;
}

/**
 * The run-history table down: every DynamoDB call (or those `only` picks) answers,
 * in turn, 500 `InternalServerError` and 400 `ProvisionedThroughputExceededException`.
 *
 * @example
 * proxy.rules.add(historyDown());
 */
export function historyDown(only?: (call: ProxyCall) => boolean): FaultRule {
  let answered = 0;
  return {
    name: 'run-history table down',
    decide: (call) => {
      if (call.service !== 'dynamodb' || (only && !only(call))) return undefined;
      answered += 1;
      return answered % 2 === 1
        ? awsError('InternalServerError', 500, 'Internal server error')
        : awsError(
            'ProvisionedThroughputExceededException',
            400,
            'The level of configured provisioned throughput for the table was exceeded.',
          );
    },
  };
}

/** A simulated crash: see {@link crashAfter}. */
export interface Crash {
  readonly rule: FaultRule;
  readonly crashed: () => boolean;
}

/**
 * A process that dies: once `n` calls of `action` have been let through, the connection
 * of every later call of any service (EC2, DynamoDB, EventBridge) is cut. Whatever the
 * handler does after that point (its history writes, its final record) never lands.
 *
 * @example
 * const crash = crashAfter('CreateSnapshots', 2);
 * proxy.rules.add(crash.rule);
 */
export function crashAfter(action: string, n: number): Crash {
  let seen = 0;
  let crashed = false;
  return {
    rule: {
      name: `crash after ${n} ${action}`,
      decide: (call) => {
        if (crashed) return reset();
        if (call.action === action) {
          seen += 1;
          if (seen >= n) crashed = true;
        }
        return undefined;
      },
    },
    crashed: () => crashed,
  };
}

/**
 * Sends a call the proxy received straight to the target (moto), as if the network had
 * delivered it and only its answer were lost: pair it with `hang()` for the client's
 * copy. Resolves to the target's HTTP status.
 *
 * @example
 * proxy.rules.add(forInstance(id, (call, n) => (n === 1 ? (replayTo(moto, call), hang()) : undefined)));
 */
export async function replayTo(target: string, call: ProxyCall): Promise<number> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(call.headers)) {
    if (typeof value === 'string' && !['host', 'content-length', 'connection'].includes(name)) {
      headers[name] = value;
    }
  }
  const response = await fetch(new URL(call.path, target), {
    method: call.method,
    headers,
    body: call.body,
  });
  await response.text();
  return response.status;
}

// ---------------------------------------------------------------------------------
// Measurements (read straight from moto, never through the proxy)

/** A slot's snapshot sets: instance id → run id → snapshot ids. */
export type SnapshotSets = Map<string, Map<string, string[]>>;

/**
 * The snapshot sets a deployment made for one slot, grouped by the instance and the
 * run that made them (their `snapkeeper:instance-id` and `snapkeeper:run-id` tags).
 *
 * @example
 * const sets = await snapshotSetsOfSlot(ec2, 'prod', '2026-11-23T03:00:00Z');
 */
export async function snapshotSetsOfSlot(
  ec2: EC2Client,
  deployment: string,
  slot: string,
): Promise<SnapshotSets> {
  const response = await ec2.send(
    new DescribeSnapshotsCommand({
      OwnerIds: ['self'],
      Filters: [
        { Name: `tag:${KEYS.slot}`, Values: [slot] },
        { Name: `tag:${KEYS.deployment}`, Values: [deployment] },
      ],
    }),
  );
  const sets: SnapshotSets = new Map();
  for (const snapshot of response.Snapshots ?? []) {
    const tags = Object.fromEntries((snapshot.Tags ?? []).map((t) => [t.Key, t.Value]));
    const instanceId = tags[KEYS.instanceId] ?? 'none';
    const runId = tags[KEYS.runId] ?? 'none';
    const byRun = sets.get(instanceId) ?? new Map<string, string[]>();
    byRun.set(runId, [...(byRun.get(runId) ?? []), snapshot.SnapshotId ?? '']);
    sets.set(instanceId, byRun);
  }
  return sets;
}

/** Snapshot sets beyond the first per instance: duplicates. */
export function duplicateSetCount(sets: SnapshotSets): number {
  let extra = 0;
  for (const byRun of sets.values()) extra += Math.max(0, byRun.size - 1);
  return extra;
}

/**
 * Extra snapshots of a slot: beyond the first of each volume, whichever run made them
 * (a retried create whose first answer was lost makes a second set under the same run).
 *
 * @example
 * await extraSnapshotsOfSlot(ec2, 'prod', '2026-11-23T03:00:00Z'); // 0
 */
export async function extraSnapshotsOfSlot(
  ec2: EC2Client,
  deployment: string,
  slot: string,
): Promise<number> {
  const response = await ec2.send(
    new DescribeSnapshotsCommand({
      OwnerIds: ['self'],
      Filters: [
        { Name: `tag:${KEYS.slot}`, Values: [slot] },
        { Name: `tag:${KEYS.deployment}`, Values: [deployment] },
      ],
    }),
  );
  const perVolume = new Map<string, number>();
  for (const snapshot of response.Snapshots ?? []) {
    const volumeId = snapshot.VolumeId ?? 'none';
    perVolume.set(volumeId, (perVolume.get(volumeId) ?? 0) + 1);
  }
  return [...perVolume.values()].reduce((n, count) => n + count - 1, 0);
}

/** Every snapshot id of a slot's sets. */
export function snapshotIdsOf(sets: SnapshotSets): string[] {
  return [...sets.values()].flatMap((byRun) => [...byRun.values()].flat());
}

/** A snapshot seeded as if snapkeeper had made it `ageDays` ago. */
export interface SeededSnapshot {
  readonly snapshotId: string;
  readonly ageDays: number;
}

/**
 * Seeds managed snapshots of an instance's root volume for a schedule, aged as given
 * (the `snapkeeper:created-at` tag), straight in moto, and records each in the run
 * history as the backup job records what it creates (retention deletes only what the
 * history recorded).
 *
 * @example
 * await seedSnapshots(ec2, { deployment: 'prod', schedule: 'weekly', instance, agesDays: [0, 7, 14] });
 */
export async function seedSnapshots(
  ec2: EC2Client,
  seed: {
    deployment: string;
    schedule: string;
    instance: LaunchedInstance;
    agesDays: readonly number[];
    /** Where the creation records go: the deployment's run history. */
    history: Pick<RunHistoryGateway, 'record'>;
  },
): Promise<SeededSnapshot[]> {
  const root = seed.instance.volumes.find((v) => v.device === ROOT_DEVICE);
  if (!root) throw new Error(`${seed.instance.name} has no root volume`);
  const now = Date.now();
  const seeded: SeededSnapshot[] = [];
  for (const ageDays of seed.agesDays) {
    const tags = {
      [KEYS.managed]: 'true',
      [KEYS.deployment]: seed.deployment,
      [KEYS.schedule]: seed.schedule,
      [KEYS.instanceId]: seed.instance.instanceId,
      [KEYS.createdAt]: new Date(now - ageDays * DAY_MS - 60_000).toISOString(),
      Name: seed.instance.name,
    };
    const response = await ec2.send(
      new CreateSnapshotCommand({
        VolumeId: root.volumeId,
        TagSpecifications: [
          {
            ResourceType: 'snapshot',
            Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
          },
        ],
      }),
    );
    const snapshotId = response.SnapshotId ?? '';
    await seed.history.record({
      runId: 'seeded',
      job: 'backup',
      action: 'create-snapshot',
      resourceId: snapshotId,
      phase: 'after',
      outcome: 'done',
      reason: 'seeded as if made by a backup run',
      details: { instanceId: seed.instance.instanceId, volumeId: root.volumeId },
    });
    seeded.push({ snapshotId, ageDays });
  }
  return seeded;
}

/** Which of the given snapshots still exist. */
export async function existingSnapshots(
  ec2: EC2Client,
  snapshotIds: readonly string[],
): Promise<Set<string>> {
  if (snapshotIds.length === 0) return new Set();
  const response = await ec2.send(
    new DescribeSnapshotsCommand({
      OwnerIds: ['self'],
      Filters: [{ Name: 'snapshot-id', Values: [...snapshotIds] }],
    }),
  );
  return new Set((response.Snapshots ?? []).map((s) => s.SnapshotId ?? ''));
}

/** The images of one instance, oldest slot first. */
export async function imagesOfInstance(ec2: EC2Client, instanceId: string): Promise<Image[]> {
  const response = await ec2.send(
    new DescribeImagesCommand({
      Owners: ['self'],
      Filters: [{ Name: `tag:${KEYS.instanceId}`, Values: [instanceId] }],
    }),
  );
  const slot = (image: Image) => image.Tags?.find((t) => t.Key === KEYS.slot)?.Value ?? '';
  return (response.Images ?? []).sort((a, b) => slot(a).localeCompare(slot(b)));
}

/** The snapshot ids behind an image. */
export function snapshotsOfImage(image: Image | undefined): string[] {
  return (image?.BlockDeviceMappings ?? []).flatMap((m) =>
    m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [],
  );
}

/**
 * Kills a run for good in the history: its lease set to `at` (long past), as a run
 * whose process died and never renewed it. Straight in the table.
 */
export async function leaseInThePast(
  doc: DynamoDBDocumentClient,
  table: string,
  runId: string,
  at: Date,
): Promise<void> {
  await doc.send(
    new UpdateCommand({
      TableName: table,
      Key: { PK: `RUN#${runId}`, SK: 'RUN' },
      UpdateExpression: 'SET leaseRenewedAt = :lease',
      ConditionExpression: 'attribute_exists(PK)',
      ExpressionAttributeValues: { ':lease': at.toISOString() },
    }),
  );
}

/** The resources (snapshots, images) of which the history holds no action at all. */
export async function untracedResources(
  history: RunHistoryGateway,
  resourceIds: readonly string[],
): Promise<string[]> {
  const untraced: string[] = [];
  for (const id of resourceIds) {
    if ((await history.resourceHistory(id)).length === 0) untraced.push(id);
  }
  return untraced;
}

/** The outcome of a handler call: its answer, or what it threw. */
export type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Awaits a handler call without throwing. */
export async function settle(call: Promise<unknown>): Promise<Settled> {
  return call.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

// ---------------------------------------------------------------------------------
// The campaign's scenarios (compact; the integration tests hold the exact expectations)

type Handler = (event: unknown, context: Context) => Promise<unknown>;
type FunctionName = 'backup' | 'retention' | 'amis' | 'copy';

interface ScenarioContext {
  readonly proxy: FaultProxy;
  /** moto's endpoint, behind the proxy. */
  readonly target: string;
  /** Straight to moto. */
  readonly ec2: EC2Client;
  readonly doc: DynamoDBDocumentClient;
  readonly history: RunHistoryGateway;
  readonly table: string;
  readonly deployment: string;
  handler(name: FunctionName): Promise<Handler>;
}

/** What one scenario measured. */
interface Tally {
  scenario: string;
  faults: number;
  faultKinds: Record<string, number>;
  calls: number;
  backupsExpected: number;
  backupsMade: number;
  backupsReported: number;
  duplicates: number;
  deletionsDue: number;
  deletionsDone: number;
  deletionsReported: number;
  wrongDeletions: number;
  historyExpected: number;
  historyFound: number;
  checks: { name: string; ok: boolean }[];
  seconds: number;
  error?: string;
}

interface Scenario {
  readonly name: string;
  readonly region: string;
  readonly env?: Readonly<Record<string, string>>;
  run(ctx: ScenarioContext, tally: Tally): Promise<void>;
}

const CHILD_ENV = {
  AWS_MAX_ATTEMPTS: '4',
  AWS_REQUEST_TIMEOUT_MS: '5000',
  SNAPSHOT_RATE_RETRY_SECONDS: '0',
  SAFETY_MARGIN_SECONDS: '5',
  DUPLICATE_WAIT_SECONDS: '20',
  MAX_DELETIONS: '50',
};

const dailyFleet = (n: number): InstanceSpec[] =>
  Array.from({ length: n }, (_, i) => ({
    name: `app-${i + 1}`,
    tags: { [KEYS.backup]: 'daily' },
    ...(i % 2 === 0 ? { dataVolumes: [{ device: '/dev/sdf', sizeGiB: 10 + i }] } : {}),
  }));
const weeklyFleet = (n: number): InstanceSpec[] =>
  Array.from({ length: n }, (_, i) => ({
    name: `weekly-${i + 1}`,
    tags: { [KEYS.backup]: 'weekly' },
  }));
/** Weekly points aged 0..5 weeks: retention (keep 4) deletes the two oldest. */
const SIX_WEEKS = [0, 7, 14, 21, 28, 35];

const check = (tally: Tally, name: string, ok: boolean) => tally.checks.push({ name, ok });

/** The run holding a slot: how an operator finds a run whose process died. */
async function holderOf(ctx: ScenarioContext, job: string, slot: string): Promise<string> {
  return (await ctx.history.getSlotClaim({ job, schedule: 'daily', slot }))?.runId ?? 'none';
}

/** Counts a slot's backups: instances with a set, duplicates, and the sets' traces in the history. */
async function tallyBackups(
  ctx: ScenarioContext,
  tally: Tally,
  slot: string,
  due: readonly LaunchedInstance[],
  reported: number,
  traced = true,
): Promise<void> {
  const sets = await snapshotSetsOfSlot(ctx.ec2, ctx.deployment, slot);
  tally.backupsExpected += due.length;
  tally.backupsMade += due.filter((i) => (sets.get(i.instanceId)?.size ?? 0) > 0).length;
  tally.backupsReported += reported;
  tally.duplicates += await extraSnapshotsOfSlot(ctx.ec2, ctx.deployment, slot);
  if (traced) {
    const ids = snapshotIdsOf(sets);
    tally.historyExpected += ids.length;
    tally.historyFound += ids.length - (await untracedResources(ctx.history, ids)).length;
  }
}

/** Counts a retention run: due deletions done or reported, kept ones gone, and their before/after records. */
async function tallyDeletions(
  ctx: ScenarioContext,
  tally: Tally,
  report: RetentionReport | undefined,
  due: readonly string[],
  kept: readonly string[],
  recorded = true,
): Promise<void> {
  const left = await existingSnapshots(ctx.ec2, [...due, ...kept]);
  const deletions = report?.volumes.flatMap((v) => v.deletions) ?? [];
  tally.deletionsDue += due.length;
  tally.deletionsDone += due.filter((id) => !left.has(id)).length;
  tally.deletionsReported += due.filter(
    (id) =>
      left.has(id) &&
      deletions.some((d) => d.snapshotId === id && d.outcome !== 'deleted' && d.reason !== ''),
  ).length;
  tally.wrongDeletions += kept.filter((id) => !left.has(id)).length;
  if (recorded && report) {
    const actions = await ctx.history.runActions(report.runId);
    tally.historyExpected += due.length * 2;
    tally.historyFound += actions.filter(
      (a) => a.action === 'delete-snapshot' && due.includes(a.resourceId),
    ).length;
  }
}

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'throttling',
    region: 'us-east-2',
    async run(ctx, tally) {
      const fleet = await launchFleet(ctx.ec2, [...dailyFleet(5), ...weeklyFleet(2)]);
      const daily = [...fleet.values()].filter((i) => i.name.startsWith('app-'));
      const seeded = [];
      for (const instance of [...fleet.values()].filter((i) => i.name.startsWith('weekly-'))) {
        seeded.push(
          ...(await seedSnapshots(ctx.ec2, {
            history: ctx.history,
            deployment: ctx.deployment,
            schedule: 'weekly',
            instance,
            agesDays: SIX_WEEKS,
          })),
        );
      }
      const [first, second] = daily;
      if (first)
        ctx.proxy.rules.add(forInstance(first.instanceId, firstCalls(1, perVolumeRateExceeded())));
      if (second)
        ctx.proxy.rules.add(forInstance(second.instanceId, firstCalls(2, perVolumeRateExceeded())));
      ctx.proxy.rules.add(ec2Weather({ seed: 23 }).rule);
      const slot = '2026-10-01T03:00:00Z';
      const backup = await settle(
        (await ctx.handler('backup'))({ schedule: 'daily', scheduledTime: slot }, lambdaContext()),
      );
      check(
        tally,
        'backup succeeded',
        backup.ok && (backup.value as BackupReport).status === 'succeeded',
      );
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'weekly' }, lambdaContext()),
      );
      const report = retention.ok ? (retention.value as RetentionReport) : undefined;
      check(tally, 'retention succeeded', report?.status === 'succeeded');
      ctx.proxy.rules.clear();
      await tallyBackups(ctx, tally, slot, daily, 0);
      await tallyDeletions(
        ctx,
        tally,
        report,
        seeded.filter((s) => s.ageDays >= 28).map((s) => s.snapshotId),
        seeded.filter((s) => s.ageDays < 28).map((s) => s.snapshotId),
      );
    },
  },
  {
    name: 'timeouts',
    region: 'us-west-1',
    env: { AWS_REQUEST_TIMEOUT_MS: '1000', AWS_MAX_ATTEMPTS: '3' },
    async run(ctx, tally) {
      const fleet = await launchFleet(ctx.ec2, [...dailyFleet(3), ...weeklyFleet(1)]);
      const daily = [...fleet.values()].filter((i) => i.name.startsWith('app-'));
      const weekly = fleet.get('weekly-1') as LaunchedInstance;
      const seeded = await seedSnapshots(ctx.ec2, {
        history: ctx.history,
        deployment: ctx.deployment,
        schedule: 'weekly',
        instance: weekly,
        agesDays: SIX_WEEKS,
      });
      const [a, b, c] = daily;
      ctx.proxy.rules.add({ action: 'DescribeInstances', decide: firstCalls(1, hang()) });
      if (a) ctx.proxy.rules.add(forInstance(a.instanceId, firstCalls(1, hang())));
      // b's first create reaches EC2, but its answer is lost: the SDK retries it.
      const reachedEc2: Promise<number>[] = [];
      if (b) {
        ctx.proxy.rules.add(
          forInstance(b.instanceId, (call, n) => {
            if (n > 1) return undefined;
            reachedEc2.push(replayTo(ctx.target, call));
            return hang();
          }),
        );
      }
      if (c) ctx.proxy.rules.add(forInstance(c.instanceId, always(hang())));
      const oldest = seeded.find((s) => s.ageDays === 35)?.snapshotId ?? '';
      ctx.proxy.rules.add(forSnapshot(oldest, always(hang())));
      const slot = '2026-10-02T03:00:00Z';
      const started = Date.now();
      const backup = await settle(
        (await ctx.handler('backup'))(
          { schedule: 'daily', scheduledTime: slot },
          lambdaContext('snapkeeper-campaign-backup', 30_000),
        ),
      );
      const elapsed = Date.now() - started;
      await Promise.all(reachedEc2);
      const backupReport = backup.ok ? (backup.value as BackupReport) : undefined;
      const timedOut =
        backupReport?.instances.filter((i) => i.error?.code === 'TimeoutError').length ?? 0;
      check(
        tally,
        'backup partial, one instance TimeoutError',
        backupReport?.status === 'partial' && timedOut === 1,
      );
      check(tally, 'backup ended within 15 s of a 30 s deadline', elapsed < 15_000);
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'weekly' }, lambdaContext()),
      );
      const report = retention.ok ? (retention.value as RetentionReport) : undefined;
      check(tally, 'retention partial, the hung deletion reported', report?.counts.failed === 1);
      ctx.proxy.rules.clear();
      await tallyBackups(ctx, tally, slot, daily, timedOut);
      await tallyDeletions(
        ctx,
        tally,
        report,
        seeded.filter((s) => s.ageDays >= 28).map((s) => s.snapshotId),
        seeded.filter((s) => s.ageDays < 28).map((s) => s.snapshotId),
      );
    },
  },
  {
    name: 'crash: create → record',
    region: 'eu-west-2',
    async run(ctx, tally) {
      const fleet = [...(await launchFleet(ctx.ec2, dailyFleet(4))).values()];
      const backup = await ctx.handler('backup');
      const slot = '2026-10-03T03:00:00Z';
      const event = { schedule: 'daily', scheduledTime: slot };
      const crash = crashAfter('CreateSnapshots', 2);
      ctx.proxy.rules.add(crash.rule);
      await settle(backup(event, lambdaContext())); // a dead process answers nothing
      ctx.proxy.rules.clear();
      const crashedRunId = await holderOf(ctx, 'backup', slot);
      const before = await ctx.history.getRun(crashedRunId);
      check(
        tally,
        'crashed run left running, without its final record',
        before?.status === 'running',
      );
      await leaseInThePast(ctx.doc, ctx.table, crashedRunId, new Date(Date.now() - DAY_MS));
      const resumed = await settle(backup(event, lambdaContext()));
      const report = resumed.ok ? (resumed.value as BackupReport) : undefined;
      const run = report ? await ctx.history.getRun(report.runId) : undefined;
      check(
        tally,
        'next delivery took over (retry, resumedFrom)',
        report?.trigger === 'retry' &&
          (run as { resumedFrom?: string } | undefined)?.resumedFrom === crashedRunId,
      );
      check(
        tally,
        'crashed run marked abandoned',
        (await ctx.history.getRun(crashedRunId))?.status === 'abandoned',
      );
      await tallyBackups(ctx, tally, slot, fleet, 0);
    },
  },
  {
    name: 'crash: deregister → delete',
    region: 'eu-north-1',
    async run(ctx, tally) {
      const fleet = [
        ...(
          await launchFleet(ctx.ec2, [
            { name: 'ami-1', tags: { [KEYS.ami]: 'daily', [KEYS.amiRetain]: '1' } },
            { name: 'ami-2', tags: { [KEYS.ami]: 'daily', [KEYS.amiRetain]: '1' } },
          ])
        ).values(),
      ];
      const amis = await ctx.handler('amis');
      const day = (n: number) => ({ schedule: 'daily', scheduledTime: `2026-10-0${n}T03:00:00Z` });
      await amis(day(1), lambdaContext());
      const firstImages = (
        await Promise.all(fleet.map((i) => imagesOfInstance(ctx.ec2, i.instanceId)))
      ).flatMap((images) => images.slice(0, 1));
      const orphans = firstImages.flatMap(snapshotsOfImage);
      const crash = crashAfter('DeregisterImage', fleet.length);
      ctx.proxy.rules.add(crash.rule);
      await settle(amis(day(2), lambdaContext())); // a dead process answers nothing
      ctx.proxy.rules.clear();
      check(tally, 'crashed after deregistering', crash.crashed());
      const orphaned = await existingSnapshots(ctx.ec2, orphans);
      check(tally, 'the crash left the snapshots behind', orphaned.size === orphans.length);
      const sweep = await settle(amis({ sweep: true }, lambdaContext()));
      const report = sweep.ok ? (sweep.value as SweepReport) : undefined;
      check(tally, 'sweep succeeded', report?.status === 'succeeded');
      const left = await existingSnapshots(ctx.ec2, orphans);
      tally.deletionsDue += orphans.length;
      tally.deletionsDone += orphans.filter((id) => !left.has(id)).length;
      tally.wrongDeletions += (report?.deleted ?? []).filter(
        (d) => d.outcome === 'deleted' && !orphans.includes(d.snapshotId),
      ).length;
      const crashedRunId = await holderOf(ctx, 'amis', day(2).scheduledTime);
      const amiActions = await ctx.history.runActions(crashedRunId);
      const sweepActions = report ? await ctx.history.runActions(report.runId) : [];
      tally.historyExpected += firstImages.length + orphans.length * 2;
      tally.historyFound +=
        amiActions.filter((a) => a.action === 'deregister-image' && a.phase === 'before').length +
        sweepActions.filter((a) => orphans.includes(a.resourceId)).length;
      await leaseInThePast(ctx.doc, ctx.table, crashedRunId, new Date(Date.now() - DAY_MS));
      const resumed = await settle(amis(day(2), lambdaContext()));
      const resumedReport = resumed.ok ? (resumed.value as AmiReport) : undefined;
      const resumedRun = resumedReport ? await ctx.history.getRun(resumedReport.runId) : undefined;
      check(
        tally,
        'next delivery of the slot took over and made no AMI twice',
        (resumedReport?.created.every((c) => c.outcome === 'exists') ?? false) &&
          (resumedRun as { resumedFrom?: string } | undefined)?.resumedFrom === crashedRunId,
      );
    },
  },
  {
    name: 'duplicate + late delivery',
    region: 'ap-south-1',
    async run(ctx, tally) {
      const fleet = [...(await launchFleet(ctx.ec2, dailyFleet(3))).values()];
      const backup = await ctx.handler('backup');
      const early = '2026-10-04T03:00:00Z';
      const next = '2026-10-05T03:00:00Z';
      const parallel = await Promise.all(
        [1, 2, 3].map(() =>
          settle(backup({ schedule: 'daily', scheduledTime: next }, lambdaContext())),
        ),
      );
      const runIds = new Set(parallel.map((p) => (p.ok ? (p.value as BackupReport).runId : 'x')));
      check(tally, 'three parallel deliveries, one run', runIds.size === 1 && !runIds.has('x'));
      const late = await settle(
        backup({ schedule: 'daily', scheduledTime: early }, lambdaContext()),
      );
      check(
        tally,
        'late delivery ran for its own slot',
        late.ok && (late.value as BackupReport).slot === early,
      );
      await settle(backup({ schedule: 'daily', scheduledTime: early }, lambdaContext()));
      await tallyBackups(ctx, tally, next, fleet, 0);
      await tallyBackups(ctx, tally, early, fleet, 0);
    },
  },
  {
    name: 'history table down',
    region: 'ap-northeast-1',
    env: { AWS_MAX_ATTEMPTS: '2' },
    async run(ctx, tally) {
      const fleet = await launchFleet(ctx.ec2, [...dailyFleet(3), ...weeklyFleet(1)]);
      const daily = [...fleet.values()].filter((i) => i.name.startsWith('app-'));
      const seeded = await seedSnapshots(ctx.ec2, {
        history: ctx.history,
        deployment: ctx.deployment,
        schedule: 'weekly',
        instance: fleet.get('weekly-1') as LaunchedInstance,
        agesDays: SIX_WEEKS,
      });
      ctx.proxy.rules.add(historyDown());
      const slot = '2026-10-06T03:00:00Z';
      const backup = await settle(
        (await ctx.handler('backup'))({ schedule: 'daily', scheduledTime: slot }, lambdaContext()),
      );
      const report = backup.ok ? (backup.value as BackupReport) : undefined;
      check(
        tally,
        'backup partial with the history warning',
        report?.status === 'partial' && (report.warnings?.length ?? 0) === 1,
      );
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'weekly' }, lambdaContext()),
      );
      check(tally, 'retention failed loudly', !retention.ok);
      ctx.proxy.rules.clear();
      ctx.proxy.rules.add(historyDown((call) => dynamoItem(call).type === 'action'));
      const journalDown = await settle(
        (await ctx.handler('retention'))({ schedule: 'weekly' }, lambdaContext()),
      );
      check(
        tally,
        'journal down mid-run: nothing deleted, each refusal reported',
        journalDown.ok && (journalDown.value as RetentionReport).counts.failed === 2,
      );
      ctx.proxy.rules.clear();
      // Documented choice: backups made without a history are reported, not recorded.
      await tallyBackups(ctx, tally, slot, daily, 0, false);
      // Nothing was due while the history could not record it: every deletion would be wrong.
      await tallyDeletions(
        ctx,
        tally,
        undefined,
        [],
        seeded.map((s) => s.snapshotId),
        false,
      );
    },
  },
  {
    name: 'races',
    region: 'sa-east-1',
    async run(ctx, tally) {
      const fleet = await launchFleet(ctx.ec2, [...dailyFleet(3), ...weeklyFleet(1)]);
      const daily = [...fleet.values()].filter((i) => i.name.startsWith('app-'));
      const weekly = fleet.get('weekly-1') as LaunchedInstance;
      const seeded = await seedSnapshots(ctx.ec2, {
        history: ctx.history,
        deployment: ctx.deployment,
        schedule: 'weekly',
        instance: weekly,
        agesDays: [...SIX_WEEKS, 42],
      });
      const inUse = seeded.find((s) => s.ageDays === 42)?.snapshotId ?? '';
      const goneBy = seeded.find((s) => s.ageDays === 35)?.snapshotId ?? '';
      const sideEffects: Promise<unknown>[] = [];
      ctx.proxy.rules.add(
        forSnapshot(inUse, (_call, n) => {
          if (n === 1) {
            sideEffects.push(
              ctx.ec2.send(
                new RegisterImageCommand({
                  Name: `registered-meanwhile-${inUse}`,
                  RootDeviceName: ROOT_DEVICE,
                  BlockDeviceMappings: [{ DeviceName: ROOT_DEVICE, Ebs: { SnapshotId: inUse } }],
                }),
              ),
            );
          }
          return awsError(
            'InvalidSnapshot.InUse',
            400,
            `The snapshot ${inUse} is currently in use by an AMI.`,
          );
        }),
      );
      ctx.proxy.rules.add(
        forSnapshot(goneBy, (_call, n) => {
          if (n === 1)
            sideEffects.push(ctx.ec2.send(new DeleteSnapshotCommand({ SnapshotId: goneBy })));
          return awsError(
            'InvalidSnapshot.NotFound',
            400,
            `The snapshot '${goneBy}' does not exist.`,
          );
        }),
      );
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'weekly' }, lambdaContext()),
      );
      await Promise.all(sideEffects);
      const report = retention.ok ? (retention.value as RetentionReport) : undefined;
      check(
        tally,
        'races skipped and reported, not failed',
        report?.status === 'succeeded' && report.counts.skipped === 2,
      );
      const victim = daily[1] as LaunchedInstance;
      ctx.proxy.rules.add(
        forInstance(victim.instanceId, () => {
          sideEffects.push(
            ctx.ec2.send(new TerminateInstancesCommand({ InstanceIds: [victim.instanceId] })),
          );
          return awsError(
            'InvalidInstanceID.NotFound',
            400,
            `The instance ID '${victim.instanceId}' does not exist`,
          );
        }),
      );
      const slot = '2026-10-07T03:00:00Z';
      const backup = await settle(
        (await ctx.handler('backup'))({ schedule: 'daily', scheduledTime: slot }, lambdaContext()),
      );
      await Promise.all(sideEffects);
      ctx.proxy.rules.clear();
      const backupReport = backup.ok ? (backup.value as BackupReport) : undefined;
      const reported =
        backupReport?.instances.filter((i) => i.error?.code === 'InvalidInstanceID.NotFound')
          .length ?? 0;
      check(
        tally,
        'terminated instance failed with its code, run partial',
        backupReport?.status === 'partial' && reported === 1,
      );
      await tallyBackups(ctx, tally, slot, daily, reported);
      await tallyDeletions(
        ctx,
        tally,
        report,
        seeded.filter((s) => s.ageDays >= 28).map((s) => s.snapshotId),
        seeded.filter((s) => s.ageDays < 28).map((s) => s.snapshotId),
      );
    },
  },
  {
    // Issue 15 #7: creates whose answers are lost after EC2 acted, while describes lag
    // two describes behind creates (EC2's eventual consistency, which moto lacks).
    name: 'lost answers + lagging describes',
    region: 'ap-northeast-2',
    env: { AWS_REQUEST_TIMEOUT_MS: '1000', AWS_MAX_ATTEMPTS: '3' },
    async run(ctx, tally) {
      const daily = [...(await launchFleet(ctx.ec2, dailyFleet(4))).values()];
      const lag = eventualConsistency({ describes: 2 });
      ctx.proxy.rules.add(lag);
      const lost = daily.slice(0, 3);
      for (const instance of lost) {
        ctx.proxy.rules.add(forInstance(instance.instanceId, firstCalls(1, loseAnswer())));
      }
      const slot = '2026-10-08T03:00:00Z';
      const backup = await settle(
        (await ctx.handler('backup'))({ schedule: 'daily', scheduledTime: slot }, lambdaContext()),
      );
      ctx.proxy.rules.clear();
      const report = backup.ok ? (backup.value as BackupReport) : undefined;
      const lostIds = new Set(lost.map((i) => i.instanceId));
      const reconciled =
        report?.instances.filter(
          (i) =>
            lostIds.has(i.instanceId) &&
            (i.duplicates?.length ?? 0) > 0 &&
            i.duplicates?.every((d) => d.outcome === 'deleted'),
        ).length ?? 0;
      check(tally, 'describes lagged behind the creates', lag.hidden() > 0);
      check(tally, 'every lost set found and its copy deleted', reconciled === lost.length);
      check(tally, 'backup succeeded', report?.status === 'succeeded');
      await tallyBackups(ctx, tally, slot, daily, 0);
    },
  },
  {
    // Issue 15 #12: an opt-in key that misses ours is never read; the run must say so.
    name: 'tag-key near misses',
    region: 'ca-central-1',
    async run(ctx, tally) {
      const misses = [
        'Snapkeeper:backup',
        'snapkeeper:Backup',
        'snapkeeper:backups',
        'snapkeeper:backup ',
      ];
      const fleet = await launchFleet(ctx.ec2, [
        ...dailyFleet(2),
        ...misses.map((key, i) => ({ name: `typo-${i + 1}`, tags: { [key]: 'daily' } })),
        { name: 'vendor-1', tags: { Backup: 'true', backup: 'daily', 'dlm:managed': 'true' } },
      ]);
      const good = [...fleet.values()].filter((i) => i.name.startsWith('app-'));
      const typos = [...fleet.values()].filter((i) => i.name.startsWith('typo-'));
      ctx.proxy.rules.add(ec2Weather({ seed: 41 }).rule);
      const slot = '2026-10-09T03:00:00Z';
      const backup = await settle(
        (await ctx.handler('backup'))({ schedule: 'daily', scheduledTime: slot }, lambdaContext()),
      );
      ctx.proxy.rules.clear();
      const report = backup.ok ? (backup.value as BackupReport) : undefined;
      const named = typos.filter((t) =>
        report?.instances.some(
          (r) =>
            r.instanceId === t.instanceId &&
            r.error?.code === 'InvalidTag' &&
            (r.problems ?? []).some((p) => misses.some((key) => p.startsWith(`${key}=`))),
        ),
      );
      check(tally, 'each near-miss key named by instance and key', named.length === typos.length);
      check(
        tally,
        "other vendors' keys not reported",
        !report?.instances.some((r) => r.name === 'vendor-1'),
      );
      check(tally, 'backup partial (the alert fires)', report?.status === 'partial');
      // The typo'd instances were meant to be backed up: not made, but reported.
      await tallyBackups(ctx, tally, slot, [...good, ...typos], named.length);
    },
  },
  {
    // Issue 15 #2 (copy side) and "a source is copied once": every copy reports
    // vol-ffffffff (as on AWS), under EC2 weather; copy-retain applies per source volume.
    name: 'DR copies: vol-ffffffff, retired sources',
    region: 'eu-central-1',
    async run(ctx, tally) {
      const DEST = 'ap-southeast-1';
      const dest = new EC2Client({ region: DEST, endpoint: ctx.target });
      const copyTo = { [KEYS.copyTo]: DEST, [KEYS.copyRetain]: '2' };
      const fleet = await launchFleet(ctx.ec2, [
        { name: 'dr-1', tags: { [KEYS.backup]: 'daily', ...copyTo } },
        { name: 'dr-2', tags: { [KEYS.backup]: 'daily', ...copyTo } },
      ]);
      const seeded: SeededSnapshot[] = [];
      for (const instance of fleet.values()) {
        seeded.push(
          ...(await seedSnapshots(ctx.ec2, {
            history: ctx.history,
            deployment: ctx.deployment,
            schedule: 'daily',
            instance,
            agesDays: [3, 2, 1],
          })),
        );
      }
      const vff = copiesReportUnknownVolume({ regions: [DEST] });
      ctx.proxy.rules.add(vff);
      ctx.proxy.rules.add(ec2Weather({ seed: 57 }).rule);
      const copy = await ctx.handler('copy');
      const reports: CopyReport[] = [];
      for (let run = 0; run < 4; run += 1) {
        const result = await settle(copy({ copy: true }, lambdaContext()));
        if (result.ok) reports.push(result.value as CopyReport);
      }
      ctx.proxy.rules.clear();
      const copies =
        (
          await dest.send(
            new DescribeSnapshotsCommand({
              OwnerIds: ['self'],
              Filters: [{ Name: `tag:${KEYS.deployment}`, Values: [ctx.deployment] }],
            }),
          )
        ).Snapshots ?? [];
      const sourceOf = (c: (typeof copies)[number]) =>
        c.Tags?.find((t) => t.Key === KEYS.sourceSnapshotId)?.Value ?? '';
      const copied = reports.flatMap((r) => r.copies.filter((c) => c.outcome === 'copied'));
      check(tally, 'every run answered', reports.length === 4);
      check(tally, 'copies reported vol-ffffffff', vff.rewritten() > 0);
      check(
        tally,
        'each source copied once (never again after copy retention)',
        new Set(copied.map((c) => c.sourceId)).size === copied.length,
      );
      // Due: the copies of the oldest source of each volume; kept: the two newest each.
      const due = seeded.filter((s) => s.ageDays === 3).map((s) => s.snapshotId);
      const kept = seeded.filter((s) => s.ageDays < 3).map((s) => s.snapshotId);
      const present = new Set(copies.map(sourceOf));
      tally.deletionsDue += due.length;
      tally.deletionsDone += due.filter((id) => !present.has(id)).length;
      tally.deletionsReported += due.filter(
        (id) =>
          present.has(id) &&
          reports.some((r) =>
            r.destinationRetention.some((d) => d.action !== 'deleted' && d.reason !== ''),
          ),
      ).length;
      tally.wrongDeletions += kept.filter((id) => !present.has(id)).length;
    },
  },
];

// ---------------------------------------------------------------------------------
// Child: one scenario

const RESULT_MARK = 'CAMPAIGN-RESULT ';

async function runChild(name: string, target: string): Promise<void> {
  const scenario = SCENARIOS.find((s) => s.name === name);
  if (!scenario) throw new Error(`no scenario ${JSON.stringify(name)}`);
  const tally: Tally = {
    scenario: name,
    faults: 0,
    faultKinds: {},
    calls: 0,
    backupsExpected: 0,
    backupsMade: 0,
    backupsReported: 0,
    duplicates: 0,
    deletionsDue: 0,
    deletionsDone: 0,
    deletionsReported: 0,
    wrongDeletions: 0,
    historyExpected: 0,
    historyFound: 0,
    checks: [],
    seconds: 0,
  };
  const started = Date.now();
  const proxy = await startFaultProxy({ target });
  const { region } = scenario;
  useLocalAwsEnvironment(proxy.endpoint, region);
  Object.assign(process.env, CHILD_ENV, scenario.env ?? {});
  const table = process.env.HISTORY_TABLE ?? 'snapkeeper-campaign-runs';
  const deployment = process.env.DEPLOYMENT ?? 'campaign';
  const ec2 = new EC2Client({ region, endpoint: target });
  const dynamo = new DynamoDBClient({ region, endpoint: target });
  const doc = DynamoDBDocumentClient.from(dynamo);
  try {
    await createLocalHistoryTable(dynamo, table);
    const history = createRunHistoryGateway(
      { region, maxAttempts: 3, requestTimeoutMs: 10_000, endpoint: target },
      table,
      400,
    );
    const handlers = new Map<FunctionName, Handler>();
    const ctx: ScenarioContext = {
      proxy,
      target,
      ec2,
      doc,
      history,
      table,
      deployment,
      handler: async (fn) => {
        let found = handlers.get(fn);
        if (!found) {
          found = ((await import(`../functions/${fn}.ts`)) as { handler: Handler }).handler;
          handlers.set(fn, found);
        }
        return found;
      },
    };
    await scenario.run(ctx, tally);
  } catch (error) {
    tally.error = error instanceof Error ? error.message : String(error);
  } finally {
    tally.faults = proxy.faults();
    tally.calls = proxy.calls();
    for (const record of proxy.requests()) {
      if (record.effect)
        tally.faultKinds[record.effect] = (tally.faultKinds[record.effect] ?? 0) + 1;
    }
    tally.seconds = (Date.now() - started) / 1000;
    await proxy.stop();
    ec2.destroy();
    dynamo.destroy();
  }
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(tally)}\n`);
}

// ---------------------------------------------------------------------------------
// Parent: every scenario, then the summary

function runInChild(name: string, target: string): Promise<Tally> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), '--scenario', name, '--target', target],
      { stdio: ['ignore', 'pipe', 'pipe'], env: process.env },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    child.on('close', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
      if (line) {
        resolve(JSON.parse(line.slice(RESULT_MARK.length)) as Tally);
        return;
      }
      resolve({
        scenario: name,
        faults: 0,
        faultKinds: {},
        calls: 0,
        backupsExpected: 0,
        backupsMade: 0,
        backupsReported: 0,
        duplicates: 0,
        deletionsDue: 0,
        deletionsDone: 0,
        deletionsReported: 0,
        wrongDeletions: 0,
        historyExpected: 0,
        historyFound: 0,
        checks: [],
        seconds: 0,
        error: `child exited ${code}: ${stderr.trim()}`,
      });
    });
  });
}

function formatTable(rows: readonly (readonly string[])[]): string {
  const widths =
    rows[0]?.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length))) ?? [];
  return rows
    .map((row, index) => {
      const line = row
        .map((cell, col) =>
          col === 0 ? cell.padEnd(widths[col] ?? 0) : cell.padStart(widths[col] ?? 0),
        )
        .join('  ');
      return index === 0 ? `${line}\n${'-'.repeat(line.length)}` : line;
    })
    .join('\n');
}

async function main(): Promise<void> {
  const started = Date.now();
  const stack = await startLocalStack('campaign');
  const tallies: Tally[] = [];
  try {
    for (const scenario of SCENARIOS)
      tallies.push(await runInChild(scenario.name, stack.aws.endpoint));
  } finally {
    await stack.aws.stop();
  }
  const sum = (key: keyof Tally) =>
    tallies.reduce((n, t) => n + (typeof t[key] === 'number' ? (t[key] as number) : 0), 0);
  const rows: string[][] = [
    [
      'scenario',
      'faults',
      'calls',
      'backups exp/made/rep',
      'extra snaps',
      'deletions due/done/rep',
      'wrong del',
      'history exp/found',
      'checks',
      'time',
    ],
  ];
  for (const t of tallies) {
    rows.push([
      t.scenario,
      String(t.faults),
      String(t.calls),
      `${t.backupsExpected}/${t.backupsMade}/${t.backupsReported}`,
      String(t.duplicates),
      `${t.deletionsDue}/${t.deletionsDone}/${t.deletionsReported}`,
      String(t.wrongDeletions),
      `${t.historyExpected}/${t.historyFound}`,
      t.error ? 'ERROR' : `${t.checks.filter((c) => c.ok).length}/${t.checks.length}`,
      `${t.seconds.toFixed(1)} s`,
    ]);
  }
  const checks = tallies.flatMap((t) => t.checks);
  rows.push([
    'total',
    String(sum('faults')),
    String(sum('calls')),
    `${sum('backupsExpected')}/${sum('backupsMade')}/${sum('backupsReported')}`,
    String(sum('duplicates')),
    `${sum('deletionsDue')}/${sum('deletionsDone')}/${sum('deletionsReported')}`,
    String(sum('wrongDeletions')),
    `${sum('historyExpected')}/${sum('historyFound')}`,
    `${checks.filter((c) => c.ok).length}/${checks.length}`,
    `${tallies.reduce((n, t) => n + t.seconds, 0).toFixed(1)} s`,
  ]);
  const kinds: Record<string, number> = {};
  for (const t of tallies) {
    for (const [kind, n] of Object.entries(t.faultKinds)) kinds[kind] = (kinds[kind] ?? 0) + n;
  }
  const losses: [string, number][] = [
    [
      'backups lost (expected - made - reported)',
      sum('backupsExpected') - sum('backupsMade') - sum('backupsReported'),
    ],
    ['duplicate snapshots (same volume, same slot)', sum('duplicates')],
    [
      'deletions lost (due - done - reported)',
      sum('deletionsDue') - sum('deletionsDone') - sum('deletionsReported'),
    ],
    ['deletions not due or without their record', sum('wrongDeletions')],
    ['history records lost (expected - found)', sum('historyExpected') - sum('historyFound')],
  ];
  const out = [
    `snapkeeper fault campaign: ${tallies.length} scenarios against a local AWS (moto) behind a fault proxy`,
    '',
    formatTable(rows),
    '',
    `scenarios run: ${tallies.length}; checks passed: ${checks.filter((c) => c.ok).length}/${checks.length}`,
    `faults injected: ${sum('faults')} (${Object.entries(kinds)
      .map(([kind, n]) => `${n} ${kind}`)
      .join(', ')}) over ${sum('calls')} calls`,
    `backups expected ${sum('backupsExpected')}, made ${sum('backupsMade')}, failed and reported ${sum('backupsReported')}`,
    `deletions due ${sum('deletionsDue')}, done ${sum('deletionsDone')}, failed and reported ${sum('deletionsReported')}`,
    '',
    'losses (target 0 each):',
    ...losses.map(
      ([label, n]) =>
        `  ${label.padEnd(46)} ${String(n).padStart(3)}  ${n === 0 ? 'ok' : 'MISSED'}`,
    ),
  ];
  for (const t of tallies) {
    if (t.error) out.push(`error in ${t.scenario}: ${t.error}`);
    for (const c of t.checks) if (!c.ok) out.push(`check failed in ${t.scenario}: ${c.name}`);
  }
  out.push('', `campaign took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(out.join('\n'));
  const missed =
    losses.some(([, n]) => n !== 0) || checks.some((c) => !c.ok) || tallies.some((t) => t.error);
  process.exitCode = missed ? 1 : 0;
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  const at = process.argv.indexOf('--scenario');
  const scenario = at >= 0 ? process.argv[at + 1] : undefined;
  const targetAt = process.argv.indexOf('--target');
  const target = targetAt >= 0 ? process.argv[targetAt + 1] : undefined;
  if (scenario && target) {
    // The handlers' clients keep sockets alive: a child leaves once its result is out.
    runChild(scenario, target).then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  } else {
    main().catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
  }
}
