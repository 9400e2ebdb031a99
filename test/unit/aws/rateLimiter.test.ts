import { describe, expect, it } from 'vitest';
import { EC2_BUCKETS, RateLimiter, TokenBucket } from '../../../lib/aws/rateLimiter.ts';

/** A clock that only moves when the limiter sleeps. */
function fakeTime() {
  let now = 0;
  const sleeps: number[] = [];
  return {
    clock: () => now,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      now += ms;
    },
    advance: (ms: number) => {
      now += ms;
    },
    sleeps,
  };
}

describe('Class: TokenBucket', () => {
  it('lets a burst through at once, then one call per refill interval', async () => {
    // Prepare
    const time = fakeTime();
    const bucket = new TokenBucket({ burst: 3, refillPerSecond: 2 }, time.clock, time.sleep);

    // Act
    const waits = [];
    for (let i = 0; i < 5; i += 1) waits.push(await bucket.take());

    // Assess
    expect(waits).toEqual([0, 0, 0, 500, 500]);
  });

  it('refills while idle, never above the burst', async () => {
    const time = fakeTime();
    const bucket = new TokenBucket({ burst: 2, refillPerSecond: 1 }, time.clock, time.sleep);
    await bucket.take();
    await bucket.take();

    time.advance(60_000);
    const waits = [await bucket.take(), await bucket.take(), await bucket.take()];

    expect(waits).toEqual([0, 0, 1000]);
  });

  it('serves concurrent callers in arrival order, each waiting its turn', async () => {
    const time = fakeTime();
    const bucket = new TokenBucket({ burst: 1, refillPerSecond: 10 }, time.clock, time.sleep);

    const waits = await Promise.all([bucket.take(), bucket.take(), bucket.take()]);

    expect(waits).toEqual([0, 100, 100]);
  });
});

describe('Class: RateLimiter', () => {
  it("uses EC2's documented bucket of each action", async () => {
    const time = fakeTime();
    const limiter = new RateLimiter({ clock: time.clock, sleep: time.sleep });

    for (let i = 0; i < (EC2_BUCKETS.CreateSnapshots?.burst ?? 0) + 1; i += 1)
      await limiter.acquire('CreateSnapshots');

    expect(time.sleeps).toEqual([200]); // refill 5 a second
    expect(limiter.waited.get('CreateSnapshots')).toBe(200);
  });

  it("gives a worker its share of the account's rate", async () => {
    const time = fakeTime();
    const limiter = new RateLimiter({ share: 0.25, clock: time.clock, sleep: time.sleep });

    for (let i = 0; i < 26; i += 1) await limiter.acquire('CreateSnapshots');

    expect(time.sleeps).toEqual([800]); // burst 25, refill 1.25 a second
  });

  it('takes raised limits from the overrides', async () => {
    const time = fakeTime();
    const limiter = new RateLimiter({
      overrides: { CreateSnapshots: { burst: 1, refillPerSecond: 50 } },
      clock: time.clock,
      sleep: time.sleep,
    });

    await limiter.acquire('CreateSnapshots');
    await limiter.acquire('CreateSnapshots');

    expect(time.sleeps).toEqual([20]);
  });

  it('keeps one bucket per action', async () => {
    const time = fakeTime();
    const limiter = new RateLimiter({
      overrides: {
        DeleteSnapshot: { burst: 1, refillPerSecond: 1 },
        CreateTags: { burst: 1, refillPerSecond: 1 },
      },
      clock: time.clock,
      sleep: time.sleep,
    });

    await limiter.acquire('DeleteSnapshot');
    await limiter.acquire('CreateTags');

    expect(time.sleeps).toEqual([]);
  });
});
