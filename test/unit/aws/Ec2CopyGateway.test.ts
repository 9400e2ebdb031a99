import 'aws-sdk-client-mock-vitest/extend';
import {
  CopyImageCommand,
  CopySnapshotCommand,
  CreateTagsCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeSnapshotAttributeCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { Ec2CopyGateway } from '../../../lib/aws/Ec2CopyGateway.ts';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const ec2Mock = mockClient(EC2Client);

/** The gateway on the destination region's client. */
function newGateway(): Ec2CopyGateway {
  return new Ec2CopyGateway(new EC2Client({ region: 'eu-west-1' }));
}

const TAGS = [
  { Key: 'snapkeeper:managed', Value: 'true' },
  { Key: 'snapkeeper:source-region', Value: 'us-east-1' },
  { Key: 'snapkeeper:source-snapshot-id', Value: 'snap-src' },
];

function snapshotRequest(kmsKeyId?: string) {
  return {
    sourceRegion: 'us-east-1',
    sourceSnapshotId: 'snap-src',
    description: 'snapkeeper copy of snap-src from us-east-1',
    kmsKeyId,
    tags: TAGS,
  };
}

function imageRequest(kmsKeyId?: string) {
  return {
    sourceRegion: 'us-east-1',
    sourceImageId: 'ami-src',
    name: 'web-1-daily-from-us-east-1',
    kmsKeyId,
    tags: TAGS,
  };
}

afterEach(() => {
  ec2Mock.reset();
});

describe('Class: Ec2CopyGateway', () => {
  describe('Method: copySnapshot', () => {
    it('copies from the source region, tagged at creation, and returns the new id', async () => {
      // Prepare
      ec2Mock.on(CopySnapshotCommand).resolves({ SnapshotId: 'snap-copy' });

      // Act
      const copyId = await newGateway().copySnapshot(snapshotRequest());

      // Assess
      expect(copyId).toBe('snap-copy');
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(CopySnapshotCommand, {
        SourceRegion: 'us-east-1',
        SourceSnapshotId: 'snap-src',
        Description: 'snapkeeper copy of snap-src from us-east-1',
        TagSpecifications: [{ ResourceType: 'snapshot', Tags: TAGS }],
      });
    });

    it('asks for no encryption when no key is given', async () => {
      // Prepare
      ec2Mock.on(CopySnapshotCommand).resolves({ SnapshotId: 'snap-copy' });

      // Act
      await newGateway().copySnapshot(snapshotRequest());

      // Assess
      const input = ec2Mock.commandCalls(CopySnapshotCommand)[0]?.args[0].input;
      expect(input).toBeDefined();
      expect(input).not.toHaveProperty('Encrypted');
      expect(input).not.toHaveProperty('KmsKeyId');
    });

    it('encrypts the copy with the given key', async () => {
      // Prepare
      ec2Mock.on(CopySnapshotCommand).resolves({ SnapshotId: 'snap-copy' });

      // Act
      await newGateway().copySnapshot(snapshotRequest('alias/dr-backups'));

      // Assess
      expect(ec2Mock).toHaveReceivedCommandWith(CopySnapshotCommand, {
        Encrypted: true,
        KmsKeyId: 'alias/dr-backups',
      });
    });

    it('cuts the description to the 255 characters EC2 takes', async () => {
      // Prepare
      ec2Mock.on(CopySnapshotCommand).resolves({ SnapshotId: 'snap-copy' });

      // Act
      await newGateway().copySnapshot({ ...snapshotRequest(), description: 'd'.repeat(400) });

      // Assess
      const input = ec2Mock.commandCalls(CopySnapshotCommand)[0]?.args[0].input;
      expect(input?.Description).toHaveLength(255);
    });

    it('wraps a KMS error as an AwsCallError naming CopySnapshot and the code', async () => {
      // Prepare
      ec2Mock
        .on(CopySnapshotCommand)
        .rejects(sdkError('KMSKeyNotAccessibleFault', 'The KMS key is not accessible'));

      // Act
      const failure = await newGateway()
        .copySnapshot(snapshotRequest('alias/gone'))
        .catch((e: unknown) => e);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({
        action: 'CopySnapshot',
        code: 'KMSKeyNotAccessibleFault',
        httpStatus: 400,
      });
    });

    it('fails when EC2 answers without a snapshot id', async () => {
      // Prepare
      ec2Mock.on(CopySnapshotCommand).resolves({});

      // Act
      const failure = await newGateway()
        .copySnapshot(snapshotRequest())
        .catch((e: unknown) => e);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect((failure as AwsCallError).action).toBe('CopySnapshot');
      expect((failure as AwsCallError).message).toContain('no SnapshotId');
    });
  });

  describe('Method: copyImage', () => {
    it('tags the image and its snapshots in the CopyImage request itself', async () => {
      // Prepare
      ec2Mock.on(CopyImageCommand).resolves({ ImageId: 'ami-copy' });

      // Act
      const copyId = await newGateway().copyImage(imageRequest('alias/dr-backups'));

      // Assess
      expect(copyId).toBe('ami-copy');
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(CopyImageCommand, {
        SourceRegion: 'us-east-1',
        SourceImageId: 'ami-src',
        Name: 'web-1-daily-from-us-east-1',
        Encrypted: true,
        KmsKeyId: 'alias/dr-backups',
        TagSpecifications: [
          { ResourceType: 'image', Tags: TAGS },
          { ResourceType: 'snapshot', Tags: TAGS },
        ],
      });
      expect(ec2Mock).not.toHaveReceivedCommand(CreateTagsCommand);
    });

    it('asks for no encryption when no key is given', async () => {
      // Prepare
      ec2Mock.on(CopyImageCommand).resolves({ ImageId: 'ami-copy' });

      // Act
      await newGateway().copyImage(imageRequest());

      // Assess
      const input = ec2Mock.commandCalls(CopyImageCommand)[0]?.args[0].input;
      expect(input).toBeDefined();
      expect(input).not.toHaveProperty('Encrypted');
      expect(input).not.toHaveProperty('KmsKeyId');
    });

    it('with the local-only fallback, still sends the tags and also tags the new image after', async () => {
      // Prepare
      ec2Mock.on(CopyImageCommand).resolves({ ImageId: 'ami-copy' });
      ec2Mock.on(CreateTagsCommand).resolves({});

      // Act
      await newGateway().copyImage(imageRequest(), true);

      // Assess
      expect(ec2Mock).toHaveReceivedCommandWith(CopyImageCommand, {
        TagSpecifications: [
          { ResourceType: 'image', Tags: TAGS },
          { ResourceType: 'snapshot', Tags: TAGS },
        ],
      });
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(CreateTagsCommand, {
        Resources: ['ami-copy'],
        Tags: TAGS,
      });
    });

    it('wraps an error as an AwsCallError naming CopyImage', async () => {
      // Prepare
      ec2Mock
        .on(CopyImageCommand)
        .rejects(sdkError('InvalidParameterValue', 'KMS key is pending deletion'));

      // Act
      const failure = await newGateway()
        .copyImage(imageRequest('alias/gone'))
        .catch((e: unknown) => e);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({ action: 'CopyImage', code: 'InvalidParameterValue' });
    });

    it('fails when EC2 answers without an image id', async () => {
      // Prepare
      ec2Mock.on(CopyImageCommand).resolves({});

      // Act
      const failure = await newGateway()
        .copyImage(imageRequest(), true)
        .catch((e: unknown) => e);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(ec2Mock).not.toHaveReceivedCommand(CreateTagsCommand);
    });
  });

  describe('Method: snapshotGrants', () => {
    it('lists the accounts granted createVolumePermission and detects the group all', async () => {
      // Prepare
      ec2Mock.on(DescribeSnapshotAttributeCommand).resolves({
        CreateVolumePermissions: [
          { UserId: '111122223333' },
          { Group: 'all' },
          { UserId: '444455556666' },
        ],
      });

      // Act
      const grants = await newGateway().snapshotGrants('snap-1');

      // Assess
      expect(grants).toEqual({ accounts: ['111122223333', '444455556666'], isPublic: true });
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DescribeSnapshotAttributeCommand, {
        SnapshotId: 'snap-1',
        Attribute: 'createVolumePermission',
      });
    });

    it('reports a private snapshot with no grants', async () => {
      // Prepare
      ec2Mock.on(DescribeSnapshotAttributeCommand).resolves({});

      // Act
      const grants = await newGateway().snapshotGrants('snap-1');

      // Assess
      expect(grants).toEqual({ accounts: [], isPublic: false });
    });

    it('wraps an error as an AwsCallError naming DescribeSnapshotAttribute', async () => {
      // Prepare
      ec2Mock
        .on(DescribeSnapshotAttributeCommand)
        .rejects(sdkError('InvalidSnapshot.NotFound', 'gone'));

      // Act
      const failure = await newGateway()
        .snapshotGrants('snap-1')
        .catch((e: unknown) => e);

      // Assess
      expect(failure).toMatchObject({
        name: 'AwsCallError',
        action: 'DescribeSnapshotAttribute',
        code: 'InvalidSnapshot.NotFound',
      });
    });
  });

  describe('Method: imageGrants', () => {
    it('lists the accounts granted launchPermission and detects the group all', async () => {
      // Prepare
      ec2Mock.on(DescribeImageAttributeCommand).resolves({
        LaunchPermissions: [{ UserId: '111122223333' }, { Group: 'all' }],
      });

      // Act
      const grants = await newGateway().imageGrants('ami-1');

      // Assess
      expect(grants).toEqual({ accounts: ['111122223333'], isPublic: true });
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DescribeImageAttributeCommand, {
        ImageId: 'ami-1',
        Attribute: 'launchPermission',
      });
    });

    it('reports an AMI shared with accounts only as not public', async () => {
      // Prepare
      ec2Mock.on(DescribeImageAttributeCommand).resolves({
        LaunchPermissions: [{ UserId: '111122223333' }],
      });

      // Act
      const grants = await newGateway().imageGrants('ami-1');

      // Assess
      expect(grants).toEqual({ accounts: ['111122223333'], isPublic: false });
    });

    it('wraps an error as an AwsCallError naming DescribeImageAttribute', async () => {
      // Prepare
      ec2Mock.on(DescribeImageAttributeCommand).rejects(sdkError('InvalidAMIID.NotFound', 'gone'));

      // Act
      const failure = await newGateway()
        .imageGrants('ami-1')
        .catch((e: unknown) => e);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({ action: 'DescribeImageAttribute' });
    });
  });

  describe('Method: changeSnapshotGrants', () => {
    it('sends an add call and a remove call for the accounts', async () => {
      // Prepare
      ec2Mock.on(ModifySnapshotAttributeCommand).resolves({});

      // Act
      await newGateway().changeSnapshotGrants('snap-1', {
        add: ['111122223333'],
        remove: ['444455556666', '777788889999'],
      });

      // Assess
      expect(ec2Mock).toHaveReceivedCommandTimes(ModifySnapshotAttributeCommand, 2);
      expect(ec2Mock).toHaveReceivedNthCommandWith(ModifySnapshotAttributeCommand, 1, {
        SnapshotId: 'snap-1',
        Attribute: 'createVolumePermission',
        OperationType: 'add',
        UserIds: ['111122223333'],
      });
      expect(ec2Mock).toHaveReceivedNthCommandWith(ModifySnapshotAttributeCommand, 2, {
        SnapshotId: 'snap-1',
        Attribute: 'createVolumePermission',
        OperationType: 'remove',
        UserIds: ['444455556666', '777788889999'],
      });
      for (const call of ec2Mock.commandCalls(ModifySnapshotAttributeCommand)) {
        expect(call.args[0].input).not.toHaveProperty('GroupNames');
      }
    });

    it('sends nothing when there is nothing to change', async () => {
      // Act
      await newGateway().changeSnapshotGrants('snap-1', { add: [], remove: [] });

      // Assess
      expect(ec2Mock).not.toHaveReceivedCommand(ModifySnapshotAttributeCommand);
    });

    it('removes the group all only on a remove call, and only when asked to make it private', async () => {
      // Prepare
      ec2Mock.on(ModifySnapshotAttributeCommand).resolves({});

      // Act
      await newGateway().changeSnapshotGrants('snap-1', { add: [], remove: [], makePrivate: true });

      // Assess
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(ModifySnapshotAttributeCommand, {
        SnapshotId: 'snap-1',
        Attribute: 'createVolumePermission',
        OperationType: 'remove',
        GroupNames: ['all'],
      });
      const input = ec2Mock.commandCalls(ModifySnapshotAttributeCommand)[0]?.args[0].input;
      expect(input).not.toHaveProperty('UserIds');
    });

    it('never adds the group all', async () => {
      // Prepare
      ec2Mock.on(ModifySnapshotAttributeCommand).resolves({});

      // Act
      await newGateway().changeSnapshotGrants('snap-1', {
        add: ['111122223333'],
        remove: ['444455556666'],
        makePrivate: true,
      });

      // Assess
      const calls = ec2Mock
        .commandCalls(ModifySnapshotAttributeCommand)
        .map((c) => c.args[0].input);
      expect(calls.filter((c) => c.OperationType === 'add')).toEqual([
        expect.not.objectContaining({ GroupNames: expect.anything() }),
      ]);
      expect(calls.filter((c) => c.OperationType === 'remove')).toEqual([
        expect.objectContaining({ UserIds: ['444455556666'], GroupNames: ['all'] }),
      ]);
    });

    it('wraps an error as an AwsCallError naming ModifySnapshotAttribute', async () => {
      // Prepare
      ec2Mock
        .on(ModifySnapshotAttributeCommand)
        .rejects(
          sdkError('InvalidParameter', 'snapshots encrypted with the default key cannot be shared'),
        );

      // Act
      const failure = await newGateway()
        .changeSnapshotGrants('snap-1', { add: ['111122223333'], remove: [] })
        .catch((e: unknown) => e);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({
        action: 'ModifySnapshotAttribute',
        code: 'InvalidParameter',
      });
    });
  });

  describe('Method: changeImageGrants', () => {
    it('builds one LaunchPermission change with Add and Remove', async () => {
      // Prepare
      ec2Mock.on(ModifyImageAttributeCommand).resolves({});

      // Act
      await newGateway().changeImageGrants('ami-1', {
        add: ['111122223333'],
        remove: ['444455556666'],
      });

      // Assess
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(ModifyImageAttributeCommand, {
        ImageId: 'ami-1',
        LaunchPermission: {
          Add: [{ UserId: '111122223333' }],
          Remove: [{ UserId: '444455556666' }],
        },
      });
    });

    it('leaves Add out when there is only something to remove', async () => {
      // Prepare
      ec2Mock.on(ModifyImageAttributeCommand).resolves({});

      // Act
      await newGateway().changeImageGrants('ami-1', { add: [], remove: ['444455556666'] });

      // Assess
      const input = ec2Mock.commandCalls(ModifyImageAttributeCommand)[0]?.args[0].input;
      expect(input?.LaunchPermission).toEqual({ Remove: [{ UserId: '444455556666' }] });
    });

    it('removes the group all when asked to make the AMI private, and never adds it', async () => {
      // Prepare
      ec2Mock.on(ModifyImageAttributeCommand).resolves({});

      // Act
      await newGateway().changeImageGrants('ami-1', { add: [], remove: [], makePrivate: true });

      // Assess
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(ModifyImageAttributeCommand, {
        ImageId: 'ami-1',
        LaunchPermission: { Remove: [{ Group: 'all' }] },
      });
      const input = ec2Mock.commandCalls(ModifyImageAttributeCommand)[0]?.args[0].input;
      expect(input?.LaunchPermission).not.toHaveProperty('Add');
    });

    it('sends nothing when there is nothing to change', async () => {
      // Act
      await newGateway().changeImageGrants('ami-1', { add: [], remove: [] });

      // Assess
      expect(ec2Mock).not.toHaveReceivedCommand(ModifyImageAttributeCommand);
    });

    it('wraps an error as an AwsCallError naming ModifyImageAttribute', async () => {
      // Prepare
      ec2Mock
        .on(ModifyImageAttributeCommand)
        .rejects(sdkError('UnauthorizedOperation', 'denied', 403));

      // Act
      const failure = await newGateway()
        .changeImageGrants('ami-1', { add: ['111122223333'], remove: [] })
        .catch((e: unknown) => e);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({
        action: 'ModifyImageAttribute',
        code: 'UnauthorizedOperation',
        httpStatus: 403,
      });
    });
  });

  describe('Method: publicSnapshots', () => {
    it("asks for the account's snapshots restorable by all", async () => {
      // Prepare
      ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });

      // Act
      await newGateway().publicSnapshots();

      // Assess
      expect(ec2Mock).toHaveReceivedCommandWith(DescribeSnapshotsCommand, {
        OwnerIds: ['self'],
        RestorableByUserIds: ['all'],
      });
    });

    it('confirms each candidate by its attribute and drops one that is not public', async () => {
      // Prepare
      ec2Mock.on(DescribeSnapshotsCommand).resolves({
        Snapshots: [
          {
            SnapshotId: 'snap-public',
            VolumeSize: 8,
            Tags: [{ Key: 'snapkeeper:managed', Value: 'true' }],
          },
          { SnapshotId: 'snap-private' },
        ],
      });
      ec2Mock
        .on(DescribeSnapshotAttributeCommand, { SnapshotId: 'snap-public' })
        .resolves({ CreateVolumePermissions: [{ Group: 'all' }] })
        .on(DescribeSnapshotAttributeCommand, { SnapshotId: 'snap-private' })
        .resolves({ CreateVolumePermissions: [{ UserId: '111122223333' }] });

      // Act
      const found = await newGateway().publicSnapshots();

      // Assess
      expect(found).toEqual([
        { snapshotId: 'snap-public', tags: { 'snapkeeper:managed': 'true' }, sizeGiB: 8 },
      ]);
      expect(ec2Mock).toHaveReceivedCommandTimes(DescribeSnapshotAttributeCommand, 2);
      expect(ec2Mock).toHaveReceivedCommandWith(DescribeSnapshotAttributeCommand, {
        SnapshotId: 'snap-private',
        Attribute: 'createVolumePermission',
      });
    });

    it('follows every page', async () => {
      // Prepare
      ec2Mock
        .on(DescribeSnapshotsCommand)
        .resolvesOnce({ Snapshots: [{ SnapshotId: 'snap-a' }], NextToken: 'page-2' })
        .resolvesOnce({ Snapshots: [{ SnapshotId: 'snap-b' }] });
      ec2Mock
        .on(DescribeSnapshotAttributeCommand)
        .resolves({ CreateVolumePermissions: [{ Group: 'all' }] });

      // Act
      const found = await newGateway().publicSnapshots();

      // Assess
      expect(found.map((s) => s.snapshotId)).toEqual(['snap-a', 'snap-b']);
      expect(ec2Mock).toHaveReceivedNthCommandWith(DescribeSnapshotsCommand, 2, {
        NextToken: 'page-2',
      });
    });

    it('wraps a listing error as an AwsCallError naming DescribeSnapshots', async () => {
      // Prepare
      ec2Mock
        .on(DescribeSnapshotsCommand)
        .rejects(sdkError('UnauthorizedOperation', 'denied', 403));

      // Act
      const failure = await newGateway()
        .publicSnapshots()
        .catch((e: unknown) => e);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({ action: 'DescribeSnapshots', code: 'UnauthorizedOperation' });
    });
  });

  describe('Method: publicImages', () => {
    it("asks for the account's images with the is-public filter, disabled ones included", async () => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });

      // Act
      await newGateway().publicImages();

      // Assess
      expect(ec2Mock).toHaveReceivedCommandWith(DescribeImagesCommand, {
        Owners: ['self'],
        IncludeDisabled: true,
        Filters: [{ Name: 'is-public', Values: ['true'] }],
      });
    });

    it('keeps only the images EC2 says are public, with their tags', async () => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).resolves({
        Images: [
          {
            ImageId: 'ami-public',
            Public: true,
            Tags: [{ Key: 'snapkeeper:managed', Value: 'true' }],
          },
          { ImageId: 'ami-private', Public: false },
        ],
      });

      // Act
      const found = await newGateway().publicImages();

      // Assess
      expect(found).toEqual([{ imageId: 'ami-public', tags: { 'snapkeeper:managed': 'true' } }]);
    });

    it('wraps an error as an AwsCallError naming DescribeImages', async () => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).rejects(sdkError('RequestLimitExceeded', 'slow down', 503));

      // Act
      const failure = await newGateway()
        .publicImages()
        .catch((e: unknown) => e);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({ action: 'DescribeImages', code: 'RequestLimitExceeded' });
    });
  });
});
