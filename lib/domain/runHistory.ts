/**
 * The run-history table's key design: one table, three overloaded global secondary
 * indexes, every access pattern served by a key (no scans).
 *
 * | Pattern | Where | Key |
 * | --- | --- | --- |
 * | a run | table | PK `RUN#<runId>`, SK `RUN` |
 * | a run's actions | table | PK `RUN#<runId>`, SK begins with `ACTION#` |
 * | a slot's claim | table | PK `SLOT#<job>#<schedule>#<slot>`, SK `CLAIM` |
 * | latest runs | GSI1 | `RUNS#<deployment>`, by start time |
 * | runs of a job | GSI2 | `JOB#<deployment>#<job>`, by start time |
 * | runs of a schedule | GSI3 | `SCHEDULE#<deployment>#<schedule>`, by start time |
 * | what happened to a snapshot or AMI | GSI1 | `RES#<id>`, by time |
 * | ... to an instance | GSI2 | `RES#<instance id>`, by time |
 * | ... to a volume | GSI3 | `RES#<volume id>`, by time |
 * | whether this deployment created a resource (no TTL) | table | PK `CREATED#<id>`, SK `CREATED` |
 * | when creation records began | table | PK `LEDGER`, SK `START` |
 */

/** Every status a run goes through or ends in. */
export type RunRecordStatus =
  | 'running'
  | 'succeeded'
  | 'partial'
  | 'failed'
  | 'incomplete'
  | 'abandoned'
  /** A console payload to fix: nothing was done. Not a failure: no alert, counted apart. */
  | 'rejected';

/** Statuses after which a slot's work is done: a duplicate gets the first report. */
export const FINISHED_STATUSES: readonly RunRecordStatus[] = ['succeeded', 'partial'];

/**
 * Statuses after which a later invocation of the slot takes over and resumes (a
 * rejected payload sent again is checked again).
 */
export const RESUMABLE_STATUSES: readonly RunRecordStatus[] = [
  'failed',
  'incomplete',
  'abandoned',
  'rejected',
];

/** Identifies one schedule slot of one job. */
export interface SlotKey {
  readonly job: string;
  readonly schedule: string;
  readonly slot: string;
}

/** A table item's primary and index keys. */
export interface ItemKeys {
  readonly PK: string;
  readonly SK: string;
  readonly GSI1PK?: string;
  readonly GSI1SK?: string;
  readonly GSI2PK?: string;
  readonly GSI2SK?: string;
  readonly GSI3PK?: string;
  readonly GSI3SK?: string;
}

/** The index names, as serverless.yml defines them. */
export const HISTORY_INDEXES = {
  byRunsOrResource: 'GSI1',
  byJobOrInstance: 'GSI2',
  byScheduleOrVolume: 'GSI3',
} as const;

/**
 * Keys of a run item.
 *
 * @example
 * runKeys({ runId: 'r1', deployment: 'prod', job: 'backup', schedule: 'daily', startedAt: '2026-11-23T03:00:01Z' });
 */
export function runKeys(run: {
  runId: string;
  deployment: string;
  job: string;
  schedule?: string | undefined;
  startedAt: string;
}): ItemKeys {
  const sort = `${run.startedAt}#${run.runId}`;
  return {
    ...runItemKeys(run.runId),
    GSI1PK: `RUNS#${run.deployment}`,
    GSI1SK: sort,
    GSI2PK: `JOB#${run.deployment}#${run.job}`,
    GSI2SK: sort,
    ...(run.schedule ? { GSI3PK: `SCHEDULE#${run.deployment}#${run.schedule}`, GSI3SK: sort } : {}),
  };
}

/**
 * Keys of an action item: under its run, and indexed by the resource it concerns and
 * the instance and volume it belongs to.
 *
 * @example
 * actionKeys({ runId: 'r1', sequence: 3, resourceId: 'snap-1', phase: 'after', at: '...', instanceId: 'i-1', volumeId: 'vol-1' });
 */
export function actionKeys(action: {
  runId: string;
  sequence: number;
  resourceId: string;
  phase: string;
  at: string;
  instanceId?: string | undefined;
  volumeId?: string | undefined;
}): ItemKeys {
  const sort = `${action.at}#${action.runId}#${String(action.sequence).padStart(6, '0')}`;
  return {
    PK: `RUN#${action.runId}`,
    SK: `ACTION#${String(action.sequence).padStart(6, '0')}#${action.resourceId}#${action.phase}`,
    GSI1PK: `RES#${action.resourceId}`,
    GSI1SK: sort,
    ...(action.instanceId && action.instanceId !== action.resourceId
      ? { GSI2PK: `RES#${action.instanceId}`, GSI2SK: sort }
      : {}),
    ...(action.volumeId && action.volumeId !== action.resourceId
      ? { GSI3PK: `RES#${action.volumeId}`, GSI3SK: sort }
      : {}),
  };
}

/**
 * Keys of a slot claim.
 *
 * @example
 * slotKeys({ job: 'backup', schedule: 'daily', slot: '2026-11-23T03:00:00Z' }).PK;
 * // 'SLOT#backup#daily#2026-11-23T03:00:00Z'
 */
export function slotKeys(slot: SlotKey): ItemKeys {
  return { PK: `SLOT#${slot.job}#${slot.schedule}#${slot.slot}`, SK: 'CLAIM' };
}

