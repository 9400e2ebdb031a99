import pLimit from 'p-limit';
import type { Ec2CopyGateway } from '../aws/Ec2CopyGateway.ts';
import type { Ec2Gateway } from '../aws/Ec2Gateway.ts';
import type { Ec2ImageGateway } from '../aws/Ec2ImageGateway.ts';
import { toAwsCallError } from '../aws/errors.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import type { InstanceFacts } from '../domain/backupPlan.ts';
import {
  type CopyPolicy,
  copyLineageKey,
  copyTags,
  copyWouldBeKept,
  planShare,
  readCarriedCount,
  readCopyPolicy,
} from '../domain/copyPolicy.ts';
import type { ImageFacts } from '../domain/imagePlan.ts';
import { toImagePoint } from '../domain/imageRetirement.ts';
import { type Ownership, ownershipOf } from '../domain/provenance.ts';
import { planRetention, type RecoveryPoint } from '../domain/retentionPlan.ts';
import { retentionRuleFor } from '../domain/retentionPolicy.ts';
import { resolveJobSchedule } from '../domain/schedules.ts';
import {
  effectiveCreatedAt,
  isManagedBy,
  type SnapshotFacts,
  toRecoveryPoint,
} from '../domain/snapshotFacts.ts';
import { parseScheduleList } from '../domain/tagPolicy.ts';
import {
  type AmiPublicAccessPort,
  type AmiPublicAccessResult,
  amiPublicAccessProblems,
  checkAmiPublicAccess,
} from './amiPublicAccess.ts';
import { Behind } from './historyPipeline.ts';
import { type CreationLedger, readOwnership } from './ownership.ts';
import { DEFAULT_MAX_IN_FLIGHT, isThrottleCode, PacedPool } from './pacedPool.ts';
import type {
  ActionJournal,
  LoggerPort,
  MetricsPort,
  ReportedError,
  RunStatus,
  RunTrigger,
} from './ports.ts';
import { type DeletionAttempt, deleteSnapshotRecorded } from './recordedDeletion.ts';
import { logJournal, noMetrics, reportForLog } from './runReport.ts';

/** At most this many copies in flight into one destination region (an EBS limit). */
export const MAX_CONCURRENT_COPIES = 20;
/** CopyImage is rate limited to about one call a second. */
export const COPY_IMAGE_INTERVAL_MS = 1_000;

/** The gateways of one region. */
export interface RegionGateways {
  readonly ec2: Pick<Ec2Gateway, 'listSnapshotsTagged' | 'deleteSnapshot' | 'snapshotHolders'>;
  readonly images: Pick<Ec2ImageGateway, 'listImagesTagged' | 'deregisterImage'> &
    AmiPublicAccessPort;
  readonly copies: Pick<Ec2CopyGateway, 'copySnapshot' | 'copyImage'>;
}

