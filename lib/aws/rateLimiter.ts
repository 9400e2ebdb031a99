import type { EC2Client } from '@aws-sdk/client-ec2';

/** A token bucket: `burst` calls at once, then `refillPerSecond`. */
export interface BucketSpec {
  readonly burst: number;
  readonly refillPerSecond: number;
}

/**
 * EC2's documented request token buckets per action (burst / refill a second), per
 * account and region. Describes are filtered and paginated, so they get the larger bucket.
 */
export const EC2_BUCKETS: Readonly<Record<string, BucketSpec>> = {
  CreateSnapshots: { burst: 100, refillPerSecond: 5 },
  CreateSnapshot: { burst: 100, refillPerSecond: 5 },
  DeleteSnapshot: { burst: 100, refillPerSecond: 5 },
  DeregisterImage: { burst: 100, refillPerSecond: 5 },
  CreateImage: { burst: 50, refillPerSecond: 5 },
  CopySnapshot: { burst: 50, refillPerSecond: 5 },
  CopyImage: { burst: 100, refillPerSecond: 1 },
  CreateTags: { burst: 100, refillPerSecond: 10 },
  DescribeImages: { burst: 100, refillPerSecond: 20 },
  DescribeSnapshots: { burst: 100, refillPerSecond: 20 },
  DescribeVolumes: { burst: 100, refillPerSecond: 20 },
  DescribeInstances: { burst: 100, refillPerSecond: 20 },
};

/** Calls not listed above: EC2's non-mutating default. */
export const DEFAULT_BUCKET: BucketSpec = { burst: 50, refillPerSecond: 10 };

/**
 * One token bucket. `take()` resolves when a token is available, waiting (never
 * failing) when the bucket is empty.
 *
 * @example
 * const bucket = new TokenBucket({ burst: 100, refillPerSecond: 5 });
 * await bucket.take();
 */
export class TokenBucket {
  #spec: BucketSpec;
  readonly #clock: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  #tokens: number;
  #updatedAt: number;
  #queue: Promise<unknown> = Promise.resolve();

  public constructor(
    spec: BucketSpec,
    clock: () => number = Date.now,
    sleep?: (ms: number) => Promise<void>,
  ) {
    this.#spec = spec;
    this.#clock = clock;
    this.#sleep = sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#tokens = spec.burst;
    this.#updatedAt = clock();
  }

  /** Takes one token, in arrival order; resolves with the milliseconds waited. */
  public take(): Promise<number> {
    const turn = this.#queue.then(() => this.#takeNow());
    this.#queue = turn.catch(() => undefined);
    return turn;
  }

  async #takeNow(): Promise<number> {
    let waited = 0;
    for (;;) {
      this.#refill();
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return waited;
      }
      const ms = Math.ceil(((1 - this.#tokens) / this.#spec.refillPerSecond) * 1000);
      await this.#sleep(ms);
      waited += ms;
    }
  }

  /**
   * Changes the bucket's burst and refill from now on: the tokens gathered so far are
   * counted at the old refill first, then kept as they are (none added for a larger
   * burst; above a smaller burst, only the new burst is kept).
   *
   * @example
   * bucket.retune({ burst: 50, refillPerSecond: 2.5 });
   */
  public retune(spec: BucketSpec): void {
    this.#refill();
    this.#spec = spec;
    this.#tokens = Math.min(spec.burst, this.#tokens);
  }

  #refill(): void {
    const now = this.#clock();
    const elapsed = Math.max(0, now - this.#updatedAt) / 1000;
    this.#tokens = Math.min(this.#spec.burst, this.#tokens + elapsed * this.#spec.refillPerSecond);
    this.#updatedAt = now;
  }
}

/**
 * Our side of EC2's per-account, per-region rate limits: one bucket per action, scaled
 * to this process's `share` of the account's rate (1 for one worker; 1/N when N workers
 * run at once), so a big run goes at the ceiling without a storm of
 * `RequestLimitExceeded`, and the SDK's retries are left for the rare throttle.
 *
 * @example
 * const limiter = new RateLimiter({ share: 0.5 });
 * await limiter.acquire('CreateSnapshots');
 */
export class RateLimiter {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #specs: Readonly<Record<string, BucketSpec>>;
  #share: number;
  readonly #headroom: number;
  readonly #clock: () => number;
  readonly #sleep: ((ms: number) => Promise<void>) | undefined;
  /** Milliseconds waited per action, for reports and benchmarks. */
  public readonly waited = new Map<string, number>();

