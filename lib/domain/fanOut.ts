/**
 * The fan-out of one scheduled run past one Lambda invocation: the planner splits the
 * work per (account, region, batch) and workers process the batches from a queue. This
 * module is the pure part: targets, batches, the message contract, and how a run's
 * status follows from its batches' statuses.
 */
import { InvalidEventError } from './errors.ts';
import * as z from './schema.ts';

/** Where a fan-out reaches: one account (or `self`, the deployment's own) in one region. */
export interface Target {
  /** A 12-digit account id, or `self` for the account the deployment runs in. */
  readonly account: string;
  readonly region: string;
}

/** The jobs that fan out. */
export type FanOutJob = 'backup' | 'retention';

/** One unit of work for a worker. */
export interface BatchSpec {
  /** `<account>/<region>/<nnnn>`: unique within the run. */
  readonly batchId: string;
  readonly target: Target;
  /** Backup: the opted-in instances of this batch. Retention: absent (the whole target). */
  readonly instanceIds?: readonly string[] | undefined;
  /** Backup: tags of this batch's volumes that carry the skip tag (read once by the planner). */
  readonly volumeTags?: Readonly<Record<string, Readonly<Record<string, string>>>> | undefined;
  /**
   * The share of the target's EC2 rate this batch may use, when not the worker's
   * default (1/workers). A retention run is one batch per target, and DeleteSnapshot
   * has a bucket of its own, so its batch takes the whole rate.
   */
  readonly rateShare?: number | undefined;
}

/** The SQS message a worker receives: the batch and the run it belongs to. */
export interface BatchMessage extends BatchSpec {
  readonly runId: string;
  readonly job: FanOutJob;
  readonly schedule: string;
  /** The slot served, ISO 8601 UTC (`2026-11-23T03:00:00Z`). */
  readonly slot: string;
  readonly dryRun: boolean;
  /** How many batches the run has in all. */
  readonly batches: number;
  /**
   * Set when the planner took the slot over from an earlier run: the worker first
   * reads the slot's snapshots of its instances (by the slot tag) and skips those
   * already backed up, so that no create is ever repeated.
   */
  readonly reconcile?: boolean | undefined;
}

/** Where a batch stands in the run history. */
export type BatchStatus = 'pending' | 'running' | 'retry' | 'succeeded' | 'partial' | 'failed';

/** Batch statuses that are final: a later delivery of the batch does nothing. */
export const FINAL_BATCH_STATUSES: readonly BatchStatus[] = ['succeeded', 'partial', 'failed'];

/** A batch's checkpoint as the run history holds it. */
export interface BatchCheckpoint {
  readonly batchId: string;
  readonly status: BatchStatus;
  readonly attempts: number;
  readonly counts?: Readonly<Record<string, number>> | undefined;
  readonly errorSummary?: string | undefined;
}

/** A fan-out target account: a 12-digit id, or `self`. */
export const TARGET_ACCOUNT = /^(self|\d{12})$/;
/** A region name, like `eu-west-1`. */
export const REGION_NAME = /^[a-z]{2}(-[a-z]+)+-\d$/;

/**
 * The targets of a deployment: every listed account in every listed region. Without a
 * list, the deployment's own account and region.
 *
 * @throws {InvalidEventError} naming the bad account or region.
 * @example
 * planTargets(['self', '210987654321'], ['eu-west-1', 'us-east-1']); // 4 targets
 */
export function planTargets(accounts: readonly string[], regions: readonly string[]): Target[] {
  const bad =
    accounts.find((a) => !TARGET_ACCOUNT.test(a)) ??
    regions.find((r) => !REGION_NAME.test(r)) ??
    undefined;
  if (bad !== undefined) {
    throw new InvalidEventError(
      `${JSON.stringify(bad)} is not a 12-digit account id, "self", or a region name like eu-west-1`,
    );
  }
  const targets: Target[] = [];
  for (const account of new Set(accounts)) {
    for (const region of new Set(regions)) targets.push({ account, region });
  }
  return targets;
}

/** A target as a short, stable label: `self/eu-west-1`. */
export function targetLabel(target: Target): string {
  return `${target.account}/${target.region}`;
}

