import { readFileSync } from 'node:fs';
import {
  CreateSnapshotCommand,
  CreateTagsCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  type EC2Client,
  type Image,
  type Instance,
  type Snapshot,
  TerminateInstancesCommand,
  type Volume,
} from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet, ROOT_DEVICE } from '../../harness/localFleet.ts';
import {
  createRunHistoryGateway,
  type RunHistoryGateway,
} from '../../lib/aws/RunHistoryGateway.ts';
import { loadConfig } from '../../lib/config/environment.ts';
import type { AmiReport } from '../../lib/jobs/amiJob.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import type { ConsoleRecoveryReport, OpsReport, SchedulePlan } from '../../lib/jobs/consoleOps.ts';
import { OPS_ACTIONS } from '../../lib/jobs/opsPayload.ts';
import type { LaunchResult, RestoreVolumeResult } from '../../lib/jobs/restoreJobs.ts';
import type { RetentionReport } from '../../lib/jobs/retentionJob.ts';
import type { RejectedPayload } from '../../lib/runtime/consoleInvocation.ts';
import {
  snapshotsTagged,
  tagsOf,
  useLocalAws,
  useLocalHistoryTable,
} from '../support/localEnvironment.ts';

const REGION = 'ap-northeast-1';
const DEPLOYMENT = 'itest-ops';
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Well-formed ids that name nothing in the local AWS. */
const UNKNOWN = {
  instance: 'i-0badc0ffee0000000',
  snapshot: 'snap-0badc0ffee0000000',
  volume: 'vol-0badc0ffee0000000',
  image: 'ami-0badc0ffee0000000',
  runId: '20200101T030000Z-deadbeef',
};

type Handler = (event: unknown, context: unknown) => Promise<unknown>;
type Answer = OpsReport | RejectedPayload;
type Inventory = { snapshots: number; volumes: number; instances: number; images: number };
type BackupResult = { backup: BackupReport; retention: RetentionReport };

/** The latest 03:00 UTC slot of the daily schedule, at or before now. */
function latestDailySlot(now = Date.now()): Date {
  const slot = new Date(Math.floor(now / DAY_MS) * DAY_MS + 3 * HOUR_MS);
  if (slot.getTime() > now) slot.setUTCDate(slot.getUTCDate() - 1);
  return slot;
}

