/**
 * The lock steps: lock each snapshot of a locking schedule right after its set is
 * created and recorded (the backup job), and re-check the locks on later runs (the
 * retention job): a lock EC2 no longer reports is re-applied, or reported. A lock that
 * fails is a reported problem of the run (`partial`), never a silent unlocked point.
 */
import { toAwsCallError } from '../aws/errors.ts';
import {
  checkLock,
  describeHold,
  type LockHold,
  type LockRule,
  lockHoldOf,
  lockRuleFor,
  readLockTag,
  readScheduleLock,
  type SnapshotLockStatus,
} from '../domain/snapshotLock.ts';
import type { TagKeys } from '../domain/tagKeys.ts';
import type { TagMap } from '../domain/tagPolicy.ts';
import { type PacedPool, pacedMap, stepPool, throttledOutcome } from './pacedPool.ts';
import type { ActionJournal, LoggerPort, ReportedError, SnapshotTiersPort } from './ports.ts';

/** The instance tag holding the lock rules: `snapkeeper:lock` (`TagKeys.lock`). */
export function lockTagKey(keys: Pick<TagKeys, 'prefix'>): string {
  return `${keys.prefix}lock`;
}

/** How one snapshot's lock went. */
export interface LockOutcome {
  readonly snapshotId: string;
  /** locked/relocked: done; planned: dry run; failed: reported (the run is partial). */
  readonly outcome: 'locked' | 'relocked' | 'planned' | 'failed';
  readonly reason: string;
  readonly expiresOn?: string | undefined;
  readonly error?: ReportedError | undefined;
}

/** What a lock step needs. */
export interface LockStepDependencies {
  readonly tiers: Pick<SnapshotTiersPort, 'lockSnapshot' | 'lockedSnapshots'>;
  readonly journal: ActionJournal;
  readonly logger: LoggerPort;
  readonly runId: string;
  readonly job: string;
  /**
   * The pool the step's locks go through (issue 19: the bucket decides the pace); one
   * for the whole step when absent (5 in flight at the start, up to `MAX_IN_FLIGHT`).
   */
  readonly pool?: PacedPool | undefined;
}

/**
 * The lock rule of an instance's snapshots for one schedule: its `snapkeeper:lock` tag
 * entry, else the schedule's `lock` option. A tag that cannot be read is a problem: the
 * schedule's option still applies (the side that locks), and the problem is reported.
 *
 * @example
 * resolveLockRule(instance.tags, keys, 'monthly', ['daily', 'monthly'], scheduleRule, false);
 */
