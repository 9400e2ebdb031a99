import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { copyLineageKey, readCarriedCount } from '../../../lib/domain/copyPolicy.ts';
import {
  type CopyRetentionInput,
  type CopyRetentionPlan,
  copyLineages,
  planCopyRetention,
  retiredSourceReason,
} from '../../../lib/domain/copyRetention.ts';
import type { ImageFacts } from '../../../lib/domain/imagePlan.ts';
import type { CreationRecord, Ownership } from '../../../lib/domain/provenance.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { TagMap } from '../../../lib/domain/tagPolicy.ts';

const keys = tagKeys();
const DEPLOYMENT = 'prod';
const NOW = new Date('2026-11-23T12:00:00.000Z');
const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
const PROPERTY_RUNS = { numRuns: 300 };
const OURS = { [keys.managed]: 'true', [keys.deployment]: DEPLOYMENT };

const ago = (minutes: number) => new Date(NOW.getTime() - minutes * MINUTE_MS);

/** The run history's record that this deployment made `resourceId` as a `kind`. */
const recordOf = (resourceId: string, kind: CreationRecord['kind']): CreationRecord => ({
  resourceId,
  kind,
  runId: '20261101T030000Z-r1',
  job: kind === 'copy' ? 'copy' : 'backup',
  at: '2026-11-01T03:00:00.000Z',
});

function snapshotCopy(
  id: string,
  minutes: number,
  tags: TagMap,
  state = 'completed',
): SnapshotFacts {
  return {
    snapshotId: id,
    volumeId: 'vol-ffffffff',
    state,
    startTime: ago(minutes),
    tags: { ...OURS, [keys.sourceRegion]: 'us-east-1', [keys.schedule]: 'daily', ...tags },
  };
}

function imageCopy(
  id: string,
  minutes: number,
  tags: TagMap,
  snapshotIds: readonly string[] = [],
  state = 'available',
): ImageFacts {
  return {
    imageId: id,
    state,
    creationDate: ago(minutes),
    tags: { ...OURS, [keys.sourceRegion]: 'us-east-1', [keys.schedule]: 'daily', ...tags },
    snapshotIds,
    sizeGiB: 8,
    deregistrationProtected: false,
    isPublic: false,
  };
}

const lineageOf = (volumeId: string, count?: string): TagMap => ({
  [keys.sourceVolumeId]: volumeId,
  ...(count === undefined ? {} : { [keys.copyRetain]: count }),
});

function plan(partial: Partial<CopyRetentionInput>): CopyRetentionPlan {
  return planCopyRetention({
    copies: [],
    images: [],
    holders: new Map(),
    ownership: { kind: 'tags' },
    keys,
    deployment: DEPLOYMENT,
    now: NOW,
    ...partial,
  });
}

const removedIds = (result: CopyRetentionPlan) => result.remove.map((r) => r.id);

