import { ImageGoneError, toAwsCallError } from '../aws/errors.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import type { ImageFacts } from '../domain/imagePlan.ts';
import type { ImageToRetire } from '../domain/imageRetention.ts';
import { type RecycleBinRule, recycleBinRuleFor } from '../domain/recycleBin.ts';
import { isManagedBy, type SnapshotFacts } from '../domain/snapshotFacts.ts';
import { Behind } from './historyPipeline.ts';
import { DEFAULT_MAX_IN_FLIGHT, isThrottleCode, PacedPool } from './pacedPool.ts';
import type {
  ActionJournal,
  ImagesPort,
  LoggerPort,
  RecycleBinPort,
  ReportedError,
  SnapshotsPort,
} from './ports.ts';
import { type DeletionAttempt, deleteSnapshotWithResult } from './recordedDeletion.ts';
import { recordAfter } from './runReport.ts';

/** The fate of one snapshot behind a deregistered AMI. */
export interface ImageSnapshotResult {
  readonly snapshotId: string;
  readonly outcome: 'deleted' | 'planned' | 'kept' | 'skipped' | 'failed';
  readonly reason: string;
  readonly sizeGiB?: number | undefined;
  readonly error?: ReportedError | undefined;
}

/** The outcome of retiring one AMI. */
export interface ImageRetireResult {
  readonly imageId: string;
  readonly instanceId?: string | undefined;
  readonly reason: string;
  readonly outcome: 'deregistered' | 'planned' | 'gone' | 'failed' | 'deferred';
  readonly snapshots: readonly ImageSnapshotResult[];
  readonly error?: ReportedError | undefined;
}

/** What retiring AMIs reads and acts through (a part of the AMI job's dependencies). */
export interface AmiRetirementDependencies {
  readonly ec2: Pick<SnapshotsPort, 'describeSnapshotsByIds' | 'deleteSnapshot'>;
  readonly images: Pick<ImagesPort, 'listOwnImages' | 'deregisterImage'>;
  readonly recycleBin?: RecycleBinPort | undefined;
  readonly config: Pick<SnapkeeperConfig, 'deployment' | 'keys' | 'deleteConcurrency'> &
    Partial<Pick<SnapkeeperConfig, 'maxInFlight'>>;
  readonly runId: string;
  readonly logger: LoggerPort;
}

/** How a retirement run goes: acting or planning, and whether time is up for new work. */
export interface RetirementRun {
  /** False in a dry run or over the cap: nothing mutating is sent. */
  readonly act: boolean;
  /** True when too little time is left to start another deregistration. */
  readonly outOfTime: () => boolean;
  readonly journal: ActionJournal;
  /** The run's warnings, appended to. */
  readonly warnings: string[];
}

/** At most this many snapshot ids go in one `DescribeSnapshots` filter. */
export const SNAPSHOT_IDS_PER_DESCRIBE = 200;

type Deregistration = Omit<ImageRetireResult, 'snapshots'>;

/** What the snapshot decisions read once, right after the first deregistration. */
interface SnapshotContext {
  /** Undefined: the rules could not be read. */
  readonly rules: readonly RecycleBinRule[] | undefined;
  /** Snapshot → the images the account had when listed; undefined: not listed. */
  readonly holders: ReadonlyMap<string, readonly string[]> | undefined;
  /** The snapshots behind the AMIs to retire; a string: why they could not be described. */
  readonly facts: ReadonlyMap<string, SnapshotFacts> | string;
}

