import { describe, expect, it } from 'vitest';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import {
  type ArchiveLineage,
  type ArchiveStepDependencies,
  archiveEligible,
} from '../../../lib/jobs/archiveTiering.ts';
import { inFlightGate } from '../../support/inFlightGate.ts';
import { RecordingJournal } from '../../support/recordingJournal.ts';
import { recordingLogger } from '../../support/recordingLogger.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const DAY_MS = 86_400_000;
const NOW = new Date('2026-11-23T12:00:00Z');
const keys = tagKeys();

function snapshot(id: string, ageDays: number, extra: Partial<SnapshotFacts> = {}): SnapshotFacts {
  return {
    snapshotId: id,
    volumeId: 'vol-1',
    state: 'completed',
    startTime: new Date(NOW.getTime() - ageDays * DAY_MS),
    tags: { 'snapkeeper:managed': 'true', 'snapkeeper:deployment': 'prod' },
    sizeGiB: 100,
    ...extra,
  };
}

function lineage(snapshots: SnapshotFacts[], extra: Partial<ArchiveLineage> = {}): ArchiveLineage {
  return {
    volumeId: 'vol-1',
    orphan: false,
    rule: { count: 12 },
    snapshots,
    deleting: new Set(),
    ...extra,
  };
}

function deps(
  refuse: readonly string[] = [],
  journal = new RecordingJournal(),
  events: string[] = [],
) {
  const archived: string[] = [];
  const d: ArchiveStepDependencies = {
    tiers: {
      async archiveSnapshot(id) {
        events.push(`archive ${id}`);
        if (refuse.includes(id)) throw sdkError('IncorrectState', 'The snapshot is not completed.');
        archived.push(id);
        return { startedAt: NOW };
      },
    },
    journal,
    logger: recordingLogger(),
    runId: 'run-1',
    keys,
    deployment: 'prod',
    holders: new Map([['snap-ami', ['ami-1']]]),
  };
  return { d, archived };
}

const options = { archiveAfterDays: 30, intervalDays: 30, now: NOW, dryRun: false };

describe('Function: archiveEligible', () => {
  it('archives the old points, recorded before and after, and reports why others stay', async () => {
    // Prepare
    const events: string[] = [];
    const { d, archived } = deps([], new RecordingJournal({ events }), events);

    // Act
    const outcomes = await archiveEligible(
      [lineage([snapshot('snap-new', 2), snapshot('snap-old', 45), snapshot('snap-ami', 60)])],
      options,
      d,
    );

    // Assess
    expect(archived).toEqual(['snap-old']);
    expect(events).toEqual(['before snap-old', 'archive snap-old', 'after snap-old done']);
    expect(outcomes.map((o) => [o.snapshotId, o.outcome])).toEqual([
      ['snap-old', 'archived'],
      ['snap-ami', 'skipped'],
    ]);
    expect(outcomes[0]?.reason).toContain('tiering started 2026-11-23T12:00:00Z');
  });

  it('sends the moves of every lineage as the bucket allows, not one after another (issue 19)', async () => {
    // Prepare: EC2 answers a move only once three are in flight.
    const gate = inFlightGate(3);
    const { d } = deps();
    const paced: ArchiveStepDependencies = {
      ...d,
      tiers: {
        async archiveSnapshot() {
          await gate.pass();
          return { startedAt: NOW };
        },
      },
    };

    // Act
    const outcomes = await archiveEligible(
      ['vol-1', 'vol-2', 'vol-3'].map((volumeId, i) =>
        lineage([snapshot(`snap-${i}`, 45, { volumeId })], { volumeId }),
      ),
      options,
      paced,
    );

    // Assess
    expect(gate.peak).toBe(3);
    expect(outcomes.map((o) => [o.snapshotId, o.outcome])).toEqual([
      ['snap-0', 'archived'],
      ['snap-1', 'archived'],
      ['snap-2', 'archived'],
    ]);
  });

  it('moves nothing when the move cannot be recorded first', async () => {
    // Prepare
    const { d, archived } = deps([], new RecordingJournal({ failBefore: ['snap-old'] }));

    // Act
    const outcomes = await archiveEligible([lineage([snapshot('snap-old', 45)])], options, d);

    // Assess
    expect(archived).toEqual([]);
    expect(outcomes[0]).toMatchObject({ outcome: 'failed', error: { code: 'JournalUnavailable' } });
  });

  it('reports a refusal as failed; the point stays standard', async () => {
    // Prepare
    const { d } = deps(['snap-old']);

    // Act
    const outcomes = await archiveEligible([lineage([snapshot('snap-old', 45)])], options, d);

    // Assess
    expect(outcomes[0]).toMatchObject({ outcome: 'failed', error: { code: 'IncorrectState' } });
    expect(outcomes[0]?.reason).toContain('stays in the standard tier');
  });

  it('sends nothing in a dry run, and nothing for a lineage whose rule is unreadable', async () => {
    // Prepare
    const { d, archived } = deps();

    // Act
    const outcomes = await archiveEligible(
      [
        lineage([snapshot('snap-old', 45)]),
        lineage([snapshot('snap-x', 45)], { volumeId: 'vol-2', rule: undefined }),
      ],
      { ...options, dryRun: true },
      d,
    );

    // Assess
    expect(archived).toEqual([]);
    expect(outcomes).toEqual([
      expect.objectContaining({ snapshotId: 'snap-old', outcome: 'planned' }),
    ]);
  });

  it('never archives an archived point again', async () => {
    // Prepare
    const { d, archived } = deps();

    // Act
    const outcomes = await archiveEligible(
      [lineage([snapshot('snap-old', 45, { storageTier: 'archive' })])],
      options,
      d,
    );

    // Assess
    expect(archived).toEqual([]);
    expect(outcomes).toEqual([]);
  });
});
