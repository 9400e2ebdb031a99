import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { InstanceFacts } from '../../../lib/domain/backupPlan.ts';
import type { ImageFacts } from '../../../lib/domain/imagePlan.ts';
import {
  type ImageRetentionInput,
  type ImageRetentionPlan,
  planImageRetention,
} from '../../../lib/domain/imageRetention.ts';
import { imagePointState } from '../../../lib/domain/imageRetirement.ts';
import { isDisasterRecoveryCopy, type Ownership } from '../../../lib/domain/provenance.ts';
import {
  DEFAULT_SCHEDULES,
  parseScheduleCatalog,
  resolveSchedule,
} from '../../../lib/domain/schedules.ts';
import { isManagedBy } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { TagMap } from '../../../lib/domain/tagPolicy.ts';

const keys = tagKeys();
const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const schedule = resolveSchedule(catalog, 'daily');
const DEPLOYMENT = 'prod';
const NOW = new Date('2026-11-23T03:00:30.000Z');
const DAY_MS = 86_400_000;
const PROPERTY_RUNS = { numRuns: 300 };
const INSTANCES = ['i-a', 'i-b', 'i-c'] as const;

function ours(instanceId: string, extra: TagMap = {}): TagMap {
  return {
    [keys.managed]: 'true',
    [keys.deployment]: DEPLOYMENT,
    [keys.schedule]: 'daily',
    [keys.instanceId]: instanceId,
    ...extra,
  };
}

function image(
  imageId: string,
  instanceId: string,
  daysAgo: number,
  overrides: Partial<ImageFacts> = {},
): ImageFacts {
  return {
    imageId,
    name: imageId,
    state: 'available',
    creationDate: new Date(NOW.getTime() - daysAgo * DAY_MS - 25_000),
    tags: ours(instanceId),
    snapshotIds: [`snap-${imageId}`],
    sizeGiB: 8,
    deregistrationProtected: false,
    isPublic: false,
    ...overrides,
  };
}

function instance(instanceId: string, tags: TagMap): InstanceFacts {
  return {
    instanceId,
    state: 'running',
    rootDeviceName: '/dev/xvda',
    tags,
    volumes: [{ volumeId: `vol-${instanceId}`, deviceName: '/dev/xvda' }],
  };
}

function input(overrides: Partial<ImageRetentionInput> = {}): ImageRetentionInput {
  return {
    images: [],
    instances: [],
    usage: new Map(),
    ownership: { kind: 'tags' },
    schedule,
    catalog,
    keys,
    deployment: DEPLOYMENT,
    now: NOW,
    ...overrides,
  };
}

const retiredIds = (plan: ImageRetentionPlan) => plan.retire.map((r) => r.imageId);