/**
 * Retires the planned AMIs at the pace of EC2's buckets, each in its own pool: every
 * AMI is recorded, deregistered and recorded again through the `DeregisterImage` pool,
 * and the snapshots behind it leave through the `DeleteSnapshot` pool as soon as its
 * own deregistration is done, so both buckets are spent at once. The facts the snapshot
 * decisions need are read once, after the first deregistration: the Recycle Bin rules,
 * the images that use each snapshot, and the snapshots behind all the AMIs to retire
 * (one `DescribeSnapshots` per {@link SNAPSHOT_IDS_PER_DESCRIBE} ids, filtered on
 * `snapshot-id`, which answers ids that no longer exist by leaving them out).
 *
 * A snapshot is deleted only when it is tagged as this deployment's, completed, and no
 * image uses it: an image retired in this run counts as a user until its own
 * deregistration is done, and a snapshot behind several of them is deleted once, by
 * the first in plan order. `InvalidSnapshot.InUse` at deletion keeps it. Every
 * deregistration and deletion is recorded before and after; a dry run sends nothing.
 *
 * @example
 * const retired = await retireImages(plan.retire, imageById, { act: true, outOfTime, journal, warnings }, deps);
 */
export async function retireImages(
  toRetire: readonly ImageToRetire[],
  imageById: ReadonlyMap<string, ImageFacts>,
  run: RetirementRun,
  deps: AmiRetirementDependencies,
): Promise<ImageRetireResult[]> {
  const ceiling = deps.config.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  // One pool per bucket, each paced by its own (see PacedPool), sharing MAX_IN_FLIGHT.
  const poolOptions = {
    initial: deps.config.deleteConcurrency,
    ceiling: Math.max(1, Math.floor(ceiling / 2)),
  };
  const pools = { deregister: new PacedPool(poolOptions), delete: new PacedPool(poolOptions) };
  const throttled = (r: { outcome: string; error?: ReportedError | undefined }) =>
    r.outcome === 'failed' && isThrottleCode(r.error?.code);
  const behind = new Behind();
  const deregistrations = new Map<string, Promise<Deregistration>>();
  for (const item of toRetire) {
    const deregistration = pools.deregister.run(
      () =>
        run.act && run.outOfTime()
          ? Promise.resolve<Deregistration>({
              ...item,
              outcome: 'deferred',
              reason: `${item.reason}; deferred: too little time left in this invocation`,
            })
          : deregisterOne(item, imageById.get(item.imageId), run, deps, behind),
      throttled,
    );
    deregistrations.set(item.imageId, deregistration);
  }
  const snapshots = new SnapshotRetirement(toRetire, imageById, deregistrations, run, deps, {
    pool: pools.delete,
    behind,
    throttled,
  });
  const retired = await Promise.all(
    toRetire.map(async (item) => {
      const result = await (deregistrations.get(item.imageId) as Promise<Deregistration>);
      return { ...result, snapshots: await snapshots.behind(result) };
    }),
  );
  await behind.settled(run.journal);
  return retired;
}

/**
 * The snapshots behind the retired AMIs: who deletes each (the first AMI in plan order
 * that has it), the facts read once, and each AMI's snapshot outcomes.
 */
class SnapshotRetirement {
  readonly #imageById: ReadonlyMap<string, ImageFacts>;
  readonly #deregistrations: ReadonlyMap<string, Promise<Deregistration>>;
  readonly #run: RetirementRun;
  readonly #deps: AmiRetirementDependencies;
  readonly #pacing: SnapshotPacing;
  /** Snapshot id → the AMI of this run that deletes it, and its outcome once known. */
  readonly #claims = new Map<
    string,
    { imageId: string; outcome: Promise<ImageSnapshotResult>; settle(r: ImageSnapshotResult): void }
  >();
  #context: Promise<SnapshotContext> | undefined;

