import { EC2Client, type EC2ClientConfig } from '@aws-sdk/client-ec2';
import type { SnapkeeperConfig } from '../config/environment.ts';
import { recordCalls } from './callRecorder.ts';
import { RateLimiter, withRateLimit } from './rateLimiter.ts';

type ClientSettings = Pick<
  SnapkeeperConfig,
  'region' | 'maxAttempts' | 'requestTimeoutMs' | 'endpoint'
>;

/**
 * Common settings of every AWS client: the SDK's standard retry mode (which retries
 * `RequestLimitExceeded` and 5xx with exponential back-off and jitter), our attempt
 * count, request timeouts so that no call hangs until Lambda kills the run, and the
 * local endpoint when one is configured.
 */
export function clientSettings(config: ClientSettings) {
  return {
    region: config.region,
    maxAttempts: config.maxAttempts,
    retryMode: 'standard',
    // throwOnRequestTimeout: without it the handler only warns and a hung call waits
    // until Lambda kills the run.
    requestHandler: {
      connectionTimeout: 5_000,
      requestTimeout: config.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
  } as const;
}

/**
 * Builds the EC2 client for a configuration.
 *
 * @example
 * const ec2 = createEc2Client(loadConfig(process.env));
 */
export function createEc2Client(config: ClientSettings): EC2Client {
  return recordCalls(new EC2Client(clientSettings(config)));
}

type RateSettings = ClientSettings &
  Pick<SnapkeeperConfig, 'ec2RateShare' | 'ec2RateHeadroom' | 'ec2RateLimits'>;

/**
 * The EC2 client of one account and region behind a rate limiter of its own (EC2 keeps
 * its buckets per account and region): the configuration's share, headroom and raised
 * limits, in the configuration's region unless another is given.
 *
 * @example
 * const ec2 = createRateLimitedEc2Client(config, { region: 'eu-west-1', share: 0.25 });
 */
export function createRateLimitedEc2Client(
  config: RateSettings,
  options: {
    region?: string | undefined;
    /** The share of the rate, when not `EC2_RATE_SHARE`. */
    share?: number | undefined;
    credentials?: EC2ClientConfig['credentials'] | undefined;
    /** The role the credentials assume (a target account's), for recorded calls. */
    assumedRole?: string | undefined;
  } = {},
): EC2Client {
  const client = recordCalls(
    new EC2Client({
      ...clientSettings({ ...config, region: options.region ?? config.region }),
      ...(options.credentials ? { credentials: options.credentials } : {}),
    }),
    { assumedRole: options.assumedRole },
  );
  const limiter = new RateLimiter({
    share: options.share ?? config.ec2RateShare,
    headroom: config.ec2RateHeadroom,
    overrides: config.ec2RateLimits,
  });
  return withRateLimit(client, limiter);
}
