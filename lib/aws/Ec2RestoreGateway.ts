import {
  type ArchitectureValues,
  AttachVolumeCommand,
  type BootModeValues,
  CreateTagsCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  type EC2Client,
  type Instance,
  RegisterImageCommand,
  RunInstancesCommand,
  type TpmSupportValues,
  type VolumeType,
} from '@aws-sdk/client-ec2';
import type { Tag } from '../domain/backupPlan.ts';
import { SnapkeeperError } from '../domain/errors.ts';
import { type ImagePlatform, type PlatformFacts, platformFrom } from '../domain/imagePlatform.ts';
import type { TagMap } from '../domain/tagPolicy.ts';
import { toTagMap } from './Ec2Gateway.ts';
import { awsErrorCode, toAwsCallError, UnknownResourceError } from './errors.ts';

/** Moved to `./errors.ts` with the other adapter errors; re-exported for its importers. */
export { UnknownResourceError } from './errors.ts';

/** Everything a restore or duplicate needs to know of an instance. */
export interface InstanceDetails {
  readonly instanceId: string;
  readonly state: string;
  readonly availabilityZone?: string | undefined;
  readonly instanceType?: string | undefined;
  readonly subnetId?: string | undefined;
  readonly securityGroupIds: readonly string[];
  readonly keyName?: string | undefined;
  readonly imageId?: string | undefined;
  readonly rootDeviceName?: string | undefined;
  readonly tags: TagMap;
  readonly volumes: readonly { volumeId: string; deviceName: string }[];
  /** Architecture, boot mode, ENA, virtualization and TPM, as DescribeInstances says. */
  readonly platform: PlatformFacts;
}

/** A volume as a restore sees it. */
export interface VolumeDetails {
  readonly volumeId: string;
  readonly availabilityZone?: string | undefined;
  readonly sizeGiB?: number | undefined;
  readonly volumeType?: string | undefined;
  readonly state: string;
  readonly attachments: readonly { instanceId: string; device: string }[];
}

/** A volume to create from a snapshot (`createVolume`). */
export interface VolumeRequest {
  snapshotId: string;
  availabilityZone: string;
  volumeType: string;
  sizeGiB: number;
  iops?: number | undefined;
  /** gp3 only, MiB/s. */
  throughput?: number | undefined;
  kmsKeyId?: string | undefined;
  tags: readonly Tag[];
}

/** An AMI to register from snapshots (`registerImage`). */
export interface ImageRegistration {
  name: string;
  description: string;
  rootDeviceName: string;
  platform: ImagePlatform;
  mappings: readonly {
    deviceName: string;
    snapshotId: string;
    volumeType?: string | undefined;
  }[];
  tags: readonly Tag[];
}

/** One instance to launch (`runInstance`). */
export interface InstanceLaunch {
  imageId: string;
  instanceType: string;
  subnetId?: string | undefined;
  securityGroupIds: readonly string[];
  keyName?: string | undefined;
  tags: readonly Tag[];
}

/**
 * The EC2 calls of restores and duplicates: describe by id (unknown ids become
 * {@link UnknownResourceError}), create, wait for, attach and delete volumes, register
 * images and launch instances, all tagged at creation.
 *
 * @example
 * const restore = new Ec2RestoreGateway(ec2Client);
 */
export class Ec2RestoreGateway {
  readonly #client: EC2Client;
  readonly #sleep: (ms: number) => Promise<void>;

  public constructor(client: EC2Client, sleep?: (ms: number) => Promise<void>) {
    this.#client = client;
    this.#sleep = sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** One instance, in any state. */
  public async describeInstance(instanceId: string): Promise<InstanceDetails> {
    try {
      const response = await this.#client.send(
        new DescribeInstancesCommand({ InstanceIds: [instanceId] }),
      );
      const instance = response.Reservations?.[0]?.Instances?.[0];
      if (!instance) throw new UnknownResourceError('instance', instanceId);
      return toDetails(instance);
    } catch (error) {
      if (error instanceof UnknownResourceError) throw error;
      if (/^InvalidInstanceID\./.test(awsErrorCode(error))) {
        throw new UnknownResourceError('instance', instanceId, { cause: error });
      }
      throw toAwsCallError('DescribeInstances', error);
    }
  }