/** What the copy job reads and acts through. */
export interface CopyJobDependencies {
  readonly ec2: Pick<
    Ec2Gateway,
    'listInstancesWithTagKey' | 'listSnapshotsTagged' | 'describeSnapshotsByIds'
  >;
  readonly images: Pick<Ec2ImageGateway, 'listImagesTagged'> & AmiPublicAccessPort;
  /** Shares and public exposure in the source region. */
  readonly sharing: Pick<
    Ec2CopyGateway,
    | 'snapshotGrants'
    | 'imageGrants'
    | 'changeSnapshotGrants'
    | 'changeImageGrants'
    | 'publicSnapshots'
    | 'publicImages'
  >;
  readonly destination: (region: string) => RegionGateways;
  readonly config: Pick<
    SnapkeeperConfig,
    | 'region'
    | 'deployment'
    | 'keys'
    | 'catalog'
    | 'manualRetainDays'
    | 'copyKmsKeys'
    | 'makePrivate'
    | 'localTagAfterCreate'
  > &
    Partial<Pick<SnapkeeperConfig, 'blockPublicAmis' | 'maxInFlight'>>;
  readonly clock: () => Date;
  readonly runId: string;
  readonly logger: LoggerPort;
  readonly metrics?: MetricsPort;
  readonly journal?: ActionJournal;
  /**
   * The run history's creation records: destination retention deletes only the copies
   * it recorded making (`copy-snapshot`, `copy-image`), or made before it kept records.
   * Without it, the tags alone decide.
   */
  readonly ledger?: CreationLedger | undefined;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** What a copy run is asked to do. */
export interface CopyJobInput {
  readonly trigger: RunTrigger;
  readonly dryRun: boolean;
  /** Copy these source snapshots (an `EBS Snapshot Notification`); all of them when absent. */
  readonly snapshotIds?: readonly string[] | undefined;
}

/** One copy of one source into one region. */
export interface CopyResult {
  readonly kind: 'snapshot' | 'image';
  readonly sourceId: string;
  readonly region: string;
  /** `retired`: copy retention removed (or would at once remove) its copy; not copied again. */
  readonly outcome: 'copied' | 'exists' | 'waiting' | 'planned' | 'retired' | 'failed';
  readonly copyId?: string | undefined;
  readonly encryptedWith?: string | undefined;
  readonly reason?: string | undefined;
  readonly error?: ReportedError | undefined;
}

/** The JSON report of a copy run. */
export interface CopyReport {
  readonly runId: string;
  readonly job: 'copy';
  readonly deployment: string;
  readonly trigger: RunTrigger;
  readonly dryRun: boolean;
  readonly status: RunStatus;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly counts: {
    readonly copied: number;
    readonly existing: number;
    readonly waiting: number;
    readonly failed: number;
    readonly copiesDeleted: number;
    readonly imageCopiesDeregistered: number;
    readonly sharesChanged: number;
    readonly publicFindings: number;
  };
  readonly copies: readonly CopyResult[];
  readonly destinationRetention: readonly {
    region: string;
    resourceId: string;
    action: 'deleted' | 'deregistered' | 'planned' | 'failed' | 'skipped';
    reason: string;
  }[];
  readonly shares: readonly {
    resourceId: string;
    added: readonly string[];
    removed: readonly string[];
    outcome: 'changed' | 'planned' | 'blocked' | 'failed';
    reason?: string | undefined;
  }[];
  /** Public snapshots and AMIs of the account: a security finding each. */
  readonly publicFindings: readonly {
    resourceId: string;
    kind: 'snapshot' | 'image';
    managed: boolean;
    madePrivate: boolean;
  }[];
  /** The account's block public access for AMIs, per region (source, then destinations). */
  readonly amiBlockPublicAccess: readonly AmiPublicAccessResult[];
  readonly problems: readonly string[];
}

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
  const { config, logger } = deps;
  const { keys } = config;
  const metrics = deps.metrics ?? noMetrics;
  const journal = deps.journal ?? logJournal(logger);
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const startedAt = deps.clock();
  const problems: string[] = [];
  const ours = { [keys.managed]: 'true', [keys.deployment]: config.deployment };
  const isCopy = (tags: Readonly<Record<string, string>>) => tags[keys.sourceRegion] !== undefined;

  // 1. Read: the fleet's policies, the sources.
  const instances = new Map<string, InstanceFacts>();
  for (const tagKey of [keys.backup, keys.ami]) {
    for await (const instance of deps.ec2.listInstancesWithTagKey(tagKey))
      instances.set(instance.instanceId, instance);
  }
  const policies = new Map<string, CopyPolicy>();
  for (const [id, instance] of instances) {
    const listed = [
      ...parseScheduleList(id, keys.backup, instance.tags[keys.backup], config.catalog).schedules,
      ...parseScheduleList(id, keys.ami, instance.tags[keys.ami], config.catalog).schedules,
    ];
    const scheduleRegions = [
      ...new Set(listed.flatMap((name) => config.catalog.schedules.get(name)?.copyTo ?? [])),
    ];
    const policy = readCopyPolicy(
      id,
      instance.tags,
      keys,
      config.region,
      config.copyKmsKeys,
      scheduleRegions,
    );
    policies.set(id, policy);
    problems.push(...policy.problems.map((p) => p.message));
  }
  const snapshots: SnapshotFacts[] = [];
  if (input.snapshotIds) {
    snapshots.push(...(await deps.ec2.describeSnapshotsByIds(input.snapshotIds)));
  } else {
    for await (const s of deps.ec2.listSnapshotsTagged(ours)) snapshots.push(s);
  }
  // The snapshots behind an AMI of ours (tagged like a snapshot set on AWS) are copied
  // with their AMI by CopyImage, never a second time on their own.
  let ownImages: ImageFacts[] = [];
  try {
    ownImages = (await deps.images.listImagesTagged(ours)).filter((i) => !isCopy(i.tags));
  } catch (error) {
    // The scheduled run cannot go on without its AMIs; an EBS event copies its snapshots,
    // leaving those EC2 describes as made by CreateImage to their AMI, and says so.
    if (!input.snapshotIds) throw error;
    problems.push(
      `AMIs could not be listed (${toAwsCallError('DescribeImages', error).message}); snapshots are told from AMI snapshots by their description only`,
    );
  }
  const behindImages = new Set(ownImages.flatMap((i) => i.snapshotIds));
  const sources = snapshots.filter(
    (s) =>
      isManagedBy(s.tags, keys, config.deployment) &&
      !isCopy(s.tags) &&
      !behindImages.has(s.snapshotId) &&
      !(s.description ?? '').startsWith('Created by CreateImage('),
  );
  const images = input.snapshotIds ? [] : ownImages;

