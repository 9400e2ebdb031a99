import { describe, expect, it, vi } from 'vitest';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import type { SnapshotSetRequest } from '../../../lib/domain/backupPlan.ts';
import { chooseConsistency } from '../../../lib/domain/consistency.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type {
  CommandInvocationState,
  RunCommandPort,
  RunCommandRequest,
} from '../../../lib/jobs/ports.ts';
import {
  findVssSet,
  takeVssSet,
  type VssDependencies,
  vssParameters,
} from '../../../lib/jobs/vssSnapshotSet.ts';
import { recordingLogger } from '../../support/recordingLogger.ts';

const keys = tagKeys();

const request: SnapshotSetRequest = {
  instanceId: 'i-win',
  excludeBootVolume: false,
  excludeDataVolumeIds: [],
  included: [{ volumeId: 'vol-1', deviceName: '/dev/sda1' }] as SnapshotSetRequest['included'],
  excluded: [],
  description: 'snapkeeper daily',
  tags: [
    { Key: keys.managed, Value: 'true' },
    { Key: keys.deployment, Value: 'prod' },
    { Key: keys.schedule, Value: 'daily' },
    { Key: keys.slot, Value: '2026-12-06T03:00:00Z' },
    { Key: keys.instanceId, Value: 'i-win' },
    { Key: keys.runId, Value: 'run-1' },
    { Key: keys.retain, Value: '7' },
    { Key: 'Name', Value: 'sql-1' },
  ],
};

const choose = (value: string) =>
  chooseConsistency({ [keys.consistency]: value }, keys.consistency, undefined);

/** A Run Command port whose VSS command ends in `state` (or whose send throws). */
function fakeSsm(state: CommandInvocationState['state'], sendError?: Error) {
  const sent: RunCommandRequest[] = [];
  const ssm: RunCommandPort = {
    sendCommand: vi.fn(async (r: RunCommandRequest) => {
      sent.push(r);
      if (sendError) throw sendError;
      return 'cmd-vss';
    }),
    commandInvocation: vi.fn(async () => ({ state, detail: state })),
  };
  return { ssm, sent };
}

function deps(ssm: RunCommandPort): VssDependencies {
  let now = 0;
  return {
    ssm,
    keys,
    logger: recordingLogger(),
    vssTimeoutSeconds: 120,
    pollMs: 1_000,
    now: () => now,
    sleep: async (ms) => {
      now += ms;
    },
  };
}

/** `find` answering the listed sets in turn (undefined: none listed), recording the patience asked. */
function finder(answers: readonly (string[] | undefined)[]) {
  const calls: boolean[] = [];
  const find = vi.fn(async (_r: SnapshotSetRequest, patient: boolean) => {
    calls.push(patient);
    return answers[Math.min(calls.length - 1, answers.length - 1)];
  });
  return { find, calls };
}

function creator() {
  const made: SnapshotSetRequest[] = [];
  const create = vi.fn(async (r: SnapshotSetRequest) => {
    made.push(r);
    return ['snap-crash'];
  });
  return { create, made };
}

describe('vssParameters: the document parameters AWS documents for AWSEC2-CreateVssSnapshot', () => {
  it('passes snapkeeper’s own tags and consistency=app in the Key=k,Value=v;… form, snapshots only', () => {
    const built = vssParameters(request, keys);
    if (!('parameters' in built)) throw new Error(built.refused);
    const { parameters } = built;
    expect(parameters.CreateAmi).toEqual(['False']);
    expect(parameters.ExcludeBootVolume).toEqual(['False']);
    expect(parameters.NoWriters).toEqual(['False']);
    expect(parameters.CopyOnly).toEqual(['False']);
    expect(parameters.description).toEqual(['snapkeeper daily']);
    const tags = parameters.tags?.[0] ?? '';
    expect(tags.split(';')).toEqual([
      'Key=snapkeeper:managed,Value=true',
      'Key=snapkeeper:deployment,Value=prod',
      'Key=snapkeeper:schedule,Value=daily',
      'Key=snapkeeper:slot,Value=2026-12-06T03:00:00Z',
      'Key=snapkeeper:instance-id,Value=i-win',
      'Key=snapkeeper:run-id,Value=run-1',
      'Key=snapkeeper:retain,Value=7',
      'Key=snapkeeper:consistency,Value=app',
    ]);
    expect(tags).not.toContain('Name');
  });

  it('maps the boot-volume exclusion, and refuses data volumes tagged to skip (VSS snapshots every one)', () => {
    const boot = vssParameters({ ...request, excludeBootVolume: true }, keys);
    expect('parameters' in boot && boot.parameters.ExcludeBootVolume).toEqual(['True']);
    const skip = vssParameters({ ...request, excludeDataVolumeIds: ['vol-2'] }, keys);
    expect('refused' in skip && skip.refused).toContain('vol-2');
  });

  it('refuses a tag value the parameter cannot carry (a "," or ";") rather than drop it', () => {
    const tiers = {
      ...request,
      tags: [...request.tags, { Key: keys.retainTiers, Value: 'daily=7,weekly=4' }],
    };
    const built = vssParameters(tiers, keys);
    expect('refused' in built && built.refused).toContain('daily=7,weekly=4');
  });
});

