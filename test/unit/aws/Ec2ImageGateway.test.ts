import 'aws-sdk-client-mock-vitest/extend';
import {
  CreateImageCommand,
  CreateTagsCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  type DescribeLaunchTemplateVersionsCommandInput,
  DescribeSnapshotsCommand,
  EC2Client,
  EnableImageBlockPublicAccessCommand,
  GetImageBlockPublicAccessStateCommand,
  type Image,
  ListImagesInRecycleBinCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { Ec2ImageGateway, type Ec2ImageGatewayOptions } from '../../../lib/aws/Ec2ImageGateway.ts';
import {
  AwsCallError,
  Ec2ErrorCode,
  ImageGoneError,
  ImageNameTakenError,
} from '../../../lib/aws/errors.ts';
import type { ImageRequest } from '../../../lib/domain/imagePlan.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const ec2Mock = mockClient(EC2Client);

const OWN_ACCOUNT = '111122223333';
const CREATED = '2026-11-23T03:00:12.000Z';

function newGateway(options: Ec2ImageGatewayOptions = {}): Ec2ImageGateway {
  return new Ec2ImageGateway(new EC2Client({ region: 'eu-west-1' }), options);
}

const TAGS = [
  { Key: 'snapkeeper:managed', Value: 'true' },
  { Key: 'snapkeeper:deployment', Value: 'prod' },
  { Key: 'snapkeeper:schedule', Value: 'daily' },
  { Key: 'snapkeeper:slot', Value: '2026-11-23T03:00:00Z' },
  { Key: 'snapkeeper:instance-id', Value: 'i-0123456789abcdef0' },
  { Key: 'snapkeeper:run-id', Value: 'run-42' },
  { Key: 'snapkeeper:created-at', Value: '2026-11-23T03:00:07Z' },
  { Key: 'Name', Value: 'web-1' },
];

function imageRequest(overrides: Partial<ImageRequest> = {}): ImageRequest {
  return {
    instanceId: 'i-0123456789abcdef0',
    name: 'web-1-daily-20261123T0300Z',
    description: 'snapkeeper daily AMI of i-0123456789abcdef0 (web-1) for 2026-11-23T03:00:00Z',
    noReboot: true,
    tags: TAGS,
    ...overrides,
  };
}

/** An image as DescribeImages returns it: a root and a data volume, an instance store. */
function ec2Image(overrides: Partial<Image> = {}): Image {
  return {
    ImageId: 'ami-0aaa',
    Name: 'web-1-daily-20261123T0300Z',
    State: 'available',
    CreationDate: CREATED,
    OwnerId: OWN_ACCOUNT,
    Public: false,
    Tags: [
      { Key: 'snapkeeper:managed', Value: 'true' },
      { Key: 'Name', Value: 'web-1' },
    ],
    BlockDeviceMappings: [
      { DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-root', VolumeSize: 8 } },
      { DeviceName: '/dev/sdf', Ebs: { SnapshotId: 'snap-data', VolumeSize: 100 } },
      { DeviceName: '/dev/sdb', VirtualName: 'ephemeral0' },
    ],
    ...overrides,
  };
}

afterEach(() => {
  ec2Mock.reset();
});

describe('Class: Ec2ImageGateway', () => {
  describe('Method: createImage', () => {
    it('sends one CreateImage that tags the image and its snapshots at creation, and nothing else', async () => {
      // Prepare
      ec2Mock.on(CreateImageCommand).resolves({ ImageId: 'ami-0new' });
      const gateway = newGateway();

      // Act
      const result = await gateway.createImage(imageRequest());

      // Assess
      expect(result).toEqual({ imageId: 'ami-0new' });
      expect(ec2Mock.calls()).toHaveLength(1);
      expect(
        ec2Mock.commandCalls(CreateImageCommand).map((call) => call.args[0].input),
      ).toStrictEqual([
        {
          InstanceId: 'i-0123456789abcdef0',
          Name: 'web-1-daily-20261123T0300Z',
          Description:
            'snapkeeper daily AMI of i-0123456789abcdef0 (web-1) for 2026-11-23T03:00:00Z',
          NoReboot: true,
          TagSpecifications: [
            { ResourceType: 'image', Tags: TAGS },
            { ResourceType: 'snapshot', Tags: TAGS },
          ],
        },
      ]);
      expect(ec2Mock).not.toHaveReceivedCommand(CreateTagsCommand);
    });

    it('passes NoReboot false when the request allows a reboot', async () => {
      // Prepare
      ec2Mock.on(CreateImageCommand).resolves({ ImageId: 'ami-0new' });
      const gateway = newGateway();

      // Act
      await gateway.createImage(imageRequest({ noReboot: false }));

      // Assess
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(CreateImageCommand, {
        NoReboot: false,
      });
    });

    it('wraps a failed CreateImage as an AwsCallError with its code and status', async () => {
      // Prepare
      ec2Mock
        .on(CreateImageCommand)
        .rejects(sdkError('InvalidAMIName.Duplicate', 'AMI name web-1 is already in use'));
      const gateway = newGateway();

      // Act
      const failure = await gateway.createImage(imageRequest()).catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({
        action: 'CreateImage',
        code: 'InvalidAMIName.Duplicate',
        httpStatus: 400,
      });
      expect(ec2Mock).not.toHaveReceivedCommand(CreateTagsCommand);
    });

    it('fails when CreateImage returns no ImageId', async () => {
      // Prepare
      ec2Mock.on(CreateImageCommand).resolves({});
      const gateway = newGateway();

      // Act
      const failure = await gateway.createImage(imageRequest()).catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({ action: 'CreateImage' });
      expect((failure as Error).message).toContain('no ImageId');
    });

    describe('with the local-only tagAfterCreate fallback', () => {
      it('creates without TagSpecifications, then tags the image and its snapshots in one CreateTags', async () => {
        // Prepare
        ec2Mock.on(CreateImageCommand).resolves({ ImageId: 'ami-0new' });
        ec2Mock
          .on(DescribeImagesCommand)
          .resolves({ Images: [ec2Image({ ImageId: 'ami-0new', State: 'pending' })] });
        ec2Mock.on(CreateTagsCommand).resolves({});
        const gateway = newGateway({ tagAfterCreate: true });

        // Act
        const result = await gateway.createImage(imageRequest());

        // Assess
        expect(result).toEqual({ imageId: 'ami-0new' });
        expect(ec2Mock.calls().map((call) => call.args[0].constructor.name)).toEqual([
          'CreateImageCommand',
          'DescribeImagesCommand',
          'CreateTagsCommand',
        ]);
        expect(ec2Mock.commandCalls(CreateImageCommand)[0]?.args[0].input).toStrictEqual({
          InstanceId: 'i-0123456789abcdef0',
          Name: 'web-1-daily-20261123T0300Z',
          Description:
            'snapkeeper daily AMI of i-0123456789abcdef0 (web-1) for 2026-11-23T03:00:00Z',
          NoReboot: true,
        });
        expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DescribeImagesCommand, {
          ImageIds: ['ami-0new'],
        });
        expect(ec2Mock.commandCalls(CreateTagsCommand)[0]?.args[0].input).toEqual({
          Resources: ['ami-0new', 'snap-root', 'snap-data'],
          Tags: TAGS,
        });
      });

      it('still tags the image when DescribeImages shows no snapshots yet', async () => {
        // Prepare
        ec2Mock.on(CreateImageCommand).resolves({ ImageId: 'ami-0new' });
        ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
        ec2Mock.on(CreateTagsCommand).resolves({});
        const gateway = newGateway({ tagAfterCreate: true });

        // Act
        await gateway.createImage(imageRequest());

        // Assess
        expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(CreateTagsCommand, {
          Resources: ['ami-0new'],
          Tags: TAGS,
        });
      });

      it('wraps a failed CreateTags as an AwsCallError for CreateTags', async () => {
        // Prepare
        ec2Mock.on(CreateImageCommand).resolves({ ImageId: 'ami-0new' });
        ec2Mock.on(DescribeImagesCommand).resolves({ Images: [ec2Image({ ImageId: 'ami-0new' })] });
        ec2Mock.on(CreateTagsCommand).rejects(sdkError('InternalError', 'boom', 500));
        const gateway = newGateway({ tagAfterCreate: true });

        // Act
        const failure = await gateway.createImage(imageRequest()).catch((error: unknown) => error);

        // Assess
        expect(failure).toBeInstanceOf(AwsCallError);
        expect(failure).toMatchObject({ code: 'InternalError', httpStatus: 500 });
      });
    });
  });

  describe('Method: deregisterImage', () => {
    it('sends DeregisterImage for the image', async () => {
      // Prepare
      ec2Mock.on(DeregisterImageCommand).resolves({});
      const gateway = newGateway();

      // Act
      await gateway.deregisterImage('ami-0aaa');

      // Assess
      expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(DeregisterImageCommand, {
        ImageId: 'ami-0aaa',
      });
    });

    it.each([Ec2ErrorCode.AmiUnavailable, Ec2ErrorCode.AmiNotFound])(
      'reports %s as ImageGoneError naming the image',
      async (code) => {
        // Prepare
        const cause = sdkError(code, 'The image id [ami-0aaa] does not exist');
        ec2Mock.on(DeregisterImageCommand).rejects(cause);
        const gateway = newGateway();

        // Act
        const failure = await gateway.deregisterImage('ami-0aaa').catch((error: unknown) => error);

        // Assess
        expect(failure).toBeInstanceOf(ImageGoneError);
        expect(failure).toBeInstanceOf(AwsCallError);
        expect(failure).toMatchObject({ imageId: 'ami-0aaa', code, action: 'DeregisterImage' });
        expect((failure as Error).cause).toBe(cause);
      },
    );

    it('checks the two codes it treats as gone', () => {
      // Prepare
      const codes = [Ec2ErrorCode.AmiUnavailable, Ec2ErrorCode.AmiNotFound];

      // Act
      const values = [...codes];

      // Assess
      expect(values).toEqual(['InvalidAMIID.Unavailable', 'InvalidAMIID.NotFound']);
    });

    it.each([
      ['UnauthorizedOperation', 403],
      ['InvalidAMIID.Malformed', 400],
      ['InternalError', 500],
    ])('reports %s as a plain AwsCallError, not as gone', async (code, status) => {
      // Prepare
      ec2Mock.on(DeregisterImageCommand).rejects(sdkError(code, 'failed', status));
      const gateway = newGateway();

      // Act
      const failure = await gateway.deregisterImage('ami-0aaa').catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).not.toBeInstanceOf(ImageGoneError);
      expect(failure).toMatchObject({ action: 'DeregisterImage', code, httpStatus: status });
    });
  });

  describe('Method: listImagesTagged', () => {
    it('asks for own images, disabled ones included, 1000 a page, with one tag filter per tag', async () => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
      const gateway = newGateway();

      // Act
      await gateway.listImagesTagged({
        'snapkeeper:managed': 'true',
        'snapkeeper:deployment': 'prod',
        'snapkeeper:schedule': 'daily',
      });

      // Assess
      expect(ec2Mock.commandCalls(DescribeImagesCommand).map((c) => c.args[0].input)).toEqual([
        {
          Owners: ['self'],
          IncludeDisabled: true,
          MaxResults: 1000,
          Filters: [
            { Name: 'tag:snapkeeper:managed', Values: ['true'] },
            { Name: 'tag:snapkeeper:deployment', Values: ['prod'] },
            { Name: 'tag:snapkeeper:schedule', Values: ['daily'] },
          ],
        },
      ]);
    });

    it('follows NextToken through every page', async () => {
      // Prepare
      ec2Mock
        .on(DescribeImagesCommand)
        .resolvesOnce({
          Images: [ec2Image({ ImageId: 'ami-0p1a' }), ec2Image({ ImageId: 'ami-0p1b' })],
          NextToken: 'token-page-2',
        })
        .resolvesOnce({ Images: [ec2Image({ ImageId: 'ami-0p2a' })] });
      const gateway = newGateway();

      // Act
      const images = await gateway.listImagesTagged({ 'snapkeeper:managed': 'true' });

      // Assess
      expect(images.map((i) => i.imageId)).toEqual(['ami-0p1a', 'ami-0p1b', 'ami-0p2a']);
      expect(ec2Mock).toHaveReceivedCommandTimes(DescribeImagesCommand, 2);
      expect(ec2Mock).toHaveReceivedNthCommandWith(DescribeImagesCommand, 2, {
        NextToken: 'token-page-2',
        Owners: ['self'],
        IncludeDisabled: true,
      });
    });

    it('maps an image to ImageFacts: state, creation date, tags, snapshots, summed size, owner', async () => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [ec2Image()] });
      const gateway = newGateway();

      // Act
      const images = await gateway.listImagesTagged({ 'snapkeeper:managed': 'true' });

      // Assess
      expect(images).toEqual([
        {
          imageId: 'ami-0aaa',
          name: 'web-1-daily-20261123T0300Z',
          state: 'available',
          creationDate: new Date(CREATED),
          tags: { 'snapkeeper:managed': 'true', Name: 'web-1' },
          snapshotIds: ['snap-root', 'snap-data'],
          sizeGiB: 108,
          deregistrationProtected: false,
          isPublic: false,
          ownerId: OWN_ACCOUNT,
        },
      ]);
    });

    it.each(['pending', 'disabled', 'failed'])(
      'keeps the state of a %s image as EC2 reports it',
      async (state) => {
        // Prepare
        ec2Mock
          .on(DescribeImagesCommand)
          .resolves({ Images: [ec2Image({ State: state as Image['State'] })] });
        const gateway = newGateway();

        // Act
        const [image] = await gateway.listImagesTagged({ 'snapkeeper:managed': 'true' });

        // Assess
        expect(image?.state).toBe(state);
      },
    );

    it('reports an image without state, date, tags or mappings as unknown with none of them', async () => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: 'ami-0bare' }, {}] });
      const gateway = newGateway();

      // Act
      const images = await gateway.listImagesTagged({ 'snapkeeper:managed': 'true' });

      // Assess
      expect(images).toEqual([
        {
          imageId: 'ami-0bare',
          name: undefined,
          state: 'unknown',
          creationDate: undefined,
          tags: {},
          snapshotIds: [],
          sizeGiB: 0,
          deregistrationProtected: false,
          isPublic: false,
          ownerId: undefined,
        },
      ]);
    });

    it.each([
      ['enabled', true],
      ['enabled-with-cooldown', true],
      ['enabled-without-cooldown', true],
      ['disabled', false],
      ['', false],
      [undefined, false],
    ])('reads DeregistrationProtection %j as protected: %s', async (value, expected) => {
      // Prepare
      ec2Mock
        .on(DescribeImagesCommand)
        .resolves({ Images: [ec2Image({ DeregistrationProtection: value })] });
      const gateway = newGateway();

      // Act
      const [image] = await gateway.listImagesTagged({ 'snapkeeper:managed': 'true' });

      // Assess
      expect(image?.deregistrationProtected).toBe(expected);
    });

    it.each([
      [true, true],
      [false, false],
      [undefined, false],
    ])('reads Public %j as isPublic: %s', async (value, expected) => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [ec2Image({ Public: value })] });
      const gateway = newGateway();

      // Act
      const [image] = await gateway.listImagesTagged({ 'snapkeeper:managed': 'true' });

      // Assess
      expect(image?.isPublic).toBe(expected);
    });

    it('wraps a failure as an AwsCallError for DescribeImages', async () => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).rejects(sdkError('UnauthorizedOperation', 'denied', 403));
      const gateway = newGateway();

      // Act
      const failure = await gateway
        .listImagesTagged({ 'snapkeeper:managed': 'true' })
        .catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({ action: 'DescribeImages', code: 'UnauthorizedOperation' });
    });
  });

  describe('Method: listOwnImages', () => {
    it('asks for every own image, disabled ones included, without tag filters', async () => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
      const gateway = newGateway();

      // Act
      await gateway.listOwnImages();

      // Assess
      expect(ec2Mock.commandCalls(DescribeImagesCommand).map((c) => c.args[0].input)).toEqual([
        { Owners: ['self'], IncludeDisabled: true, MaxResults: 1000 },
      ]);
    });

    it('returns the images of both pages, pending ones as pending', async () => {
      // Prepare
      ec2Mock
        .on(DescribeImagesCommand)
        .resolvesOnce({
          Images: [ec2Image({ ImageId: 'ami-0p1', State: 'pending' })],
          NextToken: 'token-page-2',
        })
        .resolvesOnce({ Images: [ec2Image({ ImageId: 'ami-0p2' })] });
      const gateway = newGateway();

      // Act
      const images = await gateway.listOwnImages();

      // Assess
      expect(images.map((i) => [i.imageId, i.state])).toEqual([
        ['ami-0p1', 'pending'],
        ['ami-0p2', 'available'],
      ]);
      expect(ec2Mock).toHaveReceivedNthCommandWith(DescribeImagesCommand, 2, {
        NextToken: 'token-page-2',
      });
    });
  });

  describe('Method: instancesUsingImages', () => {
    it('asks for live instances launched from the images, with image-id and state filters', async () => {
      // Prepare
      ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });
      const gateway = newGateway();

      // Act
      await gateway.instancesUsingImages(['ami-0aaa', 'ami-0bbb']);

      // Assess
      expect(ec2Mock.commandCalls(DescribeInstancesCommand).map((c) => c.args[0].input)).toEqual([
        {
          MaxResults: 1000,
          Filters: [
            { Name: 'image-id', Values: ['ami-0aaa', 'ami-0bbb'] },
            {
              Name: 'instance-state-name',
              Values: ['pending', 'running', 'stopping', 'stopped'],
            },
          ],
        },
      ]);
    });

    it('maps each image to the instances using it, across reservations and pages', async () => {
      // Prepare
      ec2Mock
        .on(DescribeInstancesCommand)
        .resolvesOnce({
          Reservations: [
            { Instances: [{ InstanceId: 'i-1', ImageId: 'ami-0aaa' }] },
            {
              Instances: [{ InstanceId: 'i-2', ImageId: 'ami-0bbb' }, { InstanceId: 'i-nothing' }],
            },
          ],
          NextToken: 'token-page-2',
        })
        .resolvesOnce({
          Reservations: [{ Instances: [{ InstanceId: 'i-3', ImageId: 'ami-0aaa' }] }],
        });
      const gateway = newGateway();

      // Act
      const usage = await gateway.instancesUsingImages(['ami-0aaa', 'ami-0bbb', 'ami-0ccc']);

      // Assess
      expect(usage).toEqual(
        new Map([
          ['ami-0aaa', ['instance i-1', 'instance i-3']],
          ['ami-0bbb', ['instance i-2']],
        ]),
      );
      expect(ec2Mock).toHaveReceivedNthCommandWith(DescribeInstancesCommand, 2, {
        NextToken: 'token-page-2',
      });
    });

    it('sends at most 200 image ids a call', async () => {
      // Prepare
      ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });
      const imageIds = Array.from(
        { length: 450 },
        (_, i) => `ami-${i.toString(16).padStart(8, '0')}`,
      );
      const gateway = newGateway();

      // Act
      await gateway.instancesUsingImages(imageIds);

      // Assess
      const sent = ec2Mock
        .commandCalls(DescribeInstancesCommand)
        .map((c) => c.args[0].input.Filters?.find((f) => f.Name === 'image-id')?.Values);
      expect(sent.map((values) => values?.length)).toEqual([200, 200, 50]);
      expect(sent.flat()).toEqual(imageIds);
    });

    it('makes no call for no images', async () => {
      // Prepare
      const gateway = newGateway();

      // Act
      const usage = await gateway.instancesUsingImages([]);

      // Assess
      expect(usage.size).toBe(0);
      expect(ec2Mock).not.toHaveReceivedCommand(DescribeInstancesCommand);
    });

    it('wraps a failure as an AwsCallError for DescribeInstances', async () => {
      // Prepare
      ec2Mock.on(DescribeInstancesCommand).rejects(sdkError('RequestLimitExceeded', 'slow', 503));
      const gateway = newGateway();

      // Act
      const failure = await gateway
        .instancesUsingImages(['ami-0aaa'])
        .catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({ action: 'DescribeInstances', code: 'RequestLimitExceeded' });
    });
  });

  describe('Method: imagesInLaunchTemplates', () => {
    function versionsFor(input: DescribeLaunchTemplateVersionsCommandInput) {
      const key = `${input.LaunchTemplateId ?? input.LaunchTemplateName}:${(input.Versions ?? []).join(',')}`;
      switch (key) {
        case 'lt-1:$Default,$Latest':
          return {
            LaunchTemplateVersions: [
              {
                LaunchTemplateId: 'lt-1',
                VersionNumber: 3,
                DefaultVersion: true,
                LaunchTemplateData: { ImageId: 'ami-0default' },
              },
              {
                LaunchTemplateId: 'lt-1',
                VersionNumber: 5,
                DefaultVersion: false,
                LaunchTemplateData: { ImageId: 'ami-0latest' },
              },
            ],
          };
        case 'lt-2:$Default,$Latest':
          // $Default and $Latest are the same version: EC2 may list it twice.
          return {
            LaunchTemplateVersions: [
              {
                LaunchTemplateId: 'lt-2',
                VersionNumber: 1,
                DefaultVersion: true,
                LaunchTemplateData: { ImageId: 'ami-0default' },
              },
              {
                LaunchTemplateId: 'lt-2',
                VersionNumber: 1,
                DefaultVersion: true,
                LaunchTemplateData: { ImageId: 'ami-0default' },
              },
            ],
          };
        case 'lt-1:2':
          return {
            LaunchTemplateVersions: [
              {
                LaunchTemplateId: 'lt-1',
                VersionNumber: 2,
                DefaultVersion: false,
                LaunchTemplateData: { ImageId: 'ami-0pinned' },
              },
            ],
          };
        case 'batch:7':
          return {
            LaunchTemplateVersions: [
              {
                LaunchTemplateId: 'lt-9',
                LaunchTemplateName: 'batch',
                VersionNumber: 7,
                DefaultVersion: false,
                LaunchTemplateData: { ImageId: 'ami-0batch' },
              },
            ],
          };
        default:
          return { LaunchTemplateVersions: [] };
      }
    }

    it('reads the $Default and $Latest version of every template, across pages, and the pinned versions given', async () => {
      // Prepare
      ec2Mock
        .on(DescribeLaunchTemplatesCommand)
        .resolvesOnce({
          LaunchTemplates: [{ LaunchTemplateId: 'lt-1', LaunchTemplateName: 'web' }],
          NextToken: 'token-page-2',
        })
        .resolvesOnce({
          LaunchTemplates: [{ LaunchTemplateId: 'lt-2', LaunchTemplateName: 'api' }, {}],
        });
      ec2Mock.on(DescribeLaunchTemplateVersionsCommand).callsFake(versionsFor);
      const gateway = newGateway();

      // Act
      const usage = await gateway.imagesInLaunchTemplates([
        { launchTemplateId: 'lt-1', version: '2', group: 'web-asg' },
        { launchTemplateName: 'batch', version: '7', group: 'batch-asg' },
      ]);

      // Assess
      expect(usage).toEqual(
        new Map([
          [
            'ami-0default',
            [
              'launch template lt-1 (web) version 3 (default)',
              'launch template lt-2 (api) version 1 (default)',
            ],
          ],
          ['ami-0latest', ['launch template lt-1 (web) version 5']],
          ['ami-0pinned', ['launch template lt-1 version 2, pinned by Auto Scaling group web-asg']],
          [
            'ami-0batch',
            ['launch template lt-9 (batch) version 7, pinned by Auto Scaling group batch-asg'],
          ],
        ]),
      );
      expect(ec2Mock).toHaveReceivedCommandTimes(DescribeLaunchTemplatesCommand, 2);
      expect(ec2Mock).toHaveReceivedNthCommandWith(DescribeLaunchTemplatesCommand, 1, {
        MaxResults: 200,
      });
      expect(ec2Mock).toHaveReceivedNthCommandWith(DescribeLaunchTemplatesCommand, 2, {
        NextToken: 'token-page-2',
      });
      expect(
        ec2Mock.commandCalls(DescribeLaunchTemplateVersionsCommand).map((c) => c.args[0].input),
      ).toEqual([
        { LaunchTemplateId: 'lt-1', Versions: ['$Default', '$Latest'] },
        { LaunchTemplateId: 'lt-2', Versions: ['$Default', '$Latest'] },
        { LaunchTemplateId: 'lt-1', Versions: ['2'] },
        { LaunchTemplateName: 'batch', Versions: ['7'] },
      ]);
    });

    it("names the Auto Scaling groups that follow a template's $Default or $Latest on those holds", async () => {
      // Prepare
      ec2Mock.on(DescribeLaunchTemplatesCommand).resolves({
        LaunchTemplates: [
          { LaunchTemplateId: 'lt-1', LaunchTemplateName: 'web', LatestVersionNumber: 5 },
        ],
      });
      ec2Mock.on(DescribeLaunchTemplateVersionsCommand).callsFake(versionsFor);
      const gateway = newGateway();

      // Act
      const usage = await gateway.imagesInLaunchTemplates(
        [],
        [
          { launchTemplateId: 'lt-1', version: '$Default', group: 'web-asg' },
          { launchTemplateName: 'web', version: '$Latest', group: 'canary-asg' },
          { launchTemplateId: 'lt-other', version: '$Latest', group: 'other-asg' },
        ],
      );

      // Assess
      expect(usage).toEqual(
        new Map([
          [
            'ami-0default',
            [
              'launch template lt-1 (web) version 3 (default), used by Auto Scaling group web-asg ($Default)',
            ],
          ],
          [
            'ami-0latest',
            [
              'launch template lt-1 (web) version 5, used by Auto Scaling group canary-asg ($Latest)',
            ],
          ],
        ]),
      );
    });

    it('finds no holder in an account without launch templates', async () => {
      // Prepare
      ec2Mock.on(DescribeLaunchTemplatesCommand).resolves({ LaunchTemplates: [] });
      const gateway = newGateway();

      // Act
      const usage = await gateway.imagesInLaunchTemplates();

      // Assess
      expect(usage.size).toBe(0);
      expect(ec2Mock).not.toHaveReceivedCommand(DescribeLaunchTemplateVersionsCommand);
    });

    it('ignores versions that name no image', async () => {
      // Prepare
      ec2Mock
        .on(DescribeLaunchTemplatesCommand)
        .resolves({ LaunchTemplates: [{ LaunchTemplateId: 'lt-3', LaunchTemplateName: 'x' }] });
      ec2Mock.on(DescribeLaunchTemplateVersionsCommand).resolves({
        LaunchTemplateVersions: [
          { VersionNumber: 1, DefaultVersion: true, LaunchTemplateData: {} },
        ],
      });
      const gateway = newGateway();

      // Act
      const usage = await gateway.imagesInLaunchTemplates();

      // Assess
      expect(usage.size).toBe(0);
    });

    it('wraps a failure as an AwsCallError', async () => {
      // Prepare
      ec2Mock
        .on(DescribeLaunchTemplatesCommand)
        .resolves({ LaunchTemplates: [{ LaunchTemplateId: 'lt-1' }] });
      ec2Mock
        .on(DescribeLaunchTemplateVersionsCommand)
        .rejects(sdkError('UnauthorizedOperation', 'denied', 403));
      const gateway = newGateway();

      // Act
      const failure = await gateway.imagesInLaunchTemplates().catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({ code: 'UnauthorizedOperation' });
    });
  });

  describe('Method: imagesInRecycleBin', () => {
    it('collects the image ids of every page of ListImagesInRecycleBin', async () => {
      // Prepare
      ec2Mock
        .on(ListImagesInRecycleBinCommand)
        .resolvesOnce({
          Images: [{ ImageId: 'ami-0bin1' }, { ImageId: 'ami-0bin2' }, {}],
          NextToken: 'token-page-2',
        })
        .resolvesOnce({ Images: [{ ImageId: 'ami-0bin3' }] });
      const gateway = newGateway();

      // Act
      const inBin = await gateway.imagesInRecycleBin();

      // Assess
      expect(inBin).toEqual(new Set(['ami-0bin1', 'ami-0bin2', 'ami-0bin3']));
      expect(ec2Mock).toHaveReceivedCommandTimes(ListImagesInRecycleBinCommand, 2);
      expect(ec2Mock).toHaveReceivedNthCommandWith(ListImagesInRecycleBinCommand, 1, {
        MaxResults: 1000,
      });
      expect(ec2Mock).toHaveReceivedNthCommandWith(ListImagesInRecycleBinCommand, 2, {
        NextToken: 'token-page-2',
      });
    });

    it('wraps a failure as an AwsCallError for ListImagesInRecycleBin', async () => {
      // Prepare
      ec2Mock
        .on(ListImagesInRecycleBinCommand)
        .rejects(sdkError('UnauthorizedOperation', 'denied', 403));
      const gateway = newGateway();

      // Act
      const failure = await gateway.imagesInRecycleBin().catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({ action: 'ListImagesInRecycleBin' });
    });
  });

  describe('Method: listImageSnapshots', () => {
    it("asks for the account's own snapshots made by CreateImage, by description", async () => {
      // Prepare
      ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
      const gateway = newGateway();

      // Act
      await gateway.listImageSnapshots();

      // Assess
      expect(ec2Mock.commandCalls(DescribeSnapshotsCommand).map((c) => c.args[0].input)).toEqual([
        {
          OwnerIds: ['self'],
          MaxResults: 1000,
          Filters: [{ Name: 'description', Values: ['Created by CreateImage*'] }],
        },
      ]);
    });

    it('maps the snapshots of every page to SnapshotFacts', async () => {
      // Prepare
      ec2Mock
        .on(DescribeSnapshotsCommand)
        .resolvesOnce({
          Snapshots: [
            {
              SnapshotId: 'snap-1',
              VolumeId: 'vol-1',
              State: 'completed',
              StartTime: new Date(CREATED),
              Tags: [{ Key: 'snapkeeper:managed', Value: 'true' }],
              VolumeSize: 8,
              Description: 'Created by CreateImage(i-1) for ami-0aaa',
              OwnerId: OWN_ACCOUNT,
            },
            { VolumeId: 'vol-no-id' },
          ],
          NextToken: 'token-page-2',
        })
        .resolvesOnce({ Snapshots: [{ SnapshotId: 'snap-2' }] });
      const gateway = newGateway();

      // Act
      const snapshots = await gateway.listImageSnapshots();

      // Assess
      expect(snapshots).toEqual([
        {
          snapshotId: 'snap-1',
          volumeId: 'vol-1',
          state: 'completed',
          startTime: new Date(CREATED),
          tags: { 'snapkeeper:managed': 'true' },
          sizeGiB: 8,
          description: 'Created by CreateImage(i-1) for ami-0aaa',
          ownerId: OWN_ACCOUNT,
        },
        {
          snapshotId: 'snap-2',
          volumeId: 'vol-ffffffff',
          state: 'pending',
          startTime: new Date(0),
          tags: {},
          sizeGiB: undefined,
          description: undefined,
          ownerId: undefined,
        },
      ]);
      expect(ec2Mock).toHaveReceivedNthCommandWith(DescribeSnapshotsCommand, 2, {
        NextToken: 'token-page-2',
      });
    });

    it('wraps a failure as an AwsCallError for DescribeSnapshots', async () => {
      // Prepare
      ec2Mock
        .on(DescribeSnapshotsCommand)
        .rejects(sdkError('UnauthorizedOperation', 'denied', 403));
      const gateway = newGateway();

      // Act
      const failure = await gateway.listImageSnapshots().catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({ action: 'DescribeSnapshots' });
    });
  });

  describe('Method: createImage (name taken)', () => {
    it('answers InvalidAMIName.Duplicate with an ImageNameTakenError naming the image name', async () => {
      // Prepare: EC2's answer when an image of the account and region has the name.
      ec2Mock
        .on(CreateImageCommand)
        .rejects(
          sdkError(
            'InvalidAMIName.Duplicate',
            'AMI name web-1-prod-daily-20261123T0300Z is already in use by AMI ami-0earlier',
          ),
        );
      const gateway = newGateway();

      // Act
      const failure = await gateway
        .createImage(imageRequest({ name: 'web-1-prod-daily-20261123T0300Z' }))
        .catch((error: unknown) => error);

      // Assess
      expect(failure).toBeInstanceOf(ImageNameTakenError);
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({
        action: 'CreateImage',
        code: 'InvalidAMIName.Duplicate',
        imageName: 'web-1-prod-daily-20261123T0300Z',
      });
    });
  });

  describe('Method: findImageByName', () => {
    it('asks DescribeImages for own images (disabled ones included) with that exact name', async () => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).resolves({
        Images: [
          { ImageId: 'ami-0earlier', Name: 'web-1-prod-daily-20261123T0300Z', State: 'pending' },
        ],
      });
      const gateway = newGateway();

      // Act
      const image = await gateway.findImageByName('web-1-prod-daily-20261123T0300Z');

      // Assess
      expect(image).toMatchObject({ imageId: 'ami-0earlier', state: 'pending' });
      expect(ec2Mock).toHaveReceivedCommandWith(DescribeImagesCommand, {
        Owners: ['self'],
        IncludeDisabled: true,
        Filters: [{ Name: 'name', Values: ['web-1-prod-daily-20261123T0300Z'] }],
      });
    });

    it('is undefined when no image has the name (or EC2 does not show it yet)', async () => {
      // Prepare
      ec2Mock.on(DescribeImagesCommand).resolves({ Images: [] });
      const gateway = newGateway();

      // Act
      const image = await gateway.findImageByName('web-1-prod-daily-20261123T0300Z');

      // Assess
      expect(image).toBeUndefined();
    });
  });

  describe('Method: imageBlockPublicAccess', () => {
    it.each([
      ['block-new-sharing', 'account'],
      ['block-new-sharing', 'declarative-policy'],
      ['unblocked', 'account'],
    ] as const)(
      'reads the state %s managed by %s from GetImageBlockPublicAccessState',
      async (state, managedBy) => {
        // Prepare: the answer documented by the EC2 API reference.
        ec2Mock
          .on(GetImageBlockPublicAccessStateCommand)
          .resolves({ ImageBlockPublicAccessState: state, ManagedBy: managedBy });
        const gateway = newGateway();

        // Act
        const result = await gateway.imageBlockPublicAccess();

        // Assess
        expect(result).toEqual({ state, managedBy });
      },
    );

    it('is unknown, with the code, when the role may not read it (UnauthorizedOperation); never throws', async () => {
      // Prepare
      ec2Mock
        .on(GetImageBlockPublicAccessStateCommand)
        .rejects(
          sdkError(
            'UnauthorizedOperation',
            'You are not authorized to perform this operation.',
            403,
          ),
        );
      const gateway = newGateway();

      // Act
      const result = await gateway.imageBlockPublicAccess();

      // Assess
      expect(result.state).toBe('unknown');
      expect(result.reason).toContain('UnauthorizedOperation');
    });

    it('is unknown when the endpoint does not implement the call (the local AWS)', async () => {
      // Prepare
      ec2Mock
        .on(GetImageBlockPublicAccessStateCommand)
        .rejects(sdkError('NotImplemented', 'not implemented', 501));
      const gateway = newGateway();

      // Act
      const result = await gateway.imageBlockPublicAccess();

      // Assess
      expect(result).toEqual({
        state: 'unknown',
        reason: 'this EC2 endpoint does not implement GetImageBlockPublicAccessState',
      });
    });

    it('bounds the read, retries included, and is unknown when it takes longer (the local AWS answers HTTP 500, retried)', async () => {
      // Prepare: the SDK rejects with an AbortError when the signal fires.
      ec2Mock
        .on(GetImageBlockPublicAccessStateCommand)
        .rejects(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
      const gateway = new Ec2ImageGateway(new EC2Client({ region: 'eu-west-1' }), {
        settingReadBudgetMs: 250,
      });

      // Act
      const result = await gateway.imageBlockPublicAccess();

      // Assess
      expect(result).toEqual({ state: 'unknown', reason: 'no answer within 250 ms' });
      const call = ec2Mock.commandCalls(GetImageBlockPublicAccessStateCommand)[0];
      const options = (call?.args as unknown[] | undefined)?.[1] as
        | { abortSignal?: AbortSignal }
        | undefined;
      expect(options?.abortSignal).toBeInstanceOf(AbortSignal);
    });

    it('is unknown for a state it does not know', async () => {
      // Prepare
      ec2Mock.on(GetImageBlockPublicAccessStateCommand).resolves({});
      const gateway = newGateway();

      // Act
      const result = await gateway.imageBlockPublicAccess();

      // Assess
      expect(result.state).toBe('unknown');
    });
  });

  describe('Method: enableImageBlockPublicAccess', () => {
    it('asks EnableImageBlockPublicAccess for block-new-sharing', async () => {
      // Prepare
      ec2Mock
        .on(EnableImageBlockPublicAccessCommand)
        .resolves({ ImageBlockPublicAccessState: 'block-new-sharing' });
      const gateway = newGateway();

      // Act
      await gateway.enableImageBlockPublicAccess();

      // Assess
      expect(ec2Mock).toHaveReceivedCommandWith(EnableImageBlockPublicAccessCommand, {
        ImageBlockPublicAccessState: 'block-new-sharing',
      });
    });

    it('wraps a refusal as an AwsCallError for EnableImageBlockPublicAccess', async () => {
      // Prepare
      ec2Mock
        .on(EnableImageBlockPublicAccessCommand)
        .rejects(sdkError('UnauthorizedOperation', 'denied', 403));
      const gateway = newGateway();

      // Act
      const failure = await gateway.enableImageBlockPublicAccess().catch((e: unknown) => e);

      // Assess
      expect(failure).toMatchObject({
        action: 'EnableImageBlockPublicAccess',
        code: 'UnauthorizedOperation',
      });
    });
  });
});
