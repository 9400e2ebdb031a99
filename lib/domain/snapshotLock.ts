/**
 * Locked recovery points (EBS snapshot lock): which schedules lock their snapshots, for
 * how long and in which mode, and what a lock EC2 reports means for retention. Pure.
 *
 * Shapes follow the EC2 API reference: `LockSnapshot` (LockMode `governance` |
 * `compliance`, LockDuration 1-36500 days or ExpirationDate, CoolOffPeriod 1-72 hours,
 * compliance only) and `DescribeLockedSnapshots` (LockState `compliance-cooloff` |
 * `governance` | `compliance` | `expired` | `pending-compliance`, LockExpiresOn).
 */
import { InvalidScheduleDefinitionError, InvalidTagError } from './errors.ts';
import { isExpressionEntry, TAG_SCHEDULE } from './tagSchedules.ts';

/** The lock modes of `LockSnapshot`. */
export const LockMode = { governance: 'governance', compliance: 'compliance' } as const;
export type LockMode = (typeof LockMode)[keyof typeof LockMode];

/** The lock states `DescribeLockedSnapshots` reports. */
export const LOCK_STATES = [
  'compliance-cooloff',
  'governance',
  'compliance',
  'expired',
  'pending-compliance',
] as const;
export type LockState = (typeof LOCK_STATES)[number];

/** LockSnapshot's limits: LockDuration is 1 to 36,500 days. */
export const LOCK_DURATION_DAYS = { min: 1, max: 36_500 } as const;

/**
 * The hours a compliance lock stays in its cool-off period (it can still be removed with
 * UnlockSnapshot), so a mistaken compliance lock is not final at once. LockSnapshot
 * accepts 1-72.
 */
export const COMPLIANCE_COOL_OFF_HOURS = 24;

/**
 * The exact value of the stage option `custom.snapshotLock.allowCompliance`
 * (env SNAPSHOT_LOCK_ALLOW_COMPLIANCE) that permits compliance-mode locks. Anything else
 * (absent included) refuses them: a compliance lock cannot be removed by anyone, the
 * root user and AWS included, until it expires.
 */
export const ALLOW_COMPLIANCE_PHRASE = 'I-understand-compliance-locks-cannot-be-removed';

/** How one schedule's snapshots are locked. */
export interface LockRule {
  readonly days: number;
  readonly mode: LockMode;
}

/** Schedule name → its lock rule. */
export type LockRules = ReadonlyMap<string, LockRule>;

const DURATION = /^(\d{1,5})(d|w|y)$/;
const UNIT_DAYS = { d: 1, w: 7, y: 365 } as const;

/**
 * Parses a lock duration with its optional mode: `365d`, `52w`, `7y`, `30d:governance`,
 * `7y:compliance`. A year is 365 days. Returns the problem, naming the fix, on bad input.
 *
 * @example
 * parseLockRule('7y:compliance'); // { ok: true, rule: { days: 2555, mode: 'compliance' } }
 * parseLockRule('forever'); // { ok: false, problem: '...' }
 */
export function parseLockRule(
  text: string,
): { ok: true; rule: LockRule } | { ok: false; problem: string } {
  const [durationText = '', modeText, extra] = text.trim().toLowerCase().split(':');
  if (extra !== undefined) {
    return { ok: false, problem: `"${text}" has more than one ":"; write 365d or 365d:governance` };
  }
  const mode = modeText === undefined || modeText === '' ? 'governance' : modeText;
  if (mode !== 'governance' && mode !== 'compliance') {
    return {
      ok: false,
      problem: `mode "${modeText}" is not a lock mode; use governance (the default) or compliance`,
    };
  }
  const match = DURATION.exec(durationText);
  if (!match) {
    const shown = durationText.length > 40 ? `${durationText.slice(0, 40)}…` : durationText;
    return {
      ok: false,
      problem: `duration "${shown}" is not a lock duration; write a whole number of days, weeks or years: 30d, 12w, 7y`,
    };
  }
  const days = Number(match[1]) * UNIT_DAYS[match[2] as keyof typeof UNIT_DAYS];
  if (days < LOCK_DURATION_DAYS.min || days > LOCK_DURATION_DAYS.max) {
    return {
      ok: false,
      problem: `duration "${durationText}" is ${days} days; a snapshot lock lasts 1 to 36500 days`,
    };
  }
  return { ok: true, rule: { days, mode } };
}

