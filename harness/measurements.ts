/**
 * Measurements of a local AWS, read straight from moto (never through the fault proxy):
 * a slot's snapshot sets and duplicates, seeded snapshots, which snapshots still exist, an
 * instance's images, a lease moved into the past, the resources the history never traced,
 * and a handler call settled without throwing. The fault campaign and the integration
 * tests measure with the same.
 */
import {
  CreateSnapshotCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
  type Image,
  type Snapshot,
} from '@aws-sdk/client-ec2';
import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { RunHistoryGateway } from '../lib/aws/RunHistoryGateway.ts';
import { tagKeys } from '../lib/domain/tagKeys.ts';
import { type LaunchedInstance, ROOT_DEVICE } from './localFleet.ts';

/** The default tag keys (`snapkeeper:`). */
export const KEYS = tagKeys();
const DAY_MS = 86_400_000;

/** A slot's snapshot sets: instance id → run id → snapshot ids. */
export type SnapshotSets = Map<string, Map<string, string[]>>;

/**
 * The snapshot sets a deployment made for one slot, grouped by the instance and the
 * run that made them (their `snapkeeper:instance-id` and `snapkeeper:run-id` tags).
 *
 * @example
 * const sets = await snapshotSetsOfSlot(ec2, 'prod', '2026-11-23T03:00:00Z');
 */
export async function snapshotSetsOfSlot(
  ec2: EC2Client,
  deployment: string,
  slot: string,
): Promise<SnapshotSets> {
  const sets: SnapshotSets = new Map();
  for (const snapshot of await snapshotsTaggedWithSlot(ec2, deployment, slot)) {
    const tags = Object.fromEntries((snapshot.Tags ?? []).map((t) => [t.Key, t.Value]));
    const instanceId = tags[KEYS.instanceId] ?? 'none';
    const runId = tags[KEYS.runId] ?? 'none';
    const byRun = sets.get(instanceId) ?? new Map<string, string[]>();
    byRun.set(runId, [...(byRun.get(runId) ?? []), snapshot.SnapshotId ?? '']);
    sets.set(instanceId, byRun);
  }
  return sets;
}

/** The deployment's snapshots tagged with a slot (one page: a campaign's slot is small). */
async function snapshotsTaggedWithSlot(
  ec2: EC2Client,
  deployment: string,
  slot: string,
): Promise<Snapshot[]> {
  const response = await ec2.send(
    new DescribeSnapshotsCommand({
      OwnerIds: ['self'],
      Filters: [
        { Name: `tag:${KEYS.slot}`, Values: [slot] },
        { Name: `tag:${KEYS.deployment}`, Values: [deployment] },
      ],
    }),
  );
  return response.Snapshots ?? [];
}

/** Snapshot sets beyond the first per instance: duplicates. */
export function duplicateSetCount(sets: SnapshotSets): number {
  let extra = 0;
  for (const byRun of sets.values()) extra += Math.max(0, byRun.size - 1);
  return extra;
}

/**
 * Extra snapshots of a slot: beyond the first of each volume, whichever run made them
 * (a retried create whose first answer was lost makes a second set under the same run).
 *
 * @example
 * await extraSnapshotsOfSlot(ec2, 'prod', '2026-11-23T03:00:00Z'); // 0
 */
export async function extraSnapshotsOfSlot(
  ec2: EC2Client,
  deployment: string,
  slot: string,
): Promise<number> {
  const perVolume = new Map<string, number>();
  for (const snapshot of await snapshotsTaggedWithSlot(ec2, deployment, slot)) {
    const volumeId = snapshot.VolumeId ?? 'none';
    perVolume.set(volumeId, (perVolume.get(volumeId) ?? 0) + 1);
  }
  return [...perVolume.values()].reduce((n, count) => n + count - 1, 0);
}

/** Every snapshot id of a slot's sets. */
export function snapshotIdsOf(sets: SnapshotSets): string[] {
  return [...sets.values()].flatMap((byRun) => [...byRun.values()].flat());
}

/** A snapshot seeded as if snapkeeper had made it `ageDays` ago. */
export interface SeededSnapshot {
  readonly snapshotId: string;
  readonly ageDays: number;
}

/**
 * Seeds managed snapshots of an instance's root volume for a schedule, aged as given
 * (the `snapkeeper:created-at` tag), straight in moto, and records each in the run
 * history as the backup job records what it creates (retention deletes only what the
 * history recorded).
 *
 * @example
 * await seedSnapshots(ec2, { deployment: 'prod', schedule: 'weekly', instance, agesDays: [0, 7, 14] });
 */
