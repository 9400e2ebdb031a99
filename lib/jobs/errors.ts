/**
 * The use cases' errors: how a run or a batch ended when the handler must fail the
 * delivery (so that Lambda's or the queue's retry comes back). Every class takes
 * `{ cause }` and passes it on; `name` says which it is.
 */
import { SnapkeeperError } from '../domain/errors.ts';

/**
 * Thrown by a handler after a run that could do nothing, so that Lambda's error metric,
 * retries and failure destination see it. Carries the run's report.
 */
export class RunFailedError extends SnapkeeperError {
  public readonly report: unknown;

  public constructor(
    job: string,
    runId: string,
    reason: string,
    report: unknown,
    options?: ErrorOptions,
  ) {
    super(`${job} run ${runId} failed: ${reason}`, options);
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

  public constructor(message: string, heldBy: string, options?: ErrorOptions) {
    super(`${message}; failing this delivery so that its retry checks again`, options);
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

  public constructor(
    job: string,
    runId: string,
    remaining: number,
    report: unknown,
    options?: ErrorOptions,
  ) {
    super(
      `${job} run ${runId} is incomplete: ${remaining} item(s) left; the retry of this event resumes it`,
      options,
    );
    this.name = 'RunIncompleteError';
    this.report = report;
  }
}

/** A batch the worker could not finish this time: the queue delivers it again. */
export class BatchRetryError extends SnapkeeperError {
  public readonly batchId: string;

  public constructor(batchId: string, reason: string, options?: ErrorOptions) {
    super(`batch ${batchId} will be retried: ${reason}`, options);
    this.name = 'BatchRetryError';
    this.batchId = batchId;
  }
}
