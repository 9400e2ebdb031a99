import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { describe, expect, inject, it } from 'vitest';
import { awsError, firstCalls, startFaultProxy } from '../../harness/faultProxy.ts';
import { RateLimiter, withRateLimit } from '../../lib/aws/rateLimiter.ts';

describe('Function: withRateLimit, in front of a real EC2 client', () => {
  it('takes a token for every attempt, the SDK retries included', async () => {
    // Prepare: EC2 throttles the first call once; our bucket holds 2 calls, then 1 a second.
    const proxy = await startFaultProxy({ target: inject('awsEndpoint') });
    try {
      let now = 0;
      const sleeps: number[] = [];
      const limiter = new RateLimiter({
        overrides: { DescribeInstances: { burst: 2, refillPerSecond: 1 } },
        clock: () => now,
        sleep: async (ms) => {
          sleeps.push(ms);
          now += ms;
        },
      });
      const client = withRateLimit(
        new EC2Client({
          region: 'af-south-1',
          endpoint: proxy.endpoint,
          credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
          maxAttempts: 3,
        }),
        limiter,
      );
      proxy.rules.add({
        action: 'DescribeInstances',
        decide: firstCalls(1, awsError('RequestLimitExceeded', 503, 'Request limit exceeded.')),
      });

      // Act: two commands, three attempts.
      await client.send(new DescribeInstancesCommand({}));
      await client.send(new DescribeInstancesCommand({}));

      // Assess
      expect(proxy.calls('DescribeInstances')).toBe(3);
      expect(sleeps).toEqual([1000]);
    } finally {
      await proxy.stop();
    }
  });
});
