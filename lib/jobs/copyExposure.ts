import { toAwsCallError } from '../aws/errors.ts';
import { isManagedBy } from '../domain/snapshotFacts.ts';
import {
  type AmiPublicAccessResult,
  amiPublicAccessProblems,
  checkAmiPublicAccess,
} from './amiPublicAccess.ts';
import type { CopyRun, PublicFinding } from './copyContract.ts';

/**
 * The account's public snapshots and AMIs, a security finding each (logged as a
 * warning); when MAKE_PRIVATE is on, and not on a dry run, this deployment's own are
 * made private again (others are only reported). When they cannot be listed, the
 * problem is reported and no finding is made up.
 *
 * @example
 * const findings = await findPublicBackups(run);
 */
export async function findPublicBackups(run: CopyRun): Promise<PublicFinding[]> {
  const { deps, input } = run;
  const { config, sharing, logger } = deps;
  const findings: PublicFinding[] = [];
  try {
    const found = [
      ...(await sharing.publicSnapshots()).map((s) => ({
        resourceId: s.snapshotId,
        kind: 'snapshot' as const,
        tags: s.tags,
      })),
      ...(await sharing.publicImages()).map((i) => ({
        resourceId: i.imageId,
        kind: 'image' as const,
        tags: i.tags,
      })),
    ];
    for (const { resourceId, kind, tags } of found) {
      const managed = isManagedBy(tags, config.keys, config.deployment);
      let madePrivate = false;
      if (managed && config.makePrivate && !input.dryRun) {
        const change = { add: [], remove: [], makePrivate: true };
        if (kind === 'snapshot') await sharing.changeSnapshotGrants(resourceId, change);
        else await sharing.changeImageGrants(resourceId, change);
        madePrivate = true;
      }
      logger.warn('security finding: public backup', { resourceId, managed, madePrivate });
      findings.push({ resourceId, kind, managed, madePrivate });
    }
  } catch (error) {
    run.problems.push(
      `public exposure could not be checked: ${toAwsCallError('Describe', error).message}`,
    );
  }
  return findings;
}

/**
 * Block public access for AMIs in every region where this run keeps images: the source,
 * then each destination (see `checkAmiPublicAccess`); its problems join the run's.
 *
 * @example
 * const amiBlockPublicAccess = await checkCopyRegionsAmiAccess(sources.regions, run);
 */
export async function checkCopyRegionsAmiAccess(
  regions: ReadonlySet<string>,
  run: CopyRun,
): Promise<AmiPublicAccessResult[]> {
  const { deps, input } = run;
  const results = await checkAmiPublicAccess(
    [
      { region: deps.config.region, images: deps.images },
      ...[...regions].map((r) => ({ region: r, images: deps.destination(r).images })),
    ],
    { enable: deps.config.blockPublicAmis === true, dryRun: input.dryRun },
    { logger: deps.logger, journal: run.journal, runId: deps.runId },
  );
  run.problems.push(...amiPublicAccessProblems(results));
  return results;
}
