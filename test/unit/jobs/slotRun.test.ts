import { afterEach, describe, expect, it, vi } from 'vitest';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import type { QueryOptions, RunRecord, SlotClaim } from '../../../lib/aws/RunHistoryGateway.ts';
import type { RunRecordStatus, SlotKey } from '../../../lib/domain/runHistory.ts';
import {
  RunFailedError,
  RunIncompleteError,
  SlotInProgressError,
} from '../../../lib/jobs/errors.ts';
import type { LoggerPort } from '../../../lib/jobs/ports.ts';
import { silentLogger } from '../../../lib/jobs/runReport.ts';
import {
  type RunContext,
  type RunOnceDependencies,
  type RunParams,
  type RunReportLike,
  runOnce,
  type SlotOutcome,
} from '../../../lib/jobs/slotRun.ts';
import { answer } from '../../../lib/runtime/invocation.ts';
import { RecordingEvents } from '../../support/recordingEvents.ts';

const DEPLOYMENT = 'prod';
const SLOT = '2026-11-23T03:00:00Z';
const SLOT_KEY: SlotKey = { job: 'backup', schedule: 'daily', slot: SLOT };
/** Seven seconds after the daily schedule fired. */
const NOW = '2026-11-23T03:00:07.000Z';
const TIMEOUT_MS = 900_000;
const MARGIN_MS = 120_000;
const DEAD_LEASE_AGE_MS = TIMEOUT_MS + MARGIN_MS + 1_000;

type HistoryPort = RunOnceDependencies['history'];
type FinishResult = Parameters<HistoryPort['finishRun']>[1];
type StoredRun = RunRecord & { readonly resumedFrom?: string | undefined };
type StoredClaim = SlotClaim & { readonly previousRunId?: string | undefined };

/** Lets other pending work (a concurrent delivery) run between two table calls. */
const yieldTurn = (): Promise<void> => Promise.resolve();

function slotId(slot: SlotKey): string {
  return `${slot.job}#${slot.schedule}#${slot.slot}`;
}

function ago(ms: number, from = NOW): string {
  return new Date(Date.parse(from) - ms).toISOString();
}

/**
 * A hand-rolled run history with the table's conditional semantics: a claim is a
 * put-if-absent, a takeover a compare-and-set on the holder, and a run is marked
 * abandoned only while still running with the lease seen. Every call is logged in order.
 */
class FakeHistory implements HistoryPort {
  public readonly runs = new Map<string, StoredRun>();
  public readonly claims = new Map<string, StoredClaim>();
  /** The run items as written at start. */
  public readonly started: StoredRun[] = [];
  public readonly finished: { runId: string; result: FinishResult }[] = [];
  public readonly renewals: { runId: string; at: string }[] = [];
  public readonly calls: string[] = [];
  public readonly runsOfJobQueries: { deployment: string; job: string }[] = [];
  public claimError: unknown;
  public startError: unknown;
  public renewError: unknown;
  public runsOfJobError: unknown;

  public seedRun(run: Partial<StoredRun> & Pick<StoredRun, 'runId' | 'status'>): void {
    this.runs.set(run.runId, {
      deployment: DEPLOYMENT,
      job: 'backup',
      trigger: 'schedule',
      schedule: 'daily',
      slot: SLOT,
      dryRun: false,
      startedAt: ago(60_000),
      ...run,
    });
  }

  public seedClaim(slot: SlotKey, runId: string, claimedAt = ago(60_000)): void {
    this.claims.set(slotId(slot), { runId, claimedAt });
  }

  public holderOf(slot: SlotKey): StoredClaim | undefined {
    return this.claims.get(slotId(slot));
  }

  public run(runId: string): StoredRun {
    const run = this.runs.get(runId);
    if (!run) throw new Error(`no run ${runId} in the fake history`);
    return run;
  }

  /** What another invocation does when it finishes its run. */
  public complete(runId: string, status: RunRecordStatus, report: unknown): void {
    this.runs.set(runId, {
      ...this.run(runId),
      status,
      endedAt: NOW,
      report: JSON.stringify(report),
    });
  }

  public async claimSlot(
    slot: SlotKey,
    runId: string,
    now: Date,
    options: { readonly lapsedBefore?: Date | undefined } = {},
  ): Promise<{ claimed: true } | { claimed: false; holder: SlotClaim }> {
    this.calls.push(`claimSlot ${runId}`);
    await yieldTurn();
    if (this.claimError !== undefined) throw this.claimError;
    const holder = this.claims.get(slotId(slot));
    const lapsed =
      holder !== undefined &&
      options.lapsedBefore !== undefined &&
      holder.claimedAt < options.lapsedBefore.toISOString();
    if (holder && !lapsed)
      return { claimed: false, holder: { runId: holder.runId, claimedAt: holder.claimedAt } };
    this.claims.set(slotId(slot), { runId, claimedAt: now.toISOString() });
    return { claimed: true };
  }

  public async takeOverSlot(
    slot: SlotKey,
    fromRunId: string,
    toRunId: string,
    now: Date,
  ): Promise<boolean> {
    this.calls.push(`takeOverSlot ${fromRunId}->${toRunId}`);
    await yieldTurn();
    const holder = this.claims.get(slotId(slot));
    if (!holder || holder.runId !== fromRunId) return false;
    this.claims.set(slotId(slot), {
      runId: toRunId,
      claimedAt: now.toISOString(),
      previousRunId: fromRunId,
    });
    return true;
  }

  public async startRun(run: RunRecord): Promise<void> {
    this.calls.push(`startRun ${run.runId}`);
    await yieldTurn();
    if (this.startError !== undefined) throw this.startError;
    if (this.runs.has(run.runId)) throw new Error(`run ${run.runId} exists`);
    const item: StoredRun = { ...run, leaseRenewedAt: run.leaseRenewedAt ?? run.startedAt };
    this.started.push(item);
    this.runs.set(run.runId, item);
  }

