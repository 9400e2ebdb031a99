import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BACKED_UP_INSTANCE_STATES,
  type BackupContext,
  buildResourceTags,
  formatSlot,
  type InstanceBackupDecision,
  type InstanceFacts,
  MAX_TAGS_PER_RESOURCE,
  planInstanceBackup,
  type SnapshotSetRequest,
  type VolumeAttachment,
} from '../../../lib/domain/backupPlan.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { TagMap } from '../../../lib/domain/tagPolicy.ts';

const keys = tagKeys();
const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const PROPERTY_RUNS = { numRuns: 200 };

const rootVolume: VolumeAttachment = { volumeId: 'vol-root', deviceName: '/dev/xvda' };
const dataVolume: VolumeAttachment = { volumeId: 'vol-data', deviceName: '/dev/xvdf' };
const logsVolume: VolumeAttachment = { volumeId: 'vol-logs', deviceName: '/dev/xvdg' };

function backupContext(overrides: Partial<BackupContext> = {}): BackupContext {
  return {
    keys,
    catalog,
    schedule: 'daily',
    slot: '2026-11-23T03:00:00Z',
    deployment: 'prod',
    runId: 'run-42',
    createdAt: '2026-11-23T03:00:07Z',
    copyTags: [],
    volumeTags: new Map(),
    ...overrides,
  };
}

function instance(overrides: Partial<InstanceFacts> = {}): InstanceFacts {
  return {
    instanceId: 'i-0123456789abcdef0',
    state: 'running',
    rootDeviceName: '/dev/xvda',
    tags: { 'snapkeeper:backup': 'daily', Name: 'web-1' },
    volumes: [rootVolume, dataVolume],
    ...overrides,
  };
}

function skipTagged(...volumeIds: string[]): Map<string, TagMap> {
  return new Map(volumeIds.map((id) => [id, { 'snapkeeper:skip': 'true' }]));
}

function requestOf(decision: InstanceBackupDecision): SnapshotSetRequest {
  if (decision.kind !== 'backup') {
    throw new Error(`expected a backup decision, got ${JSON.stringify(decision)}`);
  }
  return decision.request;
}

function tagValue(
  tags: readonly { Key: string; Value: string }[],
  key: string,
): string | undefined {
  return tags.find((tag) => tag.Key === key)?.Value;
}

