import 'aws-sdk-client-mock-vitest/extend';
import {
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeVolumesCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { Ec2RestoreTestGateway } from '../../../lib/aws/Ec2RestoreTestGateway.ts';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import { sdkError } from '../../support/sdkErrors.ts';

// Answers shaped as the EC2 API reference documents them: CreateVolume answers the new
// volume with `State: creating`; DescribeVolumes `Volumes[]` with `State`, `Size`,
// `Encrypted`, `KmsKeyId` (an ARN), `Tags`; unknown ids `InvalidVolume.NotFound`.
const ec2Mock = mockClient(EC2Client);
const SNAPSHOT = 'snap-0123456789abcdef0';
const VOLUME = 'vol-0aaaaaaaaaaaaaaa1';
const KEY = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const TAGS = [
  { Key: 'snapkeeper:restore-test', Value: 'true' },
  { Key: 'snapkeeper:deployment', Value: 'prod' },
];

function gateway(): Ec2RestoreTestGateway {
  return new Ec2RestoreTestGateway(new EC2Client({ region: 'eu-west-1' }));
}

afterEach(() => {
  ec2Mock.reset();
});

describe('Class: Ec2RestoreTestGateway', () => {
  describe('Method: createTestVolume', () => {
    it('restores the snapshot in the zone, tagged at creation, at the provisioned rate', async () => {
      ec2Mock.on(CreateVolumeCommand).resolves({ VolumeId: VOLUME, State: 'creating' });

      const volumeId = await gateway().createTestVolume({
        snapshotId: SNAPSHOT,
        availabilityZone: 'eu-west-1a',
        volumeInitializationRate: 200,
        tags: TAGS,
      });

      expect(volumeId).toBe(VOLUME);
      expect(ec2Mock).toHaveReceivedCommandWith(CreateVolumeCommand, {
        SnapshotId: SNAPSHOT,
        AvailabilityZone: 'eu-west-1a',
        VolumeType: 'gp3',
        VolumeInitializationRate: 200,
        TagSpecifications: [{ ResourceType: 'volume', Tags: TAGS }],
      });
    });

    it('asks for no size, key or rate it was not given: the volume takes the snapshot’s', async () => {
      ec2Mock.on(CreateVolumeCommand).resolves({ VolumeId: VOLUME, State: 'creating' });

      await gateway().createTestVolume({
        snapshotId: SNAPSHOT,
        availabilityZone: 'eu-west-1a',
        tags: TAGS,
      });

      const input = ec2Mock.commandCalls(CreateVolumeCommand)[0]?.args[0].input ?? {};
      expect(input).not.toHaveProperty('Size');
      expect(input).not.toHaveProperty('KmsKeyId');
      expect(input).not.toHaveProperty('VolumeInitializationRate');
    });

    it('turns a refusal into an AwsCallError naming the call', async () => {
      ec2Mock
        .on(CreateVolumeCommand)
        .rejects(
          sdkError('UnauthorizedOperation', 'You are not authorized to perform this operation.'),
        );

      await expect(
        gateway().createTestVolume({
          snapshotId: SNAPSHOT,
          availabilityZone: 'eu-west-1a',
          tags: TAGS,
        }),
      ).rejects.toThrow(AwsCallError);
    });
  });

  describe('Method: describeTestVolume', () => {
    it('reads creating, then available with size, encryption and key', async () => {
      ec2Mock
        .on(DescribeVolumesCommand)
        .resolvesOnce({ Volumes: [{ VolumeId: VOLUME, State: 'creating', Size: 8 }] })
        .resolvesOnce({
          Volumes: [
            {
              VolumeId: VOLUME,
              State: 'available',
              Size: 8,
              Encrypted: true,
              KmsKeyId: KEY,
              Tags: TAGS,
            },
          ],
        });

      const first = await gateway().describeTestVolume(VOLUME);
      const second = await gateway().describeTestVolume(VOLUME);

      expect(first?.state).toBe('creating');
      expect(second).toMatchObject({
        state: 'available',
        sizeGiB: 8,
        encrypted: true,
        kmsKeyId: KEY,
      });
      expect(second?.tags['snapkeeper:restore-test']).toBe('true');
      expect(ec2Mock).toHaveReceivedCommandWith(DescribeVolumesCommand, { VolumeIds: [VOLUME] });
    });

    it('reads the error state', async () => {
      ec2Mock
        .on(DescribeVolumesCommand)
        .resolves({ Volumes: [{ VolumeId: VOLUME, State: 'error' }] });

      expect((await gateway().describeTestVolume(VOLUME))?.state).toBe('error');
    });

    it('answers undefined for a volume not yet visible (InvalidVolume.NotFound)', async () => {
      ec2Mock
        .on(DescribeVolumesCommand)
        .rejects(sdkError('InvalidVolume.NotFound', `The volume '${VOLUME}' does not exist.`));

      expect(await gateway().describeTestVolume(VOLUME)).toBeUndefined();
    });
  });

  describe('Method: deleteTestVolume', () => {
    it('deletes by id', async () => {
      ec2Mock.on(DeleteVolumeCommand).resolves({});

      expect(await gateway().deleteTestVolume(VOLUME)).toBe('deleted');
      expect(ec2Mock).toHaveReceivedCommandWith(DeleteVolumeCommand, { VolumeId: VOLUME });
    });

    it('takes a volume already gone as gone', async () => {
      ec2Mock
        .on(DeleteVolumeCommand)
        .rejects(sdkError('InvalidVolume.NotFound', `The volume '${VOLUME}' does not exist.`));

      expect(await gateway().deleteTestVolume(VOLUME)).toBe('gone');
    });

    it('raises a volume still being created (IncorrectState), so the test reports it', async () => {
      ec2Mock
        .on(DeleteVolumeCommand)
        .rejects(sdkError('IncorrectState', `The volume '${VOLUME}' is 'creating'`));

      await expect(gateway().deleteTestVolume(VOLUME)).rejects.toThrow(/IncorrectState|creating/);
    });
  });

  describe('Method: listTestVolumes', () => {
    it('filters by every tag and follows NextToken', async () => {
      ec2Mock
        .on(DescribeVolumesCommand)
        .resolvesOnce({ Volumes: [{ VolumeId: 'vol-1', State: 'available' }], NextToken: 't1' })
        .resolvesOnce({ Volumes: [{ VolumeId: 'vol-2', State: 'creating' }] });

      const found = await gateway().listTestVolumes({
        'snapkeeper:restore-test': 'true',
        'snapkeeper:deployment': 'prod',
      });

      expect(found.map((v) => v.volumeId)).toEqual(['vol-1', 'vol-2']);
      expect(ec2Mock).toHaveReceivedCommandWith(DescribeVolumesCommand, {
        Filters: [
          { Name: 'tag:snapkeeper:restore-test', Values: ['true'] },
          { Name: 'tag:snapkeeper:deployment', Values: ['prod'] },
        ],
      });
      expect(ec2Mock).toHaveReceivedCommandWith(DescribeVolumesCommand, { NextToken: 't1' });
    });
  });
});
