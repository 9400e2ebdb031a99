import 'aws-sdk-client-mock-vitest/extend';
import {
  DeleteSnapshotCommand,
  DescribeImagesCommand,
  type DescribeImagesCommandInput,
  type DescribeImagesCommandOutput,
  DescribeSnapshotsCommand,
  type DescribeSnapshotsCommandInput,
  type DescribeSnapshotsCommandOutput,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { Ec2Gateway } from '../../../lib/aws/Ec2Gateway.ts';
import {
  AwsCallError,
  Ec2ErrorCode,
  SnapshotInUseError,
  SnapshotNotFoundError,
} from '../../../lib/aws/errors.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const ec2Mock = mockClient(EC2Client);

const OWN_ACCOUNT = '111122223333';
const OTHER_ACCOUNT = '444455556666';
const STARTED = new Date('2026-11-22T03:00:05.000Z');

function newGateway(): Ec2Gateway {
  return new Ec2Gateway(new EC2Client({ region: 'eu-west-1' }));
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

const MANAGED_DAILY = {
  'snapkeeper:managed': 'true',
  'snapkeeper:deployment': 'prod',
  'snapkeeper:schedule': 'daily',
};

afterEach(() => {
  ec2Mock.reset();
});

describe('Class: Ec2Gateway', () => {
  describe('Method: listSnapshotsTagged', () => {
    it("asks for the account's own snapshots, 1000 a page, with one tag:K filter per tag", async () => {
      // Prepare
      ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
      const gateway = newGateway();

      // Act
      await collect(gateway.listSnapshotsTagged(MANAGED_DAILY));

      // Assess
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DescribeSnapshotsCommand, {
        OwnerIds: ['self'],
        MaxResults: 1000,
        Filters: [
          { Name: 'tag:snapkeeper:managed', Values: ['true'] },
          { Name: 'tag:snapkeeper:deployment', Values: ['prod'] },
          { Name: 'tag:snapkeeper:schedule', Values: ['daily'] },
        ],
      });
      const input = ec2Mock.commandCalls(DescribeSnapshotsCommand)[0]?.args[0].input;
      expect(input?.Filters).toHaveLength(3);
    });

    it('yields the snapshots of every page, following NextToken until the last page', async () => {
      // Prepare: answer each page by the token sent, recorded at send time (the SDK
      // paginator reuses one input object, so recorded calls only show its last state).
      const pages: Record<string, DescribeSnapshotsCommandOutput> = {
        first: {
          $metadata: {},
          Snapshots: [
            { SnapshotId: 'snap-p1a', State: 'completed' },
            { SnapshotId: 'snap-p1b', State: 'completed' },
          ],
          NextToken: 'token-page-2',
        },
        'token-page-2': {
          $metadata: {},
          Snapshots: [{ SnapshotId: 'snap-p2a', State: 'completed' }],
          NextToken: 'token-page-3',
        },
        'token-page-3': {
          $metadata: {},
          Snapshots: [{ SnapshotId: 'snap-p3a', State: 'completed' }],
        },
      };
      const sent: { NextToken?: string | undefined; MaxResults?: number | undefined }[] = [];
      ec2Mock.on(DescribeSnapshotsCommand).callsFake((input: DescribeSnapshotsCommandInput) => {
        sent.push({ NextToken: input.NextToken, MaxResults: input.MaxResults });
        return pages[input.NextToken ?? 'first'];
      });
      const gateway = newGateway();

      // Act
      const snapshots = await collect(gateway.listSnapshotsTagged(MANAGED_DAILY));

      // Assess
      expect(snapshots.map((s) => s.snapshotId)).toEqual([
        'snap-p1a',
        'snap-p1b',
        'snap-p2a',
        'snap-p3a',
      ]);
      expect(sent).toEqual([
        { NextToken: undefined, MaxResults: 1000 },
        { NextToken: 'token-page-2', MaxResults: 1000 },
        { NextToken: 'token-page-3', MaxResults: 1000 },
      ]);
      expect(ec2Mock).toHaveReceivedCommandTimes(DescribeSnapshotsCommand, 3);
    });

    it('maps id, volume, state, start time, tags, size, description and owner to SnapshotFacts', async () => {
      // Prepare
      ec2Mock.on(DescribeSnapshotsCommand).resolves({
        Snapshots: [
          {
            SnapshotId: 'snap-0aaa',
            VolumeId: 'vol-0data',
            State: 'completed',
            StartTime: STARTED,
            VolumeSize: 100,
            Description: 'snapkeeper daily 2026-11-22T03:00:00Z i-0web (web-1)',
            OwnerId: OWN_ACCOUNT,
            Tags: [
              { Key: 'snapkeeper:managed', Value: 'true' },
              { Key: 'snapkeeper:created-at', Value: '2026-11-22T03:00:05Z' },
              { Key: 'Name', Value: 'web-1' },
            ],
          },
        ],
      });
      const gateway = newGateway();

      // Act
      const snapshots = await collect(gateway.listSnapshotsTagged(MANAGED_DAILY));

      // Assess
      expect(snapshots).toEqual([
        {
          snapshotId: 'snap-0aaa',
          volumeId: 'vol-0data',
          state: 'completed',
          startTime: STARTED,
          tags: {
            'snapkeeper:managed': 'true',
            'snapkeeper:created-at': '2026-11-22T03:00:05Z',
            Name: 'web-1',
          },
          sizeGiB: 100,
          description: 'snapkeeper daily 2026-11-22T03:00:00Z i-0web (web-1)',
          ownerId: OWN_ACCOUNT,
        },
      ]);
    });

    it('reports a pending snapshot as pending, and one without a state as pending too (never as completed)', async () => {
      // Prepare
      ec2Mock.on(DescribeSnapshotsCommand).resolves({
        Snapshots: [
          { SnapshotId: 'snap-pending', VolumeId: 'vol-1', State: 'pending', StartTime: STARTED },
          { SnapshotId: 'snap-no-state', VolumeId: 'vol-1', StartTime: STARTED },
          { SnapshotId: 'snap-error', VolumeId: 'vol-1', State: 'error', StartTime: STARTED },
        ],
      });
      const gateway = newGateway();

      // Act
      const snapshots = await collect(gateway.listSnapshotsTagged(MANAGED_DAILY));

      // Assess
      expect(snapshots.map((s) => [s.snapshotId, s.state])).toEqual([
        ['snap-pending', 'pending'],
        ['snap-no-state', 'pending'],
        ['snap-error', 'error'],
      ]);
    });

    it('skips snapshots owned by another account when an owner id is given', async () => {
      // Prepare
      ec2Mock.on(DescribeSnapshotsCommand).resolves({
        Snapshots: [
          { SnapshotId: 'snap-mine', State: 'completed', OwnerId: OWN_ACCOUNT },
          { SnapshotId: 'snap-shared', State: 'completed', OwnerId: OTHER_ACCOUNT },
          { SnapshotId: 'snap-mine-2', State: 'completed', OwnerId: OWN_ACCOUNT },
        ],
      });
      const gateway = newGateway();

      // Act
      const snapshots = await collect(gateway.listSnapshotsTagged(MANAGED_DAILY, OWN_ACCOUNT));

      // Assess
      expect(snapshots.map((s) => s.snapshotId)).toEqual(['snap-mine', 'snap-mine-2']);
    });

    it('keeps every owner when no owner id is given (OwnerIds self is the server-side filter)', async () => {
      // Prepare
      ec2Mock.on(DescribeSnapshotsCommand).resolves({
        Snapshots: [
          { SnapshotId: 'snap-mine', State: 'completed', OwnerId: OWN_ACCOUNT },
          { SnapshotId: 'snap-other', State: 'completed', OwnerId: OTHER_ACCOUNT },
        ],
      });
      const gateway = newGateway();

      // Act
      const snapshots = await collect(gateway.listSnapshotsTagged(MANAGED_DAILY));

      // Assess
      expect(snapshots.map((s) => s.snapshotId)).toEqual(['snap-mine', 'snap-other']);
    });

    it('ignores entries without a snapshot id', async () => {
      // Prepare
      ec2Mock.on(DescribeSnapshotsCommand).resolves({
        Snapshots: [{ State: 'completed' }, { SnapshotId: 'snap-1', State: 'completed' }],
      });
      const gateway = newGateway();

      // Act
      const snapshots = await collect(gateway.listSnapshotsTagged(MANAGED_DAILY));

      // Assess
      expect(snapshots.map((s) => s.snapshotId)).toEqual(['snap-1']);
    });

    it('wraps a describe error into an AwsCallError naming DescribeSnapshots and the AWS code', async () => {
      // Prepare
      ec2Mock
        .on(DescribeSnapshotsCommand)
        .rejects(sdkError('UnauthorizedOperation', 'You are not authorized', 403));
      const gateway = newGateway();

      // Act
      const error = await collect(gateway.listSnapshotsTagged(MANAGED_DAILY)).catch(
        (e: unknown) => e,
      );

      // Assess
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).toMatchObject({
        action: 'DescribeSnapshots',
        code: 'UnauthorizedOperation',
        httpStatus: 403,
        message: 'DescribeSnapshots failed: UnauthorizedOperation: You are not authorized',
      });
    });

    it('wraps an error on a later page, after yielding the earlier pages', async () => {
      // Prepare
      ec2Mock
        .on(DescribeSnapshotsCommand)
        .resolvesOnce({ Snapshots: [{ SnapshotId: 'snap-1', State: 'completed' }], NextToken: 'n' })
        .rejectsOnce(sdkError('InternalError', 'An internal error has occurred', 500));
      const gateway = newGateway();
      const seen: string[] = [];

      // Act
      const listing = (async () => {
        for await (const snapshot of gateway.listSnapshotsTagged(MANAGED_DAILY)) {
          seen.push(snapshot.snapshotId);
        }
      })();

      // Assess
      await expect(listing).rejects.toMatchObject({
        name: 'AwsCallError',
        action: 'DescribeSnapshots',
        code: 'InternalError',
        httpStatus: 500,
      });
      expect(seen).toEqual(['snap-1']);
    });
  });

  describe('Method: listOwnImages', () => {
    it('asks for own images, disabled ones included, 1000 a page', async () => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
      const gateway = newGateway();

      // Act
      await gateway.listOwnImages();

      // Assess
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DescribeImagesCommand, {
        Owners: ['self'],
        IncludeDisabled: true,
        MaxResults: 1000,
      });
    });

    it('collects the images of every page, following NextToken, with their EBS snapshots', async () => {
      // Prepare
      const pages: Record<string, DescribeImagesCommandOutput> = {
        first: {
          $metadata: {},
          Images: [
            {
              ImageId: 'ami-1',
              Name: 'web-golden',
              State: 'available',
              BlockDeviceMappings: [
                { DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-root' } },
                { DeviceName: '/dev/sdb', VirtualName: 'ephemeral0' },
                { DeviceName: '/dev/sdf', Ebs: { SnapshotId: 'snap-data' } },
              ],
              Tags: [{ Key: 'team', Value: 'web' }],
            },
          ],
          NextToken: 'token-page-2',
        },
        'token-page-2': { $metadata: {}, Images: [{ ImageId: 'ami-2', State: 'disabled' }] },
      };
      const sent: { NextToken?: string | undefined; IncludeDisabled?: boolean | undefined }[] = [];
      ec2Mock.on(DescribeImagesCommand).callsFake((input: DescribeImagesCommandInput) => {
        sent.push({ NextToken: input.NextToken, IncludeDisabled: input.IncludeDisabled });
        return pages[input.NextToken ?? 'first'];
      });
      const gateway = newGateway();

      // Act
      const images = await gateway.listOwnImages();

      // Assess
      expect(images).toEqual([
        {
          imageId: 'ami-1',
          name: 'web-golden',
          state: 'available',
          snapshotIds: ['snap-root', 'snap-data'],
          tags: { team: 'web' },
        },
        { imageId: 'ami-2', name: undefined, state: 'disabled', snapshotIds: [], tags: {} },
      ]);
      expect(sent).toEqual([
        { NextToken: undefined, IncludeDisabled: true },
        { NextToken: 'token-page-2', IncludeDisabled: true },
      ]);
    });

    it('wraps a describe error into an AwsCallError naming DescribeImages', async () => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).rejects(sdkError('RequestLimitExceeded', 'slow down'));
      const gateway = newGateway();

      // Act
      const error = await gateway.listOwnImages().catch((e: unknown) => e);

      // Assess
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).toMatchObject({ action: 'DescribeImages', code: 'RequestLimitExceeded' });
    });
  });

  describe('Method: snapshotHolders', () => {
    it('maps each snapshot to every image using it, across pages', async () => {
      // Prepare
      ec2Mock
        .on(DescribeImagesCommand)
        .resolvesOnce({
          Images: [
            {
              ImageId: 'ami-a',
              BlockDeviceMappings: [
                { DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-shared' } },
                { DeviceName: '/dev/sdf', Ebs: { SnapshotId: 'snap-only-a' } },
              ],
            },
          ],
          NextToken: 'token-page-2',
        })
        .resolvesOnce({
          Images: [
            {
              ImageId: 'ami-b',
              State: 'disabled',
              BlockDeviceMappings: [
                { DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-shared' } },
              ],
            },
          ],
        });
      const gateway = newGateway();

      // Act
      const holders = await gateway.snapshotHolders();

      // Assess
      expect(Object.fromEntries(holders)).toEqual({
        'snap-shared': ['ami-a', 'ami-b'],
        'snap-only-a': ['ami-a'],
      });
      expect(ec2Mock).toHaveReceivedCommandTimes(DescribeImagesCommand, 2);
      expect(ec2Mock).toHaveReceivedNthCommandWith(DescribeImagesCommand, 1, {
        Owners: ['self'],
        IncludeDisabled: true,
      });
    });

    it('returns an empty map when the account owns no image', async () => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
      const gateway = newGateway();

      // Act
      const holders = await gateway.snapshotHolders();

      // Assess
      expect(holders.size).toBe(0);
    });

    it('wraps a describe error with the DescribeImages action', async () => {
      // Prepare
      ec2Mock
        .on(DescribeImagesCommand)
        .rejects(sdkError('UnauthorizedOperation', 'You are not authorized', 403));
      const gateway = newGateway();

      // Act
      const error = await gateway.snapshotHolders().catch((e: unknown) => e);

      // Assess
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).toMatchObject({
        action: 'DescribeImages',
        code: 'UnauthorizedOperation',
        httpStatus: 403,
      });
    });
  });

  describe('Method: deleteSnapshot', () => {
    it('sends one DeleteSnapshot for the snapshot id', async () => {
      // Prepare
      ec2Mock.on(DeleteSnapshotCommand).resolves({});
      const gateway = newGateway();

      // Act
      await gateway.deleteSnapshot('snap-0old');

      // Assess
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DeleteSnapshotCommand, {
        SnapshotId: 'snap-0old',
      });
    });

    it('turns InvalidSnapshot.InUse into a SnapshotInUseError carrying the snapshot id and cause', async () => {
      // Prepare
      const cause = sdkError(
        'InvalidSnapshot.InUse',
        'The snapshot snap-0old is currently in use by ami-0abc',
      );
      ec2Mock.on(DeleteSnapshotCommand).rejects(cause);
      const gateway = newGateway();

      // Act
      const error = await gateway.deleteSnapshot('snap-0old').catch((e: unknown) => e);

      // Assess
      expect(error).toBeInstanceOf(SnapshotInUseError);
      expect(error).toMatchObject({
        snapshotId: 'snap-0old',
        action: 'DeleteSnapshot',
        code: Ec2ErrorCode.SnapshotInUse,
      });
      expect((error as Error).cause).toBe(cause);
      expect(ec2Mock).toHaveReceivedCommandTimes(DeleteSnapshotCommand, 1);
    });

    it('turns InvalidSnapshot.NotFound into a SnapshotNotFoundError', async () => {
      // Prepare
      ec2Mock
        .on(DeleteSnapshotCommand)
        .rejects(sdkError('InvalidSnapshot.NotFound', "The snapshot 'snap-0old' does not exist."));
      const gateway = newGateway();

      // Act
      const error = await gateway.deleteSnapshot('snap-0old').catch((e: unknown) => e);

      // Assess
      expect(error).toBeInstanceOf(SnapshotNotFoundError);
      expect(error).not.toBeInstanceOf(SnapshotInUseError);
      expect(error).toMatchObject({
        snapshotId: 'snap-0old',
        code: Ec2ErrorCode.SnapshotNotFound,
      });
    });

    it('turns any other error into an AwsCallError with the AWS code and DeleteSnapshot action', async () => {
      // Prepare
      ec2Mock
        .on(DeleteSnapshotCommand)
        .rejects(sdkError('UnauthorizedOperation', 'You are not authorized', 403));
      const gateway = newGateway();

      // Act
      const error = await gateway.deleteSnapshot('snap-0old').catch((e: unknown) => e);

      // Assess
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).not.toBeInstanceOf(SnapshotInUseError);
      expect(error).not.toBeInstanceOf(SnapshotNotFoundError);
      expect(error).toMatchObject({
        name: 'AwsCallError',
        action: 'DeleteSnapshot',
        code: 'UnauthorizedOperation',
        httpStatus: 403,
        message: 'DeleteSnapshot failed: UnauthorizedOperation: You are not authorized',
      });
    });
  });
});
