import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../lib/config/environment.ts';
import { InvalidEventError } from '../../../lib/domain/errors.ts';
import { resolveSchedule } from '../../../lib/domain/schedules.ts';
import { dryRunOf, scheduledSlot } from '../../../lib/runtime/invocation.ts';

function runtimeAt(now: string, env: Record<string, string> = {}) {
  const config = loadConfig({ AWS_REGION: 'eu-west-1', DEPLOYMENT: 'prod', ...env });
  return { config, clock: () => new Date(now) };
}

describe('Function: scheduledSlot', () => {
  it('holds a retention delivery to the retention timetable (an hour after the backup)', () => {
    // Prepare
    const runtime = runtimeAt('2026-11-23T04:00:05Z');
    const daily = resolveSchedule(runtime.config.catalog, 'daily');

    // Act & Assess: 04:00 is a retention fire time, not an off-schedule backup time
    expect(scheduledSlot(runtime, daily, new Date('2026-11-23T04:00:00Z'), 'retention')).toBe(
      '2026-11-23T04:00:00Z',
    );
    expect(scheduledSlot(runtime, daily, new Date('2026-11-23T04:00:00Z'), 'backup')).toBe(
      '2026-11-23T03:00:00Z',
    );
  });

  it.each(['backup', 'amis', 'retention'] as const)(
    'rejects a %s delivery for a slot that has not come, naming scheduledTime',
    (job) => {
      // Prepare
      const runtime = runtimeAt('2026-11-23T06:00:00Z');
      const daily = resolveSchedule(runtime.config.catalog, 'daily');

      // Act & Assess
      expect(() => scheduledSlot(runtime, daily, new Date('2026-11-24T04:00:00Z'), job)).toThrow(
        InvalidEventError,
      );
      expect(() => scheduledSlot(runtime, daily, new Date('2026-11-24T04:00:00Z'), job)).toThrow(
        /^field "scheduledTime": 2026-11-24T04:00:00Z is 22 h ahead of the clock/,
      );
    },
  );

  it('serves a slot older than one interval only within SLOT_CATCH_UP_SECONDS', () => {
    // Prepare
    const now = '2026-11-25T03:00:00Z';
    const strict = runtimeAt(now);
    const lenient = runtimeAt(now, { SLOT_CATCH_UP_SECONDS: String(2 * 86_400) });
    const daily = resolveSchedule(strict.config.catalog, 'daily');
    const slot = new Date('2026-11-23T03:00:00Z');

    // Act & Assess
    expect(() => scheduledSlot(strict, daily, slot, 'backup')).toThrow(/catch-up window/);
    expect(scheduledSlot(lenient, daily, slot, 'backup')).toBe('2026-11-23T03:00:00Z');
  });

  it('serves the latest fire time when the event carries no scheduledTime', () => {
    // Prepare
    const runtime = runtimeAt('2026-11-23T10:00:00Z');
    const daily = resolveSchedule(runtime.config.catalog, 'daily');

    // Act & Assess
    expect(scheduledSlot(runtime, daily, undefined, 'backup')).toBe('2026-11-23T03:00:00Z');
  });
});

describe('Function: dryRunOf', () => {
  it.each([
    [undefined, false, false],
    [false, false, false],
    [true, false, true],
    [undefined, true, true],
    [false, true, true],
    [true, true, true],
  ])('plans only when the event asks (%s) or DRY_RUN is set (%s): %s', (asked, variable, dry) => {
    // Act & Assess
    expect(dryRunOf(asked, { dryRun: variable })).toBe(dry);
  });
});
