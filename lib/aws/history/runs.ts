/**
 * Runs (`RUN#<runId>`, `RUN`): a run's item written at start with its lease, the lease
 * renewed, and the outcome written — by the run itself (`finishRun`), once by whichever
 * fan-out worker finishes last (`completeRun`), or as `abandoned` by the run that finds
 * it dead. Also the planner's dispatch record, and one run read by key.
 */
import {
  type ItemKeys,
  type RunRecordStatus,
  runItemKeys,
  runKeys,
} from '../../domain/runHistory.ts';
import type { RunRecord } from './records.ts';
import { type HistoryItem, type HistoryTable, stripUndefined } from './table.ts';

/** Reports above this size are stored cut, with a note (DynamoDB items hold 400 KB). */
export const MAX_REPORT_BYTES = 300_000;

/** Error summaries are cut to this many characters. */
const MAX_ERROR_SUMMARY = 2000;

/** Entries of `remaining` kept at most. */
const MAX_REMAINING = 1000;

/** A run's outcome, as finishing it writes it. */
export interface RunResult {
  readonly status: RunRecordStatus;
  readonly endedAt: string;
  readonly counts?: Readonly<Record<string, number>> | undefined;
  readonly errorSummary?: string | undefined;
  /** What is left, for an `incomplete` run. */
  readonly remaining?: readonly string[] | undefined;
  readonly report?: unknown;
}

/** A fan-out run's outcome, as the worker that completes it writes it. */
export interface CompletedRun {
  readonly status: RunRecordStatus;
  readonly endedAt: string;
  readonly counts: Readonly<Record<string, number>>;
  readonly errorSummary?: string | undefined;
}

/**
 * The run items of the history table.
 *
 * @example
 * const runs = new RunRecords(table);
 * await runs.startRun(run);
 */
export class RunRecords {
  readonly #table: HistoryTable;

  public constructor(table: HistoryTable) {
    this.#table = table;
  }

  /**
   * Writes the run item at start, `running`, with its lease (only if the run is new).
   *
   * @example
   * await runs.startRun({ runId, deployment, job: 'backup', trigger: 'schedule', dryRun: false, startedAt, status: 'running' });
   */
  public async startRun(run: RunRecord): Promise<void> {
    await this.#table.put({
      Item: {
        ...runKeys(run),
        type: 'run',
        ...stripUndefined(run),
        leaseRenewedAt: run.leaseRenewedAt ?? run.startedAt,
        expiresAt: this.#table.expiresAt(new Date(run.startedAt)),
      },
      ConditionExpression: 'attribute_not_exists(PK)',
    });
  }

  /**
   * Renews a running run's lease (a run no longer `running` is left as it is).
   *
   * @example
   * await runs.renewLease(runId, new Date());
   */
  public async renewLease(runId: string, now: Date): Promise<void> {
    await this.#table.updateIf({
      Key: runItemKeys(runId),
      UpdateExpression: 'SET leaseRenewedAt = :now',
      ConditionExpression: '#status = :running',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':now': now.toISOString(), ':running': 'running' },
    });
  }

  /**
   * Writes a run's final status, counts, error summary and report.
   *
   * @example
   * await runs.finishRun(runId, { status: 'succeeded', endedAt, counts, report });
   */
  public async finishRun(runId: string, result: RunResult): Promise<void> {
    await this.#table.update(outcomeUpdate(runId, result));
  }

  /**
   * Finishes a fan-out run once: only while it is still `running`.
   *
   * @returns false when another worker finished it first (or it was marked abandoned).
   * @example
   * const mine = await runs.completeRun(runId, { status: 'succeeded', endedAt, counts });
   */
  public async completeRun(runId: string, result: CompletedRun): Promise<boolean> {
    const update = outcomeUpdate(runId, result);
    const written = await this.#table.updateIf({
      ...update,
      ConditionExpression: '#status = :running',
      ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ':running': 'running' },
    });
    return written !== false;
  }

  /**
   * Marks a run `abandoned` only if it is still `running` with the lease seen.
   *
   * @returns false when it changed in between (it was alive after all).
   * @example
   * const marked = await runs.markAbandoned(deadRunId, run.leaseRenewedAt, now, runId);
   */
  public async markAbandoned(
    runId: string,
    leaseRenewedAt: string,
    now: Date,
    byRunId: string,
  ): Promise<boolean> {
    const marked = await this.#table.updateIf({
      Key: runItemKeys(runId),
      UpdateExpression: 'SET #status = :abandoned, endedAt = :now, errorSummary = :why',
      ConditionExpression: '#status = :running AND leaseRenewedAt = :lease',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':abandoned': 'abandoned',
        ':running': 'running',
        ':lease': leaseRenewedAt,
        ':now': now.toISOString(),
        ':why': `abandoned: lease last renewed ${leaseRenewedAt}; marked by run ${byRunId}`,
      },
    });
    return marked !== false;
  }

  /**
   * Records that a run's work was handed to workers: its counts and the planner's
   * report, with the run still `running` (its batches finish it).
   *
   * @example
   * await runs.recordDispatch(runId, { counts: { batches: 4 }, report, now });
   */
  public async recordDispatch(
    runId: string,
    result: { counts: Readonly<Record<string, number>>; report: unknown; now: Date },
  ): Promise<void> {
    await this.#table.update({
      Key: runItemKeys(runId),
      UpdateExpression: 'SET counts = :counts, report = :report, leaseRenewedAt = :now',
      ConditionExpression: '#status = :running',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':counts': result.counts,
        ':report': fitReport(result.report),
        ':now': result.now.toISOString(),
        ':running': 'running',
      },
    });
  }

  /**
   * One run (strongly consistent).
   *
   * @example
   * const run = await runs.getRun('r1');
   */
  public async getRun(runId: string): Promise<RunRecord | undefined> {
    const item = await this.#table.get(runItemKeys(runId));
    return item ? toRun(item) : undefined;
  }
}