describe('Function: planCopyRetention', () => {
  describe('Examples', () => {
    it('removes the copies of a lineage beyond the count its newest copy carries, oldest first kept last', () => {
      // Prepare
      const copies = [1, 2, 3, 4].map((day) =>
        snapshotCopy(`snap-0${day}`, day * 24 * 60, lineageOf('vol-0a', '2')),
      );

      // Act
      const result = plan({ copies });

      // Assess
      expect(result.halted).toBeUndefined();
      expect(result.kept).toEqual([]);
      expect(removedIds(result).sort()).toEqual(['snap-03', 'snap-04']);
      expect(result.remove.every((r) => r.reason === 'beyond count 2')).toBe(true);
    });

    it('reads the count from the newest copy: a later policy wins over the one older copies carry', () => {
      // Prepare
      const copies = [
        snapshotCopy('snap-new', 60, lineageOf('vol-0a', '1')),
        snapshotCopy('snap-mid', 2 * 24 * 60, lineageOf('vol-0a', '5')),
        snapshotCopy('snap-old', 3 * 24 * 60, lineageOf('vol-0a', '5')),
      ];

      // Act
      const result = plan({ copies });

      // Assess
      expect(removedIds(result).sort()).toEqual(['snap-mid', 'snap-old']);
    });

    it('breaks a tie between copies made at the same instant by id, whatever the listing order', () => {
      // Prepare
      const copies = [
        snapshotCopy('snap-a', 60, lineageOf('vol-0a', '3')),
        snapshotCopy('snap-b', 60, lineageOf('vol-0a', '1')),
        snapshotCopy('snap-c', 3 * 24 * 60, lineageOf('vol-0a', '3')),
      ];

      // Act
      const forward = plan({ copies });
      const backward = plan({ copies: [...copies].reverse() });

      // Assess
      expect(removedIds(forward).sort()).toEqual(['snap-a', 'snap-c']);
      expect(removedIds(backward).sort()).toEqual(removedIds(forward).sort());
    });

    it('halts when the run history cannot be read: nothing removed, one reason', () => {
      // Prepare
      const copies = [1, 2, 3].map((day) =>
        snapshotCopy(`snap-0${day}`, day * 24 * 60, lineageOf('vol-0a', '1')),
      );

      // Act
      const result = plan({ copies, ownership: { kind: 'unreadable', reason: 'throttled' } });

      // Assess
      expect(result).toEqual({
        halted:
          'kept: the run history cannot be read (throttled), so which copies this job made is unknown; nothing deleted',
        kept: [],
        remove: [],
      });
    });

    it('keeps a copy the run history never recorded making, and a lineage whose newest copy carries no count, reporting both', () => {
      // Prepare
      const copies = [
        snapshotCopy('snap-unrecorded', 5 * 24 * 60, lineageOf('vol-0a', '1')),
        snapshotCopy('snap-recorded', 60, lineageOf('vol-0a', '1')),
        snapshotCopy('snap-nocount-new', 60, lineageOf('vol-0b')),
        snapshotCopy('snap-nocount-old', 9 * 24 * 60, lineageOf('vol-0b', '1')),
        snapshotCopy('snap-nolineage', 60, {}),
      ];
      const recorded = new Map<string, CreationRecord>(
        copies
          .filter((c) => c.snapshotId !== 'snap-unrecorded')
          .map((c) => [c.snapshotId, recordOf(c.snapshotId, 'copy')]),
      );

      // Act
      const result = plan({
        copies,
        ownership: { kind: 'history', recorded, ledgerStart: ago(30 * 24 * 60) },
      });

      // Assess
      expect(result.remove).toEqual([]);
      expect(result.kept.map((k) => k.resourceId)).toEqual([
        'snap-unrecorded',
        'snap-nolineage',
        'snap-nocount-new',
      ]);
      expect(result.kept[0]?.problem).toBeUndefined();
      expect(result.kept[1]?.problem).toMatch(/^copy snap-nolineage kept: the source volume/);
      expect(result.kept[2]?.problem).toMatch(/carries no readable snapkeeper:copy-retain/);
    });

    it('removes an AMI copy with its snapshots, and never those snapshots on their own', () => {
      // Prepare
      const instance = { [keys.instanceId]: 'i-0123456789abcdef0', [keys.copyRetain]: '1' };
      const behind = (image: string) =>
        snapshotCopy(`snap-of-${image}`, 60, { [keys.sourceImageId]: `ami-src-${image}` });
      const images = [
        imageCopy('ami-new', 60, instance, ['snap-of-ami-new']),
        imageCopy('ami-old', 3 * 24 * 60, instance, ['snap-of-ami-old']),
      ];
      const holders = new Map([
        ['snap-of-ami-new', ['ami-new']],
        ['snap-of-ami-old', ['ami-old']],
      ]);

      // Act
      const result = plan({
        copies: [behind('ami-new'), behind('ami-old')],
        images,
        holders,
      });

      // Assess
      expect(result.remove).toEqual([
        {
          kind: 'image',
          id: 'ami-old',
          reason: 'beyond count 1',
          snapshotIds: ['snap-of-ami-old'],
        },
      ]);
    });
  });
});