/**
 * The share of the target's rate each of a plan's batches takes, when not the worker's
 * default (1/workers): a plan of fewer batches than workers runs all its batches at
 * once, every worker's share would otherwise leave the idle workers' share unused, so
 * each batch takes an equal part of the whole rate (1/batches). A plan of a round or
 * more keeps the default: its batches run beside batches of the previous round, and
 * together they must stay within the bucket. Undefined means the worker's default.
 *
 * Within one run the shares in flight never add up to more than the whole rate. (Two
 * runs fanning out over the same target at the same moment could together exceed it,
 * as two retention runs already can; the limiter then waits on EC2's throttling answer
 * and the SDK retries: slower, nothing lost.)
 *
 * @example
 * batchRateShare(1, 4); // 1: one batch takes the whole rate
 * batchRateShare(3, 4); // 1/3
 * batchRateShare(8, 4); // undefined: the worker's 1/4
 */
export function batchRateShare(batches: number, workers: number): number | undefined {
  const perRound = Math.max(1, Math.floor(workers) || 1);
  if (batches < 1 || batches >= perRound) return undefined;
  return 1 / batches;
}

/**
 * Splits one target's due instances into `batchCount` batches of near-equal size (they
 * differ by one at most), each carrying the skip-tagged volumes of its own instances.
 * Instance order is kept, so the same fleet always gives the same batches. The count is
 * kept between 1 and the number of instances. Given the `workers` at once, a plan of
 * fewer batches than workers gives each batch its part of the whole rate
 * ({@link batchRateShare}), so no worker's share is left unused, and a plan of two rounds
 * or more staggers its first round ({@link staggeredBatchSizes}, kept within `maxBatch`)
 * so that the workers do not change batch at the same moment.
 *
 * @example
 * planInstanceBatches({ account: 'self', region: 'eu-west-1' }, instances, new Map(), 4, 4);
 */
export function planInstanceBatches(
  target: Target,
  instances: readonly { instanceId: string; volumeIds: readonly string[] }[],
  volumeTags: ReadonlyMap<string, Readonly<Record<string, string>>>,
  batchCount: number,
  workers?: number,
  maxBatch?: number,
): BatchSpec[] {
  if (instances.length === 0) return [];
  const count = Math.min(instances.length, Math.max(1, Math.floor(batchCount) || 1));
  const rateShare = workers === undefined ? undefined : batchRateShare(count, workers);
  const sizes =
    (workers === undefined
      ? undefined
      : staggeredBatchSizes(instances.length, count, workers, maxBatch)) ??
    evenBatchSizes(instances.length, count);
  const batches: BatchSpec[] = [];
  let start = 0;
  for (let index = 0; index < count; index += 1) {
    const size = sizes[index] ?? 0;
    const slice = instances.slice(start, start + size);
    start += size;
    const tags: Record<string, Readonly<Record<string, string>>> = {};
    for (const instance of slice) {
      for (const volumeId of instance.volumeIds) {
        const found = volumeTags.get(volumeId);
        if (found) tags[volumeId] = found;
      }
    }
    batches.push({
      batchId: `${targetLabel(target)}/${String(index + 1).padStart(4, '0')}`,
      target,
      instanceIds: slice.map((i) => i.instanceId),
      ...(Object.keys(tags).length > 0 ? { volumeTags: tags } : {}),
      ...(rateShare !== undefined ? { rateShare } : {}),
    });
  }
  return batches;
}

/** `total` instances in `count` batches whose sizes differ by one at most (larger first). */
function evenBatchSizes(total: number, count: number): number[] {
  const base = Math.floor(total / count);
  const larger = total % count;
  return Array.from({ length: count }, (_, index) => base + (index < larger ? 1 : 0));
}

/**
 * The batch sizes of a plan of at least two rounds (`count` ≥ 2 × `workers`) with a
 * staggered first round, or undefined when the plan keeps equal batches. Equal batches
 * make every worker change batch at the same moment (history flush, checkpoint, next
 * message, claim, describe), so EC2 sees no creates for a few seconds at once at each
 * round's end. Batch k of the first round (k = 0..workers−1) gets
 * `round(base × (1 − k / (2 × workers)))` instances (`base` = total / count, rounded
 * down); what they leave is spread evenly over the later batches (within one of each
 * other), so the workers' batch changes fall at different moments for the rest of the
 * run. The first-round sizes are distinct when `base` ≥ 2 × `workers` (8 for 4 workers).
 * Not staggered when a later batch would go above `maxBatch`.
 *
 * @example
 * staggeredBatchSizes(5000, 28, 4, 200); // [178, 156, 134, 111, 185, …, 184]
 * staggeredBatchSizes(400, 4, 4, 200); // undefined: one round
 */
