/**
 * The fault campaign: `npm run campaign` (`-- --help` for its options).
 *
 * Starts a local AWS (moto, through harness/localStack.ts) and runs a compact version of
 * the scenarios of test/integration/faultCampaign*.test.ts and of issue 15's defects
 * (runLifecycle, ownership, createReconcile, copyLineage) against it, each in a child
 * process of its own (the handlers read their environment once, at import), each in its
 * own region and behind its own fault proxy. Prints what was injected and what was lost:
 * backups expected vs made, deletions due vs done, duplicate sets, history records
 * expected vs found. Every loss has a target of 0; the exit code is 1 when one is missed.
 *
 * The fault rules and the measurements are exported: the integration tests use the same.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CopySnapshotCommand,
  CreateImageCommand,
  CreateSnapshotCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  type Image,
  RegisterImageCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import {
  type AwsErrorEffect,
  always,
  awsError,
  COPIED_VOLUME_ID,
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
} from '../harness/faultProxy.ts';
import { lambdaContext } from '../harness/lambdaContext.ts';
import { useLocalAwsEnvironment } from '../harness/localAws.ts';
import {
  type InstanceSpec,
  type LaunchedInstance,
  launchFleet,
  ROOT_DEVICE,
} from '../harness/localFleet.ts';
import { startLocalStack } from '../harness/localStack.ts';
import { createLocalHistoryTable } from '../harness/localTable.ts';
import { createRunHistoryGateway, type RunHistoryGateway } from '../lib/aws/RunHistoryGateway.ts';
import { buildResourceTags } from '../lib/domain/backupPlan.ts';
import { copyTags } from '../lib/domain/copyPolicy.ts';
import { tagKeys } from '../lib/domain/tagKeys.ts';
import type { AmiReport } from '../lib/jobs/amiJob.ts';
import type { BackupReport } from '../lib/jobs/backupJob.ts';
import type { CopyReport } from '../lib/jobs/copyJob.ts';
import type { RetentionReport } from '../lib/jobs/retentionJob.ts';
import type { SweepReport } from '../lib/jobs/sweepJob.ts';
import { type CliSpec, CONSOLE_IO, isMain, runTool, type ToolIo, UsageError } from './cli.ts';

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
 * What a DynamoDB `PutItem` (or `BatchWriteItem`) writes, from its JSON body: the item's
 * `type` (`slot`, `run`, `action`) and, for an action, its `action` and `phase`.
 *
 * @example
 * dynamoItem(call).type === 'action';
 */
