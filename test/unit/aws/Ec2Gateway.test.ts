import 'aws-sdk-client-mock-vitest/extend';
import {
  CreateSnapshotsCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DESCRIBE_PAGE_SIZE,
  DESCRIBE_VOLUMES_PAGE_SIZE,
  Ec2Gateway,
  toTagMap,
} from '../../../lib/aws/Ec2Gateway.ts';
import {
  AwsCallError,
  awsErrorCode,
  ConcurrentSnapshotLimitError,
  Ec2ErrorCode,
  SnapshotRateDeferredError,
  toAwsCallError,
} from '../../../lib/aws/errors.ts';
import type { SnapshotSetRequest } from '../../../lib/domain/backupPlan.ts';
import { SnapkeeperError } from '../../../lib/domain/errors.ts';
import { ANY_TAG_KEY } from '../../../lib/jobs/backupJob.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const ec2Mock = mockClient(EC2Client);

function newGateway(options: ConstructorParameters<typeof Ec2Gateway>[1] = {}): Ec2Gateway {
  return new Ec2Gateway(new EC2Client({ region: 'eu-west-1' }), options);
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

function snapshotRequest(overrides: Partial<SnapshotSetRequest> = {}): SnapshotSetRequest {
  return {
    instanceId: 'i-0123456789abcdef0',
    excludeBootVolume: false,
    excludeDataVolumeIds: [],
    included: [
      { volumeId: 'vol-root', deviceName: '/dev/xvda' },
      { volumeId: 'vol-data', deviceName: '/dev/sdf' },
    ],
    excluded: [],
    description: 'snapkeeper daily 2026-11-23T03:00:00Z i-0123456789abcdef0 (web-1)',
    tags: [
      { Key: 'snapkeeper:managed', Value: 'true' },
      { Key: 'snapkeeper:schedule', Value: 'daily' },
      { Key: 'Name', Value: 'web-1' },
    ],
    ...overrides,
  };
}

afterEach(() => {
  ec2Mock.reset();
});

describe('Class: Ec2Gateway', () => {
  describe('Method: listInstancesWithTagKey', () => {
    it('yields the instances of every page, following NextToken until the last page', async () => {
      // Prepare
      ec2Mock
        .on(DescribeInstancesCommand)
        .resolvesOnce({
          Reservations: [
            { Instances: [{ InstanceId: 'i-page1a' }, { InstanceId: 'i-page1b' }] },
            { Instances: [{ InstanceId: 'i-page1c' }] },
          ],
          NextToken: 'token-page-2',
        })
        .resolvesOnce({ Reservations: [{ Instances: [{ InstanceId: 'i-page2a' }] }] });
      const gateway = newGateway();

      // Act
      const instances = await collect(gateway.listInstancesWithTagKey('snapkeeper:backup'));

      // Assess
      expect(instances.map((i) => i.instanceId)).toEqual([
        'i-page1a',
        'i-page1b',
        'i-page1c',
        'i-page2a',
      ]);
      expect(ec2Mock).toHaveReceivedCommandTimes(DescribeInstancesCommand, 2);
      expect(ec2Mock).toHaveReceivedNthCommandWith(DescribeInstancesCommand, 2, {
        NextToken: 'token-page-2',
      });
    });

    it('asks for 1000 instances a page, filtered server-side by tag key and live states', async () => {
      // Prepare
      ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });
      const gateway = newGateway();

      // Act
      await collect(gateway.listInstancesWithTagKey('snapkeeper:backup'));

      // Assess
      expect(DESCRIBE_PAGE_SIZE).toBe(1000);
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DescribeInstancesCommand, {
        MaxResults: 1000,
        Filters: [
          { Name: 'tag-key', Values: ['snapkeeper:backup'] },
          { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
        ],
      });
    });

    it('lists every tagged instance with the wildcard key, keeping tag keys exactly as EC2 answers them', async () => {
      // Prepare: EC2 filter values take wildcards; "*" matches every tag key.
      ec2Mock.on(DescribeInstancesCommand).resolves({
        Reservations: [
          {
            Instances: [
              {
                InstanceId: 'i-typo',
                Tags: [
                  { Key: 'Snapkeeper:backup', Value: 'daily' },
                  { Key: 'snapkeeper:backup ', Value: 'true' },
                ],
              },
            ],
          },
        ],
      });
      const gateway = newGateway();

      // Act
      const instances = await collect(gateway.listInstancesWithTagKey(ANY_TAG_KEY));

      // Assess
      expect(ec2Mock).toHaveReceivedCommandWith(DescribeInstancesCommand, {
        Filters: [
          { Name: 'tag-key', Values: ['*'] },
          { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
        ],
      });
      expect(instances[0]?.tags).toEqual({
        'Snapkeeper:backup': 'daily',
        'snapkeeper:backup ': 'true',
      });
    });

    it('sends the states it is given in the instance-state-name filter', async () => {
      // Prepare
      ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });
      const gateway = newGateway();

      // Act
      await collect(gateway.listInstancesWithTagKey('acme:backup', ['running']));

      // Assess
      expect(ec2Mock).toHaveReceivedCommandWith(DescribeInstancesCommand, {
        Filters: [
          { Name: 'tag-key', Values: ['acme:backup'] },
          { Name: 'instance-state-name', Values: ['running'] },
        ],
      });
    });

    it('maps state, root device, tags and EBS block device mappings to InstanceFacts', async () => {
      // Prepare
      ec2Mock.on(DescribeInstancesCommand).resolves({
        Reservations: [
          {
            Instances: [
              {
                InstanceId: 'i-web',
                State: { Name: 'running' },
                RootDeviceName: '/dev/xvda',
                Tags: [
                  { Key: 'Name', Value: 'web-1' },
                  { Key: 'snapkeeper:backup', Value: 'daily,weekly' },
                  { Key: 'Empty' },
                ],
                BlockDeviceMappings: [
                  { DeviceName: '/dev/xvda', Ebs: { VolumeId: 'vol-root' } },
                  { DeviceName: '/dev/sdf', Ebs: { VolumeId: 'vol-data' } },
                  // No EBS volume behind the mapping: nothing to snapshot.
                  { DeviceName: '/dev/sdb' },
                ],
              },
            ],
          },
        ],
      });
      const gateway = newGateway();

      // Act
      const instances = await collect(gateway.listInstancesWithTagKey('snapkeeper:backup'));

      // Assess
      expect(instances).toEqual([
        {
          instanceId: 'i-web',
          state: 'running',
          rootDeviceName: '/dev/xvda',
          tags: { Name: 'web-1', 'snapkeeper:backup': 'daily,weekly', Empty: '' },
          volumes: [
            { volumeId: 'vol-root', deviceName: '/dev/xvda' },
            { volumeId: 'vol-data', deviceName: '/dev/sdf' },
          ],
        },
      ]);
    });

    it('reports an instance without state, tags or mappings as unknown with none of them', async () => {
      // Prepare
      ec2Mock
        .on(DescribeInstancesCommand)
        .resolves({ Reservations: [{ Instances: [{ InstanceId: 'i-bare' }, {}] }] });
      const gateway = newGateway();

      // Act
      const instances = await collect(gateway.listInstancesWithTagKey('snapkeeper:backup'));

      // Assess
      expect(instances).toEqual([
        {
          instanceId: 'i-bare',
          state: 'unknown',
          rootDeviceName: undefined,
          tags: {},
          volumes: [],
        },
      ]);
    });

    it('wraps a describe error into an AwsCallError naming DescribeInstances and the AWS code', async () => {
      // Prepare
      ec2Mock
        .on(DescribeInstancesCommand)
        .rejects(sdkError('UnauthorizedOperation', 'You are not authorized', 403));
      const gateway = newGateway();

      // Act
      const listing = collect(gateway.listInstancesWithTagKey('snapkeeper:backup'));

      // Assess
      const error = await listing.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).toMatchObject({
        action: 'DescribeInstances',
        code: 'UnauthorizedOperation',
        httpStatus: 403,
        message: 'DescribeInstances failed: UnauthorizedOperation: You are not authorized',
      });
    });

    it('wraps an error on a later page too, after yielding the earlier pages', async () => {
      // Prepare
      ec2Mock
        .on(DescribeInstancesCommand)
        .resolvesOnce({ Reservations: [{ Instances: [{ InstanceId: 'i-1' }] }], NextToken: 'n' })
        .rejectsOnce(sdkError('InternalError', 'An internal error has occurred', 500));
      const gateway = newGateway();
      const seen: string[] = [];

      // Act
      const listing = (async () => {
        for await (const instance of gateway.listInstancesWithTagKey('snapkeeper:backup')) {
          seen.push(instance.instanceId);
        }
      })();

      // Assess
      await expect(listing).rejects.toMatchObject({
        name: 'AwsCallError',
        action: 'DescribeInstances',
        code: 'InternalError',
        httpStatus: 500,
      });
      expect(seen).toEqual(['i-1']);
    });
  });

  describe('Method: volumeTagsWithKey', () => {
    it('collects the tags of every volume of every page, by volume id', async () => {
      // Prepare
      ec2Mock
        .on(DescribeVolumesCommand)
        .resolvesOnce({
          Volumes: [
            { VolumeId: 'vol-a', Tags: [{ Key: 'snapkeeper:skip', Value: 'true' }] },
            {
              VolumeId: 'vol-b',
              Tags: [
                { Key: 'snapkeeper:skip', Value: 'false' },
                { Key: 'Name', Value: 'scratch' },
              ],
            },
          ],
          NextToken: 'volumes-page-2',
        })
        .resolvesOnce({
          Volumes: [{ VolumeId: 'vol-c', Tags: [{ Key: 'snapkeeper:skip', Value: 'TRUE' }] }],
        });
      const gateway = newGateway();

      // Act
      const tags = await gateway.volumeTagsWithKey('snapkeeper:skip');

      // Assess
      expect(tags).toEqual(
        new Map([
          ['vol-a', { 'snapkeeper:skip': 'true' }],
          ['vol-b', { 'snapkeeper:skip': 'false', Name: 'scratch' }],
          ['vol-c', { 'snapkeeper:skip': 'TRUE' }],
        ]),
      );
      expect(ec2Mock).toHaveReceivedCommandTimes(DescribeVolumesCommand, 2);
      expect(ec2Mock).toHaveReceivedNthCommandWith(DescribeVolumesCommand, 2, {
        NextToken: 'volumes-page-2',
      });
    });

    it('asks for 500 volumes a page, filtered server-side by tag key', async () => {
      // Prepare
      ec2Mock.on(DescribeVolumesCommand).resolves({ Volumes: [] });
      const gateway = newGateway();

      // Act
      const tags = await gateway.volumeTagsWithKey('snapkeeper:skip');

      // Assess
      expect(tags.size).toBe(0);
      expect(DESCRIBE_VOLUMES_PAGE_SIZE).toBe(500);
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DescribeVolumesCommand, {
        MaxResults: 500,
        Filters: [{ Name: 'tag-key', Values: ['snapkeeper:skip'] }],
      });
    });

    it('wraps a describe error into an AwsCallError naming DescribeVolumes', async () => {
      // Prepare
      ec2Mock.on(DescribeVolumesCommand).rejects(sdkError('RequestLimitExceeded', 'slow down'));
      const gateway = newGateway();

      // Act
      const reading = gateway.volumeTagsWithKey('snapkeeper:skip');

      // Assess
      await expect(reading).rejects.toBeInstanceOf(AwsCallError);
      await expect(reading).rejects.toMatchObject({
        action: 'DescribeVolumes',
        code: 'RequestLimitExceeded',
        message: 'DescribeVolumes failed: RequestLimitExceeded: slow down',
      });
    });
  });

  describe('Method: createSnapshotSet', () => {
    it('sends exactly one CreateSnapshots with the instance, description and tags at creation', async () => {
      // Prepare
      ec2Mock.on(CreateSnapshotsCommand).resolves({ Snapshots: [] });
      const gateway = newGateway();
      const request = snapshotRequest();

      // Act
      await gateway.createSnapshotSet(request);

      // Assess
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(CreateSnapshotsCommand, {
        InstanceSpecification: { InstanceId: 'i-0123456789abcdef0', ExcludeBootVolume: false },
        Description: 'snapkeeper daily 2026-11-23T03:00:00Z i-0123456789abcdef0 (web-1)',
        TagSpecifications: [
          {
            ResourceType: 'snapshot',
            Tags: [
              { Key: 'snapkeeper:managed', Value: 'true' },
              { Key: 'snapkeeper:schedule', Value: 'daily' },
              { Key: 'Name', Value: 'web-1' },
            ],
          },
        ],
      });
    });

    it('leaves ExcludeDataVolumeIds out when no data volume is excluded', async () => {
      // Prepare
      ec2Mock.on(CreateSnapshotsCommand).resolves({ Snapshots: [] });
      const gateway = newGateway();

      // Act
      await gateway.createSnapshotSet(snapshotRequest({ excludeDataVolumeIds: [] }));

      // Assess
      const [call] = ec2Mock.commandCalls(CreateSnapshotsCommand);
      expect(call?.args[0].input.InstanceSpecification).not.toHaveProperty('ExcludeDataVolumeIds');
    });

    it('sends the excluded boot volume and data volume ids in the instance specification', async () => {
      // Prepare
      ec2Mock.on(CreateSnapshotsCommand).resolves({ Snapshots: [] });
      const gateway = newGateway();
      const request = snapshotRequest({
        excludeBootVolume: true,
        excludeDataVolumeIds: ['vol-scratch', 'vol-cache'],
        included: [{ volumeId: 'vol-data', deviceName: '/dev/sdf' }],
        excluded: [
          {
            volume: { volumeId: 'vol-root', deviceName: '/dev/xvda' },
            reason: 'boot volume excluded by snapkeeper:exclude-boot=true',
          },
          {
            volume: { volumeId: 'vol-scratch', deviceName: '/dev/sdg' },
            reason: 'volume tagged snapkeeper:skip=true',
          },
          {
            volume: { volumeId: 'vol-cache', deviceName: '/dev/sdh' },
            reason: 'volume tagged snapkeeper:skip=true',
          },
        ],
      });

      // Act
      await gateway.createSnapshotSet(request);

      // Assess
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(CreateSnapshotsCommand, {
        InstanceSpecification: {
          InstanceId: 'i-0123456789abcdef0',
          ExcludeBootVolume: true,
          ExcludeDataVolumeIds: ['vol-scratch', 'vol-cache'],
        },
      });
    });

    it('returns the snapshots EC2 reports, with size, state (pending when absent) and start time', async () => {
      // Prepare
      ec2Mock.on(CreateSnapshotsCommand).resolves({
        Snapshots: [
          {
            SnapshotId: 'snap-root',
            VolumeId: 'vol-root',
            VolumeSize: 8,
            State: 'completed',
            StartTime: new Date('2026-11-23T03:00:05.000Z'),
          },
          { SnapshotId: 'snap-data', VolumeId: 'vol-data', VolumeSize: 100 },
          // Incomplete entries cannot be tracked and are left out.
          { SnapshotId: 'snap-orphan' },
          { VolumeId: 'vol-nosnap' },
        ],
      });
      const gateway = newGateway();

      // Act
      const snapshots = await gateway.createSnapshotSet(snapshotRequest());

      // Assess
      expect(snapshots).toEqual([
        {
          snapshotId: 'snap-root',
          volumeId: 'vol-root',
          sizeGiB: 8,
          state: 'completed',
          startTime: '2026-11-23T03:00:05.000Z',
        },
        {
          snapshotId: 'snap-data',
          volumeId: 'vol-data',
          sizeGiB: 100,
          state: 'pending',
          startTime: undefined,
        },
      ]);
    });

    it('returns no snapshots when the response lists none', async () => {
      // Prepare
      ec2Mock.on(CreateSnapshotsCommand).resolves({});
      const gateway = newGateway();

      // Act
      const snapshots = await gateway.createSnapshotSet(snapshotRequest());

      // Assess
      expect(snapshots).toEqual([]);
    });

    it('retries SnapshotCreationPerVolumeRateExceeded after the configured pause and returns the set once it succeeds', async () => {
      // Prepare
      ec2Mock
        .on(CreateSnapshotsCommand)
        .rejectsOnce(sdkError('SnapshotCreationPerVolumeRateExceeded', 'rate exceeded'))
        .resolvesOnce({ Snapshots: [{ SnapshotId: 'snap-1', VolumeId: 'vol-root' }] });
      const sleep = vi.fn(async (_ms: number) => undefined);
      const gateway = newGateway({ snapshotRateRetryMs: 7_000, snapshotRateRetries: 2, sleep });

      // Act
      const snapshots = await gateway.createSnapshotSet(snapshotRequest());

      // Assess
      expect(snapshots.map((s) => s.snapshotId)).toEqual(['snap-1']);
      expect(sleep).toHaveBeenCalledTimes(1);
      expect(sleep).toHaveBeenCalledWith(7_000);
      expect(ec2Mock).toHaveReceivedCommandTimes(CreateSnapshotsCommand, 2);
    });

    it('defers with SnapshotRateDeferredError once the rate error outlasts N retries (N+1 calls, N pauses)', async () => {
      // Prepare
      ec2Mock
        .on(CreateSnapshotsCommand)
        .rejects(sdkError('SnapshotCreationPerVolumeRateExceeded', 'rate exceeded'));
      const sleep = vi.fn(async (_ms: number) => undefined);
      const gateway = newGateway({ snapshotRateRetryMs: 15_000, snapshotRateRetries: 3, sleep });

      // Act
      const creating = gateway.createSnapshotSet(snapshotRequest());

      // Assess
      const error = await creating.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SnapshotRateDeferredError);
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).toMatchObject({
        code: Ec2ErrorCode.SnapshotCreationPerVolumeRateExceeded,
        action: 'CreateSnapshots',
      });
      expect((error as Error).message).toContain('i-0123456789abcdef0');
      expect((error as Error).message).toContain('after 4 attempts');
      expect((error as Error).cause).toMatchObject({
        name: 'SnapshotCreationPerVolumeRateExceeded',
      });
      expect(ec2Mock).toHaveReceivedCommandTimes(CreateSnapshotsCommand, 4);
      expect(sleep).toHaveBeenCalledTimes(3);
      expect(sleep.mock.calls).toEqual([[15_000], [15_000], [15_000]]);
    });

    it('defers at once, without pausing, when no retries are configured', async () => {
      // Prepare
      ec2Mock
        .on(CreateSnapshotsCommand)
        .rejects(sdkError('SnapshotCreationPerVolumeRateExceeded', 'rate exceeded'));
      const sleep = vi.fn(async (_ms: number) => undefined);
      const gateway = newGateway({ snapshotRateRetries: 0, sleep });

      // Act
      const creating = gateway.createSnapshotSet(snapshotRequest());

      // Assess
      await expect(creating).rejects.toBeInstanceOf(SnapshotRateDeferredError);
      expect(ec2Mock).toHaveReceivedCommandTimes(CreateSnapshotsCommand, 1);
      expect(sleep).not.toHaveBeenCalled();
    });

    it('retries twice after 15 s by default', async () => {
      // Prepare
      ec2Mock
        .on(CreateSnapshotsCommand)
        .rejects(sdkError('SnapshotCreationPerVolumeRateExceeded', 'rate exceeded'));
      const sleep = vi.fn(async (_ms: number) => undefined);
      const gateway = newGateway({ sleep });

      // Act
      const creating = gateway.createSnapshotSet(snapshotRequest());

      // Assess
      await expect(creating).rejects.toBeInstanceOf(SnapshotRateDeferredError);
      expect(ec2Mock).toHaveReceivedCommandTimes(CreateSnapshotsCommand, 3);
      expect(sleep.mock.calls).toEqual([[15_000], [15_000]]);
    });

    it('throws ConcurrentSnapshotLimitError after exactly one call, without retrying', async () => {
      // Prepare
      const cause = sdkError(
        'ConcurrentSnapshotLimitExceeded',
        'Maximum number of in-progress snapshots reached',
      );
      ec2Mock.on(CreateSnapshotsCommand).rejects(cause);
      const sleep = vi.fn(async (_ms: number) => undefined);
      const gateway = newGateway({ snapshotRateRetries: 5, sleep });

      // Act
      const creating = gateway.createSnapshotSet(snapshotRequest());

      // Assess
      const error = await creating.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConcurrentSnapshotLimitError);
      expect(error).toMatchObject({
        code: 'ConcurrentSnapshotLimitExceeded',
        action: 'CreateSnapshots',
      });
      expect((error as Error).message).toMatch(
        /earlier snapshots of i-0123456789abcdef0 are still pending/,
      );
      expect((error as Error).cause).toBe(cause);
      expect(ec2Mock).toHaveReceivedCommandTimes(CreateSnapshotsCommand, 1);
      expect(sleep).not.toHaveBeenCalled();
    });

    it('turns any other error into an AwsCallError with the AWS code, without retrying', async () => {
      // Prepare
      ec2Mock
        .on(CreateSnapshotsCommand)
        .rejects(sdkError('InvalidInstanceID.NotFound', "The instance ID 'i-0123' does not exist"));
      const sleep = vi.fn(async (_ms: number) => undefined);
      const gateway = newGateway({ sleep });

      // Act
      const creating = gateway.createSnapshotSet(snapshotRequest());

      // Assess
      const error = await creating.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).not.toBeInstanceOf(ConcurrentSnapshotLimitError);
      expect(error).not.toBeInstanceOf(SnapshotRateDeferredError);
      expect(error).toMatchObject({
        name: 'AwsCallError',
        action: 'CreateSnapshots',
        code: Ec2ErrorCode.InstanceNotFound,
        httpStatus: 400,
      });
      expect(ec2Mock).toHaveReceivedCommandTimes(CreateSnapshotsCommand, 1);
      expect(sleep).not.toHaveBeenCalled();
    });
  });

  describe('Property: client', () => {
    it('exposes the SDK client it was built with', () => {
      // Prepare
      const client = new EC2Client({ region: 'eu-west-1' });

      // Act
      const gateway = new Ec2Gateway(client);

      // Assess
      expect(gateway.client).toBe(client);
    });
  });
});

