import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ARCHIVE_MINIMUM_DAYS,
  type ArchiveCandidate,
  archiveMinimumEnds,
  earlyDeletionNote,
  planArchive,
  readTierRestore,
  remainingKeepDays,
  restoreReadyBy,
  validateArchiveAfterDays,
} from '../../../lib/domain/archiveTier.ts';
import { InvalidEventError, InvalidScheduleDefinitionError } from '../../../lib/domain/errors.ts';
import { parseScheduleCatalog } from '../../../lib/domain/schedules.ts';

const DAY_MS = 86_400_000;
const NOW = new Date('2026-11-23T12:00:00Z');

/** A completed, managed, standard-tier monthly point `ageDays` old. */
function point(
  id: string,
  ageDays: number,
  extra: Partial<ArchiveCandidate> = {},
): ArchiveCandidate {
  return {
    id,
    state: 'completed',
    managed: true,
    tier: 'standard',
    createdAt: new Date(NOW.getTime() - ageDays * DAY_MS),
    ...extra,
  };
}

const context = {
  now: NOW,
  archiveAfterDays: 30,
  intervalDays: 30,
  deleting: new Set<string>(),
  orphan: false,
};

describe('Function: validateArchiveAfterDays and the schedule catalog', () => {
  it('accepts archiveAfterDays when points are kept 90 more days', () => {
    const catalog = parseScheduleCatalog(
      [{ name: 'monthly', cron: 'cron(0 5 1 * ? *)', retain: 12, archiveAfterDays: 60 }],
      'monthly',
    );
    expect(catalog.schedules.get('monthly')?.archiveAfterDays).toBe(60);
  });

  it('refuses archiveAfterDays on a schedule that keeps points too briefly, naming both figures', () => {
    expect(() =>
      parseScheduleCatalog(
        [{ name: 'daily', cron: 'cron(0 3 * * ? *)', retain: 7, archiveAfterDays: 3 }],
        'daily',
      ),
    ).toThrow(
      'schedule "daily": archiveAfterDays 3 needs points kept at least 93 days (archive bills a 90-day minimum), but retain/retainDays keep them about 7 days',
    );
  });

  it('counts retainDays when it keeps points longer than the count', () => {
    expect(() => validateArchiveAfterDays('daily', 10, 100)).not.toThrow();
    expect(() => validateArchiveAfterDays('daily', 11, 100)).toThrow(
      InvalidScheduleDefinitionError,
    );
  });
});

describe('Function: planArchive', () => {
  it('archives old points kept 90 more days, newest first by index', () => {
    // count 4, monthly: index 1 is kept ~(4-1)*30 = 90 more days, index 2 only ~60.
    const decisions = planArchive(
      [point('new', 5), point('mid', 40), point('old', 300)],
      { count: 4 },
      context,
    );
    expect(decisions).toEqual([
      {
        id: 'mid',
        action: 'archive',
        reason: 'archived: 40 days old (archiveAfterDays 30), kept about 90 more days',
      },
      {
        id: 'old',
        action: 'skip',
        reason: "not archived: kept about 60 more days, under archive's 90-day minimum charge",
      },
    ]);
  });

  it('leaves alone what is not ours, pending, already archived, used by an AMI or deleted', () => {
    const decisions = planArchive(
      [
        point('foreign', 40, { managed: false }),
        point('pending', 41, { state: 'pending' }),
        point('archived', 42, { tier: 'archive' }),
        point('ami', 43, { heldBy: ['ami-1'] }),
        point('going', 44),
      ],
      { count: 12 },
      { ...context, deleting: new Set(['going']) },
    );
    expect(decisions.map((d) => [d.id, d.action, d.reason])).toEqual([
      ['ami', 'skip', 'not archived: used by ami-1'],
      ['going', 'skip', 'not archived: retention deletes it'],
    ]);
  });

  it('never archives the points of an orphaned source', () => {
    const decisions = planArchive([point('a', 40)], { count: 12 }, { ...context, orphan: true });
    expect(decisions).toEqual([
      { id: 'a', action: 'skip', reason: 'not archived: its source no longer opts in' },
    ]);
  });

  it('archives only points the rule keeps at least 90 more days', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 800 }), { maxLength: 20 }),
        fc.integer({ min: 1, max: 24 }),
        fc.integer({ min: 1, max: 200 }),
        (ages, count, archiveAfterDays) => {
          const points = ages.map((age, i) => point(`snap-${i}`, age));
          const decisions = planArchive(points, { count }, { ...context, archiveAfterDays });
          const sorted = [...points].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
          for (const d of decisions.filter((x) => x.action === 'archive')) {
            const index = sorted.findIndex((p) => p.id === d.id);
            const p = sorted[index] as ArchiveCandidate;
            const ageDays = (NOW.getTime() - p.createdAt.getTime()) / DAY_MS;
            expect(ageDays).toBeGreaterThanOrEqual(archiveAfterDays);
            expect(remainingKeepDays({ count }, index, ageDays, 30)).toBeGreaterThanOrEqual(
              ARCHIVE_MINIMUM_DAYS,
            );
          }
        },
      ),
    );
  });
});

