import { toAwsCallError } from '../aws/errors.ts';
import { type CopyPolicy, copyTags } from '../domain/copyPolicy.ts';
import { type CopyCandidate, copyLineages, retiredSourceReason } from '../domain/copyRetention.ts';
import type { ImageFacts } from '../domain/imagePlan.ts';
import { effectiveCreatedAt, type SnapshotFacts } from '../domain/snapshotFacts.ts';
import type { CopyResult, CopyRun, RegionGateways } from './copyContract.ts';
import { type CarriedCount, type CopySources, ownTags } from './copySources.ts';
import { Behind } from './historyPipeline.ts';
import { DEFAULT_MAX_IN_FLIGHT, isThrottleCode, PacedPool } from './pacedPool.ts';
import { recordAfter } from './runReport.ts';

/** At most this many copies in flight into one destination region (an EBS limit). */
export const MAX_CONCURRENT_COPIES = 20;
/** CopyImage is rate limited to about one call a second. */
export const COPY_IMAGE_INTERVAL_MS = 1_000;

/** This deployment's copies from the source region already in one destination. */
export interface DestinationCopies {
  readonly snapshots: readonly SnapshotFacts[];
  readonly images: readonly ImageFacts[];
}

/**
 * Lists this deployment's copies from the source region in `region`, or the problem
 * (worded for the report) when they cannot be listed: nothing is copied there then.
 *
 * @example
 * const existing = await listDestinationCopies('eu-west-1', run);
 * if ('problem' in existing) run.problems.push(existing.problem);
 */
export async function listDestinationCopies(
  region: string,
  run: CopyRun,
): Promise<DestinationCopies | { readonly problem: string }> {
  const { config } = run.deps;
  const dest = run.deps.destination(region);
  const tags = { ...ownTags(config), [config.keys.sourceRegion]: config.region };
  try {
    const snapshots: SnapshotFacts[] = [];
    for await (const s of dest.ec2.listSnapshotsTagged(tags)) snapshots.push(s);
    return { snapshots, images: await dest.images.listImagesTagged(tags) };
  } catch (error) {
    const failure = toAwsCallError('Describe', error);
    return {
      problem: `${region}: copies could not be listed (${failure.message}); nothing copied there`,
    };
  }
}

/** What copying into one region shares between its snapshot and its AMI copies. */
interface RegionCopying {
  readonly region: string;
  readonly dest: RegionGateways;
  readonly run: CopyRun;
  readonly sources: CopySources;
  readonly countFor: CarriedCount;
  /** Sources already copied here (a copy in error holds nothing: copied again). */
  readonly copied: ReadonlySet<string | undefined>;
  /** Why a source is not copied again, or undefined. */
  readonly retired: (candidate: CopyCandidate) => string | undefined;
  /** Snapshot and AMI copies share the 20 copies in flight into a region. */
  inFlight: number;
}

/**
 * Copies into one destination region every source whose instance names it: snapshots
 * together, paced by the CopySnapshot bucket (`pool`), then AMIs one CopyImage a second.
 * A source already copied is `exists`, a pending one `waiting`, one whose copy retention
 * retired `retired`; beyond {@link MAX_CONCURRENT_COPIES} in flight the rest wait for the
 * next run; a dry run plans only. Each copy made is recorded (`copy-snapshot`,
 * `copy-image`): what destination retention may ever delete. The records are written
 * before this returns.
 *
 * @example
 * const results = await copyIntoRegion('eu-west-1', existing, sources, countFor, pool, run);
 */
