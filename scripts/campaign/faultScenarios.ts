/**
 * The fault scenarios: throttling, timeouts, crashes, duplicate and late delivery, the
 * history table down, races, lost answers with lagging describes, tag-key near misses and
 * DR copies. Compact versions of test/integration/faultCampaign*.test.ts, which hold the
 * exact expectations.
 */
import {
  DeleteSnapshotCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  RegisterImageCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  always,
  awsError,
  copiesReportUnknownVolume,
  eventualConsistency,
  firstCalls,
  hang,
  loseAnswer,
} from '../../harness/faultProxy.ts';
import {
  crashAfter,
  dynamoItem,
  ec2Weather,
  forInstance,
  forSnapshot,
  historyDown,
  perVolumeRateExceeded,
  replayTo,
} from '../../harness/faultRules.ts';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet, ROOT_DEVICE } from '../../harness/localFleet.ts';
import {
  existingSnapshots,
  imagesOfInstance,
  KEYS,
  leaseInThePast,
  type SeededSnapshot,
  seedSnapshots,
  settle,
  snapshotsOfImage,
} from '../../harness/measurements.ts';
import type { AmiReport } from '../../lib/jobs/amiJob.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import type { CopyReport } from '../../lib/jobs/copyJob.ts';
import type { RetentionReport } from '../../lib/jobs/retentionJob.ts';
import type { SweepReport } from '../../lib/jobs/sweepJob.ts';
import {
  checkTakeOver,
  holderOf,
  tallyBackups,
  tallyDeletions,
  tallyWeeklyDeletions,
} from './measures.ts';
import { check, type Scenario } from './scenario.ts';
import { crashMidSlot, DAY_MS, dailyFleet, launchSeededFleet, SIX_WEEKS } from './setups.ts';

