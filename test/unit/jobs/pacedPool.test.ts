import pLimit from 'p-limit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RateLimiter } from '../../../lib/aws/rateLimiter.ts';
import { isThrottleError, PacedPool } from '../../../lib/jobs/pacedPool.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Calls a second after the burst, over the refill. */
function rateAfterBurst(sentAt: readonly number[], burst: number, refill: number): number {
  const after = [...sentAt].sort((a, b) => a - b).slice(burst);
  const seconds = ((after.at(-1) ?? 0) - (after[0] ?? 0)) / 1000;
  return (after.length - 1) / seconds / refill;
}

/**
 * `items` EC2 writes behind a bucket of `burst` then `refill` a second, each taking
 * `latencyMs` once it leaves, scheduled by `schedule`; the times the calls left.
 */
async function drive(
  schedule: (task: () => Promise<void>) => Promise<void>,
  options: { items: number; burst: number; refill: number; latencyMs: number },
): Promise<number[]> {
  const limiter = new RateLimiter({
    overrides: { DeleteSnapshot: { burst: options.burst, refillPerSecond: options.refill } },
  });
  const sentAt: number[] = [];
  const all = Promise.all(
    Array.from({ length: options.items }, () =>
      schedule(async () => {
        await limiter.acquire('DeleteSnapshot');
        sentAt.push(Date.now());
        await sleep(options.latencyMs);
      }),
    ),
  );
  await vi.runAllTimersAsync();
  await all;
  return sentAt;
}

afterEach(() => vi.useRealTimers());

describe('Class: PacedPool', () => {
  describe('Pace', () => {
    it('lets the bucket set the rate: ≥ 0.95 of a 20/s refill with 300 ms per EC2 write, from 5 slots', async () => {
      // Prepare
      vi.useFakeTimers({ now: 0 });
      const pool = new PacedPool({ initial: 5, ceiling: 64 });

      // Act
      const sentAt = await drive((task) => pool.run(task), {
        items: 500,
        burst: 100,
        refill: 20,
        latencyMs: 300,
      });

      // Assess
      expect(rateAfterBurst(sentAt, 100, 20)).toBeGreaterThanOrEqual(0.95);
      expect(pool.peak).toBeLessThanOrEqual(64);
    });

    it('where 5 fixed slots make slots ÷ latency: 16.7 a second, 0.83 of the refill (the old shape)', async () => {
      // Prepare
      vi.useFakeTimers({ now: 0 });
      const limit = pLimit(5);

      // Act
      const sentAt = await drive((task) => limit(task), {
        items: 500,
        burst: 100,
        refill: 20,
        latencyMs: 300,
      });

      // Assess
      expect(rateAfterBurst(sentAt, 100, 20)).toBeLessThan(0.85);
    });

    it('rides a 4×-scaled default bucket (100 then 20/s) with 75 ms per write as well', async () => {
      // Prepare
      vi.useFakeTimers({ now: 0 });
      const pool = new PacedPool({ initial: 10, ceiling: 64 });

      // Act
      const sentAt = await drive((task) => pool.run(task), {
        items: 400,
        burst: 100,
        refill: 20,
        latencyMs: 75,
      });

      // Assess
      expect(rateAfterBurst(sentAt, 100, 20)).toBeGreaterThanOrEqual(0.95);
    });
  });

  describe('In flight', () => {
    it('never has more than the ceiling in flight, and grows to it while work waits', async () => {
      // Prepare
      vi.useFakeTimers({ now: 0 });
      const pool = new PacedPool({ initial: 2, ceiling: 6 });
      let inFlight = 0;
      let most = 0;

      // Act
      const all = Promise.all(
        Array.from({ length: 40 }, () =>
          pool.run(async () => {
            inFlight += 1;
            most = Math.max(most, inFlight);
            await sleep(10);
            inFlight -= 1;
          }),
        ),
      );
      await vi.runAllTimersAsync();
      await all;

      // Assess
      expect(most).toBe(6);
      expect(pool.peak).toBe(6);
      expect(pool.limit).toBe(6);
    });

    it('halves the number in flight when a task ends throttled (RequestLimitExceeded), never below 1', async () => {
      // Prepare
      const pool = new PacedPool({ initial: 8, ceiling: 8 });
      const throttled = Object.assign(new Error('Request limit exceeded.'), {
        name: 'RequestLimitExceeded',
      });

      // Act
      await expect(pool.run(() => Promise.reject(throttled))).rejects.toBe(throttled);
      const afterOne = pool.limit;
      for (let i = 0; i < 5; i += 1) await pool.run(() => Promise.reject(throttled)).catch(() => 0);

      // Assess
      expect(afterOne).toBe(4);
      expect(pool.limit).toBe(1);
      expect(pool.throttled).toBe(6);
    });

    it('counts a throttle a task reports as a value (a failed deletion with its code)', async () => {
      // Prepare
      const pool = new PacedPool({ initial: 4, ceiling: 4 });

      // Act
      const value = await pool.run(
        async () => ({ outcome: 'failed', code: 'RequestLimitExceeded' }),
        (r) => r.code === 'RequestLimitExceeded',
      );

      // Assess
      expect(value.outcome).toBe('failed');
      expect(pool.limit).toBe(2);
    });

    it('passes a task’s error through, and lets the next task in', async () => {
      // Prepare
      const pool = new PacedPool({ initial: 1, ceiling: 1 });

      // Act
      const failed = pool.run(() => Promise.reject(new Error('boom')));
      const next = pool.run(async () => 'next');

      // Assess
      await expect(failed).rejects.toThrow('boom');
      await expect(next).resolves.toBe('next');
    });
  });

  describe('Function: isThrottleError', () => {
    it.each([
      ['RequestLimitExceeded', true],
      ['ThrottlingException', true],
      ['InvalidSnapshot.InUse', false],
    ])('%s → %s', (name, expected) => {
      expect(isThrottleError(Object.assign(new Error('x'), { name }))).toBe(expected);
    });
  });
});
