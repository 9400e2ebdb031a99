import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CreateImageCommand,
  CreateSnapshotCommand,
  CreateTagsCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { awsError, type FaultProxy, startFaultProxy } from '../../harness/faultProxy.ts';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet, ROOT_DEVICE } from '../../harness/localFleet.ts';
import {
  createRunHistoryGateway,
  type RunHistoryGateway,
} from '../../lib/aws/RunHistoryGateway.ts';
import { buildResourceTags } from '../../lib/domain/backupPlan.ts';
import { copyTags } from '../../lib/domain/copyPolicy.ts';
import { tagKeys } from '../../lib/domain/tagKeys.ts';
import type { RetentionReport } from '../../lib/jobs/retentionJob.ts';
import type { SweepReport } from '../../lib/jobs/sweepJob.ts';
import { useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

/**
 * Issue 15, defects 2, 3, 4 and 11, end to end: the retention and sweep handlers against
 * the local AWS, EC2 and DynamoDB through the fault proxy. Snapshots are seeded with the
 * tags the creation path writes (`buildResourceTags`, `copyTags`) and recorded in the run
 * history as the backup, AMI and copy jobs record them.
 */
const REGION = 'ap-southeast-3';
const DEPLOYMENT = 'itest-own';
const DAY = 86_400_000;
const keys = tagKeys();

type Handler<R> = (event: unknown, context: unknown) => Promise<R>;

/**
 * Where moto differs from AWS: EC2 reports `vol-ffffffff` as the volume of every
 * cross-region copy (and of snapshots whose volume it does not know); moto reports the
 * source volume. This loopback proxy, in front of the fault proxy, rewrites the volume
 * of the listed snapshots in DescribeSnapshots answers, as AWS would answer.
 */
async function startUnknownVolumeProxy(
  target: string,
  unknown: ReadonlySet<string>,
): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const upstream = new URL(target);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const describing = body.toString('utf8').includes('Action=DescribeSnapshots');
      const forwarded = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
        },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => parts.push(chunk));
          answer.on('end', () => {
            let payload = Buffer.concat(parts);
            if (describing)
              payload = Buffer.from(rewriteVolumes(payload.toString('utf8'), unknown));
            const headers = { ...answer.headers, 'content-length': String(payload.length) };
            res.writeHead(answer.statusCode ?? 500, headers);
            res.end(payload);
          });
        },
      );
      forwarded.on('error', () => res.destroy());
      forwarded.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Sets the `<volumeId>` of each listed snapshot's item to `vol-ffffffff`. */
function rewriteVolumes(xml: string, unknown: ReadonlySet<string>): string {
  let out = xml;
  for (const id of unknown) {
    const at = out.indexOf(`<snapshotId>${id}</snapshotId>`);
    if (at < 0) continue;
    const next = out.indexOf('<snapshotId>', at + 1);
    const end = next < 0 ? out.length : next;
    const volume = /<volumeId>vol-[0-9a-f]+<\/volumeId>/.exec(out.slice(at, end));
    if (volume?.index !== undefined) {
      const start = at + volume.index;
      out = `${out.slice(0, start)}<volumeId>vol-ffffffff</volumeId>${out.slice(start + volume[0].length)}`;
    }
  }
  return out;
}

