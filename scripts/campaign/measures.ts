/**
 * The campaign's measures: a slot's backups and a retention run's deletions counted into a
 * scenario's tally (expected, made or done, reported, traced in the history), the run
 * holding a slot, the snapshots of a slot, and the error a handler call threw.
 */
import type { LaunchedInstance } from '../../harness/localFleet.ts';
import {
  existingSnapshots,
  extraSnapshotsOfSlot,
  type SeededSnapshot,
  type Settled,
  snapshotIdsOf,
  snapshotSetsOfSlot,
  untracedResources,
} from '../../harness/measurements.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import type { RetentionReport } from '../../lib/jobs/retentionJob.ts';
import { check, type ScenarioContext, type Tally } from './scenario.ts';

/** The run holding a slot: how an operator finds a run whose process died. */
export async function holderOf(ctx: ScenarioContext, job: string, slot: string): Promise<string> {
  return (await ctx.history.getSlotClaim({ job, schedule: 'daily', slot }))?.runId ?? 'none';
}

/** Counts a slot's backups: instances with a set, duplicates, and the sets' traces in the history. */
export async function tallyBackups(
  ctx: ScenarioContext,
  tally: Tally,
  slot: string,
  due: readonly LaunchedInstance[],
  reported: number,
  traced = true,
): Promise<void> {
  const sets = await snapshotSetsOfSlot(ctx.ec2, ctx.deployment, slot);
  tally.backupsExpected += due.length;
  tally.backupsMade += due.filter((i) => (sets.get(i.instanceId)?.size ?? 0) > 0).length;
  tally.backupsReported += reported;
  tally.duplicates += await extraSnapshotsOfSlot(ctx.ec2, ctx.deployment, slot);
  if (traced) {
    const ids = snapshotIdsOf(sets);
    tally.historyExpected += ids.length;
    tally.historyFound += ids.length - (await untracedResources(ctx.history, ids)).length;
  }
}

/** Counts a retention run: due deletions done or reported, kept ones gone, and their before/after records. */
export async function tallyDeletions(
  ctx: ScenarioContext,
  tally: Tally,
  report: RetentionReport | undefined,
  due: readonly string[],
  kept: readonly string[],
  recorded = true,
): Promise<void> {
  const left = await existingSnapshots(ctx.ec2, [...due, ...kept]);
  const deletions = report?.volumes.flatMap((v) => v.deletions) ?? [];
  tally.deletionsDue += due.length;
  tally.deletionsDone += due.filter((id) => !left.has(id)).length;
  tally.deletionsReported += due.filter(
    (id) =>
      left.has(id) &&
      deletions.some((d) => d.snapshotId === id && d.outcome !== 'deleted' && d.reason !== ''),
  ).length;
  tally.wrongDeletions += kept.filter((id) => !left.has(id)).length;
  if (recorded && report) {
    const actions = await ctx.history.runActions(report.runId);
    tally.historyExpected += due.length * 2;
    tally.historyFound += actions.filter(
      (a) => a.action === 'delete-snapshot' && due.includes(a.resourceId),
    ).length;
  }
}

/**
 * Counts a weekly retention run over seeded snapshots: those 28 days old or older (the
 * fifth weekly point on) are due, the younger ones kept (keep 4).
 *
 * @example
 * await tallyWeeklyDeletions(ctx, tally, report, seeded);
 */
export async function tallyWeeklyDeletions(
  ctx: ScenarioContext,
  tally: Tally,
  report: RetentionReport | undefined,
  seeded: readonly SeededSnapshot[],
): Promise<void> {
  const ids = (due: boolean) =>
    seeded.filter((s) => s.ageDays >= 28 === due).map((s) => s.snapshotId);
  await tallyDeletions(ctx, tally, report, ids(true), ids(false));
}

/**
 * Checks that a later delivery took a crashed run's slot over: `succeeded` (what the
 * scenario asks of the report) and the new run resumed from the crashed one, checked under
 * `name`; and that the crashed run is marked abandoned.
 *
 * @example
 * await checkTakeOver(ctx, tally, 'next delivery took over', { crashedRunId, report, succeeded });
 */
export async function checkTakeOver(
  ctx: ScenarioContext,
  tally: Tally,
  name: string,
  take: { crashedRunId: string; report: BackupReport | undefined; succeeded: boolean },
): Promise<void> {
  const run = take.report ? await ctx.history.getRun(take.report.runId) : undefined;
  check(
    tally,
    name,
    take.succeeded &&
      (run as { resumedFrom?: string } | undefined)?.resumedFrom === take.crashedRunId,
  );
  check(
    tally,
    'crashed run marked abandoned',
    (await ctx.history.getRun(take.crashedRunId))?.status === 'abandoned',
  );
}

/** Snapshots of the deployment tagged with a slot (any instance, any run). */
export async function snapshotsOfSlot(ctx: ScenarioContext, slot: string): Promise<number> {
  return snapshotIdsOf(await snapshotSetsOfSlot(ctx.ec2, ctx.deployment, slot)).length;
}

/** The error a handler call threw, by name (`none` when it answered). */
export const thrown = (settled: Settled): string =>
  settled.ok ? 'none' : ((settled.error as Error | undefined)?.name ?? 'unknown');