describe('Function: remainingKeepDays', () => {
  it('takes the longest of count, minimum age and tiers', () => {
    expect(remainingKeepDays({ count: 12 }, 2, 40, 30)).toBe(300);
    expect(remainingKeepDays({ count: 2, minAgeDays: 400 }, 1, 100, 30)).toBe(300);
    expect(remainingKeepDays({ count: 2, tiers: { yearly: 2 } }, 1, 100, 30)).toBe(630);
  });
});

describe('Function: archiveMinimumEnds and earlyDeletionNote', () => {
  it('says when the 90-day minimum of an archived point ends, until it has', () => {
    const archivedAt = new Date('2026-11-01T00:00:00Z');
    expect(archiveMinimumEnds(archivedAt, NOW)).toEqual(new Date('2027-01-30T00:00:00Z'));
    expect(archiveMinimumEnds(archivedAt, new Date('2027-02-01T00:00:00Z'))).toBeUndefined();
    expect(archiveMinimumEnds(undefined, NOW)).toBeUndefined();
    expect(earlyDeletionNote(new Date('2027-01-30T00:00:00Z'), 100)).toBe(
      'archived: deleting before 2027-01-30 still bills the rest of the 90-day archive minimum for its 100 GiB, so keeping it until then costs nothing more',
    );
  });
});

describe('Function: readTierRestore', () => {
  it('reads a temporary or permanent restore; 1 day when absent', () => {
    expect(readTierRestore(undefined)).toEqual({ kind: 'temporary', days: 1 });
    expect(readTierRestore({ days: 7 })).toEqual({ kind: 'temporary', days: 7 });
    expect(readTierRestore('permanent')).toEqual({ kind: 'permanent' });
  });

  it.each([
    [{ days: 0 }],
    [{ days: 181 }],
    [{ days: 1.5 }],
    ['forever'],
    [{ days: 3, x: 1 }],
    [null],
  ])('refuses %j, naming the field and the fix', (value) => {
    expect(() => readTierRestore(value)).toThrow(InvalidEventError);
    expect(() => readTierRestore(value)).toThrow(/field "archiveRestore".*"permanent"/);
  });

  it('answers when a restore will be ready: up to 72 hours', () => {
    expect(restoreReadyBy(new Date('2026-11-23T00:00:00Z'))).toEqual(
      new Date('2026-11-26T00:00:00Z'),
    );
  });
});

describe('The recovery report: archived points', () => {
  it('counts the sets in the archive tier and says so in the line', async () => {
    const { buildRecoveryReport, recoveryLine } = await import(
      '../../../lib/domain/recoveryReport.ts'
    );
    const { tagKeys } = await import('../../../lib/domain/tagKeys.ts');
    const { DEFAULT_SCHEDULES } = await import('../../../lib/domain/schedules.ts');
    const keys = tagKeys();
    const snap = (id: string, run: string, tier?: 'archive') => ({
      snapshotId: id,
      volumeId: 'vol-1',
      state: 'completed',
      startTime: new Date(NOW.getTime() - 40 * DAY_MS),
      tags: {
        [keys.managed]: 'true',
        [keys.deployment]: 'prod',
        [keys.instanceId]: 'i-1',
        [keys.schedule]: 'monthly',
        [keys.runId]: run,
      },
      ...(tier ? { storageTier: tier } : {}),
    });
    const report = buildRecoveryReport({
      instances: [
        { instanceId: 'i-1', state: 'running', tags: { [keys.backup]: 'monthly' }, volumes: [] },
      ],
      snapshots: [snap('s1', 'r1', 'archive'), snap('s2', 'r2'), snap('s3', 'r3', 'archive')],
      images: [],
      catalog: parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily'),
      keys,
      deployment: 'prod',
      now: NOW,
      otherLiveInstanceIds: new Set(),
      otherLiveVolumeIds: new Set(),
    } as Parameters<typeof buildRecoveryReport>[0]);
    expect(report.instances[0]?.archivedPoints).toBe(2);
    expect(recoveryLine(report.instances[0] as never)).toContain('3 recovery points (2 archived)');
  });
});

describe('Function: planArchive, locked points', () => {
  it('archives a point its lock keeps 90 more days, though its count would not', () => {
    const lockedUntil = new Date(NOW.getTime() + 200 * DAY_MS);
    const decisions = planArchive(
      [point('new', 5), point('mid', 40), point('locked', 70, { lockedUntil })],
      { count: 2 },
      context,
    );
    expect(decisions).toEqual([
      {
        id: 'mid',
        action: 'skip',
        reason: "not archived: kept about 30 more days, under archive's 90-day minimum charge",
      },
      {
        id: 'locked',
        action: 'archive',
        reason: 'archived: 70 days old (archiveAfterDays 30), kept about 200 more days',
      },
    ]);
  });
});
