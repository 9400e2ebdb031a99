import 'aws-sdk-client-mock-vitest/extend';
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  EC2Client,
  type Instance,
  RegisterImageCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { Ec2RestoreGateway } from '../../../lib/aws/Ec2RestoreGateway.ts';
import { InvalidEventError } from '../../../lib/domain/errors.ts';
import type { ImageFacts } from '../../../lib/domain/imagePlan.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { ActionRecord } from '../../../lib/jobs/ports.ts';
import { type RestoreDependencies, restoreInstance } from '../../../lib/jobs/restoreJobs.ts';
import { silentLogger } from '../../../lib/jobs/runReport.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const ec2Mock = mockClient(EC2Client);
const keys = tagKeys();
const DEPLOYMENT = 'prod';
const SOURCE = 'i-0123456789abcdef0';
const BACKUP_RUN = '20261123T030002Z-9f3a12bc';
const NEW_IMAGE = 'ami-0restored00000000';

/** The snapshot set of the source from the backup run: root and one data volume. */
function snapshotSet(): SnapshotFacts[] {
  const tags = {
    [keys.managed]: 'true',
    [keys.deployment]: DEPLOYMENT,
    [keys.runId]: BACKUP_RUN,
    [keys.instanceId]: SOURCE,
  };
  return [
    {
      snapshotId: 'snap-root',
      volumeId: 'vol-root',
      state: 'completed',
      startTime: new Date('2026-11-23T03:00:05Z'),
      tags,
    },
    {
      snapshotId: 'snap-data',
      volumeId: 'vol-data',
      state: 'completed',
      startTime: new Date('2026-11-23T03:00:05Z'),
      tags,
    },
  ];
}

/** A Graviton instance as DescribeInstances answers for it. */
function gravitonInstance(overrides: Partial<Instance> = {}): Instance {
  return {
    InstanceId: SOURCE,
    State: { Name: 'running', Code: 16 },
    InstanceType: 'm7g.large',
    Architecture: 'arm64',
    BootMode: 'uefi',
    CurrentInstanceBootMode: 'uefi',
    EnaSupport: true,
    VirtualizationType: 'hvm',
    RootDeviceName: '/dev/xvda',
    RootDeviceType: 'ebs',
    ImageId: 'ami-0launched0000000',
    Placement: { AvailabilityZone: 'eu-west-1a' },
    BlockDeviceMappings: [
      { DeviceName: '/dev/xvda', Ebs: { VolumeId: 'vol-root' } },
      { DeviceName: '/dev/sdf', Ebs: { VolumeId: 'vol-data' } },
    ],
    Tags: [{ Key: 'Name', Value: 'api-1' }],
    ...overrides,
  };
}

/** One of this deployment's AMIs of the source. */
function managedImage(imageId: string, createdAt: string): ImageFacts {
  return {
    imageId,
    name: `api-1-prod-daily-${imageId}`,
    state: 'available',
    creationDate: new Date(createdAt),
    tags: {
      [keys.managed]: 'true',
      [keys.deployment]: DEPLOYMENT,
      [keys.instanceId]: SOURCE,
      [keys.createdAt]: createdAt,
    },
    snapshotIds: [],
    sizeGiB: 8,
    deregistrationProtected: false,
    isPublic: false,
  };
}

function dependencies(
  options: {
    images?: readonly ImageFacts[];
    devices?: ReadonlyMap<string, string>;
    journal?: ActionRecord[];
  } = {},
): RestoreDependencies {
  const devices =
    options.devices ??
    new Map([
      ['snap-root', '/dev/xvda'],
      ['snap-data', '/dev/sdf'],
    ]);
  return {
    ec2: {
      listSnapshotsTagged: async function* () {
        yield* snapshotSet();
      },
      describeSnapshotsByIds: async () => [],
    },
    images: {
      listImagesTagged: async () => [...(options.images ?? [])],
      listOwnImages: async () => [...(options.images ?? [])],
    },
    restore: new Ec2RestoreGateway(new EC2Client({ region: 'eu-west-1' })),
    history: {
      runActions: async () =>
        [...devices].map(([snapshotId, deviceName]) => ({
          action: 'create-snapshot',
          resourceId: snapshotId,
          details: { deviceName },
        })) as never,
    },
    config: {
      deployment: DEPLOYMENT,
      keys,
      copyTags: [],
      restoreWaitMs: 1_000,
      localTagAfterCreate: false,
    },
    clock: () => new Date('2026-11-24T09:00:00Z'),
    runId: '20261124T090000Z-0000abcd',
    logger: silentLogger,
    journal: {
      record: async (entry) => {
        options.journal?.push(entry);
      },
    },
  };
}

