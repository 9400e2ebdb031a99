import {
  DeleteSnapshotCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  type EC2Client,
  RegisterImageCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { always, awsError, type FaultProxy, firstCalls, hang } from '../../harness/faultProxy.ts';
import {
  dynamoItem,
  ec2Weather,
  forInstance,
  forSnapshot,
  perVolumeRateExceeded,
  replayTo,
} from '../../harness/faultRules.ts';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet, ROOT_DEVICE } from '../../harness/localFleet.ts';
import {
  duplicateSetCount,
  existingSnapshots,
  KEYS,
  type SeededSnapshot,
  type SnapshotSets,
  seedSnapshots,
  snapshotSetsOfSlot,
} from '../../harness/measurements.ts';
import type { RunHistoryGateway } from '../../lib/aws/RunHistoryGateway.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import type { RetentionReport } from '../../lib/jobs/retentionJob.ts';
import { useFaultProxiedAws } from '../support/localEnvironment.ts';

// This file's own region and deployment on the shared moto server.
const REGION = 'ca-central-1';
const DEPLOYMENT = 'itest-faults';
/** One schedule for the backups, and one per retention scenario so that each plans alone. */
const SCHEDULES = [
  { name: 'daily', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 7 },
  { name: 'ret-weather', cron: 'cron(0 4 * * ? *)', timezone: 'UTC', retain: 3 },
  { name: 'ret-timeout', cron: 'cron(0 5 * * ? *)', timezone: 'UTC', retain: 3 },
  { name: 'ret-race', cron: 'cron(0 6 * * ? *)', timezone: 'UTC', retain: 3 },
];
/** Set before the handlers are imported (they read the environment once). */
const ENVIRONMENT = {
  DEPLOYMENT,
  SCHEDULES: JSON.stringify(SCHEDULES),
  AWS_MAX_ATTEMPTS: '4',
  AWS_REQUEST_TIMEOUT_MS: '1500',
  SNAPSHOT_RATE_RETRY_SECONDS: '0',
  SAFETY_MARGIN_SECONDS: '5',
  DUPLICATE_WAIT_SECONDS: '20',
  MAX_DELETIONS: '50',
};
/** Daily points aged 0..5 days: retention (keep 3) deletes the three oldest. */
const SIX_DAYS = [0, 1, 2, 3, 4, 5];

type Handler = (event: unknown, context: Context) => Promise<unknown>;

