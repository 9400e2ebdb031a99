import { SnapshotInUseError, SnapshotNotFoundError, toAwsCallError } from '../aws/errors.ts';
import type { Behind } from './historyPipeline.ts';
import type { ActionJournal, ActionRecord, LoggerPort, ReportedError } from './ports.ts';

/** How one recorded deletion went. */
export type DeletionAttempt =
  | { readonly kind: 'deleted' }
  /** `InvalidSnapshot.InUse`: an image started using it after the plan. */
  | { readonly kind: 'in-use' }
  /** `InvalidSnapshot.NotFound`: someone else deleted it. */
  | { readonly kind: 'gone' }
  | { readonly kind: 'failed'; readonly error: ReportedError }
  /** The "before" record could not be written: nothing was deleted. */
  | { readonly kind: 'unrecorded'; readonly error: ReportedError };

/**
 * Deletes one snapshot the one safe way: record it before, delete, record the outcome
 * after. When the "before" record cannot be written nothing is deleted. The callers
 * word their own reasons; `reasonAfter` gives the reason recorded after the call.
 *
 * With `behind`, the "after" record is not waited for: it is written behind the EC2
 * work (a batching journal puts it with others in one call) and the job settles it
 * before reporting; a failure to write it is logged as an error either way. The
 * "before" record is always waited for: a deletion never leaves before it is written.
 * A crash between the two leaves a "before" with no "after"; the next run plans from
 * EC2's own listing, so a snapshot still there is planned (and recorded) again, and
 * one that is gone is out of its scope (the unmatched "before" marks it possibly deleted).
 *
 * @example
 * const attempt = await deleteSnapshotRecorded(record, () => ec2.deleteSnapshot(id), journal, logger, (a) => reason);
 */
export async function deleteSnapshotRecorded(
  record: Omit<ActionRecord, 'phase' | 'outcome'>,
  remove: () => Promise<void>,
  journal: ActionJournal,
  logger: LoggerPort,
  reasonAfter: (attempt: DeletionAttempt) => string,
  behind?: Behind,
): Promise<DeletionAttempt> {
  try {
    await journal.record({ ...record, phase: 'before' });
  } catch (error) {
    const failure = toAwsCallError('RecordAction', error);
    logger.error('not deleting: the deletion could not be recorded first', {
      resourceId: record.resourceId,
      error: failure.message,
    });
    return { kind: 'unrecorded', error: { code: 'JournalUnavailable', message: failure.message } };
  }
  let attempt: DeletionAttempt;
  try {
    await remove();
    attempt = { kind: 'deleted' };
  } catch (error) {
    if (error instanceof SnapshotInUseError) attempt = { kind: 'in-use' };
    else if (error instanceof SnapshotNotFoundError) attempt = { kind: 'gone' };
    else {
      const failure = toAwsCallError('DeleteSnapshot', error);
      attempt = { kind: 'failed', error: { code: failure.code, message: failure.message } };
    }
  }
  const after = journal
    .record({
      ...record,
      phase: 'after',
      outcome:
        attempt.kind === 'deleted' ? 'done' : attempt.kind === 'failed' ? 'failed' : 'skipped',
      reason: reasonAfter(attempt),
      ...(attempt.kind === 'failed' ? { error: attempt.error } : {}),
    })
    .catch((error: unknown) =>
      logger.error('deletion done but its record could not be written', {
        resourceId: record.resourceId,
        outcome: attempt.kind,
        error: error instanceof Error ? error.message : String(error),
      }),
    );
  if (behind) behind.add(after);
  else await after;
  return attempt;
}

/**
 * Deletes one snapshot through {@link deleteSnapshotRecorded} (record before, delete,
 * record after) with `deps.ec2`, and answers with the caller's result for the attempt;
 * that result's reason is also the reason recorded after.
 *
 * @example
 * const result = await deleteSnapshotWithResult(
 *   { runId, job: 'retention', action: 'delete-snapshot', resourceId: id, reason },
 *   deps, journal, (attempt) => ({ snapshotId: id, reason, outcome: attempt.kind }), behind);
 */
export async function deleteSnapshotWithResult<Result extends { readonly reason: string }>(
  record: Omit<ActionRecord, 'phase' | 'outcome'>,
  deps: {
    readonly ec2: { deleteSnapshot(snapshotId: string): Promise<void> };
    readonly logger: LoggerPort;
  },
  journal: ActionJournal,
  toResult: (attempt: DeletionAttempt) => Result,
  behind?: Behind,
): Promise<Result> {
  const attempt = await deleteSnapshotRecorded(
    record,
    () => deps.ec2.deleteSnapshot(record.resourceId),
    journal,
    deps.logger,
    (a) => toResult(a).reason,
    behind,
  );
  return toResult(attempt);
}
