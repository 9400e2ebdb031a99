import 'aws-sdk-client-mock-vitest/extend';
import {
  AttachVolumeCommand,
  CreateTagsCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  type DescribeVolumesCommandOutput,
  EC2Client,
  RegisterImageCommand,
  RunInstancesCommand,
  type VolumeState,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { Ec2RestoreGateway } from '../../../lib/aws/Ec2RestoreGateway.ts';
import { AwsCallError, Ec2ErrorCode, UnknownResourceError } from '../../../lib/aws/errors.ts';
import { SnapkeeperError } from '../../../lib/domain/errors.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const ec2Mock = mockClient(EC2Client);

const INSTANCE = 'i-0123456789abcdef0';
const VOLUME = 'vol-0123456789abcdef0';
const SNAPSHOT = 'snap-0123456789abcdef0';
const IMAGE = 'ami-0123456789abcdef0';
const TAGS = [
  { Key: 'snapkeeper:restored-from', Value: SNAPSHOT },
  { Key: 'Name', Value: 'web-1-restored' },
];

/** A sleep that returns at once and remembers what it was asked to wait. */
function recordingSleep(): { sleep: (ms: number) => Promise<void>; delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    sleep: async (ms) => {
      delays.push(ms);
    },
  };
}

type VolumeResponse = Omit<DescribeVolumesCommandOutput, '$metadata'>;

function newGateway(sleep?: (ms: number) => Promise<void>): Ec2RestoreGateway {
  return new Ec2RestoreGateway(new EC2Client({ region: 'eu-west-1' }), sleep);
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return expect.fail('the call succeeded');
}

afterEach(() => {
  ec2Mock.reset();
});

