/**
 * The read side of the history: runs newest first (of the deployment, of a job, of a
 * schedule) from the three overloaded indexes, everything that happened to one resource,
 * and one run's actions and batch checkpoints from the table. Paginated, by key or index
 * only (no scans).
 */

import type { BatchCheckpoint } from '../../domain/fanOut.ts';
import { HISTORY_INDEXES, runItemKeys } from '../../domain/runHistory.ts';
import { toCheckpoint } from './batchCheckpoints.ts';
import type { ActionItem, QueryOptions, RunRecord } from './records.ts';
import { toRun } from './runs.ts';
import type { HistoryItem, HistoryTable } from './table.ts';

/** Items a query page holds at most. */
const MAX_PAGE_SIZE = 1000;

/** Items a query page holds when no limit is given. */
const DEFAULT_PAGE_SIZE = 100;

/** The overloaded indexes, each with its key attributes' prefix. */
type HistoryIndex = keyof typeof HISTORY_INDEXES;

/**
 * The read-side queries of the history table.
 *
 * @example
 * const queries = new HistoryQueries(table);
 * const runs = await queries.latestRuns('prod', { limit: 20 });
 */
export class HistoryQueries {
  readonly #table: HistoryTable;

  public constructor(table: HistoryTable) {
    this.#table = table;
  }

  /**
   * The latest runs of the deployment, newest first.
   *
   * @example
   * await queries.latestRuns('prod', { since: '2026-11-16T00:00:00Z' });
   */
  public async latestRuns(deployment: string, options: QueryOptions = {}): Promise<RunRecord[]> {
    return (await this.#queryIndex('byRunsOrResource', `RUNS#${deployment}`, options)).map(toRun);
  }

  /**
   * Runs of one job, newest first.
   *
   * @example
   * await queries.runsOfJob('prod', 'backup', { limit: 10 });
   */
  public async runsOfJob(
    deployment: string,
    job: string,
    options: QueryOptions = {},
  ): Promise<RunRecord[]> {
    return (await this.#queryIndex('byJobOrInstance', `JOB#${deployment}#${job}`, options)).map(
      toRun,
    );
  }

  /**
   * Runs of one schedule (any job), newest first.
   *
   * @example
   * await queries.runsOfSchedule('prod', 'daily');
   */
  public async runsOfSchedule(
    deployment: string,
    schedule: string,
    options: QueryOptions = {},
  ): Promise<RunRecord[]> {
    return (
      await this.#queryIndex('byScheduleOrVolume', `SCHEDULE#${deployment}#${schedule}`, options)
    ).map(toRun);
  }

  /**
   * Everything that happened to one resource (snapshot, AMI, instance or volume), newest first.
   *
   * @example
   * await queries.resourceHistory('i-0abc', { since: '2026-11-16T00:00:00Z' });
   */
  public async resourceHistory(
    resourceId: string,
    options: QueryOptions = {},
  ): Promise<ActionItem[]> {
    const key = `RES#${resourceId}`;
    const found = [
      ...(await this.#queryIndex('byRunsOrResource', key, options)),
      ...(await this.#queryIndex('byJobOrInstance', key, options)),
      ...(await this.#queryIndex('byScheduleOrVolume', key, options)),
    ];
    const unique = new Map(found.map((item) => [`${item.PK}|${item.SK}`, item]));
    return [...unique.values()]
      .map((item) => item as unknown as ActionItem)
      .sort((a, b) => b.at.localeCompare(a.at) || b.sequence - a.sequence);
  }

  /**
   * A run's actions, in the order they happened.
   *
   * @example
   * const actions = await queries.runActions('r1');
   */
  public async runActions(runId: string): Promise<ActionItem[]> {
    return (await this.#itemsOfRun(runId, 'ACTION#', false)) as unknown as ActionItem[];
  }

  /**
   * A fan-out run's batch checkpoints (strongly consistent).
   *
   * @example
   * const batches = await queries.runBatches('r1');
   */
  public async runBatches(runId: string): Promise<BatchCheckpoint[]> {
    return (await this.#itemsOfRun(runId, 'BATCH#', true)).map(toCheckpoint);
  }

  /** Every item under a run whose sort key starts with `prefix` (its actions, its batches). */
  async #itemsOfRun(
    runId: string,
    prefix: 'ACTION#' | 'BATCH#',
    consistentRead: boolean,
  ): Promise<HistoryItem[]> {
    return this.#table.query({
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
      ExpressionAttributeValues: { ':pk': runItemKeys(runId).PK, ':prefix': prefix },
      ...(consistentRead ? { ConsistentRead: true } : {}),
    });
  }

  /** One partition of an overloaded index, newest first, from `since` and up to `limit`. */
  async #queryIndex(
    index: HistoryIndex,
    partition: string,
    options: QueryOptions,
  ): Promise<HistoryItem[]> {
    const name = HISTORY_INDEXES[index];
    return this.#table.query(
      {
        IndexName: name,
        KeyConditionExpression: options.since
          ? `${name}PK = :pk AND ${name}SK >= :since`
          : `${name}PK = :pk`,
        ExpressionAttributeValues: {
          ':pk': partition,
          // Keys hold times to the millisecond: normalise so "…:00Z" keeps "…:00.500Z".
          ...(options.since ? { ':since': new Date(options.since).toISOString() } : {}),
        },
        ScanIndexForward: false,
      },
      {
        pageSize: Math.min(options.limit ?? DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        limit: options.limit,
      },
    );
  }
}
