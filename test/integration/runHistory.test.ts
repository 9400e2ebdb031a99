import {
  DescribeContinuousBackupsCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet } from '../../harness/localFleet.ts';
import { runHistoryTableDefinition } from '../../harness/localTable.ts';
import {
  type ActionItem,
  createRunHistoryGateway,
  type RunHistoryGateway,
  type RunRecord,
} from '../../lib/aws/RunHistoryGateway.ts';
import { loadConfig } from '../../lib/config/environment.ts';
import { slotKeys } from '../../lib/domain/runHistory.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import { RunIncompleteError } from '../../lib/jobs/errors.ts';
import {
  snapshotsTagged,
  tagsOf,
  useLocalAws,
  useLocalHistoryTable,
} from '../support/localEnvironment.ts';

const REGION = 'sa-east-1';
const DEPLOYMENT = 'itest-hist';
const FUNCTION_NAME = 'snapkeeper-itest-hist-backup';
const RETENTION_DAYS = 400;
const DAY_S = 86_400;
/** Set before the handler module is imported (it reads the environment once). */
const ENVIRONMENT = {
  DEPLOYMENT,
  SAFETY_MARGIN_SECONDS: '60',
  DUPLICATE_WAIT_SECONDS: '30',
  HISTORY_RETENTION_DAYS: String(RETENTION_DAYS),
};

type Handler = (event: unknown, context: Context) => Promise<unknown>;

const dailyEvent = (slot: string) => ({ schedule: 'daily', scheduledTime: slot });
const ttlOf = (iso: string): number => Math.floor(Date.parse(iso) / 1000) + RETENTION_DAYS * DAY_S;

/** A Lambda context with plenty of time for its first `calls` questions, then 30 s. */
function contextRunningOutAfter(calls: number): Context {
  let asked = 0;
  return {
    ...lambdaContext(FUNCTION_NAME),
    getRemainingTimeInMillis: () => {
      asked += 1;
      return asked <= calls ? 900_000 : 30_000;
    },
  };
}