export async function seedSnapshots(
  ec2: EC2Client,
  seed: {
    deployment: string;
    schedule: string;
    instance: LaunchedInstance;
    agesDays: readonly number[];
    /** Where the creation records go: the deployment's run history. */
    history: Pick<RunHistoryGateway, 'record'>;
  },
): Promise<SeededSnapshot[]> {
  const root = seed.instance.volumes.find((v) => v.device === ROOT_DEVICE);
  if (!root) throw new Error(`${seed.instance.name} has no root volume`);
  const now = Date.now();
  const seeded: SeededSnapshot[] = [];
  for (const ageDays of seed.agesDays) {
    const tags = {
      [KEYS.managed]: 'true',
      [KEYS.deployment]: seed.deployment,
      [KEYS.schedule]: seed.schedule,
      [KEYS.instanceId]: seed.instance.instanceId,
      [KEYS.createdAt]: new Date(now - ageDays * DAY_MS - 60_000).toISOString(),
      Name: seed.instance.name,
    };
    const response = await ec2.send(
      new CreateSnapshotCommand({
        VolumeId: root.volumeId,
        TagSpecifications: [
          {
            ResourceType: 'snapshot',
            Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
          },
        ],
      }),
    );
    const snapshotId = response.SnapshotId ?? '';
    await seed.history.record({
      runId: 'seeded',
      job: 'backup',
      action: 'create-snapshot',
      resourceId: snapshotId,
      phase: 'after',
      outcome: 'done',
      reason: 'seeded as if made by a backup run',
      details: { instanceId: seed.instance.instanceId, volumeId: root.volumeId },
    });
    seeded.push({ snapshotId, ageDays });
  }
  return seeded;
}

/** Which of the given snapshots still exist. */
export async function existingSnapshots(
  ec2: EC2Client,
  snapshotIds: readonly string[],
): Promise<Set<string>> {
  if (snapshotIds.length === 0) return new Set();
  const response = await ec2.send(
    new DescribeSnapshotsCommand({
      OwnerIds: ['self'],
      Filters: [{ Name: 'snapshot-id', Values: [...snapshotIds] }],
    }),
  );
  return new Set((response.Snapshots ?? []).map((s) => s.SnapshotId ?? ''));
}

/** The images of one instance, oldest slot first. */
export async function imagesOfInstance(ec2: EC2Client, instanceId: string): Promise<Image[]> {
  const response = await ec2.send(
    new DescribeImagesCommand({
      Owners: ['self'],
      Filters: [{ Name: `tag:${KEYS.instanceId}`, Values: [instanceId] }],
    }),
  );
  const slot = (image: Image) => image.Tags?.find((t) => t.Key === KEYS.slot)?.Value ?? '';
  return (response.Images ?? []).sort((a, b) => slot(a).localeCompare(slot(b)));
}

/** The snapshot ids behind an image. */
export function snapshotsOfImage(image: Image | undefined): string[] {
  return (image?.BlockDeviceMappings ?? []).flatMap((m) =>
    m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [],
  );
}

/**
 * Kills a run for good in the history: its lease set to `at` (long past), as a run
 * whose process died and never renewed it. Straight in the table.
 */
export async function leaseInThePast(
  doc: DynamoDBDocumentClient,
  table: string,
  runId: string,
  at: Date,
): Promise<void> {
  await doc.send(
    new UpdateCommand({
      TableName: table,
      Key: { PK: `RUN#${runId}`, SK: 'RUN' },
      UpdateExpression: 'SET leaseRenewedAt = :lease',
      ConditionExpression: 'attribute_exists(PK)',
      ExpressionAttributeValues: { ':lease': at.toISOString() },
    }),
  );
}

/** The resources (snapshots, images) of which the history holds no action at all. */
export async function untracedResources(
  history: RunHistoryGateway,
  resourceIds: readonly string[],
): Promise<string[]> {
  const untraced: string[] = [];
  for (const id of resourceIds) {
    if ((await history.resourceHistory(id)).length === 0) untraced.push(id);
  }
  return untraced;
}

/** The outcome of a handler call: its answer, or what it threw. */
export type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Awaits a handler call without throwing. */
export async function settle(call: Promise<unknown>): Promise<Settled> {
  return call.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}
