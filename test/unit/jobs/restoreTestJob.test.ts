import { describe, expect, it } from 'vitest';
import type { ActionItem } from '../../../lib/aws/RunHistoryGateway.ts';
import { InvalidEventError } from '../../../lib/domain/errors.ts';
import type { TestVolume } from '../../../lib/domain/restoreTestPlan.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { RestoreTestPort } from '../../../lib/jobs/ports.ts';
import {
  lastRestoreTests,
  type RestoreTestDependencies,
  type RestoreTestRequest,
  restoreTestStatuses,
  runRestoreTestJob,
} from '../../../lib/jobs/restoreTestJob.ts';
import { RecordingJournal } from '../../support/recordingJournal.ts';
import { recordingLogger } from '../../support/recordingLogger.ts';
import { RecordingMetrics } from '../../support/recordingMetrics.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const keys = tagKeys();
const START = new Date('2026-11-23T06:00:00Z').getTime();
const KEY = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

class SecondsMetrics extends RecordingMetrics {
  public readonly timings: [string, number][] = [];
  public seconds(name: string, value: number): void {
    this.timings.push([name, value]);
  }
}

function snapshot(
  id: string,
  instanceId: string,
  extra: Partial<SnapshotFacts> = {},
): SnapshotFacts {
  return {
    snapshotId: id,
    volumeId: `vol-src-${id}`,
    state: 'completed',
    startTime: new Date('2026-11-23T03:00:00Z'),
    sizeGiB: 8,
    encrypted: false,
    tags: {
      [keys.managed]: 'true',
      [keys.deployment]: 'prod',
      [keys.instanceId]: instanceId,
      [keys.runId]: `run-${instanceId}`,
      [keys.schedule]: 'daily',
    },
    ...extra,
  };
}

/**
 * A fake EC2 for restore tests: each created volume walks through the scripted states
 * (one per DescribeVolumes), as AWS's `creating` then `available` (or `error`); the
 * last state repeats.
 */
class FakeVolumes implements RestoreTestPort {
  public readonly created: {
    volumeId: string;
    snapshotId: string;
    zone: string;
    rate?: number | undefined;
  }[] = [];
  public readonly deleted: string[] = [];
  public readonly refuseDelete = new Set<string>();
  public leftovers: TestVolume[] = [];
  readonly #states = new Map<string, string[]>();

  public constructor(
    private readonly script: (snapshotId: string) => string[],
    private readonly shape: (snapshotId: string) => Partial<TestVolume> = () => ({ sizeGiB: 8 }),
  ) {}

  public async createTestVolume(request: Parameters<RestoreTestPort['createTestVolume']>[0]) {
    const volumeId = `vol-test-${this.created.length + 1}`;
    this.created.push({
      volumeId,
      snapshotId: request.snapshotId,
      zone: request.availabilityZone,
      rate: request.volumeInitializationRate,
    });
    this.#states.set(volumeId, [...this.script(request.snapshotId)]);
    this.shapes.set(volumeId, this.shape(request.snapshotId));
    return volumeId;
  }

  readonly shapes = new Map<string, Partial<TestVolume>>();

  public async describeTestVolume(volumeId: string): Promise<TestVolume | undefined> {
    const states = this.#states.get(volumeId);
    if (!states) return undefined;
    const state = states.length > 1 ? (states.shift() as string) : (states[0] as string);
    if (state === 'not-visible') return undefined;
    return { volumeId, state, tags: {}, ...this.shapes.get(volumeId) };
  }

  public async deleteTestVolume(volumeId: string): Promise<'deleted' | 'gone'> {
    if (this.refuseDelete.has(volumeId))
      throw sdkError('IncorrectState', `${volumeId} is creating`);
    this.deleted.push(volumeId);
    return 'deleted';
  }

  public async listTestVolumes(): Promise<TestVolume[]> {
    return this.leftovers;
  }
}

function setup(options: {
  snapshots: SnapshotFacts[];
  volumes: FakeVolumes;
  history?: ActionItem[];
  journal?: RecordingJournal;
}) {
  let now = START;
  const metrics = new SecondsMetrics();
  const journal = options.journal ?? new RecordingJournal();
  const logger = recordingLogger();
  const deps: RestoreTestDependencies = {
    ec2: {
      async *listSnapshotsTagged() {
        yield* options.snapshots;
      },
    },
    instances: {
      describeInstance: async (instanceId) => {
        if (instanceId === 'i-gone') throw new Error('instance i-gone does not exist');
        return {
          instanceId,
          state: 'running',
          availabilityZone: 'eu-west-1b',
          securityGroupIds: [],
          tags: {},
          volumes: [],
          platform: {},
        };
      },
    },
    tests: options.volumes,
    history: {
      resourceHistory: async (resourceId) =>
        (options.history ?? []).filter((i) => i.resourceId === resourceId),
    },
    config: { deployment: 'prod', keys, restoreWaitMs: 600_000 },
    clock: () => new Date(now),
    runId: 'run-test',
    logger,
    metrics,
    journal,
    sleep: async (ms) => {
      now += ms;
    },
  };
  const elapsed = () => now - START;
  return { deps, metrics, journal, logger, elapsed };
}

