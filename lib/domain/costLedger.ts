/**
 * The cost ledger: what the managed snapshots store and what that costs a month, from
 * the sizes measured once per snapshot (full size and unique bytes), a price table, and
 * an estimate of what deleting a snapshot would free. Pure: no SDK, no clock, no I/O.
 *
 * How EBS bills (EBS user guide, "Pricing and billing for archiving Amazon EBS
 * snapshots", and the knowledge-center article "How am I billed for my Amazon EBS
 * snapshots?", read 2026-12-06): a standard-tier snapshot is billed for the blocks it
 * stores that its predecessor of the same volume does not (its unique bytes, the whole
 * written data for the first one); an archived snapshot is billed for all its blocks
 * (its full size) at the archive rate. Prices are per GB-month, where EBS counts
 * 2^30 bytes a GB.
 */
import { ConfigurationError } from './errors.ts';

/** Bytes in the GB of EBS's prices (EBS counts sizes in GiB). */
export const GIB = 2 ** 30;

/** Average days in a month, as AWS prorates GB-months (730 hours). */
export const DAYS_PER_MONTH = 730 / 24;

/** The environment variable (and stage option `snapshotPrices`) holding a price table. */
export const PRICE_TABLE_VARIABLE = 'SNAPSHOT_PRICES';

/** Prices of snapshot storage, per GB-month, with their currency, name and source. */
export interface PriceTable {
  /** Shown in every answer that carries a cost, e.g. `aws-published:us-east-1`. */
  readonly name: string;
  readonly currency: string;
  readonly standardPerGbMonth: number;
  readonly archivePerGbMonth: number;
  /** Where the prices come from. */
  readonly source: string;
}

/** The source of the published defaults below. */
export const PUBLISHED_SOURCE =
  'AWS EBS user guide, "Pricing and billing for archiving Amazon EBS snapshots" and aws.amazon.com/ebs/pricing, read 2026-12-06';

/**
 * Published per-region snapshot prices in USD per GB-month (standard, archive). Only the
 * regions whose prices were read from the source are listed; every other region falls
 * back to us-east-1's, and the table's name says so.
 */
export const PUBLISHED_PRICES: Readonly<
  Record<string, { readonly standard: number; readonly archive: number }>
> = {
  'us-east-1': { standard: 0.05, archive: 0.0125 },
  'us-east-2': { standard: 0.05, archive: 0.0125 },
  'us-west-2': { standard: 0.05, archive: 0.0125 },
};

/**
 * The published prices of a region, or us-east-1's named as a fallback.
 *
 * @example
 * defaultPriceTable('us-east-1').name; // 'aws-published:us-east-1'
 * defaultPriceTable('eu-west-3').name; // 'aws-published:us-east-1 (no published default for eu-west-3; set SNAPSHOT_PRICES)'
 */
export function defaultPriceTable(region: string): PriceTable {
  const own = PUBLISHED_PRICES[region];
  const prices = own ?? { standard: 0.05, archive: 0.0125 };
  return {
    name: own
      ? `aws-published:${region}`
      : `aws-published:us-east-1 (no published default for ${region}; set ${PRICE_TABLE_VARIABLE})`,
    currency: 'USD',
    standardPerGbMonth: prices.standard,
    archivePerGbMonth: prices.archive,
    source: PUBLISHED_SOURCE,
  };
}

/**
 * Reads the price table of `SNAPSHOT_PRICES`: JSON with `standardPerGbMonth` and
 * `archivePerGbMonth` (non-negative numbers below 10), and optionally `currency` (three
 * capital letters, USD by default) and `name`. Unset or blank: the region's published
 * defaults.
 *
 * @throws {ConfigurationError} naming `SNAPSHOT_PRICES`, the field and the fix.
 * @example
 * parsePriceTable('{"standardPerGbMonth":0.055,"archivePerGbMonth":0.01375,"currency":"USD"}', 'eu-central-1');
 */
