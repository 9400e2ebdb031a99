/**
 * Measure and record: each managed snapshot's full size and unique bytes, measured once
 * it is `completed` (with the EBS direct APIs) and kept in the run history; and the
 * costs read from those records (per instance, schedule and deployment; what planned and
 * blocked deletions would free).
 *
 * Which job measures: retention (a scheduled, non-dry run), which already lists every
 * managed snapshot of its schedule volume by volume. At most `limit` snapshots a run
 * (SNAPSHOT_MEASURE_LIMIT, 200 by default), oldest first, and none when less than the
 * safety margin is left; the rest are measured by the next runs. The EBS direct client's
 * token bucket keeps the calls within about 50 a second per account.
 */
import {
  buildCostLedger,
  type ChainLink,
  type CostLedger,
  type CostTotals,
  EMPTY_TOTALS,
  estimateFreed,
  FREED_NOTE,
  freedMonthlyCost,
  type LedgerSnapshot,
  type PriceTable,
  roundMoney,
  type SnapshotSize,
} from '../domain/costLedger.ts';
import type { SnapshotFacts } from '../domain/snapshotFacts.ts';
import type { TagKeys } from '../domain/tagKeys.ts';
import type { EbsDirectPort, LoggerPort, SnapshotSizesPort } from './ports.ts';

/** Snapshots measured in one run unless SNAPSHOT_MEASURE_LIMIT says otherwise. */
export const DEFAULT_MEASURE_LIMIT = 200;

/** What a measuring pass did. */
export interface MeasureResult {
  /** Measured now and recorded (or only measured, on a dry run). */
  readonly measured: readonly SnapshotSize[];
  /** Every size known after the pass: recorded earlier or measured now. */
  readonly sizes: ReadonlyMap<string, SnapshotSize>;
  /** Completed snapshots left unmeasured, for the next runs. */
  readonly deferred: number;
  /** Not measured, with the reason (pending, unreadable, throttled, history unreadable). */
  readonly skipped: readonly { readonly snapshotId: string; readonly reason: string }[];
  readonly warnings: readonly string[];
}

/** What a measuring pass reads and writes through. */
export interface MeasureDependencies {
  readonly ebs: EbsDirectPort;
  readonly sizes: SnapshotSizesPort;
  readonly clock: () => Date;
  readonly runId: string;
  readonly logger: LoggerPort;
}

/** One volume's completed snapshots, oldest first, with the pending ones apart. */
export function chainsByVolume(snapshots: readonly SnapshotFacts[]): Map<string, SnapshotFacts[]> {
  const chains = new Map<string, SnapshotFacts[]>();
  for (const s of snapshots) {
    if (s.state !== 'completed') continue;
    const chain = chains.get(s.volumeId) ?? [];
    chain.push(s);
    chains.set(s.volumeId, chain);
  }
  for (const chain of chains.values()) {
    chain.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  }
  return chains;
}

/**
 * Measures the completed snapshots whose sizes the history does not hold yet, oldest
 * first, at most `limit`: unique bytes from `ListChangedBlocks` against the previous
 * completed snapshot of the same volume (`ListSnapshotBlocks` for the first, or when the
 * two are unrelated), full size from `FullSnapshotSizeInBytes` when DescribeSnapshots
 * gave it, else from `ListSnapshotBlocks`. Pending snapshots are never measured.
 * Throttled after the SDK's retries: the pass stops and the rest waits for the next run.
 * Nothing is lost on error: a snapshot that cannot be measured is skipped and reported.
 *
 * @example
 * const result = await measureSnapshotSizes(snapshots, { limit: 200, record: true }, deps);
 */
