import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildResourceTags, type InstanceFacts } from '../../../lib/domain/backupPlan.ts';
import { planOrphanSweep } from '../../../lib/domain/imageRetirement.ts';
import {
  type CreationRecord,
  isDisasterRecoveryCopy,
  lineageVolumeId,
  type Ownership,
  ownershipOf,
  UNKNOWN_VOLUME_ID,
} from '../../../lib/domain/provenance.ts';
import {
  planScheduleRetention,
  retentionSnapshot,
  type ScheduleRetentionInput,
  type ScheduleRetentionPlan,
} from '../../../lib/domain/retentionRun.ts';
import {
  DEFAULT_SCHEDULES,
  parseScheduleCatalog,
  resolveSchedule,
} from '../../../lib/domain/schedules.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { TagMap } from '../../../lib/domain/tagPolicy.ts';

const keys = tagKeys();
const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const daily = resolveSchedule(catalog, 'daily');
const DEPLOYMENT = 'prod';
const DAY_MS = 86_400_000;
/** Nine hours after the daily backup of 2026-11-23. */
const NOW = new Date('2026-11-23T12:00:00.000Z');
/** The history began keeping creation records long before any snapshot below. */
const LEDGER_START = new Date('2025-01-01T00:00:00.000Z');
const PROPERTY_RUNS = { numRuns: 200 };

const dailyAt = (daysAgo: number): Date =>
  new Date(Date.parse('2026-11-23T03:00:05.000Z') - daysAgo * DAY_MS);

/** The tags snapkeeper writes on a daily snapshot of this deployment. */
function ourTags(instanceId: string, daysAgo: number, extra: TagMap = {}): TagMap {
  return {
    [keys.managed]: 'true',
    [keys.deployment]: DEPLOYMENT,
    [keys.schedule]: 'daily',
    [keys.instanceId]: instanceId,
    [keys.createdAt]: dailyAt(daysAgo).toISOString(),
    ...extra,
  };
}

/** A completed snapshot that EC2 says started when its created-at tag says. */
function snapshot(
  id: string,
  volumeId: string,
  tags: TagMap,
  daysAgo: number,
  description?: string,
): SnapshotFacts {
  return {
    snapshotId: id,
    volumeId,
    state: 'completed',
    startTime: dailyAt(daysAgo),
    tags,
    sizeGiB: 8,
    ...(description ? { description } : {}),
  };
}

/** One volume's daily history, `snap-<volume>-d<days>`, newest first. */
function history(
  volumeId: string,
  instanceId: string,
  days: number,
  extra: TagMap = {},
): SnapshotFacts[] {
  return Array.from({ length: days }, (_, d) =>
    snapshot(
      `${volumeId.replace('vol-', 'snap-')}-d${d}`,
      volumeId,
      ourTags(instanceId, d, extra),
      d,
    ),
  );
}

/** Everything recorded as created by the backup job (a `create-snapshot` of its volume). */
function recordedAll(snapshots: readonly SnapshotFacts[]): Ownership {
  const recorded = new Map<string, CreationRecord>(
    snapshots.map((s) => [
      s.snapshotId,
      {
        resourceId: s.snapshotId,
        kind: 'snapshot',
        runId: 'r',
        job: 'backup',
        at: s.startTime.toISOString(),
        volumeId: s.volumeId,
      },
    ]),
  );
  return { kind: 'history', recorded, ledgerStart: LEDGER_START };
}

function webInstance(tags: TagMap = {}): InstanceFacts {
  return {
    instanceId: 'i-web',
    state: 'running',
    rootDeviceName: '/dev/xvda',
    tags: { [keys.backup]: 'true', Name: 'web-1', ...tags },
    volumes: [{ volumeId: 'vol-web', deviceName: '/dev/xvda' }],
  } as InstanceFacts;
}

function plan(
  snapshots: readonly SnapshotFacts[],
  overrides: Partial<ScheduleRetentionInput> = {},
): ScheduleRetentionPlan {
  return planScheduleRetention({
    schedule: daily,
    snapshots,
    holders: new Map(),
    instances: new Map(),
    volumeTags: new Map(),
    keys,
    catalog,
    deployment: DEPLOYMENT,
    now: NOW,
    ownership: recordedAll(snapshots),
    ...overrides,
  });
}