// ---------------------------------------------------------------------------
// Invariants over random destinations
// ---------------------------------------------------------------------------

const VOLUMES = ['vol-0aaa', 'vol-0bbb', 'vol-ffffffff', undefined] as const;
const INSTANCES = ['i-0aaa', 'i-0bbb', 'not-an-instance', undefined] as const;
const SCHEDULES = ['daily', 'weekly', undefined] as const;
const COUNTS = ['1', '2', '3', '5', 'seven', undefined] as const;

/** Whose a copy is: ours, another stage's, or untagged. */
const ownerArbitrary = fc.oneof(
  { arbitrary: fc.constant<TagMap>(OURS), weight: 6 },
  {
    arbitrary: fc.constant<TagMap>({ [keys.managed]: 'true', [keys.deployment]: 'dev' }),
    weight: 1,
  },
  { arbitrary: fc.constant<TagMap>({}), weight: 1 },
);

/** Ages in minutes from a small range, so that copies made at the same instant occur. */
const ageArbitrary = fc.oneof(
  fc.integer({ min: 0, max: 40 }).map((n) => n * 60),
  fc.integer({ min: 0, max: 60 * 24 * 60 }),
);

const policyTags = (
  schedule: string | undefined,
  count: string | undefined,
  extra: TagMap,
): TagMap => ({
  ...extra,
  ...(schedule === undefined ? {} : { [keys.schedule]: schedule }),
  ...(count === undefined ? {} : { [keys.copyRetain]: count }),
});

const snapshotSpec = fc.record({
  owner: ownerArbitrary,
  state: fc.constantFrom('completed', 'completed', 'completed', 'pending', 'error'),
  minutes: ageArbitrary,
  volume: fc.constantFrom(...VOLUMES),
  schedule: fc.constantFrom(...SCHEDULES),
  count: fc.constantFrom(...COUNTS),
  heldByForeignImage: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
});

const imageSpec = fc.record({
  owner: ownerArbitrary,
  state: fc.constantFrom('available', 'available', 'pending', 'failed', 'disabled'),
  minutes: ageArbitrary,
  instance: fc.constantFrom(...INSTANCES),
  schedule: fc.constantFrom(...SCHEDULES),
  count: fc.constantFrom(...COUNTS),
  snapshots: fc.integer({ min: 0, max: 2 }),
});

const ownershipSpec = fc.oneof(
  { arbitrary: fc.constant<'tags' | 'history' | 'unreadable'>('tags'), weight: 3 },
  { arbitrary: fc.constant<'tags' | 'history' | 'unreadable'>('history'), weight: 3 },
  { arbitrary: fc.constant<'tags' | 'history' | 'unreadable'>('unreadable'), weight: 1 },
);

interface Destination {
  readonly input: CopyRetentionInput;
  /** The snapshots behind each AMI copy. */
  readonly behindImages: ReadonlySet<string>;
}