function request(extra: Partial<RestoreTestRequest> = {}): RestoreTestRequest {
  return {
    schedule: 'daily',
    options: { instances: 'all' },
    dryRun: false,
    remainingMs: () => 900_000,
    ...extra,
  };
}

function testAction(instanceId: string, at: string, outcome: 'done' | 'failed'): ActionItem {
  return {
    runId: 'r-old',
    job: 'restore-test',
    action: 'restore-test',
    resourceId: instanceId,
    phase: 'after',
    outcome,
    reason: 'earlier',
    at,
    sequence: 1,
    details: { seconds: 42 },
  };
}

describe('Function: runRestoreTestJob', () => {
  it('restores the set in the instance’s zone, times creating → available, deletes the volume', async () => {
    const volumes = new FakeVolumes(() => ['creating', 'creating', 'available']);
    const { deps, metrics, journal } = setup({ snapshots: [snapshot('snap-1', 'i-a')], volumes });

    const report = await runRestoreTestJob(
      request({ options: { instances: 'all', volumeInitializationRate: 200 } }),
      deps,
    );

    expect(report.status).toBe('succeeded');
    expect(volumes.created).toEqual([
      { volumeId: 'vol-test-1', snapshotId: 'snap-1', zone: 'eu-west-1b', rate: 200 },
    ]);
    expect(volumes.deleted).toEqual(['vol-test-1']);
    const [instance] = report.instances;
    expect(instance?.outcome).toBe('passed');
    // Polls at 1 s and 2 s, available at the third look: 3 s after CreateVolume.
    expect(instance?.volumes[0]?.secondsToAvailable).toBe(3);
    expect(metrics.valueOf('RestoreTestsSucceeded')).toBe(1);
    expect(metrics.valueOf('RestoreTestsFailed')).toBe(0);
    expect(metrics.timings).toEqual([['RestoreTestSeconds', 3]]);
    const steps = journal.records.map((r) => `${r.action} ${r.phase} ${r.resourceId}`);
    expect(steps).toEqual([
      'create-volume before snap-1',
      'create-volume after vol-test-1',
      'delete-volume before vol-test-1',
      'delete-volume after vol-test-1',
      'restore-test after i-a',
    ]);
    expect(journal.records.at(-1)).toMatchObject({ outcome: 'done', details: { seconds: 3 } });
  });

  it('fails a volume that goes into error, and still deletes it', async () => {
    const volumes = new FakeVolumes(() => ['creating', 'error']);
    const { deps, metrics } = setup({ snapshots: [snapshot('snap-1', 'i-a')], volumes });

    const report = await runRestoreTestJob(request(), deps);

    expect(report.status).toBe('failed');
    expect(report.instances[0]?.outcome).toBe('failed');
    expect(report.instances[0]?.volumes[0]?.problems).toEqual(['the volume went into state error']);
    expect(volumes.deleted).toEqual(['vol-test-1']);
    expect(metrics.valueOf('RestoreTestsFailed')).toBe(1);
    expect(report.error?.code).toBe('RestoreTestFailed');
  });

  it('fails a volume of the wrong size or without the snapshot’s encryption', async () => {
    const volumes = new FakeVolumes(
      () => ['available'],
      () => ({ sizeGiB: 4, encrypted: false }),
    );
    const { deps } = setup({
      snapshots: [snapshot('snap-1', 'i-a', { encrypted: true, kmsKeyId: KEY })],
      volumes,
    });

    const report = await runRestoreTestJob(request(), deps);

    expect(report.instances[0]?.volumes[0]?.problems).toEqual([
      'size is 4 GiB, expected 8 GiB',
      'is not encrypted, the snapshot is',
      `KMS key is not reported, the snapshot's is ${KEY}`,
    ]);
    expect(volumes.deleted).toEqual(['vol-test-1']);
  });

  it('bounds the wait by the invocation’s remaining time: a timeout fails the test, the volume is still deleted', async () => {
    const volumes = new FakeVolumes(() => ['creating']);
    const { deps, elapsed } = setup({ snapshots: [snapshot('snap-1', 'i-a')], volumes });

    const report = await runRestoreTestJob(
      request({ remainingMs: () => 150_000 - elapsed() }),
      deps,
    );

    const volume = report.instances[0]?.volumes[0];
    expect(volume?.outcome).toBe('failed');
    expect(volume?.problems[0]).toMatch(/^not available after \d+ s \(state creating\)$/);
    // 150 s left, 60 s kept for deleting: it gave up within 90 s.
    expect(elapsed()).toBeLessThanOrEqual(90_000);
    expect(volumes.deleted).toEqual(['vol-test-1']);
  });

  it('reports a volume it cannot delete, never silently, and counts it left over', async () => {
    const volumes = new FakeVolumes(() => ['creating']);
    volumes.refuseDelete.add('vol-test-1');
    const { deps, metrics, journal } = setup({ snapshots: [snapshot('snap-1', 'i-a')], volumes });

    const report = await runRestoreTestJob(request({ remainingMs: () => 120_000 }), deps);

    expect(report.instances[0]?.volumes[0]).toMatchObject({ deleted: false });
    expect(report.instances[0]?.volumes[0]?.problems.at(-1)).toBe(
      'volume vol-test-1 NOT deleted: the next run deletes it',
    );
    expect(report.counts.leftoversRemaining).toBe(1);
    expect(metrics.valueOf('RestoreTestVolumesLeftOver')).toBe(1);
    expect(journal.records).toContainEqual(
      expect.objectContaining({ action: 'delete-volume', phase: 'after', outcome: 'failed' }),
    );
  });

  it('rotates: N a run, never tested first, then the least recently tested', async () => {
    const volumes = new FakeVolumes(() => ['available']);
    const { deps } = setup({
      snapshots: ['i-a', 'i-b', 'i-c'].map((id, n) => snapshot(`snap-${n}`, id)),
      volumes,
      history: [
        testAction('i-a', '2026-11-20T06:00:00Z', 'done'),
        testAction('i-c', '2026-11-10T06:00:00Z', 'failed'),
      ],
    });

    const report = await runRestoreTestJob(request({ options: { instances: 2 } }), deps);

    expect(report.instances.map((i) => i.instanceId)).toEqual(['i-b', 'i-c']);
  });

  it('in a dry run creates and deletes nothing, and lists what it would do', async () => {
    const volumes = new FakeVolumes(() => ['available']);
    volumes.leftovers = [
      {
        volumeId: 'vol-old',
        state: 'available',
        createTime: new Date(START - 86_400_000),
        tags: { 'snapkeeper:restore-test': 'true', [keys.deployment]: 'prod' },
      },
    ];
    const { deps, journal, metrics } = setup({ snapshots: [snapshot('snap-1', 'i-a')], volumes });

    const report = await runRestoreTestJob(request({ dryRun: true }), deps);

    expect(volumes.created).toEqual([]);
    expect(volumes.deleted).toEqual([]);
    expect(journal.records).toEqual([]);
    expect(metrics.counts).toEqual([]);
    expect(report.instances[0]).toMatchObject({
      outcome: 'planned',
      availabilityZone: 'eu-west-1b',
    });
    expect(report.leftovers).toEqual([
      { volumeId: 'vol-old', outcome: 'planned', reason: 'would be deleted (available)' },
    ]);
  });

  it('deletes what earlier tests left, only this deployment’s test volumes, never one that may be in use', async () => {
    const volumes = new FakeVolumes(() => ['available']);
    const old = new Date(START - 86_400_000);
    const ours = { 'snapkeeper:restore-test': 'true', [keys.deployment]: 'prod' };
    volumes.leftovers = [
      { volumeId: 'vol-old', state: 'available', createTime: old, tags: ours },
      {
        volumeId: 'vol-young',
        state: 'available',
        createTime: new Date(START - 60_000),
        tags: ours,
      },
      { volumeId: 'vol-creating', state: 'creating', createTime: old, tags: ours },
      { volumeId: 'vol-in-use', state: 'in-use', createTime: old, tags: ours },
      {
        volumeId: 'vol-other-stage',
        state: 'available',
        createTime: old,
        tags: { 'snapkeeper:restore-test': 'true', [keys.deployment]: 'dev' },
      },
      {
        volumeId: 'vol-user',
        state: 'available',
        createTime: old,
        tags: { [keys.deployment]: 'prod' },
      },
    ];
    const { deps } = setup({ snapshots: [], volumes });

    const report = await runRestoreTestJob(request(), deps);

    expect(volumes.deleted).toEqual(['vol-old']);
    expect(report.leftovers.map((l) => `${l.volumeId} ${l.outcome}`)).toEqual([
      'vol-old deleted',
      'vol-young kept',
      'vol-creating kept',
      'vol-in-use kept',
    ]);
    expect(report.status).toBe('partial');
  });

  it('keeps a volume whose "before" record cannot be written', async () => {
    const volumes = new FakeVolumes(() => ['available']);
    const journal = new RecordingJournal({ failBefore: ['vol-test-1'] });
    const { deps } = setup({ snapshots: [snapshot('snap-1', 'i-a')], volumes, journal });

    const report = await runRestoreTestJob(request(), deps);

    expect(volumes.deleted).toEqual([]);
    expect(report.counts.leftoversRemaining).toBe(1);
  });

  it('creates nothing when the "before" record of the restore cannot be written', async () => {
    const volumes = new FakeVolumes(() => ['available']);
    const journal = new RecordingJournal({ failBefore: ['snap-1'] });
    const { deps } = setup({ snapshots: [snapshot('snap-1', 'i-a')], volumes, journal });

    const report = await runRestoreTestJob(request(), deps);

    expect(volumes.created).toEqual([]);
    expect(report.instances[0]?.outcome).toBe('failed');
  });

  it('skips an instance whose zone is unknown, and says why', async () => {
    const volumes = new FakeVolumes(() => ['available']);
    const { deps } = setup({ snapshots: [snapshot('snap-1', 'i-gone')], volumes });

    const report = await runRestoreTestJob(request(), deps);

    expect(report.instances[0]).toMatchObject({ outcome: 'skipped' });
    expect(report.instances[0]?.reason).toMatch(/zone is unknown/);
    expect(volumes.created).toEqual([]);
  });

  it('refuses named instances without a completed set, by name', async () => {
    const volumes = new FakeVolumes(() => ['available']);
    const { deps } = setup({
      snapshots: [snapshot('snap-1', 'i-a', { state: 'pending' })],
      volumes,
    });

    await expect(runRestoreTestJob(request({ instanceIds: ['i-a'] }), deps)).rejects.toThrow(
      InvalidEventError,
    );
    await expect(runRestoreTestJob(request({ instanceIds: ['i-a'] }), deps)).rejects.toThrow(
      /field "instanceIds": i-a has no completed snapshot set/,
    );
  });
});

