import { AwsCallError, awsErrorCode } from '../aws/errors.ts';

/** How many calls of a job may be in flight, and how the number moves. */
export interface PacedPoolOptions {
  /** In flight at the start (the old fixed concurrency: `BACKUP_CONCURRENCY`, `DELETE_CONCURRENCY`). */
  readonly initial: number;
  /** The most ever in flight (`MAX_IN_FLIGHT`). */
  readonly ceiling: number;
  /** Whether a task's error says EC2 throttled us; by default `RequestLimitExceeded` and its kin. */
  readonly isThrottle?: (error: unknown) => boolean;
}

/** The default of `MAX_IN_FLIGHT`: the most mutating calls of one job in flight at once. */
export const DEFAULT_MAX_IN_FLIGHT = 64;

/** EC2's and the SDK's names for "slow down". */
const THROTTLE_CODES = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
]);

/**
 * Whether an error code is EC2 (or another AWS API) asking us to slow down.
 *
 * @example
 * isThrottleCode('RequestLimitExceeded'); // true
 */
export function isThrottleCode(code: string | undefined): boolean {
  return code !== undefined && THROTTLE_CODES.has(code);
}

/**
 * Whether an error is EC2 (or another AWS API) asking us to slow down.
 *
 * @example
 * isThrottleError(Object.assign(new Error('x'), { name: 'RequestLimitExceeded' })); // true
 */
export function isThrottleError(error: unknown): boolean {
  return isThrottleCode(error instanceof AwsCallError ? error.code : awsErrorCode(error));
}

/**
 * A work pool whose number in flight adapts, so that the rate limiter's bucket, not a
 * fixed number of slots, sets the pace: the tasks' EC2 calls wait for tokens inside
 * the rate-limited client, and as long as work is queued the pool lets one more task
 * in each time one finishes (additive increase), up to `ceiling`. A throttled task
 * (EC2 answered `RequestLimitExceeded` after the SDK's retries: someone else spends the
 * same bucket) halves the number in flight (multiplicative decrease, never below 1).
 *
 * With a fixed pool the rate is at most slots ÷ time per item, whatever the bucket
 * allows (10 slots of 300 ms calls plus two history writes make about 20 a second at
 * best); here the slots grow until the calls wait on tokens, not on slots.
 *
 * @example
 * const pool = new PacedPool({ initial: 5, ceiling: 64 });
 * const results = await Promise.all(ids.map((id) => pool.run(() => ec2.deleteSnapshot(id))));
 */
export class PacedPool {
  readonly #ceiling: number;
  readonly #isThrottle: (error: unknown) => boolean;
  readonly #queue: (() => void)[] = [];
  #limit: number;
  #active = 0;
  #peak = 0;
  #throttled = 0;

  public constructor(options: PacedPoolOptions) {
    this.#ceiling = Math.max(1, Math.floor(options.ceiling));
    this.#limit = Math.min(this.#ceiling, Math.max(1, Math.floor(options.initial)));
    this.#isThrottle = options.isThrottle ?? isThrottleError;
  }

  /** The number of tasks allowed in flight now. */
  public get limit(): number {
    return this.#limit;
  }

  /** The most tasks that were ever in flight at once. */
  public get peak(): number {
    return this.#peak;
  }

  /** How many tasks ended throttled (each halved the number in flight). */
  public get throttled(): number {
    return this.#throttled;
  }

  /**
   * Runs a task when the pool lets it in; resolves or rejects as the task does. Tasks
   * that report their errors as values say with `throttledResult` which values are a
   * throttle.
   */
  public run<T>(task: () => Promise<T>, throttledResult?: (value: T) => boolean): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        this.#active += 1;
        this.#peak = Math.max(this.#peak, this.#active);
        let result: Promise<T>;
        try {
          result = task();
        } catch (error) {
          result = Promise.reject(error);
        }
        result.then(
          (value) => {
            this.#done(throttledResult?.(value) ?? false);
            resolve(value);
          },
          (error: unknown) => {
            this.#done(this.#isThrottle(error));
            reject(error);
          },
        );
      };
      if (this.#active < this.#limit) start();
      else this.#queue.push(start);
    });
  }

  #done(throttled: boolean): void {
    this.#active -= 1;
    if (throttled) {
      this.#throttled += 1;
      this.#limit = Math.max(1, Math.floor(this.#limit / 2));
    } else if (this.#queue.length > 0) {
      this.#limit = Math.min(this.#ceiling, this.#limit + 1);
    }
    while (this.#active < this.#limit && this.#queue.length > 0) this.#queue.shift()?.();
  }
}

/**
 * Runs `task` on every item through `pool`, the results in the items' order: the calls
 * leave as the pool lets them in and the limiter grants tokens, not one after another.
 * A task that reports its error as a value says with `throttledResult` which is a throttle.
 *
 * @example
 * const outcomes = await pacedMap(ids, new PacedPool({ initial: 5, ceiling: 64 }), lockOne);
 */
export function pacedMap<T, R>(
  items: readonly T[],
  pool: PacedPool,
  task: (item: T) => Promise<R>,
  throttledResult?: (value: R) => boolean,
): Promise<R[]> {
  return Promise.all(items.map((item) => pool.run(() => task(item), throttledResult)));
}

/**
 * A pool for a step of calls EC2 meters by an unlisted bucket (locks, tier changes):
 * 5 in flight at the start, then as the bucket allows, up to `ceiling` (`MAX_IN_FLIGHT`).
 *
 * @example
 * const pool = stepPool(config.maxInFlight);
 */
export function stepPool(ceiling: number = DEFAULT_MAX_IN_FLIGHT): PacedPool {
  return new PacedPool({ initial: 5, ceiling });
}

/**
 * Whether an outcome reported as a value is a throttle (its error's code says so).
 *
 * @example
 * pacedMap(ids, pool, lockOne, throttledOutcome);
 */
export function throttledOutcome(outcome: {
  readonly error?: { readonly code?: string | undefined } | undefined;
}): boolean {
  return isThrottleCode(outcome.error?.code);
}
