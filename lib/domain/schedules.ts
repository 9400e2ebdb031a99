import awsCronParser from 'aws-cron-parser';
import { scheduleKeepDays, validateArchiveAfterDays } from './archiveTier.ts';
import { parseConsistency } from './consistency.ts';
import {
  InvalidEventError,
  InvalidScheduleDefinitionError,
  UnknownScheduleError,
} from './errors.ts';
import { parseRestoreTestOptions, type RestoreTestOptions } from './restoreTestPlan.ts';
import * as z from './schema.ts';
import { readScheduleLock } from './snapshotLock.ts';

/**
 * A named backup schedule, defined once in the deployment (serverless.yml).
 *
 * The same definition drives the EventBridge Scheduler schedule (cron + time zone)
 * and the defaults the jobs apply when an instance sets no override.
 */
export interface ScheduleDefinition {
  /** Lower-case name used in tags and events, e.g. `daily`. */
  readonly name: string;
  /** AWS cron expression, e.g. `cron(0 3 * * ? *)`. */
  readonly cron: string;
  /** IANA time zone the cron is evaluated in, e.g. `UTC` or `Europe/Paris`. */
  readonly timezone: string;
  /** Default number of completed snapshots kept per volume. */
  readonly retain: number;
  /** Default minimum age in days before a snapshot beyond the count may go. */
  readonly retainDays?: number | undefined;
  /** Default tiers, e.g. `daily=7,weekly=4`. */
  readonly retainTiers?: string | undefined;
  /** Days after which even the last snapshot of an orphaned volume may go; off when absent. */
  readonly expireOrphansAfterDays?: number | undefined;
  /** Regions the schedule's backups are copied to when an instance names none (at most 3). */
  readonly copyTo?: readonly string[] | undefined;
  /** Default number of AMIs kept per instance; defaults to `retain`. */
  readonly amiRetain?: number | undefined;
  /** When retention runs for this schedule; default: an hour after the backup (see serverless.yml). */
  readonly retentionCron?: string | undefined;
  /** Default consistency of the schedule's sets (`fsfreeze`, `ssm:<doc>[:<v>]`, ...); an instance's tag wins. */
  readonly consistency?: string | undefined;
  /** Scheduled restore tests of this schedule's sets (see `restoreTestPlan.ts`); off when absent. */
  readonly restoreTests?: RestoreTestOptions | undefined;
  /** Locks each snapshot after creation: `365d`, `7y:compliance` (see snapshotLock.ts). */
  readonly lock?: string | undefined;
  /** Moves points older than this many days to the archive tier (see archiveTier.ts). */
  readonly archiveAfterDays?: number | undefined;
  /** A `rate(...)` tag expression: fires at every multiple of this since 1970-01-01T00:00Z (see tagSchedules.ts). */
  readonly everyMs?: number | undefined;
  /** True for a schedule written in an instance's `snapkeeper:backup` tag; `snapkeeper:retain=tag=N` counts for it. */
  readonly fromTag?: boolean | undefined;
}

/** Every schedule of a deployment, plus the one that `snapkeeper:backup=true` means. */
export interface ScheduleCatalog {
  readonly schedules: ReadonlyMap<string, ScheduleDefinition>;
  readonly defaultSchedule: string;
  /** The limits of schedules written in the `snapkeeper:backup` tag; the defaults when absent. */
  readonly tagSchedules?: TagScheduleLimits | undefined;
}

/** The limits every expression written in a `snapkeeper:backup` tag is held to (see tagSchedules.ts). */
export interface TagScheduleLimits {
  /** The shortest interval between two fires; default one hour (TAG_SCHEDULE_MIN_INTERVAL_MINUTES). */
  readonly minIntervalMs: number;
  /** How many distinct expressions a deployment serves; default 20 (TAG_SCHEDULE_MAX_EXPRESSIONS). */
  readonly maxExpressions: number;
  /** Sets kept per volume for an expression when `snapkeeper:retain` names no count; default 7 (TAG_SCHEDULE_RETAIN). */
  readonly retain: number;
}