  public async renewLease(runId: string, now: Date): Promise<void> {
    this.calls.push(`renewLease ${runId}`);
    if (this.renewError !== undefined) throw this.renewError;
    this.renewals.push({ runId, at: now.toISOString() });
    const run = this.runs.get(runId);
    if (run?.status === 'running')
      this.runs.set(runId, { ...run, leaseRenewedAt: now.toISOString() });
  }

  public async recordDispatch(
    runId: string,
    result: { counts: Readonly<Record<string, number>>; report: unknown; now: Date },
  ): Promise<void> {
    this.calls.push(`recordDispatch ${runId}`);
    await yieldTurn();
    this.runs.set(runId, {
      ...this.run(runId),
      counts: result.counts,
      leaseRenewedAt: result.now.toISOString(),
      report: JSON.stringify(result.report),
    });
  }

  public async finishRun(runId: string, result: FinishResult): Promise<void> {
    this.calls.push(`finishRun ${runId} ${result.status}`);
    await yieldTurn();
    this.finished.push({ runId, result });
    const run = this.run(runId);
    this.runs.set(runId, {
      ...run,
      status: result.status,
      endedAt: result.endedAt,
      ...(result.counts ? { counts: result.counts } : {}),
      ...(result.errorSummary ? { errorSummary: result.errorSummary } : {}),
      ...(result.remaining ? { remaining: result.remaining } : {}),
      ...(result.report !== undefined ? { report: JSON.stringify(result.report) } : {}),
    });
  }

  public async getRun(runId: string): Promise<RunRecord | undefined> {
    this.calls.push(`getRun ${runId}`);
    await yieldTurn();
    return this.runs.get(runId);
  }

  public async markAbandoned(
    runId: string,
    leaseRenewedAt: string,
    now: Date,
    byRunId: string,
  ): Promise<boolean> {
    this.calls.push(`markAbandoned ${runId}`);
    await yieldTurn();
    const run = this.runs.get(runId);
    if (run?.status !== 'running' || run.leaseRenewedAt !== leaseRenewedAt) return false;
    this.runs.set(runId, {
      ...run,
      status: 'abandoned',
      endedAt: now.toISOString(),
      errorSummary: `abandoned: lease last renewed ${leaseRenewedAt}; marked by run ${byRunId}`,
    });
    return true;
  }

  public async runsOfJob(
    deployment: string,
    job: string,
    _options: QueryOptions = {},
  ): Promise<RunRecord[]> {
    this.calls.push(`runsOfJob ${job}`);
    this.runsOfJobQueries.push({ deployment, job });
    await yieldTurn();
    if (this.runsOfJobError !== undefined) throw this.runsOfJobError;
    return [...this.runs.values()]
      .filter((r) => r.deployment === deployment && r.job === job)
      .sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  }
}

class FakeClock {
  #now: number;

  public constructor(iso: string) {
    this.#now = Date.parse(iso);
  }

  public readonly now = (): Date => new Date(this.#now);

  public advance(ms: number): void {
    this.#now += ms;
  }
}

interface TestReport extends RunReportLike {
  readonly instances: readonly string[];
}

function reportOf(context: RunContext, overrides: Partial<TestReport> = {}): TestReport {
  return {
    runId: context.runId,
    job: 'backup',
    status: 'succeeded',
    startedAt: NOW,
    endedAt: '2026-11-23T03:00:31.000Z',
    dryRun: false,
    counts: { due: 2, backedUp: 2, snapshots: 3 },
    instances: ['i-1', 'i-2'],
    ...overrides,
  };
}

function params(overrides: Partial<RunParams> = {}): RunParams {
  return {
    job: 'backup',
    runId: 'run-new',
    trigger: 'schedule',
    dryRun: false,
    schedule: 'daily',
    slot: SLOT,
    ...overrides,
  };
}

interface Harness {
  readonly history: FakeHistory;
  readonly events: RecordingEvents;
  readonly clock: FakeClock;
  /** Every sleep asked for, in ms. */
  readonly sleeps: number[];
  readonly deps: RunOnceDependencies;
}

function harness(
  options: {
    history?: FakeHistory;
    historyRequired?: boolean;
    duplicateWaitMs?: number;
    leaseRenewMs?: number;
    logger?: LoggerPort;
    /** Runs on every sleep, after the clock advanced: what the world does meanwhile. */
    onSleep?: (count: number) => void;
  } = {},
): Harness {
  const history = options.history ?? new FakeHistory();
  const events = new RecordingEvents();
  const clock = new FakeClock(NOW);
  const sleeps: number[] = [];
  const deps: RunOnceDependencies = {
    history,
    events,
    deployment: DEPLOYMENT,
    clock: clock.now,
    logger: options.logger ?? silentLogger,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock.advance(ms);
      options.onSleep?.(sleeps.length);
      await yieldTurn();
    },
    functionTimeoutMs: TIMEOUT_MS,
    abandonMarginMs: MARGIN_MS,
    duplicateWaitMs: options.duplicateWaitMs ?? 5_000,
    leaseRenewMs: options.leaseRenewMs ?? 60_000,
    historyRequired: options.historyRequired ?? false,
  };
  return { history, events, clock, sleeps, deps };
}

/** A job body that records the contexts it was called with and reports success. */
function recordingWork(overrides: Partial<TestReport> = {}) {
  const contexts: RunContext[] = [];
  const work = vi.fn(async (context: RunContext): Promise<TestReport> => {
    contexts.push(context);
    return reportOf(context, overrides);
  });
  return { work, contexts };
}

