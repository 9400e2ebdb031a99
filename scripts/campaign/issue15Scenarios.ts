/**
 * Issue 15's situations, built as the integration tests build them (runLifecycle,
 * ownership, createReconcile, copyLineage): crash and Lambda retries, stage retention in a
 * DR region, orphans, AMI snapshots, future and off-schedule slots, answered sets and
 * undeletable duplicates, the console's double press, and resources tagged as ours but
 * never recorded.
 */
import {
  CopySnapshotCommand,
  CreateImageCommand,
  CreateTagsCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
} from '@aws-sdk/client-ec2';
import {
  always,
  awsError,
  COPIED_VOLUME_ID,
  copiesReportUnknownVolume,
  firstCalls,
  loseAnswer,
} from '../../harness/faultProxy.ts';
import { ec2Weather, forInstance } from '../../harness/faultRules.ts';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { launchFleet, ROOT_DEVICE } from '../../harness/localFleet.ts';
import {
  existingSnapshots,
  extraSnapshotsOfSlot,
  KEYS,
  leaseInThePast,
  type Settled,
  settle,
  snapshotsOfImage,
  untracedResources,
} from '../../harness/measurements.ts';
import { latestFire, slotText } from '../../harness/slotClock.ts';
import { copyTags } from '../../lib/domain/copyPolicy.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import type { RetentionReport } from '../../lib/jobs/retentionJob.ts';
import type { SweepReport } from '../../lib/jobs/sweepJob.ts';
import {
  checkTakeOver,
  snapshotsOfSlot,
  tallyBackups,
  tallyDeletions,
  thrown,
} from './measures.ts';
import { check, type Scenario } from './scenario.ts';
import {
  crashMidSlot,
  DAY_MS,
  dailyFleet,
  MINUTE_MS,
  madeTags,
  named,
  REAL_CATCH_UP,
  seedMade,
  sleep,
} from './setups.ts';