/**
 * Reads the `snapkeeper:lock` tag of an instance: `monthly=365d,yearly=7y:compliance`.
 * The entry `tag=<duration>` locks the sets of the instance's own `cron(...)` and
 * `rate(...)` schedules (all of them, like `snapkeeper:retain=tag=N`); an entry naming an
 * expression itself is refused with that fix. Compliance mode is refused unless the
 * stage allows it.
 *
 * @throws {InvalidTagError} naming the tag, the entry at fault and the fix.
 * @example
 * readLockTag('snapkeeper:lock', 'monthly=365d', ['daily', 'monthly'], false).get('monthly');
 * // { days: 365, mode: 'governance' }
 */
export function readLockTag(
  key: string,
  value: string,
  knownSchedules: readonly string[],
  allowCompliance: boolean,
): Map<string, LockRule> {
  const rules = new Map<string, LockRule>();
  const entries = value.split(',').map((e) => e.trim());
  if (entries.every((e) => e === '')) {
    throw new InvalidTagError(key, value, 'is empty; write schedule=duration, e.g. monthly=365d');
  }
  for (const entry of entries) {
    const [name = '', duration, extra] = entry.split('=').map((p) => p.trim());
    if (duration === undefined || extra !== undefined || name === '') {
      throw new InvalidTagError(
        key,
        value,
        `entry "${entry}" is not schedule=duration; write e.g. monthly=365d,yearly=7y`,
      );
    }
    const schedule = name.toLowerCase();
    if (isExpressionEntry(name) || name.includes('(')) {
      const shown = name.length > 40 ? `${name.slice(0, 40)}…` : name;
      throw new InvalidTagError(
        key,
        value,
        `names the expression "${shown}"; the sets of an instance's own cron(...) and rate(...) schedules are locked together as ${TAG_SCHEDULE}=<duration>, like ${key.replace(/lock$/, 'retain')}=${TAG_SCHEDULE}=N: write e.g. ${TAG_SCHEDULE}=30d`,
      );
    }
    if (schedule !== TAG_SCHEDULE && !knownSchedules.includes(schedule)) {
      throw new InvalidTagError(
        key,
        value,
        `names schedule "${name}", which is not defined; defined: ${knownSchedules.join(', ')} (and ${TAG_SCHEDULE}, for the instance's own cron(...) and rate(...) schedules)`,
      );
    }
    if (rules.has(schedule)) {
      throw new InvalidTagError(key, value, `names schedule "${schedule}" twice`);
    }
    const parsed = parseLockRule(duration);
    if (!parsed.ok) throw new InvalidTagError(key, value, `entry "${entry}": ${parsed.problem}`);
    if (parsed.rule.mode === 'compliance' && !allowCompliance) {
      throw new InvalidTagError(key, value, complianceRefusal(`entry "${entry}"`));
    }
    rules.set(schedule, parsed.rule);
  }
  return rules;
}

/**
 * Reads a schedule definition's `lock` option (`365d`, `7y:compliance`).
 *
 * @throws {InvalidScheduleDefinitionError} naming the schedule and the fix.
 * @example
 * readScheduleLock('monthly', '365d', false); // { days: 365, mode: 'governance' }
 */
export function readScheduleLock(
  schedule: string,
  option: string,
  allowCompliance: boolean,
): LockRule {
  const parsed = parseLockRule(option);
  if (!parsed.ok) {
    throw new InvalidScheduleDefinitionError(`schedule "${schedule}": lock ${parsed.problem}`);
  }
  if (parsed.rule.mode === 'compliance' && !allowCompliance) {
    throw new InvalidScheduleDefinitionError(
      `schedule "${schedule}": lock ${complianceRefusal(`"${option}"`)}`,
    );
  }
  return parsed.rule;
}

function complianceRefusal(what: string): string {
  return `${what} asks for a compliance lock, which nobody (root and AWS included) can remove before it expires; set the stage option custom.snapshotLock.allowCompliance to ${ALLOW_COMPLIANCE_PHRASE} to allow it, or use governance`;
}

/**
 * Whether the stage option allows compliance locks: only the exact phrase does.
 *
 * @example
 * complianceAllowed(ALLOW_COMPLIANCE_PHRASE); // true
 * complianceAllowed('true'); // false
 */
export function complianceAllowed(option: string | undefined): boolean {
  return option?.trim() === ALLOW_COMPLIANCE_PHRASE;
}

