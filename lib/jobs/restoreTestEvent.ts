import { InvalidEventError } from '../domain/errors.ts';
import type { RestoreTestOptions } from '../domain/restoreTestPlan.ts';
import { resolveSchedule, type ScheduleCatalog } from '../domain/schedules.ts';
import { parseScheduledEvent, type ScheduledInvocation } from './events.ts';

/** A validated scheduled restore test: the schedule's sets, its `restoreTests` option. */
export interface RestoreTestInvocation extends ScheduledInvocation {
  readonly options: RestoreTestOptions;
}

/**
 * Validates the event the restore-test schedule sends: `{ "schedule": "daily",
 * "scheduledTime": "<aws.scheduler.scheduled-time>" }` (optionally `"dryRun": true`),
 * for a schedule whose definition has a `restoreTests` option.
 *
 * @throws {InvalidEventError} naming the field, or the schedule without the option.
 * @example
 * parseRestoreTestEvent({ schedule: 'daily', scheduledTime: '2026-11-23T04:00:00Z' }, catalog).options;
 * // { instances: 2 }
 */
export function parseRestoreTestEvent(
  event: unknown,
  catalog: ScheduleCatalog,
): RestoreTestInvocation {
  const invocation = parseScheduledEvent(event, catalog);
  const options = resolveSchedule(catalog, invocation.schedule).restoreTests;
  if (!options) {
    const withOption = [...catalog.schedules.values()]
      .filter((s) => s.restoreTests)
      .map((s) => s.name);
    throw new InvalidEventError(
      `field "schedule": "${invocation.schedule}" has no restoreTests option in custom.schedules; ${withOption.length > 0 ? `schedules with one: ${withOption.join(', ')}` : 'no schedule has one'} (or use the ops action "restore-test")`,
    );
  }
  return { ...invocation, options };
}
