import {
  CreateImageCommand,
  CreateTagsCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  type DescribeImagesCommandInput,
  DescribeLaunchTemplateVersionsCommand,
  type EC2Client,
  type Filter,
  type Image,
  paginateDescribeImages,
  paginateDescribeInstances,
  paginateDescribeLaunchTemplates,
  paginateDescribeSnapshots,
  paginateListImagesInRecycleBin,
} from '@aws-sdk/client-ec2';
import type { ImageFacts, ImageRequest } from '../domain/imagePlan.ts';
import type { SnapshotFacts } from '../domain/snapshotFacts.ts';
import { toTagMap } from './Ec2Gateway.ts';
import { awsErrorCode, Ec2ErrorCode, ImageGoneError, toAwsCallError } from './errors.ts';

/** A machine image the account owns, in domain terms. */
export type ImageDetails = ImageFacts;

/** Options of the image gateway. */
export interface Ec2ImageGatewayOptions {
  /**
   * Local-only: create images without TagSpecifications and tag the image and its
   * snapshots afterwards, because the local AWS answers tags at creation with HTTP 500.
   * Production IAM allows tagging only at creation, so this stays off there.
   */
  readonly tagAfterCreate?: boolean;
}

/** At most this many values go in one describe filter. */
const FILTER_VALUES = 200;

/**
 * The image side of EC2: AMIs created with tags at creation, their usage by instances
 * and launch templates, the Recycle Bin, and deregistration with typed outcomes.
 *
 * @example
 * const images = new Ec2ImageGateway(ec2Client);
 */
export class Ec2ImageGateway {
  readonly #client: EC2Client;
  readonly #tagAfterCreate: boolean;

  public constructor(client: EC2Client, options: Ec2ImageGatewayOptions = {}) {
    this.#client = client;
    this.#tagAfterCreate = options.tagAfterCreate ?? false;
  }

  /**
   * The account's images carrying every given tag, disabled ones included.
   *
   * @example
   * await images.listImagesTagged({ 'snapkeeper:managed': 'true' });
   */
  public async listImagesTagged(tags: Readonly<Record<string, string>>): Promise<ImageDetails[]> {
    const filters: Filter[] = Object.entries(tags).map(([key, value]) => ({
      Name: `tag:${key}`,
      Values: [value],
    }));
    return this.#describe({ Owners: ['self'], IncludeDisabled: true, Filters: filters });
  }

  /**
   * Every image the account owns, disabled ones included.
   *
   * @example
   * const all = await images.listOwnImages();
   */
  public async listOwnImages(): Promise<ImageDetails[]> {
    return this.#describe({ Owners: ['self'], IncludeDisabled: true });
  }