  public constructor(
    options: {
      share?: number;
      /**
       * The fraction of the bucket used (1 by default): a little under 1 leaves room for
       * calls that reach EC2 in a different order or spacing than they left.
       */
      headroom?: number;
      overrides?: Readonly<Record<string, BucketSpec>>;
      clock?: () => number;
      sleep?: (ms: number) => Promise<void>;
    } = {},
  ) {
    this.#specs = { ...EC2_BUCKETS, ...(options.overrides ?? {}) };
    const within = (value: number | undefined, min: number) =>
      value !== undefined && Number.isFinite(value) ? Math.min(1, Math.max(min, value)) : 1;
    this.#share = within(options.share, 0.01);
    this.#headroom = within(options.headroom, 0.5);
    this.#clock = options.clock ?? Date.now;
    this.#sleep = options.sleep;
  }

  /** This limiter's share of the account's rate now. */
  public get share(): number {
    return this.#share;
  }

  /**
   * Changes this limiter's share of the account's rate (kept between 0.01 and 1, as in
   * the constructor; not a finite number: unchanged): every bucket made so far is
   * retuned ({@link TokenBucket.retune}: its tokens counted at the old rate, then the new
   * burst and refill, by the constructor's formulas), and buckets made later take it too.
   * A fan-out worker raises it while the run's last batches run (the domain's
   * `tailRateShare`).
   *
   * @example
   * limiter.setShare(0.5);
   */
  public setShare(share: number): void {
    if (!Number.isFinite(share)) return;
    const next = Math.min(1, Math.max(0.01, share));
    if (next === this.#share) return;
    this.#share = next;
    for (const [action, bucket] of this.#buckets) bucket.retune(this.#scaled(action));
  }

  /** The action's bucket at this limiter's share and headroom. */
  #scaled(action: string): BucketSpec {
    const spec = this.#specs[action] ?? DEFAULT_BUCKET;
    return {
      burst: Math.max(1, Math.floor(spec.burst * this.#share * this.#headroom)),
      refillPerSecond: spec.refillPerSecond * this.#share * this.#headroom,
    };
  }

  /** Waits for a token of the action's bucket. */
  public async acquire(action: string): Promise<number> {
    let bucket = this.#buckets.get(action);
    if (!bucket) {
      bucket = new TokenBucket(this.#scaled(action), this.#clock, this.#sleep);
      this.#buckets.set(action, bucket);
    }
    const waited = await bucket.take();
    if (waited > 0) this.waited.set(action, (this.waited.get(action) ?? 0) + waited);
    return waited;
  }
}

/**
 * Puts a rate limiter in front of every attempt an EC2 client makes (after the SDK's
 * retry step, so retries take tokens too, as they do at EC2).
 *
 * @example
 * const ec2 = withRateLimit(new EC2Client({}), new RateLimiter());
 */
export function withRateLimit(client: EC2Client, limiter: RateLimiter): EC2Client {
  limiters.set(client, limiter);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      await limiter.acquire(String(context.commandName ?? 'Unknown').replace(/Command$/, ''));
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'snapkeeperRateLimit', override: true },
  );
  return client;
}

const limiters = new WeakMap<EC2Client, RateLimiter>();

/**
 * The rate limiter {@link withRateLimit} put in front of a client, if any: the runtime
 * reaches it to retune the share of a fan-out batch.
 *
 * @example
 * rateLimiterOf(createRateLimitedEc2Client(config))?.setShare(0.5);
 */
export function rateLimiterOf(client: EC2Client): RateLimiter | undefined {
  return limiters.get(client);
}
