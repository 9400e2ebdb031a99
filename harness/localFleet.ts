/**
 * A simulated fleet in the local AWS: instances launched with their tags and data volumes.
 * Part of the local AWS harness: imports only lib/ and harness/.
 */
import {
  CreateTagsCommand,
  type EC2Client,
  RunInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';

/** One data volume of a simulated instance. */
export interface VolumeSpec {
  readonly device: string;
  readonly sizeGiB: number;
  readonly tags?: Readonly<Record<string, string>>;
}

/** An instance of the simulated fleet. */
export interface InstanceSpec {
  readonly name: string;
  readonly tags?: Readonly<Record<string, string>>;
  readonly rootSizeGiB?: number;
  readonly dataVolumes?: readonly VolumeSpec[];
  readonly state?: 'running' | 'stopped' | 'terminated';
  readonly instanceType?: string;
}

/** A launched instance and the volumes behind its devices. */
export interface LaunchedInstance {
  readonly name: string;
  readonly instanceId: string;
  readonly volumes: readonly { device: string; volumeId: string; sizeGiB: number }[];
}

/** moto always reports `/dev/sda1` as the root device name, so the fleet uses it. */
export const ROOT_DEVICE = '/dev/sda1';

/**
 * Launches one instance in the local AWS with a root volume and data volumes, tagged
 * as given, then stops or terminates it if asked. Volume tags are set per volume.
 *
 * @example
 * await launchInstance(ec2, { name: 'web-1', tags: { 'snapkeeper:backup': 'true' } });
 */
export async function launchInstance(
  ec2: EC2Client,
  spec: InstanceSpec,
): Promise<LaunchedInstance> {
  const dataVolumes = spec.dataVolumes ?? [];
  const tags = { Name: spec.name, ...(spec.tags ?? {}) };
  const response = await ec2.send(
    new RunInstancesCommand({
      ImageId: 'ami-0123456789abcdef0',
      InstanceType: (spec.instanceType ?? 't3.micro') as never,
      MinCount: 1,
      MaxCount: 1,
      BlockDeviceMappings: [
        { DeviceName: ROOT_DEVICE, Ebs: { VolumeSize: spec.rootSizeGiB ?? 8, VolumeType: 'gp3' } },
        ...dataVolumes.map((v) => ({
          DeviceName: v.device,
          Ebs: { VolumeSize: v.sizeGiB, VolumeType: 'gp3' as const },
        })),
      ],
      TagSpecifications: [
        {
          ResourceType: 'instance',
          Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
        },
      ],
    }),
  );
  const instance = response.Instances?.[0];
  if (!instance?.InstanceId) throw new Error(`RunInstances returned no instance for ${spec.name}`);
  const sizes = new Map<string, number>([
    [ROOT_DEVICE, spec.rootSizeGiB ?? 8],
    ...dataVolumes.map((v) => [v.device, v.sizeGiB] as [string, number]),
  ]);
  const volumes = (instance.BlockDeviceMappings ?? []).flatMap((m) =>
    m.DeviceName && m.Ebs?.VolumeId
      ? [{ device: m.DeviceName, volumeId: m.Ebs.VolumeId, sizeGiB: sizes.get(m.DeviceName) ?? 0 }]
      : [],
  );
  for (const spec2 of dataVolumes) {
    const volume = volumes.find((v) => v.device === spec2.device);
    if (volume && spec2.tags && Object.keys(spec2.tags).length > 0) {
      await ec2.send(
        new CreateTagsCommand({
          Resources: [volume.volumeId],
          Tags: Object.entries(spec2.tags).map(([Key, Value]) => ({ Key, Value })),
        }),
      );
    }
  }
  if (spec.state === 'stopped') {
    await ec2.send(new StopInstancesCommand({ InstanceIds: [instance.InstanceId] }));
  } else if (spec.state === 'terminated') {
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instance.InstanceId] }));
  }
  return { name: spec.name, instanceId: instance.InstanceId, volumes };
}

/** Launches a fleet, one instance after another (moto is single-threaded). */
export async function launchFleet(
  ec2: EC2Client,
  specs: readonly InstanceSpec[],
): Promise<Map<string, LaunchedInstance>> {
  const fleet = new Map<string, LaunchedInstance>();
  for (const spec of specs) fleet.set(spec.name, await launchInstance(ec2, spec));
  return fleet;
}
