import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { lambdaContext } from '../../../harness/lambdaContext.ts';
import { InvalidEventError } from '../../../lib/domain/errors.ts';
import { RunFailedError } from '../../../lib/jobs/errors.ts';
import { parseCopyEvent, parseScheduledEvent } from '../../../lib/jobs/events.ts';
import type { RunReportLike } from '../../../lib/jobs/slotRun.ts';
import { createLambdaRuntime } from '../../../lib/runtime/lambdaRuntime.ts';
import {
  type JobRun,
  jobHandler,
  scheduledJobHandler,
} from '../../../lib/runtime/scheduledHandler.ts';

// No HISTORY_TABLE: the history refuses every call, so a run that does not require it
// goes on without a record (no AWS call is made by these tests).
const ENV = {
  AWS_REGION: 'us-east-1',
  DEPLOYMENT: 'unit',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
  POWERTOOLS_TRACE_ENABLED: 'false',
};

/** A finished run's report, as a job returns it. */
function report(run: JobRun, status: RunReportLike['status'] = 'succeeded'): RunReportLike {
  const at = new Date().toISOString();
  return {
    runId: run.runId,
    job: 'backup',
    status,
    startedAt: at,
    endedAt: at,
    dryRun: run.dryRun,
  };
}

describe('Function: scheduledJobHandler', () => {
  beforeEach(() => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it.each([
    [false, 'false', false],
    [true, 'false', true],
    [false, 'true', true],
    [true, 'true', true],
  ])(
    'plans only when the event asks (%s) or DRY_RUN is set (%s): %s',
    async (asked, variable, dry) => {
      // Prepare
      const runtime = createLambdaRuntime('backup', { ...ENV, DRY_RUN: variable });
      const seen: { delivery?: boolean; run?: boolean } = {};
      const handler = scheduledJobHandler(runtime, parseScheduledEvent, (delivery) => {
        seen.delivery = delivery.dryRun;
        return delivery.runOnce({ job: 'backup', historyRequired: false }, async (run) => {
          seen.run = run.dryRun;
          return report(run);
        });
      });

      // Act
      await handler({ schedule: 'daily', dryRun: asked }, lambdaContext());

      // Assess
      expect(seen).toEqual({ delivery: dry, run: dry });
    },
  );

  it('resolves the schedule the event names, once, and the slot its scheduled time serves', async () => {
    // Prepare
    const runtime = createLambdaRuntime('backup', ENV);
    const today = Math.floor(Date.now() / 86_400_000) * 86_400_000 + 3 * 3_600_000;
    const fire = new Date(today > Date.now() ? today - 86_400_000 : today);
    let served: { name: string; schedule: string; slot: string } | undefined;
    const handler = scheduledJobHandler(runtime, parseScheduledEvent, async (delivery) => {
      served = { name: delivery.schedule.name, ...delivery.slot('backup') };
      return 'answered';
    });

    // Act
    const answered = await handler(
      { schedule: 'Daily', scheduledTime: fire.toISOString() },
      lambdaContext(),
    );

    // Assess
    expect(answered).toBe('answered');
    expect(served).toEqual({
      name: 'daily',
      schedule: 'daily',
      slot: fire.toISOString().replace('.000Z', 'Z'),
    });
  });

  it('rejects an event it cannot parse, naming the field, and runs nothing', async () => {
    // Prepare
    const runtime = createLambdaRuntime('backup', ENV);
    const declaration = vi.fn(async () => 'ran');
    const handler = scheduledJobHandler(runtime, parseScheduledEvent, declaration);

    // Act
    const answered = handler({ schedule: 42 }, lambdaContext());

    // Assess
    await expect(answered).rejects.toThrow(InvalidEventError);
    await expect(answered).rejects.toThrow('schedule');
    expect(declaration).not.toHaveBeenCalled();
  });

  it("hands the job the run's context, its deadline and the runtime's dependencies", async () => {
    // Prepare
    const runtime = createLambdaRuntime('backup', ENV);
    let seen: JobRun | undefined;
    const handler = scheduledJobHandler(runtime, parseScheduledEvent, (delivery) =>
      delivery.runOnce({ job: 'backup', historyRequired: false }, async (run) => {
        seen = run;
        return report(run);
      }),
    );

    // Act
    const answered = (await handler({ schedule: 'daily' }, lambdaContext('f', 60_000))) as {
      runId: string;
    };

    // Assess
    expect(seen).toMatchObject({
      trigger: 'schedule',
      resuming: false,
      historyUnavailable: true,
      safetyMarginMs: runtime.config.safetyMarginMs,
    });
    expect(seen?.remainingMs()).toBeGreaterThan(50_000);
    expect(seen?.remainingMs()).toBeLessThanOrEqual(60_000);
    const dependencies = seen?.dependencies;
    expect(dependencies?.config).toBe(runtime.config);
    expect(dependencies?.runId).toBe(answered.runId);
    expect(dependencies?.journal).toBe(runtime.journal);
    expect(dependencies?.ledger).toBe(runtime.history);
    expect(dependencies?.metrics).toBe(runtime.metricsPort);
  });

  it('throws for a failed run, so that Lambda counts the error and retries', async () => {
    // Prepare
    const runtime = createLambdaRuntime('backup', ENV);
    const handler = scheduledJobHandler(runtime, parseScheduledEvent, (delivery) =>
      delivery.runOnce({ job: 'backup', historyRequired: false }, async (run) =>
        report(run, 'failed'),
      ),
    );

    // Act & Assess
    await expect(handler({ schedule: 'daily' }, lambdaContext())).rejects.toThrow(RunFailedError);
  });

  it('fails the run of a job that requires the history when none can be written', async () => {
    // Prepare
    const runtime = createLambdaRuntime('retention', ENV);
    const work = vi.fn(async (run: JobRun) => report(run));
    const handler = scheduledJobHandler(runtime, parseScheduledEvent, (delivery) =>
      delivery.runOnce({ job: 'retention', historyRequired: true }, work),
    );

    // Act & Assess
    await expect(handler({ schedule: 'daily' }, lambdaContext())).rejects.toThrow('HISTORY_TABLE');
    expect(work).not.toHaveBeenCalled();
  });
});

describe('Function: jobHandler', () => {
  beforeEach(() => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('lets a declaration answer an event that needs nothing without starting a run', async () => {
    // Prepare
    const runtime = createLambdaRuntime('copy', ENV);
    const newRunId = vi.spyOn(runtime, 'newRunId');
    const handler = jobHandler(runtime, parseCopyEvent, async (delivery) =>
      delivery.invocation.ignore ? { status: 'ignored' } : 'ran',
    );

    // Act
    const answered = await handler(
      {
        source: 'aws.ec2',
        'detail-type': 'EBS Snapshot Notification',
        detail: {
          event: 'createSnapshot',
          result: 'failed',
          snapshot_id: 'arn:aws:ec2::snapshot/snap-1',
        },
      },
      lambdaContext(),
    );

    // Assess
    expect(answered).toEqual({ status: 'ignored' });
    expect(newRunId).not.toHaveBeenCalled();
  });
});