/**
 * Keys of a run item, by its id alone (for reads and updates of a run already written).
 *
 * @example
 * runItemKeys('r1'); // { PK: 'RUN#r1', SK: 'RUN' }
 */
export function runItemKeys(runId: string): ItemKeys {
  return { PK: `RUN#${runId}`, SK: 'RUN' };
}

/**
 * Keys of a fan-out batch's checkpoint, under its run.
 *
 * @example
 * batchKeys('r1', 'self/eu-west-1/0001'); // { PK: 'RUN#r1', SK: 'BATCH#self/eu-west-1/0001' }
 */
export function batchKeys(runId: string, batchId: string): ItemKeys {
  return { PK: `RUN#${runId}`, SK: `BATCH#${batchId}` };
}

/**
 * Keys of a resource's creation record (kept without a TTL).
 *
 * @example
 * creationKeys('snap-1'); // { PK: 'CREATED#snap-1', SK: 'CREATED' }
 */
export function creationKeys(resourceId: string): ItemKeys {
  return { PK: `CREATED#${resourceId}`, SK: 'CREATED' };
}

/** Keys of the item that says when creation records began. */
export const LEDGER_START_KEYS: ItemKeys = { PK: 'LEDGER', SK: 'START' };

/**
 * The TTL (epoch seconds) of an item written at `at`, kept `retentionDays`.
 *
 * @example
 * expiresAt(new Date('2026-01-01T00:00:00Z'), 1); // 1767312000
 */
export function expiresAt(at: Date, retentionDays: number): number {
  return Math.floor(at.getTime() / 1000) + retentionDays * 86_400;
}

/**
 * Whether a run still marked `running` is dead: its lease was last renewed longer ago
 * than the function's timeout plus a margin, which no live invocation can be. A live
 * run renews its lease while it works.
 *
 * @example
 * isAbandoned({ status: 'running', leaseRenewedAt: '2026-11-23T03:00:00Z' }, now, 900_000, 120_000);
 */
export function isAbandoned(
  run: { status: string; leaseRenewedAt?: string | undefined },
  now: Date,
  timeoutMs: number,
  marginMs: number,
): boolean {
  if (run.status !== 'running' || !run.leaseRenewedAt) return false;
  return now.getTime() - Date.parse(run.leaseRenewedAt) > timeoutMs + marginMs;
}

/** How many renewal periods a running run's lease may miss before the run is dead. */
export const LEASE_STALE_RENEWALS = 3;

/**
 * Allowance for the clocks of two Lambda containers (the holder's, which wrote its
 * lease, and the reader's). Lambda's clocks are kept by Amazon Time Sync, far closer.
 */
export const LEASE_CLOCK_SKEW_MS = 10_000;

/** How the liveness of a run's lease is judged. */
export interface LeaseRules {
  /** How often a running run renews its lease. */
  readonly renewMs: number;
  /** The function's timeout. */
  readonly timeoutMs: number;
  /** Added to the timeout for runs whose lease only moves now and then (fan-out). */
  readonly marginMs: number;
  /** Allowance for clock differences; default {@link LEASE_CLOCK_SKEW_MS}. */
  readonly skewMs?: number | undefined;
}

/**
 * Whether a `running` run has handed its work to fan-out workers: its dispatch report is
 * written, it stays `running` by design, and its lease moves only when a worker claims
 * or finishes a batch.
 *
 * @example
 * isDispatched({ status: 'running', report: '{"status":"running"}' }); // true
 */
export function isDispatched(run: { status: string; report?: string | undefined }): boolean {
  return run.status === 'running' && run.report !== undefined;
}

/**
 * How long a run's lease may go unrenewed before the run is dead:
 * {@link LEASE_STALE_RENEWALS} renewal periods plus the clock allowance for a run that
 * renews its own lease (never more than the timeout plus the margin), and the timeout
 * plus the margin for a dispatched fan-out run (its workers renew it between batches).
 *
 * @example
 * leaseStaleAfterMs({ status: 'running' }, { renewMs: 30_000, timeoutMs: 900_000, marginMs: 120_000 }); // 100_000
 */
export function leaseStaleAfterMs(
  run: { status: string; report?: string | undefined },
  rules: LeaseRules,
): number {
  const ceiling = rules.timeoutMs + rules.marginMs;
  if (isDispatched(run)) return ceiling;
  return Math.min(
    LEASE_STALE_RENEWALS * rules.renewMs + (rules.skewMs ?? LEASE_CLOCK_SKEW_MS),
    ceiling,
  );
}

/**
 * Whether a run still marked `running` is dead: its lease has not been renewed for
 * {@link leaseStaleAfterMs}. A live run renews its lease every `renewMs` while it works,
 * so a crashed one (killed, out of memory) is known within a few renewal periods and the
 * next delivery of its slot takes it over and resumes.
 *
 * @example
 * isLeaseDead({ status: 'running', leaseRenewedAt: '2026-11-23T03:00:00Z' }, now, rules);
 */
export function isLeaseDead(
  run: { status: string; leaseRenewedAt?: string | undefined; report?: string | undefined },
  now: Date,
  rules: LeaseRules,
): boolean {
  if (run.status !== 'running' || !run.leaseRenewedAt) return false;
  const renewed = Date.parse(run.leaseRenewedAt);
  if (Number.isNaN(renewed)) return false;
  return now.getTime() - renewed > leaseStaleAfterMs(run, rules);
}