export async function copyIntoRegion(
  region: string,
  existing: DestinationCopies,
  sources: CopySources,
  countFor: CarriedCount,
  pool: PacedPool,
  run: CopyRun,
): Promise<CopyResult[]> {
  const { keys, deployment } = run.deps.config;
  const { lineages } = copyLineages(
    existing.snapshots,
    existing.images,
    keys,
    deployment,
    run.deps.clock(),
  );
  const copying: RegionCopying = {
    region,
    dest: run.deps.destination(region),
    run,
    sources,
    countFor,
    copied: new Set([
      ...existing.snapshots
        .filter((s) => s.state !== 'error')
        .map((s) => s.tags[keys.sourceSnapshotId]),
      ...existing.images
        .filter((i) => !['failed', 'error', 'invalid'].includes(i.state))
        .map((i) => i.tags[keys.sourceImageId]),
    ]),
    retired: (candidate) =>
      retiredSourceReason(candidate, { lineages, keys, region, now: run.deps.clock() }),
    inFlight:
      existing.snapshots.filter((s) => s.state === 'pending').length +
      existing.images.filter((i) => i.state === 'pending').length,
  };
  const behind = new Behind();
  const results = await copySnapshots(copying, pool, behind);
  results.push(...(await copyImages(copying)));
  // The copies' creation records are written before destination retention reads them.
  await behind.settled(run.journal);
  return results;
}

/** The snapshot copies into one region: all sent together, paced by the pool. */
async function copySnapshots(
  copying: RegionCopying,
  pool: PacedPool,
  behind: Behind,
): Promise<CopyResult[]> {
  const { region, dest, run, countFor } = copying;
  const { config, clock } = run.deps;
  const { keys } = config;
  const results: (CopyResult | Promise<CopyResult>)[] = [];
  for (const source of copying.sources.snapshots) {
    const policy = copying.sources.policies.get(source.tags[keys.instanceId] ?? '');
    if (!policy?.regions.includes(region)) continue;
    const base = { kind: 'snapshot' as const, sourceId: source.snapshotId, region };
    const count = () => countFor(source.tags, policy, false);
    const notReady = source.state === 'completed' ? undefined : 'the source is still pending';
    const held = holdBack(copying, base, policy, notReady, () => ({
      kind: 'snapshot',
      sourceId: source.snapshotId,
      createdAt: effectiveCreatedAt(source.tags, source.startTime, keys, clock()),
      count: count(),
      lineageTags: { ...source.tags, [keys.sourceVolumeId]: source.volumeId },
    }));
    if (held) {
      results.push(held);
      continue;
    }
    const kmsKeyId = policy.kmsKeys[region];
    // The slot is taken as the copy is sent: a copy that fails leaves it unused this run.
    copying.inFlight += 1;
    const send = async (): Promise<CopyResult> => {
      try {
        const copyId = await dest.copies.copySnapshot({
          sourceRegion: config.region,
          sourceSnapshotId: source.snapshotId,
          description: `snapkeeper copy of ${source.snapshotId} from ${config.region}`,
          kmsKeyId,
          tags: copyTags(
            source.tags,
            keys,
            { volumeId: source.volumeId, snapshotId: source.snapshotId },
            config.region,
            count(),
          ),
        });
        behind.add(
          recordAfter(run.journal, run.deps.logger, {
            runId: run.deps.runId,
            job: 'copy',
            action: 'copy-snapshot',
            resourceId: copyId,
            outcome: 'done',
            reason: `copy of ${source.snapshotId} into ${region}`,
            details: {
              snapshotId: source.snapshotId,
              volumeId: source.volumeId,
              region,
              instanceId: source.tags[keys.instanceId],
            },
          }),
        );
        return { ...base, outcome: 'copied', copyId, encryptedWith: kmsKeyId };
      } catch (error) {
        return failed(base, toAwsCallError('CopySnapshot', error));
      }
    };
    results.push(pool.run(send, (r) => r.outcome === 'failed' && isThrottleCode(r.error?.code)));
  }
  return Promise.all(results);
}

