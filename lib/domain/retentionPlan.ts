import { toWallClock } from './schedules.ts';

/** The life-cycle state of a recovery point, as retention sees it. */
export type PointState = 'pending' | 'completed' | 'error';

/**
 * One recovery point of a lineage (a snapshot of one volume, or an AMI of one
 * instance), in the planner's compact form.
 */
export interface RecoveryPoint {
  readonly id: string;
  readonly state: PointState;
  /** When it was taken: the `created-at` tag when valid, else EC2's start time. */
  readonly createdAt: Date;
  /** True only when tagged managed=true by this very deployment. */
  readonly managed: boolean;
  /** What holds it (AMI ids using a snapshot, ...): it must not be deleted. */
  readonly heldBy?: readonly string[] | undefined;
  readonly sizeGiB?: number | undefined;
}

/** Grandfather-father-son tiers: how many days, weeks, months and years keep one point each. */
export interface TierCounts {
  readonly daily?: number | undefined;
  readonly weekly?: number | undefined;
  readonly monthly?: number | undefined;
  readonly yearly?: number | undefined;
}

/** The tier names in the order they are applied. */
export const TIERS = ['daily', 'weekly', 'monthly', 'yearly'] as const;
export type Tier = (typeof TIERS)[number];

/** How many points to keep and for how long. */
export interface RetentionRule {
  /** Newest completed points always kept (at least 1). */
  readonly count: number;
  /** A point beyond the count goes only when older than this many days. */
  readonly minAgeDays?: number | undefined;
  readonly tiers?: TierCounts | undefined;
}

/** The facts about a lineage that retention depends on besides its points. */
export interface LineageContext {
  readonly now: Date;
  /** Time zone of the schedule: tiers are cut in local days, weeks, months and years. */
  readonly timezone: string;
  /** The source is gone or no longer opts in: the failing-backups guard does not apply. */
  readonly orphan: boolean;
  /**
   * With `orphan`: the source instance still exists and only its volume no longer opts in
   * (tag removed, volume skipped or excluded). The reasons then say so, never "orphaned".
   */
  readonly sourceLive?: boolean | undefined;
  /** For orphans: days after which even the last point may go; off when absent. */
  readonly expireOrphansAfterDays?: number | undefined;
  /** The schedule's interval: no new point in twice this means backups are failing. */
  readonly intervalMs: number;
}

/** What happens to one point, with the one reason an operator reads. */
export type RetentionDecision =
  | { readonly id: string; readonly action: 'keep'; readonly reason: string }
  | { readonly id: string; readonly action: 'delete'; readonly reason: string }
  | {
      readonly id: string;
      readonly action: 'blocked';
      readonly reason: string;
      readonly heldBy: readonly string[];
    };

/** The plan for one lineage. */
export interface RetentionPlan {
  readonly decisions: readonly RetentionDecision[];
  /** Set when nothing is deleted because the lineage's backups are failing. */
  readonly failing?: string | undefined;
}

const DAY_MS = 86_400_000;
/** A managed snapshot in `error` holds no data; it is deleted once older than this. */
export const ERROR_POINT_GRACE_MS = DAY_MS;

/**
 * Plans retention for one lineage. Pure and total: every point gets exactly one
 * decision. The invariants, each tested:
 * 1. only points managed by this deployment are ever deleted;
 * 2. at least `count` completed points stay (orphans past their expiry excepted);
 * 3. a pending point is never deleted and never counted as kept; an `error` point
 *    is never counted, and goes once older than a day;
 * 4. a held point (used by an AMI) is never deleted: it is `blocked`;
 * 5. the newest completed point always stays, and while a source's backups are
 *    failing (no new point in twice the interval, or the newest is `error`) nothing
 *    of it is deleted.
 *
 * @example
 * const plan = planRetention(points, { count: 7, minAgeDays: 14 }, context);
 * plan.decisions.filter((d) => d.action === 'delete');
 */