const destinationArbitrary: fc.Arbitrary<Destination> = fc
  .record({
    snapshots: fc.array(snapshotSpec, { maxLength: 30 }),
    images: fc.array(imageSpec, { maxLength: 8 }),
    ownership: ownershipSpec,
    recordedEvery: fc.integer({ min: 1, max: 4 }),
    ledgerStartMinutes: fc.integer({ min: 0, max: 60 * 24 * 60 }),
    foreignHeld: fc.array(fc.nat(), { maxLength: 4 }),
  })
  .map((spec) => {
    const copies: SnapshotFacts[] = spec.snapshots.map((s, index) =>
      rawSnapshot(
        `snap-${String(index).padStart(3, '0')}`,
        s.minutes,
        policyTags(s.schedule, s.count, {
          ...s.owner,
          ...(s.volume === undefined ? {} : { [keys.sourceVolumeId]: s.volume }),
        }),
        s.state,
      ),
    );
    const holders = new Map<string, string[]>();
    const behindImages = new Set<string>();
    const images: ImageFacts[] = spec.images.map((i, index) => {
      const imageId = `ami-${String(index).padStart(3, '0')}`;
      const snapshotIds = Array.from({ length: i.snapshots }, (_, n) => `snap-${imageId}-${n}`);
      for (const snapshotId of snapshotIds) {
        behindImages.add(snapshotId);
        holders.set(snapshotId, [imageId]);
        copies.push(
          rawSnapshot(snapshotId, i.minutes, {
            ...i.owner,
            [keys.sourceImageId]: `ami-src-${index}`,
            ...(i.schedule === undefined ? {} : { [keys.schedule]: i.schedule }),
          }),
        );
      }
      return {
        imageId,
        state: i.state,
        creationDate: ago(i.minutes),
        tags: policyTags(i.schedule, i.count, {
          ...i.owner,
          ...(i.instance === undefined ? {} : { [keys.instanceId]: i.instance }),
        }),
        snapshotIds,
        sizeGiB: 8,
        deregistrationProtected: false,
        isPublic: false,
      };
    });
    spec.snapshots.forEach((s, index) => {
      if (s.heldByForeignImage)
        holders.set(`snap-${String(index).padStart(3, '0')}`, ['ami-foreign']);
    });
    for (const n of spec.foreignHeld) {
      const held = copies[n % Math.max(1, copies.length)];
      if (held && !behindImages.has(held.snapshotId)) holders.set(held.snapshotId, ['ami-foreign']);
    }
    const ids = [...copies.map((c) => c.snapshotId), ...images.map((i) => i.imageId)];
    const ownership: Ownership =
      spec.ownership === 'tags'
        ? { kind: 'tags' }
        : spec.ownership === 'unreadable'
          ? { kind: 'unreadable', reason: 'throttled' }
          : {
              kind: 'history',
              ledgerStart: ago(spec.ledgerStartMinutes),
              recorded: new Map(
                ids
                  .filter((_, index) => index % spec.recordedEvery === 0)
                  .map((id, index) => [id, recordOf(id, index % 5 === 4 ? 'snapshot' : 'copy')]),
              ),
            };
    return {
      input: { copies, images, holders, ownership, keys, deployment: DEPLOYMENT, now: NOW },
      behindImages,
    };
  });

function rawSnapshot(
  id: string,
  minutes: number,
  tags: TagMap,
  state = 'completed',
): SnapshotFacts {
  return { snapshotId: id, volumeId: 'vol-ffffffff', state, startTime: ago(minutes), tags };
}

interface Copy {
  readonly id: string;
  readonly kind: 'snapshot' | 'image';
  readonly state: string;
  readonly at: number;
  readonly tags: TagMap;
}

/** Every copy that can be in a lineage: standalone snapshot copies and AMI copies. */
function lineageMembers({ input, behindImages }: Destination): Copy[] {
  return [
    ...input.copies
      .filter((c) => !behindImages.has(c.snapshotId))
      .map((c) => ({
        id: c.snapshotId,
        kind: 'snapshot' as const,
        state: c.state,
        at: c.startTime.getTime(),
        tags: c.tags,
      })),
    ...input.images.map((i) => ({
      id: i.imageId,
      kind: 'image' as const,
      state: i.state,
      at: i.creationDate?.getTime() ?? 0,
      tags: i.tags,
    })),
  ];
}

const isCompleted = (copy: Copy) =>
  copy.kind === 'snapshot'
    ? copy.state === 'completed'
    : copy.state === 'available' || copy.state === 'disabled';

/** The lineages as the test reads them from the tags alone, newest first (by time, then id). */
function lineagesOf(copies: readonly Copy[]): Map<string, Copy[]> {
  const lineages = new Map<string, Copy[]>();
  for (const copy of copies) {
    const key = copyLineageKey(copy.kind, copy.tags, keys);
    if (key === undefined) continue;
    lineages.set(key, [...(lineages.get(key) ?? []), copy]);
  }
  for (const members of lineages.values()) {
    members.sort((a, b) => b.at - a.at || (a.id < b.id ? 1 : -1));
  }
  return lineages;
}

