import {
  CreateSnapshotsCommand,
  DeleteSnapshotCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
  type Filter,
  type Image,
  type Instance,
  paginateDescribeImages,
  paginateDescribeInstances,
  paginateDescribeSnapshots,
  paginateDescribeVolumes,
  type Tag as SdkTag,
  type Snapshot,
} from '@aws-sdk/client-ec2';
import type { InstanceFacts, SnapshotSetRequest } from '../domain/backupPlan.ts';
import type { ImageFacts } from '../domain/imagePlan.ts';
import type { SnapshotFacts } from '../domain/snapshotFacts.ts';
import type { TagMap } from '../domain/tagPolicy.ts';
import {
  type AwsCallError,
  awsErrorCode,
  ConcurrentSnapshotLimitError,
  CreateSnapshotSetError,
  Ec2ErrorCode,
  SnapshotInUseError,
  SnapshotNotFoundError,
  SnapshotRateDeferredError,
  toAwsCallError,
} from './errors.ts';

/** A snapshot as `CreateSnapshots` reported it. */
export interface CreatedSnapshot {
  readonly snapshotId: string;
  readonly volumeId: string;
  readonly sizeGiB?: number | undefined;
  readonly state: string;
  readonly startTime?: string | undefined;
  /**
   * Set when the SDK needed more than one attempt: an earlier attempt may have made a
   * set whose answer was lost (CreateSnapshots takes no client token), so the caller
   * reconciles.
   */
  readonly attempts?: number;
  /**
   * Set with `attempts`: how many of the failed attempts may have made a set all the
   * same (a timeout, a cut connection or a 5xx: EC2 may have acted before the answer was
   * lost). Throttled and other 4xx attempts were refused, so they count 0.
   */
  readonly uncertainAttempts?: number;
}

/** Moved to `./errors.ts` with the other adapter errors; re-exported for its importers. */
export { CreateSnapshotSetError } from './errors.ts';

