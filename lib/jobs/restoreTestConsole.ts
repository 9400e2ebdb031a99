import type { RestoreTestOptions } from '../domain/restoreTestPlan.ts';
import type { ScheduleCatalog } from '../domain/schedules.ts';
import type { OpsPayload } from './opsPayload.ts';
import {
  type RestoreTestDependencies,
  type RestoreTestReport,
  type RestoreTestRequest,
  runRestoreTestJob,
} from './restoreTestJob.ts';

/** How many instances a console `restore-test` picks when neither it nor its schedule says. */
export const CONSOLE_RESTORE_TEST_SAMPLE = 1;

/**
 * The request of a console `restore-test`: named instances, or a sample (the payload's
 * `instances`, else the schedule's `restoreTests.instances`, else one) of the schedule's
 * sets (or all of this deployment's); the payload's initialization rate, else the
 * schedule's.
 *
 * @example
 * restoreTestRequestOf({ action: 'restore-test', schedule: 'daily', dryRun: true }, catalog, remainingMs);
 */
export function restoreTestRequestOf(
  payload: Extract<OpsPayload, { action: 'restore-test' }>,
  catalog: ScheduleCatalog,
  remainingMs: () => number,
): RestoreTestRequest {
  const schedule = payload.schedule?.toLowerCase();
  const configured = schedule ? catalog.schedules.get(schedule)?.restoreTests : undefined;
  const rate = payload.volumeInitializationRate ?? configured?.volumeInitializationRate;
  const options: RestoreTestOptions = {
    instances: payload.instances ?? configured?.instances ?? CONSOLE_RESTORE_TEST_SAMPLE,
    ...(rate === undefined ? {} : { volumeInitializationRate: rate }),
  };
  return {
    ...(schedule ? { schedule } : {}),
    ...(payload.instanceIds ? { instanceIds: payload.instanceIds } : {}),
    options,
    dryRun: payload.dryRun === true,
    remainingMs,
  };
}

/**
 * The console's `restore-test`: the scheduled job's code path, run now. Its time is
 * bounded by the function's timeout counted from the start of the operation.
 *
 * @example
 * const report = await consoleRestoreTest(payload, deps, catalog, functionTimeoutMs);
 */
export async function consoleRestoreTest(
  payload: Extract<OpsPayload, { action: 'restore-test' }>,
  deps: RestoreTestDependencies,
  catalog: ScheduleCatalog,
  functionTimeoutMs: number,
): Promise<RestoreTestReport> {
  const until = deps.clock().getTime() + functionTimeoutMs;
  const remainingMs = () => until - deps.clock().getTime();
  return runRestoreTestJob(restoreTestRequestOf(payload, catalog, remainingMs), deps);
}