/** The schedules a deployment ships with, like AWS Backup's default plans. */
export const DEFAULT_SCHEDULES: readonly ScheduleDefinition[] = [
  { name: 'daily', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 7 },
  { name: 'weekly', cron: 'cron(0 4 ? * SUN *)', timezone: 'UTC', retain: 4 },
  { name: 'monthly', cron: 'cron(0 5 1 * ? *)', timezone: 'UTC', retain: 12 },
];

/** Names that cannot be used for a schedule because they mean something else. */
export const RESERVED_SCHEDULE_NAMES: readonly string[] = ['true', 'false', 'manual', 'all', 'tag'];

const SCHEDULE_NAME = /^[a-z][a-z0-9-]{0,31}$/;

const whole = (min: number, max: number) =>
  z.number().check(z.int(), z.minimum(min), z.maximum(max));

const scheduleSchema = z.strictObject({
  name: z.pipe(
    z.pipe(
      z.string(),
      z.transform((s) => s.trim().toLowerCase()),
    ),
    z.string().check(
      z.regex(
        SCHEDULE_NAME,
        'must be 1-32 lower-case letters, digits or "-", starting with a letter',
      ),
      z.refine(
        (n) => n !== 'tag',
        'is reserved: "tag" is the dispatcher of the schedules written in the snapkeeper:backup tag ({"schedule": "tag"}); give this schedule another name',
      ),
      z.refine((n) => !RESERVED_SCHEDULE_NAMES.includes(n), 'is a reserved word'),
    ),
  ),
  cron: z.string().check(z.minLength(1)),
  timezone: z._default(z.string(), 'UTC'),
  retain: whole(1, 1000),
  retainDays: z.optional(whole(0, 36500)),
  retainTiers: z.optional(z.string()),
  expireOrphansAfterDays: z.optional(whole(1, 36500)),
  retentionCron: z.optional(z.string().check(z.minLength(1))),
  amiRetain: z.optional(whole(1, 1000)),
  copyTo: z.optional(z.array(z.string()).check(z.maxLength(3))),
  consistency: z.optional(z.string()),
  restoreTests: z.optional(z.unknown()),
  lock: z.optional(z.string().check(z.minLength(1))),
  archiveAfterDays: z.optional(whole(1, 36500)),
});

/**
 * Validates a list of schedule definitions and the default schedule name.
 *
 * @throws {InvalidScheduleDefinitionError} naming the schedule and field at fault.
 * @example
 * const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
 * catalog.schedules.get('weekly')?.retain; // 4
 */
