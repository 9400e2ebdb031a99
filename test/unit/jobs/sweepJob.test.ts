import { describe, expect, it } from 'vitest';
import { SnapshotInUseError, SnapshotNotFoundError } from '../../../lib/aws/errors.ts';
import type { ImageFacts } from '../../../lib/domain/imagePlan.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { TagMap } from '../../../lib/domain/tagPolicy.ts';
import type { CreationLedger } from '../../../lib/jobs/ownership.ts';
import { silentLogger } from '../../../lib/jobs/runReport.ts';
import {
  runSweepJob,
  type SweepJobDependencies,
  type SweepJobInput,
} from '../../../lib/jobs/sweepJob.ts';
import { RecordingJournal } from '../../support/recordingJournal.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const keys = tagKeys();
const DEPLOYMENT = 'prod';
const RUN_ID = '20261123T060000Z-5w33p000';
const NOW = '2026-11-23T06:00:00.000Z';

/** An AMI that still exists, and two that are gone (deregistered by hand or by a dead run). */
const LIVE_AMI = 'ami-0a11ce';
const GONE_AMI = 'ami-0dead1';
const OTHER_GONE_AMI = 'ami-0dead2';

/** The tags snapkeeper writes on the snapshots behind its AMIs. */
function ourTags(extra: TagMap = {}): TagMap {
  return {
    [keys.managed]: 'true',
    [keys.deployment]: DEPLOYMENT,
    [keys.schedule]: 'daily',
    [keys.instanceId]: 'i-0web',
    ...extra,
  };
}

/** A snapshot made by CreateImage for `imageId`, as EC2 describes it. */
function imageSnapshot(
  snapshotId: string,
  imageId: string,
  tags: TagMap,
  overrides: Partial<SnapshotFacts> = {},
): SnapshotFacts {
  return {
    snapshotId,
    volumeId: `vol-${snapshotId.replace(/^snap-/, '')}`,
    state: 'completed',
    startTime: new Date('2026-11-01T03:00:05.000Z'),
    tags,
    sizeGiB: 8,
    description: `Created by CreateImage(i-0web) for ${imageId} from vol-0abc`,
    ...overrides,
  };
}

function image(imageId: string, snapshotIds: readonly string[]): ImageFacts {
  return {
    imageId,
    name: imageId,
    state: 'available',
    tags: ourTags(),
    snapshotIds,
    sizeGiB: 8 * snapshotIds.length,
    deregistrationProtected: false,
    isPublic: false,
  };
}

type ImagesPort = SweepJobDependencies['images'];
type Ec2Port = SweepJobDependencies['ec2'];

interface FakeImagesOptions {
  readonly images?: readonly ImageFacts[];
  readonly snapshots?: readonly SnapshotFacts[];
  /** Images restorable from the Recycle Bin, or the error reading it. */
  readonly recycleBin?: ReadonlySet<string> | Error;
  readonly imagesError?: unknown;
  readonly snapshotsError?: unknown;
}

/** A hand-rolled image gateway: answers as given, and counts the Recycle Bin reads. */
class FakeImages implements ImagesPort {
  public recycleBinReads = 0;
  readonly #options: FakeImagesOptions;

  public constructor(options: FakeImagesOptions = {}) {
    this.#options = options;
  }