export function parsePriceTable(raw: string | undefined, region: string): PriceTable {
  if (raw === undefined || raw.trim() === '') return defaultPriceTable(region);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw priceError(
      'is not valid JSON; write {"standardPerGbMonth":0.05,"archivePerGbMonth":0.0125,"currency":"USD"}',
      error,
    );
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw priceError('must be a JSON object with standardPerGbMonth and archivePerGbMonth');
  }
  const fields = parsed as Record<string, unknown>;
  const known = new Set(['standardPerGbMonth', 'archivePerGbMonth', 'currency', 'name']);
  const unknown = Object.keys(fields).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw priceError(
      `has unknown field ${JSON.stringify(unknown[0])}; the fields are ${[...known].join(', ')}`,
    );
  }
  const currency = fields.currency ?? 'USD';
  if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) {
    throw priceError(
      `field "currency" must be an ISO 4217 code like USD; got ${JSON.stringify(currency)}`,
    );
  }
  const name = fields.name ?? `custom:${region}`;
  if (typeof name !== 'string' || name.trim() === '' || name.length > 64) {
    throw priceError('field "name" must be a non-empty string of at most 64 characters');
  }
  return {
    name,
    currency,
    standardPerGbMonth: price(fields, 'standardPerGbMonth'),
    archivePerGbMonth: price(fields, 'archivePerGbMonth'),
    source: `${PRICE_TABLE_VARIABLE} (stage option snapshotPrices)`,
  };
}

/**
 * The price table to use, never failing: a bad `SNAPSHOT_PRICES` must not stop backups,
 * so it falls back to the region's published prices, and the problem (naming the
 * variable, the field and the fix) is carried into every answer that shows a cost, and
 * into the table's name.
 *
 * @example
 * const { table, problem } = readPriceTable('{"standardPerGbMonth":"x"}', 'us-east-1');
 * // table: us-east-1's published prices; problem: 'Environment variable SNAPSHOT_PRICES field "standardPerGbMonth" ...'
 */
export function readPriceTable(
  raw: string | undefined,
  region: string,
): { readonly table: PriceTable; readonly problem?: string } {
  try {
    return { table: parsePriceTable(raw, region) };
  } catch (error) {
    const problem = `${(error as Error).message}; the published defaults are used until it is fixed`;
    const fallback = defaultPriceTable(region);
    return {
      table: { ...fallback, name: `${fallback.name} (${PRICE_TABLE_VARIABLE} rejected)` },
      problem,
    };
  }
}

function price(fields: Record<string, unknown>, field: string): number {
  const value = fields[field];
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= 10) {
    throw priceError(
      `field "${field}" must be a price per GB-month, a number from 0 to under 10 (e.g. 0.05); got ${JSON.stringify(value ?? null)}`,
    );
  }
  return value;
}

function priceError(message: string, cause?: unknown): ConfigurationError {
  return new ConfigurationError(
    PRICE_TABLE_VARIABLE,
    message,
    cause === undefined ? undefined : { cause },
  );
}

/** How a snapshot's sizes were measured, kept in the history once per snapshot. */
export interface SnapshotSize {
  readonly snapshotId: string;
  readonly volumeId: string;
  /** All the data the snapshot holds (what an archived copy is billed for). */
  readonly fullBytes: number;
  /** Bytes in blocks changed since `previousSnapshotId` (all blocks for the first one). */
  readonly uniqueBytes: number;
  /** The completed snapshot of the same volume it was compared with; absent for the first. */
  readonly previousSnapshotId?: string | undefined;
  /** `describe`: `FullSnapshotSizeInBytes`; `blocks`: ListSnapshotBlocks' blocks × block size. */
  readonly fullFrom: 'describe' | 'blocks';
  readonly measuredAt: string;
}

/** One snapshot as the ledger prices it. */
export interface LedgerSnapshot {
  readonly snapshotId: string;
  readonly volumeId: string;
  readonly instanceId?: string | undefined;
  readonly schedule?: string | undefined;
  readonly startTime: Date;
  /** EC2's `StorageTier`: archived snapshots are billed for their full size. */
  readonly archived?: boolean | undefined;
  /** Absent until measured (pending, or beyond this run's measuring bound). */
  readonly size?: SnapshotSize | undefined;
}

/**
 * The bytes a snapshot is billed for: unique bytes in the standard tier, full bytes
 * archived; undefined when not measured.
 *
 * @example
 * billedBytes({ snapshotId: 's', volumeId: 'v', startTime, size }); // size.uniqueBytes
 */
export function billedBytes(snapshot: LedgerSnapshot): number | undefined {
  if (!snapshot.size) return undefined;
  return snapshot.archived ? snapshot.size.fullBytes : snapshot.size.uniqueBytes;
}

/**
 * What one snapshot costs a month at the table's prices; undefined when not measured.
 *
 * @example
 * monthlyCost(snapshot, defaultPriceTable('us-east-1')); // 0.05 for 1 GiB unique
 */