  // The count a copy carries: copy-retain, else the source's own rule. When that rule
  // cannot be read the copy carries none, and its lineage is kept whole (and reported),
  // never trimmed to a guessed count.
  const unreadableRules = new Set<string>();
  const countFor = (
    tags: Readonly<Record<string, string>>,
    policy: CopyPolicy | undefined,
    image: boolean,
  ): number | undefined => {
    if (policy?.retain) return policy.retain;
    const instanceId = tags[keys.instanceId] ?? '';
    const countKey = image ? keys.amiRetain : keys.retain;
    const unreadable = (why: string): undefined => {
      const message = `${instanceId}: ${why}; its copies carry no ${keys.copyRetain} and are all kept (set ${keys.copyRetain} or fix the tag)`;
      if (!unreadableRules.has(message)) {
        unreadableRules.add(message);
        problems.push(message);
      }
      return undefined;
    };
    let schedule: ReturnType<typeof resolveJobSchedule>;
    try {
      schedule = resolveJobSchedule(
        config.catalog,
        tags[keys.schedule] ?? 'manual',
        config.manualRetainDays,
      );
    } catch (error) {
      return unreadable(
        `the retention rule cannot be read (${error instanceof Error ? error.message : String(error)})`,
      );
    }
    const instance = instances.get(instanceId);
    const rule = retentionRuleFor(
      image ? { ...schedule, retain: schedule.amiRetain ?? schedule.retain } : schedule,
      instance?.tags,
      instance?.instanceId ?? '',
      keys,
      config.catalog,
      countKey,
    );
    if (!rule.rule) {
      return unreadable(
        `the retention rule cannot be read (${rule.problems.map((p) => p.message).join('; ')})`,
      );
    }
    return rule.rule.count;
  };

