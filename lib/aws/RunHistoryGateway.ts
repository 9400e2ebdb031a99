import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  paginateQuery,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import pLimit from 'p-limit';
import type { SnapkeeperConfig } from '../config/environment.ts';
import { SnapkeeperError } from '../domain/errors.ts';
import { type BatchCheckpoint, type BatchStatus, FINAL_BATCH_STATUSES } from '../domain/fanOut.ts';
import { CREATION_ACTIONS, type CreationRecord } from '../domain/provenance.ts';
import {
  actionKeys,
  expiresAt,
  HISTORY_INDEXES,
  type RunRecordStatus,
  runKeys,
  type SlotKey,
  slotKeys,
} from '../domain/runHistory.ts';
import type { ActionRecord, CreationLedger } from '../domain/runRecords.ts';
import { recordCalls } from './callRecorder.ts';
import { clientSettings } from './clients.ts';
import { awsErrorCode, toAwsCallError } from './errors.ts';

/** A run as the history table holds it. */
export interface RunRecord {
  readonly runId: string;
  readonly deployment: string;
  readonly job: string;
  readonly trigger: string;
  readonly schedule?: string | undefined;
  readonly slot?: string | undefined;
  readonly requestedBy?: string | undefined;
  readonly dryRun: boolean;
  readonly startedAt: string;
  readonly endedAt?: string | undefined;
  readonly status: RunRecordStatus;
  readonly leaseRenewedAt?: string | undefined;
  readonly counts?: Readonly<Record<string, number>> | undefined;
  readonly errorSummary?: string | undefined;
  /** What is left, for an `incomplete` run. */
  readonly remaining?: readonly string[] | undefined;
  /** The run's report as JSON (cut to fit an item), returned to duplicate deliveries. */
  readonly report?: string | undefined;
  readonly expiresAt?: number | undefined;
}

/** An action as the history table holds it. */
export interface ActionItem extends ActionRecord {
  readonly at: string;
  readonly sequence: number;
  readonly instanceId?: string | undefined;
  readonly volumeId?: string | undefined;
}

/** A run's outcome, as finishing it writes it. */
interface RunResult {
  readonly status: RunRecordStatus;
  readonly endedAt: string;
  readonly counts?: Readonly<Record<string, number>> | undefined;
  readonly errorSummary?: string | undefined;
  /** What is left, for an `incomplete` run. */
  readonly remaining?: readonly string[] | undefined;
  readonly report?: unknown;
}

/** Who holds a slot. */
export interface SlotClaim {
  readonly runId: string;
  readonly claimedAt: string;
}

/** BatchGetItem calls of creation records in flight at once. */
export const CREATION_READ_CONCURRENCY = 4;

/** Rounds of `BatchWriteItem` for one batch of records before its unprocessed items count as unwritten. */
export const RECORD_BATCH_ROUNDS = 8;

/** The first back-off before writing unprocessed records again; doubles each round (full jitter). */
export const RECORD_BATCH_BACKOFF_MS = 50;

/**
 * Some records of a batch were not written (the others were): `unwritten` holds their
 * positions in the batch.
 */
export class HistoryWriteError extends SnapkeeperError {
  public readonly unwritten: readonly number[];

  public constructor(unwritten: readonly number[], cause: string) {
    super(`${unwritten.length} history record(s) not written: ${cause}`);
    this.name = 'HistoryWriteError';
    this.unwritten = unwritten;
  }
}

/** Reports above this size are stored cut, with a note (DynamoDB items hold 400 KB). */
export const MAX_REPORT_BYTES = 300_000;

/**
 * The run-history table: runs, their actions, and slot claims, written as a run goes
 * and read by key or index only.
 *
 * @example
 * const history = createRunHistoryGateway(config, 'snapkeeper-prod-runs');
 * await history.startRun(run);
 */
export class RunHistoryGateway implements CreationLedger {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #retentionDays: number;
  #sequence = 0;
  #ledgerStart: Date | undefined;

  public constructor(doc: DynamoDBDocumentClient, tableName: string, retentionDays: number) {
    this.#doc = doc;
    this.#table = tableName;
    this.#retentionDays = retentionDays;
  }

