import { formatNumber, partOf, quoteShort, tagMessage } from './messages.ts';
import type { ScheduleCatalog } from './schedules.ts';
import type { TagKeys } from './tagKeys.ts';
import { nearMissProblems } from './tagKeyTypos.ts';
import {
  isExpressionEntry,
  POLICY_READ_REFERENCE,
  readBackupTagEntries,
  splitScheduleList,
  TAG_SCHEDULE,
  tagLimitsOf,
} from './tagSchedules.ts';

export { quoteShort } from './messages.ts';

/** Tags of an AWS resource as a plain key → value record. */
export type TagMap = Readonly<Record<string, string>>;

/**
 * One tag value that could not be understood, with a message an operator can act on:
 * `snapkeeper:backup="dialy" is not a known schedule; known: daily, weekly`.
 */
export interface TagProblem {
  readonly resourceId: string;
  readonly key: string;
  readonly value: string;
  readonly message: string;
  /** For a key that is not read but looks meant for one that is: that key. */
  readonly intendedKey?: string | undefined;
}

/** Per-schedule counts of snapshots to keep, from `snapkeeper:retain`. */
export interface RetainCounts {
  /** Applies to every schedule the instance lists (`snapkeeper:retain=7`). */
  readonly all?: number;
  /** Per schedule (`snapkeeper:retain=daily=7,weekly=4`). */
  readonly bySchedule: Readonly<Record<string, number>>;
}

/** What an instance's tags ask of snapkeeper, with every tag problem found on the way. */
export interface InstancePolicy {
  /** Schedules the instance opted into, lower case, deduplicated, in tag order. */
  readonly schedules: readonly string[];
  /** Expressions written in the opt-in tag (`rate(6 hours)`), canonical, each its own schedule; absent when none. */
  readonly expressions?: readonly string[];
  readonly excludeBoot: boolean;
  readonly retain?: RetainCounts;
  readonly problems: readonly TagProblem[];
}

/** The largest count a retention tag may ask for (DLM's limit per schedule). */
export const MAX_RETAIN_COUNT = 1000;

/**
 * Parses the opt-in tag: `true` (the default schedule), a comma list of schedule
 * names (case-insensitive, trimmed, duplicates ignored), or `false`/empty/absent
 * (not opted in). Known names are honoured even when others in the list are not:
 * a typo in one name never costs the instance its other backups.
 *
 * @example
 * parseScheduleList('i-1', 'snapkeeper:backup', 'Daily, weekly,daily', catalog).schedules;
 * // ['daily', 'weekly']
 */
export function parseScheduleList(
  resourceId: string,
  key: string,
  value: string | undefined,
  catalog: ScheduleCatalog,
): { schedules: string[]; problems: TagProblem[] } {
  const problems: TagProblem[] = [];
  if (value === undefined) return { schedules: [], problems };
  const trimmed = value.trim();
  const lowered = trimmed.toLowerCase();
  if (lowered === '' || lowered === 'false') return { schedules: [], problems };
  if (lowered === 'true') return { schedules: [catalog.defaultSchedule], problems };

  const known = [...catalog.schedules.keys()];
  const schedules: string[] = [];
  const entries = trimmed.split(',').map((entry) => entry.trim().toLowerCase());
  if (entries.some((entry) => entry === '')) {
    problems.push(problem(resourceId, key, value, 'has an empty schedule name in its list'));
  }
  const unknown = new Set<string>();
  for (const entry of entries) {
    if (entry === '' || schedules.includes(entry) || unknown.has(entry)) continue;
    if (catalog.schedules.has(entry)) {
      schedules.push(entry);
    } else {
      unknown.add(entry);
      const what = partOf(entries, entry);
      problems.push(
        problem(resourceId, key, value, `${what} not a known schedule; known: ${known.join(', ')}`),
      );
    }
  }
  return { schedules, problems };
}

/**
 * Parses a `true`/`false` tag (case-insensitive, trimmed). Anything else is a problem
 * and yields `fallback`, which callers choose as the safe side (back up more).
 *
 * @example
 * parseBooleanTag('i-1', 'snapkeeper:exclude-boot', 'TRUE', false).value; // true
 */
export function parseBooleanTag(
  resourceId: string,
  key: string,
  value: string | undefined,
  fallback: boolean,
): { value: boolean; problems: TagProblem[] } {
  if (value === undefined) return { value: fallback, problems: [] };
  const lowered = value.trim().toLowerCase();
  if (lowered === 'true') return { value: true, problems: [] };
  if (lowered === 'false') return { value: false, problems: [] };
  return {
    value: fallback,
    problems: [problem(resourceId, key, value, `must be true or false; using ${fallback}`)],
  };
}

/**
 * Parses `snapkeeper:retain`: one count for every schedule (`7`) or per schedule
 * (`daily=7,weekly=4`). Counts are whole numbers from 1 to 1000. A malformed tag yields
 * no counts at all and a problem, so that retention keeps everything for the instance
 * rather than guess.
 *
 * @example
 * parseRetainCounts('i-1', 'snapkeeper:retain', 'daily=7,weekly=4', catalog).retain;
 * // { bySchedule: { daily: 7, weekly: 4 } }
 */
