import {
  CopyImageCommand,
  CopySnapshotCommand,
  CreateTagsCommand,
  DescribeImageAttributeCommand,
  DescribeSnapshotAttributeCommand,
  type EC2Client,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
  paginateDescribeImages,
  paginateDescribeSnapshots,
} from '@aws-sdk/client-ec2';
import { toTagMap } from './Ec2Gateway.ts';
import { toAwsCallError } from './errors.ts';

/** Who a snapshot or AMI is shared with. */
export interface Grants {
  readonly accounts: readonly string[];
  readonly isPublic: boolean;
}

/** Accounts to grant and revoke; `makePrivate` also removes the public grant (group `all`). */
export interface GrantChange {
  readonly add: readonly string[];
  readonly remove: readonly string[];
  readonly makePrivate?: boolean;
}

/** A snapshot to copy into the destination region (`copySnapshot`). */
export interface SnapshotCopyRequest {
  sourceRegion: string;
  sourceSnapshotId: string;
  description: string;
  kmsKeyId?: string | undefined;
  tags: readonly { Key: string; Value: string }[];
}

/** An AMI to copy into the destination region (`copyImage`). */
export interface ImageCopyRequest {
  sourceRegion: string;
  sourceImageId: string;
  name: string;
  kmsKeyId?: string | undefined;
  tags: readonly { Key: string; Value: string }[];
}

/** A snapshot of this account that anyone may restore. */
export interface PublicSnapshot {
  snapshotId: string;
  tags: Record<string, string>;
  sizeGiB?: number | undefined;
}

/** An AMI of this account that anyone may launch. */
export interface PublicImage {
  imageId: string;
  tags: Record<string, string>;
}

/** The grants in a permission list (`createVolumePermission` or `launchPermission`). */
function grantsOf(
  permissions: readonly { UserId?: string | undefined; Group?: string | undefined }[],
): Grants {
  return {
    accounts: permissions.flatMap((p) => (p.UserId ? [p.UserId] : [])),
    isPublic: permissions.some((p) => p.Group === 'all'),
  };
}

/**
 * Copies, shares and public exposure in EC2: `CopySnapshot`/`CopyImage` are called on
 * the DESTINATION region's client, tagged at creation; grants are read and changed
 * with the attribute calls.
 *
 * @example
 * const copies = new Ec2CopyGateway(destinationClient);
 */
export class Ec2CopyGateway {
  readonly #client: EC2Client;

  public constructor(client: EC2Client) {
    this.#client = client;
  }

