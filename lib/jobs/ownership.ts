import { toAwsCallError } from '../aws/errors.ts';
import { type Ownership, UNKNOWN_VOLUME_ID } from '../domain/provenance.ts';
import type { CreationLedger } from '../domain/runRecords.ts';
import type { LoggerPort } from './ports.ts';

/** Moved to `lib/domain/runRecords.ts` (adapters implement it); re-exported for the jobs. */
export type { CreationLedger } from '../domain/runRecords.ts';

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
          c.createdByEc2At.getTime() >= ledgerStart.getTime() ||
          c.createdByEc2At.getTime() <= 0 ||
          c.volumeId === UNKNOWN_VOLUME_ID,
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
