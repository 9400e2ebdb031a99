/**
 * The archive step of a retention run: for a schedule with `archiveAfterDays`, move the
 * points that pay for it to the archive tier (`ModifySnapshotTier`), each recorded
 * before and after (`archive-snapshot`); nothing moves when the "before" record cannot be
 * written. A failure is reported and makes the run `partial`; the point stays standard
 * and the next run tries again.
 */
import { toAwsCallError } from '../aws/errors.ts';
import { type ArchiveCandidate, type KeepRule, planArchive } from '../domain/archiveTier.ts';
import type { SnapshotFacts } from '../domain/snapshotFacts.ts';
import { effectiveCreatedAt, isManagedBy, pointState } from '../domain/snapshotFacts.ts';
import type { TagKeys } from '../domain/tagKeys.ts';
import { type PacedPool, pacedMap, stepPool, throttledOutcome } from './pacedPool.ts';
import type { ActionJournal, LoggerPort, ReportedError, SnapshotTiersPort } from './ports.ts';

/** How one point's archiving went. */
export interface ArchiveOutcome {
  readonly snapshotId: string;
  readonly volumeId: string;
  /** archived: moving (EC2 tiers in the background); planned: dry run; skipped: stays standard. */
  readonly outcome: 'archived' | 'planned' | 'skipped' | 'failed';
  readonly reason: string;
  readonly sizeGiB?: number | undefined;
  readonly error?: ReportedError | undefined;
}

/** One volume's part of the archive step. */
export interface ArchiveLineage {
  readonly volumeId: string;
  readonly orphan: boolean;
  /** Absent when the retention tags cannot be read: nothing of it is archived. */
  readonly rule?: KeepRule | undefined;
  readonly snapshots: readonly SnapshotFacts[];
  /** Ids this run's retention deletes. */
  readonly deleting: ReadonlySet<string>;
}

/** What the archive step needs. */
export interface ArchiveStepDependencies {
  readonly tiers: Pick<SnapshotTiersPort, 'archiveSnapshot'>;
  readonly journal: ActionJournal;
  readonly logger: LoggerPort;
  readonly runId: string;
  readonly keys: TagKeys;
  readonly deployment: string;
  /** Snapshot id → the registered images that use it. */
  readonly holders: ReadonlyMap<string, readonly string[]>;
  /** Snapshot id → when its lock ends (a locked point is kept at least until then). */
  readonly lockedUntil?: ReadonlyMap<string, Date | undefined> | undefined;
  /** The pool the moves go through; one for the step when absent (5, up to `MAX_IN_FLIGHT`). */
  readonly pool?: PacedPool | undefined;
}

/**
 * Plans and (unless a dry run) performs the archive step over a schedule's lineages.
 *
 * @example
 * const outcomes = await archiveEligible(lineages, { archiveAfterDays: 30, intervalDays: 30, now, dryRun }, deps);
 */
export async function archiveEligible(
  lineages: readonly ArchiveLineage[],
  options: {
    readonly archiveAfterDays: number;
    readonly intervalDays: number;
    readonly now: Date;
    readonly dryRun: boolean;
  },
  deps: ArchiveStepDependencies,
): Promise<ArchiveOutcome[]> {
  const outcomes: ArchiveOutcome[] = [];
  const moves: { at: number; base: ArchiveBase; reason: string }[] = [];
  for (const lineage of lineages) {
    if (!lineage.rule) continue;
    const facts = new Map(lineage.snapshots.map((s) => [s.snapshotId, s]));
    const candidates: ArchiveCandidate[] = lineage.snapshots.map((s) => ({
      id: s.snapshotId,
      state: pointState(s.state),
      createdAt: effectiveCreatedAt(s.tags, s.startTime, deps.keys, options.now),
      managed: isManagedBy(s.tags, deps.keys, deps.deployment),
      tier: s.storageTier === 'archive' ? 'archive' : 'standard',
      heldBy: deps.holders.get(s.snapshotId),
      sizeGiB: s.sizeGiB,
      lockedUntil: deps.lockedUntil?.get(s.snapshotId),
    }));
    const decisions = planArchive(candidates, lineage.rule, {
      now: options.now,
      archiveAfterDays: options.archiveAfterDays,
      intervalDays: options.intervalDays,
      deleting: lineage.deleting,
      orphan: lineage.orphan,
    });
    for (const decision of decisions) {
      const base = {
        snapshotId: decision.id,
        volumeId: lineage.volumeId,
        sizeGiB: facts.get(decision.id)?.sizeGiB,
      };
      if (decision.action === 'skip') {
        outcomes.push({ ...base, outcome: 'skipped', reason: decision.reason });
      } else if (options.dryRun) {
        outcomes.push({ ...base, outcome: 'planned', reason: `would be ${decision.reason}` });
      } else {
        // Placed now, filled when the paced pool has run it (the outcomes keep their order).
        const at = outcomes.push({ ...base, outcome: 'planned', reason: decision.reason }) - 1;
        moves.push({ at, base, reason: decision.reason });
      }
    }
  }
  // The bucket, not one move after another, sets the pace (issue 19).
  const done = await pacedMap(
    moves,
    deps.pool ?? stepPool(),
    ({ base, reason }) => archiveRecorded(base, reason, deps),
    throttledOutcome,
  );
  moves.forEach(({ at }, index) => {
    const outcome = done[index];
    if (outcome) outcomes[at] = outcome;
  });
  return outcomes;
}

/** The snapshot an archive outcome is about. */
type ArchiveBase = { snapshotId: string; volumeId: string; sizeGiB?: number | undefined };

async function archiveRecorded(
  base: ArchiveBase,
  reason: string,
  deps: ArchiveStepDependencies,
): Promise<ArchiveOutcome> {
  const record = {
    runId: deps.runId,
    job: 'retention',
    action: 'archive-snapshot',
    resourceId: base.snapshotId,
    reason,
    details: { volumeId: base.volumeId, sizeGiB: base.sizeGiB },
  };
  try {
    await deps.journal.record({ ...record, phase: 'before' });
  } catch (error) {
    const failure = toAwsCallError('RecordAction', error);
    return {
      ...base,
      outcome: 'failed',
      reason: `not archived: the move could not be recorded first (${failure.message})`,
      error: { code: 'JournalUnavailable', message: failure.message },
    };
  }
  let outcome: ArchiveOutcome;
  try {
    const { startedAt } = await deps.tiers.archiveSnapshot(base.snapshotId);
    outcome = {
      ...base,
      outcome: 'archived',
      reason: startedAt
        ? `${reason}; tiering started ${startedAt.toISOString().slice(0, 19)}Z`
        : reason,
    };
  } catch (error) {
    const failure = toAwsCallError('ModifySnapshotTier', error);
    outcome = {
      ...base,
      outcome: 'failed',
      reason: `not archived: ${failure.message}; it stays in the standard tier and the next run tries again`,
      error: { code: failure.code, message: failure.message },
    };
    deps.logger.warn('snapshot not archived', {
      snapshotId: base.snapshotId,
      error: failure.message,
    });
  }
  await deps.journal
    .record({
      ...record,
      phase: 'after',
      outcome: outcome.outcome === 'failed' ? 'failed' : 'done',
      reason: outcome.reason,
      ...(outcome.error ? { error: outcome.error } : {}),
    })
    .catch((error: unknown) =>
      deps.logger.error('archive done but its record could not be written', {
        snapshotId: base.snapshotId,
        error: error instanceof Error ? error.message : String(error),
      }),
    );
  return outcome;
}
