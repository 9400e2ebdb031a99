/**
 * Locked and archived monthly points end to end, through the handlers: backup locks each
 * new snapshot (the fault proxy's lock emulator answers the lock calls, which moto lacks),
 * retention blocks the locked points it would delete and archives the old ones in moto
 * (ModifySnapshotTier), and restore-volume brings an archived point back first. Four
 * monthly slots are served with the clock moved on a month at a time.
 */
import {
  DeleteTagsCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import type { FaultProxy } from '../../harness/faultProxy.ts';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet } from '../../harness/localFleet.ts';
import {
  type SnapshotLockEmulator,
  snapshotLockEmulator,
} from '../../harness/snapshotLockCalls.ts';
import { DEFAULT_SCHEDULES } from '../../lib/domain/schedules.ts';
import { useFaultProxiedAws } from '../support/localEnvironment.ts';

// This file's own region on the shared moto server.
const REGION = 'mx-central-1';
const DEPLOYMENT = 'itest-locks';

type Handler = (event: unknown, context: unknown) => Promise<Record<string, unknown>>;
type Report = Record<string, unknown> & {
  status: string;
  locks?: { snapshotId: string; outcome: string }[];
  archive?: { snapshotId: string; outcome: string }[];
  counts?: Record<string, number>;
  volumes?: { volumeId: string; blocked: { snapshotId: string; heldBy: string[] }[] }[];
};

/** The monthly slots served: 1 December 2026 to 1 March 2027, 05:00 UTC. */
const SLOTS = [
  Date.UTC(2026, 11, 1, 5),
  Date.UTC(2027, 0, 1, 5),
  Date.UTC(2027, 1, 1, 5),
  Date.UTC(2027, 2, 1, 5),
];