export function monthlyCost(snapshot: LedgerSnapshot, table: PriceTable): number | undefined {
  const bytes = billedBytes(snapshot);
  if (bytes === undefined) return undefined;
  const rate = snapshot.archived ? table.archivePerGbMonth : table.standardPerGbMonth;
  return (bytes / GIB) * rate;
}

/**
 * GiB-months of `bytes` kept from `from` to `to` (0 when `to` is not after `from`).
 *
 * @example
 * gibMonths(GIB, new Date('2026-01-01'), new Date('2026-01-31T10:30:00Z')); // 1
 */
export function gibMonths(bytes: number, from: Date, to: Date): number {
  const days = Math.max(0, to.getTime() - from.getTime()) / 86_400_000;
  return (bytes / GIB) * (days / DAYS_PER_MONTH);
}

/** Stored bytes and cost of a group of snapshots (an instance, a schedule, the deployment). */
export interface CostTotals {
  readonly snapshots: number;
  /** Snapshots not measured yet: their bytes and cost are missing from the sums. */
  readonly unmeasured: number;
  /** Sum of full sizes (what the snapshots would hold each alone). */
  readonly fullBytes: number;
  /** Sum of unique bytes (what the standard tier stores for them). */
  readonly uniqueBytes: number;
  /** GiB-months accrued so far by the billed bytes. */
  readonly gibMonths: number;
  readonly estimatedMonthlyCost: number;
}

/** The ledger of a deployment: totals per instance, per schedule and overall. */
export interface CostLedger {
  readonly currency: string;
  readonly priceTable: string;
  readonly priceSource: string;
  readonly byInstance: Readonly<Record<string, CostTotals>>;
  readonly bySchedule: Readonly<Record<string, CostTotals>>;
  readonly deployment: CostTotals;
  readonly note: string;
}

/** Totals of no snapshot. */
export const EMPTY_TOTALS: CostTotals = {
  snapshots: 0,
  unmeasured: 0,
  fullBytes: 0,
  uniqueBytes: 0,
  gibMonths: 0,
  estimatedMonthlyCost: 0,
};

/**
 * Adds one snapshot to totals.
 *
 * @example
 * addToTotals(EMPTY_TOTALS, snapshot, table, now).snapshots; // 1
 */
export function addToTotals(
  totals: CostTotals,
  snapshot: LedgerSnapshot,
  table: PriceTable,
  now: Date,
): CostTotals {
  const cost = monthlyCost(snapshot, table);
  const billed = billedBytes(snapshot);
  if (cost === undefined || billed === undefined || !snapshot.size) {
    return { ...totals, snapshots: totals.snapshots + 1, unmeasured: totals.unmeasured + 1 };
  }
  return {
    snapshots: totals.snapshots + 1,
    unmeasured: totals.unmeasured,
    fullBytes: totals.fullBytes + snapshot.size.fullBytes,
    uniqueBytes: totals.uniqueBytes + snapshot.size.uniqueBytes,
    gibMonths: totals.gibMonths + gibMonths(billed, snapshot.startTime, now),
    estimatedMonthlyCost: totals.estimatedMonthlyCost + cost,
  };
}

/** The note every ledger answer carries. */
export const LEDGER_NOTE =
  'Estimated from sizes measured once per snapshot with the EBS direct APIs: standard-tier snapshots are priced on their unique bytes (blocks changed since the previous snapshot of the volume), archived ones on their full size. Unmeasured snapshots (pending, or not yet reached) are counted but not priced. Taxes, the 90-day archive minimum and request charges are not included.';

/**
 * The cost ledger of a deployment's snapshots: per instance (snapshots without an
 * instance under `(unknown instance)`), per schedule and overall.
 *
 * @example
 * const ledger = buildCostLedger(snapshots, defaultPriceTable('us-east-1'), now);
 * ledger.byInstance['i-1']?.estimatedMonthlyCost;
 */
export function buildCostLedger(
  snapshots: readonly LedgerSnapshot[],
  table: PriceTable,
  now: Date,
): CostLedger {
  const byInstance: Record<string, CostTotals> = {};
  const bySchedule: Record<string, CostTotals> = {};
  let deployment = EMPTY_TOTALS;
  for (const snapshot of snapshots) {
    const instance = snapshot.instanceId ?? '(unknown instance)';
    byInstance[instance] = addToTotals(byInstance[instance] ?? EMPTY_TOTALS, snapshot, table, now);
    const schedule = snapshot.schedule ?? '(no schedule)';
    bySchedule[schedule] = addToTotals(bySchedule[schedule] ?? EMPTY_TOTALS, snapshot, table, now);
    deployment = addToTotals(deployment, snapshot, table, now);
  }
  return {
    currency: table.currency,
    priceTable: table.name,
    priceSource: table.source,
    byInstance,
    bySchedule,
    deployment,
    note: LEDGER_NOTE,
  };
}