  // 2. Copy, region by region.
  const copies: CopyResult[] = [];
  const copyPool = new PacedPool({
    initial: MAX_CONCURRENT_COPIES,
    ceiling: config.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
  });
  const regions = new Set([...policies.values()].flatMap((p) => p.regions));
  const destinationRetention: CopyReport['destinationRetention'][number][] = [];
  for (const region of regions) {
    const dest = deps.destination(region);
    let existing: SnapshotFacts[];
    let existingImages: ImageFacts[];
    try {
      existing = [];
      for await (const s of dest.ec2.listSnapshotsTagged({
        ...ours,
        [keys.sourceRegion]: config.region,
      }))
        existing.push(s);
      existingImages = await dest.images.listImagesTagged({
        ...ours,
        [keys.sourceRegion]: config.region,
      });
    } catch (error) {
      const failure = toAwsCallError('Describe', error);
      problems.push(
        `${region}: copies could not be listed (${failure.message}); nothing copied there`,
      );
      continue;
    }
    // A copy in error holds nothing: the source is copied again (retention removes the
    // errored copy after a day).
    const copied = new Set(
      existing.filter((s) => s.state !== 'error').map((s) => s.tags[keys.sourceSnapshotId]),
    );
    const copiedImages = new Set(
      existingImages
        .filter((i) => !['failed', 'error', 'invalid'].includes(i.state))
        .map((i) => i.tags[keys.sourceImageId]),
    );
    // A source older than every copy its lineage keeps here was copied before and its copy
    // retired (or would be retired at once): it is not copied again.
    const { lineages } = copyLineages(
      existing,
      existingImages,
      keys,
      config.deployment,
      deps.clock(),
    );
    const retainedLater = (
      kind: 'snapshot' | 'image',
      sourceId: string,
      createdAt: Date,
      count: number | undefined,
      lineageTags: Readonly<Record<string, string>>,
    ): string | undefined => {
      const key = copyLineageKey(kind, lineageTags, keys);
      const lineage = key === undefined ? undefined : lineages.get(key);
      if (!lineage) return undefined;
      const groupCount = createdAt.getTime() >= lineage.newest ? count : lineage.count;
      if (copyWouldBeKept({ id: sourceId, createdAt }, lineage.points, groupCount, deps.clock()))
        return undefined;
      return `older than the ${groupCount} copies kept in ${region}: copy retention removed (or would remove) its copy, so it is not copied again`;
    };
    // Snapshot and AMI copies share the 20 copies in flight into a region.
    let inFlight =
      existing.filter((s) => s.state === 'pending').length +
      existingImages.filter((i) => i.state === 'pending').length;
    // The snapshot copies the plan allows leave together, paced by the CopySnapshot
    // bucket (see PacedPool), not one after another; their records are written behind.
    const snapshotCopies: (CopyResult | Promise<CopyResult>)[] = [];
    const behind = new Behind();
    for (const source of sources) {
      const policy = policies.get(source.tags[keys.instanceId] ?? '');
      if (!policy?.regions.includes(region)) continue;
      const base = { kind: 'snapshot' as const, sourceId: source.snapshotId, region };
      if (copied.has(source.snapshotId)) {
        snapshotCopies.push({ ...base, outcome: 'exists' });
        continue;
      }
      if (source.state !== 'completed') {
        snapshotCopies.push({ ...base, outcome: 'waiting', reason: 'the source is still pending' });
        continue;
      }
      const retained = retainedLater(
        'snapshot',
        source.snapshotId,
        effectiveCreatedAt(source.tags, source.startTime, keys, deps.clock()),
        countFor(source.tags, policy, false),
        { ...source.tags, [keys.sourceVolumeId]: source.volumeId },
      );
      if (retained) {
        snapshotCopies.push({ ...base, outcome: 'retired', reason: retained });
        continue;
      }
      if (inFlight >= MAX_CONCURRENT_COPIES) {
        snapshotCopies.push({
          ...base,
          outcome: 'waiting',
          reason: `${MAX_CONCURRENT_COPIES} copies already in flight into ${region}`,
        });
        continue;
      }
      const kmsKeyId = policy.kmsKeys[region];
      if (input.dryRun) {
        snapshotCopies.push({ ...base, outcome: 'planned', encryptedWith: kmsKeyId });
        continue;
      }
      // The slot is taken as the copy is sent: a copy that fails leaves it unused this run.
      inFlight += 1;
      const copying = async (): Promise<CopyResult> => {
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
              countFor(source.tags, policy, false),
            ),
          });
          behind.add(
            journal
              .record({
                runId: deps.runId,
                job: 'copy',
                action: 'copy-snapshot',
                resourceId: copyId,
                phase: 'after',
                outcome: 'done',
                reason: `copy of ${source.snapshotId} into ${region}`,
                details: {
                  snapshotId: source.snapshotId,
                  volumeId: source.volumeId,
                  region,
                  instanceId: source.tags[keys.instanceId],
                },
              })
              .catch((error: unknown) =>
                deps.logger.error('copy made but not recorded', {
                  copyId,
                  region,
                  error: error instanceof Error ? error.message : String(error),
                }),
              ),
          );
          return { ...base, outcome: 'copied', copyId, encryptedWith: kmsKeyId };
        } catch (error) {
          const failure = toAwsCallError('CopySnapshot', error);
          return {
            ...base,
            outcome: 'failed',
            error: { code: failure.code, message: failure.message },
          };
        }
      };
      snapshotCopies.push(
        copyPool.run(copying, (r) => r.outcome === 'failed' && isThrottleCode(r.error?.code)),
      );
    }
    copies.push(...(await Promise.all(snapshotCopies)));
    let imageCalls = 0;
    for (const image of images) {
      const policy = policies.get(image.tags[keys.instanceId] ?? '');
      if (!policy?.regions.includes(region)) continue;
      const base = { kind: 'image' as const, sourceId: image.imageId, region };
      if (copiedImages.has(image.imageId)) {
        copies.push({ ...base, outcome: 'exists' });
        continue;
      }
      if (image.state !== 'available') {
        copies.push({ ...base, outcome: 'waiting', reason: `the source AMI is ${image.state}` });
        continue;
      }
      const imageRetired = retainedLater(
        'image',
        image.imageId,
        effectiveCreatedAt(image.tags, image.creationDate ?? new Date(0), keys, deps.clock()),
        countFor(image.tags, policy, true),
        image.tags,
      );
      if (imageRetired) {
        copies.push({ ...base, outcome: 'retired', reason: imageRetired });
        continue;
      }
      if (inFlight >= MAX_CONCURRENT_COPIES) {
        copies.push({
          ...base,
          outcome: 'waiting',
          reason: `${MAX_CONCURRENT_COPIES} copies already in flight into ${region}`,
        });
        continue;
      }
      const kmsKeyId = policy.kmsKeys[region];
      if (input.dryRun) {
        copies.push({ ...base, outcome: 'planned', encryptedWith: kmsKeyId });
        continue;
      }
      if (imageCalls > 0) await sleep(COPY_IMAGE_INTERVAL_MS);
      imageCalls += 1;
      try {
        const copyId = await dest.copies.copyImage(
          {
            sourceRegion: config.region,
            sourceImageId: image.imageId,
            name: `${image.name ?? image.imageId}-from-${config.region}`.slice(0, 128),
            kmsKeyId,
            tags: copyTags(
              image.tags,
              keys,
              { imageId: image.imageId },
              config.region,
              countFor(image.tags, policy, true),
            ),
          },
          config.localTagAfterCreate,
        );
        inFlight += 1;
        copies.push({ ...base, outcome: 'copied', copyId, encryptedWith: kmsKeyId });
        // The creation record: what this copy job may ever deregister.
        await journal
          .record({
            runId: deps.runId,
            job: 'copy',
            action: 'copy-image',
            resourceId: copyId,
            phase: 'after',
            outcome: 'done',
            reason: `copy of ${image.imageId} into ${region}`,
            details: { imageId: image.imageId, region, instanceId: image.tags[keys.instanceId] },
          })
          .catch(() => undefined);
      } catch (error) {
        const failure = toAwsCallError('CopyImage', error);
        copies.push({
          ...base,
          outcome: 'failed',
          error: { code: failure.code, message: failure.message },
        });
      }
    }

    // The copies' creation records are written before the ownership below reads them.
    await behind.settled(journal);

    // Destination retention, with the count the copies carry.
    // Only the copies the run history recorded making (or made before it kept records)
    // are this job's to delete; the others are kept and reported.
    const ownership = await readOwnership(
      deps.ledger,
      [
        ...existing.map((c) => ({ id: c.snapshotId, createdByEc2At: c.startTime })),
        ...existingImages.map((i) => ({
          id: i.imageId,
          createdByEc2At: i.creationDate ?? new Date(0),
        })),
      ],
      deps.clock(),
      logger,
    );
    const retention = await retainCopies(
      region,
      existing,
      existingImages,
      ownership,
      input.dryRun,
      deps,
      journal,
    );
    destinationRetention.push(...retention.results);
    problems.push(...retention.problems);
  }

  // 3. Shares.
  const shares: CopyReport['shares'][number][] = [];
  const shareLimit = pLimit(5);
  const shared = [
    ...sources.map((s) => ({
      kind: 'snapshot' as const,
      id: s.snapshotId,
      tags: s.tags,
      defaultKey: s.encrypted === true && (!s.kmsKeyId || s.kmsKeyId.includes('alias/aws/ebs')),
      encrypted: s.encrypted === true,
    })),
    ...images.map((i) => ({
      kind: 'image' as const,
      id: i.imageId,
      tags: i.tags,
      defaultKey: false,
      encrypted: false,
    })),
  ].filter((r) => instances.get(r.tags[keys.instanceId] ?? '')?.tags[keys.shareWith] !== undefined);
  await Promise.all(
    shared.map((resource) =>
      shareLimit(async () => {
        const wanted = policies.get(resource.tags[keys.instanceId] ?? '')?.shareWith ?? [];
        try {
          const grants =
            resource.kind === 'snapshot'
              ? await deps.sharing.snapshotGrants(resource.id)
              : await deps.sharing.imageGrants(resource.id);
          const plan = planShare(wanted, grants.accounts, resource.defaultKey);
          if (plan.add.length === 0 && plan.remove.length === 0 && !plan.blocked) return;
          if (plan.blocked) {
            shares.push({
              resourceId: resource.id,
              added: [],
              removed: [],
              outcome: 'blocked',
              reason: plan.blocked,
            });
            if (plan.remove.length === 0) return;
          }
          if (input.dryRun) {
            shares.push({
              resourceId: resource.id,
              added: plan.add,
              removed: plan.remove,
              outcome: 'planned',
            });
            return;
          }
          if (resource.kind === 'snapshot')
            await deps.sharing.changeSnapshotGrants(resource.id, plan);
          else await deps.sharing.changeImageGrants(resource.id, plan);
          shares.push({
            resourceId: resource.id,
            added: plan.add,
            removed: plan.remove,
            outcome: 'changed',
          });
        } catch (error) {
          const failure = toAwsCallError('ModifyAttribute', error);
          shares.push({
            resourceId: resource.id,
            added: [],
            removed: [],
            outcome: 'failed',
            // The AWS-managed aws/ebs key shows as a plain key ARN: when sharing an
            // encrypted snapshot fails, name the likely cause and its fix.
            reason: resource.encrypted
              ? `${failure.message}; if it is encrypted with the default aws/ebs key it cannot be shared: copy it with a customer-managed KMS key (snapkeeper:copy-kms-key) and share the copy`
              : failure.message,
          });
        }
      }),
    ),
  );

  // 4. Public exposure.
  const publicFindings: CopyReport['publicFindings'][number][] = [];
  try {
    const found = [
      ...(await deps.sharing.publicSnapshots()).map((s) => ({
        resourceId: s.snapshotId,
        kind: 'snapshot' as const,
        tags: s.tags,
      })),
      ...(await deps.sharing.publicImages()).map((i) => ({
        resourceId: i.imageId,
        kind: 'image' as const,
        tags: i.tags,
      })),
    ];
    for (const finding of found) {
      const managed = isManagedBy(finding.tags, keys, config.deployment);
      let madePrivate = false;
      if (managed && config.makePrivate && !input.dryRun) {
        const change = { add: [], remove: [], makePrivate: true };
        if (finding.kind === 'snapshot')
          await deps.sharing.changeSnapshotGrants(finding.resourceId, change);
        else await deps.sharing.changeImageGrants(finding.resourceId, change);
        madePrivate = true;
      }
      logger.warn('security finding: public backup', {
        resourceId: finding.resourceId,
        managed,
        madePrivate,
      });
      publicFindings.push({
        resourceId: finding.resourceId,
        kind: finding.kind,
        managed,
        madePrivate,
      });
    }
  } catch (error) {
    problems.push(
      `public exposure could not be checked: ${toAwsCallError('Describe', error).message}`,
    );
  }

  // 5. Block public access for AMIs, where this run keeps images.
  const amiBlockPublicAccess = await checkAmiPublicAccess(
    [
      { region: config.region, images: deps.images },
      ...[...regions].map((r) => ({ region: r, images: deps.destination(r).images })),
    ],
    { enable: config.blockPublicAmis === true, dryRun: input.dryRun },
    { logger, journal, runId: deps.runId },
  );
  problems.push(...amiPublicAccessProblems(amiBlockPublicAccess));

  const counts = {
    copied: copies.filter((c) => c.outcome === 'copied').length,
    existing: copies.filter((c) => c.outcome === 'exists').length,
    waiting: copies.filter((c) => c.outcome === 'waiting').length,
    failed:
      copies.filter((c) => c.outcome === 'failed').length +
      shares.filter((s) => s.outcome === 'failed').length,
    copiesDeleted: destinationRetention.filter((d) => d.action === 'deleted').length,
    imageCopiesDeregistered: destinationRetention.filter((d) => d.action === 'deregistered').length,
    sharesChanged: shares.filter((s) => s.outcome === 'changed').length,
    publicFindings: publicFindings.length,
  };
  const status: RunStatus =
    counts.failed > 0 ||
    problems.length > 0 ||
    shares.some((s) => s.outcome === 'blocked') ||
    publicFindings.some((f) => !f.madePrivate)
      ? 'partial'
      : 'succeeded';
  const report: CopyReport = {
    runId: deps.runId,
    job: 'copy',
    deployment: config.deployment,
    trigger: input.trigger,
    dryRun: input.dryRun,
    status,
    startedAt: startedAt.toISOString(),
    endedAt: deps.clock().toISOString(),
    counts,
    copies,
    destinationRetention,
    shares,
    publicFindings,
    amiBlockPublicAccess,
    problems,
  };
  metrics.count('SnapshotsCopied', counts.copied);
  metrics.count('PublicBackups', counts.publicFindings);
  (status === 'succeeded' ? logger.info : logger.warn).call(logger, `copy run ${status}`, {
    report: reportForLog(report),
  });
  return report;
}