  /** One volume, or undefined when it no longer exists. */
  public async describeVolume(volumeId: string): Promise<VolumeDetails | undefined> {
    try {
      const response = await this.#client.send(
        new DescribeVolumesCommand({ Filters: [{ Name: 'volume-id', Values: [volumeId] }] }),
      );
      const volume = response.Volumes?.[0];
      if (!volume?.VolumeId) return undefined;
      return {
        volumeId: volume.VolumeId,
        availabilityZone: volume.AvailabilityZone,
        sizeGiB: volume.Size,
        volumeType: volume.VolumeType,
        state: volume.State ?? 'unknown',
        attachments: (volume.Attachments ?? []).flatMap((a) =>
          a.InstanceId && a.Device ? [{ instanceId: a.InstanceId, device: a.Device }] : [],
        ),
      };
    } catch (error) {
      throw toAwsCallError('DescribeVolumes', error);
    }
  }

  /** Creates a volume from a snapshot, tagged at creation. */
  public async createVolume(request: VolumeRequest): Promise<string> {
    try {
      const response = await this.#client.send(
        new CreateVolumeCommand({
          SnapshotId: request.snapshotId,
          AvailabilityZone: request.availabilityZone,
          VolumeType: request.volumeType as VolumeType,
          Size: request.sizeGiB,
          ...(request.iops ? { Iops: request.iops } : {}),
          ...(request.throughput ? { Throughput: request.throughput } : {}),
          ...(request.kmsKeyId ? { Encrypted: true, KmsKeyId: request.kmsKeyId } : {}),
          TagSpecifications: [
            { ResourceType: 'volume', Tags: request.tags.map((t) => ({ ...t })) },
          ],
        }),
      );
      if (!response.VolumeId) throw new Error('CreateVolume returned no VolumeId');
      return response.VolumeId;
    } catch (error) {
      throw toAwsCallError('CreateVolume', error);
    }
  }

  /**
   * Waits until a volume is `available` (or `in-use`), polling with back-off, at most
   * `timeoutMs`.
   *
   * @returns the milliseconds waited.
   */
  public async waitForVolume(
    volumeId: string,
    timeoutMs: number,
    clock: () => number = Date.now,
  ): Promise<number> {
    const start = clock();
    let delay = 500;
    for (;;) {
      const volume = await this.describeVolume(volumeId);
      if (volume && (volume.state === 'available' || volume.state === 'in-use'))
        return clock() - start;
      if (volume?.state === 'error')
        throw new SnapkeeperError(`volume ${volumeId} went into state error`);
      if (clock() - start > timeoutMs) {
        throw new SnapkeeperError(
          `volume ${volumeId} not available after ${Math.round(timeoutMs / 1000)} s (state ${volume?.state ?? 'missing'})`,
        );
      }
      await this.#sleep(delay);
      delay = Math.min(delay * 2, 5_000);
    }
  }

  /** Attaches a volume to an instance at a device. */
  public async attachVolume(volumeId: string, instanceId: string, device: string): Promise<void> {
    try {
      await this.#client.send(
        new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: device }),
      );
    } catch (error) {
      throw toAwsCallError('AttachVolume', error);
    }
  }

  /** Deletes a volume (the restore drill's). */
  public async deleteVolume(volumeId: string): Promise<void> {
    try {
      await this.#client.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
    } catch (error) {
      throw toAwsCallError('DeleteVolume', error);
    }
  }

  /**
   * The platform of an image (any owner's the account may describe), or undefined when
   * it no longer exists or does not say its architecture.
   *
   * @example
   * await restore.describeImagePlatform('ami-0abc'); // { architecture: 'arm64', bootMode: 'uefi', ... }
   */
  public async describeImagePlatform(imageId: string): Promise<ImagePlatform | undefined> {
    try {
      const response = await this.#client.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
      const image = response.Images?.find((i) => i.ImageId === imageId);
      if (!image) return undefined;
      return platformFrom(
        {
          architecture: image.Architecture,
          bootMode: image.BootMode,
          enaSupport: image.EnaSupport,
          virtualizationType: image.VirtualizationType,
          tpmSupport: image.TpmSupport,
          rootDeviceName: image.RootDeviceName,
        },
        `AMI ${imageId}`,
      );
    } catch (error) {
      if (/^InvalidAMIID\./.test(awsErrorCode(error))) return undefined;
      throw toAwsCallError('DescribeImages', error);
    }
  }

  /**
   * Registers an AMI from snapshots for the source's platform (architecture, boot mode,
   * ENA, virtualization, TPM), tagged at creation (or right after, on the local AWS).
   */
  public async registerImage(request: ImageRegistration, tagAfterCreate = false): Promise<string> {
    const tags = request.tags.map((t) => ({ ...t }));
    try {
      const response = await this.#client.send(
        new RegisterImageCommand({
          Name: request.name,
          Description: request.description,
          RootDeviceName: request.rootDeviceName,
          Architecture: request.platform.architecture as ArchitectureValues,
          VirtualizationType: request.platform.virtualizationType,
          EnaSupport: request.platform.enaSupport,
          ...(request.platform.bootMode
            ? { BootMode: request.platform.bootMode as BootModeValues }
            : {}),
          ...(request.platform.tpmSupport
            ? { TpmSupport: request.platform.tpmSupport as TpmSupportValues }
            : {}),
          BlockDeviceMappings: request.mappings.map((m) => ({
            DeviceName: m.deviceName,
            Ebs: {
              SnapshotId: m.snapshotId,
              VolumeType: (m.volumeType ?? 'gp3') as VolumeType,
              DeleteOnTermination: true,
            },
          })),
          ...(tagAfterCreate ? {} : { TagSpecifications: [{ ResourceType: 'image', Tags: tags }] }),
        }),
      );
      if (!response.ImageId) throw new Error('RegisterImage returned no ImageId');
      if (tagAfterCreate)
        await this.#client.send(
          new CreateTagsCommand({ Resources: [response.ImageId], Tags: tags }),
        );
      return response.ImageId;
    } catch (error) {
      throw toAwsCallError('RegisterImage', error);
    }
  }

  /** Launches one instance, tagged at creation. */
  public async runInstance(request: InstanceLaunch): Promise<string> {
    try {
      const response = await this.#client.send(
        new RunInstancesCommand({
          ImageId: request.imageId,
          InstanceType: request.instanceType as never,
          MinCount: 1,
          MaxCount: 1,
          ...(request.subnetId ? { SubnetId: request.subnetId } : {}),
          ...(request.securityGroupIds.length > 0
            ? { SecurityGroupIds: [...request.securityGroupIds] }
            : {}),
          ...(request.keyName ? { KeyName: request.keyName } : {}),
          TagSpecifications: [
            { ResourceType: 'instance', Tags: request.tags.map((t) => ({ ...t })) },
            { ResourceType: 'volume', Tags: request.tags.map((t) => ({ ...t })) },
          ],
        }),
      );
      const id = response.Instances?.[0]?.InstanceId;
      if (!id) throw new Error('RunInstances returned no instance');
      return id;
    } catch (error) {
      throw toAwsCallError('RunInstances', error);
    }
  }
}

function toDetails(instance: Instance): InstanceDetails {
  return {
    instanceId: instance.InstanceId ?? '',
    state: instance.State?.Name ?? 'unknown',
    availabilityZone: instance.Placement?.AvailabilityZone,
    instanceType: instance.InstanceType,
    subnetId: instance.SubnetId,
    securityGroupIds: (instance.SecurityGroups ?? []).flatMap((g) =>
      g.GroupId ? [g.GroupId] : [],
    ),
    keyName: instance.KeyName,
    imageId: instance.ImageId,
    rootDeviceName: instance.RootDeviceName,
    tags: toTagMap(instance.Tags),
    volumes: (instance.BlockDeviceMappings ?? []).flatMap((m) =>
      m.DeviceName && m.Ebs?.VolumeId
        ? [{ volumeId: m.Ebs.VolumeId, deviceName: m.DeviceName }]
        : [],
    ),
    platform: {
      architecture: instance.Architecture,
      bootMode: instance.BootMode,
      currentBootMode: instance.CurrentInstanceBootMode,
      enaSupport: instance.EnaSupport,
      virtualizationType: instance.VirtualizationType,
      tpmSupport: instance.TpmSupport,
      rootDeviceName: instance.RootDeviceName,
    },
  };
}
