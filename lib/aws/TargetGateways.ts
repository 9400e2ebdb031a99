import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { SnapkeeperConfig } from '../config/environment.ts';
import type { Target } from '../domain/fanOut.ts';
import { targetLabel } from '../domain/fanOut.ts';
import { createRateLimitedEc2Client } from './clients.ts';
import { Ec2Gateway } from './Ec2Gateway.ts';

type TargetConfig = Pick<
  SnapkeeperConfig,
  | 'region'
  | 'maxAttempts'
  | 'requestTimeoutMs'
  | 'endpoint'
  | 'deployment'
  | 'ec2RateShare'
  | 'ec2RateHeadroom'
  | 'ec2RateLimits'
  | 'snapshotRateRetryMs'
  | 'snapshotRateRetries'
  | 'targetRoleName'
  | 'targetExternalId'
>;

/**
 * The EC2 gateway of each (account, region) a deployment reaches. The deployment's own
 * account (`self`) uses the function's credentials; any other account is reached by
 * assuming `TARGET_ROLE_NAME` in it (STS, with `TARGET_EXTERNAL_ID` when set). Each
 * target gets its own rate limiter, since EC2's buckets are per account and region.
 *
 * @example
 * const gateways = new TargetGateways(config);
 * for await (const i of gateways.ec2({ account: 'self', region: 'eu-west-1' }).listInstancesWithTagKey(key)) ...
 */
export class TargetGateways {
  readonly #config: TargetConfig;
  readonly #wrap: <C>(client: C) => C;
  readonly #gateways = new Map<string, Ec2Gateway>();

  /**
   * @param wrap applied to every client built (the tracer's `captureAWSv3Client`).
   */
  public constructor(config: TargetConfig, wrap: <C>(client: C) => C = (client) => client) {
    this.#config = config;
    this.#wrap = wrap;
  }

  /** The role a target is reached through; undefined for the deployment's own account. */
  public roleArn(target: Target): string | undefined {
    if (target.account === 'self') return undefined;
    const partition = partitionOf(target.region);
    return `arn:${partition}:iam::${target.account}:role/${this.#config.targetRoleName}`;
  }

  /**
   * The target's EC2 gateway (built once, then reused by later invocations), limited to
   * `share` of the target's rate (the configured `EC2_RATE_SHARE` when absent).
   */
  public ec2(target: Target, share?: number): Ec2Gateway {
    const rateShare = share ?? this.#config.ec2RateShare;
    const label = `${targetLabel(target)}@${rateShare}`;
    const known = this.#gateways.get(label);
    if (known) return known;
    const roleArn = this.roleArn(target);
    const client = createRateLimitedEc2Client(this.#config, {
      region: target.region,
      share: rateShare,
      credentials: roleArn ? this.#assumed(roleArn, target.region) : undefined,
      assumedRole: roleArn,
    });
    const gateway = new Ec2Gateway(this.#wrap(client), {
      snapshotRateRetryMs: this.#config.snapshotRateRetryMs,
      snapshotRateRetries: this.#config.snapshotRateRetries,
    });
    this.#gateways.set(label, gateway);
    return gateway;
  }

  #assumed(roleArn: string, region: string) {
    return fromTemporaryCredentials({
      params: {
        RoleArn: roleArn,
        RoleSessionName: `snapkeeper-${this.#config.deployment}`.slice(0, 64),
        DurationSeconds: 3600,
        ...(this.#config.targetExternalId ? { ExternalId: this.#config.targetExternalId } : {}),
      },
      clientConfig: {
        region,
        ...(this.#config.endpoint ? { endpoint: this.#config.endpoint } : {}),
      },
    });
  }
}

function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  if (region.startsWith('us-isob-')) return 'aws-iso-b';
  if (region.startsWith('us-iso-')) return 'aws-iso';
  return 'aws';
}