describe('Function: toTagMap', () => {
  it('turns an SDK tag list into a record, a missing value becoming empty and later duplicates winning', () => {
    // Prepare
    const tags = [
      { Key: 'Name', Value: 'web-1' },
      { Key: 'Blank' },
      { Value: 'no key' },
      { Key: 'Name', Value: 'web-2' },
    ];

    // Act
    const map = toTagMap(tags);

    // Assess
    expect(map).toEqual({ Name: 'web-2', Blank: '' });
  });

  it('returns an empty record for no tags', () => {
    // Prepare, Act
    const map = toTagMap(undefined);

    // Assess
    expect(map).toEqual({});
  });
});

describe('Function: awsErrorCode', () => {
  it('reads the code of an SDK service error from its name', () => {
    // Prepare
    const error = sdkError('ConcurrentSnapshotLimitExceeded', 'too many');

    // Act
    const code = awsErrorCode(error);

    // Assess
    expect(code).toBe('ConcurrentSnapshotLimitExceeded');
  });

  it('prefers an explicit Code property over the name', () => {
    // Prepare
    const error = Object.assign(new Error('x'), {
      name: 'EC2ServiceException',
      Code: 'Throttling',
    });

    // Act
    const code = awsErrorCode(error);

    // Assess
    expect(code).toBe('Throttling');
  });

  it('falls back to the code of a Node system error whose name is the generic Error', () => {
    // Prepare
    const error = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

    // Act
    const code = awsErrorCode(error);

    // Assess
    expect(code).toBe('ECONNRESET');
  });

  it.each([
    ['a plain Error', new Error('boom')],
    ['a string', 'boom'],
    ['undefined', undefined],
    ['null', null],
  ])('answers UnknownError for %s', (_what, error) => {
    // Prepare, Act
    const code = awsErrorCode(error);

    // Assess
    expect(code).toBe('UnknownError');
  });
});

