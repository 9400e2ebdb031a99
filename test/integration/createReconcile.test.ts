import {
  CopySnapshotCommand,
  CreateSnapshotCommand,
  DescribeSnapshotsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import {
  always,
  awsError,
  COPIED_VOLUME_ID,
  copiesReportUnknownVolume,
  eventualConsistency,
  type FaultProxy,
  firstCalls,
  loseAnswer,
  startFaultProxy,
} from '../../harness/faultProxy.ts';
import { forInstance } from '../../harness/faultRules.ts';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet } from '../../harness/localFleet.ts';
import {
  extraSnapshotsOfSlot,
  KEYS,
  snapshotIdsOf,
  snapshotSetsOfSlot,
} from '../../harness/measurements.ts';
import {
  createRunHistoryGateway,
  type RunHistoryGateway,
} from '../../lib/aws/RunHistoryGateway.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import { useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

/**
 * Issue 15 #7, #8, #9 end to end: the backup handler against the local AWS through the
 * fault proxy, with EC2's eventual consistency after creates and lost answers of
 * creates that took effect simulated where moto differs from AWS.
 */

// This file's own regions and deployment on the shared moto server.
const REGION = 'ap-northeast-3';
const COPY_REGION = 'eu-south-2';
const DEPLOYMENT = 'itest-reconcile';
/** One schedule (and one instance) per scenario, so that each slot has one story. */
const SCHEDULES = [
  { name: 'consistency', cron: 'cron(0 1 * * ? *)', timezone: 'UTC', retain: 7 },
  { name: 'describe-down', cron: 'cron(0 2 * * ? *)', timezone: 'UTC', retain: 7 },
  { name: 'undeletable', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 7 },
  { name: 'all-lost', cron: 'cron(0 4 * * ? *)', timezone: 'UTC', retain: 7 },
];
/** Set before the handlers are imported (they read the environment once). */
const ENVIRONMENT = {
  DEPLOYMENT,
  SCHEDULES: JSON.stringify(SCHEDULES),
  DEFAULT_SCHEDULE: 'consistency',
  AWS_MAX_ATTEMPTS: '3',
  AWS_REQUEST_TIMEOUT_MS: '1500',
  SNAPSHOT_RATE_RETRY_SECONDS: '0',
  MAX_DELETIONS: '50',
};

type Handler = (event: unknown, context: Context) => Promise<unknown>;

/** The latest fire time of a daily `cron(0 H * * ? *)` at or before now: a slot the handler accepts. */
function latestSlot(hourUtc: number): string {
  const now = new Date();
  const slot = new Date(
    Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), hourUtc),
  );
  if (slot.getTime() > now.getTime()) slot.setUTCDate(slot.getUTCDate() - 1);
  return slot.toISOString().replace('.000Z', 'Z');
}

