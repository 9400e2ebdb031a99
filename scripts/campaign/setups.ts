/**
 * What the campaign's scenarios build before they run: daily and weekly fleets, snapshots
 * seeded as if a run had made them (with the tags the backup job writes and, on request,
 * its creation record), and the real catch-up rule for issue 15's slots.
 */
import { CreateSnapshotCommand } from '@aws-sdk/client-ec2';
import { type Crash, crashAfter } from '../../harness/faultRules.ts';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import {
  type InstanceSpec,
  type LaunchedInstance,
  launchFleet,
  ROOT_DEVICE,
} from '../../harness/localFleet.ts';
import { KEYS, type SeededSnapshot, seedSnapshots, settle } from '../../harness/measurements.ts';
import { buildResourceTags } from '../../lib/domain/backupPlan.ts';
import { holderOf } from './measures.ts';
import type { Handler, ScenarioContext } from './scenario.ts';

/** A minute, in milliseconds. */
export const MINUTE_MS = 60_000;
/** A day, in milliseconds. */
export const DAY_MS = 86_400_000;

/** `n` instances backed up daily, every other one with a data volume. */
export const dailyFleet = (n: number): InstanceSpec[] =>
  Array.from({ length: n }, (_, i) => ({
    name: `app-${i + 1}`,
    tags: { [KEYS.backup]: 'daily' },
    ...(i % 2 === 0 ? { dataVolumes: [{ device: '/dev/sdf', sizeGiB: 10 + i }] } : {}),
  }));

/** `n` instances backed up weekly, root volume only. */
export const weeklyFleet = (n: number): InstanceSpec[] =>
  Array.from({ length: n }, (_, i) => ({
    name: `weekly-${i + 1}`,
    tags: { [KEYS.backup]: 'weekly' },
  }));

/** Weekly points aged 0..5 weeks: retention (keep 4) deletes the two oldest. */
export const SIX_WEEKS = [0, 7, 14, 21, 28, 35];

/**
 * Launches `daily` daily instances (`app-1`...) and `weekly` weekly ones (`weekly-1`...),
 * and seeds each weekly one with snapshots aged `agesDays` (default {@link SIX_WEEKS}),
 * recorded as made by a run: the daily ones are due a backup, the seeded points retention.
 *
 * @example
 * const { daily, seeded } = await launchSeededFleet(ctx, { daily: 3, weekly: 1 });
 */
export async function launchSeededFleet(
  ctx: ScenarioContext,
  sizes: { daily: number; weekly: number; agesDays?: readonly number[] },
): Promise<{ daily: LaunchedInstance[]; seeded: SeededSnapshot[] }> {
  const fleet = await launchFleet(ctx.ec2, [
    ...dailyFleet(sizes.daily),
    ...weeklyFleet(sizes.weekly),
  ]);
  const daily = [...fleet.values()].filter((i) => i.name.startsWith('app-'));
  const seeded: SeededSnapshot[] = [];
  for (const instance of [...fleet.values()].filter((i) => i.name.startsWith('weekly-'))) {
    seeded.push(
      ...(await seedSnapshots(ctx.ec2, {
        history: ctx.history,
        deployment: ctx.deployment,
        schedule: 'weekly',
        instance,
        agesDays: sizes.agesDays ?? SIX_WEEKS,
      })),
    );
  }
  return { daily, seeded };
}

/**
 * Runs the backup of a daily `slot` through a process that dies after its second
 * `CreateSnapshots` (see `crashAfter`): some sets made, the run left holding the slot,
 * without its final record. Answers the crash and the run that died.
 *
 * @example
 * const { crashedRunId } = await crashMidSlot(ctx, await ctx.handler('backup'), slot);
 */
export async function crashMidSlot(
  ctx: ScenarioContext,
  backup: Handler,
  slot: string,
): Promise<{ crash: Crash; crashedRunId: string }> {
  const crash = crashAfter('CreateSnapshots', 2);
  ctx.proxy.rules.add(crash.rule);
  // A dead process answers nothing.
  await settle(backup({ schedule: 'daily', scheduledTime: slot }, lambdaContext()));
  ctx.proxy.rules.clear();
  return { crash, crashedRunId: await holderOf(ctx, 'backup', slot) };
}

/** The catch-up rule itself (36 h), not the ten years the replayed fixed slots get. */
export const REAL_CATCH_UP = { SLOT_CATCH_UP_SECONDS: String(36 * 3600) };

/**
 * Seeds one daily snapshot of an instance's root volume `ageDays` old with the tags the
 * backup job writes (`buildResourceTags`: the policy in force travels with the set),
 * straight in moto; `record` writes the creation record the job would write, `tags`
 * replaces the tags (a copy's, a hand-made one's), `description` sets EC2's description
 * (an AMI's snapshot).
 *
 * @example
 * await seedMade(ctx, web, webTags, 4, { record: 'create-snapshot' });
 */
export async function seedMade(
  ctx: ScenarioContext,
  instance: LaunchedInstance,
  instanceTags: Record<string, string>,
  ageDays: number,
  options: {
    record?: 'create-snapshot' | 'copy-snapshot';
    tags?: Record<string, string>;
    description?: string;
  } = {},
): Promise<string> {
  const root = instance.volumes.find((v) => v.device === ROOT_DEVICE);
  if (!root) throw new Error(`${instance.name} has no root volume`);
  const tags = options.tags ?? madeTags(ctx, instance, instanceTags, ageDays);
  const made = await ctx.ec2.send(
    new CreateSnapshotCommand({
      VolumeId: root.volumeId,
      ...(options.description ? { Description: options.description } : {}),
      TagSpecifications: [
        {
          ResourceType: 'snapshot',
          Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
        },
      ],
    }),
  );
  const snapshotId = made.SnapshotId ?? '';
  if (options.record) {
    await ctx.history.record({
      runId: 'seeded',
      job: options.record === 'copy-snapshot' ? 'copy' : 'backup',
      action: options.record,
      resourceId: snapshotId,
      phase: 'after',
      outcome: 'done',
      reason: 'seeded as if made by a run',
      details: { instanceId: instance.instanceId, volumeId: root.volumeId },
    });
  }
  return snapshotId;
}

/** The tags the backup job writes on a daily set of `instance` made `ageDays` ago. */
export function madeTags(
  ctx: ScenarioContext,
  instance: LaunchedInstance,
  instanceTags: Record<string, string>,
  ageDays: number,
): Record<string, string> {
  const createdAt = new Date(Date.now() - ageDays * DAY_MS - MINUTE_MS).toISOString();
  return Object.fromEntries(
    buildResourceTags(
      instance.instanceId,
      { Name: instance.name, ...instanceTags },
      {
        keys: KEYS,
        schedule: 'daily',
        slot: createdAt,
        deployment: ctx.deployment,
        runId: 'seeded',
        createdAt,
        copyTags: [],
      },
    ).map((t) => [t.Key, t.Value]),
  );
}

/** The named instance of a launched fleet. */
export function named(
  fleet: ReadonlyMap<string, LaunchedInstance>,
  name: string,
): LaunchedInstance {
  const found = fleet.get(name);
  if (!found) throw new Error(`no instance ${name}`);
  return found;
}

/** Waits `ms` milliseconds. */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
