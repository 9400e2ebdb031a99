/**
 * What a job needs from the world besides AWS: a logger and a metrics sink. Powertools'
 * Logger and Metrics satisfy these; tests pass silent or recording ones.
 */
export interface LoggerPort {
  debug(message: string, ...extra: unknown[]): void;
  info(message: string, ...extra: unknown[]): void;
  warn(message: string, ...extra: unknown[]): void;
  error(message: string, ...extra: unknown[]): void;
}

/** Counts per run; the handler flushes them as CloudWatch metrics. */
export interface MetricsPort {
  count(name: string, value: number): void;
  /** A duration or age, published at once with its own dimensions (e.g. the schedule). */
  seconds?(name: string, value: number, dimensions?: Readonly<Record<string, string>>): void;
}

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
 * Where destructive actions are recorded, before and after each call. The run-history
 * table implements it; a job refuses to act when the "before" record cannot be written.
 */
export interface ActionJournal {
  /** Resolves when the entry is written. */
  record(entry: ActionRecord): Promise<void>;
  /** Resolves when every entry recorded so far is written or has failed (a batching journal). */
  flush?(): Promise<void>;
}
