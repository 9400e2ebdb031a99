/**
 * The EBS snapshot archive tier, where it pays: which points move to archive
 * (`archiveAfterDays`), the 90-day minimum that archive bills, and how a console restore
 * brings an archived point back. Pure.
 *
 * Facts followed (Amazon EBS User Guide, "Archive Amazon EBS snapshots"; EC2 API
 * reference `ModifySnapshotTier`, `RestoreSnapshotTier`): archive bills at least 90 days
 * (a snapshot deleted or restored permanently earlier is billed the remaining days); only
 * `completed` snapshots are archived; a restore from archive takes up to 72 hours; a
 * temporary restore lasts 1 to 180 days, then the snapshot goes back to archive.
 */
import { InvalidEventError, InvalidScheduleDefinitionError } from './errors.ts';

/**
 * The parts of a retention rule (`RetentionRule` in retentionPlan.ts) that say how long
 * a point is kept; declared here so the schedules module can import this one.
 */
export interface KeepRule {
  readonly count: number;
  readonly minAgeDays?: number | undefined;
  readonly tiers?:
    | {
        readonly daily?: number | undefined;
        readonly weekly?: number | undefined;
        readonly monthly?: number | undefined;
        readonly yearly?: number | undefined;
      }
    | undefined;
}

/** The storage tiers of an EBS snapshot (`StorageTier`). */
export type StorageTier = 'standard' | 'archive';

/** Archive bills at least this many days. */
export const ARCHIVE_MINIMUM_DAYS = 90;
/** How long a restore from archive can take (AWS: "up to 72 hours"). */
export const ARCHIVE_RESTORE_HOURS = 72;
/** RestoreSnapshotTier's TemporaryRestoreDays range. */
export const TEMPORARY_RESTORE_DAYS = { min: 1, max: 180 } as const;

const DAY_MS = 86_400_000;

/**
 * How many days a schedule's points are kept at least, from its definition: the count
 * times the interval, or `retainDays` when longer. Tiers keep some points longer; they
 * are not counted, so the estimate errs short (it refuses, never over-archives).
 *
 * @example
 * scheduleKeepDays({ retain: 12 }, 28); // 336
 */
export function scheduleKeepDays(
  schedule: { readonly retain: number; readonly retainDays?: number | undefined },
  intervalDays: number,
): number {
  return Math.max(schedule.retain * intervalDays, schedule.retainDays ?? 0);
}

/**
 * Checks a schedule's `archiveAfterDays` against how long its points are kept: archiving
 * pays only for points kept at least 90 more days after the move.
 *
 * @throws {InvalidScheduleDefinitionError} naming the schedule, both figures and the fix.
 * @example
 * validateArchiveAfterDays('monthly', 30, 336); // ok
 * validateArchiveAfterDays('daily', 3, 7); // throws
 */
export function validateArchiveAfterDays(
  schedule: string,
  archiveAfterDays: number,
  keepDays: number,
): void {
  const needed = archiveAfterDays + ARCHIVE_MINIMUM_DAYS;
  if (keepDays < needed) {
    throw new InvalidScheduleDefinitionError(
      `schedule "${schedule}": archiveAfterDays ${archiveAfterDays} needs points kept at least ${needed} days (archive bills a ${ARCHIVE_MINIMUM_DAYS}-day minimum), but retain/retainDays keep them about ${Math.floor(keepDays)} days; raise retain or retainDays, lower archiveAfterDays, or remove it`,
    );
  }
}

/** One point as the archive step sees it. */
export interface ArchiveCandidate {
  readonly id: string;
  readonly state: 'pending' | 'completed' | 'error';
  readonly createdAt: Date;
  readonly managed: boolean;
  readonly tier: StorageTier;
  /** AMIs registered from it. */
  readonly heldBy?: readonly string[] | undefined;
  readonly sizeGiB?: number | undefined;
  /** A snapshot lock keeps it at least until then, whatever retention says. */
  readonly lockedUntil?: Date | undefined;
}