export async function measureSnapshotSizes(
  snapshots: readonly SnapshotFacts[],
  options: { readonly limit: number; readonly record: boolean; readonly stopAt?: () => boolean },
  deps: MeasureDependencies,
): Promise<MeasureResult> {
  const chains = chainsByVolume(snapshots);
  const skipped = snapshots
    .filter((s) => s.state !== 'completed')
    .map((s) => ({ snapshotId: s.snapshotId, reason: `${s.state}: measured once completed` }));
  const warnings: string[] = [];
  const sizes = await readSizes(
    [...chains.values()].flat().map((s) => s.snapshotId),
    deps,
    warnings,
  );
  if (!sizes) return { measured: [], sizes: new Map(), deferred: 0, skipped, warnings };
  const todo = [...chains.values()]
    .flatMap((chain) => chain.map((s, i) => ({ snapshot: s, previous: chain[i - 1] })))
    .filter(({ snapshot, previous }) => isStale(sizes.get(snapshot.snapshotId), previous))
    .sort((a, b) => a.snapshot.startTime.getTime() - b.snapshot.startTime.getTime());
  const measured: SnapshotSize[] = [];
  let index = 0;
  for (; index < todo.length && measured.length < options.limit; index += 1) {
    if (options.stopAt?.()) break;
    const { snapshot, previous } = todo[index] ?? {};
    if (!snapshot) break;
    const outcome = await measureOne(snapshot, previous, deps);
    if (outcome.kind === 'measured') {
      measured.push(outcome.size);
      sizes.set(snapshot.snapshotId, outcome.size);
    } else {
      skipped.push({ snapshotId: snapshot.snapshotId, reason: outcome.reason });
      if (outcome.kind === 'stop') {
        warnings.push(`${outcome.reason}; the rest is measured by the next runs`);
        index += 1;
        break;
      }
    }
  }
  await recordMeasured(measured, options.record, deps, warnings);
  return { measured, sizes, deferred: todo.length - index, skipped, warnings };
}

/**
 * Whether a snapshot needs measuring: never measured, or measured against a predecessor
 * that is gone (deleting a snapshot moves the blocks its successor still needs onto the
 * successor, so the successor's unique bytes grew).
 */
function isStale(known: SnapshotSize | undefined, previous: SnapshotFacts | undefined): boolean {
  if (!known) return true;
  return (
    known.previousSnapshotId !== undefined && known.previousSnapshotId !== previous?.snapshotId
  );
}

async function readSizes(
  ids: readonly string[],
  deps: MeasureDependencies,
  warnings: string[],
): Promise<Map<string, SnapshotSize> | undefined> {
  try {
    return new Map(await deps.sizes.recordedSizes(ids));
  } catch (error) {
    const message = `snapshot sizes could not be read from the run history (${errorText(error)}): nothing measured, costs left out`;
    warnings.push(message);
    deps.logger.warn(message);
    return undefined;
  }
}

async function recordMeasured(
  measured: readonly SnapshotSize[],
  record: boolean,
  deps: MeasureDependencies,
  warnings: string[],
): Promise<void> {
  if (!record || measured.length === 0) return;
  try {
    await deps.sizes.recordSizes(measured, deps.runId);
  } catch (error) {
    const message = `${measured.length} snapshot size(s) measured but not recorded (${errorText(error)}): measured again next run`;
    warnings.push(message);
    deps.logger.warn(message);
  }
}

type MeasureOutcome =
  | { readonly kind: 'measured'; readonly size: SnapshotSize }
  | { readonly kind: 'skipped' | 'stop'; readonly reason: string };

async function measureOne(
  snapshot: SnapshotFacts,
  previous: SnapshotFacts | undefined,
  deps: MeasureDependencies,
): Promise<MeasureOutcome> {
  try {
    let full: number | undefined = snapshot.fullSizeBytes;
    let unique: number;
    let comparedWith: string | undefined;
    try {
      unique = previous
        ? (await deps.ebs.changedBytes(previous.snapshotId, snapshot.snapshotId)).bytes
        : Number.NaN;
      comparedWith = previous?.snapshotId;
    } catch (error) {
      // Unrelated to its predecessor (restored from elsewhere): counted as a first snapshot.
      if (!/UNRELATED_SNAPSHOTS/.test(codeOf(error))) throw error;
      unique = Number.NaN;
    }
    if (Number.isNaN(unique) || full === undefined) {
      const all = (await deps.ebs.snapshotBytes(snapshot.snapshotId)).bytes;
      full ??= all;
      if (Number.isNaN(unique)) unique = all;
    }
    return {
      kind: 'measured',
      size: {
        snapshotId: snapshot.snapshotId,
        volumeId: snapshot.volumeId,
        fullBytes: full,
        uniqueBytes: unique,
        ...(comparedWith ? { previousSnapshotId: comparedWith } : {}),
        fullFrom: snapshot.fullSizeBytes !== undefined ? 'describe' : 'blocks',
        measuredAt: deps.clock().toISOString(),
      },
    };
  } catch (error) {
    // Throttled, or a server error, after the SDK's retries: the next calls would fare no
    // better, so the pass stops (one failing call a run, not one per snapshot).
    const failure = error as { name?: string; httpStatus?: number };
    const stop = failure.name === 'EbsThrottledError' || (failure.httpStatus ?? 0) >= 500;
    const reason = `${snapshot.snapshotId} not measured: ${errorText(error)}`;
    deps.logger.warn(reason);
    return { kind: stop ? 'stop' : 'skipped', reason };
  }
}