/** The AMI copies into one region, one CopyImage a second (its rate limit). */
async function copyImages(copying: RegionCopying): Promise<CopyResult[]> {
  const { region, dest, run, countFor } = copying;
  const { config, clock } = run.deps;
  const { keys } = config;
  const results: CopyResult[] = [];
  let calls = 0;
  for (const image of copying.sources.images) {
    const policy = copying.sources.policies.get(image.tags[keys.instanceId] ?? '');
    if (!policy?.regions.includes(region)) continue;
    const base = { kind: 'image' as const, sourceId: image.imageId, region };
    const count = () => countFor(image.tags, policy, true);
    const notReady = image.state === 'available' ? undefined : `the source AMI is ${image.state}`;
    const held = holdBack(copying, base, policy, notReady, () => ({
      kind: 'image',
      sourceId: image.imageId,
      createdAt: effectiveCreatedAt(image.tags, image.creationDate ?? new Date(0), keys, clock()),
      count: count(),
      lineageTags: image.tags,
    }));
    if (held) {
      results.push(held);
      continue;
    }
    const kmsKeyId = policy.kmsKeys[region];
    if (calls > 0) await run.sleep(COPY_IMAGE_INTERVAL_MS);
    calls += 1;
    try {
      const copyId = await dest.copies.copyImage(
        {
          sourceRegion: config.region,
          sourceImageId: image.imageId,
          name: `${image.name ?? image.imageId}-from-${config.region}`.slice(0, 128),
          kmsKeyId,
          tags: copyTags(image.tags, keys, { imageId: image.imageId }, config.region, count()),
        },
        config.localTagAfterCreate,
      );
      copying.inFlight += 1;
      results.push({ ...base, outcome: 'copied', copyId, encryptedWith: kmsKeyId });
      // The creation record: what this copy job may ever deregister.
      await recordAfter(run.journal, run.deps.logger, {
        runId: run.deps.runId,
        job: 'copy',
        action: 'copy-image',
        resourceId: copyId,
        outcome: 'done',
        reason: `copy of ${image.imageId} into ${region}`,
        details: { imageId: image.imageId, region, instanceId: image.tags[keys.instanceId] },
      });
    } catch (error) {
      results.push(failed(base, toAwsCallError('CopyImage', error)));
    }
  }
  return results;
}

/**
 * Why a source is not copied now, as its result, or `undefined` to copy it: already
 * copied, not ready (`notReady`), retired by copy retention, no copy slot free, or a dry
 * run. `candidate` is read only when the cheaper checks pass.
 */
function holdBack(
  copying: RegionCopying,
  base: Pick<CopyResult, 'kind' | 'sourceId' | 'region'>,
  policy: CopyPolicy,
  notReady: string | undefined,
  candidate: () => CopyCandidate,
): CopyResult | undefined {
  if (copying.copied.has(base.sourceId)) return { ...base, outcome: 'exists' };
  if (notReady) return { ...base, outcome: 'waiting', reason: notReady };
  const retired = copying.retired(candidate());
  if (retired) return { ...base, outcome: 'retired', reason: retired };
  if (copying.inFlight >= MAX_CONCURRENT_COPIES) {
    return {
      ...base,
      outcome: 'waiting',
      reason: `${MAX_CONCURRENT_COPIES} copies already in flight into ${copying.region}`,
    };
  }
  if (copying.run.input.dryRun) {
    return { ...base, outcome: 'planned', encryptedWith: policy.kmsKeys[copying.region] };
  }
  return undefined;
}

function failed(
  base: Pick<CopyResult, 'kind' | 'sourceId' | 'region'>,
  failure: { readonly code: string; readonly message: string },
): CopyResult {
  return { ...base, outcome: 'failed', error: { code: failure.code, message: failure.message } };
}

/**
 * The pool the run's snapshot copies share: {@link MAX_CONCURRENT_COPIES} at first, up to
 * the configured ceiling as the CopySnapshot bucket allows (see PacedPool).
 *
 * @example
 * const pool = copyPool(deps.config);
 */
export function copyPool(config: { readonly maxInFlight?: number | undefined }): PacedPool {
  return new PacedPool({
    initial: MAX_CONCURRENT_COPIES,
    ceiling: config.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
  });
}
