import { InvalidEventError } from '../domain/errors.ts';
import type { RestoreTestOptions, RestoreTestStatus } from '../domain/restoreTestPlan.ts';
import type { ScheduleCatalog } from '../domain/schedules.ts';
import type { OpsDependencies } from './consoleOps.ts';
import type { OpsPayload } from './opsPayload.ts';
import {
  type RestoreTestDependencies,
  type RestoreTestReport,
  type RestoreTestRequest,
  restoreTestStatuses,
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

/** What the console's restore tests and the report's restore-test column read through. */
type ConsoleDependencies = Pick<
  OpsDependencies,
  | 'ec2'
  | 'restore'
  | 'restoreTests'
  | 'history'
  | 'config'
  | 'clock'
  | 'runId'
  | 'logger'
  | 'metrics'
  | 'journal'
>;

/** The history reader of restore tests; a function without one reads nothing, and says so. */
function readers(deps: Pick<ConsoleDependencies, 'history' | 'clock' | 'logger'>) {
  const resourceHistory =
    deps.history.resourceHistory?.bind(deps.history) ??
    (async () => Promise.reject(new Error('this function reads no run history')));
  return { history: { resourceHistory }, clock: deps.clock, logger: deps.logger };
}

/**
 * The restore test's dependencies from the console's.
 *
 * @throws {InvalidEventError} when the function has no restore-test gateway.
 * @example
 * await consoleRestoreTest(payload, restoreTestDependencies(deps), catalog, timeoutMs);
 */
export function restoreTestDependencies(deps: ConsoleDependencies): RestoreTestDependencies {
  if (!deps.restoreTests)
    throw new InvalidEventError('action "restore-test" is not available in this function');
  return {
    ...readers(deps),
    ec2: deps.ec2,
    instances: deps.restore,
    tests: deps.restoreTests,
    config: deps.config,
    runId: deps.runId,
    metrics: deps.metrics ?? { count: () => undefined },
    journal: deps.journal,
  };
}

/**
 * The recovery report with each instance's restore tests (the last successful one and
 * its time; never tested flagged) and how many were never tested.
 *
 * @example
 * return withRestoreTests({ ...report, blocked }, deps);
 */
export async function withRestoreTests<
  R extends { readonly instances: readonly { readonly instanceId: string }[] },
>(
  report: R,
  deps: Pick<ConsoleDependencies, 'history' | 'clock' | 'logger'>,
): Promise<
  Omit<R, 'instances'> & {
    instances: (R['instances'][number] & { restoreTest?: RestoreTestStatus | undefined })[];
    restoreTests: { neverTested: number; warnings?: readonly string[] };
  }
> {
  const tests = await restoreTestStatuses(
    report.instances.map((i) => i.instanceId),
    readers(deps),
  );
  return {
    ...report,
    instances: report.instances.map((i) => ({
      ...i,
      restoreTest: tests.statuses.get(i.instanceId),
    })),
    restoreTests: {
      neverTested: [...tests.statuses.values()].filter((t) => t.neverTested).length,
      ...(tests.warnings.length > 0 ? { warnings: tests.warnings } : {}),
    },
  };
}
