import type { ActionJournal, LoggerPort, MetricsPort, ReportedError, RunStatus } from './ports.ts';

/** A logger that drops everything. */
export const silentLogger: LoggerPort = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** A metrics sink that drops everything. */
export const noMetrics: MetricsPort = { count: () => undefined };

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

/**
 * The end of every job's run, in one place: count the run's metrics, count the run
 * itself as succeeded or failed under the job's metric names, and log the report
 * (summarised above {@link MAX_LOGGED_REPORT_BYTES}) at `info` when it succeeded and
 * `warn` otherwise. Returns the report unchanged, so a job ends with
 * `return closeRun(report, ...)`.
 *
 * @example
 * return closeRun(report, { label: 'retention run', metrics, logger,
 *   counts: { SnapshotsDeleted: 3 }, runs: { succeeded: 'RetentionRunsSucceeded', failed: 'RetentionRunsFailed' } });
 */
export function closeRun<Report extends { readonly status: RunStatus }>(
  report: Report,
  how: {
    /** The log line starts with it: `retention run`, `AMI run`, ... */
    readonly label: string;
    readonly metrics: MetricsPort;
    readonly logger: LoggerPort;
    /** Metric name → value, counted in this order. */
    readonly counts?: Readonly<Record<string, number>>;
    /** The metric counting the run itself (1), by outcome; absent: none. */
    readonly runs?: { readonly succeeded: string; readonly failed: string };
  },
): Report {
  for (const [name, value] of Object.entries(how.counts ?? {})) how.metrics.count(name, value);
  if (how.runs)
    how.metrics.count(report.status === 'failed' ? how.runs.failed : how.runs.succeeded, 1);
  const log = report.status === 'succeeded' ? how.logger.info : how.logger.warn;
  log.call(how.logger, `${how.label} ${report.status}`, { report: reportForLog(report) });
  return report;
}

/**
 * Writes the "after" record of a destructive action without letting its failure undo
 * what was done: the action already happened, so a journal error is logged (naming the
 * resource and the outcome) and swallowed. The promise settles when the write settled;
 * pass it to a `Behind` to keep it off the critical path.
 *
 * @example
 * await recordAfter(journal, logger, { ...record, outcome: 'done', reason: 'deregistered' });
 */
export function recordAfter(
  journal: ActionJournal,
  logger: LoggerPort,
  entry: Omit<ActionRecordAfter, 'phase'>,
): Promise<void> {
  return journal.record({ ...entry, phase: 'after' }).catch((error: unknown) =>
    logger.error('action done but its "after" record could not be written', {
      action: entry.action,
      resourceId: entry.resourceId,
      outcome: entry.outcome,
      error: error instanceof Error ? error.message : String(error),
    }),
  );
}

/** An "after" record: what happened is required. */
type ActionRecordAfter = Parameters<ActionJournal['record']>[0] & {
  readonly outcome: 'done' | 'skipped' | 'failed';
  readonly error?: ReportedError;
};
