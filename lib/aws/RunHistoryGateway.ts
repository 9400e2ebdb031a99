/**
 * The run-history gateway: one object over the history table with every access pattern's
 * methods, for the callers that use several (the runtime, the slot runner, the tools).
 * It builds one {@link HistoryTable} and one gateway per access pattern over it
 * (`lib/aws/history/`) and delegates to them; a job or the runtime that needs one
 * pattern can take that part alone.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SnapkeeperConfig } from '../config/environment.ts';
import type { BatchCheckpoint } from '../domain/fanOut.ts';
import type { CreationRecord } from '../domain/provenance.ts';
import type { SlotKey } from '../domain/runHistory.ts';
import { recordCalls } from './callRecorder.ts';
import { clientSettings } from './clients.ts';
import { HistoryActionJournal } from './history/actionJournal.ts';
import {
  BatchCheckpoints,
  type BatchClaim,
  type BatchResult,
  type PlannedBatch,
} from './history/batchCheckpoints.ts';
import { CreationRecords } from './history/creationLedger.ts';
import { HistoryQueries } from './history/historyQueries.ts';
import type {
  ActionItem,
  CreationLedger,
  JournalEntry,
  QueryOptions,
  RunRecord,
  SlotClaim,
} from './history/records.ts';
import { type CompletedRun, RunRecords, type RunResult } from './history/runs.ts';
import { type SlotClaimOutcome, SlotClaims } from './history/slotClaims.ts';
import { SnapshotSizeRecords } from './history/snapshotSizes.ts';
import { HistoryTable } from './history/table.ts';

export {
  HistoryActionJournal,
  HistoryWriteError,
  RECORD_BATCH_BACKOFF_MS,
  RECORD_BATCH_ROUNDS,
} from './history/actionJournal.ts';
export {
  BatchCheckpoints,
  type BatchClaim,
  type BatchResult,
  type PlannedBatch,
} from './history/batchCheckpoints.ts';
export { CREATION_READ_CONCURRENCY, CreationRecords } from './history/creationLedger.ts';
export { HistoryQueries } from './history/historyQueries.ts';
export type {
  ActionItem,
  JournalEntry,
  QueryOptions,
  RunRecord,
  SlotClaim,
} from './history/records.ts';
export { type CompletedRun, MAX_REPORT_BYTES, RunRecords, type RunResult } from './history/runs.ts';
export { type SlotClaimOutcome, SlotClaims } from './history/slotClaims.ts';
export { HistoryTable } from './history/table.ts';

/**
 * The run-history table: runs, their actions, and slot claims, written as a run goes
 * and read by key or index only. Each access pattern is also a field (`slots`, `runs`,
 * `journal`, `batches`, `creations`, `queries`), one gateway over the same table, for a
 * caller that needs only that port: the journal's sequence and the ledger's start are
 * shared with the composite's own methods.
 *
 * @example
 * const history = createRunHistoryGateway(config, 'snapkeeper-prod-runs', 400);
 * await history.startRun(run);
 * const ledger: CreationLedger = history.creations;
 */
export class RunHistoryGateway implements CreationLedger {
  public readonly slots: SlotClaims;
  public readonly runs: RunRecords;
  public readonly journal: HistoryActionJournal;
  public readonly batches: BatchCheckpoints;
  public readonly creations: CreationRecords;
  public readonly queries: HistoryQueries;
  /** Snapshot sizes measured once (the cost ledger). */
  public readonly sizes: SnapshotSizeRecords;

  public constructor(doc: DynamoDBDocumentClient, tableName: string, retentionDays: number) {
    const table = new HistoryTable(doc, tableName, retentionDays);
    this.slots = new SlotClaims(table);
    this.runs = new RunRecords(table);
    this.creations = new CreationRecords(table);
    this.journal = new HistoryActionJournal(table, this.creations);
    this.batches = new BatchCheckpoints(table);
    this.queries = new HistoryQueries(table);
    this.sizes = new SnapshotSizeRecords(table);
  }

  /** {@inheritDoc SlotClaims.claimSlot} */
  public claimSlot(
    slot: SlotKey,
    runId: string,
    now: Date,
    options: { readonly lapsedBefore?: Date | undefined } = {},
  ): Promise<SlotClaimOutcome> {
    return this.slots.claimSlot(slot, runId, now, options);
  }

  /** {@inheritDoc SlotClaims.takeOverSlot} */
  public takeOverSlot(
    slot: SlotKey,
    fromRunId: string,
    toRunId: string,
    now: Date,
  ): Promise<boolean> {
    return this.slots.takeOverSlot(slot, fromRunId, toRunId, now);
  }

  /** {@inheritDoc SlotClaims.getSlotClaim} */
  public getSlotClaim(slot: SlotKey): Promise<SlotClaim | undefined> {
    return this.slots.getSlotClaim(slot);
  }

  /** {@inheritDoc RunRecords.startRun} */
  public startRun(run: RunRecord): Promise<void> {
    return this.runs.startRun(run);
  }