describe('Function: toAwsCallError', () => {
  it('wraps an SDK error with the action, the AWS code, the HTTP status and the cause', () => {
    // Prepare
    const cause = sdkError('InternalError', 'An internal error has occurred', 503);

    // Act
    const error = toAwsCallError('DescribeInstances', cause);

    // Assess
    expect(error).toBeInstanceOf(AwsCallError);
    expect(error).toBeInstanceOf(SnapkeeperError);
    expect(error).toMatchObject({
      name: 'AwsCallError',
      action: 'DescribeInstances',
      code: 'InternalError',
      httpStatus: 503,
      message: 'DescribeInstances failed: InternalError: An internal error has occurred',
    });
    expect(error.cause).toBe(cause);
  });

  it('keeps an AwsCallError as it is, with its original action', () => {
    // Prepare
    const original = new ConcurrentSnapshotLimitError('i-1');

    // Act
    const error = toAwsCallError('Describe', original);

    // Assess
    expect(error).toBe(original);
    expect(error.action).toBe('CreateSnapshots');
  });

  it('wraps something that is not an Error, with no HTTP status', () => {
    // Prepare, Act
    const error = toAwsCallError('CreateSnapshots', 'socket closed');

    // Assess
    expect(error).toMatchObject({
      action: 'CreateSnapshots',
      code: 'UnknownError',
      httpStatus: undefined,
      message: 'CreateSnapshots failed: UnknownError: socket closed',
    });
  });
});