export function parseRetainCounts(
  resourceId: string,
  key: string,
  value: string | undefined,
  catalog: ScheduleCatalog,
): { retain?: RetainCounts; problems: TagProblem[] } {
  if (value === undefined) return { problems: [] };
  const trimmed = value.trim();
  if (trimmed === '') {
    return {
      problems: [
        problem(resourceId, key, value, 'is empty; expected a count such as 7 or daily=7,weekly=4'),
      ],
    };
  }
  if (!trimmed.includes('=')) {
    const count = parseCount(trimmed, false);
    if (typeof count === 'string') return { problems: [problem(resourceId, key, value, count)] };
    return { retain: { all: count, bySchedule: {} }, problems: [] };
  }
  const bySchedule: Record<string, number> = {};
  const problems: TagProblem[] = [];
  for (const rawEntry of trimmed.split(',')) {
    const entry = rawEntry.trim();
    const [rawName, rawCount, ...rest] = entry.split('=');
    const name = (rawName ?? '').trim().toLowerCase();
    if (entry === '' || rest.length > 0 || rawCount === undefined || name === '') {
      problems.push(
        problem(resourceId, key, value, `entry ${quoteShort(entry)} is not schedule=count`),
      );
      continue;
    }
    if (!catalog.schedules.has(name) && name !== TAG_SCHEDULE) {
      problems.push(
        problem(
          resourceId,
          key,
          value,
          `${quoteShort(name)} is not a known schedule; known: ${[...catalog.schedules.keys()].join(', ')}`,
        ),
      );
      continue;
    }
    const count = parseCount(rawCount.trim());
    if (typeof count === 'string') {
      problems.push(problem(resourceId, key, value, `${name}: ${count}`));
      continue;
    }
    if (bySchedule[name] !== undefined && bySchedule[name] !== count) {
      problems.push(
        problem(resourceId, key, value, `${name} is given twice with different counts`),
      );
      continue;
    }
    bySchedule[name] = count;
  }
  if (problems.length > 0) return { problems };
  return { retain: { bySchedule }, problems };
}

/**
 * Reads everything an instance's tags ask for. Never throws: every unreadable tag
 * becomes a {@link TagProblem} and the policy falls back to the safe side.
 *
 * @example
 * const policy = readInstancePolicy('i-1', { 'snapkeeper:backup': 'true' }, keys, catalog);
 * policy.schedules; // ['daily']
 */
export function readInstancePolicy(
  instanceId: string,
  tags: TagMap,
  keys: TagKeys,
  catalog: ScheduleCatalog,
): InstancePolicy {
  const optIn = parseOptInTag(instanceId, keys.backup, tags[keys.backup], catalog);
  const excludeBoot = parseBooleanTag(instanceId, keys.excludeBoot, tags[keys.excludeBoot], false);
  const retain = parseRetainCounts(instanceId, keys.retain, tags[keys.retain], catalog);
  // A key that misses ours (case, spaces, a typo) is not read: reported, never guessed.
  const problems = [
    ...optIn.problems,
    ...excludeBoot.problems,
    ...retain.problems,
    ...nearMissProblems(instanceId, tags, keys),
  ];
  return {
    schedules: optIn.schedules,
    ...(optIn.expressions.length > 0 ? { expressions: optIn.expressions } : {}),
    excludeBoot: excludeBoot.value,
    ...(retain.retain ? { retain: retain.retain } : {}),
    problems,
  };
}

/**
 * Parses `snapkeeper:backup`: named schedules (see {@link parseScheduleList}) and
 * expressions written in the tag (see tagSchedules.ts), split at commas outside
 * parentheses. A value without an expression reads exactly as before.
 *
 * @example
 * parseOptInTag('i-1', 'snapkeeper:backup', 'daily, rate(6 hours)', catalog);
 * // { schedules: ['daily'], expressions: ['rate(6 hours)'], problems: [] }
 */
export function parseOptInTag(
  resourceId: string,
  key: string,
  value: string | undefined,
  catalog: ScheduleCatalog,
): { schedules: string[]; expressions: string[]; problems: TagProblem[] } {
  if (value === undefined || !splitScheduleList(value).some(isExpressionEntry)) {
    return { ...parseScheduleList(resourceId, key, value, catalog), expressions: [] };
  }
  const entries = readBackupTagEntries(
    resourceId,
    key,
    value,
    tagLimitsOf(catalog),
    POLICY_READ_REFERENCE,
  );
  const named =
    entries.names === ''
      ? { schedules: [], problems: [] }
      : parseScheduleList(resourceId, key, entries.names, catalog);
  return {
    schedules: named.schedules,
    expressions: entries.expressions.map((e) => e.expression),
    problems: [...entries.problems, ...named.problems],
  };
}

/** A count from 1 to 1000, or the reason it is not one (naming the text when asked). */
function parseCount(text: string, nameIt = true): number | string {
  if (!/^\d+$/.test(text)) {
    const what = nameIt ? `${quoteShort(text)} is` : 'is';
    return `${what} not a whole number from 1 to ${MAX_RETAIN_COUNT}`;
  }
  const count = Number(text);
  if (count < 1 || count > MAX_RETAIN_COUNT) {
    const what = nameIt ? `${quoteShort(text)} is` : 'is';
    return `${what} out of range; expected 1 to ${formatNumber(MAX_RETAIN_COUNT)}`;
  }
  return count;
}

function problem(resourceId: string, key: string, value: string, reason: string): TagProblem {
  return { resourceId, key, value, message: tagMessage(key, value, reason) };
}
