/**
 * The EBS direct APIs, read side only: how many bytes a snapshot holds
 * (`ListSnapshotBlocks`) and how many it changed since an earlier snapshot of the same
 * volume (`ListChangedBlocks`), paged with `NextToken`, the block size taken from each
 * answer, under one token bucket for both calls (the EBS direct APIs allow about 50
 * List requests a second per account; see {@link EBS_DIRECT_LIST_BUCKET}).
 *
 * Shapes followed: the EBS direct APIs reference, `ListChangedBlocks` and
 * `ListSnapshotBlocks` (a page may hold fewer blocks than `MaxResults`, even none, while
 * `NextToken` is still set; `SecondBlockToken` is absent for a block the second snapshot
 * no longer holds; errors `ValidationException`, `ResourceNotFoundException`,
 * `AccessDeniedException`, `RequestThrottledException`, `ThrottlingException` are read
 * by name).
 */
import {
  EBSClient,
  ListChangedBlocksCommand,
  type ListChangedBlocksCommandOutput,
  ListSnapshotBlocksCommand,
  type ListSnapshotBlocksCommandOutput,
} from '@aws-sdk/client-ebs';
import type { SnapkeeperConfig } from '../config/environment.ts';
import { recordCalls } from './callRecorder.ts';
import { clientSettings } from './clients.ts';
import { AwsCallError, awsErrorCode, toAwsCallError } from './errors.ts';
import { type BucketSpec, RateLimiter } from './rateLimiter.ts';

/** Blocks a page asks for: the API's maximum (100 to 10,000). */
export const EBS_LIST_PAGE_SIZE = 10_000;

/**
 * The bucket both List calls share: about 50 requests a second per account (EBS direct
 * APIs quotas), a burst of 50.
 */
export const EBS_DIRECT_LIST_BUCKET: BucketSpec = { burst: 50, refillPerSecond: 50 };

/** The limiter's name for the shared bucket. */
const LIST_ACTION = 'EbsDirectList';

/** Pages one measurement follows at most (10,000 blocks of 512 KiB a page: 50 TiB). */
export const MAX_PAGES_PER_CALL = 1_000;

/** The error codes of a throttled EBS direct call, after the SDK's own retries. */
export const EBS_THROTTLE_CODES: ReadonlySet<string> = new Set([
  'ThrottlingException',
  'RequestThrottledException',
]);

/** What a listing found: bytes in blocks, the block size, and the pages read. */
export interface BlockCount {
  readonly blocks: number;
  readonly blockSize: number;
  readonly bytes: number;
  readonly pages: number;
}

/** The EBS direct APIs throttled us even after the SDK's retries: stop measuring this run. */
export class EbsThrottledError extends AwsCallError {
  public constructor(action: string, error: unknown) {
    const wrapped = toAwsCallError(action, error);
    super(action, wrapped.code, 'the EBS direct APIs are throttling this account', {
      cause: error,
      httpStatus: wrapped.httpStatus,
    });
    this.name = 'EbsThrottledError';
  }
}

/** The snapshot cannot be read by the EBS direct APIs (not completed, gone, unrelated). */
export class SnapshotUnreadableError extends AwsCallError {
  public readonly snapshotId: string;

  public constructor(action: string, snapshotId: string, error: unknown) {
    const wrapped = toAwsCallError(action, error);
    const reason = (error as { Reason?: unknown } | undefined)?.Reason;
    super(
      action,
      typeof reason === 'string' ? `${wrapped.code}:${reason}` : wrapped.code,
      `${snapshotId} cannot be read by the EBS direct APIs (${wrapped.message})`,
      { cause: error, httpStatus: wrapped.httpStatus },
    );
    this.name = 'SnapshotUnreadableError';
    this.snapshotId = snapshotId;
  }
}

/**
 * Block counts of snapshots, in domain terms: bytes.
 *
 * @example
 * const ebs = new EbsDirectGateway(createEbsDirectClient(config));
 * const { bytes } = await ebs.changedBytes('snap-old', 'snap-new');
 */
export class EbsDirectGateway {
  readonly #client: EBSClient;

  public constructor(client: EBSClient) {
    this.#client = client;
  }