  /**
   * Creates an AMI with `CreateImage`, the image and its snapshots tagged in the same
   * call. With the local-only fallback, tags are set right after instead.
   *
   * @example
   * const { imageId } = await images.createImage(decision.request);
   */
  public async createImage(request: ImageRequest): Promise<{ imageId: string }> {
    const tags = request.tags.map((t) => ({ Key: t.Key, Value: t.Value }));
    let imageId: string | undefined;
    try {
      const response = await this.#client.send(
        new CreateImageCommand({
          InstanceId: request.instanceId,
          Name: request.name,
          Description: request.description,
          NoReboot: request.noReboot,
          ...(this.#tagAfterCreate
            ? {}
            : {
                TagSpecifications: [
                  { ResourceType: 'image', Tags: tags },
                  { ResourceType: 'snapshot', Tags: tags },
                ],
              }),
        }),
      );
      imageId = response.ImageId;
    } catch (error) {
      throw toAwsCallError('CreateImage', error);
    }
    if (!imageId) throw toAwsCallError('CreateImage', new Error('CreateImage returned no ImageId'));
    if (this.#tagAfterCreate) {
      try {
        const [image] = await this.#describe({ ImageIds: [imageId] });
        await this.#client.send(
          new CreateTagsCommand({
            Resources: [imageId, ...(image?.snapshotIds ?? [])],
            Tags: tags,
          }),
        );
      } catch (error) {
        throw toAwsCallError('CreateTags', error);
      }
    }
    return { imageId };
  }

  /**
   * Deregisters an image. Already deregistered (`InvalidAMIID.Unavailable`) or unknown
   * (`InvalidAMIID.NotFound`) come back as {@link ImageGoneError}.
   *
   * @throws {ImageGoneError | AwsCallError}
   * @example
   * await images.deregisterImage('ami-0abc');
   */
  public async deregisterImage(imageId: string): Promise<void> {
    try {
      await this.#client.send(new DeregisterImageCommand({ ImageId: imageId }));
    } catch (error) {
      const code = awsErrorCode(error);
      if (code === Ec2ErrorCode.AmiUnavailable || code === Ec2ErrorCode.AmiNotFound) {
        throw new ImageGoneError(imageId, code, { cause: error });
      }
      throw toAwsCallError('DeregisterImage', error);
    }
  }

  /**
   * Which of the given images running or stopped instances were launched from.
   *
   * @example
   * (await images.instancesUsingImages(['ami-1'])).get('ami-1'); // ['i-1']
   */
  public async instancesUsingImages(imageIds: readonly string[]): Promise<Map<string, string[]>> {
    const usage = new Map<string, string[]>();
    try {
      for (let i = 0; i < imageIds.length; i += FILTER_VALUES) {
        const pages = paginateDescribeInstances(
          { client: this.#client, pageSize: 1000 },
          {
            Filters: [
              { Name: 'image-id', Values: imageIds.slice(i, i + FILTER_VALUES) },
              {
                Name: 'instance-state-name',
                Values: ['pending', 'running', 'stopping', 'stopped'],
              },
            ],
          },
        );
        for await (const page of pages) {
          for (const reservation of page.Reservations ?? []) {
            for (const instance of reservation.Instances ?? []) {
              if (!instance.ImageId || !instance.InstanceId) continue;
              usage.set(instance.ImageId, [
                ...(usage.get(instance.ImageId) ?? []),
                `instance ${instance.InstanceId}`,
              ]);
            }
          }
        }
      }
    } catch (error) {
      throw toAwsCallError('DescribeInstances', error);
    }
    return usage;
  }

  /**
   * Images named by the default or latest version of any launch template, plus any
   * extra versions given (those an Auto Scaling group pins, named with the group). The
   * groups that follow a template's `$Default` or `$Latest` are named on those holds.
   *
   * @example
   * await images.imagesInLaunchTemplates([{ launchTemplateId: 'lt-1', version: '3', group: 'web' }]);
   * // 'launch template lt-1 (web-lt) version 3, pinned by Auto Scaling group web'
   */
  public async imagesInLaunchTemplates(
    pinned: readonly {
      launchTemplateId?: string | undefined;
      launchTemplateName?: string | undefined;
      version: string;
      group?: string | undefined;
    }[] = [],
    followed: readonly {
      launchTemplateId?: string | undefined;
      launchTemplateName?: string | undefined;
      version: '$Default' | '$Latest';
      group: string;
    }[] = [],
  ): Promise<Map<string, string[]>> {
    const usage = new Map<string, string[]>();
    const add = (imageId: string | undefined, holder: string) => {
      if (!imageId) return;
      const list = usage.get(imageId) ?? [];
      if (!list.includes(holder)) usage.set(imageId, [...list, holder]);
    };
    try {
      const pages = paginateDescribeLaunchTemplates({ client: this.#client, pageSize: 200 }, {});
      for await (const page of pages) {
        for (const template of page.LaunchTemplates ?? []) {
          if (!template.LaunchTemplateId) continue;
          const versions = await this.#client.send(
            new DescribeLaunchTemplateVersionsCommand({
              LaunchTemplateId: template.LaunchTemplateId,
              Versions: ['$Default', '$Latest'],
            }),
          );
          const listed = versions.LaunchTemplateVersions ?? [];
          const latest =
            template.LatestVersionNumber ??
            Math.max(0, ...listed.map((version) => version.VersionNumber ?? 0));
          for (const version of listed) {
            const groups = followed
              .filter(
                (f) =>
                  (f.launchTemplateId === template.LaunchTemplateId ||
                    (f.launchTemplateName !== undefined &&
                      f.launchTemplateName === template.LaunchTemplateName)) &&
                  (f.version === '$Default'
                    ? version.DefaultVersion === true
                    : version.VersionNumber === latest),
              )
              .map((f) => `${f.group} (${f.version})`);
            add(
              version.LaunchTemplateData?.ImageId,
              `launch template ${template.LaunchTemplateId} (${template.LaunchTemplateName ?? ''}) version ${version.VersionNumber}${version.DefaultVersion ? ' (default)' : ''}${groups.length > 0 ? `, used by Auto Scaling group ${[...new Set(groups)].join(', ')}` : ''}`,
            );
          }
        }
      }
      for (const pin of pinned) {
        const versions = await this.#client.send(
          new DescribeLaunchTemplateVersionsCommand({
            ...(pin.launchTemplateId
              ? { LaunchTemplateId: pin.launchTemplateId }
              : { LaunchTemplateName: pin.launchTemplateName }),
            Versions: [pin.version],
          }),
        );
        for (const version of versions.LaunchTemplateVersions ?? []) {
          add(
            version.LaunchTemplateData?.ImageId,
            `launch template ${version.LaunchTemplateId}${version.LaunchTemplateName ? ` (${version.LaunchTemplateName})` : ''} version ${version.VersionNumber}, pinned by Auto Scaling group ${pin.group ?? '(unnamed)'}`,
          );
        }
      }
    } catch (error) {
      throw toAwsCallError('DescribeLaunchTemplateVersions', error);
    }
    return usage;
  }

  /**
   * Images now in the Recycle Bin (restorable, so their snapshots must stay).
   *
   * @example
   * const inBin = await images.imagesInRecycleBin();
   */
  public async imagesInRecycleBin(): Promise<Set<string>> {
    const ids = new Set<string>();
    try {
      const pages = paginateListImagesInRecycleBin({ client: this.#client, pageSize: 1000 }, {});
      for await (const page of pages) {
        for (const image of page.Images ?? []) if (image.ImageId) ids.add(image.ImageId);
      }
    } catch (error) {
      throw toAwsCallError('ListImagesInRecycleBin', error);
    }
    return ids;
  }

  /**
   * The account's snapshots made by `CreateImage` (by EC2's description), managed or not.
   *
   * @example
   * const made = await images.listImageSnapshots();
   */
  public async listImageSnapshots(): Promise<SnapshotFacts[]> {
    const result: SnapshotFacts[] = [];
    try {
      const pages = paginateDescribeSnapshots(
        { client: this.#client, pageSize: 1000 },
        {
          OwnerIds: ['self'],
          Filters: [{ Name: 'description', Values: ['Created by CreateImage*'] }],
        },
      );
      for await (const page of pages) {
        for (const s of page.Snapshots ?? []) {
          if (!s.SnapshotId) continue;
          result.push({
            snapshotId: s.SnapshotId,
            volumeId: s.VolumeId ?? 'vol-ffffffff',
            state: s.State ?? 'pending',
            startTime: s.StartTime ?? new Date(0),
            tags: toTagMap(s.Tags),
            sizeGiB: s.VolumeSize,
            description: s.Description,
            ownerId: s.OwnerId,
          });
        }
      }
    } catch (error) {
      throw toAwsCallError('DescribeSnapshots', error);
    }
    return result;
  }

  async #describe(input: DescribeImagesCommandInput): Promise<ImageDetails[]> {
    const images: ImageDetails[] = [];
    try {
      if (input.ImageIds) {
        const response = await this.#client.send(new DescribeImagesCommand(input));
        for (const image of response.Images ?? []) images.push(toImageDetails(image));
        return images;
      }
      const pages = paginateDescribeImages({ client: this.#client, pageSize: 1000 }, input);
      for await (const page of pages) {
        for (const image of page.Images ?? [])
          if (image.ImageId) images.push(toImageDetails(image));
      }
    } catch (error) {
      throw toAwsCallError('DescribeImages', error);
    }
    return images;
  }
}

function toImageDetails(image: Image): ImageDetails {
  const mappings = image.BlockDeviceMappings ?? [];
  return {
    imageId: image.ImageId ?? '',
    name: image.Name,
    state: image.State ?? 'unknown',
    creationDate: image.CreationDate ? new Date(image.CreationDate) : undefined,
    tags: toTagMap(image.Tags),
    snapshotIds: mappings.flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [])),
    sizeGiB: mappings.reduce((n, m) => n + (m.Ebs?.VolumeSize ?? 0), 0),
    deregistrationProtected:
      image.DeregistrationProtection !== undefined &&
      image.DeregistrationProtection !== '' &&
      image.DeregistrationProtection !== 'disabled',
    isPublic: image.Public === true,
    ownerId: image.OwnerId,
  };
}