/** Issue 15's scenarios (#1 to #11), in the order the campaign runs them. */
export const ISSUE_15_SCENARIOS: readonly Scenario[] = [
  {
    // Issue 15 #1: the process dies mid-slot; Lambda retries the event at about +1 and
    // +3 minutes (the clock simulated by the lease's age, as runLifecycle.test.ts does).
    name: 'crash, Lambda retries +1/+3 min (#1)',
    region: 'us-west-2',
    // A duplicate delivery waits 2 s (not 20) for the holder before it fails.
    env: { ...REAL_CATCH_UP, AWS_MAX_ATTEMPTS: '2', DUPLICATE_WAIT_SECONDS: '2' },
    async run(ctx, tally) {
      const fleet = [...(await launchFleet(ctx.ec2, dailyFleet(6))).values()];
      const backup = await ctx.handler('backup');
      const slot = slotText(latestFire(3, 0));
      const event = { schedule: 'daily', scheduledTime: slot };
      const { crash, crashedRunId } = await crashMidSlot(ctx, backup, slot);
      const afterCrash = await snapshotsOfSlot(ctx, slot);
      check(
        tally,
        'crashed mid-slot: some sets made, the run left running',
        crash.crashed() &&
          afterCrash > 0 &&
          (await ctx.history.getRun(crashedRunId))?.status === 'running',
      );
      // +1 min: the lease a minute old (two renewals missed): a live holder, maybe.
      await leaseInThePast(ctx.doc, ctx.table, crashedRunId, new Date(Date.now() - MINUTE_MS));
      const first = await settle(backup(event, lambdaContext()));
      check(
        tally,
        '+1 min retry fails (SlotInProgressError), so Lambda retries again; nothing done',
        thrown(first) === 'SlotInProgressError' &&
          (await snapshotsOfSlot(ctx, slot)) === afterCrash,
      );
      // +3 min: four renewals missed: a dead run; this delivery takes the slot over.
      await leaseInThePast(ctx.doc, ctx.table, crashedRunId, new Date(Date.now() - 3 * MINUTE_MS));
      const second = await settle(backup(event, lambdaContext()));
      const report = second.ok ? (second.value as BackupReport) : undefined;
      await checkTakeOver(ctx, tally, '+3 min retry took over (retry, resumedFrom) and succeeded', {
        crashedRunId,
        report,
        succeeded: report?.trigger === 'retry' && report.status === 'succeeded',
      });
      await tallyBackups(ctx, tally, slot, fleet, 0);
    },
  },
  {
    // Issue 15 #2: disaster-recovery copies in this region carry the source's managed,
    // deployment and schedule tags, and EC2 reports each on vol-ffffffff. The stage's own
    // retention here must leave them to the copy job (copy-retain=10 > the default 7).
    name: 'stage retention in a DR region (#2)',
    region: 'eu-west-1',
    async run(ctx, tally) {
      await ctx.history.ledgerStart(new Date(Date.now() - MINUTE_MS));
      const localTags = { [KEYS.backup]: 'daily', [KEYS.retain]: '3' };
      const sourceTags = { [KEYS.backup]: 'daily' };
      const fleet = await launchFleet(ctx.ec2, [
        { name: 'local-1', tags: localTags },
        { name: 'src-1', tags: sourceTags },
        { name: 'src-2', tags: sourceTags },
      ]);
      const local = named(fleet, 'local-1');
      const sets: string[] = [];
      for (let age = 0; age < 5; age += 1)
        sets.push(await seedMade(ctx, local, localTags, age, { record: 'create-snapshot' }));
      const copies: string[] = [];
      for (const name of ['src-1', 'src-2']) {
        const source = named(fleet, name);
        const volumeId = source.volumes.find((v) => v.device === ROOT_DEVICE)?.volumeId;
        for (let age = 0; age < 6; age += 1) {
          const tags = Object.fromEntries(
            copyTags(
              madeTags(ctx, source, sourceTags, age),
              KEYS,
              {
                volumeId,
                snapshotId: `snap-0${name.replace('-', '')}${String(age).padStart(10, '0')}`,
              },
              'us-east-1',
              10,
            ).map((t) => [t.Key, t.Value]),
          );
          copies.push(
            await seedMade(ctx, source, sourceTags, age, { tags, record: 'copy-snapshot' }),
          );
        }
      }
      const vff = copiesReportUnknownVolume({ isCopy: (s) => KEYS.sourceSnapshotId in s.tags });
      ctx.proxy.rules.add(vff);
      ctx.proxy.rules.add(ec2Weather({ seed: 67 }).rule);
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'daily' }, lambdaContext()),
      );
      ctx.proxy.rules.clear();
      const report = retention.ok ? (retention.value as RetentionReport) : undefined;
      check(tally, 'copies reported on vol-ffffffff', vff.rewritten() > 0);
      check(
        tally,
        "every copy left to the copy job's retention",
        report?.excluded?.filter((e) => e.kind === 'copy').length === copies.length,
      );
      check(
        tally,
        'no lineage keyed on vol-ffffffff',
        report !== undefined && !report.volumes.some((v) => v.volumeId === COPIED_VOLUME_ID),
      );
      await tallyDeletions(ctx, tally, report, sets.slice(3), [...sets.slice(0, 3), ...copies]);
    },
  },
  {
    // Issue 15 #3: a terminated instance and one whose opt-in tag was removed keep the
    // policy recorded on their sets (retain=10, retain-days=30), never the default 7.
    name: 'orphans keep their recorded policy (#3)',
    region: 'eu-west-3',
    async run(ctx, tally) {
      await ctx.history.ledgerStart(new Date(Date.now() - MINUTE_MS));
      const policy = { [KEYS.backup]: 'daily', [KEYS.retain]: '10', [KEYS.retainDays]: '30' };
      const fleet = await launchFleet(ctx.ec2, [
        { name: 'gone-1', tags: policy, state: 'terminated' },
        { name: 'untagged-1', tags: {} },
        { name: 'live-1', tags: { [KEYS.backup]: 'daily' } },
      ]);
      const ages = [...Array.from({ length: 12 }, (_, i) => i), 40, 45];
      const due: string[] = [];
      const kept: string[] = [];
      for (const name of ['gone-1', 'untagged-1']) {
        for (const age of ages) {
          const id = await seedMade(ctx, named(fleet, name), policy, age, {
            record: 'create-snapshot',
          });
          (age >= 40 ? due : kept).push(id);
        }
      }
      // A live instance on the default (keep 7): its two oldest are due.
      const live = named(fleet, 'live-1');
      for (let age = 0; age < 9; age += 1) {
        const id = await seedMade(ctx, live, { [KEYS.backup]: 'daily' }, age, {
          record: 'create-snapshot',
        });
        (age >= 7 ? due : kept).push(id);
      }
      ctx.proxy.rules.add(ec2Weather({ seed: 71 }).rule);
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'daily' }, lambdaContext()),
      );
      ctx.proxy.rules.clear();
      const report = retention.ok ? (retention.value as RetentionReport) : undefined;
      const ruleOf = (name: string) => {
        const root = named(fleet, name).volumes.find((v) => v.device === ROOT_DEVICE);
        return report?.volumes.find((v) => v.volumeId === root?.volumeId)?.rule;
      };
      check(
        tally,
        'terminated and untagged instances judged by retain=10, retain-days=30',
        ['gone-1', 'untagged-1'].every(
          (name) => ruleOf(name)?.count === 10 && ruleOf(name)?.minAgeDays === 30,
        ),
      );
      check(tally, 'retention succeeded', report?.status === 'succeeded');
      await tallyDeletions(ctx, tally, report, due, kept);
    },
  },
  {
    // Issue 15 #4: with retain=3 and ami-retain=1, the AMI's snapshots (same volume, our
    // tags, EC2's CreateImage description: as on AWS, seeded since moto snapshots a
    // temporary volume) take none of the volume's three places.
    name: 'AMI snapshots outside the count (#4)',
    region: 'ap-southeast-2',
    async run(ctx, tally) {
      await ctx.history.ledgerStart(new Date(Date.now() - MINUTE_MS));
      const tags = {
        [KEYS.backup]: 'daily',
        [KEYS.retain]: '3',
        [KEYS.ami]: 'daily',
        [KEYS.amiRetain]: '1',
      };
      const web = named(await launchFleet(ctx.ec2, [{ name: 'web-1', tags }]), 'web-1');
      const sets: string[] = [];
      for (let age = 0; age < 5; age += 1)
        sets.push(await seedMade(ctx, web, tags, age, { record: 'create-snapshot' }));
      const amiSnapshots: string[] = [];
      for (let age = 0; age < 2; age += 1) {
        amiSnapshots.push(
          await seedMade(ctx, web, tags, age, {
            description: `Created by CreateImage(${web.instanceId}) for ami-0000000000000000${age}`,
          }),
        );
      }
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'daily' }, lambdaContext()),
      );
      const report = retention.ok ? (retention.value as RetentionReport) : undefined;
      check(
        tally,
        "AMI snapshots left to AMI retention (kind 'image-snapshot')",
        amiSnapshots.every((id) =>
          report?.excluded?.some((e) => e.snapshotId === id && e.kind === 'image-snapshot'),
        ),
      );
      await tallyDeletions(ctx, tally, report, sets.slice(3), [
        ...sets.slice(0, 3),
        ...amiSnapshots,
      ]);
    },
  },
  {
    // Issue 15 #5 and #6, under the real catch-up rule (36 h here, not the local ten
    // years): tomorrow's slot sent today, years 9999 and 0000 and a slot past its window
    // are rejected by name; the real slot backs up; an off-schedule time is that slot.
    name: 'future and off-schedule slots (#5, #6)',
    region: 'eu-south-1',
    env: REAL_CATCH_UP,
    async run(ctx, tally) {
      const fleet = [...(await launchFleet(ctx.ec2, dailyFleet(3))).values()];
      const backup = await ctx.handler('backup');
      const deliver = (scheduledTime: string) =>
        settle(backup({ schedule: 'daily', scheduledTime }, lambdaContext()));
      const fire = latestFire(3, 0);
      const slot = slotText(fire);
      const future = slotText(new Date(fire.getTime() + 2 * DAY_MS));
      const stale = slotText(new Date(fire.getTime() - 2 * DAY_MS));
      const message = (s: Settled) => (s.ok ? '' : String((s.error as Error).message));
      const early = await deliver(future);
      check(
        tally,
        "tomorrow's slot sent today rejected by name, nothing claimed",
        thrown(early) === 'InvalidEventError' &&
          message(early).startsWith(`field "scheduledTime": ${future}`) &&
          (await ctx.history.getSlotClaim({ job: 'backup', schedule: 'daily', slot: future })) ===
            undefined,
      );
      const years = [await deliver('9999-12-31T03:00:00Z'), await deliver('0000-01-01T03:00:00Z')];
      check(
        tally,
        'years 9999 and 0000 rejected by name',
        years.every(
          (y) => thrown(y) === 'InvalidEventError' && message(y).includes('scheduledTime'),
        ),
      );
      const late = await deliver(stale);
      check(
        tally,
        'a slot past its catch-up window rejected by name',
        thrown(late) === 'InvalidEventError' &&
          message(late).includes('older than its catch-up window'),
      );
      const onTime = await deliver(slot);
      const first = onTime.ok ? (onTime.value as BackupReport) : undefined;
      check(
        tally,
        'the real slot still backs up',
        first?.status === 'succeeded' && first.slot === slot,
      );
      // Five minutes off-schedule (or, just after the fire time, 30 s before it).
      const offSchedule = slotText(
        new Date(
          Date.now() - fire.getTime() > 6 * MINUTE_MS
            ? fire.getTime() + 5 * MINUTE_MS
            : fire.getTime() - 30_000,
        ),
      );
      const again = await deliver(offSchedule);
      check(
        tally,
        'an off-schedule time is served as its slot: the same run, no second set',
        again.ok && (again.value as BackupReport).runId === first?.runId,
      );
      await tallyBackups(ctx, tally, slot, fleet, 0);
      // Any set under the future or the off-schedule slot is a second set of the day.
      tally.duplicates +=
        (await snapshotsOfSlot(ctx, future)) + (await snapshotsOfSlot(ctx, offSchedule));
    },
  },
  {
    // Issue 15 #8 and #9 (the #7 scenario covers the lagging describes): a create whose
    // answer was lost and whose describes then all fail; a duplicate set EC2 refuses to
    // delete. One schedule per story.
    name: 'answered sets, undeletable duplicates (#8, #9)',
    region: 'af-south-1',
    env: {
      SCHEDULES: JSON.stringify([
        { name: 'describe-down', cron: 'cron(0 2 * * ? *)', timezone: 'UTC', retain: 7 },
        { name: 'undeletable', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 7 },
      ]),
      DEFAULT_SCHEDULE: 'describe-down',
      AWS_REQUEST_TIMEOUT_MS: '1500',
      AWS_MAX_ATTEMPTS: '3',
      DUPLICATE_WAIT_SECONDS: '5',
    },
    async run(ctx, tally) {
      const fleet = await launchFleet(ctx.ec2, [
        {
          name: 'describe-down-1',
          tags: { [KEYS.backup]: 'describe-down' },
          dataVolumes: [{ device: '/dev/sdf', sizeGiB: 8 }],
        },
        { name: 'undeletable-1', tags: { [KEYS.backup]: 'undeletable' } },
      ]);
      const backup = await ctx.handler('backup');
      const recordedCreates = async (runId: string) =>
        (await ctx.history.runActions(runId))
          .filter((a) => a.action === 'create-snapshot')
          .map((a) => a.resourceId);

      const down = named(fleet, 'describe-down-1');
      ctx.proxy.rules.add(forInstance(down.instanceId, firstCalls(1, loseAnswer())));
      ctx.proxy.rules.add({
        action: 'DescribeSnapshots',
        decide: always(awsError('InternalError', 500, 'An internal error has occurred.')),
      });
      const downSlot = '2026-10-10T02:00:00Z';
      const r8 = await settle(
        backup({ schedule: 'describe-down', scheduledTime: downSlot }, lambdaContext()),
      );
      ctx.proxy.rules.clear();
      const report8 = r8.ok ? (r8.value as BackupReport) : undefined;
      const result8 = report8?.instances[0];
      const answered = (result8?.snapshots ?? []).map((s) => s.snapshotId ?? '');
      const recorded8 = report8 ? await recordedCreates(report8.runId) : [];
      check(
        tally,
        '#8 the answered set reported created (not failed), run partial',
        report8?.status === 'partial' && result8?.outcome === 'created',
      );
      check(
        tally,
        '#8 the answered set recorded',
        answered.length === down.volumes.length && answered.every((id) => recorded8.includes(id)),
      );
      // The set of the attempt whose answer was lost cannot be seen while every describe
      // fails: the run is partial and names the tags that find it. It counts as a
      // duplicate reported, and the history is owed only the set the run knows of.
      await tallyBackups(ctx, tally, downSlot, [down], 0, false);
      if (result8?.error?.message.includes('second set'))
        tally.duplicatesReported += await extraSnapshotsOfSlot(ctx.ec2, ctx.deployment, downSlot);
      tally.historyExpected += answered.length;
      tally.historyFound += answered.filter((id) => recorded8.includes(id)).length;

      const stuck = named(fleet, 'undeletable-1');
      ctx.proxy.rules.add(forInstance(stuck.instanceId, firstCalls(1, loseAnswer())));
      ctx.proxy.rules.add({
        action: 'DeleteSnapshot',
        decide: always(
          awsError(
            'UnauthorizedOperation',
            403,
            'You are not authorized to perform this operation.',
          ),
        ),
      });
      const stuckSlot = '2026-10-10T03:00:00Z';
      const r9 = await settle(
        backup({ schedule: 'undeletable', scheduledTime: stuckSlot }, lambdaContext()),
      );
      ctx.proxy.rules.clear();
      const report9 = r9.ok ? (r9.value as BackupReport) : undefined;
      const duplicates = report9?.instances[0]?.duplicates ?? [];
      check(
        tally,
        '#9 undeletable duplicate: run partial (the alert fires), duplicate reported failed',
        report9?.status === 'partial' &&
          duplicates.length === stuck.volumes.length &&
          duplicates.every((d) => d.outcome === 'failed'),
      );
      tally.duplicatesReported += duplicates.filter((d) => d.outcome === 'failed').length;
      await tallyBackups(ctx, tally, stuckSlot, [stuck], 0);
    },
  },
  {
    // Issue 15 #10: the console's double press on either side of a window edge (where
    // the old fixed buckets split it) runs once. Real time, with an 8 s window.
    name: 'console double press across an edge (#10)',
    region: 'me-south-1',
    env: { CONSOLE_DEDUPE_SECONDS: '8' },
    async run(ctx, tally) {
      const WINDOW_MS = 8_000;
      const target = named(await launchFleet(ctx.ec2, [{ name: 'console-1' }]), 'console-1');
      const ops = await ctx.handler('ops');
      const press = async (payload: unknown) => {
        const answer = await settle(ops(payload, lambdaContext('snapkeeper-campaign-ops')));
        return answer.ok ? (answer.value as { status?: string; runId?: string }) : undefined;
      };
      const edge = Math.ceil((Date.now() + 1_500) / WINDOW_MS) * WINDOW_MS;
      await sleep(edge - 1_000 - Date.now());
      const payload = { action: 'backup', instanceIds: [target.instanceId] };
      const firstAt = Date.now();
      const first = await press(payload);
      if (Date.now() < edge + 200) await sleep(edge + 200 - Date.now());
      const secondAt = Date.now();
      const second = await press({ ...payload });
      check(
        tally,
        'the repeat came after the edge, within the window',
        firstAt < edge && secondAt >= edge && secondAt - firstAt < WINDOW_MS,
      );
      check(
        tally,
        'the double press ran once (the same run)',
        first?.status === 'succeeded' && second?.runId === first.runId,
      );
      const made =
        (
          await ctx.ec2.send(
            new DescribeSnapshotsCommand({
              OwnerIds: ['self'],
              Filters: [
                { Name: `tag:${KEYS.instanceId}`, Values: [target.instanceId] },
                { Name: `tag:${KEYS.deployment}`, Values: [ctx.deployment] },
              ],
            }),
          )
        ).Snapshots ?? [];
      const ids = made.map((s) => s.SnapshotId ?? '');
      tally.backupsExpected += 1;
      tally.backupsMade += ids.length > 0 ? 1 : 0;
      tally.duplicates += Math.max(0, ids.length - target.volumes.length);
      tally.historyExpected += ids.length;
      tally.historyFound += ids.length - (await untracedResources(ctx.history, ids)).length;
    },
  },
  {
    // Issue 15 #11: snapshots that merely carry our tags (one made by hand, an operator's
    // same-region copy "with tags", an AMI's snapshot whose creation no run recorded)
    // are reported, never deleted, by retention or the sweep; recorded ones still go.
    name: 'tagged as ours, never recorded (#11)',
    region: 'ap-east-1',
    async run(ctx, tally) {
      await ctx.history.ledgerStart(new Date(Date.now() - MINUTE_MS));
      const tags = { [KEYS.backup]: 'daily', [KEYS.retain]: '3' };
      const web = named(await launchFleet(ctx.ec2, [{ name: 'web-1', tags }]), 'web-1');
      const sets: string[] = [];
      for (let age = 0; age < 5; age += 1)
        sets.push(await seedMade(ctx, web, tags, age, { record: 'create-snapshot' }));
      const handMade = await seedMade(ctx, web, tags, 20);
      const copy =
        (
          await ctx.ec2.send(
            new CopySnapshotCommand({
              SourceRegion: ctx.region,
              SourceSnapshotId: sets[4],
              Description: 'kept by hand',
              TagSpecifications: [
                {
                  ResourceType: 'snapshot',
                  Tags: Object.entries(madeTags(ctx, web, tags, 4)).map(([Key, Value]) => ({
                    Key,
                    Value,
                  })),
                },
              ],
            }),
          )
        ).SnapshotId ?? '';
      // Two AMIs deregistered by hand, their snapshots tagged as ours; one recorded.
      const amiSnapshot = new Map<boolean, string>();
      for (const recorded of [true, false]) {
        const imageId =
          (
            await ctx.ec2.send(
              new CreateImageCommand({
                InstanceId: web.instanceId,
                Name: `web-1-${recorded ? 'recorded' : 'unrecorded'}`,
              }),
            )
          ).ImageId ?? '';
        const [image] =
          (await ctx.ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images ?? [];
        const snapshotId = snapshotsOfImage(image)[0] ?? '';
        amiSnapshot.set(recorded, snapshotId);
        await ctx.ec2.send(
          new CreateTagsCommand({
            Resources: [snapshotId],
            Tags: [
              { Key: KEYS.managed, Value: 'true' },
              { Key: KEYS.deployment, Value: ctx.deployment },
            ],
          }),
        );
        if (recorded) {
          await ctx.history.record({
            runId: 'seeded',
            job: 'amis',
            action: 'create-image',
            resourceId: imageId,
            phase: 'after',
            outcome: 'done',
            reason: 'seeded as if made by an AMI run',
            details: { instanceId: web.instanceId },
          });
        }
        await ctx.ec2.send(new DeregisterImageCommand({ ImageId: imageId }));
      }
      const ours = amiSnapshot.get(true) ?? '';
      const foreign = amiSnapshot.get(false) ?? '';
      ctx.proxy.rules.add(copiesReportUnknownVolume({ isCopy: (s) => s.snapshotId === copy }));
      const retention = await settle(
        (await ctx.handler('retention'))({ schedule: 'daily' }, lambdaContext()),
      );
      const report = retention.ok ? (retention.value as RetentionReport) : undefined;
      check(
        tally,
        'retention kept and reported the hand-made snapshot (unrecorded) and the copy',
        report?.excluded?.some((e) => e.snapshotId === handMade && e.kind === 'unrecorded') ===
          true &&
          report.excluded.some(
            (e) =>
              e.snapshotId === copy &&
              (e.kind === 'unrecorded' || e.kind === 'unknown-volume') &&
              e.reason !== '',
          ),
      );
      await tallyDeletions(ctx, tally, report, sets.slice(3), [
        ...sets.slice(0, 3),
        handMade,
        copy,
        foreign,
      ]);
      const sweep = await settle((await ctx.handler('amis'))({ sweep: true }, lambdaContext()));
      ctx.proxy.rules.clear();
      const swept = sweep.ok ? (sweep.value as SweepReport) : undefined;
      check(
        tally,
        "the sweep only reported the unrecorded AMI's snapshot",
        swept?.reportedOnly.some((r) => r.snapshotId === foreign) ?? false,
      );
      const left = await existingSnapshots(ctx.ec2, [ours, handMade, copy, foreign]);
      tally.deletionsDue += 1;
      tally.deletionsDone += left.has(ours) ? 0 : 1;
      tally.deletionsReported +=
        left.has(ours) &&
        swept?.deleted.some((d) => d.snapshotId === ours && d.outcome !== 'deleted')
          ? 1
          : 0;
      tally.wrongDeletions += [handMade, copy, foreign].filter((id) => !left.has(id)).length;
    },
  },
];