/** What the archive step does with one point, with the reason. */
export type ArchiveDecision =
  | { readonly id: string; readonly action: 'archive'; readonly reason: string }
  | { readonly id: string; readonly action: 'skip'; readonly reason: string };

/** The facts about a lineage the archive plan needs besides its points. */
export interface ArchiveContext {
  readonly now: Date;
  readonly archiveAfterDays: number;
  /** The schedule's interval in days (count-based retention). */
  readonly intervalDays: number;
  /** Points this run's retention deletes (never archived). */
  readonly deleting: ReadonlySet<string>;
  /** The lineage's source is gone or no longer opts in: its points may expire any day. */
  readonly orphan: boolean;
}

/**
 * How many more days a point is kept, estimated from the rule: newer points push it out
 * of the count one interval at a time; `minAgeDays` and tiers may keep it longer.
 *
 * @example
 * remainingKeepDays({ count: 12 }, 2, 40, 30); // (12 - 2) * 30 = 300
 */
export function remainingKeepDays(
  rule: KeepRule,
  index: number,
  ageDays: number,
  intervalDays: number,
): number {
  const periods = { daily: 1, weekly: 7, monthly: 30, yearly: 365 } as const;
  let days = (rule.count - index) * intervalDays;
  if (rule.minAgeDays !== undefined) days = Math.max(days, rule.minAgeDays - ageDays);
  for (const [tier, length] of Object.entries(periods)) {
    const limit = rule.tiers?.[tier as keyof typeof periods];
    if (limit) days = Math.max(days, limit * length - ageDays);
  }
  return days;
}

/**
 * Plans the archive step for one lineage. A point moves to archive only when it is
 * ours, completed, in the standard tier, at least `archiveAfterDays` old, not used by an
 * AMI, not deleted by this run, of a live source, and kept at least 90 more days by its
 * rule; every other standard-tier point gets the reason it stays.
 *
 * @example
 * planArchive(points, rule, { now, archiveAfterDays: 30, intervalDays: 30, deleting, orphan: false });
 */
export function planArchive(
  points: readonly ArchiveCandidate[],
  rule: KeepRule,
  context: ArchiveContext,
): ArchiveDecision[] {
  const completed = points
    .filter((p) => p.managed && p.state === 'completed')
    .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  const decisions: ArchiveDecision[] = [];
  completed.forEach((point, index) => {
    if (point.tier !== 'standard') return;
    const ageDays = (context.now.getTime() - point.createdAt.getTime()) / DAY_MS;
    if (ageDays < context.archiveAfterDays) return;
    const lockedDays = point.lockedUntil
      ? (point.lockedUntil.getTime() - context.now.getTime()) / DAY_MS
      : 0;
    const remaining = Math.max(
      remainingKeepDays(rule, index, ageDays, context.intervalDays),
      lockedDays,
    );
    const skipped = skipReason(point, remaining, context);
    decisions.push(
      skipped
        ? { id: point.id, action: 'skip', reason: skipped }
        : {
            id: point.id,
            action: 'archive',
            reason: `archived: ${Math.floor(ageDays)} days old (archiveAfterDays ${context.archiveAfterDays}), kept about ${Math.floor(remaining)} more days`,
          },
    );
  });
  return decisions;
}

/** Why an old-enough standard point stays standard, or undefined when it moves. */
function skipReason(
  point: ArchiveCandidate,
  remainingDays: number,
  context: ArchiveContext,
): string | undefined {
  if (context.deleting.has(point.id)) return 'not archived: retention deletes it';
  if (context.orphan) return 'not archived: its source no longer opts in';
  if (point.heldBy?.length) return `not archived: used by ${point.heldBy.join(', ')}`;
  if (remainingDays < ARCHIVE_MINIMUM_DAYS) {
    return `not archived: kept about ${Math.max(0, Math.floor(remainingDays))} more days, under archive's ${ARCHIVE_MINIMUM_DAYS}-day minimum charge`;
  }
  return undefined;
}

