import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkDeletionCap,
  type DeletionCap,
  deletionLimit,
  PERCENT_CAP_FLOOR,
  parseDeletionCap,
} from '../../../lib/domain/deletionCap.ts';

const PROPERTY_RUNS = { numRuns: 300 };

describe('Function: parseDeletionCap', () => {
  it.each([
    ['50', { kind: 'count', value: 50 }],
    [' 10 ', { kind: 'count', value: 10 }],
    ['0', { kind: 'count', value: 0 }],
    ['1000000', { kind: 'count', value: 1_000_000 }],
    ['25%', { kind: 'percent', value: 25 }],
    ['100%', { kind: 'percent', value: 100 }],
    ['1%', { kind: 'percent', value: 1 }],
    ['12.5%', { kind: 'percent', value: 12.5 }],
    [' 10% ', { kind: 'percent', value: 10 }],
  ])('reads %j as %j', (text, cap) => {
    // Prepare
    const input = text;

    // Act
    const result = parseDeletionCap(input);

    // Assess
    expect(result).toEqual(cap);
  });

  it.each([
    '0%',
    '101%',
    '100.5%',
    '1000%',
    'abc',
    '',
    '   ',
    '%',
    '-5',
    '-5%',
    '10 %',
    '1e3',
    '1,000',
    '1000001',
    '50.5',
    '+5',
  ])('rejects %j as not a cap', (text) => {
    // Prepare
    const input = text;

    // Act
    const result = parseDeletionCap(input);

    // Assess
    expect(result).toBeUndefined();
  });
});

describe('Function: deletionLimit', () => {
  it.each([
    [{ kind: 'count', value: 50 }, 400, 50],
    [{ kind: 'count', value: 50 }, 3, 50],
    [{ kind: 'count', value: 0 }, 400, 0],
    [{ kind: 'percent', value: 25 }, 400, 100],
    [{ kind: 'percent', value: 10 }, 1000, 100],
    [{ kind: 'percent', value: 10 }, 101, 11],
    [{ kind: 'percent', value: 12.5 }, 100, 13],
    [{ kind: 'percent', value: 100 }, 250, 250],
    [{ kind: 'percent', value: 7 }, 200, 14],
    [{ kind: 'percent', value: 7 }, 300, 21],
    [{ kind: 'percent', value: 10 }, 50, 10],
    [{ kind: 'percent', value: 10 }, 0, 10],
    [{ kind: 'percent', value: 1 }, 5, 10],
  ] as const)('allows %j of %i managed in scope: %i', (cap, managedInScope, limit) => {
    // Prepare
    const input: DeletionCap = cap;

    // Act
    const result = deletionLimit(input, managedInScope);

    // Assess
    expect(result).toBe(limit);
  });

  it(`allows the percentage rounded up, never fewer than ${PERCENT_CAP_FLOOR}`, () => {
    // Prepare
    const percent = fc.integer({ min: 1, max: 100 });
    // Whole percentages of round scopes too, where the exact limit is a whole number
    const scope = fc.oneof(
      fc.integer({ min: 0, max: 100_000 }),
      fc.integer({ min: 1, max: 200 }).map((hundreds) => hundreds * 100),
    );

    // Act & Assess
    fc.assert(
      fc.property(percent, scope, (value, managedInScope) => {
        const limit = deletionLimit({ kind: 'percent', value }, managedInScope);
        const exact = Math.ceil((value * managedInScope) / 100); // integer arithmetic
        expect(limit).toBe(Math.max(PERCENT_CAP_FLOOR, exact));
      }),
      PROPERTY_RUNS,
    );
  });
});