function codeOf(error: unknown): string {
  return String((error as { code?: unknown } | undefined)?.code ?? '');
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The ledger's view of snapshots: instance and schedule from their tags, archived or
 * not, and their recorded size.
 *
 * @example
 * const ledger = buildCostLedger(toLedgerSnapshots(snapshots, sizes, keys), table, now);
 */
export function toLedgerSnapshots(
  snapshots: readonly SnapshotFacts[],
  sizes: ReadonlyMap<string, SnapshotSize>,
  keys: Pick<TagKeys, 'instanceId' | 'schedule'>,
): LedgerSnapshot[] {
  return snapshots.map((s) => ({
    snapshotId: s.snapshotId,
    volumeId: s.volumeId,
    instanceId: s.tags[keys.instanceId],
    schedule: s.tags[keys.schedule],
    startTime: s.startTime,
    archived: s.storageTier === 'archive',
    size: sizes.get(s.snapshotId),
  }));
}

/**
 * The cost ledger of snapshots from their recorded sizes.
 *
 * @example
 * const ledger = costLedgerOf(snapshots, sizes, keys, table, now);
 */
export function costLedgerOf(
  snapshots: readonly SnapshotFacts[],
  sizes: ReadonlyMap<string, SnapshotSize>,
  keys: Pick<TagKeys, 'instanceId' | 'schedule'>,
  table: PriceTable,
  now: Date,
): CostLedger {
  return buildCostLedger(toLedgerSnapshots(snapshots, sizes, keys), table, now);
}

/** What a retention plan does to the cost, and what each deletion would free. */
export interface RetentionCostEffect {
  readonly currency: string;
  readonly priceTable: string;
  /** Monthly cost of the schedule's measured snapshots now. */
  readonly monthlyCostNow: number;
  /** After the planned deletions (freed bytes at the standard rate subtracted). */
  readonly monthlyCostAfter: number;
  readonly freedBytes: number;
  /** Snapshot id → estimated bytes freed if deleted (planned and blocked ones). */
  readonly freedBySnapshot: Readonly<Record<string, number>>;
  /** Planned or blocked snapshots whose estimate needs a size not measured yet. */
  readonly unmeasured: number;
  readonly note: string;
}

/**
 * The cost effect of a retention plan: the schedule's monthly cost now and after the
 * planned deletions, and "freed if deleted" for each planned deletion (deleted together,
 * volume by volume) and each blocked one (alone). See {@link estimateFreed}.
 *
 * @example
 * retentionCostEffect(snapshots, sizes, planned, blocked, table, now);
 */
export function retentionCostEffect(
  snapshots: readonly SnapshotFacts[],
  sizes: ReadonlyMap<string, SnapshotSize>,
  planned: ReadonlySet<string>,
  blocked: ReadonlySet<string>,
  table: PriceTable,
  now: Date,
): RetentionCostEffect {
  const ledger = buildCostLedger(
    toLedgerSnapshots(snapshots, sizes, { instanceId: '', schedule: '' }),
    table,
    now,
  ).deployment;
  const freedBySnapshot: Record<string, number> = {};
  let unmeasured = 0;
  for (const chain of chainsByVolume(snapshots).values()) {
    const links: ChainLink[] = chain.map((s) => ({
      snapshotId: s.snapshotId,
      uniqueBytes: sizes.get(s.snapshotId)?.uniqueBytes,
    }));
    const estimates = [
      ...estimateFreed(links, planned),
      ...chain
        .filter((s) => blocked.has(s.snapshotId))
        .flatMap((s) => estimateFreed(links, new Set([s.snapshotId]))),
    ];
    for (const e of estimates) {
      if (e.freedBytes === undefined) unmeasured += 1;
      else freedBySnapshot[e.snapshotId] = e.freedBytes;
    }
  }
  const freedBytes = [...planned].reduce((n, id) => n + (freedBySnapshot[id] ?? 0), 0);
  const costNow = ledger.estimatedMonthlyCost;
  return {
    currency: table.currency,
    priceTable: table.name,
    monthlyCostNow: roundMoney(costNow),
    monthlyCostAfter: roundMoney(Math.max(0, costNow - freedMonthlyCost(freedBytes, table))),
    freedBytes: Math.round(freedBytes),
    freedBySnapshot,
    unmeasured,
    note: FREED_NOTE,
  };
}

/** The cost fields every instance of the console `report` answer carries (the contract). */
export interface InstanceCostFields {
  /** Sum of the full sizes of its measured snapshots. */
  readonly fullBytes: number;
  /** Sum of their unique bytes (what the standard tier stores for them). */
  readonly uniqueBytes: number;
  /** In `costs.currency`, priced with `costs.priceTable`. */
  readonly estimatedMonthlyCost: number;
  /** Its snapshots not measured yet: their bytes and cost are not in the figures. */
  readonly unmeasuredSnapshots: number;
}

/** The `costs` of the console `report` answer: the ledger's totals and the price table. */
export interface ReportCosts extends Omit<CostLedger, 'byInstance'> {
  readonly priceTableProblem?: string | undefined;
  /** What could not be read: the figures then leave those snapshots out. */
  readonly warnings?: readonly string[] | undefined;
}

function instanceFields(totals: CostTotals): InstanceCostFields {
  return {
    fullBytes: totals.fullBytes,
    uniqueBytes: totals.uniqueBytes,
    estimatedMonthlyCost: roundMoney(totals.estimatedMonthlyCost),
    unmeasuredSnapshots: totals.unmeasured,
  };
}

/**
 * The console report's costs: each instance gains {@link InstanceCostFields} (zero and
 * every snapshot unmeasured when none of its sizes is known), and the answer a `costs`
 * naming the currency and the price table. Sizes that cannot be read leave every
 * snapshot unmeasured and say so in `costs.warnings`; the report itself is never lost.
 *
 * @example
 * const { instances, costs } = await reportCosts(report.instances, snapshots, history.sizes, config, now, logger);
 */
export async function reportCosts<I extends { readonly instanceId: string }>(
  instances: readonly I[],
  snapshots: readonly SnapshotFacts[],
  sizes: Pick<SnapshotSizesPort, 'recordedSizes'> | undefined,
  config: {
    readonly keys: Pick<TagKeys, 'instanceId' | 'schedule'>;
    readonly priceTable: PriceTable;
    readonly priceTableProblem?: string | undefined;
  },
  now: Date,
  logger: LoggerPort,
): Promise<{ instances: (I & InstanceCostFields)[]; costs: ReportCosts }> {
  const warnings: string[] = [];
  let known: ReadonlyMap<string, SnapshotSize> = new Map();
  if (!sizes) warnings.push('no run history: snapshot sizes are unknown');
  else {
    try {
      known = await sizes.recordedSizes(snapshots.map((s) => s.snapshotId));
    } catch (error) {
      const message = `snapshot sizes could not be read from the run history (${errorText(error)}): every snapshot counts as unmeasured`;
      warnings.push(message);
      logger.warn(message);
    }
  }
  const { byInstance, ...ledger } = costLedgerOf(
    snapshots,
    known,
    config.keys,
    config.priceTable,
    now,
  );
  return {
    instances: instances.map((i) => ({
      ...i,
      ...instanceFields(byInstance[i.instanceId] ?? EMPTY_TOTALS),
    })),
    costs: {
      ...ledger,
      deployment: {
        ...ledger.deployment,
        estimatedMonthlyCost: roundMoney(ledger.deployment.estimatedMonthlyCost),
      },
      ...(config.priceTableProblem ? { priceTableProblem: config.priceTableProblem } : {}),
      ...(warnings.length > 0 ? { warnings } : {}),
    },
  };
}

/** The `costs` of a retention report (and of its run-finished event, without `freedBySnapshot`). */
export interface RetentionCosts extends RetentionCostEffect {
  /** Snapshots measured by this run. */
  readonly measured: number;
  /** Completed snapshots left unmeasured for the next runs. */
  readonly deferred: number;
  readonly priceTableProblem?: string | undefined;
  /** Snapshots not measured (pending, unreadable, throttled), with the reason. */
  readonly skipped?: readonly { readonly snapshotId: string; readonly reason: string }[];
  readonly warnings?: readonly string[] | undefined;
}

/** What retention's cost step reads and measures through; without `sizes` it is skipped. */
export interface RetentionCostDependencies {
  /** The EBS direct APIs; absent (or a dry run): nothing is measured, recorded sizes are used. */
  readonly ebs?: EbsDirectPort | undefined;
  readonly sizes?: SnapshotSizesPort | undefined;
  readonly config: {
    readonly priceTable: PriceTable;
    readonly priceTableProblem?: string | undefined;
    readonly snapshotMeasureLimit: number;
  };
  readonly clock: () => Date;
  readonly runId: string;
  readonly logger: LoggerPort;
}

/**
 * Retention's cost step, after planning: measure (a scheduled run, not a dry one, with
 * the EBS direct APIs at hand, within `SNAPSHOT_MEASURE_LIMIT` and the time left), then
 * the cost effect of the plan. Undefined without a run history to read sizes from.
 * Never throws: what fails is reported in `warnings` and the run goes on.
 *
 * @example
 * const costs = await retentionCosts(snapshots, planned, blocked, { dryRun, stopAt }, deps);
 */
export async function retentionCosts(
  snapshots: readonly SnapshotFacts[],
  planned: ReadonlySet<string>,
  blocked: ReadonlySet<string>,
  options: { readonly dryRun: boolean; readonly stopAt?: () => boolean },
  deps: RetentionCostDependencies,
): Promise<RetentionCosts | undefined> {
  const { sizes, config } = deps;
  if (!sizes) return undefined;
  const measuring = !options.dryRun && deps.ebs !== undefined && config.snapshotMeasureLimit > 0;
  const ebs: EbsDirectPort = deps.ebs ?? {
    snapshotBytes: () => Promise.reject(new Error('no EBS direct client')),
    changedBytes: () => Promise.reject(new Error('no EBS direct client')),
  };
  const result = await measureSnapshotSizes(
    snapshots,
    {
      limit: measuring ? config.snapshotMeasureLimit : 0,
      record: measuring,
      ...(options.stopAt ? { stopAt: options.stopAt } : {}),
    },
    { ...deps, ebs, sizes },
  );
  const effect = retentionCostEffect(
    snapshots,
    result.sizes,
    planned,
    blocked,
    config.priceTable,
    deps.clock(),
  );
  const skipped = result.skipped.filter((s) => !s.reason.startsWith('pending:'));
  return {
    ...effect,
    measured: result.measured.length,
    deferred: result.deferred,
    ...(config.priceTableProblem ? { priceTableProblem: config.priceTableProblem } : {}),
    ...(skipped.length > 0 ? { skipped: skipped.slice(0, 50) } : {}),
    ...(result.warnings.length > 0 ? { warnings: result.warnings } : {}),
  };
}

/**
 * The line the console `plan` shows for a retention's costs.
 *
 * @example
 * costLine(costs); // 'cost: 1.2000 USD a month now, 1.1500 after this plan (1.0 GiB freed, an estimate; prices aws-published:us-east-1)'
 */
export function costLine(costs: RetentionCosts): string {
  const gib = (costs.freedBytes / 2 ** 30).toFixed(1);
  const unmeasured = costs.unmeasured > 0 ? `; ${costs.unmeasured} not measured yet` : '';
  return `cost: ${costs.monthlyCostNow.toFixed(4)} ${costs.currency} a month now, ${costs.monthlyCostAfter.toFixed(4)} after this plan (${gib} GiB freed, an estimate${unmeasured}; prices ${costs.priceTable})`;
}

/**
 * The costs as the run-finished event carries them: without the per-snapshot lists.
 *
 * @example
 * eventCosts(report.costs);
 */
export function eventCosts(
  costs: RetentionCosts | undefined,
): Omit<RetentionCosts, 'freedBySnapshot' | 'skipped'> | undefined {
  if (!costs) return undefined;
  const { freedBySnapshot: _freed, skipped: _skipped, ...rest } = costs;
  return rest;
}

/**
 * The plan's note after a deletion or a blocked one: what deleting it would free.
 *
 * @example
 * freedNote(costs, 'snap-1'); // ' (frees at most 12.0 MiB if deleted, an estimate)'
 */
export function freedNote(costs: RetentionCosts | undefined, snapshotId: string): string {
  const bytes = costs?.freedBySnapshot[snapshotId];
  if (bytes === undefined) return '';
  return ` (frees at most ${(bytes / 2 ** 20).toFixed(1)} MiB if deleted, an estimate)`;
}