const deletions = (result: ScheduleRetentionPlan): string[] =>
  result.volumes.flatMap((v) =>
    v.plan.decisions.filter((d) => d.action === 'delete').map((d) => d.id),
  );

/** A disaster-recovery copy as the copy job tags it: the source's tags plus its markers; EC2 reports vol-ffffffff. */
function copyOf(source: SnapshotFacts, index: number): SnapshotFacts {
  return {
    ...source,
    snapshotId: `snap-copy-${index}`,
    volumeId: UNKNOWN_VOLUME_ID,
    tags: {
      ...source.tags,
      [keys.sourceVolumeId]: source.volumeId,
      [keys.sourceSnapshotId]: source.snapshotId,
      [keys.sourceRegion]: 'us-east-1',
      [keys.copyRetain]: '10',
    },
  };
}

describe('Provenance: who owns a snapshot', () => {
  it('owns what the history recorded, of the kind the job expects', () => {
    const ownership = recordedAll([snapshot('snap-1', 'vol-1', {}, 0)]);
    expect(ownershipOf('snap-1', 'snapshot', NOW, ownership)).toEqual({
      owned: true,
      basis: 'recorded',
    });
    expect(ownershipOf('snap-1', 'image', NOW, ownership).owned).toBe(false);
  });

  it('never owns a resource made after the ledger start that the history does not hold', () => {
    const verdict = ownershipOf('snap-hand', 'snapshot', NOW, recordedAll([]));
    expect(verdict).toEqual({
      owned: false,
      reason: expect.stringContaining('no record of creating it'),
    });
  });

  it('owns by its tags a resource EC2 made before the history kept creation records (existing histories)', () => {
    const ownership: Ownership = { kind: 'history', recorded: new Map(), ledgerStart: NOW };
    expect(ownershipOf('snap-old', 'snapshot', dailyAt(30), ownership)).toEqual({
      owned: true,
      basis: 'legacy',
    });
  });

  it('owns nothing when the history cannot be read', () => {
    const verdict = ownershipOf('snap-1', 'snapshot', dailyAt(30), {
      kind: 'unreadable',
      reason: 'AccessDenied',
    });
    expect(verdict.owned).toBe(false);
  });

  it('tells a disaster-recovery copy by its source markers', () => {
    expect(isDisasterRecoveryCopy({ [keys.sourceRegion]: 'us-east-1' }, keys)).toBe(true);
    expect(isDisasterRecoveryCopy({ [keys.sourceSnapshotId]: 'snap-1' }, keys)).toBe(true);
    expect(isDisasterRecoveryCopy(ourTags('i-web', 0), keys)).toBe(false);
  });

  it('never keys a lineage on vol-ffffffff: the recorded volume, else none', () => {
    const record: CreationRecord = {
      resourceId: 's',
      kind: 'snapshot',
      runId: 'r',
      job: 'backup',
      at: '',
      volumeId: 'vol-1',
    };
    expect(lineageVolumeId(UNKNOWN_VOLUME_ID, record)).toBe('vol-1');
    expect(lineageVolumeId(UNKNOWN_VOLUME_ID, undefined)).toBeUndefined();
    expect(lineageVolumeId('vol-2', undefined)).toBe('vol-2');
  });
});