describe('Function: checkDeletionCap', () => {
  it.each([
    [0, 400, { kind: 'count', value: 50 }],
    [50, 400, { kind: 'count', value: 50 }],
    [100, 400, { kind: 'percent', value: 25 }],
    [10, 20, { kind: 'percent', value: 10 }],
  ] as const)('lets %i deletions of %i in scope through under %j', (planned, scope, cap) => {
    // Prepare
    const input: DeletionCap = cap;

    // Act
    const result = checkDeletionCap(planned, scope, input);

    // Assess
    expect(result).toEqual({ limit: deletionLimit(input, scope), planned, exceeded: false });
  });

  it('stops 120 deletions under MAX_DELETIONS=50 and says how to lift the cap for one run', () => {
    // Prepare
    const cap: DeletionCap = { kind: 'count', value: 50 };

    // Act
    const result = checkDeletionCap(120, 400, cap);

    // Assess
    expect(result).toEqual({
      limit: 50,
      planned: 120,
      exceeded: true,
      reason:
        '120 deletions planned, above MAX_DELETIONS=50: nothing deleted. Check the plan (dryRun), then lift the cap for one run with {"maxDeletions": 120, "confirm": true}',
    });
  });

  it('names a percentage cap with its limit and the managed snapshots in scope', () => {
    // Prepare
    const cap: DeletionCap = { kind: 'percent', value: 10 };

    // Act
    const result = checkDeletionCap(41, 400, cap);

    // Assess
    expect(result.exceeded).toBe(true);
    expect(result.limit).toBe(40);
    expect(result.reason).toBe(
      '41 deletions planned, above MAX_DELETIONS=10% (40 of 400 managed in scope): nothing deleted. Check the plan (dryRun), then lift the cap for one run with {"maxDeletions": 41, "confirm": true}',
    );
  });

  it('stops every deletion under MAX_DELETIONS=0', () => {
    // Prepare
    const cap: DeletionCap = { kind: 'count', value: 0 };

    // Act
    const result = checkDeletionCap(1, 400, cap);

    // Assess
    expect(result.exceeded).toBe(true);
    expect(result.reason).toContain('{"maxDeletions": 1, "confirm": true}');
  });

  it('lets an operator override replace a lower cap for one run', () => {
    // Prepare
    const cap: DeletionCap = { kind: 'count', value: 50 };

    // Act
    const result = checkDeletionCap(120, 400, cap, 500);

    // Assess
    expect(result).toEqual({ limit: 500, planned: 120, exceeded: false });
  });

  it('lets an override replace a higher cap too, and names the override when exceeded', () => {
    // Prepare
    const cap: DeletionCap = { kind: 'percent', value: 50 };

    // Act
    const result = checkDeletionCap(30, 400, cap, 20);

    // Assess
    expect(result).toEqual({
      limit: 20,
      planned: 30,
      exceeded: true,
      reason:
        '30 deletions planned, above the maxDeletions override of 20: nothing deleted. Check the plan (dryRun), then lift the cap for one run with {"maxDeletions": 30, "confirm": true}',
    });
  });

  it('is exceeded exactly when more deletions are planned than the limit', () => {
    // Prepare
    const cap = fc.oneof(
      fc.record({ kind: fc.constant('count' as const), value: fc.integer({ min: 0, max: 1000 }) }),
      fc.record({ kind: fc.constant('percent' as const), value: fc.integer({ min: 1, max: 100 }) }),
    );
    const override = fc.option(fc.integer({ min: 0, max: 2000 }), { nil: undefined });

    // Act & Assess
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 0, max: 5000 }),
        cap,
        override,
        (planned, scope, deletionCap, maxDeletions) => {
          const result = checkDeletionCap(planned, scope, deletionCap, maxDeletions);
          expect(result.limit).toBe(maxDeletions ?? deletionLimit(deletionCap, scope));
          expect(result.exceeded).toBe(planned > result.limit);
          if (result.exceeded) {
            expect(result.reason).toContain(`{"maxDeletions": ${planned}, "confirm": true}`);
          } else {
            expect(result.reason).toBeUndefined();
          }
        },
      ),
      PROPERTY_RUNS,
    );
  });
});
