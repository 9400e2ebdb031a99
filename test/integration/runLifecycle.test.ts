import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeSnapshotsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../harness/faultProxy.ts';
import { crashAfter } from '../../harness/faultRules.ts';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet } from '../../harness/localFleet.ts';
import {
  duplicateSetCount,
  KEYS,
  leaseInThePast,
  snapshotSetsOfSlot,
} from '../../harness/measurements.ts';
import { latestFire, slotText } from '../../harness/slotClock.ts';
import {
  createRunHistoryGateway,
  type RunHistoryGateway,
  type RunRecord,
} from '../../lib/aws/RunHistoryGateway.ts';
import { InvalidEventError } from '../../lib/domain/errors.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import type { OpsReport } from '../../lib/jobs/consoleOps.ts';
import { SlotInProgressError } from '../../lib/jobs/errors.ts';
import type { RejectedPayload } from '../../lib/runtime/consoleInvocation.ts';
import { useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

// This file's own region and deployment on the shared moto server.
const REGION = 'ap-south-2';
const DEPLOYMENT = 'itest-lifecycle';
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const DEDUPE_MS = 300_000;
const SCHEDULES = [
  // The crashed run and its retries.
  { name: 'daily', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 7 },
  // Future, stale and off-schedule deliveries.
  { name: 'nightly', cron: 'cron(30 2 * * ? *)', timezone: 'UTC', retain: 7 },
  // A slot held by a live run.
  { name: 'early', cron: 'cron(0 1 * * ? *)', timezone: 'UTC', retain: 7 },
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
  DUPLICATE_WAIT_SECONDS: '1',
  CONSOLE_DEDUPE_SECONDS: String(DEDUPE_MS / 1000),
  // The rule itself, not the ten years the replayed samples get: 36 h, so that no test
  // here depends on the hour it runs at (a fire time passing mid-test).
  SLOT_CATCH_UP_SECONDS: String(36 * 3600),
};

type Handler = (event: unknown, context: Context) => Promise<unknown>;

describe('Run lifecycle and entry points against the local AWS', () => {
  const savedEnvironment = { ...process.env };
  let proxy: FaultProxy;
  let ec2: EC2Client;
  let dynamo: DynamoDBClient;
  let doc: DynamoDBDocumentClient;
  let table: string;
  let history: RunHistoryGateway;
  let backup: Handler;
  let ops: Handler;
  let fleet: Map<string, LaunchedInstance>;

  const instance = (name: string): LaunchedInstance => {
    const found = fleet.get(name);
    if (!found) throw new Error(`no instance ${name}`);
    return found;
  };
  const run = async (runId: string): Promise<RunRecord & { resumedFrom?: string }> => {
    const found = await history.getRun(runId);
    if (!found) throw new Error(`no run ${runId} in the history`);
    return found;
  };
  const deliver = (schedule: string, scheduledTime: string) =>
    backup({ schedule, scheduledTime }, lambdaContext()) as Promise<BackupReport>;
  const snapshotCount = async (): Promise<number> => {
    const response = await ec2.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ['self'],
        Filters: [{ Name: `tag:${KEYS.deployment}`, Values: [DEPLOYMENT] }],
      }),
    );
    return response.Snapshots?.length ?? 0;
  };

  beforeAll(async () => {
    const motoEndpoint = inject('awsEndpoint');
    proxy = await startFaultProxy({ target: motoEndpoint });
    // The handlers talk to EC2 and DynamoDB through the proxy; this file checks moto directly.
    useLocalAws(proxy.endpoint, REGION, ENVIRONMENT);
    ec2 = new EC2Client({ region: REGION, endpoint: motoEndpoint });
    dynamo = new DynamoDBClient({ region: REGION, endpoint: motoEndpoint });
    doc = DynamoDBDocumentClient.from(dynamo);
    table = await useLocalHistoryTable(motoEndpoint, REGION);
    history = createRunHistoryGateway(
      { region: REGION, maxAttempts: 3, requestTimeoutMs: 10_000, endpoint: motoEndpoint },
      table,
      400,
    );
    fleet = await launchFleet(ec2, [
      {
        name: 'web-1',
        tags: { [KEYS.backup]: 'daily' },
        dataVolumes: [{ device: '/dev/sdf', sizeGiB: 20 }],
      },
      { name: 'web-2', tags: { [KEYS.backup]: 'daily' } },
      { name: 'db-1', tags: { [KEYS.backup]: 'daily' } },
      { name: 'night-1', tags: { [KEYS.backup]: 'nightly' } },
      { name: 'console-1' },
    ]);
    ({ handler: backup } = (await import('../../functions/backup.ts')) as { handler: Handler });
    ({ handler: ops } = (await import('../../functions/ops.ts')) as { handler: Handler });
  });

  afterEach(() => {
    proxy.rules.clear();
    vi.useRealTimers();
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

  describe('a run that crashed mid-slot (#1)', () => {
    it('fails the retry that finds its lease fresh, and lets the retry after a stale lease take over and resume', async () => {
      // Prepare: the process dies after one of three snapshot sets was requested
      const slot = slotText(latestFire(3, 0));
      const crash = crashAfter('CreateSnapshots', 1);
      proxy.rules.add(crash.rule);
      await deliver('daily', slot).catch(() => undefined); // a dead process answers nothing
      proxy.rules.clear();
      expect(crash.crashed()).toBe(true);
      const crashedRunId = (await history.getSlotClaim({ job: 'backup', schedule: 'daily', slot }))
        ?.runId;
      if (!crashedRunId) throw new Error('the crashed run holds no claim');
      expect(await run(crashedRunId)).toMatchObject({ status: 'running' });
      const setsAfterCrash = await snapshotSetsOfSlot(ec2, DEPLOYMENT, slot);
      expect(setsAfterCrash.size).toBe(1);

      // Act 1: Lambda's first retry, about a minute later: the lease is one minute old
      await leaseInThePast(doc, table, crashedRunId, new Date(Date.now() - MINUTE_MS));
      const firstRetry = await deliver('daily', slot).then(
        () => undefined,
        (error: unknown) => error,
      );

      // Assess 1: the delivery failed (so Lambda retries again), naming the holder; nothing done
      expect((firstRetry as Error | undefined)?.name).toBe('SlotInProgressError');
      expect(firstRetry).toBeInstanceOf(SlotInProgressError);
      expect((firstRetry as SlotInProgressError).heldBy).toBe(crashedRunId);
      expect(await run(crashedRunId)).toMatchObject({ status: 'running' });
      expect((await snapshotSetsOfSlot(ec2, DEPLOYMENT, slot)).size).toBe(1);

      // Act 2: the second retry, about three minutes after the crash: four renewals missed
      const staleLease = new Date(Date.now() - 3 * MINUTE_MS);
      await leaseInThePast(doc, table, crashedRunId, staleLease);
      const resumed = await deliver('daily', slot);

      // Assess 2: the slot taken over as a retry, the dead run marked, one set per instance
      expect(resumed.runId).not.toBe(crashedRunId);
      expect(resumed.trigger).toBe('retry');
      expect(resumed.status).toBe('succeeded');
      expect(resumed.counts).toMatchObject({ due: 3, covered: 1, backedUp: 2, failed: 0 });
      expect(await run(resumed.runId)).toMatchObject({
        status: 'succeeded',
        resumedFrom: crashedRunId,
      });
      expect(await run(crashedRunId)).toMatchObject({
        status: 'abandoned',
        errorSummary: `abandoned: lease last renewed ${staleLease.toISOString()}; marked by run ${resumed.runId}`,
      });
      const sets = await snapshotSetsOfSlot(ec2, DEPLOYMENT, slot);
      expect([...sets.keys()].sort()).toEqual(
        ['web-1', 'web-2', 'db-1'].map((name) => instance(name).instanceId).sort(),
      );
      expect(duplicateSetCount(sets)).toBe(0);
    });
  });

  describe('a slot held by a live run (#1)', () => {
    it('fails the delivery with SlotInProgressError naming the holder, and changes nothing', async () => {
      // Prepare: a run of the slot renewed its lease seconds ago
      const slot = slotText(latestFire(1, 0));
      const liveId = '20261101T010001Z-a11ve001';
      const lease = new Date(Date.now() - 5_000);
      await history.claimSlot({ job: 'backup', schedule: 'early', slot }, liveId, lease);
      await history.startRun({
        runId: liveId,
        deployment: DEPLOYMENT,
        job: 'backup',
        trigger: 'schedule',
        schedule: 'early',
        slot,
        dryRun: false,
        startedAt: lease.toISOString(),
        status: 'running',
        leaseRenewedAt: lease.toISOString(),
      });
      const before = await snapshotCount();

      // Act
      const outcome = await deliver('early', slot).then(
        (report) => report,
        (error: unknown) => error,
      );

      // Assess
      expect((outcome as Error).name).toBe('SlotInProgressError');
      expect(outcome).toBeInstanceOf(SlotInProgressError);
      expect((outcome as Error).message).toContain(`held by run ${liveId}`);
      expect(await run(liveId)).toMatchObject({
        status: 'running',
        leaseRenewedAt: lease.toISOString(),
      });
      expect((await history.getSlotClaim({ job: 'backup', schedule: 'early', slot }))?.runId).toBe(
        liveId,
      );
      expect(await snapshotCount()).toBe(before);
    });
  });

  describe('scheduledTime held to its schedule (#5, #6)', () => {
    const rejectionOf = async (scheduledTime: string): Promise<InvalidEventError> => {
      const outcome = await deliver('nightly', scheduledTime).then(
        (report) => report,
        (error: unknown) => error,
      );
      expect(outcome).toBeInstanceOf(InvalidEventError);
      return outcome as InvalidEventError;
    };

    it("rejects tomorrow's slot sent today by name, backs up nothing and claims nothing", async () => {
      // Prepare
      // The slot after the next one: always a day or more ahead, whatever the hour now.
      const tomorrow = slotText(new Date(latestFire(2, 30).getTime() + 2 * DAY_MS));
      const before = await snapshotCount();

      // Act
      const error = await rejectionOf(tomorrow);

      // Assess
      expect(error.message).toMatch(
        new RegExp(`^field "scheduledTime": ${tomorrow} is \\d+ (h|days) ahead of the clock`),
      );
      expect(await snapshotCount()).toBe(before);
      expect(
        await history.getSlotClaim({ job: 'backup', schedule: 'nightly', slot: tomorrow }),
      ).toBeUndefined();
    });

    it.each([
      ['amis', '../../functions/amis.ts'],
      ['retention', '../../functions/retention.ts'],
    ])("rejects tomorrow's slot for %s too, by name, and claims nothing", async (job, module) => {
      // Prepare: retention fires an hour after the backup (03:30 for nightly)
      const fire = job === 'retention' ? latestFire(3, 30) : latestFire(2, 30);
      const tomorrow = slotText(new Date(fire.getTime() + 2 * DAY_MS));
      const { handler } = (await import(module)) as { handler: Handler };

      // Act
      const outcome = await handler(
        { schedule: 'nightly', scheduledTime: tomorrow },
        lambdaContext(),
      ).then(
        (report) => report,
        (error: unknown) => error,
      );

      // Assess
      expect(outcome).toBeInstanceOf(InvalidEventError);
      expect((outcome as Error).message).toMatch(
        new RegExp(`^field "scheduledTime": ${tomorrow} is \\d+ (h|days) ahead of the clock`),
      );
      expect(
        await history.getSlotClaim({ job, schedule: 'nightly', slot: tomorrow }),
      ).toBeUndefined();
    });

    it.each([['9999-12-31T02:30:00Z'], ['0000-01-01T02:30:00Z']])(
      'rejects the year of %s by name',
      async (scheduledTime) => {
        // Act
        const error = await rejectionOf(scheduledTime);

        // Assess
        expect(error.message).toMatch(/^field "scheduledTime": .*1970-2199/);
      },
    );

    it('rejects a slot older than its catch-up window by name', async () => {
      // Prepare: two days old, past the 36 h window (and the one interval of a daily)
      const stale = slotText(new Date(latestFire(2, 30).getTime() - 2 * DAY_MS));

      // Act
      const error = await rejectionOf(stale);

      // Assess
      expect(error.message).toContain(`field "scheduledTime": ${stale}`);
      expect(error.message).toContain('older than its catch-up window');
    });

    it('serves an off-schedule time as the slot it belongs to: no second set', async () => {
      // Prepare: the slot served on time
      const fire = latestFire(2, 30);
      const first = await deliver('nightly', slotText(fire));
      const before = await snapshotCount();

      // Act: the same slot five minutes off-schedule (or, minutes after the fire time, 30 s
      // before it: within the clock allowance, which belongs to the same fire time)
      const offSchedule = new Date(
        Date.now() - fire.getTime() > 6 * MINUTE_MS
          ? fire.getTime() + 5 * MINUTE_MS
          : fire.getTime() - 30_000,
      );
      const again = await deliver('nightly', slotText(offSchedule));

      // Assess
      expect(first.status).toBe('succeeded');
      expect(first.slot).toBe(slotText(fire));
      expect(again.runId).toBe(first.runId);
      expect(await snapshotCount()).toBe(before);
      const sets = await snapshotSetsOfSlot(ec2, DEPLOYMENT, slotText(fire));
      expect([...sets.keys()]).toEqual([instance('night-1').instanceId]);
      expect(await snapshotSetsOfSlot(ec2, DEPLOYMENT, slotText(offSchedule))).toEqual(new Map());
    });
  });

  describe('the console (#10 and the console items)', () => {
    type Answer = Pick<OpsReport | RejectedPayload, 'status' | 'runId' | 'error'>;
    const press = async (payload: unknown): Promise<Answer> =>
      (await ops(payload, lambdaContext('snapkeeper-test-ops'))) as Answer;

    it('runs a double press once across a dedupe bucket edge, and again once the window has passed', async () => {
      // Prepare: the first press one second before a 300 s boundary
      const edge = Math.ceil(Date.now() / DEDUPE_MS) * DEDUPE_MS + DEDUPE_MS;
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(edge - 1_000);
      const payload = { action: 'backup', instanceIds: [instance('console-1').instanceId] };
      const first = await press(payload);
      const afterFirst = await snapshotCount();

      // Act: the repeat two seconds later, in the next bucket
      vi.setSystemTime(edge + 1_000);
      const second = await press({ ...payload });
      const afterSecond = await snapshotCount();
      // ... and a press after the window
      vi.setSystemTime(edge - 1_000 + DEDUPE_MS + 1_000);
      const third = await press(payload);

      // Assess
      expect(first.status).toBe('succeeded');
      expect(second.runId).toBe(first.runId);
      expect(afterSecond).toBe(afterFirst);
      expect(third.runId).not.toBe(first.runId);
      expect(third.status).toBe('succeeded');
      expect(await snapshotCount()).toBe(afterFirst + 1);
    });

    it('answers rejected, naming the id, for a backup of an unknown instance, and backs up nothing', async () => {
      // Prepare
      const unknown = 'i-0badc0ffee0000000';
      const before = await snapshotCount();

      // Act
      const answer = await press({
        action: 'backup',
        instanceIds: [instance('console-1').instanceId, unknown],
      });

      // Assess
      expect(answer.status).toBe('rejected');
      expect(answer.error).toEqual({
        code: 'InvalidPayload',
        message: `field "instanceIds": ${unknown} is not an instance of this account in ${REGION} (unknown or terminated); nothing was backed up`,
      });
      expect(await snapshotCount()).toBe(before);
    });

    it('plans only when DRY_RUN=true, like every other entry point', async () => {
      // Prepare: a container started with DRY_RUN=true
      process.env.DRY_RUN = 'true';
      vi.resetModules();
      const { handler: dryOps } = (await import('../../functions/ops.ts')) as {
        handler: Handler;
      };
      delete process.env.DRY_RUN;
      const before = await snapshotCount();

      // Act
      const report = (await dryOps(
        { action: 'backup', instanceIds: [instance('console-1').instanceId] },
        lambdaContext('snapkeeper-test-ops'),
      )) as OpsReport;

      // Assess
      expect(report.dryRun).toBe(true);
      expect(report.status).toBe('succeeded');
      const { backup: planned } = report.result as { backup: BackupReport };
      expect(planned.instances.map((i) => i.outcome)).toEqual(['planned']);
      expect(await snapshotCount()).toBe(before);
    });
  });
});