describe('Fault campaign: throttling, timeouts, duplicate deliveries and races, through the fault proxy', () => {
  const savedEnvironment = { ...process.env };
  let proxy: FaultProxy;
  /** Straight to moto: arranging and checking, never faulted. */
  let ec2: EC2Client;
  let history: RunHistoryGateway;
  let backup: Handler;
  let retention: Handler;
  let fleet: Map<string, LaunchedInstance>;
  let daily: LaunchedInstance[];

  const instance = (name: string): LaunchedInstance => {
    const found = fleet.get(name);
    if (!found) throw new Error(`no instance ${name}`);
    return found;
  };
  const backupOf = async (slot: string, context = lambdaContext()) =>
    (await backup({ schedule: 'daily', scheduledTime: slot }, context)) as BackupReport;
  const retentionOf = async (schedule: string) =>
    (await retention({ schedule }, lambdaContext())) as RetentionReport;
  const setsOf = (slot: string): Promise<SnapshotSets> => snapshotSetsOfSlot(ec2, DEPLOYMENT, slot);
  const seedOn = (name: string, schedule: string, agesDays = SIX_DAYS) =>
    seedSnapshots(ec2, {
      history,
      deployment: DEPLOYMENT,
      schedule,
      instance: instance(name),
      agesDays,
    });
  const idsOf = (seeded: readonly SeededSnapshot[], predicate: (ageDays: number) => boolean) =>
    seeded.filter((s) => predicate(s.ageDays)).map((s) => s.snapshotId);

  /** Exactly one complete set per instance, each made by `runId`, and nothing for the others. */
  const expectOneSetEach = (
    sets: SnapshotSets,
    instances: readonly LaunchedInstance[],
    runId?: string,
  ) => {
    expect([...sets.keys()].sort()).toEqual(instances.map((i) => i.instanceId).sort());
    for (const made of instances) {
      const byRun = sets.get(made.instanceId);
      expect(byRun?.size, `sets of ${made.name}`).toBe(1);
      const [[madeBy, snapshotIds] = ['', []]] = [...(byRun?.entries() ?? [])];
      if (runId) expect(madeBy, `run of ${made.name}'s set`).toBe(runId);
      expect(snapshotIds, `snapshots of ${made.name}`).toHaveLength(made.volumes.length);
    }
    expect(duplicateSetCount(sets)).toBe(0);
  };

  beforeAll(async () => {
    // The handlers talk to EC2 and DynamoDB through the proxy; this file checks moto directly.
    ({ proxy, ec2, history } = await useFaultProxiedAws(
      inject('awsEndpoint'),
      REGION,
      ENVIRONMENT,
    ));
    fleet = await launchFleet(ec2, [
      {
        name: 'web-1',
        tags: { [KEYS.backup]: 'daily' },
        dataVolumes: [{ device: '/dev/sdf', sizeGiB: 20 }],
      },
      { name: 'web-2', tags: { [KEYS.backup]: 'true' } },
      {
        name: 'db-1',
        tags: { [KEYS.backup]: 'daily' },
        dataVolumes: [
          { device: '/dev/sdf', sizeGiB: 50 },
          { device: '/dev/sdg', sizeGiB: 10 },
        ],
      },
      { name: 'app-1', tags: { [KEYS.backup]: 'daily' } },
      {
        name: 'app-2',
        tags: { [KEYS.backup]: 'daily' },
        dataVolumes: [{ device: '/dev/sdf', sizeGiB: 5 }],
      },
      { name: 'batch-1', tags: { [KEYS.backup]: 'daily' }, state: 'stopped' },
      ...['weather-1', 'weather-2', 'weather-3'].map((name) => ({
        name,
        tags: { [KEYS.backup]: 'ret-weather' },
      })),
      { name: 'timeout-1', tags: { [KEYS.backup]: 'ret-timeout' } },
      { name: 'race-1', tags: { [KEYS.backup]: 'ret-race' } },
    ]);
    daily = ['web-1', 'web-2', 'db-1', 'app-1', 'app-2', 'batch-1'].map(instance);
    ({ handler: backup } = (await import('../../functions/backup.ts')) as { handler: Handler });
    ({ handler: retention } = (await import('../../functions/retention.ts')) as {
      handler: Handler;
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    ec2?.destroy();
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

  describe('throttling: ~30% of EC2 calls RequestLimitExceeded, ~5% HTTP 500/503 (seeded), some per-volume rate errors', () => {
    it('makes every due backup exactly once; a volume still over its rate after the retries is the one precise reason the run is partial', async () => {
      // Prepare: web-1 and db-1 hit the per-volume rate once and twice (within the two
      // retries), app-2 on every attempt; then bad weather on every EC2 call.
      const slot = '2026-10-01T03:00:00Z';
      proxy.rules.add(
        forInstance(instance('web-1').instanceId, firstCalls(1, perVolumeRateExceeded())),
      );
      proxy.rules.add(
        forInstance(instance('db-1').instanceId, firstCalls(2, perVolumeRateExceeded())),
      );
      proxy.rules.add(forInstance(instance('app-2').instanceId, always(perVolumeRateExceeded())));
      const weather = ec2Weather({ seed: 23 });
      proxy.rules.add(weather.rule);

      // Act
      const report = await backupOf(slot);

      // Assess: the report names exactly one failure, and why
      expect(report.status).toBe('partial');
      const madeFor = daily.filter((i) => i.name !== 'app-2');
      expect(report.counts).toEqual({
        due: 6,
        backedUp: 5,
        skipped: 0,
        failed: 1,
        snapshots: madeFor.reduce((n, i) => n + i.volumes.length, 0),
        covered: 0,
        deferred: 0,
        duplicatesRemoved: 0,
      });
      const failed = report.instances.filter((i) => i.outcome !== 'created');
      expect(failed).toEqual([
        expect.objectContaining({
          instanceId: instance('app-2').instanceId,
          outcome: 'failed',
          error: {
            code: 'SnapshotCreationPerVolumeRateExceeded',
            message: `CreateSnapshots failed: SnapshotCreationPerVolumeRateExceeded: per-volume snapshot rate limit for ${instance('app-2').instanceId} still exceeded after 3 attempts; deferred to the next run`,
          },
        }),
      ]);
      // ... EC2 holds exactly one set per backed-up instance, made by this run
      expectOneSetEach(await setsOf(slot), madeFor, report.runId);
      // ... and the history one create-snapshot record per snapshot made
      const actions = await history.runActions(report.runId);
      expect(actions.map((a) => a.resourceId).sort()).toEqual(
        report.instances
          .flatMap((i) => i.snapshots ?? [])
          .map((s) => s.snapshotId)
          .sort(),
      );
      expect(actions.every((a) => a.action === 'create-snapshot' && a.outcome === 'done')).toBe(
        true,
      );
      // The weather did blow: throttles and server errors, every one retried.
      expect(weather.stats.throttled).toBeGreaterThan(0);
      expect(weather.stats.serverErrors).toBeGreaterThan(0);
      expect(proxy.calls('CreateSnapshots')).toBe(proxy.faults('CreateSnapshots') + madeFor.length);
    });

    it('deletes every snapshot retention says is due under the same weather, each recorded before and after', async () => {
      // Prepare: three volumes with six daily points each; three of each are due
      const seeded = [
        ...(await seedOn('weather-1', 'ret-weather')),
        ...(await seedOn('weather-2', 'ret-weather')),
        ...(await seedOn('weather-3', 'ret-weather')),
      ];
      const due = idsOf(seeded, (age) => age >= 3);
      const kept = idsOf(seeded, (age) => age < 3);
      const weather = ec2Weather({ seed: 29 });
      proxy.rules.add(weather.rule);

      // Act
      const report = await retentionOf('ret-weather');

      // Assess
      expect(report.status).toBe('succeeded');
      expect(report.counts).toMatchObject({
        volumes: 3,
        snapshotsInScope: 18,
        kept: 9,
        planned: 9,
        deleted: 9,
        skipped: 0,
        failed: 0,
      });
      expect(await existingSnapshots(ec2, due)).toEqual(new Set());
      expect(await existingSnapshots(ec2, kept)).toEqual(new Set(kept));
      const actions = await history.runActions(report.runId);
      for (const snapshotId of due) {
        expect(
          actions
            .filter((a) => a.resourceId === snapshotId)
            .map((a) => [a.action, a.phase, a.outcome]),
          snapshotId,
        ).toEqual([
          ['delete-snapshot', 'before', undefined],
          ['delete-snapshot', 'after', 'done'],
        ]);
      }
      expect(weather.stats.throttled).toBeGreaterThan(0);
      expect(weather.stats.serverErrors).toBeGreaterThan(0);
      expect(proxy.calls('DeleteSnapshot')).toBe(proxy.faults('DeleteSnapshot') + due.length);
    });
  });

  describe('timeouts: calls that hang past AWS_REQUEST_TIMEOUT_MS (1.5 s)', () => {
    it('retries a call that hung once, reports the instance whose every attempt hung, and ends well before the deadline', async () => {
      // Prepare: the slot claim and the fleet listing hang once, web-2's create once,
      // app-1's create on every attempt (four of 1.5 s each).
      const slot = '2026-10-02T03:00:00Z';
      let claims = 0;
      proxy.rules.add({
        name: 'slot claim hangs once',
        action: 'PutItem',
        decide: (call) => {
          if (dynamoItem(call).type !== 'slot') return undefined;
          claims += 1;
          return claims === 1 ? hang() : undefined;
        },
      });
      proxy.rules.add({ action: 'DescribeInstances', decide: firstCalls(1, hang()) });
      proxy.rules.add(forInstance(instance('web-2').instanceId, firstCalls(1, hang())));
      proxy.rules.add(forInstance(instance('app-1').instanceId, always(hang())));
      const deadlineMs = 30_000;
      const started = Date.now();

      // Act
      const report = await backupOf(slot, lambdaContext('snapkeeper-itest-faults', deadlineMs));

      // Assess: the hung calls were cut by the client, not by the proxy. The run also
      // looks for sets the hung creates may have made (EC2's describes lag behind
      // creates: issue 15 #7), re-reading for at most half the time it has left.
      const elapsed = Date.now() - started;
      expect(elapsed, 'the run should end well before its 30 s deadline').toBeLessThan(22_000);
      // The fleet listing hung once then went through; the last listing is the look at
      // every tagged instance for opt-in keys that miss ours (issue 15 #12).
      expect(proxy.requests('DescribeInstances').map((r) => r.outcome)).toEqual([
        'hang',
        'forwarded',
        'forwarded',
      ]);
      expect(
        proxy
          .requests('PutItem')
          .filter((r) => dynamoItem(r).type === 'slot')
          .map((r) => r.outcome),
      ).toEqual(['hang', 'forwarded']);
      expect(proxy.requests('CreateSnapshots').filter((r) => r.outcome === 'hang')).toHaveLength(
        1 + 4,
      );
      // ... the run went on and says precisely what it could not do
      expect(report.status).toBe('partial');
      expect(report.counts).toMatchObject({ due: 6, backedUp: 5, failed: 1 });
      expect(report.instances.find((i) => i.outcome === 'failed')).toMatchObject({
        instanceId: instance('app-1').instanceId,
        error: { code: 'TimeoutError' },
      });
      const madeFor = daily.filter((i) => i.name !== 'app-1');
      expectOneSetEach(await setsOf(slot), madeFor, report.runId);
      expect(await history.getRun(report.runId)).toMatchObject({ status: 'partial', slot });
    });

    it('makes no second set when EC2 made a set but its answer was lost and the client retried after the timeout', async () => {
      // Prepare: web-1's first CreateSnapshots reaches EC2 (replayed straight to moto), but
      // its answer never comes back; the SDK retries it after AWS_REQUEST_TIMEOUT_MS.
      const slot = '2026-10-03T03:00:00Z';
      const web1 = instance('web-1');
      const reachedEc2: Promise<number>[] = [];
      proxy.rules.add(
        forInstance(web1.instanceId, (call, n) => {
          if (n > 1) return undefined;
          reachedEc2.push(replayTo(inject('awsEndpoint'), call));
          return hang();
        }),
      );

      // Act
      const report = await backupOf(slot);

      // Assess
      expect(await Promise.all(reachedEc2)).toEqual([200]);
      expect(proxy.requests('CreateSnapshots').filter((r) => r.outcome === 'hang')).toHaveLength(1);
      expect(report.status).toBe('succeeded');
      const sets = await setsOf(slot);
      const made = [...(sets.get(web1.instanceId)?.values() ?? [])].flat();
      expect(made, 'snapshots of web-1 for the slot: one per volume').toHaveLength(
        web1.volumes.length,
      );
      expectOneSetEach(sets, daily, report.runId);
    });

    it('reports a deletion whose every attempt hung as failed, keeps the snapshot, and deletes the rest', async () => {
      // Prepare
      const seeded = await seedOn('timeout-1', 'ret-timeout');
      const oldest = idsOf(seeded, (age) => age === 5)[0] ?? '';
      const others = idsOf(seeded, (age) => age === 3 || age === 4);
      proxy.rules.add(forSnapshot(oldest, always(hang())));
      const started = Date.now();

      // Act
      const report = await retentionOf('ret-timeout');

      // Assess
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(report.status).toBe('partial');
      expect(report.counts).toMatchObject({ planned: 3, deleted: 2, failed: 1 });
      expect(report.volumes[0]?.deletions.find((d) => d.snapshotId === oldest)).toMatchObject({
        outcome: 'failed',
        error: { code: 'TimeoutError' },
      });
      expect(await existingSnapshots(ec2, [oldest, ...others])).toEqual(new Set([oldest]));
      const recorded = (await history.runActions(report.runId)).filter(
        (a) => a.resourceId === oldest,
      );
      expect(recorded.map((a) => [a.phase, a.outcome, a.error?.code])).toEqual([
        ['before', undefined, undefined],
        ['after', 'failed', 'TimeoutError'],
      ]);
    });
  });

  describe('duplicate and concurrent delivery of one slot', () => {
    it('makes one set per instance for three parallel deliveries of a slot, all answering with the same report', async () => {
      // Prepare
      const slot = '2026-10-04T03:00:00Z';

      // Act
      const reports = (await Promise.all([
        backupOf(slot),
        backupOf(slot),
        backupOf(slot),
      ])) as BackupReport[];

      // Assess
      const [first] = reports;
      expect(first?.status).toBe('succeeded');
      for (const report of reports) expect(report).toEqual(first);
      expectOneSetEach(await setsOf(slot), daily, first?.runId);
      const runsOfSlot = (await history.runsOfSchedule(DEPLOYMENT, 'daily')).filter(
        (r) => r.slot === slot,
      );
      expect(runsOfSlot.map((r) => r.runId)).toEqual([first?.runId]);
      expect(proxy.calls('CreateSnapshots')).toBe(daily.length);
    });

    it('runs a late delivery once for its own slot after the next slot started, and not again when it is delivered twice', async () => {
      // Prepare: the next slot is delivered and running when the earlier one arrives
      const early = '2026-10-05T03:00:00Z';
      const next = '2026-10-06T03:00:00Z';
      const nextRun = backupOf(next);
      await expect.poll(() => proxy.calls('CreateSnapshots'), { interval: 20 }).toBeGreaterThan(0);

      // Act
      const late = await backupOf(early);
      const again = await backupOf(early);
      const onTime = await nextRun;

      // Assess
      expect(late.slot).toBe(early);
      expect(late.runId).not.toBe(onTime.runId);
      expect([late.status, onTime.status]).toEqual(['succeeded', 'succeeded']);
      expect(again).toEqual(late);
      expectOneSetEach(await setsOf(early), daily, late.runId);
      expectOneSetEach(await setsOf(next), daily, onTime.runId);
      expect(proxy.calls('CreateSnapshots')).toBe(2 * daily.length);
    });
  });

  describe('races between the plan and the act', () => {
    it('skips and reports a snapshot an AMI was registered on and one someone else deleted; the run does not fail', async () => {
      // Prepare: when retention deletes the oldest point, an AMI has just been registered
      // on it; when it deletes the next, someone else has just deleted it.
      const seeded = await seedOn('race-1', 'ret-race');
      const [inUse = '', goneBy = '', plain = ''] = [5, 4, 3].map(
        (age) => idsOf(seeded, (a) => a === age)[0],
      );
      const meanwhile: Promise<unknown>[] = [];
      proxy.rules.add(
        forSnapshot(inUse, (_call, n) => {
          if (n === 1) {
            meanwhile.push(
              ec2.send(
                new RegisterImageCommand({
                  Name: `registered-meanwhile-${inUse}`,
                  RootDeviceName: ROOT_DEVICE,
                  BlockDeviceMappings: [{ DeviceName: ROOT_DEVICE, Ebs: { SnapshotId: inUse } }],
                }),
              ),
            );
          }
          return awsError(
            'InvalidSnapshot.InUse',
            400,
            `The snapshot ${inUse} is currently in use by ami-0racer`,
          );
        }),
      );
      proxy.rules.add(
        forSnapshot(goneBy, (_call, n) => {
          if (n === 1) meanwhile.push(ec2.send(new DeleteSnapshotCommand({ SnapshotId: goneBy })));
          return awsError(
            'InvalidSnapshot.NotFound',
            400,
            `The snapshot '${goneBy}' does not exist.`,
          );
        }),
      );

      // Act
      const report = await retentionOf('ret-race');
      await Promise.all(meanwhile);

      // Assess
      expect(report.status).toBe('succeeded');
      expect(report.counts).toMatchObject({ planned: 3, deleted: 1, skipped: 2, failed: 0 });
      const deletions = new Map((report.volumes[0]?.deletions ?? []).map((d) => [d.snapshotId, d]));
      expect(deletions.get(inUse)).toMatchObject({ outcome: 'skipped' });
      expect(deletions.get(inUse)?.reason).toMatch(
        /; skipped: an image started using it after the plan \(InvalidSnapshot\.InUse\)$/,
      );
      expect(deletions.get(goneBy)).toMatchObject({ outcome: 'skipped' });
      expect(deletions.get(goneBy)?.reason).toMatch(
        /; skipped: already deleted by someone else \(InvalidSnapshot\.NotFound\)$/,
      );
      expect(deletions.get(plain)).toMatchObject({ outcome: 'deleted' });
      expect(await existingSnapshots(ec2, [inUse, goneBy, plain])).toEqual(new Set([inUse]));
      const images = await ec2.send(
        new DescribeImagesCommand({
          Owners: ['self'],
          Filters: [{ Name: 'name', Values: [`registered-meanwhile-${inUse}`] }],
        }),
      );
      expect(images.Images).toHaveLength(1);
      const after = (await history.runActions(report.runId)).filter((a) => a.phase === 'after');
      expect(Object.fromEntries(after.map((a) => [a.resourceId, a.outcome]))).toEqual({
        [inUse]: 'skipped',
        [goneBy]: 'skipped',
        [plain]: 'done',
      });
    });

    it('fails only the instance terminated mid-run, with its error code; the others are backed up and the run is partial', async () => {
      // Prepare: app-2 is terminated as its snapshot set is requested
      const slot = '2026-10-07T03:00:00Z';
      const victim = instance('app-2');
      const meanwhile: Promise<unknown>[] = [];
      proxy.rules.add(
        forInstance(victim.instanceId, (_call, n) => {
          if (n === 1) {
            meanwhile.push(
              ec2.send(new TerminateInstancesCommand({ InstanceIds: [victim.instanceId] })),
            );
          }
          return awsError(
            'InvalidInstanceID.NotFound',
            400,
            `The instance ID '${victim.instanceId}' does not exist`,
          );
        }),
      );

      // Act
      const report = await backupOf(slot);
      await Promise.all(meanwhile);

      // Assess
      expect(report.status).toBe('partial');
      expect(report.counts).toMatchObject({ due: 6, backedUp: 5, failed: 1, skipped: 0 });
      expect(report.instances.filter((i) => i.outcome === 'failed')).toEqual([
        expect.objectContaining({
          instanceId: victim.instanceId,
          error: expect.objectContaining({ code: 'InvalidInstanceID.NotFound' }),
        }),
      ]);
      expectOneSetEach(
        await setsOf(slot),
        daily.filter((i) => i !== victim),
        report.runId,
      );
      const state = await ec2.send(
        new DescribeInstancesCommand({ InstanceIds: [victim.instanceId] }),
      );
      expect(state.Reservations?.[0]?.Instances?.[0]?.State?.Name).toBe('terminated');
    });
  });
});
