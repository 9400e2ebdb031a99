import type { ActionJournal, ActionRecord } from './ports.ts';

/** Where a pipeline writes its batches: the run history's `recordBatch`. */
export interface BatchJournalSink {
  /**
   * Writes every entry, or throws; an error with `unwritten` (positions in `entries`)
   * says which were not written, the others were.
   */
  recordMany(entries: readonly ActionRecord[]): Promise<void>;
}

/** How a pipeline batches. */
export interface HistoryPipelineOptions {
  /** Entries a batch holds at most (DynamoDB's `BatchWriteItem` takes 25 items). */
  readonly batchSize?: number;
  /** Batches being written at once. */
  readonly maxInFlight?: number;
}

/** Records a batch holds by default: `BatchWriteItem`'s 25 items, less room for creation records. */
export const HISTORY_BATCH_SIZE = 25;

/** Batches written at once by default. */
export const HISTORY_BATCHES_IN_FLIGHT = 4;

interface Waiting {
  readonly entry: ActionRecord;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * The action journal off the critical path: `record` queues the entry and resolves
 * when the batch holding it is written (`BatchWriteItem`, up to 25 entries, a few
 * batches at once), so entries recorded while a batch is being written share the next
 * one. Deletions still wait for their "before" record (many of them share one call);
 * "after" records and creation records are not waited for by the EC2 work: the job
 * drains the pipeline with `flush` before it reports. An entry that cannot be written
 * rejects its own promise (never silently): its caller reports it, as before.
 *
 * @example
 * const journal = new HistoryPipeline({ recordMany: (entries) => history.recordBatch(entries) });
 * await journal.record(before); // written, with the other records queued at the same time
 * await journal.flush();
 */
export class HistoryPipeline implements ActionJournal {
  readonly #sink: BatchJournalSink;
  readonly #batchSize: number;
  readonly #maxInFlight: number;
  readonly #queue: Waiting[] = [];
  readonly #writing = new Set<Promise<void>>();
  #scheduled = false;
  /** Calls of the sink made, for reports and benchmarks. */
  public calls = 0;

  public constructor(sink: BatchJournalSink, options: HistoryPipelineOptions = {}) {
    this.#sink = sink;
    this.#batchSize = Math.max(1, options.batchSize ?? HISTORY_BATCH_SIZE);
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? HISTORY_BATCHES_IN_FLIGHT);
  }

  /** Queues one entry; resolves when it is written, rejects when it could not be. */
  public record(entry: ActionRecord): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ entry, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves when every entry queued so far has been written or has failed. */
  public async flush(): Promise<void> {
    while (this.#queue.length > 0 || this.#writing.size > 0 || this.#scheduled) {
      if (this.#writing.size > 0) await Promise.race(this.#writing);
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // The entries queued in this turn of the event loop go out together.
    setImmediate(() => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#writing.size < this.#maxInFlight && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#batchSize);
      const writing = this.#write(batch).finally(() => {
        this.#writing.delete(writing);
        this.#pump();
      });
      this.#writing.add(writing);
    }
  }

  async #write(batch: readonly Waiting[]): Promise<void> {
    this.calls += 1;
    try {
      await this.#sink.recordMany(batch.map((w) => w.entry));
      for (const w of batch) w.resolve();
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      const unwritten = (error as { unwritten?: unknown }).unwritten;
      const failed = new Set(
        Array.isArray(unwritten) ? (unwritten as number[]) : batch.map((_, i) => i),
      );
      batch.forEach((w, i) => {
        if (failed.has(i)) w.reject(failure);
        else w.resolve();
      });
    }
  }
}

/**
 * Promises a job does not wait for as it goes (records written behind its EC2 work),
 * settled before it reports.
 *
 * @example
 * const behind = new Behind();
 * behind.add(journal.record(after).catch(logFailure));
 * await behind.settled(journal);
 */
export class Behind {
  readonly #pending = new Set<Promise<unknown>>();

  /** Keeps a promise to wait for later; it must not reject (catch and report first). */
  public add(promise: Promise<unknown>): void {
    const kept = promise.finally(() => this.#pending.delete(kept));
    this.#pending.add(kept);
  }

  /** Waits for every promise added (and for the journal's queued writes). */
  public async settled(journal?: ActionJournal): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
    await journal?.flush?.();
  }
}