describe('Function: planInstanceBackup', () => {
  it('backs up every attached volume of an opted-in running instance', () => {
    // Prepare
    const facts = instance();

    // Act
    const decision = planInstanceBackup(facts, backupContext());

    // Assess
    expect(decision.kind).toBe('backup');
    expect(decision).toMatchObject({
      instanceId: 'i-0123456789abcdef0',
      name: 'web-1',
      problems: [],
    });
    expect(requestOf(decision)).toMatchObject({
      instanceId: 'i-0123456789abcdef0',
      excludeBootVolume: false,
      excludeDataVolumeIds: [],
      included: [rootVolume, dataVolume],
      excluded: [],
    });
  });

  it.each(BACKED_UP_INSTANCE_STATES.map((state) => [state]))(
    'backs up an instance that is %s',
    (state) => {
      // Prepare
      const facts = instance({ state });

      // Act
      const decision = planInstanceBackup(facts, backupContext());

      // Assess
      expect(decision.kind).toBe('backup');
    },
  );

  it('backs up exactly the pending, running, stopping and stopped states', () => {
    // Prepare
    const expected = ['pending', 'running', 'stopping', 'stopped'];

    // Act
    const states = [...BACKED_UP_INSTANCE_STATES];

    // Assess
    expect(states.sort()).toEqual(expected.sort());
  });

  it.each(['shutting-down', 'terminated', 'unknown-state'])(
    'skips an instance that is %s, with the state as reason and no error',
    (state) => {
      // Prepare
      const facts = instance({ state });

      // Act
      const decision = planInstanceBackup(facts, backupContext());

      // Assess
      expect(decision).toEqual({
        kind: 'skip',
        instanceId: 'i-0123456789abcdef0',
        name: 'web-1',
        reason: `instance is ${state}`,
        isError: false,
        problems: [],
      });
    },
  );

  it.each([
    ['without the opt-in tag', { Name: 'web-1' }],
    ['with backup=false', { 'snapkeeper:backup': 'false' }],
    ['with an empty opt-in tag', { 'snapkeeper:backup': '' }],
    ['opted into weekly only', { 'snapkeeper:backup': 'weekly' }],
    ['opted in under another prefix', { 'acme:backup': 'daily' }],
  ])('does nothing for an instance %s', (_label, tags) => {
    // Prepare
    const facts = instance({ tags });

    // Act
    const decision = planInstanceBackup(facts, backupContext({ schedule: 'daily' }));

    // Assess
    expect(decision).toEqual({ kind: 'not-due', instanceId: 'i-0123456789abcdef0' });
  });

  it.each([
    ['daily', 'backup'],
    ['weekly', 'not-due'],
    ['monthly', 'not-due'],
  ])('reads backup=true as the default schedule: a %s run decides %s', (schedule, kind) => {
    // Prepare
    const facts = instance({ tags: { 'snapkeeper:backup': 'true' } });

    // Act
    const decision = planInstanceBackup(facts, backupContext({ schedule }));

    // Assess
    expect(decision.kind).toBe(kind);
  });

  it('backs up for every schedule of a list', () => {
    // Prepare
    const facts = instance({ tags: { 'snapkeeper:backup': 'Daily, MONTHLY' } });

    // Act
    const kinds = ['daily', 'weekly', 'monthly'].map(
      (schedule) => planInstanceBackup(facts, backupContext({ schedule })).kind,
    );

    // Assess
    expect(kinds).toEqual(['backup', 'not-due', 'backup']);
  });

  it('backs up a named instance without the opt-in tag when told to ignore opt-in', () => {
    // Prepare
    const facts = instance({ tags: { Name: 'db-1' } });

    // Act
    const decision = planInstanceBackup(
      facts,
      backupContext({ schedule: 'manual', ignoreOptIn: true }),
    );

    // Assess
    expect(decision.kind).toBe('backup');
    expect(tagValue(requestOf(decision).tags, 'snapkeeper:schedule')).toBe('manual');
  });

  it('skips with an error when the opt-in tag cannot be read at all', () => {
    // Prepare
    const facts = instance({ tags: { 'snapkeeper:backup': 'dialy', Name: 'web-1' } });

    // Act
    const decision = planInstanceBackup(facts, backupContext());

    // Assess
    expect(decision.kind).toBe('skip');
    expect(decision).toMatchObject({
      isError: true,
      reason: `not backed up for schedule daily: snapkeeper:backup="dialy" is not a known schedule; known: daily, weekly, monthly`,
    });
    expect(decision.kind === 'skip' && decision.problems.map((p) => p.key)).toEqual([
      'snapkeeper:backup',
    ]);
  });

  it('reports an AMI opt-in key that misses ours on an instance with no opt-in key of ours', () => {
    // Prepare: only reached through a fan-out batch of near misses (EC2 lists it for "*")
    const facts = instance({ tags: { 'Snapkeeper:ami': 'daily', Name: 'web-1' } });

    // Act
    const decision = planInstanceBackup(facts, backupContext());

    // Assess
    expect(decision).toMatchObject({ kind: 'skip', isError: true });
    expect(decision.kind === 'skip' && decision.problems.map((p) => p.key)).toEqual([
      'Snapkeeper:ami',
    ]);
    expect(decision.kind === 'skip' && decision.reason).toContain(
      'rename it to snapkeeper:ami; until it is renamed the instance gets no AMI by it',
    );
  });

  it('leaves an AMI key typo to the runs the instance is due in when it opts in correctly', () => {
    // Prepare: backed up weekly; its AMI key typo is reported by the weekly run
    const facts = instance({
      tags: { 'snapkeeper:backup': 'weekly', 'Snapkeeper:ami': 'daily', Name: 'web-1' },
    });

    // Act
    const decision = planInstanceBackup(facts, backupContext());

    // Assess
    expect(decision).toEqual({ kind: 'not-due', instanceId: 'i-0123456789abcdef0' });
  });

  it('backs up an instance the console restored, with no problem for the keys the console wrote on it', () => {
    // Prepare: restored by restore-instance, then opted in by the operator
    const facts = instance({
      tags: {
        'snapkeeper:backup': 'daily',
        'snapkeeper:restored-from': 'i-0fedcba9876543210',
        'snapkeeper:source-image': 'ami-0123456789abcdef0',
        Name: 'web-1-restored',
      },
    });

    // Act
    const decision = planInstanceBackup(facts, backupContext());

    // Assess
    expect(decision.kind).toBe('backup');
    expect(decision.kind === 'backup' && decision.problems).toEqual([]);
  });

  it('still backs up the correctly named schedules and reports the bad one', () => {
    // Prepare
    const facts = instance({ tags: { 'snapkeeper:backup': 'daily,dialy' } });

    // Act
    const decision = planInstanceBackup(facts, backupContext());

    // Assess
    expect(decision.kind).toBe('backup');
    expect(decision.kind === 'backup' && decision.problems).toHaveLength(1);
    expect(requestOf(decision).included).toEqual([rootVolume, dataVolume]);
  });

  it('leaves the root volume out with exclude-boot=true', () => {
    // Prepare
    const facts = instance({
      tags: { 'snapkeeper:backup': 'daily', 'snapkeeper:exclude-boot': 'true' },
    });

    // Act
    const request = requestOf(planInstanceBackup(facts, backupContext()));

    // Assess
    expect(request.excludeBootVolume).toBe(true);
    expect(request.excludeDataVolumeIds).toEqual([]);
    expect(request.included).toEqual([dataVolume]);
    expect(request.excluded).toEqual([
      { volume: rootVolume, reason: 'boot volume excluded by snapkeeper:exclude-boot=true' },
    ]);
  });

  it('keeps the root volume with exclude-boot=false', () => {
    // Prepare
    const facts = instance({
      tags: { 'snapkeeper:backup': 'daily', 'snapkeeper:exclude-boot': 'FALSE' },
    });

    // Act
    const request = requestOf(planInstanceBackup(facts, backupContext()));

    // Assess
    expect(request.excludeBootVolume).toBe(false);
    expect(request.included).toEqual([rootVolume, dataVolume]);
  });

  it('leaves a data volume tagged skip=true out by its id', () => {
    // Prepare
    const facts = instance({ volumes: [rootVolume, dataVolume, logsVolume] });
    const context = backupContext({ volumeTags: skipTagged('vol-logs') });

    // Act
    const request = requestOf(planInstanceBackup(facts, context));

    // Assess
    expect(request.excludeBootVolume).toBe(false);
    expect(request.excludeDataVolumeIds).toEqual(['vol-logs']);
    expect(request.included).toEqual([rootVolume, dataVolume]);
    expect(request.excluded).toEqual([
      { volume: logsVolume, reason: 'volume tagged snapkeeper:skip=true' },
    ]);
  });

  it('leaves a root volume tagged skip=true out as the boot volume', () => {
    // Prepare
    const facts = instance();
    const context = backupContext({ volumeTags: skipTagged('vol-root') });

    // Act
    const request = requestOf(planInstanceBackup(facts, context));

    // Assess
    expect(request.excludeBootVolume).toBe(true);
    expect(request.excludeDataVolumeIds).toEqual([]);
    expect(request.included).toEqual([dataVolume]);
  });

  it('backs up the root volume and reports a problem when exclude-boot is not a boolean', () => {
    // Prepare
    const facts = instance({
      tags: { 'snapkeeper:backup': 'daily', 'snapkeeper:exclude-boot': 'yes' },
    });

    // Act
    const decision = planInstanceBackup(facts, backupContext());

    // Assess
    expect(requestOf(decision).excludeBootVolume).toBe(false);
    expect(requestOf(decision).included).toEqual([rootVolume, dataVolume]);
    expect(decision.kind === 'backup' && decision.problems).toEqual([
      expect.objectContaining({
        resourceId: 'i-0123456789abcdef0',
        key: 'snapkeeper:exclude-boot',
        value: 'yes',
      }),
    ]);
  });

  it('backs up a volume and reports a problem when its skip tag is not a boolean', () => {
    // Prepare
    const facts = instance();
    const context = backupContext({
      volumeTags: new Map([['vol-data', { 'snapkeeper:skip': 'maybe' }]]),
    });

    // Act
    const decision = planInstanceBackup(facts, context);

    // Assess
    expect(requestOf(decision).included).toEqual([rootVolume, dataVolume]);
    expect(requestOf(decision).excludeDataVolumeIds).toEqual([]);
    expect(decision.kind === 'backup' && decision.problems).toEqual([
      expect.objectContaining({ resourceId: 'vol-data', key: 'snapkeeper:skip', value: 'maybe' }),
    ]);
  });

  it('reads the volume skip tag under the configured prefix', () => {
    // Prepare
    const acme = tagKeys('acme:');
    const facts = instance({ tags: { 'acme:backup': 'daily' } });
    const context = backupContext({
      keys: acme,
      volumeTags: new Map([
        ['vol-root', { 'snapkeeper:skip': 'true' }],
        ['vol-data', { 'acme:skip': 'true' }],
      ]),
    });

    // Act
    const request = requestOf(planInstanceBackup(facts, context));

    // Assess
    expect(request.included).toEqual([rootVolume]);
    expect(request.excludeDataVolumeIds).toEqual(['vol-data']);
  });

  it('skips without an error when no volume is left after exclusions', () => {
    // Prepare
    const facts = instance({
      tags: { 'snapkeeper:backup': 'daily', 'snapkeeper:exclude-boot': 'true', Name: 'web-1' },
    });
    const context = backupContext({ volumeTags: skipTagged('vol-data') });

    // Act
    const decision = planInstanceBackup(facts, context);

    // Assess
    expect(decision).toEqual({
      kind: 'skip',
      instanceId: 'i-0123456789abcdef0',
      name: 'web-1',
      reason: 'no volumes left after exclusions',
      isError: false,
      problems: [],
    });
  });

  it('skips without an error an instance with no EBS volume attached', () => {
    // Prepare
    const facts = instance({ volumes: [] });

    // Act
    const decision = planInstanceBackup(facts, backupContext());

    // Assess
    expect(decision.kind).toBe('skip');
    expect(decision).toMatchObject({
      isError: false,
      reason: 'instance has no EBS volumes attached',
    });
  });

  it('tags the snapshot set at creation with the resource tags of the run', () => {
    // Prepare
    const facts = instance({
      tags: { 'snapkeeper:backup': 'daily', Name: 'web-1', CostCenter: '42' },
    });
    const context = backupContext({ copyTags: ['CostCenter'] });

    // Act
    const request = requestOf(planInstanceBackup(facts, context));

    // Assess
    expect(request.tags).toEqual(buildResourceTags(facts.instanceId, facts.tags, context));
    expect(tagValue(request.tags, 'CostCenter')).toBe('42');
  });

  it('describes the snapshot set by schedule, slot, instance and name', () => {
    // Prepare
    const facts = instance();

    // Act
    const request = requestOf(planInstanceBackup(facts, backupContext()));

    // Assess
    expect(request.description).toBe(
      'snapkeeper daily 2026-11-23T03:00:00Z i-0123456789abcdef0 (web-1)',
    );
  });

  it('keeps the description within 255 characters for a very long name', () => {
    // Prepare
    const facts = instance({ tags: { 'snapkeeper:backup': 'daily', Name: 'n'.repeat(400) } });

    // Act
    const request = requestOf(planInstanceBackup(facts, backupContext()));

    // Assess
    expect(request.description.length).toBeLessThanOrEqual(255);
    expect(request.description.startsWith('snapkeeper daily ')).toBe(true);
  });

  describe('Properties', () => {
    const BOOLEAN_VALUES = ['true', 'TRUE', ' true ', 'false', 'False', 'maybe', '', '1'];
    const booleanTag = fc.option(fc.constantFrom(...BOOLEAN_VALUES), { nil: undefined });
    const isTrue = (value: string | undefined): boolean => value?.trim().toLowerCase() === 'true';

    const volumeSet = fc
      .uniqueArray(fc.integer({ min: 0, max: 25 }), { maxLength: 8 })
      .map((indexes) =>
        indexes.map((i) => ({
          volumeId: `vol-${i.toString(16).padStart(4, '0')}`,
          deviceName: `/dev/xvd${String.fromCharCode(97 + i)}`,
        })),
      );

    const scenario = fc
      .record({
        volumes: volumeSet,
        rootIndex: fc.option(fc.nat(7), { nil: undefined }),
        state: fc.constantFrom(...BACKED_UP_INSTANCE_STATES),
        excludeBoot: booleanTag,
        skips: fc.array(booleanTag, { minLength: 8, maxLength: 8 }),
      })
      .map(({ volumes, rootIndex, state, excludeBoot, skips }) => {
        const root = rootIndex === undefined ? undefined : volumes[rootIndex];
        const tags: Record<string, string> = { 'snapkeeper:backup': 'daily' };
        if (excludeBoot !== undefined) tags['snapkeeper:exclude-boot'] = excludeBoot;
        const volumeTags = new Map<string, TagMap>();
        volumes.forEach((volume, i) => {
          const skip = skips[i];
          if (skip !== undefined) volumeTags.set(volume.volumeId, { 'snapkeeper:skip': skip });
        });
        const facts: InstanceFacts = {
          instanceId: 'i-0abc',
          state,
          rootDeviceName: root?.deviceName ?? '/dev/sda1',
          tags,
          volumes,
        };
        return { facts, root, volumeTags };
      });

    it('splits the attached volumes into included and excluded, disjoint and complete', () => {
      fc.assert(
        fc.property(scenario, ({ facts, volumeTags }) => {
          // Act
          const decision = planInstanceBackup(facts, backupContext({ volumeTags }));

          // Assess
          if (decision.kind !== 'backup') {
            expect(decision).toMatchObject({ kind: 'skip', isError: false });
            return;
          }
          const included = decision.request.included.map((v) => v.volumeId);
          const excluded = decision.request.excluded.map((e) => e.volume.volumeId);
          expect(new Set([...included, ...excluded])).toEqual(
            new Set(facts.volumes.map((v) => v.volumeId)),
          );
          expect(included.length + excluded.length).toBe(facts.volumes.length);
          expect(included.filter((id) => excluded.includes(id))).toEqual([]);
        }),
        PROPERTY_RUNS,
      );
    });

    it('excludes the boot volume exactly when exclude-boot or its skip tag asks for it', () => {
      fc.assert(
        fc.property(scenario, ({ facts, root, volumeTags }) => {
          // Prepare
          const rootSkip = root ? volumeTags.get(root.volumeId)?.['snapkeeper:skip'] : undefined;
          const requested =
            isTrue(facts.tags['snapkeeper:exclude-boot']) ||
            (root !== undefined && isTrue(rootSkip));

          // Act
          const decision = planInstanceBackup(facts, backupContext({ volumeTags }));

          // Assess
          if (decision.kind !== 'backup') return;
          expect(decision.request.excludeBootVolume).toBe(requested);
          if (root) {
            const rootExcluded = decision.request.excluded.some(
              (e) => e.volume.volumeId === root.volumeId,
            );
            expect(rootExcluded).toBe(requested);
            expect(decision.request.excludeDataVolumeIds).not.toContain(root.volumeId);
          }
        }),
        PROPERTY_RUNS,
      );
    });

    it('lists exactly the skipped data volumes as ExcludeDataVolumeIds', () => {
      fc.assert(
        fc.property(scenario, ({ facts, root, volumeTags }) => {
          // Prepare
          const expected = facts.volumes
            .filter((v) => v.volumeId !== root?.volumeId)
            .filter((v) => isTrue(volumeTags.get(v.volumeId)?.['snapkeeper:skip']))
            .map((v) => v.volumeId);

          // Act
          const decision = planInstanceBackup(facts, backupContext({ volumeTags }));

          // Assess
          if (decision.kind !== 'backup') return;
          expect(decision.request.excludeDataVolumeIds).toEqual(expected);
        }),
        PROPERTY_RUNS,
      );
    });

    it('skips without an error exactly when no volume is left', () => {
      fc.assert(
        fc.property(scenario, ({ facts, root, volumeTags }) => {
          // Prepare
          const excludeBoot = isTrue(facts.tags['snapkeeper:exclude-boot']);
          const left = facts.volumes.filter((v) => {
            if (v.volumeId === root?.volumeId && excludeBoot) return false;
            return !isTrue(volumeTags.get(v.volumeId)?.['snapkeeper:skip']);
          });

          // Act
          const decision = planInstanceBackup(facts, backupContext({ volumeTags }));

          // Assess
          expect(decision.kind).toBe(left.length === 0 ? 'skip' : 'backup');
          if (decision.kind === 'skip') expect(decision.isError).toBe(false);
        }),
        PROPERTY_RUNS,
      );
    });

    it('reports every unreadable boolean tag as a problem', () => {
      fc.assert(
        fc.property(scenario, ({ facts, volumeTags }) => {
          // Prepare
          const readable = (value: string | undefined): boolean =>
            value === undefined || ['true', 'false'].includes(value.trim().toLowerCase());
          const expected = [
            facts.tags['snapkeeper:exclude-boot'],
            ...facts.volumes.map((v) => volumeTags.get(v.volumeId)?.['snapkeeper:skip']),
          ].filter((value) => !readable(value)).length;

          // Act
          const decision = planInstanceBackup(facts, backupContext({ volumeTags }));

          // Assess
          expect(decision.kind === 'not-due' ? [] : decision.problems).toHaveLength(expected);
        }),
        PROPERTY_RUNS,
      );
    });
  });
});