  public constructor(
    toRetire: readonly ImageToRetire[],
    imageById: ReadonlyMap<string, ImageFacts>,
    deregistrations: ReadonlyMap<string, Promise<Deregistration>>,
    run: RetirementRun,
    deps: AmiRetirementDependencies,
    pacing: SnapshotPacing,
  ) {
    this.#imageById = imageById;
    this.#deregistrations = deregistrations;
    this.#run = run;
    this.#deps = deps;
    this.#pacing = pacing;
    for (const { imageId } of toRetire) {
      for (const snapshotId of imageById.get(imageId)?.snapshotIds ?? []) {
        if (this.#claims.has(snapshotId)) continue;
        let settle: (r: ImageSnapshotResult) => void = () => undefined;
        const outcome = new Promise<ImageSnapshotResult>((resolve) => {
          settle = resolve;
        });
        this.#claims.set(snapshotId, { imageId, outcome, settle });
      }
    }
  }

  /** The outcomes of the snapshots behind one AMI, once its deregistration is known. */
  public async behind(result: Deregistration): Promise<ImageSnapshotResult[]> {
    const image = this.#imageById.get(result.imageId);
    let outcomes: ImageSnapshotResult[] = [];
    try {
      outcomes = await this.#decide(result, image);
      return outcomes;
    } finally {
      // Settled even when a decision threw, so that no other AMI waits forever: a claim
      // without an outcome settles as kept (the safe side).
      for (const snapshotId of image?.snapshotIds ?? []) {
        const claim = this.#claims.get(snapshotId);
        if (claim?.imageId !== result.imageId) continue;
        claim.settle(
          outcomes.find((o) => o.snapshotId === snapshotId) ?? {
            snapshotId,
            outcome: 'kept',
            reason: 'its deletion was not decided',
          },
        );
      }
    }
  }

  async #decide(
    result: Deregistration,
    image: ImageFacts | undefined,
  ): Promise<ImageSnapshotResult[]> {
    const ids = image?.snapshotIds ?? [];
    if (ids.length === 0) return [];
    const all = (outcome: 'kept' | 'planned', reason: string) =>
      ids.map((snapshotId) => ({ snapshotId, outcome, reason }));
    if (result.outcome === 'failed' || result.outcome === 'deferred')
      return all('kept', 'the AMI was not deregistered');
    if (!this.#run.act)
      return all('planned', `behind ${result.imageId}, deleted after it is deregistered`);
    const context = await this.#readContext();
    if (context.rules === undefined) return all('kept', 'Recycle Bin rules could not be read');
    const rule = recycleBinRuleFor(image?.tags ?? {}, context.rules);
    if (rule) {
      return all(
        'kept',
        `Recycle Bin rule ${rule.identifier} keeps ${result.imageId} restorable for ${rule.retentionDays} days; its snapshots stay for the bin (the orphan sweep removes them after)`,
      );
    }
    if (!context.holders) return all('kept', 'images could not be listed');
    if (typeof context.facts === 'string') return all('kept', context.facts);
    const { holders, facts } = context;
    return Promise.all(
      ids.map((snapshotId) => this.#one(snapshotId, result.imageId, facts, holders)),
    );
  }

  async #one(
    snapshotId: string,
    imageId: string,
    facts: ReadonlyMap<string, SnapshotFacts>,
    holders: ReadonlyMap<string, readonly string[]>,
  ): Promise<ImageSnapshotResult> {
    const { keys, deployment } = this.#deps.config;
    const snapshot = facts.get(snapshotId);
    if (!snapshot) return { snapshotId, outcome: 'skipped', reason: 'already gone' };
    const kept = (reason: string): ImageSnapshotResult => ({
      snapshotId,
      outcome: 'kept',
      reason,
      sizeGiB: snapshot.sizeGiB,
    });
    if (!isManagedBy(snapshot.tags, keys, deployment))
      return kept('not tagged as created by this deployment');
    const usedBy = await this.#stillUsing(snapshotId, imageId, holders);
    if (usedBy.length > 0) return kept(`still used by ${usedBy.join(', ')}`);
    if (snapshot.state !== 'completed') return kept(`snapshot is ${snapshot.state}`);
    const claim = this.#claims.get(snapshotId);
    if (claim && claim.imageId !== imageId) {
      // Shared with an AMI retired in the same run: deleted once, by the first.
      const first = await claim.outcome;
      return first.outcome === 'deleted' || first.outcome === 'skipped'
        ? { snapshotId, outcome: 'skipped', reason: 'already gone' }
        : kept(
            `also behind an AMI retired in this run, whose deletion of it ended ${first.outcome}`,
          );
    }
    return this.#pacing.pool.run(
      () => this.#delete(snapshotId, imageId, snapshot.sizeGiB),
      this.#pacing.throttled,
    );
  }

