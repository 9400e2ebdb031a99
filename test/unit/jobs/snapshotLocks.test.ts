import { describe, expect, it } from 'vitest';
import type { LockRequest, SnapshotLockStatus } from '../../../lib/domain/snapshotLock.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { SnapshotTiersPort } from '../../../lib/jobs/ports.ts';
import {
  type LockStepDependencies,
  lockCreatedSnapshots,
  recheckLocks,
  resolveLockRule,
} from '../../../lib/jobs/snapshotLocks.ts';
import { inFlightGate } from '../../support/inFlightGate.ts';
import { RecordingJournal } from '../../support/recordingJournal.ts';
import { recordingLogger } from '../../support/recordingLogger.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const DAY_MS = 86_400_000;
const NOW = new Date('2026-11-23T12:00:00Z');
const RULE = { days: 365, mode: 'governance' as const };

/** A tiers port that records the lock calls and answers as EC2 does (or refuses listed ids). */
function fakeTiers(
  locks: Map<string, SnapshotLockStatus> = new Map(),
  refuse: readonly string[] = [],
  events: string[] = [],
) {
  const calls: LockRequest[] = [];
  const tiers: Pick<SnapshotTiersPort, 'lockSnapshot' | 'lockedSnapshots'> = {
    async lockSnapshot(request) {
      calls.push(request);
      events.push(`lock ${request.snapshotId}`);
      if (refuse.includes(request.snapshotId)) {
        throw sdkError(
          'InvalidSnapshot.NotFound',
          `The snapshot '${request.snapshotId}' does not exist.`,
        );
      }
      const expiresOn = request.expiresAt ?? new Date(NOW.getTime() + (request.days ?? 0) * DAY_MS);
      return { snapshotId: request.snapshotId, state: request.mode, expiresOn };
    },
    async lockedSnapshots(ids) {
      return new Map([...locks].filter(([id]) => ids.includes(id)));
    },
  };
  return { tiers, calls };
}

function deps(
  tiers: LockStepDependencies['tiers'],
  journal = new RecordingJournal(),
): LockStepDependencies {
  return { tiers, journal, logger: recordingLogger(), runId: 'run-1', job: 'backup' };
}

describe('Function: lockCreatedSnapshots', () => {
  it('locks each new snapshot, recorded before and after', async () => {
    // Prepare
    const events: string[] = [];
    const { tiers, calls } = fakeTiers(new Map(), [], events);
    const journal = new RecordingJournal({ events });

    // Act
    const outcomes = await lockCreatedSnapshots(
      ['snap-1', 'snap-2'],
      RULE,
      false,
      deps(tiers, journal),
    );

    // Assess
    expect(calls).toEqual([
      { snapshotId: 'snap-1', mode: 'governance', days: 365 },
      { snapshotId: 'snap-2', mode: 'governance', days: 365 },
    ]);
    for (const id of ['snap-1', 'snap-2']) {
      const order = ['before', 'lock', 'after'].map((step) =>
        events.findIndex((e) => e.startsWith(`${step} ${id}`)),
      );
      expect(order.every((at) => at >= 0)).toBe(true);
      expect(order).toEqual([...order].sort((a, b) => a - b));
    }
    expect(events).toContain('after snap-2 done');
    expect(outcomes.map((o) => o.outcome)).toEqual(['locked', 'locked']);
    expect(journal.records[0]).toMatchObject({ action: 'lock-snapshot', job: 'backup' });
  });

  it('sends the locks as the bucket allows, not one after another (issue 19), in order in the report', async () => {
    // Prepare: EC2 answers a lock only once three are in flight.
    const gate = inFlightGate(3);
    const tiers: LockStepDependencies['tiers'] = {
      async lockSnapshot(request) {
        await gate.pass();
        return { snapshotId: request.snapshotId, state: request.mode, expiresOn: NOW };
      },
      async lockedSnapshots() {
        return new Map();
      },
    };

    // Act
    const outcomes = await lockCreatedSnapshots(
      ['snap-1', 'snap-2', 'snap-3'],
      RULE,
      false,
      deps(tiers),
    );

    // Assess
    expect(gate.peak).toBe(3);
    expect(outcomes.map((o) => [o.snapshotId, o.outcome])).toEqual([
      ['snap-1', 'locked'],
      ['snap-2', 'locked'],
      ['snap-3', 'locked'],
    ]);
  });

  it('reports a lock EC2 refuses as failed, and still locks the others', async () => {
    // Prepare
    const { tiers } = fakeTiers(new Map(), ['snap-1']);

    // Act
    const outcomes = await lockCreatedSnapshots(['snap-1', 'snap-2'], RULE, false, deps(tiers));

    // Assess
    expect(outcomes[0]).toMatchObject({
      snapshotId: 'snap-1',
      outcome: 'failed',
      error: { code: 'InvalidSnapshot.NotFound' },
    });
    expect(outcomes[0]?.reason).toContain('not locked');
    expect(outcomes[1]?.outcome).toBe('locked');
  });

  it('locks even when the "before" record cannot be written: a lock keeps data', async () => {
    // Prepare
    const { tiers, calls } = fakeTiers();
    const logger = recordingLogger();

    // Act
    const outcomes = await lockCreatedSnapshots(['snap-1'], RULE, false, {
      ...deps(tiers, new RecordingJournal({ failBefore: ['snap-1'] })),
      logger,
    });

    // Assess
    expect(calls).toHaveLength(1);
    expect(outcomes[0]?.outcome).toBe('locked');
    expect(logger.error).toHaveBeenCalledWith(
      'locking anyway: the lock could not be recorded first',
      expect.objectContaining({ snapshotId: 'snap-1' }),
    );
  });

  it('sends nothing in a dry run', async () => {
    // Prepare
    const { tiers, calls } = fakeTiers();

    // Act
    const outcomes = await lockCreatedSnapshots(['snap-1'], RULE, true, deps(tiers));

    // Assess
    expect(calls).toEqual([]);
    expect(outcomes).toEqual([
      {
        snapshotId: 'snap-1',
        outcome: 'planned',
        reason: 'would be locked (governance) for 365 days after creation',
      },
    ]);
  });
});

