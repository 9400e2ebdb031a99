import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ImageFacts } from '../../../lib/domain/imagePlan.ts';
import {
  imagePointState,
  planOrphanSweep,
  recordedImagePolicy,
  type SweepInput,
  type SweepItem,
  toImagePoint,
} from '../../../lib/domain/imageRetirement.ts';
import { isManagedBy, type SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { TagMap } from '../../../lib/domain/tagPolicy.ts';

const keys = tagKeys();
const PROPERTY_RUNS = { numRuns: 300 };
const NOW = new Date('2026-11-23T10:00:00.000Z');
const CREATED = new Date('2026-11-20T03:00:12.000Z');

const OURS: TagMap = {
  'snapkeeper:managed': 'true',
  'snapkeeper:deployment': 'prod',
  'snapkeeper:schedule': 'daily',
};

function image(overrides: Partial<ImageFacts> = {}): ImageFacts {
  return {
    imageId: 'ami-0aaa',
    name: 'web-1-daily-20261120T0300Z',
    state: 'available',
    creationDate: CREATED,
    tags: OURS,
    snapshotIds: ['snap-root'],
    sizeGiB: 8,
    deregistrationProtected: false,
    isPublic: false,
    ownerId: '111122223333',
    ...overrides,
  };
}

function createImageSnapshot(
  snapshotId: string,
  imageId: string,
  overrides: Partial<SnapshotFacts> = {},
): SnapshotFacts {
  return {
    snapshotId,
    volumeId: 'vol-ffffffff',
    state: 'completed',
    startTime: CREATED,
    tags: OURS,
    sizeGiB: 8,
    description: `Created by CreateImage(i-0123456789abcdef0) for ${imageId}`,
    ownerId: '111122223333',
    ...overrides,
  };
}

function sweepInput(overrides: Partial<SweepInput> = {}): SweepInput {
  return {
    snapshots: [],
    existingImageIds: new Set(),
    imagesInRecycleBin: new Set(),
    holders: new Map(),
    keys,
    deployment: 'prod',
    ...overrides,
  };
}

function ids(items: readonly SweepItem[]): string[] {
  return items.map((item) => item.snapshotId);
}

describe('Function: imagePointState', () => {
  it.each([
    ['available', 'completed'],
    ['disabled', 'completed'],
    ['failed', 'error'],
    ['error', 'error'],
    ['invalid', 'error'],
    ['pending', 'pending'],
    ['transient', 'pending'],
    ['deregistered', 'pending'],
    ['unknown', 'pending'],
    ['', 'pending'],
  ])('maps an image in state %j to %s', (state, expected) => {
    // Prepare
    const ec2State = state;

    // Act
    const result = imagePointState(ec2State);

    // Assess
    expect(result).toBe(expected);
  });
});

describe('Function: toImagePoint', () => {
  it('turns an available managed image nothing holds into a completed, managed, unheld point', () => {
    // Prepare
    const facts = image({ sizeGiB: 108 });

    // Act
    const point = toImagePoint(facts, keys, 'prod', new Map(), NOW);

    // Assess
    expect(point).toEqual({
      id: 'ami-0aaa',
      state: 'completed',
      createdAt: CREATED,
      managed: true,
      heldBy: undefined,
      sizeGiB: 108,
    });
  });

  it('is held by everything the usage map names for the image, and only for that image', () => {
    // Prepare
    const usage = new Map([
      ['ami-0aaa', ['instance i-1', 'launch template lt-1 (web) version 3 (default)']],
      ['ami-0bbb', ['instance i-2']],
    ]);

    // Act
    const point = toImagePoint(image(), keys, 'prod', usage, NOW);

    // Assess
    expect(point.heldBy).toEqual([
      'instance i-1',
      'launch template lt-1 (web) version 3 (default)',
    ]);
  });

  it('is held by deregistration protection', () => {
    // Prepare
    const facts = image({ deregistrationProtected: true });

    // Act
    const point = toImagePoint(facts, keys, 'prod', new Map([['ami-0aaa', ['instance i-1']]]), NOW);

    // Assess
    expect(point.heldBy).toEqual(['instance i-1', 'deregistration protection']);
  });

  it('is held when the image is disabled, though it counts as a completed point', () => {
    // Prepare
    const facts = image({ state: 'disabled' });

    // Act
    const point = toImagePoint(facts, keys, 'prod', new Map(), NOW);

    // Assess
    expect(point.state).toBe('completed');
    expect(point.heldBy).toEqual(['disabled image']);
  });

  it('does not change the usage map it is given', () => {
    // Prepare
    const usage = new Map([['ami-0aaa', ['instance i-1']]]);
    const facts = image({ deregistrationProtected: true, state: 'disabled' });

    // Act
    toImagePoint(facts, keys, 'prod', usage, NOW);

    // Assess
    expect(usage.get('ami-0aaa')).toEqual(['instance i-1']);
  });

  it('dates the point by its created-at tag when the tag is valid', () => {
    // Prepare
    const facts = image({ tags: { ...OURS, 'snapkeeper:created-at': '2026-11-19T03:00:07Z' } });

    // Act
    const point = toImagePoint(facts, keys, 'prod', new Map(), NOW);

    // Assess
    expect(point.createdAt).toEqual(new Date('2026-11-19T03:00:07Z'));
  });

  it.each([
    ['malformed', 'yesterday'],
    ['in the future', '2026-12-01T00:00:00Z'],
  ])('dates the point by EC2 creation date when the created-at tag is %s', (_case, value) => {
    // Prepare
    const facts = image({ tags: { ...OURS, 'snapkeeper:created-at': value } });

    // Act
    const point = toImagePoint(facts, keys, 'prod', new Map(), NOW);

    // Assess
    expect(point.createdAt).toEqual(CREATED);
  });

  it('dates an image with neither created-at tag nor creation date at the epoch (oldest)', () => {
    // Prepare
    const facts = image({ creationDate: undefined });

    // Act
    const point = toImagePoint(facts, keys, 'prod', new Map(), NOW);

    // Assess
    expect(point.createdAt).toEqual(new Date(0));
  });

  it.each([
    ['no tags', {}],
    ['another deployment', { 'snapkeeper:managed': 'true', 'snapkeeper:deployment': 'staging' }],
    ['managed=false', { 'snapkeeper:managed': 'false', 'snapkeeper:deployment': 'prod' }],
    ['managed but no deployment', { 'snapkeeper:managed': 'true' }],
    ['another prefix', { 'acme:managed': 'true', 'acme:deployment': 'prod' }],
  ])('treats an image with %s as not managed', (_case, tags) => {
    // Prepare
    const facts = image({ tags });

    // Act
    const point = toImagePoint(facts, keys, 'prod', new Map(), NOW);

    // Assess
    expect(point.managed).toBe(false);
  });

  it.each([
    ['pending', 'pending'],
    ['failed', 'error'],
  ])('carries the state of a %s image as %s', (state, expected) => {
    // Prepare
    const facts = image({ state });

    // Act
    const point = toImagePoint(facts, keys, 'prod', new Map(), NOW);

    // Assess
    expect(point.state).toBe(expected);
  });
});

describe('Function: recordedImagePolicy', () => {
  it('takes the policy of the newest AMI that records one', () => {
    // Prepare
    const older = image({ imageId: 'ami-old', tags: { ...OURS, [keys.amiRetain]: '3' } });
    const newer = image({
      imageId: 'ami-new',
      creationDate: new Date(CREATED.getTime() + 1000),
      tags: { ...OURS, [keys.amiRetain]: '5', [keys.retainDays]: '30' },
    });

    // Act
    const policy = recordedImagePolicy([older, newer], keys);

    // Assess
    expect(policy).toEqual({ [keys.amiRetain]: '5', [keys.retainDays]: '30' });
  });

  it('is undefined when no AMI records a policy', () => {
    expect(recordedImagePolicy([image()], keys)).toBeUndefined();
  });

  it('breaks a tie of creation times by image id, whatever order the AMIs are listed in', () => {
    // Prepare: two AMIs of the same second with different policies.
    const a = image({ imageId: 'ami-a', tags: { ...OURS, [keys.amiRetain]: '3' } });
    const b = image({ imageId: 'ami-b', tags: { ...OURS, [keys.amiRetain]: '9' } });

    // Act
    const forward = recordedImagePolicy([a, b], keys);
    const backward = recordedImagePolicy([b, a], keys);

    // Assess
    expect(forward).toEqual({ [keys.amiRetain]: '9' });
    expect(backward).toEqual(forward);
  });
});

describe('Function: planOrphanSweep', () => {
  it('ignores a snapshot whose AMI still exists', () => {
    // Prepare
    const input = sweepInput({
      snapshots: [createImageSnapshot('snap-1', 'ami-0aaa')],
      existingImageIds: new Set(['ami-0aaa']),
    });

    // Act
    const plan = planOrphanSweep(input);

    // Assess
    expect(plan).toEqual({ delete: [], reportOnly: [], blocked: [] });
  });

  it('ignores a snapshot whose AMI still exists even when it is not ours', () => {
    // Prepare
    const input = sweepInput({
      snapshots: [createImageSnapshot('snap-1', 'ami-0aaa', { tags: {} })],
      existingImageIds: new Set(['ami-0aaa']),
    });

    // Act
    const plan = planOrphanSweep(input);

    // Assess
    expect(plan).toEqual({ delete: [], reportOnly: [], blocked: [] });
  });

  it('ignores a snapshot not made by CreateImage', () => {
    // Prepare
    const input = sweepInput({
      snapshots: [
        createImageSnapshot('snap-1', 'ami-0aaa', { description: 'snapkeeper daily ... i-1' }),
        createImageSnapshot('snap-2', 'ami-0aaa', { description: undefined }),
      ],
    });

    // Act
    const plan = planOrphanSweep(input);

    // Assess
    expect(plan).toEqual({ delete: [], reportOnly: [], blocked: [] });
  });

  it('deletes our snapshot whose AMI is gone, saying which AMI and with its size', () => {
    // Prepare
    const input = sweepInput({
      snapshots: [createImageSnapshot('snap-1', 'ami-0aaa', { sizeGiB: 30 })],
    });

    // Act
    const plan = planOrphanSweep(input);

    // Assess
    expect(plan).toEqual({
      delete: [
        {
          snapshotId: 'snap-1',
          imageId: 'ami-0aaa',
          sizeGiB: 30,
          reason: 'made by CreateImage for ami-0aaa, which no longer exists',
        },
      ],
      reportOnly: [],
      blocked: [],
    });
  });

  it('deletes our snapshot in error whose AMI is gone (it holds no data)', () => {
    // Prepare
    const input = sweepInput({
      snapshots: [createImageSnapshot('snap-1', 'ami-0aaa', { state: 'error' })],
    });

    // Act
    const plan = planOrphanSweep(input);

    // Assess
    expect(ids(plan.delete)).toEqual(['snap-1']);
  });

  it('blocks our orphaned snapshot that another AMI uses, naming that AMI', () => {
    // Prepare
    const input = sweepInput({
      snapshots: [createImageSnapshot('snap-1', 'ami-0aaa', { sizeGiB: 8 })],
      holders: new Map([['snap-1', ['ami-0bbb']]]),
    });

    // Act
    const plan = planOrphanSweep(input);

    // Assess
    expect(plan.delete).toEqual([]);
    expect(plan.blocked).toEqual([
      {
        snapshotId: 'snap-1',
        imageId: 'ami-0aaa',
        sizeGiB: 8,
        reason: 'made by CreateImage for ami-0aaa, which no longer exists, but used by ami-0bbb',
        heldBy: ['ami-0bbb'],
      },
    ]);
  });

  it('does not treat an empty holder list as a hold', () => {
    // Prepare
    const input = sweepInput({
      snapshots: [createImageSnapshot('snap-1', 'ami-0aaa')],
      holders: new Map([['snap-1', []]]),
    });

    // Act
    const plan = planOrphanSweep(input);

    // Assess
    expect(ids(plan.delete)).toEqual(['snap-1']);
  });

  it('blocks our snapshot whose AMI is in the Recycle Bin: the image can still be restored', () => {
    // Prepare
    const input = sweepInput({
      snapshots: [createImageSnapshot('snap-1', 'ami-0aaa')],
      imagesInRecycleBin: new Set(['ami-0aaa']),
    });

    // Act
    const plan = planOrphanSweep(input);

    // Assess
    expect(plan.delete).toEqual([]);
    expect(plan.blocked).toEqual([
      {
        snapshotId: 'snap-1',
        imageId: 'ami-0aaa',
        sizeGiB: 8,
        reason: 'ami-0aaa is in the Recycle Bin and can still be restored',
        heldBy: ['recycle bin (ami-0aaa)'],
      },
    ]);
  });

  it.each(['pending', 'recoverable', 'recovering'])(
    'blocks our orphaned snapshot that is %s',
    (state) => {
      // Prepare
      const input = sweepInput({
        snapshots: [createImageSnapshot('snap-1', 'ami-0aaa', { state })],
      });

      // Act
      const plan = planOrphanSweep(input);

      // Assess
      expect(plan.delete).toEqual([]);
      expect(plan.blocked).toMatchObject([{ snapshotId: 'snap-1', heldBy: ['pending'] }]);
      expect(plan.blocked[0]?.reason).toContain('still pending');
    },
  );

  it.each([
    ['no tags', {}],
    ['another deployment', { 'snapkeeper:managed': 'true', 'snapkeeper:deployment': 'staging' }],
    ['managed=false', { 'snapkeeper:managed': 'false', 'snapkeeper:deployment': 'prod' }],
    ['only a deployment tag', { 'snapkeeper:deployment': 'prod' }],
  ])(
    'only reports, with its size, an orphaned snapshot with %s, and never deletes it',
    (_case, tags) => {
      // Prepare
      const input = sweepInput({
        snapshots: [createImageSnapshot('snap-1', 'ami-0aaa', { tags, sizeGiB: 500 })],
      });

      // Act
      const plan = planOrphanSweep(input);

      // Assess
      expect(plan.delete).toEqual([]);
      expect(plan.blocked).toEqual([]);
      expect(plan.reportOnly).toEqual([
        {
          snapshotId: 'snap-1',
          imageId: 'ami-0aaa',
          sizeGiB: 500,
          reason:
            'made by CreateImage for ami-0aaa, which no longer exists; not created by this deployment, so only reported',
        },
      ]);
    },
  );

  it('sorts a mixed account into delete, report-only and blocked', () => {
    // Prepare
    const input = sweepInput({
      snapshots: [
        createImageSnapshot('snap-alive', 'ami-0a11'),
        createImageSnapshot('snap-gone', 'ami-0b22'),
        createImageSnapshot('snap-foreign', 'ami-0c33', { tags: { team: 'web' } }),
        createImageSnapshot('snap-shared', 'ami-0d44'),
        createImageSnapshot('snap-bin', 'ami-0e55'),
        createImageSnapshot('snap-pending', 'ami-0f66', { state: 'pending' }),
      ],
      existingImageIds: new Set(['ami-0a11']),
      imagesInRecycleBin: new Set(['ami-0e55']),
      holders: new Map([['snap-shared', ['ami-0a11']]]),
    });

    // Act
    const plan = planOrphanSweep(input);

    // Assess
    expect(ids(plan.delete)).toEqual(['snap-gone']);
    expect(ids(plan.reportOnly)).toEqual(['snap-foreign']);
    expect(ids(plan.blocked)).toEqual(['snap-shared', 'snap-bin', 'snap-pending']);
  });

  describe('invariants', () => {
    const imageIds = ['ami-0a1', 'ami-0b2', 'ami-0c3', 'ami-0d4'];
    const tagsArbitrary = fc.constantFrom<TagMap>(
      {},
      OURS,
      { 'snapkeeper:managed': 'true', 'snapkeeper:deployment': 'staging' },
      { 'snapkeeper:managed': 'false', 'snapkeeper:deployment': 'prod' },
      { 'snapkeeper:managed': 'TRUE', 'snapkeeper:deployment': 'prod' },
      { 'snapkeeper:deployment': 'prod' },
      { 'snapkeeper:managed': 'true' },
      { Name: 'web-1' },
    );
    const descriptionArbitrary = fc.oneof(
      fc.constantFrom(...imageIds).map((id) => `Created by CreateImage(i-0123) for ${id}`),
      fc.constant(undefined),
      fc.string(),
    );
    const snapshotArbitrary = fc.record({
      tags: tagsArbitrary,
      description: descriptionArbitrary,
      state: fc.constantFrom('completed', 'pending', 'error', 'recoverable', 'recovering'),
      sizeGiB: fc.option(fc.integer({ min: 1, max: 16_384 }), { nil: undefined }),
    });
    const inputArbitrary = fc
      .record({
        snapshots: fc.array(snapshotArbitrary, { maxLength: 12 }),
        existing: fc.subarray(imageIds),
        inBin: fc.subarray(imageIds),
        held: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
      })
      .map(({ snapshots, existing, inBin, held }) => {
        const facts = snapshots.map((s, index) =>
          createImageSnapshot(`snap-${index}`, 'ami-unused', {
            tags: s.tags,
            description: s.description,
            state: s.state,
            sizeGiB: s.sizeGiB,
          }),
        );
        const holders = new Map(
          facts.flatMap((s, index) => (held[index] ? [[s.snapshotId, ['ami-0zz9']]] : [])) as [
            string,
            string[],
          ][],
        );
        return sweepInput({
          snapshots: facts,
          existingImageIds: new Set(existing),
          imagesInRecycleBin: new Set(inBin),
          holders,
        });
      });

    it("never deletes a snapshot without this deployment's managed tags", () => {
      // Prepare
      const byId = (input: SweepInput) =>
        new Map(input.snapshots.map((s) => [s.snapshotId, s] as const));

      // Act & Assess
      fc.assert(
        fc.property(inputArbitrary, (input) => {
          const plan = planOrphanSweep(input);
          const snapshots = byId(input);
          for (const item of plan.delete) {
            const snapshot = snapshots.get(item.snapshotId);
            expect(snapshot).toBeDefined();
            expect(isManagedBy(snapshot?.tags ?? {}, keys, 'prod')).toBe(true);
          }
        }),
        PROPERTY_RUNS,
      );
    });

    it('never deletes a held, pending or restorable snapshot, nor one whose AMI exists', () => {
      // Prepare
      const byId = (input: SweepInput) =>
        new Map(input.snapshots.map((s) => [s.snapshotId, s] as const));

      // Act & Assess
      fc.assert(
        fc.property(inputArbitrary, (input) => {
          const plan = planOrphanSweep(input);
          const snapshots = byId(input);
          for (const item of plan.delete) {
            const snapshot = snapshots.get(item.snapshotId);
            expect(input.holders.get(item.snapshotId) ?? []).toEqual([]);
            expect(['completed', 'error']).toContain(snapshot?.state);
            expect(item.imageId).toBeDefined();
            expect(input.existingImageIds.has(item.imageId ?? '')).toBe(false);
            expect(input.imagesInRecycleBin.has(item.imageId ?? '')).toBe(false);
          }
        }),
        PROPERTY_RUNS,
      );
    });

    it('puts every snapshot of a vanished AMI in exactly one list, and nothing else in any', () => {
      // Prepare
      const orphanIds = (input: SweepInput) =>
        input.snapshots
          .filter((s) => {
            const match = /^Created by CreateImage\([^)]*\) for (ami-[0-9a-f]+)/.exec(
              s.description ?? '',
            );
            return match?.[1] !== undefined && !input.existingImageIds.has(match[1]);
          })
          .map((s) => s.snapshotId);

      // Act & Assess
      fc.assert(
        fc.property(inputArbitrary, (input) => {
          const plan = planOrphanSweep(input);
          const listed = [...ids(plan.delete), ...ids(plan.reportOnly), ...ids(plan.blocked)];
          expect([...listed].sort()).toEqual(orphanIds(input).sort());
        }),
        PROPERTY_RUNS,
      );
    });
  });
});