export function parseScheduleCatalog(
  input: unknown,
  defaultSchedule = 'daily',
  options: { readonly allowComplianceLocks?: boolean } = {},
): ScheduleCatalog {
  const parsed = z.array(scheduleSchema).check(z.minLength(1)).safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : 'schedules';
    throw new InvalidScheduleDefinitionError(
      `schedule definition ${where}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const schedules = new Map<string, ScheduleDefinition>();
  for (const definition of parsed.data) {
    if (schedules.has(definition.name)) {
      throw new InvalidScheduleDefinitionError(`schedule "${definition.name}" is defined twice`);
    }
    validateCron(definition.cron, definition.name);
    if (definition.retentionCron) validateCron(definition.retentionCron, definition.name);
    validateTimeZone(definition.timezone, definition.name);
    if (definition.consistency !== undefined) {
      try {
        parseConsistency(definition.consistency, `schedule "${definition.name}" consistency`);
      } catch (error) {
        throw new InvalidScheduleDefinitionError((error as Error).message, { cause: error });
      }
    }
    const restoreTests =
      definition.restoreTests === undefined
        ? undefined
        : parseRestoreTestOptions(definition.restoreTests, definition.name);
    if (restoreTests?.cron) validateRestoreTestCron(restoreTests.cron, definition.name);
    const schedule: ScheduleDefinition = stripUndefined({ ...definition, restoreTests });
    validateTiering(schedule, options.allowComplianceLocks === true);
    schedules.set(definition.name, schedule);
  }
  const defaultName = defaultSchedule.trim().toLowerCase();
  if (!schedules.has(defaultName)) {
    throw new InvalidScheduleDefinitionError(
      `default schedule "${defaultSchedule}" is not defined; defined: ${[...schedules.keys()].join(', ')}`,
    );
  }
  return { schedules, defaultSchedule: defaultName };
}

/**
 * Looks a schedule up by name, case-insensitively.
 *
 * @throws {UnknownScheduleError} listing the known schedules.
 * @example
 * resolveSchedule(catalog, 'Daily').name; // 'daily'
 */
export function resolveSchedule(catalog: ScheduleCatalog, name: string): ScheduleDefinition {
  const found = catalog.schedules.get(name.trim().toLowerCase());
  if (!found) throw new UnknownScheduleError(name, [...catalog.schedules.keys()]);
  return found;
}

/**
 * The latest time at or before `at` when the schedule fires: the slot a late or
 * constant-input invocation serves.
 *
 * @example
 * previousFireTime(daily, new Date('2026-11-23T10:00:00Z')); // 2026-11-23T03:00:00Z
 */
export function previousFireTime(schedule: ScheduleDefinition, at: Date): Date {
  if (schedule.everyMs)
    return new Date(Math.floor(at.getTime() / schedule.everyMs) * schedule.everyMs);
  const cron = parseCronBody(cronBody(schedule.cron));
  // Fires fall on whole minutes and the parser's prev() is exclusive, so asking from
  // the start of the next minute includes `at`'s own minute and nothing later.
  let from = floorToMinute(toWallClock(at, schedule.timezone)).getTime() + 60_000;
  for (let attempt = 0; attempt < 4; attempt += 1) {
    const wall = awsCronParser.prev(cron, new Date(from));
    if (!wall) break;
    const instant = fromWallClock(wall, schedule.timezone);
    if (instant.getTime() <= at.getTime()) return instant;
    // A wall time repeated when summer time ends: take its earlier instant if that fits.
    const earlier = new Date(instant.getTime() - 3_600_000);
    if (
      toWallClock(earlier, schedule.timezone).getTime() === wall.getTime() &&
      earlier.getTime() <= at.getTime()
    ) {
      return earlier;
    }
    from = wall.getTime();
  }
  throw new InvalidScheduleDefinitionError(
    `schedule "${schedule.name}" never fires before ${at.toISOString()}`,
  );
}

/**
 * The first time strictly after `after` when the schedule fires.
 *
 * @example
 * nextFireTime(daily, new Date('2026-11-23T10:00:00Z')); // 2026-11-24T03:00:00Z
 */
export function nextFireTime(schedule: ScheduleDefinition, after: Date): Date {
  if (schedule.everyMs) {
    return new Date((Math.floor(after.getTime() / schedule.everyMs) + 1) * schedule.everyMs);
  }
  const cron = parseCronBody(cronBody(schedule.cron));
  let from = floorToMinute(toWallClock(after, schedule.timezone)).getTime();
  for (let attempt = 0; attempt < 4; attempt += 1) {
    const wall = awsCronParser.next(cron, new Date(from));
    if (!wall) break;
    const instant = fromWallClock(wall, schedule.timezone);
    if (instant.getTime() > after.getTime()) return instant;
    // A wall time repeated when summer time ends: its later instant may still be ahead.
    const later = new Date(instant.getTime() + 3_600_000);
    if (
      toWallClock(later, schedule.timezone).getTime() === wall.getTime() &&
      later.getTime() > after.getTime()
    ) {
      return later;
    }
    from = wall.getTime();
  }
  throw new InvalidScheduleDefinitionError(
    `schedule "${schedule.name}" never fires after ${after.toISOString()}`,
  );
}

function floorToMinute(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 60_000) * 60_000);
}

/**
 * The schedule's interval around `at` in milliseconds (next fire minus previous fire).
 * Used to judge whether backups are overdue.
 *
 * @example
 * scheduleIntervalMs(daily, new Date('2026-11-23T10:00:00Z')); // 86_400_000
 */
export function scheduleIntervalMs(schedule: ScheduleDefinition, at: Date): number {
  const previous = previousFireTime(schedule, at);
  return nextFireTime(schedule, previous).getTime() - previous.getTime();
}

function cronBody(expression: string): string {
  const match = /^cron\((.*)\)$/.exec(expression.trim());
  if (!match?.[1]) {
    throw new InvalidScheduleDefinitionError(
      `"${expression}" is not an AWS cron expression; write it as cron(minutes hours day-of-month month day-of-week year)`,
    );
  }
  return match[1].trim();
}

function parseCronBody(body: string): ReturnType<typeof awsCronParser.parse> {
  return awsCronParser.parse(body);
}

function validateCron(expression: string, name: string): void {
  const body = cronBody(expression);
  const fields = body.split(/\s+/);
  if (fields.length !== 6) {
    throw new InvalidScheduleDefinitionError(
      `schedule "${name}": cron "${body}" has ${fields.length} fields; AWS cron has 6 (minutes hours day-of-month month day-of-week year)`,
    );
  }
  const dayOfMonth = fields[2];
  const dayOfWeek = fields[4];
  if ((dayOfMonth === '?') === (dayOfWeek === '?')) {
    throw new InvalidScheduleDefinitionError(
      `schedule "${name}": cron "${body}" must have "?" in exactly one of day-of-month and day-of-week`,
    );
  }
  try {
    const parsed = parseCronBody(body);
    if (!awsCronParser.next(parsed, new Date(Date.UTC(2000, 0, 1)))) throw new Error('never fires');
  } catch (error) {
    throw new InvalidScheduleDefinitionError(
      `schedule "${name}": cron "${body}" is not valid (${(error as Error).message})`,
      { cause: error },
    );
  }
}

function validateRestoreTestCron(expression: string, name: string): void {
  try {
    validateCron(expression, name);
  } catch (error) {
    const message = (error as Error).message.replace(`schedule "${name}": `, '');
    throw new InvalidScheduleDefinitionError(`schedule "${name}": restoreTests.cron: ${message}`, {
      cause: error,
    });
  }
}

/** The lock and archive options of a definition, held to their limits. */
function validateTiering(definition: ScheduleDefinition, allowComplianceLocks: boolean): void {
  if (definition.lock !== undefined) {
    readScheduleLock(definition.name, definition.lock, allowComplianceLocks);
  }
  if (definition.archiveAfterDays !== undefined) {
    // The shortest interval of the year (February, for a monthly): the estimate errs short.
    const intervalDays =
      scheduleIntervalMs(definition, new Date(Date.UTC(2026, 1, 15))) / 86_400_000;
    validateArchiveAfterDays(
      definition.name,
      definition.archiveAfterDays,
      scheduleKeepDays(definition, intervalDays),
    );
  }
}

function validateTimeZone(timezone: string, name: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch (error) {
    throw new InvalidScheduleDefinitionError(
      `schedule "${name}": "${timezone}" is not an IANA time zone`,
      { cause: error },
    );
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function wallFormatter(timezone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timezone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timezone, formatter);
  }
  return formatter;
}

/**
 * The wall-clock time in `timezone` at `instant`, as a Date whose UTC fields hold
 * that wall-clock time. Lets a UTC-only cron engine evaluate a zoned cron.
 */
export function toWallClock(instant: Date, timezone: string): Date {
  if (timezone === 'UTC') return new Date(instant.getTime());
  const parts: Record<string, number> = {};
  for (const part of wallFormatter(timezone).formatToParts(instant)) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  return new Date(
    Date.UTC(
      parts.year ?? 1970,
      (parts.month ?? 1) - 1,
      parts.day ?? 1,
      parts.hour ?? 0,
      parts.minute ?? 0,
      parts.second ?? 0,
      instant.getUTCMilliseconds(),
    ),
  );
}

/** The inverse of {@link toWallClock}: the instant at which `timezone` shows `wall`. */
export function fromWallClock(wall: Date, timezone: string): Date {
  if (timezone === 'UTC') return new Date(wall.getTime());
  let guess = wall.getTime();
  for (let i = 0; i < 3; i += 1) {
    const offset = toWallClock(new Date(guess), timezone).getTime() - guess;
    const next = wall.getTime() - offset;
    if (next === guess) break;
    guess = next;
  }
  return new Date(guess);
}

function stripUndefined(
  definition: Omit<z.infer<typeof scheduleSchema>, 'restoreTests'> & {
    restoreTests?: RestoreTestOptions | undefined;
  },
): ScheduleDefinition {
  return Object.fromEntries(
    Object.entries(definition).filter(([, v]) => v !== undefined),
  ) as unknown as ScheduleDefinition;
}

/**
 * The slot a run serves, as the `snapkeeper:slot` tag writes it (ISO 8601 UTC to the
 * second): the scheduled time the event carried, else the schedule's latest fire time.
 *
 * @example
 * slotOf(daily, undefined, new Date('2026-11-23T10:00:00Z')); // '2026-11-23T03:00:00Z'
 */
export function slotOf(
  schedule: ScheduleDefinition,
  scheduledTime: Date | undefined,
  now: Date,
): string {
  const time = scheduledTime ?? previousFireTime(schedule, now);
  return `${time.toISOString().slice(0, 19)}Z`;
}

/**
 * How far ahead of this function's clock a delivered `scheduledTime` may be. Scheduler
 * and Lambda clocks are synchronised far closer than this; a time up to this much before
 * a fire time also belongs to that fire time.
 */
export const SCHEDULED_TIME_SKEW_MS = 60_000;

/** The years AWS cron expressions cover: a scheduled time outside them is no slot. */
const CRON_YEARS = { first: 1970, last: 2199 } as const;

/** How a delivered `scheduledTime` is held to its schedule (see {@link deliveredSlot}). */
export interface DeliveryWindow {
  /** How far ahead of the clock a scheduled time may be; default {@link SCHEDULED_TIME_SKEW_MS}. */
  readonly skewMs?: number | undefined;
  /**
   * How late after its slot a delivery is still served. The window is never shorter
   * than one interval of the schedule (until its next fire time), so a delayed delivery
   * and Lambda's retries still count; default 0 (exactly one interval).
   */
  readonly catchUpMs?: number | undefined;
}

/**
 * The slot a delivery serves, held to the schedule:
 * - no `scheduledTime` (a classic rule's constant input): the latest fire time;
 * - a `scheduledTime` more than the skew ahead of the clock is rejected (a delivery
 *   for a later slot never claims it early);
 * - any other time maps to the fire time it belongs to: the latest fire time at or
 *   before it (a time up to the skew before a fire time belongs to that one), so
 *   03:05 for a 03:00 daily is the 03:00 slot, never a new one;
 * - a slot whose catch-up window has passed (its next fire time, or `catchUpMs` after
 *   it if later) is rejected; years outside 1970-2199 are rejected.
 *
 * @throws {InvalidEventError} naming `scheduledTime`, the limit and the clock.
 * @example
 * deliveredSlot(daily, new Date('2026-11-23T03:05:00Z'), new Date('2026-11-23T03:06:00Z'));
 * // '2026-11-23T03:00:00Z'
 */
export function deliveredSlot(
  schedule: ScheduleDefinition,
  scheduledTime: Date | undefined,
  now: Date,
  window: DeliveryWindow = {},
): string {
  if (scheduledTime === undefined) return formatSlot(previousFireTime(schedule, now));
  const skewMs = window.skewMs ?? SCHEDULED_TIME_SKEW_MS;
  const shown = formatSlot(scheduledTime);
  const clock = `the clock reads ${formatSlot(now)}`;
  const year = scheduledTime.getUTCFullYear();
  if (Number.isNaN(scheduledTime.getTime()) || year < CRON_YEARS.first || year > CRON_YEARS.last) {
    throw new InvalidEventError(
      `field "scheduledTime": ${shown} is outside the years a schedule can fire (${CRON_YEARS.first}-${CRON_YEARS.last}); send the slot's own time, as Scheduler's <aws.scheduler.scheduled-time> does`,
    );
  }
  const ahead = scheduledTime.getTime() - now.getTime();
  if (ahead > skewMs) {
    throw new InvalidEventError(
      `field "scheduledTime": ${shown} is ${describeDuration(ahead)} ahead of the clock (${clock}); a slot is served when it comes, at most ${describeDuration(skewMs)} early`,
    );
  }
  let slot: Date;
  try {
    slot = previousFireTime(schedule, new Date(scheduledTime.getTime() + skewMs));
  } catch (error) {
    if (!(error instanceof InvalidScheduleDefinitionError)) throw error;
    throw new InvalidEventError(
      `field "scheduledTime": schedule "${schedule.name}" never fires at or before ${shown}`,
      { cause: error },
    );
  }
  if (slot.getTime() - now.getTime() > skewMs) {
    throw new InvalidEventError(
      `field "scheduledTime": ${shown} belongs to the slot ${formatSlot(slot)}, which has not come yet (${clock})`,
    );
  }
  let nextFire: number;
  try {
    nextFire = nextFireTime(schedule, slot).getTime();
  } catch {
    // The schedule's last fire time (a cron with an end year): a day to catch up.
    nextFire = slot.getTime() + 86_400_000;
  }
  const until = Math.max(nextFire, slot.getTime() + (window.catchUpMs ?? 0));
  if (now.getTime() > until) {
    throw new InvalidEventError(
      `field "scheduledTime": ${shown} (slot ${formatSlot(slot)}) is older than its catch-up window, which closed at ${formatSlot(new Date(until))} (${clock}); a later slot of "${schedule.name}" has served it`,
    );
  }
  return formatSlot(slot);
}

/**
 * The timetable a job of a schedule runs on: the schedule's cron for backups and AMIs,
 * and for retention its `retentionCron`, or an hour after the backup, as the packaged
 * retention schedules are made (scripts/serverlessVariables.cjs); restore tests run on
 * `restoreTests.cron`, else with retention.
 *
 * @example
 * jobTimetable(daily, 'retention').cron; // 'cron(0 4 * * ? *)'
 */
export function jobTimetable(
  schedule: ScheduleDefinition,
  job: 'backup' | 'amis' | 'retention' | 'restore-test',
): ScheduleDefinition {
  if (job === 'restore-test') {
    const cron = schedule.restoreTests?.cron;
    return cron ? { ...schedule, cron } : jobTimetable(schedule, 'retention');
  }
  if (job !== 'retention') return schedule;
  if (schedule.retentionCron) return { ...schedule, cron: schedule.retentionCron };
  const fields = /^cron\((.*)\)$/.exec(schedule.cron.trim())?.[1]?.trim().split(/\s+/) ?? [];
  const [minute, hour] = fields;
  if (fields.length === 6 && minute && hour && /^\d+$/.test(minute) && /^\d+$/.test(hour)) {
    if (Number(hour) < 23) {
      fields[1] = String(Number(hour) + 1);
      return { ...schedule, cron: `cron(${fields.join(' ')})` };
    }
  }
  return schedule;
}

/** A slot as the `snapkeeper:slot` tag writes it: ISO 8601 UTC to the second. */
function formatSlot(time: Date): string {
  return Number.isNaN(time.getTime()) ? String(time) : `${time.toISOString().slice(0, 19)}Z`;
}

/** A duration in the largest whole unit that keeps it readable: 45 s, 5 min, 21 h, 3 days. */
function describeDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.round(hours / 24)} days`;
}

/** The schedule name console backups of named instances carry. */
export const MANUAL_SCHEDULE = 'manual';

/**
 * The pseudo-schedule of console backups of named instances: kept `retainDays`
 * (MANUAL_RETAIN_DAYS), never below one per volume.
 *
 * @example
 * manualSchedule(30).retainDays; // 30
 */
export function manualSchedule(retainDays: number): ScheduleDefinition {
  return {
    name: MANUAL_SCHEDULE,
    cron: 'cron(0 0 * * ? *)',
    timezone: 'UTC',
    retain: 1,
    retainDays,
  };
}

/**
 * A schedule by name, `manual` included.
 *
 * @throws {UnknownScheduleError}
 */
export function resolveJobSchedule(
  catalog: ScheduleCatalog,
  name: string,
  manualRetainDays: number,
): ScheduleDefinition {
  return name.trim().toLowerCase() === MANUAL_SCHEDULE
    ? manualSchedule(manualRetainDays)
    : resolveSchedule(catalog, name);
}
