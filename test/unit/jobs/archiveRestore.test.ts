import { describe, expect, it } from 'vitest';
import type { TierRestore, TierStatus } from '../../../lib/domain/archiveTier.ts';
import { InvalidEventError } from '../../../lib/domain/errors.ts';
import {
  type ArchiveRestoreDependencies,
  backFromArchive,
} from '../../../lib/jobs/archiveRestore.ts';
import { RecordingJournal } from '../../support/recordingJournal.ts';
import { recordingLogger } from '../../support/recordingLogger.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const NOW = new Date('2026-11-23T12:00:00Z');

function deps(status: Partial<TierStatus> | undefined, refuse = false) {
  const restores: [string, TierRestore][] = [];
  const journal = new RecordingJournal();
  const d: ArchiveRestoreDependencies = {
    tiers: {
      async tierStatuses(ids) {
        return new Map(
          status
            ? ids.map((id) => [id, { snapshotId: id, tier: 'archive' as const, ...status }])
            : [],
        );
      },
      async restoreSnapshotTier(id, restore) {
        if (refuse) throw sdkError('IncorrectState', 'The snapshot is not archived.');
        restores.push([id, restore]);
        return { snapshotId: id, startedAt: NOW, permanent: restore.kind === 'permanent' };
      },
    },
    journal,
    logger: recordingLogger(),
    runId: 'run-1',
    clock: () => NOW,
  };
  return { d, restores, journal };
}

describe('Function: backFromArchive', () => {
  it('is ready at once for a snapshot in the standard tier, or already restored', async () => {
    expect(await backFromArchive('snap-1', undefined, false, deps({ tier: 'standard' }).d)).toEqual(
      { ready: true },
    );
    expect(
      await backFromArchive(
        'snap-1',
        undefined,
        false,
        deps({ lastOperation: 'temporary-restore-completed' }).d,
      ),
    ).toEqual({ ready: true });
  });

  it('starts a temporary restore of one day by default, recorded, and answers when it will be ready', async () => {
    // Prepare
    const { d, restores, journal } = deps({ lastOperation: 'archival-completed' });

    // Act
    const back = await backFromArchive('snap-1', undefined, false, d);

    // Assess
    expect(restores).toEqual([['snap-1', { kind: 'temporary', days: 1 }]]);
    expect(back).toEqual({
      ready: false,
      answer: expect.objectContaining({ status: 'started', readyBy: '2026-11-26T12:00:00.000Z' }),
    });
    expect(journal.records.map((r) => [r.action, r.phase])).toEqual([
      ['restore-snapshot-tier', 'before'],
      ['restore-snapshot-tier', 'after'],
    ]);
  });

  it('restores permanently when asked', async () => {
    const { d, restores } = deps({ lastOperation: 'archival-completed' });
    await backFromArchive('snap-1', 'permanent', false, d);
    expect(restores).toEqual([['snap-1', { kind: 'permanent' }]]);
  });

  it('answers a restore already under way without starting another', async () => {
    // Prepare
    const { d, restores } = deps({
      lastOperation: 'temporary-restore-in-progress',
      lastTieringStartTime: new Date('2026-11-23T00:00:00Z'),
    });

    // Act
    const back = await backFromArchive('snap-1', { days: 3 }, false, d);

    // Assess
    expect(restores).toEqual([]);
    expect(back).toMatchObject({
      ready: false,
      answer: { status: 'in-progress', readyBy: '2026-11-26T00:00:00.000Z' },
    });
  });

  it('sends nothing in a dry run', async () => {
    const { d, restores } = deps({ lastOperation: 'archival-completed' });
    const back = await backFromArchive('snap-1', { days: 3 }, true, d);
    expect(restores).toEqual([]);
    expect(back).toMatchObject({ ready: false, answer: { status: 'planned' } });
  });

  it('reports a refused restore', async () => {
    const { d } = deps({ lastOperation: 'archival-completed' }, true);
    const back = await backFromArchive('snap-1', undefined, false, d);
    expect(back).toMatchObject({
      ready: false,
      answer: { status: 'failed', error: { code: 'IncorrectState' } },
    });
  });

  it('refuses a bad archiveRestore before any call', async () => {
    const { d, restores } = deps({ lastOperation: 'archival-completed' });
    await expect(backFromArchive('snap-1', { days: 0 }, false, d)).rejects.toThrow(
      InvalidEventError,
    );
    expect(restores).toEqual([]);
  });
});