  /**
   * Claims a slot for a run with a conditional write. Returns the current holder when
   * another run has it.
   *
   * @example
   * const claim = await history.claimSlot({ job: 'backup', schedule: 'daily', slot }, runId, now);
   */
  public async claimSlot(
    slot: SlotKey,
    runId: string,
    now: Date,
    options: { readonly lapsedBefore?: Date | undefined } = {},
  ): Promise<{ claimed: true } | { claimed: false; holder: SlotClaim }> {
    // `lapsedBefore`: a claim made before it has lapsed and is replaced in the same
    // conditional write, so two racing claimers still get one winner.
    const lapsed = options.lapsedBefore;
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            ...slotKeys(slot),
            type: 'slot',
            ...slot,
            runId,
            claimedAt: now.toISOString(),
            expiresAt: expiresAt(now, this.#retentionDays),
          },
          ...(lapsed
            ? {
                ConditionExpression: 'attribute_not_exists(PK) OR claimedAt < :lapsed',
                ExpressionAttributeValues: { ':lapsed': lapsed.toISOString() },
              }
            : { ConditionExpression: 'attribute_not_exists(PK)' }),
        }),
      );
      return { claimed: true };
    } catch (error) {
      if (awsErrorCode(error) !== 'ConditionalCheckFailedException')
        throw toAwsCallError('PutItem', error);
    }
    const holder = await this.getSlotClaim(slot);
    if (!holder) return this.claimSlot(slot, runId, now, options);
    return { claimed: false, holder };
  }

  /**
   * Moves a slot from a dead or failed run to a new one, only if `fromRunId` still holds it.
   *
   * @returns false when someone else took it first.
   */
  public async takeOverSlot(
    slot: SlotKey,
    fromRunId: string,
    toRunId: string,
    now: Date,
  ): Promise<boolean> {
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: slotKeys(slot),
          UpdateExpression: 'SET runId = :to, claimedAt = :now, previousRunId = :from',
          ConditionExpression: 'runId = :from',
          ExpressionAttributeValues: {
            ':to': toRunId,
            ':from': fromRunId,
            ':now': now.toISOString(),
          },
        }),
      );
      return true;
    } catch (error) {
      if (awsErrorCode(error) === 'ConditionalCheckFailedException') return false;
      throw toAwsCallError('UpdateItem', error);
    }
  }

  /** The run holding a slot, if any. */
  public async getSlotClaim(slot: SlotKey): Promise<SlotClaim | undefined> {
    try {
      const response = await this.#doc.send(
        new GetCommand({ TableName: this.#table, Key: slotKeys(slot), ConsistentRead: true }),
      );
      const item = response.Item;
      return item ? { runId: String(item.runId), claimedAt: String(item.claimedAt) } : undefined;
    } catch (error) {
      throw toAwsCallError('GetItem', error);
    }
  }

  /**
   * Writes the run item at start, `running`, with its lease.
   *
   * @example
   * await history.startRun({ runId, deployment, job: 'backup', trigger: 'schedule', dryRun: false, startedAt, status: 'running' });
   */
  public async startRun(run: RunRecord): Promise<void> {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            ...runKeys(run),
            type: 'run',
            ...stripUndefined(run),
            leaseRenewedAt: run.leaseRenewedAt ?? run.startedAt,
            expiresAt: expiresAt(new Date(run.startedAt), this.#retentionDays),
          },
          ConditionExpression: 'attribute_not_exists(PK)',
        }),
      );
    } catch (error) {
      throw toAwsCallError('PutItem', error);
    }
  }

  /** Renews a running run's lease. */
  public async renewLease(runId: string, now: Date): Promise<void> {
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { PK: `RUN#${runId}`, SK: 'RUN' },
          UpdateExpression: 'SET leaseRenewedAt = :now',
          ConditionExpression: '#status = :running',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':now': now.toISOString(), ':running': 'running' },
        }),
      );
    } catch (error) {
      if (awsErrorCode(error) === 'ConditionalCheckFailedException') return;
      throw toAwsCallError('UpdateItem', error);
    }
  }

  /**
   * Writes a run's final status, counts, error summary and report.
   *
   * @example
   * await history.finishRun(runId, { status: 'succeeded', endedAt, counts, report });
   */
  public async finishRun(
    runId: string,
    result: {
      status: RunRecordStatus;
      endedAt: string;
      counts?: Readonly<Record<string, number>> | undefined;
      errorSummary?: string | undefined;
      remaining?: readonly string[] | undefined;
      report?: unknown;
    },
  ): Promise<void> {
    await this.#updateRun(runId, result, false);
  }

  /**
   * Marks a run `abandoned` only if it is still `running` with the lease seen.
   *
   * @returns false when it changed in between (it was alive after all).
   */
  public async markAbandoned(
    runId: string,
    leaseRenewedAt: string,
    now: Date,
    byRunId: string,
  ): Promise<boolean> {
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { PK: `RUN#${runId}`, SK: 'RUN' },
          UpdateExpression: 'SET #status = :abandoned, endedAt = :now, errorSummary = :why',
          ConditionExpression: '#status = :running AND leaseRenewedAt = :lease',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':abandoned': 'abandoned',
            ':running': 'running',
            ':lease': leaseRenewedAt,
            ':now': now.toISOString(),
            ':why': `abandoned: lease last renewed ${leaseRenewedAt}; marked by run ${byRunId}`,
          },
        }),
      );
      return true;
    } catch (error) {
      if (awsErrorCode(error) === 'ConditionalCheckFailedException') return false;
      throw toAwsCallError('UpdateItem', error);
    }
  }

  /** One run. */
  public async getRun(runId: string): Promise<RunRecord | undefined> {
    try {
      const response = await this.#doc.send(
        new GetCommand({
          TableName: this.#table,
          Key: { PK: `RUN#${runId}`, SK: 'RUN' },
          ConsistentRead: true,
        }),
      );
      return response.Item ? toRun(response.Item) : undefined;
    } catch (error) {
      throw toAwsCallError('GetItem', error);
    }
  }

  /**
   * Records one step of an action (the journal of destructive calls, and what was made).
   *
   * @example
   * await history.record({ runId, job: 'retention', action: 'delete-snapshot', resourceId, phase: 'before', reason });
   */
  public async record(
    entry: ActionRecord & { at?: string; instanceId?: string; volumeId?: string },
  ): Promise<void> {
    const { creation, action } = this.#itemsOf(entry);
    if (creation) {
      // The creation record first, never expiring: what retention may ever delete.
      await this.ledgerStart(new Date(String(creation.at)));
      try {
        await this.#doc.send(new PutCommand({ TableName: this.#table, Item: creation }));
      } catch (error) {
        throw toAwsCallError('PutItem', error);
      }
    }
    try {
      await this.#doc.send(new PutCommand({ TableName: this.#table, Item: action }));
    } catch (error) {
      throw toAwsCallError('PutItem', error);
    }
  }

  /**
   * Records many steps at once with `BatchWriteItem` (25 items a call; an entry that
   * makes a resource also writes its creation record). Unprocessed items are written
   * again with exponential back-off and jitter; a call that fails outright (after the
   * SDK's own retries of throttling) leaves its entries unwritten. Resolves when every
   * entry is written, and otherwise throws a {@link HistoryWriteError} naming the entries
   * that were not (the others are written).
   *
   * @example
   * await history.recordBatch([before1, before2, after3]);
   */
  public async recordBatch(
    entries: readonly (ActionRecord & { at?: string; instanceId?: string; volumeId?: string })[],
    options: { readonly sleep?: (ms: number) => Promise<void>; readonly rounds?: number } = {},
  ): Promise<void> {
    const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const rounds = options.rounds ?? RECORD_BATCH_ROUNDS;
    // One item per key (DynamoDB refuses a batch with two puts of one key), with the
    // entries that need it.
    const items = new Map<string, { item: Record<string, unknown>; owners: number[] }>();
    const add = (item: Record<string, unknown>, owner: number) => {
      const key = `${String(item.PK)}\u0000${String(item.SK)}`;
      const found = items.get(key);
      if (found) {
        found.item = item;
        found.owners.push(owner);
      } else items.set(key, { item, owners: [owner] });
    };
    let firstCreation: string | undefined;
    entries.forEach((entry, index) => {
      const { creation, action } = this.#itemsOf(entry);
      if (creation) {
        firstCreation ??= String(creation.at);
        add(creation, index);
      }
      add(action, index);
    });
    const unwritten = new Set<number>();
    let lastError: string | undefined;
    if (firstCreation) {
      try {
        await this.ledgerStart(new Date(firstCreation));
      } catch (error) {
        throw new HistoryWriteError(
          entries.map((_, i) => i),
          toAwsCallError('PutItem', error).message,
        );
      }
    }
    let pending = [...items.values()];
    for (let round = 0; pending.length > 0; round += 1) {
      if (round >= rounds) {
        for (const p of pending) for (const owner of p.owners) unwritten.add(owner);
        lastError ??= `${pending.length} item(s) still unprocessed after ${rounds} rounds`;
        break;
      }
      if (round > 0) await sleep(Math.random() * RECORD_BATCH_BACKOFF_MS * 2 ** (round - 1));
      const rest: typeof pending = [];
      for (let i = 0; i < pending.length; i += 25) {
        const chunk = pending.slice(i, i + 25);
        try {
          const response = await this.#doc.send(
            new BatchWriteCommand({
              RequestItems: { [this.#table]: chunk.map((c) => ({ PutRequest: { Item: c.item } })) },
            }),
          );
          const left = new Set(
            (response.UnprocessedItems?.[this.#table] ?? []).map(
              (r) => `${String(r.PutRequest?.Item?.PK)}\u0000${String(r.PutRequest?.Item?.SK)}`,
            ),
          );
          for (const c of chunk) {
            if (left.has(`${String(c.item.PK)}\u0000${String(c.item.SK)}`)) rest.push(c);
          }
        } catch (error) {
          lastError = toAwsCallError('BatchWriteItem', error).message;
          for (const c of chunk) for (const owner of c.owners) unwritten.add(owner);
        }
      }
      pending = rest;
    }
    if (unwritten.size > 0) {
      throw new HistoryWriteError(
        [...unwritten].sort((a, b) => a - b),
        lastError ?? 'unknown',
      );
    }
  }

  /** The items one entry writes: its action item, and a creation record for a resource made. */
  #itemsOf(entry: ActionRecord & { at?: string; instanceId?: string; volumeId?: string }): {
    creation?: Record<string, unknown>;
    action: Record<string, unknown>;
  } {
    this.#sequence += 1;
    const at = entry.at ?? new Date().toISOString();
    const details = entry.details ?? {};
    const instanceId =
      entry.instanceId ?? (typeof details.instanceId === 'string' ? details.instanceId : undefined);
    const volumeId =
      entry.volumeId ?? (typeof details.volumeId === 'string' ? details.volumeId : undefined);
    const kind = CREATION_ACTIONS[entry.action];
    const creation =
      kind && entry.phase === 'after' && entry.outcome === 'done'
        ? {
            ...creationKeys(entry.resourceId),
            type: 'creation',
            ...stripUndefined({
              resourceId: entry.resourceId,
              kind,
              runId: entry.runId,
              job: entry.job,
              at,
              instanceId,
              volumeId,
            }),
          }
        : undefined;
    const action = {
      ...actionKeys({
        runId: entry.runId,
        sequence: this.#sequence,
        resourceId: entry.resourceId,
        phase: entry.phase,
        at,
        instanceId,
        volumeId,
      }),
      type: 'action',
      ...stripUndefined({ ...entry, at, sequence: this.#sequence, instanceId, volumeId }),
      expiresAt: expiresAt(new Date(at), this.#retentionDays),
    };
    return creation ? { creation, action } : { action };
  }

  /**
   * Records a fan-out's batches, `pending`, under their run before any is sent.
   *
   * @example
   * await history.putBatches(runId, [{ batchId: 'self/eu-west-1/0001', target, instances: 200 }], now);
   */
  public async putBatches(
    runId: string,
    batches: readonly { batchId: string; target: unknown; instances?: number | undefined }[],
    now: Date,
  ): Promise<void> {
    const at = now.toISOString();
    let requests = batches.map((batch) => ({
      PutRequest: {
        Item: {
          PK: `RUN#${runId}`,
          SK: `BATCH#${batch.batchId}`,
          type: 'batch',
          runId,
          ...stripUndefined(batch),
          status: 'pending',
          attempts: 0,
          createdAt: at,
          expiresAt: expiresAt(now, this.#retentionDays),
        },
      },
    }));
    try {
      for (let round = 0; requests.length > 0; round += 1) {
        if (round > 8) throw new Error(`${requests.length} batch records were never written`);
        const rest: typeof requests = [];
        for (let i = 0; i < requests.length; i += 25) {
          const response = await this.#doc.send(
            new BatchWriteCommand({
              RequestItems: { [this.#table]: requests.slice(i, i + 25) },
            }),
          );
          rest.push(...((response.UnprocessedItems?.[this.#table] ?? []) as typeof requests));
        }
        requests = rest;
        if (rest.length > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** round));
      }
    } catch (error) {
      throw toAwsCallError('BatchWriteItem', error);
    }
  }

  /**
   * Claims a batch for one attempt: `pending` or `retry` batches (and `running` ones
   * whose lease is older than `staleBefore`, a dead worker's) become `running` with one
   * more attempt. A batch never recorded is created as it is claimed.
   *
   * @returns the claimed checkpoint, or why it was not claimed: `final` (a duplicate
   * delivery of a finished batch) or `busy` (another worker has it now).
   */
  public async claimBatch(
    runId: string,
    batchId: string,
    now: Date,
    staleBefore: Date,
  ): Promise<
    | { kind: 'claimed'; checkpoint: BatchCheckpoint }
    | { kind: 'final'; checkpoint: BatchCheckpoint }
    | { kind: 'busy'; checkpoint: BatchCheckpoint }
  > {
    const key = { PK: `RUN#${runId}`, SK: `BATCH#${batchId}` };
    try {
      const response = await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: key,
          UpdateExpression:
            'SET #status = :running, attempts = if_not_exists(attempts, :zero) + :one, leaseAt = :now, #type = :batch, runId = :runId, batchId = :batchId, expiresAt = if_not_exists(expiresAt, :expires)',
          ConditionExpression:
            'attribute_not_exists(PK) OR #status IN (:pending, :retry) OR (#status = :running AND leaseAt < :stale)',
          ExpressionAttributeNames: { '#status': 'status', '#type': 'type' },
          ExpressionAttributeValues: {
            ':running': 'running',
            ':pending': 'pending',
            ':retry': 'retry',
            ':zero': 0,
            ':one': 1,
            ':now': now.toISOString(),
            ':stale': staleBefore.toISOString(),
            ':batch': 'batch',
            ':runId': runId,
            ':batchId': batchId,
            ':expires': expiresAt(now, this.#retentionDays),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { kind: 'claimed', checkpoint: toCheckpoint(response.Attributes ?? {}) };
    } catch (error) {
      if (awsErrorCode(error) !== 'ConditionalCheckFailedException')
        throw toAwsCallError('UpdateItem', error);
    }
    let item: Record<string, unknown> | undefined;
    try {
      item = (
        await this.#doc.send(
          new GetCommand({ TableName: this.#table, Key: key, ConsistentRead: true }),
        )
      ).Item;
    } catch (error) {
      throw toAwsCallError('GetItem', error);
    }
    const checkpoint = toCheckpoint(item ?? { batchId, status: 'running', attempts: 0 });
    return FINAL_BATCH_STATUSES.includes(checkpoint.status)
      ? { kind: 'final', checkpoint }
      : { kind: 'busy', checkpoint };
  }

  /**
   * Writes a batch's outcome: final (`succeeded`, `partial`, `failed`) or `retry` (the
   * next delivery resumes it).
   */
  public async finishBatch(
    runId: string,
    batchId: string,
    result: {
      status: BatchStatus;
      endedAt: string;
      counts?: Readonly<Record<string, number>> | undefined;
      errorSummary?: string | undefined;
    },
  ): Promise<void> {
    const values: Record<string, unknown> = {
      ':status': result.status,
      ':endedAt': result.endedAt,
      ':counts': result.counts ?? {},
    };
    const sets = ['#status = :status', 'endedAt = :endedAt', 'counts = :counts'];
    if (result.errorSummary) {
      sets.push('errorSummary = :error');
      values[':error'] = result.errorSummary.slice(0, 2000);
    }
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { PK: `RUN#${runId}`, SK: `BATCH#${batchId}` },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: values,
        }),
      );
    } catch (error) {
      throw toAwsCallError('UpdateItem', error);
    }
  }

  /**
   * The creation records of those of `ids` the history holds: BatchGetItem of 100 keys
   * a call, strongly consistent, unprocessed keys retried with backoff.
   *
   * @throws AwsCallError when a batch fails or keys stay unprocessed: the caller then
   * knows nothing of ownership and keeps everything.
   * @example
   * const recorded = await history.recordedCreations(['snap-1', 'snap-2']);
   */
  public async recordedCreations(ids: readonly string[]): Promise<Map<string, CreationRecord>> {
    const found = new Map<string, CreationRecord>();
    const unique = [...new Set(ids)];
    const chunks: string[][] = [];
    for (let i = 0; i < unique.length; i += 100) chunks.push(unique.slice(i, i + 100));
    // A few batches at once: 100,000 ids are 1,000 calls.
    const limit = pLimit(CREATION_READ_CONCURRENCY);
    const readChunk = async (chunk: readonly string[]): Promise<void> => {
      let keys: Record<string, unknown>[] = chunk.map(creationKeys);
      for (let round = 0; keys.length > 0; round += 1) {
        if (round > 8) {
          throw new Error(
            `${keys.length} creation records stayed unprocessed after ${round} tries`,
          );
        }
        if (round > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** round)));
        const response = await this.#doc.send(
          new BatchGetCommand({
            RequestItems: { [this.#table]: { Keys: keys, ConsistentRead: true } },
          }),
        );
        for (const item of response.Responses?.[this.#table] ?? []) {
          const record = toCreation(item);
          if (record) found.set(record.resourceId, record);
        }
        keys = (response.UnprocessedKeys?.[this.#table]?.Keys ?? []) as Record<string, unknown>[];
      }
    };
    try {
      await Promise.all(chunks.map((chunk) => limit(() => readChunk(chunk))));
    } catch (error) {
      limit.clearQueue();
      throw toAwsCallError('BatchGetItem', error);
    }
    return found;
  }

  /**
   * When this history began keeping creation records: written once (conditionally) by
   * the first caller, read strongly consistent after; resources EC2 made before it are
   * judged by their tags.
   *
   * @example
   * const start = await history.ledgerStart(new Date());
   */
  public async ledgerStart(now: Date): Promise<Date> {
    if (this.#ledgerStart) return this.#ledgerStart;
    const key = { PK: 'LEDGER', SK: 'START' };
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: { ...key, type: 'ledger', startedAt: now.toISOString() },
          ConditionExpression: 'attribute_not_exists(PK)',
        }),
      );
      this.#ledgerStart = now;
      return now;
    } catch (error) {
      if (awsErrorCode(error) !== 'ConditionalCheckFailedException')
        throw toAwsCallError('PutItem', error);
    }
    try {
      const item = (
        await this.#doc.send(
          new GetCommand({ TableName: this.#table, Key: key, ConsistentRead: true }),
        )
      ).Item;
      const startedAt = Date.parse(String(item?.startedAt));
      if (Number.isNaN(startedAt)) throw new Error('the ledger start item has no valid startedAt');
      this.#ledgerStart = new Date(startedAt);
      return this.#ledgerStart;
    } catch (error) {
      throw toAwsCallError('GetItem', error);
    }
  }

  /** A fan-out run's batch checkpoints (strongly consistent). */
  public async runBatches(runId: string): Promise<BatchCheckpoint[]> {
    return (await this.#itemsOfRun(runId, 'BATCH#', true)).map(toCheckpoint);
  }

  /**
   * Records that a run's work was handed to workers: its counts and the planner's
   * report, with the run still `running` (its batches finish it).
   */
  public async recordDispatch(
    runId: string,
    result: { counts: Readonly<Record<string, number>>; report: unknown; now: Date },
  ): Promise<void> {
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { PK: `RUN#${runId}`, SK: 'RUN' },
          UpdateExpression: 'SET counts = :counts, report = :report, leaseRenewedAt = :now',
          ConditionExpression: '#status = :running',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':counts': result.counts,
            ':report': fitReport(result.report),
            ':now': result.now.toISOString(),
            ':running': 'running',
          },
        }),
      );
    } catch (error) {
      throw toAwsCallError('UpdateItem', error);
    }
  }

  /**
   * Finishes a fan-out run once: only while it is still `running`.
   *
   * @returns false when another worker finished it first (or it was marked abandoned).
   */
  public async completeRun(
    runId: string,
    result: {
      status: RunRecordStatus;
      endedAt: string;
      counts: Readonly<Record<string, number>>;
      errorSummary?: string | undefined;
    },
  ): Promise<boolean> {
    return this.#updateRun(runId, result, true);
  }

  /** The latest runs of the deployment, newest first. */
  public async latestRuns(deployment: string, options: QueryOptions = {}): Promise<RunRecord[]> {
    return (
      await this.#queryIndex(
        HISTORY_INDEXES.byRunsOrResource,
        'GSI1',
        `RUNS#${deployment}`,
        options,
      )
    ).map(toRun);
  }

  /** Runs of one job, newest first. */
  public async runsOfJob(
    deployment: string,
    job: string,
    options: QueryOptions = {},
  ): Promise<RunRecord[]> {
    return (
      await this.#queryIndex(
        HISTORY_INDEXES.byJobOrInstance,
        'GSI2',
        `JOB#${deployment}#${job}`,
        options,
      )
    ).map(toRun);
  }

  /** Runs of one schedule (any job), newest first. */
  public async runsOfSchedule(
    deployment: string,
    schedule: string,
    options: QueryOptions = {},
  ): Promise<RunRecord[]> {
    return (
      await this.#queryIndex(
        HISTORY_INDEXES.byScheduleOrVolume,
        'GSI3',
        `SCHEDULE#${deployment}#${schedule}`,
        options,
      )
    ).map(toRun);
  }

  /**
   * Everything that happened to one resource (snapshot, AMI, instance or volume), newest first.
   *
   * @example
   * await history.resourceHistory('i-0abc', { since: '2026-11-16T00:00:00Z' });
   */
  public async resourceHistory(
    resourceId: string,
    options: QueryOptions = {},
  ): Promise<ActionItem[]> {
    const key = `RES#${resourceId}`;
    const found = [
      ...(await this.#queryIndex(HISTORY_INDEXES.byRunsOrResource, 'GSI1', key, options)),
      ...(await this.#queryIndex(HISTORY_INDEXES.byJobOrInstance, 'GSI2', key, options)),
      ...(await this.#queryIndex(HISTORY_INDEXES.byScheduleOrVolume, 'GSI3', key, options)),
    ];
    const unique = new Map(found.map((item) => [`${item.PK}|${item.SK}`, item]));
    return [...unique.values()]
      .map((item) => item as unknown as ActionItem)
      .sort((a, b) => b.at.localeCompare(a.at) || b.sequence - a.sequence);
  }

  /** A run's actions, in the order they happened. */
  public async runActions(runId: string): Promise<ActionItem[]> {
    return (await this.#itemsOfRun(runId, 'ACTION#', false)) as unknown as ActionItem[];
  }

  /**
   * Writes a run's outcome: status and end, and the counts, error summary, what is left
   * and the report when given. With `onlyWhileRunning`, only a run still `running` is
   * changed, and false says it was not.
   */
  async #updateRun(runId: string, result: RunResult, onlyWhileRunning: boolean): Promise<boolean> {
    const values: Record<string, unknown> = {
      ':status': result.status,
      ':endedAt': result.endedAt,
    };
    const sets = ['#status = :status', 'endedAt = :endedAt'];
    if (result.counts) {
      sets.push('counts = :counts');
      values[':counts'] = result.counts;
    }
    if (result.errorSummary) {
      sets.push('errorSummary = :error');
      values[':error'] = result.errorSummary.slice(0, 2000);
    }
    if (result.remaining) {
      sets.push('remaining = :remaining');
      values[':remaining'] = result.remaining.slice(0, 1000);
    }
    if (result.report !== undefined) {
      sets.push('report = :report');
      values[':report'] = fitReport(result.report);
    }
    if (onlyWhileRunning) values[':running'] = 'running';
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { PK: `RUN#${runId}`, SK: 'RUN' },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ...(onlyWhileRunning ? { ConditionExpression: '#status = :running' } : {}),
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (error) {
      if (onlyWhileRunning && awsErrorCode(error) === 'ConditionalCheckFailedException')
        return false;
      throw toAwsCallError('UpdateItem', error);
    }
  }

  /** Every item under a run whose sort key starts with `prefix` (its actions, its batches). */
  async #itemsOfRun(
    runId: string,
    prefix: 'ACTION#' | 'BATCH#',
    consistentRead: boolean,
  ): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    try {
      const pages = paginateQuery(
        { client: this.#doc },
        {
          TableName: this.#table,
          KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
          ExpressionAttributeValues: { ':pk': `RUN#${runId}`, ':prefix': prefix },
          ...(consistentRead ? { ConsistentRead: true } : {}),
        },
      );
      for await (const page of pages) items.push(...(page.Items ?? []));
    } catch (error) {
      throw toAwsCallError('Query', error);
    }
    return items;
  }

  async #queryIndex(
    index: string,
    prefix: 'GSI1' | 'GSI2' | 'GSI3',
    partition: string,
    options: QueryOptions,
  ): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    try {
      const pages = paginateQuery(
        { client: this.#doc, pageSize: Math.min(options.limit ?? 100, 1000) },
        {
          TableName: this.#table,
          IndexName: index,
          KeyConditionExpression: options.since
            ? `${prefix}PK = :pk AND ${prefix}SK >= :since`
            : `${prefix}PK = :pk`,
          ExpressionAttributeValues: {
            ':pk': partition,
            // Keys hold times to the millisecond: normalise so "…:00Z" keeps "…:00.500Z".
            ...(options.since ? { ':since': new Date(options.since).toISOString() } : {}),
          },
          ScanIndexForward: false,
        },
      );
      for await (const page of pages) {
        for (const item of page.Items ?? []) {
          items.push(item);
          if (options.limit !== undefined && items.length >= options.limit) return items;
        }
      }
    } catch (error) {
      throw toAwsCallError('Query', error);
    }
    return items;
  }
}

/** Options of the history queries. */
export interface QueryOptions {
  /** ISO time: only items at or after it. */
  readonly since?: string | undefined;
  readonly limit?: number | undefined;
}

/**
 * Builds the history gateway for a configuration.
 *
 * @example
 * const history = createRunHistoryGateway(config, process.env.HISTORY_TABLE);
 */
export function createRunHistoryGateway(
  config: Pick<SnapkeeperConfig, 'region' | 'maxAttempts' | 'requestTimeoutMs' | 'endpoint'>,
  tableName: string,
  retentionDays: number,
): RunHistoryGateway {
  const doc = DynamoDBDocumentClient.from(recordCalls(new DynamoDBClient(clientSettings(config))), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true },
  });
  return new RunHistoryGateway(doc, tableName, retentionDays);
}

