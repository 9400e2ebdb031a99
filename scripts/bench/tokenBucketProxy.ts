/**
 * EC2's request token buckets, enforced by our fault proxy in front of the local AWS
 * (moto never throttles): one bucket per (region, action) with EC2's documented burst,
 * refilled `timeScale` times faster than EC2 so that benchmark runs stay short. A call
 * with no token is answered `RequestLimitExceeded` (HTTP 503), as EC2 answers it.
 */

import { awsError, type FaultRule, type ProxyRecord } from '../../harness/faultProxy.ts';
import { type BucketSpec, DEFAULT_BUCKET, EC2_BUCKETS } from '../../lib/aws/rateLimiter.ts';

/** EC2's documented buckets with the refill scaled: what both the proxy and our limiter use. */
export function scaledBuckets(timeScale: number): Record<string, BucketSpec> {
  const scaled: Record<string, BucketSpec> = {};
  for (const [action, spec] of Object.entries(EC2_BUCKETS)) {
    scaled[action] = { burst: spec.burst, refillPerSecond: spec.refillPerSecond * timeScale };
  }
  return scaled;
}

/** The token-bucket rule, and a way to refill every bucket between measured runs. */
export interface BucketRule {
  readonly rule: FaultRule;
  /** Fills every bucket again (a fresh account, as after a quiet hour). */
  refill(): void;
  /** Refills every bucket `refillScale` times faster than EC2's from now on, all full again. */
  retune(refillScale: number): void;
}

/**
 * A proxy rule enforcing EC2's buckets per (region, action), refill scaled by `timeScale`.
 *
 * @example
 * const buckets = ec2BucketRule(10);
 * proxy.rules.add(buckets.rule);
 */
export function ec2BucketRule(timeScale: number, clock: () => number = Date.now): BucketRule {
  let specs = scaledBuckets(timeScale);
  let fallback = {
    burst: DEFAULT_BUCKET.burst,
    refillPerSecond: DEFAULT_BUCKET.refillPerSecond * timeScale,
  };
  const buckets = new Map<string, { tokens: number; at: number; spec: BucketSpec }>();
  return {
    refill: () => buckets.clear(),
    retune: (refillScale) => {
      specs = scaledBuckets(refillScale);
      fallback = {
        burst: DEFAULT_BUCKET.burst,
        refillPerSecond: DEFAULT_BUCKET.refillPerSecond * refillScale,
      };
      buckets.clear();
    },
    rule: {
      name: 'ec2-token-buckets',
      decide: (call) => {
        if (call.protocol !== 'ec2-query' && call.service !== 'ec2') return undefined;
        const key = `${call.region ?? '?'}|${call.action}`;
        const now = clock();
        let bucket = buckets.get(key);
        if (!bucket) {
          const spec = specs[call.action] ?? fallback;
          bucket = { tokens: spec.burst, at: now, spec };
          buckets.set(key, bucket);
        }
        bucket.tokens = Math.min(
          bucket.spec.burst,
          bucket.tokens + ((now - bucket.at) / 1000) * bucket.spec.refillPerSecond,
        );
        bucket.at = now;
        if (bucket.tokens >= 1) {
          bucket.tokens -= 1;
          return undefined;
        }
        return awsError('RequestLimitExceeded', 503, 'Request limit exceeded.');
      },
    },
  };
}

/** How fast one action went against its bucket. */
export interface RateFigures {
  readonly action: string;
  /** Calls EC2 (the proxy) accepted. */
  readonly accepted: number;
  /** Calls answered RequestLimitExceeded. */
  readonly throttled: number;
  /** Accepted calls after the burst, per second, over the time they took. */
  readonly callsPerSecondAfterBurst?: number | undefined;
  /** That rate over the bucket's refill: 1.0 is the ceiling. */
  readonly ofRefill?: number | undefined;
  /** The slowest 5-second window after the burst, over the refill. */
  readonly slowestWindowOfRefill?: number | undefined;
  /** Where that window starts and where the accepted calls end, seconds from the first. */
  readonly slowestWindowAt?: { readonly start: number; readonly end: number } | undefined;
}

/**
 * The achieved rate of one action in a list of proxy records: calls accepted beyond the
 * bucket's burst, over the time from the first call to the last, compared with the
 * bucket's refill; and the slowest 5-second window after the burst was spent.
 */
export function rateOf(
  records: readonly ProxyRecord[],
  action: string,
  spec: BucketSpec,
): RateFigures {
  const calls = records.filter((r) => r.action === action);
  // A call delayed like AWS (latency ÷ scale) got its token as it arrived, as a forwarded one did.
  const accepted = calls
    .filter((r) => r.outcome === 'forwarded' || r.outcome === 'delayed')
    .map((r) => r.receivedAt);
  const throttled = calls.filter((r) => r.effect === 'error').length;
  const base = { action, accepted: accepted.length, throttled };
  if (accepted.length <= spec.burst + 1) return base;
  const first = accepted[0] ?? 0;
  const last = accepted[accepted.length - 1] ?? first;
  const seconds = Math.max(0.001, (last - first) / 1000);
  const rate = (accepted.length - spec.burst) / seconds;
  // Windows start once the burst is spent: the time of the burst-th accepted call.
  const burstSpentAt = accepted[spec.burst - 1] ?? first;
  let slowest: number | undefined;
  let slowestStart = first;
  for (let start = burstSpentAt; start + 5000 <= last; start += 1000) {
    const inWindow = accepted.filter((t) => t > start && t <= start + 5000).length;
    const ratio = inWindow / 5 / spec.refillPerSecond;
    if (slowest === undefined || ratio < slowest) {
      slowest = ratio;
      slowestStart = start;
    }
  }
  return {
    ...base,
    callsPerSecondAfterBurst: rate,
    ofRefill: rate / spec.refillPerSecond,
    ...(slowest !== undefined
      ? {
          slowestWindowOfRefill: slowest,
          slowestWindowAt: { start: (slowestStart - first) / 1000, end: (last - first) / 1000 },
        }
      : {}),
  };
}

/** EC2 calls in a list of proxy records, by action. */
export function ec2CallsByAction(records: readonly ProxyRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const record of records) {
    if (record.protocol !== 'ec2-query' && record.service !== 'ec2') continue;
    counts[record.action] = (counts[record.action] ?? 0) + 1;
  }
  return counts;
}
