/**
 * The console's way back from the archive tier: before `restore-volume` creates a volume
 * from an archived snapshot, the snapshot must be restored to the standard tier
 * (`RestoreSnapshotTier`, temporary for N days or permanent), which takes up to 72
 * hours. The first call starts the restore and answers when it will be ready; a call
 * during the restore answers the same; once restored, the volume is created as usual.
 */
import { toAwsCallError } from '../aws/errors.ts';
import { readTierRestore, restoreReadyBy, type TierRestore } from '../domain/archiveTier.ts';
import type { ActionJournal, LoggerPort, SnapshotTiersPort } from './ports.ts';

/** What `restore-volume` answers while the snapshot is not back from archive. */
export interface ArchiveRestoreAnswer {
  readonly snapshotId: string;
  /** started: this call started it; in-progress: an earlier one did; planned: dry run. */
  readonly status: 'started' | 'in-progress' | 'planned' | 'failed';
  readonly restore: TierRestore;
  /** The latest time the snapshot is back (AWS: up to 72 hours after the restore starts). */
  readonly readyBy?: string | undefined;
  readonly message: string;
  readonly error?: { code: string; message: string } | undefined;
}

/** What the archive restore needs. */
export interface ArchiveRestoreDependencies {
  readonly tiers: Pick<SnapshotTiersPort, 'tierStatuses' | 'restoreSnapshotTier'>;
  readonly journal: ActionJournal;
  readonly logger: LoggerPort;
  readonly runId: string;
  readonly clock: () => Date;
}

const RESTORED = new Set(['temporary-restore-completed', 'permanent-restore-completed']);
const RESTORING = new Set(['temporary-restore-in-progress', 'permanent-restore-in-progress']);

/**
 * Whether an archived snapshot can be used now; if not, starts (or reports) its restore
 * from archive. `archiveRestore` is the payload's field: `{"days": N}` or `"permanent"`
 * (default one day).
 *
 * @throws {InvalidEventError} for a bad `archiveRestore`.
 * @example
 * const back = await backFromArchive('snap-1', { days: 3 }, false, deps);
 * if (!back.ready) return back.answer;
 */
export async function backFromArchive(
  snapshotId: string,
  archiveRestore: unknown,
  dryRun: boolean,
  deps: ArchiveRestoreDependencies,
): Promise<{ ready: true } | { ready: false; answer: ArchiveRestoreAnswer }> {
  const restore = readTierRestore(archiveRestore);
  const status = (await deps.tiers.tierStatuses([snapshotId])).get(snapshotId);
  const now = deps.clock();
  const expiry = status?.restoreExpiryTime;
  const usable =
    status?.tier !== 'archive' ||
    RESTORED.has(status.lastOperation ?? '') ||
    (expiry !== undefined && expiry.getTime() > now.getTime());
  if (!status || usable) return { ready: true };
  const how =
    restore.kind === 'permanent'
      ? 'permanently'
      : `for ${restore.days} day${restore.days === 1 ? '' : 's'}`;
  if (RESTORING.has(status.lastOperation ?? '')) {
    const readyBy = restoreReadyBy(status.lastTieringStartTime ?? now).toISOString();
    return {
      ready: false,
      answer: {
        snapshotId,
        status: 'in-progress',
        restore,
        readyBy,
        message: `${snapshotId} is being restored from the archive tier; it will be ready by ${readyBy} at the latest. Invoke restore-volume again then.`,
      },
    };
  }
  if (dryRun) {
    return {
      ready: false,
      answer: {
        snapshotId,
        status: 'planned',
        restore,
        readyBy: restoreReadyBy(now).toISOString(),
        message: `${snapshotId} is archived: it would be restored ${how} (up to 72 hours) before a volume can be made of it`,
      },
    };
  }
  return { ready: false, answer: await startRestore(snapshotId, restore, how, deps) };
}

async function startRestore(
  snapshotId: string,
  restore: TierRestore,
  how: string,
  deps: ArchiveRestoreDependencies,
): Promise<ArchiveRestoreAnswer> {
  const record = {
    runId: deps.runId,
    job: 'restore-volume',
    action: 'restore-snapshot-tier',
    resourceId: snapshotId,
    reason: `restore from archive ${how} before creating a volume`,
    details: { ...restore },
  };
  await deps.journal.record({ ...record, phase: 'before' }).catch((error: unknown) =>
    deps.logger.warn('restoring from archive anyway: the restore could not be recorded first', {
      snapshotId,
      error: error instanceof Error ? error.message : String(error),
    }),
  );
  let answer: ArchiveRestoreAnswer;
  try {
    await deps.tiers.restoreSnapshotTier(snapshotId, restore);
    // From when it was asked: EC2's RestoreStartTime is the same moment, give or take.
    const readyBy = restoreReadyBy(deps.clock()).toISOString();
    answer = {
      snapshotId,
      status: 'started',
      restore,
      readyBy,
      message: `${snapshotId} was archived: its restore ${how} has started and will be ready by ${readyBy} at the latest. Invoke restore-volume again then.`,
    };
  } catch (error) {
    const failure = toAwsCallError('RestoreSnapshotTier', error);
    answer = {
      snapshotId,
      status: 'failed',
      restore,
      message: `${snapshotId} is archived and could not be restored: ${failure.message}`,
      error: { code: failure.code, message: failure.message },
    };
  }
  await deps.journal
    .record({
      ...record,
      phase: 'after',
      outcome: answer.status === 'failed' ? 'failed' : 'done',
      reason: answer.message,
      ...(answer.error ? { error: answer.error } : {}),
    })
    .catch(() => undefined);
  return answer;
}
