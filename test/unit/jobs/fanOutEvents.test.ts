import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InvalidEventError } from '../../../lib/domain/errors.ts';
import { parseBatchMessage } from '../../../lib/domain/fanOut.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import { parseFanOutEvent } from '../../../lib/jobs/events.ts';

const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');

function sampleEvent(file: string): unknown {
  return JSON.parse(readFileSync(new URL(`../../../events/${file}`, import.meta.url), 'utf8'));
}

function rejection(event: unknown): string {
  try {
    parseFanOutEvent(event, catalog);
  } catch (error) {
    if (error instanceof InvalidEventError) return error.message;
    throw error;
  }
  throw new Error('expected parseFanOutEvent to throw an InvalidEventError');
}

describe('Function: parseFanOutEvent', () => {
  it.each([
    ['fanout-backup-daily.json', 'backup', false],
    ['fanout-backup-daily-dry-run.json', 'backup', true],
    ['fanout-retention-daily.json', 'retention', false],
  ] as const)('reads the sample %s as a %s slot (dry run %s)', (file, job, dryRun) => {
    // Act
    const invocation = parseFanOutEvent(sampleEvent(file), catalog);

    // Assess
    expect(invocation).toMatchObject({ job, schedule: 'daily', dryRun });
    expect(invocation.scheduledTime).toBeInstanceOf(Date);
  });

  it('rejects a job that does not fan out, naming the field', () => {
    expect(rejection({ job: 'amis', schedule: 'daily' })).toBe(
      'field "job" must be "backup" or "retention"',
    );
  });

  it('rejects an event without a job', () => {
    expect(rejection({ schedule: 'daily' })).toMatch(/field "job"/);
  });

  it('rejects an unknown schedule and an unexpected field by name', () => {
    expect(rejection({ job: 'backup', schedule: 'hourly' })).toMatch(
      /field "schedule": "hourly" is not a known schedule/,
    );
    expect(rejection({ job: 'backup', schedule: 'daily', instanceIds: [] })).toMatch(
      /unexpected field\(s\) .*instanceIds/,
    );
  });
});

describe('Sample: events/worker-batch.json', () => {
  it('carries one batch message the worker accepts', () => {
    // Prepare
    const event = sampleEvent('worker-batch.json') as { Records: { body: string }[] };

    // Act
    const messages = event.Records.map((r) => parseBatchMessage(JSON.parse(r.body)));

    // Assess
    expect(messages).toEqual([
      expect.objectContaining({
        job: 'backup',
        batchId: 'self/eu-west-1/0001',
        target: { account: 'self', region: 'eu-west-1' },
        instanceIds: ['i-0123456789abcdef0', 'i-0fedcba9876543210'],
      }),
    ]);
  });
});
