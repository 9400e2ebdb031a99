import 'aws-sdk-client-mock-vitest/extend';
import {
  AutoScalingClient,
  type AutoScalingGroup,
  DescribeAutoScalingGroupsCommand,
  DescribeLaunchConfigurationsCommand,
  type DescribeLaunchConfigurationsCommandInput,
} from '@aws-sdk/client-auto-scaling';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { AutoScalingGateway } from '../../../lib/aws/AutoScalingGateway.ts';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const autoScalingMock = mockClient(AutoScalingClient);

function newGateway(): AutoScalingGateway {
  return new AutoScalingGateway(new AutoScalingClient({ region: 'eu-west-1' }));
}

/** A group as DescribeAutoScalingGroups returns it, with only what the gateway reads. */
function group(name: string, overrides: Partial<AutoScalingGroup> = {}): AutoScalingGroup {
  return {
    AutoScalingGroupName: name,
    MinSize: 1,
    MaxSize: 2,
    DesiredCapacity: 1,
    DefaultCooldown: 300,
    AvailabilityZones: ['eu-west-1a'],
    HealthCheckType: 'EC2',
    CreatedTime: new Date('2026-01-01T00:00:00Z'),
    ...overrides,
  };
}

afterEach(() => {
  autoScalingMock.reset();
});