export function planRetention(
  points: readonly RecoveryPoint[],
  rule: RetentionRule,
  context: LineageContext,
): RetentionPlan {
  // A count that is not a number keeps everything: retention never guesses.
  const count = Number.isNaN(rule.count)
    ? Number.POSITIVE_INFINITY
    : Math.max(1, Math.floor(rule.count));
  const decisions = new Map<string, RetentionDecision>();
  const keep = (id: string, reason: string) => {
    if (!decisions.has(id)) decisions.set(id, { id, action: 'keep', reason });
  };
  const remove = (point: RecoveryPoint, reason: string) => {
    if (decisions.has(point.id)) return;
    if (point.heldBy && point.heldBy.length > 0) {
      decisions.set(point.id, {
        id: point.id,
        action: 'blocked',
        reason: `${reason}, but held by ${point.heldBy.join(', ')}`,
        heldBy: point.heldBy,
      });
    } else {
      decisions.set(point.id, { id: point.id, action: 'delete', reason });
    }
  };
  const finish = (failing?: string): RetentionPlan => ({
    decisions: points.map(
      (p) => decisions.get(p.id) ?? { id: p.id, action: 'keep', reason: 'kept' },
    ),
    ...(failing ? { failing } : {}),
  });

  for (const point of points) {
    if (!point.managed) keep(point.id, 'kept: not created by this deployment');
  }
  const managed = newestFirst(points.filter((p) => p.managed));
  const completed = managed.filter((p) => p.state === 'completed');
  const nowMs = context.now.getTime();
  for (const point of managed) {
    if (point.state === 'pending') keep(point.id, 'kept: pending (not counted, never deleted)');
  }

  // Failing backups: the old points are all that is left.
  const failing = failingBackups(managed, context);
  if (failing) {
    for (const point of managed) keep(point.id, `kept: backups failing, ${failing}`);
    return finish(failing);
  }

  // Orphans past their expiry: even the last point may go.
  const newestCompleted = completed[0];
  if (
    context.orphan &&
    context.expireOrphansAfterDays !== undefined &&
    newestCompleted &&
    nowMs - newestCompleted.createdAt.getTime() > context.expireOrphansAfterDays * DAY_MS
  ) {
    for (const point of managed) {
      if (point.state === 'pending') continue;
      remove(
        point,
        `${context.sourceLive ? 'no longer backed up' : 'orphaned'} and newest point is over ${context.expireOrphansAfterDays} days old (expireOrphansAfterDays)`,
      );
    }
    return finish();
  }

  // Count: the newest `count` completed points, the newest one above all.
  completed.slice(0, count).forEach((point, index) => {
    keep(
      point.id,
      index === 0 && context.orphan
        ? context.sourceLive
          ? 'kept: last completed point of a volume no longer backed up (its instance is live)'
          : 'kept: last completed point of an orphaned source'
        : `kept: newest ${index + 1} of ${count}`,
    );
  });

  // Tiers: the newest completed point of each of the newest N periods.
  for (const [id, reason] of tierKeeps(completed, rule, context.timezone)) keep(id, reason);

  for (const point of completed) {
    const ageMs = nowMs - point.createdAt.getTime();
    if (rule.minAgeDays !== undefined && ageMs <= rule.minAgeDays * DAY_MS) {
      keep(point.id, `kept: beyond count ${count} but not older than ${rule.minAgeDays} days`);
      continue;
    }
    remove(
      point,
      rule.minAgeDays !== undefined
        ? `beyond count ${count} and older than ${rule.minAgeDays} days`
        : `beyond count ${count}`,
    );
  }

  for (const point of managed) {
    if (point.state !== 'error') continue;
    if (nowMs - point.createdAt.getTime() > ERROR_POINT_GRACE_MS) {
      remove(point, 'in error (holds no data) for over a day');
    } else {
      keep(point.id, 'kept: in error, not a recovery point; deleted after a day');
    }
  }
  return finish();
}

