import { describe, expect, it } from 'vitest';
import type { ActionRecord, LoggerPort } from '../../../lib/jobs/ports.ts';
import { openRun } from '../../../lib/jobs/runOpening.ts';

function recordingLogger(): LoggerPort & {
  lines: { level: string; message: string; data: unknown }[];
} {
  const lines: { level: string; message: string; data: unknown }[] = [];
  const at = (level: string) => (message: string, data?: unknown) => {
    lines.push({ level, message, data });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('Function: openRun', () => {
  it('builds the header (common fields, then the job’s own, then trigger, dry run and start) and logs it', () => {
    // Prepare
    const logger = recordingLogger();
    const now = new Date('2026-11-23T03:00:05Z');

    // Act
    const run = openRun(
      'backup',
      'backup run',
      { trigger: 'schedule', dryRun: false },
      { clock: () => now, runId: 'r1', logger, config: { deployment: 'prod' } },
      (startedAt) => ({ schedule: 'daily', slot: startedAt.toISOString().slice(0, 16) }),
    );

    // Assess
    expect(run.startedAt).toBe(now);
    expect(Object.entries(run.base)).toEqual([
      ['runId', 'r1'],
      ['job', 'backup'],
      ['deployment', 'prod'],
      ['schedule', 'daily'],
      ['slot', '2026-11-23T03:00'],
      ['trigger', 'schedule'],
      ['dryRun', false],
      ['startedAt', '2026-11-23T03:00:05.000Z'],
    ]);
    expect(logger.lines).toEqual([
      { level: 'info', message: 'backup run started', data: run.base },
    ]);
  });

  it('reads the clock once', () => {
    // Prepare
    let reads = 0;
    const clock = () => {
      reads += 1;
      return new Date('2026-11-23T03:00:00Z');
    };

    // Act
    openRun(
      'retention',
      'retention run',
      { trigger: 'console', dryRun: true },
      {
        clock,
        runId: 'r2',
        logger: recordingLogger(),
        config: { deployment: 'prod' },
      },
      () => ({ schedule: 'daily' }),
    );

    // Assess
    expect(reads).toBe(1);
  });

  it('uses the given metrics and journal, else silent metrics and a journal that logs', async () => {
    // Prepare
    const logger = recordingLogger();
    const entry: ActionRecord = {
      runId: 'r3',
      job: 'backup',
      action: 'create-snapshot',
      resourceId: 'snap-1',
      phase: 'after',
      outcome: 'done',
    } as ActionRecord;
    const deps = { clock: () => new Date(0), runId: 'r3', logger, config: { deployment: 'prod' } };

    // Act
    const run = openRun(
      'backup',
      'backup run',
      { trigger: 'schedule', dryRun: false },
      deps,
      () => ({}),
    );
    run.metrics.count('Anything', 1);
    await run.journal.record(entry);

    // Assess
    expect(logger.lines.at(-1)).toEqual({
      level: 'info',
      message: 'create-snapshot after',
      data: entry,
    });
  });
});
