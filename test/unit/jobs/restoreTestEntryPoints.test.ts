import { describe, expect, it } from 'vitest';
import { InvalidEventError } from '../../../lib/domain/errors.ts';
import { parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import { parseOpsPayload } from '../../../lib/jobs/opsPayload.ts';
import { restoreTestRequestOf } from '../../../lib/jobs/restoreTestConsole.ts';
import { parseRestoreTestEvent } from '../../../lib/jobs/restoreTestEvent.ts';

const catalog = parseScheduleCatalog([
  { name: 'daily', cron: 'cron(0 3 * * ? *)', retain: 7 },
  {
    name: 'weekly',
    cron: 'cron(0 4 ? * SUN *)',
    retain: 4,
    restoreTests: { instances: 3, volumeInitializationRate: 150 },
  },
]);
const remainingMs = () => 900_000;

function consoleRequest(payload: Record<string, unknown>) {
  const parsed = parseOpsPayload({ action: 'restore-test', ...payload }, catalog);
  if (parsed.action !== 'restore-test') throw new Error('not a restore-test payload');
  return restoreTestRequestOf(parsed, catalog, remainingMs);
}

describe('Console action: restore-test', () => {
  it('takes its defaults from the schedule’s restoreTests', () => {
    expect(consoleRequest({ schedule: 'Weekly' })).toMatchObject({
      schedule: 'weekly',
      options: { instances: 3, volumeInitializationRate: 150 },
      dryRun: false,
    });
  });

  it('tests one instance when neither the payload nor the schedule says how many', () => {
    expect(consoleRequest({ schedule: 'daily' }).options).toEqual({ instances: 1 });
    expect(consoleRequest({}).options).toEqual({ instances: 1 });
  });

  it('lets the payload override the sample and the rate, and honours dryRun', () => {
    expect(
      consoleRequest({
        schedule: 'weekly',
        instances: 'all',
        volumeInitializationRate: 300,
        dryRun: true,
      }),
    ).toMatchObject({ options: { instances: 'all', volumeInitializationRate: 300 }, dryRun: true });
  });

  it('tests exactly the named instances', () => {
    expect(consoleRequest({ instanceIds: ['i-0123456789abcdef0'] })).toMatchObject({
      instanceIds: ['i-0123456789abcdef0'],
    });
  });
});

describe('Function: parseRestoreTestEvent', () => {
  it('reads a scheduled delivery and the schedule’s option', () => {
    const invocation = parseRestoreTestEvent(
      { schedule: 'weekly', scheduledTime: '2026-11-22T05:00:00Z' },
      catalog,
    );

    expect(invocation).toMatchObject({
      schedule: 'weekly',
      dryRun: false,
      options: { instances: 3, volumeInitializationRate: 150 },
    });
    expect(invocation.scheduledTime?.toISOString()).toBe('2026-11-22T05:00:00.000Z');
  });

  it.each([
    [{ schedule: 'daily' }, /"daily" has no restoreTests option .*schedules with one: weekly/],
    [{ schedule: 'hourly' }, /hourly/],
    [{ schedule: 'weekly', instances: 2 }, /instances/],
    [{ schedule: 'weekly', scheduledTime: 'sunday' }, /scheduledTime/],
  ])('rejects %j naming the field', (event, message) => {
    expect(() => parseRestoreTestEvent(event, catalog)).toThrow(InvalidEventError);
    expect(() => parseRestoreTestEvent(event, catalog)).toThrow(message);
  });
});