/** Codes of an attempt EC2 refused before acting on it. */
const REFUSED_ATTEMPT_CODES = new Set([
  Ec2ErrorCode.RequestLimitExceeded,
  Ec2ErrorCode.SnapshotCreationPerVolumeRateExceeded,
  Ec2ErrorCode.ConcurrentSnapshotLimitExceeded,
  'Throttling',
  'ThrottlingException',
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * Whether a failed attempt of a mutating call may have taken effect all the same: true
 * for timeouts, cut connections, 5xx answers and anything unknown (the safe side);
 * false for throttling, refused connections and 4xx client errors, which EC2 answers
 * before acting.
 *
 * @example
 * attemptMayHaveTakenEffect(Object.assign(new Error('x'), { name: 'TimeoutError' })); // true
 * attemptMayHaveTakenEffect(Object.assign(new Error('x'), { name: 'RequestLimitExceeded', $metadata: { httpStatusCode: 503 } })); // false
 */
export function attemptMayHaveTakenEffect(error: unknown): boolean {
  const code = awsErrorCode(error);
  if (REFUSED_ATTEMPT_CODES.has(code)) return false;
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
    ?.httpStatusCode;
  return !(status !== undefined && status >= 400 && status < 500 && !/Timeout/i.test(code));
}

/** Options of the EC2 gateway; the defaults suit production. */
export interface Ec2GatewayOptions {
  /** Wait before retrying a per-volume rate error (EC2 asks for about 15 s). */
  readonly snapshotRateRetryMs?: number;
  /** Retries of a per-volume rate error within the run before deferring. */
  readonly snapshotRateRetries?: number;
  /** Injectable sleep, so tests do not wait. */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Page size for describes; EC2's maximum for DescribeInstances. */
export const DESCRIBE_PAGE_SIZE = 1000;
/** DescribeVolumes allows at most 500 per page. */
export const DESCRIBE_VOLUMES_PAGE_SIZE = 500;

/**
 * The EC2 side of snapkeeper in domain terms: paginated describes with server-side
 * filters, one `CreateSnapshots` per instance with tags at creation, and the EC2
 * error codes that need more than the SDK's retries.
 *
 * @example
 * const gateway = new Ec2Gateway(new EC2Client({}));
 * for await (const instance of gateway.listInstancesWithTagKey('snapkeeper:backup')) { ... }
 */
export class Ec2Gateway {
  readonly #client: EC2Client;
  readonly #rateRetryMs: number;
  readonly #rateRetries: number;
  readonly #sleep: (ms: number) => Promise<void>;

  public constructor(client: EC2Client, options: Ec2GatewayOptions = {}) {
    this.#client = client;
    this.#rateRetryMs = options.snapshotRateRetryMs ?? 15_000;
    this.#rateRetries = options.snapshotRateRetries ?? 2;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** The underlying SDK client, for gateways of later capabilities that share it. */
  public get client(): EC2Client {
    return this.#client;
  }

  /**
   * Streams every instance that carries a tag key, in any state but terminated or
   * shutting down, page by page (1000 a page).
   *
   * @example
   * for await (const i of gateway.listInstancesWithTagKey('snapkeeper:backup')) console.log(i.instanceId);
   */
  public async *listInstancesWithTagKey(
    tagKey: string,
    states: readonly string[] = ['pending', 'running', 'stopping', 'stopped'],
  ): AsyncGenerator<InstanceFacts> {
    yield* this.#describeInstances([
      { Name: 'tag-key', Values: [tagKey] },
      { Name: 'instance-state-name', Values: [...states] },
    ]);
  }

  /**
   * Streams the given instances (not terminated), whatever their tags. Unknown ids are
   * simply absent (a filter, not `InstanceIds`, so one bad id does not fail them all).
   *
   * @example
   * for await (const i of gateway.listInstancesByIds(['i-0abc'])) console.log(i.state);
   */
  public async *listInstancesByIds(
    instanceIds: readonly string[],
    states: readonly string[] = ['pending', 'running', 'stopping', 'stopped'],
  ): AsyncGenerator<InstanceFacts> {
    // EC2 takes up to 200 values a filter.
    for (let i = 0; i < instanceIds.length; i += 200) {
      yield* this.#describeInstances([
        { Name: 'instance-id', Values: instanceIds.slice(i, i + 200) },
        { Name: 'instance-state-name', Values: [...states] },
      ]);
    }
  }

  /** Streams the instances a describe with these filters lists, page by page. */
  async *#describeInstances(filters: Filter[]): AsyncGenerator<InstanceFacts> {
    try {
      const pages = paginateDescribeInstances(
        { client: this.#client, pageSize: DESCRIBE_PAGE_SIZE },
        { Filters: filters },
      );
      for await (const page of pages) {
        for (const reservation of page.Reservations ?? []) {
          for (const instance of reservation.Instances ?? []) {
            const facts = toInstanceFacts(instance);
            if (facts) yield facts;
          }
        }
      }
    } catch (error) {
      throw toAwsCallError('DescribeInstances', error);
    }
  }

  /**
   * The tags of every volume that carries a tag key, by volume id: one paginated
   * describe per run, never one per volume.
   *
   * @example
   * const skipped = await gateway.volumeTagsWithKey('snapkeeper:skip');
   */
  public async volumeTagsWithKey(tagKey: string): Promise<Map<string, TagMap>> {
    const result = new Map<string, TagMap>();
    try {
      const pages = paginateDescribeVolumes(
        { client: this.#client, pageSize: DESCRIBE_VOLUMES_PAGE_SIZE },
        { Filters: [{ Name: 'tag-key', Values: [tagKey] }] },
      );
      for await (const page of pages) {
        for (const volume of page.Volumes ?? []) {
          if (volume.VolumeId) result.set(volume.VolumeId, toTagMap(volume.Tags));
        }
      }
    } catch (error) {
      throw toAwsCallError('DescribeVolumes', error);
    }
    return result;
  }

  /**
   * Creates one crash-consistent snapshot set of an instance with `CreateSnapshots`,
   * tagged at creation (no separate CreateTags). `RequestLimitExceeded` and 5xx are
   * retried by the SDK; `SnapshotCreationPerVolumeRateExceeded` is retried here after
   * a pause and then deferred; `ConcurrentSnapshotLimitExceeded` is not retried.
   * Every attempt's failure is watched (a middleware inside the SDK's retry loop), so
   * that the caller learns how many attempts may have made a set whose answer was lost
   * (`uncertainAttempts`, on the snapshots or on a {@link CreateSnapshotSetError}).
   *
   * @throws {ConcurrentSnapshotLimitError | SnapshotRateDeferredError | CreateSnapshotSetError}
   * @example
   * const snapshots = await gateway.createSnapshotSet(decision.request);
   */
  public async createSnapshotSet(request: SnapshotSetRequest): Promise<CreatedSnapshot[]> {
    const command = new CreateSnapshotsCommand({
      InstanceSpecification: {
        InstanceId: request.instanceId,
        ExcludeBootVolume: request.excludeBootVolume,
        ...(request.excludeDataVolumeIds.length > 0
          ? { ExcludeDataVolumeIds: [...request.excludeDataVolumeIds] }
          : {}),
      },
      Description: request.description,
      TagSpecifications: [
        {
          ResourceType: 'snapshot',
          Tags: request.tags.map((t) => ({ Key: t.Key, Value: t.Value })),
        },
      ],
    });
    // Inside the SDK's retry loop (the deserialize step runs once per attempt). Kept
    // across the per-volume rate retries: an attempt of an earlier send may have made a set.
    const failedAttempts: unknown[] = [];
    let unseenFailures = 0;
    command.middlewareStack.add(
      (next) => async (args) => {
        try {
          return await next(args);
        } catch (error) {
          failedAttempts.push(error);
          throw error;
        }
      },
      { step: 'deserialize', name: 'snapkeeperAttemptFailures', priority: 'high' },
    );
    // Attempts the middleware did not see (a client without the SDK's stack) count as uncertain.
    const uncertain = () =>
      failedAttempts.filter(attemptMayHaveTakenEffect).length + unseenFailures;
    for (let attempt = 1; ; attempt += 1) {
      const seenBefore = failedAttempts.length;
      try {
        const response = await this.#client.send(command);
        const attempts = response.$metadata?.attempts ?? 1;
        unseenFailures += Math.max(0, attempts - 1 - (failedAttempts.length - seenBefore));
        const uncertainAttempts = uncertain();
        return (response.Snapshots ?? []).flatMap((s) =>
          s.SnapshotId && s.VolumeId
            ? [
                {
                  snapshotId: s.SnapshotId,
                  volumeId: s.VolumeId,
                  sizeGiB: s.VolumeSize,
                  state: s.State ?? 'pending',
                  startTime: s.StartTime?.toISOString(),
                  ...(attempts > 1 ? { attempts } : {}),
                  ...(attempts > 1 || uncertainAttempts > 0 ? { uncertainAttempts } : {}),
                },
              ]
            : [],
        );
      } catch (error) {
        const seen = failedAttempts.length - seenBefore;
        if (seen === 0) {
          // Not seen by the middleware: the failure itself, and any attempts before it.
          failedAttempts.push(error);
          const attempts = (error as { $metadata?: { attempts?: number } }).$metadata?.attempts;
          unseenFailures += Math.max(0, (attempts ?? 1) - 1);
        }
        const code = awsErrorCode(error);
        // A refusal after an attempt whose answer was lost: that attempt may have made the set.
        const typed = (failure: AwsCallError) =>
          uncertain() > 0 ? new CreateSnapshotSetError(failure, uncertain()) : failure;
        if (code === Ec2ErrorCode.ConcurrentSnapshotLimitExceeded) {
          throw typed(new ConcurrentSnapshotLimitError(request.instanceId, { cause: error }));
        }
        if (code === Ec2ErrorCode.SnapshotCreationPerVolumeRateExceeded) {
          if (attempt > this.#rateRetries) {
            throw typed(
              new SnapshotRateDeferredError(request.instanceId, attempt, { cause: error }),
            );
          }
          await this.#sleep(this.#rateRetryMs);
          continue;
        }
        throw new CreateSnapshotSetError(error, uncertain());
      }
    }
  }

  /**
   * Streams the account's own snapshots that carry every given tag (one of the values,
   * when a list is given; server-side filters, `OwnerIds: ['self']`, 1000 a page). The `owner-id` is checked again here,
   * since some EC2 look-alikes ignore `OwnerIds`.
   *
   * @example
   * for await (const s of gateway.listSnapshotsTagged({ 'snapkeeper:managed': 'true' })) { ... }
   */
  public async *listSnapshotsTagged(
    tags: Readonly<Record<string, string | readonly string[]>>,
    ownerId?: string,
  ): AsyncGenerator<SnapshotFacts> {
    const filters: Filter[] = Object.entries(tags).map(([key, value]) => ({
      Name: `tag:${key}`,
      Values: typeof value === 'string' ? [value] : [...value],
    }));
    try {
      const pages = paginateDescribeSnapshots(
        { client: this.#client, pageSize: DESCRIBE_PAGE_SIZE },
        { OwnerIds: ['self'], Filters: filters },
      );
      for await (const page of pages) {
        for (const snapshot of page.Snapshots ?? []) {
          if (!snapshot.SnapshotId) continue;
          if (ownerId && snapshot.OwnerId && snapshot.OwnerId !== ownerId) continue;
          yield toSnapshotFacts(snapshot, snapshot.SnapshotId);
        }
      }
    } catch (error) {
      throw toAwsCallError('DescribeSnapshots', error);
    }
  }

  /**
   * The given snapshots (missing ones are simply absent from the result), 1000 ids a call.
   *
   * @example
   * const [snapshot] = await gateway.describeSnapshotsByIds(['snap-1']);
   */
  public async describeSnapshotsByIds(snapshotIds: readonly string[]): Promise<SnapshotFacts[]> {
    const result: SnapshotFacts[] = [];
    for (let i = 0; i < snapshotIds.length; i += DESCRIBE_PAGE_SIZE) {
      const chunk = snapshotIds.slice(i, i + DESCRIBE_PAGE_SIZE);
      try {
        const response = await this.#client.send(
          new DescribeSnapshotsCommand({
            OwnerIds: ['self'],
            Filters: [{ Name: 'snapshot-id', Values: chunk }],
          }),
        );
        for (const snapshot of response.Snapshots ?? []) {
          if (!snapshot.SnapshotId) continue;
          result.push(toSnapshotFacts(snapshot, snapshot.SnapshotId));
        }
      } catch (error) {
        throw toAwsCallError('DescribeSnapshots', error);
      }
    }
    return result;
  }

  /**
   * Every image the account owns, disabled ones included (`IncludeDisabled`: a
   * disabled AMI still holds its snapshots), 1000 a page.
   *
   * @example
   * const images = await gateway.listOwnImages();
   */
  public async listOwnImages(): Promise<OwnImageFacts[]> {
    const images: OwnImageFacts[] = [];
    try {
      const pages = paginateDescribeImages(
        { client: this.#client, pageSize: DESCRIBE_PAGE_SIZE },
        { Owners: ['self'], IncludeDisabled: true },
      );
      for await (const page of pages) {
        for (const image of page.Images ?? []) {
          if (!image.ImageId) continue;
          const { imageId, name, state, snapshotIds, tags } = toImageFacts(image);
          images.push({ imageId, name, state, snapshotIds, tags });
        }
      }
    } catch (error) {
      throw toAwsCallError('DescribeImages', error);
    }
    return images;
  }

  /**
   * Which images use each snapshot, from the block device mappings of every image
   * the account owns: the snapshots retention must never delete.
   *
   * @example
   * (await gateway.snapshotHolders()).get('snap-1'); // ['ami-1']
   */
  public async snapshotHolders(): Promise<Map<string, string[]>> {
    const holders = new Map<string, string[]>();
    for (const image of await this.listOwnImages()) {
      for (const snapshotId of image.snapshotIds) {
        holders.set(snapshotId, [...(holders.get(snapshotId) ?? []), image.imageId]);
      }
    }
    return holders;
  }

  /**
   * Deletes one snapshot. `InvalidSnapshot.InUse` (an AMI registered on it since the
   * plan) and `InvalidSnapshot.NotFound` (deleted by someone else) come back as typed
   * errors for the caller to report; anything else is an {@link AwsCallError}.
   *
   * @throws {SnapshotInUseError | SnapshotNotFoundError | AwsCallError}
   * @example
   * await gateway.deleteSnapshot('snap-0abc');
   */
  public async deleteSnapshot(snapshotId: string): Promise<void> {
    try {
      await this.#client.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
    } catch (error) {
      const code = awsErrorCode(error);
      if (code === Ec2ErrorCode.SnapshotInUse)
        throw new SnapshotInUseError(snapshotId, { cause: error });
      if (code === Ec2ErrorCode.SnapshotNotFound) {
        throw new SnapshotNotFoundError(snapshotId, { cause: error });
      }
      throw toAwsCallError('DeleteSnapshot', error);
    }
  }
}

/** A registered image and the snapshots behind it. */
export type OwnImageFacts = Pick<ImageFacts, 'imageId' | 'name' | 'state' | 'snapshotIds' | 'tags'>;

/**
 * A described image in the domain's form: state, creation date, tags, the snapshots and
 * size behind it, deregistration protection and whether it is public.
 *
 * @example
 * toImageFacts({ ImageId: 'ami-1', State: 'available' }); // { imageId: 'ami-1', state: 'available', snapshotIds: [], ... }
 */
export function toImageFacts(image: Image): ImageFacts {
  const mappings = image.BlockDeviceMappings ?? [];
  return {
    imageId: image.ImageId ?? '',
    name: image.Name,
    state: image.State ?? 'unknown',
    creationDate: image.CreationDate ? new Date(image.CreationDate) : undefined,
    tags: toTagMap(image.Tags),
    snapshotIds: mappings.flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [])),
    sizeGiB: mappings.reduce((n, m) => n + (m.Ebs?.VolumeSize ?? 0), 0),
    deregistrationProtected:
      image.DeregistrationProtection !== undefined &&
      image.DeregistrationProtection !== '' &&
      image.DeregistrationProtection !== 'disabled',
    isPublic: image.Public === true,
    ownerId: image.OwnerId,
  };
}

