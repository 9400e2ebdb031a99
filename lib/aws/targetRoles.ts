import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { SnapkeeperConfig } from '../config/environment.ts';
import type { Target } from '../domain/fanOut.ts';

/** How a client reaches another account: the assumed role's credentials, and its ARN. */
export interface AssumedRole {
  readonly credentials: ReturnType<typeof fromTemporaryCredentials>;
  /** The role's ARN, for recorded calls. */
  readonly assumedRole: string;
}

/**
 * How a function reaches another account (undefined for the deployment's own). Kept out
 * of `clients.ts`, and given to the composition root by the two fan-out functions only,
 * so that the STS credential provider stays out of the other bundles.
 */
export type ReachAccount = (target: Target) => AssumedRole | undefined;

/**
 * The role a target account is reached through (`TARGET_ROLE_NAME` in that account, in
 * the region's partition); undefined for the deployment's own account (`self`).
 *
 * @example
 * targetRoleArn({ account: '210987654321', region: 'eu-west-1' }, 'snapkeeper-target');
 * // 'arn:aws:iam::210987654321:role/snapkeeper-target'
 */
export function targetRoleArn(target: Target, roleName: string): string | undefined {
  if (target.account === 'self') return undefined;
  return `arn:${partitionOf(target.region)}:iam::${target.account}:role/${roleName}`;
}

/**
 * Reaches a target account by assuming its `TARGET_ROLE_NAME` through STS (with the
 * function's own credentials), with `TARGET_EXTERNAL_ID` when set, for an hour; the
 * provider refreshes the credentials as they expire. The own account needs no role.
 *
 * @example
 * const runtime = createLambdaRuntime('worker', process.env, { reachAccount: assumeTargetRole });
 */
export function assumeTargetRole(
  config: Pick<SnapkeeperConfig, 'deployment' | 'targetRoleName' | 'targetExternalId' | 'endpoint'>,
): ReachAccount {
  return (target) => {
    const roleArn = targetRoleArn(target, config.targetRoleName);
    if (!roleArn) return undefined;
    const credentials = fromTemporaryCredentials({
      params: {
        RoleArn: roleArn,
        RoleSessionName: `snapkeeper-${config.deployment}`.slice(0, 64),
        DurationSeconds: 3600,
        ...(config.targetExternalId ? { ExternalId: config.targetExternalId } : {}),
      },
      clientConfig: {
        region: target.region,
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      },
    });
    return { credentials, assumedRole: roleArn };
  };
}

function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  if (region.startsWith('us-isob-')) return 'aws-iso-b';
  if (region.startsWith('us-iso-')) return 'aws-iso';
  return 'aws';
}