describe('Run history and exactly-once slots: functions/backup.ts against the local AWS', () => {
  let ec2: EC2Client;
  let doc: DynamoDBDocumentClient;
  let dynamo: DynamoDBClient;
  let table: string;
  let history: RunHistoryGateway;
  let fleet: LaunchedInstance[];
  let handler: Handler;

  const invoke = async (event: unknown, context = lambdaContext(FUNCTION_NAME)) =>
    (await handler(event, context)) as BackupReport;

  /** The snapshot sets made for one slot: instance id → run id → snapshot ids. */
  const setsOfSlot = async (slot: string): Promise<Map<string, Map<string, string[]>>> => {
    const sets = new Map<string, Map<string, string[]>>();
    for (const snapshot of await snapshotsTagged(ec2, 'snapkeeper:slot', slot)) {
      const tags = tagsOf(snapshot);
      if (tags['snapkeeper:deployment'] !== DEPLOYMENT) continue;
      const instanceId = tags['snapkeeper:instance-id'] ?? 'none';
      const runId = tags['snapkeeper:run-id'] ?? 'none';
      const byRun = sets.get(instanceId) ?? new Map<string, string[]>();
      byRun.set(runId, [...(byRun.get(runId) ?? []), snapshot.SnapshotId ?? '']);
      sets.set(instanceId, byRun);
    }
    return sets;
  };

  /** Exactly one set per instance of the fleet, each with a snapshot of every volume. */
  const expectOneSetPerInstance = (sets: Map<string, Map<string, string[]>>): void => {
    expect([...sets.keys()].sort()).toEqual(fleet.map((i) => i.instanceId).sort());
    for (const instance of fleet) {
      const byRun = sets.get(instance.instanceId);
      expect(byRun?.size, `sets of ${instance.name}`).toBe(1);
      const [snapshotIds] = [...(byRun?.values() ?? [])];
      expect(snapshotIds, `snapshots of ${instance.name}`).toHaveLength(instance.volumes.length);
    }
  };

  const slotHolder = async (slot: string) =>
    (
      await doc.send(
        new GetCommand({
          TableName: table,
          Key: slotKeys({ job: 'backup', schedule: 'daily', slot }),
          ConsistentRead: true,
        }),
      )
    ).Item;

  const run = async (runId: string): Promise<RunRecord & { resumedFrom?: string }> => {
    const found = await history.getRun(runId);
    if (!found) throw new Error(`no run ${runId} in the history`);
    return found;
  };

  beforeAll(async () => {
    const endpoint = inject('awsEndpoint');
    ec2 = useLocalAws(endpoint, REGION, ENVIRONMENT);
    table = await useLocalHistoryTable(endpoint, REGION);
    dynamo = new DynamoDBClient({ region: REGION, endpoint });
    doc = DynamoDBDocumentClient.from(dynamo);
    history = createRunHistoryGateway(loadConfig(process.env), table, RETENTION_DAYS);
    const launched = await launchFleet(ec2, [
      {
        name: 'web-1',
        tags: { 'snapkeeper:backup': 'true' },
        dataVolumes: [{ device: '/dev/sdf', sizeGiB: 20 }],
      },
      { name: 'web-2', tags: { 'snapkeeper:backup': 'true' } },
      {
        name: 'db-1',
        tags: { 'snapkeeper:backup': 'true' },
        dataVolumes: [
          { device: '/dev/sdf', sizeGiB: 50 },
          { device: '/dev/sdg', sizeGiB: 10 },
        ],
      },
    ]);
    fleet = [...launched.values()];
    ({ handler } = (await import('../../functions/backup.ts')) as unknown as {
      handler: Handler;
    });
  });

  afterAll(() => {
    // The deadline settings are this file's own; the worker may be reused.
    delete process.env.SAFETY_MARGIN_SECONDS;
  });

  describe('the table created from serverless.yml', () => {
    it('has the primary key and the three overloaded indexes serverless.yml defines, billed on demand', async () => {
      // Prepare
      const definition = runHistoryTableDefinition();

      // Act
      const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: table }));

      // Assess
      expect(Table?.KeySchema).toEqual([
        { AttributeName: 'PK', KeyType: 'HASH' },
        { AttributeName: 'SK', KeyType: 'RANGE' },
      ]);
      expect(Table?.KeySchema).toEqual(definition.KeySchema);
      const indexes = (Table?.GlobalSecondaryIndexes ?? [])
        .map((i) => ({ IndexName: i.IndexName, KeySchema: i.KeySchema, Projection: i.Projection }))
        .sort((a, b) => (a.IndexName ?? '').localeCompare(b.IndexName ?? ''));
      expect(indexes).toEqual(
        ['GSI1', 'GSI2', 'GSI3'].map((name) => ({
          IndexName: name,
          KeySchema: [
            { AttributeName: `${name}PK`, KeyType: 'HASH' },
            { AttributeName: `${name}SK`, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        })),
      );
      expect(Table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
      expect(definition.BillingMode).toBe('PAY_PER_REQUEST');
    });

    it('expires items through TTL on expiresAt', async () => {
      // Act
      const { TimeToLiveDescription } = await dynamo.send(
        new DescribeTimeToLiveCommand({ TableName: table }),
      );

      // Assess
      expect(TimeToLiveDescription).toEqual({
        AttributeName: 'expiresAt',
        TimeToLiveStatus: 'ENABLED',
      });
    });

    it('has point-in-time recovery on', async () => {
      // Act
      const { ContinuousBackupsDescription } = await dynamo.send(
        new DescribeContinuousBackupsCommand({ TableName: table }),
      );

      // Assess
      expect(
        ContinuousBackupsDescription?.PointInTimeRecoveryDescription?.PointInTimeRecoveryStatus,
      ).toBe('ENABLED');
    });
  });

  describe('every access pattern, after one backup run', () => {
    const SLOT = '2026-11-01T03:00:00Z';
    let report: BackupReport;
    let item: RunRecord;
    let actions: ActionItem[];
    const snapshotsOf = (instanceId: string) =>
      report.instances.find((i) => i.instanceId === instanceId)?.snapshots ?? [];

    beforeAll(async () => {
      report = await invoke(dailyEvent(SLOT));
      item = await run(report.runId);
      actions = await history.runActions(report.runId);
    });

    it('records the run: trigger, schedule and slot, status, counts, report and a lease', () => {
      // Assess
      expect(report.status).toBe('succeeded');
      expect(item).toMatchObject({
        runId: report.runId,
        deployment: DEPLOYMENT,
        job: 'backup',
        trigger: 'schedule',
        schedule: 'daily',
        slot: SLOT,
        dryRun: false,
        status: 'succeeded',
        endedAt: report.endedAt,
        counts: report.counts,
      });
      expect(report.counts).toMatchObject({ due: 3, backedUp: 3, snapshots: 6, failed: 0 });
      expect(Date.parse(item.startedAt)).toBeLessThanOrEqual(Date.parse(report.startedAt));
      expect(item.leaseRenewedAt).toBe(item.startedAt);
      expect(JSON.parse(item.report ?? 'null')).toEqual(report);
    });

    it('keeps the run item, its actions and the slot claim for 400 days (TTL expiresAt)', async () => {
      // Act
      const claim = await slotHolder(SLOT);

      // Assess
      expect(item.expiresAt).toBe(ttlOf(item.startedAt));
      expect((item.expiresAt ?? 0) - Date.parse(item.startedAt) / 1000).toBeCloseTo(
        400 * DAY_S,
        -1,
      );
      expect(actions.length).toBeGreaterThan(0);
      for (const action of actions) {
        expect((action as ActionItem & { expiresAt?: number }).expiresAt).toBe(ttlOf(action.at));
      }
      expect(claim).toMatchObject({ runId: report.runId, type: 'slot' });
      expect(claim?.expiresAt).toBe(ttlOf(String(claim?.claimedAt)));
    });

    it('lists the run among the latest runs of the deployment, newest first', async () => {
      // Act
      const latest = await history.latestRuns(DEPLOYMENT);

      // Assess
      expect(latest.map((r) => r.runId)).toContain(report.runId);
      const starts = latest.map((r) => r.startedAt);
      expect(starts).toEqual([...starts].sort().reverse());
      expect(latest.every((r) => r.deployment === DEPLOYMENT)).toBe(true);
    });

    it('lists the run among the runs of its job and of its schedule', async () => {
      // Act
      const ofJob = await history.runsOfJob(DEPLOYMENT, 'backup');
      const ofSchedule = await history.runsOfSchedule(DEPLOYMENT, 'daily');
      const ofOtherJob = await history.runsOfJob(DEPLOYMENT, 'retention');
      const ofOtherSchedule = await history.runsOfSchedule(DEPLOYMENT, 'weekly');

      // Assess
      expect(ofJob.find((r) => r.runId === report.runId)).toEqual(item);
      expect(ofSchedule.find((r) => r.runId === report.runId)).toEqual(item);
      expect(ofJob.every((r) => r.job === 'backup')).toBe(true);
      expect(ofSchedule.every((r) => r.schedule === 'daily')).toBe(true);
      expect(ofOtherJob).toEqual([]);
      expect(ofOtherSchedule).toEqual([]);
    });

    it('lists the run’s actions: one create-snapshot per snapshot made, in order', () => {
      // Assess
      const made = report.instances.flatMap((i) =>
        (i.snapshots ?? []).map((s) => ({ instanceId: i.instanceId, ...s })),
      );
      expect(actions).toHaveLength(made.length);
      expect(actions.map((a) => a.resourceId).sort()).toEqual(made.map((s) => s.snapshotId).sort());
      for (const action of actions) {
        const snapshot = made.find((s) => s.snapshotId === action.resourceId);
        expect(action).toMatchObject({
          runId: report.runId,
          job: 'backup',
          action: 'create-snapshot',
          phase: 'after',
          outcome: 'done',
          instanceId: snapshot?.instanceId,
          volumeId: snapshot?.volumeId,
        });
      }
      const sequences = actions.map((a) => a.sequence);
      expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    });

    it('tells everything that happened to a snapshot', async () => {
      // Prepare
      const web1 = fleet[0] as LaunchedInstance;
      const snapshot = snapshotsOf(web1.instanceId)[0];

      // Act
      const found = await history.resourceHistory(snapshot?.snapshotId ?? 'missing');

      // Assess
      expect(found).toHaveLength(1);
      expect(found[0]).toMatchObject({
        runId: report.runId,
        action: 'create-snapshot',
        resourceId: snapshot?.snapshotId,
        instanceId: web1.instanceId,
        volumeId: snapshot?.volumeId,
      });
    });

    it('tells everything that happened to an instance since the run started', async () => {
      // Prepare
      const db1 = fleet[2] as LaunchedInstance;

      // Act
      const found = await history.resourceHistory(db1.instanceId, { since: item.startedAt });

      // Assess
      expect(found.map((a) => a.resourceId).sort()).toEqual(
        snapshotsOf(db1.instanceId)
          .map((s) => s.snapshotId)
          .sort(),
      );
      expect(found).toHaveLength(db1.volumes.length);
      expect(found.every((a) => a.instanceId === db1.instanceId && a.runId === report.runId)).toBe(
        true,
      );
      const times = found.map((a) => a.at);
      expect(times).toEqual([...times].sort().reverse());
    });

    it('tells everything that happened to a volume since the run started', async () => {
      // Prepare
      const db1 = fleet[2] as LaunchedInstance;
      const volume = db1.volumes.find((v) => v.device === '/dev/sdg');

      // Act
      const found = await history.resourceHistory(volume?.volumeId ?? 'missing', {
        since: item.startedAt,
      });

      // Assess
      const snapshot = snapshotsOf(db1.instanceId).find((s) => s.volumeId === volume?.volumeId);
      expect(found).toHaveLength(1);
      expect(found[0]).toMatchObject({
        runId: report.runId,
        resourceId: snapshot?.snapshotId,
        volumeId: volume?.volumeId,
        instanceId: db1.instanceId,
      });
    });

    it('filters every pattern with since: nothing after the run, the run from its start', async () => {
      // Prepare
      const later = new Date(Date.parse(report.endedAt) + 60_000).toISOString();
      const web2 = fleet[1] as LaunchedInstance;
      const snapshot = snapshotsOf(web2.instanceId)[0];

      // Act
      const fromStart = await history.latestRuns(DEPLOYMENT, { since: item.startedAt });
      const afterIt = await history.latestRuns(DEPLOYMENT, { since: later });
      const jobAfter = await history.runsOfJob(DEPLOYMENT, 'backup', { since: later });
      const scheduleAfter = await history.runsOfSchedule(DEPLOYMENT, 'daily', { since: later });
      const snapshotAfter = await history.resourceHistory(snapshot?.snapshotId ?? 'missing', {
        since: later,
      });
      const instanceAfter = await history.resourceHistory(web2.instanceId, { since: later });

      // Assess
      expect(fromStart.map((r) => r.runId)).toContain(report.runId);
      expect(afterIt.map((r) => r.runId)).not.toContain(report.runId);
      expect(jobAfter.map((r) => r.runId)).not.toContain(report.runId);
      expect(scheduleAfter.map((r) => r.runId)).not.toContain(report.runId);
      expect(snapshotAfter).toEqual([]);
      expect(instanceAfter).toEqual([]);
    });

    it('counts an item within the second of a since given to the second (2026-11-16T00:00:00Z)', async () => {
      // Prepare: an action half a second after midnight
      await history.record({
        runId: 'run-since-check',
        job: 'backup',
        action: 'create-snapshot',
        resourceId: 'snap-0since0check0001',
        phase: 'after',
        outcome: 'done',
        reason: 'since check',
        at: '2026-11-16T00:00:00.500Z',
      });

      // Act
      const found = await history.resourceHistory('snap-0since0check0001', {
        since: '2026-11-16T00:00:00Z',
      });

      // Assess: QueryOptions.since promises "only items at or after it"; sort keys hold
      // toISOString times (with milliseconds), so the bound must compare as a time.
      expect(found.map((a) => a.at)).toEqual(['2026-11-16T00:00:00.500Z']);
    });

    it('answers with a limit, newest first', async () => {
      // Act
      const latest = await history.latestRuns(DEPLOYMENT, { limit: 1 });
      const all = await history.latestRuns(DEPLOYMENT);

      // Assess
      expect(latest).toHaveLength(1);
      expect(latest[0]?.runId).toBe(all[0]?.runId);
    });
  });

  describe('duplicate delivery of one slot', () => {
    it('returns the identical report to a second, sequential delivery, and makes no extra snapshots', async () => {
      // Prepare
      const SLOT = '2026-11-02T03:00:00Z';
      const first = await invoke(dailyEvent(SLOT));
      const before = await setsOfSlot(SLOT);

      // Act
      const second = await invoke(dailyEvent(SLOT));

      // Assess
      expect(second.runId).toBe(first.runId);
      expect(second).toEqual(first);
      const after = await setsOfSlot(SLOT);
      expect(after).toEqual(before);
      expectOneSetPerInstance(after);
      const runsOfSlot = (await history.runsOfSchedule(DEPLOYMENT, 'daily')).filter(
        (r) => r.slot === SLOT,
      );
      expect(runsOfSlot.map((r) => r.runId)).toEqual([first.runId]);
    });

    it('makes one snapshot set per instance for two parallel deliveries of a new slot, both returning the same report', async () => {
      // Prepare
      const SLOT = '2026-11-03T03:00:00Z';

      // Act
      const [a, b] = await Promise.all([
        invoke(dailyEvent(SLOT), lambdaContext(FUNCTION_NAME)),
        invoke(dailyEvent(SLOT), lambdaContext(FUNCTION_NAME)),
      ]);

      // Assess
      expect(a.runId).toBe(b.runId);
      expect(a).toEqual(b);
      expect(a.status).toBe('succeeded');
      const sets = await setsOfSlot(SLOT);
      expectOneSetPerInstance(sets);
      for (const byRun of sets.values()) expect([...byRun.keys()]).toEqual([a.runId]);
      const runsOfSlot = (await history.runsOfSchedule(DEPLOYMENT, 'daily')).filter(
        (r) => r.slot === SLOT,
      );
      expect(runsOfSlot.map((r) => r.runId)).toEqual([a.runId]);
      expect((await slotHolder(SLOT))?.runId).toBe(a.runId);
    });
  });

  describe('a run killed mid-way', () => {
    it('stops below the safety margin as incomplete, and the next delivery takes over and finishes the slot', async () => {
      // Prepare
      const SLOT = '2026-11-04T03:00:00Z';
      const event = dailyEvent(SLOT);

      // Act: too little time left to start anything
      const failure = await invoke(event, lambdaContext(FUNCTION_NAME, 30_000)).then(
        () => undefined,
        (error: unknown) => error,
      );

      // Assess: the first run
      expect(failure).toBeInstanceOf(RunIncompleteError);
      const firstReport = (failure as RunIncompleteError).report as BackupReport;
      const first = await run(firstReport.runId);
      expect(first.status).toBe('incomplete');
      expect([...(first.remaining ?? [])].sort()).toEqual(fleet.map((i) => i.instanceId).sort());
      expect((await setsOfSlot(SLOT)).size).toBe(0);

      // Act: the retry of the same event, with time
      const resumed = await invoke(event);

      // Assess: taken over and finished
      expect(resumed.runId).not.toBe(firstReport.runId);
      expect(resumed.trigger).toBe('retry');
      expect(resumed.status).toBe('succeeded');
      expect(resumed.counts).toMatchObject({ due: 3, backedUp: 3, deferred: 0 });
      expect(await run(resumed.runId)).toMatchObject({
        status: 'succeeded',
        trigger: 'retry',
        resumedFrom: firstReport.runId,
      });
      expect((await run(firstReport.runId)).status).toBe('incomplete');
      expect(await slotHolder(SLOT)).toMatchObject({
        runId: resumed.runId,
        previousRunId: firstReport.runId,
      });
      expectOneSetPerInstance(await setsOfSlot(SLOT));
    });

    it('resumes a run stopped after some instances: covers what was made, makes only the rest', async () => {
      // Prepare
      const SLOT = '2026-11-05T03:00:00Z';
      const event = dailyEvent(SLOT);

      // Act: time runs out after the first instance starts
      const failure = await invoke(event, contextRunningOutAfter(2)).then(
        () => undefined,
        (error: unknown) => error,
      );

      // Assess: the first run made some sets and left the rest
      expect(failure).toBeInstanceOf(RunIncompleteError);
      const firstReport = (failure as RunIncompleteError).report as BackupReport;
      const made = firstReport.instances.filter((i) => i.outcome === 'created');
      const deferred = firstReport.instances.filter((i) => i.outcome === 'deferred');
      expect(made.length).toBeGreaterThanOrEqual(1);
      expect(deferred.length).toBeGreaterThanOrEqual(1);
      expect(made.length + deferred.length).toBe(fleet.length);
      expect([...((await run(firstReport.runId)).remaining ?? [])].sort()).toEqual(
        deferred.map((i) => i.instanceId).sort(),
      );

      // Act: the retry
      const resumed = await invoke(event);

      // Assess
      const outcome = (id: string) => resumed.instances.find((i) => i.instanceId === id)?.outcome;
      for (const instance of made) expect(outcome(instance.instanceId)).toBe('covered');
      for (const instance of deferred) expect(outcome(instance.instanceId)).toBe('created');
      expect(resumed.counts).toMatchObject({ covered: made.length, backedUp: deferred.length });
      expect(resumed.trigger).toBe('retry');
      expect(resumed.status).toBe('succeeded');
      const sets = await setsOfSlot(SLOT);
      expectOneSetPerInstance(sets);
      for (const instance of made) {
        expect([...(sets.get(instance.instanceId)?.keys() ?? [])]).toEqual([firstReport.runId]);
      }
      for (const instance of deferred) {
        expect([...(sets.get(instance.instanceId)?.keys() ?? [])]).toEqual([resumed.runId]);
      }
    });
  });

  describe('a crashed run', () => {
    it('is marked abandoned by the next delivery of its slot, which takes the slot over; a live run is left alone', async () => {
      // Prepare: a run that died a day ago holding its slot, and a live one holding another
      const SLOT = '2026-11-06T03:00:00Z';
      const LIVE_SLOT = '2026-11-07T03:00:00Z';
      const dayAgo = new Date(Date.now() - DAY_S * 1000);
      const crashedId = '20261106T030001Z-dead0001';
      await history.claimSlot({ job: 'backup', schedule: 'daily', slot: SLOT }, crashedId, dayAgo);
      await history.startRun({
        runId: crashedId,
        deployment: DEPLOYMENT,
        job: 'backup',
        trigger: 'schedule',
        schedule: 'daily',
        slot: SLOT,
        dryRun: false,
        startedAt: dayAgo.toISOString(),
        status: 'running',
        leaseRenewedAt: dayAgo.toISOString(),
      });
      const liveId = '20261107T030001Z-a11ve001';
      const liveLease = new Date(Date.now() - 30_000).toISOString();
      await history.claimSlot(
        { job: 'backup', schedule: 'daily', slot: LIVE_SLOT },
        liveId,
        new Date(liveLease),
      );
      await history.startRun({
        runId: liveId,
        deployment: DEPLOYMENT,
        job: 'backup',
        trigger: 'schedule',
        schedule: 'daily',
        slot: LIVE_SLOT,
        dryRun: false,
        startedAt: liveLease,
        status: 'running',
        leaseRenewedAt: liveLease,
      });

      // Act
      const report = await invoke(dailyEvent(SLOT));

      // Assess: the crashed run is visibly abandoned, by this run
      const crashed = await run(crashedId);
      expect(crashed.status).toBe('abandoned');
      expect(crashed.endedAt).toBeDefined();
      expect(crashed.errorSummary).toBe(
        `abandoned: lease last renewed ${dayAgo.toISOString()}; marked by run ${report.runId}`,
      );
      // ... and its slot taken over and finished
      expect(report.trigger).toBe('retry');
      expect(report.status).toBe('succeeded');
      expect(await run(report.runId)).toMatchObject({
        status: 'succeeded',
        resumedFrom: crashedId,
      });
      expect(await slotHolder(SLOT)).toMatchObject({
        runId: report.runId,
        previousRunId: crashedId,
      });
      expectOneSetPerInstance(await setsOfSlot(SLOT));
      // ... while the live run is untouched
      expect(await run(liveId)).toMatchObject({ status: 'running', leaseRenewedAt: liveLease });
      expect((await slotHolder(LIVE_SLOT))?.runId).toBe(liveId);
    });
  });
});