  /**
   * Bytes in the blocks that hold data in `snapshotId` (its full size), every page read.
   *
   * @throws {EbsThrottledError} when throttled; {@link SnapshotUnreadableError} when the
   * snapshot cannot be read; {@link AwsCallError} otherwise.
   * @example
   * const { bytes } = await ebs.snapshotBytes('snap-1');
   */
  public async snapshotBytes(snapshotId: string): Promise<BlockCount> {
    return this.#count('ListSnapshotBlocks', snapshotId, async (token) => {
      const page: ListSnapshotBlocksCommandOutput = await this.#client.send(
        new ListSnapshotBlocksCommand({
          SnapshotId: snapshotId,
          MaxResults: EBS_LIST_PAGE_SIZE,
          ...(token ? { NextToken: token } : {}),
        }),
      );
      return { blocks: page.Blocks?.length ?? 0, blockSize: page.BlockSize, next: page.NextToken };
    });
  }

  /**
   * Bytes in the blocks `secondSnapshotId` holds that differ from `firstSnapshotId`
   * (blocks only the first holds are not counted: the second stores nothing for them).
   *
   * @throws {EbsThrottledError} when throttled; {@link SnapshotUnreadableError} when a
   * snapshot cannot be read or the two are unrelated; {@link AwsCallError} otherwise.
   * @example
   * const { bytes } = await ebs.changedBytes('snap-old', 'snap-new');
   */
  public async changedBytes(
    firstSnapshotId: string,
    secondSnapshotId: string,
  ): Promise<BlockCount> {
    return this.#count('ListChangedBlocks', secondSnapshotId, async (token) => {
      const page: ListChangedBlocksCommandOutput = await this.#client.send(
        new ListChangedBlocksCommand({
          FirstSnapshotId: firstSnapshotId,
          SecondSnapshotId: secondSnapshotId,
          MaxResults: EBS_LIST_PAGE_SIZE,
          ...(token ? { NextToken: token } : {}),
        }),
      );
      const held = (page.ChangedBlocks ?? []).filter((b) => b.SecondBlockToken !== undefined);
      return { blocks: held.length, blockSize: page.BlockSize, next: page.NextToken };
    });
  }

  async #count(
    action: string,
    snapshotId: string,
    page: (
      token: string | undefined,
    ) => Promise<{ blocks: number; blockSize: number | undefined; next: string | undefined }>,
  ): Promise<BlockCount> {
    let blocks = 0;
    let blockSize: number | undefined;
    let pages = 0;
    let token: string | undefined;
    do {
      let answer: Awaited<ReturnType<typeof page>>;
      try {
        answer = await page(token);
      } catch (error) {
        throw classify(action, snapshotId, error);
      }
      pages += 1;
      blocks += answer.blocks;
      blockSize = answer.blockSize ?? blockSize;
      token = answer.next || undefined;
      if (pages >= MAX_PAGES_PER_CALL && token) {
        throw new AwsCallError(action, 'TooManyPages', `${snapshotId}: over ${pages} pages`);
      }
    } while (token);
    if (blocks > 0 && (blockSize === undefined || blockSize <= 0)) {
      throw new AwsCallError(action, 'NoBlockSize', `${snapshotId}: the answer gave no BlockSize`);
    }
    return { blocks, blockSize: blockSize ?? 0, bytes: blocks * (blockSize ?? 0), pages };
  }
}

function classify(action: string, snapshotId: string, error: unknown): AwsCallError {
  const code = awsErrorCode(error);
  if (EBS_THROTTLE_CODES.has(code)) return new EbsThrottledError(action, error);
  if (code === 'ValidationException' || code === 'ResourceNotFoundException') {
    return new SnapshotUnreadableError(action, snapshotId, error);
  }
  return toAwsCallError(action, error);
}

type EbsSettings = Parameters<typeof clientSettings>[0] &
  Pick<SnapkeeperConfig, 'ec2RateShare' | 'ec2RateHeadroom'> &
  Partial<Pick<SnapkeeperConfig, 'ebsEndpoint'>>;

/**
 * The EBS direct client behind one token bucket for both List calls (taken by every
 * attempt, the SDK's retries included), at the configuration's share and headroom.
 *
 * @example
 * const ebs = new EbsDirectGateway(createEbsDirectClient(config));
 */
export function createEbsDirectClient(config: EbsSettings, limiter?: RateLimiter): EBSClient {
  const endpoint = config.ebsEndpoint ?? config.endpoint;
  const client = recordCalls(
    new EBSClient(clientSettings({ ...config, ...(endpoint ? { endpoint } : {}) })),
  );
  const bucket =
    limiter ??
    new RateLimiter({
      share: config.ec2RateShare,
      headroom: config.ec2RateHeadroom,
      overrides: { [LIST_ACTION]: EBS_DIRECT_LIST_BUCKET },
    });
  client.middlewareStack.add(
    (next) => async (args) => {
      await bucket.acquire(LIST_ACTION);
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'snapkeeperEbsRateLimit', override: true },
  );
  return client;
}