/** The fault scenarios, in the order the campaign runs them. */
export const FAULT_SCENARIOS: readonly Scenario[] = [
  {
    name: 'throttling',
    region: 'us-east-2',
    async run(ctx, tally) {
      const { daily, seeded } = await launchSeededFleet(ctx, { daily: 5, weekly: 2 });
      const [first, second] = daily;
      if (first)
        ctx.proxy.rules.add(forInstance(first.instanceId, firstCalls(1, perVolumeRateExceeded())));
      if (second)
        ctx.proxy.rules.add(forInstance(second.instanceId, firstCalls(2, perVolumeRateExceeded())));
      ctx.proxy.rules.add(ec2Weather({ seed: 23 }).rule);
      const slot = '2026-10-01T03:00:00Z';
      const backup = await settle(
        (await ctx.handler('backup'))({ schedule: 'daily', scheduledTime: slot }, lambdaContext()),
      );
      check(
        tally,
        'backup succeeded',
        backup.ok && (backup.value as BackupReport).status === 'succeeded',
      );
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'weekly' }, lambdaContext()),
      );
      const report = retention.ok ? (retention.value as RetentionReport) : undefined;
      check(tally, 'retention succeeded', report?.status === 'succeeded');
      ctx.proxy.rules.clear();
      await tallyBackups(ctx, tally, slot, daily, 0);
      await tallyWeeklyDeletions(ctx, tally, report, seeded);
    },
  },
  {
    name: 'timeouts',
    region: 'us-west-1',
    env: { AWS_REQUEST_TIMEOUT_MS: '1000', AWS_MAX_ATTEMPTS: '3' },
    async run(ctx, tally) {
      const { daily, seeded } = await launchSeededFleet(ctx, { daily: 3, weekly: 1 });
      const [a, b, c] = daily;
      ctx.proxy.rules.add({ action: 'DescribeInstances', decide: firstCalls(1, hang()) });
      if (a) ctx.proxy.rules.add(forInstance(a.instanceId, firstCalls(1, hang())));
      // b's first create reaches EC2, but its answer is lost: the SDK retries it.
      const reachedEc2: Promise<number>[] = [];
      if (b) {
        ctx.proxy.rules.add(
          forInstance(b.instanceId, (call, n) => {
            if (n > 1) return undefined;
            reachedEc2.push(replayTo(ctx.target, call));
            return hang();
          }),
        );
      }
      if (c) ctx.proxy.rules.add(forInstance(c.instanceId, always(hang())));
      const oldest = seeded.find((s) => s.ageDays === 35)?.snapshotId ?? '';
      ctx.proxy.rules.add(forSnapshot(oldest, always(hang())));
      const slot = '2026-10-02T03:00:00Z';
      const started = Date.now();
      const backup = await settle(
        (await ctx.handler('backup'))(
          { schedule: 'daily', scheduledTime: slot },
          lambdaContext('snapkeeper-campaign-backup', 30_000),
        ),
      );
      const elapsed = Date.now() - started;
      await Promise.all(reachedEc2);
      const backupReport = backup.ok ? (backup.value as BackupReport) : undefined;
      const timedOut =
        backupReport?.instances.filter((i) => i.error?.code === 'TimeoutError').length ?? 0;
      check(
        tally,
        'backup partial, one instance TimeoutError',
        backupReport?.status === 'partial' && timedOut === 1,
      );
      check(tally, 'backup ended within 15 s of a 30 s deadline', elapsed < 15_000);
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'weekly' }, lambdaContext()),
      );
      const report = retention.ok ? (retention.value as RetentionReport) : undefined;
      check(tally, 'retention partial, the hung deletion reported', report?.counts.failed === 1);
      ctx.proxy.rules.clear();
      await tallyBackups(ctx, tally, slot, daily, timedOut);
      await tallyWeeklyDeletions(ctx, tally, report, seeded);
    },
  },
  {
    name: 'crash: create → record',
    region: 'eu-west-2',
    async run(ctx, tally) {
      const fleet = [...(await launchFleet(ctx.ec2, dailyFleet(4))).values()];
      const backup = await ctx.handler('backup');
      const slot = '2026-10-03T03:00:00Z';
      const event = { schedule: 'daily', scheduledTime: slot };
      const { crashedRunId } = await crashMidSlot(ctx, backup, slot);
      const before = await ctx.history.getRun(crashedRunId);
      check(
        tally,
        'crashed run left running, without its final record',
        before?.status === 'running',
      );
      await leaseInThePast(ctx.doc, ctx.table, crashedRunId, new Date(Date.now() - DAY_MS));
      const resumed = await settle(backup(event, lambdaContext()));
      const report = resumed.ok ? (resumed.value as BackupReport) : undefined;
      await checkTakeOver(ctx, tally, 'next delivery took over (retry, resumedFrom)', {
        crashedRunId,
        report,
        succeeded: report?.trigger === 'retry',
      });
      await tallyBackups(ctx, tally, slot, fleet, 0);
    },
  },
  {
    name: 'crash: deregister → delete',
    region: 'eu-north-1',
    async run(ctx, tally) {
      const fleet = [
        ...(
          await launchFleet(ctx.ec2, [
            { name: 'ami-1', tags: { [KEYS.ami]: 'daily', [KEYS.amiRetain]: '1' } },
            { name: 'ami-2', tags: { [KEYS.ami]: 'daily', [KEYS.amiRetain]: '1' } },
          ])
        ).values(),
      ];
      const amis = await ctx.handler('amis');
      const day = (n: number) => ({ schedule: 'daily', scheduledTime: `2026-10-0${n}T03:00:00Z` });
      await amis(day(1), lambdaContext());
      const firstImages = (
        await Promise.all(fleet.map((i) => imagesOfInstance(ctx.ec2, i.instanceId)))
      ).flatMap((images) => images.slice(0, 1));
      const orphans = firstImages.flatMap(snapshotsOfImage);
      const crash = crashAfter('DeregisterImage', fleet.length);
      ctx.proxy.rules.add(crash.rule);
      await settle(amis(day(2), lambdaContext())); // a dead process answers nothing
      ctx.proxy.rules.clear();
      check(tally, 'crashed after deregistering', crash.crashed());
      const orphaned = await existingSnapshots(ctx.ec2, orphans);
      check(tally, 'the crash left the snapshots behind', orphaned.size === orphans.length);
      const sweep = await settle(amis({ sweep: true }, lambdaContext()));
      const report = sweep.ok ? (sweep.value as SweepReport) : undefined;
      check(tally, 'sweep succeeded', report?.status === 'succeeded');
      const left = await existingSnapshots(ctx.ec2, orphans);
      tally.deletionsDue += orphans.length;
      tally.deletionsDone += orphans.filter((id) => !left.has(id)).length;
      tally.wrongDeletions += (report?.deleted ?? []).filter(
        (d) => d.outcome === 'deleted' && !orphans.includes(d.snapshotId),
      ).length;
      const crashedRunId = await holderOf(ctx, 'amis', day(2).scheduledTime);
      const amiActions = await ctx.history.runActions(crashedRunId);
      const sweepActions = report ? await ctx.history.runActions(report.runId) : [];
      tally.historyExpected += firstImages.length + orphans.length * 2;
      tally.historyFound +=
        amiActions.filter((a) => a.action === 'deregister-image' && a.phase === 'before').length +
        sweepActions.filter((a) => orphans.includes(a.resourceId)).length;
      await leaseInThePast(ctx.doc, ctx.table, crashedRunId, new Date(Date.now() - DAY_MS));
      const resumed = await settle(amis(day(2), lambdaContext()));
      const resumedReport = resumed.ok ? (resumed.value as AmiReport) : undefined;
      const resumedRun = resumedReport ? await ctx.history.getRun(resumedReport.runId) : undefined;
      check(
        tally,
        'next delivery of the slot took over and made no AMI twice',
        (resumedReport?.created.every((c) => c.outcome === 'exists') ?? false) &&
          (resumedRun as { resumedFrom?: string } | undefined)?.resumedFrom === crashedRunId,
      );
    },
  },
  {
    name: 'duplicate + late delivery',
    region: 'ap-south-1',
    async run(ctx, tally) {
      const fleet = [...(await launchFleet(ctx.ec2, dailyFleet(3))).values()];
      const backup = await ctx.handler('backup');
      const early = '2026-10-04T03:00:00Z';
      const next = '2026-10-05T03:00:00Z';
      const parallel = await Promise.all(
        [1, 2, 3].map(() =>
          settle(backup({ schedule: 'daily', scheduledTime: next }, lambdaContext())),
        ),
      );
      const runIds = new Set(parallel.map((p) => (p.ok ? (p.value as BackupReport).runId : 'x')));
      check(tally, 'three parallel deliveries, one run', runIds.size === 1 && !runIds.has('x'));
      const late = await settle(
        backup({ schedule: 'daily', scheduledTime: early }, lambdaContext()),
      );
      check(
        tally,
        'late delivery ran for its own slot',
        late.ok && (late.value as BackupReport).slot === early,
      );
      await settle(backup({ schedule: 'daily', scheduledTime: early }, lambdaContext()));
      await tallyBackups(ctx, tally, next, fleet, 0);
      await tallyBackups(ctx, tally, early, fleet, 0);
    },
  },
  {
    name: 'history table down',
    region: 'ap-northeast-1',
    env: { AWS_MAX_ATTEMPTS: '2' },
    async run(ctx, tally) {
      const { daily, seeded } = await launchSeededFleet(ctx, { daily: 3, weekly: 1 });
      ctx.proxy.rules.add(historyDown());
      const slot = '2026-10-06T03:00:00Z';
      const backup = await settle(
        (await ctx.handler('backup'))({ schedule: 'daily', scheduledTime: slot }, lambdaContext()),
      );
      const report = backup.ok ? (backup.value as BackupReport) : undefined;
      check(
        tally,
        'backup partial with the history warning',
        report?.status === 'partial' && (report.warnings?.length ?? 0) === 1,
      );
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'weekly' }, lambdaContext()),
      );
      check(tally, 'retention failed loudly', !retention.ok);
      ctx.proxy.rules.clear();
      ctx.proxy.rules.add(historyDown((call) => dynamoItem(call).type === 'action'));
      const journalDown = await settle(
        (await ctx.handler('retention'))({ schedule: 'weekly' }, lambdaContext()),
      );
      check(
        tally,
        'journal down mid-run: nothing deleted, each refusal reported',
        journalDown.ok && (journalDown.value as RetentionReport).counts.failed === 2,
      );
      ctx.proxy.rules.clear();
      // Documented choice: backups made without a history are reported, not recorded.
      await tallyBackups(ctx, tally, slot, daily, 0, false);
      // Nothing was due while the history could not record it: every deletion would be wrong.
      await tallyDeletions(
        ctx,
        tally,
        undefined,
        [],
        seeded.map((s) => s.snapshotId),
        false,
      );
    },
  },
  {
    name: 'races',
    region: 'sa-east-1',
    async run(ctx, tally) {
      const { daily, seeded } = await launchSeededFleet(ctx, {
        daily: 3,
        weekly: 1,
        agesDays: [...SIX_WEEKS, 42],
      });
      const inUse = seeded.find((s) => s.ageDays === 42)?.snapshotId ?? '';
      const goneBy = seeded.find((s) => s.ageDays === 35)?.snapshotId ?? '';
      const sideEffects: Promise<unknown>[] = [];
      ctx.proxy.rules.add(
        forSnapshot(inUse, (_call, n) => {
          if (n === 1) {
            sideEffects.push(
              ctx.ec2.send(
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
            `The snapshot ${inUse} is currently in use by an AMI.`,
          );
        }),
      );
      ctx.proxy.rules.add(
        forSnapshot(goneBy, (_call, n) => {
          if (n === 1)
            sideEffects.push(ctx.ec2.send(new DeleteSnapshotCommand({ SnapshotId: goneBy })));
          return awsError(
            'InvalidSnapshot.NotFound',
            400,
            `The snapshot '${goneBy}' does not exist.`,
          );
        }),
      );
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'weekly' }, lambdaContext()),
      );
      await Promise.all(sideEffects);
      const report = retention.ok ? (retention.value as RetentionReport) : undefined;
      check(
        tally,
        'races skipped and reported, not failed',
        report?.status === 'succeeded' && report.counts.skipped === 2,
      );
      const victim = daily[1] as LaunchedInstance;
      ctx.proxy.rules.add(
        forInstance(victim.instanceId, () => {
          sideEffects.push(
            ctx.ec2.send(new TerminateInstancesCommand({ InstanceIds: [victim.instanceId] })),
          );
          return awsError(
            'InvalidInstanceID.NotFound',
            400,
            `The instance ID '${victim.instanceId}' does not exist`,
          );
        }),
      );
      const slot = '2026-10-07T03:00:00Z';
      const backup = await settle(
        (await ctx.handler('backup'))({ schedule: 'daily', scheduledTime: slot }, lambdaContext()),
      );
      await Promise.all(sideEffects);
      ctx.proxy.rules.clear();
      const backupReport = backup.ok ? (backup.value as BackupReport) : undefined;
      const reported =
        backupReport?.instances.filter((i) => i.error?.code === 'InvalidInstanceID.NotFound')
          .length ?? 0;
      check(
        tally,
        'terminated instance failed with its code, run partial',
        backupReport?.status === 'partial' && reported === 1,
      );
      await tallyBackups(ctx, tally, slot, daily, reported);
      await tallyWeeklyDeletions(ctx, tally, report, seeded);
    },
  },
  {
    // Issue 15 #7: creates whose answers are lost after EC2 acted, while describes lag
    // two describes behind creates (EC2's eventual consistency, which moto lacks).
    name: 'lost answers + lagging describes',
    region: 'ap-northeast-2',
    env: { AWS_REQUEST_TIMEOUT_MS: '1000', AWS_MAX_ATTEMPTS: '3' },
    async run(ctx, tally) {
      const daily = [...(await launchFleet(ctx.ec2, dailyFleet(4))).values()];
      const lag = eventualConsistency({ describes: 2 });
      ctx.proxy.rules.add(lag);
      const lost = daily.slice(0, 3);
      for (const instance of lost) {
        ctx.proxy.rules.add(forInstance(instance.instanceId, firstCalls(1, loseAnswer())));
      }
      const slot = '2026-10-08T03:00:00Z';
      const backup = await settle(
        (await ctx.handler('backup'))({ schedule: 'daily', scheduledTime: slot }, lambdaContext()),
      );
      ctx.proxy.rules.clear();
      const report = backup.ok ? (backup.value as BackupReport) : undefined;
      const lostIds = new Set(lost.map((i) => i.instanceId));
      const reconciled =
        report?.instances.filter(
          (i) =>
            lostIds.has(i.instanceId) &&
            (i.duplicates?.length ?? 0) > 0 &&
            i.duplicates?.every((d) => d.outcome === 'deleted'),
        ).length ?? 0;
      check(tally, 'describes lagged behind the creates', lag.hidden() > 0);
      check(tally, 'every lost set found and its copy deleted', reconciled === lost.length);
      check(tally, 'backup succeeded', report?.status === 'succeeded');
      await tallyBackups(ctx, tally, slot, daily, 0);
    },
  },
  {
    // Issue 15 #12: an opt-in key that misses ours is never read; the run must say so.
    name: 'tag-key near misses',
    region: 'ca-central-1',
    async run(ctx, tally) {
      const misses = [
        'Snapkeeper:backup',
        'snapkeeper:Backup',
        'snapkeeper:backups',
        'snapkeeper:backup ',
      ];
      const fleet = await launchFleet(ctx.ec2, [
        ...dailyFleet(2),
        ...misses.map((key, i) => ({ name: `typo-${i + 1}`, tags: { [key]: 'daily' } })),
        { name: 'vendor-1', tags: { Backup: 'true', backup: 'daily', 'dlm:managed': 'true' } },
      ]);
      const good = [...fleet.values()].filter((i) => i.name.startsWith('app-'));
      const typos = [...fleet.values()].filter((i) => i.name.startsWith('typo-'));
      ctx.proxy.rules.add(ec2Weather({ seed: 41 }).rule);
      const slot = '2026-10-09T03:00:00Z';
      const backup = await settle(
        (await ctx.handler('backup'))({ schedule: 'daily', scheduledTime: slot }, lambdaContext()),
      );
      ctx.proxy.rules.clear();
      const report = backup.ok ? (backup.value as BackupReport) : undefined;
      const named = typos.filter((t) =>
        report?.instances.some(
          (r) =>
            r.instanceId === t.instanceId &&
            r.error?.code === 'InvalidTag' &&
            (r.problems ?? []).some((p) => misses.some((key) => p.startsWith(`${key}=`))),
        ),
      );
      check(tally, 'each near-miss key named by instance and key', named.length === typos.length);
      check(
        tally,
        "other vendors' keys not reported",
        !report?.instances.some((r) => r.name === 'vendor-1'),
      );
      check(tally, 'backup partial (the alert fires)', report?.status === 'partial');
      // The typo'd instances were meant to be backed up: not made, but reported.
      await tallyBackups(ctx, tally, slot, [...good, ...typos], named.length);
    },
  },
  {
    // Issue 15 #2 (copy side) and "a source is copied once": every copy reports
    // vol-ffffffff (as on AWS), under EC2 weather; copy-retain applies per source volume.
    name: 'DR copies: vol-ffffffff, retired sources',
    region: 'eu-central-1',
    async run(ctx, tally) {
      const DEST = 'ap-southeast-1';
      const dest = new EC2Client({ region: DEST, endpoint: ctx.target });
      const copyTo = { [KEYS.copyTo]: DEST, [KEYS.copyRetain]: '2' };
      const fleet = await launchFleet(ctx.ec2, [
        { name: 'dr-1', tags: { [KEYS.backup]: 'daily', ...copyTo } },
        { name: 'dr-2', tags: { [KEYS.backup]: 'daily', ...copyTo } },
      ]);
      const seeded: SeededSnapshot[] = [];
      for (const instance of fleet.values()) {
        seeded.push(
          ...(await seedSnapshots(ctx.ec2, {
            history: ctx.history,
            deployment: ctx.deployment,
            schedule: 'daily',
            instance,
            agesDays: [3, 2, 1],
          })),
        );
      }
      const vff = copiesReportUnknownVolume({ regions: [DEST] });
      ctx.proxy.rules.add(vff);
      ctx.proxy.rules.add(ec2Weather({ seed: 57 }).rule);
      const copy = await ctx.handler('copy');
      const reports: CopyReport[] = [];
      for (let run = 0; run < 4; run += 1) {
        const result = await settle(copy({ copy: true }, lambdaContext()));
        if (result.ok) reports.push(result.value as CopyReport);
      }
      ctx.proxy.rules.clear();
      const copies =
        (
          await dest.send(
            new DescribeSnapshotsCommand({
              OwnerIds: ['self'],
              Filters: [{ Name: `tag:${KEYS.deployment}`, Values: [ctx.deployment] }],
            }),
          )
        ).Snapshots ?? [];
      const sourceOf = (c: (typeof copies)[number]) =>
        c.Tags?.find((t) => t.Key === KEYS.sourceSnapshotId)?.Value ?? '';
      const copied = reports.flatMap((r) => r.copies.filter((c) => c.outcome === 'copied'));
      check(tally, 'every run answered', reports.length === 4);
      check(tally, 'copies reported vol-ffffffff', vff.rewritten() > 0);
      check(
        tally,
        'each source copied once (never again after copy retention)',
        new Set(copied.map((c) => c.sourceId)).size === copied.length,
      );
      // Due: the copies of the oldest source of each volume; kept: the two newest each.
      const due = seeded.filter((s) => s.ageDays === 3).map((s) => s.snapshotId);
      const kept = seeded.filter((s) => s.ageDays < 3).map((s) => s.snapshotId);
      const present = new Set(copies.map(sourceOf));
      tally.deletionsDue += due.length;
      tally.deletionsDone += due.filter((id) => !present.has(id)).length;
      tally.deletionsReported += due.filter(
        (id) =>
          present.has(id) &&
          reports.some((r) =>
            r.destinationRetention.some((d) => d.action !== 'deleted' && d.reason !== ''),
          ),
      ).length;
      tally.wrongDeletions += kept.filter((id) => !present.has(id)).length;
    },
  },
];
