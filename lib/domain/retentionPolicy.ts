import type { RetentionRule, TierCounts } from './retentionPlan.ts';
import { TIERS } from './retentionPlan.ts';
import type { ScheduleCatalog, ScheduleDefinition } from './schedules.ts';
import type { TagKeys } from './tagKeys.ts';
import { nearMissProblems } from './tagKeyTypos.ts';
import {
  MAX_RETAIN_COUNT,
  parseRetainCounts,
  quoteShort,
  type TagMap,
  type TagProblem,
} from './tagPolicy.ts';
import { TAG_SCHEDULE } from './tagSchedules.ts';

/** The longest `retain-days` accepted: 100 years. */
export const MAX_RETAIN_DAYS = 36_500;

/**
 * Parses `snapkeeper:retain-days`: a whole number of days (0 to 36500).
 *
 * @example
 * parseRetainDays('i-1', 'snapkeeper:retain-days', '14').days; // 14
 */
export function parseRetainDays(
  resourceId: string,
  key: string,
  value: string | undefined,
): { days?: number; problems: TagProblem[] } {
  if (value === undefined) return { problems: [] };
  const trimmed = value.trim();
  if (!/^\d+$/.test(trimmed) || Number(trimmed) > MAX_RETAIN_DAYS) {
    return {
      problems: [
        {
          resourceId,
          key,
          value,
          message: `${key}=${quoteShort(value)} is not a whole number of days from 0 to ${MAX_RETAIN_DAYS}`,
        },
      ],
    };
  }
  return { days: Number(trimmed), problems: [] };
}

/**
 * Parses tiers such as `daily=7,weekly=4,monthly=12,yearly=3` (any subset, each 1-1000).
 *
 * @example
 * parseTierCounts('i-1', 'snapkeeper:retain-tiers', 'weekly=4,monthly=12').tiers;
 * // { weekly: 4, monthly: 12 }
 */
export function parseTierCounts(
  resourceId: string,
  key: string,
  value: string | undefined,
): { tiers?: TierCounts; problems: TagProblem[] } {
  if (value === undefined) return { problems: [] };
  const fail = (reason: string) => ({
    problems: [{ resourceId, key, value, message: `${key}=${quoteShort(value)} ${reason}` }],
  });
  const tiers: Record<string, number> = {};
  const trimmed = value.trim();
  if (trimmed === '') return fail('is empty; expected tiers such as daily=7,weekly=4');
  for (const rawEntry of trimmed.split(',')) {
    const [rawName, rawCount, ...rest] = rawEntry.split('=');
    const name = (rawName ?? '').trim().toLowerCase();
    const countText = (rawCount ?? '').trim();
    if (rest.length > 0 || rawCount === undefined) {
      return fail(`entry ${quoteShort(rawEntry.trim())} is not tier=count`);
    }
    if (!(TIERS as readonly string[]).includes(name)) {
      return fail(`${quoteShort(name)} is not a tier; tiers: ${TIERS.join(', ')}`);
    }
    if (!/^\d+$/.test(countText) || Number(countText) < 1 || Number(countText) > MAX_RETAIN_COUNT) {
      return fail(
        `${name}: ${quoteShort(countText)} is not a whole number from 1 to ${MAX_RETAIN_COUNT}`,
      );
    }
    if (tiers[name] !== undefined) return fail(`${name} is given twice`);
    tiers[name] = Number(countText);
  }
  return { tiers: tiers as TierCounts, problems: [] };
}

/**
 * The retention rule for one schedule of one source: the source's tags override the
 * schedule's defaults. Any malformed retention tag, or a key that misses one (case,
 * spaces, a typo), yields no rule, only problems, and the caller keeps everything.
 *
 * @example
 * retentionRuleFor(daily, { 'snapkeeper:retain': 'daily=14' }, 'i-1', keys, catalog).rule;
 * // { count: 14 }
 */
export function retentionRuleFor(
  schedule: ScheduleDefinition,
  tags: TagMap | undefined,
  resourceId: string,
  keys: TagKeys,
  catalog: ScheduleCatalog,
  countKey: string = keys.retain,
): { rule?: RetentionRule; problems: TagProblem[] } {
  const source = tags ?? {};
  const counts = parseRetainCounts(resourceId, countKey, source[countKey], catalog);
  const days = parseRetainDays(resourceId, keys.retainDays, source[keys.retainDays]);
  const tiers = parseTierCounts(resourceId, keys.retainTiers, source[keys.retainTiers]);
  const defaultTiers =
    schedule.retainTiers !== undefined
      ? parseTierCounts(`schedule ${schedule.name}`, 'retainTiers', schedule.retainTiers)
      : { problems: [] };
  // A key that misses a retention key (`Snapkeeper:retain=30`) may ask for more than the
  // default: like an unreadable value, it leaves no rule, and everything is kept.
  const misses = nearMissProblems(resourceId, source, keys, [
    countKey,
    keys.retainDays,
    keys.retainTiers,
  ]);
  const problems = [
    ...counts.problems,
    ...days.problems,
    ...tiers.problems,
    ...defaultTiers.problems,
    ...misses,
  ];
  if (problems.length > 0) return { problems };
  const count =
    counts.retain?.bySchedule[schedule.name] ??
    (schedule.fromTag ? counts.retain?.bySchedule[TAG_SCHEDULE] : undefined) ??
    counts.retain?.all ??
    schedule.retain;
  const minAgeDays = days.days ?? schedule.retainDays;
  const tierCounts = tiers.tiers ?? defaultTiers.tiers;
  return {
    rule: {
      count,
      ...(minAgeDays !== undefined ? { minAgeDays } : {}),
      ...(tierCounts !== undefined ? { tiers: tierCounts } : {}),
    },
    problems,
  };
}