function registered() {
  return ec2Mock.commandCalls(RegisterImageCommand)[0]?.args[0].input;
}

afterEach(() => {
  ec2Mock.reset();
});

describe('Function: restoreInstance', () => {
  describe('the platform of the registered AMI', () => {
    it('registers an arm64 (Graviton) UEFI source as arm64, UEFI, ENA, hvm, with its root device', async () => {
      // Prepare
      ec2Mock.on(DescribeInstancesCommand).resolves({
        Reservations: [{ Instances: [gravitonInstance()] }],
      });
      ec2Mock.on(RegisterImageCommand).resolves({ ImageId: NEW_IMAGE });
      ec2Mock.on(RunInstancesCommand).resolves({ Instances: [{ InstanceId: 'i-0new' }] });
      const journal: ActionRecord[] = [];

      // Act
      const result = await restoreInstance(
        { runId: BACKUP_RUN, instanceId: SOURCE },
        dependencies({ journal }),
      );

      // Assess
      expect(result.status).toBe('succeeded');
      expect(registered()).toMatchObject({
        Architecture: 'arm64',
        BootMode: 'uefi',
        EnaSupport: true,
        VirtualizationType: 'hvm',
        RootDeviceName: '/dev/xvda',
      });
      expect(registered()).not.toHaveProperty('TpmSupport');
      expect(result.platform).toMatchObject({ architecture: 'arm64', from: `instance ${SOURCE}` });
      expect(journal.find((r) => r.action === 'register-image')?.details).toMatchObject({
        architecture: 'arm64',
        bootMode: 'uefi',
        platformFrom: `instance ${SOURCE}`,
      });
      expect(ec2Mock).toHaveReceivedCommandWith(RunInstancesCommand, {
        ImageId: NEW_IMAGE,
        InstanceType: 'm7g.large',
      });
    });

    it('registers an x86_64 UEFI source with a NitroTPM with its boot mode and TPM', async () => {
      // Prepare
      ec2Mock.on(DescribeInstancesCommand).resolves({
        Reservations: [
          {
            Instances: [
              gravitonInstance({
                InstanceType: 'm6i.large',
                Architecture: 'x86_64',
                BootMode: 'uefi-preferred',
                CurrentInstanceBootMode: 'uefi',
                TpmSupport: 'v2.0',
                RootDeviceName: '/dev/sda1',
                BlockDeviceMappings: [
                  { DeviceName: '/dev/sda1', Ebs: { VolumeId: 'vol-root' } },
                  { DeviceName: '/dev/sdf', Ebs: { VolumeId: 'vol-data' } },
                ],
              }),
            ],
          },
        ],
      });
      ec2Mock.on(RegisterImageCommand).resolves({ ImageId: NEW_IMAGE });
      ec2Mock.on(RunInstancesCommand).resolves({ Instances: [{ InstanceId: 'i-0new' }] });

      // Act
      await restoreInstance(
        { runId: BACKUP_RUN, instanceId: SOURCE },
        dependencies({
          devices: new Map([
            ['snap-root', '/dev/sda1'],
            ['snap-data', '/dev/sdf'],
          ]),
        }),
      );

      // Assess
      expect(registered()).toMatchObject({
        Architecture: 'x86_64',
        BootMode: 'uefi-preferred',
        TpmSupport: 'v2.0',
        EnaSupport: true,
        VirtualizationType: 'hvm',
        RootDeviceName: '/dev/sda1',
      });
    });

    it('keeps ENA off for a source that has it off', async () => {
      // Prepare
      ec2Mock.on(DescribeInstancesCommand).resolves({
        Reservations: [
          {
            Instances: [
              gravitonInstance({
                Architecture: 'x86_64',
                BootMode: undefined,
                CurrentInstanceBootMode: 'legacy-bios',
                EnaSupport: false,
              }),
            ],
          },
        ],
      });
      ec2Mock.on(RegisterImageCommand).resolves({ ImageId: NEW_IMAGE });
      ec2Mock.on(RunInstancesCommand).resolves({ Instances: [{ InstanceId: 'i-0new' }] });

      // Act
      await restoreInstance({ runId: BACKUP_RUN, instanceId: SOURCE }, dependencies());

      // Assess
      expect(registered()).toMatchObject({
        Architecture: 'x86_64',
        BootMode: 'legacy-bios',
        EnaSupport: false,
      });
    });

    it('takes the platform of the newest AMI this deployment made of a source that is gone (DescribeInstances: InvalidInstanceID.NotFound)', async () => {
      // Prepare
      ec2Mock
        .on(DescribeInstancesCommand)
        .rejects(
          sdkError('InvalidInstanceID.NotFound', `The instance ID '${SOURCE}' does not exist`),
        );
      ec2Mock.on(DescribeImagesCommand, { ImageIds: ['ami-0newest'] }).resolves({
        Images: [
          {
            ImageId: 'ami-0newest',
            Architecture: 'arm64',
            BootMode: 'uefi',
            EnaSupport: true,
            VirtualizationType: 'hvm',
            RootDeviceName: '/dev/xvda',
          },
        ],
      });
      ec2Mock.on(RegisterImageCommand).resolves({ ImageId: NEW_IMAGE });
      ec2Mock.on(RunInstancesCommand).resolves({ Instances: [{ InstanceId: 'i-0new' }] });

      // Act
      const result = await restoreInstance(
        { runId: BACKUP_RUN, instanceId: SOURCE },
        dependencies({
          images: [
            managedImage('ami-0older', '2026-11-20T03:00:05Z'),
            managedImage('ami-0newest', '2026-11-23T03:00:05Z'),
          ],
        }),
      );

      // Assess
      expect(ec2Mock).toHaveReceivedCommandWith(DescribeImagesCommand, {
        ImageIds: ['ami-0newest'],
      });
      expect(registered()).toMatchObject({
        Architecture: 'arm64',
        BootMode: 'uefi',
        RootDeviceName: '/dev/xvda',
      });
      expect(result.platform?.from).toBe('AMI ami-0newest');
    });

    it('refuses, registering nothing, when nothing tells the architecture (never guesses x86_64)', async () => {
      // Prepare
      ec2Mock
        .on(DescribeInstancesCommand)
        .rejects(
          sdkError('InvalidInstanceID.NotFound', `The instance ID '${SOURCE}' does not exist`),
        );

      // Act
      const failure = await restoreInstance(
        { runId: BACKUP_RUN, instanceId: SOURCE },
        dependencies(),
      ).catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(InvalidEventError);
      expect((failure as Error).message).toContain(
        `field "instanceId": the architecture and boot mode of ${SOURCE} are unknown`,
      );
      expect((failure as Error).message).toContain('"restore-volume"');
      expect(ec2Mock).not.toHaveReceivedCommand(RegisterImageCommand);
      expect(ec2Mock).not.toHaveReceivedCommand(RunInstancesCommand);
    });

    it('shows the platform in a dry run and registers nothing', async () => {
      // Prepare
      ec2Mock.on(DescribeInstancesCommand).resolves({
        Reservations: [{ Instances: [gravitonInstance()] }],
      });

      // Act
      const result = await restoreInstance(
        { runId: BACKUP_RUN, instanceId: SOURCE, dryRun: true },
        dependencies(),
      );

      // Assess
      expect(result).toMatchObject({
        status: 'planned',
        platform: { architecture: 'arm64', bootMode: 'uefi', enaSupport: true },
      });
      expect(ec2Mock).not.toHaveReceivedCommand(RegisterImageCommand);
    });
  });
});
