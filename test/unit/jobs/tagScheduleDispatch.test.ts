import { describe, expect, it } from 'vitest';
import type { RunRecord, SlotClaim } from '../../../lib/aws/RunHistoryGateway.ts';
import { loadConfig } from '../../../lib/config/environment.ts';
import type { InstanceFacts, SnapshotSetRequest } from '../../../lib/domain/backupPlan.ts';
import { InvalidEventError } from '../../../lib/domain/errors.ts';
import type { SlotKey } from '../../../lib/domain/runHistory.ts';
import type { BackupJobDependencies } from '../../../lib/jobs/backupJob.ts';
import { silentLogger } from '../../../lib/jobs/runReport.ts';
import type { RunOnceDependencies } from '../../../lib/jobs/slotRun.ts';
import {
  planTagSchedules,
  runTagDispatch,
  type TagDispatchDependencies,
} from '../../../lib/jobs/tagScheduleDispatch.ts';

const NOON = '2026-11-23T12:00:00Z';
const config = loadConfig({ AWS_REGION: 'eu-west-1', DEPLOYMENT: 'prod' });

type History = RunOnceDependencies['history'];

/** The run history's claim semantics, in memory: a claim is a put-if-absent. */
class MemoryHistory implements History {
  public readonly claims = new Map<string, SlotClaim>();
  public readonly runs = new Map<string, RunRecord>();
  public async claimSlot(slot: SlotKey, runId: string, now: Date) {
    const key = `${slot.job}#${slot.schedule}#${slot.slot}`;
    const holder = this.claims.get(key);
    if (holder) return { claimed: false as const, holder };
    this.claims.set(key, { ...slot, runId, claimedAt: now.toISOString() } as SlotClaim);
    return { claimed: true as const };
  }
  public async takeOverSlot() {
    return false;
  }
  public async startRun(run: RunRecord) {
    this.runs.set(run.runId, run);
  }
  public async renewLease() {}
  public async finishRun(runId: string, result: Parameters<History['finishRun']>[1]) {
    const run = this.runs.get(runId);
    if (run)
      this.runs.set(runId, {
        ...run,
        status: result.status,
        report: JSON.stringify(result.report),
      } as RunRecord);
  }
  public async getRun(runId: string) {
    return this.runs.get(runId);
  }
  public async markAbandoned() {
    return false;
  }
  public async runsOfJob() {
    return [];
  }
  public async recordDispatch() {}
}

/** An EC2 with instances, that makes each set at once (or fails for the instances named). */
class MemoryEc2 {
  public readonly requests: SnapshotSetRequest[] = [];
  public constructor(
    private readonly instances: InstanceFacts[],
    private readonly failing: readonly string[] = [],
    private readonly unreadable = false,
  ) {}
  public async *listInstancesWithTagKey(key: string) {
    if (this.unreadable)
      throw Object.assign(new Error('Rate exceeded'), { name: 'RequestLimitExceeded' });
    for (const i of this.instances) if (i.tags[key] !== undefined) yield i;
  }
  public async *listInstancesByIds(ids: readonly string[]) {
    for (const i of this.instances) if (ids.includes(i.instanceId)) yield i;
  }
  public async volumeTagsWithKey() {
    return new Map();
  }
  public async createSnapshotSet(request: SnapshotSetRequest) {
    if (this.failing.includes(request.instanceId)) {
      throw Object.assign(new Error('boom'), { name: 'InternalError' });
    }
    this.requests.push(request);
    return request.included.map((v) => ({
      snapshotId: `snap-${v.volumeId}-${this.requests.length}`,
      volumeId: v.volumeId,
      sizeGiB: 8,
      state: 'pending',
    }));
  }
  public async *listSnapshotsTagged() {}
  public async deleteSnapshot() {
    throw new Error('a fresh slot deletes nothing');
  }
}

function instance(id: string, backup: string): InstanceFacts {
  return {
    instanceId: id,
    state: 'running',
    rootDeviceName: '/dev/xvda',
    tags: { 'snapkeeper:backup': backup, Name: id },
    volumes: [{ volumeId: `vol-${id}`, deviceName: '/dev/xvda' }],
  };
}

function dependencies(ec2: MemoryEc2, history: MemoryHistory, at = NOON, cfg = config) {
  let n = 0;
  const clock = () => new Date(Date.parse(at) + 20_000);
  const deps: TagDispatchDependencies = {
    backup: {
      ec2: ec2 as unknown as BackupJobDependencies['ec2'],
      config: cfg,
      clock,
      logger: silentLogger,
      reconcile: { waitsMs: [], sleep: async () => undefined },
    },
    slotRun: {
      history,
      deployment: 'prod',
      clock,
      logger: silentLogger,
      historyRequired: false,
      duplicateWaitMs: 0,
      sleep: async () => undefined,
    },
    newRunId: () => {
      n += 1;
      return `run-${n}`;
    },
    logger: silentLogger,
  };
  return deps;
}