describe('Function: recheckLocks', () => {
  it('re-applies a missing lock until the first would have ended, and holds every reported lock', async () => {
    // Prepare
    const created = new Date(NOW.getTime() - 10 * DAY_MS);
    const reported = new Date(NOW.getTime() + 300 * DAY_MS);
    const { tiers, calls } = fakeTiers(
      new Map([
        ['snap-locked', { snapshotId: 'snap-locked', state: 'governance', expiresOn: reported }],
        ['snap-by-hand', { snapshotId: 'snap-by-hand', state: 'compliance', expiresOn: reported }],
      ]),
    );

    // Act
    const { outcomes, holds } = await recheckLocks(
      [
        { snapshotId: 'snap-locked', createdAt: created, rule: RULE },
        { snapshotId: 'snap-missing', createdAt: created, rule: RULE },
      ],
      ['snap-locked', 'snap-missing', 'snap-by-hand'],
      NOW,
      false,
      deps(tiers),
    );

    // Assess
    const until = new Date(created.getTime() + 365 * DAY_MS);
    expect(calls).toEqual([{ snapshotId: 'snap-missing', mode: 'governance', expiresAt: until }]);
    expect(outcomes).toEqual([
      expect.objectContaining({ snapshotId: 'snap-missing', outcome: 'relocked' }),
    ]);
    expect([...holds.keys()].sort()).toEqual(['snap-by-hand', 'snap-locked', 'snap-missing']);
    expect(holds.get('snap-by-hand')).toEqual({ mode: 'compliance', until: reported });
  });

  it('reports a lock that cannot be re-applied, and does not count it as a hold', async () => {
    // Prepare
    const { tiers } = fakeTiers(new Map(), ['snap-1']);

    // Act
    const { outcomes, holds } = await recheckLocks(
      [{ snapshotId: 'snap-1', createdAt: new Date(NOW.getTime() - DAY_MS), rule: RULE }],
      ['snap-1'],
      NOW,
      false,
      deps(tiers),
    );

    // Assess
    expect(outcomes[0]?.outcome).toBe('failed');
    expect(holds.size).toBe(0);
  });
});

describe('Function: resolveLockRule', () => {
  const keys = tagKeys();
  const schedules = ['daily', 'monthly'];

  it("takes the instance's tag entry over the schedule's option", () => {
    expect(
      resolveLockRule(
        { 'snapkeeper:lock': 'monthly=30d' },
        keys,
        'monthly',
        schedules,
        RULE,
        false,
      ),
    ).toEqual({ rule: { days: 30, mode: 'governance' } });
    expect(resolveLockRule({}, keys, 'monthly', schedules, RULE, false)).toEqual({ rule: RULE });
    expect(
      resolveLockRule(
        { 'snapkeeper:lock': 'monthly=30d' },
        keys,
        'daily',
        schedules,
        undefined,
        false,
      ),
    ).toEqual({ rule: undefined });
  });

  it("reports a bad tag, and keeps the schedule's lock (the side that locks)", () => {
    const resolved = resolveLockRule(
      { 'snapkeeper:lock': 'monthly=7y:compliance' },
      keys,
      'monthly',
      schedules,
      RULE,
      false,
    );
    expect(resolved.rule).toEqual(RULE);
    expect(resolved.problem).toContain('snapkeeper:lock="monthly=7y:compliance"');
    expect(resolved.problem).toContain("(the schedule's own lock 365d governance applies)");
  });
});
