import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidScheduleDefinitionError, InvalidTagError } from '../../../lib/domain/errors.ts';
import { planRetention, type RecoveryPoint } from '../../../lib/domain/retentionPlan.ts';
import { parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import {
  ALLOW_COMPLIANCE_PHRASE,
  checkLock,
  complianceAllowed,
  describeHold,
  type LockState,
  lockHoldOf,
  lockRuleFor,
  parseLockRule,
  readLockTag,
  readScheduleLock,
} from '../../../lib/domain/snapshotLock.ts';
import { withLockHolds } from '../../../lib/jobs/snapshotLocks.ts';

const DAY_MS = 86_400_000;
const NOW = new Date('2026-11-23T12:00:00Z');
const SCHEDULES = ['daily', 'weekly', 'monthly', 'yearly'];

describe('Function: parseLockRule', () => {
  it('reads days, weeks and years, governance by default', () => {
    expect(parseLockRule('365d')).toEqual({ ok: true, rule: { days: 365, mode: 'governance' } });
    expect(parseLockRule('12w')).toEqual({ ok: true, rule: { days: 84, mode: 'governance' } });
    expect(parseLockRule('7y:compliance')).toEqual({
      ok: true,
      rule: { days: 2555, mode: 'compliance' },
    });
    expect(parseLockRule(' 30D:Governance ')).toEqual({
      ok: true,
      rule: { days: 30, mode: 'governance' },
    });
  });

  it.each([
    ['forever', 'not a lock duration'],
    ['0d', '1 to 36500 days'],
    ['101y', '1 to 36500 days'],
    ['36501d', '1 to 36500 days'],
    ['30', 'not a lock duration'],
    ['1.5y', 'not a lock duration'],
    ['30d:legal-hold', 'not a lock mode'],
    ['30d:governance:x', 'more than one ":"'],
  ])('refuses %j, saying why', (text, problem) => {
    const parsed = parseLockRule(text);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.problem).toContain(problem);
  });

  it('accepts exactly the durations LockSnapshot accepts (1-36500 days)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40_000 }), (days) => {
        const parsed = parseLockRule(`${days}d`);
        expect(parsed.ok).toBe(days >= 1 && days <= 36_500);
      }),
    );
  });
});

describe('Function: readLockTag', () => {
  it('reads one rule per schedule', () => {
    const rules = readLockTag('snapkeeper:lock', 'monthly=365d, yearly=7y', SCHEDULES, false);
    expect([...rules]).toEqual([
      ['monthly', { days: 365, mode: 'governance' }],
      ['yearly', { days: 2555, mode: 'governance' }],
    ]);
  });

  it.each([
    ['monthly=forever', 'entry "monthly=forever": duration "forever"'],
    ['hourly=30d', 'schedule "hourly", which is not defined'],
    ['monthly=30d,monthly=60d', 'names schedule "monthly" twice'],
    ['365d', 'is not schedule=duration'],
    ['', 'is empty'],
    ['monthly=7y:compliance', 'custom.snapshotLock.allowCompliance'],
  ])('refuses %j with an error naming the tag and the fix', (value, message) => {
    expect(() => readLockTag('snapkeeper:lock', value, SCHEDULES, false)).toThrow(InvalidTagError);
    expect(() => readLockTag('snapkeeper:lock', value, SCHEDULES, false)).toThrow(message);
  });

  it('reads tag=<duration> as the rule of the instance’s own cron(...) and rate(...) schedules', () => {
    const rules = readLockTag('snapkeeper:lock', 'monthly=365d, tag=30d', SCHEDULES, false);
    expect(rules.get('tag')).toEqual({ days: 30, mode: 'governance' });
    // A tag schedule's sets carry the canonical expression as their schedule.
    expect(lockRuleFor('cron(0 3 * * ? *)@Europe/Paris', rules, undefined)).toEqual({
      days: 30,
      mode: 'governance',
    });
    expect(lockRuleFor('rate(6 hours)', rules, undefined)?.days).toBe(30);
    expect(lockRuleFor('monthly', rules, undefined)?.days).toBe(365);
    expect(lockRuleFor('daily', rules, undefined)).toBeUndefined();
  });

  it.each(['cron(0 3 * * ? *)=30d', 'rate(6 hours)=30d'])(
    'refuses the expression itself (%j), naming the fix tag=<duration>',
    (value) => {
      expect(() => readLockTag('snapkeeper:lock', value, SCHEDULES, false)).toThrow(
        /names the expression "(cron|rate)\(.*write e\.g\. tag=30d/,
      );
    },
  );

  it('names tag= among the accepted names when a schedule is not defined', () => {
    expect(() => readLockTag('snapkeeper:lock', 'hourly=30d', SCHEDULES, false)).toThrow(
      /and tag, for the instance's own cron\(\.\.\.\) and rate\(\.\.\.\) schedules/,
    );
  });

  it('allows compliance only when the stage names the risk', () => {
    expect(
      readLockTag('snapkeeper:lock', 'yearly=7y:compliance', SCHEDULES, true).get('yearly'),
    ).toEqual({ days: 2555, mode: 'compliance' });
    expect(complianceAllowed(ALLOW_COMPLIANCE_PHRASE)).toBe(true);
    expect(complianceAllowed('true')).toBe(false);
    expect(complianceAllowed(undefined)).toBe(false);
  });
});

