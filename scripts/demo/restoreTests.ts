/**
 * The demo's part of issue 22 (restore tests): on each Sunday of the fortnight, the
 * weekly schedule's restore test (serverless.yml: `restoreTests: { instances: 2 }`) runs
 * at its timetable (with the weekly retention, 05:00 UTC) through the real handler.
 */
import { lambdaContext } from '../../harness/lambdaContext.ts';

type Handler = (event: unknown, context: unknown) => Promise<Record<string, unknown>>;

/**
 * Runs the weekly restore test of one Sunday and answers the line the demo prints.
 *
 * @example
 * notes.push(await weeklyRestoreTest(restoreTest, midnight, (t) => clock.setSystemTime(t)));
 */
export async function weeklyRestoreTest(
  restoreTest: Handler,
  midnight: number,
  setTime: (time: number) => void,
): Promise<string> {
  const scheduledTime = midnight + 5 * 3_600_000;
  setTime(scheduledTime + 5_000);
  let report: Record<string, unknown>;
  try {
    report = await restoreTest(
      { schedule: 'weekly', scheduledTime: new Date(scheduledTime).toISOString() },
      lambdaContext('snapkeeper-demo-restoreTest'),
    );
  } catch (error) {
    report = (error as { report?: Record<string, unknown> }).report ?? {
      status: 'failed',
      error: { message: (error as Error).message },
    };
  }
  const instances = (report.instances ?? []) as {
    instanceId: string;
    outcome: string;
    volumes: { secondsToAvailable?: number; deleted: boolean }[];
  }[];
  const tested = instances
    .map((i) => {
      const seconds = Math.max(0, ...i.volumes.map((v) => v.secondsToAvailable ?? 0));
      const deleted = i.volumes.every((v) => v.deleted) ? 'deleted' : 'NOT all deleted';
      return `${i.instanceId} ${i.outcome} (${i.volumes.length} volume(s), ${seconds} s to available, ${deleted})`;
    })
    .join('; ');
  return `weekly restore test ${String(report.status)}: ${tested || String((report.error as { message?: string })?.message ?? 'nothing to test')}`;
}
