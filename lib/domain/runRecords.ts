/**
 * The records that the run history (an adapter) and the jobs (the use cases) share:
 * what a run is announced as, what a destructive action is recorded as, and what the
 * creation ledger answers. Plain data shapes, here so that `lib/aws` never imports
 * `lib/jobs` to name them. `lib/jobs/ports.ts` re-exports them beside the ports.
 */
import type { CreationRecord } from './provenance.ts';
import type { RunRecordStatus } from './runHistory.ts';

/** The outcome of a whole run. */
export type RunStatus = 'succeeded' | 'partial' | 'failed' | 'incomplete';

/** How a run was started. */
export type RunTrigger = 'schedule' | 'console' | 'retry';

/** An error as it appears in reports: the AWS code (or our error name) and a message. */
export interface ReportedError {
  readonly code: string;
  readonly message: string;
}

/** One step of a destructive action, recorded before and after it happens. */
export interface ActionRecord {
  readonly runId: string;
  readonly job: string;
  /** `delete-snapshot`, `deregister-image`, ... */
  readonly action: string;
  readonly resourceId: string;
  readonly phase: 'before' | 'after';
  /** After: what happened. */
  readonly outcome?: 'done' | 'skipped' | 'failed';
  readonly reason: string;
  readonly details?: Readonly<Record<string, unknown>>;
  readonly error?: ReportedError;
}

/**
 * What a run is, as both its summary and its item in the run history say it: which
 * run of which job, what it served, how it stands and what it counted.
 */
export interface RunDescription {
  readonly runId: string;
  readonly deployment: string;
  readonly job: string;
  readonly schedule?: string | undefined;
  readonly slot?: string | undefined;
  readonly requestedBy?: string | undefined;
  readonly dryRun: boolean;
  readonly status: RunRecordStatus;
  readonly startedAt: string;
  readonly counts?: Readonly<Record<string, number>> | undefined;
  readonly errorSummary?: string | undefined;
}

/** The run summary published when a run finishes, and kept in the run item. */
export interface RunSummary extends RunDescription {
  readonly trigger: RunTrigger;
  readonly endedAt: string;
  readonly resumedFrom?: string | undefined;
  /**
   * A retention run's cost ledger totals (monthly cost now and after, bytes freed, price
   * table and currency); see `RetentionCosts` in lib/jobs/snapshotSizes.ts.
   */
  readonly costs?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * The run history as the deleting jobs (snapshot retention, the sweep, AMI retirement,
 * the fan-out retention batches, the copy job) read it: which resources this
 * deployment recorded creating. The run history's creation-record part implements it;
 * `lib/jobs/ports.ts` names it as the creation-ledger port.
 */
export interface CreationLedger {
  /**
   * The creation records of those of `ids` the history holds (read strongly
   * consistent, in batches; throws when any cannot be read).
   */
  recordedCreations(ids: readonly string[]): Promise<ReadonlyMap<string, CreationRecord>>;
  /**
   * When the history began keeping creation records (written once, by the first run
   * that needs it): resources EC2 made before it are judged by their tags.
   */
  ledgerStart(now: Date): Promise<Date>;
}
