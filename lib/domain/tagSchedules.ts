/**
 * Schedules written in an instance's own `snapkeeper:backup` tag: `cron(...)` and
 * `rate(...)` expressions in AWS's syntax (EventBridge Scheduler), a cron optionally
 * followed by `@<IANA time zone>`. Pure: parsing, the limits, and the slot a dispatch
 * serves; the dispatcher (`lib/jobs/tagScheduleDispatch.ts`) reads and acts.
 *
 * - A list is split at the commas outside parentheses, so `daily, cron(0 3,15 * * ? *)`
 *   is two entries: the named schedule `daily` and the cron with its own comma.
 * - The expression is written back, in its canonical form ({@link TagExpression.expression}),
 *   as the `snapkeeper:schedule` tag of the sets it makes: each expression is its own
 *   lineage for retention.
 * - A `rate(n unit)` fires at every multiple of its interval since 1970-01-01T00:00Z
 *   (`rate(6 hours)`: 00:00, 06:00, 12:00 and 18:00 UTC); it takes no time zone.
 */
import awsCronParser from 'aws-cron-parser';
import { formatNumber, partOf, quoteShort, tagMessage } from './messages.ts';
import {
  nextFireTime,
  previousFireTime,
  type ScheduleCatalog,
  type ScheduleDefinition,
  type TagScheduleLimits,
  toWallClock,
} from './schedules.ts';
import type { TagProblem } from './tagPolicy.ts';

/** The reserved schedule name of the dispatcher: `{"schedule": "tag"}`; also the `snapkeeper:retain` key of tag expressions. */
export const TAG_SCHEDULE = 'tag' as const;

export type { TagScheduleLimits } from './schedules.ts';

/** The defaults of {@link TagScheduleLimits}. */
export const DEFAULT_TAG_SCHEDULE_LIMITS: TagScheduleLimits = {
  minIntervalMs: 3_600_000,
  maxExpressions: 20,
  retain: 7,
};

/**
 * The time a policy read (which has no clock) checks expressions from: the dispatcher
 * checks again with its own clock, and refuses a cron whose years are all past.
 */
export const POLICY_READ_REFERENCE = new Date(Date.UTC(2000, 0, 1));

/**
 * The limits a catalog carries, or the defaults.
 *
 * @example
 * tagLimitsOf(catalog).minIntervalMs; // 3_600_000
 */
export function tagLimitsOf(catalog: Pick<ScheduleCatalog, 'tagSchedules'>): TagScheduleLimits {
  return catalog.tagSchedules ?? DEFAULT_TAG_SCHEDULE_LIMITS;
}

/** A valid tag expression. */
export interface TagExpression {
  /** Canonical text: `cron(0 3 * * ? *)@Europe/Paris`, `rate(6 hours)`; the `snapkeeper:schedule` value of its sets. */
  readonly expression: string;
  readonly kind: 'cron' | 'rate';
  /** `cron(...)` without the time zone; for a rate, absent. */
  readonly cron?: string | undefined;
  /** IANA time zone the cron is read in; `UTC` for a rate. */
  readonly timezone: string;
  /** A rate's interval in ms. */
  readonly everyMs?: number | undefined;
}

const RATE = /^rate\(\s*(\d+)\s+([a-z]+)\s*\)$/i;
const CRON = /^cron\((.*)\)(?:@(.*))?$/i;
const RATE_UNITS: Readonly<Record<string, number>> = {
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
};
/** How many fires are looked at to find a cron's shortest interval (and a year at most). */
const INTERVAL_SAMPLE_FIRES = 600;

/**
 * True when a list entry is an expression rather than a schedule name.
 *
 * @example
 * isExpressionEntry('rate(6 hours)'); // true
 * isExpressionEntry('daily'); // false
 */
export function isExpressionEntry(entry: string): boolean {
  return /^(cron|rate)\s*\(/i.test(entry.trim());
}

/**
 * Splits a `snapkeeper:backup` value at the commas outside parentheses, trimming each
 * entry. A parenthesis left open keeps the rest as one entry (then reported as invalid).
 *
 * @example
 * splitScheduleList('daily, cron(0 3,15 * * ? *)@Europe/Paris,rate(6 hours)');
 * // ['daily', 'cron(0 3,15 * * ? *)@Europe/Paris', 'rate(6 hours)']
 */
export function splitScheduleList(value: string): string[] {
  const entries: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of value) {
    if (char === '(') depth += 1;
    if (char === ')') depth = Math.max(0, depth - 1);
    if (char === ',' && depth === 0) {
      entries.push(current.trim());
      current = '';
      continue;
    }
    current += char;
  }
  entries.push(current.trim());
  return entries;
}