/** A described snapshot in the domain's form (its id already checked). */
function toSnapshotFacts(snapshot: Snapshot, snapshotId: string): SnapshotFacts {
  return {
    snapshotId,
    volumeId: snapshot.VolumeId ?? 'vol-ffffffff',
    state: snapshot.State ?? 'pending',
    startTime: snapshot.StartTime ?? new Date(0),
    tags: toTagMap(snapshot.Tags),
    sizeGiB: snapshot.VolumeSize,
    description: snapshot.Description,
    ownerId: snapshot.OwnerId,
    encrypted: snapshot.Encrypted,
    kmsKeyId: snapshot.KmsKeyId,
    fullSizeBytes: snapshot.FullSnapshotSizeInBytes,
    storageTier: snapshot.StorageTier,
  };
}

/**
 * Converts an SDK tag list to a record. Later duplicates win (EC2 never sends any).
 *
 * @example
 * toTagMap([{ Key: 'Name', Value: 'web' }]); // { Name: 'web' }
 */
export function toTagMap(tags: readonly SdkTag[] | undefined): TagMap {
  const map: Record<string, string> = {};
  for (const tag of tags ?? []) {
    if (tag.Key !== undefined) map[tag.Key] = tag.Value ?? '';
  }
  return map;
}

function toInstanceFacts(instance: Instance): InstanceFacts | undefined {
  if (!instance.InstanceId) return undefined;
  return {
    instanceId: instance.InstanceId,
    state: instance.State?.Name ?? 'unknown',
    rootDeviceName: instance.RootDeviceName,
    tags: toTagMap(instance.Tags),
    volumes: (instance.BlockDeviceMappings ?? []).flatMap((mapping) =>
      mapping.Ebs?.VolumeId && mapping.DeviceName
        ? [{ volumeId: mapping.Ebs.VolumeId, deviceName: mapping.DeviceName }]
        : [],
    ),
  };
}
