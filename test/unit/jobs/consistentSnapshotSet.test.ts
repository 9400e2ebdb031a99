import { describe, expect, it, vi } from 'vitest';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import type { SnapshotSetRequest } from '../../../lib/domain/backupPlan.ts';
import { chooseConsistency, parseConsistency } from '../../../lib/domain/consistency.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import {
  type ConsistencyDependencies,
  commandsInFlight,
  takeConsistentSet,
} from '../../../lib/jobs/consistentSnapshotSet.ts';
import type {
  CommandInvocationState,
  RunCommandPort,
  RunCommandRequest,
} from '../../../lib/jobs/ports.ts';
import { recordingLogger } from '../../support/recordingLogger.ts';

const keys = tagKeys();
const KEY = keys.consistency;

const request: SnapshotSetRequest = {
  instanceId: 'i-db',
  excludeBootVolume: false,
  excludeDataVolumeIds: [],
  included: [{ volumeId: 'vol-1', deviceName: '/dev/xvda' }] as SnapshotSetRequest['included'],
  excluded: [],
  description: 'snapkeeper daily',
  tags: [{ Key: 'snapkeeper:managed', Value: 'true' }],
};

/** Answers per script: what SendCommand does, then the invocation states read in turn. */
interface Script {
  readonly send?: Error;
  readonly states?: readonly CommandInvocationState['state'][];
}

/** A Run Command port that answers the pre and post scripts as told, and records the order. */
function fakeSsm(pre: Script, post: Script = { states: ['success'] }) {
  const events: string[] = [];
  const sent: RunCommandRequest[] = [];
  const reads = new Map<string, number>();
  const ssm: RunCommandPort = {
    sendCommand: vi.fn(async (r: RunCommandRequest) => {
      const which = r.parameters.command?.[0] ?? '?';
      events.push(`send ${which}`);
      sent.push(r);
      const script = which === 'pre-script' ? pre : post;
      if (script.send) throw script.send;
      return `cmd-${which}`;
    }),
    commandInvocation: vi.fn(async (commandId: string) => {
      const script = commandId === 'cmd-pre-script' ? pre : post;
      const n = reads.get(commandId) ?? 0;
      reads.set(commandId, n + 1);
      const states = script.states ?? ['success'];
      const state = states[Math.min(n, states.length - 1)] ?? 'success';
      return {
        state,
        detail: state === 'failed' ? 'Failed / Failed' : state,
        ...(state === 'failed' ? { output: 'flush failed' } : {}),
      };
    }),
  };
  return { ssm, events, sent };
}

/** A clock that moves only when the job sleeps. */
function fakeTime() {
  let now = 0;
  return {
    now: () => now,
    sleep: async (ms: number) => {
      now += ms;
    },
  };
}

function deps(ssm: RunCommandPort, extra: Partial<ConsistencyDependencies> = {}) {
  const time = fakeTime();
  return {
    ssm,
    keys,
    logger: recordingLogger(),
    timeoutSeconds: 30,
    pollMs: 1_000,
    ...time,
    ...extra,
  } satisfies ConsistencyDependencies;
}

function tagValue(r: SnapshotSetRequest, key: string): string | undefined {
  return r.tags.find((t) => t.Key === key)?.Value;
}

function creator(events: string[], fail?: Error) {
  const made: SnapshotSetRequest[] = [];
  const create = vi.fn(async (r: SnapshotSetRequest) => {
    events.push('create');
    made.push(r);
    if (fail) throw fail;
    return [{ snapshotId: 'snap-1', volumeId: 'vol-1' }];
  });
  return { create, made };
}

const choose = (value?: string, schedule?: string) =>
  chooseConsistency(
    value === undefined ? {} : { [KEY]: value },
    KEY,
    schedule ? parseConsistency(schedule, 'consistency') : undefined,
  );