/**
 * A plan that keeps every point with one reason, for lineages whose policy cannot
 * be read (a malformed retention tag): retention never guesses.
 *
 * @example
 * keepAll(points, 'kept: snapkeeper:retain="seven" is not a whole number');
 */
export function keepAll(points: readonly RecoveryPoint[], reason: string): RetentionPlan {
  return { decisions: points.map((p) => ({ id: p.id, action: 'keep' as const, reason })) };
}

/**
 * The period a point falls in for a tier, in the schedule's time zone: a day
 * `2026-11-23`, an ISO 8601 week `2026-W48` (Monday to Sunday), a month `2026-11`,
 * a year `2026`.
 *
 * @example
 * periodKey(new Date('2026-11-23T03:00:00Z'), 'weekly', 'UTC'); // '2026-W48'
 */
export function periodKey(at: Date, tier: Tier, timezone: string): string {
  const wall = toWallClock(at, timezone);
  const year = wall.getUTCFullYear();
  const month = String(wall.getUTCMonth() + 1).padStart(2, '0');
  const day = String(wall.getUTCDate()).padStart(2, '0');
  switch (tier) {
    case 'daily':
      return `${year}-${month}-${day}`;
    case 'monthly':
      return `${year}-${month}`;
    case 'yearly':
      return String(year);
    case 'weekly': {
      const date = new Date(Date.UTC(year, wall.getUTCMonth(), wall.getUTCDate()));
      const weekday = date.getUTCDay() || 7;
      date.setUTCDate(date.getUTCDate() + 4 - weekday);
      const isoYear = date.getUTCFullYear();
      const week = Math.ceil(((date.getTime() - Date.UTC(isoYear, 0, 1)) / DAY_MS + 1) / 7);
      return `${isoYear}-W${String(week).padStart(2, '0')}`;
    }
  }
}

function newestFirst(points: readonly RecoveryPoint[]): RecoveryPoint[] {
  return [...points].sort(
    (a, b) =>
      b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0),
  );
}

function formatDuration(ms: number): string {
  const hours = ms / 3_600_000;
  if (hours >= 48) return `${Math.round(hours / 24)} days`;
  const rounded = Math.round(hours);
  return rounded === 1 ? '1 hour' : `${rounded} hours`;
}

/**
 * Why a live source's backups are failing, if they are: its newest point is in
 * error, or no backup started for over twice the schedule's interval. Orphans and
 * sources with no point are never failing.
 */
function failingBackups(
  managedNewestFirst: readonly RecoveryPoint[],
  context: LineageContext,
): string | undefined {
  const newest = managedNewestFirst[0];
  if (context.orphan || !newest) return undefined;
  const silentMs = context.now.getTime() - newest.createdAt.getTime();
  if (newest.state === 'error') return `newest backup ${newest.id} is in error`;
  if (silentMs > 2 * context.intervalMs) {
    return `no backup started for ${formatDuration(silentMs)} (over twice the schedule's interval of ${formatDuration(context.intervalMs)})`;
  }
  return undefined;
}

/**
 * The points each tier keeps, in order: the newest completed point of each of the
 * tier's newest N periods (in the schedule's time zone), with the reason.
 */
function tierKeeps(
  completedNewestFirst: readonly RecoveryPoint[],
  rule: RetentionRule,
  timezone: LineageContext['timezone'],
): [id: string, reason: string][] {
  const keeps: [string, string][] = [];
  for (const tier of TIERS) {
    const limit = rule.tiers?.[tier];
    if (!limit) continue;
    const seen = new Set<string>();
    for (const point of completedNewestFirst) {
      const period = periodKey(point.createdAt, tier, timezone);
      if (seen.has(period)) continue;
      if (seen.size >= limit) break;
      seen.add(period);
      keeps.push([point.id, `kept: ${tier} tier ${period}`]);
    }
  }
  return keeps;
}