describe('Schedule retention: disaster-recovery copies belong to the copy job (defect 2)', () => {
  it('keeps 40 copies of 4 instances that carry the stage tags, and reports each as the copy job’s', () => {
    const sources = ['a', 'b', 'c', 'd'].flatMap((n) => history(`vol-${n}`, `i-${n}`, 10));
    const copies = sources.map(copyOf);
    const result = plan(copies, { ownership: recordedAll([]) });
    expect(deletions(result)).toEqual([]);
    expect(result.volumes).toEqual([]);
    expect(result.excluded).toHaveLength(40);
    expect(new Set(result.excluded.map((e) => e.kind))).toEqual(new Set(['copy']));
  });

  it('never plans to delete a copy, and never has a lineage keyed on vol-ffffffff (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            days: fc.integer({ min: 1, max: 15 }),
            copies: fc.integer({ min: 0, max: 15 }),
            unknown: fc.boolean(),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        (volumes) => {
          const snapshots = volumes.flatMap((v, i) => {
            const own = history(`vol-${i}`, `i-${i}`, v.days).map((s) =>
              v.unknown ? { ...s, volumeId: UNKNOWN_VOLUME_ID } : s,
            );
            const copies = history(`vol-${i}`, `i-${i}`, v.copies).map((s, j) =>
              copyOf(s, i * 100 + j),
            );
            return [...own, ...copies];
          });
          const result = plan(snapshots, {
            ownership: recordedAll(snapshots.filter((s) => !s.snapshotId.startsWith('snap-copy'))),
          });
          expect(deletions(result).filter((id) => id.startsWith('snap-copy'))).toEqual([]);
          expect(result.volumes.map((v) => v.lineage.volumeId)).not.toContain(UNKNOWN_VOLUME_ID);
        },
      ),
      PROPERTY_RUNS,
    );
  });

  it('keys a snapshot EC2 reports on vol-ffffffff on the volume the history recorded', () => {
    const snaps = history('vol-web', 'i-web', 9).map((s) => ({
      ...s,
      volumeId: UNKNOWN_VOLUME_ID,
    }));
    const recorded = recordedAll(history('vol-web', 'i-web', 9));
    const result = plan(snaps, {
      ownership: recorded,
      instances: new Map([['i-web', webInstance()]]),
    });
    expect(result.volumes.map((v) => v.lineage.volumeId)).toEqual(['vol-web']);
    expect(deletions(result)).toEqual(['snap-web-d7', 'snap-web-d8']);
  });

  it('keeps and reports a snapshot of an unknown volume that the history does not place', () => {
    const snaps = history('vol-web', 'i-web', 9).map((s) => ({
      ...s,
      volumeId: UNKNOWN_VOLUME_ID,
    }));
    const result = plan(snaps, {
      ownership: { kind: 'history', recorded: new Map(), ledgerStart: LEDGER_START },
    });
    expect(deletions(result)).toEqual([]);
    expect(result.excluded.map((e) => e.kind)).toEqual(Array(9).fill('unknown-volume'));
  });
});

describe('Schedule retention: an orphan keeps the policy recorded at creation (defect 3)', () => {
  const policy = { [keys.retain]: '10', [keys.retainDays]: '30' };

  it('keeps 10 and nothing younger than 30 days of a terminated instance tagged retain=10, retain-days=30', () => {
    const snaps = history('vol-web', 'i-web', 40, policy);
    const result = plan(snaps);
    const [volume] = result.volumes;
    expect(volume?.lineage.orphan).toBe(true);
    expect(volume?.lineage.policyFrom).toBe('recorded');
    expect(volume?.lineage.rule).toEqual({ count: 10, minAgeDays: 30 });
    expect(deletions(result)).toEqual(Array.from({ length: 10 }, (_, i) => `snap-web-d${30 + i}`));
  });

  it('applies the recorded policy when the opt-in tag is removed from a live instance', () => {
    const snaps = history('vol-web', 'i-web', 12, policy);
    const untagged = { ...webInstance(), tags: { Name: 'web-1' } };
    const result = plan(snaps, { instances: new Map([['i-web', untagged]]) });
    expect(result.volumes[0]?.lineage.rule).toEqual({ count: 10, minAgeDays: 30 });
    expect(deletions(result)).toEqual([]);
  });

  it('applies the live instance’s current tag, the operator’s intent, while it still opts in', () => {
    const snaps = history('vol-web', 'i-web', 12, policy);
    const live = webInstance({ [keys.retain]: '3' });
    const result = plan(snaps, { instances: new Map([['i-web', live]]) });
    expect(result.volumes[0]?.lineage.policyFrom).toBe('instance');
    expect(result.volumes[0]?.lineage.rule).toEqual({ count: 3 });
  });

  it('never keeps fewer completed snapshots of an orphan than the count recorded on them (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 40 }),
        (retain, days) => {
          const snaps = history('vol-web', 'i-web', days, { [keys.retain]: String(retain) });
          const result = plan(snaps);
          const kept = days - deletions(result).length;
          expect(kept).toBeGreaterThanOrEqual(Math.min(retain, days));
        },
      ),
      PROPERTY_RUNS,
    );
  });

  it('reads the recorded policy from the compact form the job keeps', () => {
    const [first] = history('vol-web', 'i-web', 1, policy);
    if (!first) throw new Error('no snapshot');
    expect(retentionSnapshot(first, keys).tags).toMatchObject(policy);
  });
});