  /**
   * The images other than `imageId` that use a snapshot: those listed that this run does
   * not retire, and those it retires whose deregistration did not happen (waited for).
   */
  async #stillUsing(
    snapshotId: string,
    imageId: string,
    holders: ReadonlyMap<string, readonly string[]>,
  ): Promise<string[]> {
    const others = (holders.get(snapshotId) ?? []).filter((id) => id !== imageId);
    const gone = await Promise.all(
      others.map(async (id) => {
        const deregistration = this.#deregistrations.get(id);
        if (!deregistration) return false;
        const { outcome } = await deregistration;
        return outcome === 'deregistered' || outcome === 'gone';
      }),
    );
    return others.filter((_, index) => !gone[index]);
  }

  #readContext(): Promise<SnapshotContext> {
    this.#context ??= readSnapshotContext(
      [...this.#claims.entries()],
      this.#imageById,
      this.#deps,
      this.#run.warnings,
    );
    return this.#context;
  }

  #delete(snapshotId: string, imageId: string, sizeGiB: number | undefined) {
    return deleteImageSnapshot(
      snapshotId,
      imageId,
      sizeGiB,
      this.#deps,
      this.#run.journal,
      this.#pacing.behind,
    );
  }
}

interface SnapshotPacing {
  readonly pool: PacedPool;
  readonly behind: Behind;
  readonly throttled: (r: ImageSnapshotResult) => boolean;
}

/**
 * Reads, at once, the Recycle Bin rules, the images using each snapshot, and then the
 * snapshots behind the AMIs no rule keeps. Each failure keeps the snapshots it concerns
 * and adds a warning; none throws.
 */
async function readSnapshotContext(
  claims: readonly (readonly [string, { readonly imageId: string }])[],
  imageById: ReadonlyMap<string, ImageFacts>,
  deps: AmiRetirementDependencies,
  warnings: string[],
): Promise<SnapshotContext> {
  const [rules, holders] = await Promise.all([
    recycleBinRules(deps, warnings),
    snapshotHolders(deps, warnings),
  ]);
  if (rules === undefined || holders === undefined) return { rules, holders, facts: new Map() };
  const ids = claims
    .filter(([, { imageId }]) => !recycleBinRuleFor(imageById.get(imageId)?.tags ?? {}, rules))
    .map(([snapshotId]) => snapshotId);
  try {
    return { rules, holders, facts: await describeInChunks(ids, deps) };
  } catch (error) {
    const message = toAwsCallError('DescribeSnapshots', error).message;
    warnings.push(
      `the snapshots behind the deregistered AMIs could not be described (${message}); kept, the orphan sweep retries`,
    );
    return {
      rules,
      holders,
      facts: `its snapshots could not be described (${message}); kept, the orphan sweep retries`,
    };
  }
}

/** The given snapshots by id, {@link SNAPSHOT_IDS_PER_DESCRIBE} ids a call, calls at once. */
async function describeInChunks(
  ids: readonly string[],
  deps: AmiRetirementDependencies,
): Promise<Map<string, SnapshotFacts>> {
  const chunks: string[][] = [];
  for (let i = 0; i < ids.length; i += SNAPSHOT_IDS_PER_DESCRIBE)
    chunks.push(ids.slice(i, i + SNAPSHOT_IDS_PER_DESCRIBE));
  const pages = await Promise.all(chunks.map((chunk) => deps.ec2.describeSnapshotsByIds(chunk)));
  return new Map(pages.flat().map((s) => [s.snapshotId, s]));
}

async function recycleBinRules(
  deps: AmiRetirementDependencies,
  warnings: string[],
): Promise<readonly RecycleBinRule[] | undefined> {
  if (!deps.recycleBin) return [];
  try {
    return await deps.recycleBin.imageRules();
  } catch (error) {
    warnings.push(
      `Recycle Bin rules could not be read (${toAwsCallError('ListRules', error).message}); snapshots of deregistered AMIs kept`,
    );
    return undefined;
  }
}