describe('Function: buildResourceTags', () => {
  it('writes our tags first, then the Name, then the copied tags in configured order', () => {
    // Prepare
    const instanceTags = { Team: 'core', Name: 'web-1', CostCenter: '42', Other: 'x' };
    const context = backupContext({ copyTags: ['CostCenter', 'Team'] });

    // Act
    const tags = buildResourceTags('i-1', instanceTags, context);

    // Assess
    expect(tags).toEqual([
      { Key: 'snapkeeper:managed', Value: 'true' },
      { Key: 'snapkeeper:deployment', Value: 'prod' },
      { Key: 'snapkeeper:schedule', Value: 'daily' },
      { Key: 'snapkeeper:slot', Value: '2026-11-23T03:00:00Z' },
      { Key: 'snapkeeper:instance-id', Value: 'i-1' },
      { Key: 'snapkeeper:run-id', Value: 'run-42' },
      { Key: 'snapkeeper:created-at', Value: '2026-11-23T03:00:07Z' },
      { Key: 'Name', Value: 'web-1' },
      { Key: 'CostCenter', Value: '42' },
      { Key: 'Team', Value: 'core' },
    ]);
  });

  it('leaves out the Name and copied tags the instance does not have', () => {
    // Prepare
    const context = backupContext({ copyTags: ['CostCenter'] });

    // Act
    const tags = buildResourceTags('i-1', { Team: 'core' }, context);

    // Assess
    expect(tags.map((t) => t.Key)).toEqual([
      'snapkeeper:managed',
      'snapkeeper:deployment',
      'snapkeeper:schedule',
      'snapkeeper:slot',
      'snapkeeper:instance-id',
      'snapkeeper:run-id',
      'snapkeeper:created-at',
    ]);
  });

  it.each([
    ['an aws: key', 'aws:cloudformation:stack-name'],
    ['an AWS: key in upper case', 'AWS:Team'],
    ['one of our keys', 'snapkeeper:managed'],
    ['an operator key under our prefix', 'snapkeeper:backup'],
  ])('never copies %s', (_label, key) => {
    // Prepare
    const instanceTags = { [key]: 'copied', 'snapkeeper:backup': 'daily' };
    const context = backupContext({ copyTags: [key] });

    // Act
    const tags = buildResourceTags('i-1', instanceTags, context);

    // Assess
    expect(tags.filter((t) => t.Value === 'copied')).toEqual([]);
    expect(tagValue(tags, 'snapkeeper:managed')).toBe('true');
  });

  it('writes and guards the keys of the configured prefix', () => {
    // Prepare
    const context = backupContext({
      keys: tagKeys('acme:'),
      copyTags: ['acme:owner', 'snapkeeper:owner'],
    });
    const instanceTags = { 'acme:owner': 'a', 'snapkeeper:owner': 'b' };

    // Act
    const tags = buildResourceTags('i-1', instanceTags, context);

    // Assess
    expect(tagValue(tags, 'acme:managed')).toBe('true');
    expect(tagValue(tags, 'acme:deployment')).toBe('prod');
    expect(tagValue(tags, 'acme:owner')).toBeUndefined();
    expect(tagValue(tags, 'snapkeeper:owner')).toBe('b');
  });

  it('copies only tags the instance has, even for keys named like object members', () => {
    // Prepare: tag maps are plain objects, as toTagMap builds them.
    const instanceTags: Record<string, string> = { Name: 'web-1' };
    const context = backupContext({ copyTags: ['constructor', 'toString', 'hasOwnProperty'] });

    // Act
    const tags = buildResourceTags('i-1', instanceTags, context);

    // Assess
    expect(tags.map((t) => t.Key)).not.toContain('constructor');
    expect(tags.every((t) => typeof t.Value === 'string')).toBe(true);
    expect(tags).toHaveLength(8);
  });

  it('copies a tag listed twice only once', () => {
    // Prepare
    const context = backupContext({ copyTags: ['Team', 'Name', 'Team'] });

    // Act
    const tags = buildResourceTags('i-1', { Team: 'core', Name: 'web-1' }, context);

    // Assess
    expect(tags.filter((t) => t.Key === 'Team')).toHaveLength(1);
    expect(tags.filter((t) => t.Key === 'Name')).toHaveLength(1);
  });

  it(`stops at EC2's limit of ${MAX_TAGS_PER_RESOURCE} tags, keeping ours`, () => {
    // Prepare
    const copyTags = Array.from({ length: 60 }, (_, i) => `Tag${i}`);
    const instanceTags = Object.fromEntries(copyTags.map((key) => [key, key.toLowerCase()]));
    const context = backupContext({ copyTags });

    // Act
    const tags = buildResourceTags('i-1', instanceTags, context);

    // Assess
    expect(MAX_TAGS_PER_RESOURCE).toBe(50);
    expect(tags).toHaveLength(50);
    expect(tags[0]).toEqual({ Key: 'snapkeeper:managed', Value: 'true' });
    expect(tags.at(-1)).toEqual({ Key: 'Tag42', Value: 'tag42' });
  });

  it('always carries managed=true and the deployment, within 50 tags, never an aws: or copied prefix key', () => {
    // Prepare
    const key = fc.oneof(
      fc.string({ minLength: 1, maxLength: 12 }),
      fc.constantFrom('Name', 'aws:', 'AWS:x', 'Aws:cost', 'snapkeeper:', 'snapkeeper:x', 'Team'),
      fc.string({ maxLength: 6 }).map((s) => `aws:${s}`),
      fc.string({ maxLength: 6 }).map((s) => `snapkeeper:${s}`),
    );
    const instanceTags = fc
      .array(fc.tuple(key, fc.string({ maxLength: 8 })), { maxLength: 80 })
      .map((entries) => {
        const map: Record<string, string> = Object.create(null);
        for (const [k, v] of entries) map[k] = v;
        return map;
      });
    const deployment = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,15}$/);

    fc.assert(
      fc.property(
        instanceTags,
        fc.array(key, { maxLength: 80 }),
        deployment,
        (tags, copyTags, stage) => {
          // Act
          const written = buildResourceTags(
            'i-1',
            tags,
            backupContext({ copyTags, deployment: stage }),
          );

          // Assess
          const ours = new Set(Object.values(keys).filter((k) => k !== keys.prefix));
          expect(written.length).toBeLessThanOrEqual(MAX_TAGS_PER_RESOURCE);
          expect(written).toContainEqual({ Key: 'snapkeeper:managed', Value: 'true' });
          expect(written).toContainEqual({ Key: 'snapkeeper:deployment', Value: stage });
          expect(new Set(written.map((t) => t.Key)).size).toBe(written.length);
          for (const tag of written) {
            expect(tag.Key.toLowerCase().startsWith('aws:')).toBe(false);
            if (tag.Key.startsWith('snapkeeper:')) expect(ours.has(tag.Key)).toBe(true);
            else expect(tag.Value).toBe(tags[tag.Key]);
          }
        },
      ),
      PROPERTY_RUNS,
    );
  });

  it('tags every backup decision with managed=true and the deployment', () => {
    // Prepare
    const copyKey = fc.oneof(
      fc.constantFrom('Name', 'Team', 'aws:x', 'snapkeeper:managed'),
      fc.string({ minLength: 1, maxLength: 8 }),
    );

    fc.assert(
      fc.property(
        fc.array(copyKey, { maxLength: 60 }),
        fc.constantFrom(...BACKED_UP_INSTANCE_STATES),
        (copyTags, state) => {
          // Prepare
          const tags: Record<string, string> = Object.create(null);
          for (const k of copyTags) tags[k] = `v-${k}`;
          tags.Name = 'web-1';
          tags['snapkeeper:backup'] = 'daily';

          // Act
          const decision = planInstanceBackup(
            instance({ state, tags }),
            backupContext({ copyTags, deployment: 'staging' }),
          );

          // Assess
          const written = requestOf(decision).tags;
          expect(written.length).toBeLessThanOrEqual(MAX_TAGS_PER_RESOURCE);
          expect(tagValue(written, 'snapkeeper:managed')).toBe('true');
          expect(tagValue(written, 'snapkeeper:deployment')).toBe('staging');
          expect(written.some((t) => t.Key.toLowerCase().startsWith('aws:'))).toBe(false);
        },
      ),
      PROPERTY_RUNS,
    );
  });
});

describe('Function: formatSlot', () => {
  it.each([
    ['2026-11-23T03:00:00.000Z', '2026-11-23T03:00:00Z'],
    ['2026-11-23T03:00:00.999Z', '2026-11-23T03:00:00Z'],
    ['2026-02-01T00:00:59.000Z', '2026-02-01T00:00:59Z'],
  ])('formats %s as %s, ISO 8601 UTC to the second', (time, expected) => {
    // Prepare
    const when = new Date(time);

    // Act
    const slot = formatSlot(when);

    // Assess
    expect(slot).toBe(expected);
  });
});
