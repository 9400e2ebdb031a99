import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type { FaultProxy, ProxyCall } from '../../harness/faultProxy.ts';
import { crashAfter, dynamoItem, historyDown } from '../../harness/faultRules.ts';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet } from '../../harness/localFleet.ts';
import {
  duplicateSetCount,
  existingSnapshots,
  imagesOfInstance,
  KEYS,
  leaseInThePast,
  type SeededSnapshot,
  type SnapshotSets,
  seedSnapshots,
  snapshotIdsOf,
  snapshotSetsOfSlot,
  snapshotsOfImage,
  untracedResources,
} from '../../harness/measurements.ts';
import type { ActionItem, RunHistoryGateway, RunRecord } from '../../lib/aws/RunHistoryGateway.ts';
import type { AmiReport } from '../../lib/jobs/amiJob.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import type { RetentionReport } from '../../lib/jobs/retentionJob.ts';
import type { SweepReport } from '../../lib/jobs/sweepJob.ts';
import { useFaultProxiedAws } from '../support/localEnvironment.ts';

/** The `type` of every item a `BatchWriteItem` call writes (the history's batched records). */
function batchItemTypes(call: ProxyCall): string[] {
  const requests = (
    call.json as
      | {
          RequestItems?: Record<
            string,
            { PutRequest?: { Item?: Record<string, { S?: string }> } }[]
          >;
        }
      | undefined
  )?.RequestItems;
  return Object.values(requests ?? {})
    .flat()
    .map((r) => r.PutRequest?.Item?.type?.S ?? '');
}

// This file's own region and deployment on the shared moto server.
const REGION = 'eu-west-3';
const DEPLOYMENT = 'itest-crash';
const SCHEDULES = [
  { name: 'daily', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 7 },
  { name: 'ret-down', cron: 'cron(0 4 * * ? *)', timezone: 'UTC', retain: 3 },
];
/** Set before the handlers are imported (they read the environment once). */
const ENVIRONMENT = {
  DEPLOYMENT,
  SCHEDULES: JSON.stringify(SCHEDULES),
  AWS_MAX_ATTEMPTS: '2',
  AWS_REQUEST_TIMEOUT_MS: '5000',
  SNAPSHOT_RATE_RETRY_SECONDS: '0',
  LOCAL_TAG_AFTER_CREATE: 'true',
  RECYCLE_BIN_CHECK: 'false',
  MAX_DELETIONS: '50',
};
const DAY_MS = 86_400_000;
const HISTORY_UNAVAILABLE =
  'the run history could not be written: backups were made anyway (documented choice), but this run is not recorded and a duplicate delivery may not be detected';

type Handler = (event: unknown, context: Context) => Promise<unknown>;