  /** Copies a snapshot from `sourceRegion` into this client's region, encrypted when a key is given. */
  public async copySnapshot(request: SnapshotCopyRequest): Promise<string> {
    try {
      const response = await this.#client.send(
        new CopySnapshotCommand({
          SourceRegion: request.sourceRegion,
          SourceSnapshotId: request.sourceSnapshotId,
          Description: request.description.slice(0, 255),
          ...(request.kmsKeyId ? { Encrypted: true, KmsKeyId: request.kmsKeyId } : {}),
          TagSpecifications: [
            { ResourceType: 'snapshot', Tags: request.tags.map((t) => ({ ...t })) },
          ],
        }),
      );
      if (!response.SnapshotId) throw new Error('CopySnapshot returned no SnapshotId');
      return response.SnapshotId;
    } catch (error) {
      throw toAwsCallError('CopySnapshot', error);
    }
  }

  /**
   * Copies an AMI into this client's region, the image and its snapshots tagged at
   * creation; with the local-only fallback (the local AWS ignores CopyImage tags) the
   * image is tagged right after.
   */
  public async copyImage(request: ImageCopyRequest, tagAfterCreate = false): Promise<string> {
    const tags = request.tags.map((t) => ({ ...t }));
    try {
      const response = await this.#client.send(
        new CopyImageCommand({
          SourceRegion: request.sourceRegion,
          SourceImageId: request.sourceImageId,
          Name: request.name,
          ...(request.kmsKeyId ? { Encrypted: true, KmsKeyId: request.kmsKeyId } : {}),
          TagSpecifications: [
            { ResourceType: 'image', Tags: tags },
            { ResourceType: 'snapshot', Tags: tags },
          ],
        }),
      );
      if (!response.ImageId) throw new Error('CopyImage returned no ImageId');
      if (tagAfterCreate) {
        await this.#client.send(
          new CreateTagsCommand({ Resources: [response.ImageId], Tags: tags }),
        );
      }
      return response.ImageId;
    } catch (error) {
      throw toAwsCallError('CopyImage', error);
    }
  }

  /** Who may create volumes from a snapshot. */
  public async snapshotGrants(snapshotId: string): Promise<Grants> {
    try {
      const response = await this.#client.send(
        new DescribeSnapshotAttributeCommand({
          SnapshotId: snapshotId,
          Attribute: 'createVolumePermission',
        }),
      );
      return grantsOf(response.CreateVolumePermissions ?? []);
    } catch (error) {
      throw toAwsCallError('DescribeSnapshotAttribute', error);
    }
  }

  /** Who may launch an AMI. */
  public async imageGrants(imageId: string): Promise<Grants> {
    try {
      const response = await this.#client.send(
        new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: 'launchPermission' }),
      );
      return grantsOf(response.LaunchPermissions ?? []);
    } catch (error) {
      throw toAwsCallError('DescribeImageAttribute', error);
    }
  }

  /**
   * Grants and revokes accounts on a snapshot; `makePrivate` also removes the public
   * grant. Never adds the group `all`.
   */
  public async changeSnapshotGrants(snapshotId: string, change: GrantChange): Promise<void> {
    try {
      if (change.add.length > 0) {
        await this.#client.send(
          new ModifySnapshotAttributeCommand({
            SnapshotId: snapshotId,
            Attribute: 'createVolumePermission',
            OperationType: 'add',
            UserIds: [...change.add],
          }),
        );
      }
      if (change.remove.length > 0 || change.makePrivate) {
        await this.#client.send(
          new ModifySnapshotAttributeCommand({
            SnapshotId: snapshotId,
            Attribute: 'createVolumePermission',
            OperationType: 'remove',
            ...(change.remove.length > 0 ? { UserIds: [...change.remove] } : {}),
            ...(change.makePrivate ? { GroupNames: ['all'] } : {}),
          }),
        );
      }
    } catch (error) {
      throw toAwsCallError('ModifySnapshotAttribute', error);
    }
  }

  /** Grants and revokes accounts on an AMI; `makePrivate` also removes the public grant. */
  public async changeImageGrants(imageId: string, change: GrantChange): Promise<void> {
    try {
      const add = change.add.map((UserId) => ({ UserId }));
      const remove = [
        ...change.remove.map((UserId) => ({ UserId })),
        ...(change.makePrivate ? [{ Group: 'all' as const }] : []),
      ];
      if (add.length > 0 || remove.length > 0) {
        await this.#client.send(
          new ModifyImageAttributeCommand({
            ImageId: imageId,
            LaunchPermission: {
              ...(add.length > 0 ? { Add: add } : {}),
              ...(remove.length > 0 ? { Remove: remove } : {}),
            },
          }),
        );
      }
    } catch (error) {
      throw toAwsCallError('ModifyImageAttribute', error);
    }
  }

  /**
   * The account's public snapshots: asked with `RestorableByUserIds: ['all']`, then each
   * candidate confirmed by its attribute (some EC2 look-alikes ignore the filter).
   */
  public async publicSnapshots(): Promise<PublicSnapshot[]> {
    const found: PublicSnapshot[] = [];
    try {
      const pages = paginateDescribeSnapshots(
        { client: this.#client, pageSize: 1000 },
        { OwnerIds: ['self'], RestorableByUserIds: ['all'] },
      );
      for await (const page of pages) {
        for (const snapshot of page.Snapshots ?? []) {
          if (!snapshot.SnapshotId) continue;
          if (!(await this.snapshotGrants(snapshot.SnapshotId)).isPublic) continue;
          found.push({
            snapshotId: snapshot.SnapshotId,
            tags: { ...toTagMap(snapshot.Tags) },
            sizeGiB: snapshot.VolumeSize,
          });
        }
      }
    } catch (error) {
      throw toAwsCallError('DescribeSnapshots', error);
    }
    return found;
  }

  /** The account's public AMIs. */
  public async publicImages(): Promise<PublicImage[]> {
    const found: PublicImage[] = [];
    try {
      const pages = paginateDescribeImages(
        { client: this.#client, pageSize: 1000 },
        {
          Owners: ['self'],
          IncludeDisabled: true,
          Filters: [{ Name: 'is-public', Values: ['true'] }],
        },
      );
      for await (const page of pages) {
        for (const image of page.Images ?? []) {
          if (!image.ImageId || image.Public !== true) continue;
          found.push({
            imageId: image.ImageId,
            tags: { ...toTagMap(image.Tags) },
          });
        }
      }
    } catch (error) {
      throw toAwsCallError('DescribeImages', error);
    }
    return found;
  }
}