describe('Create reconciliation: lost CreateSnapshots answers and eventually consistent describes, through the fault proxy', () => {
  const savedEnvironment = { ...process.env };
  let proxy: FaultProxy;
  /** Straight to moto: arranging and checking, never faulted. */
  let ec2: EC2Client;
  let history: RunHistoryGateway;
  let backup: Handler;
  let fleet: Map<string, LaunchedInstance>;

  const instance = (name: string): LaunchedInstance => {
    const found = fleet.get(name);
    if (!found) throw new Error(`no instance ${name}`);
    return found;
  };
  const backupOf = async (schedule: string, slot: string) =>
    (await backup({ schedule, scheduledTime: slot }, lambdaContext())) as BackupReport;
  /** The snapshot ids the run history holds a `create-snapshot` record of, for a run. */
  const recordedCreates = async (runId: string) =>
    (await history.runActions(runId))
      .filter((a) => a.action === 'create-snapshot')
      .map((a) => a.resourceId)
      .sort();

  beforeAll(async () => {
    const motoEndpoint = inject('awsEndpoint');
    proxy = await startFaultProxy({ target: motoEndpoint });
    useLocalAws(proxy.endpoint, REGION, ENVIRONMENT);
    ec2 = new EC2Client({ region: REGION, endpoint: motoEndpoint });
    const table = await useLocalHistoryTable(motoEndpoint, REGION);
    history = createRunHistoryGateway(
      { region: REGION, maxAttempts: 3, requestTimeoutMs: 10_000, endpoint: motoEndpoint },
      table,
      400,
    );
    fleet = await launchFleet(ec2, [
      {
        name: 'consistency-1',
        tags: { [KEYS.backup]: 'consistency' },
        dataVolumes: [{ device: '/dev/sdf', sizeGiB: 20 }],
      },
      { name: 'describe-down-1', tags: { [KEYS.backup]: 'describe-down' } },
      { name: 'undeletable-1', tags: { [KEYS.backup]: 'undeletable' } },
      {
        name: 'all-lost-1',
        tags: { [KEYS.backup]: 'all-lost' },
        dataVolumes: [{ device: '/dev/sdf', sizeGiB: 5 }],
      },
    ]);
    ({ handler: backup } = (await import('../../functions/backup.ts')) as { handler: Handler });
  });

  afterAll(async () => {
    await proxy?.stop();
    ec2?.destroy();
    for (const key of Object.keys(process.env)) {
      if (!(key in savedEnvironment)) delete process.env[key];
    }
    Object.assign(process.env, savedEnvironment);
  });

  beforeEach(() => {
    proxy.rules.clear();
    proxy.resetStats();
  });

  describe('the fault proxy against moto', () => {
    it('hides a new snapshot from the first two describes, and reports a copy’s volume as vol-ffffffff', async () => {
      // Prepare
      const lag = eventualConsistency({ describes: 2 });
      const copies = copiesReportUnknownVolume();
      proxy.rules.add(lag);
      proxy.rules.add(copies);
      const viaProxy = new EC2Client({ region: REGION, endpoint: proxy.endpoint });
      const inCopyRegion = new EC2Client({ region: COPY_REGION, endpoint: proxy.endpoint });
      const volumeId = instance('describe-down-1').volumes[0]?.volumeId ?? '';
      const describe = async (client: EC2Client, snapshotId: string) =>
        (
          await client.send(
            new DescribeSnapshotsCommand({
              OwnerIds: ['self'],
              Filters: [{ Name: 'snapshot-id', Values: [snapshotId] }],
            }),
          )
        ).Snapshots ?? [];

      // Act
      const { SnapshotId: made = '' } = await viaProxy.send(
        new CreateSnapshotCommand({ VolumeId: volumeId, Description: 'proxy probe' }),
      );
      const listed = [
        (await describe(viaProxy, made)).length,
        (await describe(viaProxy, made)).length,
        (await describe(viaProxy, made)).length,
      ];
      const { SnapshotId: copy = '' } = await inCopyRegion.send(
        new CopySnapshotCommand({ SourceRegion: REGION, SourceSnapshotId: made }),
      );
      const copyViaProxy = (await describe(inCopyRegion, copy)).concat(
        await describe(inCopyRegion, copy),
        await describe(inCopyRegion, copy),
      );
      const copyInMoto = await describe(
        new EC2Client({ region: COPY_REGION, endpoint: inject('awsEndpoint') }),
        copy,
      );

      // Assess
      expect(listed).toEqual([0, 0, 1]);
      expect(copyViaProxy.map((s) => s.VolumeId)).toEqual([COPIED_VOLUME_ID]);
      expect(copyInMoto.map((s) => s.VolumeId)).toEqual([volumeId]);
      expect([...copies.copies]).toEqual([copy]);
      viaProxy.destroy();
      inCopyRegion.destroy();
    });
  });

  describe('#7: a create whose answer was lost, while DescribeSnapshots has not caught up', () => {
    it('finds the lost set once the describe catches up, deletes it, and records the one kept: one set, run succeeded', async () => {
      // Prepare: EC2 makes the first set but its answer is lost (the SDK retries after
      // 1.5 s); no new snapshot shows in the first two describes that would list it.
      const slot = latestSlot(1);
      const made = instance('consistency-1');
      proxy.rules.add(eventualConsistency({ describes: 2 }));
      proxy.rules.add(forInstance(made.instanceId, firstCalls(1, loseAnswer())));

      // Act
      const report = await backupOf('consistency', slot);

      // Assess
      expect(proxy.requests('CreateSnapshots').map((r) => r.outcome)).toEqual([
        'answer-lost',
        'forwarded',
      ]);
      expect(await extraSnapshotsOfSlot(ec2, DEPLOYMENT, slot)).toBe(0);
      expect(report.status).toBe('succeeded');
      expect(proxy.calls('DescribeSnapshots')).toBeGreaterThanOrEqual(3);
      const kept = snapshotIdsOf(await snapshotSetsOfSlot(ec2, DEPLOYMENT, slot)).sort();
      expect(kept).toHaveLength(made.volumes.length);
      expect(report.instances[0]).toMatchObject({ outcome: 'created' });
      expect(report.instances[0]?.duplicates?.map((d) => d.outcome)).toEqual(
        made.volumes.map(() => 'deleted'),
      );
      expect(await recordedCreates(report.runId)).toEqual(kept);
    });
  });

  describe('#8: the create answered, and every describe after it fails', () => {
    it('reports and records the answered set as created (never failed), and the run is partial with the reason', async () => {
      // Prepare: the first attempt's answer is lost, so the run must look for a second
      // set; every DescribeSnapshots fails through all retries.
      const slot = latestSlot(2);
      const made = instance('describe-down-1');
      proxy.rules.add(forInstance(made.instanceId, firstCalls(1, loseAnswer())));
      proxy.rules.add({
        action: 'DescribeSnapshots',
        decide: always(awsError('InternalError', 500)),
      });

      // Act
      const report = await backupOf('describe-down', slot);

      // Assess
      expect(report.status).toBe('partial');
      const result = report.instances[0];
      expect(result).toMatchObject({ outcome: 'created', error: { code: 'InternalError' } });
      expect(report.counts).toMatchObject({ backedUp: 1, failed: 0 });
      const answered = (result?.snapshots ?? []).map((s) => s.snapshotId ?? '').sort();
      expect(answered).toHaveLength(made.volumes.length);
      expect(await recordedCreates(report.runId)).toEqual(answered);
      expect((await history.getRun(report.runId))?.status).toBe('partial');
    });
  });

  describe('#8: every attempt of the create lost its answer, and each made a set', () => {
    it('adopts one set (never reports the instance failed), deletes the other copies, and records what it kept', async () => {
      // Prepare: all three attempts reach EC2 and lose their answers; describes lag.
      const slot = latestSlot(4);
      const made = instance('all-lost-1');
      proxy.rules.add(eventualConsistency({ describes: 1 }));
      proxy.rules.add(forInstance(made.instanceId, always(loseAnswer())));

      // Act
      const report = await backupOf('all-lost', slot);

      // Assess
      expect(proxy.requests('CreateSnapshots').map((r) => r.outcome)).toEqual([
        'answer-lost',
        'answer-lost',
        'answer-lost',
      ]);
      expect(report.instances[0]).toMatchObject({ outcome: 'created' });
      expect(report.status).toBe('succeeded');
      expect(await extraSnapshotsOfSlot(ec2, DEPLOYMENT, slot)).toBe(0);
      const kept = snapshotIdsOf(await snapshotSetsOfSlot(ec2, DEPLOYMENT, slot)).sort();
      expect(kept).toHaveLength(made.volumes.length);
      expect((report.instances[0]?.snapshots ?? []).map((s) => s.snapshotId).sort()).toEqual(kept);
      expect(report.instances[0]?.duplicates?.map((d) => d.outcome)).toEqual(
        [...made.volumes, ...made.volumes].map(() => 'deleted'),
      );
      expect(await recordedCreates(report.runId)).toEqual(kept);
    });
  });

  describe('#9: a duplicate set that cannot be deleted', () => {
    it('makes the run partial, reports the duplicate as failed and records it as made', async () => {
      // Prepare
      const slot = latestSlot(3);
      const made = instance('undeletable-1');
      proxy.rules.add(forInstance(made.instanceId, firstCalls(1, loseAnswer())));
      proxy.rules.add({
        action: 'DeleteSnapshot',
        decide: always(awsError('UnauthorizedOperation', 403, 'You are not authorized')),
      });

      // Act
      const report = await backupOf('undeletable', slot);

      // Assess
      expect(report.status).toBe('partial');
      const duplicates = report.instances[0]?.duplicates ?? [];
      expect(duplicates.map((d) => d.outcome)).toEqual(made.volumes.map(() => 'failed'));
      expect(await extraSnapshotsOfSlot(ec2, DEPLOYMENT, slot)).toBe(made.volumes.length);
      const everySnapshot = snapshotIdsOf(await snapshotSetsOfSlot(ec2, DEPLOYMENT, slot)).sort();
      expect(await recordedCreates(report.runId)).toEqual(everySnapshot);
      expect((await history.getRun(report.runId))?.status).toBe('partial');
    });
  });
});