export function resolveLockRule(
  tags: TagMap,
  keys: Pick<TagKeys, 'prefix'>,
  schedule: string,
  knownSchedules: readonly string[],
  scheduleRule: LockRule | undefined,
  allowCompliance: boolean,
): { rule?: LockRule | undefined; problem?: string | undefined } {
  const key = lockTagKey(keys);
  const value = tags[key];
  if (value === undefined) return { rule: scheduleRule };
  try {
    return {
      rule: lockRuleFor(
        schedule,
        readLockTag(key, value, knownSchedules, allowCompliance),
        scheduleRule,
      ),
    };
  } catch (error) {
    return {
      rule: scheduleRule,
      problem: `${(error as Error).message}${scheduleRule ? ` (the schedule's own lock ${scheduleRule.days}d ${scheduleRule.mode} applies)` : ' (not locked)'}`,
    };
  }
}

/**
 * Locks the snapshots of a set just created, each recorded before and after
 * (`lock-snapshot`), through the step's paced pool: as many in flight as the bucket
 * allows (`deps.pool`). A lock is the side that keeps data, so a "before" record that
 * cannot be written is logged and the lock still goes ahead. A dry run only plans.
 *
 * @example
 * const outcomes = await lockCreatedSnapshots(['snap-1'], { days: 365, mode: 'governance' }, false, deps);
 */
export async function lockCreatedSnapshots(
  snapshotIds: readonly string[],
  rule: LockRule,
  dryRun: boolean,
  deps: LockStepDependencies,
): Promise<LockOutcome[]> {
  const reason = `locked (${rule.mode}) for ${rule.days} days after creation`;
  if (dryRun) {
    return snapshotIds.map((snapshotId) => ({
      snapshotId,
      outcome: 'planned' as const,
      reason: `would be ${reason}`,
    }));
  }
  const request = { mode: rule.mode, days: rule.days };
  return pacedMap(
    snapshotIds,
    deps.pool ?? stepPool(),
    (snapshotId) => lockRecorded(snapshotId, request, reason, deps, 'locked'),
    throttledOutcome,
  );
}

/** One snapshot to re-check: its creation time and the rule it should be locked by. */
export interface LockedPoint {
  readonly snapshotId: string;
  readonly createdAt: Date;
  readonly rule: LockRule;
}

/**
 * Re-checks the locks of the points that should be locked: reads the locks of every
 * snapshot in scope with DescribeLockedSnapshots, re-applies a missing or expired-early lock until the time the
 * first lock would have ended, and reports every failure. Returns the outcomes and the
 * holds (every lock EC2 reports, for retention to block on).
 *
 * @example
 * const { outcomes, holds } = await recheckLocks(points, scopeIds, now, false, deps);
 */
export async function recheckLocks(
  points: readonly LockedPoint[],
  scopeIds: readonly string[],
  now: Date,
  dryRun: boolean,
  deps: LockStepDependencies,
): Promise<{ outcomes: LockOutcome[]; holds: Map<string, LockHold> }> {
  const statuses = await deps.tiers.lockedSnapshots(scopeIds);
  const holds = holdsOf(statuses);
  const relocks = points.flatMap((point) => {
    const check = checkLock(point.rule, point.createdAt, statuses.get(point.snapshotId), now);
    if (check.action !== 'lock') return [];
    const reason = `re-locked (${point.rule.mode}) until ${check.expiresAt.toISOString().slice(0, 10)}: ${check.reason}`;
    return [{ point, expiresAt: check.expiresAt, reason }];
  });
  if (dryRun) {
    const outcomes = relocks.map(({ point, reason }) => ({
      snapshotId: point.snapshotId,
      outcome: 'planned' as const,
      reason: `would be ${reason}`,
    }));
    return { outcomes, holds };
  }
  const outcomes = await pacedMap(
    relocks,
    deps.pool ?? stepPool(),
    ({ point, expiresAt, reason }) =>
      lockRecorded(
        point.snapshotId,
        { mode: point.rule.mode, expiresAt },
        reason,
        deps,
        'relocked',
      ),
    throttledOutcome,
  );
  relocks.forEach(({ point, expiresAt }, index) => {
    const outcome = outcomes[index];
    if (outcome?.outcome !== 'relocked') return;
    holds.set(point.snapshotId, {
      mode: point.rule.mode,
      until: outcome.expiresOn ? new Date(outcome.expiresOn) : expiresAt,
    });
  });
  return { outcomes, holds };
}

/**
 * The holds of the locks EC2 reports (expired locks hold nothing).
 *
 * @example
 * holdsOf(await tiers.lockedSnapshots(ids));
 */
export function holdsOf(statuses: ReadonlyMap<string, SnapshotLockStatus>): Map<string, LockHold> {
  const holds = new Map<string, LockHold>();
  for (const [id, status] of statuses) {
    const hold = lockHoldOf(status);
    if (hold) holds.set(id, hold);
  }
  return holds;
}

/**
 * Adds each lock hold to the holders retention plans with, so that the planner blocks a
 * locked point exactly as it blocks one an AMI uses: "held by locked (governance) until
 * 2027-11-23". The AMI holders come first.
 *
 * @example
 * planScheduleRetention({ ...input, holders: withLockHolds(holders, holds) });
 */
export function withLockHolds(
  holders: ReadonlyMap<string, readonly string[]>,
  holds: ReadonlyMap<string, LockHold>,
): Map<string, string[]> {
  const merged = new Map<string, string[]>([...holders].map(([id, by]) => [id, [...by]]));
  for (const [id, hold] of holds) {
    merged.set(id, [...(merged.get(id) ?? []), describeHold(hold)]);
  }
  return merged;
}

async function lockRecorded(
  snapshotId: string,
  request: { mode: LockRule['mode']; days?: number; expiresAt?: Date },
  reason: string,
  deps: LockStepDependencies,
  done: 'locked' | 'relocked',
): Promise<LockOutcome> {
  const record = {
    runId: deps.runId,
    job: deps.job,
    action: 'lock-snapshot',
    resourceId: snapshotId,
    reason,
    details: {
      mode: request.mode,
      days: request.days,
      expiresAt: request.expiresAt?.toISOString(),
    },
  };
  await deps.journal.record({ ...record, phase: 'before' }).catch((error: unknown) =>
    deps.logger.error('locking anyway: the lock could not be recorded first', {
      snapshotId,
      error: error instanceof Error ? error.message : String(error),
    }),
  );
  let outcome: LockOutcome;
  try {
    const answer = await deps.tiers.lockSnapshot({ snapshotId, ...request });
    outcome = { snapshotId, outcome: done, reason, expiresOn: answer.expiresOn?.toISOString() };
  } catch (error) {
    const failure = toAwsCallError('LockSnapshot', error);
    outcome = {
      snapshotId,
      outcome: 'failed',
      reason: `not locked: ${failure.message}; the point stays unlocked until a later run locks it`,
      error: { code: failure.code, message: failure.message },
    };
    deps.logger.error('snapshot lock failed', { snapshotId, error: failure.message });
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
      deps.logger.error('lock done but its record could not be written', {
        snapshotId,
        error: error instanceof Error ? error.message : String(error),
      }),
    );
  return outcome;
}

/** One instance's set as the backup run made it: what to lock. */
export interface MadeSet {
  readonly instanceId: string;
  readonly outcome: string;
  readonly snapshots?:
    | readonly {
        readonly snapshotId?: string | undefined;
        readonly volumeId?: string | undefined;
        readonly deviceName?: string | undefined;
      }[]
    | undefined;
}

/** What the backup run's lock step reports. */
export interface BackupLocks {
  readonly outcomes: LockOutcome[];
  readonly problems: string[];
}

/**
 * The backup run's lock step: once every set of the run is made and recorded, locks
 * each snapshot of an instance whose `snapkeeper:lock` tag (or the schedule's `lock`
 * option) locks this schedule. A dry run plans one line per snapshot it would lock.
 *
 * @example
 * const locks = await lockBackupSets(results, instances, schedule, dryRun, deps, lockDeps);
 */
export async function lockBackupSets(
  sets: readonly MadeSet[],
  instances: ReadonlyMap<string, { readonly tags: TagMap }>,
  schedule: { readonly name: string; readonly lock?: string | undefined },
  dryRun: boolean,
  context: {
    readonly keys: Pick<TagKeys, 'prefix'>;
    readonly knownSchedules: readonly string[];
    readonly allowComplianceLocks: boolean;
  },
  deps: LockStepDependencies,
): Promise<BackupLocks> {
  const locking: Promise<LockOutcome[]>[] = [];
  const problems = new Set<string>();
  // One pool for every set of the run: the bucket, not the sets, sets the pace.
  const paced = { ...deps, pool: deps.pool ?? stepPool() };
  const scheduleRule =
    schedule.lock === undefined
      ? undefined
      : readScheduleLock(schedule.name, schedule.lock, context.allowComplianceLocks);
  for (const set of sets) {
    if (set.outcome !== 'created' && set.outcome !== 'planned') continue;
    const { rule, problem } = resolveLockRule(
      instances.get(set.instanceId)?.tags ?? {},
      context.keys,
      schedule.name,
      context.knownSchedules,
      scheduleRule,
      context.allowComplianceLocks,
    );
    if (problem) problems.add(problem);
    if (!rule) continue;
    // A dry run has no snapshot ids yet: the plan names the volume the snapshot will be of.
    const ids = (set.snapshots ?? []).map(
      (s) => s.snapshotId ?? `(new) ${set.instanceId} ${s.deviceName ?? s.volumeId ?? ''}`.trim(),
    );
    locking.push(lockCreatedSnapshots(ids, rule, dryRun, paced));
  }
  const outcomes = (await Promise.all(locking)).flat();
  return { outcomes, problems: [...problems] };
}

/**
 * A report with its lock step: `locks` and `lockProblems` added, and a `succeeded` run
 * made `partial` when a lock failed or a lock tag could not be read.
 *
 * @example
 * return closeRun(withLocks(summarise(...), locks), ...);
 */
export function withLocks<R extends { readonly status: string }>(report: R, locks: BackupLocks): R {
  const failed = locks.problems.length > 0 || locks.outcomes.some((o) => o.outcome === 'failed');
  return {
    ...report,
    ...(failed && report.status === 'succeeded' ? { status: 'partial' } : {}),
    ...(locks.outcomes.length > 0 ? { locks: locks.outcomes } : {}),
    ...(locks.problems.length > 0 ? { lockProblems: locks.problems } : {}),
  };
}
