import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../../lib/aws/rateLimiter.ts';

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
    sleeps,
  };
}

/** How many calls go through at once, and the wait of the first one after them. */
async function burstAndNextWait(
  limiter: RateLimiter,
  action = 'CreateSnapshots',
): Promise<{ burst: number; nextWait: number }> {
  let burst = 0;
  for (;;) {
    const waited = await limiter.acquire(action);
    if (waited > 0) return { burst, nextWait: waited };
    burst += 1;
    if (burst > 1000) throw new Error('the bucket never ran dry');
  }
}

describe('Class: RateLimiter (headroom)', () => {
  it("uses EC2's whole bucket when no headroom is given", async () => {
    // Prepare
    const time = fakeTime();
    const limiter = new RateLimiter({ clock: time.clock, sleep: time.sleep });

    // Act
    const result = await burstAndNextWait(limiter);

    // Assess
    expect(result).toEqual({ burst: 100, nextWait: 200 }); // burst 100, refill 5 a second
  });

  it('leaves the headroom unused, in burst and in refill', async () => {
    // Prepare
    const time = fakeTime();
    const limiter = new RateLimiter({ headroom: 0.98, clock: time.clock, sleep: time.sleep });

    // Act
    const result = await burstAndNextWait(limiter);

    // Assess
    expect(result).toEqual({ burst: 98, nextWait: 205 }); // refill 4.9 a second
  });

  it("applies the headroom on top of the worker's share", async () => {
    // Prepare
    const time = fakeTime();
    const limiter = new RateLimiter({
      share: 0.5,
      headroom: 0.8,
      clock: time.clock,
      sleep: time.sleep,
    });

    // Act
    const result = await burstAndNextWait(limiter);

    // Assess
    expect(result).toEqual({ burst: 40, nextWait: 500 }); // refill 2 a second
  });

  it('applies the headroom to raised limits too', async () => {
    // Prepare
    const time = fakeTime();
    const limiter = new RateLimiter({
      headroom: 0.5,
      overrides: { CreateSnapshots: { burst: 200, refillPerSecond: 10 } },
      clock: time.clock,
      sleep: time.sleep,
    });

    // Act
    const result = await burstAndNextWait(limiter);

    // Assess
    expect(result).toEqual({ burst: 100, nextWait: 200 });
  });

  it('applies the headroom to calls without a documented bucket', async () => {
    // Prepare
    const time = fakeTime();
    const limiter = new RateLimiter({ headroom: 0.9, clock: time.clock, sleep: time.sleep });

    // Act
    const result = await burstAndNextWait(limiter, 'DescribeTags');

    // Assess
    expect(result).toEqual({ burst: 45, nextWait: 112 }); // 50 / 10 a second, times 0.9
  });

  it.each([
    [0.2, 'below one half is raised to one half', { burst: 50, nextWait: 400 }],
    [0, 'of zero is raised to one half', { burst: 50, nextWait: 400 }],
    [-1, 'below zero is raised to one half', { burst: 50, nextWait: 400 }],
    [1.5, 'above one is lowered to one', { burst: 100, nextWait: 200 }],
  ])('treats a headroom of %d (%s)', async (headroom, _case, expected) => {
    // Prepare
    const time = fakeTime();
    const limiter = new RateLimiter({ headroom, clock: time.clock, sleep: time.sleep });

    // Act
    const result = await burstAndNextWait(limiter);

    // Assess
    expect(result).toEqual(expected);
  });

  it('keeps at least one call of burst however small the share and headroom', async () => {
    // Prepare
    const time = fakeTime();
    const limiter = new RateLimiter({
      share: 0.01,
      headroom: 0.5,
      clock: time.clock,
      sleep: time.sleep,
    });

    // Act
    const result = await burstAndNextWait(limiter);

    // Assess
    expect(result).toEqual({ burst: 1, nextWait: 40_000 }); // 5 × 0.01 × 0.5 = 0.025 a second
  });
});