describe('Class: AutoScalingGateway', () => {
  describe('Method: imageHolders', () => {
    it('lists the launch template versions groups pin by number, from LaunchTemplate and MixedInstancesPolicy', async () => {
      // Prepare
      autoScalingMock.on(DescribeAutoScalingGroupsCommand).resolves({
        AutoScalingGroups: [
          group('web', { LaunchTemplate: { LaunchTemplateId: 'lt-1', Version: '4' } }),
          group('batch', {
            MixedInstancesPolicy: {
              LaunchTemplate: {
                LaunchTemplateSpecification: { LaunchTemplateName: 'batch', Version: '7' },
              },
            },
          }),
        ],
      });
      const gateway = newGateway();

      // Act
      const { pinned } = await gateway.imageHolders();

      // Assess
      expect(pinned).toEqual([
        { launchTemplateId: 'lt-1', launchTemplateName: undefined, version: '4', group: 'web' },
        { launchTemplateId: undefined, launchTemplateName: 'batch', version: '7', group: 'batch' },
      ]);
    });

    it.each([
      ['$Latest', { LaunchTemplateId: 'lt-1', Version: '$Latest' }],
      ['$Default', { LaunchTemplateId: 'lt-1', Version: '$Default' }],
      ['no version (meaning $Default)', { LaunchTemplateId: 'lt-1' }],
    ])(
      'does not list a group whose launch template is %s: those are read from the templates',
      async (_case, spec) => {
        // Prepare
        autoScalingMock.on(DescribeAutoScalingGroupsCommand).resolves({
          AutoScalingGroups: [
            group('direct', { LaunchTemplate: spec }),
            group('mixed', {
              MixedInstancesPolicy: { LaunchTemplate: { LaunchTemplateSpecification: spec } },
            }),
          ],
        });
        const gateway = newGateway();

        // Act
        const { pinned } = await gateway.imageHolders();

        // Assess
        expect(pinned).toEqual([]);
      },
    );

    it('lists the versions pinned by instance-type overrides of a mixed instances policy', async () => {
      // Prepare
      autoScalingMock.on(DescribeAutoScalingGroupsCommand).resolves({
        AutoScalingGroups: [
          group('mixed', {
            MixedInstancesPolicy: {
              LaunchTemplate: {
                LaunchTemplateSpecification: { LaunchTemplateId: 'lt-x86', Version: '$Latest' },
                Overrides: [
                  { InstanceType: 'm7i.large' },
                  {
                    InstanceType: 'm7g.large',
                    LaunchTemplateSpecification: { LaunchTemplateId: 'lt-arm', Version: '12' },
                  },
                ],
              },
            },
          }),
        ],
      });
      const gateway = newGateway();

      // Act
      const { pinned } = await gateway.imageHolders();

      // Assess
      expect(pinned).toEqual([
        {
          launchTemplateId: 'lt-arm',
          launchTemplateName: undefined,
          version: '12',
          group: 'mixed',
        },
      ]);
    });

    it('lists the groups that follow a template by $Latest or $Default (no version: $Default), for the holds to name them', async () => {
      // Prepare
      autoScalingMock.on(DescribeAutoScalingGroupsCommand).resolves({
        AutoScalingGroups: [
          group('web', { LaunchTemplate: { LaunchTemplateId: 'lt-1', Version: '$Latest' } }),
          group('api', { LaunchTemplate: { LaunchTemplateName: 'api' } }),
          group('batch', {
            MixedInstancesPolicy: {
              LaunchTemplate: {
                LaunchTemplateSpecification: { LaunchTemplateId: 'lt-9', Version: '$Default' },
              },
            },
          }),
          group('pinned', { LaunchTemplate: { LaunchTemplateId: 'lt-1', Version: '4' } }),
        ],
      });
      const gateway = newGateway();

      // Act
      const { followed, pinned } = await gateway.imageHolders();

      // Assess
      expect(followed).toEqual([
        {
          launchTemplateId: 'lt-1',
          launchTemplateName: undefined,
          version: '$Latest',
          group: 'web',
        },
        {
          launchTemplateId: undefined,
          launchTemplateName: 'api',
          version: '$Default',
          group: 'api',
        },
        {
          launchTemplateId: 'lt-9',
          launchTemplateName: undefined,
          version: '$Default',
          group: 'batch',
        },
      ]);
      expect(pinned.map((p) => p.group)).toEqual(['pinned']);
    });

    it('maps the image of each launch configuration to the groups that use it', async () => {
      // Prepare
      autoScalingMock.on(DescribeAutoScalingGroupsCommand).resolves({
        AutoScalingGroups: [
          group('web-a', { LaunchConfigurationName: 'lc-web' }),
          group('web-b', { LaunchConfigurationName: 'lc-web' }),
          group('api', { LaunchConfigurationName: 'lc-api' }),
          group('templated', { LaunchTemplate: { LaunchTemplateId: 'lt-1', Version: '$Latest' } }),
        ],
      });
      autoScalingMock.on(DescribeLaunchConfigurationsCommand).resolves({
        LaunchConfigurations: [
          {
            LaunchConfigurationName: 'lc-web',
            ImageId: 'ami-0web',
            InstanceType: 't3.micro',
            CreatedTime: new Date('2026-01-01T00:00:00Z'),
          },
          {
            LaunchConfigurationName: 'lc-api',
            ImageId: 'ami-0api',
            InstanceType: 't3.micro',
            CreatedTime: new Date('2026-01-01T00:00:00Z'),
          },
        ],
      });
      const gateway = newGateway();

      // Act
      const { launchConfigurationImages } = await gateway.imageHolders();

      // Assess
      expect(launchConfigurationImages).toEqual(
        new Map([
          ['ami-0web', ['launch configuration lc-web (Auto Scaling group web-a, web-b)']],
          ['ami-0api', ['launch configuration lc-api (Auto Scaling group api)']],
        ]),
      );
      expect(autoScalingMock).toHaveReceivedCommandExactlyOnceWith(
        DescribeLaunchConfigurationsCommand,
        { LaunchConfigurationNames: ['lc-web', 'lc-api'] },
      );
    });

    it('asks for launch configurations 50 names a call', async () => {
      // Prepare
      const names = Array.from({ length: 51 }, (_, i) => `lc-${i}`);
      autoScalingMock.on(DescribeAutoScalingGroupsCommand).resolves({
        AutoScalingGroups: names.map((lc, i) => group(`g-${i}`, { LaunchConfigurationName: lc })),
      });
      autoScalingMock
        .on(DescribeLaunchConfigurationsCommand)
        .callsFake((input: DescribeLaunchConfigurationsCommandInput) => ({
          LaunchConfigurations: (input.LaunchConfigurationNames ?? []).map((lc) => ({
            LaunchConfigurationName: lc,
            ImageId: `ami-${lc}`,
            InstanceType: 't3.micro',
            CreatedTime: new Date('2026-01-01T00:00:00Z'),
          })),
        }));
      const gateway = newGateway();

      // Act
      const { launchConfigurationImages } = await gateway.imageHolders();

      // Assess
      const sent = autoScalingMock
        .commandCalls(DescribeLaunchConfigurationsCommand)
        .map((c) => c.args[0].input.LaunchConfigurationNames);
      expect(sent.map((batch) => batch?.length)).toEqual([50, 1]);
      expect(sent.flat()).toEqual(names);
      expect(launchConfigurationImages.size).toBe(51);
      expect(launchConfigurationImages.get('ami-lc-50')).toEqual([
        'launch configuration lc-50 (Auto Scaling group g-50)',
      ]);
    });

    it('does not ask for launch configurations when no group uses one', async () => {
      // Prepare
      autoScalingMock.on(DescribeAutoScalingGroupsCommand).resolves({
        AutoScalingGroups: [group('web', { LaunchTemplate: { LaunchTemplateId: 'lt-1' } })],
      });
      const gateway = newGateway();

      // Act
      const { launchConfigurationImages } = await gateway.imageHolders();

      // Assess
      expect(launchConfigurationImages.size).toBe(0);
      expect(autoScalingMock).not.toHaveReceivedCommand(DescribeLaunchConfigurationsCommand);
    });

    it('reads every page of groups, 100 a page', async () => {
      // Prepare
      autoScalingMock
        .on(DescribeAutoScalingGroupsCommand)
        .resolvesOnce({
          AutoScalingGroups: [
            group('page-1', { LaunchTemplate: { LaunchTemplateId: 'lt-1', Version: '1' } }),
          ],
          NextToken: 'token-page-2',
        })
        .resolvesOnce({
          AutoScalingGroups: [
            group('page-2', { LaunchTemplate: { LaunchTemplateId: 'lt-2', Version: '2' } }),
          ],
        });
      const gateway = newGateway();

      // Act
      const { pinned } = await gateway.imageHolders();

      // Assess
      expect(pinned.map((p) => p.group)).toEqual(['page-1', 'page-2']);
      expect(autoScalingMock).toHaveReceivedCommandTimes(DescribeAutoScalingGroupsCommand, 2);
      expect(autoScalingMock).toHaveReceivedNthCommandWith(DescribeAutoScalingGroupsCommand, 1, {
        MaxRecords: 100,
      });
      expect(autoScalingMock).toHaveReceivedNthCommandWith(DescribeAutoScalingGroupsCommand, 2, {
        NextToken: 'token-page-2',
      });
    });

    it('wraps a failure to list groups as an AwsCallError for DescribeAutoScalingGroups', async () => {
      // Prepare
      autoScalingMock
        .on(DescribeAutoScalingGroupsCommand)
        .rejects(sdkError('AccessDenied', 'not allowed', 403));
      const gateway = newGateway();

      // Act
      const failure = await gateway.imageHolders().catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({
        action: 'DescribeAutoScalingGroups',
        code: 'AccessDenied',
        httpStatus: 403,
      });
    });

    it('wraps a failure to read launch configurations as an AwsCallError for DescribeLaunchConfigurations', async () => {
      // Prepare
      autoScalingMock.on(DescribeAutoScalingGroupsCommand).resolves({
        AutoScalingGroups: [group('web', { LaunchConfigurationName: 'lc-web' })],
      });
      autoScalingMock
        .on(DescribeLaunchConfigurationsCommand)
        .rejects(sdkError('Throttling', 'slow down', 400));
      const gateway = newGateway();

      // Act
      const failure = await gateway.imageHolders().catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({ action: 'DescribeLaunchConfigurations', code: 'Throttling' });
    });
  });
});