const isOurs = (tags: TagMap) =>
  tags[keys.managed] === 'true' && tags[keys.deployment] === DEPLOYMENT;

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const result = [...items];
  let state = seed || 1;
  for (let i = result.length - 1; i > 0; i -= 1) {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    const j = state % (i + 1);
    [result[i], result[j]] = [result[j] as T, result[i] as T];
  }
  return result;
}

/** The plan in a form that does not depend on order. */
function canonical(result: CopyRetentionPlan) {
  return {
    halted: result.halted,
    kept: [...result.kept].sort((a, b) => (a.resourceId < b.resourceId ? -1 : 1)),
    remove: [...result.remove]
      .map((r) => (r.kind === 'image' ? { ...r, snapshotIds: [...r.snapshotIds].sort() } : r))
      .sort((a, b) => (a.id < b.id ? -1 : 1)),
  };
}

describe('Invariants: planCopyRetention over random destinations', () => {
  it('1. removes only copies this deployment made: tagged as ours and, with history, recorded as a copy or made before it', () => {
    fc.assert(
      fc.property(destinationArbitrary, (destination) => {
        const { input } = destination;
        const result = planCopyRetention(input);
        const byId = new Map(lineageMembers(destination).map((c) => [c.id, c]));
        for (const removal of result.remove) {
          const copy = byId.get(removal.id);
          expect(copy).toBeDefined();
          expect(isOurs(copy?.tags ?? {})).toBe(true);
          if (input.ownership.kind === 'history') {
            const record = input.ownership.recorded.get(removal.id);
            const legacy =
              (copy?.at ?? 0) > 0 && (copy?.at ?? 0) < input.ownership.ledgerStart.getTime();
            expect(record?.kind === 'copy' || (record === undefined && legacy)).toBe(true);
          }
        }
      }),
      PROPERTY_RUNS,
    );
  });

  it('2. never removes below the count the newest copy carries, nor the newest completed copy, and keeps a lineage with no count whole', () => {
    fc.assert(
      fc.property(destinationArbitrary, (destination) => {
        const result = planCopyRetention(destination.input);
        const removed = new Set(removedIds(result));
        const ownership = destination.input.ownership;
        const owned = lineageMembers(destination).filter(
          (c) => !isOurs(c.tags) || ownership.kind !== 'history' || !keptAsUnowned(result, c.id),
        );
        for (const members of lineagesOf(owned).values()) {
          const newest = members[0] as Copy;
          const count = readCarriedCount(newest.tags, keys);
          const completed = members.filter(isCompleted);
          const keptCompleted = completed.filter((c) => !removed.has(c.id));
          if (count === undefined) {
            expect(members.some((c) => removed.has(c.id))).toBe(false);
            continue;
          }
          expect(keptCompleted.length).toBeGreaterThanOrEqual(Math.min(count, completed.length));
          if (completed[0]) expect(removed.has(completed[0].id)).toBe(false);
        }
      }),
      PROPERTY_RUNS,
    );
  });

  it('3. never removes a pending copy, nor a snapshot a registered image uses', () => {
    fc.assert(
      fc.property(destinationArbitrary, (destination) => {
        const { input } = destination;
        const result = planCopyRetention(input);
        const byId = new Map(lineageMembers(destination).map((c) => [c.id, c]));
        for (const removal of result.remove) {
          expect(byId.get(removal.id)?.state).not.toBe('pending');
          if (removal.kind === 'snapshot') expect(input.holders.get(removal.id)).toBeUndefined();
        }
      }),
      PROPERTY_RUNS,
    );
  });

  it("4. removes an AMI copy's snapshots only with it, all of them", () => {
    fc.assert(
      fc.property(destinationArbitrary, (destination) => {
        const { input, behindImages } = destination;
        const result = planCopyRetention(input);
        const images = new Map(input.images.map((i) => [i.imageId, i]));
        for (const removal of result.remove) {
          if (removal.kind === 'snapshot') expect(behindImages.has(removal.id)).toBe(false);
          else expect(removal.snapshotIds).toEqual(images.get(removal.id)?.snapshotIds);
        }
      }),
      PROPERTY_RUNS,
    );
  });

  it('5. does not depend on the order the copies and images were listed in', () => {
    fc.assert(
      fc.property(
        destinationArbitrary,
        fc.integer({ min: 1, max: 1_000_000 }),
        (destination, seed) => {
          const { input } = destination;
          const reordered = {
            ...input,
            copies: shuffled(input.copies, seed),
            images: shuffled(input.images, seed + 1),
          };
          expect(canonical(planCopyRetention(reordered))).toEqual(
            canonical(planCopyRetention(input)),
          );
        },
      ),
      PROPERTY_RUNS,
    );
  });

  it('6. removes nothing when the run history cannot be read', () => {
    fc.assert(
      fc.property(destinationArbitrary, (destination) => {
        const result = planCopyRetention(destination.input);
        if (destination.input.ownership.kind !== 'unreadable') return;
        expect(result.remove).toEqual([]);
        expect(result.halted).toMatch(/^kept: the run history cannot be read/);
      }),
      PROPERTY_RUNS,
    );
  });
});