export function staggeredBatchSizes(
  total: number,
  count: number,
  workers: number,
  maxBatch?: number,
): number[] | undefined {
  const perRound = Math.floor(workers);
  if (!(perRound >= 2) || count < 2 * perRound || total < count) return undefined;
  const base = Math.floor(total / count);
  const first = Array.from({ length: perRound }, (_, k) =>
    Math.max(1, Math.round(base * (1 - k / (2 * perRound)))),
  );
  const taken = first.reduce((sum, size) => sum + size, 0);
  const later = evenBatchSizes(total - taken, count - perRound);
  const limit = maxBatch !== undefined && maxBatch >= 1 ? Math.floor(maxBatch) : Infinity;
  if ((later[0] ?? 0) > limit || first.some((size) => size > limit)) return undefined;
  return [...first, ...later];
}

/**
 * How often a worker re-reads its run's batch checkpoints to follow
 * {@link tailRateShare} while it runs a batch.
 */
export const SHARE_REFRESH_MS = 1_000;

/**
 * How often the worker re-reads once its run's unfinished batches of the target are no
 * more than the workers at once: then every batch that ends frees a share, and a 1 s
 * lag left the 5,000-instance fan-out's last 5-second window at 0.89 of the refill.
 */
export const TAIL_SHARE_REFRESH_MS = 250;

/**
 * The share of a target's EC2 rate a running batch takes: `max(baseShare, 1 / unfinished)`
 * (at most 1), where `unfinished` is the number of batches of the same run and target
 * that are not final (pending, running or retry) as last read, this one included, and
 * `baseShare` the batch's own (`rateShare` of its message, else `EC2_RATE_SHARE`). When
 * the run's tail has fewer batches left than workers, the batches still running take the
 * shares of the workers gone idle.
 *
 * Why the shares in flight never exceed the whole rate, even with stale reads: the
 * planner records every batch `pending` before it sends any, and a batch only ever moves
 * towards final (a requeued or retried batch was unfinished already), so the true number
 * of unfinished batches `u` never grows. A read made earlier saw at least `u`, so each
 * running batch's share is at most `max(baseShare, 1 / u)`. The batches running are among
 * the unfinished, `r ≤ u`, and at most `1 / baseShare` of them run at once (the workers),
 * so the sum is at most `max(r × baseShare, r / u) ≤ 1`. For the same reason a batch's
 * share only ever goes up while it runs. A read that misses some of the run's batches
 * (fewer than the run has) is not used.
 *
 * @example
 * tailRateShare(0.25, 28); // 0.25
 * tailRateShare(0.25, 2); // 0.5: two batches left, each takes half
 * tailRateShare(0.25, 1); // 1: the last batch takes the whole rate
 */
export function tailRateShare(baseShare: number, unfinished: number): number {
  const base = Number.isFinite(baseShare) ? Math.min(1, Math.max(0, baseShare)) : 1;
  if (!(unfinished >= 1)) return base;
  return Math.min(1, Math.max(base, 1 / Math.floor(unfinished)));
}

/**
 * How many of a run's batches of one target are not final, from the run's checkpoints;
 * undefined when the read holds fewer than the run's `expected` batches (an incomplete
 * read would undercount, so it is not used).
 *
 * @example
 * unfinishedBatchesOf(target, 28, await history.runBatches(runId)); // 3
 */
export function unfinishedBatchesOf(
  target: Target,
  expected: number,
  checkpoints: readonly BatchCheckpoint[],
): number | undefined {
  if (checkpoints.length < expected) return undefined;
  const prefix = `${targetLabel(target)}/`;
  return checkpoints.filter(
    (c) => c.batchId.startsWith(prefix) && !FINAL_BATCH_STATUSES.includes(c.status),
  ).length;
}

/**
 * Each batch costs one describe of its instances: below this many instances a batch,
 * spreading a target over more workers would cost more than 1% extra calls.
 */
export const MIN_SPREAD_BATCH = 100;

/**
 * How many batches one target's due instances make: none above `maxBatch` instances,
 * and, as far as batches of at least {@link MIN_SPREAD_BATCH} allow, a whole number of
 * rounds of the workers running at once, so that every worker stays busy to the end
 * (each has only its share of the target's rate, so a worker left idle is rate unused).
 * `planInstanceBatches` may then stagger the first round, within `maxBatch`
 * ({@link staggeredBatchSizes}); the count is the same.
 *
 * @example
 * batchCountFor(2000, 200, 4); // 12: three rounds of four (the first staggered: 166, 145, 125, 104, then 182–183)
 * batchCountFor(300, 200, 4); // 3: batches of 100, one worker idle (a small target)
 */