describe('takeVssSet: a VSS set through Run Command, found by its tags', () => {
  it('sends the document once, waits, and answers the set it made, tagged app', async () => {
    const { ssm, sent } = fakeSsm('success');
    const { find, calls } = finder([undefined, ['snap-1', 'snap-2']]);
    const { create } = creator();
    const result = await takeVssSet(request, choose('vss'), create, find, deps(ssm));
    expect(result.kind).toBe('created');
    expect(result.kind === 'created' && result.value).toEqual(['snap-1', 'snap-2']);
    expect(result.consistency.outcome).toBe('app');
    expect(result.consistency.problems).toEqual([]);
    expect(create).not.toHaveBeenCalled();
    expect(sent).toHaveLength(1);
    expect(sent[0]?.document).toBe('AWSEC2-CreateVssSnapshot');
    expect(sent[0]?.parameters.executionTimeout).toEqual(['120']);
    expect(sent[0]?.deliveryTimeoutSeconds).toBe(120);
    // One quick look before sending, a patient one after.
    expect(calls).toEqual([false, true]);
  });

  it('keeps the exactly-once claim: a slot whose VSS set exists sends nothing again', async () => {
    const { ssm } = fakeSsm('success');
    const { find } = finder([['snap-1']]);
    const { create } = creator();
    const result = await takeVssSet(request, choose('vss'), create, find, deps(ssm));
    expect(result.kind === 'created' && result.value).toEqual(['snap-1']);
    expect(result.consistency.outcome).toBe('app');
    expect(ssm.sendCommand).not.toHaveBeenCalled();
    expect(create).not.toHaveBeenCalled();
  });

  it.each([
    ['failed', 'AWSEC2-CreateVssSnapshot failed'],
    ['timed-out', 'did not finish in time'],
    ['pending', 'did not finish in time'],
  ] as const)(
    'falls back to a crash-consistent set, reported, when the document ends %s',
    async (state, why) => {
      const { ssm } = fakeSsm(state);
      const { find } = finder([undefined]);
      const { create, made } = creator();
      const result = await takeVssSet(request, choose('vss'), create, find, deps(ssm));
      expect(result.kind === 'created' && result.value).toEqual(['snap-crash']);
      expect(result.consistency.outcome).toBe('crash-fallback');
      expect(result.consistency.reason).toContain(why);
      expect(result.consistency.problems).toHaveLength(1);
      expect(made[0]?.tags).toContainEqual({ Key: keys.consistency, Value: 'crash-fallback' });
    },
  );

  it('skips and reports with vss!, making no set', async () => {
    const { ssm } = fakeSsm('failed');
    const { find } = finder([undefined]);
    const { create } = creator();
    const result = await takeVssSet(request, choose('vss!'), create, find, deps(ssm));
    expect(result.kind).toBe('skipped');
    expect(result.consistency.problems.join()).toContain('no snapshot set made');
    expect(create).not.toHaveBeenCalled();
  });

  it('falls back without looking again when the instance is not managed by Systems Manager', async () => {
    const unmanaged = new AwsCallError('SendCommand', 'InvalidInstanceId', 'not managed');
    const { ssm } = fakeSsm('success', unmanaged);
    const { find, calls } = finder([undefined]);
    const { create } = creator();
    const result = await takeVssSet(request, choose('vss'), create, find, deps(ssm));
    expect(result.consistency.outcome).toBe('crash-fallback');
    expect(result.consistency.reason).toContain('not managed by Systems Manager');
    expect(calls).toEqual([false]);
  });

  it('keeps a set the document made although it ended failed, and reports it', async () => {
    const { ssm } = fakeSsm('timed-out');
    const { find } = finder([undefined, ['snap-late']]);
    const { create } = creator();
    const result = await takeVssSet(request, choose('vss'), create, find, deps(ssm));
    expect(result.kind === 'created' && result.value).toEqual(['snap-late']);
    expect(create).not.toHaveBeenCalled();
    expect(result.consistency.problems.join()).toContain('yet made this set');
  });

  it('falls back when the document succeeded but no set can be found', async () => {
    const { ssm } = fakeSsm('success');
    const { find } = finder([undefined]);
    const { create } = creator();
    const result = await takeVssSet(request, choose('vss'), create, find, deps(ssm));
    expect(result.consistency.outcome).toBe('crash-fallback');
    expect(result.consistency.reason).toContain('no snapshot of this slot');
  });

  it('falls back before any call for a set VSS cannot make as asked', async () => {
    const { ssm } = fakeSsm('success');
    const { find } = finder([undefined]);
    const { create } = creator();
    const skipping = { ...request, excludeDataVolumeIds: ['vol-2'] };
    const result = await takeVssSet(skipping, choose('vss'), create, find, deps(ssm));
    expect(ssm.sendCommand).not.toHaveBeenCalled();
    expect(result.consistency.outcome).toBe('crash-fallback');
  });

  it('treats a failing lookup as no set (never throws for it)', async () => {
    const { ssm } = fakeSsm('failed');
    const find = vi.fn(async () => {
      throw new Error('DescribeSnapshots throttled');
    });
    const { create } = creator();
    const result = await takeVssSet(request, choose('vss'), create, find, deps(ssm));
    expect(result.consistency.outcome).toBe('crash-fallback');
  });
});