async function retainCopies(
  region: string,
  copies: readonly SnapshotFacts[],
  images: readonly ImageFacts[],
  ownership: Ownership,
  dryRun: boolean,
  deps: CopyJobDependencies,
  journal: ActionJournal,
): Promise<{ results: CopyReport['destinationRetention'][number][]; problems: string[] }> {
  const { keys, deployment } = deps.config;
  const dest = deps.destination(region);
  const now = deps.clock();
  const results: CopyReport['destinationRetention'][number][] = [];
  const problems: string[] = [];
  let holders: Map<string, string[]>;
  try {
    holders = await dest.ec2.snapshotHolders();
  } catch (error) {
    return {
      results: [
        {
          region,
          resourceId: region,
          action: 'skipped',
          reason: `images could not be listed (${toAwsCallError('DescribeImages', error).message}); nothing deleted`,
        },
      ],
      problems,
    };
  }
  if (ownership.kind === 'unreadable') {
    const reason = `kept: the run history cannot be read (${ownership.reason}), so which copies this job made is unknown; nothing deleted`;
    return {
      results: [{ region, resourceId: region, action: 'skipped', reason }],
      problems: [`${region}: ${reason}`],
    };
  }
  // The snapshots behind an AMI copy go with it: judged by their image, not one by one.
  const unowned = new Map<string, string>();
  for (const c of copies) {
    if (c.tags[keys.sourceImageId] !== undefined) continue;
    const verdict = ownershipOf(c.snapshotId, 'copy', c.startTime, ownership);
    if (!verdict.owned && isManagedBy(c.tags, keys, deployment))
      unowned.set(c.snapshotId, verdict.reason);
  }
  for (const i of images) {
    const verdict = ownershipOf(i.imageId, 'copy', i.creationDate ?? new Date(0), ownership);
    if (!verdict.owned && isManagedBy(i.tags, keys, deployment))
      unowned.set(i.imageId, verdict.reason);
  }
  for (const [id, reason] of unowned) {
    results.push({ region, resourceId: id, action: 'skipped', reason });
  }
  const { lineages: groups, unkeyed } = copyLineages(
    copies.filter((c) => !unowned.has(c.snapshotId)),
    images.filter((i) => !unowned.has(i.imageId)),
    keys,
    deployment,
    now,
    holders,
  );
  for (const copy of unkeyed) {
    const reason = `kept: the ${copy.kind === 'snapshot' ? `source volume (${keys.sourceVolumeId})` : `instance (${keys.instanceId})`} or schedule it was copied from is not recorded on it, so it belongs to no lineage; delete it by hand if it is not needed`;
    results.push({ region, resourceId: copy.id, action: 'skipped', reason });
    problems.push(`${region}: copy ${copy.id} ${reason}`);
  }
  for (const group of groups.values()) {
    if (group.count !== undefined) continue;
    const newest = group.newestId;
    const reason = `kept: the newest copy of this lineage (${newest}) carries no readable ${keys.copyRetain}, so none of its ${group.points.length} copies is deleted; set ${keys.copyRetain} on the instance`;
    results.push({ region, resourceId: newest, action: 'skipped', reason });
    problems.push(`${region}: ${reason}`);
  }
  const imageById = new Map(images.map((i) => [i.imageId, i]));
  for (const group of groups.values()) {
    if (group.count === undefined) continue;
    // The destination cannot see the instance: like an orphan, the last copy always stays.
    const plan = planRetention(
      group.points,
      { count: group.count },
      { now, timezone: 'UTC', orphan: true, intervalMs: 86_400_000 },
    );
    for (const decision of plan.decisions) {
      if (decision.action !== 'delete') continue;
      if (dryRun) {
        results.push({
          region,
          resourceId: decision.id,
          action: 'planned',
          reason: decision.reason,
        });
        continue;
      }
      const record = {
        runId: deps.runId,
        job: 'copy',
        action: group.kind === 'snapshot' ? 'delete-snapshot' : 'deregister-image',
        resourceId: decision.id,
        reason: `${decision.reason} (copies in ${region})`,
        details: { region },
      };
      if (group.kind === 'snapshot') {
        const attempt = await deleteSnapshotRecorded(
          record,
          () => dest.ec2.deleteSnapshot(decision.id),
          journal,
          deps.logger,
          (a) =>
            a.kind === 'deleted' ? record.reason : `${record.reason}; not deleted: ${a.kind}`,
        );
        results.push(retentionResult(region, decision.id, decision.reason, attempt));
        continue;
      }
      try {
        await journal.record({ ...record, phase: 'before' });
      } catch (error) {
        results.push({
          region,
          resourceId: decision.id,
          action: 'failed',
          reason: `not deregistered: its record could not be written (${toAwsCallError('RecordAction', error).message})`,
        });
        continue;
      }
      try {
        await dest.images.deregisterImage(decision.id);
      } catch (error) {
        const failure = toAwsCallError('DeregisterImage', error);
        results.push({
          region,
          resourceId: decision.id,
          action: 'failed',
          reason: failure.message,
        });
        await journal
          .record({
            ...record,
            phase: 'after',
            outcome: 'failed',
            error: { code: failure.code, message: failure.message },
          })
          .catch(() => undefined);
        continue;
      }
      results.push({
        region,
        resourceId: decision.id,
        action: 'deregistered',
        reason: decision.reason,
      });
      await journal.record({ ...record, phase: 'after', outcome: 'done' }).catch(() => undefined);
      // The deregistered copy's snapshots: each recorded before and after, like any deletion.
      for (const snapshotId of imageById.get(decision.id)?.snapshotIds ?? []) {
        const reason = `behind deregistered copy ${decision.id} (copies in ${region})`;
        const attempt = await deleteSnapshotRecorded(
          {
            runId: deps.runId,
            job: 'copy',
            action: 'delete-snapshot',
            resourceId: snapshotId,
            reason,
            details: { region, imageId: decision.id },
          },
          () => dest.ec2.deleteSnapshot(snapshotId),
          journal,
          deps.logger,
          (a) => (a.kind === 'deleted' ? reason : `${reason}; not deleted: ${a.kind}`),
        );
        results.push(
          retentionResult(region, snapshotId, `behind deregistered copy ${decision.id}`, attempt),
        );
      }
    }
  }
  return { results, problems };
}

