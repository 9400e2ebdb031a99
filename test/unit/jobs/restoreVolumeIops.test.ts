import { describe, expect, it } from 'vitest';
import type { Ec2RestoreGateway } from '../../../lib/aws/Ec2RestoreGateway.ts';
import { InvalidEventError } from '../../../lib/domain/errors.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import { checkIops, parseOpsPayload } from '../../../lib/jobs/opsPayload.ts';
import { type RestoreDependencies, restoreVolume } from '../../../lib/jobs/restoreJobs.ts';
import { silentLogger } from '../../../lib/jobs/runReport.ts';

const CATALOG = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const SNAPSHOT = 'snap-0123456789abcdef0';
const keys = tagKeys();

function rejection(run: () => unknown): InvalidEventError {
  try {
    run();
  } catch (error) {
    if (error instanceof InvalidEventError) return error;
    throw error;
  }
  return expect.fail('accepted');
}

/** A source snapshot of `sizeGiB`, a volume zone, and a CreateVolume that records its requests. */
function restoreDeps(sizeGiB: number): RestoreDependencies & { created: unknown[] } {
  const created: unknown[] = [];
  const snapshot: SnapshotFacts = {
    snapshotId: SNAPSHOT,
    volumeId: 'vol-0123456789abcdef0',
    state: 'completed',
    startTime: new Date('2026-11-23T03:00:00Z'),
    tags: {},
    sizeGiB,
  };
  const restore = {
    describeVolume: async () => ({ volumeId: snapshot.volumeId, availabilityZone: 'eu-west-1a' }),
    createVolume: async (request: unknown) => {
      created.push(request);
      return 'vol-0fedcba9876543210';
    },
    waitForVolume: async () => undefined,
  } as unknown as Ec2RestoreGateway;
  return {
    created,
    ec2: {
      describeSnapshotsByIds: async () => [snapshot],
      listSnapshotsTagged: async function* () {},
    },
    images: { listImagesTagged: async () => [], listOwnImages: async () => [] },
    restore,
    history: { runActions: async () => [] },
    config: {
      deployment: 'prod',
      keys,
      copyTags: [],
      restoreWaitMs: 1000,
      localTagAfterCreate: false,
    },
    clock: () => new Date('2026-11-23T12:00:00Z'),
    runId: '20261123T120000Z-0a1b2c3d',
    logger: silentLogger,
    journal: { record: async () => undefined },
  };
}