/** A run item read back. */
export function toRun(item: HistoryItem): RunRecord {
  return item as unknown as RunRecord;
}

/**
 * The update that writes a run's outcome: status and end, and the counts, error summary,
 * what is left and the report when given.
 */
function outcomeUpdate(
  runId: string,
  result: RunResult,
): {
  Key: ItemKeys;
  UpdateExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues: HistoryItem;
} {
  const values: HistoryItem = { ':status': result.status, ':endedAt': result.endedAt };
  const sets = ['#status = :status', 'endedAt = :endedAt'];
  const optional: [string, string, unknown][] = [
    ['counts', ':counts', result.counts],
    ['errorSummary', ':error', result.errorSummary?.slice(0, MAX_ERROR_SUMMARY) || undefined],
    ['remaining', ':remaining', result.remaining?.slice(0, MAX_REMAINING)],
    ['report', ':report', result.report === undefined ? undefined : fitReport(result.report)],
  ];
  for (const [attribute, placeholder, value] of optional) {
    if (value === undefined) continue;
    sets.push(`${attribute} = ${placeholder}`);
    values[placeholder] = value;
  }
  return {
    Key: runItemKeys(runId),
    UpdateExpression: `SET ${sets.join(', ')}`,
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: values,
  };
}

/**
 * A report as JSON that fits an item: cut to its non-list fields, with a note, when
 * larger than {@link MAX_REPORT_BYTES}.
 *
 * @example
 * fitReport({ status: 'succeeded', actions: [] }); // '{"status":"succeeded","actions":[]}'
 */
export function fitReport(report: unknown): string {
  const json = JSON.stringify(report);
  if (Buffer.byteLength(json) <= MAX_REPORT_BYTES) return json;
  const summary =
    report && typeof report === 'object'
      ? Object.fromEntries(Object.entries(report).filter(([, v]) => !Array.isArray(v)))
      : {};
  return JSON.stringify({
    ...summary,
    truncated: 'the full report was too large to store; see the action items',
  });
}
