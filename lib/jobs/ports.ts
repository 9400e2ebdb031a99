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

/** A logger that drops everything. */
export const silentLogger: LoggerPort = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** A metrics sink that drops everything. */
export const noMetrics: MetricsPort = { count: () => undefined };

/** The outcome of a whole run. */
export type RunStatus = 'succeeded' | 'partial' | 'failed' | 'incomplete';

/**
 * A run's status from what happened, in order of precedence: `failed` (nothing could
 * be done, or a cap stopped it), `incomplete` (work left for the next invocation),
 * `partial` (done, with errors or problems), else `succeeded`.
 *
 * @example
 * runStatus({ failed: false, incomplete: false, hasErrors: true }); // 'partial'
 */
export function runStatus(outcome: {
  readonly failed: boolean;
  readonly incomplete: boolean;
  readonly hasErrors: boolean;
}): RunStatus {
  if (outcome.failed) return 'failed';
  if (outcome.incomplete) return 'incomplete';
  return outcome.hasErrors ? 'partial' : 'succeeded';
}

/** How a run was started. */
export type RunTrigger = 'schedule' | 'console' | 'retry';

/** An error as it appears in reports: the AWS code (or our error name) and a message. */
export interface ReportedError {
  readonly code: string;
  readonly message: string;
}

/**
 * A sortable, readable run id: the start time to the second and a random suffix.
 *
 * @example
 * newRunId(new Date('2026-11-23T03:00:00Z'), () => 'a1b2c3d4'); // '20261123T030000Z-a1b2c3d4'
 */
export function newRunId(now: Date, random: () => string): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `${stamp}Z-${random()}`;
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

/**
 * A journal that writes each record as a structured log line.
 *
 * @example
 * const journal = logJournal(logger);
 */
export function logJournal(logger: LoggerPort): ActionJournal {
  return {
    record: async (entry) => {
      logger.info(`${entry.action} ${entry.phase}`, { ...entry });
    },
  };
}

/** A log line's report above this many bytes of JSON is logged as a summary. */
export const MAX_LOGGED_REPORT_BYTES = 200_000;

/** How many entries of each list a summarised report keeps. */
const LOGGED_ENTRIES = 25;

/**
 * The form of a report for its log line: the report itself, or, when its JSON is above
 * `maxBytes` (CloudWatch Logs takes 256 KB an event; a retention run over 100,000
 * snapshots reports megabytes), every field but the lists, the first entries of each
 * list, and how many were left out. The whole report is still returned and recorded.
 *
 * @example
 * logger.info('retention run succeeded', { report: reportForLog(report) });
 */
export function reportForLog(report: object, maxBytes = MAX_LOGGED_REPORT_BYTES): object {
  const size = Buffer.byteLength(JSON.stringify(report));
  if (size <= maxBytes) return report;
  const summary: Record<string, unknown> = {};
  const omitted: Record<string, number> = {};
  for (const [key, value] of Object.entries(report)) {
    if (Array.isArray(value) && value.length > LOGGED_ENTRIES) {
      summary[key] = value.slice(0, LOGGED_ENTRIES);
      omitted[key] = value.length - LOGGED_ENTRIES;
    } else {
      summary[key] = value;
    }
  }
  return {
    ...summary,
    logged: `summary of a ${Math.round(size / 1024)} KB report: ${Object.entries(omitted)
      .map(([key, n]) => `${n} more ${key}`)
      .join(', ')} left out of this line; the run history holds the counts and every action`,
  };
}