describe('Schedule retention: AMI snapshots belong to AMI retention (defect 4)', () => {
  it('keeps 3 days of sets with retain=3 although the volume also has an AMI snapshot each day', () => {
    const sets = history('vol-web', 'i-web', 5);
    const amiSnapshots = [0, 1].map((d) =>
      snapshot(
        `snap-ami-d${d}`,
        'vol-web',
        ourTags('i-web', d),
        d,
        `Created by CreateImage(i-web) for ami-0${d}`,
      ),
    );
    const live = webInstance({ [keys.retain]: '3' });
    const all = [...amiSnapshots, ...sets];
    const result = plan(all, {
      instances: new Map([['i-web', live]]),
      holders: new Map([['snap-ami-d0', ['ami-00']]]),
    });
    expect(deletions(result)).toEqual(['snap-web-d3', 'snap-web-d4']);
    expect(result.excluded.map((e) => [e.snapshotId, e.kind])).toEqual([
      ['snap-ami-d0', 'image-snapshot'],
      ['snap-ami-d1', 'image-snapshot'],
    ]);
  });

  it('never counts nor deletes a CreateImage snapshot (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 15 }),
        fc.integer({ min: 0, max: 15 }),
        (retain, days, amis) => {
          const sets = history('vol-web', 'i-web', days);
          const amiSnapshots = Array.from({ length: amis }, (_, d) =>
            snapshot(
              `snap-ami-${d}`,
              'vol-web',
              ourTags('i-web', d),
              d,
              `Created by CreateImage(i-web) for ami-${d}`,
            ),
          );
          const all = [...amiSnapshots, ...sets];
          const result = plan(all, {
            instances: new Map([['i-web', webInstance({ [keys.retain]: String(retain) })]]),
          });
          const deleted = deletions(result);
          expect(deleted.filter((id) => id.startsWith('snap-ami'))).toEqual([]);
          expect(days - deleted.length).toBe(Math.min(days, retain));
        },
      ),
      PROPERTY_RUNS,
    );
  });
});

describe('Schedule retention: only what the history recorded is deleted (defect 11)', () => {
  it('reports a hand-made snapshot with our tags by id, and never deletes it', () => {
    const sets = history('vol-web', 'i-web', 9);
    const handMade = snapshot('snap-hand', 'vol-web', ourTags('i-web', 20), 20);
    const result = plan([...sets, handMade], { ownership: recordedAll(sets) });
    expect(deletions(result)).toEqual(['snap-web-d7', 'snap-web-d8']);
    expect(result.excluded).toEqual([
      {
        snapshotId: 'snap-hand',
        kind: 'unrecorded',
        reason: expect.stringContaining('no record of creating it'),
        sizeGiB: 8,
      },
    ]);
  });

  it('deletes nothing and says why when the history cannot be read', () => {
    const sets = history('vol-web', 'i-web', 12);
    const result = plan(sets, {
      ownership: { kind: 'unreadable', reason: 'AccessDeniedException: no' },
    });
    expect(deletions(result)).toEqual([]);
    expect(result.volumes[0]?.lineage.problems).toEqual([
      expect.stringContaining('run history cannot be read'),
    ]);
  });

  it('plans to delete only recorded snapshots, whatever is recorded (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 30 }), (recordedFlags) => {
        const sets = history('vol-web', 'i-web', recordedFlags.length);
        const recorded = sets.filter((_, i) => recordedFlags[i]);
        const result = plan(sets, { ownership: recordedAll(recorded) });
        const ids = new Set(recorded.map((s) => s.snapshotId));
        for (const id of deletions(result)) expect(ids.has(id)).toBe(true);
        expect(result.excluded).toHaveLength(sets.length - recorded.length);
      }),
      PROPERTY_RUNS,
    );
  });
});