/**
 * Parses one expression and holds it to the limits. `now` is when it is read: a cron
 * whose years are all past never fires, and is refused.
 *
 * @returns the expression, or the reason it is refused (with the fix), for a tag message.
 * @example
 * parseTagExpression('rate(6 hours)', DEFAULT_TAG_SCHEDULE_LIMITS, now);
 * // { expression: 'rate(6 hours)', kind: 'rate', timezone: 'UTC', everyMs: 21_600_000 }
 * parseTagExpression('rate(5 minutes)', DEFAULT_TAG_SCHEDULE_LIMITS, now);
 * // 'fires every 5 min, more often than the minimum interval of 60 min; ...'
 */
export function parseTagExpression(
  text: string,
  limits: Pick<TagScheduleLimits, 'minIntervalMs'>,
  now: Date,
): TagExpression | string {
  const trimmed = text.trim();
  const parsed = /^rate/i.test(trimmed) ? parseRate(trimmed) : parseCron(trimmed, now);
  if (typeof parsed === 'string') return parsed;
  const interval = shortestIntervalMs(parsed, now);
  if (interval < limits.minIntervalMs) {
    return `fires every ${describeMs(interval)}, more often than the minimum interval of ${describeMs(limits.minIntervalMs)} (TAG_SCHEDULE_MIN_INTERVAL_MINUTES); write a longer interval, such as rate(${Math.max(1, Math.ceil(limits.minIntervalMs / 3_600_000))} hour${limits.minIntervalMs > 3_600_000 ? 's' : ''})`;
  }
  return parsed;
}

function parseRate(text: string): TagExpression | string {
  if (text.includes('@')) {
    return 'is a rate with a time zone; a rate(...) fires at fixed intervals in UTC and takes none: remove the @ and the zone, or write a cron(...)@zone';
  }
  const match = RATE.exec(text);
  if (!match?.[1] || !match[2]) {
    return 'is not a rate expression; write rate(value unit), unit minute(s), hour(s) or day(s), e.g. rate(6 hours)';
  }
  const value = Number(match[1]);
  const unit = match[2].toLowerCase();
  const singular = unit.endsWith('s') ? unit.slice(0, -1) : unit;
  const unitMs = RATE_UNITS[singular];
  if (unitMs === undefined) {
    return `has the unit ${quoteShort(match[2])}; a rate's unit is minute(s), hour(s) or day(s), e.g. rate(6 hours)`;
  }
  if (value < 1 || !Number.isSafeInteger(value) || value > 3650) {
    return `has the value ${formatNumber(value)}; a rate's value is a whole number from 1 to 3650`;
  }
  // AWS's own rule: `rate(1 hour)` but `rate(2 hours)`.
  if ((value === 1) !== (unit === singular)) {
    const fixed = `rate(${value} ${value === 1 ? singular : `${singular}s`})`;
    return `is not in AWS's syntax: the unit is singular for 1 and plural otherwise; write ${fixed}`;
  }
  return {
    expression: `rate(${value} ${unit})`,
    kind: 'rate',
    timezone: 'UTC',
    everyMs: value * unitMs,
  };
}

