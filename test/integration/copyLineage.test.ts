import { CreateSnapshotCommand, DescribeSnapshotsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  COPIED_VOLUME_ID,
  copiesReportUnknownVolume,
  type FaultProxy,
  startFaultProxy,
} from '../../harness/faultProxy.ts';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet, ROOT_DEVICE } from '../../harness/localFleet.ts';
import type { CopyReport } from '../../lib/jobs/copyJob.ts';
import { tagsOf, useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

/**
 * Issue 15, defect 2 (copy side), end to end: on AWS every copy reports the volume id
 * vol-ffffffff. Through the fault proxy, every snapshot described in the destination does;
 * the copy job's retention still keeps copy-retain copies per source volume.
 */

// This file's own regions and deployment on the shared moto server.
const SOURCE = 'us-west-1';
const DEST = 'ap-southeast-1';
const DEPLOYMENT = 'itest-lineage';
const DAY = 86_400_000;

type Handler = (event: unknown, context: unknown) => Promise<CopyReport>;

describe('Copy retention by recorded source volume, with copies reporting vol-ffffffff (fault proxy)', () => {
  const savedEnvironment = { ...process.env };
  let proxy: FaultProxy;
  let ec2: EC2Client;
  let destViaProxy: EC2Client;
  let fleet: Map<string, LaunchedInstance>;
  let copy: Handler;
  const root = (name: string) =>
    fleet.get(name)?.volumes.find((v) => v.device === ROOT_DEVICE)?.volumeId ?? '';
  const seed = async (name: string, ageDays: number) =>
    (
      await ec2.send(
        new CreateSnapshotCommand({
          VolumeId: root(name),
          TagSpecifications: [
            {
              ResourceType: 'snapshot',
              Tags: Object.entries({
                'snapkeeper:managed': 'true',
                'snapkeeper:deployment': DEPLOYMENT,
                'snapkeeper:schedule': 'daily',
                'snapkeeper:instance-id': fleet.get(name)?.instanceId ?? '',
                'snapkeeper:created-at': new Date(Date.now() - ageDays * DAY).toISOString(),
              }).map(([Key, Value]) => ({ Key, Value })),
            },
          ],
        }),
      )
    ).SnapshotId ?? '';
  const copiesIn = async () =>
    (
      await destViaProxy.send(
        new DescribeSnapshotsCommand({
          OwnerIds: ['self'],
          Filters: [{ Name: 'tag:snapkeeper:source-region', Values: [SOURCE] }],
        }),
      )
    ).Snapshots ?? [];

  beforeAll(async () => {
    const motoEndpoint = inject('awsEndpoint');
    proxy = await startFaultProxy({ target: motoEndpoint });
    proxy.rules.add(copiesReportUnknownVolume({ regions: [DEST] }));
    useLocalAws(proxy.endpoint, SOURCE, {
      DEPLOYMENT,
      LOCAL_TAG_AFTER_CREATE: 'true',
      RECYCLE_BIN_CHECK: 'false',
    });
    ec2 = new EC2Client({ region: SOURCE, endpoint: motoEndpoint });
    destViaProxy = new EC2Client({ region: DEST, endpoint: proxy.endpoint });
    await useLocalHistoryTable(motoEndpoint, SOURCE);
    const copyTo = { 'snapkeeper:copy-to': DEST, 'snapkeeper:copy-retain': '2' };
    fleet = await launchFleet(ec2, [
      { name: 'web-a', tags: { 'snapkeeper:backup': 'true', ...copyTo } },
      { name: 'web-b', tags: { 'snapkeeper:backup': 'true', ...copyTo } },
    ]);
    for (const name of ['web-a', 'web-b']) for (const age of [3, 2, 1]) await seed(name, age);
    ({ handler: copy } = (await import('../../functions/copy.ts')) as unknown as {
      handler: Handler;
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    for (const key of Object.keys(process.env)) {
      if (!(key in savedEnvironment)) delete process.env[key];
    }
    Object.assign(process.env, savedEnvironment);
  });

  it('copies every source, each copy recording its source volume although EC2 says vol-ffffffff', async () => {
    // Act
    const report = await copy({ copy: true }, lambdaContext());

    // Assess
    expect(report.counts.copied).toBe(6);
    const copies = await copiesIn();
    expect(copies).toHaveLength(6);
    expect(new Set(copies.map((c) => c.VolumeId))).toEqual(new Set([COPIED_VOLUME_ID]));
    expect(new Set(copies.map((c) => tagsOf(c)['snapkeeper:source-volume-id']))).toEqual(
      new Set([root('web-a'), root('web-b')]),
    );
  });

  it('plans, in a dry run, to keep copy-retain copies of each source volume (not of all together)', async () => {
    // Act
    const report = await copy({ copy: true, dryRun: true }, lambdaContext());

    // Assess: 2 of 3 kept per volume, so 2 planned deletions, not 4 (2 kept in total).
    expect(report.destinationRetention.filter((d) => d.action === 'planned')).toHaveLength(2);
    expect(await copiesIn()).toHaveLength(6);
  });

  it('deletes the oldest copy of each source volume, and never copies those sources again', async () => {
    // Act
    const first = await copy({ copy: true }, lambdaContext());
    const second = await copy({ copy: true }, lambdaContext());

    // Assess
    expect(first.destinationRetention.filter((d) => d.action === 'deleted')).toHaveLength(2);
    const left = await copiesIn();
    expect(left).toHaveLength(4);
    for (const volume of [root('web-a'), root('web-b')]) {
      expect(left.filter((c) => tagsOf(c)['snapkeeper:source-volume-id'] === volume)).toHaveLength(
        2,
      );
    }
    expect(second.counts.copied).toBe(0);
    expect(second.copies.filter((c) => c.outcome === 'retired')).toHaveLength(2);
    expect(second.destinationRetention).toEqual([]);
  });
});
