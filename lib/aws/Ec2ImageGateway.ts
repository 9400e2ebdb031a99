import {
  CreateImageCommand,
  CreateTagsCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  type DescribeImagesCommandInput,
  DescribeLaunchTemplateVersionsCommand,
  type EC2Client,
  EnableImageBlockPublicAccessCommand,
  type Filter,
  GetImageBlockPublicAccessStateCommand,
  paginateDescribeImages,
  paginateDescribeInstances,
  paginateDescribeLaunchTemplates,
  paginateDescribeSnapshots,
  paginateListImagesInRecycleBin,
} from '@aws-sdk/client-ec2';
import type { ImageFacts, ImageRequest } from '../domain/imagePlan.ts';
import type { SnapshotFacts } from '../domain/snapshotFacts.ts';
import { toImageFacts, toTagMap } from './Ec2Gateway.ts';
import {
  awsErrorCode,
  Ec2ErrorCode,
  ImageGoneError,
  ImageNameTakenError,
  isNotImplemented,
  toAwsCallError,
} from './errors.ts';

/** EC2's answer to a `CreateImage` whose name an image of the account and region has. */
export const AMI_NAME_DUPLICATE = Ec2ErrorCode.AmiNameDuplicate;

/** Moved to `./errors.ts` with the other adapter errors; re-exported for its importers. */
export { ImageNameTakenError } from './errors.ts';

/**
 * The account-level block public access for AMIs of one region, as
 * `GetImageBlockPublicAccessState` answers it: `block-new-sharing` (no AMI of the
 * account and region can be made public), `unblocked`, or `unknown` when it cannot be
 * read (no permission, or an endpoint without the API, such as the local AWS).
 */
export interface ImageBlockPublicAccess {
  readonly state: 'block-new-sharing' | 'unblocked' | 'unknown';
  /** `account` or `declarative-policy` (an organization's policy sets it). */
  readonly managedBy?: string | undefined;
  /** Why the state is unknown. */
  readonly reason?: string | undefined;
}

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
  /**
   * How long the account-setting read may take, retries included, before its state is
   * reported unknown (default 1.5 s; EC2 answers in well under one). The local AWS answers
   * it with HTTP 500, which the SDK would retry for seconds.
   */
  readonly settingReadBudgetMs?: number;
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
  readonly #settingReadBudgetMs: number;

  public constructor(client: EC2Client, options: Ec2ImageGatewayOptions = {}) {
    this.#client = client;
    this.#tagAfterCreate = options.tagAfterCreate ?? false;
    this.#settingReadBudgetMs = options.settingReadBudgetMs ?? 1_500;
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
   * @throws {ImageNameTakenError} when an image of the account and region has the name.
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
      if (awsErrorCode(error) === AMI_NAME_DUPLICATE)
        throw new ImageNameTakenError(request.name, { cause: error });
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
   * The account's image with this exact name (names are unique per account and region),
   * disabled ones included; undefined when there is none (or EC2 does not show it yet).
   *
   * @example
   * const image = await images.findImageByName('web-1-prod-daily-20261123T0300Z');
   */
  public async findImageByName(name: string): Promise<ImageDetails | undefined> {
    const found = await this.#describe({
      Owners: ['self'],
      IncludeDisabled: true,
      Filters: [{ Name: 'name', Values: [name] }],
    });
    return found.find((image) => image.name === name);
  }

  /**
   * The account-level block public access for AMIs in this client's region. Never
   * throws: when it cannot be read (AccessDenied, or an endpoint that lacks the API, as
   * the local AWS does) the state is `unknown` with the reason, for the report to say.
   *
   * @example
   * const { state } = await images.imageBlockPublicAccess(); // 'block-new-sharing'
   */
  public async imageBlockPublicAccess(): Promise<ImageBlockPublicAccess> {
    try {
      const response = await this.#client.send(new GetImageBlockPublicAccessStateCommand({}), {
        abortSignal: AbortSignal.timeout(this.#settingReadBudgetMs),
      });
      const state = response.ImageBlockPublicAccessState;
      if (state !== 'block-new-sharing' && state !== 'unblocked') {
        return { state: 'unknown', reason: `EC2 answered the state ${JSON.stringify(state)}` };
      }
      return { state, ...(response.ManagedBy ? { managedBy: response.ManagedBy } : {}) };
    } catch (error) {
      const failure = toAwsCallError('GetImageBlockPublicAccessState', error);
      const status = failure.httpStatus;
      return {
        state: 'unknown',
        reason: isNotImplemented(error)
          ? 'this EC2 endpoint does not implement GetImageBlockPublicAccessState'
          : failure.code === 'AbortError' || failure.code === 'TimeoutError'
            ? `no answer within ${this.#settingReadBudgetMs} ms`
            : `${failure.code}${status ? ` (HTTP ${status})` : ''}: ${failure.message.slice(0, 200)}`,
      };
    }
  }

  /**
   * Turns on the account-level block public access for AMIs in this client's region
   * (`block-new-sharing`). EC2 applies it within a few minutes; AMIs already public stay
   * public until made private.
   *
   * @throws {AwsCallError}
   * @example
   * await images.enableImageBlockPublicAccess();
   */
  public async enableImageBlockPublicAccess(): Promise<void> {
    try {
      await this.#client.send(
        new EnableImageBlockPublicAccessCommand({
          ImageBlockPublicAccessState: 'block-new-sharing',
        }),
      );
    } catch (error) {
      throw toAwsCallError('EnableImageBlockPublicAccess', error);
    }
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
        for (const image of response.Images ?? []) images.push(toImageFacts(image));
        return images;
      }
      const pages = paginateDescribeImages({ client: this.#client, pageSize: 1000 }, input);
      for await (const page of pages) {
        for (const image of page.Images ?? []) if (image.ImageId) images.push(toImageFacts(image));
      }
    } catch (error) {
      throw toAwsCallError('DescribeImages', error);
    }
    return images;
  }
}
