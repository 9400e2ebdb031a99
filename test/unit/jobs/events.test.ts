import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  InvalidEventError,
  SnapkeeperError,
  UnknownScheduleError,
} from '../../../lib/domain/errors.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import { parseScheduledEvent } from '../../../lib/jobs/events.ts';

const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const HOW_TO_FIX =
  'configure the schedule\'s target input as {"schedule": "<name>", "scheduledTime": "<aws.scheduler.scheduled-time>"}';

function sampleEvent(file: string): unknown {
  return JSON.parse(readFileSync(new URL(`../../../events/${file}`, import.meta.url), 'utf8'));
}

function eventError(event: unknown): InvalidEventError {
  try {
    parseScheduledEvent(event, catalog);
  } catch (error) {
    if (error instanceof InvalidEventError) return error;
    throw error;
  }
  throw new Error('expected parseScheduledEvent to throw an InvalidEventError');
}

describe('Function: parseScheduledEvent', () => {
  it.each([
    ['backup-daily.json', 'daily', '2026-11-23T03:00:00.000Z', false],
    ['backup-daily-dry-run.json', 'daily', '2026-11-23T03:00:00.000Z', true],
    ['backup-weekly.json', 'weekly', '2026-11-22T04:00:00.000Z', false],
    ['backup-monthly.json', 'monthly', '2026-11-01T05:00:00.000Z', false],
  ])('accepts the sample event %s', (file, schedule, scheduledTime, dryRun) => {
    // Prepare
    const event = sampleEvent(file);

    // Act
    const invocation = parseScheduledEvent(event, catalog);

    // Assess
    expect(invocation.schedule).toBe(schedule);
    expect(invocation.scheduledTime?.toISOString()).toBe(scheduledTime);
    expect(invocation.dryRun).toBe(dryRun);
  });

  it('accepts a classic rule constant input without a scheduled time', () => {
    // Prepare
    const event = sampleEvent('backup-daily-rule-constant-input.json');

    // Act
    const invocation = parseScheduledEvent(event, catalog);

    // Assess
    expect(invocation).toEqual({ schedule: 'daily', scheduledTime: undefined, dryRun: false });
  });

  it.each([
    ['Daily', 'daily'],
    [' WEEKLY ', 'weekly'],
    ['monthly', 'monthly'],
  ])('resolves the schedule %j to its canonical name %s', (name, expected) => {
    // Prepare
    const event = { schedule: name, scheduledTime: '2026-11-23T03:00:00Z' };

    // Act
    const invocation = parseScheduledEvent(event, catalog);

    // Assess
    expect(invocation.schedule).toBe(expected);
  });

  it.each([
    [true, true],
    [false, false],
  ])('reads dryRun %s as %s', (dryRun, expected) => {
    // Prepare
    const event = { schedule: 'daily', dryRun };

    // Act
    const invocation = parseScheduledEvent(event, catalog);

    // Assess
    expect(invocation.dryRun).toBe(expected);
  });

  it('accepts a scheduled time with an offset and keeps the instant', () => {
    // Prepare
    const event = { schedule: 'daily', scheduledTime: '2026-11-23T04:00:00+01:00' };

    // Act
    const invocation = parseScheduledEvent(event, catalog);

    // Assess
    expect(invocation.scheduledTime?.toISOString()).toBe('2026-11-23T03:00:00.000Z');
  });

  it('accepts the schedules of the deployment catalog', () => {
    // Prepare
    const hourly = parseScheduleCatalog(
      [{ name: 'hourly', cron: 'cron(0 * * * ? *)', retain: 24 }],
      'hourly',
    );

    // Act
    const invocation = parseScheduledEvent({ schedule: 'hourly' }, hourly);

    // Assess
    expect(invocation.schedule).toBe('hourly');
  });

  it('rejects a raw EventBridge scheduled event, saying how to fix the target input', () => {
    // Prepare
    const event = sampleEvent('eventbridge-scheduled-event-without-schedule.json');

    // Act
    const error = eventError(event);

    // Assess
    expect(error).toBeInstanceOf(SnapkeeperError);
    expect(error.name).toBe('InvalidEventError');
    expect(error.message).toContain('names no schedule');
    expect(error.message).toContain('raw EventBridge event');
    expect(error.message).toContain(HOW_TO_FIX);
    expect(error.message).toContain('known schedules: daily, weekly, monthly');
  });

  it('rejects an empty object as naming no schedule, saying how to fix it', () => {
    // Prepare
    const event = {};

    // Act
    const error = eventError(event);

    // Assess
    expect(error.message).toContain('names no schedule');
    expect(error.message).not.toContain('raw EventBridge event');
    expect(error.message).toContain(HOW_TO_FIX);
  });

  it.each([
    ['null', null],
    ['undefined', undefined],
    ['a string', 'daily'],
    ['a number', 42],
    ['an array', [{ schedule: 'daily' }]],
  ])('rejects %s as not a JSON object, saying how to fix it', (_label, event) => {
    // Prepare
    const input: unknown = event;

    // Act
    const error = eventError(input);

    // Assess
    expect(error.message).toContain('must be a JSON object');
    expect(error.message).toContain(HOW_TO_FIX);
  });

  it('rejects an unknown schedule, naming the field and the known schedules', () => {
    // Prepare
    const event = { schedule: 'yearly', scheduledTime: '2026-11-23T03:00:00Z' };

    // Act
    const error = eventError(event);

    // Assess
    expect(error.message).toBe(
      'field "schedule": "yearly" is not a known schedule; known: daily, weekly, monthly',
    );
    expect(error.cause).toBeInstanceOf(UnknownScheduleError);
  });

  it.each([
    ['a number as schedule', { schedule: 7 }, 'schedule'],
    ['null as schedule', { schedule: null }, 'schedule'],
    ['an undefined schedule', { schedule: undefined }, 'schedule'],
    ['a list as schedule', { schedule: ['daily'] }, 'schedule'],
    [
      'a number as scheduledTime',
      { schedule: 'daily', scheduledTime: 1795402800000 },
      'scheduledTime',
    ],
    ['null as scheduledTime', { schedule: 'daily', scheduledTime: null }, 'scheduledTime'],
    ['a string as dryRun', { schedule: 'daily', dryRun: 'true' }, 'dryRun'],
    ['a number as dryRun', { schedule: 'daily', dryRun: 1 }, 'dryRun'],
  ])('rejects %s, naming the field', (_label, event, field) => {
    // Prepare
    const input: unknown = event;

    // Act
    const error = eventError(input);

    // Assess
    expect(error.message.startsWith(`field "${field}" `)).toBe(true);
  });

  it.each([
    ['an empty string', ''],
    ['a word', 'yesterday'],
    ['month 13', '2026-13-01T03:00:00Z'],
    ['hour 25', '2026-11-23T25:00:00Z'],
    ['an offset beyond 24 hours', '2026-11-23T03:00:00+25:00'],
    ['a bare clock time', '03:00'],
  ])('rejects %s as scheduledTime, naming the field', (_label, scheduledTime) => {
    // Prepare
    const event = { schedule: 'daily', scheduledTime };

    // Act
    const error = eventError(event);

    // Assess
    expect(error.message).toBe(
      'field "scheduledTime" must be an ISO 8601 time with a zone, such as 2026-11-23T03:00:00Z',
    );
  });

  it.each([
    ['a lone number', '1'],
    ['a schedule name and a number', 'daily 1'],
    ['a word and a year', 'x 2026'],
  ])('rejects %s as scheduledTime, which is no ISO 8601 time', (_label, scheduledTime) => {
    // Prepare
    const event = { schedule: 'daily', scheduledTime };

    // Act
    const act = (): unknown => parseScheduledEvent(event, catalog);

    // Assess
    expect(act).toThrow(InvalidEventError);
    expect(act).toThrow('field "scheduledTime"');
  });

  it('rejects an extra field, naming it', () => {
    // Prepare
    const event = { schedule: 'daily', scheduledTime: '2026-11-23T03:00:00Z', region: 'eu-west-1' };

    // Act
    const error = eventError(event);

    // Assess
    expect(error.message).toContain('unexpected field(s) "region"');
  });

  it('rejects several extra fields, naming each', () => {
    // Prepare
    const event = { schedule: 'daily', force: true, 'detail-type': 'Scheduled Event' };

    // Act
    const error = eventError(event);

    // Assess
    expect(error.message).toContain('"force"');
    expect(error.message).toContain('"detail-type"');
  });

  it('rejects a misspelt dryRun as an extra field', () => {
    // Prepare
    const event = { schedule: 'daily', dryrun: true };

    // Act
    const error = eventError(event);

    // Assess
    expect(error.message).toContain('"dryrun"');
  });
});
