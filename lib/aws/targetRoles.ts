import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { SnapkeeperConfig } from '../config/environment.ts';
import type { Target } from '../domain/fanOut.ts';

/**
 * The credentials of a role assumed in another account, for a client in `region`.
 * Kept out of `clients.ts` (and passed to the composition root by the two fan-out
 * functions only) so that the STS credential provider stays out of the other bundles.
 */
export type AssumeRole = (
  roleArn: string,
  region: string,
) => ReturnType<typeof fromTemporaryCredentials>;

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
 * Assumes a target account's role through STS (the function's own credentials), with
 * `TARGET_EXTERNAL_ID` when set, for an hour; the provider refreshes it as it expires.
 *
 * @example
 * const runtime = createLambdaRuntime('worker', process.env, { assumeRole: assumeTargetRole(config) });
 */
export function assumeTargetRole(
  config: Pick<SnapkeeperConfig, 'deployment' | 'targetExternalId' | 'endpoint'>,
): AssumeRole {
  return (roleArn, region) =>
    fromTemporaryCredentials({
      params: {
        RoleArn: roleArn,
        RoleSessionName: `snapkeeper-${config.deployment}`.slice(0, 64),
        DurationSeconds: 3600,
        ...(config.targetExternalId ? { ExternalId: config.targetExternalId } : {}),
      },
      clientConfig: {
        region,
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      },
    });
}

function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  if (region.startsWith('us-isob-')) return 'aws-iso-b';
  if (region.startsWith('us-iso-')) return 'aws-iso';
  return 'aws';
}
