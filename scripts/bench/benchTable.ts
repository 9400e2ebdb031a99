/**
 * The one table `npm run bench` prints at the end of a run: every job, size, limit and
 * tool, with the goals of issue 19 checked for snapkeeper's rows
 * (scripts/bench/scaleBench.ts).
 */
import type { BenchJob } from './benchJobs.ts';
import { type BenchLimit, LIMIT_FACTOR } from './benchMatrix.ts';

/** One line of the table: a measured run, or a tool that has no such job or was skipped. */
export interface TableRow {
  readonly job: BenchJob;
  readonly size: number;
  readonly limit: BenchLimit;
  readonly tool: string;
  /** How much faster than real time the row ran. */
  readonly timeScale?: number | undefined;
  /** The measured action (the bucket the rate is against). */
  readonly writeAction?: string | undefined;
  /** Rate after the burst over the refill, and the slowest 5-second window over it. */
  readonly ofRefill?: number | undefined;
  readonly slowestWindowOfRefill?: number | undefined;
  readonly throttled?: number | undefined;
  readonly calls?: number | undefined;
  readonly minimumCalls?: number | undefined;
  /** Snapshots or AMIs not made, deleted or copied after retries. */
  readonly lost?: number | undefined;
  /** Seconds the row took on the bench. */
  readonly seconds?: number | undefined;
  /** The local AWS's capacity, calls a second, and the local calls the row's refill asks for. */
  readonly capacity?: number | undefined;
  readonly localCalls?: number | undefined;
  /** Why a row is "—", or a word on how it ran. */
  readonly note?: string | undefined;
}

/** Issue 19's goals for snapkeeper: the ceiling, no dip, no throttling, no extra call. */
export const GOALS = { ofRefill: 0.95, slowestWindow: 0.9, throttled: 0, callsOverMinimum: 1.005 };

/**
 * The goals a snapkeeper row misses (none for a peer's row, or a row not measured): rate
 * after the burst ≥ 0.95 of the refill, slowest 5 s ≥ 0.9, 0 throttled, calls ÷ minimum
 * 1.00 (below 1.005). A rate not measured (a run within its burst) is no miss.
 *
 * @example
 * missedGoals({ tool: 'snapkeeper', ofRefill: 0.98, slowestWindowOfRefill: 0.86, throttled: 0, calls: 1003, minimumCalls: 1003 } as TableRow); // ['slowest 5 s']
 */
export function missedGoals(row: TableRow): string[] {
  if (!row.tool.startsWith('snapkeeper') || row.calls === undefined) return [];
  const missed: string[] = [];
  if (row.ofRefill !== undefined && row.ofRefill < GOALS.ofRefill) missed.push('rate');
  if (row.slowestWindowOfRefill !== undefined && row.slowestWindowOfRefill < GOALS.slowestWindow)
    missed.push('slowest 5 s');
  if ((row.throttled ?? 0) > GOALS.throttled) missed.push('throttled');
  if (row.minimumCalls && row.calls / row.minimumCalls >= GOALS.callsOverMinimum)
    missed.push('calls ÷ minimum');
  if ((row.lost ?? 0) > 0) missed.push('lost');
  return missed;
}

const fixed = (n: number | undefined, digits = 2) => (n === undefined ? 'n/a' : n.toFixed(digits));

/**
 * The limit as AWS grants it, by the refill of the row's bucket: `default (5/s)`.
 *
 * @example
 * limitLabel('raised', 'DeleteSnapshot'); // 'raised ×4 (20/s)'
 */
export function limitLabel(limit: BenchLimit, writeAction = 'CreateSnapshots'): string {
  const perSecond = (writeAction === 'CopyImage' ? 1 : 5) * LIMIT_FACTOR[limit];
  return limit === 'default'
    ? `default (${perSecond}/s)`
    : `raised ×${LIMIT_FACTOR[limit]} (${perSecond}/s)`;
}

/**
 * The whole run as one markdown table, in the order the rows were measured.
 *
 * @example
 * console.log(formatBenchTable(rows));
 */
export function formatBenchTable(rows: readonly TableRow[]): string {
  const header = [
    'job',
    'instances',
    'limit (AWS refill)',
    'time scale',
    'tool',
    'rate after burst ÷ refill',
    'slowest 5 s',
    'throttled',
    'calls ÷ minimum',
    'lost',
    'wall (bench / at AWS pace)',
    'local AWS capacity (× the row’s need)',
    'goals',
  ];
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const row of rows) {
    const measured = row.calls !== undefined;
    const missed = missedGoals(row);
    const cells = [
      row.job,
      row.size.toLocaleString('en-US'),
      limitLabel(row.limit, row.writeAction),
      row.timeScale === undefined ? '—' : `×${row.timeScale}`,
      row.tool,
      measured ? fixed(row.ofRefill) : '—',
      measured ? fixed(row.slowestWindowOfRefill) : '—',
      measured ? String(row.throttled ?? 0) : '—',
      measured && row.minimumCalls
        ? `${fixed((row.calls ?? 0) / row.minimumCalls, 3)} (${row.calls}/${row.minimumCalls})`
        : '—',
      measured ? String(row.lost ?? 0) : '—',
      row.seconds === undefined
        ? '—'
        : `${fixed(row.seconds, 1)} s / ${fixed(row.seconds * (row.timeScale ?? 1), 0)} s`,
      row.capacity === undefined
        ? '—'
        : `${row.capacity.toFixed(0)}/s${row.localCalls ? ` (×${(row.capacity / row.localCalls).toFixed(1)})` : ''}`,
      !row.tool.startsWith('snapkeeper') || !measured
        ? (row.note ?? '')
        : `${missed.length === 0 ? 'met' : `missed: ${missed.join(', ')}`}${row.note ? `; ${row.note}` : ''}`,
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}
