import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidScheduleDefinitionError } from '../../../lib/domain/errors.ts';
import {
  MAX_RESTORE_TEST_SAMPLE,
  newestCompletedSet,
  parseRestoreTestOptions,
  restoredVolumeProblems,
  selectRestoreTests,
} from '../../../lib/domain/restoreTestPlan.ts';
import { jobTimetable, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';

const keys = tagKeys();
const NOW = new Date('2026-11-23T12:00:00Z');

function snapshot(
  id: string,
  runId: string,
  createdAt: string,
  state = 'completed',
  instanceId = 'i-a',
): SnapshotFacts {
  return {
    snapshotId: id,
    volumeId: `vol-${id}`,
    state,
    startTime: new Date(createdAt),
    tags: { [keys.runId]: runId, [keys.instanceId]: instanceId, [keys.createdAt]: createdAt },
    sizeGiB: 8,
  };
}

describe('Function: parseRestoreTestOptions', () => {
  it('takes "all" or a sample size, and an initialization rate of 100-300 MiB/s', () => {
    expect(parseRestoreTestOptions({}, 'daily')).toEqual({ instances: 'all' });
    expect(
      parseRestoreTestOptions({ instances: 2, volumeInitializationRate: 300 }, 'daily'),
    ).toEqual({
      instances: 2,
      volumeInitializationRate: 300,
    });
  });

  it.each([
    [{ instances: 0 }, 'restoreTests.instances'],
    [{ instances: 2.5 }, 'restoreTests.instances'],
    [{ instances: 'some' }, 'restoreTests.instances'],
    [{ instances: MAX_RESTORE_TEST_SAMPLE + 1 }, 'restoreTests.instances'],
    [{ volumeInitializationRate: 99 }, 'restoreTests.volumeInitializationRate'],
    [{ volumeInitializationRate: 301 }, 'restoreTests.volumeInitializationRate'],
    [{ volumeInitializationRate: '200' }, 'restoreTests.volumeInitializationRate'],
    [{ instance: 2 }, 'restoreTests'],
    ['all', 'restoreTests'],
  ])('refuses %j naming %s, the schedule and how to write it', (input, field) => {
    expect(() => parseRestoreTestOptions(input, 'daily')).toThrow(InvalidScheduleDefinitionError);
    expect(() => parseRestoreTestOptions(input, 'daily')).toThrow(
      new RegExp(`schedule "daily": ${field.replace('.', '\\.')}.*write restoreTests as`),
    );
  });
});

describe('Schedule option: restoreTests', () => {
  const daily = { name: 'daily', cron: 'cron(0 3 * * ? *)', retain: 7 };

  it('is off unless set, and runs with retention unless it names a cron', () => {
    const off = parseScheduleCatalog([daily]).schedules.get('daily');
    const on = parseScheduleCatalog([{ ...daily, restoreTests: { instances: 2 } }]).schedules.get(
      'daily',
    );
    const timed = parseScheduleCatalog([
      { ...daily, restoreTests: { cron: 'cron(0 9 ? * MON *)' } },
    ]).schedules.get('daily');
    expect(off?.restoreTests).toBeUndefined();
    expect(on?.restoreTests).toEqual({ instances: 2 });
    expect(on && jobTimetable(on, 'restore-test').cron).toBe('cron(0 4 * * ? *)');
    expect(timed && jobTimetable(timed, 'restore-test').cron).toBe('cron(0 9 ? * MON *)');
  });

  it.each([
    [{ instances: -1 }, /schedule "daily": restoreTests\.instances/],
    [{ volumeInitializationRate: 500 }, /restoreTests\.volumeInitializationRate: .*300/],
    [{ cron: 'every day' }, /not an AWS cron expression/],
    [true, /schedule "daily": restoreTests: .*write restoreTests as/],
  ])('refuses a bad option %j in the catalog by schedule and field', (restoreTests, message) => {
    expect(() => parseScheduleCatalog([{ ...daily, restoreTests }])).toThrow(message);
  });
});

describe('Function: selectRestoreTests', () => {
  it('tests never-tested instances first, then the least recently tested', () => {
    const chosen = selectRestoreTests(
      [
        { instanceId: 'i-c', lastTestedAt: '2026-11-20T00:00:00Z' },
        { instanceId: 'i-a', lastTestedAt: '2026-11-10T00:00:00Z' },
        { instanceId: 'i-b' },
      ],
      2,
    );
    expect(chosen).toEqual(['i-b', 'i-a']);
  });

  it('takes every instance with "all"', () => {
    expect(selectRestoreTests([{ instanceId: 'i-b' }, { instanceId: 'i-a' }], 'all')).toEqual([
      'i-a',
      'i-b',
    ]);
  });

  const fleet = fc.uniqueArray(fc.stringMatching(/^i-[0-9a-f]{4}$/), {
    minLength: 1,
    maxLength: 12,
  });

  it('property: a run tests min(N, fleet) distinct instances of the fleet', () => {
    fc.assert(
      fc.property(fleet, fc.integer({ min: 1, max: 15 }), (ids, n) => {
        const chosen = selectRestoreTests(
          ids.map((instanceId) => ({ instanceId })),
          n,
        );
        expect(chosen).toHaveLength(Math.min(n, ids.length));
        expect(new Set(chosen).size).toBe(chosen.length);
        for (const id of chosen) expect(ids).toContain(id);
      }),
    );
  });

  it('property: rotating N a run covers the whole fleet in ceil(fleet / N) runs', () => {
    fc.assert(
      fc.property(fleet, fc.integer({ min: 1, max: 5 }), (ids, n) => {
        const lastTested = new Map<string, string>();
        const covered = new Set<string>();
        const runs = Math.ceil(ids.length / n);
        for (let run = 0; run < runs; run += 1) {
          const at = new Date(Date.UTC(2026, 10, 1 + run)).toISOString();
          const chosen = selectRestoreTests(
            ids.map((instanceId) => ({ instanceId, lastTestedAt: lastTested.get(instanceId) })),
            n,
          );
          for (const id of chosen) {
            covered.add(id);
            lastTested.set(id, at);
          }
        }
        expect(covered.size).toBe(ids.length);
      }),
    );
  });

  it('property: no chosen instance was tested more recently than one left out', () => {
    const candidate = fc.record({
      instanceId: fc.stringMatching(/^i-[0-9a-f]{3}$/),
      lastTestedAt: fc.option(
        fc
          .date({ min: new Date('2026-01-01'), max: new Date('2026-12-31'), noInvalidDate: true })
          .map((d) => d.toISOString()),
        { nil: undefined },
      ),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(candidate, { selector: (c) => c.instanceId, maxLength: 10 }),
        fc.integer({ min: 1, max: 10 }),
        (candidates, n) => {
          const chosen = new Set(selectRestoreTests(candidates, n));
          const time = (c: (typeof candidates)[number]) =>
            c.lastTestedAt ? Date.parse(c.lastTestedAt) : Number.NEGATIVE_INFINITY;
          const latestChosen = Math.max(
            Number.NEGATIVE_INFINITY,
            ...candidates.filter((c) => chosen.has(c.instanceId)).map(time),
          );
          for (const c of candidates.filter((c) => !chosen.has(c.instanceId)))
            expect(time(c)).toBeGreaterThanOrEqual(latestChosen);
        },
      ),
    );
  });
});

describe('Function: newestCompletedSet', () => {
  it('takes the newest set whose every snapshot is completed', () => {
    const set = newestCompletedSet(
      'i-a',
      [
        snapshot('s1', 'run-1', '2026-11-21T03:00:00Z'),
        snapshot('s2', 'run-1', '2026-11-21T03:00:00Z'),
        snapshot('s3', 'run-2', '2026-11-22T03:00:00Z'),
        snapshot('s4', 'run-3', '2026-11-23T03:00:00Z'),
        snapshot('s5', 'run-3', '2026-11-23T03:00:00Z', 'pending'),
      ],
      keys,
      NOW,
    );
    expect(set?.runId).toBe('run-2');
    expect(set?.snapshots.map((s) => s.snapshotId)).toEqual(['s3']);
  });

  it('ignores snapshots of another instance or without a run id', () => {
    const other = snapshot('s1', 'run-1', '2026-11-21T03:00:00Z', 'completed', 'i-b');
    const noRun = { ...snapshot('s2', '', '2026-11-22T03:00:00Z') };
    expect(newestCompletedSet('i-a', [other, noRun], keys, NOW)).toBeUndefined();
  });

  it('property: the chosen set is complete and no complete set is newer', () => {
    const item = fc.record({
      run: fc.integer({ min: 1, max: 5 }),
      day: fc.integer({ min: 1, max: 20 }),
      completed: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(item, { maxLength: 15 }), (items) => {
        // One time per run, as one CreateSnapshots call makes it.
        const snapshots = items.map((it, i) =>
          snapshot(
            `s${i}`,
            `run-${it.run}`,
            `2026-11-${String(it.run).padStart(2, '0')}T03:00:00Z`,
            it.completed ? 'completed' : 'pending',
          ),
        );
        const set = newestCompletedSet('i-a', snapshots, keys, NOW);
        const complete = new Set(
          [...new Set(items.map((i) => i.run))].filter((run) =>
            items.filter((i) => i.run === run).every((i) => i.completed),
          ),
        );
        if (complete.size === 0) {
          expect(set).toBeUndefined();
        } else {
          expect(set?.snapshots.every((s) => s.state === 'completed')).toBe(true);
          expect(set?.runId).toBe(`run-${Math.max(...complete)}`);
        }
      }),
    );
  });
});

describe('Function: restoredVolumeProblems', () => {
  const key = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

  it('passes an available volume of the snapshot size, encrypted with its key', () => {
    expect(
      restoredVolumeProblems(
        { sizeGiB: 8, encrypted: true, kmsKeyId: key },
        { state: 'available', sizeGiB: 8, encrypted: true, kmsKeyId: key },
      ),
    ).toEqual([]);
  });

  it('names each difference', () => {
    expect(
      restoredVolumeProblems(
        { sizeGiB: 8, encrypted: true, kmsKeyId: key },
        { state: 'error', sizeGiB: 4, encrypted: false },
      ),
    ).toEqual([
      'state is error, not available',
      'size is 4 GiB, expected 8 GiB',
      'is not encrypted, the snapshot is',
      `KMS key is not reported, the snapshot's is ${key}`,
    ]);
  });

  it('fails a volume under another KMS key', () => {
    const other = key.replace('1234abcd', 'ffffffff');
    expect(
      restoredVolumeProblems(
        { sizeGiB: 8, encrypted: true, kmsKeyId: key },
        { state: 'available', sizeGiB: 8, encrypted: true, kmsKeyId: other },
      ),
    ).toEqual([`KMS key is ${other}, the snapshot's is ${key}`]);
  });

  it('accepts an unencrypted snapshot restored encrypted by the account default', () => {
    expect(
      restoredVolumeProblems(
        { sizeGiB: 8, encrypted: false },
        { state: 'available', sizeGiB: 8, encrypted: true, kmsKeyId: key },
      ),
    ).toEqual([]);
  });
});
