import { toAwsCallError } from '../aws/errors.ts';
import { type CreationRecord, type Ownership, UNKNOWN_VOLUME_ID } from '../domain/provenance.ts';
import type { LoggerPort } from './ports.ts';

/**
 * The run history as the deleting jobs (snapshot retention, the sweep, AMI retirement,
 * the fan-out retention batches, and later the copy job) read it: which resources this
 * deployment recorded creating. `RunHistoryGateway` implements it.
 */
export interface CreationLedger {
  /**
   * The creation records of those of `ids` the history holds (read strongly
   * consistent, in batches; throws when any cannot be read).
   */
  recordedCreations(ids: readonly string[]): Promise<ReadonlyMap<string, CreationRecord>>;
  /**
   * When the history began keeping creation records (written once, by the first run
   * that needs it): resources EC2 made before it are judged by their tags.
   */
  ledgerStart(now: Date): Promise<Date>;
}

/** A resource whose ownership a deleting job needs: its id, and what EC2 says of it. */
export interface OwnedCandidate {
  readonly id: string;
  /** EC2's own creation time (StartTime, CreationDate), which no tag can change. */
  readonly createdByEc2At: Date;
  /** EC2's volume id for a snapshot: `vol-ffffffff` needs the recorded one. */
  readonly volumeId?: string | undefined;
}

/**
 * Reads who owns the candidates: the ledger's start, then the creation records of those
 * made since (and of any whose volume EC2 does not know), or `unreadable` (logged) when
 * the history cannot be read, so that the caller keeps everything and reports it.
 * Without a ledger, the tags alone decide.
 *
 * @example
 * const ownership = await readOwnership(deps.ledger, candidates, now, logger);
 */
export async function readOwnership(
  ledger: CreationLedger | undefined,
  candidates: readonly OwnedCandidate[],
  now: Date,
  logger: LoggerPort,
): Promise<Ownership> {
  if (!ledger) return { kind: 'tags' };
  try {
    const ledgerStart = await ledger.ledgerStart(now);
    const ids = candidates
      .filter(
        (c) =>
          c.createdByEc2At.getTime() >= ledgerStart.getTime() || c.volumeId === UNKNOWN_VOLUME_ID,
      )
      .map((c) => c.id);
    const recorded = ids.length > 0 ? await ledger.recordedCreations(ids) : new Map();
    return { kind: 'history', recorded, ledgerStart };
  } catch (error) {
    const failure = toAwsCallError('RunHistory', error);
    logger.error('the run history cannot be read: nothing is deleted', {
      code: failure.code,
      error: failure.message,
    });
    return { kind: 'unreadable', reason: `${failure.code}: ${failure.message}` };
  }
}