describe('Handler: functions/ops.ts (console operations) against the local AWS', () => {
  let ec2: EC2Client;
  let history: RunHistoryGateway;
  let fleet: Map<string, LaunchedInstance>;
  let ops: Handler;
  let backup: Handler;
  /** The scheduled daily backup and AMI runs made before the console acts. */
  let dailyBackup: BackupReport;
  let dailyImageId: string;

  const instance = (name: string): LaunchedInstance => {
    const found = fleet.get(name);
    if (!found) throw new Error(`no instance ${name}`);
    return found;
  };
  const id = (name: string): string => instance(name).instanceId;
  const volume = (name: string, device: string): string => {
    const found = instance(name).volumes.find((v) => v.device === device);
    if (!found) throw new Error(`no ${device} on ${name}`);
    return found.volumeId;
  };
  /** The snapshot the daily backup made of a device. */
  const dailySnapshot = (name: string, device: string): string => {
    const result = dailyBackup.instances.find((r) => r.instanceId === id(name));
    const found = result?.snapshots?.find((s) => s.deviceName === device)?.snapshotId;
    if (!found) throw new Error(`the daily backup made no snapshot of ${name} ${device}`);
    return found;
  };
  /** A sample payload from events/, its placeholder ids replaced like `npm run ops` does. */
  const sample = (file: string, ids: Record<string, string> = {}): unknown => {
    let text = readFileSync(new URL(`../../events/${file}`, import.meta.url), 'utf8');
    for (const [placeholder, value] of Object.entries(ids))
      text = text.replaceAll(placeholder, value);
    return JSON.parse(text);
  };

  const invoke = async (payload: unknown): Promise<Answer> =>
    (await ops(payload, lambdaContext('snapkeeper-itest-ops'))) as Answer;
  /** Runs a payload that must be accepted, and returns its report. */
  const run = async (payload: unknown): Promise<OpsReport> => {
    const answer = await invoke(payload);
    if (answer.status === 'rejected') {
      throw new Error(`expected the payload to be accepted: ${answer.error.message}`);
    }
    return answer;
  };
  /** Runs a payload that must be rejected, and returns the rejection. */
  const reject = async (payload: unknown): Promise<RejectedPayload> => {
    const answer = await invoke(payload);
    if (answer.status !== 'rejected') {
      throw new Error(`expected a rejection, got ${answer.status}: ${JSON.stringify(answer)}`);
    }
    return answer as RejectedPayload;
  };

  const describeInstance = async (instanceId: string): Promise<Instance> => {
    const r = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    const found = r.Reservations?.[0]?.Instances?.[0];
    if (!found) throw new Error(`no instance ${instanceId}`);
    return found;
  };
  const describeVolume = async (volumeId: string): Promise<Volume | undefined> => {
    const r = await ec2.send(
      new DescribeVolumesCommand({ Filters: [{ Name: 'volume-id', Values: [volumeId] }] }),
    );
    return r.Volumes?.[0];
  };
  const describeImage = async (imageId: string): Promise<Image | undefined> => {
    const r = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
    return r.Images?.[0];
  };
  const snapshotExists = async (snapshotId: string): Promise<boolean> => {
    const r = await ec2.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ['self'],
        Filters: [{ Name: 'snapshot-id', Values: [snapshotId] }],
      }),
    );
    return (r.Snapshots ?? []).length > 0;
  };
  /** This deployment's completed managed snapshots, with the given tags, newest first. */
  const managedSnapshots = async (tags: Record<string, string> = {}): Promise<Snapshot[]> => {
    const r = await ec2.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ['self'],
        Filters: Object.entries({
          'snapkeeper:managed': 'true',
          'snapkeeper:deployment': DEPLOYMENT,
          ...tags,
        }).map(([key, value]) => ({ Name: `tag:${key}`, Values: [value] })),
      }),
    );
    const createdAt = (s: Snapshot) => Date.parse(tagsOf(s)['snapkeeper:created-at'] ?? '');
    return (r.Snapshots ?? [])
      .filter((s) => s.State === 'completed')
      .sort((a, b) => createdAt(b) - createdAt(a));
  };
  /** How many snapshots, volumes, instances and images the region holds. */
  const inventory = async (): Promise<Inventory> => {
    const snapshots = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
    const volumes = await ec2.send(new DescribeVolumesCommand({}));
    const instances = await ec2.send(new DescribeInstancesCommand({}));
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }));
    return {
      snapshots: snapshots.Snapshots?.length ?? 0,
      volumes: volumes.Volumes?.length ?? 0,
      instances: (instances.Reservations ?? []).reduce((n, r) => n + (r.Instances?.length ?? 0), 0),
      images: images.Images?.length ?? 0,
    };
  };
  const runRecord = async (runId: string) =>
    (await history.latestRuns(DEPLOYMENT, { limit: 50 })).find((r) => r.runId === runId);

  /**
   * A rejection as the console shows it: the code, a message matching `message`, the
   * valid actions; nothing changed in EC2; a rejected run (not a failed one) in the history
   * with the message.
   */
  const expectRejection = async (
    payload: unknown,
    message: RegExp | string,
  ): Promise<RejectedPayload> => {
    const before = await inventory();
    const rejection = await reject(payload);
    expect(rejection).toEqual({
      status: 'rejected',
      runId: expect.stringMatching(/^\d{8}T\d{6}Z-[0-9a-f]{8}$/),
      error: { code: 'InvalidPayload', message: expect.any(String) },
      actions: [...OPS_ACTIONS],
    });
    if (typeof message === 'string') expect(rejection.error.message).toContain(message);
    else expect(rejection.error.message).toMatch(message);
    expect(await inventory()).toEqual(before);
    const record = await runRecord(rejection.runId);
    expect(record).toMatchObject({ status: 'rejected', trigger: 'console' });
    expect(record?.job).toMatch(/^ops(:|$)/);
    expect(record?.errorSummary).toContain(rejection.error.message);
    return rejection;
  };

  beforeAll(async () => {
    // Prepare: a small fleet, one scheduled daily backup and AMI run, then gone-1 terminated.
    ec2 = useLocalAws(inject('awsEndpoint'), REGION, {
      DEPLOYMENT,
      LOCAL_TAG_AFTER_CREATE: 'true',
      RECYCLE_BIN_CHECK: 'false',
      RESTORE_WAIT_SECONDS: '30',
      MAX_DELETIONS: '50',
      COPY_TAGS: 'CostCenter',
    });
    const table = await useLocalHistoryTable(inject('awsEndpoint'), REGION);
    history = createRunHistoryGateway(loadConfig(process.env), table, 30);
    fleet = await launchFleet(ec2, [
      {
        name: 'web-1',
        instanceType: 't3.small',
        tags: {
          'snapkeeper:backup': 'daily',
          'snapkeeper:ami': 'daily',
          CostCenter: 'cc-7',
          Team: 'web',
        },
        dataVolumes: [{ device: '/dev/sdf', sizeGiB: 20 }],
      },
      { name: 'db-1', tags: { 'snapkeeper:backup': 'daily', 'snapkeeper:retain': '1' } },
      { name: 'plain-1' },
      { name: 'late-1' },
      {
        name: 'gone-1',
        tags: { 'snapkeeper:backup': 'daily' },
        dataVolumes: [{ device: '/dev/sdg', sizeGiB: 5 }],
      },
    ]);
    const load = async (name: string): Promise<Handler> =>
      ((await import(`../../functions/${name}.ts`)) as { handler: Handler }).handler;
    backup = await load('backup');
    const slot = latestDailySlot().toISOString();
    dailyBackup = (await backup(
      { schedule: 'daily', scheduledTime: slot },
      lambdaContext(),
    )) as BackupReport;
    const amis = await load('amis');
    const images = (await amis(
      { schedule: 'daily', scheduledTime: slot },
      lambdaContext(),
    )) as AmiReport;
    dailyImageId = images.created.find((c) => c.instanceId === id('web-1'))?.imageId ?? '';
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id('gone-1')] }));
    ops = await load('ops');
  });

  it('starts from a daily backup of every opted-in instance and an AMI of web-1', () => {
    expect(dailyBackup.status).toBe('succeeded');
    expect(dailyBackup.instances.map((r) => r.name).sort()).toEqual(['db-1', 'gone-1', 'web-1']);
    expect(dailyImageId).toMatch(/^ami-/);
  });

  describe('Duplicate console actions', () => {
    it('runs a changing payload pressed twice once: the second press gets the first report', async () => {
      // Prepare
      const payload = { action: 'backup', instanceIds: [id('db-1')], dryRun: false };
      const allSnapshots = async () =>
        (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots?.length ??
        0;

      // Act
      const first = await run(payload);
      const before = await allSnapshots();
      const second = await run({ instanceIds: [id('db-1')], dryRun: false, action: 'backup' });

      // Assess
      expect(second.runId).toBe(first.runId);
      expect(await allSnapshots()).toBe(before);
    });

    it('runs a dry run every time', async () => {
      const payload = { action: 'backup', instanceIds: [id('db-1')], dryRun: true };

      const first = await run(payload);
      const second = await run(payload);

      expect(second.runId).not.toBe(first.runId);
    });
  });

  describe('Action: backup', () => {
    it('backs up the named instances now, tagged schedule manual, even one with no snapkeeper tag', async () => {
      // Act
      const report = await run({ action: 'backup', instanceIds: [id('web-1'), id('plain-1')] });

      // Assess: the answer
      const { backup: made, retention } = report.result as BackupResult;
      expect(report).toMatchObject({
        job: 'ops:backup',
        action: 'backup',
        trigger: 'console',
        dryRun: false,
        status: 'succeeded',
        counts: { snapshots: 3, failed: 0, deleted: 0 },
      });
      expect(made.schedule).toBe('manual');
      expect(made.instances.map((r) => [r.name, r.outcome]).sort()).toEqual([
        ['plain-1', 'created'],
        ['web-1', 'created'],
      ]);
      // Kept for MANUAL_RETAIN_DAYS, never below one per volume: nothing goes.
      expect(retention).toMatchObject({ schedule: 'manual', counts: { deleted: 0 } });

      // Assess: in EC2
      const snapshots = await snapshotsTagged(ec2, 'snapkeeper:run-id', report.runId);
      expect(snapshots.map((s) => s.VolumeId).sort()).toEqual(
        [
          volume('web-1', ROOT_DEVICE),
          volume('web-1', '/dev/sdf'),
          volume('plain-1', ROOT_DEVICE),
        ].sort(),
      );
      for (const snapshot of snapshots) {
        const tags = tagsOf(snapshot);
        const owner = snapshot.VolumeId === volume('plain-1', ROOT_DEVICE) ? 'plain-1' : 'web-1';
        expect(tags).toMatchObject({
          'snapkeeper:managed': 'true',
          'snapkeeper:deployment': DEPLOYMENT,
          'snapkeeper:schedule': 'manual',
          'snapkeeper:instance-id': id(owner),
          'snapkeeper:run-id': report.runId,
          Name: owner,
        });
        expect(tags.CostCenter).toBe(owner === 'web-1' ? 'cc-7' : undefined);
        expect(tags.Team).toBeUndefined();
      }

      // Assess: recorded as a console run
      expect(await runRecord(report.runId)).toMatchObject({
        job: 'ops:backup',
        trigger: 'console',
        status: 'succeeded',
        dryRun: false,
      });
    });

    it('rejects a backup naming an unknown instance id, naming the id, and backs up nothing', async () => {
      // Prepare
      const before = await inventory();

      // Act
      const rejection = await reject({
        action: 'backup',
        instanceIds: [UNKNOWN.instance, id('db-1')],
      });

      // Assess
      expect(rejection.error.message).toBe(
        `field "instanceIds": ${UNKNOWN.instance} is not an instance of this account in ${REGION} (unknown or terminated); nothing was backed up`,
      );
      expect(await inventory()).toEqual(before);
    });

    it('creates nothing in a dry run, and says what it would snapshot', async () => {
      // Prepare
      const before = await inventory();

      // Act
      const report = await run(
        sample('ops-backup-instances-dry-run.json', { 'i-0123456789abcdef0': id('web-1') }),
      );

      // Assess
      const { backup: planned } = report.result as BackupResult;
      expect(report).toMatchObject({ dryRun: true, counts: { snapshots: 0 } });
      expect(planned.instances).toEqual([
        expect.objectContaining({
          instanceId: id('web-1'),
          outcome: 'planned',
          snapshots: [
            expect.objectContaining({ volumeId: volume('web-1', ROOT_DEVICE), state: 'planned' }),
            expect.objectContaining({ volumeId: volume('web-1', '/dev/sdf'), state: 'planned' }),
          ],
        }),
      ]);
      expect(await inventory()).toEqual(before);
    });

    it('backs up everything tagged for a schedule, tagged with it, and applies its retention afterwards', async () => {
      // Prepare: db-1 keeps one daily snapshot (snapkeeper:retain=1).
      const dbBefore = await managedSnapshots({
        'snapkeeper:instance-id': id('db-1'),
        'snapkeeper:schedule': 'daily',
      });
      expect(dbBefore.length).toBeGreaterThanOrEqual(1);

      // Act
      const report = await run(sample('ops-backup-schedule.json'));

      // Assess: the backup
      const { backup: made, retention } = report.result as BackupResult;
      expect(report.status).toBe('succeeded');
      expect(made.schedule).toBe('daily');
      expect(made.instances.map((r) => r.name).sort()).toEqual(['db-1', 'web-1']);
      const snapshots = await snapshotsTagged(ec2, 'snapkeeper:run-id', report.runId);
      expect(snapshots).toHaveLength(3);
      for (const s of snapshots) expect(tagsOf(s)['snapkeeper:schedule']).toBe('daily');

      // Assess: retention ran after it, for the schedule: db-1 is down to the new snapshot.
      expect(retention).toMatchObject({ schedule: 'daily', dryRun: false });
      expect(retention.counts.deleted).toBe(dbBefore.length);
      expect(report.counts?.deleted).toBe(dbBefore.length);
      const dbAfter = await managedSnapshots({
        'snapkeeper:instance-id': id('db-1'),
        'snapkeeper:schedule': 'daily',
      });
      expect(dbAfter.map((s) => tagsOf(s)['snapkeeper:run-id'])).toEqual([report.runId]);
      for (const s of dbBefore) expect(await snapshotExists(s.SnapshotId ?? '')).toBe(false);
    });

    it.each([
      [
        'both instanceIds and schedule',
        { instanceIds: ['i-0123456789abcdef0'], schedule: 'daily' },
      ],
      ['neither instanceIds nor schedule', {}],
    ])('rejects %s, naming them', async (_, fields) => {
      await expectRejection(
        { action: 'backup', ...fields },
        'action "backup" takes either "instanceIds" (a list of instance ids) or "schedule" (back up everything tagged for it), not both and not neither',
      );
    });
  });

  describe('Action: retention', () => {
    /** db-1's daily snapshots beyond the one it keeps, oldest last. */
    let beyondCount: string[];

    beforeAll(async () => {
      // Prepare: a second daily set (yesterday's slot), so db-1 has one too many.
      await backup(
        {
          schedule: 'daily',
          scheduledTime: new Date(latestDailySlot().getTime() - DAY_MS).toISOString(),
        },
        lambdaContext(),
      );
      const db = await managedSnapshots({
        'snapkeeper:instance-id': id('db-1'),
        'snapkeeper:schedule': 'daily',
      });
      beyondCount = db.slice(1).map((s) => s.SnapshotId ?? '');
    });

    it('plans without deleting in a dry run', async () => {
      // Prepare
      expect(beyondCount.length).toBeGreaterThanOrEqual(1);
      const before = await inventory();

      // Act
      const report = await run(sample('ops-retention-dry-run.json'));

      // Assess
      const retention = report.result as RetentionReport;
      expect(report).toMatchObject({ job: 'ops:retention', dryRun: true, status: 'succeeded' });
      expect(retention.counts).toMatchObject({ planned: beyondCount.length, deleted: 0 });
      const db = retention.volumes.find((v) => v.volumeId === volume('db-1', ROOT_DEVICE));
      expect(db?.deletions.map((d) => [d.snapshotId, d.outcome]).sort()).toEqual(
        beyondCount.map((s) => [s, 'planned']).sort(),
      );
      expect(await inventory()).toEqual(before);
    });

    it('rejects a maxDeletions override without confirm, saying confirm is needed', async () => {
      await expectRejection(
        { action: 'retention', schedule: 'daily', maxDeletions: 5 },
        'field "maxDeletions" lifts the deletion cap for one run and needs "confirm": true',
      );
      for (const s of beyondCount) expect(await snapshotExists(s)).toBe(true);
    });

    it('holds to a confirmed maxDeletions of 0: deletes nothing and fails loudly', async () => {
      // Act
      const report = await run({
        action: 'retention',
        schedule: 'daily',
        maxDeletions: 0,
        confirm: true,
      });

      // Assess
      const retention = report.result as RetentionReport;
      expect(report.status).toBe('failed');
      expect(retention.cap).toMatchObject({
        limit: 0,
        planned: beyondCount.length,
        exceeded: true,
      });
      expect(report.error?.code).toBe('DeletionCapExceeded');
      for (const s of beyondCount) expect(await snapshotExists(s)).toBe(true);
    });

    it('deletes beyond the count with a confirmed maxDeletions override', async () => {
      // Act
      const report = await run(sample('ops-retention-lift-cap.json'));

      // Assess
      const retention = report.result as RetentionReport;
      expect(report.status).toBe('succeeded');
      expect(retention.cap).toEqual({ limit: 500, planned: beyondCount.length, exceeded: false });
      expect(retention.counts.deleted).toBe(beyondCount.length);
      for (const s of beyondCount) expect(await snapshotExists(s)).toBe(false);
      const actions = await history.runActions(report.runId);
      expect(
        actions
          .filter((a) => a.action === 'delete-snapshot' && a.phase === 'after')
          .map((a) => a.resourceId)
          .sort(),
      ).toEqual([...beyondCount].sort());
    });
  });

  describe('Action: plan', () => {
    it('previews every schedule, one reason per line, with the next run, and creates nothing', async () => {
      // Prepare
      const before = await inventory();
      const now = Date.now();
      const nextDaily = latestDailySlot(now).getTime() + DAY_MS;

      // Act
      const report = await run(sample('ops-plan.json'));

      // Assess
      const { schedules } = report.result as { schedules: SchedulePlan[] };
      expect(report).toMatchObject({ job: 'ops:plan', dryRun: true, status: 'succeeded' });
      expect(schedules.map((s) => s.schedule)).toEqual(['daily', 'weekly', 'monthly']);
      for (const s of schedules) expect(Date.parse(s.nextRun)).toBeGreaterThan(now);
      const daily = schedules[0];
      expect(daily?.nextRun).toBe(new Date(nextDaily).toISOString());
      expect(daily?.lines).toContainEqual(
        expect.stringMatching(
          new RegExp(`^create snapshot set of ${id('web-1')} \\(web-1\\): /dev/sda1 vol-`),
        ),
      );
      expect(daily?.lines).toContainEqual(
        expect.stringMatching(
          new RegExp(`^create AMI web-1-${DEPLOYMENT}-daily-\\d{8}T0300Z of ${id('web-1')}`),
        ),
      );
      expect(daily?.lines).toContainEqual(expect.stringMatching(/^keep snap-\w+ of vol-\w+: /));
      expect(daily?.lines).toContainEqual(expect.stringMatching(/^keep ami-\w+: /));
      expect(report.counts).toEqual({
        schedules: 3,
        lines: schedules.reduce((n, s) => n + s.lines.length, 0),
      });
      expect(await inventory()).toEqual(before);
    });

    it('previews one schedule when asked', async () => {
      const before = await inventory();

      const report = await run(sample('ops-plan-daily.json'));

      const { schedules } = report.result as { schedules: SchedulePlan[] };
      expect(schedules.map((s) => s.schedule)).toEqual(['daily']);
      expect(schedules[0]?.lines.some((l) => l.startsWith('create '))).toBe(true);
      expect(schedules[0]?.lines.some((l) => l.startsWith('keep '))).toBe(true);
      expect(await inventory()).toEqual(before);
    });

    it('rejects an unknown schedule, listing the known ones', async () => {
      await expectRejection(
        { action: 'plan', schedule: 'hourly' },
        'field "schedule": "hourly" is not a known schedule; known: daily, weekly, monthly',
      );
    });

    it('rejects dryRun, which plan does not take', async () => {
      await expectRejection(
        { action: 'plan', dryRun: true },
        'unexpected field(s) "dryRun" for action "plan"; it takes action, schedule',
      );
    });
  });

  describe('Action: report', () => {
    let report: OpsReport;
    let recovery: ConsoleRecoveryReport;
    let before: Inventory;

    beforeAll(async () => {
      // Prepare: late-1 opts in after every backup ran.
      await ec2.send(
        new CreateTagsCommand({
          Resources: [id('late-1')],
          Tags: [{ Key: 'snapkeeper:backup', Value: 'daily' }],
        }),
      );
      before = await inventory();

      // Act
      report = await run(sample('ops-report.json'));
      recovery = report.result as ConsoleRecoveryReport;
    });

    it('gives each opted-in instance its newest snapshot, its age, RPO met, and its recovery points', async () => {
      const web = await managedSnapshots({ 'snapkeeper:instance-id': id('web-1') });
      const newest = web[0];
      const entry = recovery.instances.find((i) => i.instanceId === id('web-1'));

      expect(entry).toMatchObject({
        name: 'web-1',
        schedules: ['daily'],
        newestSnapshot: {
          snapshotId: newest?.SnapshotId,
          createdAt: tagsOf(newest ?? {})['snapkeeper:created-at'],
        },
        rpo: [{ schedule: 'daily', intervalHours: 24, met: true }],
        recoveryPoints: new Set(web.map((s) => tagsOf(s)['snapkeeper:run-id'])).size,
        neverBackedUp: false,
        newestImage: { imageId: dailyImageId },
      });
      expect(entry?.newestSnapshot?.ageHours).toBeGreaterThanOrEqual(0);
      expect(entry?.newestSnapshot?.ageHours).toBeLessThanOrEqual(0.1);
      expect(entry?.rpo[0]?.newestAgeHours).toBeLessThanOrEqual(0.1);
      expect(recovery.instances.map((i) => i.name).sort()).toEqual(['db-1', 'late-1', 'web-1']);
      expect(recovery.rpoMissed.map((r) => r.name)).not.toContain('web-1');
    });

    it('lists a tagged instance that was never backed up', () => {
      expect(recovery.neverBackedUp).toEqual([{ instanceId: id('late-1'), name: 'late-1' }]);
      expect(recovery.totals.neverBackedUp).toBe(1);
      expect(recovery.rpoMissed).toEqual([
        { instanceId: id('late-1'), name: 'late-1', schedule: 'daily' },
      ]);
      expect(report.status).toBe('partial');
    });

    it('lists the managed snapshots whose instance is gone', async () => {
      const gone = await managedSnapshots({ 'snapkeeper:instance-id': id('gone-1') });

      expect(recovery.orphaned).toContainEqual({
        instanceId: id('gone-1'),
        name: 'gone-1',
        snapshots: gone.length,
        sizeGiB: 8 + 5,
        newestCreatedAt: tagsOf(gone[0] ?? {})['snapkeeper:created-at'],
      });
    });

    it('does not call the history of a live instance orphaned because it is not opted in', async () => {
      // plain-1 is running, untagged, and has console backups (schedule manual).
      expect(await managedSnapshots({ 'snapkeeper:instance-id': id('plain-1') })).not.toEqual([]);
      expect((await describeInstance(id('plain-1'))).State?.Name).toBe('running');

      expect(recovery.orphaned.map((o) => o.name)).toEqual(['gone-1']);
    });

    it('changes nothing', async () => {
      expect(report.dryRun).toBe(true);
      expect(await inventory()).toEqual(before);
    });
  });

  describe('Action: restore-volume', () => {
    /** web-1's /dev/sdf snapshot from the daily backup. */
    let dataSnapshot: string;
    let zone: string;

    beforeAll(async () => {
      dataSnapshot = dailySnapshot('web-1', '/dev/sdf');
      zone = (await describeInstance(id('web-1'))).Placement?.AvailabilityZone ?? '';
    });

    const expectRestored = async (
      report: OpsReport,
      expected: { snapshotId: string; sourceVolumeId: string; sizeGiB: number; type: string },
    ): Promise<Volume | undefined> => {
      const result = report.result as RestoreVolumeResult;
      expect(result).toMatchObject({
        status: 'succeeded',
        source: { snapshotId: expected.snapshotId, volumeId: expected.sourceVolumeId },
        availabilityZone: zone,
        sizeGiB: expected.sizeGiB,
        volumeType: expected.type,
      });
      const restored = await describeVolume(result.volumeId ?? '');
      expect(restored).toMatchObject({
        SnapshotId: expected.snapshotId,
        AvailabilityZone: zone,
        Size: expected.sizeGiB,
        VolumeType: expected.type,
      });
      expect(tagsOf(restored ?? {})).toMatchObject({
        'snapkeeper:restored-from-snapshot': expected.snapshotId,
        'snapkeeper:restored-from-volume': expected.sourceVolumeId,
        'snapkeeper:restored-by-run': report.runId,
        'snapkeeper:deployment': DEPLOYMENT,
        Name: `restore of ${expected.sourceVolumeId} from ${expected.snapshotId}`,
      });
      expect(tagsOf(restored ?? {})['snapkeeper:managed']).toBeUndefined();
      return restored;
    };

    it('creates a volume from a snapshot id, in the source volume’s zone, the snapshot’s size', async () => {
      const report = await run({ action: 'restore-volume', snapshotId: dataSnapshot });

      expect(report).toMatchObject({ job: 'ops:restore-volume', status: 'succeeded' });
      await expectRestored(report, {
        snapshotId: dataSnapshot,
        sourceVolumeId: volume('web-1', '/dev/sdf'),
        sizeGiB: 20,
        type: 'gp3',
      });
    });

    it('takes the zone of the source volume, wherever it is, unless told', async () => {
      // Prepare: a volume of its own in another zone, and a snapshot of it.
      const other = zone === `${REGION}a` ? `${REGION}c` : `${REGION}a`;
      const source = await ec2.send(
        new CreateVolumeCommand({ AvailabilityZone: other, Size: 3, VolumeType: 'gp3' }),
      );
      const snapshot = await ec2.send(new CreateSnapshotCommand({ VolumeId: source.VolumeId }));

      // Act
      const report = await run({ action: 'restore-volume', snapshotId: snapshot.SnapshotId });

      // Assess
      const result = report.result as RestoreVolumeResult;
      expect(result).toMatchObject({ status: 'succeeded', availabilityZone: other, sizeGiB: 3 });
      expect((await describeVolume(result.volumeId ?? ''))?.AvailabilityZone).toBe(other);
    });

    it('rejects a snapshot whose volume is gone when no zone is given, naming availabilityZone', async () => {
      // Prepare: the terminated instance's root volume deleted (moto keeps it).
      const snapshotId = dailySnapshot('gone-1', ROOT_DEVICE);
      if (await describeVolume(volume('gone-1', ROOT_DEVICE))) {
        await ec2.send(new DeleteVolumeCommand({ VolumeId: volume('gone-1', ROOT_DEVICE) }));
      }

      await expectRejection(
        { action: 'restore-volume', snapshotId },
        `field "availabilityZone" is required: the source volume ${volume('gone-1', ROOT_DEVICE)} no longer exists`,
      );
    });

    it('creates a volume from the newest completed snapshot of a volume, of the type and size asked', async () => {
      // Prepare: a newer manual set of web-1.
      const manual = await run({ action: 'backup', instanceIds: [id('web-1')] });
      const [newest] = await managedSnapshots({
        'snapkeeper:run-id': manual.runId,
        'snapkeeper:instance-id': id('web-1'),
      }).then((all) => all.filter((s) => s.VolumeId === volume('web-1', '/dev/sdf')));

      // Act
      const report = await run({
        ...(sample('ops-restore-volume.json', {
          'vol-0123456789abcdef0': volume('web-1', '/dev/sdf'),
        }) as object),
        volumeType: 'gp2',
        sizeGiB: 30,
      });

      // Assess
      await expectRestored(report, {
        snapshotId: newest?.SnapshotId ?? 'none',
        sourceVolumeId: volume('web-1', '/dev/sdf'),
        sizeGiB: 30,
        type: 'gp2',
      });
    });

    it('creates a volume from the newest completed snapshot of an instance device', async () => {
      const [newest] = (await managedSnapshots({ 'snapkeeper:instance-id': id('web-1') })).filter(
        (s) => s.VolumeId === volume('web-1', '/dev/sdf'),
      );

      const report = await run({
        action: 'restore-volume',
        instanceId: id('web-1'),
        device: '/dev/sdf',
      });

      await expectRestored(report, {
        snapshotId: newest?.SnapshotId ?? 'none',
        sourceVolumeId: volume('web-1', '/dev/sdf'),
        sizeGiB: 20,
        type: 'gp3',
      });
      expect((report.result as RestoreVolumeResult).source.how).toBe(
        `newest completed snapshot of ${id('web-1')} /dev/sdf (${volume('web-1', '/dev/sdf')})`,
      );
    });

    it('attaches the restored volume at the device asked, when confirmed', async () => {
      // Act
      const report = await run(
        sample('ops-restore-volume-attach.json', {
          'snap-0123456789abcdef0': dataSnapshot,
          'i-0123456789abcdef0': id('plain-1'),
        }),
      );

      // Assess
      const result = report.result as RestoreVolumeResult;
      expect(result.attachedTo).toEqual({ instanceId: id('plain-1'), device: '/dev/sdz' });
      const restored = await expectRestored(report, {
        snapshotId: dataSnapshot,
        sourceVolumeId: volume('web-1', '/dev/sdf'),
        sizeGiB: 20,
        type: 'gp3',
      });
      expect(restored?.Attachments).toEqual([
        expect.objectContaining({ InstanceId: id('plain-1'), Device: '/dev/sdz' }),
      ]);
    });

    it('creates nothing in a dry run, and says what it would do', async () => {
      const before = await inventory();

      const report = await run({
        action: 'restore-volume',
        snapshotId: dataSnapshot,
        attachTo: { instanceId: id('plain-1'), device: '/dev/sdy' },
        dryRun: true,
      });

      expect(report).toMatchObject({ dryRun: true, status: 'succeeded' });
      expect(report.result).toMatchObject({
        status: 'planned',
        availabilityZone: zone,
        sizeGiB: 20,
        attachedTo: { instanceId: id('plain-1'), device: '/dev/sdy' },
      });
      expect((report.result as RestoreVolumeResult).volumeId).toBeUndefined();
      expect(await inventory()).toEqual(before);
    });

    it('rejects a size below the snapshot, naming sizeGiB', async () => {
      await expectRejection(
        { action: 'restore-volume', snapshotId: dataSnapshot, sizeGiB: 10 },
        'field "sizeGiB": 10 is smaller than the snapshot (20 GiB)',
      );
    });

    it('rejects attaching without confirm', async () => {
      await expectRejection(
        {
          action: 'restore-volume',
          snapshotId: dataSnapshot,
          attachTo: { instanceId: id('plain-1'), device: '/dev/sdx' },
        },
        'attaching the restored volume ("attachTo") needs "confirm": true',
      );
    });

    it.each([['/dev/sda1'], ['xvda1']])(
      'rejects attaching at a device already in use (%s), naming attachTo.device',
      async (device) => {
        await expectRejection(
          {
            action: 'restore-volume',
            snapshotId: dataSnapshot,
            attachTo: { instanceId: id('plain-1'), device },
            confirm: true,
          },
          `field "attachTo.device": ${device} is already in use on ${id('plain-1')}`,
        );
      },
    );

    it('rejects attaching to an instance in another zone than the volume’s', async () => {
      const other = zone === `${REGION}a` ? `${REGION}c` : `${REGION}a`;

      await expectRejection(
        {
          action: 'restore-volume',
          snapshotId: dataSnapshot,
          availabilityZone: other,
          attachTo: { instanceId: id('plain-1'), device: '/dev/sdx' },
          confirm: true,
        },
        `field "attachTo.instanceId": ${id('plain-1')} is in ${zone}, the volume would be in ${other}`,
      );
    });

    /** Cases built when run, since the fleet's ids are known only then. */
    it.each<[string, () => { fields: Record<string, unknown>; message: string }]>([
      [
        'an unknown snapshot',
        () => ({
          fields: { snapshotId: UNKNOWN.snapshot },
          message: `field "snapshotId": ${UNKNOWN.snapshot} does not exist in this account and region`,
        }),
      ],
      [
        'a volume with no snapshot by this deployment',
        () => ({
          fields: { volumeId: UNKNOWN.volume },
          message: `field "volumeId": no completed snapshot of ${UNKNOWN.volume} made by this deployment`,
        }),
      ],
      [
        'an unknown instance',
        () => ({
          fields: { instanceId: UNKNOWN.instance, device: '/dev/sdf' },
          message: `field "instanceId": instance ${UNKNOWN.instance} does not exist in this account and region`,
        }),
      ],
      [
        'a device the instance does not have',
        () => ({
          fields: { instanceId: id('web-1'), device: '/dev/sdq' },
          message: `field "device": ${id('web-1')} has no volume at /dev/sdq; its devices: /dev/sda1, /dev/sdf`,
        }),
      ],
      [
        'an unknown instance to attach to',
        () => ({
          fields: {
            snapshotId: dataSnapshot,
            attachTo: { instanceId: UNKNOWN.instance, device: '/dev/sdx' },
          },
          message: `field "attachTo.instanceId": instance ${UNKNOWN.instance} does not exist in this account and region`,
        }),
      ],
      [
        'two sources',
        () => ({
          fields: { snapshotId: dataSnapshot, volumeId: volume('web-1', '/dev/sdf') },
          message:
            'action "restore-volume" takes exactly one source: "snapshotId", "volumeId", or "instanceId" with "device"',
        }),
      ],
      [
        'an instance without a device',
        () => ({
          fields: { instanceId: id('web-1') },
          message: 'action "restore-volume": "instanceId" and "device" go together',
        }),
      ],
    ])('rejects %s, naming the field', async (_, build) => {
      const { fields, message } = build();

      await expectRejection({ action: 'restore-volume', confirm: true, ...fields }, message);
    });
  });

  describe('Action: restore-drill', () => {
    it('restores the newest snapshot of a volume, waits for it, records the time, and deletes it', async () => {
      // Prepare
      const before = await inventory();
      const [newest] = (await managedSnapshots({ 'snapkeeper:instance-id': id('web-1') })).filter(
        (s) => s.VolumeId === volume('web-1', ROOT_DEVICE),
      );

      // Act
      const report = await run(
        sample('ops-restore-drill.json', { 'vol-0123456789abcdef0': volume('web-1', ROOT_DEVICE) }),
      );

      // Assess: the answer
      const result = report.result as RestoreVolumeResult;
      expect(report).toMatchObject({ job: 'ops:restore-drill', status: 'succeeded' });
      expect(result).toMatchObject({
        status: 'succeeded',
        source: { snapshotId: newest?.SnapshotId, volumeId: volume('web-1', ROOT_DEVICE) },
        drill: { deleted: true },
      });
      expect(result.volumeId).toMatch(/^vol-/);
      expect(report.counts?.secondsToAvailable).toBeGreaterThanOrEqual(0);

      // Assess: nothing left behind
      expect(await describeVolume(result.volumeId ?? '')).toBeUndefined();
      const drills = await ec2.send(
        new DescribeVolumesCommand({
          Filters: [{ Name: 'tag:snapkeeper:restore-drill', Values: ['true'] }],
        }),
      );
      expect(drills.Volumes).toEqual([]);
      expect(await inventory()).toEqual(before);

      // Assess: the run history
      const actions = await history.runActions(report.runId);
      const drill = actions.find((a) => a.action === 'restore-drill');
      expect(drill).toMatchObject({
        job: 'restore-drill',
        resourceId: newest?.SnapshotId,
        outcome: 'done',
        details: { drillVolumeId: result.volumeId, volumeId: volume('web-1', ROOT_DEVICE) },
      });
      expect(drill?.details?.secondsToAvailable).toEqual(expect.any(Number));
      expect(await runRecord(report.runId)).toMatchObject({
        job: 'ops:restore-drill',
        status: 'succeeded',
        counts: { secondsToAvailable: report.counts?.secondsToAvailable },
      });
    });

    it('drills a given snapshot', async () => {
      const snapshotId = dailySnapshot('web-1', '/dev/sdf');

      const report = await run({ action: 'restore-drill', snapshotId });

      expect(report.result).toMatchObject({
        status: 'succeeded',
        source: { snapshotId },
        drill: { deleted: true },
      });
      expect(await describeVolume((report.result as RestoreVolumeResult).volumeId ?? '')).toBe(
        undefined,
      );
    });

    it('creates nothing in a dry run', async () => {
      const before = await inventory();

      const report = await run({
        action: 'restore-drill',
        volumeId: volume('web-1', '/dev/sdf'),
        dryRun: true,
      });

      expect(report.result).toMatchObject({ status: 'planned' });
      expect(await inventory()).toEqual(before);
    });

    it('rejects a drill without a source', async () => {
      await expectRejection(
        { action: 'restore-drill' },
        'action "restore-drill" takes exactly one of "volumeId" (its newest completed snapshot) or "snapshotId"',
      );
    });
  });

  describe('Action: duplicate-instance', () => {
    const expectDuplicate = async (
      report: OpsReport,
      expected: { name: string; instanceType: string },
    ): Promise<void> => {
      const result = report.result as LaunchResult;
      expect(result).toMatchObject({
        status: 'succeeded',
        imageId: dailyImageId,
        sourceInstanceId: id('web-1'),
        ...expected,
      });
      const source = await describeInstance(id('web-1'));
      const copy = await describeInstance(result.instanceId ?? '');
      expect(copy).toMatchObject({
        ImageId: dailyImageId,
        InstanceType: expected.instanceType,
        SubnetId: source.SubnetId,
      });
      expect(copy.SecurityGroups?.map((g) => g.GroupId)).toEqual(
        source.SecurityGroups?.map((g) => g.GroupId),
      );
      expect(tagsOf(copy)).toEqual({
        Name: expected.name,
        CostCenter: 'cc-7',
        Team: 'web',
        'snapkeeper:duplicated-from': id('web-1'),
        'snapkeeper:source-image': dailyImageId,
      });
    };

    it('launches a copy from the newest managed AMI of an instance, with its type and tags, under a new Name', async () => {
      const report = await run(
        sample('ops-duplicate-instance.json', { 'i-0fedcba9876543210': id('web-1') }),
      );

      expect(report).toMatchObject({ job: 'ops:duplicate-instance', status: 'succeeded' });
      await expectDuplicate(report, { name: 'db-1-copy', instanceType: 't3.small' });
    });

    it('launches a copy from an AMI id, taking the source from its tags, of another type if asked', async () => {
      const report = await run({
        action: 'duplicate-instance',
        imageId: dailyImageId,
        instanceType: 't3.medium',
        confirm: true,
      });

      await expectDuplicate(report, { name: 'web-1-copy', instanceType: 't3.medium' });
    });

    it('launches nothing in a dry run', async () => {
      const before = await inventory();

      const report = await run({
        action: 'duplicate-instance',
        instanceId: id('web-1'),
        dryRun: true,
      });

      expect(report.result).toMatchObject({
        status: 'planned',
        imageId: dailyImageId,
        instanceType: 't3.small',
        name: 'web-1-copy',
      });
      expect(await inventory()).toEqual(before);
    });

    it('rejects a duplicate without confirm', async () => {
      await expectRejection(
        { action: 'duplicate-instance', instanceId: id('web-1') },
        'action "duplicate-instance" launches an instance and needs "confirm": true',
      );
    });

    it('rejects an instance with no AMI, saying so', async () => {
      await expectRejection(
        { action: 'duplicate-instance', instanceId: id('plain-1'), confirm: true },
        `field "instanceId": ${id('plain-1')} has no available AMI made by this deployment`,
      );
    });

    it('rejects an AMI the account does not own', async () => {
      await expectRejection(
        { action: 'duplicate-instance', imageId: UNKNOWN.image, confirm: true },
        `field "imageId": ${UNKNOWN.image} is not an AMI this account owns in this region`,
      );
    });
  });

  describe('Action: restore-instance', () => {
    /** The devices and snapshots of an instance's set in the daily backup. */
    const setOf = (name: string) =>
      (dailyBackup.instances.find((r) => r.instanceId === id(name))?.snapshots ?? [])
        .map((s) => ({ deviceName: s.deviceName ?? '', snapshotId: s.snapshotId ?? '' }))
        .sort((a, b) => a.deviceName.localeCompare(b.deviceName));

    /** What a restore registered, as its answer and its run history say. */
    const expectRegistered = async (report: OpsReport, name: string): Promise<LaunchResult> => {
      const result = report.result as LaunchResult;
      const byDevice = (a: { deviceName: string }, b: { deviceName: string }) =>
        a.deviceName.localeCompare(b.deviceName);
      expect(result).toMatchObject({ status: 'succeeded', registeredImage: true });
      expect([...(result.mappings ?? [])].sort(byDevice)).toEqual(setOf(name));
      // moto's RegisterImage ignores BlockDeviceMappings, so the AMI's own mappings cannot
      // be read back; the history records the snapshots it was registered from.
      const registered = (await history.runActions(report.runId)).find(
        (a) => a.action === 'register-image',
      );
      expect(registered).toMatchObject({
        job: 'restore-instance',
        resourceId: result.imageId,
        outcome: 'done',
      });
      expect(
        [...((registered?.details?.snapshotIds as string[] | undefined) ?? [])].sort(),
      ).toEqual(
        setOf(name)
          .map((m) => m.snapshotId)
          .sort(),
      );
      const image = await describeImage(result.imageId);
      expect(tagsOf(image ?? {})).toMatchObject({
        'snapkeeper:managed': 'true',
        'snapkeeper:deployment': DEPLOYMENT,
        'snapkeeper:schedule': 'manual',
        'snapkeeper:instance-id': id(name),
        'snapkeeper:run-id': report.runId,
      });
      const restored = await describeInstance(result.instanceId ?? '');
      expect(restored.ImageId).toBe(result.imageId);
      expect(tagsOf(restored)).toMatchObject({
        'snapkeeper:restored-from': id(name),
        'snapkeeper:source-image': result.imageId,
      });
      expect(tagsOf(restored)['snapkeeper:backup']).toBeUndefined();
      return result;
    };

    it('registers a managed AMI from a run’s snapshot set and launches it like the source', async () => {
      // Act
      const report = await run(
        sample('ops-restore-instance.json', {
          '20261123T030002Z-9f3a12bc': dailyBackup.runId,
          'i-0123456789abcdef0': id('web-1'),
        }),
      );

      // Assess
      expect(report).toMatchObject({ job: 'ops:restore-instance', status: 'succeeded' });
      const result = await expectRegistered(report, 'web-1');
      expect(result.instanceType).toBe('t3.small');
      const restored = await describeInstance(result.instanceId ?? '');
      expect(restored.InstanceType).toBe('t3.small');
      expect(tagsOf(restored)).toMatchObject({ CostCenter: 'cc-7', Team: 'web' });
    });

    it('takes the devices from the run history when the instance is gone', async () => {
      // Prepare: the terminated instance no longer tells its devices.
      expect((await describeInstance(id('gone-1'))).BlockDeviceMappings ?? []).toEqual([]);
      expect(setOf('gone-1').map((m) => m.deviceName)).toEqual([ROOT_DEVICE, '/dev/sdg']);

      // Act
      const report = await run({
        action: 'restore-instance',
        runId: dailyBackup.runId,
        instanceId: id('gone-1'),
        confirm: true,
      });

      // Assess
      await expectRegistered(report, 'gone-1');
    });

    it('registers and launches nothing in a dry run', async () => {
      const before = await inventory();

      const report = await run({
        action: 'restore-instance',
        runId: dailyBackup.runId,
        instanceId: id('web-1'),
        dryRun: true,
      });

      expect(report.result).toMatchObject({ status: 'planned', registeredImage: true });
      expect(await inventory()).toEqual(before);
    });

    it('rejects a run id with no snapshot set of the instance', async () => {
      await expectRejection(
        {
          action: 'restore-instance',
          runId: UNKNOWN.runId,
          instanceId: id('web-1'),
          confirm: true,
        },
        `fields "runId" and "instanceId": no snapshot set of ${id('web-1')} from run ${UNKNOWN.runId}`,
      );
    });

    it('rejects a restore without confirm', async () => {
      await expectRejection(
        { action: 'restore-instance', runId: dailyBackup.runId, instanceId: id('web-1') },
        'action "restore-instance" registers an AMI, launches an instance and needs "confirm": true',
      );
    });
  });

  describe('Payload rules', () => {
    const actions = OPS_ACTIONS.join(', ');

    it.each([
      [
        'an unknown action',
        { action: 'snapshot' },
        `field "action": "snapshot" is not an action; actions: ${actions}`,
      ],
      ['a missing action', { schedule: 'daily' }, `field "action" is missing; actions: ${actions}`],
      [
        'an action of the wrong type',
        { action: 42 },
        `field "action": number is not an action; actions: ${actions}`,
      ],
      [
        'a dryRun of the wrong type',
        { action: 'retention', schedule: 'daily', dryRun: 'yes' },
        'field "dryRun" must be true or false (action "retention")',
      ],
      [
        'a size of the wrong type',
        { action: 'restore-volume', snapshotId: 'snap-0123456789abcdef0', sizeGiB: '20' },
        'field "sizeGiB" must be a whole number of GiB',
      ],
      [
        'instanceIds that are not a list',
        { action: 'backup', instanceIds: 'i-0123456789abcdef0' },
        'field "instanceIds" must be a list of instance ids',
      ],
      [
        'an empty list of instanceIds',
        { action: 'backup', instanceIds: [] },
        'field "instanceIds" must name at least one instance',
      ],
      [
        'a fractional maxDeletions',
        { action: 'retention', schedule: 'daily', maxDeletions: 1.5, confirm: true },
        'field "maxDeletions" must be a whole number of deletions',
      ],
      [
        'a malformed instance id',
        { action: 'backup', instanceIds: ['i-xyz'] },
        'field "instanceIds.0" must be an instance id such as i-0123456789abcdef0',
      ],
      [
        'a malformed snapshot id',
        { action: 'restore-volume', snapshotId: 'snap-123' },
        'field "snapshotId" must be a snapshot id such as snap-0123456789abcdef0',
      ],
      [
        'a malformed volume id',
        { action: 'restore-drill', volumeId: 'vol-12' },
        'field "volumeId" must be a volume id such as vol-0123456789abcdef0',
      ],
      [
        'a malformed AMI id',
        { action: 'duplicate-instance', imageId: 'ami-xyz', confirm: true },
        'field "imageId" must be an AMI id such as ami-0123456789abcdef0',
      ],
      [
        'a malformed run id',
        {
          action: 'restore-instance',
          runId: 'yesterday',
          instanceId: 'i-0123456789abcdef0',
          confirm: true,
        },
        'field "runId" must be a run id such as 20261123T030002Z-9f3a12bc',
      ],
      [
        'a malformed device',
        { action: 'restore-volume', instanceId: 'i-0123456789abcdef0', device: '/dev/disk0' },
        'field "device" must be a device name such as /dev/sdf or xvdf',
      ],
      [
        'a malformed availability zone',
        {
          action: 'restore-drill',
          volumeId: 'vol-0123456789abcdef0',
          availabilityZone: 'the moon',
        },
        'field "availabilityZone" must be an availability zone such as eu-west-1a',
      ],
      [
        'an unexpected field',
        { action: 'report', verbose: true },
        'unexpected field(s) "verbose" for action "report"; it takes action, schedule',
      ],
      [
        'an unexpected field inside attachTo',
        {
          action: 'restore-volume',
          snapshotId: 'snap-0123456789abcdef0',
          attachTo: { instanceId: 'i-0123456789abcdef0', device: '/dev/sdf', force: true },
          confirm: true,
        },
        'unexpected field(s) "attachTo.force" for action "restore-volume"',
      ],
      [
        'an injection-looking instance id',
        { action: 'backup', instanceIds: ['i-0123456789abcdef0; rm -rf /'] },
        'field "instanceIds.0" must be an instance id',
      ],
      [
        'an injection-looking snapshot id',
        { action: 'restore-drill', snapshotId: "snap-0123456789abcdef0' OR '1'='1" },
        'field "snapshotId" must be a snapshot id',
      ],
      [
        'an injection-looking schedule',
        { action: 'plan', schedule: 'daily && curl http://evil' },
        'field "schedule" must be a schedule name such as daily',
      ],
      [
        'a prototype-polluting field',
        JSON.parse('{"action":"report","__proto__":{"admin":true}}'),
        'unexpected field(s) "__proto__" for action "report"',
      ],
      [
        'an array',
        [{ action: 'report' }],
        `the payload must be a JSON object with an "action"; actions: ${actions}`,
      ],
      [
        'a string',
        'report',
        `the payload must be a JSON object with an "action"; actions: ${actions}`,
      ],
      ['null', null, `the payload must be a JSON object with an "action"; actions: ${actions}`],
    ])('rejects %s, naming the field, and changes nothing', async (_, payload, message) => {
      const rejection = await expectRejection(payload, message);

      const record = await runRecord(rejection.runId);
      expect(record).toMatchObject({
        job: 'ops',
        status: 'rejected',
        errorSummary: `InvalidPayload: ${rejection.error.message}`,
      });
    });

    it('rejects a 1 MB payload, saying how large it may be', async () => {
      const payload = { action: 'report', note: 'x'.repeat(1_048_576) };
      const size = Buffer.byteLength(JSON.stringify(payload));

      const rejection = await expectRejection(
        payload,
        `the payload is ${size} bytes; at most 16384 are accepted`,
      );

      expect(await runRecord(rejection.runId)).toMatchObject({ job: 'ops', status: 'rejected' });
    });
  });
});