describe('Function: readScheduleLock and the schedule catalog', () => {
  it('reads the lock option of a schedule definition', () => {
    const catalog = parseScheduleCatalog(
      [{ name: 'monthly', cron: 'cron(0 5 1 * ? *)', retain: 12, lock: '365d' }],
      'monthly',
    );
    expect(catalog.schedules.get('monthly')?.lock).toBe('365d');
  });

  it('refuses a bad lock option, naming the schedule', () => {
    expect(() =>
      parseScheduleCatalog(
        [{ name: 'monthly', cron: 'cron(0 5 1 * ? *)', retain: 12, lock: '10 years' }],
        'monthly',
      ),
    ).toThrow(/schedule "monthly": lock duration "10 years"/);
  });

  it('refuses a compliance option unless the stage allows it', () => {
    const definition = [
      { name: 'yearly', cron: 'cron(0 6 1 1 ? *)', retain: 7, lock: '7y:compliance' },
    ];
    expect(() => parseScheduleCatalog(definition, 'yearly')).toThrow(
      InvalidScheduleDefinitionError,
    );
    expect(
      parseScheduleCatalog(definition, 'yearly', { allowComplianceLocks: true }).schedules.get(
        'yearly',
      )?.lock,
    ).toBe('7y:compliance');
    expect(() => readScheduleLock('yearly', '7y:compliance', false)).toThrow(
      ALLOW_COMPLIANCE_PHRASE,
    );
  });
});

describe('Function: lockHoldOf', () => {
  it.each<[LockState, string | undefined]>([
    ['governance', 'governance'],
    ['compliance', 'compliance'],
    ['compliance-cooloff', 'compliance'],
    ['pending-compliance', 'compliance'],
    ['expired', undefined],
  ])('a %s lock holds as %s', (state, mode) => {
    expect(lockHoldOf({ snapshotId: 'snap-1', state })?.mode).toBe(mode);
  });
});

describe('Function: checkLock', () => {
  const rule = { days: 365, mode: 'governance' as const };

  it('leaves a reported lock alone', () => {
    const check = checkLock(
      rule,
      new Date(NOW.getTime() - DAY_MS),
      { snapshotId: 's', state: 'governance', expiresOn: new Date(NOW.getTime() + 364 * DAY_MS) },
      NOW,
    );
    expect(check.action).toBe('ok');
  });

  it('re-applies a missing lock until the first lock would have ended', () => {
    const created = new Date(NOW.getTime() - 10 * DAY_MS);
    const check = checkLock(rule, created, undefined, NOW);
    expect(check).toEqual({
      action: 'lock',
      expiresAt: new Date(created.getTime() + 365 * DAY_MS),
      reason: 'no lock reported by DescribeLockedSnapshots',
    });
  });

  it('re-applies a lock that expired early, and never one whose time is over', () => {
    const created = new Date(NOW.getTime() - 10 * DAY_MS);
    expect(checkLock(rule, created, { snapshotId: 's', state: 'expired' }, NOW).action).toBe(
      'lock',
    );
    const old = new Date(NOW.getTime() - 366 * DAY_MS);
    expect(checkLock(rule, old, undefined, NOW).action).toBe('none');
  });
});

describe('Function: withLockHolds (retention blocks locked points)', () => {
  const arbitraryPoints = fc.uniqueArray(
    fc.record({
      id: fc.integer({ min: 1, max: 60 }).map((n) => `snap-${n}`),
      ageDays: fc.integer({ min: 0, max: 400 }),
      locked: fc.boolean(),
    }),
    { selector: (p) => p.id, maxLength: 30 },
  );

  it('never plans to delete a locked point, and says until when it is locked', () => {
    fc.assert(
      fc.property(arbitraryPoints, fc.integer({ min: 1, max: 10 }), (rows, count) => {
        const holds = new Map(
          rows
            .filter((r) => r.locked)
            .map((r) => [
              r.id,
              { mode: 'governance' as const, until: new Date(NOW.getTime() + 30 * DAY_MS) },
            ]),
        );
        const holders = withLockHolds(new Map(), holds);
        const points: RecoveryPoint[] = rows.map((r) => ({
          id: r.id,
          state: 'completed',
          managed: true,
          createdAt: new Date(NOW.getTime() - r.ageDays * DAY_MS),
          heldBy: holders.get(r.id),
        }));
        const plan = planRetention(
          points,
          { count },
          { now: NOW, timezone: 'UTC', orphan: true, intervalMs: DAY_MS },
        );
        for (const decision of plan.decisions) {
          if (!holds.has(decision.id)) continue;
          expect(decision.action).not.toBe('delete');
          if (decision.action === 'blocked') {
            expect(decision.reason).toContain('locked (governance) until 2026-12-23');
          }
        }
      }),
    );
  });

  it('keeps the AMI holders first', () => {
    const merged = withLockHolds(
      new Map([['snap-1', ['ami-1']]]),
      new Map([['snap-1', { mode: 'compliance' as const }]]),
    );
    expect(merged.get('snap-1')).toEqual(['ami-1', describeHold({ mode: 'compliance' })]);
  });
});