/** A snapshot's lock as `DescribeLockedSnapshots` reports it. */
export interface SnapshotLockStatus {
  readonly snapshotId: string;
  readonly state: LockState;
  /** LockExpiresOn; absent while a pending snapshot's lock has not started. */
  readonly expiresOn?: Date | undefined;
}

/** A lock to put on one snapshot: for `days` from now (or completion), or until `expiresAt`. */
export interface LockRequest {
  readonly snapshotId: string;
  readonly mode: LockMode;
  readonly days?: number | undefined;
  readonly expiresAt?: Date | undefined;
}

/** What `LockSnapshot` answered. */
export interface LockResult {
  readonly snapshotId: string;
  readonly state: LockState;
  readonly expiresOn?: Date | undefined;
}

/** What locks a snapshot for retention: its mode and the end of the hold. */
export interface LockHold {
  readonly mode: LockMode;
  /** Absent: pending-compliance, whose duration starts when the snapshot completes. */
  readonly until?: Date | undefined;
}

/**
 * The hold a reported lock puts on a snapshot at `now`, or undefined when it holds
 * nothing (an expired lock). A lock whose state EC2 says is active holds even when its
 * expiry time has just passed: EC2's state decides, never our clock.
 *
 * @example
 * lockHoldOf({ snapshotId: 'snap-1', state: 'governance', expiresOn: d }); // { mode: 'governance', until: d }
 */
export function lockHoldOf(status: SnapshotLockStatus): LockHold | undefined {
  switch (status.state) {
    case 'expired':
      return undefined;
    case 'governance':
      return { mode: 'governance', until: status.expiresOn };
    default:
      return { mode: 'compliance', until: status.expiresOn };
  }
}

/**
 * How a hold reads in a plan: `locked (governance) until 2027-11-23`.
 *
 * @example
 * describeHold({ mode: 'governance', until: new Date('2027-11-23T03:00:00Z') });
 */
export function describeHold(hold: LockHold): string {
  const until = hold.until
    ? `until ${hold.until.toISOString().slice(0, 10)}`
    : 'until its duration runs out (it starts when the snapshot completes)';
  return `locked (${hold.mode}) ${until}`;
}

/** What a later run does about one snapshot that should be locked. */
export type LockCheck =
  | { readonly action: 'ok'; readonly hold: LockHold }
  | { readonly action: 'lock'; readonly expiresAt: Date; readonly reason: string }
  | { readonly action: 'none'; readonly reason: string };

const DAY_MS = 86_400_000;

/**
 * Re-checks a snapshot that its schedule locks: a lock EC2 reports is fine; a missing
 * one is re-applied until the time the first lock would have ended (creation plus the
 * rule's days), unless that time is already past (or within the hour: nothing to lock).
 *
 * @example
 * checkLock({ days: 365, mode: 'governance' }, created, undefined, now);
 * // { action: 'lock', expiresAt: created + 365 days, reason: 'no lock reported ...' }
 */
export function checkLock(
  rule: LockRule,
  createdAt: Date,
  status: SnapshotLockStatus | undefined,
  now: Date,
): LockCheck {
  const hold = status ? lockHoldOf(status) : undefined;
  if (hold) return { action: 'ok', hold };
  const expiresAt = new Date(createdAt.getTime() + rule.days * DAY_MS);
  if (expiresAt.getTime() - now.getTime() < 3_600_000) {
    return { action: 'none', reason: `its ${rule.days}-day lock would have ended already` };
  }
  return {
    action: 'lock',
    expiresAt,
    reason: status
      ? `its lock is ${status.state} before ${expiresAt.toISOString().slice(0, 10)}`
      : 'no lock reported by DescribeLockedSnapshots',
  };
}

/**
 * The lock rule a snapshot of `schedule` gets: the instance's `snapkeeper:lock` tag
 * entry when it names the schedule, else the schedule's own `lock` option.
 *
 * @example
 * lockRuleFor('monthly', tagRules, scheduleRule);
 */
export function lockRuleFor(
  schedule: string,
  tagRules: LockRules | undefined,
  scheduleRule: LockRule | undefined,
): LockRule | undefined {
  // A tag schedule's sets carry its canonical expression as their schedule: `tag=` covers them all.
  return tagRules?.get(isExpressionEntry(schedule) ? TAG_SCHEDULE : schedule) ?? scheduleRule;
}