describe('findVssSet: the slot’s set by its tags, re-read while EC2’s describe lags', () => {
  const facts = (id: string, state = 'pending'): SnapshotFacts => ({
    snapshotId: id,
    volumeId: `vol-${id}`,
    state,
    startTime: new Date('2026-12-06T03:00:05Z'),
    tags: {},
  });

  function reader(pages: SnapshotFacts[][]) {
    const filters: Record<string, unknown>[] = [];
    const slept: number[] = [];
    let read = 0;
    return {
      filters,
      slept,
      reader: {
        keys,
        ec2: {
          listSnapshotsTagged: (tags: Readonly<Record<string, string | readonly string[]>>) => {
            filters.push({ ...tags });
            const page = pages[Math.min(read, pages.length - 1)] ?? [];
            read += 1;
            return (async function* () {
              yield* page;
            })();
          },
        },
        waitsMs: [1_000, 2_000],
        sleep: async (ms: number) => {
          slept.push(ms);
        },
        timeLeftMs: () => 600_000,
      },
    };
  }

  it('filters by managed, deployment, schedule, slot and instance', async () => {
    const r = reader([[facts('snap-1')]]);
    const found = await findVssSet(request, false, r.reader);
    expect(found?.map((s) => s.snapshotId)).toEqual(['snap-1']);
    expect(r.filters[0]).toEqual({
      [keys.managed]: 'true',
      [keys.deployment]: 'prod',
      [keys.schedule]: 'daily',
      [keys.slot]: '2026-12-06T03:00:00Z',
      [keys.instanceId]: 'i-win',
    });
  });

  it('reads once when not patient, and again after each wait when patient', async () => {
    const quick = reader([[], [facts('snap-1')]]);
    expect(await findVssSet(request, false, quick.reader)).toBeUndefined();
    expect(quick.slept).toEqual([]);
    const patient = reader([[], [], [facts('snap-1')]]);
    expect((await findVssSet(request, true, patient.reader))?.length).toBe(1);
    expect(patient.slept).toEqual([1_000, 2_000]);
  });

  it('leaves out snapshots in the error state', async () => {
    const r = reader([[facts('snap-bad', 'error')]]);
    expect(await findVssSet(request, false, r.reader)).toBeUndefined();
  });
});
