import { toAwsCallError } from '../aws/errors.ts';
import { type CopyRemoval, planCopyRetention } from '../domain/copyRetention.ts';
import type { DestinationCopies } from './copies.ts';
import type { CopyRun, DestinationRetentionResult, RegionGateways } from './copyContract.ts';
import { readOwnership } from './ownership.ts';
import type { ActionRecord } from './ports.ts';
import { type DeletionAttempt, deleteSnapshotRecorded } from './recordedDeletion.ts';
import { recordAfter } from './runReport.ts';

/**
 * Retention of the copies in one destination region, with the count the copies carry:
 * reads which copies the run history recorded this job making (only those, or those made
 * before it kept records, are this job's to delete) and which snapshots registered images
 * use, plans with the pure {@link planCopyRetention}, then deletes (or, on a dry run,
 * plans) each copy, recorded before and after. An AMI copy's snapshots go right after
 * it is deregistered, each recorded like any deletion. When the images or the history
 * cannot be read nothing is deleted and the reason is reported.
 *
 * @example
 * const results = await retainDestinationCopies('eu-west-1', existing, run);
 */
export async function retainDestinationCopies(
  region: string,
  existing: DestinationCopies,
  run: CopyRun,
): Promise<DestinationRetentionResult[]> {
  const { deps } = run;
  const dest = deps.destination(region);
  const ownership = await readOwnership(
    deps.ledger,
    [
      ...existing.snapshots.map((c) => ({ id: c.snapshotId, createdByEc2At: c.startTime })),
      ...existing.images.map((i) => ({
        id: i.imageId,
        createdByEc2At: i.creationDate ?? new Date(0),
      })),
    ],
    deps.clock(),
    deps.logger,
  );
  const now = deps.clock();
  let holders: Map<string, string[]>;
  try {
    holders = await dest.ec2.snapshotHolders();
  } catch (error) {
    const reason = `images could not be listed (${toAwsCallError('DescribeImages', error).message}); nothing deleted`;
    return [{ region, resourceId: region, action: 'skipped', reason }];
  }
  const plan = planCopyRetention({
    copies: existing.snapshots,
    images: existing.images,
    holders,
    ownership,
    keys: deps.config.keys,
    deployment: deps.config.deployment,
    now,
  });
  if (plan.halted) {
    run.problems.push(`${region}: ${plan.halted}`);
    return [{ region, resourceId: region, action: 'skipped', reason: plan.halted }];
  }
  const results: DestinationRetentionResult[] = [];
  for (const kept of plan.kept) {
    results.push({ region, resourceId: kept.resourceId, action: 'skipped', reason: kept.reason });
    if (kept.problem) run.problems.push(`${region}: ${kept.problem}`);
  }
  for (const removal of plan.remove) {
    if (run.input.dryRun) {
      results.push({ region, resourceId: removal.id, action: 'planned', reason: removal.reason });
    } else {
      results.push(...(await removeCopy({ region, dest, run }, removal)));
    }
  }
  return results;
}

/** Where a removal happens: the destination region, its gateways, and the run. */
interface RetentionSite {
  readonly region: string;
  readonly dest: RegionGateways;
  readonly run: CopyRun;
}

/** Deletes one snapshot copy, or deregisters one AMI copy and then deletes its snapshots. */
async function removeCopy(
  site: RetentionSite,
  removal: CopyRemoval,
): Promise<DestinationRetentionResult[]> {
  const { region, run } = site;
  const record = {
    runId: run.deps.runId,
    job: 'copy',
    action: removal.kind === 'snapshot' ? 'delete-snapshot' : 'deregister-image',
    resourceId: removal.id,
    reason: `${removal.reason} (copies in ${region})`,
    details: { region },
  };
  if (removal.kind === 'snapshot') {
    return [await deleteSnapshotCopy(site, record, removal.reason)];
  }
  const deregistered = await deregisterImageCopy(site, record, removal.reason);
  if (deregistered.action !== 'deregistered') return [deregistered];
  // The deregistered copy's snapshots: each recorded before and after, like any deletion.
  const results = [deregistered];
  for (const snapshotId of removal.snapshotIds) {
    results.push(
      await deleteSnapshotCopy(
        site,
        {
          runId: run.deps.runId,
          job: 'copy',
          action: 'delete-snapshot',
          resourceId: snapshotId,
          reason: `behind deregistered copy ${removal.id} (copies in ${region})`,
          details: { region, imageId: removal.id },
        },
        `behind deregistered copy ${removal.id}`,
      ),
    );
  }
  return results;
}

/** Deletes one snapshot copy through {@link deleteSnapshotRecorded}; `reason` is the report's. */
async function deleteSnapshotCopy(
  { region, dest, run }: RetentionSite,
  record: Omit<ActionRecord, 'phase' | 'outcome'>,
  reason: string,
): Promise<DestinationRetentionResult> {
  const attempt = await deleteSnapshotRecorded(
    record,
    () => dest.ec2.deleteSnapshot(record.resourceId),
    run.journal,
    run.deps.logger,
    (a) => (a.kind === 'deleted' ? record.reason : `${record.reason}; not deleted: ${a.kind}`),
  );
  return retentionResult(region, record.resourceId, reason, attempt);
}

/**
 * Deregisters one AMI copy, recorded before (nothing is done when that record cannot be
 * written) and after (best effort: the image is already gone).
 */
async function deregisterImageCopy(
  { region, dest, run }: RetentionSite,
  record: Omit<ActionRecord, 'phase' | 'outcome'>,
  reason: string,
): Promise<DestinationRetentionResult> {
  const resourceId = record.resourceId;
  try {
    await run.journal.record({ ...record, phase: 'before' });
  } catch (error) {
    const failure = toAwsCallError('RecordAction', error);
    return {
      region,
      resourceId,
      action: 'failed',
      reason: `not deregistered: its record could not be written (${failure.message})`,
    };
  }
  try {
    await dest.images.deregisterImage(resourceId);
  } catch (error) {
    const failure = toAwsCallError('DeregisterImage', error);
    await recordAfter(run.journal, run.deps.logger, {
      ...record,
      outcome: 'failed',
      error: { code: failure.code, message: failure.message },
    });
    return { region, resourceId, action: 'failed', reason: failure.message };
  }
  await recordAfter(run.journal, run.deps.logger, { ...record, outcome: 'done' });
  return { region, resourceId, action: 'deregistered', reason };
}

/** A recorded deletion as the copy report's destination retention shows it. */
function retentionResult(
  region: string,
  resourceId: string,
  reason: string,
  attempt: DeletionAttempt,
): DestinationRetentionResult {
  switch (attempt.kind) {
    case 'deleted':
      return { region, resourceId, action: 'deleted', reason };
    case 'in-use':
      return { region, resourceId, action: 'skipped', reason: `${reason}; an image uses it now` };
    case 'gone':
      return { region, resourceId, action: 'skipped', reason: `${reason}; already gone` };
    case 'unrecorded':
      return {
        region,
        resourceId,
        action: 'failed',
        reason: `not deleted: its record could not be written (${attempt.error.message})`,
      };
    default:
      return {
        region,
        resourceId,
        action: 'failed',
        reason: `${attempt.error.code}: ${attempt.error.message}`,
      };
  }
}
