/**
 * Base class of every error snapkeeper raises on purpose. Catch this to tell our own,
 * explained failures from unexpected ones.
 */
export class SnapkeeperError extends Error {
  public constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SnapkeeperError';
  }
}

/** A tag value on an instance or volume that cannot be understood. */
export class InvalidTagError extends SnapkeeperError {
  public readonly key: string;
  public readonly value: string;

  public constructor(key: string, value: string, reason: string) {
    super(`${key}=${JSON.stringify(value)} ${reason}`);
    this.name = 'InvalidTagError';
    this.key = key;
    this.value = value;
  }
}

/** An invocation event (scheduled or from the console) that does not match its contract. */
export class InvalidEventError extends SnapkeeperError {
  public constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidEventError';
  }
}

/** A schedule name that the deployment does not define. */
export class UnknownScheduleError extends SnapkeeperError {
  public readonly schedule: string;
  public readonly known: readonly string[];

  public constructor(schedule: string, known: readonly string[]) {
    const shown = JSON.stringify(schedule.length > 64 ? `${schedule.slice(0, 64)}…` : schedule);
    super(`${shown} is not a known schedule; known: ${known.join(', ')}`);
    this.name = 'UnknownScheduleError';
    this.schedule = schedule;
    this.known = known;
  }
}

/** A schedule definition in the deployment's configuration that is not valid. */
export class InvalidScheduleDefinitionError extends SnapkeeperError {
  public constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidScheduleDefinitionError';
  }
}

/** A missing or invalid environment variable, named in the message. */
export class ConfigurationError extends SnapkeeperError {
  public readonly variable: string;

  public constructor(variable: string, message: string, options?: ErrorOptions) {
    super(`Environment variable ${variable} ${message}`, options);
    this.name = 'ConfigurationError';
    this.variable = variable;
  }
}

/**
 * Thrown by a handler after a run that could do nothing, so that Lambda's error metric,
 * retries and failure destination see it. Carries the run's report.
 */
export class RunFailedError extends SnapkeeperError {
  public readonly report: unknown;

  public constructor(job: string, runId: string, reason: string, report: unknown) {
    super(`${job} run ${runId} failed: ${reason}`);
    this.name = 'RunFailedError';
    this.report = report;
  }
}

/**
 * Thrown by a handler when its slot is held by a run that is still alive (its lease
 * fresh): the delivery fails so that Lambda's retry comes back, and takes the slot over
 * if the holder has died by then, or gets its report if it finished.
 */
export class SlotInProgressError extends SnapkeeperError {
  public readonly heldBy: string;

  public constructor(message: string, heldBy: string) {
    super(`${message}; failing this delivery so that its retry checks again`);
    this.name = 'SlotInProgressError';
    this.heldBy = heldBy;
  }
}

/**
 * Thrown by a handler after a run that stopped short of the Lambda deadline, so that
 * Lambda's retry of the same event takes the slot over and resumes where it stopped.
 */
export class RunIncompleteError extends SnapkeeperError {
  public readonly report: unknown;

  public constructor(job: string, runId: string, remaining: number, report: unknown) {
    super(
      `${job} run ${runId} is incomplete: ${remaining} item(s) left; the retry of this event resumes it`,
    );
    this.name = 'RunIncompleteError';
    this.report = report;
  }
}