function ran<R>(outcome: SlotOutcome<R>): R {
  if (outcome.kind !== 'ran') throw new Error(`expected a run, got ${outcome.kind}`);
  return outcome.report;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('Function: runOnce', () => {
  describe('given work handed to fan-out workers (status running)', () => {
    it('keeps the run running with its counts, finishes nothing and announces nothing', async () => {
      // Prepare
      const { history, events, deps } = harness();
      const { work } = recordingWork({ status: 'running', counts: { batches: 3 } });

      // Act
      const outcome = await runOnce(params(), deps, work);

      // Assess
      expect(ran(outcome).status).toBe('running');
      expect(history.finished).toEqual([]);
      expect(history.calls).toContain('recordDispatch run-new');
      expect(history.run('run-new')).toMatchObject({ status: 'running', counts: { batches: 3 } });
      expect(events.published).toEqual([]);
    });

    it('answers a second delivery of the slot with the dispatch report while the workers run', async () => {
      // Prepare
      const { deps, sleeps } = harness();
      await runOnce(params(), deps, recordingWork({ status: 'running' }).work);
      const second = recordingWork();

      // Act
      const outcome = await runOnce(params({ runId: 'run-second' }), deps, second.work);

      // Assess: the slot's work is with the workers; nothing to wait for, nothing to fail
      expect(outcome).toMatchObject({
        kind: 'duplicate',
        heldBy: 'run-new',
        report: { runId: 'run-new', status: 'running' },
      });
      expect(second.work).not.toHaveBeenCalled();
      expect(sleeps).toEqual([]);
    });

    it('never takes over a dispatched run whose lease stood still for minutes, within the timeout plus margin', async () => {
      // Prepare: workers renew the lease only when they claim or finish a batch
      const history = new FakeHistory();
      const lease = ago(TIMEOUT_MS + MARGIN_MS - 1_000);
      history.seedRun({
        runId: 'run-first',
        status: 'running',
        leaseRenewedAt: lease,
        report: JSON.stringify({ runId: 'run-first', status: 'running' }),
      });
      history.seedClaim(SLOT_KEY, 'run-first');
      const { deps } = harness({ history });
      const { work } = recordingWork();

      // Act
      const outcome = await runOnce(params(), deps, work);

      // Assess
      expect(outcome).toMatchObject({ kind: 'duplicate', heldBy: 'run-first' });
      expect(work).not.toHaveBeenCalled();
      expect(history.run('run-first')).toMatchObject({ status: 'running', leaseRenewedAt: lease });
      expect(history.holderOf(SLOT_KEY)?.runId).toBe('run-first');
    });
  });

  describe('given a slot nobody claimed', () => {
    it('claims the slot, runs the work once as a scheduled run, and returns its report', async () => {
      // Prepare
      const { history, deps } = harness();
      const { work, contexts } = recordingWork();

      // Act
      const outcome = await runOnce(params(), deps, work);

      // Assess
      expect(work).toHaveBeenCalledTimes(1);
      expect(contexts[0]).toEqual({
        runId: 'run-new',
        trigger: 'schedule',
        resuming: false,
        previousRunId: undefined,
        historyUnavailable: false,
      });
      expect(outcome).toEqual({
        kind: 'ran',
        report: reportOf({ runId: 'run-new' } as RunContext),
      });
      expect(history.holderOf(SLOT_KEY)).toEqual({ runId: 'run-new', claimedAt: NOW });
    });

    it('writes the run item as running before the work starts, with its lease', async () => {
      // Prepare
      const { history, deps } = harness();
      let statusDuringWork: string | undefined;

      // Act
      await runOnce(params({ requestedBy: 'ops@example.com' }), deps, async (context) => {
        statusDuringWork = history.run(context.runId).status;
        return reportOf(context);
      });

      // Assess
      expect(statusDuringWork).toBe('running');
      expect(history.started).toEqual([
        {
          runId: 'run-new',
          deployment: DEPLOYMENT,
          job: 'backup',
          trigger: 'schedule',
          schedule: 'daily',
          slot: SLOT,
          requestedBy: 'ops@example.com',
          dryRun: false,
          startedAt: NOW,
          status: 'running',
          leaseRenewedAt: NOW,
        },
      ]);
      expect(history.calls.indexOf('claimSlot run-new')).toBeLessThan(
        history.calls.indexOf('startRun run-new'),
      );
    });

    it('writes the final status, counts, error summary and report at the end', async () => {
      // Prepare
      const { history, deps } = harness();
      const { work } = recordingWork({
        status: 'partial',
        counts: { due: 2, backedUp: 1, failed: 1, snapshots: 2 },
        error: { code: 'InvalidTag', message: 'snapkeeper:backup="dialy" is not a known schedule' },
      });

      // Act
      const report = ran(await runOnce(params(), deps, work));

      // Assess
      expect(history.finished).toHaveLength(1);
      const stored = history.run('run-new');
      expect(stored).toMatchObject({
        status: 'partial',
        endedAt: '2026-11-23T03:00:31.000Z',
        counts: { due: 2, backedUp: 1, failed: 1, snapshots: 2 },
        errorSummary: 'InvalidTag: snapkeeper:backup="dialy" is not a known schedule',
      });
      expect(JSON.parse(stored.report ?? 'null')).toEqual(report);
    });

    it('records what is left of an incomplete run', async () => {
      // Prepare
      const { history, events, deps } = harness();
      const { work } = recordingWork({ status: 'incomplete', remaining: ['i-2', 'i-3'] });

      // Act
      await runOnce(params(), deps, work);

      // Assess
      expect(history.run('run-new')).toMatchObject({
        status: 'incomplete',
        remaining: ['i-2', 'i-3'],
      });
      expect(events.published.map((e) => e.status)).toEqual(['incomplete']);
    });

    it('publishes one run-finished event with the source-agnostic summary, not the job’s report', async () => {
      // Prepare
      const { events, deps } = harness();
      const { work } = recordingWork({ status: 'partial', counts: { due: 2, backedUp: 1 } });

      // Act
      await runOnce(params(), deps, work);

      // Assess
      expect(events.published).toHaveLength(1);
      expect(events.published[0]).toEqual({
        runId: 'run-new',
        deployment: DEPLOYMENT,
        job: 'backup',
        trigger: 'schedule',
        schedule: 'daily',
        slot: SLOT,
        dryRun: false,
        status: 'partial',
        startedAt: NOW,
        endedAt: '2026-11-23T03:00:31.000Z',
        counts: { due: 2, backedUp: 1 },
      });
      expect(events.published[0]).not.toHaveProperty('instances');
    });
  });

  describe('given a duplicate delivery of a finished slot', () => {
    it.each(['succeeded', 'partial'] as const)(
      'does not call the work and returns the first report (first run %s)',
      async (status) => {
        // Prepare
        const history = new FakeHistory();
        const first = { runId: 'run-first', status, instances: ['i-1'], counts: { due: 1 } };
        history.seedRun({ runId: 'run-first', status, report: JSON.stringify(first) });
        history.seedClaim(SLOT_KEY, 'run-first');
        const { events, deps } = harness({ history });
        const { work } = recordingWork();

        // Act
        const outcome = await runOnce(params(), deps, work);

        // Assess
        expect(work).not.toHaveBeenCalled();
        expect(outcome).toEqual({ kind: 'duplicate', heldBy: 'run-first', report: first });
        expect(history.runs.has('run-new')).toBe(false);
        expect(history.holderOf(SLOT_KEY)?.runId).toBe('run-first');
        expect(events.published).toEqual([]);
      },
    );
  });

  describe('given a duplicate delivery while the first is still running', () => {
    it('waits, and returns the first report once the first run finishes', async () => {
      // Prepare
      const history = new FakeHistory();
      history.seedRun({ runId: 'run-first', status: 'running', leaseRenewedAt: ago(5_000) });
      history.seedClaim(SLOT_KEY, 'run-first');
      const first = { runId: 'run-first', status: 'succeeded', instances: ['i-1', 'i-2'] };
      const { sleeps, deps } = harness({
        history,
        onSleep: (count) => {
          if (count === 2) history.complete('run-first', 'succeeded', first);
        },
      });
      const { work } = recordingWork();

      // Act
      const outcome = await runOnce(params(), deps, work);

      // Assess
      expect(work).not.toHaveBeenCalled();
      expect(sleeps).toHaveLength(2);
      expect(outcome).toEqual({ kind: 'duplicate', heldBy: 'run-first', report: first });
      expect(history.runs.has('run-new')).toBe(false);
    });

    it('says which run holds the slot once duplicateWaitMs has passed, and does nothing', async () => {
      // Prepare
      const history = new FakeHistory();
      history.seedRun({ runId: 'run-first', status: 'running', leaseRenewedAt: ago(5_000) });
      history.seedClaim(SLOT_KEY, 'run-first');
      const { events, sleeps, clock, deps } = harness({ history, duplicateWaitMs: 3_000 });
      const { work } = recordingWork();

      // Act
      const outcome = await runOnce(params(), deps, work);

      // Assess
      expect(work).not.toHaveBeenCalled();
      expect(outcome.kind).toBe('in-progress');
      if (outcome.kind !== 'in-progress') return;
      expect(outcome.heldBy).toBe('run-first');
      expect(outcome.message).toContain('run-first');
      expect(outcome.message).toContain(SLOT);
      expect(sleeps.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3_000);
      expect(clock.now().getTime() - Date.parse(NOW)).toBeLessThanOrEqual(3_000 + 1_000);
      expect(history.run('run-first').status).toBe('running');
      expect(history.holderOf(SLOT_KEY)?.runId).toBe('run-first');
      expect(history.runs.has('run-new')).toBe(false);
      expect(events.published).toEqual([]);
    });

    it('waits for a holder that claimed the slot moments ago and has not written its run yet', async () => {
      // Prepare
      const history = new FakeHistory();
      history.seedClaim(SLOT_KEY, 'run-first', ago(1_000));
      const { deps } = harness({ history, duplicateWaitMs: 2_000 });
      const { work } = recordingWork();

      // Act
      const outcome = await runOnce(params(), deps, work);

      // Assess
      expect(work).not.toHaveBeenCalled();
      expect(outcome).toMatchObject({ kind: 'in-progress', heldBy: 'run-first' });
      expect(history.holderOf(SLOT_KEY)?.runId).toBe('run-first');
    });

    it('keeps waiting for a holder whose lease is within three renewal periods plus the clock allowance', async () => {
      // Prepare: renewals every 60 s; dead after 3 x 60 s + 10 s; 2 s of waiting
      const history = new FakeHistory();
      const lease = ago(3 * 60_000 + 10_000 - 5_000);
      history.seedRun({ runId: 'run-first', status: 'running', leaseRenewedAt: lease });
      history.seedClaim(SLOT_KEY, 'run-first');
      const { deps } = harness({ history, duplicateWaitMs: 2_000 });
      const { work } = recordingWork();

      // Act
      const outcome = await runOnce(params(), deps, work);

      // Assess
      expect(work).not.toHaveBeenCalled();
      expect(outcome).toMatchObject({ kind: 'in-progress', heldBy: 'run-first' });
      expect(history.run('run-first')).toMatchObject({ status: 'running', leaseRenewedAt: lease });
    });
  });

  describe('given a slot held by a run that did not finish it', () => {
    it.each(['failed', 'incomplete', 'abandoned'] as const)(
      'takes over a slot held by a %s run and resumes as a retry',
      async (status) => {
        // Prepare
        const history = new FakeHistory();
        history.seedRun({ runId: 'run-old', status, remaining: ['i-2'] });
        history.seedClaim(SLOT_KEY, 'run-old');
        const { events, deps } = harness({ history });
        const { work, contexts } = recordingWork();

        // Act
        const outcome = await runOnce(params(), deps, work);

        // Assess
        expect(outcome.kind).toBe('ran');
        expect(contexts).toEqual([
          {
            runId: 'run-new',
            trigger: 'retry',
            resuming: true,
            previousRunId: 'run-old',
            historyUnavailable: false,
          },
        ]);
        expect(history.holderOf(SLOT_KEY)).toEqual({
          runId: 'run-new',
          claimedAt: NOW,
          previousRunId: 'run-old',
        });
        expect(history.started[0]).toMatchObject({ trigger: 'retry', resumedFrom: 'run-old' });
        expect(events.published[0]).toMatchObject({ trigger: 'retry', resumedFrom: 'run-old' });
        expect(history.run('run-old').status).toBe(status);
      },
    );

    it('marks a running holder whose lease is older than timeout plus margin abandoned, then takes over', async () => {
      // Prepare
      const history = new FakeHistory();
      const lease = ago(DEAD_LEASE_AGE_MS);
      history.seedRun({ runId: 'run-dead', status: 'running', leaseRenewedAt: lease });
      history.seedClaim(SLOT_KEY, 'run-dead');
      const { deps } = harness({ history });
      const { work, contexts } = recordingWork();

      // Act
      await runOnce(params(), deps, work);

      // Assess
      expect(history.run('run-dead')).toMatchObject({
        status: 'abandoned',
        endedAt: NOW,
        errorSummary: `abandoned: lease last renewed ${lease}; marked by run run-new`,
      });
      expect(contexts[0]).toMatchObject({
        resuming: true,
        previousRunId: 'run-dead',
        trigger: 'retry',
      });
      const marked = history.calls.indexOf('markAbandoned run-dead');
      expect(marked).toBeGreaterThanOrEqual(0);
      expect(marked).toBeLessThan(history.calls.indexOf('takeOverSlot run-dead->run-new'));
      expect(history.holderOf(SLOT_KEY)?.runId).toBe('run-new');
    });

    it('takes over a crashed holder whose lease missed three renewals (plus the clock allowance) and resumes', async () => {
      // Prepare: renewals every 60 s, so dead after 190 s: far sooner than timeout plus margin
      const history = new FakeHistory();
      const lease = ago(3 * 60_000 + 10_000 + 1_000);
      history.seedRun({ runId: 'run-crashed', status: 'running', leaseRenewedAt: lease });
      history.seedClaim(SLOT_KEY, 'run-crashed');
      const { deps, sleeps } = harness({ history });
      const { work, contexts } = recordingWork();

      // Act
      const outcome = await runOnce(params(), deps, work);

      // Assess
      expect(ran(outcome).status).toBe('succeeded');
      expect(sleeps).toEqual([]);
      expect(history.run('run-crashed')).toMatchObject({
        status: 'abandoned',
        errorSummary: `abandoned: lease last renewed ${lease}; marked by run run-new`,
      });
      expect(contexts[0]).toMatchObject({
        resuming: true,
        previousRunId: 'run-crashed',
        trigger: 'retry',
      });
      expect(history.holderOf(SLOT_KEY)).toMatchObject({
        runId: 'run-new',
        previousRunId: 'run-crashed',
      });
    });

    it('takes over a holder that dies while a duplicate waits for it', async () => {
      // Prepare: the lease is fresh enough at first and goes stale during the wait
      const history = new FakeHistory();
      const lease = ago(3 * 60_000 + 10_000 - 1_500);
      history.seedRun({ runId: 'run-first', status: 'running', leaseRenewedAt: lease });
      history.seedClaim(SLOT_KEY, 'run-first');
      const { deps } = harness({ history, duplicateWaitMs: 5_000 });
      const { work, contexts } = recordingWork();

      // Act
      const outcome = await runOnce(params(), deps, work);

      // Assess
      expect(outcome.kind).toBe('ran');
      expect(contexts[0]).toMatchObject({ resuming: true, previousRunId: 'run-first' });
      expect(history.run('run-first').status).toBe('abandoned');
    });

    it('judges a lease stale by the renewal period it is given', async () => {
      // Prepare: renewals every 30 s (the default): dead after 100 s
      const history = new FakeHistory();
      history.seedRun({ runId: 'run-a', status: 'running', leaseRenewedAt: ago(95_000) });
      history.seedClaim(SLOT_KEY, 'run-a');
      const { deps, clock } = harness({ history, leaseRenewMs: 30_000, duplicateWaitMs: 0 });

      // Act
      const early = await runOnce(params(), deps, recordingWork().work);
      clock.advance(10_000);
      const late = await runOnce(params({ runId: 'run-later' }), deps, recordingWork().work);

      // Assess
      expect(early).toMatchObject({ kind: 'in-progress', heldBy: 'run-a' });
      expect(late.kind).toBe('ran');
      expect(history.holderOf(SLOT_KEY)?.runId).toBe('run-later');
    });

    it('still marks and takes over a dead holder when the runs of the job cannot be listed', async () => {
      // Prepare
      const history = new FakeHistory();
      const lease = ago(DEAD_LEASE_AGE_MS);
      history.seedRun({ runId: 'run-dead', status: 'running', leaseRenewedAt: lease });
      history.seedClaim(SLOT_KEY, 'run-dead');
      history.runsOfJobError = Object.assign(new Error('Rate exceeded'), {
        name: 'ThrottlingException',
      });
      const { deps } = harness({ history });
      const { work, contexts } = recordingWork();

      // Act
      const outcome = await runOnce(params(), deps, work);

      // Assess
      expect(outcome.kind).toBe('ran');
      expect(history.run('run-dead').status).toBe('abandoned');
      expect(contexts[0]).toMatchObject({ resuming: true, previousRunId: 'run-dead' });
    });

    it('takes over a claim whose run was never written once the claim is older than timeout plus margin', async () => {
      // Prepare
      const history = new FakeHistory();
      history.seedClaim(SLOT_KEY, 'run-ghost', ago(DEAD_LEASE_AGE_MS));
      const { deps } = harness({ history });
      const { work, contexts } = recordingWork();

      // Act
      await runOnce(params(), deps, work);

      // Assess
      expect(contexts[0]).toMatchObject({
        resuming: true,
        previousRunId: 'run-ghost',
        trigger: 'retry',
      });
      expect(history.holderOf(SLOT_KEY)?.runId).toBe('run-new');
    });

    it('lets only one of two deliveries racing for a failed slot take it over; the other gets its report', async () => {
      // Prepare
      const history = new FakeHistory();
      history.seedRun({ runId: 'run-old', status: 'failed' });
      history.seedClaim(SLOT_KEY, 'run-old');
      const { deps } = harness({ history, duplicateWaitMs: 30_000 });
      const { work } = recordingWork();

      // Act
      const outcomes = await Promise.all([
        runOnce(params({ runId: 'run-a' }), deps, work),
        runOnce(params({ runId: 'run-b' }), deps, work),
      ]);

      // Assess
      expect(work).toHaveBeenCalledTimes(1);
      const winner = outcomes.find((o) => o.kind === 'ran');
      const loser = outcomes.find((o) => o.kind !== 'ran');
      expect(winner).toBeDefined();
      expect(loser?.kind).toBe('duplicate');
      const winnerReport = winner?.kind === 'ran' ? winner.report : undefined;
      expect(loser).toEqual({
        kind: 'duplicate',
        heldBy: winnerReport?.runId,
        report: winnerReport,
      });
      expect(history.holderOf(SLOT_KEY)).toMatchObject({
        runId: winnerReport?.runId,
        previousRunId: 'run-old',
      });
    });

    it('is taken over by the next delivery after its work threw', async () => {
      // Prepare
      const { history, deps } = harness();
      await expect(
        runOnce(params({ runId: 'run-1' }), deps, async () => {
          throw new Error('instance store exploded');
        }),
      ).rejects.toThrow('instance store exploded');
      const { work, contexts } = recordingWork();

      // Act
      const outcome = await runOnce(params({ runId: 'run-2' }), deps, work);

      // Assess
      expect(outcome.kind).toBe('ran');
      expect(contexts[0]).toMatchObject({
        resuming: true,
        previousRunId: 'run-1',
        trigger: 'retry',
      });
      expect(history.holderOf(SLOT_KEY)?.runId).toBe('run-2');
    });
  });

  describe('given dead runs of the job elsewhere in the history', () => {
    it('marks running runs of the job with a lease older than timeout plus margin abandoned, and nothing else', async () => {
      // Prepare
      const history = new FakeHistory();
      const deadLease = ago(DEAD_LEASE_AGE_MS);
      const otherSlot = { slot: '2026-11-22T03:00:00Z' };
      history.seedRun({
        runId: 'run-dead',
        status: 'running',
        leaseRenewedAt: deadLease,
        ...otherSlot,
      });
      history.seedRun({ runId: 'run-live', status: 'running', leaseRenewedAt: ago(10_000) });
      history.seedRun({ runId: 'run-done', status: 'succeeded', leaseRenewedAt: deadLease });
      history.seedRun({
        runId: 'run-retention',
        job: 'retention',
        status: 'running',
        leaseRenewedAt: deadLease,
      });
      history.seedRun({
        runId: 'run-other-stage',
        deployment: 'dev',
        status: 'running',
        leaseRenewedAt: deadLease,
      });
      const { deps } = harness({ history });
      const { work } = recordingWork();

      // Act
      await runOnce(params({ slot: '2026-11-24T03:00:00Z' }), deps, work);

      // Assess
      expect(history.runsOfJobQueries).toEqual([{ deployment: DEPLOYMENT, job: 'backup' }]);
      expect(history.run('run-dead')).toMatchObject({
        status: 'abandoned',
        errorSummary: `abandoned: lease last renewed ${deadLease}; marked by run run-new`,
      });
      expect(history.run('run-live').status).toBe('running');
      expect(history.run('run-done').status).toBe('succeeded');
      expect(history.run('run-retention').status).toBe('running');
      expect(history.run('run-other-stage').status).toBe('running');
      expect(history.calls.filter((c) => c.startsWith('markAbandoned'))).toEqual([
        'markAbandoned run-dead',
      ]);
      expect(work).toHaveBeenCalledTimes(1);
    });
  });

  describe('given a claim that lapses (the console dedupe window)', () => {
    const WINDOW_MS = 300_000;

    it('answers a repeat within the window with the first report, wherever a fixed bucket would have split them', async () => {
      // Prepare: a press 1 s before a 300 s bucket edge, the repeat 2 s later
      const history = new FakeHistory();
      const { deps, clock } = harness({ history });
      clock.advance(300_000 - (Date.parse(NOW) % 300_000) - 1_000);
      const key = { schedule: 'console', slot: 'payload-abc', claimLapsesAfterMs: WINDOW_MS };
      await runOnce(params({ runId: 'run-first', ...key }), deps, recordingWork().work);
      clock.advance(2_000);
      const second = recordingWork();

      // Act
      const outcome = await runOnce(params({ runId: 'run-second', ...key }), deps, second.work);

      // Assess
      expect(outcome).toMatchObject({ kind: 'duplicate', heldBy: 'run-first' });
      expect(second.work).not.toHaveBeenCalled();
    });

    it('runs again once the window has passed since the first claim', async () => {
      // Prepare
      const history = new FakeHistory();
      const { deps, clock } = harness({ history });
      const key = { schedule: 'console', slot: 'payload-abc', claimLapsesAfterMs: WINDOW_MS };
      await runOnce(params({ runId: 'run-first', ...key }), deps, recordingWork().work);
      clock.advance(WINDOW_MS + 1);
      const second = recordingWork();

      // Act
      const outcome = await runOnce(params({ runId: 'run-second', ...key }), deps, second.work);

      // Assess
      expect(ran(outcome).runId).toBe('run-second');
      expect(second.contexts[0]).toMatchObject({ resuming: false });
      expect(
        history.holderOf({ job: 'backup', schedule: 'console', slot: 'payload-abc' })?.runId,
      ).toBe('run-second');
    });
  });

  describe('given crashed and dispatched runs of the job elsewhere in the history', () => {
    it('marks a run whose lease missed three renewals abandoned, but not a dispatched fan-out run as old', async () => {
      // Prepare
      const history = new FakeHistory();
      const stale = ago(3 * 60_000 + 10_000 + 1_000);
      history.seedRun({ runId: 'run-crashed', status: 'running', leaseRenewedAt: stale });
      history.seedRun({
        runId: 'run-dispatched',
        status: 'running',
        leaseRenewedAt: stale,
        report: JSON.stringify({ status: 'running' }),
      });
      const { deps } = harness({ history });

      // Act
      await runOnce(params({ slot: '2026-11-24T03:00:00Z' }), deps, recordingWork().work);

      // Assess
      expect(history.run('run-crashed').status).toBe('abandoned');
      expect(history.run('run-dispatched').status).toBe('running');
    });
  });

  describe('given a dry run', () => {
    it('never claims the slot, even one another run finished, and still records the run', async () => {
      // Prepare
      const history = new FakeHistory();
      history.seedRun({ runId: 'run-first', status: 'succeeded', report: '{"runId":"run-first"}' });
      history.seedClaim(SLOT_KEY, 'run-first');
      const { events, deps } = harness({ history });
      const { work, contexts } = recordingWork({ dryRun: true });

      // Act
      const outcome = await runOnce(params({ dryRun: true }), deps, work);

      // Assess
      expect(outcome.kind).toBe('ran');
      expect(history.calls.some((c) => c.startsWith('claimSlot'))).toBe(false);
      expect(history.calls.some((c) => c.startsWith('takeOverSlot'))).toBe(false);
      expect(history.holderOf(SLOT_KEY)?.runId).toBe('run-first');
      expect(contexts[0]).toMatchObject({ resuming: false, trigger: 'schedule' });
      expect(history.started[0]).toMatchObject({ runId: 'run-new', dryRun: true });
      expect(events.published[0]).toMatchObject({ dryRun: true });
    });
  });

  describe('given a run that serves no slot (an operator run from the console)', () => {
    it('never claims a slot, and records and announces the run with who asked for it', async () => {
      // Prepare
      const { history, events, deps } = harness();
      const { work, contexts } = recordingWork();

      // Act
      const outcome = await runOnce(
        params({
          trigger: 'console',
          schedule: undefined,
          slot: undefined,
          requestedBy: 'arn:aws:iam::123456789012:user/ops',
        }),
        deps,
        work,
      );

      // Assess
      expect(outcome.kind).toBe('ran');
      expect(history.calls.some((c) => c.startsWith('claimSlot'))).toBe(false);
      expect(history.claims.size).toBe(0);
      expect(contexts[0]).toMatchObject({ trigger: 'console', resuming: false });
      expect(history.run('run-new')).toMatchObject({
        trigger: 'console',
        requestedBy: 'arn:aws:iam::123456789012:user/ops',
        status: 'succeeded',
      });
      expect(events.published[0]).toMatchObject({
        trigger: 'console',
        requestedBy: 'arn:aws:iam::123456789012:user/ops',
      });
    });
  });

  describe('given a history that cannot be written', () => {
    const unavailable = () =>
      Object.assign(new Error('Requested resource not found'), {
        name: 'ResourceNotFoundException',
      });

    it('rejects with the claim error and never calls the work when the history is required', async () => {
      // Prepare
      const history = new FakeHistory();
      const cause = unavailable();
      history.claimError = cause;
      const { events, deps } = harness({ history, historyRequired: true });
      const { work } = recordingWork();

      // Act
      const running = runOnce(params(), deps, work);

      // Assess
      await expect(running).rejects.toBeInstanceOf(AwsCallError);
      await expect(running).rejects.toMatchObject({
        code: 'ResourceNotFoundException',
        message: expect.stringContaining('Requested resource not found'),
        cause,
      });
      expect(work).not.toHaveBeenCalled();
      expect(history.started).toEqual([]);
      expect(events.published).toEqual([]);
    });

    it('calls the work with historyUnavailable when the history is not required, writing nothing', async () => {
      // Prepare
      const history = new FakeHistory();
      history.claimError = unavailable();
      const { events, deps } = harness({ history, historyRequired: false, leaseRenewMs: 1 });
      const { work, contexts } = recordingWork({ status: 'partial' });

      // Act
      const outcome = await runOnce(params(), deps, work);

      // Assess
      expect(outcome.kind).toBe('ran');
      expect(contexts).toEqual([
        {
          runId: 'run-new',
          trigger: 'schedule',
          resuming: false,
          previousRunId: undefined,
          historyUnavailable: true,
        },
      ]);
      expect(history.started).toEqual([]);
      expect(history.finished).toEqual([]);
      expect(history.renewals).toEqual([]);
      expect(events.published.map((e) => e.status)).toEqual(['partial']);
    });

    it('rejects when the run item cannot be written and the history is required', async () => {
      // Prepare
      const history = new FakeHistory();
      history.startError = unavailable();
      const { deps } = harness({ history, historyRequired: true });
      const { work } = recordingWork();

      // Act & Assess
      await expect(runOnce(params(), deps, work)).rejects.toMatchObject({
        name: 'AwsCallError',
        code: 'ResourceNotFoundException',
      });
      expect(work).not.toHaveBeenCalled();
    });

    it('goes on without a run record when the run item cannot be written and the history is optional', async () => {
      // Prepare
      const history = new FakeHistory();
      history.startError = unavailable();
      const { deps } = harness({ history, historyRequired: false });
      const { work, contexts } = recordingWork();

      // Act
      await runOnce(params(), deps, work);

      // Assess
      expect(contexts[0]?.historyUnavailable).toBe(true);
      expect(history.finished).toEqual([]);
    });
  });

  describe('given work that throws', () => {
    it('records the run failed with the error, publishes a failed event, and rethrows the error', async () => {
      // Prepare
      const { history, events, deps } = harness();
      const failure = new TypeError('cannot read the fleet');

      // Act
      const running = runOnce(params(), deps, async () => {
        throw failure;
      });

      // Assess
      await expect(running).rejects.toBe(failure);
      expect(history.run('run-new')).toMatchObject({
        status: 'failed',
        endedAt: NOW,
        errorSummary: 'cannot read the fleet',
      });
      expect(events.published).toHaveLength(1);
      expect(events.published[0]).toMatchObject({
        runId: 'run-new',
        job: 'backup',
        schedule: 'daily',
        slot: SLOT,
        trigger: 'schedule',
        status: 'failed',
        errorSummary: 'cannot read the fleet',
      });
    });
  });

  describe('the lease', () => {
    it('is renewed on an interval while the work runs, and no longer once it ends', async () => {
      // Prepare
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
      const { history, deps } = harness({ leaseRenewMs: 20 });

      // Act
      await runOnce(params(), deps, async (context) => {
        await vi.advanceTimersByTimeAsync(100);
        return reportOf(context);
      });
      const renewedDuringWork = history.renewals.length;
      await vi.advanceTimersByTimeAsync(200);

      // Assess
      expect(renewedDuringWork).toBe(5);
      expect(history.renewals.length).toBe(renewedDuringWork);
      expect(history.renewals.every((r) => r.runId === 'run-new' && r.at === NOW)).toBe(true);
    });

    it('stops being renewed when the work throws', async () => {
      // Prepare
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
      const { history, deps } = harness({ leaseRenewMs: 20 });

      // Act
      await expect(
        runOnce(params(), deps, async () => {
          await vi.advanceTimersByTimeAsync(40);
          throw new Error('describe failed');
        }),
      ).rejects.toThrow('describe failed');
      const renewedDuringWork = history.renewals.length;
      await vi.advanceTimersByTimeAsync(200);

      // Assess
      expect(renewedDuringWork).toBe(2);
      expect(history.renewals).toHaveLength(renewedDuringWork);
    });

    it('is renewed with a real timer too, and a failing renewal does not fail the run', async () => {
      // Prepare
      const history = new FakeHistory();
      const { deps } = harness({ history, leaseRenewMs: 10 });
      const renewalsSeen: number[] = [];

      // Act
      const first = await runOnce(params({ runId: 'run-1' }), deps, async (context) => {
        await new Promise((resolve) => setTimeout(resolve, 80));
        renewalsSeen.push(history.renewals.length);
        return reportOf(context);
      });
      history.renewError = new Error('ProvisionedThroughputExceededException');
      const second = await runOnce(
        params({ runId: 'run-2', slot: '2026-11-24T03:00:00Z' }),
        deps,
        async (context) => {
          await new Promise((resolve) => setTimeout(resolve, 50));
          return reportOf(context);
        },
      );

      // Assess
      expect(renewalsSeen[0]).toBeGreaterThanOrEqual(2);
      expect(history.calls.filter((c) => c === 'renewLease run-2').length).toBeGreaterThanOrEqual(
        1,
      );
      expect(first.kind).toBe('ran');
      expect(second.kind).toBe('ran');
      expect(history.run('run-2').status).toBe('succeeded');
    });
  });

  describe('the run-finished event', () => {
    it('does not fail the run when it cannot be published', async () => {
      // Prepare
      const { history, events, deps } = harness();
      events.failure = Object.assign(new Error('bus not found'), {
        name: 'ResourceNotFoundException',
      });
      const { work } = recordingWork();

      // Act
      const outcome = await runOnce(params(), deps, work);

      // Assess
      expect(outcome.kind).toBe('ran');
      expect(history.run('run-new').status).toBe('succeeded');
    });
  });
});

describe('Function: answer', () => {
  const context = { runId: 'run-1' } as RunContext;

  it('returns the report of a succeeded or partial run', () => {
    // Prepare
    const succeeded = reportOf(context);
    const partial = reportOf(context, { status: 'partial' });

    // Act & Assess
    expect(answer({ kind: 'ran', report: succeeded })).toBe(succeeded);
    expect(answer({ kind: 'ran', report: partial })).toBe(partial);
  });

  it('throws RunFailedError carrying the report for a failed run', () => {
    // Prepare
    const report = reportOf(context, {
      status: 'failed',
      error: { code: 'UnauthorizedOperation', message: 'not allowed to describe instances' },
    });

    // Act
    let thrown: unknown;
    try {
      answer({ kind: 'ran', report });
    } catch (error) {
      thrown = error;
    }

    // Assess
    expect(thrown).toBeInstanceOf(RunFailedError);
    expect(thrown).toMatchObject({
      name: 'RunFailedError',
      message: 'backup run run-1 failed: not allowed to describe instances',
      report,
    });
  });

  it('throws RunIncompleteError carrying the report and the count left for an incomplete run', () => {
    // Prepare
    const report = reportOf(context, { status: 'incomplete', remaining: ['i-2', 'i-3'] });

    // Act
    let thrown: unknown;
    try {
      answer({ kind: 'ran', report });
    } catch (error) {
      thrown = error;
    }

    // Assess
    expect(thrown).toBeInstanceOf(RunIncompleteError);
    expect(thrown).toMatchObject({ name: 'RunIncompleteError', report });
    expect((thrown as Error).message).toContain('2 item(s) left');
  });

  it('returns the first report for a duplicate', () => {
    // Prepare
    const first = { runId: 'run-first', status: 'succeeded' };

    // Act & Assess
    expect(answer({ kind: 'duplicate', heldBy: 'run-first', report: first })).toBe(first);
  });

  it('fails the delivery with SlotInProgressError naming the holder when a live run holds the slot', () => {
    // Act
    const act = () =>
      answer({
        kind: 'in-progress',
        heldBy: 'run-first',
        message: 'slot daily 2026-11-23T03:00:00Z of backup is held by run run-first',
      });

    // Assess: Lambda retries a thrown error; an answer would end the delivery "successful"
    expect(act).toThrow(SlotInProgressError);
    expect(act).toThrow(/held by run run-first.*its retry checks again/);
    try {
      act();
    } catch (error) {
      expect((error as SlotInProgressError).heldBy).toBe('run-first');
    }
  });
});