/**
 * When deleting an archived point now costs as much as keeping it: before the end of its
 * 90-day minimum, which is billed in full anyway. Undefined once the minimum is served
 * or when the point is not archived.
 *
 * @example
 * archiveMinimumEnds(new Date('2026-11-01T00:00:00Z'), new Date('2026-11-23T00:00:00Z'));
 * // 2027-01-30T00:00:00Z
 */
export function archiveMinimumEnds(archivedAt: Date | undefined, now: Date): Date | undefined {
  if (!archivedAt) return undefined;
  const ends = new Date(archivedAt.getTime() + ARCHIVE_MINIMUM_DAYS * DAY_MS);
  return ends.getTime() > now.getTime() ? ends : undefined;
}

/**
 * The note a plan adds to an archived point it deletes before the 90-day minimum.
 *
 * @example
 * earlyDeletionNote(ends, 100); // 'archived: deleting before 2027-01-30 still bills ...'
 */
export function earlyDeletionNote(ends: Date, sizeGiB: number | undefined): string {
  const size = sizeGiB === undefined ? '' : ` for its ${sizeGiB} GiB`;
  return `archived: deleting before ${ends.toISOString().slice(0, 10)} still bills the rest of the ${ARCHIVE_MINIMUM_DAYS}-day archive minimum${size}, so keeping it until then costs nothing more`;
}

/** How the console brings an archived snapshot back. */
export type TierRestore =
  | { readonly kind: 'temporary'; readonly days: number }
  | { readonly kind: 'permanent' };

/** A snapshot's tier as `DescribeSnapshotTierStatus` reports it. */
export interface TierStatus {
  readonly snapshotId: string;
  readonly tier: StorageTier;
  /** When the last tiering operation (archive or restore) started. */
  readonly lastTieringStartTime?: Date | undefined;
  /** e.g. `archival-completed`, `temporary-restore-in-progress`, `permanent-restore-completed`. */
  readonly lastOperation?: string | undefined;
  /** When a temporarily restored snapshot goes back to archive. */
  readonly restoreExpiryTime?: Date | undefined;
}

/** What `RestoreSnapshotTier` answered. */
export interface TierRestoreResult {
  readonly snapshotId: string;
  readonly startedAt?: Date | undefined;
  readonly permanent: boolean;
  readonly days?: number | undefined;
}

/**
 * Reads the console payload's `archiveRestore` field: `{ "days": 7 }` for a temporary
 * restore (1-180 days, then back to archive) or `"permanent"`. Absent: 1 day, the
 * cheapest restore that lets a volume be created.
 *
 * @throws {InvalidEventError} naming the field and the fix.
 * @example
 * readTierRestore({ days: 7 }); // { kind: 'temporary', days: 7 }
 * readTierRestore('permanent'); // { kind: 'permanent' }
 */
export function readTierRestore(value: unknown): TierRestore {
  if (value === undefined) return { kind: 'temporary', days: 1 };
  if (value === 'permanent') return { kind: 'permanent' };
  const days = (value as { days?: unknown } | null)?.days;
  if (
    typeof value === 'object' &&
    value !== null &&
    Object.keys(value).length === 1 &&
    typeof days === 'number' &&
    Number.isInteger(days) &&
    days >= TEMPORARY_RESTORE_DAYS.min &&
    days <= TEMPORARY_RESTORE_DAYS.max
  ) {
    return { kind: 'temporary', days };
  }
  throw new InvalidEventError(
    `field "archiveRestore": ${JSON.stringify(value)} is not a restore from archive; send {"days": N} with N from ${TEMPORARY_RESTORE_DAYS.min} to ${TEMPORARY_RESTORE_DAYS.max} for a temporary restore, or "permanent"`,
  );
}

/**
 * The latest time a restore started at `startedAt` is ready: AWS says up to 72 hours.
 *
 * @example
 * restoreReadyBy(new Date('2026-11-23T00:00:00Z')); // 2026-11-26T00:00:00Z
 */
export function restoreReadyBy(startedAt: Date): Date {
  return new Date(startedAt.getTime() + ARCHIVE_RESTORE_HOURS * 3_600_000);
}