  /** {@inheritDoc RunRecords.renewLease} */
  public renewLease(runId: string, now: Date): Promise<void> {
    return this.runs.renewLease(runId, now);
  }

  /** {@inheritDoc RunRecords.finishRun} */
  public finishRun(runId: string, result: RunResult): Promise<void> {
    return this.runs.finishRun(runId, result);
  }

  /** {@inheritDoc RunRecords.markAbandoned} */
  public markAbandoned(
    runId: string,
    leaseRenewedAt: string,
    now: Date,
    byRunId: string,
  ): Promise<boolean> {
    return this.runs.markAbandoned(runId, leaseRenewedAt, now, byRunId);
  }

  /** {@inheritDoc RunRecords.getRun} */
  public getRun(runId: string): Promise<RunRecord | undefined> {
    return this.runs.getRun(runId);
  }

  /** {@inheritDoc RunRecords.recordDispatch} */
  public recordDispatch(
    runId: string,
    result: { counts: Readonly<Record<string, number>>; report: unknown; now: Date },
  ): Promise<void> {
    return this.runs.recordDispatch(runId, result);
  }

  /** {@inheritDoc RunRecords.completeRun} */
  public completeRun(runId: string, result: CompletedRun): Promise<boolean> {
    return this.runs.completeRun(runId, result);
  }

  /** {@inheritDoc HistoryActionJournal.record} */
  public record(entry: JournalEntry): Promise<void> {
    return this.journal.record(entry);
  }

  /** {@inheritDoc HistoryActionJournal.recordBatch} */
  public recordBatch(
    entries: readonly JournalEntry[],
    options: { readonly sleep?: (ms: number) => Promise<void>; readonly rounds?: number } = {},
  ): Promise<void> {
    return this.journal.recordBatch(entries, options);
  }

  /** {@inheritDoc BatchCheckpoints.putBatches} */
  public putBatches(runId: string, batches: readonly PlannedBatch[], now: Date): Promise<void> {
    return this.batches.putBatches(runId, batches, now);
  }

  /** {@inheritDoc BatchCheckpoints.claimBatch} */
  public claimBatch(
    runId: string,
    batchId: string,
    now: Date,
    staleBefore: Date,
  ): Promise<BatchClaim> {
    return this.batches.claimBatch(runId, batchId, now, staleBefore);
  }

  /** {@inheritDoc BatchCheckpoints.finishBatch} */
  public finishBatch(runId: string, batchId: string, result: BatchResult): Promise<void> {
    return this.batches.finishBatch(runId, batchId, result);
  }

  /** {@inheritDoc CreationRecords.recordedCreations} */
  public recordedCreations(ids: readonly string[]): Promise<Map<string, CreationRecord>> {
    return this.creations.recordedCreations(ids);
  }

  /** {@inheritDoc CreationRecords.ledgerStart} */
  public ledgerStart(now: Date): Promise<Date> {
    return this.creations.ledgerStart(now);
  }

  /** {@inheritDoc HistoryQueries.runBatches} */
  public runBatches(runId: string): Promise<BatchCheckpoint[]> {
    return this.queries.runBatches(runId);
  }

  /** {@inheritDoc HistoryQueries.latestRuns} */
  public latestRuns(deployment: string, options: QueryOptions = {}): Promise<RunRecord[]> {
    return this.queries.latestRuns(deployment, options);
  }

  /** {@inheritDoc HistoryQueries.runsOfJob} */
  public runsOfJob(
    deployment: string,
    job: string,
    options: QueryOptions = {},
  ): Promise<RunRecord[]> {
    return this.queries.runsOfJob(deployment, job, options);
  }

  /** {@inheritDoc HistoryQueries.runsOfSchedule} */
  public runsOfSchedule(
    deployment: string,
    schedule: string,
    options: QueryOptions = {},
  ): Promise<RunRecord[]> {
    return this.queries.runsOfSchedule(deployment, schedule, options);
  }

  /** {@inheritDoc HistoryQueries.resourceHistory} */
  public resourceHistory(resourceId: string, options: QueryOptions = {}): Promise<ActionItem[]> {
    return this.queries.resourceHistory(resourceId, options);
  }

  /** {@inheritDoc HistoryQueries.runActions} */
  public runActions(runId: string): Promise<ActionItem[]> {
    return this.queries.runActions(runId);
  }
}

/**
 * Builds the history gateway for a configuration.
 *
 * @example
 * const history = createRunHistoryGateway(config, process.env.HISTORY_TABLE, 400);
 */
export function createRunHistoryGateway(
  config: Pick<SnapkeeperConfig, 'region' | 'maxAttempts' | 'requestTimeoutMs' | 'endpoint'>,
  tableName: string,
  retentionDays: number,
): RunHistoryGateway {
  return new RunHistoryGateway(historyDocumentClient(config), tableName, retentionDays);
}

function historyDocumentClient(
  config: Pick<SnapkeeperConfig, 'region' | 'maxAttempts' | 'requestTimeoutMs' | 'endpoint'>,
): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(recordCalls(new DynamoDBClient(clientSettings(config))), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true },
  });
}
