import {
  CreateImageCommand,
  CreateSnapshotCommand,
  CreateTagsCommand,
  CreateVolumeCommand,
  DescribeImagesCommand,
  DescribeSnapshotAttributeCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  ModifySnapshotAttributeCommand,
  type Snapshot,
} from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet, ROOT_DEVICE } from '../../harness/localFleet.ts';
import type { CopyReport } from '../../lib/jobs/copyJob.ts';
import { tagsOf, useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

const SOURCE = 'us-east-2';
const DEST = 'eu-west-2';
const DEPLOYMENT = 'itest-copy';
const DAY = 86_400_000;

type Handler = (event: unknown, context: unknown) => Promise<CopyReport>;

describe('Handler: functions/copy.ts, copies to another region against the local AWS', () => {
  let ec2: EC2Client;
  let dest: EC2Client;
  let fleet: Map<string, LaunchedInstance>;
  let copy: Handler;
  const root = (name: string) =>
    fleet.get(name)?.volumes.find((v) => v.device === ROOT_DEVICE)?.volumeId ?? '';
  const seed = async (name: string, ageDays: number, extra: Record<string, string> = {}) => {
    const tags = {
      'snapkeeper:managed': 'true',
      'snapkeeper:deployment': DEPLOYMENT,
      'snapkeeper:schedule': 'daily',
      'snapkeeper:instance-id': fleet.get(name)?.instanceId ?? '',
      'snapkeeper:created-at': new Date(Date.now() - ageDays * DAY).toISOString(),
      Name: name,
      ...extra,
    };
    const r = await ec2.send(
      new CreateSnapshotCommand({
        VolumeId: root(name),
        TagSpecifications: [
          {
            ResourceType: 'snapshot',
            Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
          },
        ],
      }),
    );
    return r.SnapshotId ?? '';
  };
  const copiesIn = async (): Promise<Snapshot[]> =>
    (
      await dest.send(
        new DescribeSnapshotsCommand({
          OwnerIds: ['self'],
          Filters: [{ Name: 'tag:snapkeeper:source-region', Values: [SOURCE] }],
        }),
      )
    ).Snapshots ?? [];

  const sources: string[] = [];
  let unmanaged = '';

  beforeAll(async () => {
    const endpoint = inject('awsEndpoint');
    ec2 = useLocalAws(endpoint, SOURCE, {
      DEPLOYMENT,
      LOCAL_TAG_AFTER_CREATE: 'true',
      RECYCLE_BIN_CHECK: 'false',
      MAKE_PRIVATE: 'true',
    });
    dest = new EC2Client({ region: DEST, endpoint });
    await useLocalHistoryTable(endpoint, SOURCE);
    fleet = await launchFleet(ec2, [
      {
        name: 'web-1',
        tags: {
          'snapkeeper:backup': 'true',
          'snapkeeper:copy-to': `${DEST}, ${SOURCE}, mars-1`,
          'snapkeeper:copy-retain': '2',
          'snapkeeper:copy-kms-key': 'alias/dr-backups',
          'snapkeeper:share-with': '111122223333, 12345',
        },
      },
      { name: 'local-1', tags: { 'snapkeeper:backup': 'true' } },
    ]);
    for (const age of [3, 2, 1]) sources.push(await seed('web-1', age));
    await seed('local-1', 1);
    unmanaged =
      (await ec2.send(new CreateSnapshotCommand({ VolumeId: root('local-1') }))).SnapshotId ?? '';
    await ec2.send(
      new ModifySnapshotAttributeCommand({
        SnapshotId: unmanaged,
        Attribute: 'createVolumePermission',
        OperationType: 'add',
        GroupNames: ['all'],
      }),
    );
    ({ handler: copy } = (await import('../../functions/copy.ts')) as unknown as {
      handler: Handler;
    });
  });

  it('plans without copying in a dry run', async () => {
    const report = await copy({ copy: true, dryRun: true }, lambdaContext());

    expect(report.copies.filter((c) => c.kind === 'snapshot').map((c) => c.outcome)).toEqual([
      'planned',
      'planned',
      'planned',
    ]);
    expect(await copiesIn()).toEqual([]);
  });

  it('copies every managed snapshot of an instance to its copy-to region, tagged with its source and encrypted', async () => {
    // Act
    const report = await copy({ copy: true }, lambdaContext());

    // Assess
    const copies = await copiesIn();
    expect(copies.map((c) => tagsOf(c)['snapkeeper:source-snapshot-id']).sort()).toEqual(
      [...sources].sort(),
    );
    for (const c of copies) {
      expect(tagsOf(c)).toMatchObject({
        'snapkeeper:managed': 'true',
        'snapkeeper:deployment': DEPLOYMENT,
        'snapkeeper:schedule': 'daily',
        'snapkeeper:source-volume-id': root('web-1'),
        'snapkeeper:source-region': SOURCE,
        'snapkeeper:copy-retain': '2',
        Name: 'web-1',
      });
    }
    expect(
      report.copies
        .filter((c) => c.outcome === 'copied')
        .every((c) => c.encryptedWith === 'alias/dr-backups'),
    ).toBe(true);
    // Bad tag values are named; the instance without copy-to is not copied.
    expect(report.problems.join(' ')).toContain('is the source region');
    expect(report.problems.join(' ')).toContain('"mars-1" is not a region');
    expect(report.problems.join(' ')).toContain('"12345" is not a 12-digit account id');
    expect(report.copies.every((c) => c.region === DEST)).toBe(true);
  });

  it('copies nothing twice, and keeps copy-retain copies per source volume in the destination', async () => {
    // Act: the copies now exist; retention applies to them with the count they carry (2).
    const report = await copy({ copy: true }, lambdaContext());

    // Assess
    expect(report.counts.copied).toBe(0);
    expect(report.counts.existing).toBe(3);
    const left = await copiesIn();
    expect(left).toHaveLength(2);
    expect(report.destinationRetention.filter((d) => d.action === 'deleted')).toHaveLength(1);
  });

  it('never copies again a source whose copy retention removed', async () => {
    // Act: the oldest source's copy went in the run before (copy-retain=2).
    const report = await copy({ copy: true }, lambdaContext());

    // Assess
    expect(report.counts.copied).toBe(0);
    expect(report.copies.find((c) => c.sourceId === sources[0])).toMatchObject({
      outcome: 'retired',
      region: DEST,
    });
    expect(await copiesIn()).toHaveLength(2);
    expect(report.destinationRetention.filter((d) => d.action === 'deleted')).toEqual([]);
  });

  it('never deletes a snapshot in the destination that carries our copy tags but that it never made', async () => {
    // Prepare: an operator's snapshot there, tagged like an old copy of web-1's root volume,
    // made after the history began keeping creation records (the local AWS keeps whole
    // seconds of StartTime: wait past the second the records began in).
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const volume = await dest.send(
      new CreateVolumeCommand({ AvailabilityZone: `${DEST}a`, Size: 8 }),
    );
    const handMade =
      (
        await dest.send(
          new CreateSnapshotCommand({
            VolumeId: volume.VolumeId,
            TagSpecifications: [
              {
                ResourceType: 'snapshot',
                Tags: Object.entries({
                  'snapkeeper:managed': 'true',
                  'snapkeeper:deployment': DEPLOYMENT,
                  'snapkeeper:schedule': 'daily',
                  'snapkeeper:instance-id': fleet.get('web-1')?.instanceId ?? '',
                  'snapkeeper:created-at': new Date(Date.now() - 9 * DAY).toISOString(),
                  'snapkeeper:source-volume-id': root('web-1'),
                  'snapkeeper:source-snapshot-id': 'snap-0123456789abcdef0',
                  'snapkeeper:source-region': SOURCE,
                  'snapkeeper:copy-retain': '2',
                }).map(([Key, Value]) => ({ Key, Value })),
              },
            ],
          }),
        )
      ).SnapshotId ?? '';

    // Act
    const report = await copy({ copy: true }, lambdaContext());

    // Assess: kept and reported; the copies the job made are untouched too (2 of 2).
    expect(report.destinationRetention).toEqual([
      expect.objectContaining({
        resourceId: handMade,
        action: 'skipped',
        reason: expect.stringContaining('no record of creating it'),
      }),
    ]);
    expect((await copiesIn()).map((c) => c.SnapshotId)).toContain(handMade);
    expect(await copiesIn()).toHaveLength(3);
  });

  it('shares the snapshots with exactly the listed accounts', async () => {
    const grants = await ec2.send(
      new DescribeSnapshotAttributeCommand({
        SnapshotId: sources[0],
        Attribute: 'createVolumePermission',
      }),
    );

    expect(grants.CreateVolumePermissions?.map((p) => p.UserId)).toEqual(['111122223333']);
  });

  it('revokes the accounts no longer listed, and grants the new ones', async () => {
    // Prepare
    await ec2.send(
      new CreateTagsCommand({
        Resources: [fleet.get('web-1')?.instanceId ?? ''],
        Tags: [{ Key: 'snapkeeper:share-with', Value: '444455556666' }],
      }),
    );

    // Act
    const report = await copy({ copy: true }, lambdaContext());

    // Assess
    const grants = await ec2.send(
      new DescribeSnapshotAttributeCommand({
        SnapshotId: sources[0],
        Attribute: 'createVolumePermission',
      }),
    );
    expect(grants.CreateVolumePermissions?.map((p) => p.UserId)).toEqual(['444455556666']);
    expect(report.shares.find((s) => s.resourceId === sources[0])).toMatchObject({
      added: ['444455556666'],
      removed: ['111122223333'],
      outcome: 'changed',
    });
  });

  it('reports a public snapshot as a finding, and leaves one it did not create public', async () => {
    const report = await copy({ copy: true }, lambdaContext());

    expect(report.publicFindings).toEqual([
      { resourceId: unmanaged, kind: 'snapshot', managed: false, madePrivate: false },
    ]);
    expect(report.status).toBe('partial');
  });

  it('reports the block public access for AMIs as unknown where the local AWS lacks the API, and goes on', async () => {
    const report = await copy({ copy: true }, lambdaContext());

    expect(report.amiBlockPublicAccess.length).toBeGreaterThan(0);
    for (const region of report.amiBlockPublicAccess) {
      expect(region).toMatchObject({ state: 'unknown', reason: expect.any(String) });
    }
    expect(report.problems.join('; ')).not.toContain('block public access');
  });

  it('copies a managed AMI to the region, tagged with its source', async () => {
    // Prepare
    const image = await ec2.send(
      new CreateImageCommand({ InstanceId: fleet.get('web-1')?.instanceId, Name: 'web-1-daily-x' }),
    );
    await ec2.send(
      new CreateTagsCommand({
        Resources: [image.ImageId ?? ''],
        Tags: Object.entries({
          'snapkeeper:managed': 'true',
          'snapkeeper:deployment': DEPLOYMENT,
          'snapkeeper:schedule': 'daily',
          'snapkeeper:instance-id': fleet.get('web-1')?.instanceId ?? '',
          'snapkeeper:created-at': new Date().toISOString(),
        }).map(([Key, Value]) => ({ Key, Value })),
      }),
    );

    // On AWS, CreateImage tags the AMI's snapshots like the AMI: they look like a set.
    const described = await ec2.send(
      new DescribeImagesCommand({ ImageIds: [image.ImageId ?? ''] }),
    );
    const behind = (described.Images?.[0]?.BlockDeviceMappings ?? []).flatMap((m) =>
      m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [],
    );
    expect(behind.length).toBeGreaterThan(0);
    await ec2.send(
      new CreateTagsCommand({
        Resources: behind,
        Tags: Object.entries({
          'snapkeeper:managed': 'true',
          'snapkeeper:deployment': DEPLOYMENT,
          'snapkeeper:schedule': 'daily',
          'snapkeeper:instance-id': fleet.get('web-1')?.instanceId ?? '',
          'snapkeeper:created-at': new Date().toISOString(),
        }).map(([Key, Value]) => ({ Key, Value })),
      }),
    );

    // Act
    const report = await copy({ copy: true }, lambdaContext());

    // Assess: the AMI is copied, and its snapshots only with it (once).
    expect(report.copies.filter((c) => behind.includes(c.sourceId))).toEqual([]);
    expect(
      (await copiesIn()).filter((c) =>
        behind.includes(tagsOf(c)['snapkeeper:source-snapshot-id'] ?? ''),
      ),
    ).toEqual([]);
    const made = report.copies.find((c) => c.kind === 'image' && c.sourceId === image.ImageId);
    expect(made).toMatchObject({ outcome: 'copied', region: DEST });
    const copied = await dest.send(new DescribeImagesCommand({ ImageIds: [made?.copyId ?? ''] }));
    expect(tagsOf(copied.Images?.[0] ?? {})).toMatchObject({
      'snapkeeper:managed': 'true',
      'snapkeeper:source-image-id': image.ImageId,
      'snapkeeper:source-region': SOURCE,
    });
  });

  it('copies only what an EBS Snapshot Notification names', async () => {
    const fresh = await seed('web-1', 0);
    const event = {
      version: '0',
      id: 'x',
      'detail-type': 'EBS Snapshot Notification',
      source: 'aws.ec2',
      account: '123456789012',
      time: new Date().toISOString(),
      region: SOURCE,
      resources: [`arn:aws:ec2::${SOURCE}:snapshot/${fresh}`],
      detail: {
        event: 'createSnapshot',
        result: 'succeeded',
        cause: '',
        snapshot_id: `arn:aws:ec2::${SOURCE}:snapshot/${fresh}`,
        source: 'arn:aws:ec2::us-east-2:volume/vol-x',
      },
    };

    const report = await copy(event, lambdaContext());

    expect(report.copies.map((c) => [c.sourceId, c.outcome])).toEqual([[fresh, 'copied']]);
    expect(
      await copy({ ...event, detail: { ...event.detail, result: 'failed' } }, lambdaContext()),
    ).toMatchObject({ status: 'ignored' });
  });
});