export function dynamoItem(call: ProxyCall): { type?: string; action?: string; phase?: string } {
  type Item = Record<string, { S?: string }>;
  const body = call.json as
    | { Item?: Item; RequestItems?: Record<string, { PutRequest?: { Item?: Item } }[]> }
    | undefined;
  // Since issue 19 the history writes its records in batches (BatchWriteItem): such a
  // call is read as its first action record (else its first item).
  const batched = Object.values(body?.RequestItems ?? {})
    .flat()
    .flatMap((request) => (request.PutRequest?.Item ? [request.PutRequest.Item] : []));
  const item = body?.Item ?? batched.find((i) => i.type?.S === 'action') ?? batched[0];
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
type FunctionName = 'backup' | 'retention' | 'amis' | 'copy' | 'ops';

interface ScenarioContext {
  readonly proxy: FaultProxy;
  /** moto's endpoint, behind the proxy. */
  readonly target: string;
  /** The scenario's own region. */
  readonly region: string;
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
  /** Duplicates EC2 refused to delete, reported failed by a run made partial. */
  duplicatesReported: number;
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

// ---------------------------------------------------------------------------------
// Issue 15's situations, built as the integration tests build them

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/**
 * The latest fire time at or before `now` of a daily cron at `hour`:`minute` UTC: a slot
 * the handlers accept under the real catch-up rule (as runLifecycle.test.ts computes it).
 *
 * @example
 * slotText(latestFire(3, 0)); // '2026-12-06T03:00:00Z' at 12:00 that day
 */
export function latestFire(hour: number, minute: number, now = Date.now()): Date {
  const fire = Math.floor(now / DAY_MS) * DAY_MS + hour * HOUR_MS + minute * MINUTE_MS;
  return new Date(fire > now ? fire - DAY_MS : fire);
}

/** A slot as the scheduler sends it: `2026-12-06T03:00:00Z`. */
export const slotText = (date: Date): string => `${date.toISOString().slice(0, 19)}Z`;

/** The catch-up rule itself (36 h), not the ten years the replayed fixed slots get. */
const REAL_CATCH_UP = { SLOT_CATCH_UP_SECONDS: String(36 * 3600) };

/**
 * Seeds one daily snapshot of an instance's root volume `ageDays` old with the tags the
 * backup job writes (`buildResourceTags`: the policy in force travels with the set),
 * straight in moto; `record` writes the creation record the job would write, `tags`
 * replaces the tags (a copy's, a hand-made one's), `description` sets EC2's description
 * (an AMI's snapshot).
 *
 * @example
 * await seedMade(ctx, web, webTags, 4, { record: 'create-snapshot' });
 */
async function seedMade(
  ctx: ScenarioContext,
  instance: LaunchedInstance,
  instanceTags: Record<string, string>,
  ageDays: number,
  options: {
    record?: 'create-snapshot' | 'copy-snapshot';
    tags?: Record<string, string>;
    description?: string;
  } = {},
): Promise<string> {
  const root = instance.volumes.find((v) => v.device === ROOT_DEVICE);
  if (!root) throw new Error(`${instance.name} has no root volume`);
  const tags = options.tags ?? madeTags(ctx, instance, instanceTags, ageDays);
  const made = await ctx.ec2.send(
    new CreateSnapshotCommand({
      VolumeId: root.volumeId,
      ...(options.description ? { Description: options.description } : {}),
      TagSpecifications: [
        {
          ResourceType: 'snapshot',
          Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
        },
      ],
    }),
  );
  const snapshotId = made.SnapshotId ?? '';
  if (options.record) {
    await ctx.history.record({
      runId: 'seeded',
      job: options.record === 'copy-snapshot' ? 'copy' : 'backup',
      action: options.record,
      resourceId: snapshotId,
      phase: 'after',
      outcome: 'done',
      reason: 'seeded as if made by a run',
      details: { instanceId: instance.instanceId, volumeId: root.volumeId },
    });
  }
  return snapshotId;
}

/** The tags the backup job writes on a daily set of `instance` made `ageDays` ago. */
function madeTags(
  ctx: ScenarioContext,
  instance: LaunchedInstance,
  instanceTags: Record<string, string>,
  ageDays: number,
): Record<string, string> {
  const createdAt = new Date(Date.now() - ageDays * DAY_MS - MINUTE_MS).toISOString();
  return Object.fromEntries(
    buildResourceTags(
      instance.instanceId,
      { Name: instance.name, ...instanceTags },
      {
        keys: KEYS,
        schedule: 'daily',
        slot: createdAt,
        deployment: ctx.deployment,
        runId: 'seeded',
        createdAt,
        copyTags: [],
      },
    ).map((t) => [t.Key, t.Value]),
  );
}

/** The named instance of a launched fleet. */
function named(fleet: ReadonlyMap<string, LaunchedInstance>, name: string): LaunchedInstance {
  const found = fleet.get(name);
  if (!found) throw new Error(`no instance ${name}`);
  return found;
}

/** Snapshots of the deployment tagged with a slot (any instance, any run). */
async function snapshotsOfSlot(ctx: ScenarioContext, slot: string): Promise<number> {
  return snapshotIdsOf(await snapshotSetsOfSlot(ctx.ec2, ctx.deployment, slot)).length;
}

/** The error a handler call threw, by name (`none` when it answered). */
const thrown = (settled: Settled): string =>
  settled.ok ? 'none' : ((settled.error as Error | undefined)?.name ?? 'unknown');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
  {
    // Issue 15 #1: the process dies mid-slot; Lambda retries the event at about +1 and
    // +3 minutes (the clock simulated by the lease's age, as runLifecycle.test.ts does).
    name: 'crash, Lambda retries +1/+3 min (#1)',
    region: 'us-west-2',
    // A duplicate delivery waits 2 s (not 20) for the holder before it fails.
    env: { ...REAL_CATCH_UP, AWS_MAX_ATTEMPTS: '2', DUPLICATE_WAIT_SECONDS: '2' },
    async run(ctx, tally) {
      const fleet = [...(await launchFleet(ctx.ec2, dailyFleet(6))).values()];
      const backup = await ctx.handler('backup');
      const slot = slotText(latestFire(3, 0));
      const event = { schedule: 'daily', scheduledTime: slot };
      const crash = crashAfter('CreateSnapshots', 2);
      ctx.proxy.rules.add(crash.rule);
      await settle(backup(event, lambdaContext())); // a dead process answers nothing
      ctx.proxy.rules.clear();
      const crashedRunId = await holderOf(ctx, 'backup', slot);
      const afterCrash = await snapshotsOfSlot(ctx, slot);
      check(
        tally,
        'crashed mid-slot: some sets made, the run left running',
        crash.crashed() &&
          afterCrash > 0 &&
          (await ctx.history.getRun(crashedRunId))?.status === 'running',
      );
      // +1 min: the lease a minute old (two renewals missed): a live holder, maybe.
      await leaseInThePast(ctx.doc, ctx.table, crashedRunId, new Date(Date.now() - MINUTE_MS));
      const first = await settle(backup(event, lambdaContext()));
      check(
        tally,
        '+1 min retry fails (SlotInProgressError), so Lambda retries again; nothing done',
        thrown(first) === 'SlotInProgressError' &&
          (await snapshotsOfSlot(ctx, slot)) === afterCrash,
      );
      // +3 min: four renewals missed: a dead run; this delivery takes the slot over.
      await leaseInThePast(ctx.doc, ctx.table, crashedRunId, new Date(Date.now() - 3 * MINUTE_MS));
      const second = await settle(backup(event, lambdaContext()));
      const report = second.ok ? (second.value as BackupReport) : undefined;
      const run = report ? await ctx.history.getRun(report.runId) : undefined;
      check(
        tally,
        '+3 min retry took over (retry, resumedFrom) and succeeded',
        report?.trigger === 'retry' &&
          report.status === 'succeeded' &&
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
    // Issue 15 #2: disaster-recovery copies in this region carry the source's managed,
    // deployment and schedule tags, and EC2 reports each on vol-ffffffff. The stage's own
    // retention here must leave them to the copy job (copy-retain=10 > the default 7).
    name: 'stage retention in a DR region (#2)',
    region: 'eu-west-1',
    async run(ctx, tally) {
      await ctx.history.ledgerStart(new Date(Date.now() - MINUTE_MS));
      const localTags = { [KEYS.backup]: 'daily', [KEYS.retain]: '3' };
      const sourceTags = { [KEYS.backup]: 'daily' };
      const fleet = await launchFleet(ctx.ec2, [
        { name: 'local-1', tags: localTags },
        { name: 'src-1', tags: sourceTags },
        { name: 'src-2', tags: sourceTags },
      ]);
      const local = named(fleet, 'local-1');
      const sets: string[] = [];
      for (let age = 0; age < 5; age += 1)
        sets.push(await seedMade(ctx, local, localTags, age, { record: 'create-snapshot' }));
      const copies: string[] = [];
      for (const name of ['src-1', 'src-2']) {
        const source = named(fleet, name);
        const volumeId = source.volumes.find((v) => v.device === ROOT_DEVICE)?.volumeId;
        for (let age = 0; age < 6; age += 1) {
          const tags = Object.fromEntries(
            copyTags(
              madeTags(ctx, source, sourceTags, age),
              KEYS,
              {
                volumeId,
                snapshotId: `snap-0${name.replace('-', '')}${String(age).padStart(10, '0')}`,
              },
              'us-east-1',
              10,
            ).map((t) => [t.Key, t.Value]),
          );
          copies.push(
            await seedMade(ctx, source, sourceTags, age, { tags, record: 'copy-snapshot' }),
          );
        }
      }
      const vff = copiesReportUnknownVolume({ isCopy: (s) => KEYS.sourceSnapshotId in s.tags });
      ctx.proxy.rules.add(vff);
      ctx.proxy.rules.add(ec2Weather({ seed: 67 }).rule);
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'daily' }, lambdaContext()),
      );
      ctx.proxy.rules.clear();
      const report = retention.ok ? (retention.value as RetentionReport) : undefined;
      check(tally, 'copies reported on vol-ffffffff', vff.rewritten() > 0);
      check(
        tally,
        "every copy left to the copy job's retention",
        report?.excluded?.filter((e) => e.kind === 'copy').length === copies.length,
      );
      check(
        tally,
        'no lineage keyed on vol-ffffffff',
        report !== undefined && !report.volumes.some((v) => v.volumeId === COPIED_VOLUME_ID),
      );
      await tallyDeletions(ctx, tally, report, sets.slice(3), [...sets.slice(0, 3), ...copies]);
    },
  },
  {
    // Issue 15 #3: a terminated instance and one whose opt-in tag was removed keep the
    // policy recorded on their sets (retain=10, retain-days=30), never the default 7.
    name: 'orphans keep their recorded policy (#3)',
    region: 'eu-west-3',
    async run(ctx, tally) {
      await ctx.history.ledgerStart(new Date(Date.now() - MINUTE_MS));
      const policy = { [KEYS.backup]: 'daily', [KEYS.retain]: '10', [KEYS.retainDays]: '30' };
      const fleet = await launchFleet(ctx.ec2, [
        { name: 'gone-1', tags: policy, state: 'terminated' },
        { name: 'untagged-1', tags: {} },
        { name: 'live-1', tags: { [KEYS.backup]: 'daily' } },
      ]);
      const ages = [...Array.from({ length: 12 }, (_, i) => i), 40, 45];
      const due: string[] = [];
      const kept: string[] = [];
      for (const name of ['gone-1', 'untagged-1']) {
        for (const age of ages) {
          const id = await seedMade(ctx, named(fleet, name), policy, age, {
            record: 'create-snapshot',
          });
          (age >= 40 ? due : kept).push(id);
        }
      }
      // A live instance on the default (keep 7): its two oldest are due.
      const live = named(fleet, 'live-1');
      for (let age = 0; age < 9; age += 1) {
        const id = await seedMade(ctx, live, { [KEYS.backup]: 'daily' }, age, {
          record: 'create-snapshot',
        });
        (age >= 7 ? due : kept).push(id);
      }
      ctx.proxy.rules.add(ec2Weather({ seed: 71 }).rule);
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'daily' }, lambdaContext()),
      );
      ctx.proxy.rules.clear();
      const report = retention.ok ? (retention.value as RetentionReport) : undefined;
      const ruleOf = (name: string) => {
        const root = named(fleet, name).volumes.find((v) => v.device === ROOT_DEVICE);
        return report?.volumes.find((v) => v.volumeId === root?.volumeId)?.rule;
      };
      check(
        tally,
        'terminated and untagged instances judged by retain=10, retain-days=30',
        ['gone-1', 'untagged-1'].every(
          (name) => ruleOf(name)?.count === 10 && ruleOf(name)?.minAgeDays === 30,
        ),
      );
      check(tally, 'retention succeeded', report?.status === 'succeeded');
      await tallyDeletions(ctx, tally, report, due, kept);
    },
  },
  {
    // Issue 15 #4: with retain=3 and ami-retain=1, the AMI's snapshots (same volume, our
    // tags, EC2's CreateImage description: as on AWS, seeded since moto snapshots a
    // temporary volume) take none of the volume's three places.
    name: 'AMI snapshots outside the count (#4)',
    region: 'ap-southeast-2',
    async run(ctx, tally) {
      await ctx.history.ledgerStart(new Date(Date.now() - MINUTE_MS));
      const tags = {
        [KEYS.backup]: 'daily',
        [KEYS.retain]: '3',
        [KEYS.ami]: 'daily',
        [KEYS.amiRetain]: '1',
      };
      const web = named(await launchFleet(ctx.ec2, [{ name: 'web-1', tags }]), 'web-1');
      const sets: string[] = [];
      for (let age = 0; age < 5; age += 1)
        sets.push(await seedMade(ctx, web, tags, age, { record: 'create-snapshot' }));
      const amiSnapshots: string[] = [];
      for (let age = 0; age < 2; age += 1) {
        amiSnapshots.push(
          await seedMade(ctx, web, tags, age, {
            description: `Created by CreateImage(${web.instanceId}) for ami-0000000000000000${age}`,
          }),
        );
      }
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'daily' }, lambdaContext()),
      );
      const report = retention.ok ? (retention.value as RetentionReport) : undefined;
      check(
        tally,
        "AMI snapshots left to AMI retention (kind 'image-snapshot')",
        amiSnapshots.every((id) =>
          report?.excluded?.some((e) => e.snapshotId === id && e.kind === 'image-snapshot'),
        ),
      );
      await tallyDeletions(ctx, tally, report, sets.slice(3), [
        ...sets.slice(0, 3),
        ...amiSnapshots,
      ]);
    },
  },
  {
    // Issue 15 #5 and #6, under the real catch-up rule (36 h here, not the local ten
    // years): tomorrow's slot sent today, years 9999 and 0000 and a slot past its window
    // are rejected by name; the real slot backs up; an off-schedule time is that slot.
    name: 'future and off-schedule slots (#5, #6)',
    region: 'eu-south-1',
    env: REAL_CATCH_UP,
    async run(ctx, tally) {
      const fleet = [...(await launchFleet(ctx.ec2, dailyFleet(3))).values()];
      const backup = await ctx.handler('backup');
      const deliver = (scheduledTime: string) =>
        settle(backup({ schedule: 'daily', scheduledTime }, lambdaContext()));
      const fire = latestFire(3, 0);
      const slot = slotText(fire);
      const future = slotText(new Date(fire.getTime() + 2 * DAY_MS));
      const stale = slotText(new Date(fire.getTime() - 2 * DAY_MS));
      const message = (s: Settled) => (s.ok ? '' : String((s.error as Error).message));
      const early = await deliver(future);
      check(
        tally,
        "tomorrow's slot sent today rejected by name, nothing claimed",
        thrown(early) === 'InvalidEventError' &&
          message(early).startsWith(`field "scheduledTime": ${future}`) &&
          (await ctx.history.getSlotClaim({ job: 'backup', schedule: 'daily', slot: future })) ===
            undefined,
      );
      const years = [await deliver('9999-12-31T03:00:00Z'), await deliver('0000-01-01T03:00:00Z')];
      check(
        tally,
        'years 9999 and 0000 rejected by name',
        years.every(
          (y) => thrown(y) === 'InvalidEventError' && message(y).includes('scheduledTime'),
        ),
      );
      const late = await deliver(stale);
      check(
        tally,
        'a slot past its catch-up window rejected by name',
        thrown(late) === 'InvalidEventError' &&
          message(late).includes('older than its catch-up window'),
      );
      const onTime = await deliver(slot);
      const first = onTime.ok ? (onTime.value as BackupReport) : undefined;
      check(
        tally,
        'the real slot still backs up',
        first?.status === 'succeeded' && first.slot === slot,
      );
      // Five minutes off-schedule (or, just after the fire time, 30 s before it).
      const offSchedule = slotText(
        new Date(
          Date.now() - fire.getTime() > 6 * MINUTE_MS
            ? fire.getTime() + 5 * MINUTE_MS
            : fire.getTime() - 30_000,
        ),
      );
      const again = await deliver(offSchedule);
      check(
        tally,
        'an off-schedule time is served as its slot: the same run, no second set',
        again.ok && (again.value as BackupReport).runId === first?.runId,
      );
      await tallyBackups(ctx, tally, slot, fleet, 0);
      // Any set under the future or the off-schedule slot is a second set of the day.
      tally.duplicates +=
        (await snapshotsOfSlot(ctx, future)) + (await snapshotsOfSlot(ctx, offSchedule));
    },
  },
  {
    // Issue 15 #8 and #9 (the #7 scenario covers the lagging describes): a create whose
    // answer was lost and whose describes then all fail; a duplicate set EC2 refuses to
    // delete. One schedule per story.
    name: 'answered sets, undeletable duplicates (#8, #9)',
    region: 'af-south-1',
    env: {
      SCHEDULES: JSON.stringify([
        { name: 'describe-down', cron: 'cron(0 2 * * ? *)', timezone: 'UTC', retain: 7 },
        { name: 'undeletable', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 7 },
      ]),
      DEFAULT_SCHEDULE: 'describe-down',
      AWS_REQUEST_TIMEOUT_MS: '1500',
      AWS_MAX_ATTEMPTS: '3',
      DUPLICATE_WAIT_SECONDS: '5',
    },
    async run(ctx, tally) {
      const fleet = await launchFleet(ctx.ec2, [
        {
          name: 'describe-down-1',
          tags: { [KEYS.backup]: 'describe-down' },
          dataVolumes: [{ device: '/dev/sdf', sizeGiB: 8 }],
        },
        { name: 'undeletable-1', tags: { [KEYS.backup]: 'undeletable' } },
      ]);
      const backup = await ctx.handler('backup');
      const recordedCreates = async (runId: string) =>
        (await ctx.history.runActions(runId))
          .filter((a) => a.action === 'create-snapshot')
          .map((a) => a.resourceId);

      const down = named(fleet, 'describe-down-1');
      ctx.proxy.rules.add(forInstance(down.instanceId, firstCalls(1, loseAnswer())));
      ctx.proxy.rules.add({
        action: 'DescribeSnapshots',
        decide: always(awsError('InternalError', 500, 'An internal error has occurred.')),
      });
      const downSlot = '2026-10-10T02:00:00Z';
      const r8 = await settle(
        backup({ schedule: 'describe-down', scheduledTime: downSlot }, lambdaContext()),
      );
      ctx.proxy.rules.clear();
      const report8 = r8.ok ? (r8.value as BackupReport) : undefined;
      const result8 = report8?.instances[0];
      const answered = (result8?.snapshots ?? []).map((s) => s.snapshotId ?? '');
      const recorded8 = report8 ? await recordedCreates(report8.runId) : [];
      check(
        tally,
        '#8 the answered set reported created (not failed), run partial',
        report8?.status === 'partial' && result8?.outcome === 'created',
      );
      check(
        tally,
        '#8 the answered set recorded',
        answered.length === down.volumes.length && answered.every((id) => recorded8.includes(id)),
      );
      // The set of the attempt whose answer was lost cannot be seen while every describe
      // fails: the run is partial and names the tags that find it. It counts as a
      // duplicate reported, and the history is owed only the set the run knows of.
      await tallyBackups(ctx, tally, downSlot, [down], 0, false);
      if (result8?.error?.message.includes('second set'))
        tally.duplicatesReported += await extraSnapshotsOfSlot(ctx.ec2, ctx.deployment, downSlot);
      tally.historyExpected += answered.length;
      tally.historyFound += answered.filter((id) => recorded8.includes(id)).length;

      const stuck = named(fleet, 'undeletable-1');
      ctx.proxy.rules.add(forInstance(stuck.instanceId, firstCalls(1, loseAnswer())));
      ctx.proxy.rules.add({
        action: 'DeleteSnapshot',
        decide: always(
          awsError(
            'UnauthorizedOperation',
            403,
            'You are not authorized to perform this operation.',
          ),
        ),
      });
      const stuckSlot = '2026-10-10T03:00:00Z';
      const r9 = await settle(
        backup({ schedule: 'undeletable', scheduledTime: stuckSlot }, lambdaContext()),
      );
      ctx.proxy.rules.clear();
      const report9 = r9.ok ? (r9.value as BackupReport) : undefined;
      const duplicates = report9?.instances[0]?.duplicates ?? [];
      check(
        tally,
        '#9 undeletable duplicate: run partial (the alert fires), duplicate reported failed',
        report9?.status === 'partial' &&
          duplicates.length === stuck.volumes.length &&
          duplicates.every((d) => d.outcome === 'failed'),
      );
      tally.duplicatesReported += duplicates.filter((d) => d.outcome === 'failed').length;
      await tallyBackups(ctx, tally, stuckSlot, [stuck], 0);
    },
  },
  {
    // Issue 15 #10: the console's double press on either side of a window edge (where
    // the old fixed buckets split it) runs once. Real time, with an 8 s window.
    name: 'console double press across an edge (#10)',
    region: 'me-south-1',
    env: { CONSOLE_DEDUPE_SECONDS: '8' },
    async run(ctx, tally) {
      const WINDOW_MS = 8_000;
      const target = named(await launchFleet(ctx.ec2, [{ name: 'console-1' }]), 'console-1');
      const ops = await ctx.handler('ops');
      const press = async (payload: unknown) => {
        const answer = await settle(ops(payload, lambdaContext('snapkeeper-campaign-ops')));
        return answer.ok ? (answer.value as { status?: string; runId?: string }) : undefined;
      };
      const edge = Math.ceil((Date.now() + 1_500) / WINDOW_MS) * WINDOW_MS;
      await sleep(edge - 1_000 - Date.now());
      const payload = { action: 'backup', instanceIds: [target.instanceId] };
      const firstAt = Date.now();
      const first = await press(payload);
      if (Date.now() < edge + 200) await sleep(edge + 200 - Date.now());
      const secondAt = Date.now();
      const second = await press({ ...payload });
      check(
        tally,
        'the repeat came after the edge, within the window',
        firstAt < edge && secondAt >= edge && secondAt - firstAt < WINDOW_MS,
      );
      check(
        tally,
        'the double press ran once (the same run)',
        first?.status === 'succeeded' && second?.runId === first.runId,
      );
      const made =
        (
          await ctx.ec2.send(
            new DescribeSnapshotsCommand({
              OwnerIds: ['self'],
              Filters: [
                { Name: `tag:${KEYS.instanceId}`, Values: [target.instanceId] },
                { Name: `tag:${KEYS.deployment}`, Values: [ctx.deployment] },
              ],
            }),
          )
        ).Snapshots ?? [];
      const ids = made.map((s) => s.SnapshotId ?? '');
      tally.backupsExpected += 1;
      tally.backupsMade += ids.length > 0 ? 1 : 0;
      tally.duplicates += Math.max(0, ids.length - target.volumes.length);
      tally.historyExpected += ids.length;
      tally.historyFound += ids.length - (await untracedResources(ctx.history, ids)).length;
    },
  },
  {
    // Issue 15 #11: snapshots that merely carry our tags (one made by hand, an operator's
    // same-region copy "with tags", an AMI's snapshot whose creation no run recorded)
    // are reported, never deleted, by retention or the sweep; recorded ones still go.
    name: 'tagged as ours, never recorded (#11)',
    region: 'ap-east-1',
    async run(ctx, tally) {
      await ctx.history.ledgerStart(new Date(Date.now() - MINUTE_MS));
      const tags = { [KEYS.backup]: 'daily', [KEYS.retain]: '3' };
      const web = named(await launchFleet(ctx.ec2, [{ name: 'web-1', tags }]), 'web-1');
      const sets: string[] = [];
      for (let age = 0; age < 5; age += 1)
        sets.push(await seedMade(ctx, web, tags, age, { record: 'create-snapshot' }));
      const handMade = await seedMade(ctx, web, tags, 20);
      const copy =
        (
          await ctx.ec2.send(
            new CopySnapshotCommand({
              SourceRegion: ctx.region,
              SourceSnapshotId: sets[4],
              Description: 'kept by hand',
              TagSpecifications: [
                {
                  ResourceType: 'snapshot',
                  Tags: Object.entries(madeTags(ctx, web, tags, 4)).map(([Key, Value]) => ({
                    Key,
                    Value,
                  })),
                },
              ],
            }),
          )
        ).SnapshotId ?? '';
      // Two AMIs deregistered by hand, their snapshots tagged as ours; one recorded.
      const amiSnapshot = new Map<boolean, string>();
      for (const recorded of [true, false]) {
        const imageId =
          (
            await ctx.ec2.send(
              new CreateImageCommand({
                InstanceId: web.instanceId,
                Name: `web-1-${recorded ? 'recorded' : 'unrecorded'}`,
              }),
            )
          ).ImageId ?? '';
        const [image] =
          (await ctx.ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images ?? [];
        const snapshotId = snapshotsOfImage(image)[0] ?? '';
        amiSnapshot.set(recorded, snapshotId);
        await ctx.ec2.send(
          new CreateTagsCommand({
            Resources: [snapshotId],
            Tags: [
              { Key: KEYS.managed, Value: 'true' },
              { Key: KEYS.deployment, Value: ctx.deployment },
            ],
          }),
        );
        if (recorded) {
          await ctx.history.record({
            runId: 'seeded',
            job: 'amis',
            action: 'create-image',
            resourceId: imageId,
            phase: 'after',
            outcome: 'done',
            reason: 'seeded as if made by an AMI run',
            details: { instanceId: web.instanceId },
          });
        }
        await ctx.ec2.send(new DeregisterImageCommand({ ImageId: imageId }));
      }
      const ours = amiSnapshot.get(true) ?? '';
      const foreign = amiSnapshot.get(false) ?? '';
      ctx.proxy.rules.add(copiesReportUnknownVolume({ isCopy: (s) => s.snapshotId === copy }));
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'daily' }, lambdaContext()),
      );
      const report = retention.ok ? (retention.value as RetentionReport) : undefined;
      check(
        tally,
        'retention kept and reported the hand-made snapshot (unrecorded) and the copy',
        report?.excluded?.some((e) => e.snapshotId === handMade && e.kind === 'unrecorded') ===
          true &&
          report.excluded.some(
            (e) =>
              e.snapshotId === copy &&
              (e.kind === 'unrecorded' || e.kind === 'unknown-volume') &&
              e.reason !== '',
          ),
      );
      await tallyDeletions(ctx, tally, report, sets.slice(3), [
        ...sets.slice(0, 3),
        handMade,
        copy,
        foreign,
      ]);
      const sweep = await settle((await ctx.handler('amis'))({ sweep: true }, lambdaContext()));
      ctx.proxy.rules.clear();
      const swept = sweep.ok ? (sweep.value as SweepReport) : undefined;
      check(
        tally,
        "the sweep only reported the unrecorded AMI's snapshot",
        swept?.reportedOnly.some((r) => r.snapshotId === foreign) ?? false,
      );
      const left = await existingSnapshots(ctx.ec2, [ours, handMade, copy, foreign]);
      tally.deletionsDue += 1;
      tally.deletionsDone += left.has(ours) ? 0 : 1;
      tally.deletionsReported +=
        left.has(ours) &&
        swept?.deleted.some((d) => d.snapshotId === ours && d.outcome !== 'deleted')
          ? 1
          : 0;
      tally.wrongDeletions += [handMade, copy, foreign].filter((id) => !left.has(id)).length;
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
    duplicatesReported: 0,
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
      region,
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