describe('Fault campaign: crashes mid-run and a run-history table that is down', () => {
  const savedEnvironment = { ...process.env };
  let proxy: FaultProxy;
  /** Straight to moto: arranging and checking, never faulted. */
  let ec2: EC2Client;
  let dynamo: DynamoDBClient;
  let doc: DynamoDBDocumentClient;
  let table: string;
  let history: RunHistoryGateway;
  let backup: Handler;
  let retention: Handler;
  let amis: Handler;
  let fleet: Map<string, LaunchedInstance>;
  let daily: LaunchedInstance[];

  const instance = (name: string): LaunchedInstance => {
    const found = fleet.get(name);
    if (!found) throw new Error(`no instance ${name}`);
    return found;
  };
  const backupOf = async (slot: string) =>
    (await backup({ schedule: 'daily', scheduledTime: slot }, lambdaContext())) as BackupReport;
  const amisOf = async (slot: string) =>
    (await amis({ schedule: 'daily', scheduledTime: slot }, lambdaContext())) as AmiReport;
  const run = async (runId: string): Promise<RunRecord & { resumedFrom?: string }> => {
    const found = await history.getRun(runId);
    if (!found) throw new Error(`no run ${runId} in the history`);
    return found;
  };
  const holderOf = async (job: string, slot: string): Promise<string> => {
    const claim = await history.getSlotClaim({ job, schedule: 'daily', slot });
    if (!claim) throw new Error(`no claim on ${job} ${slot}`);
    return claim.runId;
  };
  /** Exactly one complete set per instance; returns which run made each. */
  const expectOneSetEach = (sets: SnapshotSets, instances: readonly LaunchedInstance[]) => {
    expect([...sets.keys()].sort()).toEqual(instances.map((i) => i.instanceId).sort());
    const madeBy = new Map<string, string>();
    for (const made of instances) {
      const byRun = sets.get(made.instanceId);
      expect(byRun?.size, `sets of ${made.name}`).toBe(1);
      const [[runId, snapshotIds] = ['', []]] = [...(byRun?.entries() ?? [])];
      expect(snapshotIds, `snapshots of ${made.name}`).toHaveLength(made.volumes.length);
      madeBy.set(made.instanceId, runId);
    }
    expect(duplicateSetCount(sets)).toBe(0);
    return madeBy;
  };

  beforeAll(async () => {
    const motoEndpoint = inject('awsEndpoint');
    // The handlers talk to EC2 and DynamoDB through the proxy; this file checks moto directly.
    ({ proxy, ec2, table, history } = await useFaultProxiedAws(motoEndpoint, REGION, ENVIRONMENT));
    dynamo = new DynamoDBClient({ region: REGION, endpoint: motoEndpoint });
    doc = DynamoDBDocumentClient.from(dynamo);
    fleet = await launchFleet(ec2, [
      {
        name: 'web-1',
        tags: { [KEYS.backup]: 'daily' },
        dataVolumes: [{ device: '/dev/sdf', sizeGiB: 20 }],
      },
      { name: 'web-2', tags: { [KEYS.backup]: 'daily' } },
      {
        name: 'db-1',
        tags: { [KEYS.backup]: 'daily' },
        dataVolumes: [
          { device: '/dev/sdf', sizeGiB: 50 },
          { device: '/dev/sdg', sizeGiB: 10 },
        ],
      },
      { name: 'app-1', tags: { [KEYS.backup]: 'daily' } },
      { name: 'image-1', tags: { [KEYS.ami]: 'daily', [KEYS.amiRetain]: '1' } },
      { name: 'image-2', tags: { [KEYS.ami]: 'daily', [KEYS.amiRetain]: '1' } },
      { name: 'down-1', tags: { [KEYS.backup]: 'ret-down' } },
    ]);
    daily = ['web-1', 'web-2', 'db-1', 'app-1'].map(instance);
    ({ handler: backup } = (await import('../../functions/backup.ts')) as { handler: Handler });
    ({ handler: retention } = (await import('../../functions/retention.ts')) as {
      handler: Handler;
    });
    ({ handler: amis } = (await import('../../functions/amis.ts')) as { handler: Handler });
  });

  afterAll(async () => {
    await proxy?.stop();
    ec2?.destroy();
    dynamo?.destroy();
    // The environment is this file's own; the worker may be reused.
    for (const key of Object.keys(process.env)) {
      if (!(key in savedEnvironment)) delete process.env[key];
    }
    Object.assign(process.env, savedEnvironment);
  });

  beforeEach(() => {
    proxy.rules.clear();
    proxy.resetStats();
  });

  describe('a crash between a create and its history write, then the same slot delivered again', () => {
    const SLOT = '2026-10-11T03:00:00Z';
    let crashedRunId: string;
    let crashedItem: RunRecord;
    let crashedActions: ActionItem[];
    let setsAfterCrash: SnapshotSets;
    let resumed: BackupReport;
    let createsOnResume: number;
    const deadLease = new Date(Date.now() - DAY_MS);

    beforeAll(async () => {
      // The process dies once two snapshot sets were requested: nothing after lands,
      // neither their create-snapshot records nor the run's final record.
      const crash = crashAfter('CreateSnapshots', 2);
      proxy.rules.add(crash.rule);
      await backupOf(SLOT).catch(() => undefined); // a dead process answers nothing
      proxy.rules.clear();
      expect(crash.crashed()).toBe(true);
      crashedRunId = await holderOf('backup', SLOT);
      crashedItem = await run(crashedRunId);
      crashedActions = await history.runActions(crashedRunId);
      setsAfterCrash = await snapshotSetsOfSlot(ec2, DEPLOYMENT, SLOT);
      // Lambda's retry comes after the dead run's lease ran out.
      await leaseInThePast(doc, table, crashedRunId, deadLease);
      proxy.resetStats();
      resumed = await backupOf(SLOT);
      createsOnResume = proxy.calls('CreateSnapshots');
    });

    it('leaves the crashed run running without its final record, with two sets made and none recorded', () => {
      // Assess
      expect(crashedItem).toMatchObject({ status: 'running', slot: SLOT });
      expect(crashedItem.endedAt).toBeUndefined();
      expect(crashedItem.report).toBeUndefined();
      expect(crashedActions).toEqual([]);
      expect(setsAfterCrash.size).toBe(2);
      for (const byRun of setsAfterCrash.values()) {
        expect([...byRun.keys()]).toEqual([crashedRunId]);
      }
    });

    it('lets the next delivery take the dead run’s slot over as a retry, resuming from it', async () => {
      // Assess
      expect(resumed.runId).not.toBe(crashedRunId);
      expect(resumed.trigger).toBe('retry');
      expect(resumed.status).toBe('succeeded');
      expect(await run(resumed.runId)).toMatchObject({
        status: 'succeeded',
        trigger: 'retry',
        resumedFrom: crashedRunId,
      });
      expect(await run(crashedRunId)).toMatchObject({
        status: 'abandoned',
        errorSummary: `abandoned: lease last renewed ${deadLease.toISOString()}; marked by run ${resumed.runId}`,
      });
      expect(await history.getSlotClaim({ job: 'backup', schedule: 'daily', slot: SLOT })).toEqual(
        expect.objectContaining({ runId: resumed.runId }),
      );
    });

    it('lists the slot’s snapshots, covers what the dead run made, and makes only the rest: one set per instance', async () => {
      // Assess: the report
      const covered = resumed.instances.filter((i) => i.outcome === 'covered');
      expect(resumed.counts).toMatchObject({
        due: 4,
        covered: 2,
        backedUp: 2,
        failed: 0,
        duplicatesRemoved: 0,
      });
      expect(covered.map((i) => i.instanceId).sort()).toEqual([...setsAfterCrash.keys()].sort());
      for (const result of covered) {
        expect(result.reason).toBe(`already backed up for this slot by run ${crashedRunId}`);
        expect(result.snapshots?.map((s) => s.snapshotId).sort()).toEqual(
          [...(setsAfterCrash.get(result.instanceId)?.get(crashedRunId) ?? [])].sort(),
        );
      }
      // ... and what EC2 holds
      const madeBy = expectOneSetEach(await snapshotSetsOfSlot(ec2, DEPLOYMENT, SLOT), daily);
      for (const made of daily) {
        expect(madeBy.get(made.instanceId)).toBe(
          setsAfterCrash.has(made.instanceId) ? crashedRunId : resumed.runId,
        );
      }
      expect(createsOnResume).toBe(2);
    });

    it('leaves every snapshot of the slot traceable in the run history, the dead run’s included', async () => {
      // Prepare
      const snapshotIds = snapshotIdsOf(await snapshotSetsOfSlot(ec2, DEPLOYMENT, SLOT));

      // Act
      const untraced = await untracedResources(history, snapshotIds);

      // Assess: README: "an item per resource action (snapshot or AMI created, ...)". The
      // dead run could not write them; the run that adopts its sets is the one left to.
      expect(untraced, 'snapshots of the slot with no item in the run history').toEqual([]);
    });
  });

  describe('a crash between a deregister and its snapshot deletes, then the orphan sweep', () => {
    const DAY_1 = '2026-10-12T03:00:00Z';
    const DAY_2 = '2026-10-13T03:00:00Z';
    let images: LaunchedInstance[];
    let retiredImages: string[];
    let orphans: string[];
    let crashedRunId: string;
    let deregisterRecords: ActionItem[];
    let orphansAfterCrash: Set<string>;
    let sweep: SweepReport;

    beforeAll(async () => {
      images = [instance('image-1'), instance('image-2')];
      await amisOf(DAY_1);
      const firstImages = (
        await Promise.all(images.map((i) => imagesOfInstance(ec2, i.instanceId)))
      ).map((found) => found[0]);
      retiredImages = firstImages.map((i) => i?.ImageId ?? '');
      orphans = firstImages.flatMap(snapshotsOfImage);
      // Day 2 retires day 1's AMIs (keep 1); the process dies once both are deregistered.
      const crash = crashAfter('DeregisterImage', images.length);
      proxy.rules.add(crash.rule);
      await amisOf(DAY_2).catch(() => undefined); // a dead process answers nothing
      proxy.rules.clear();
      expect(crash.crashed()).toBe(true);
      crashedRunId = await holderOf('amis', DAY_2);
      deregisterRecords = (await history.runActions(crashedRunId)).filter(
        (a) => a.action === 'deregister-image' && a.phase === 'before',
      );
      orphansAfterCrash = await existingSnapshots(ec2, orphans);
      sweep = (await amis({ sweep: true }, lambdaContext())) as SweepReport;
    });

    it('deregistered the retired AMIs, recorded their snapshots first, and left those snapshots behind', async () => {
      // Assess
      expect(orphans).toHaveLength(images.length);
      const described = await ec2.send(
        new DescribeImagesCommand({
          Owners: ['self'],
          Filters: [{ Name: 'image-id', Values: retiredImages }],
        }),
      );
      expect(described.Images ?? []).toEqual([]);
      expect(orphansAfterCrash).toEqual(new Set(orphans));
      expect(deregisterRecords.map((a) => a.resourceId).sort()).toEqual([...retiredImages].sort());
      expect(
        deregisterRecords.flatMap((a) => (a.details?.snapshotIds as string[] | undefined) ?? []),
      ).toEqual(expect.arrayContaining(orphans));
      expect((await run(crashedRunId)).status).toBe('running');
    });

    it('has the orphan sweep delete exactly those snapshots, each recorded before and after', async () => {
      // Assess
      expect(sweep.status).toBe('succeeded');
      expect(sweep.deleted.map((d) => [d.snapshotId, d.imageId, d.outcome]).sort()).toEqual(
        orphans
          .map((id, index) => [id, retiredImages[index], 'deleted'])
          .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      );
      expect(await existingSnapshots(ec2, orphans)).toEqual(new Set());
      const recorded = await history.runActions(sweep.runId);
      for (const snapshotId of orphans) {
        expect(
          recorded.filter((a) => a.resourceId === snapshotId).map((a) => [a.phase, a.outcome]),
          snapshotId,
        ).toEqual([
          ['before', undefined],
          ['after', 'done'],
        ]);
      }
    });

    it('leaves nothing orphaned: every snapshot CreateImage made belongs to an AMI that exists', async () => {
      // Act
      const made = await ec2.send(
        new DescribeSnapshotsCommand({
          OwnerIds: ['self'],
          Filters: [{ Name: 'description', Values: ['Created by CreateImage*'] }],
        }),
      );
      const own = await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }));

      // Assess
      const existing = new Set((own.Images ?? []).map((i) => i.ImageId));
      const orphaned = (made.Snapshots ?? []).filter((s) => {
        const imageId = /for (ami-[0-9a-f]+)/.exec(s.Description ?? '')?.[1];
        return !imageId || !existing.has(imageId);
      });
      expect(orphaned.map((s) => s.SnapshotId)).toEqual([]);
      expect(made.Snapshots?.length).toBe(images.length);
    });

    it('lets the next delivery of the crashed slot take it over and create no AMI twice', async () => {
      // Prepare
      await leaseInThePast(doc, table, crashedRunId, new Date(Date.now() - DAY_MS));

      // Act
      const report = await amisOf(DAY_2);

      // Assess
      expect(report.status).toBe('succeeded');
      expect(report.trigger).toBe('retry');
      expect(report.created.map((c) => c.outcome)).toEqual(['exists', 'exists']);
      expect(report.counts).toMatchObject({ created: 0, plannedDeregistrations: 0 });
      expect(await run(report.runId)).toMatchObject({ resumedFrom: crashedRunId });
      expect((await run(crashedRunId)).status).toBe('abandoned');
      expect(proxy.calls('CreateImage')).toBe(0);
      for (const owner of images) {
        const left = await imagesOfInstance(ec2, owner.instanceId);
        expect(left.map((i) => i.Tags?.find((t) => t.Key === KEYS.slot)?.Value)).toEqual([DAY_2]);
      }
    });
  });

  describe('the run-history table unavailable (every DynamoDB call answers 500 or throughput exceeded)', () => {
    let seeded: SeededSnapshot[];
    let due: string[];

    beforeAll(async () => {
      seeded = await seedSnapshots(ec2, {
        history,
        deployment: DEPLOYMENT,
        schedule: 'ret-down',
        instance: instance('down-1'),
        agesDays: [0, 1, 2, 3, 4, 5],
      });
      due = seeded.filter((s) => s.ageDays >= 3).map((s) => s.snapshotId);
    });

    it('still makes every backup and ends partial with the history warning (the documented choice)', async () => {
      // Prepare
      const slot = '2026-10-14T03:00:00Z';
      proxy.rules.add(historyDown());

      // Act
      const report = await backupOf(slot);

      // Assess
      expect(report.status).toBe('partial');
      expect(report.warnings).toEqual([HISTORY_UNAVAILABLE]);
      expect(report.counts).toMatchObject({ due: 4, backedUp: 4, failed: 0 });
      expectOneSetEach(await snapshotSetsOfSlot(ec2, DEPLOYMENT, slot), daily);
      const dynamoCalls = proxy.requests().filter((r) => r.service === 'dynamodb');
      expect(dynamoCalls.length).toBeGreaterThan(0);
      expect(dynamoCalls.every((r) => r.outcome === 'error')).toBe(true);
      expect(await history.getRun(report.runId)).toBeUndefined();
    });

    it('has retention fail loudly and delete nothing when the table is down from the start', async () => {
      // Prepare
      proxy.rules.add(historyDown());

      // Act
      const outcomes = await Promise.allSettled([
        retention({ schedule: 'ret-down' }, lambdaContext()),
        retention({ schedule: 'ret-down', scheduledTime: '2026-10-14T04:00:00Z' }, lambdaContext()),
      ]);

      // Assess: an unscheduled run cannot write its run item, a scheduled one its slot claim
      for (const outcome of outcomes) {
        expect(outcome.status).toBe('rejected');
        expect(String((outcome as PromiseRejectedResult).reason)).toMatch(
          /^AwsCallError: PutItem failed: (InternalServerError|ProvisionedThroughputExceededException): /,
        );
      }
      expect(proxy.calls('DescribeSnapshots')).toBe(0);
      expect(proxy.calls('DeleteSnapshot')).toBe(0);
      expect(
        await existingSnapshots(
          ec2,
          seeded.map((s) => s.snapshotId),
        ),
      ).toEqual(new Set(seeded.map((s) => s.snapshotId)));
    });

    it('deletes nothing whose "before" record cannot be written when the table goes down mid-run, and reports each refusal', async () => {
      // Prepare: the run item is written; every action record then fails (written one
      // by one with PutItem, or in batches with BatchWriteItem since issue 19)
      proxy.rules.add(
        historyDown(
          (call) => dynamoItem(call).type === 'action' || batchItemTypes(call).includes('action'),
        ),
      );

      // Act
      const report = (await retention(
        { schedule: 'ret-down' },
        lambdaContext(),
      )) as RetentionReport;

      // Assess
      expect(report.status).toBe('partial');
      expect(report.counts).toMatchObject({ planned: 3, deleted: 0, failed: 3 });
      for (const deletion of report.volumes.flatMap((v) => v.deletions)) {
        expect(deletion).toMatchObject({
          outcome: 'failed',
          error: { code: 'JournalUnavailable' },
        });
      }
      expect(proxy.calls('DeleteSnapshot')).toBe(0);
      expect(await existingSnapshots(ec2, due)).toEqual(new Set(due));
      expect(await run(report.runId)).toMatchObject({ status: 'partial' });
    });

    it('deletes what was due once the table is back, each deletion recorded before and after', async () => {
      // Act
      const report = (await retention(
        { schedule: 'ret-down' },
        lambdaContext(),
      )) as RetentionReport;

      // Assess
      expect(report.status).toBe('succeeded');
      expect(report.counts).toMatchObject({ planned: 3, deleted: 3, failed: 0 });
      expect(await existingSnapshots(ec2, due)).toEqual(new Set());
      const recorded = await history.runActions(report.runId);
      expect(
        recorded
          .filter((a) => a.phase === 'before')
          .map((a) => a.resourceId)
          .sort(),
      ).toEqual([...due].sort());
      expect(
        recorded
          .filter((a) => a.phase === 'after' && a.outcome === 'done')
          .map((a) => a.resourceId)
          .sort(),
      ).toEqual([...due].sort());
    });
  });
});