describe('takeConsistentSet', () => {
  it('makes a crash set at once, with no Run Command, when the mode is crash', async () => {
    const { ssm, events } = fakeSsm({});
    const { create, made } = creator(events);
    const result = await takeConsistentSet(request, choose(), create, deps(ssm));
    expect(events).toEqual(['create']);
    expect(result.kind).toBe('created');
    expect(result.consistency.outcome).toBe('crash');
    expect(tagValue(made[0] as SnapshotSetRequest, KEY)).toBe('crash');
    expect(tagValue(made[0] as SnapshotSetRequest, 'snapkeeper:managed')).toBe('true');
  });

  it('runs pre, waits for its success, creates tagged app, then runs post (fsfreeze)', async () => {
    const { ssm, events, sent } = fakeSsm({ states: ['missing', 'pending', 'success'] });
    const { create, made } = creator(events);
    const result = await takeConsistentSet(
      request,
      choose('fsfreeze'),
      create,
      deps(ssm, { fsfreezeDocument: 'snapkeeper-fsfreeze-dev' }),
    );
    expect(events).toEqual(['send pre-script', 'create', 'send post-script']);
    expect(result.kind).toBe('created');
    expect(result.consistency).toMatchObject({ outcome: 'app', problems: [] });
    expect(result.consistency.post?.state).toBe('success');
    expect(tagValue(made[0] as SnapshotSetRequest, KEY)).toBe('app');
    expect(sent[0]).toMatchObject({
      instanceId: 'i-db',
      document: 'snapkeeper-fsfreeze-dev',
      parameters: { command: ['pre-script'], maxFreezeSeconds: ['90'] },
      deliveryTimeoutSeconds: 30,
    });
  });

  it('runs the operator’s document at its version, with only the command parameter', async () => {
    const { ssm, events, sent } = fakeSsm({ states: ['success'] });
    const { create } = creator(events);
    await takeConsistentSet(request, choose('ssm:db-flush:3'), create, deps(ssm));
    expect(sent.map((s) => [s.document, s.documentVersion, s.parameters])).toEqual([
      ['db-flush', '3', { command: ['pre-script'] }],
      ['db-flush', '3', { command: ['post-script'] }],
    ]);
  });

  it('refuses, before any call, a document the stack does not list, and falls back with the fix', async () => {
    const { ssm, events } = fakeSsm({ states: ['success'] });
    const { create } = creator(events);
    const result = await takeConsistentSet(
      request,
      choose('ssm:other-doc'),
      create,
      deps(ssm, { allowedDocuments: ['db-flush'] }),
    );
    expect(events).toEqual(['create']);
    expect(result.consistency.outcome).toBe('crash-fallback');
    expect(result.consistency.reason).toContain(
      'other-doc is not listed in CONSISTENCY_DOCUMENTS (custom.consistency.documents)',
    );
  });

  it('uses the schedule option when the instance has no tag', async () => {
    const { ssm, events } = fakeSsm({ states: ['success'] });
    const { create } = creator(events);
    const result = await takeConsistentSet(
      request,
      choose(undefined, 'fsfreeze'),
      create,
      deps(ssm),
    );
    expect(result.consistency.outcome).toBe('app');
  });

  it('falls back to crash-consistent, with the reason, when the instance is not managed (no post: nothing ran)', async () => {
    const notManaged = new AwsCallError(
      'SendCommand',
      'InvalidInstanceId',
      'Instances not in a valid state',
    );
    const { ssm, events } = fakeSsm({ send: notManaged });
    const { create, made } = creator(events);
    const result = await takeConsistentSet(request, choose('fsfreeze'), create, deps(ssm));
    expect(events).toEqual(['send pre-script', 'create']);
    expect(result.kind).toBe('created');
    expect(result.consistency.outcome).toBe('crash-fallback');
    expect(result.consistency.reason).toContain('not managed by Systems Manager');
    expect(result.consistency.problems).toHaveLength(1);
    const tagged = made[0] as SnapshotSetRequest;
    expect(tagValue(tagged, KEY)).toBe('crash-fallback');
    expect(tagValue(tagged, keys.consistencyReason)).toContain('not managed by Systems Manager');
  });

  it('falls back when the pre script fails, and still runs the post script (a partial freeze is undone)', async () => {
    const { ssm, events } = fakeSsm({ states: ['pending', 'failed'] });
    const { create } = creator(events);
    const result = await takeConsistentSet(request, choose('ssm:db-flush'), create, deps(ssm));
    expect(events).toEqual(['send pre-script', 'create', 'send post-script']);
    expect(result.consistency.outcome).toBe('crash-fallback');
    expect(result.consistency.reason).toContain('pre script db-flush failed');
    expect(result.consistency.reason).toContain('flush failed');
  });

  it('falls back when the pre script times out after the set timeout, and still runs the post script', async () => {
    const { ssm, events } = fakeSsm({ states: ['pending'] });
    const { create } = creator(events);
    const time = fakeTime();
    const result = await takeConsistentSet(
      request,
      choose('fsfreeze'),
      create,
      deps(ssm, { timeoutSeconds: 5, ...time }),
    );
    expect(events).toEqual(['send pre-script', 'create', 'send post-script']);
    expect(result.consistency.outcome).toBe('crash-fallback');
    expect(result.consistency.reason).toContain('did not finish in time');
    expect(result.consistency.pre?.state).toBe('timed-out');
    // The pre script was waited for 5 s, not the default 30 s.
    expect(time.now()).toBe(5_000);
  });

  it('skips and reports, making no set, when ! forbids the fallback; the post script still runs', async () => {
    const { ssm, events } = fakeSsm({ states: ['failed'] });
    const { create } = creator(events);
    const result = await takeConsistentSet(request, choose('fsfreeze!'), create, deps(ssm));
    expect(create).not.toHaveBeenCalled();
    expect(events).toEqual(['send pre-script', 'send post-script']);
    expect(result.kind).toBe('skipped');
    expect(result.consistency.outcome).toBe('skipped');
    expect(result.consistency.reason).toContain('fsfreeze! asked for no fallback');
  });

  it('skips an unmanaged instance with ! and sends nothing else', async () => {
    const { ssm, events } = fakeSsm({
      send: new AwsCallError('SendCommand', 'InvalidInstanceId', 'not managed'),
    });
    const { create } = creator(events);
    const result = await takeConsistentSet(request, choose('ssm:db-flush!'), create, deps(ssm));
    expect(events).toEqual(['send pre-script']);
    expect(result.kind).toBe('skipped');
  });

  it('runs the post script after the snapshot call threw, and hands the error back', async () => {
    const { ssm, events } = fakeSsm({ states: ['success'] });
    const boom = new AwsCallError('CreateSnapshots', 'InternalError', 'boom');
    const { create } = creator(events, boom);
    const result = await takeConsistentSet(request, choose('fsfreeze'), create, deps(ssm));
    expect(events).toEqual(['send pre-script', 'create', 'send post-script']);
    expect(result).toMatchObject({ kind: 'create-failed', error: boom });
    expect(result.consistency.post?.state).toBe('success');
  });

  it.each([
    ['fails', { states: ['failed'] } as Script, 'failed'],
    ['times out', { states: ['pending'] } as Script, 'timed-out'],
    [
      'cannot be sent',
      { send: new AwsCallError('SendCommand', 'ThrottlingException', 'slow') },
      'send-failed',
    ],
  ])('reports a post script that %s, keeping the app set', async (_, post, state) => {
    const { ssm, events } = fakeSsm({ states: ['success'] }, post);
    const { create } = creator(events);
    const result = await takeConsistentSet(request, choose('fsfreeze'), create, deps(ssm));
    expect(result.kind).toBe('created');
    expect(result.consistency.outcome).toBe('app');
    expect(result.consistency.post?.state).toBe(state);
    expect(result.consistency.problems.join()).toContain(
      'the timer on the instance thaws the filesystems by itself',
    );
  });

  it('reports a snapshot call slower than the freeze bound (the timer may have thawed first)', async () => {
    const { ssm, events } = fakeSsm({ states: ['success'] });
    const time = fakeTime();
    const slow = vi.fn(async () => {
      events.push('create');
      await time.sleep(61_000);
      return [];
    });
    const result = await takeConsistentSet(request, choose('fsfreeze'), slow, deps(ssm, time));
    expect(result.consistency.problems.join()).toContain('may be only crash-consistent');
  });

  it('reports vss as not supported yet: a crash-fallback set, or skipped with !', async () => {
    const { ssm, events } = fakeSsm({});
    const { create, made } = creator(events);
    const fallback = await takeConsistentSet(request, choose('vss'), create, deps(ssm));
    expect(ssm.sendCommand).not.toHaveBeenCalled();
    expect(fallback.consistency.outcome).toBe('crash-fallback');
    expect(fallback.consistency.reason).toContain('vss is not supported yet');
    expect(tagValue(made[0] as SnapshotSetRequest, KEY)).toBe('crash-fallback');
    const strict = await takeConsistentSet(request, choose('vss!'), create, deps(ssm));
    expect(strict.kind).toBe('skipped');
  });

  it('tags a set crash-fallback with the tag problem when the tag is unreadable', async () => {
    const { ssm, events } = fakeSsm({});
    const { create, made } = creator(events);
    const result = await takeConsistentSet(request, choose('fsfreez'), create, deps(ssm, {}));
    expect(result.consistency.outcome).toBe('crash-fallback');
    expect(result.consistency.problems[0]).toContain('is not a consistency mode');
    expect(tagValue(made[0] as SnapshotSetRequest, KEY)).toBe('crash-fallback');
  });

  it('keeps a set within EC2’s 50 tags, the outcome tag first to stay', async () => {
    const { ssm, events } = fakeSsm({});
    const { create, made } = creator(events);
    const full = {
      ...request,
      tags: Array.from({ length: 50 }, (_, i) => ({ Key: `k${i}`, Value: 'v' })),
    };
    await takeConsistentSet(full, choose('crash'), create, deps(ssm));
    const tags = (made[0] as SnapshotSetRequest).tags;
    expect(tags).toHaveLength(50);
    expect(tagValue(made[0] as SnapshotSetRequest, KEY)).toBe('crash');
  });

  it('holds pre scripts to the in-flight limit, never post scripts', async () => {
    let inFlight = 0;
    let most = 0;
    const release: (() => void)[] = [];
    const ssm: RunCommandPort = {
      sendCommand: async (r) => `cmd-${r.instanceId}-${r.parameters.command?.[0]}`,
      commandInvocation: async (commandId) => {
        if (commandId.endsWith('post-script')) return { state: 'success', detail: 'Success' };
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise<void>((r) => release.push(r));
        inFlight -= 1;
        return { state: 'success', detail: 'Success' };
      },
    };
    const limit = commandsInFlight(2);
    const runs = [1, 2, 3, 4].map((n) =>
      takeConsistentSet(
        { ...request, instanceId: `i-${n}` },
        choose('fsfreeze'),
        async () => [],
        deps(ssm, { preLimit: limit }),
      ),
    );
    for (let i = 0; i < 40; i += 1) {
      await new Promise((r) => setTimeout(r, 1));
      release.shift()?.();
    }
    const results = await Promise.all(runs);
    expect(most).toBe(2);
    expect(results.map((r) => r.consistency.outcome)).toEqual(['app', 'app', 'app', 'app']);
  });
});