describe('Integration: locked and archived monthly points through the handlers', () => {
  let proxy: FaultProxy;
  let ec2: EC2Client;
  let emulator: SnapshotLockEmulator;
  let fleet: Map<string, LaunchedInstance>;
  let backup: Handler;
  let retention: Handler;
  let ops: Handler;
  const backups: Report[] = [];
  const retentions: Report[] = [];

  const run = async (handler: Handler, event: unknown, name: string): Promise<Report> => {
    try {
      return (await handler(event, lambdaContext(`snapkeeper-${name}`))) as Report;
    } catch (error) {
      return ((error as { report?: Report }).report ?? { status: 'threw', error }) as Report;
    }
  };
  const volumeOf = (name: string) => fleet.get(name)?.volumes[0]?.volumeId ?? '';
  const snapshotsOf = async (volumeId: string) =>
    (
      await ec2.send(
        new DescribeSnapshotsCommand({
          OwnerIds: ['self'],
          Filters: [{ Name: 'volume-id', Values: [volumeId] }],
        }),
      )
    ).Snapshots ?? [];

  beforeAll(async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(SLOTS[0] as number);
    ({ proxy, ec2 } = await useFaultProxiedAws(inject('awsEndpoint'), REGION, {
      DEPLOYMENT,
      SCHEDULES: JSON.stringify(
        DEFAULT_SCHEDULES.map((d) => (d.name === 'monthly' ? { ...d, archiveAfterDays: 45 } : d)),
      ),
    }));
    emulator = snapshotLockEmulator();
    proxy.rules.add(emulator.rule);
    fleet = await launchFleet(ec2, [
      {
        name: 'vault-1',
        tags: { 'snapkeeper:backup': 'monthly', 'snapkeeper:lock': 'monthly=365d' },
      },
      {
        name: 'ledger-1',
        tags: {
          'snapkeeper:backup': 'monthly',
          'snapkeeper:lock': 'monthly=365d',
          'snapkeeper:retain': 'monthly=1',
        },
      },
    ]);
    const load = async (name: string) =>
      ((await import(`../../functions/${name}.ts`)) as unknown as { handler: Handler }).handler;
    backup = await load('backup');
    retention = await load('retention');
    ops = await load('ops');
    for (const slot of SLOTS) {
      vi.setSystemTime(slot + 5_000);
      backups.push(
        await run(
          backup,
          { schedule: 'monthly', scheduledTime: new Date(slot).toISOString() },
          'backup',
        ),
      );
      vi.setSystemTime(slot + 3_600_000 + 5_000);
      retentions.push(
        await run(
          retention,
          { schedule: 'monthly', scheduledTime: new Date(slot + 3_600_000).toISOString() },
          'retention',
        ),
      );
    }
  }, 120_000);

  afterAll(async () => {
    vi.useRealTimers();
    // This region is shared with costLedger (moto has no free region left): every instance
    // this file locked opts out again, so no later file's run sees its lock tags (moto has no lock calls;
    // only this file's proxy answers them).
    const locked = await ec2?.send(
      new DescribeInstancesCommand({ Filters: [{ Name: 'tag-key', Values: ['snapkeeper:lock'] }] }),
    );
    const ids = (locked?.Reservations ?? []).flatMap((r) =>
      (r.Instances ?? []).map((i) => i.InstanceId ?? ''),
    );
    if (ids.length > 0) {
      await ec2?.send(
        new DeleteTagsCommand({
          Resources: ids,
          Tags: [{ Key: 'snapkeeper:backup' }, { Key: 'snapkeeper:lock' }],
        }),
      );
    }
    ec2?.destroy();
    await proxy?.stop();
  });

  it('locks every snapshot of every monthly set right after it is made', () => {
    for (const report of backups) {
      expect(report.status).toBe('succeeded');
      expect(report.locks?.map((l) => l.outcome)).toEqual(['locked', 'locked']);
    }
    const locked = backups.flatMap((r) => r.locks ?? []).map((l) => l.snapshotId);
    expect([...emulator.locks.keys()].sort()).toEqual([...locked].sort());
    expect(locked).toHaveLength(SLOTS.length * 2);
  });

  it("never deletes ledger-1's locked points: retention blocks them, locked until a year on", async () => {
    const last = retentions.at(-1) as Report;
    const ledger = last.volumes?.find((v) => v.volumeId === volumeOf('ledger-1'));
    expect(ledger?.blocked).toHaveLength(SLOTS.length - 1);
    expect(ledger?.blocked[0]?.heldBy[0]).toMatch(/^locked \(governance\) until 2027-/);
    expect(last.counts?.deleted).toBe(0);
    expect(await snapshotsOf(volumeOf('ledger-1'))).toHaveLength(SLOTS.length);
  });

  it("archives vault-1's points once they are 45 days old, in moto's archive tier", async () => {
    const archived = retentions
      .flatMap((r) => r.archive ?? [])
      .filter((a) => a.outcome === 'archived');
    expect(archived.length).toBeGreaterThanOrEqual(2);
    const tiers = new Map(
      (await snapshotsOf(volumeOf('vault-1'))).map((s) => [s.SnapshotId, s.StorageTier]),
    );
    for (const a of archived.filter((x) => tiers.has(x.snapshotId))) {
      expect(tiers.get(a.snapshotId)).toBe('archive');
    }
    // ledger-1 keeps one point by its count, but its locks keep the others a year: those
    // past 45 days are archived too (kept 90 more days by the lock).
    const ledgerIds = new Set((await snapshotsOf(volumeOf('ledger-1'))).map((s) => s.SnapshotId));
    expect(archived.filter((a) => ledgerIds.has(a.snapshotId)).length).toBeGreaterThanOrEqual(1);
  });

  it('restores an archived point from archive before making a volume of it', async () => {
    // Prepare
    const archived = (await snapshotsOf(volumeOf('vault-1'))).find(
      (s) => s.StorageTier === 'archive',
    );
    expect(archived).toBeDefined();
    const request = {
      action: 'restore-volume',
      snapshotId: archived?.SnapshotId,
      archiveRestore: { days: 2 },
      availabilityZone: `${REGION}a`,
    };

    // Act
    const first = (await run(ops, request, 'ops')).result as Record<string, unknown>;
    const second = (await run(ops, { ...request, availabilityZone: `${REGION}b` }, 'ops'))
      .result as Record<string, unknown>;

    // Assess
    expect(first.status).toBe('waiting-for-archive');
    expect(first.archive).toMatchObject({ status: 'started' });
    expect(String((first.archive as Record<string, unknown>).readyBy)).toMatch(/^20\d\d-/);
    expect(second.status).toBe('succeeded');
    expect(String(second.volumeId)).toMatch(/^vol-/);
  });
  it('locks the sets a tag schedule makes (snapkeeper:lock=tag=30d), through the tag dispatcher', async () => {
    // Prepare: an instance on its own rate(6 hours), its tag schedules locked for 30 days.
    const tagged = await launchFleet(ec2, [
      {
        name: 'tagged-1',
        tags: { 'snapkeeper:backup': 'rate(6 hours)', 'snapkeeper:lock': 'tag=30d' },
      },
    ]);
    const volumeId = tagged.get('tagged-1')?.volumes[0]?.volumeId ?? '';

    // Act: the dispatcher's delivery to the backup function.
    const report = await run(
      backup,
      { schedule: 'tag', scheduledTime: new Date().toISOString() },
      'backup',
    );

    // Assess: its set was made, and every snapshot of it locked.
    expect(report.status).not.toBe('threw');
    const made = await snapshotsOf(volumeId);
    expect(made.length).toBeGreaterThan(0);
    for (const snapshot of made) expect(emulator.locks.has(snapshot.SnapshotId ?? '')).toBe(true);
  });
});
