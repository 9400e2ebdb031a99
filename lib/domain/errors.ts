/**
 * The domain's errors, and the base class of every error snapkeeper raises on purpose.
 * Each layer has its own `errors.ts` (`lib/aws/errors.ts`, `lib/jobs/errors.ts`); every
 * class takes `{ cause }` (ES2022) and passes it on.
 */

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

  public constructor(key: string, value: string, reason: string, options?: ErrorOptions) {
    super(`${key}=${JSON.stringify(value)} ${reason}`, options);
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

  public constructor(schedule: string, known: readonly string[], options?: ErrorOptions) {
    const shown = JSON.stringify(schedule.length > 64 ? `${schedule.slice(0, 64)}…` : schedule);
    super(`${shown} is not a known schedule; known: ${known.join(', ')}`, options);
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
