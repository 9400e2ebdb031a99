import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  actionKeys,
  batchKeys,
  creationKeys,
  expiresAt,
  FINISHED_STATUSES,
  HISTORY_INDEXES,
  isAbandoned,
  isDispatched,
  isLeaseDead,
  LEASE_CLOCK_SKEW_MS,
  LEASE_STALE_RENEWALS,
  LEDGER_START_KEYS,
  leaseStaleAfterMs,
  RESUMABLE_STATUSES,
  runItemKeys,
  runKeys,
  slotKeys,
} from '../../../lib/domain/runHistory.ts';

const PROPERTY_RUNS = { numRuns: 300 };
const STARTED_AT = '2026-11-23T03:00:01.000Z';
const NOW = new Date('2026-11-23T04:00:00.000Z');
const TIMEOUT_MS = 900_000;
const MARGIN_MS = 120_000;

/** Instants over two centuries, written the way the code writes them (toISOString). */
const instant = fc
  .date({
    min: new Date('1990-01-01T00:00:00.000Z'),
    max: new Date('2190-12-31T23:59:59.999Z'),
    noInvalidDate: true,
  })
  .map((d) => d.toISOString());
const runId = fc.stringMatching(/^[0-9A-Za-z-]{1,32}$/);
const resourceId = fc.stringMatching(/^(snap|ami|i|vol)-[0-9a-f]{8,17}$/);

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function leaseAgo(ms: number): string {
  return new Date(NOW.getTime() - ms).toISOString();
}