  public async listOwnImages(): Promise<ImageFacts[]> {
    if (this.#options.imagesError !== undefined) throw this.#options.imagesError;
    return [...(this.#options.images ?? [])];
  }

  public async listImageSnapshots(): Promise<SnapshotFacts[]> {
    if (this.#options.snapshotsError !== undefined) throw this.#options.snapshotsError;
    return [...(this.#options.snapshots ?? [])];
  }

  public async imagesInRecycleBin(): Promise<Set<string>> {
    this.recycleBinReads += 1;
    const bin = this.#options.recycleBin;
    if (bin instanceof Error) throw bin;
    return new Set(bin ?? []);
  }
}

/** A hand-rolled EC2 gateway that records deletions and throws what it is told to. */
class FakeEc2 implements Ec2Port {
  public readonly deleteCalls: string[] = [];
  public readonly deleted: string[] = [];
  readonly #errors: ReadonlyMap<string, Error>;
  readonly #events: string[] | undefined;

  public constructor(options: { errors?: ReadonlyMap<string, Error>; events?: string[] } = {}) {
    this.#errors = options.errors ?? new Map();
    this.#events = options.events;
  }

  public async deleteSnapshot(snapshotId: string): Promise<void> {
    this.deleteCalls.push(snapshotId);
    this.#events?.push(`delete ${snapshotId}`);
    const error = this.#errors.get(snapshotId);
    if (error) throw error;
    this.deleted.push(snapshotId);
  }
}

function sweep(overrides: Partial<SweepJobInput> = {}): SweepJobInput {
  return { dryRun: false, trigger: 'schedule', ...overrides };
}

function dependencies(
  ec2: FakeEc2,
  images: FakeImages,
  overrides: Partial<Omit<SweepJobDependencies, 'config'>> & {
    readonly config?: Partial<SweepJobDependencies['config']>;
  } = {},
): SweepJobDependencies {
  const { config, ...rest } = overrides;
  return {
    ec2,
    images,
    config: {
      deployment: DEPLOYMENT,
      keys,
      maxDeletions: { kind: 'count', value: 100 },
      deleteConcurrency: 1,
      recycleBinCheck: true,
      ...config,
    },
    clock: () => new Date(NOW),
    runId: RUN_ID,
    logger: silentLogger,
    journal: new RecordingJournal(),
    // The ownership rules have their own tests (issue 15); these judge by the tags.
    ledger: undefined,
    ...rest,
  };
}

const GONE_REASON = `made by CreateImage for ${GONE_AMI}, which no longer exists`;

/** Our two snapshots behind GONE_AMI, and our one behind the live AMI. */
function ourOrphans(): { images: ImageFacts[]; snapshots: SnapshotFacts[] } {
  return {
    images: [image(LIVE_AMI, ['snap-live'])],
    snapshots: [
      imageSnapshot('snap-gone-root', GONE_AMI, ourTags()),
      imageSnapshot('snap-gone-data', GONE_AMI, ourTags(), { sizeGiB: 100 }),
      imageSnapshot('snap-live', LIVE_AMI, ourTags()),
    ],
  };
}

describe('Function: runSweepJob', () => {
  describe('Ours, AMI gone: deleted', () => {
    it('deletes our snapshots whose AMI no longer exists, each between a "before" and an "after" record', async () => {
      // Prepare
      const events: string[] = [];
      const images = new FakeImages(ourOrphans());
      const ec2 = new FakeEc2({ events });
      const journal = new RecordingJournal({ events });

      // Act
      const report = await runSweepJob(sweep(), dependencies(ec2, images, { journal }));

      // Assess
      expect(events).toEqual([
        'before snap-gone-root',
        'delete snap-gone-root',
        'after snap-gone-root done',
        'before snap-gone-data',
        'delete snap-gone-data',
        'after snap-gone-data done',
      ]);
      expect(journal.records[0]).toEqual({
        runId: RUN_ID,
        job: 'sweep',
        action: 'delete-snapshot',
        resourceId: 'snap-gone-root',
        phase: 'before',
        reason: GONE_REASON,
        details: { imageId: GONE_AMI, sizeGiB: 8 },
      });
      expect(report.deleted).toEqual([
        {
          snapshotId: 'snap-gone-root',
          imageId: GONE_AMI,
          sizeGiB: 8,
          reason: GONE_REASON,
          outcome: 'deleted',
        },
        {
          snapshotId: 'snap-gone-data',
          imageId: GONE_AMI,
          sizeGiB: 100,
          reason: GONE_REASON,
          outcome: 'deleted',
        },
      ]);
      expect(report.counts).toEqual({
        examined: 3,
        planned: 2,
        deleted: 2,
        failed: 0,
        blocked: 0,
        reportedOnly: 0,
        blockedGiB: 0,
        reportedOnlyGiB: 0,
      });
      expect(report).toMatchObject({
        runId: RUN_ID,
        job: 'sweep',
        deployment: 'prod',
        dryRun: false,
        status: 'succeeded',
        startedAt: NOW,
        endedAt: NOW,
      });
    });

    it('leaves alone the snapshots of an AMI that still exists', async () => {
      // Prepare
      const images = new FakeImages(ourOrphans());
      const ec2 = new FakeEc2();

      // Act
      const report = await runSweepJob(sweep(), dependencies(ec2, images));

      // Assess
      expect(ec2.deleteCalls).not.toContain('snap-live');
      const mentioned = [...report.deleted, ...report.blocked, ...report.reportedOnly];
      expect(mentioned.map((i) => i.snapshotId)).not.toContain('snap-live');
    });
  });

  describe('Not ours: only reported', () => {
    it('never deletes an orphaned AMI snapshot this deployment did not create, and reports it with its size', async () => {
      // Prepare
      const images = new FakeImages({
        snapshots: [
          imageSnapshot('snap-by-hand', GONE_AMI, {}, { sizeGiB: 100 }),
          imageSnapshot('snap-staging', GONE_AMI, ourTags({ [keys.deployment]: 'staging' }), {
            sizeGiB: 50,
          }),
          imageSnapshot('snap-unmanaged', OTHER_GONE_AMI, ourTags({ [keys.managed]: 'false' }), {
            sizeGiB: 30,
          }),
        ],
      });
      const ec2 = new FakeEc2();

      // Act
      const report = await runSweepJob(sweep(), dependencies(ec2, images));

      // Assess
      expect(ec2.deleteCalls).toEqual([]);
      expect(report.deleted).toEqual([]);
      expect(report.reportedOnly).toEqual([
        {
          snapshotId: 'snap-by-hand',
          imageId: GONE_AMI,
          sizeGiB: 100,
          reason: `${GONE_REASON}; not created by this deployment, so only reported`,
        },
        expect.objectContaining({ snapshotId: 'snap-staging', sizeGiB: 50 }),
        expect.objectContaining({ snapshotId: 'snap-unmanaged', imageId: OTHER_GONE_AMI }),
      ]);
      expect(report.counts).toMatchObject({ reportedOnly: 3, reportedOnlyGiB: 180, deleted: 0 });
      expect(report.status).toBe('succeeded');
    });
  });

  describe('Held: blocked, with what holds it and its size', () => {
    it('blocks a snapshot another existing AMI uses', async () => {
      // Prepare
      const images = new FakeImages({
        images: [image(LIVE_AMI, ['snap-live', 'snap-shared'])],
        snapshots: [imageSnapshot('snap-shared', GONE_AMI, ourTags(), { sizeGiB: 20 })],
      });
      const ec2 = new FakeEc2();

      // Act
      const report = await runSweepJob(sweep(), dependencies(ec2, images));

      // Assess
      expect(ec2.deleteCalls).toEqual([]);
      expect(report.blocked).toEqual([
        {
          snapshotId: 'snap-shared',
          imageId: GONE_AMI,
          sizeGiB: 20,
          reason: `${GONE_REASON}, but used by ${LIVE_AMI}`,
          heldBy: [LIVE_AMI],
        },
      ]);
      expect(report.counts).toMatchObject({ blocked: 1, blockedGiB: 20, planned: 0 });
    });

    it('blocks the snapshots of an AMI restorable from the Recycle Bin', async () => {
      // Prepare
      const images = new FakeImages({ ...ourOrphans(), recycleBin: new Set([GONE_AMI]) });
      const ec2 = new FakeEc2();

      // Act
      const report = await runSweepJob(sweep(), dependencies(ec2, images));

      // Assess
      expect(ec2.deleteCalls).toEqual([]);
      expect(report.blocked.map((b) => [b.snapshotId, b.heldBy])).toEqual([
        ['snap-gone-root', [`recycle bin (${GONE_AMI})`]],
        ['snap-gone-data', [`recycle bin (${GONE_AMI})`]],
      ]);
      expect(report.counts.blockedGiB).toBe(108);
    });

    it('blocks a snapshot that is still pending', async () => {
      // Prepare
      const images = new FakeImages({
        snapshots: [imageSnapshot('snap-pending', GONE_AMI, ourTags(), { state: 'pending' })],
      });
      const ec2 = new FakeEc2();

      // Act
      const report = await runSweepJob(sweep(), dependencies(ec2, images));

      // Assess
      expect(ec2.deleteCalls).toEqual([]);
      expect(report.blocked).toEqual([expect.objectContaining({ heldBy: ['pending'] })]);
    });
  });

  describe('The Recycle Bin', () => {
    it('deletes nothing when the Recycle Bin cannot be read: every would-be deletion blocked, warned, partial', async () => {
      // Prepare
      const images = new FakeImages({
        ...ourOrphans(),
        recycleBin: sdkError('UnauthorizedOperation', 'not authorized to list the Recycle Bin'),
      });
      const ec2 = new FakeEc2();
      const journal = new RecordingJournal();

      // Act
      const report = await runSweepJob(sweep(), dependencies(ec2, images, { journal }));

      // Assess
      expect(ec2.deleteCalls).toEqual([]);
      expect(journal.records).toEqual([]);
      expect(report.deleted).toEqual([]);
      expect(report.blocked).toEqual(
        ['snap-gone-root', 'snap-gone-data'].map((snapshotId) =>
          expect.objectContaining({
            snapshotId,
            reason: `${GONE_REASON}; kept: the Recycle Bin could not be read`,
            heldBy: ['recycle bin (unknown)'],
          }),
        ),
      );
      expect(report.warnings).toEqual([
        expect.stringMatching(/^the Recycle Bin could not be read \(.*\); nothing deleted$/),
      ]);
      expect(report.status).toBe('partial');
    });

    it('does not consult the Recycle Bin when the check is off', async () => {
      // Prepare
      const images = new FakeImages({
        ...ourOrphans(),
        recycleBin: sdkError('InvalidAction', 'not implemented'),
      });
      const ec2 = new FakeEc2();

      // Act
      const report = await runSweepJob(
        sweep(),
        dependencies(ec2, images, { config: { recycleBinCheck: false } }),
      );

      // Assess
      expect(images.recycleBinReads).toBe(0);
      expect(ec2.deleted).toEqual(['snap-gone-root', 'snap-gone-data']);
      expect(report.warnings).toEqual([]);
      expect(report.status).toBe('succeeded');
    });
  });

  describe('Mode: dry run', () => {
    it("deletes nothing, journals nothing, and reports each deletion as 'planned'", async () => {
      // Prepare
      const images = new FakeImages(ourOrphans());
      const ec2 = new FakeEc2();
      const journal = new RecordingJournal();

      // Act
      const report = await runSweepJob(
        sweep({ dryRun: true }),
        dependencies(ec2, images, { journal }),
      );

      // Assess
      expect(ec2.deleteCalls).toEqual([]);
      expect(journal.records).toEqual([]);
      expect(report.deleted.map((d) => [d.snapshotId, d.outcome])).toEqual([
        ['snap-gone-root', 'planned'],
        ['snap-gone-data', 'planned'],
      ]);
      expect(report.counts).toMatchObject({ planned: 2, deleted: 0 });
      expect(report.dryRun).toBe(true);
      expect(report.status).toBe('succeeded');
    });
  });

  describe('Cap: at most MAX_DELETIONS per run', () => {
    it('deletes nothing and fails with DeletionCapExceeded when more are planned than the cap', async () => {
      // Prepare
      const images = new FakeImages(ourOrphans());
      const ec2 = new FakeEc2();
      const journal = new RecordingJournal();

      // Act
      const report = await runSweepJob(
        sweep(),
        dependencies(ec2, images, {
          journal,
          config: { maxDeletions: { kind: 'count', value: 1 } },
        }),
      );

      // Assess
      expect(ec2.deleteCalls).toEqual([]);
      expect(journal.records).toEqual([]);
      expect(report.deleted.map((d) => d.outcome)).toEqual(['planned', 'planned']);
      expect(report.cap).toMatchObject({ limit: 1, planned: 2, exceeded: true });
      expect(report.status).toBe('failed');
      expect(report.error?.code).toBe('DeletionCapExceeded');
    });

    it('lets a one-run maxDeletions override lift the cap', async () => {
      // Prepare
      const images = new FakeImages(ourOrphans());
      const ec2 = new FakeEc2();

      // Act
      const report = await runSweepJob(
        sweep({ maxDeletions: 2 }),
        dependencies(ec2, images, { config: { maxDeletions: { kind: 'count', value: 1 } } }),
      );

      // Assess
      expect(ec2.deleted).toHaveLength(2);
      expect(report.status).toBe('succeeded');
    });
  });

  describe('Races and failures at delete time', () => {
    it('skips a snapshot an image took since the plan (InUse) and one already gone (NotFound), without failing', async () => {
      // Prepare
      const images = new FakeImages(ourOrphans());
      const ec2 = new FakeEc2({
        errors: new Map<string, Error>([
          ['snap-gone-root', new SnapshotInUseError('snap-gone-root')],
          ['snap-gone-data', new SnapshotNotFoundError('snap-gone-data')],
        ]),
      });
      const journal = new RecordingJournal();

      // Act
      const report = await runSweepJob(sweep(), dependencies(ec2, images, { journal }));

      // Assess
      expect(report.deleted.map((d) => [d.snapshotId, d.outcome, d.reason])).toEqual([
        ['snap-gone-root', 'skipped', `${GONE_REASON}; skipped: InvalidSnapshot.InUse`],
        ['snap-gone-data', 'skipped', `${GONE_REASON}; skipped: InvalidSnapshot.NotFound`],
      ]);
      expect(journal.records.filter((r) => r.phase === 'after').map((r) => r.outcome)).toEqual([
        'skipped',
        'skipped',
      ]);
      expect(report.counts).toMatchObject({ deleted: 0, failed: 0 });
      expect(report.status).toBe('succeeded');
    });

    it('fails a deletion EC2 refuses for any other reason, keeps going, and makes the run partial', async () => {
      // Prepare
      const images = new FakeImages(ourOrphans());
      const ec2 = new FakeEc2({
        errors: new Map([['snap-gone-root', sdkError('UnauthorizedOperation', 'not authorized')]]),
      });
      const journal = new RecordingJournal();

      // Act
      const report = await runSweepJob(sweep(), dependencies(ec2, images, { journal }));

      // Assess
      expect(report.deleted[0]).toMatchObject({
        snapshotId: 'snap-gone-root',
        outcome: 'failed',
        error: { code: 'UnauthorizedOperation' },
      });
      expect(ec2.deleted).toEqual(['snap-gone-data']);
      expect(journal.records.find((r) => r.phase === 'after')).toMatchObject({
        resourceId: 'snap-gone-root',
        outcome: 'failed',
        error: { code: 'UnauthorizedOperation' },
      });
      expect(report.counts).toMatchObject({ deleted: 1, failed: 1 });
      expect(report.status).toBe('partial');
    });

    it('does not delete a snapshot whose "before" record cannot be written', async () => {
      // Prepare
      const images = new FakeImages(ourOrphans());
      const ec2 = new FakeEc2();
      const journal = new RecordingJournal({ failBefore: ['snap-gone-root'] });

      // Act
      const report = await runSweepJob(sweep(), dependencies(ec2, images, { journal }));

      // Assess
      expect(ec2.deleteCalls).toEqual(['snap-gone-data']);
      expect(report.deleted[0]).toMatchObject({
        snapshotId: 'snap-gone-root',
        outcome: 'failed',
        error: { code: 'JournalUnavailable' },
      });
      expect(report.status).toBe('partial');
    });
  });

  describe('Describe failures', () => {
    it.each([
      ['the images', { imagesError: sdkError('RequestLimitExceeded', 'Request limit exceeded.') }],
      [
        'the snapshots',
        { snapshotsError: sdkError('RequestLimitExceeded', 'Request limit exceeded.') },
      ],
    ])(
      'fails the run, with the AWS code, and deletes nothing when %s cannot be listed',
      async (_, failure) => {
        // Prepare
        const images = new FakeImages({ ...ourOrphans(), ...failure });
        const ec2 = new FakeEc2();

        // Act
        const report = await runSweepJob(sweep(), dependencies(ec2, images));

        // Assess
        expect(ec2.deleteCalls).toEqual([]);
        expect(report.status).toBe('failed');
        expect(report.error?.code).toBe('RequestLimitExceeded');
        expect(report.deleted).toEqual([]);
      },
    );
  });

  describe('The report', () => {
    it("says that the sizes are the volumes' and the bytes freed may be less, snapshots being incremental", async () => {
      // Prepare
      const images = new FakeImages(ourOrphans());
      const ec2 = new FakeEc2();

      // Act
      const report = await runSweepJob(sweep(), dependencies(ec2, images));

      // Assess
      expect(report.note).toMatch(/bytes actually freed may be less/);
      expect(report.note).toMatch(/incremental/);
    });
  });
});

describe('Function: runSweepJob, ownership by the run history (issue 15, defect 11)', () => {
  const ledger = (recorded: readonly string[] | Error): CreationLedger => ({
    ledgerStart: async () => new Date('2025-01-01T00:00:00Z'),
    recordedCreations: async (ids) => {
      if (recorded instanceof Error) throw recorded;
      return new Map(
        ids
          .filter((id) => recorded.includes(id))
          .map((id) => [
            id,
            { resourceId: id, kind: 'image' as const, runId: 'r0', job: 'amis', at: '' },
          ]),
      );
    },
  });

  it('only reports the snapshots of a gone AMI the history never recorded creating', async () => {
    // Prepare
    const images = new FakeImages(ourOrphans());
    const ec2 = new FakeEc2();

    // Act
    const report = await runSweepJob(sweep(), dependencies(ec2, images, { ledger: ledger([]) }));

    // Assess
    expect(ec2.deleted).toEqual([]);
    expect(report.reportedOnly.map((r) => r.snapshotId).sort()).toEqual([
      'snap-gone-data',
      'snap-gone-root',
    ]);
  });

  it('deletes them when the history recorded their AMI', async () => {
    // Prepare
    const images = new FakeImages(ourOrphans());
    const ec2 = new FakeEc2();

    // Act
    await runSweepJob(sweep(), dependencies(ec2, images, { ledger: ledger([GONE_AMI]) }));

    // Assess
    expect(ec2.deleted.sort()).toEqual(['snap-gone-data', 'snap-gone-root']);
  });

  it('deletes nothing, and reports partial, when the history cannot be read', async () => {
    // Prepare
    const images = new FakeImages(ourOrphans());
    const ec2 = new FakeEc2();

    // Act
    const report = await runSweepJob(
      sweep(),
      dependencies(ec2, images, { ledger: ledger(new Error('socket hang up')) }),
    );

    // Assess
    expect(ec2.deleted).toEqual([]);
    expect(report.status).toBe('partial');
    expect(report.blocked).toHaveLength(2);
  });
});