describe('Function: planImageRetention', () => {
  describe('Examples', () => {
    it("retires the AMIs beyond the instance's ami-retain count, newest kept", () => {
      // Prepare
      const images = [0, 1, 2, 3].map((d) => image(`ami-d${d}`, 'i-a', d));
      const instances = [instance('i-a', { [keys.ami]: 'daily', [keys.amiRetain]: '2' })];

      // Act
      const plan = planImageRetention(input({ images, instances }));

      // Assess
      expect(plan.retire).toEqual([
        { instanceId: 'i-a', imageId: 'ami-d2', reason: 'beyond count 2' },
        { instanceId: 'i-a', imageId: 'ami-d3', reason: 'beyond count 2' },
      ]);
      expect(plan.kept.map((k) => k.imageId)).toEqual(['ami-d0', 'ami-d1']);
      expect(plan.warnings).toEqual([]);
    });

    it('blocks an AMI an instance was launched from, with its size', () => {
      // Prepare
      const images = [0, 1].map((d) => image(`ami-d${d}`, 'i-a', d));
      const instances = [instance('i-a', { [keys.ami]: 'daily', [keys.amiRetain]: '1' })];

      // Act
      const plan = planImageRetention(
        input({ images, instances, usage: new Map([['ami-d1', ['instance i-x']]]) }),
      );

      // Assess
      expect(plan.retire).toEqual([]);
      expect(plan.blocked).toEqual([
        {
          imageId: 'ami-d1',
          instanceId: 'i-a',
          reason: 'beyond count 1, but held by instance i-x',
          heldBy: ['instance i-x'],
          sizeGiB: 8,
        },
      ]);
    });

    it('keeps a whole lineage, with a warning, when the opt-in tag cannot be read', () => {
      // Prepare
      const images = [0, 1, 2].map((d) => image(`ami-d${d}`, 'i-a', d));
      const instances = [instance('i-a', { [keys.ami]: 'dialy' })];

      // Act
      const plan = planImageRetention(input({ images, instances }));

      // Assess
      expect(plan.retire).toEqual([]);
      expect(plan.warnings).toEqual([expect.stringMatching(/^i-a: .*; nothing deregistered$/)]);
    });

    it('keeps a disaster-recovery copy and an AMI the history has no record of, naming why', () => {
      // Prepare
      const images = [
        image('ami-d0', 'i-a', 0),
        image('ami-copy', 'i-a', 5, { tags: ours('i-a', { [keys.sourceRegion]: 'eu-west-1' }) }),
        image('ami-unrecorded', 'i-a', 6),
      ];
      const ownership: Ownership = {
        kind: 'history',
        recorded: new Map(),
        ledgerStart: new Date('2020-01-01T00:00:00Z'),
      };

      // Act
      const plan = planImageRetention(
        input({
          images,
          instances: [instance('i-a', { [keys.ami]: 'daily', [keys.amiRetain]: '1' })],
          ownership,
        }),
      );

      // Assess
      expect(retiredIds(plan)).toEqual([]);
      const reasons = new Map(plan.kept.map((k) => [k.imageId, k.reason]));
      expect(reasons.get('ami-copy')).toBe(
        "kept: a disaster-recovery copy (the copy job's retention owns it)",
      );
      expect(reasons.get('ami-unrecorded')).toMatch(/no record of creating it/);
    });

    it('keeps the ami-retain recorded on an orphan’s AMIs, not the schedule’s default', () => {
      // Prepare: i-gone is terminated; its AMIs recorded ami-retain=3.
      const images = [0, 1, 2, 3, 4].map((d) =>
        image(`ami-d${d}`, 'i-gone', d, { tags: ours('i-gone', { [keys.amiRetain]: '3' }) }),
      );

      // Act
      const plan = planImageRetention(input({ images }));

      // Assess
      expect(retiredIds(plan)).toEqual(['ami-d3', 'ami-d4']);
    });
  });

  describe('Properties', () => {
    const stateArbitrary = fc.constantFrom(
      'available',
      'available',
      'pending',
      'failed',
      'disabled',
    );
    const imageSpec = fc.record({
      instance: fc.constantFrom(...INSTANCES, 'i-gone'),
      daysAgo: fc.integer({ min: 0, max: 40 }),
      state: stateArbitrary,
      kind: fc.constantFrom('ours', 'ours', 'ours', 'unmanaged', 'other-stage', 'copy'),
      held: fc.boolean(),
      recorded: fc.boolean(),
    });
    const scenario = fc.record({
      specs: fc.array(imageSpec, { maxLength: 14 }),
      retain: fc.record({
        'i-a': fc.integer({ min: 1, max: 5 }),
        'i-b': fc.integer({ min: 1, max: 5 }),
        'i-c': fc.integer({ min: 1, max: 5 }),
      }),
      byHistory: fc.boolean(),
      seed: fc.integer(),
    });
    type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

    function build(s: Scenario): ImageRetentionInput {
      const images = s.specs.map((spec, n) => {
        const tags =
          spec.kind === 'unmanaged'
            ? { Name: 'by hand', [keys.instanceId]: spec.instance }
            : spec.kind === 'other-stage'
              ? ours(spec.instance, { [keys.deployment]: 'staging' })
              : spec.kind === 'copy'
                ? ours(spec.instance, { [keys.sourceImageId]: 'ami-source' })
                : ours(spec.instance);
        return image(`ami-${String(n).padStart(2, '0')}`, spec.instance, spec.daysAgo, {
          state: spec.state,
          tags,
        });
      });
      const usage = new Map(
        s.specs.flatMap((spec, n) =>
          spec.held ? [[`ami-${String(n).padStart(2, '0')}`, ['instance i-x']]] : [],
        ) as [string, string[]][],
      );
      const ownership: Ownership = s.byHistory
        ? {
            kind: 'history',
            recorded: new Map(
              s.specs.flatMap((spec, n) => {
                const id = `ami-${String(n).padStart(2, '0')}`;
                return spec.recorded
                  ? [
                      [
                        id,
                        { resourceId: id, kind: 'image' as const, runId: 'r', job: 'amis', at: '' },
                      ],
                    ]
                  : [];
              }),
            ),
            ledgerStart: new Date('2020-01-01T00:00:00Z'),
          }
        : { kind: 'tags' };
      const instances = INSTANCES.map((id) =>
        instance(id, { [keys.ami]: 'daily', [keys.amiRetain]: String(s.retain[id]) }),
      );
      return input({ images, instances, usage, ownership });
    }

    /** The AMIs retention may count: ours, recorded, not copies, available or disabled. */
    function countable(i: ImageRetentionInput, image: ImageFacts): boolean {
      const recorded = i.ownership.kind !== 'history' || i.ownership.recorded.has(image.imageId);
      return (
        isManagedBy(image.tags, keys, DEPLOYMENT) &&
        !isDisasterRecoveryCopy(image.tags, keys) &&
        recorded &&
        imagePointState(image.state) === 'completed'
      );
    }

    it('never retires an AMI this deployment did not create, a copy, or one it has no record of', () => {
      fc.assert(
        fc.property(scenario, (s) => {
          const i = build(s);
          const byId = new Map(i.images.map((image) => [image.imageId, image]));
          for (const id of retiredIds(planImageRetention(i))) {
            const image = byId.get(id) as ImageFacts;
            expect(isManagedBy(image.tags, keys, DEPLOYMENT)).toBe(true);
            expect(isDisasterRecoveryCopy(image.tags, keys)).toBe(false);
            if (i.ownership.kind === 'history') expect(i.ownership.recorded.has(id)).toBe(true);
          }
        }),
        PROPERTY_RUNS,
      );
    });

    it('never retires a pending AMI, nor one something holds', () => {
      fc.assert(
        fc.property(scenario, (s) => {
          const i = build(s);
          const byId = new Map(i.images.map((image) => [image.imageId, image]));
          for (const id of retiredIds(planImageRetention(i))) {
            const image = byId.get(id) as ImageFacts;
            expect(imagePointState(image.state)).not.toBe('pending');
            expect(i.usage.has(id)).toBe(false);
            expect(image.state).not.toBe('disabled');
          }
        }),
        PROPERTY_RUNS,
      );
    });

    it("never goes below a live instance's retention count, and never retires its newest AMI", () => {
      fc.assert(
        fc.property(scenario, (s) => {
          const i = build(s);
          const retired = new Set(retiredIds(planImageRetention(i)));
          for (const instanceId of INSTANCES) {
            const lineage = i.images
              .filter((image) => image.tags[keys.instanceId] === instanceId)
              .filter((image) => countable(i, image))
              .sort(
                (a, b) =>
                  (b.creationDate?.getTime() ?? 0) - (a.creationDate?.getTime() ?? 0) ||
                  (a.imageId < b.imageId ? 1 : -1),
              );
            const left = lineage.filter((image) => !retired.has(image.imageId)).length;
            expect(left).toBeGreaterThanOrEqual(Math.min(s.retain[instanceId], lineage.length));
            if (lineage[0]) expect(retired.has(lineage[0].imageId)).toBe(false);
          }
        }),
        PROPERTY_RUNS,
      );
    });

    it('decides the same whatever order the images and instances come in', () => {
      fc.assert(
        fc.property(scenario, (s) => {
          const i = build(s);
          const shuffled = {
            ...i,
            images: shuffle(i.images, s.seed),
            instances: shuffle(i.instances, s.seed + 1),
          };
          const canonical = (plan: ImageRetentionPlan) => ({
            retire: [...plan.retire].sort((a, b) => a.imageId.localeCompare(b.imageId)),
            kept: [...plan.kept].sort((a, b) => a.imageId.localeCompare(b.imageId)),
            blocked: [...plan.blocked].sort((a, b) => a.imageId.localeCompare(b.imageId)),
            warnings: [...plan.warnings].sort(),
          });
          expect(canonical(planImageRetention(shuffled))).toEqual(canonical(planImageRetention(i)));
        }),
        PROPERTY_RUNS,
      );
    });

    it('gives every managed AMI of the schedule exactly one decision', () => {
      fc.assert(
        fc.property(scenario, (s) => {
          const i = build(s);
          const plan = planImageRetention(i);
          const decided = [...plan.retire, ...plan.kept, ...plan.blocked].map((d) => d.imageId);
          const managed = i.images
            .filter((image) => isManagedBy(image.tags, keys, DEPLOYMENT))
            .map((image) => image.imageId);
          expect(decided.sort()).toEqual(managed.sort());
        }),
        PROPERTY_RUNS,
      );
    });
  });
});

/** A deterministic shuffle (Fisher–Yates with a small linear congruential generator). */
function shuffle<T>(items: readonly T[], seed: number): T[] {
  const result = [...items];
  let state = seed >>> 0;
  for (let i = result.length - 1; i > 0; i -= 1) {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    const j = state % (i + 1);
    [result[i], result[j]] = [result[j] as T, result[i] as T];
  }
  return result;
}
