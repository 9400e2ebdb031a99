/**
 * Slots as the scheduler sends them, computed from the real clock: the latest fire time
 * of a daily cron, and a slot's text. The fault campaign and runLifecycle.test.ts use the
 * same, so that a slot lands inside the real catch-up rule.
 */

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/**
 * The latest fire time at or before `now` of a daily cron at `hour`:`minute` UTC: a slot
 * the handlers accept under the real catch-up rule (as runLifecycle.test.ts computes it).
 *
 * @example
 * slotText(latestFire(3, 0)); // '2026-12-06T03:00:00Z' at 12:00 that day
 */
export function latestFire(hour: number, minute: number, now = Date.now()): Date {
  const fire = Math.floor(now / DAY_MS) * DAY_MS + hour * HOUR_MS + minute * MINUTE_MS;
  return new Date(fire > now ? fire - DAY_MS : fire);
}

/** A slot as the scheduler sends it: `2026-12-06T03:00:00Z`. */
export const slotText = (date: Date): string => `${date.toISOString().slice(0, 19)}Z`;
