import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Ec2Gateway } from '../../../lib/aws/Ec2Gateway.ts';
import { loadConfig } from '../../../lib/config/environment.ts';
import type {
  BatchCheckpoint,
  BatchMessage,
  BatchStatus,
  Target,
} from '../../../lib/domain/fanOut.ts';
import { SHARE_REFRESH_MS, TAIL_SHARE_REFRESH_MS } from '../../../lib/domain/fanOut.ts';
import { BatchRetryError } from '../../../lib/jobs/errors.ts';
import { type BatchDependencies, runFanOutBatch } from '../../../lib/jobs/fanOutJob.ts';
import { followRunRateShare } from '../../../lib/jobs/fanOutRateShare.ts';
import type { LoggerPort } from '../../../lib/jobs/ports.ts';
import { silentLogger } from '../../../lib/jobs/runReport.ts';

const RUN_ID = '20261123T030007Z-a1b2c3d4';
const IRELAND: Target = { account: 'self', region: 'eu-west-1' };
const VIRGINIA: Target = { account: 'self', region: 'us-east-1' };

/** `<account>/<region>/<nnnn>` of the target's batch `n`. */
function batchIdOf(target: Target, n: number): string {
  return `${target.account}/${target.region}/${String(n).padStart(4, '0')}`;
}

/** The run's batch checkpoints, changed by the test while a batch runs. */
class Checkpoints {
  public readonly statuses = new Map<string, BatchStatus>();
  public failing: Error | undefined;
  /** Batch ids left out of the answer (a read that misses some of the run's batches). */
  public readonly hidden = new Set<string>();
  public reads = 0;

  public constructor(entries: readonly [string, BatchStatus][]) {
    for (const [batchId, status] of entries) this.statuses.set(batchId, status);
  }

  public async runBatches(_runId: string): Promise<BatchCheckpoint[]> {
    this.reads += 1;
    if (this.failing) throw this.failing;
    return [...this.statuses]
      .filter(([batchId]) => !this.hidden.has(batchId))
      .map(([batchId, status]) => ({ batchId, status, attempts: 1 }));
  }
}

/** A target's batches 1..n, the first `running` and the others `pending`. */
function targetBatches(target: Target, n: number): [string, BatchStatus][] {
  return Array.from({ length: n }, (_, i) => [
    batchIdOf(target, i + 1),
    i === 0 ? 'running' : 'pending',
  ]);
}

/** A share control recording every share set. */
function recordingControl() {
  const shares: number[] = [];
  return { shares, control: { setShare: (share: number) => shares.push(share) } };
}

function recordingLogger() {
  const warnings: string[] = [];
  const logger: LoggerPort = { ...silentLogger, warn: (message: string) => warnings.push(message) };
  return { warnings, logger };
}

const message = (batches: number, target: Target = IRELAND) => ({
  runId: RUN_ID,
  batchId: batchIdOf(target, 1),
  target,
  batches,
});

/** Lets the timer's read and its answer run. */
async function tick(times = 1): Promise<void> {
  for (let i = 0; i < times; i += 1) await vi.advanceTimersByTimeAsync(SHARE_REFRESH_MS);
}