describe('Orphan sweep: only snapshots of AMIs the history recorded (defect 11)', () => {
  const gone = (id: string, imageId: string): SnapshotFacts =>
    snapshot(id, 'vol-web', ourTags('i-web', 1), 1, `Created by CreateImage(i-web) for ${imageId}`);
  const input = {
    existingImageIds: new Set<string>(),
    imagesInRecycleBin: new Set<string>(),
    holders: new Map(),
    keys,
    deployment: DEPLOYMENT,
  };

  it('deletes the snapshot of a recorded AMI and only reports one of an AMI never recorded', () => {
    const recorded = new Map<string, CreationRecord>([
      ['ami-0a', { resourceId: 'ami-0a', kind: 'image', runId: 'r', job: 'amis', at: '' }],
    ]);
    const result = planOrphanSweep({
      ...input,
      snapshots: [gone('snap-1', 'ami-0a'), gone('snap-2', 'ami-0b')],
      ownership: { kind: 'history', recorded, ledgerStart: LEDGER_START },
    });
    expect(result.delete.map((d) => d.snapshotId)).toEqual(['snap-1']);
    expect(result.reportOnly.map((d) => [d.snapshotId, d.reason])).toEqual([
      ['snap-2', expect.stringContaining('no record of creating ami-0b')],
    ]);
  });

  it('keeps every snapshot when the history cannot be read', () => {
    const result = planOrphanSweep({
      ...input,
      snapshots: [gone('snap-1', 'ami-0a')],
      ownership: { kind: 'unreadable', reason: 'timeout' },
    });
    expect(result.delete).toEqual([]);
    expect(result.blocked.map((b) => b.heldBy)).toEqual([['run history']]);
  });
});

describe('Tags at creation: the policy travels with the set (defect 3)', () => {
  const context = {
    keys,
    schedule: 'daily',
    slot: '2026-11-23T03:00:00Z',
    deployment: DEPLOYMENT,
    runId: 'r1',
    createdAt: '2026-11-23T03:00:05Z',
    copyTags: [] as string[],
  };

  it('records retain, retain-days, retain-tiers and ami-retain of the instance on what it creates', () => {
    const tags = buildResourceTags(
      'i-web',
      {
        [keys.retain]: '10',
        [keys.retainDays]: '30',
        [keys.retainTiers]: 'weekly=4',
        [keys.amiRetain]: '2',
        [keys.backup]: 'true',
      },
      context,
    );
    const map = Object.fromEntries(tags.map((t) => [t.Key, t.Value]));
    expect(map).toMatchObject({
      [keys.retain]: '10',
      [keys.retainDays]: '30',
      [keys.retainTiers]: 'weekly=4',
      [keys.amiRetain]: '2',
    });
    expect(map[keys.backup]).toBeUndefined();
  });

  it('stays within EC2’s 50 tags, our own and the policy first, whatever is copied (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 80 }), (extra) => {
        const instanceTags: Record<string, string> = {
          [keys.retain]: '10',
          [keys.retainDays]: '30',
          Name: 'web',
        };
        const copyTags: string[] = [];
        for (let i = 0; i < extra; i += 1) {
          instanceTags[`Team${i}`] = 'x';
          copyTags.push(`Team${i}`);
        }
        const tags = buildResourceTags('i-web', instanceTags, { ...context, copyTags });
        expect(tags.length).toBeLessThanOrEqual(50);
        expect(tags.map((t) => t.Key)).toEqual(
          expect.arrayContaining([keys.managed, keys.retain, keys.retainDays]),
        );
      }),
      PROPERTY_RUNS,
    );
  });
});