/** True when the plan keeps `id` as a copy this job did not make (its reason says so). */
function keptAsUnowned(result: CopyRetentionPlan, id: string): boolean {
  return result.kept.some(
    (k) =>
      k.resourceId === id &&
      k.problem === undefined &&
      /^kept: (the run history|tagged as this deployment's)/.test(k.reason),
  );
}

describe('Function: retiredSourceReason', () => {
  it('is consistent with the planner: a source is retired exactly when its copy, made now, would be removed at once', () => {
    // Prepare
    const existing = fc.array(
      fc.record({
        minutes: fc.integer({ min: 0, max: 30 * 24 * 60 }),
        count: fc.constantFrom('1', '2', '4', undefined),
        state: fc.constantFrom('completed', 'completed', 'pending'),
      }),
      { maxLength: 12 },
    );
    const candidate = fc.record({
      minutes: fc.integer({ min: 0, max: 40 * 24 * 60 }),
      count: fc.constantFrom(1, 2, 4, undefined),
    });

    // Act & Assess
    fc.assert(
      fc.property(existing, candidate, (specs, source) => {
        const copies = specs.map((s, index) =>
          snapshotCopy(
            `snap-${String(index).padStart(3, '0')}`,
            s.minutes,
            lineageOf('vol-0a', s.count),
            s.state,
          ),
        );
        fc.pre(!specs.some((s) => s.minutes === source.minutes));
        const { lineages } = copyLineages(copies, [], keys, DEPLOYMENT, NOW);
        const retired = retiredSourceReason(
          {
            kind: 'snapshot',
            sourceId: 'snap-source',
            createdAt: ago(source.minutes),
            count: source.count,
            lineageTags: { [keys.schedule]: 'daily', ...lineageOf('vol-0a') },
          },
          { lineages, keys, region: 'eu-west-1', now: NOW },
        );
        const withCopy = plan({
          copies: [
            ...copies,
            snapshotCopy(
              'snap-candidate',
              source.minutes,
              lineageOf('vol-0a', source.count === undefined ? undefined : String(source.count)),
            ),
          ],
        });
        expect(retired !== undefined).toBe(removedIds(withCopy).includes('snap-candidate'));
        if (retired) expect(retired).toMatch(/^older than the \d+ copies kept in eu-west-1: /);
      }),
      PROPERTY_RUNS,
    );
  });

  it('copies a source whose lineage has no copy in the region yet', () => {
    // Act
    const retired = retiredSourceReason(
      {
        kind: 'snapshot',
        sourceId: 'snap-source',
        createdAt: new Date(NOW.getTime() - 400 * DAY_MS),
        count: 1,
        lineageTags: { [keys.schedule]: 'daily', ...lineageOf('vol-0a') },
      },
      { lineages: new Map(), keys, region: 'eu-west-1', now: NOW },
    );

    // Assess
    expect(retired).toBeUndefined();
  });
});