describe('Ownership and policy of what retention deletes, against the local AWS', () => {
  let proxy: FaultProxy;
  let rewriter: { endpoint: string; stop: () => Promise<void> };
  /** Snapshots EC2 reports on `vol-ffffffff` (as AWS does for copies), whatever moto says. */
  const unknownVolume = new Set<string>();
  let ec2: EC2Client;
  let history: RunHistoryGateway;
  let fleet: Map<string, LaunchedInstance>;
  let retention: Handler<RetentionReport>;
  let amis: Handler<SweepReport>;
  const now = Date.now();
  const seeded = new Map<string, { name: string; ageDays: number; kind: string }>();

  const instanceOf = (name: string): LaunchedInstance => {
    const found = fleet.get(name);
    if (!found) throw new Error(`no instance ${name}`);
    return found;
  };
  const rootOf = (name: string): string =>
    instanceOf(name).volumes.find((v) => v.device === ROOT_DEVICE)?.volumeId ?? '';
  const instanceTags: Record<string, Record<string, string>> = {
    'web-1': { [keys.backup]: 'daily', [keys.retain]: '3', Name: 'web-1' },
    'gone-1': {
      [keys.backup]: 'daily',
      [keys.retain]: '10',
      [keys.retainDays]: '30',
      Name: 'gone-1',
    },
    'src-1': { [keys.backup]: 'daily', Name: 'src-1' },
  };

  /** The tags the backup job writes on a daily snapshot of `name` made `ageDays` ago. */
  const creationTags = (name: string, ageDays: number): Record<string, string> => {
    const createdAt = new Date(now - ageDays * DAY).toISOString();
    return Object.fromEntries(
      buildResourceTags(instanceOf(name).instanceId, instanceTags[name] ?? {}, {
        keys,
        schedule: 'daily',
        slot: createdAt,
        deployment: DEPLOYMENT,
        runId: 'seed',
        createdAt,
        copyTags: [],
      }).map((t) => [t.Key, t.Value]),
    );
  };

  const seed = async (
    name: string,
    ageDays: number,
    kind: string,
    options: {
      tags?: Record<string, string>;
      description?: string;
      record?: 'create-snapshot' | 'copy-snapshot';
    } = {},
  ): Promise<string> => {
    const tags = options.tags ?? creationTags(name, ageDays);
    const made = await ec2.send(
      new CreateSnapshotCommand({
        VolumeId: rootOf(name),
        ...(options.description ? { Description: options.description } : {}),
        TagSpecifications: [
          {
            ResourceType: 'snapshot',
            Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
          },
        ],
      }),
    );
    const id = made.SnapshotId ?? '';
    seeded.set(id, { name, ageDays, kind });
    if (options.record) {
      await history.record({
        runId: 'seed',
        job: options.record === 'copy-snapshot' ? 'copy' : 'backup',
        action: options.record,
        resourceId: id,
        phase: 'after',
        outcome: 'done',
        reason: 'seeded',
        details: { instanceId: instanceOf(name).instanceId, volumeId: rootOf(name) },
      });
    }
    return id;
  };
  const ids = (name: string, kind: string, predicate: (age: number) => boolean = () => true) =>
    [...seeded.entries()]
      .filter(([, s]) => s.name === name && s.kind === kind && predicate(s.ageDays))
      .map(([id]) => id)
      .sort();
  const existing = async (): Promise<Set<string>> => {
    const response = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
    return new Set((response.Snapshots ?? []).map((s) => s.SnapshotId ?? ''));
  };

  let recordedImage = '';
  let unrecordedImage = '';
  const imageSnapshots = new Map<string, string>();

  beforeAll(async () => {
    const motoEndpoint = inject('awsEndpoint');
    proxy = await startFaultProxy({ target: motoEndpoint });
    rewriter = await startUnknownVolumeProxy(proxy.endpoint, unknownVolume);
    // The handlers talk to EC2 and DynamoDB through both proxies; this file arranges and checks moto directly.
    useLocalAws(rewriter.endpoint, REGION, {
      DEPLOYMENT,
      MAX_DELETIONS: '100',
      // The local AWS has no Recycle Bin.
      RECYCLE_BIN_CHECK: 'false',
    });
    ec2 = new EC2Client({ region: REGION, endpoint: motoEndpoint });
    const table = await useLocalHistoryTable(motoEndpoint, REGION);
    history = createRunHistoryGateway(
      { region: REGION, maxAttempts: 3, requestTimeoutMs: 10_000, endpoint: motoEndpoint },
      table,
      400,
    );
    // The history keeps creation records from now on: everything below is judged by them.
    await history.ledgerStart(new Date(now - 60_000));
    fleet = await launchFleet(ec2, [
      { name: 'web-1', tags: instanceTags['web-1'] ?? {} },
      { name: 'gone-1', tags: instanceTags['gone-1'] ?? {}, state: 'terminated' },
      { name: 'src-1', tags: instanceTags['src-1'] ?? {} },
    ]);

    // web-1 (retain=3): five daily sets, recorded as the backup job records them ...
    for (let age = 0; age < 5; age += 1) {
      await seed('web-1', age, 'set', { record: 'create-snapshot' });
    }
    // ... the snapshots CreateImage made of its volume on days 0 and 1 (on AWS: same
    // volume, our tags, EC2's description) ...
    for (let age = 0; age < 2; age += 1) {
      await seed('web-1', age, 'ami-snapshot', {
        description: `Created by CreateImage(${instanceOf('web-1').instanceId}) for ami-0000000000000000${age}`,
      });
    }
    // ... and a snapshot made by hand with our tags, 20 days old, that no run recorded.
    await seed('web-1', 20, 'hand-made');

    // gone-1 (terminated, retain=10 and retain-days=30 recorded on its sets): 14 days.
    // EC2 reports them on vol-ffffffff: the lineage is the volume the history recorded.
    for (let age = 0; age < 14; age += 1) {
      unknownVolume.add(await seed('gone-1', age, 'set', { record: 'create-snapshot' }));
    }

    // Disaster-recovery copies into this region, as the copy job tags and records them:
    // the source's managed, deployment and schedule tags plus the source markers.
    for (let age = 0; age < 12; age += 1) {
      const tags = Object.fromEntries(
        copyTags(
          creationTags('src-1', age),
          keys,
          { volumeId: rootOf('src-1'), snapshotId: `snap-0src${String(age).padStart(13, '0')}` },
          'us-east-2',
          12,
        ).map((t) => [t.Key, t.Value]),
      );
      unknownVolume.add(await seed('src-1', age, 'copy', { tags, record: 'copy-snapshot' }));
    }

    // Two AMIs of web-1 deregistered by hand, their snapshots tagged as ours: only one
    // was recorded as created by the AMI job.
    for (const recorded of [true, false]) {
      const image = await ec2.send(
        new CreateImageCommand({
          InstanceId: instanceOf('web-1').instanceId,
          Name: `web-1-${recorded ? 'recorded' : 'unrecorded'}`,
        }),
      );
      const imageId = image.ImageId ?? '';
      const described = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
      const snapshotId =
        described.Images?.[0]?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId ?? 'missing';
      imageSnapshots.set(imageId, snapshotId);
      await ec2.send(
        new CreateTagsCommand({
          Resources: [snapshotId],
          Tags: [
            { Key: keys.managed, Value: 'true' },
            { Key: keys.deployment, Value: DEPLOYMENT },
          ],
        }),
      );
      if (recorded) {
        recordedImage = imageId;
        await history.record({
          runId: 'seed',
          job: 'amis',
          action: 'create-image',
          resourceId: imageId,
          phase: 'after',
          outcome: 'done',
          reason: 'seeded',
          details: { instanceId: instanceOf('web-1').instanceId },
        });
      } else {
        unrecordedImage = imageId;
      }
      await ec2.send(new DeregisterImageCommand({ ImageId: imageId }));
    }

    ({ handler: retention } = (await import('../../functions/retention.ts')) as unknown as {
      handler: Handler<RetentionReport>;
    });
    ({ handler: amis } = (await import('../../functions/amis.ts')) as unknown as {
      handler: Handler<SweepReport>;
    });
  }, 120_000);

  afterAll(async () => {
    await rewriter?.stop();
    await proxy?.stop();
  });

  it('answers as AWS does: copies and the snapshots of an unknown volume on vol-ffffffff', async () => {
    const asAws = new EC2Client({ region: REGION, endpoint: rewriter.endpoint });
    const response = await asAws.send(
      new DescribeSnapshotsCommand({ OwnerIds: ['self'], SnapshotIds: [...unknownVolume] }),
    );
    expect(new Set(response.Snapshots?.map((s) => s.VolumeId))).toEqual(new Set(['vol-ffffffff']));
  });

  it('deletes nothing and reports partial while the run history cannot be read (BatchGetItem refused)', async () => {
    const before = await existing();
    const rule = proxy.rules.add({
      action: 'BatchGetItem',
      decide: () =>
        awsError('ProvisionedThroughputExceededException', 400, 'Throughput exceeds the capacity'),
    });
    try {
      const report = await retention({ schedule: 'daily' }, lambdaContext());

      expect(await existing()).toEqual(before);
      expect(report.status).toBe('partial');
      expect(report.counts.deleted).toBe(0);
      const web = report.volumes.find((v) => v.volumeId === rootOf('web-1'));
      expect(web?.problems).toContainEqual(expect.stringContaining('run history cannot be read'));
      expect(rule.fired).toBeGreaterThan(0);
    } finally {
      rule.remove();
    }
  });

  it('deletes only recorded sets beyond each volume’s rule, and keeps and reports the rest', async () => {
    const report = await retention({ schedule: 'daily' }, lambdaContext());
    const left = await existing();

    // Defect 4: retain=3 keeps three days of sets; the AMI snapshots take no place.
    expect(ids('web-1', 'set').filter((id) => !left.has(id))).toEqual(
      ids('web-1', 'set', (age) => age >= 3),
    );
    for (const id of ids('web-1', 'ami-snapshot')) {
      expect(left).toContain(id);
      expect(report.excluded).toContainEqual(
        expect.objectContaining({ snapshotId: id, kind: 'image-snapshot' }),
      );
    }
    // Defect 11: the hand-made snapshot with our tags is kept and reported by id.
    const [handMade = ''] = ids('web-1', 'hand-made');
    expect(left).toContain(handMade);
    expect(report.excluded).toContainEqual(
      expect.objectContaining({
        snapshotId: handMade,
        kind: 'unrecorded',
        reason: expect.stringContaining('no record of creating it'),
      }),
    );
    // Defect 3: the terminated instance's sets keep their recorded retain=10, retain-days=30.
    for (const id of ids('gone-1', 'set')) expect(left).toContain(id);
    // Keyed on the recorded volume although EC2 reports vol-ffffffff.
    const gone = report.volumes.find((v) => v.volumeId === rootOf('gone-1'));
    expect(gone?.orphan).toBe(true);
    expect(gone?.kept).toHaveLength(14);
    expect(gone?.rule).toEqual({ count: 10, minAgeDays: 30 });
    // Defect 2: the copies are the copy job's: all 12 stay.
    for (const id of ids('src-1', 'copy')) expect(left).toContain(id);
    expect(report.excluded?.filter((e) => e.kind === 'copy')).toHaveLength(12);
    expect(report.volumes.some((v) => v.volumeId === 'vol-ffffffff')).toBe(false);

    expect(report.counts.deleted).toBe(2);
  });

  it('sweeps the snapshot of a recorded AMI, and only reports that of an AMI never recorded', async () => {
    const report = await amis({ sweep: true }, lambdaContext());
    const left = await existing();

    expect(left).not.toContain(imageSnapshots.get(recordedImage));
    expect(left).toContain(imageSnapshots.get(unrecordedImage));
    expect(report.reportedOnly).toContainEqual(
      expect.objectContaining({
        snapshotId: imageSnapshots.get(unrecordedImage),
        reason: expect.stringContaining(`no record of creating ${unrecordedImage}`),
      }),
    );
  });
});
