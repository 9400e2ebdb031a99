import 'aws-sdk-client-mock-vitest/extend';
import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  type DescribeSnapshotsCommandInput,
  EC2Client,
  type Image,
  type Snapshot,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { Ec2Gateway } from '../../../lib/aws/Ec2Gateway.ts';
import { Ec2ImageGateway } from '../../../lib/aws/Ec2ImageGateway.ts';
import { EC2_BUCKETS } from '../../../lib/aws/rateLimiter.ts';
import type { ImageFacts } from '../../../lib/domain/imagePlan.ts';
import type { ImageToRetire } from '../../../lib/domain/imageRetention.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import {
  type AmiRetirementDependencies,
  type RetirementRun,
  retireImages,
  SNAPSHOT_IDS_PER_DESCRIBE,
} from '../../../lib/jobs/amiRetirement.ts';
import type { ActionRecord } from '../../../lib/jobs/ports.ts';
import { silentLogger } from '../../../lib/jobs/runReport.ts';

const ec2Mock = mockClient(EC2Client);
const keys = tagKeys();
const OURS = {
  [keys.managed]: 'true',
  [keys.deployment]: 'prod',
  [keys.schedule]: 'daily',
};

afterEach(() => {
  ec2Mock.reset();
});

/** An error shaped like the ones the SDK throws for an EC2 error response. */
function sdkError(name: string, message: string, httpStatusCode = 400): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: 'client',
    $metadata: { httpStatusCode },
  });
}

/** `ami-<n>`, an AMI of ours backed by one snapshot `snap-<n>`. */
function image(n: number, overrides: Partial<ImageFacts> = {}): ImageFacts {
  return {
    imageId: `ami-${n}`,
    name: `web-${n}`,
    state: 'available',
    creationDate: new Date('2026-11-20T03:00:05Z'),
    tags: { ...OURS, [keys.instanceId]: 'i-web' },
    snapshotIds: [`snap-${n}`],
    sizeGiB: 8,
    deregistrationProtected: false,
    isPublic: false,
    ...overrides,
  };
}

function retiring(images: readonly ImageFacts[]): ImageToRetire[] {
  return images.map((i) => ({ instanceId: 'i-web', imageId: i.imageId, reason: 'beyond count 1' }));
}

/** EC2's answer to a `snapshot-id` filter: the snapshots that exist, the others left out. */
function answerSnapshots(
  snapshots: ReadonlyMap<string, Snapshot>,
): (input: DescribeSnapshotsCommandInput) => { Snapshots: Snapshot[] } {
  return (input) => {
    const ids = input.Filters?.find((f) => f.Name === 'snapshot-id')?.Values ?? [];
    return { Snapshots: ids.flatMap((id) => snapshots.get(id) ?? []) };
  };
}

function snapshot(id: string, tags: Record<string, string> = OURS): Snapshot {
  return {
    SnapshotId: id,
    VolumeId: 'vol-ffffffff',
    State: 'completed',
    StartTime: new Date('2026-11-20T03:00:05Z'),
    VolumeSize: 8,
    Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
  };
}

/** The stubbed account: the given snapshots exist; every image listed is `listed`. */
function stubAccount(snapshots: readonly Snapshot[], listed: readonly Image[] = []): void {
  const byId = new Map(snapshots.map((s) => [s.SnapshotId ?? '', s]));
  ec2Mock.on(DescribeImagesCommand).resolves({ Images: [...listed] });
  ec2Mock.on(DescribeSnapshotsCommand).callsFake(answerSnapshots(byId));
  ec2Mock.on(DeregisterImageCommand).resolves({});
  ec2Mock.on(DeleteSnapshotCommand).resolves({});
}

function dependencies(deleteConcurrency = 4): AmiRetirementDependencies {
  const client = new EC2Client({ region: 'eu-west-1' });
  return {
    ec2: new Ec2Gateway(client),
    images: new Ec2ImageGateway(client),
    config: { deployment: 'prod', keys, deleteConcurrency, maxInFlight: 64 },
    runId: 'run-1',
    logger: silentLogger,
  };
}