function parseCron(text: string, now: Date): TagExpression | string {
  const match = CRON.exec(text);
  if (!match?.[1]) {
    return 'is not a cron expression; write cron(minutes hours day-of-month month day-of-week year), optionally followed by @ and an IANA time zone, e.g. cron(0 3 * * ? *)@Europe/Paris';
  }
  const fields = match[1].trim().toUpperCase().split(/\s+/);
  if (fields.length !== 6) {
    return `has ${fields.length} cron fields; AWS cron has 6 (minutes hours day-of-month month day-of-week year), e.g. cron(0 3 * * ? *)`;
  }
  if ((fields[2] === '?') === (fields[4] === '?')) {
    return 'must have "?" in exactly one of day-of-month and day-of-week (AWS cron), e.g. cron(0 3 * * ? *) or cron(0 3 ? * MON *)';
  }
  const timezone = canonicalZone(match[2]);
  if (timezone === undefined) {
    return `has the time zone ${quoteShort(match[2] ?? '')}, which is not an IANA time zone; write e.g. @Europe/Paris, or nothing for UTC`;
  }
  const cron = `cron(${fields.join(' ')})`;
  try {
    const fires = awsCronParser.next(awsCronParser.parse(fields.join(' ')), now);
    if (!fires) return `never fires after ${now.toISOString().slice(0, 10)}; check its year field`;
  } catch (error) {
    return `is not a valid cron (${(error as Error).message}); e.g. cron(0 3 * * ? *)`;
  }
  const expression = timezone === 'UTC' ? cron : `${cron}@${timezone}`;
  return { expression, kind: 'cron', cron, timezone };
}

function canonicalZone(zone: string | undefined): string | undefined {
  if (zone === undefined) return 'UTC';
  if (zone.trim() === '') return undefined;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: zone.trim() }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

/**
 * The shortest interval between two consecutive fires of a cron over its next
 * {@link INTERVAL_SAMPLE_FIRES} fires (a year at most) on its own wall clock, or a
 * rate's interval. A change of clocks (summer time) may shorten one interval by an hour
 * once: that is not counted against the limit.
 */
function shortestIntervalMs(expression: TagExpression, now: Date): number {
  if (expression.everyMs !== undefined) return expression.everyMs;
  const cron = awsCronParser.parse((expression.cron ?? '').slice(5, -1));
  const end = now.getTime() + 366 * 86_400_000;
  let previous = awsCronParser.next(cron, toWallClock(now, expression.timezone));
  let shortest = Number.POSITIVE_INFINITY;
  for (let i = 0; previous && i < INTERVAL_SAMPLE_FIRES && previous.getTime() < end; i += 1) {
    const next = awsCronParser.next(cron, previous);
    if (!next) break;
    shortest = Math.min(shortest, next.getTime() - previous.getTime());
    previous = next;
  }
  return shortest;
}

/**
 * The schedule definition an expression runs under: its name is the canonical
 * expression (the `snapkeeper:schedule` value of its sets), its retention default the
 * limits' `retain`.
 *
 * @example
 * tagScheduleDefinition(rate6h, 7); // { name: 'rate(6 hours)', cron: 'rate(6 hours)', everyMs: 21_600_000, ... }
 */
export function tagScheduleDefinition(
  expression: TagExpression,
  retain: number,
): ScheduleDefinition {
  return {
    name: expression.expression,
    cron: expression.cron ?? expression.expression,
    timezone: expression.timezone,
    retain,
    fromTag: true,
    ...(expression.everyMs !== undefined ? { everyMs: expression.everyMs } : {}),
  };
}

/**
 * The newest fire of an expression at or before `at`: {@link previousFireTime}, which
 * fires a zoned cron as EventBridge Scheduler does (a wall time that summer time skips is
 * no fire; a repeated one fires once, at its first occurrence) and a rate at every
 * multiple of its interval since 1970-01-01T00:00Z. One implementation serves named
 * and tag schedules; this name stays for the dispatcher's readers.
 *
 * @example
 * tagFireAtOrBefore(rate6h, new Date('2026-11-23T13:15:00Z')); // 2026-11-23T12:00:00Z
 */
export const tagFireAtOrBefore: (definition: ScheduleDefinition, at: Date) => Date =
  previousFireTime;

/**
 * The first fire of an expression strictly after `after`: {@link nextFireTime}, by the
 * rules of {@link tagFireAtOrBefore}.
 *
 * @example
 * tagFireAfter(rate6h, new Date('2026-11-23T13:15:00Z')); // 2026-11-23T18:00:00Z
 */
export const tagFireAfter: (definition: ScheduleDefinition, after: Date) => Date = nextFireTime;

/**
 * The slot a dispatch at `dispatchTime` serves for an expression: its newest fire at or
 * before the dispatch (see {@link tagFireAtOrBefore}). A late or repeated dispatch finds
 * the same slot (the exactly-once claim makes it a duplicate); after missed dispatches
 * only the newest slot is served.
 *
 * @example
 * dueSlot(rate6h, new Date('2026-11-23T13:15:00Z')); // '2026-11-23T12:00:00Z'
 */
