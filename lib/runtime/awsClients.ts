import type { EC2Client } from '@aws-sdk/client-ec2';
import { createRateLimitedEc2Client } from '../aws/clients.ts';
import { Ec2Gateway } from '../aws/Ec2Gateway.ts';
import { rateLimiterOf } from '../aws/rateLimiter.ts';
import type { ReachAccount } from '../aws/targetRoles.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import { ConfigurationError } from '../domain/errors.ts';
import { type Target, targetLabel } from '../domain/fanOut.ts';
import type { RateShareControl } from '../jobs/ports.ts';

type ClientsConfig = Pick<
  SnapkeeperConfig,
  | 'region'
  | 'maxAttempts'
  | 'requestTimeoutMs'
  | 'endpoint'
  | 'ec2RateShare'
  | 'ec2RateHeadroom'
  | 'ec2RateLimits'
  | 'snapshotRateRetryMs'
  | 'snapshotRateRetries'
>;

/**
 * The one cache of a function's AWS clients (see {@link createAwsClients}): everything
 * is built the first time it is asked for, then handed out again while the container
 * is warm.
 */
export interface AwsClients {
  /**
   * The target's rate-limited (and traced) EC2 client, limited to `share` of the
   * target's rate (`EC2_RATE_SHARE` when absent).
   *
   * @throws {ConfigurationError} naming TARGET_ACCOUNTS for another account, when the
   *   function reaches none.
   */
  ec2Client(target: Target, share?: number): EC2Client;
  /**
   * The share control of that client's rate limiter (the client of the same target and
   * `share`), so that a fan-out batch can follow the run's unfinished batches.
   */
  rateShare(target: Target, share?: number): RateShareControl;
  /** The target's EC2 gateway over that client. */
  ec2(target: Target, share?: number): Ec2Gateway;
  /** The gateway `name` over the target's EC2 client, built by `build` the first time. */
  gateway<G>(target: Target, name: string, build: (client: EC2Client) => G, share?: number): G;
  /** Anything else built once per container (a home-region client of another service). */
  once<G>(name: string, build: () => G): G;
}

/**
 * The one cache of AWS clients of a function (the composition root's): the EC2 client of
 * each (account, region) it reaches, built once per container and shared by every
 * gateway over it (the runtime's own, a copy's destination regions, a fan-out's
 * targets). Each client has a rate limiter of its own, since EC2 keeps its buckets per
 * account and region; the key adds the rate share, because a fan-out retention batch
 * runs at the whole rate (share 1) while backup batches run at `EC2_RATE_SHARE`. The
 * deployment's own account (`self`) uses the function's credentials; another account is
 * reached only through `reachAccount` (the fan-out functions' `assumeTargetRole`).
 *
 * @example
 * const clients = createAwsClients(config, { wrap: (c) => tracer.captureAWSv3Client(c) });
 * const ec2 = clients.ec2({ account: 'self', region: 'eu-west-1' });
 */
export function createAwsClients(
  config: ClientsConfig,
  options: { wrap?: <C>(client: C) => C; reachAccount?: ReachAccount | undefined } = {},
): AwsClients {
  const built = new Map<string, unknown>();
  const once = <G>(name: string, build: () => G): G => {
    if (!built.has(name)) built.set(name, build());
    return built.get(name) as G;
  };
  const key = (target: Target, share = config.ec2RateShare) => `${targetLabel(target)}@${share}`;
  const ec2Client = (target: Target, share?: number): EC2Client =>
    once(key(target, share), () => {
      const role = target.account === 'self' ? undefined : options.reachAccount?.(target);
      if (target.account !== 'self' && !role) {
        throw new ConfigurationError(
          'TARGET_ACCOUNTS',
          `names ${target.account}: not reached here`,
        );
      }
      const client = createRateLimitedEc2Client(config, {
        region: target.region,
        share: share ?? config.ec2RateShare,
        ...role,
      });
      const limiter = rateLimiterOf(client);
      if (limiter) built.set(`${key(target, share)}:limiter`, limiter);
      return options.wrap ? options.wrap(client) : client;
    });
  const rateShare = (target: Target, share?: number): RateShareControl => {
    ec2Client(target, share);
    const limiter = built.get(`${key(target, share)}:limiter`) as RateShareControl | undefined;
    return { setShare: (next) => limiter?.setShare(next) };
  };
  const gateway = <G>(
    target: Target,
    name: string,
    build: (client: EC2Client) => G,
    share?: number,
  ): G => once(`${key(target, share)}:${name}`, () => build(ec2Client(target, share)));
  return {
    ec2Client,
    rateShare,
    gateway,
    once,
    ec2: (target, share) =>
      gateway(
        target,
        'ec2',
        (client) =>
          new Ec2Gateway(client, {
            snapshotRateRetryMs: config.snapshotRateRetryMs,
            snapshotRateRetries: config.snapshotRateRetries,
          }),
        share,
      ),
  };
}