describe('Class: Ec2RestoreGateway', () => {
  describe('Method: describeInstance', () => {
    it('asks for the instance by id and maps its fields', async () => {
      // Prepare
      ec2Mock.on(DescribeInstancesCommand).resolves({
        Reservations: [
          {
            Instances: [
              {
                InstanceId: INSTANCE,
                State: { Name: 'stopped' },
                Placement: { AvailabilityZone: 'eu-west-1b' },
                InstanceType: 't3.micro',
                SubnetId: 'subnet-0123',
                SecurityGroups: [
                  { GroupId: 'sg-1', GroupName: 'web' },
                  { GroupName: 'no-id' },
                  { GroupId: 'sg-2' },
                ],
                KeyName: 'ops-key',
                ImageId: IMAGE,
                RootDeviceName: '/dev/xvda',
                Architecture: 'arm64',
                BootMode: 'uefi',
                CurrentInstanceBootMode: 'uefi',
                EnaSupport: true,
                VirtualizationType: 'hvm',
                Tags: [
                  { Key: 'Name', Value: 'web-1' },
                  { Key: 'snapkeeper:backup', Value: 'daily' },
                ],
                BlockDeviceMappings: [
                  { DeviceName: '/dev/xvda', Ebs: { VolumeId: 'vol-root' } },
                  { DeviceName: '/dev/sdf', Ebs: { VolumeId: 'vol-data' } },
                  { DeviceName: '/dev/sdb' },
                ],
              },
            ],
          },
        ],
      });
      const gateway = newGateway();

      // Act
      const details = await gateway.describeInstance(INSTANCE);

      // Assess
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DescribeInstancesCommand, {
        InstanceIds: [INSTANCE],
      });
      expect(details).toEqual({
        instanceId: INSTANCE,
        state: 'stopped',
        availabilityZone: 'eu-west-1b',
        instanceType: 't3.micro',
        subnetId: 'subnet-0123',
        securityGroupIds: ['sg-1', 'sg-2'],
        keyName: 'ops-key',
        imageId: IMAGE,
        rootDeviceName: '/dev/xvda',
        tags: { Name: 'web-1', 'snapkeeper:backup': 'daily' },
        volumes: [
          { volumeId: 'vol-root', deviceName: '/dev/xvda' },
          { volumeId: 'vol-data', deviceName: '/dev/sdf' },
        ],
        platform: {
          architecture: 'arm64',
          bootMode: 'uefi',
          currentBootMode: 'uefi',
          enaSupport: true,
          virtualizationType: 'hvm',
          tpmSupport: undefined,
          rootDeviceName: '/dev/xvda',
        },
      });
    });

    it('maps a bare instance to empty lists and an unknown state', async () => {
      // Prepare
      ec2Mock
        .on(DescribeInstancesCommand)
        .resolves({ Reservations: [{ Instances: [{ InstanceId: INSTANCE }] }] });

      // Act
      const details = await newGateway().describeInstance(INSTANCE);

      // Assess
      expect(details).toMatchObject({
        instanceId: INSTANCE,
        state: 'unknown',
        securityGroupIds: [],
        tags: {},
        volumes: [],
      });
    });

    it.each([
      ['InvalidInstanceID.NotFound', Ec2ErrorCode.InstanceNotFound],
      ['InvalidInstanceID.Malformed', Ec2ErrorCode.InstanceMalformed],
    ])('turns %s into an UnknownResourceError naming the id', async (_code, code) => {
      // Prepare
      const cause = sdkError(code, `The instance ID '${INSTANCE}' does not exist`);
      ec2Mock.on(DescribeInstancesCommand).rejects(cause);

      // Act
      const error = await rejectionOf(newGateway().describeInstance(INSTANCE));

      // Assess
      expect(error).toBeInstanceOf(UnknownResourceError);
      expect(error).toBeInstanceOf(SnapkeeperError);
      expect(error).toMatchObject({
        name: 'UnknownResourceError',
        resourceId: INSTANCE,
        message: `instance ${INSTANCE} does not exist in this account and region`,
      });
      expect((error as Error).cause).toBe(cause);
    });

    it.each([
      ['no reservation', { Reservations: [] }],
      ['a reservation without instances', { Reservations: [{ Instances: [] }] }],
      ['no Reservations at all', {}],
    ])('turns %s into an UnknownResourceError', async (_what, response) => {
      // Prepare
      ec2Mock.on(DescribeInstancesCommand).resolves(response);

      // Act
      const error = await rejectionOf(newGateway().describeInstance(INSTANCE));

      // Assess
      expect(error).toBeInstanceOf(UnknownResourceError);
      expect(error).toMatchObject({ resourceId: INSTANCE });
    });

    it('wraps any other error into an AwsCallError of DescribeInstances', async () => {
      // Prepare
      ec2Mock
        .on(DescribeInstancesCommand)
        .rejects(sdkError('UnauthorizedOperation', 'not allowed', 403));

      // Act
      const error = await rejectionOf(newGateway().describeInstance(INSTANCE));

      // Assess
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).not.toBeInstanceOf(UnknownResourceError);
      expect(error).toMatchObject({
        action: 'DescribeInstances',
        code: 'UnauthorizedOperation',
        httpStatus: 403,
      });
    });
  });

  describe('Method: describeVolume', () => {
    it('asks with the volume-id filter and maps the volume', async () => {
      // Prepare
      ec2Mock.on(DescribeVolumesCommand).resolves({
        Volumes: [
          {
            VolumeId: VOLUME,
            AvailabilityZone: 'eu-west-1a',
            Size: 100,
            VolumeType: 'gp3',
            State: 'in-use',
            Attachments: [
              { InstanceId: INSTANCE, Device: '/dev/sdf' },
              { InstanceId: 'i-0fedcba9876543210' },
            ],
          },
        ],
      });

      // Act
      const volume = await newGateway().describeVolume(VOLUME);

      // Assess
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DescribeVolumesCommand, {
        Filters: [{ Name: 'volume-id', Values: [VOLUME] }],
      });
      expect(ec2Mock).not.toHaveReceivedCommandWith(DescribeVolumesCommand, {
        VolumeIds: [VOLUME],
      });
      expect(volume).toEqual({
        volumeId: VOLUME,
        availabilityZone: 'eu-west-1a',
        sizeGiB: 100,
        volumeType: 'gp3',
        state: 'in-use',
        attachments: [{ instanceId: INSTANCE, device: '/dev/sdf' }],
      });
    });

    it.each<[string, VolumeResponse]>([
      ['an empty list', { Volumes: [] }],
      ['no Volumes at all', {}],
      ['a volume without id', { Volumes: [{ State: 'available' }] }],
    ])('returns undefined for %s', async (_what, response) => {
      // Prepare
      ec2Mock.on(DescribeVolumesCommand).resolves(response);

      // Act
      const volume = await newGateway().describeVolume(VOLUME);

      // Assess
      expect(volume).toBeUndefined();
    });

    it('wraps errors into an AwsCallError of DescribeVolumes', async () => {
      // Prepare
      ec2Mock.on(DescribeVolumesCommand).rejects(sdkError('InternalError', 'boom', 500));

      // Act
      const error = await rejectionOf(newGateway().describeVolume(VOLUME));

      // Assess
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).toMatchObject({
        action: 'DescribeVolumes',
        code: 'InternalError',
        httpStatus: 500,
      });
    });
  });

  describe('Method: createVolume', () => {
    it('sends snapshot, zone, type and size, tags the volume at creation, and returns its id', async () => {
      // Prepare
      ec2Mock.on(CreateVolumeCommand).resolves({ VolumeId: 'vol-0new' });

      // Act
      const volumeId = await newGateway().createVolume({
        snapshotId: SNAPSHOT,
        availabilityZone: 'eu-west-1c',
        volumeType: 'gp3',
        sizeGiB: 50,
        tags: TAGS,
      });

      // Assess
      expect(volumeId).toBe('vol-0new');
      expect(ec2Mock).toHaveReceivedCommandTimes(CreateVolumeCommand, 1);
      const input = ec2Mock.commandCalls(CreateVolumeCommand)[0]?.args[0].input;
      expect(input).toEqual({
        SnapshotId: SNAPSHOT,
        AvailabilityZone: 'eu-west-1c',
        VolumeType: 'gp3',
        Size: 50,
        TagSpecifications: [{ ResourceType: 'volume', Tags: TAGS }],
      });
    });

    it('sends Iops only when given', async () => {
      // Prepare
      ec2Mock.on(CreateVolumeCommand).resolves({ VolumeId: 'vol-0new' });

      // Act
      await newGateway().createVolume({
        snapshotId: SNAPSHOT,
        availabilityZone: 'eu-west-1c',
        volumeType: 'io2',
        sizeGiB: 50,
        iops: 16_000,
        tags: TAGS,
      });

      // Assess
      expect(ec2Mock).toHaveReceivedCommandWith(CreateVolumeCommand, {
        Iops: 16_000,
        VolumeType: 'io2',
      });
      expect(ec2Mock.commandCalls(CreateVolumeCommand)[0]?.args[0].input).not.toHaveProperty(
        'Encrypted',
      );
    });

    it('sends Throughput only when given', async () => {
      // Prepare
      ec2Mock.on(CreateVolumeCommand).resolves({ VolumeId: 'vol-0new' });

      // Act
      await newGateway().createVolume({
        snapshotId: SNAPSHOT,
        availabilityZone: 'eu-west-1c',
        volumeType: 'gp3',
        sizeGiB: 50,
        throughput: 500,
        tags: TAGS,
      });
      await newGateway().createVolume({
        snapshotId: SNAPSHOT,
        availabilityZone: 'eu-west-1c',
        volumeType: 'gp3',
        sizeGiB: 50,
        tags: TAGS,
      });

      // Assess
      const [withIt, without] = ec2Mock.commandCalls(CreateVolumeCommand);
      expect(withIt?.args[0].input).toMatchObject({ Throughput: 500, VolumeType: 'gp3' });
      expect(without?.args[0].input).not.toHaveProperty('Throughput');
    });

    it('sends Encrypted and KmsKeyId only when a key is given', async () => {
      // Prepare
      ec2Mock.on(CreateVolumeCommand).resolves({ VolumeId: 'vol-0new' });

      // Act
      await newGateway().createVolume({
        snapshotId: SNAPSHOT,
        availabilityZone: 'eu-west-1c',
        volumeType: 'gp3',
        sizeGiB: 50,
        kmsKeyId: 'alias/backups',
        tags: TAGS,
      });

      // Assess
      const input = ec2Mock.commandCalls(CreateVolumeCommand)[0]?.args[0].input;
      expect(input).toMatchObject({ Encrypted: true, KmsKeyId: 'alias/backups' });
      expect(input).not.toHaveProperty('Iops');
    });

    it('wraps errors into an AwsCallError of CreateVolume', async () => {
      // Prepare
      ec2Mock.on(CreateVolumeCommand).rejects(sdkError('InvalidSnapshot.NotFound', 'gone'));

      // Act
      const error = await rejectionOf(
        newGateway().createVolume({
          snapshotId: SNAPSHOT,
          availabilityZone: 'eu-west-1a',
          volumeType: 'gp3',
          sizeGiB: 8,
          tags: [],
        }),
      );

      // Assess
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).toMatchObject({ action: 'CreateVolume', code: 'InvalidSnapshot.NotFound' });
    });

    it('fails when EC2 returns no volume id', async () => {
      // Prepare
      ec2Mock.on(CreateVolumeCommand).resolves({});

      // Act
      const error = await rejectionOf(
        newGateway().createVolume({
          snapshotId: SNAPSHOT,
          availabilityZone: 'eu-west-1a',
          volumeType: 'gp3',
          sizeGiB: 8,
          tags: [],
        }),
      );

      // Assess
      expect(error).toBeInstanceOf(AwsCallError);
      expect((error as Error).message).toContain('CreateVolume returned no VolumeId');
    });
  });

  describe('Method: waitForVolume', () => {
    function volumeIn(state: VolumeState): VolumeResponse {
      return { Volumes: [{ VolumeId: VOLUME, State: state }] };
    }

    it('polls until the volume is available, doubling the delay from 500 ms up to 5 s', async () => {
      // Prepare
      const { sleep, delays } = recordingSleep();
      const mock = ec2Mock.on(DescribeVolumesCommand);
      for (let i = 0; i < 7; i += 1) mock.resolvesOnce(volumeIn('creating'));
      mock.resolves(volumeIn('available'));

      // Act
      await newGateway(sleep).waitForVolume(VOLUME, 600_000);

      // Assess
      expect(delays).toEqual([500, 1_000, 2_000, 4_000, 5_000, 5_000, 5_000]);
      expect(ec2Mock).toHaveReceivedCommandTimes(DescribeVolumesCommand, 8);
    });

    it('returns the milliseconds waited by its clock', async () => {
      // Prepare
      const { sleep } = recordingSleep();
      let now = 1_000_000;
      const clock = () => now;
      const ticking = async (ms: number) => {
        await sleep(ms);
        now += ms;
      };
      ec2Mock
        .on(DescribeVolumesCommand)
        .resolvesOnce(volumeIn('creating'))
        .resolvesOnce(volumeIn('creating'))
        .resolves(volumeIn('available'));

      // Act
      const waited = await newGateway(ticking).waitForVolume(VOLUME, 60_000, clock);

      // Assess
      expect(waited).toBe(1_500);
    });

    it('takes an in-use volume as ready at once', async () => {
      // Prepare
      const { sleep, delays } = recordingSleep();
      ec2Mock.on(DescribeVolumesCommand).resolves(volumeIn('in-use'));

      // Act
      const waited = await newGateway(sleep).waitForVolume(VOLUME, 60_000, () => 5);

      // Assess
      expect(waited).toBe(0);
      expect(delays).toEqual([]);
    });

    it('keeps polling while the volume is not yet listed', async () => {
      // Prepare
      const { sleep, delays } = recordingSleep();
      ec2Mock
        .on(DescribeVolumesCommand)
        .resolvesOnce({ Volumes: [] })
        .resolves(volumeIn('available'));

      // Act
      await newGateway(sleep).waitForVolume(VOLUME, 60_000);

      // Assess
      expect(delays).toEqual([500]);
    });

    it("throws when the volume goes into state 'error'", async () => {
      // Prepare
      const { sleep, delays } = recordingSleep();
      ec2Mock
        .on(DescribeVolumesCommand)
        .resolvesOnce(volumeIn('creating'))
        .resolves(volumeIn('error'));

      // Act
      const error = await rejectionOf(newGateway(sleep).waitForVolume(VOLUME, 60_000));

      // Assess
      expect(error).toBeInstanceOf(SnapkeeperError);
      expect((error as Error).message).toBe(`volume ${VOLUME} went into state error`);
      expect(delays).toEqual([500]);
    });

    it('throws once the clock has passed the timeout, naming the last state', async () => {
      // Prepare
      let now = 0;
      const clock = () => now;
      const sleep = async (ms: number) => {
        now += ms;
      };
      ec2Mock.on(DescribeVolumesCommand).resolves(volumeIn('creating'));

      // Act
      const error = await rejectionOf(newGateway(sleep).waitForVolume(VOLUME, 10_000, clock));

      // Assess
      expect(error).toBeInstanceOf(SnapkeeperError);
      expect((error as Error).message).toBe(
        `volume ${VOLUME} not available after 10 s (state creating)`,
      );
      // 0, 500, 1500, 3500, 7500, 12500: the sixth look is past 10 s.
      expect(ec2Mock).toHaveReceivedCommandTimes(DescribeVolumesCommand, 6);
    });

    it('names a volume that never appeared as missing on timeout', async () => {
      // Prepare
      let now = 0;
      const sleep = async (ms: number) => {
        now += ms;
      };
      ec2Mock.on(DescribeVolumesCommand).resolves({ Volumes: [] });

      // Act
      const error = await rejectionOf(newGateway(sleep).waitForVolume(VOLUME, 1_000, () => now));

      // Assess
      expect((error as Error).message).toContain('(state missing)');
    });
  });

  describe('Method: attachVolume', () => {
    it('sends AttachVolume with volume, instance and device', async () => {
      // Prepare
      ec2Mock.on(AttachVolumeCommand).resolves({});

      // Act
      await newGateway().attachVolume(VOLUME, INSTANCE, '/dev/sdz');

      // Assess
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(AttachVolumeCommand, {
        VolumeId: VOLUME,
        InstanceId: INSTANCE,
        Device: '/dev/sdz',
      });
    });

    it('wraps errors into an AwsCallError of AttachVolume', async () => {
      // Prepare
      ec2Mock.on(AttachVolumeCommand).rejects(sdkError('InvalidParameterValue', 'device in use'));

      // Act
      const error = await rejectionOf(newGateway().attachVolume(VOLUME, INSTANCE, '/dev/sdz'));

      // Assess
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).toMatchObject({ action: 'AttachVolume', code: 'InvalidParameterValue' });
    });
  });

  describe('Method: deleteVolume', () => {
    it('sends DeleteVolume with the volume id', async () => {
      // Prepare
      ec2Mock.on(DeleteVolumeCommand).resolves({});

      // Act
      await newGateway().deleteVolume(VOLUME);

      // Assess
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DeleteVolumeCommand, {
        VolumeId: VOLUME,
      });
    });

    it('wraps errors into an AwsCallError of DeleteVolume', async () => {
      // Prepare
      ec2Mock.on(DeleteVolumeCommand).rejects(sdkError('VolumeInUse', 'attached'));

      // Act
      const error = await rejectionOf(newGateway().deleteVolume(VOLUME));

      // Assess
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).toMatchObject({ action: 'DeleteVolume', code: 'VolumeInUse' });
    });
  });

  describe('Method: registerImage', () => {
    const request = {
      name: 'restore-web-1-20261123T030002Z',
      description: 'snapkeeper restore of i-0123456789abcdef0 run 20261123T030002Z-9f3a12bc',
      rootDeviceName: '/dev/xvda',
      platform: {
        architecture: 'x86_64',
        enaSupport: true,
        virtualizationType: 'hvm',
        from: 'instance i-0123456789abcdef0',
      },
      mappings: [
        { deviceName: '/dev/xvda', snapshotId: 'snap-root' },
        { deviceName: '/dev/sdf', snapshotId: 'snap-data', volumeType: 'io2' },
      ],
      tags: TAGS,
    };

    it('registers the root device and every snapshot as a block device mapping, tagged at creation', async () => {
      // Prepare
      ec2Mock.on(RegisterImageCommand).resolves({ ImageId: IMAGE });

      // Act
      const imageId = await newGateway().registerImage(request);

      // Assess
      expect(imageId).toBe(IMAGE);
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(RegisterImageCommand, {
        Name: request.name,
        Description: request.description,
        RootDeviceName: '/dev/xvda',
        Architecture: 'x86_64',
        EnaSupport: true,
        VirtualizationType: 'hvm',
        BlockDeviceMappings: [
          {
            DeviceName: '/dev/xvda',
            Ebs: { SnapshotId: 'snap-root', VolumeType: 'gp3', DeleteOnTermination: true },
          },
          {
            DeviceName: '/dev/sdf',
            Ebs: { SnapshotId: 'snap-data', VolumeType: 'io2', DeleteOnTermination: true },
          },
        ],
        TagSpecifications: [{ ResourceType: 'image', Tags: TAGS }],
      });
      expect(ec2Mock).not.toHaveReceivedCommand(CreateTagsCommand);
    });

    it('with tagAfterCreate, registers without TagSpecifications and then tags the image', async () => {
      // Prepare
      ec2Mock.on(RegisterImageCommand).resolves({ ImageId: IMAGE });
      ec2Mock.on(CreateTagsCommand).resolves({});

      // Act
      const imageId = await newGateway().registerImage(request, true);

      // Assess
      expect(imageId).toBe(IMAGE);
      expect(ec2Mock.commandCalls(RegisterImageCommand)[0]?.args[0].input).not.toHaveProperty(
        'TagSpecifications',
      );
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(CreateTagsCommand, {
        Resources: [IMAGE],
        Tags: TAGS,
      });
      const calls = ec2Mock.calls().map((c) => c.args[0].constructor.name);
      expect(calls).toEqual(['RegisterImageCommand', 'CreateTagsCommand']);
    });

    it('registers an arm64 UEFI image with a NitroTPM as the platform says', async () => {
      // Prepare
      ec2Mock.on(RegisterImageCommand).resolves({ ImageId: IMAGE });

      // Act
      await newGateway().registerImage({
        ...request,
        platform: {
          architecture: 'arm64',
          bootMode: 'uefi',
          enaSupport: true,
          virtualizationType: 'hvm',
          tpmSupport: 'v2.0',
          from: 'instance i-0123456789abcdef0',
        },
      });

      // Assess
      expect(ec2Mock).toHaveReceivedCommandWith(RegisterImageCommand, {
        Architecture: 'arm64',
        BootMode: 'uefi',
        TpmSupport: 'v2.0',
        EnaSupport: true,
        VirtualizationType: 'hvm',
      });
    });

    it('leaves BootMode out when the source does not say (EC2 then takes the instance type default)', async () => {
      // Prepare
      ec2Mock.on(RegisterImageCommand).resolves({ ImageId: IMAGE });

      // Act
      await newGateway().registerImage(request);

      // Assess
      const input = ec2Mock.commandCalls(RegisterImageCommand)[0]?.args[0].input;
      expect(input).not.toHaveProperty('BootMode');
      expect(input).not.toHaveProperty('TpmSupport');
    });

    it('wraps errors into an AwsCallError of RegisterImage', async () => {
      // Prepare
      ec2Mock.on(RegisterImageCommand).rejects(sdkError('InvalidSnapshot.NotFound', 'gone'));

      // Act
      const error = await rejectionOf(newGateway().registerImage(request));

      // Assess
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).toMatchObject({ action: 'RegisterImage', code: 'InvalidSnapshot.NotFound' });
    });
  });

  describe('Method: describeImagePlatform', () => {
    it('reads architecture, boot mode, ENA, virtualization, TPM and root device of an image', async () => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).resolves({
        Images: [
          {
            ImageId: IMAGE,
            Architecture: 'arm64',
            BootMode: 'uefi',
            EnaSupport: true,
            VirtualizationType: 'hvm',
            TpmSupport: 'v2.0',
            RootDeviceName: '/dev/xvda',
          },
        ],
      });

      // Act
      const platform = await newGateway().describeImagePlatform(IMAGE);

      // Assess
      expect(ec2Mock).toHaveReceivedCommandWith(DescribeImagesCommand, { ImageIds: [IMAGE] });
      expect(platform).toEqual({
        architecture: 'arm64',
        bootMode: 'uefi',
        enaSupport: true,
        virtualizationType: 'hvm',
        tpmSupport: 'v2.0',
        rootDeviceName: '/dev/xvda',
        from: `AMI ${IMAGE}`,
      });
    });

    it.each([
      ['InvalidAMIID.NotFound', `The image id '[${IMAGE}]' does not exist`],
      ['InvalidAMIID.Unavailable', 'The image is no longer available'],
    ])('is undefined for an image EC2 answers %s for', async (code, message) => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).rejects(sdkError(code, message));

      // Act
      const platform = await newGateway().describeImagePlatform(IMAGE);

      // Assess
      expect(platform).toBeUndefined();
    });

    it('is undefined for an image that does not say its architecture', async () => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: IMAGE }] });

      // Act
      const platform = await newGateway().describeImagePlatform(IMAGE);

      // Assess
      expect(platform).toBeUndefined();
    });
  });

  describe('Method: runInstance', () => {
    it('launches exactly one instance with subnet, groups and key pair, tagging instance and volumes', async () => {
      // Prepare
      ec2Mock
        .on(RunInstancesCommand)
        .resolves({ Instances: [{ InstanceId: 'i-0new0000000000000' }] });

      // Act
      const instanceId = await newGateway().runInstance({
        imageId: IMAGE,
        instanceType: 't3.large',
        subnetId: 'subnet-0123',
        securityGroupIds: ['sg-1', 'sg-2'],
        keyName: 'ops-key',
        tags: TAGS,
      });

      // Assess
      expect(instanceId).toBe('i-0new0000000000000');
      expect(ec2Mock.commandCalls(RunInstancesCommand)[0]?.args[0].input).toEqual({
        ImageId: IMAGE,
        InstanceType: 't3.large',
        MinCount: 1,
        MaxCount: 1,
        SubnetId: 'subnet-0123',
        SecurityGroupIds: ['sg-1', 'sg-2'],
        KeyName: 'ops-key',
        TagSpecifications: [
          { ResourceType: 'instance', Tags: TAGS },
          { ResourceType: 'volume', Tags: TAGS },
        ],
      });
    });

    it('leaves out subnet, security groups and key pair when not given', async () => {
      // Prepare
      ec2Mock
        .on(RunInstancesCommand)
        .resolves({ Instances: [{ InstanceId: 'i-0new0000000000000' }] });

      // Act
      await newGateway().runInstance({
        imageId: IMAGE,
        instanceType: 't3.micro',
        securityGroupIds: [],
        tags: TAGS,
      });

      // Assess
      expect(ec2Mock.commandCalls(RunInstancesCommand)[0]?.args[0].input).toEqual({
        ImageId: IMAGE,
        InstanceType: 't3.micro',
        MinCount: 1,
        MaxCount: 1,
        TagSpecifications: [
          { ResourceType: 'instance', Tags: TAGS },
          { ResourceType: 'volume', Tags: TAGS },
        ],
      });
    });

    it('fails when EC2 launches nothing', async () => {
      // Prepare
      ec2Mock.on(RunInstancesCommand).resolves({ Instances: [] });

      // Act
      const error = await rejectionOf(
        newGateway().runInstance({
          imageId: IMAGE,
          instanceType: 't3.micro',
          securityGroupIds: [],
          tags: [],
        }),
      );

      // Assess
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).toMatchObject({ action: 'RunInstances' });
    });

    it('wraps errors into an AwsCallError of RunInstances', async () => {
      // Prepare
      ec2Mock
        .on(RunInstancesCommand)
        .rejects(sdkError('InsufficientInstanceCapacity', 'none left', 500));

      // Act
      const error = await rejectionOf(
        newGateway().runInstance({
          imageId: IMAGE,
          instanceType: 't3.micro',
          securityGroupIds: [],
          tags: [],
        }),
      );

      // Assess
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).toMatchObject({
        action: 'RunInstances',
        code: 'InsufficientInstanceCapacity',
        httpStatus: 500,
      });
    });
  });
});