export function dueSlot(definition: ScheduleDefinition, dispatchTime: Date): string {
  return `${tagFireAtOrBefore(definition, dispatchTime).toISOString().slice(0, 19)}Z`;
}

/** What an instance's `snapkeeper:backup` value asks for, split into names and expressions. */
export interface BackupTagEntries {
  /** The named entries, joined back with commas for the named-schedule parser. */
  readonly names: string;
  /** The valid expressions, deduplicated by canonical text, in tag order. */
  readonly expressions: readonly TagExpression[];
  readonly problems: readonly TagProblem[];
}

/**
 * Splits a `snapkeeper:backup` value into its named schedules and its expressions,
 * parsing each expression; a bad or too-frequent one is a problem naming the instance,
 * the tag and the fix, and never costs the instance its other entries.
 *
 * @example
 * readBackupTagEntries('i-1', 'snapkeeper:backup', 'daily,rate(6 hours)', limits, now);
 * // { names: 'daily', expressions: [{ expression: 'rate(6 hours)', ... }], problems: [] }
 */
export function readBackupTagEntries(
  resourceId: string,
  key: string,
  value: string,
  limits: Pick<TagScheduleLimits, 'minIntervalMs'>,
  now: Date,
): BackupTagEntries {
  const entries = splitScheduleList(value);
  const names: string[] = [];
  const expressions: TagExpression[] = [];
  const problems: TagProblem[] = [];
  for (const entry of entries) {
    if (!isExpressionEntry(entry)) {
      names.push(entry);
      continue;
    }
    const parsed = parseTagExpression(entry, limits, now);
    if (typeof parsed === 'string') {
      const reason = `${partOf(entries, entry)} a schedule expression that ${parsed}`;
      problems.push({ resourceId, key, value, message: tagMessage(key, value, reason) });
    } else if (!expressions.some((e) => e.expression === parsed.expression)) {
      expressions.push(parsed);
    }
  }
  return { names: names.join(','), expressions, problems };
}

/** An instance that asks for an expression, as the dispatcher groups them. */
export interface ExpressionDemand {
  readonly instanceId: string;
  readonly expression: TagExpression;
}

/** The instances of one expression that a dispatch serves, and the slot they serve. */
export interface DispatchGroup {
  readonly definition: ScheduleDefinition;
  readonly slot: string;
  readonly instanceIds: readonly string[];
}

/** What a dispatch serves, and the expressions over the cap (with the instances refused). */
export interface DispatchPlan {
  readonly groups: readonly DispatchGroup[];
  readonly overCap: readonly {
    readonly expression: string;
    readonly instanceIds: readonly string[];
  }[];
}

/**
 * Groups the instances by expression and finds each expression's due slot. At most
 * `maxExpressions` distinct expressions are served, the most used first (ties: in text
 * order, so the choice is stable); the others are returned to be reported.
 *
 * @example
 * planDispatch(demands, new Date('2026-11-23T12:00:00Z'), limits).groups[0]?.slot;
 * // '2026-11-23T12:00:00Z'
 */
export function planDispatch(
  demands: readonly ExpressionDemand[],
  dispatchTime: Date,
  limits: TagScheduleLimits,
): DispatchPlan {
  const byExpression = new Map<string, { expression: TagExpression; instanceIds: string[] }>();
  for (const demand of demands) {
    const entry = byExpression.get(demand.expression.expression) ?? {
      expression: demand.expression,
      instanceIds: [],
    };
    if (!entry.instanceIds.includes(demand.instanceId)) entry.instanceIds.push(demand.instanceId);
    byExpression.set(demand.expression.expression, entry);
  }
  const ranked = [...byExpression.values()].sort(
    (a, b) =>
      b.instanceIds.length - a.instanceIds.length ||
      (a.expression.expression < b.expression.expression ? -1 : 1),
  );
  const served = ranked.slice(0, limits.maxExpressions);
  const groups = served.map(({ expression, instanceIds }) => {
    const definition = tagScheduleDefinition(expression, limits.retain);
    return { definition, slot: dueSlot(definition, dispatchTime), instanceIds };
  });
  const overCap = ranked
    .slice(limits.maxExpressions)
    .map(({ expression, instanceIds }) => ({ expression: expression.expression, instanceIds }));
  return { groups, overCap };
}