describe('Module: runHistory (the key design)', () => {
  describe('Function: runKeys', () => {
    it('keys a run under its id, and indexes it among the latest runs, its job and its schedule by start time', () => {
      // Act
      const keys = runKeys({
        runId: 'r1',
        deployment: 'prod',
        job: 'backup',
        schedule: 'daily',
        startedAt: STARTED_AT,
      });

      // Assess
      expect(keys).toEqual({
        PK: 'RUN#r1',
        SK: 'RUN',
        GSI1PK: 'RUNS#prod',
        GSI1SK: `${STARTED_AT}#r1`,
        GSI2PK: 'JOB#prod#backup',
        GSI2SK: `${STARTED_AT}#r1`,
        GSI3PK: 'SCHEDULE#prod#daily',
        GSI3SK: `${STARTED_AT}#r1`,
      });
    });

    it('leaves a run that serves no schedule out of the schedule index', () => {
      // Act
      const keys = runKeys({
        runId: 'r2',
        deployment: 'prod',
        job: 'sweep',
        startedAt: STARTED_AT,
      });

      // Assess
      expect(keys).toEqual({
        PK: 'RUN#r2',
        SK: 'RUN',
        GSI1PK: 'RUNS#prod',
        GSI1SK: `${STARTED_AT}#r2`,
        GSI2PK: 'JOB#prod#sweep',
        GSI2SK: `${STARTED_AT}#r2`,
      });
      expect(keys).not.toHaveProperty('GSI3PK');
      expect(keys).not.toHaveProperty('GSI3SK');
    });

    it('keeps deployments apart: the same job of two stages lands in two partitions', () => {
      // Act
      const prod = runKeys({
        runId: 'r',
        deployment: 'prod',
        job: 'backup',
        startedAt: STARTED_AT,
      });
      const dev = runKeys({ runId: 'r', deployment: 'dev', job: 'backup', startedAt: STARTED_AT });

      // Assess
      expect(prod.GSI1PK).not.toBe(dev.GSI1PK);
      expect(prod.GSI2PK).not.toBe(dev.GSI2PK);
    });

    it('sorts runs by start time: ISO times sort the same as their keys, whatever the run ids', () => {
      fc.assert(
        fc.property(fc.array(fc.tuple(instant, runId), { minLength: 2, maxLength: 20 }), (runs) => {
          // Prepare
          const keyed = runs.map(([startedAt, id]) => ({
            startedAt,
            keys: runKeys({
              runId: id,
              deployment: 'prod',
              job: 'backup',
              schedule: 'daily',
              startedAt,
            }),
          }));

          // Act
          const byKey = [...keyed].sort((a, b) =>
            compare(a.keys.GSI1SK ?? '', b.keys.GSI1SK ?? ''),
          );

          // Assess: key order never contradicts time order, in every index
          for (let i = 1; i < byKey.length; i += 1) {
            const earlier = byKey[i - 1];
            const later = byKey[i];
            if (!earlier || !later) throw new Error('unreachable');
            expect(Date.parse(earlier.startedAt)).toBeLessThanOrEqual(Date.parse(later.startedAt));
          }
          for (const { keys } of keyed) {
            expect(keys.GSI2SK).toBe(keys.GSI1SK);
            expect(keys.GSI3SK).toBe(keys.GSI1SK);
          }
        }),
        PROPERTY_RUNS,
      );
    });
  });

  describe('Function: actionKeys', () => {
    it('keys an action under its run, in sequence, and indexes it by resource, instance and volume', () => {
      // Act
      const keys = actionKeys({
        runId: 'r1',
        sequence: 3,
        resourceId: 'snap-1',
        phase: 'after',
        at: '2026-11-23T03:00:09.123Z',
        instanceId: 'i-1',
        volumeId: 'vol-1',
      });

      // Assess
      const sort = '2026-11-23T03:00:09.123Z#r1#000003';
      expect(keys).toEqual({
        PK: 'RUN#r1',
        SK: 'ACTION#000003#snap-1#after',
        GSI1PK: 'RES#snap-1',
        GSI1SK: sort,
        GSI2PK: 'RES#i-1',
        GSI2SK: sort,
        GSI3PK: 'RES#vol-1',
        GSI3SK: sort,
      });
    });

    it('indexes an action by its resource only when no instance or volume is given', () => {
      // Act
      const keys = actionKeys({
        runId: 'r1',
        sequence: 12,
        resourceId: 'ami-1',
        phase: 'before',
        at: STARTED_AT,
      });

      // Assess
      expect(keys).toEqual({
        PK: 'RUN#r1',
        SK: 'ACTION#000012#ami-1#before',
        GSI1PK: 'RES#ami-1',
        GSI1SK: `${STARTED_AT}#r1#000012`,
      });
    });

    it('sets the instance index only for an instance other than the resource itself', () => {
      // Act
      const onInstance = actionKeys({
        runId: 'r1',
        sequence: 1,
        resourceId: 'i-1',
        phase: 'after',
        at: STARTED_AT,
        instanceId: 'i-1',
      });
      const withInstance = actionKeys({
        runId: 'r1',
        sequence: 2,
        resourceId: 'ami-1',
        phase: 'after',
        at: STARTED_AT,
        instanceId: 'i-1',
      });

      // Assess
      expect(onInstance).not.toHaveProperty('GSI2PK');
      expect(onInstance).not.toHaveProperty('GSI2SK');
      expect(withInstance.GSI2PK).toBe('RES#i-1');
      expect(withInstance.GSI2SK).toBe(`${STARTED_AT}#r1#000002`);
      expect(withInstance).not.toHaveProperty('GSI3PK');
    });

    it('sets the volume index only for a volume other than the resource itself', () => {
      // Act
      const onVolume = actionKeys({
        runId: 'r1',
        sequence: 1,
        resourceId: 'vol-1',
        phase: 'after',
        at: STARTED_AT,
        volumeId: 'vol-1',
      });
      const withVolume = actionKeys({
        runId: 'r1',
        sequence: 2,
        resourceId: 'snap-1',
        phase: 'after',
        at: STARTED_AT,
        volumeId: 'vol-1',
      });

      // Assess
      expect(onVolume).not.toHaveProperty('GSI3PK');
      expect(onVolume).not.toHaveProperty('GSI3SK');
      expect(withVolume.GSI3PK).toBe('RES#vol-1');
      expect(withVolume.GSI3SK).toBe(`${STARTED_AT}#r1#000002`);
      expect(withVolume).not.toHaveProperty('GSI2PK');
    });

    it('treats empty instance and volume ids as absent', () => {
      // Act
      const keys = actionKeys({
        runId: 'r1',
        sequence: 1,
        resourceId: 'snap-1',
        phase: 'after',
        at: STARTED_AT,
        instanceId: '',
        volumeId: '',
      });

      // Assess
      expect(Object.keys(keys).sort()).toEqual(['GSI1PK', 'GSI1SK', 'PK', 'SK']);
    });

    it('gives the before and after steps of one action distinct items', () => {
      // Act
      const before = actionKeys({
        runId: 'r1',
        sequence: 4,
        resourceId: 'snap-1',
        phase: 'before',
        at: STARTED_AT,
      });
      const after = actionKeys({
        runId: 'r1',
        sequence: 5,
        resourceId: 'snap-1',
        phase: 'after',
        at: STARTED_AT,
      });

      // Assess
      expect(`${before.PK}|${before.SK}`).not.toBe(`${after.PK}|${after.SK}`);
      expect(before.GSI1PK).toBe(after.GSI1PK);
    });

    it('lists a run’s actions in the order they happened (sequence order), up to 999999', () => {
      fc.assert(
        fc.property(
          fc.uniqueArray(fc.integer({ min: 1, max: 999_999 }), { minLength: 2, maxLength: 30 }),
          (sequences) => {
            // Act
            const sks = sequences.map((sequence) => ({
              sequence,
              sk: actionKeys({
                runId: 'r1',
                sequence,
                resourceId: 'snap-1',
                phase: 'after',
                at: STARTED_AT,
              }).SK,
            }));

            // Assess
            const bySk = [...sks].sort((a, b) => compare(a.sk, b.sk)).map((s) => s.sequence);
            expect(bySk).toEqual([...sequences].sort((a, b) => a - b));
          },
        ),
        PROPERTY_RUNS,
      );
    });

    it('sorts a resource’s history by time: ISO times sort the same as their keys in every index', () => {
      fc.assert(
        fc.property(
          instant,
          instant,
          runId,
          runId,
          fc.integer({ min: 1, max: 999_999 }),
          fc.integer({ min: 1, max: 999_999 }),
          resourceId,
          (at1, at2, run1, run2, seq1, seq2, resource) => {
            fc.pre(at1 !== at2);
            // Act
            const first = actionKeys({
              runId: run1,
              sequence: seq1,
              resourceId: resource,
              phase: 'after',
              at: at1,
              instanceId: 'i-0abc',
              volumeId: 'vol-0abc',
            });
            const second = actionKeys({
              runId: run2,
              sequence: seq2,
              resourceId: resource,
              phase: 'before',
              at: at2,
              instanceId: 'i-0abc',
              volumeId: 'vol-0abc',
            });

            // Assess
            const timeOrder = compare(at1, at2) === Math.sign(Date.parse(at1) - Date.parse(at2));
            expect(timeOrder).toBe(true);
            const expected = Math.sign(Date.parse(at1) - Date.parse(at2));
            expect(compare(first.GSI1SK ?? '', second.GSI1SK ?? '')).toBe(expected);
            expect(compare(first.GSI2SK ?? '', second.GSI2SK ?? '')).toBe(expected);
            expect(compare(first.GSI3SK ?? '', second.GSI3SK ?? '')).toBe(expected);
          },
        ),
        PROPERTY_RUNS,
      );
    });
  });

  describe('Functions: runItemKeys, batchKeys, creationKeys', () => {
    it('keys a run by its id alone, as runKeys does', () => {
      // Act
      const keys = runKeys({
        runId: 'r1',
        deployment: 'prod',
        job: 'backup',
        startedAt: STARTED_AT,
      });

      // Assess
      expect(runItemKeys('r1')).toEqual({ PK: keys.PK, SK: keys.SK });
    });

    it("keeps a run's batch checkpoints under the run, apart from its actions", () => {
      // Act
      const keys = batchKeys('r1', 'self/eu-west-1/0001');

      // Assess
      expect(keys).toEqual({ PK: 'RUN#r1', SK: 'BATCH#self/eu-west-1/0001' });
    });

    it('keys creation records and the ledger start outside every run', () => {
      // Act and assess
      expect(creationKeys('snap-1')).toEqual({ PK: 'CREATED#snap-1', SK: 'CREATED' });
      expect(LEDGER_START_KEYS).toEqual({ PK: 'LEDGER', SK: 'START' });
    });
  });

  describe('Function: slotKeys', () => {
    it('keys a slot claim by job, schedule and scheduled time', () => {
      // Act
      const keys = slotKeys({ job: 'backup', schedule: 'daily', slot: '2026-11-23T03:00:00Z' });

      // Assess
      expect(keys).toEqual({ PK: 'SLOT#backup#daily#2026-11-23T03:00:00Z', SK: 'CLAIM' });
    });

    it('gives each job its own claim on the same slot, and each slot its own claim', () => {
      // Act
      const backup = slotKeys({ job: 'backup', schedule: 'daily', slot: '2026-11-23T03:00:00Z' });
      const retention = slotKeys({
        job: 'retention',
        schedule: 'daily',
        slot: '2026-11-23T03:00:00Z',
      });
      const nextDay = slotKeys({ job: 'backup', schedule: 'daily', slot: '2026-11-24T03:00:00Z' });

      // Assess
      expect(new Set([backup.PK, retention.PK, nextDay.PK]).size).toBe(3);
    });

    it('is outside every index: claims never show up as runs or resource history', () => {
      // Act
      const keys = slotKeys({ job: 'backup', schedule: 'daily', slot: '2026-11-23T03:00:00Z' });

      // Assess
      expect(Object.keys(keys).sort()).toEqual(['PK', 'SK']);
    });
  });

  describe('Constant: HISTORY_INDEXES and the status groups', () => {
    it('names the three indexes as serverless.yml defines them', () => {
      expect(HISTORY_INDEXES).toEqual({
        byRunsOrResource: 'GSI1',
        byJobOrInstance: 'GSI2',
        byScheduleOrVolume: 'GSI3',
      });
    });

    it('tells finished slots (first report returned) from resumable ones (taken over), never both', () => {
      expect([...FINISHED_STATUSES].sort()).toEqual(['partial', 'succeeded']);
      // A rejected console payload sent again (same dedupe slot) is checked again.
      expect([...RESUMABLE_STATUSES].sort()).toEqual([
        'abandoned',
        'failed',
        'incomplete',
        'rejected',
      ]);
      expect(FINISHED_STATUSES).not.toContain('running');
      expect(RESUMABLE_STATUSES).not.toContain('running');
    });
  });

  describe('Function: expiresAt', () => {
    it('is the epoch second of the write plus the retention in days', () => {
      // Act & Assess
      expect(expiresAt(new Date('2026-01-01T00:00:00Z'), 1)).toBe(1_767_312_000);
      expect(expiresAt(new Date('2026-01-01T00:00:00Z'), 400)).toBe(1_767_225_600 + 400 * 86_400);
    });

    it('drops the milliseconds (DynamoDB TTL is in whole seconds)', () => {
      // Act
      const ttl = expiresAt(new Date('2026-01-01T00:00:00.999Z'), 400);

      // Assess
      expect(Number.isInteger(ttl)).toBe(true);
      expect(ttl).toBe(1_767_225_600 + 34_560_000);
    });

    it('always lands retentionDays after the write, to the second', () => {
      fc.assert(
        fc.property(instant, fc.integer({ min: 1, max: 36_500 }), (at, days) => {
          // Act
          const ttl = expiresAt(new Date(at), days);

          // Assess
          const seconds = Date.parse(at) / 1000;
          expect(ttl - days * 86_400).toBe(Math.floor(seconds));
        }),
        PROPERTY_RUNS,
      );
    });
  });

  describe('Function: isAbandoned', () => {
    it('calls a running run dead once its lease is older than the timeout plus the margin', () => {
      // Prepare
      const run = { status: 'running', leaseRenewedAt: leaseAgo(TIMEOUT_MS + MARGIN_MS + 1) };

      // Act & Assess
      expect(isAbandoned(run, NOW, TIMEOUT_MS, MARGIN_MS)).toBe(true);
    });

    it('keeps a running run alive exactly at the boundary', () => {
      // Prepare
      const run = { status: 'running', leaseRenewedAt: leaseAgo(TIMEOUT_MS + MARGIN_MS) };

      // Act & Assess
      expect(isAbandoned(run, NOW, TIMEOUT_MS, MARGIN_MS)).toBe(false);
    });

    it('keeps a running run with a fresh lease alive, even one older than the timeout alone', () => {
      // Act & Assess
      expect(
        isAbandoned({ status: 'running', leaseRenewedAt: leaseAgo(0) }, NOW, TIMEOUT_MS, MARGIN_MS),
      ).toBe(false);
      expect(
        isAbandoned(
          { status: 'running', leaseRenewedAt: leaseAgo(TIMEOUT_MS + 1) },
          NOW,
          TIMEOUT_MS,
          MARGIN_MS,
        ),
      ).toBe(false);
    });

    it.each(['succeeded', 'partial', 'failed', 'incomplete', 'abandoned'])(
      'never calls a %s run abandoned, however old its lease',
      (status) => {
        // Prepare
        const run = { status, leaseRenewedAt: '2020-01-01T00:00:00.000Z' };

        // Act & Assess
        expect(isAbandoned(run, NOW, TIMEOUT_MS, MARGIN_MS)).toBe(false);
      },
    );

    it('never calls a running run without a lease abandoned', () => {
      // Act & Assess
      expect(isAbandoned({ status: 'running' }, NOW, TIMEOUT_MS, MARGIN_MS)).toBe(false);
      expect(isAbandoned({ status: 'running', leaseRenewedAt: undefined }, NOW, 0, 0)).toBe(false);
    });

    it('agrees with the lease age at every distance from the boundary', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: -86_400_000, max: 86_400_000 }),
          fc.integer({ min: 1_000, max: 900_000 }),
          fc.integer({ min: 0, max: 600_000 }),
          (offset, timeout, margin) => {
            // Prepare
            const run = { status: 'running', leaseRenewedAt: leaseAgo(timeout + margin + offset) };

            // Act & Assess
            expect(isAbandoned(run, NOW, timeout, margin)).toBe(offset > 0);
          },
        ),
        PROPERTY_RUNS,
      );
    });
  });
});