/** A snapshot of one volume's chain, oldest first, as the freed estimate reads it. */
export interface ChainLink {
  readonly snapshotId: string;
  /** Changed bytes since the previous link (all data for the first); undefined: unmeasured. */
  readonly uniqueBytes?: number | undefined;
}

/** What deleting one snapshot would free, with how it was bounded. */
export interface FreedEstimate {
  readonly snapshotId: string;
  /** An upper bound of the bytes freed (undefined when a size it needs is unmeasured). */
  readonly freedBytes?: number | undefined;
}

/** How "freed if deleted" is estimated, carried with every such figure. */
export const FREED_NOTE =
  'Freed if deleted is an estimate (an upper bound): deleting a snapshot frees only the blocks it wrote that the next kept snapshot of the volume rewrote, so a run of deleted snapshots frees at most the smaller of the bytes they wrote and the bytes written by the snapshots after each of them up to the next kept one; deleting the newest frees its unique bytes.';

/**
 * "Freed if deleted" for the snapshots of one volume's chain (oldest first) that are
 * deleted together. Each maximal run of consecutive deleted links i..j frees only the
 * blocks written in the run that a later snapshot rewrote before the next kept one
 * (j+1): at most Σ unique(i..j) (what the run wrote) and at most Σ unique(i+1..j+1)
 * (each freed block version is rewritten exactly once, by a distinct later write); a
 * run that ends at the newest frees exactly Σ unique(i..j). The run's bound is shared
 * among its links in proportion to their unique bytes, so links sum to their run.
 *
 * @example
 * estimateFreed([{ snapshotId: 'a', uniqueBytes: 100 }, { snapshotId: 'b', uniqueBytes: 10 }], new Set(['a']));
 * // [{ snapshotId: 'a', freedBytes: 10 }]
 */
export function estimateFreed(
  chain: readonly ChainLink[],
  deleted: ReadonlySet<string>,
): FreedEstimate[] {
  const estimates: FreedEstimate[] = [];
  let i = 0;
  while (i < chain.length) {
    if (!deleted.has(chain[i]?.snapshotId ?? '')) {
      i += 1;
      continue;
    }
    let j = i;
    while (j + 1 < chain.length && deleted.has(chain[j + 1]?.snapshotId ?? '')) j += 1;
    estimates.push(...estimateRun(chain.slice(i, j + 1), chain.slice(i + 1, j + 2)));
    i = j + 1;
  }
  return estimates;
}

function estimateRun(run: readonly ChainLink[], shifted: readonly ChainLink[]): FreedEstimate[] {
  const sum = (links: readonly ChainLink[]) =>
    links.some((l) => l.uniqueBytes === undefined)
      ? undefined
      : links.reduce((n, l) => n + (l.uniqueBytes ?? 0), 0);
  const written = sum(run);
  // `shifted` reaches the next kept link unless the run ends at the newest.
  const rewritten = shifted.length === run.length ? sum(shifted) : written;
  if (written === undefined || rewritten === undefined) {
    return run.map((l) => ({ snapshotId: l.snapshotId }));
  }
  const bound = Math.min(written, rewritten);
  return run.map((l) => ({
    snapshotId: l.snapshotId,
    freedBytes: written === 0 ? 0 : (bound * (l.uniqueBytes ?? 0)) / written,
  }));
}

/**
 * The cost of freed bytes a month at the standard rate (deletions free standard-tier
 * storage; an archived snapshot frees its full size at the archive rate instead).
 *
 * @example
 * freedMonthlyCost(GIB, defaultPriceTable('us-east-1')); // 0.05
 */
export function freedMonthlyCost(bytes: number, table: PriceTable, archived = false): number {
  return (bytes / GIB) * (archived ? table.archivePerGbMonth : table.standardPerGbMonth);
}

/**
 * Rounds money for display (4 decimal places: sub-cent monthly costs stay visible).
 *
 * @example
 * roundMoney(0.123456); // 0.1235
 */
export function roundMoney(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}