async function snapshotHolders(
  deps: AmiRetirementDependencies,
  warnings: string[],
): Promise<Map<string, string[]> | undefined> {
  try {
    const holders = new Map<string, string[]>();
    for (const image of await deps.images.listOwnImages()) {
      for (const snapshotId of image.snapshotIds)
        holders.set(snapshotId, [...(holders.get(snapshotId) ?? []), image.imageId]);
    }
    return holders;
  } catch (error) {
    warnings.push(
      `images could not be listed after deregistering (${toAwsCallError('DescribeImages', error).message}); their snapshots kept`,
    );
    return undefined;
  }
}

/** Records, deregisters and records again one AMI; a dry run only plans it. */
async function deregisterOne(
  item: ImageToRetire,
  image: ImageFacts | undefined,
  run: RetirementRun,
  deps: AmiRetirementDependencies,
  behind: Behind,
): Promise<Deregistration> {
  const base = { imageId: item.imageId, instanceId: item.instanceId, reason: item.reason };
  if (!run.act) return { ...base, outcome: 'planned' };
  const record = {
    runId: deps.runId,
    job: 'amis',
    action: 'deregister-image',
    resourceId: item.imageId,
    reason: item.reason,
    details: {
      instanceId: item.instanceId,
      snapshotIds: image?.snapshotIds ?? [],
      sizeGiB: image?.sizeGiB,
    },
  };
  try {
    await run.journal.record({ ...record, phase: 'before' });
  } catch (error) {
    const failure = toAwsCallError('RecordAction', error);
    return {
      ...base,
      outcome: 'failed',
      error: { code: 'JournalUnavailable', message: failure.message },
    };
  }
  const result = await deregistered(item, base, deps);
  behind.add(
    recordAfter(run.journal, deps.logger, {
      ...record,
      outcome: result.outcome === 'failed' ? 'failed' : 'done',
      reason: result.reason,
      ...(result.error ? { error: result.error } : {}),
    }),
  );
  return result;
}

async function deregistered(
  item: ImageToRetire,
  base: Pick<Deregistration, 'imageId' | 'instanceId' | 'reason'>,
  deps: AmiRetirementDependencies,
): Promise<Deregistration> {
  try {
    await deps.images.deregisterImage(item.imageId);
    return { ...base, outcome: 'deregistered' };
  } catch (error) {
    if (error instanceof ImageGoneError) {
      return {
        ...base,
        outcome: 'gone',
        reason: `${item.reason}; already deregistered (${error.code})`,
      };
    }
    const failure = toAwsCallError('DeregisterImage', error);
    return { ...base, outcome: 'failed', error: { code: failure.code, message: failure.message } };
  }
}

async function deleteImageSnapshot(
  snapshotId: string,
  imageId: string,
  sizeGiB: number | undefined,
  deps: AmiRetirementDependencies,
  journal: ActionJournal,
  behind: Behind,
): Promise<ImageSnapshotResult> {
  const reason = `behind deregistered ${imageId}`;
  const toResult = (attempt: DeletionAttempt): ImageSnapshotResult => {
    switch (attempt.kind) {
      case 'deleted':
        return { snapshotId, outcome: 'deleted', reason, sizeGiB };
      case 'in-use':
        return {
          snapshotId,
          outcome: 'kept',
          reason: `${reason}; in use by another image (InvalidSnapshot.InUse)`,
          sizeGiB,
        };
      case 'gone':
        return { snapshotId, outcome: 'skipped', reason: `${reason}; already deleted`, sizeGiB };
      case 'unrecorded':
        return { snapshotId, outcome: 'failed', reason, error: attempt.error };
      case 'failed':
        return { snapshotId, outcome: 'failed', reason, sizeGiB, error: attempt.error };
    }
  };
  return deleteSnapshotWithResult(
    {
      runId: deps.runId,
      job: 'amis',
      action: 'delete-snapshot',
      resourceId: snapshotId,
      reason,
      details: { imageId, sizeGiB },
    },
    deps,
    journal,
    toResult,
    behind,
  );
}
