import { EC2Client } from '@aws-sdk/client-ec2';
import type { SnapkeeperConfig } from '../config/environment.ts';

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
  return new EC2Client(clientSettings(config));
}