/** The copies of one lineage in a destination, with the count its newest copy carries. */
interface CopyLineage {
  readonly kind: 'snapshot' | 'image';
  readonly points: RecoveryPoint[];
  /** Undefined when the newest copy carries no readable count: the lineage is kept whole. */
  count: number | undefined;
  newest: number;
  newestId: string;
}

/**
 * The destination's copies by lineage ({@link copyLineageKey}): snapshot copies by the
 * recorded source volume and schedule, never by their own volume id (`vol-ffffffff` on
 * AWS); the snapshots behind an AMI copy belong to that copy and are left out. Managed
 * copies that name no lineage come back as `unkeyed`: kept and reported.
 */
function copyLineages(
  copies: readonly SnapshotFacts[],
  images: readonly ImageFacts[],
  keys: CopyJobDependencies['config']['keys'],
  deployment: string,
  now: Date,
  holders: ReadonlyMap<string, readonly string[]> = new Map(),
): {
  lineages: Map<string, CopyLineage>;
  unkeyed: { id: string; kind: 'snapshot' | 'image' }[];
} {
  const lineages = new Map<string, CopyLineage>();
  const unkeyed: { id: string; kind: 'snapshot' | 'image' }[] = [];
  const add = (
    kind: 'snapshot' | 'image',
    tags: Readonly<Record<string, string>>,
    point: RecoveryPoint,
  ) => {
    const key = copyLineageKey(kind, tags, keys);
    if (key === undefined) {
      if (point.managed) unkeyed.push({ id: point.id, kind });
      return;
    }
    const count = readCarriedCount(tags, keys);
    const group = lineages.get(key) ?? { kind, points: [], count, newest: 0, newestId: point.id };
    group.points.push(point);
    if (point.createdAt.getTime() >= group.newest) {
      group.newest = point.createdAt.getTime();
      group.newestId = point.id;
      group.count = count;
    }
    lineages.set(key, group);
  };
  for (const copy of copies) {
    if (copy.tags[keys.sourceImageId] !== undefined) continue;
    add('snapshot', copy.tags, toRecoveryPoint(copy, keys, deployment, holders, now));
  }
  const noUsage = new Map<string, string[]>();
  for (const image of images) {
    add('image', image.tags, toImagePoint(image, keys, deployment, noUsage, now));
  }
  return { lineages, unkeyed };
}

/** A recorded deletion as the copy report's destination retention shows it. */
function retentionResult(
  region: string,
  resourceId: string,
  reason: string,
  attempt: DeletionAttempt,
): CopyReport['destinationRetention'][number] {
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
