import { describe, expect, it } from 'vitest';
import { RateLimiter, rateLimiterOf } from '../../../lib/aws/rateLimiter.ts';
import { loadConfig } from '../../../lib/config/environment.ts';
import { createAwsClients } from '../../../lib/runtime/awsClients.ts';

/** A clock that only moves when the limiter sleeps or the test advances it. */
function fakeTime() {
  let now = 0;
  return {
    clock: () => now,
    sleep: async (ms: number) => {
      now += ms;
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** Takes `n` tokens of the action; resolves with each wait. */
async function takeMany(limiter: RateLimiter, action: string, n: number): Promise<number[]> {
  const waits: number[] = [];
  for (let i = 0; i < n; i += 1) waits.push(await limiter.acquire(action));
  return waits;
}

describe('Method: RateLimiter.setShare (issue 19)', () => {
  it("refills an existing bucket at the new share's rate", async () => {
    // Prepare: CreateSnapshots at a quarter: a burst of 25, 1.25 a second.
    const time = fakeTime();
    const limiter = new RateLimiter({ share: 0.25, headroom: 1, ...time });
    await takeMany(limiter, 'CreateSnapshots', 25);

    // Act
    limiter.setShare(1);
    const waits = await takeMany(limiter, 'CreateSnapshots', 2);

    // Assess: 5 a second, one token every 200 ms (800 ms at the old share).
    expect(waits).toEqual([200, 200]);
    expect(limiter.share).toBe(1);
  });

  it('neither loses nor creates tokens: those gathered at the old rate are kept, no new burst', async () => {
    // Prepare: a burst of 50 at 2.5 a second, drained, then 2 s idle: 5 tokens.
    const time = fakeTime();
    const limiter = new RateLimiter({ share: 0.5, headroom: 1, ...time });
    await takeMany(limiter, 'CreateSnapshots', 50);
    time.advance(2_000);

    // Act
    limiter.setShare(1);
    const waits = await takeMany(limiter, 'CreateSnapshots', 6);

    // Assess: 5 at once (counted at the old rate, not 10 at the new), then 200 ms.
    expect(waits).toEqual([0, 0, 0, 0, 0, 200]);
  });

  it('keeps no more than the smaller burst when the share goes down', async () => {
    // Prepare: a full bucket of 100 at the whole rate.
    const time = fakeTime();
    const limiter = new RateLimiter({ share: 1, headroom: 1, ...time });
    await limiter.acquire('CreateSnapshots');
    time.advance(60_000);

    // Act: a quarter: a burst of 25, 1.25 a second.
    limiter.setShare(0.25);
    const waits = await takeMany(limiter, 'CreateSnapshots', 26);

    // Assess
    expect(waits.slice(0, 25).every((ms) => ms === 0)).toBe(true);
    expect(waits[25]).toBe(800);
  });

  it('gives buckets made later the new share, with the headroom', async () => {
    // Prepare
    const time = fakeTime();
    const limiter = new RateLimiter({ share: 0.25, headroom: 0.5, ...time });

    // Act: DeleteSnapshot at half of the whole rate: a burst of 50, 2.5 a second.
    limiter.setShare(1);
    const waits = await takeMany(limiter, 'DeleteSnapshot', 51);

    // Assess
    expect(waits.slice(0, 50).every((ms) => ms === 0)).toBe(true);
    expect(waits[50]).toBe(400);
  });

  it('keeps the share between 0.01 and 1, and ignores a share that is not a number', () => {
    const limiter = new RateLimiter({ share: 0.25 });

    limiter.setShare(4);
    expect(limiter.share).toBe(1);
    limiter.setShare(Number.NaN);
    expect(limiter.share).toBe(1);
    limiter.setShare(0);
    expect(limiter.share).toBe(0.01);
  });
});

describe('Function: createAwsClients, rateShare (issue 19)', () => {
  const config = loadConfig({
    AWS_REGION: 'eu-west-1',
    DEPLOYMENT: 'prod',
    EC2_RATE_SHARE: '0.25',
  });
  const target = { account: 'self', region: 'eu-west-1' };

  it("retunes the limiter of the target's client of the same share", () => {
    // Prepare
    const clients = createAwsClients(config);
    const client = clients.ec2Client(target);
    const other = clients.ec2Client(target, 1);

    // Act
    clients.rateShare(target).setShare(0.5);

    // Assess
    expect(rateLimiterOf(client)?.share).toBe(0.5);
    expect(rateLimiterOf(other)?.share).toBe(1);
  });

  it('reaches the same limiter when the share is given as the configured one', () => {
    const clients = createAwsClients(config);
    clients.rateShare(target, 0.25).setShare(0.75);

    expect(rateLimiterOf(clients.ec2Client(target))?.share).toBe(0.75);
  });
});
