/**
 * The action journal (`RUN#<runId>`, `ACTION#<sequence>#<resource>#<phase>`): every step
 * of a destructive call and of what was made, before and after, indexed by the resource,
 * its instance and its volume; one entry at a time or batched. An entry that says a
 * resource was made also writes its creation record (through the creation ledger),
 * after the ledger's start.
 */
import { SnapkeeperError } from '../../domain/errors.ts';
import { actionKeys } from '../../domain/runHistory.ts';
import { toAwsCallError } from '../errors.ts';
import { type CreationRecords, creationItemOf } from './creationLedger.ts';
import type { JournalEntry } from './records.ts';
import { type HistoryItem, type HistoryTable, primaryKeyOf, stripUndefined } from './table.ts';

/** Rounds of `BatchWriteItem` for one batch of records before its unprocessed items count as unwritten. */
export const RECORD_BATCH_ROUNDS = 8;

/** The first back-off before writing unprocessed records again; doubles each round (full jitter). */
export { BATCH_BACKOFF_MS as RECORD_BATCH_BACKOFF_MS } from './table.ts';

/**
 * Some records of a batch were not written (the others were): `unwritten` holds their
 * positions in the batch.
 */
export class HistoryWriteError extends SnapkeeperError {
  public readonly unwritten: readonly number[];

  public constructor(unwritten: readonly number[], cause: string, options?: ErrorOptions) {
    super(`${unwritten.length} history record(s) not written: ${cause}`, options);
    this.name = 'HistoryWriteError';
    this.unwritten = unwritten;
  }
}

/** The items one entry writes: its action item, and a creation record for a resource made. */
interface EntryItems {
  readonly creation?: HistoryItem | undefined;
  readonly action: HistoryItem;
}

/** One item of a batch, with the positions of the entries that wrote it. */
interface BatchItem {
  item: HistoryItem;
  readonly owners: number[];
}

/**
 * The action journal of the history table. Its sequence numbers order one run's
 * actions, so one journal serves one invocation.
 *
 * @example
 * const journal = new HistoryActionJournal(table, ledger);
 * await journal.record({ runId, job: 'retention', action: 'delete-snapshot', resourceId, phase: 'before', reason });
 */
export class HistoryActionJournal {
  readonly #table: HistoryTable;
  readonly #ledger: CreationRecords;
  #sequence = 0;

  public constructor(table: HistoryTable, ledger: CreationRecords) {
    this.#table = table;
    this.#ledger = ledger;
  }

  /**
   * Records one step of an action (the journal of destructive calls, and what was made).
   *
   * @example
   * await journal.record({ runId, job: 'retention', action: 'delete-snapshot', resourceId, phase: 'before', reason });
   */
  public async record(entry: JournalEntry): Promise<void> {
    const { creation, action } = this.#itemsOf(entry);
    if (creation) {
      // The creation record first, never expiring: what retention may ever delete.
      await this.#ledger.ledgerStart(new Date(String(creation.at)));
      await this.#table.put({ Item: creation });
    }
    await this.#table.put({ Item: action });
  }

  /**
   * Records many steps at once with `BatchWriteItem` (25 items a call; an entry that
   * makes a resource also writes its creation record). Unprocessed items are written
   * again with exponential back-off and jitter; a call that fails outright (after the
   * SDK's own retries of throttling) leaves its entries unwritten. Resolves when every
   * entry is written, and otherwise throws a {@link HistoryWriteError} naming the entries
   * that were not (the others are written).
   *
   * @example
   * await journal.recordBatch([before1, before2, after3]);
   */
  public async recordBatch(
    entries: readonly JournalEntry[],
    options: { readonly sleep?: (ms: number) => Promise<void>; readonly rounds?: number } = {},
  ): Promise<void> {
    const { items, firstCreation } = this.#batchItemsOf(entries);
    if (firstCreation) {
      try {
        await this.#ledger.ledgerStart(new Date(firstCreation));
      } catch (error) {
        const failure = toAwsCallError('PutItem', error);
        throw new HistoryWriteError(
          entries.map((_, i) => i),
          failure.message,
          { cause: failure },
        );
      }
    }
    const rounds = options.rounds ?? RECORD_BATCH_ROUNDS;
    const { unprocessed, failed } = await this.#table.writeBatch(items, (b) => b.item, {
      rounds,
      sleep: options.sleep,
      failedCalls: 'collect',
    });
    const unwritten = new Set<number>();
    for (const b of [...failed.flatMap((f) => f.entries), ...unprocessed]) {
      for (const owner of b.owners) unwritten.add(owner);
    }
    if (unwritten.size === 0) return;
    const lastFailure = failed.at(-1)?.error;
    throw new HistoryWriteError(
      [...unwritten].sort((a, b) => a - b),
      lastFailure?.message ??
        `${unprocessed.length} item(s) still unprocessed after ${rounds} rounds`,
      lastFailure ? { cause: lastFailure } : undefined,
    );
  }

  /**
   * The items of a batch, one per key (DynamoDB refuses a batch with two puts of one
   * key) with the entries that need it, and the time of its first creation record.
   */
  #batchItemsOf(entries: readonly JournalEntry[]): {
    items: BatchItem[];
    firstCreation: string | undefined;
  } {
    const items = new Map<string, BatchItem>();
    const add = (item: HistoryItem, owner: number) => {
      const found = items.get(primaryKeyOf(item));
      if (found) {
        found.item = item;
        found.owners.push(owner);
      } else items.set(primaryKeyOf(item), { item, owners: [owner] });
    };
    let firstCreation: string | undefined;
    entries.forEach((entry, index) => {
      const { creation, action } = this.#itemsOf(entry);
      if (creation) {
        firstCreation ??= String(creation.at);
        add(creation, index);
      }
      add(action, index);
    });
    return { items: [...items.values()], firstCreation };
  }

  /** The items one entry writes, with the next sequence number. */
  #itemsOf(entry: JournalEntry): EntryItems {
    this.#sequence += 1;
    const sequence = this.#sequence;
    const at = entry.at ?? new Date().toISOString();
    const details = entry.details ?? {};
    const instanceId =
      entry.instanceId ?? (typeof details.instanceId === 'string' ? details.instanceId : undefined);
    const volumeId =
      entry.volumeId ?? (typeof details.volumeId === 'string' ? details.volumeId : undefined);
    const creation = creationItemOf(entry, at, instanceId, volumeId);
    const action = {
      ...actionKeys({
        runId: entry.runId,
        sequence,
        resourceId: entry.resourceId,
        phase: entry.phase,
        at,
        instanceId,
        volumeId,
      }),
      type: 'action',
      ...stripUndefined({ ...entry, at, sequence, instanceId, volumeId }),
      expiresAt: this.#table.expiresAt(new Date(at)),
    };
    return creation ? { creation, action } : { action };
  }
}