/** The key of a resource's creation record. */
function creationKeys(resourceId: string): { PK: string; SK: string } {
  return { PK: `CREATED#${resourceId}`, SK: 'CREATED' };
}

function toCreation(item: Record<string, unknown>): CreationRecord | undefined {
  const resourceId = typeof item.resourceId === 'string' ? item.resourceId : undefined;
  const kind = item.kind;
  if (!resourceId || (kind !== 'snapshot' && kind !== 'image' && kind !== 'copy')) return undefined;
  return {
    resourceId,
    kind,
    runId: String(item.runId ?? ''),
    job: String(item.job ?? ''),
    at: String(item.at ?? ''),
    ...(typeof item.instanceId === 'string' ? { instanceId: item.instanceId } : {}),
    ...(typeof item.volumeId === 'string' ? { volumeId: item.volumeId } : {}),
  };
}

function toCheckpoint(item: Record<string, unknown>): BatchCheckpoint {
  return {
    batchId: String(item.batchId ?? String(item.SK ?? '').replace(/^BATCH#/, '')),
    status: (item.status as BatchStatus | undefined) ?? 'pending',
    attempts: typeof item.attempts === 'number' ? item.attempts : 0,
    ...(item.counts ? { counts: item.counts as Record<string, number> } : {}),
    ...(typeof item.errorSummary === 'string' ? { errorSummary: item.errorSummary } : {}),
  };
}

function toRun(item: Record<string, unknown>): RunRecord {
  return item as unknown as RunRecord;
}

function fitReport(report: unknown): string {
  const json = JSON.stringify(report);
  if (Buffer.byteLength(json) <= MAX_REPORT_BYTES) return json;
  const summary =
    report && typeof report === 'object'
      ? Object.fromEntries(Object.entries(report).filter(([, v]) => !Array.isArray(v)))
      : {};
  return JSON.stringify({
    ...summary,
    truncated: 'the full report was too large to store; see the action items',
  });
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