function run(overrides: Partial<RetirementRun> = {}): RetirementRun & { records: ActionRecord[] } {
  const records: ActionRecord[] = [];
  return {
    act: true,
    outOfTime: () => false,
    journal: {
      record: async (entry) => {
        records.push(entry);
      },
    },
    warnings: [],
    records,
    ...overrides,
  };
}

/** The name of each command sent, with its resource: `DeregisterImage ami-1`. */
function sent(): string[] {
  return ec2Mock.calls().map((call) => {
    const command = call.args[0] as { constructor: { name: string }; input: object };
    const input = command.input as { ImageId?: string; SnapshotId?: string };
    const name = command.constructor.name.replace(/Command$/, '');
    return [name, input.ImageId ?? input.SnapshotId].filter(Boolean).join(' ');
  });
}

describe('Function: retireImages (issue 19: at the buckets’ pace)', () => {
  describe('Reads: the snapshots behind all the AMIs described at once', () => {
    it(`describes the snapshots of 450 AMIs in ${Math.ceil(450 / SNAPSHOT_IDS_PER_DESCRIBE)} calls of at most ${SNAPSHOT_IDS_PER_DESCRIBE} ids, not one per AMI`, async () => {
      // Prepare
      const images = Array.from({ length: 450 }, (_, n) => image(n));
      stubAccount(images.map((i) => snapshot(i.snapshotIds[0] ?? '')));

      // Act
      const retired = await retireImages(
        retiring(images),
        new Map(images.map((i) => [i.imageId, i])),
        run(),
        dependencies(),
      );

      // Assess
      const describes = ec2Mock.commandCalls(DescribeSnapshotsCommand);
      expect(describes).toHaveLength(3);
      for (const call of describes) {
        const input = call.args[0].input;
        expect(input.OwnerIds).toEqual(['self']);
        expect(input.SnapshotIds).toBeUndefined();
        expect(input.Filters?.[0]?.Name).toBe('snapshot-id');
        expect(input.Filters?.[0]?.Values?.length).toBeLessThanOrEqual(SNAPSHOT_IDS_PER_DESCRIBE);
      }
      expect(describes.flatMap((c) => c.args[0].input.Filters?.[0]?.Values ?? []).sort()).toEqual(
        images.map((i) => i.snapshotIds[0]).sort(),
      );
      expect(ec2Mock.commandCalls(DescribeImagesCommand)).toHaveLength(1);
      expect(ec2Mock.commandCalls(DeregisterImageCommand)).toHaveLength(450);
      expect(ec2Mock.commandCalls(DeleteSnapshotCommand)).toHaveLength(450);
      expect(retired.flatMap((r) => r.snapshots.map((s) => s.outcome))).toEqual(
        Array.from({ length: 450 }, () => 'deleted'),
      );
    });

    it('describes nothing, deregisters nothing and deletes nothing in a dry run', async () => {
      // Prepare
      const images = [image(1), image(2)];
      stubAccount(images.map((i) => snapshot(i.snapshotIds[0] ?? '')));

      // Act
      const retired = await retireImages(
        retiring(images),
        new Map(images.map((i) => [i.imageId, i])),
        run({ act: false }),
        dependencies(),
      );

      // Assess
      expect(sent()).toEqual([]);
      expect(retired.map((r) => r.outcome)).toEqual(['planned', 'planned']);
      expect(retired.flatMap((r) => r.snapshots.map((s) => s.outcome))).toEqual([
        'planned',
        'planned',
      ]);
    });

    it('skips a snapshot that no longer exists (the filter leaves it out, with no error)', async () => {
      // Prepare: snap-2 was deleted by someone else.
      const images = [image(1), image(2)];
      stubAccount([snapshot('snap-1')]);

      // Act
      const retired = await retireImages(
        retiring(images),
        new Map(images.map((i) => [i.imageId, i])),
        run(),
        dependencies(),
      );

      // Assess
      expect(sent().filter((s) => s.startsWith('DeleteSnapshot'))).toEqual([
        'DeleteSnapshot snap-1',
      ]);
      expect(retired[1]?.snapshots).toEqual([
        { snapshotId: 'snap-2', outcome: 'skipped', reason: 'already gone' },
      ]);
    });

    it('sends only calls the rate limiter has a bucket for', async () => {
      // Prepare
      const images = [image(1), image(2)];
      stubAccount(images.map((i) => snapshot(i.snapshotIds[0] ?? '')));

      // Act
      await retireImages(
        retiring(images),
        new Map(images.map((i) => [i.imageId, i])),
        run(),
        dependencies(),
      );

      // Assess
      const actions = new Set(sent().map((s) => s.split(' ')[0] ?? ''));
      expect([...actions].sort()).toEqual([
        'DeleteSnapshot',
        'DeregisterImage',
        'DescribeImages',
        'DescribeSnapshots',
      ]);
      for (const action of actions) expect(Object.keys(EC2_BUCKETS)).toContain(action);
    });
  });

  describe('Pace: an AMI’s snapshots leave right after its own deregistration', () => {
    it('deletes the snapshot of the first AMI while the second AMI’s deregistration is still in flight', async () => {
      // Prepare: ami-2's DeregisterImage answers only once snap-1's DeleteSnapshot is sent.
      const images = [image(1), image(2)];
      stubAccount(images.map((i) => snapshot(i.snapshotIds[0] ?? '')));
      const events: string[] = [];
      let snap1Sent: () => void = () => undefined;
      const snap1 = new Promise<void>((resolve) => {
        snap1Sent = resolve;
      });
      ec2Mock.on(DeregisterImageCommand).callsFake(async (input: { ImageId: string }) => {
        events.push(`deregister ${input.ImageId}`);
        if (input.ImageId === 'ami-2') await snap1;
        events.push(`deregistered ${input.ImageId}`);
        return {};
      });
      ec2Mock.on(DeleteSnapshotCommand).callsFake(async (input: { SnapshotId: string }) => {
        events.push(`delete ${input.SnapshotId}`);
        if (input.SnapshotId === 'snap-1') snap1Sent();
        return {};
      });

      // Act
      const retired = await retireImages(
        retiring(images),
        new Map(images.map((i) => [i.imageId, i])),
        run(),
        dependencies(1),
      );

      // Assess
      expect(events.indexOf('delete snap-1')).toBeLessThan(events.indexOf('deregistered ami-2'));
      expect(events.indexOf('deregistered ami-2')).toBeLessThan(events.indexOf('delete snap-2'));
      expect(retired.map((r) => r.outcome)).toEqual(['deregistered', 'deregistered']);
    });

    it('uses both buckets at once: the first deletion leaves before the last deregistration', async () => {
      // Prepare: 20 AMIs, 5 ms a DeregisterImage.
      const images = Array.from({ length: 20 }, (_, n) => image(n));
      stubAccount(images.map((i) => snapshot(i.snapshotIds[0] ?? '')));
      ec2Mock.on(DeregisterImageCommand).callsFake(async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return {};
      });

      // Act
      await retireImages(
        retiring(images),
        new Map(images.map((i) => [i.imageId, i])),
        run(),
        dependencies(1),
      );

      // Assess
      const calls = sent();
      const firstDelete = calls.findIndex((c) => c.startsWith('DeleteSnapshot'));
      const lastDeregister = calls.findLastIndex((c) => c.startsWith('DeregisterImage'));
      expect(firstDelete).toBeGreaterThan(-1);
      expect(firstDelete).toBeLessThan(lastDeregister);
    });

    it('records each deregistration and each deletion before and after it', async () => {
      // Prepare
      const images = [image(1)];
      stubAccount([snapshot('snap-1')]);
      const retirement = run();

      // Act
      await retireImages(
        retiring(images),
        new Map(images.map((i) => [i.imageId, i])),
        retirement,
        dependencies(),
      );

      // Assess
      expect(retirement.records.map((r) => `${r.phase} ${r.action} ${r.resourceId}`)).toEqual([
        'before deregister-image ami-1',
        'after deregister-image ami-1',
        'before delete-snapshot snap-1',
        'after delete-snapshot snap-1',
      ]);
    });
  });

  describe('Safety', () => {
    it('keeps a snapshot EC2 refuses to delete because an image uses it (InvalidSnapshot.InUse)', async () => {
      // Prepare
      const images = [image(1)];
      stubAccount([snapshot('snap-1')]);
      ec2Mock
        .on(DeleteSnapshotCommand)
        .rejects(sdkError('InvalidSnapshot.InUse', 'snap-1 is in use by ami-other'));

      // Act
      const [retired] = await retireImages(
        retiring(images),
        new Map(images.map((i) => [i.imageId, i])),
        run(),
        dependencies(),
      );

      // Assess
      expect(retired?.snapshots).toEqual([
        {
          snapshotId: 'snap-1',
          outcome: 'kept',
          reason: 'behind deregistered ami-1; in use by another image (InvalidSnapshot.InUse)',
          sizeGiB: 8,
        },
      ]);
    });

    it('never deletes a snapshot that a still-registered AMI uses, nor one not tagged as ours', async () => {
      // Prepare: ami-golden (not retired) uses snap-1; snap-2 carries no tags of ours.
      const images = [image(1), image(2)];
      stubAccount(
        [snapshot('snap-1'), snapshot('snap-2', { Name: 'hand-made' })],
        [{ ImageId: 'ami-golden', BlockDeviceMappings: [{ Ebs: { SnapshotId: 'snap-1' } }] }],
      );

      // Act
      const retired = await retireImages(
        retiring(images),
        new Map(images.map((i) => [i.imageId, i])),
        run(),
        dependencies(),
      );

      // Assess
      expect(ec2Mock.commandCalls(DeleteSnapshotCommand)).toHaveLength(0);
      expect(retired.flatMap((r) => r.snapshots.map((s) => s.reason))).toEqual([
        'still used by ami-golden',
        'not tagged as created by this deployment',
      ]);
    });

    it('keeps a snapshot a failed deregistration of the same run still uses, and deletes the unshared one', async () => {
      // Prepare: ami-1 and ami-2 share snap-shared; ami-2 cannot be deregistered.
      const images = [
        image(1, { snapshotIds: ['snap-shared', 'snap-1'] }),
        image(2, { snapshotIds: ['snap-shared', 'snap-2'] }),
      ];
      stubAccount(
        [snapshot('snap-shared'), snapshot('snap-1'), snapshot('snap-2')],
        [{ ImageId: 'ami-2', BlockDeviceMappings: [{ Ebs: { SnapshotId: 'snap-shared' } }] }],
      );
      ec2Mock
        .on(DeregisterImageCommand, { ImageId: 'ami-2' })
        .rejects(sdkError('UnauthorizedOperation', 'not allowed'));

      // Act
      const retired = await retireImages(
        retiring(images),
        new Map(images.map((i) => [i.imageId, i])),
        run(),
        dependencies(),
      );

      // Assess
      expect(sent().filter((s) => s.startsWith('DeleteSnapshot'))).toEqual([
        'DeleteSnapshot snap-1',
      ]);
      expect(retired[0]?.snapshots[0]).toMatchObject({
        snapshotId: 'snap-shared',
        outcome: 'kept',
        reason: 'still used by ami-2',
      });
      expect(retired[1]?.snapshots.map((s) => s.outcome)).toEqual(['kept', 'kept']);
    });

    it('keeps every snapshot, with one warning, when the snapshots cannot be described', async () => {
      // Prepare
      const images = [image(1), image(2)];
      stubAccount([snapshot('snap-1'), snapshot('snap-2')]);
      ec2Mock.on(DescribeSnapshotsCommand).rejects(sdkError('UnauthorizedOperation', 'denied'));
      const retirement = run();

      // Act
      const retired = await retireImages(
        retiring(images),
        new Map(images.map((i) => [i.imageId, i])),
        retirement,
        dependencies(),
      );

      // Assess
      expect(ec2Mock.commandCalls(DeleteSnapshotCommand)).toHaveLength(0);
      expect(retired.map((r) => r.outcome)).toEqual(['deregistered', 'deregistered']);
      expect(retired.flatMap((r) => r.snapshots.map((s) => s.outcome))).toEqual(['kept', 'kept']);
      expect(retirement.warnings).toEqual([
        expect.stringMatching(/^the snapshots behind the deregistered AMIs could not be described/),
      ]);
    });
  });
});
