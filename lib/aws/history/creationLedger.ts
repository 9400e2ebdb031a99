/**
 * Creation records (`CREATED#<id>`, `CREATED`, kept without a TTL): what this deployment
 * made, which is all retention may ever delete; and the ledger's start (`LEDGER`,
 * `START`), written once, before which resources are judged by their tags.
 */
import { CREATION_ACTIONS, type CreationRecord } from '../../domain/provenance.ts';
import { creationKeys, LEDGER_START_KEYS } from '../../domain/runHistory.ts';
import { toAwsCallError } from '../errors.ts';
import type { CreationLedger, JournalEntry } from './records.ts';
import { type HistoryItem, type HistoryTable, stripUndefined } from './table.ts';

/** BatchGetItem calls of creation records in flight at once. */
export const CREATION_READ_CONCURRENCY = 4;

/**
 * The creation ledger of the history table.
 *
 * @example
 * const ledger = new CreationRecords(table);
 * const recorded = await ledger.recordedCreations(['snap-1', 'snap-2']);
 */
export class CreationRecords implements CreationLedger {
  readonly #table: HistoryTable;
  #ledgerStart: Date | undefined;

  public constructor(table: HistoryTable) {
    this.#table = table;
  }

  /**
   * The creation records of those of `ids` the history holds: BatchGetItem of 100 keys
   * a call, strongly consistent, unprocessed keys retried with backoff.
   *
   * @throws AwsCallError when a batch fails or keys stay unprocessed: the caller then
   * knows nothing of ownership and keeps everything.
   * @example
   * const recorded = await ledger.recordedCreations(['snap-1', 'snap-2']);
   */
  public async recordedCreations(ids: readonly string[]): Promise<Map<string, CreationRecord>> {
    // A few batches at once: 100,000 ids are 1,000 calls.
    const items = await this.#table.getBatch([...new Set(ids)].map(creationKeys), {
      concurrency: CREATION_READ_CONCURRENCY,
    });
    const found = new Map<string, CreationRecord>();
    for (const item of items) {
      const record = toCreation(item);
      if (record) found.set(record.resourceId, record);
    }
    return found;
  }

  /**
   * When this history began keeping creation records: written once (conditionally) by
   * the first caller, read strongly consistent after; resources EC2 made before it are
   * judged by their tags.
   *
   * @example
   * const start = await ledger.ledgerStart(new Date());
   */
  public async ledgerStart(now: Date): Promise<Date> {
    if (this.#ledgerStart) return this.#ledgerStart;
    const written = await this.#table.putIf({
      Item: { ...LEDGER_START_KEYS, type: 'ledger', startedAt: now.toISOString() },
      ConditionExpression: 'attribute_not_exists(PK)',
    });
    if (written) {
      this.#ledgerStart = now;
      return now;
    }
    const item = await this.#table.get(LEDGER_START_KEYS);
    const startedAt = Date.parse(String(item?.startedAt));
    if (Number.isNaN(startedAt)) {
      throw toAwsCallError('GetItem', new Error('the ledger start item has no valid startedAt'));
    }
    this.#ledgerStart = new Date(startedAt);
    return this.#ledgerStart;
  }
}

/**
 * The creation record an entry writes, if it says a resource was made (the `after`,
 * `done` step of a creating action), stamped `at`.
 *
 * @example
 * creationItemOf({ action: 'create-snapshot', phase: 'after', outcome: 'done', ... }, at, 'i-1', 'vol-1');
 */
export function creationItemOf(
  entry: JournalEntry,
  at: string,
  instanceId: string | undefined,
  volumeId: string | undefined,
): HistoryItem | undefined {
  const kind = CREATION_ACTIONS[entry.action];
  if (!kind || entry.phase !== 'after' || entry.outcome !== 'done') return undefined;
  return {
    ...creationKeys(entry.resourceId),
    type: 'creation',
    ...stripUndefined({
      resourceId: entry.resourceId,
      kind,
      runId: entry.runId,
      job: entry.job,
      at,
      instanceId,
      volumeId,
    }),
  };
}

/** A creation record read back, or undefined when the item is not one. */
function toCreation(item: HistoryItem): CreationRecord | undefined {
  const resourceId = typeof item.resourceId === 'string' ? item.resourceId : undefined;
  const kind = item.kind;
  if (!resourceId || (kind !== 'snapshot' && kind !== 'image' && kind !== 'copy')) return undefined;
  return {
    resourceId,
    kind,
    runId: String(item.runId ?? ''),
    job: String(item.job ?? ''),
    at: String(item.at ?? ''),
    ...(typeof item.instanceId === 'string' ? { instanceId: item.instanceId } : {}),
    ...(typeof item.volumeId === 'string' ? { volumeId: item.volumeId } : {}),
  };
}