export function batchCountFor(due: number, maxBatch: number, workers: number): number {
  if (due <= 0) return 0;
  const perRound = Math.max(1, Math.floor(workers) || 1);
  const byLimit = Math.ceil(due / Math.max(1, Math.floor(maxBatch) || 1));
  const rounds = Math.ceil(byLimit / perRound) * perRound;
  const affordable = Math.max(1, Math.floor(due / MIN_SPREAD_BATCH));
  return Math.max(byLimit, Math.min(rounds, affordable));
}

/** The outcome of a whole fan-out run, from its batches. */
export interface FanOutProgress {
  /** `running` while any batch is not final. */
  readonly status: 'running' | 'succeeded' | 'partial' | 'failed';
  readonly batches: number;
  readonly finished: number;
  readonly counts: Readonly<Record<string, number>>;
  readonly errorSummary?: string | undefined;
}

/**
 * A fan-out run's status from its batches' checkpoints: `running` until every expected
 * batch is final; then `succeeded` when every batch succeeded, `failed` when every batch
 * failed, otherwise `partial`. Counts are summed over the batches.
 *
 * @example
 * fanOutProgress(3, checkpoints).status; // 'running' until all 3 are final
 */
export function fanOutProgress(
  expected: number,
  checkpoints: readonly BatchCheckpoint[],
): FanOutProgress {
  const counts: Record<string, number> = {};
  for (const checkpoint of checkpoints) {
    for (const [name, value] of Object.entries(checkpoint.counts ?? {})) {
      counts[name] = (counts[name] ?? 0) + value;
    }
  }
  const final = checkpoints.filter((c) => FINAL_BATCH_STATUSES.includes(c.status));
  const failed = final.filter((c) => c.status === 'failed');
  const problems = final.filter((c) => c.status !== 'succeeded' && c.errorSummary);
  const errorSummary =
    problems.length > 0
      ? `${problems.length} batch(es) with problems; ${problems
          .slice(0, 2)
          .map((c) => `${c.batchId}: ${c.errorSummary}`)
          .join('; ')
          .slice(0, 800)}`
      : undefined;
  const base = {
    batches: expected,
    finished: final.length,
    counts: { ...counts, batches: expected, batchesFailed: failed.length },
    ...(errorSummary ? { errorSummary } : {}),
  };
  if (final.length < expected) return { status: 'running', ...base };
  const status =
    failed.length === expected && expected > 0
      ? 'failed'
      : final.every((c) => c.status === 'succeeded')
        ? 'succeeded'
        : 'partial';
  return { status, ...base };
}

const idList = z.array(z.string().check(z.regex(/^i-[0-9a-f]{8,17}$/, 'must be an instance id')));

const batchMessageSchema = z.object({
  runId: z.string().check(z.minLength(1)),
  job: z.enum(['backup', 'retention']),
  schedule: z.string().check(z.minLength(1)),
  slot: z.string().check(z.minLength(1)),
  dryRun: z.boolean(),
  batches: z.number().check(z.int(), z.minimum(1)),
  batchId: z.string().check(z.minLength(1)),
  target: z.object({
    account: z.string().check(z.regex(TARGET_ACCOUNT, 'must be a 12-digit account id or "self"')),
    region: z.string().check(z.regex(REGION_NAME, 'must be a region name like eu-west-1')),
  }),
  instanceIds: z.optional(idList),
  volumeTags: z.optional(z.record(z.string(), z.record(z.string(), z.string()))),
  reconcile: z.optional(z.boolean()),
  rateShare: z.optional(z.number().check(z.gt(0), z.lte(1))),
});

/**
 * Validates a worker's message.
 *
 * @throws {InvalidEventError} naming the field that is wrong.
 * @example
 * parseBatchMessage(JSON.parse(record.body));
 */
export function parseBatchMessage(body: unknown): BatchMessage {
  const result = z.safeParse(batchMessageSchema, body);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue?.path.join('.') || '(message)';
    throw new InvalidEventError(`fan-out batch message: ${path} ${issue?.message ?? 'is invalid'}`);
  }
  if (result.data.job === 'backup' && !result.data.instanceIds) {
    throw new InvalidEventError(
      'fan-out batch message: instanceIds is required for a backup batch',
    );
  }
  return result.data as BatchMessage;
}
