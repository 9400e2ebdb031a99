import {
  AutoScalingClient,
  DescribeLaunchConfigurationsCommand,
  paginateDescribeAutoScalingGroups,
} from '@aws-sdk/client-auto-scaling';
import type { SnapkeeperConfig } from '../config/environment.ts';
import { recordCalls } from './callRecorder.ts';
import { clientSettings } from './clients.ts';
import { toAwsCallError } from './errors.ts';

/** A launch template version an Auto Scaling group pins by number. */
export interface PinnedTemplateVersion {
  readonly launchTemplateId?: string | undefined;
  readonly launchTemplateName?: string | undefined;
  readonly version: string;
  readonly group: string;
}

/** A launch template an Auto Scaling group follows by `$Default` or `$Latest` (no version: `$Default`). */
export interface FollowedTemplate {
  readonly launchTemplateId?: string | undefined;
  readonly launchTemplateName?: string | undefined;
  readonly version: '$Default' | '$Latest';
  readonly group: string;
}

/**
 * What Auto Scaling groups hold: launch template versions they pin (by number; `$Default`
 * and `$Latest` are read from the templates themselves, and `followed` says which groups
 * use them, so a hold names its group) and the images of their launch configurations.
 *
 * @example
 * const asg = new AutoScalingGateway(new AutoScalingClient({}));
 * const { pinned, launchConfigurationImages } = await asg.imageHolders();
 */
export class AutoScalingGateway {
  readonly #client: AutoScalingClient;

  public constructor(client: AutoScalingClient) {
    this.#client = client;
  }

  /**
   * Reads every group once, then the launch configurations they name.
   *
   * @example
   * (await asg.imageHolders()).launchConfigurationImages.get('ami-1'); // ['launch configuration lc-1 (group web)']
   */
  public async imageHolders(): Promise<{
    pinned: PinnedTemplateVersion[];
    /** Absent from older fakes; the gateway always reads it. */
    followed?: FollowedTemplate[];
    launchConfigurationImages: Map<string, string[]>;
  }> {
    const pinned: PinnedTemplateVersion[] = [];
    const followed: FollowedTemplate[] = [];
    const configurations = new Map<string, string[]>();
    try {
      const pages = paginateDescribeAutoScalingGroups({ client: this.#client, pageSize: 100 }, {});
      for await (const page of pages) {
        for (const group of page.AutoScalingGroups ?? []) {
          const name = group.AutoScalingGroupName ?? 'unnamed';
          const specs = [
            group.LaunchTemplate,
            group.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification,
            ...(group.MixedInstancesPolicy?.LaunchTemplate?.Overrides ?? []).map(
              (override) => override.LaunchTemplateSpecification,
            ),
          ];
          for (const spec of specs) {
            if (!spec || (!spec.LaunchTemplateId && !spec.LaunchTemplateName)) continue;
            if (!spec.Version || spec.Version === '$Latest' || spec.Version === '$Default') {
              followed.push({
                launchTemplateId: spec.LaunchTemplateId,
                launchTemplateName: spec.LaunchTemplateName,
                version: spec.Version === '$Latest' ? '$Latest' : '$Default',
                group: name,
              });
              continue;
            }
            pinned.push({
              launchTemplateId: spec.LaunchTemplateId,
              launchTemplateName: spec.LaunchTemplateName,
              version: spec.Version,
              group: name,
            });
          }
          if (group.LaunchConfigurationName) {
            configurations.set(group.LaunchConfigurationName, [
              ...(configurations.get(group.LaunchConfigurationName) ?? []),
              name,
            ]);
          }
        }
      }
    } catch (error) {
      throw toAwsCallError('DescribeAutoScalingGroups', error);
    }
    const launchConfigurationImages = new Map<string, string[]>();
    const names = [...configurations.keys()];
    try {
      for (let i = 0; i < names.length; i += 50) {
        const response = await this.#client.send(
          new DescribeLaunchConfigurationsCommand({
            LaunchConfigurationNames: names.slice(i, i + 50),
          }),
        );
        for (const lc of response.LaunchConfigurations ?? []) {
          if (!lc.ImageId || !lc.LaunchConfigurationName) continue;
          const groups = configurations.get(lc.LaunchConfigurationName) ?? [];
          launchConfigurationImages.set(lc.ImageId, [
            ...(launchConfigurationImages.get(lc.ImageId) ?? []),
            `launch configuration ${lc.LaunchConfigurationName} (Auto Scaling group ${groups.join(', ')})`,
          ]);
        }
      }
    } catch (error) {
      throw toAwsCallError('DescribeLaunchConfigurations', error);
    }
    return { pinned, followed, launchConfigurationImages };
  }
}

/**
 * Builds the Auto Scaling gateway for a configuration.
 *
 * @example
 * const asg = createAutoScalingGateway(config);
 */
export function createAutoScalingGateway(
  config: Pick<SnapkeeperConfig, 'region' | 'maxAttempts' | 'requestTimeoutMs' | 'endpoint'>,
): AutoScalingGateway {
  return new AutoScalingGateway(recordCalls(new AutoScalingClient(clientSettings(config))));
}
