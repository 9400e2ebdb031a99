/**
 * Locks of an instance's own tag schedules (issue 21, gap 3): `snapkeeper:lock=tag=30d`
 * locks the sets a `cron(...)` / `rate(...)` expression of its `snapkeeper:backup` tag
 * makes (their schedule is the canonical expression), and nothing of its named schedules.
 */
import { describe, expect, it } from 'vitest';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { SnapshotTiersPort } from '../../../lib/jobs/ports.ts';
import { silentLogger } from '../../../lib/jobs/runReport.ts';
import { lockBackupSets } from '../../../lib/jobs/snapshotLocks.ts';

const keys = tagKeys();

function deps() {
  const locked: { snapshotId: string; days?: number | undefined }[] = [];
  const tiers: Pick<SnapshotTiersPort, 'lockSnapshot' | 'lockedSnapshots'> = {
    lockSnapshot: async (r) => {
      locked.push({ snapshotId: r.snapshotId, days: r.days });
      return { snapshotId: r.snapshotId, state: 'governance' };
    },
    lockedSnapshots: async () => new Map(),
  };
  return {
    locked,
    step: {
      tiers,
      journal: { record: async () => undefined },
      logger: silentLogger,
      runId: 'run-1',
      job: 'backup',
    },
  };
}

const sets = [
  {
    instanceId: 'i-1',
    outcome: 'created',
    snapshots: [{ snapshotId: 'snap-1', volumeId: 'vol-1' }],
  },
];
const instances = new Map([['i-1', { tags: { [keys.lock]: 'tag=30d' } }]]);
const context = {
  keys,
  knownSchedules: ['daily', 'weekly', 'monthly'],
  allowComplianceLocks: false,
};

describe('lockBackupSets with snapkeeper:lock=tag=<duration>', () => {
  it.each(['rate(6 hours)', 'cron(0 3 * * ? *)@Europe/Paris'])(
    'locks the sets of the tag schedule %s for the tag duration',
    async (schedule) => {
      const { locked, step } = deps();
      const result = await lockBackupSets(
        sets,
        instances,
        { name: schedule },
        false,
        context,
        step,
      );
      expect(result.problems).toEqual([]);
      expect(locked).toEqual([{ snapshotId: 'snap-1', days: 30 }]);
    },
  );

  it('locks nothing of a named schedule the tag does not name', async () => {
    const { locked, step } = deps();
    const result = await lockBackupSets(sets, instances, { name: 'daily' }, false, context, step);
    expect(result.problems).toEqual([]);
    expect(locked).toEqual([]);
  });
});