describe('restore-volume IOPS, as CreateVolume takes them', () => {
  describe('the payload', () => {
    it.each([
      ['io1', 'field "iops" is required for volumeType io1: a whole number from 100 to 64000'],
      ['io2', 'field "iops" is required for volumeType io2: a whole number from 100 to 256000'],
    ])('rejects volumeType %s without iops, naming iops and its range', (volumeType, message) => {
      // Act
      const error = rejection(() =>
        parseOpsPayload(
          { action: 'restore-volume', snapshotId: SNAPSHOT, volumeType, dryRun: true },
          CATALOG,
        ),
      );

      // Assess
      expect(error.message).toContain(message);
    });

    it.each([
      ['io1', 64_001, 'from 100 to 64000'],
      ['io2', 99, 'from 100 to 256000'],
      ['gp3', 2999, 'from 3000 to 80000'],
      ['gp3', 80_001, 'from 3000 to 80000'],
    ])('rejects %s with iops %i, out of its range', (volumeType, iops, range) => {
      // Act
      const error = rejection(() => checkIops(volumeType, iops));

      // Assess
      expect(error.message).toBe(
        `field "iops": ${iops} is out of range for volumeType ${volumeType}: a whole number ${range}`,
      );
    });

    it.each(['gp2', 'st1', 'sc1', 'standard'])('rejects iops for %s, which takes none', (type) => {
      // Act
      const error = rejection(() => checkIops(type, 3000));

      // Assess
      expect(error.message).toContain(`field "iops" is not accepted for volumeType ${type}`);
    });

    it('accepts io2 with iops, gp3 with or without, and gp2 without', () => {
      for (const [volumeType, iops] of [
        ['io2', 20_000],
        ['io1', 100],
        ['gp3', undefined],
        ['gp3', 6000],
        ['gp2', undefined],
      ] as const) {
        expect(() => checkIops(volumeType, iops)).not.toThrow();
      }
      expect(
        parseOpsPayload(
          {
            action: 'restore-volume',
            snapshotId: SNAPSHOT,
            volumeType: 'io2',
            iops: 20_000,
            dryRun: true,
          },
          CATALOG,
        ),
      ).toMatchObject({ volumeType: 'io2', iops: 20_000 });
    });
  });

  describe('throughput', () => {
    it('takes throughput for gp3 from 125 to 2000 MiB/s, and passes it to CreateVolume', async () => {
      // Prepare
      const deps = restoreDeps(100);
      const payload = parseOpsPayload(
        { action: 'restore-volume', snapshotId: SNAPSHOT, throughput: 500, dryRun: true },
        CATALOG,
      );

      // Act
      await restoreVolume({ snapshotId: SNAPSHOT, throughput: 500 }, deps);

      // Assess
      expect(payload).toMatchObject({ throughput: 500 });
      expect(deps.created).toEqual([expect.objectContaining({ throughput: 500 })]);
    });

    it.each([
      [{ throughput: 124 }, 'field "throughput" must be at least 125'],
      [{ throughput: 2001 }, 'field "throughput" must be at most 2000'],
      [{ throughput: 'fast' }, 'field "throughput" must be a whole number of MiB/s'],
      [
        { volumeType: 'io2', iops: 1000, throughput: 500 },
        'field "throughput" is only for volumeType gp3 (125 to 2000 MiB/s); remove it for io2',
      ],
    ])('rejects %o, naming throughput', (fields, message) => {
      // Act
      const error = rejection(() =>
        parseOpsPayload(
          { action: 'restore-volume', snapshotId: SNAPSHOT, dryRun: true, ...fields },
          CATALOG,
        ),
      );

      // Assess
      expect(error.message).toContain(message);
    });
  });

  describe('the restore, once the size is known', () => {
    it('rejects io1 IOPS above 50 per GiB of the volume and creates nothing', async () => {
      // Prepare
      const deps = restoreDeps(8);

      // Act
      const restoring = restoreVolume(
        { snapshotId: SNAPSHOT, volumeType: 'io1', iops: 1000 },
        deps,
      );

      // Assess
      await expect(restoring).rejects.toThrow(
        'field "iops": 1000 is more than io1 allows for 8 GiB (50 per GiB: at most 400); lower "iops" or raise "sizeGiB"',
      );
      expect(deps.created).toEqual([]);
    });

    it('rejects io2 without iops when called directly, and creates nothing', async () => {
      // Prepare
      const deps = restoreDeps(8);

      // Act
      const restoring = restoreVolume({ snapshotId: SNAPSHOT, volumeType: 'io2' }, deps);

      // Assess
      await expect(restoring).rejects.toBeInstanceOf(InvalidEventError);
      await expect(restoring).rejects.toThrow('field "iops" is required for volumeType io2');
      expect(deps.created).toEqual([]);
    });

    it("allows gp3's 3,000 baseline on a 1 GiB volume, and io1 at exactly 50 per GiB", async () => {
      // Act
      const gp3 = await restoreVolume({ snapshotId: SNAPSHOT, iops: 3000 }, restoreDeps(1));
      const io1Deps = restoreDeps(8);
      await restoreVolume({ snapshotId: SNAPSHOT, volumeType: 'io1', iops: 400 }, io1Deps);

      // Assess
      expect(gp3.status).toBe('succeeded');
      expect(io1Deps.created).toEqual([
        expect.objectContaining({ volumeType: 'io1', iops: 400, sizeGiB: 8 }),
      ]);
    });
  });
});
