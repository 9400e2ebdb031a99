/**
 * Batch checkpoints of a fan-out run (`RUN#<runId>`, `BATCH#<batchId>`): written
 * `pending` before any batch is sent, claimed by one worker per attempt (a dead worker's
 * taken over after its lease), and finished as final or `retry`.
 */
import {
  type BatchCheckpoint,
  type BatchStatus,
  FINAL_BATCH_STATUSES,
} from '../../domain/fanOut.ts';
import { batchKeys } from '../../domain/runHistory.ts';
import { toAwsCallError } from '../errors.ts';
import { type HistoryItem, type HistoryTable, stripUndefined } from './table.ts';

/** A batch as the planner records it. */
export interface PlannedBatch {
  readonly batchId: string;
  readonly target: unknown;
  readonly instances?: number | undefined;
}

/** A batch's outcome, as its worker writes it. */
export interface BatchResult {
  readonly status: BatchStatus;
  readonly endedAt: string;
  readonly counts?: Readonly<Record<string, number>> | undefined;
  readonly errorSummary?: string | undefined;
}

/** What claiming a batch answers: claimed, or why not (`final`: done already; `busy`: another worker has it). */
export type BatchClaim =
  | { kind: 'claimed'; checkpoint: BatchCheckpoint }
  | { kind: 'final'; checkpoint: BatchCheckpoint }
  | { kind: 'busy'; checkpoint: BatchCheckpoint };

/**
 * The batch checkpoints of the history table.
 *
 * @example
 * const checkpoints = new BatchCheckpoints(table);
 * const claim = await checkpoints.claimBatch(runId, batchId, now, staleBefore);
 */
export class BatchCheckpoints {
  readonly #table: HistoryTable;

  public constructor(table: HistoryTable) {
    this.#table = table;
  }

  /**
   * Records a fan-out's batches, `pending`, under their run before any is sent.
   *
   * @throws AwsCallError (`BatchWriteItem`) when a call fails or items stay unprocessed.
   * @example
   * await checkpoints.putBatches(runId, [{ batchId: 'self/eu-west-1/0001', target, instances: 200 }], now);
   */
  public async putBatches(
    runId: string,
    batches: readonly PlannedBatch[],
    now: Date,
  ): Promise<void> {
    const at = now.toISOString();
    const items = batches.map((batch) => ({
      ...batchKeys(runId, batch.batchId),
      type: 'batch',
      runId,
      ...stripUndefined(batch),
      status: 'pending',
      attempts: 0,
      createdAt: at,
      expiresAt: this.#table.expiresAt(now),
    }));
    const { unprocessed } = await this.#table.writeBatch(items, (item) => item, {
      failedCalls: 'throw',
    });
    if (unprocessed.length > 0) {
      throw toAwsCallError(
        'BatchWriteItem',
        new Error(`${unprocessed.length} batch records were never written`),
      );
    }
  }

  /**
   * Claims a batch for one attempt: `pending` or `retry` batches (and `running` ones
   * whose lease is older than `staleBefore`, a dead worker's) become `running` with one
   * more attempt. A batch never recorded is created as it is claimed.
   *
   * @returns the claimed checkpoint, or why it was not claimed: `final` (a duplicate
   * delivery of a finished batch) or `busy` (another worker has it now).
   * @example
   * const claim = await checkpoints.claimBatch(runId, batchId, now, new Date(now.getTime() - 900_000));
   */
  public async claimBatch(
    runId: string,
    batchId: string,
    now: Date,
    staleBefore: Date,
  ): Promise<BatchClaim> {
    const key = batchKeys(runId, batchId);
    const claimed = await this.#table.updateIf({
      Key: key,
      UpdateExpression:
        'SET #status = :running, attempts = if_not_exists(attempts, :zero) + :one, leaseAt = :now, #type = :batch, runId = :runId, batchId = :batchId, expiresAt = if_not_exists(expiresAt, :expires)',
      ConditionExpression:
        'attribute_not_exists(PK) OR #status IN (:pending, :retry) OR (#status = :running AND leaseAt < :stale)',
      ExpressionAttributeNames: { '#status': 'status', '#type': 'type' },
      ExpressionAttributeValues: {
        ':running': 'running',
        ':pending': 'pending',
        ':retry': 'retry',
        ':zero': 0,
        ':one': 1,
        ':now': now.toISOString(),
        ':stale': staleBefore.toISOString(),
        ':batch': 'batch',
        ':runId': runId,
        ':batchId': batchId,
        ':expires': this.#table.expiresAt(now),
      },
      ReturnValues: 'ALL_NEW',
    });
    if (claimed !== false) return { kind: 'claimed', checkpoint: toCheckpoint(claimed) };
    const item = await this.#table.get(key);
    const checkpoint = toCheckpoint(item ?? { batchId, status: 'running', attempts: 0 });
    return FINAL_BATCH_STATUSES.includes(checkpoint.status)
      ? { kind: 'final', checkpoint }
      : { kind: 'busy', checkpoint };
  }

  /**
   * Writes a batch's outcome: final (`succeeded`, `partial`, `failed`) or `retry` (the
   * next delivery resumes it).
   *
   * @example
   * await checkpoints.finishBatch(runId, batchId, { status: 'succeeded', endedAt, counts });
   */
  public async finishBatch(runId: string, batchId: string, result: BatchResult): Promise<void> {
    const values: HistoryItem = {
      ':status': result.status,
      ':endedAt': result.endedAt,
      ':counts': result.counts ?? {},
    };
    const sets = ['#status = :status', 'endedAt = :endedAt', 'counts = :counts'];
    if (result.errorSummary) {
      sets.push('errorSummary = :error');
      values[':error'] = result.errorSummary.slice(0, 2000);
    }
    await this.#table.update({
      Key: batchKeys(runId, batchId),
      UpdateExpression: `SET ${sets.join(', ')}`,
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: values,
    });
  }
}

/** A batch checkpoint read back (a batch never recorded reads `pending`, no attempt). */
export function toCheckpoint(item: HistoryItem): BatchCheckpoint {
  return {
    batchId: String(item.batchId ?? String(item.SK ?? '').replace(/^BATCH#/, '')),
    status: (item.status as BatchStatus | undefined) ?? 'pending',
    attempts: typeof item.attempts === 'number' ? item.attempts : 0,
    ...(item.counts ? { counts: item.counts as Record<string, number> } : {}),
    ...(typeof item.errorSummary === 'string' ? { errorSummary: item.errorSummary } : {}),
  };
}
