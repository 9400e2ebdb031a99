/**
 * The run-history table as every history gateway reaches it: one document client and
 * one table name, the items' time to live, and the calls they all make the same way.
 *
 * - single-item reads (strongly consistent) and writes, every failure an
 *   {@link AwsCallError} naming the API action;
 * - conditional writes that answer `false` when their condition fails
 *   (`ConditionalCheckFailedException`) instead of throwing;
 * - `BatchWriteItem` in calls of 25 with the unprocessed items written again, and
 *   `BatchGetItem` in calls of 100 with the unprocessed keys read again, both under the
 *   one throttle-aware retry ({@link retryUnprocessed}: exponential back-off with full
 *   jitter, a bound on rounds);
 * - paginated `Query` on the table or an index, stopped at a limit.
 *
 * The key layout is the domain's (`lib/domain/runHistory.ts`); the gateways of
 * `lib/aws/history/` each own one access pattern over this module.
 */
import {
  BatchGetCommand,
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  type PutCommandInput,
  paginateQuery,
  type QueryCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import pLimit from 'p-limit';
import { expiresAt, type ItemKeys } from '../../domain/runHistory.ts';
import { type AwsCallError, awsErrorCode, toAwsCallError } from '../errors.ts';

/** An item of the history table, as the document client reads and writes it. */
export type HistoryItem = Record<string, unknown>;

/** Items a `BatchWriteItem` call takes at most. */
export const BATCH_WRITE_SIZE = 25;

/** Keys a `BatchGetItem` call takes at most. */
export const BATCH_GET_SIZE = 100;

/** Calls of one batch (the first and the retries of what is left unprocessed) unless told otherwise. */
export const BATCH_ROUNDS = 9;

/** The first back-off before a retry of unprocessed items or keys; doubles each round. */
export const BATCH_BACKOFF_MS = 50;

/** The longest back-off between two rounds (the 7th retry's; later ones wait no longer). */
export const BATCH_BACKOFF_CAP_MS = 3_200;

/** How a batch retries what DynamoDB leaves unprocessed. */
export interface RetryPolicy {
  /** Calls at most, the first included; {@link BATCH_ROUNDS} unless given. */
  readonly rounds?: number | undefined;
  /** Waits between rounds (injected by tests); the real clock unless given. */
  readonly sleep?: ((ms: number) => Promise<void>) | undefined;
}

/** Waits `ms` on the real clock. */
export const sleepFor = (ms: number): Promise<void> =>
  new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The back-off before `round` (1 for the first retry): full jitter over an exponential
 * ceiling, as AWS advises for unprocessed batch items under throttling.
 *
 * @example
 * backoffMs(1, () => 0.5); // 25
 * backoffMs(12, () => 1); // 3200 (the cap)
 */
export function backoffMs(round: number, random: () => number = Math.random): number {
  return random() * Math.min(BATCH_BACKOFF_CAP_MS, BATCH_BACKOFF_MS * 2 ** (round - 1));
}

/**
 * The throttle-aware retry every batch call shares: `attempt` is called with what is
 * pending and answers what is left, until nothing is or `policy.rounds` calls were made,
 * with {@link backoffMs} between rounds.
 *
 * @returns what is still left after the last round (empty when everything went through).
 * @example
 * const left = await retryUnprocessed(items, (pending) => writeOnce(pending), { rounds: 8 });
 */
export async function retryUnprocessed<T>(
  first: readonly T[],
  attempt: (pending: readonly T[]) => Promise<T[]>,
  policy: RetryPolicy,
): Promise<T[]> {
  const rounds = policy.rounds ?? BATCH_ROUNDS;
  const sleep = policy.sleep ?? sleepFor;
  let pending = [...first];
  for (let round = 0; pending.length > 0 && round < rounds; round += 1) {
    if (round > 0) await sleep(backoffMs(round));
    pending = await attempt(pending);
  }
  return pending;
}

/** Splits `items` into runs of at most `size`. */
export function chunksOf<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

/** One string for an item's primary key, to match what DynamoDB hands back. */
export function primaryKeyOf(item: HistoryItem | undefined): string {
  return `${String(item?.PK)}\u0000${String(item?.SK)}`;
}

/**
 * The value with its undefined fields left out.
 *
 * @example
 * stripUndefined({ a: 1, b: undefined }); // { a: 1 }
 */
export function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A call of one `BatchWriteItem` chunk that failed outright (after the SDK's retries). */
export interface FailedBatchCall<T> {
  readonly entries: readonly T[];
  readonly error: AwsCallError;
}

/** What a batch write could not write. */
export interface BatchWriteOutcome<T> {
  /** Entries still unprocessed after every round. */
  readonly unprocessed: readonly T[];
  /** Entries whose call failed (only when failed calls are collected). */
  readonly failed: readonly FailedBatchCall<T>[];
}

/** Options of a query. */
interface QueryLimits {
  /** Items a page holds at most. */
  readonly pageSize?: number | undefined;
  /** Items at most, over every page. */
  readonly limit?: number | undefined;
}

/**
 * The history table: a document client over one table, with the items' time to live.
 *
 * @example
 * const table = new HistoryTable(doc, 'snapkeeper-prod-runs', 400);
 * const run = await table.get(runItemKeys('r1'));
 */
export class HistoryTable {
  public readonly doc: DynamoDBDocumentClient;
  public readonly name: string;
  readonly #retentionDays: number;

  public constructor(doc: DynamoDBDocumentClient, name: string, retentionDays: number) {
    this.doc = doc;
    this.name = name;
    this.#retentionDays = retentionDays;
  }

  /**
   * The TTL of an item written at `at`.
   *
   * @example
   * table.expiresAt(new Date()); // epoch seconds, retention days ahead
   */
  public expiresAt(at: Date): number {
    return expiresAt(at, this.#retentionDays);
  }

  /**
   * One item, strongly consistent.
   *
   * @example
   * const claim = await table.get(slotKeys(slot));
   */
  public async get(key: ItemKeys): Promise<HistoryItem | undefined> {
    try {
      const response = await this.doc.send(
        new GetCommand({ TableName: this.name, Key: key, ConsistentRead: true }),
      );
      return response.Item;
    } catch (error) {
      throw toAwsCallError('GetItem', error);
    }
  }

  /**
   * Writes an item; a failed condition throws like any other error.
   *
   * @example
   * await table.put({ Item: item, ConditionExpression: 'attribute_not_exists(PK)' });
   */
  public async put(input: Omit<PutCommandInput, 'TableName'>): Promise<void> {
    await this.#put(input, false);
  }

  /**
   * Writes an item only if its condition holds.
   *
   * @returns false when the condition failed (`ConditionalCheckFailedException`).
   * @example
   * const claimed = await table.putIf({ Item: claim, ConditionExpression: 'attribute_not_exists(PK)' });
   */
  public async putIf(input: Omit<PutCommandInput, 'TableName'>): Promise<boolean> {
    return this.#put(input, true);
  }

  /**
   * Updates an item; a failed condition throws like any other error.
   *
   * @example
   * await table.update({ Key: runItemKeys(runId), UpdateExpression: 'SET endedAt = :now', ... });
   */
  public async update(input: Omit<UpdateCommandInput, 'TableName'>): Promise<void> {
    await this.#update(input, false);
  }

  /**
   * Updates an item only if its condition holds.
   *
   * @returns the attributes asked back (`{}` when none were), or false when the
   * condition failed.
   * @example
   * const moved = await table.updateIf({ Key, UpdateExpression, ConditionExpression: 'runId = :from', ... });
   */
  public async updateIf(
    input: Omit<UpdateCommandInput, 'TableName'>,
  ): Promise<HistoryItem | false> {
    return this.#update(input, true);
  }

  async #put(input: Omit<PutCommandInput, 'TableName'>, tolerate: boolean): Promise<boolean> {
    const sent = () => this.doc.send(new PutCommand({ TableName: this.name, ...input }));
    return (await this.#write('PutItem', sent, tolerate)) !== false;
  }

  async #update(
    input: Omit<UpdateCommandInput, 'TableName'>,
    tolerate: boolean,
  ): Promise<HistoryItem | false> {
    const sent = () => this.doc.send(new UpdateCommand({ TableName: this.name, ...input }));
    return this.#write('UpdateItem', sent, tolerate);
  }

  /** Sends one write: false when its condition failed and that is tolerated, else its attributes. */
  async #write(
    action: 'PutItem' | 'UpdateItem',
    send: () => Promise<{ Attributes?: HistoryItem | undefined }>,
    tolerate: boolean,
  ): Promise<HistoryItem | false> {
    try {
      return (await send()).Attributes ?? {};
    } catch (error) {
      if (tolerate && isConditionFailure(error)) return false;
      throw toAwsCallError(action, error);
    }
  }

  /**
   * Puts `entries` with `BatchWriteItem`, 25 items a call, writing again what DynamoDB
   * leaves unprocessed under {@link retryUnprocessed}. A call that fails outright throws
   * (`failedCalls: 'throw'`) or leaves its own entries failed while the others go on
   * (`'collect'`).
   *
   * @example
   * const { unprocessed, failed } = await table.writeBatch(entries, (e) => e.item, { rounds: 8, failedCalls: 'collect' });
   */
  public async writeBatch<T>(
    entries: readonly T[],
    itemOf: (entry: T) => HistoryItem,
    policy: RetryPolicy & { readonly failedCalls: 'throw' | 'collect' },
  ): Promise<BatchWriteOutcome<T>> {
    const failed: FailedBatchCall<T>[] = [];
    const writeChunk = async (chunk: readonly T[]): Promise<T[]> => {
      try {
        const response = await this.doc.send(
          new BatchWriteCommand({
            RequestItems: { [this.name]: chunk.map((e) => ({ PutRequest: { Item: itemOf(e) } })) },
          }),
        );
        const left = new Set(
          (response.UnprocessedItems?.[this.name] ?? []).map((r) =>
            primaryKeyOf(r.PutRequest?.Item),
          ),
        );
        return chunk.filter((entry) => left.has(primaryKeyOf(itemOf(entry))));
      } catch (error) {
        const wrapped = toAwsCallError('BatchWriteItem', error);
        if (policy.failedCalls === 'throw') throw wrapped;
        failed.push({ entries: chunk, error: wrapped });
        return [];
      }
    };
    const unprocessed = await retryUnprocessed(
      entries,
      async (pending) => {
        const rest: T[] = [];
        for (const chunk of chunksOf(pending, BATCH_WRITE_SIZE))
          rest.push(...(await writeChunk(chunk)));
        return rest;
      },
      policy,
    );
    return { unprocessed, failed };
  }

  /**
   * Reads `keys` with `BatchGetItem`, strongly consistent, 100 keys a call and
   * `concurrency` calls at once, reading again the keys DynamoDB leaves unprocessed
   * under {@link retryUnprocessed}.
   *
   * @throws AwsCallError (`BatchGetItem`) when a call fails or keys stay unprocessed
   * after every round: the caller then knows nothing of those keys.
   * @example
   * const items = await table.getBatch(ids.map(creationKeys), { concurrency: 4 });
   */
  public async getBatch(
    keys: readonly ItemKeys[],
    policy: RetryPolicy & { readonly concurrency: number },
  ): Promise<HistoryItem[]> {
    const found: HistoryItem[] = [];
    const readOnce = async (pending: readonly ItemKeys[]): Promise<ItemKeys[]> => {
      const response = await this.doc.send(
        new BatchGetCommand({
          RequestItems: { [this.name]: { Keys: [...pending], ConsistentRead: true } },
        }),
      );
      found.push(...(response.Responses?.[this.name] ?? []));
      return (response.UnprocessedKeys?.[this.name]?.Keys ?? []) as ItemKeys[];
    };
    const readChunk = async (chunk: readonly ItemKeys[]): Promise<void> => {
      const left = await retryUnprocessed(chunk, readOnce, policy);
      if (left.length > 0) {
        throw new Error(
          `${left.length} key(s) stayed unprocessed after ${policy.rounds ?? BATCH_ROUNDS} tries`,
        );
      }
    };
    const limit = pLimit(policy.concurrency);
    try {
      await Promise.all(
        chunksOf(keys, BATCH_GET_SIZE).map((chunk) => limit(() => readChunk(chunk))),
      );
    } catch (error) {
      limit.clearQueue();
      throw toAwsCallError('BatchGetItem', error);
    }
    return found;
  }

  /**
   * Every item a query finds, page after page (`LastEvaluatedKey`), stopped once `limit`
   * items are read.
   *
   * @example
   * const actions = await table.query({ KeyConditionExpression: 'PK = :pk', ExpressionAttributeValues: { ':pk': 'RUN#r1' } });
   */
  public async query(
    input: Omit<QueryCommandInput, 'TableName'>,
    limits: QueryLimits = {},
  ): Promise<HistoryItem[]> {
    const items: HistoryItem[] = [];
    try {
      const pages = paginateQuery(
        { client: this.doc, ...(limits.pageSize ? { pageSize: limits.pageSize } : {}) },
        { TableName: this.name, ...input },
      );
      for await (const page of pages) {
        for (const item of page.Items ?? []) {
          items.push(item);
          if (limits.limit !== undefined && items.length >= limits.limit) return items;
        }
      }
    } catch (error) {
      throw toAwsCallError('Query', error);
    }
    return items;
  }
}

/** Whether DynamoDB refused a write because its condition failed. */
function isConditionFailure(error: unknown): boolean {
  return awsErrorCode(error) === 'ConditionalCheckFailedException';
}
