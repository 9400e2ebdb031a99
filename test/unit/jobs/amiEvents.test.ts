import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InvalidEventError } from '../../../lib/domain/errors.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import { parseAmiEvent } from '../../../lib/jobs/events.ts';

const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');

function sampleEvent(file: string): unknown {
  return JSON.parse(readFileSync(new URL(`../../../events/${file}`, import.meta.url), 'utf8'));
}

function eventError(event: unknown): InvalidEventError {
  try {
    parseAmiEvent(event, catalog);
  } catch (error) {
    if (error instanceof InvalidEventError) return error;
    throw error;
  }
  throw new Error('expected parseAmiEvent to throw an InvalidEventError');
}

describe('Function: parseAmiEvent', () => {
  describe('A schedule invocation', () => {
    it("reads {schedule, scheduledTime} as kind 'schedule'", () => {
      // Prepare
      const event = { schedule: 'Daily', scheduledTime: '2026-11-23T03:00:00Z' };

      // Act
      const invocation = parseAmiEvent(event, catalog);

      // Assess
      expect(invocation).toEqual({
        kind: 'schedule',
        schedule: 'daily',
        scheduledTime: new Date('2026-11-23T03:00:00.000Z'),
        dryRun: false,
      });
    });

    it.each([
      ['amis-daily.json', false],
      ['amis-daily-dry-run.json', true],
    ])('accepts the sample event %s', (file, dryRun) => {
      // Prepare
      const event = sampleEvent(file);

      // Act
      const invocation = parseAmiEvent(event, catalog);

      // Assess
      expect(invocation).toMatchObject({ kind: 'schedule', schedule: 'daily', dryRun });
    });

    it('carries a confirmed maxDeletions override', () => {
      // Prepare
      const event = { schedule: 'daily', maxDeletions: 40, confirm: true };

      // Act
      const invocation = parseAmiEvent(event, catalog);

      // Assess
      expect(invocation).toMatchObject({ kind: 'schedule', maxDeletions: 40 });
    });

    it('rejects an unknown schedule, listing the known ones', () => {
      // Prepare
      const event = { schedule: 'hourly' };

      // Act
      const error = eventError(event);

      // Assess
      expect(error.message).toBe(
        'field "schedule": "hourly" is not a known schedule; known: daily, weekly, monthly',
      );
    });

    it('rejects extra fields, listing them', () => {
      // Prepare
      const event = { schedule: 'daily', force: true, ami: 'yes' };

      // Act
      const error = eventError(event);

      // Assess
      expect(error.message).toMatch(/^unexpected field\(s\) "force", "ami"; /);
    });
  });

  describe('A sweep invocation', () => {
    it("reads {sweep: true} as kind 'sweep', not a dry run", () => {
      // Prepare
      const event = { sweep: true };

      // Act
      const invocation = parseAmiEvent(event, catalog);

      // Assess
      expect(invocation).toEqual({ kind: 'sweep', dryRun: false });
    });

    it.each([
      ['amis-sweep.json', false],
      ['amis-sweep-dry-run.json', true],
    ])('accepts the sample event %s', (file, dryRun) => {
      // Prepare
      const event = sampleEvent(file);

      // Act
      const invocation = parseAmiEvent(event, catalog);

      // Assess
      expect(invocation).toEqual({ kind: 'sweep', dryRun });
    });

    it.each([
      ['false', false],
      ['the string "yes"', 'yes'],
      ['1', 1],
      ['null', null],
    ])('rejects sweep set to %s, naming the field', (_, sweep) => {
      // Prepare
      const event = { sweep };

      // Act
      const error = eventError(event);

      // Assess
      expect(error.message).toBe('field "sweep" must be true to run the orphan sweep');
    });

    it('rejects extra fields, listing them and the fields the sweep takes', () => {
      // Prepare
      const event = { sweep: true, schedule: 'daily', force: true };

      // Act
      const error = eventError(event);

      // Assess
      expect(error.message).toBe(
        'unexpected field(s) "schedule", "force"; the sweep takes sweep, dryRun, maxDeletions and confirm only',
      );
    });

    it('rejects a dryRun that is not a boolean, naming the field', () => {
      // Prepare
      const event = { sweep: true, dryRun: 'true' };

      // Act
      const error = eventError(event);

      // Assess
      expect(error.message).toBe('field "dryRun" must be true or false');
    });

    it.each([
      ['a fraction', 2.5],
      ['a negative number', -1],
      ['a string', '10'],
    ])('rejects a maxDeletions that is %s', (_, maxDeletions) => {
      // Prepare
      const event = { sweep: true, maxDeletions, confirm: true };

      // Act
      const error = eventError(event);

      // Assess
      expect(error.message).toMatch(/^field "maxDeletions" /);
    });
  });

  describe('The maxDeletions override', () => {
    it.each([
      ['the sweep', { sweep: true, maxDeletions: 500 }],
      ['a schedule', { schedule: 'daily', maxDeletions: 500 }],
      ['the sweep, with confirm false', { sweep: true, maxDeletions: 500, confirm: false }],
    ])('is refused for %s without "confirm": true', (_, event) => {
      // Prepare: the event above.

      // Act
      const error = eventError(event);

      // Assess
      expect(error.message).toBe(
        'field "maxDeletions" lifts the deletion cap for one run and needs "confirm": true (or "dryRun": true to preview)',
      );
    });

    it('is accepted for the sweep with "confirm": true', () => {
      // Prepare
      const event = { sweep: true, maxDeletions: 500, confirm: true };

      // Act
      const invocation = parseAmiEvent(event, catalog);

      // Assess
      expect(invocation).toEqual({ kind: 'sweep', dryRun: false, maxDeletions: 500 });
    });

    it.each([
      ['the sweep', { sweep: true, maxDeletions: 500, dryRun: true }],
      ['a schedule', { schedule: 'daily', maxDeletions: 500, dryRun: true }],
    ])('needs no confirmation for a dry run of %s', (_, event) => {
      // Prepare: the event above.

      // Act
      const invocation = parseAmiEvent(event, catalog);

      // Assess
      expect(invocation).toMatchObject({ dryRun: true, maxDeletions: 500 });
    });
  });
});