describe('Function: lastRestoreTests', () => {
  it('gives the last test and the last one that passed, with its time', async () => {
    const { deps } = setup({
      snapshots: [],
      volumes: new FakeVolumes(() => []),
      history: [
        testAction('i-a', '2026-11-22T06:00:00Z', 'failed'),
        testAction('i-a', '2026-11-21T06:00:00Z', 'done'),
      ],
    });

    const found = await lastRestoreTests(['i-a', 'i-b'], deps, []);

    expect(found.get('i-a')).toEqual({
      at: '2026-11-22T06:00:00Z',
      outcome: 'failed',
      seconds: 42,
      lastPassedAt: '2026-11-21T06:00:00Z',
      lastPassedSeconds: 42,
    });
    expect(found.has('i-b')).toBe(false);
  });

  it('takes an unreadable history as never tested, and says so', async () => {
    const { deps } = setup({ snapshots: [], volumes: new FakeVolumes(() => []) });
    const problems: string[] = [];

    const found = await lastRestoreTests(
      ['i-a'],
      { ...deps, history: { resourceHistory: async () => Promise.reject(new Error('throttled')) } },
      problems,
    );

    expect(found.size).toBe(0);
    expect(problems[0]).toMatch(/could not be read for i-a's last restore test/);
  });
});

describe('Function: restoreTestStatuses', () => {
  it('gives the last pass and its time, flags the never tested, and leaves the unreadable unknown', async () => {
    const { deps } = setup({
      snapshots: [],
      volumes: new FakeVolumes(() => []),
      history: [testAction('i-a', '2026-11-21T06:00:00Z', 'done')],
    });
    const history = {
      resourceHistory: async (id: string) => {
        if (id === 'i-c') throw new Error('throttled');
        return deps.history.resourceHistory(id);
      },
    };

    const { statuses, warnings } = await restoreTestStatuses(['i-a', 'i-b', 'i-c'], {
      ...deps,
      history,
    });

    expect(statuses.get('i-a')).toEqual({
      neverTested: false,
      lastTestedAt: '2026-11-21T06:00:00Z',
      lastOutcome: 'passed',
      lastPassedAt: '2026-11-21T06:00:00Z',
      lastPassedSeconds: 42,
    });
    expect(statuses.get('i-b')).toEqual({ neverTested: true });
    expect(statuses.has('i-c')).toBe(false);
    expect(warnings).toHaveLength(1);
  });
});