describe('Function: leaseStaleAfterMs', () => {
  const rules = { renewMs: 30_000, timeoutMs: TIMEOUT_MS, marginMs: MARGIN_MS };

  it('allows a self-renewing run three renewal periods plus the clock allowance', () => {
    // Act & Assess
    expect(LEASE_STALE_RENEWALS).toBe(3);
    expect(leaseStaleAfterMs({ status: 'running' }, rules)).toBe(3 * 30_000 + LEASE_CLOCK_SKEW_MS);
  });

  it('allows a dispatched fan-out run the timeout plus the margin', () => {
    // Act & Assess
    expect(leaseStaleAfterMs({ status: 'running', report: '{}' }, rules)).toBe(
      TIMEOUT_MS + MARGIN_MS,
    );
  });

  it('never allows more than the timeout plus the margin, however slow the renewals', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3_600_000 }),
        fc.integer({ min: 1_000, max: 900_000 }),
        fc.integer({ min: 0, max: 600_000 }),
        fc.boolean(),
        (renewMs, timeoutMs, marginMs, dispatched) => {
          // Prepare
          const run = dispatched ? { status: 'running', report: '{}' } : { status: 'running' };

          // Act
          const limit = leaseStaleAfterMs(run, { renewMs, timeoutMs, marginMs });

          // Assess
          expect(limit).toBeLessThanOrEqual(timeoutMs + marginMs);
          expect(limit).toBeGreaterThan(0);
        },
      ),
      PROPERTY_RUNS,
    );
  });
});

