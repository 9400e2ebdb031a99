import { copyIntoRegion, copyPool, listDestinationCopies } from './copies.ts';
import type {
  CopyJobDependencies,
  CopyJobInput,
  CopyReport,
  CopyResult,
  CopyRun,
  DestinationRetentionResult,
  PublicFinding,
  ShareResult,
} from './copyContract.ts';
import { checkCopyRegionsAmiAccess, findPublicBackups } from './copyExposure.ts';
import { shareBackups } from './copyShares.ts';
import { carriedCount, readCopySources } from './copySources.ts';
import { retainDestinationCopies } from './destinationRetention.ts';
import type { RunStatus } from './ports.ts';
import { closeRun, logJournal, noMetrics, runStatus } from './runReport.ts';

export { COPY_IMAGE_INTERVAL_MS, MAX_CONCURRENT_COPIES } from './copies.ts';
export type {
  CopyJobDependencies,
  CopyJobInput,
  CopyReport,
  CopyResult,
  RegionGateways,
} from './copyContract.ts';

/**
 * Disaster recovery copies, shares and exposure:
 * 1. copy every completed managed snapshot (and, on the scheduled run, AMI) whose
 *    instance names `snapkeeper:copy-to` regions, into each region, with the source's
 *    tags plus where it came from and the policy at copy time, encrypted with the
 *    region's key when one is set; at most 20 copies in flight per region and one
 *    CopyImage a second, the rest reported as waiting (the next run copies them);
 * 2. in each destination, retention of the copies by source volume (or instance) and
 *    schedule with the shared planner and the count carried on the copies;
 * 3. share each managed snapshot and AMI with exactly the accounts in
 *    `snapkeeper:share-with` (never with everyone);
 * 4. list public snapshots and AMIs of the account as findings, and, when MAKE_PRIVATE
 *    is on, make this deployment's own private again.
 *
 * @example
 * const report = await runCopyJob({ trigger: 'schedule', dryRun: false }, deps);
 */
export async function runCopyJob(
  input: CopyJobInput,
  deps: CopyJobDependencies,
): Promise<CopyReport> {
  const startedAt = deps.clock();
  // 1. Read: the fleet's policies, the sources.
  const sources = await readCopySources(input, deps);
  const run: CopyRun = {
    input,
    deps,
    journal: deps.journal ?? logJournal(deps.logger),
    sleep: deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms))),
    problems: [...sources.problems],
  };
  const countFor = carriedCount(sources, deps.config, run.problems);
  const pool = copyPool(deps.config);
  // 2. Copy, region by region, then retention of the copies there.
  const copies: CopyResult[] = [];
  const destinationRetention: DestinationRetentionResult[] = [];
  for (const region of sources.regions) {
    const existing = await listDestinationCopies(region, run);
    if ('problem' in existing) {
      run.problems.push(existing.problem);
      continue;
    }
    copies.push(...(await copyIntoRegion(region, existing, sources, countFor, pool, run)));
    destinationRetention.push(...(await retainDestinationCopies(region, existing, run)));
  }
  // 3. Shares. 4. Public exposure. 5. Block public access for AMIs.
  const shares = await shareBackups(sources, run);
  const publicFindings = await findPublicBackups(run);
  const amiBlockPublicAccess = await checkCopyRegionsAmiAccess(sources.regions, run);
  const counts = copyCounts(copies, destinationRetention, shares, publicFindings);
  return closeRun<CopyReport>(
    {
      runId: deps.runId,
      job: 'copy',
      deployment: deps.config.deployment,
      trigger: input.trigger,
      dryRun: input.dryRun,
      status: copyStatus(counts, run.problems, shares, publicFindings),
      startedAt: startedAt.toISOString(),
      endedAt: deps.clock().toISOString(),
      counts,
      copies,
      destinationRetention,
      shares,
      publicFindings,
      amiBlockPublicAccess,
      problems: run.problems,
    },
    {
      label: 'copy run',
      metrics: deps.metrics ?? noMetrics,
      logger: deps.logger,
      counts: { SnapshotsCopied: counts.copied, PublicBackups: counts.publicFindings },
    },
  );
}

function copyCounts(
  copies: readonly CopyResult[],
  destinationRetention: readonly DestinationRetentionResult[],
  shares: readonly ShareResult[],
  publicFindings: readonly PublicFinding[],
): CopyReport['counts'] {
  const copied = (outcome: CopyResult['outcome']) =>
    copies.filter((c) => c.outcome === outcome).length;
  const retained = (action: DestinationRetentionResult['action']) =>
    destinationRetention.filter((d) => d.action === action).length;
  return {
    copied: copied('copied'),
    existing: copied('exists'),
    waiting: copied('waiting'),
    failed: copied('failed') + shares.filter((s) => s.outcome === 'failed').length,
    copiesDeleted: retained('deleted'),
    imageCopiesDeregistered: retained('deregistered'),
    sharesChanged: shares.filter((s) => s.outcome === 'changed').length,
    publicFindings: publicFindings.length,
  };
}

/** `partial` when anything failed, a problem was found, a share is blocked or a backup stays public. */
function copyStatus(
  counts: CopyReport['counts'],
  problems: readonly string[],
  shares: readonly ShareResult[],
  publicFindings: readonly PublicFinding[],
): RunStatus {
  return runStatus({
    failed: false,
    incomplete: false,
    hasErrors:
      counts.failed > 0 ||
      problems.length > 0 ||
      shares.some((s) => s.outcome === 'blocked') ||
      publicFindings.some((f) => !f.madePrivate),
  });
}
