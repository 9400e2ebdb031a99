/**
 * Snapshot size records (`SIZE#<snapshot id>`, `SIZE`): a snapshot's full size and unique
 * bytes, measured once (by `lib/jobs/snapshotSizes.ts`) and read by the cost ledger. They
 * expire with the history's retention (HISTORY_RETENTION_DAYS after measuring): a
 * snapshot kept longer is measured again, against its then previous snapshot.
 */
import type { SnapshotSize } from '../../domain/costLedger.ts';
import type { ItemKeys } from '../../domain/runHistory.ts';
import { toAwsCallError } from '../errors.ts';
import type { HistoryItem, HistoryTable } from './table.ts';
import { stripUndefined } from './table.ts';

/** BatchGetItem calls of size records in flight at once. */
export const SIZE_READ_CONCURRENCY = 4;

/**
 * Keys of a snapshot's size record.
 *
 * @example
 * snapshotSizeKeys('snap-1'); // { PK: 'SIZE#snap-1', SK: 'SIZE' }
 */
export function snapshotSizeKeys(snapshotId: string): ItemKeys {
  return { PK: `SIZE#${snapshotId}`, SK: 'SIZE' };
}

/**
 * The size records of the history table.
 *
 * @example
 * const sizes = new SnapshotSizeRecords(table);
 * const known = await sizes.recordedSizes(['snap-1']);
 */
export class SnapshotSizeRecords {
  readonly #table: HistoryTable;

  public constructor(table: HistoryTable) {
    this.#table = table;
  }

  /**
   * The size records of those of `ids` the history holds (BatchGetItem, 100 keys a call).
   *
   * @throws AwsCallError when a batch fails: the caller then treats the sizes as unknown.
   * @example
   * const known = await sizes.recordedSizes(['snap-1', 'snap-2']);
   */
  public async recordedSizes(ids: readonly string[]): Promise<Map<string, SnapshotSize>> {
    const items = await this.#table.getBatch([...new Set(ids)].map(snapshotSizeKeys), {
      concurrency: SIZE_READ_CONCURRENCY,
    });
    const found = new Map<string, SnapshotSize>();
    for (const item of items) {
      const size = toSnapshotSize(item);
      if (size) found.set(size.snapshotId, size);
    }
    return found;
  }

  /**
   * Writes size records (BatchWriteItem, 25 a call, unprocessed items written again).
   *
   * @throws AwsCallError when a call fails or items stay unprocessed.
   * @example
   * await sizes.recordSizes([size], 'run-1');
   */
  public async recordSizes(sizes: readonly SnapshotSize[], runId: string): Promise<void> {
    if (sizes.length === 0) return;
    const { unprocessed } = await this.#table.writeBatch(
      sizes,
      (size) => ({
        ...snapshotSizeKeys(size.snapshotId),
        type: 'snapshot-size',
        runId,
        expiresAt: this.#table.expiresAt(new Date(size.measuredAt)),
        ...stripUndefined(size),
      }),
      { failedCalls: 'throw' },
    );
    if (unprocessed.length > 0) {
      throw toAwsCallError(
        'BatchWriteItem',
        new Error(`${unprocessed.length} size record(s) stayed unprocessed`),
      );
    }
  }
}

/** A size record read back, or undefined when the item is not a valid one. */
export function toSnapshotSize(item: HistoryItem): SnapshotSize | undefined {
  const { snapshotId, volumeId, fullBytes, uniqueBytes, fullFrom, measuredAt } = item;
  if (
    typeof snapshotId !== 'string' ||
    typeof volumeId !== 'string' ||
    typeof fullBytes !== 'number' ||
    typeof uniqueBytes !== 'number' ||
    (fullFrom !== 'describe' && fullFrom !== 'blocks') ||
    typeof measuredAt !== 'string'
  ) {
    return undefined;
  }
  return {
    snapshotId,
    volumeId,
    fullBytes,
    uniqueBytes,
    fullFrom,
    measuredAt,
    ...(typeof item.previousSnapshotId === 'string'
      ? { previousSnapshotId: item.previousSnapshotId }
      : {}),
  };
}