describe('Use case: runTagDispatch', () => {
  it("runs each expression's newest slot once, and a repeated dispatch makes nothing again", async () => {
    // Prepare
    const ec2 = new MemoryEc2([
      instance('i-1', 'rate(6 hours)'),
      instance('i-2', 'daily, rate(6 hours)'),
      instance('i-3', 'cron(0 9 * * ? *)@Europe/Paris'),
      instance('i-4', 'daily'),
    ]);
    const history = new MemoryHistory();

    // Act
    const first = await runTagDispatch(
      { scheduledTime: new Date(NOON), dryRun: false },
      dependencies(ec2, history),
    );
    const again = await runTagDispatch(
      { scheduledTime: new Date(NOON), dryRun: false },
      dependencies(ec2, history),
    );

    // Assess
    expect(first.status).toBe('succeeded');
    expect(first.runs.map((r) => [r.expression, r.slot, r.outcome, r.backedUp])).toEqual([
      ['rate(6 hours)', '2026-11-23T12:00:00Z', 'ran', 2],
      ['cron(0 9 * * ? *)@Europe/Paris', '2026-11-23T08:00:00Z', 'ran', 1],
    ]);
    expect(ec2.requests.map((r) => r.instanceId).sort()).toEqual(['i-1', 'i-2', 'i-3']);
    expect(ec2.requests[0]?.tags).toContainEqual({
      Key: 'snapkeeper:schedule',
      Value: 'rate(6 hours)',
    });
    expect(again.runs.map((r) => r.outcome)).toEqual(['duplicate', 'duplicate']);
    expect(ec2.requests).toHaveLength(3);
  });

  it("keeps going when one expression's run fails, and reports it", async () => {
    // Prepare
    const ec2 = new MemoryEc2(
      [instance('i-1', 'rate(6 hours)'), instance('i-2', 'rate(12 hours)')],
      ['i-1'],
    );

    // Act
    const report = await runTagDispatch({ dryRun: false }, dependencies(ec2, new MemoryHistory()));

    // Assess
    expect(report.status).toBe('partial');
    expect(report.runs.find((r) => r.expression === 'rate(6 hours)')?.outcome).toBe('failed');
    expect(report.runs.find((r) => r.expression === 'rate(12 hours)')).toMatchObject({
      outcome: 'ran',
      backedUp: 1,
    });
  });

  it('serves at most TAG_SCHEDULE_MAX_EXPRESSIONS expressions and reports the instances of the others by name', async () => {
    // Prepare
    const capped = loadConfig({
      AWS_REGION: 'eu-west-1',
      DEPLOYMENT: 'prod',
      TAG_SCHEDULE_MAX_EXPRESSIONS: '1',
    });
    const ec2 = new MemoryEc2([
      instance('i-1', 'rate(6 hours)'),
      instance('i-2', 'rate(6 hours)'),
      instance('i-3', 'rate(8 hours)'),
    ]);

    // Act
    const report = await runTagDispatch(
      { dryRun: false },
      dependencies(ec2, new MemoryHistory(), NOON, capped),
    );

    // Assess
    expect(report.runs.map((r) => r.expression)).toEqual(['rate(6 hours)']);
    expect(report.problems).toEqual([
      {
        instanceId: 'i-3',
        message: expect.stringContaining(
          'instance i-3: snapkeeper:backup="rate(8 hours)" is not served: this deployment serves at most 1 distinct schedule expressions (TAG_SCHEDULE_MAX_EXPRESSIONS)',
        ),
      },
    ]);
    expect(report.status).toBe('partial');
  });

  it('refuses a cron whose years are all past, against the clock, by instance and tag', async () => {
    // Prepare
    const ec2 = new MemoryEc2([instance('i-1', 'cron(0 3 * * ? 2025)')]);

    // Act
    const report = await runTagDispatch({ dryRun: false }, dependencies(ec2, new MemoryHistory()));

    // Assess
    expect(report.runs).toEqual([]);
    expect(report.problems[0]?.message).toContain(
      'never fires after 2026-11-23; check its year field',
    );
  });

  it('sends nothing mutating and claims no slot in a dry run', async () => {
    // Prepare
    const ec2 = new MemoryEc2([instance('i-1', 'rate(6 hours)')]);
    const history = new MemoryHistory();

    // Act
    const report = await runTagDispatch({ dryRun: true }, dependencies(ec2, history));

    // Assess
    expect(report.runs[0]).toMatchObject({ outcome: 'ran', backedUp: 1 });
    expect(ec2.requests).toEqual([]);
    expect(history.claims.size).toBe(0);
  });

  it('answers failed, with the error, when the fleet cannot be read', async () => {
    // Act
    const report = await runTagDispatch(
      { dryRun: false },
      dependencies(new MemoryEc2([], [], true), new MemoryHistory()),
    );

    // Assess
    expect(report.status).toBe('failed');
    expect(report.error?.message).toContain('Rate exceeded');
  });

  it('refuses a scheduledTime ahead of the clock, naming the field', async () => {
    // Act & assess
    await expect(
      runTagDispatch(
        { scheduledTime: new Date('2026-11-23T13:00:00Z'), dryRun: false },
        dependencies(new MemoryEc2([]), new MemoryHistory()),
      ),
    ).rejects.toThrow(InvalidEventError);
  });
});

describe('Use case: planTagSchedules', () => {
  it("gives each instance's expression its last slot and next run, and the refused ones", async () => {
    // Act
    const plan = await planTagSchedules({
      ec2: new MemoryEc2([instance('i-1', 'rate(6 hours)'), instance('i-2', 'rate(1 hours)')]),
      config,
      clock: () => new Date('2026-11-23T13:15:00Z'),
    });

    // Assess
    expect(plan.runs).toEqual([
      {
        instanceId: 'i-1',
        name: 'i-1',
        expression: 'rate(6 hours)',
        lastSlot: '2026-11-23T12:00:00Z',
        nextRun: '2026-11-23T18:00:00Z',
      },
    ]);
    expect(plan.problems).toEqual([
      expect.stringContaining('instance i-2: snapkeeper:backup="rate(1 hours)"'),
    ]);
  });
});
