/** The EBS direct client's rate limit, with a real client (no mock: the middleware runs). */
import { describe, expect, it, vi } from 'vitest';
import { createEbsDirectClient, EbsDirectGateway } from '../../../lib/aws/EbsDirectGateway.ts';
import { RateLimiter } from '../../../lib/aws/rateLimiter.ts';

vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');

describe('Function: createEbsDirectClient', () => {
  it('takes a token of the one shared bucket for each List call', async () => {
    // Prepare
    const taken: string[] = [];
    const limiter = new RateLimiter();
    const acquire = limiter.acquire.bind(limiter);
    limiter.acquire = async (action: string) => {
      taken.push(action);
      return acquire(action);
    };
    const client = createEbsDirectClient(
      {
        region: 'eu-west-1',
        maxAttempts: 1,
        requestTimeoutMs: 1000,
        endpoint: 'http://127.0.0.1:9',
        ec2RateShare: 1,
        ec2RateHeadroom: 1,
      },
      limiter,
    );

    // Act: nothing listens on port 9; the limiter runs before the request is sent.
    await new EbsDirectGateway(client).snapshotBytes('snap-1').catch(() => undefined);
    await new EbsDirectGateway(client).changedBytes('snap-1', 'snap-2').catch(() => undefined);

    // Assess
    expect(taken).toEqual(['EbsDirectList', 'EbsDirectList']);
  });
});