/**
 * The message for an instance whose expression is beyond the cap.
 *
 * @example
 * overCapMessage('snapkeeper:backup', 'rate(7 hours)', 20);
 */
export function overCapMessage(key: string, expression: string, cap: number): string {
  return `${key}=${quoteShort(expression)} is not served: this deployment serves at most ${cap} distinct schedule expressions (TAG_SCHEDULE_MAX_EXPRESSIONS) and the most used fill them; use an expression other instances already use, a named schedule, or raise the cap`;
}

function describeMs(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000} day${ms === 86_400_000 ? '' : 's'}`;
  return `${formatNumber(Math.round(ms / 60_000))} min`;
}

/**
 * The schedule an expression written in a tag runs under, from its canonical text (a
 * `snapkeeper:schedule` value, or an entry of `InstancePolicy.expressions`); undefined
 * when the text is no expression.
 *
 * @example
 * tagDefinitionOf('rate(6 hours)', catalog)?.everyMs; // 21_600_000
 */
export function tagDefinitionOf(
  text: string,
  catalog: Pick<ScheduleCatalog, 'tagSchedules'>,
): ScheduleDefinition | undefined {
  if (!isExpressionEntry(text)) return undefined;
  const parsed = parseTagExpression(text, { minIntervalMs: 0 }, POLICY_READ_REFERENCE);
  return typeof parsed === 'string'
    ? undefined
    : tagScheduleDefinition(parsed, tagLimitsOf(catalog).retain);
}

/** One instance's schedule from its tag, as `plan` shows it. */
export interface TagScheduleRun {
  readonly instanceId: string;
  readonly name?: string | undefined;
  readonly expression: string;
  /** The slot the last dispatch served or would have served (ISO 8601 UTC). */
  readonly lastSlot: string;
  /** The next time the expression fires (ISO 8601 UTC): the dispatch after it backs the instance up. */
  readonly nextRun: string;
}

/**
 * Each instance's expressions with their last and next slot, and the problems of the
 * ones that are refused (by instance, tag and fix), as the console `plan` shows them.
 *
 * @example
 * planTagScheduleRuns(instances, 'snapkeeper:backup', catalog, now).runs[0]?.nextRun;
 * // '2026-11-23T18:00:00Z'
 */
export function planTagScheduleRuns(
  instances: readonly {
    readonly instanceId: string;
    readonly tags: Readonly<Record<string, string>>;
  }[],
  key: string,
  catalog: Pick<ScheduleCatalog, 'tagSchedules'>,
  now: Date,
): { runs: TagScheduleRun[]; problems: string[] } {
  const limits = tagLimitsOf(catalog);
  const runs: TagScheduleRun[] = [];
  const problems: string[] = [];
  for (const instance of instances) {
    const value = instance.tags[key];
    if (value === undefined) continue;
    const entries = readBackupTagEntries(instance.instanceId, key, value, limits, now);
    for (const problem of entries.problems) {
      problems.push(`instance ${instance.instanceId}: ${problem.message}`);
    }
    for (const expression of entries.expressions) {
      const definition = tagScheduleDefinition(expression, limits.retain);
      runs.push({
        instanceId: instance.instanceId,
        name: instance.tags.Name,
        expression: expression.expression,
        lastSlot: dueSlot(definition, now),
        nextRun: `${tagFireAfter(definition, now).toISOString().slice(0, 19)}Z`,
      });
    }
  }
  return { runs, problems };
}

/**
 * The catalog with one more schedule: the one an expression runs under, so that the
 * backup job resolves it like a named one.
 *
 * @example
 * catalogWith(catalog, definition).schedules.has('rate(6 hours)'); // true
 */
export function catalogWith(
  catalog: ScheduleCatalog,
  definition: ScheduleDefinition,
): ScheduleCatalog {
  const schedules = new Map(catalog.schedules);
  // Looked up as a named schedule is: by its lower-case name.
  schedules.set(definition.name.toLowerCase(), definition);
  return { ...catalog, schedules };
}