function runInChild(name: string, target: string, verbose: boolean): Promise<Tally> {
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
      // The functions' Powertools lines go to stdout: --verbose shows them on stderr.
      if (verbose) {
        const lines = chunk.toString().split('\n');
        const logs = lines.filter((l) => l !== '' && !l.startsWith(RESULT_MARK));
        if (logs.length > 0) process.stderr.write(`${logs.join('\n')}\n`);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (verbose) process.stderr.write(chunk);
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
        duplicatesReported: 0,
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

async function main(
  scenarios: readonly Scenario[],
  verbose: boolean,
): Promise<{ text: string; tallies: Tally[]; missed: boolean }> {
  const started = Date.now();
  const stack = await startLocalStack('campaign');
  const tallies: Tally[] = [];
  try {
    for (const scenario of scenarios)
      tallies.push(await runInChild(scenario.name, stack.aws.endpoint, verbose));
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
      'extra snaps/rep',
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
      `${t.duplicates}/${t.duplicatesReported}`,
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
    `${sum('duplicates')}/${sum('duplicatesReported')}`,
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
    ['duplicate snapshots not deleted nor reported', sum('duplicates') - sum('duplicatesReported')],
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
  const missed =
    losses.some(([, n]) => n !== 0) || checks.some((c) => !c.ok) || tallies.some((t) => t.error);
  return { text: out.join('\n'), tallies, missed };
}

/** `npm run campaign`'s command line. */
export const CAMPAIGN_COMMAND: CliSpec = {
  command: 'npm run campaign --',
  summary:
    "The fault campaign: starts a local AWS (moto) and runs each scenario (throttling, timeouts, crashes, lost answers, races, issue 15's defects) in a child process of its own, behind a fault proxy; prints what was injected and what was lost. Exit code 1 when a loss is not 0 or a check fails.",
  options: {
    only: {
      type: 'string',
      value: '<text>',
      description: 'run only the scenarios whose name contains <text> (case-insensitive)',
    },
    list: { type: 'boolean', description: 'list the scenarios and exit' },
    scenario: {
      type: 'string',
      value: '<name>',
      description: 'internal: run one scenario in this process (with --target)',
    },
    target: {
      type: 'string',
      value: '<endpoint>',
      description: 'internal: the local AWS endpoint for --scenario',
    },
  },
  examples: [
    'npm run campaign',
    'npm run campaign -- --only "#1)"',
    'npm run campaign -- --list',
    'npm run campaign -- --json > campaign.json',
  ],
  notes: ["--verbose passes the children's log lines through to stderr. --help starts nothing."],
};

/**
 * Runs `npm run campaign` with a command line: `--help`, `--list`, a child's
 * `--scenario`/`--target`, or the campaign. Answers the exit code (2 for a bad command line).
 *
 * @example
 * process.exitCode = await campaignCommand(['--only', 'crash']);
 */
export async function campaignCommand(
  argv: readonly string[],
  io: ToolIo = CONSOLE_IO,
): Promise<number> {
  return runTool(
    CAMPAIGN_COMMAND,
    argv,
    async (cli) => {
      const { scenario, target, only } = cli.values as Record<string, string | undefined>;
      if ((scenario === undefined) !== (target === undefined))
        throw new UsageError(
          '--scenario and --target go together (internal; see npm run campaign -- --help)',
        );
      const chosen = selectScenarios(only);
      if (cli.values.list === true) {
        io.out(chosen.map((s) => `${s.name}  (${s.region})`).join('\n'));
        return 0;
      }
      if (scenario !== undefined && target !== undefined) {
        await runChild(scenario, target);
        return 0;
      }
      // The local stack keeps the functions' Powertools logs silent unless told otherwise.
      if (cli.verbose && (process.env.POWERTOOLS_LOG_LEVEL ?? 'SILENT') === 'SILENT')
        process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
      const summary = await main(chosen, cli.verbose);
      io.out(cli.json ? JSON.stringify(summary.tallies, null, 2) : summary.text);
      return summary.missed ? 1 : 0;
    },
    io,
  );
}

/** The scenarios whose name contains `only` (all without it); none is a usage error. */
function selectScenarios(only: string | undefined): readonly Scenario[] {
  if (only === undefined) return SCENARIOS;
  const chosen = SCENARIOS.filter((s) => s.name.toLowerCase().includes(only.toLowerCase()));
  if (chosen.length === 0)
    throw new UsageError(
      `--only ${JSON.stringify(only)} matches no scenario (see npm run campaign -- --list)`,
    );
  return chosen;
}

if (isMain(import.meta.url)) {
  // The handlers' clients keep sockets alive: the process leaves once its answer is out.
  campaignCommand(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