describe('Function: isDispatched', () => {
  it('is true only for a running run whose dispatch report is written', () => {
    // Act & Assess
    expect(isDispatched({ status: 'running', report: '{}' })).toBe(true);
    expect(isDispatched({ status: 'running' })).toBe(false);
    expect(isDispatched({ status: 'succeeded', report: '{}' })).toBe(false);
  });
});

describe('Function: isLeaseDead', () => {
  const rules = { renewMs: 30_000, timeoutMs: TIMEOUT_MS, marginMs: MARGIN_MS };
  const leaseAgo = (ms: number) => new Date(NOW.getTime() - ms).toISOString();

  it('calls a crashed run dead long before the timeout: three missed renewals are enough', () => {
    // Act & Assess
    expect(isLeaseDead({ status: 'running', leaseRenewedAt: leaseAgo(100_001) }, NOW, rules)).toBe(
      true,
    );
    expect(isLeaseDead({ status: 'running', leaseRenewedAt: leaseAgo(100_000) }, NOW, rules)).toBe(
      false,
    );
  });

  it('keeps a dispatched fan-out run alive until the timeout plus the margin', () => {
    // Prepare
    const run = (ms: number) => ({ status: 'running', leaseRenewedAt: leaseAgo(ms), report: '{}' });

    // Act & Assess
    expect(isLeaseDead(run(TIMEOUT_MS + MARGIN_MS), NOW, rules)).toBe(false);
    expect(isLeaseDead(run(TIMEOUT_MS + MARGIN_MS + 1), NOW, rules)).toBe(true);
  });

  it('never calls a lease renewed in the future (another container’s clock ahead) dead', () => {
    // Act & Assess
    expect(isLeaseDead({ status: 'running', leaseRenewedAt: leaseAgo(-60_000) }, NOW, rules)).toBe(
      false,
    );
  });

  it.each(['succeeded', 'partial', 'failed', 'incomplete', 'abandoned'])(
    'never calls a %s run dead, however old its lease',
    (status) => {
      // Act & Assess
      expect(isLeaseDead({ status, leaseRenewedAt: '2020-01-01T00:00:00.000Z' }, NOW, rules)).toBe(
        false,
      );
    },
  );

  it('never calls a running run without a readable lease dead', () => {
    // Act & Assess
    expect(isLeaseDead({ status: 'running' }, NOW, rules)).toBe(false);
    expect(isLeaseDead({ status: 'running', leaseRenewedAt: 'not a time' }, NOW, rules)).toBe(
      false,
    );
  });

  it('agrees with the lease age at every distance from its limit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -3_600_000, max: 3_600_000 }),
        fc.integer({ min: 1_000, max: 120_000 }),
        fc.boolean(),
        (offset, renewMs, dispatched) => {
          // Prepare
          const shape = dispatched ? { status: 'running', report: '{}' } : { status: 'running' };
          const limit = leaseStaleAfterMs(shape, { ...rules, renewMs });
          const run = { ...shape, leaseRenewedAt: leaseAgo(limit + offset) };

          // Act & Assess
          expect(isLeaseDead(run, NOW, { ...rules, renewMs })).toBe(offset > 0);
        },
      ),
      PROPERTY_RUNS,
    );
  });
});
