import {
  CreateVolumeCommand,
  DescribeVolumesCommand,
  type EC2Client,
  type Volume,
} from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet } from '../../harness/localFleet.ts';
import {
  createRunHistoryGateway,
  type RunHistoryGateway,
} from '../../lib/aws/RunHistoryGateway.ts';
import { loadConfig } from '../../lib/config/environment.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import type { ConsoleRecoveryReport, OpsReport } from '../../lib/jobs/consoleOps.ts';
import type { RestoreTestReport } from '../../lib/jobs/restoreTestJob.ts';
import { tagsOf, useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

const REGION = 'eu-central-2';
const DEPLOYMENT = 'itest-rt';
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const SCHEDULES = [
  { name: 'daily', cron: 'cron(0 3 * * ? *)', retain: 7, restoreTests: { instances: 1 } },
];

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

/** The latest `hour`:00 UTC at or before now. */
function latestAt(hour: number, now = Date.now()): Date {
  const slot = new Date(Math.floor(now / DAY_MS) * DAY_MS + hour * HOUR_MS);
  if (slot.getTime() > now) slot.setUTCDate(slot.getUTCDate() - 1);
  return slot;
}

describe('Handler: functions/restoreTest.ts (scheduled restore tests) against the local AWS', () => {
  let ec2: EC2Client;
  let history: RunHistoryGateway;
  let fleet: Map<string, LaunchedInstance>;
  let restoreTest: Handler;
  let ops: Handler;
  let userVolumeId: string;

  const volumes = async (): Promise<Volume[]> =>
    (await ec2.send(new DescribeVolumesCommand({}))).Volumes ?? [];
  const testVolumes = async (): Promise<Volume[]> =>
    (await volumes()).filter((v) => tagsOf(v)['snapkeeper:restore-test'] === 'true');

  beforeAll(async () => {
    // Prepare: three instances backed up daily, and a user volume of this deployment.
    ec2 = useLocalAws(inject('awsEndpoint'), REGION, {
      DEPLOYMENT,
      SCHEDULES: JSON.stringify(SCHEDULES),
      RESTORE_WAIT_SECONDS: '30',
    });
    const table = await useLocalHistoryTable(inject('awsEndpoint'), REGION);
    history = createRunHistoryGateway(loadConfig(process.env), table, 30);
    fleet = await launchFleet(ec2, [
      {
        name: 'web-1',
        tags: { 'snapkeeper:backup': 'daily' },
        dataVolumes: [{ device: '/dev/sdf', sizeGiB: 20 }],
      },
      { name: 'db-1', tags: { 'snapkeeper:backup': 'daily' } },
      { name: 'app-1', tags: { 'snapkeeper:backup': 'daily' } },
    ]);
    const load = async (name: string): Promise<Handler> =>
      ((await import(`../../functions/${name}.ts`)) as { handler: Handler }).handler;
    const backup = (await (
      await load('backup')
    )(
      { schedule: 'daily', scheduledTime: latestAt(3).toISOString() },
      lambdaContext(),
    )) as BackupReport;
    expect(backup.status).toBe('succeeded');
    const zone = (await volumes())[0]?.AvailabilityZone ?? `${REGION}a`;
    userVolumeId =
      (
        await ec2.send(
          new CreateVolumeCommand({
            AvailabilityZone: zone,
            Size: 1,
            TagSpecifications: [
              {
                ResourceType: 'volume',
                Tags: [{ Key: 'snapkeeper:deployment', Value: DEPLOYMENT }],
              },
            ],
          }),
        )
      ).VolumeId ?? '';
    restoreTest = await load('restoreTest');
    ops = await load('ops');
  });

  it('restores one instance’s newest set in its zone, checks it, times it and deletes what it made', async () => {
    // Prepare
    const before = (await volumes()).map((v) => v.VolumeId).sort();

    // Act
    const report = (await restoreTest(
      { schedule: 'daily', scheduledTime: latestAt(4).toISOString() },
      lambdaContext(),
    )) as RestoreTestReport;

    // Assess
    expect(report.status).toBe('succeeded');
    expect(report.counts).toMatchObject({ tested: 1, passed: 1, failed: 0 });
    const [tested] = report.instances;
    const instance = [...fleet.values()].find((i) => i.instanceId === tested?.instanceId);
    expect(instance).toBeDefined();
    expect(tested?.volumes.length).toBe(instance?.volumes.length);
    for (const volume of tested?.volumes ?? []) {
      expect(volume).toMatchObject({ outcome: 'passed', deleted: true, problems: [] });
      expect(volume.secondsToAvailable).toBeGreaterThanOrEqual(0);
    }
    expect((await volumes()).map((v) => v.VolumeId).sort()).toEqual(before);
    expect(await testVolumes()).toEqual([]);
  });

  it('records the test per instance in the history, with its time', async () => {
    // Act
    const runs = await history.runsOfJob(DEPLOYMENT, 'restore-test', { limit: 5 });
    const actions = await history.runActions(runs[0]?.runId ?? '');

    // Assess
    expect(runs[0]).toMatchObject({ status: 'succeeded', schedule: 'daily' });
    const test = actions.find((a) => a.action === 'restore-test');
    expect(test).toMatchObject({ phase: 'after', outcome: 'done' });
    expect(typeof test?.details?.seconds).toBe('number');
    const deletes = actions.filter((a) => a.action === 'delete-volume').map((a) => a.phase);
    expect(deletes).toEqual(expect.arrayContaining(['before', 'after']));
  });

  it('rotates: the console’s next test of one instance picks one not tested yet', async () => {
    // Prepare
    const first = (await history.runsOfJob(DEPLOYMENT, 'restore-test', { limit: 5 }))[0];
    const firstActions = await history.runActions(first?.runId ?? '');
    const firstTested = firstActions.find((a) => a.action === 'restore-test')?.resourceId;

    // Act
    const answer = (await ops(
      { action: 'restore-test', schedule: 'daily', instances: 1 },
      lambdaContext('snapkeeper-itest-ops'),
    )) as OpsReport;

    // Assess
    const result = answer.result as RestoreTestReport;
    expect(answer.status).toBe('succeeded');
    expect(result.instances).toHaveLength(1);
    expect(result.instances[0]?.instanceId).not.toBe(firstTested);
    expect(await testVolumes()).toEqual([]);
  });

  it('shows in the console report each instance’s last successful test and flags the one never tested', async () => {
    // Act
    const answer = (await ops(
      { action: 'report' },
      lambdaContext('snapkeeper-itest-ops'),
    )) as OpsReport;

    // Assess
    const report = answer.result as ConsoleRecoveryReport;
    const statuses = report.instances.map((i) => i.restoreTest);
    expect(statuses.filter((t) => t?.neverTested)).toHaveLength(1);
    const tested = statuses.filter((t) => t && !t.neverTested);
    expect(tested).toHaveLength(2);
    for (const t of tested) {
      expect(t?.lastOutcome).toBe('passed');
      expect(Date.parse(t?.lastPassedAt ?? '')).toBeGreaterThan(Date.now() - HOUR_MS);
      expect(t?.lastPassedSeconds).toBeGreaterThanOrEqual(0);
    }
    expect(report.restoreTests.neverTested).toBe(1);
  });

  it('in a dry run from the console creates nothing', async () => {
    // Prepare
    const before = (await volumes()).map((v) => v.VolumeId).sort();

    // Act
    const answer = (await ops(
      { action: 'restore-test', instances: 'all', dryRun: true },
      lambdaContext('snapkeeper-itest-ops'),
    )) as OpsReport;

    // Assess
    const result = answer.result as RestoreTestReport;
    expect(result.instances.map((i) => i.outcome)).toEqual(['planned', 'planned', 'planned']);
    expect((await volumes()).map((v) => v.VolumeId).sort()).toEqual(before);
  });

  it('never touches a volume it did not create', async () => {
    // Assess: the user's volume of the same deployment is still there, untouched.
    const user = (await volumes()).find((v) => v.VolumeId === userVolumeId);
    expect(user?.State).toBe('available');
  });

  it('rejects a scheduled event for a schedule without restoreTests, by name', async () => {
    // Act
    const error = await restoreTest({ schedule: 'weekly' }, lambdaContext()).catch((e) => e);

    // Assess
    expect(String(error)).toMatch(/schedule/);
  });
});
