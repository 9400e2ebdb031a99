/**
 * An action journal that records in memory what a job writes before and after each
 * destructive action, for the jobs' unit tests.
 */
import type { ActionJournal, ActionRecord } from '../../lib/jobs/ports.ts';
import { sdkError } from './sdkErrors.ts';

/** How a {@link RecordingJournal} behaves. */
export interface RecordingJournalOptions {
  /** Resources whose "before" record fails (DynamoDB's `ResourceNotFoundException`). */
  readonly failBefore?: readonly string[];
  /** A shared timeline: each record appends `<phase> <resourceId>[ <outcome>]`. */
  readonly events?: string[];
  /** Whether a timeline entry names the "after" record's outcome (default true). */
  readonly withOutcome?: boolean;
}

/**
 * Records every action record a job writes, in order; a "before" record of a resource in
 * `failBefore` fails as the table would, and nothing is recorded for it.
 *
 * @example
 * const events: string[] = [];
 * const journal = new RecordingJournal({ events, failBefore: ['snap-1'] });
 * await runRetention({ ...deps, journal });
 * expect(events).toEqual(['before snap-2', 'delete snap-2', 'after snap-2 done']);
 */
export class RecordingJournal implements ActionJournal {
  public readonly records: ActionRecord[] = [];
  readonly #failBefore: ReadonlySet<string>;
  readonly #events: string[] | undefined;
  readonly #withOutcome: boolean;

  public constructor(options: RecordingJournalOptions = {}) {
    this.#failBefore = new Set(options.failBefore ?? []);
    this.#events = options.events;
    this.#withOutcome = options.withOutcome ?? true;
  }

  public async record(entry: ActionRecord): Promise<void> {
    if (entry.phase === 'before' && this.#failBefore.has(entry.resourceId)) {
      throw sdkError('ResourceNotFoundException', 'Requested resource not found');
    }
    const outcome = this.#withOutcome && entry.outcome ? ` ${entry.outcome}` : '';
    this.#events?.push(`${entry.phase} ${entry.resourceId}${outcome}`);
    this.records.push(entry);
  }
}