describe('Function: followRunRateShare (issue 19)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('starts the batch at its base share, a cached client raised by the last batch included', () => {
    // Prepare
    const history = new Checkpoints(targetBatches(IRELAND, 8));
    const { shares, control } = recordingControl();

    // Act
    const stop = followRunRateShare(message(8), {
      history,
      control,
      baseShare: 0.25,
      logger: silentLogger,
    });
    stop();

    // Assess
    expect(shares).toEqual([0.25]);
  });

  it('raises the share to 1/unfinished as batches of its target finish', async () => {
    // Prepare
    const history = new Checkpoints(targetBatches(IRELAND, 4));
    const { shares, control } = recordingControl();
    const stop = followRunRateShare(message(4), {
      history,
      control,
      baseShare: 0.25,
      logger: silentLogger,
    });

    // Act
    await tick();
    history.statuses.set(batchIdOf(IRELAND, 2), 'succeeded');
    history.statuses.set(batchIdOf(IRELAND, 3), 'partial');
    await tick();
    history.statuses.set(batchIdOf(IRELAND, 4), 'failed');
    await tick();
    stop();

    // Assess
    expect(shares).toEqual([0.25, 0.5, 1]);
  });

  it('reads every second while more batches are left than run at once, then every 250 ms', async () => {
    // Prepare: 8 batches of the target, 4 workers (share 1/4).
    const history = new Checkpoints(targetBatches(IRELAND, 8));
    const { shares, control } = recordingControl();
    const stop = followRunRateShare(message(8), {
      history,
      control,
      baseShare: 0.25,
      logger: silentLogger,
    });

    // Act: one second with 8 unfinished, then the run's tail (4 unfinished).
    await vi.advanceTimersByTimeAsync(SHARE_REFRESH_MS);
    const beforeTail = history.reads;
    for (const n of [2, 3, 4, 5]) history.statuses.set(batchIdOf(IRELAND, n), 'succeeded');
    await vi.advanceTimersByTimeAsync(SHARE_REFRESH_MS);
    const tailStarted = history.reads;
    history.statuses.set(batchIdOf(IRELAND, 6), 'succeeded');
    await vi.advanceTimersByTimeAsync(TAIL_SHARE_REFRESH_MS);
    stop();

    // Assess
    expect(beforeTail).toBe(1);
    expect(tailStarted).toBe(2);
    expect(history.reads).toBe(3);
    expect(shares).toEqual([0.25, 1 / 3]);
  });

  it('counts only the batches of its own target (another region has buckets of its own)', async () => {
    // Prepare
    const history = new Checkpoints([...targetBatches(IRELAND, 2), ...targetBatches(VIRGINIA, 6)]);
    const { shares, control } = recordingControl();
    const stop = followRunRateShare(message(8), {
      history,
      control,
      baseShare: 0.25,
      logger: silentLogger,
    });

    // Act
    await tick();
    stop();

    // Assess
    expect(shares).toEqual([0.25, 0.5]);
  });

  it('counts retry and running batches as unfinished', async () => {
    // Prepare
    const history = new Checkpoints([
      [batchIdOf(IRELAND, 1), 'running'],
      [batchIdOf(IRELAND, 2), 'retry'],
      [batchIdOf(IRELAND, 3), 'running'],
      [batchIdOf(IRELAND, 4), 'succeeded'],
      [batchIdOf(IRELAND, 5), 'succeeded'],
    ]);
    const { shares, control } = recordingControl();
    const stop = followRunRateShare(message(5), {
      history,
      control,
      baseShare: 0.2,
      logger: silentLogger,
    });

    // Act
    await tick();
    stop();

    // Assess
    expect(shares).toEqual([0.2, 1 / 3]);
  });

  it('never lowers the share within a batch, even when a later read shows more unfinished', async () => {
    // Prepare
    const history = new Checkpoints(targetBatches(IRELAND, 4));
    history.statuses.set(batchIdOf(IRELAND, 2), 'succeeded');
    history.statuses.set(batchIdOf(IRELAND, 3), 'succeeded');
    const { shares, control } = recordingControl();
    const stop = followRunRateShare(message(4), {
      history,
      control,
      baseShare: 0.25,
      logger: silentLogger,
    });

    // Act
    await tick();
    history.statuses.set(batchIdOf(IRELAND, 3), 'retry'); // a stale replica's answer
    await tick(3);
    stop();

    // Assess
    expect(shares).toEqual([0.25, 0.5]);
    expect(Math.min(...shares.slice(1))).toBeGreaterThanOrEqual(0.5);
  });

  it('keeps the share when the read fails, warning once, and never throws', async () => {
    // Prepare
    const history = new Checkpoints(targetBatches(IRELAND, 2));
    history.failing = new Error('ProvisionedThroughputExceededException: slow down');
    const { shares, control } = recordingControl();
    const { warnings, logger } = recordingLogger();
    const stop = followRunRateShare(message(2), { history, control, baseShare: 0.25, logger });

    // Act
    await tick(3);
    stop();

    // Assess
    expect(history.reads).toBe(3);
    expect(shares).toEqual([0.25]);
    expect(warnings).toEqual(['the batch keeps its EC2 rate share']);
  });

  it('keeps the share when the read misses some of the run’s batches (it would undercount)', async () => {
    // Prepare
    const history = new Checkpoints(targetBatches(IRELAND, 4));
    history.hidden.add(batchIdOf(IRELAND, 3));
    history.hidden.add(batchIdOf(IRELAND, 4));
    const { shares, control } = recordingControl();
    const stop = followRunRateShare(message(4), {
      history,
      control,
      baseShare: 0.25,
      logger: silentLogger,
    });

    // Act
    await tick(2);
    stop();

    // Assess
    expect(shares).toEqual([0.25]);
  });

  it('stops reading when stopped, and a read still in flight changes nothing', async () => {
    // Prepare
    const history = new Checkpoints(targetBatches(IRELAND, 1));
    let answer: (value: BatchCheckpoint[]) => void = () => undefined;
    const slow = {
      runBatches: () =>
        new Promise<BatchCheckpoint[]>((resolve) => {
          answer = resolve;
        }),
    };
    const { shares, control } = recordingControl();
    const stop = followRunRateShare(message(2), {
      history: slow,
      control,
      baseShare: 0.25,
      logger: silentLogger,
    });

    // Act
    await tick();
    stop();
    answer(await history.runBatches(RUN_ID));
    await tick(3);

    // Assess
    expect(shares).toEqual([0.25]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('reads nothing for a batch at the whole rate already (retention)', async () => {
    // Prepare
    const history = new Checkpoints(targetBatches(IRELAND, 1));
    const { shares, control } = recordingControl();

    // Act
    const stop = followRunRateShare(message(1), {
      history,
      control,
      baseShare: 1,
      logger: silentLogger,
    });
    await tick(2);
    stop();

    // Assess
    expect(history.reads).toBe(0);
    expect(shares).toEqual([1]);
    expect(vi.getTimerCount()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------
// Through the worker job
// ---------------------------------------------------------------------------------------

/** A run history of the worker: the checkpoints above, claimed and finished. */
class WorkerCheckpoints extends Checkpoints {
  public async claimBatch(_runId: string, batchId: string) {
    this.statuses.set(batchId, 'running');
    return {
      kind: 'claimed' as const,
      checkpoint: { batchId, status: 'running' as const, attempts: 1 },
    };
  }
  public async finishBatch(_runId: string, batchId: string, result: { status: BatchStatus }) {
    this.statuses.set(batchId, result.status);
  }
  public async completeRun() {
    return true;
  }
  public async renewLease() {}
  public async getRun() {
    return undefined;
  }
}

/** An EC2 whose describe of the batch's instances waits until released, finding none. */
function heldEc2() {
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const ec2 = {
    async *listInstancesByIds(): AsyncGenerator<never> {
      await held;
      yield* [];
    },
    async *listSnapshotsTagged(): AsyncGenerator<never> {
      yield* [];
    },
  };
  return { ec2: ec2 as unknown as Ec2Gateway, release };
}

function workerDeps(
  history: WorkerCheckpoints,
  ec2For: BatchDependencies['ec2For'],
  shares: number[],
  asked: string[] = [],
): BatchDependencies {
  return {
    history: history as unknown as BatchDependencies['history'],
    ec2For,
    rateShareFor: (target, share) => {
      asked.push(`${target.account}/${target.region}@${share}`);
      return { setShare: (next) => shares.push(next) };
    },
    config: loadConfig({
      AWS_REGION: 'eu-west-1',
      DEPLOYMENT: 'prod',
      EC2_RATE_SHARE: '0.25',
      FANOUT_MAX_ATTEMPTS: '3',
    }),
    clock: () => new Date('2026-11-23T03:00:07.000Z'),
    logger: silentLogger,
  };
}

function batch(overrides: Partial<BatchMessage> = {}): BatchMessage {
  return {
    runId: RUN_ID,
    job: 'backup',
    schedule: 'daily',
    slot: '2026-11-23T03:00:00Z',
    dryRun: false,
    batches: 4,
    batchId: batchIdOf(IRELAND, 1),
    target: IRELAND,
    instanceIds: ['i-00000001'],
    ...overrides,
  };
}

describe('Function: runFanOutBatch, its rate share (issue 19)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('raises the share of its target’s client while the other batches finish, then clears its timer', async () => {
    // Prepare
    const history = new WorkerCheckpoints(targetBatches(IRELAND, 4));
    const { ec2, release } = heldEc2();
    const shares: number[] = [];
    const asked: string[] = [];
    const running = runFanOutBatch(
      batch(),
      workerDeps(history, () => ec2, shares, asked),
    );

    // Act
    await tick();
    for (const n of [2, 3, 4]) history.statuses.set(batchIdOf(IRELAND, n), 'succeeded');
    await tick();
    release();
    await running;
    await tick(2);

    // Assess
    expect(asked).toEqual(['self/eu-west-1@undefined']);
    expect(shares).toEqual([0.25, 1]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('starts the next batch at the base share again (the message’s own, when it has one)', async () => {
    // Prepare
    const history = new WorkerCheckpoints(targetBatches(IRELAND, 2));
    const shares: number[] = [];
    const { ec2, release } = heldEc2();
    release();

    // Act
    await runFanOutBatch(
      batch({ batches: 2 }),
      workerDeps(history, () => ec2, shares),
    );
    await runFanOutBatch(
      batch({ batches: 2, batchId: batchIdOf(IRELAND, 2), rateShare: 0.5 }),
      workerDeps(history, () => ec2, shares),
    );

    // Assess
    expect(shares).toEqual([0.25, 0.5]);
  });

  it('fails the batch for another delivery, as the job would, when the share control cannot be built', async () => {
    // Prepare
    const history = new WorkerCheckpoints(targetBatches(IRELAND, 4));
    const { ec2, release } = heldEc2();
    release();
    const deps: BatchDependencies = {
      ...workerDeps(history, () => ec2, []),
      rateShareFor: () => {
        throw new Error('TARGET_ACCOUNTS names 210987654321: not reached here');
      },
    };

    // Act
    const outcome = runFanOutBatch(batch(), deps);

    // Assess
    await expect(outcome).rejects.toBeInstanceOf(BatchRetryError);
    expect(history.statuses.get(batchIdOf(IRELAND, 1))).toBe('retry');
  });

  it('clears its timer when the batch throws', async () => {
    // Prepare
    const history = new WorkerCheckpoints(targetBatches(IRELAND, 4));
    const shares: number[] = [];
    const broken = () => {
      throw new Error('the target role could not be assumed');
    };

    // Act
    const outcome = runFanOutBatch(batch(), workerDeps(history, broken, shares));

    // Assess
    await expect(outcome).rejects.toBeInstanceOf(BatchRetryError);
    await tick(3);
    expect(history.reads).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
