import {
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeVolumesCommand,
  type EC2Client,
  paginateDescribeVolumes,
  type Volume,
  type VolumeType,
} from '@aws-sdk/client-ec2';
import type { TestVolume, TestVolumeRequest } from '../domain/restoreTestPlan.ts';
import { toTagMap } from './Ec2Gateway.ts';
import { awsErrorCode, toAwsCallError } from './errors.ts';

export type { TestVolume } from '../domain/restoreTestPlan.ts';

/** DescribeVolumes page size for the leftover search (the API takes 5-500). */
const PAGE_SIZE = 200;

/**
 * The EC2 calls of restore tests, in domain terms: create a volume from a snapshot
 * (tagged at creation, optionally at a provisioned initialization rate), describe one,
 * delete one, and find the volumes a test left behind by tag. The client passed in is
 * the rate-limited one, so these calls share EC2's request buckets.
 *
 * Shapes followed (EC2 API reference): CreateVolume (`SnapshotId`, `AvailabilityZone`,
 * `VolumeType`, `VolumeInitializationRate` 100-300 MiB/s, `TagSpecifications`; no `Size`
 * or `KmsKeyId`, so the volume takes the snapshot's size and key) answers `VolumeId` and
 * `State: creating`; DescribeVolumes answers `Volumes[].State` (`creating` | `available` |
 * `in-use` | `deleting` | `deleted` | `error`), `Size`, `Encrypted`, `KmsKeyId` (an ARN)
 * and, for an id not yet visible (eventual consistency) or gone,
 * `InvalidVolume.NotFound`; DeleteVolume answers nothing, or `InvalidVolume.NotFound`.
 *
 * @example
 * const tests = new Ec2RestoreTestGateway(runtime.ec2.client);
 * const volumeId = await tests.createTestVolume({ snapshotId: 'snap-1', availabilityZone: 'eu-west-1a', tags });
 */
export class Ec2RestoreTestGateway {
  readonly #client: EC2Client;

  public constructor(client: EC2Client) {
    this.#client = client;
  }

  /**
   * Creates a volume from a snapshot in a zone, tagged at creation.
   *
   * @example
   * await tests.createTestVolume({ snapshotId: 'snap-1', availabilityZone: 'eu-west-1a', volumeInitializationRate: 200, tags });
   */
  public async createTestVolume(request: TestVolumeRequest): Promise<string> {
    try {
      const response = await this.#client.send(
        new CreateVolumeCommand({
          SnapshotId: request.snapshotId,
          AvailabilityZone: request.availabilityZone,
          VolumeType: (request.volumeType ?? 'gp3') as VolumeType,
          ...(request.volumeInitializationRate !== undefined
            ? { VolumeInitializationRate: request.volumeInitializationRate }
            : {}),
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
   * One volume, or undefined when EC2 does not (or no longer, or not yet) know it.
   *
   * @example
   * (await tests.describeTestVolume('vol-1'))?.state; // 'creating'
   */
  public async describeTestVolume(volumeId: string): Promise<TestVolume | undefined> {
    try {
      const response = await this.#client.send(
        new DescribeVolumesCommand({ VolumeIds: [volumeId] }),
      );
      const volume = response.Volumes?.find((v) => v.VolumeId === volumeId);
      return volume ? toTestVolume(volume) : undefined;
    } catch (error) {
      if (awsErrorCode(error) === 'InvalidVolume.NotFound') return undefined;
      throw toAwsCallError('DescribeVolumes', error);
    }
  }

  /**
   * Deletes a volume; one EC2 no longer knows counts as deleted.
   *
   * @returns `deleted`, or `gone` when it was already gone.
   * @example
   * await tests.deleteTestVolume('vol-1'); // 'deleted'
   */
  public async deleteTestVolume(volumeId: string): Promise<'deleted' | 'gone'> {
    try {
      await this.#client.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
      return 'deleted';
    } catch (error) {
      if (awsErrorCode(error) === 'InvalidVolume.NotFound') return 'gone';
      throw toAwsCallError('DeleteVolume', error);
    }
  }

  /**
   * Every volume carrying all the given tags (paginated): the leftovers of earlier tests.
   *
   * @example
   * await tests.listTestVolumes({ 'snapkeeper:restore-test': 'true', 'snapkeeper:deployment': 'prod' });
   */
  public async listTestVolumes(tags: Readonly<Record<string, string>>): Promise<TestVolume[]> {
    const found: TestVolume[] = [];
    try {
      const pages = paginateDescribeVolumes(
        { client: this.#client, pageSize: PAGE_SIZE },
        { Filters: Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] })) },
      );
      for await (const page of pages) {
        for (const volume of page.Volumes ?? [])
          if (volume.VolumeId) found.push(toTestVolume(volume));
      }
    } catch (error) {
      throw toAwsCallError('DescribeVolumes', error);
    }
    return found;
  }
}

function toTestVolume(volume: Volume): TestVolume {
  return {
    volumeId: volume.VolumeId ?? '',
    state: volume.State ?? 'unknown',
    sizeGiB: volume.Size,
    encrypted: volume.Encrypted,
    kmsKeyId: volume.KmsKeyId,
    availabilityZone: volume.AvailabilityZone,
    createTime: volume.CreateTime,
    tags: toTagMap(volume.Tags),
  };
}
