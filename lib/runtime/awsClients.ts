import type { EC2Client } from '@aws-sdk/client-ec2';
import { createRateLimitedEc2Client } from '../aws/clients.ts';
import { Ec2Gateway } from '../aws/Ec2Gateway.ts';
import type { AssumeRole } from '../aws/targetRoles.ts';
import { targetRoleArn } from '../aws/targetRoles.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import { ConfigurationError } from '../domain/errors.ts';
import type { Target } from '../domain/fanOut.ts';
import { targetLabel } from '../domain/fanOut.ts';

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
  | 'targetRoleName'
>;

/**
 * The one cache of AWS clients of a function: the EC2 client of each (account, region)
 * it reaches, built once per container and handed to every gateway over it (the
 * runtime's own, a copy's destination regions, a fan-out's targets). Each client has a
 * rate limiter of its own, since EC2 keeps its buckets per account and region; the key
 * adds the rate share, because a fan-out retention batch runs at the whole rate (share
 * 1) while backup batches run at `EC2_RATE_SHARE`. The deployment's own account
 * (`self`) uses the function's credentials; any other is reached by assuming
 * `TARGET_ROLE_NAME` in it, which only functions built with `assumeRole` can.
 *
 * @example
 * const clients = new AwsClients(config, { wrap: (c) => tracer.captureAWSv3Client(c) });
 * const ec2 = clients.ec2({ account: 'self', region: 'eu-west-1' });
 * const images = clients.gateway({ account: 'self', region: 'eu-west-1' }, 'images', (c) => new Ec2ImageGateway(c));
 */
export class AwsClients {
  readonly #config: ClientsConfig;
  readonly #wrap: <C>(client: C) => C;
  readonly #assumeRole: AssumeRole | undefined;
  readonly #clients = new Map<string, EC2Client>();
  readonly #gateways = new Map<string, unknown>();

  /**
   * @param options.wrap applied to every client built (the tracer's `captureAWSv3Client`).
   * @param options.assumeRole how another account's role is assumed (the fan-out functions').
   */
  public constructor(
    config: ClientsConfig,
    options: { wrap?: <C>(client: C) => C; assumeRole?: AssumeRole | undefined } = {},
  ) {
    this.#config = config;
    this.#wrap = options.wrap ?? ((client) => client);
    this.#assumeRole = options.assumeRole;
  }

  /** The role a target is reached through; undefined for the deployment's own account. */
  public roleArn(target: Target): string | undefined {
    return targetRoleArn(target, this.#config.targetRoleName);
  }

  /**
   * The target's rate-limited EC2 client, built once, limited to `share` of the
   * target's rate (`EC2_RATE_SHARE` when absent).
   *
   * @throws {ConfigurationError} for another account when this function assumes no role.
   */
  public ec2Client(target: Target, share?: number): EC2Client {
    const key = this.#key(target, share);
    const known = this.#clients.get(key);
    if (known) return known;
    const roleArn = this.roleArn(target);
    if (roleArn && !this.#assumeRole) {
      throw new ConfigurationError(
        'TARGET_ACCOUNTS',
        `names account ${target.account}, which this function does not reach`,
      );
    }
    const client = this.#wrap(
      createRateLimitedEc2Client(this.#config, {
        region: target.region,
        share: share ?? this.#config.ec2RateShare,
        credentials: roleArn ? this.#assumeRole?.(roleArn, target.region) : undefined,
        assumedRole: roleArn,
      }),
    );
    this.#clients.set(key, client);
    return client;
  }

  /** The target's EC2 gateway over its client, built once. */
  public ec2(target: Target, share?: number): Ec2Gateway {
    return this.gateway(target, 'ec2', (client) => this.#ec2Gateway(client), share);
  }

  /** The gateway `name` over the target's EC2 client, built by `build` the first time. */
  public gateway<G>(
    target: Target,
    name: string,
    build: (client: EC2Client) => G,
    share?: number,
  ): G {
    return this.once(`${this.#key(target, share)}:${name}`, () =>
      build(this.ec2Client(target, share)),
    );
  }

  /**
   * Anything else the function builds once per container (a home-region client of
   * another service), under a name of its own.
   */
  public once<G>(name: string, build: () => G): G {
    if (!this.#gateways.has(name)) this.#gateways.set(name, build());
    return this.#gateways.get(name) as G;
  }

  #ec2Gateway(client: EC2Client): Ec2Gateway {
    return new Ec2Gateway(client, {
      snapshotRateRetryMs: this.#config.snapshotRateRetryMs,
      snapshotRateRetries: this.#config.snapshotRateRetries,
    });
  }

  #key(target: Target, share: number | undefined): string {
    return `${targetLabel(target)}@${share ?? this.#config.ec2RateShare}`;
  }
}
