import { describe, expect, it, type Mock, vi } from 'vitest';
import type { Grants } from '../../../lib/aws/Ec2CopyGateway.ts';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import type { InstanceFacts } from '../../../lib/domain/backupPlan.ts';
import { InvalidEventError } from '../../../lib/domain/errors.ts';
import type { ImageFacts } from '../../../lib/domain/imagePlan.ts';
import type { CreationKind, CreationRecord } from '../../../lib/domain/provenance.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { TagMap } from '../../../lib/domain/tagPolicy.ts';
import {
  COPY_IMAGE_INTERVAL_MS,
  type CopyJobDependencies,
  type CopyJobInput,
  type CopyReport,
  MAX_CONCURRENT_COPIES,
  type RegionGateways,
  runCopyJob,
} from '../../../lib/jobs/copyJob.ts';
import { parseCopyEvent } from '../../../lib/jobs/events.ts';
import type { CreationLedger } from '../../../lib/jobs/ownership.ts';
import { RecordingJournal } from '../../support/recordingJournal.ts';
import { type LogFunction, recordingLogger as quietLogger } from '../../support/recordingLogger.ts';

const keys = tagKeys();
const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const DEPLOYMENT = 'prod';
const SOURCE = 'us-east-1';
const DEST = 'eu-west-1';
const DEST2 = 'us-west-2';
const RUN_ID = '20261123T120000Z-c0pyj0b1';
const NOW = '2026-11-23T12:00:00.000Z';
const DAY_MS = 86_400_000;
const daysAgo = (days: number): string =>
  new Date(Date.parse('2026-11-23T03:00:05.000Z') - days * DAY_MS)
    .toISOString()
    .replace('.000Z', 'Z');

type CopySnapshotRequest = Parameters<RegionGateways['copies']['copySnapshot']>[0];
type CopyImageRequest = Parameters<RegionGateways['copies']['copyImage']>[0];
type GrantChange = Parameters<CopyJobDependencies['sharing']['changeSnapshotGrants']>[1];

interface SourceOptions {
  readonly instances?: readonly InstanceFacts[];
  readonly snapshots?: readonly SnapshotFacts[];
  readonly images?: readonly ImageFacts[];
}

/** The source region's EC2: streams what it is given (no filtering), records the calls. */
class FakeSourceEc2 implements Pick<CopyJobDependencies['ec2'], keyof CopyJobDependencies['ec2']> {
  public readonly snapshotTagRequests: Record<string, string>[] = [];
  public readonly describedIds: string[][] = [];
  readonly #options: SourceOptions;

  public constructor(options: SourceOptions) {
    this.#options = options;
  }

  public async *listInstancesWithTagKey(tagKey: string): AsyncGenerator<InstanceFacts> {
    for (const instance of this.#options.instances ?? []) {
      if (instance.tags[tagKey] !== undefined) yield instance;
    }
  }

  public async *listSnapshotsTagged(
    tags: Readonly<Record<string, string>>,
  ): AsyncGenerator<SnapshotFacts> {
    this.snapshotTagRequests.push({ ...tags });
    for (const snapshot of this.#options.snapshots ?? []) yield snapshot;
  }

  public async describeSnapshotsByIds(ids: readonly string[]): Promise<SnapshotFacts[]> {
    this.describedIds.push([...ids]);
    return (this.#options.snapshots ?? []).filter((s) => ids.includes(s.snapshotId));
  }
}

class FakeSourceImages {
  public readonly requests: Record<string, string>[] = [];
  readonly #images: readonly ImageFacts[];

  public constructor(images: readonly ImageFacts[] = []) {
    this.#images = images;
  }

  public async listImagesTagged(tags: Readonly<Record<string, string>>): Promise<ImageFacts[]> {
    this.requests.push({ ...tags });
    return [...this.#images];
  }
}

interface SharingOptions {
  readonly snapshotGrants?: Readonly<Record<string, readonly string[]>>;
  readonly imageGrants?: Readonly<Record<string, readonly string[]>>;
  readonly publicSnapshots?: readonly { snapshotId: string; tags: Record<string, string> }[];
  readonly publicImages?: readonly { imageId: string; tags: Record<string, string> }[];
}

/** Shares and public exposure in the source region. */
class FakeSharing
  implements Pick<CopyJobDependencies['sharing'], keyof CopyJobDependencies['sharing']>
{
  public readonly snapshotChanges: { id: string; change: GrantChange }[] = [];
  public readonly imageChanges: { id: string; change: GrantChange }[] = [];
  readonly #options: SharingOptions;

  public constructor(options: SharingOptions = {}) {
    this.#options = options;
  }

  public async snapshotGrants(snapshotId: string): Promise<Grants> {
    return { accounts: [...(this.#options.snapshotGrants?.[snapshotId] ?? [])], isPublic: false };
  }

  public async imageGrants(imageId: string): Promise<Grants> {
    return { accounts: [...(this.#options.imageGrants?.[imageId] ?? [])], isPublic: false };
  }

  public async changeSnapshotGrants(snapshotId: string, change: GrantChange): Promise<void> {
    this.snapshotChanges.push({ id: snapshotId, change });
  }

  public async changeImageGrants(imageId: string, change: GrantChange): Promise<void> {
    this.imageChanges.push({ id: imageId, change });
  }

  public async publicSnapshots() {
    return [...(this.#options.publicSnapshots ?? [])];
  }

  public async publicImages() {
    return [...(this.#options.publicImages ?? [])];
  }
}

interface DestinationOptions {
  /** The copies already in the region (streamed as is, no filtering). */
  readonly copies?: readonly SnapshotFacts[];
  readonly imageCopies?: readonly ImageFacts[];
  readonly holders?: ReadonlyMap<string, readonly string[]>;
  /** Per source snapshot (or image) id: what the copy call throws. */
  readonly copyErrors?: ReadonlyMap<string, unknown>;
}

/** One destination region: records every copy, deletion and deregistration. */
class FakeDestination implements RegionGateways {
  public readonly snapshotCopies: CopySnapshotRequest[] = [];
  public readonly imageCopies: { request: CopyImageRequest; tagAfterCreate: boolean }[] = [];
  public readonly deleted: string[] = [];
  public readonly deregistered: string[] = [];
  public readonly listRequests: Record<string, string | readonly string[]>[] = [];
  readonly #options: DestinationOptions;
  readonly #events: string[];

  public constructor(options: DestinationOptions, events: string[]) {
    this.#options = options;
    this.#events = events;
  }

  public readonly ec2: RegionGateways['ec2'] = {
    listSnapshotsTagged: (tags) => this.#list(tags),
    snapshotHolders: async () =>
      new Map([...(this.#options.holders ?? [])].map(([id, amis]) => [id, [...amis]])),
    deleteSnapshot: async (snapshotId) => {
      this.#events.push(`delete ${snapshotId}`);
      this.deleted.push(snapshotId);
    },
  };

  public readonly images: RegionGateways['images'] = {
    listImagesTagged: async () => [...(this.#options.imageCopies ?? [])],
    deregisterImage: async (imageId) => {
      this.#events.push(`deregister ${imageId}`);
      this.deregistered.push(imageId);
    },
  };

  public readonly copies: RegionGateways['copies'] = {
    copySnapshot: async (request) => {
      this.#events.push(`copySnapshot ${request.sourceSnapshotId}`);
      const error = this.#options.copyErrors?.get(request.sourceSnapshotId);
      if (error !== undefined) throw error;
      this.snapshotCopies.push(request);
      return `snap-copy-of-${request.sourceSnapshotId}`;
    },
    copyImage: async (request, tagAfterCreate = false) => {
      this.#events.push(`copyImage ${request.sourceImageId}`);
      const error = this.#options.copyErrors?.get(request.sourceImageId);
      if (error !== undefined) throw error;
      this.imageCopies.push({ request, tagAfterCreate });
      return `ami-copy-of-${request.sourceImageId}`;
    },
  };

  async *#list(
    tags: Readonly<Record<string, string | readonly string[]>>,
  ): AsyncGenerator<SnapshotFacts> {
    this.listRequests.push({ ...tags });
    for (const copy of this.#options.copies ?? []) yield copy;
  }
}

/** What snapkeeper writes on a daily snapshot of this deployment. */
function ourTags(instanceId: string, createdAt: string, extra: TagMap = {}): TagMap {
  return {
    [keys.managed]: 'true',
    [keys.deployment]: DEPLOYMENT,
    [keys.schedule]: 'daily',
    [keys.instanceId]: instanceId,
    [keys.createdAt]: createdAt,
    Name: instanceId,
    ...extra,
  };
}

function source(
  snapshotId: string,
  instanceId = 'i-web',
  overrides: Partial<SnapshotFacts> = {},
): SnapshotFacts {
  return {
    snapshotId,
    volumeId: `vol-${snapshotId.replace(/^snap-/, '')}`,
    state: 'completed',
    startTime: new Date(NOW),
    tags: ourTags(instanceId, daysAgo(0)),
    sizeGiB: 8,
    ...overrides,
  };
}

/** A copy already in a destination, of a source snapshot of `volumeId`. */
function existingCopy(
  snapshotId: string,
  volumeId: string,
  ageDays: number,
  extra: TagMap = {},
  overrides: Partial<SnapshotFacts> = {},
): SnapshotFacts {
  return {
    snapshotId,
    volumeId: 'vol-ffffffff',
    state: 'completed',
    startTime: new Date(NOW),
    tags: ourTags('i-web', daysAgo(ageDays), {
      [keys.sourceVolumeId]: volumeId,
      [keys.sourceSnapshotId]: `snap-src-of-${snapshotId}`,
      [keys.sourceRegion]: SOURCE,
      [keys.copyRetain]: '2',
      ...extra,
    }),
    ...overrides,
  };
}

function image(imageId: string, instanceId = 'i-web', overrides: Partial<ImageFacts> = {}) {
  return {
    imageId,
    name: `${instanceId}-daily-${imageId}`,
    state: 'available',
    creationDate: new Date(NOW),
    tags: ourTags(instanceId, daysAgo(0)),
    snapshotIds: [`snap-behind-${imageId}`],
    sizeGiB: 8,
    deregistrationProtected: false,
    isPublic: false,
    ...overrides,
  } satisfies ImageFacts;
}

function instance(instanceId: string, tags: TagMap = {}): InstanceFacts {
  return {
    instanceId,
    state: 'running',
    rootDeviceName: '/dev/xvda',
    tags: { [keys.backup]: 'daily', Name: instanceId, ...tags },
    volumes: [{ volumeId: `vol-${instanceId}`, deviceName: '/dev/xvda' }],
  };
}

/** i-web: backed up daily, copied to eu-west-1. */
const web = (tags: TagMap = {}) => instance('i-web', { [keys.copyTo]: DEST, ...tags });

interface World {
  readonly ec2: FakeSourceEc2;
  readonly images: FakeSourceImages;
  readonly sharing: FakeSharing;
  readonly destinations: Map<string, FakeDestination>;
  readonly journal: RecordingJournal;
  readonly events: string[];
  readonly sleep: Mock<(ms: number) => Promise<void>>;
  readonly deps: CopyJobDependencies;
  /** The fake of a region (made on first use). */
  dest(region: string): FakeDestination;
}

function world(
  options: SourceOptions & {
    readonly sharing?: SharingOptions;
    readonly destinations?: Readonly<Record<string, DestinationOptions>>;
    readonly config?: Partial<CopyJobDependencies['config']>;
  } = {},
): World {
  const events: string[] = [];
  const destinations = new Map<string, FakeDestination>();
  const dest = (region: string): FakeDestination => {
    let fake = destinations.get(region);
    if (!fake) {
      fake = new FakeDestination(options.destinations?.[region] ?? {}, events);
      destinations.set(region, fake);
    }
    return fake;
  };
  const ec2 = new FakeSourceEc2(options);
  const images = new FakeSourceImages(options.images);
  const sharing = new FakeSharing(options.sharing);
  const journal = new RecordingJournal({ events, withOutcome: false });
  const sleep = vi.fn(async (ms: number) => {
    events.push(`sleep ${ms}`);
  });
  const deps: CopyJobDependencies = {
    ec2,
    images,
    sharing,
    destination: dest,
    config: {
      region: SOURCE,
      deployment: DEPLOYMENT,
      keys,
      catalog,
      manualRetainDays: 30,
      copyKmsKeys: {},
      makePrivate: false,
      localTagAfterCreate: false,
      ...options.config,
    },
    clock: () => new Date(NOW),
    runId: RUN_ID,
    logger: quietLogger(),
    journal,
    sleep,
  };
  return { ec2, images, sharing, destinations, journal, events, sleep, deps, dest };
}

function run(w: World, input: Partial<CopyJobInput> = {}): Promise<CopyReport> {
  return runCopyJob({ trigger: 'schedule', dryRun: false, ...input }, w.deps);
}

const outcomes = (report: CopyReport) =>
  Object.fromEntries(report.copies.map((c) => [`${c.region} ${c.sourceId}`, c.outcome]));
const tagMap = (tags: readonly { Key: string; Value: string }[]) =>
  Object.fromEntries(tags.map((t) => [t.Key, t.Value]));

describe('Function: runCopyJob', () => {
  describe('What it copies', () => {
    it('copies each completed managed snapshot of an instance with copy-to into each of its regions', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.copyTo]: `${DEST},${DEST2}` })],
        snapshots: [source('snap-a'), source('snap-b')],
      });

      // Act
      const report = await run(w);

      // Assess
      expect(outcomes(report)).toEqual({
        [`${DEST} snap-a`]: 'copied',
        [`${DEST} snap-b`]: 'copied',
        [`${DEST2} snap-a`]: 'copied',
        [`${DEST2} snap-b`]: 'copied',
      });
      expect(w.dest(DEST).snapshotCopies.map((c) => c.sourceSnapshotId)).toEqual([
        'snap-a',
        'snap-b',
      ]);
      expect(w.dest(DEST).snapshotCopies[0]?.sourceRegion).toBe(SOURCE);
      expect(report.counts.copied).toBe(4);
      expect(report.status).toBe('succeeded');
    });

    it('lists only the sources of this deployment, and only its copies from this region in a destination', async () => {
      // Prepare
      const w = world({ instances: [web()], snapshots: [source('snap-a')] });

      // Act
      await run(w);

      // Assess
      expect(w.ec2.snapshotTagRequests).toEqual([
        { [keys.managed]: 'true', [keys.deployment]: DEPLOYMENT },
      ]);
      expect(w.dest(DEST).listRequests).toEqual([
        { [keys.managed]: 'true', [keys.deployment]: DEPLOYMENT, [keys.sourceRegion]: SOURCE },
      ]);
    });

    it('never copies a snapshot of another deployment, an unmanaged one, or a copy', async () => {
      // Prepare
      const w = world({
        instances: [web()],
        snapshots: [
          source('snap-ours'),
          source('snap-staging', 'i-web', {
            tags: ourTags('i-web', daysAgo(0), { [keys.deployment]: 'staging' }),
          }),
          source('snap-by-hand', 'i-web', { tags: { [keys.instanceId]: 'i-web' } }),
          source('snap-a-copy', 'i-web', {
            tags: ourTags('i-web', daysAgo(0), { [keys.sourceRegion]: 'ap-south-1' }),
          }),
        ],
      });

      // Act
      const report = await run(w);

      // Assess
      expect(report.copies.map((c) => c.sourceId)).toEqual(['snap-ours']);
      expect(w.dest(DEST).snapshotCopies.map((c) => c.sourceSnapshotId)).toEqual(['snap-ours']);
    });

    it('never copies the snapshots of an instance without copy-to', async () => {
      // Prepare
      const w = world({
        instances: [web(), instance('i-local')],
        snapshots: [source('snap-web'), source('snap-local', 'i-local')],
      });

      // Act
      const report = await run(w);

      // Assess
      expect(report.copies.map((c) => c.sourceId)).toEqual(['snap-web']);
      expect([...w.destinations.keys()]).toEqual([DEST]);
    });

    it('reports a pending source as waiting, not failed, and copies it on a later run', async () => {
      // Prepare
      const w = world({
        instances: [web()],
        snapshots: [source('snap-done'), source('snap-pending', 'i-web', { state: 'pending' })],
      });

      // Act
      const report = await run(w);

      // Assess
      expect(report.copies.find((c) => c.sourceId === 'snap-pending')).toMatchObject({
        outcome: 'waiting',
        reason: 'the source is still pending',
      });
      expect(w.dest(DEST).snapshotCopies.map((c) => c.sourceSnapshotId)).toEqual(['snap-done']);
      expect(report.counts).toMatchObject({ copied: 1, waiting: 1, failed: 0 });
      expect(report.status).toBe('succeeded');
    });

    it("copies nothing twice: a source already copied is reported as 'exists'", async () => {
      // Prepare
      const w = world({
        instances: [web()],
        snapshots: [source('snap-a'), source('snap-b')],
        destinations: {
          [DEST]: {
            copies: [
              existingCopy('snap-copy-a', 'vol-a', 1, { [keys.sourceSnapshotId]: 'snap-a' }),
            ],
          },
        },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(outcomes(report)).toEqual({
        [`${DEST} snap-a`]: 'exists',
        [`${DEST} snap-b`]: 'copied',
      });
      expect(w.dest(DEST).snapshotCopies.map((c) => c.sourceSnapshotId)).toEqual(['snap-b']);
      expect(report.counts.existing).toBe(1);
    });

    it('tags each copy with the source tags, where it came from and the count at copy time', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.copyRetain]: '3' })],
        snapshots: [source('snap-a', 'i-web', { volumeId: 'vol-data' })],
      });

      // Act
      await run(w);

      // Assess
      const tags = tagMap(w.dest(DEST).snapshotCopies[0]?.tags ?? []);
      expect(tags).toMatchObject({
        [keys.managed]: 'true',
        [keys.deployment]: DEPLOYMENT,
        [keys.schedule]: 'daily',
        [keys.instanceId]: 'i-web',
        [keys.sourceVolumeId]: 'vol-data',
        [keys.sourceSnapshotId]: 'snap-a',
        [keys.sourceRegion]: SOURCE,
        [keys.copyRetain]: '3',
      });
    });

    it("keeps the source's own count on the copies when copy-retain is absent", async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.retain]: '5' })],
        snapshots: [source('snap-a')],
      });

      // Act
      await run(w);

      // Assess
      expect(tagMap(w.dest(DEST).snapshotCopies[0]?.tags ?? [])[keys.copyRetain]).toBe('5');
    });

    it("encrypts the copies with the region's key, the tag's over the configured one", async () => {
      // Prepare
      const w = world({
        instances: [
          web({ [keys.copyTo]: `${DEST},${DEST2}`, [keys.copyKmsKey]: `${DEST2}=alias/tag-us` }),
        ],
        snapshots: [source('snap-a')],
        config: { copyKmsKeys: { [DEST]: 'alias/config-eu', [DEST2]: 'alias/config-us' } },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.dest(DEST).snapshotCopies[0]?.kmsKeyId).toBe('alias/config-eu');
      expect(w.dest(DEST2).snapshotCopies[0]?.kmsKeyId).toBe('alias/tag-us');
      expect(report.copies.map((c) => [c.region, c.encryptedWith])).toEqual([
        [DEST, 'alias/config-eu'],
        [DEST2, 'alias/tag-us'],
      ]);
    });

    it("copies to the schedule's regions when the instance names none, the tag winning over them", async () => {
      // Prepare
      const withCopyTo = parseScheduleCatalog(
        DEFAULT_SCHEDULES.map((s) => (s.name === 'daily' ? { ...s, copyTo: [DEST2] } : s)),
        'daily',
      );
      const w = world({
        instances: [instance('i-plain'), web()],
        snapshots: [source('snap-plain', 'i-plain'), source('snap-web')],
        config: { catalog: withCopyTo },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(outcomes(report)).toEqual({
        [`${DEST2} snap-plain`]: 'copied',
        [`${DEST} snap-web`]: 'copied',
      });
    });

    it('copies only the snapshots an EBS event names, and no AMI', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.ami]: 'daily' })],
        snapshots: [source('snap-a'), source('snap-b')],
        images: [image('ami-1')],
      });

      // Act
      const report = await run(w, { snapshotIds: ['snap-b'] });

      // Assess
      expect(w.ec2.describedIds).toEqual([['snap-b']]);
      expect(w.ec2.snapshotTagRequests).toEqual([]);
      // The AMIs are read only to leave their snapshots to CopyImage (copied once).
      expect(w.images.requests).toEqual([
        { [keys.managed]: 'true', [keys.deployment]: DEPLOYMENT },
      ]);
      expect(report.copies.map((c) => c.sourceId)).toEqual(['snap-b']);
      expect(w.dest(DEST).imageCopies).toEqual([]);
    });

    it('journals each copy made, with its source and region', async () => {
      // Prepare
      const w = world({ instances: [web()], snapshots: [source('snap-a')] });

      // Act
      await run(w);

      // Assess
      expect(w.journal.records).toEqual([
        expect.objectContaining({
          runId: RUN_ID,
          job: 'copy',
          action: 'copy-snapshot',
          resourceId: 'snap-copy-of-snap-a',
          details: expect.objectContaining({ snapshotId: 'snap-a', region: DEST }),
        }),
      ]);
    });
  });

  describe('Limits: concurrent copies and the CopyImage rate', () => {
    it(`copies at most ${MAX_CONCURRENT_COPIES} at once into a region, counting the copies still pending there`, async () => {
      // Prepare
      const pending = Array.from({ length: 18 }, (_, i) =>
        existingCopy(`snap-inflight-${i}`, `vol-old-${i}`, 0, {}, { state: 'pending' }),
      );
      const w = world({
        instances: [web()],
        snapshots: ['snap-1', 'snap-2', 'snap-3', 'snap-4', 'snap-5'].map((id) => source(id)),
        destinations: { [DEST]: { copies: pending } },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(MAX_CONCURRENT_COPIES).toBe(20);
      expect(w.dest(DEST).snapshotCopies.map((c) => c.sourceSnapshotId)).toEqual([
        'snap-1',
        'snap-2',
      ]);
      const waiting = report.copies.filter((c) => c.outcome === 'waiting');
      expect(waiting.map((c) => c.sourceId)).toEqual(['snap-3', 'snap-4', 'snap-5']);
      for (const c of waiting)
        expect(c.reason).toContain(`20 copies already in flight into ${DEST}`);
      expect(report.counts).toMatchObject({ copied: 2, waiting: 3, failed: 0 });
      expect(report.status).toBe('succeeded');
    });

    it('sends the copies the limit allows together, paced by the bucket, not one after another', async () => {
      // Prepare: 10 copies of 300 ms each.
      const w = world({
        instances: [web()],
        snapshots: Array.from({ length: 10 }, (_, i) => source(`snap-${i}`)),
      });
      const fake = w.dest(DEST);
      const copy = fake.copies.copySnapshot;
      let inFlight = 0;
      let most = 0;
      (fake.copies as { copySnapshot: typeof copy }).copySnapshot = async (request) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 300));
        inFlight -= 1;
        return copy(request);
      };
      const started = Date.now();

      // Act
      const report = await run(w);

      // Assess: one after another would take 3 s.
      expect(report.counts).toMatchObject({ copied: 10, failed: 0 });
      expect(most).toBe(10);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(report.copies.map((c) => c.sourceId)).toEqual(
        Array.from({ length: 10 }, (_, i) => `snap-${i}`),
      );
    });

    it('counts the limit per destination region', async () => {
      // Prepare
      const snapshots = Array.from({ length: 25 }, (_, i) => source(`snap-${i}`));
      const w = world({
        instances: [web({ [keys.copyTo]: `${DEST},${DEST2}` })],
        snapshots,
        destinations: {
          [DEST2]: {
            copies: Array.from({ length: 20 }, (_, i) =>
              existingCopy(`snap-inflight-${i}`, `vol-old-${i}`, 0, {}, { state: 'pending' }),
            ),
          },
        },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.dest(DEST).snapshotCopies).toHaveLength(20);
      expect(w.dest(DEST2).snapshotCopies).toHaveLength(0);
      expect(
        report.copies.filter((c) => c.region === DEST && c.outcome === 'waiting'),
      ).toHaveLength(5);
      expect(
        report.copies.filter((c) => c.region === DEST2 && c.outcome === 'waiting'),
      ).toHaveLength(25);
    });

    it('waits a second between CopyImage calls, and only between them', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.ami]: 'daily' })],
        images: [image('ami-1'), image('ami-2'), image('ami-3')],
      });

      // Act
      const report = await run(w);

      // Assess
      expect(COPY_IMAGE_INTERVAL_MS).toBe(1000);
      expect(w.events.filter((e) => e.startsWith('copyImage') || e.startsWith('sleep'))).toEqual([
        'copyImage ami-1',
        'sleep 1000',
        'copyImage ami-2',
        'sleep 1000',
        'copyImage ami-3',
      ]);
      expect(w.sleep).toHaveBeenCalledTimes(2);
      expect(report.copies.map((c) => c.outcome)).toEqual(['copied', 'copied', 'copied']);
    });

    it('tags the image copies in the request, with the source image and the AMI count', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.ami]: 'daily', [keys.copyRetain]: '2' })],
        images: [image('ami-1')],
        config: { localTagAfterCreate: true, copyKmsKeys: { [DEST]: 'alias/dr' } },
      });

      // Act
      await run(w);

      // Assess
      const [copy] = w.dest(DEST).imageCopies;
      expect(copy?.tagAfterCreate).toBe(true);
      expect(copy?.request).toMatchObject({
        sourceRegion: SOURCE,
        sourceImageId: 'ami-1',
        kmsKeyId: 'alias/dr',
      });
      expect(tagMap(copy?.request.tags ?? [])).toMatchObject({
        [keys.sourceImageId]: 'ami-1',
        [keys.sourceRegion]: SOURCE,
        [keys.copyRetain]: '2',
      });
    });

    it('reports an AMI that is not yet available as waiting, without a CopyImage call', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.ami]: 'daily' })],
        images: [image('ami-pending', 'i-web', { state: 'pending' }), image('ami-ready')],
      });

      // Act
      const report = await run(w);

      // Assess
      expect(report.copies.find((c) => c.sourceId === 'ami-pending')).toMatchObject({
        outcome: 'waiting',
      });
      expect(w.dest(DEST).imageCopies.map((c) => c.request.sourceImageId)).toEqual(['ami-ready']);
      expect(w.sleep).not.toHaveBeenCalled();
    });
  });

  describe('KMS errors on copy', () => {
    it.each([
      [
        'an AwsCallError',
        new AwsCallError('CopySnapshot', 'KMSKeyNotAccessibleFault', 'key alias/dr is disabled'),
        'KMSKeyNotAccessibleFault',
      ],
      [
        'an SDK error',
        Object.assign(new Error('Invalid KMS key alias/dr'), { name: 'InvalidParameterValue' }),
        'InvalidParameterValue',
      ],
    ])(
      'fails that copy with the code (%s), makes the others, and reports the run partial',
      async (_, error, code) => {
        // Prepare
        const w = world({
          instances: [web({ [keys.copyKmsKey]: 'alias/dr' })],
          snapshots: [source('snap-a'), source('snap-b'), source('snap-c')],
          destinations: { [DEST]: { copyErrors: new Map([['snap-b', error]]) } },
        });

        // Act
        const report = await run(w);

        // Assess
        expect(report.copies.find((c) => c.sourceId === 'snap-b')).toMatchObject({
          outcome: 'failed',
          error: { code },
        });
        expect(w.dest(DEST).snapshotCopies.map((c) => c.sourceSnapshotId)).toEqual([
          'snap-a',
          'snap-c',
        ]);
        expect(report.counts).toMatchObject({ copied: 2, failed: 1 });
        expect(report.status).toBe('partial');
      },
    );

    it('fails an AMI copy with the code and still copies the next AMI', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.ami]: 'daily', [keys.copyKmsKey]: 'alias/dr' })],
        images: [image('ami-1'), image('ami-2')],
        destinations: {
          [DEST]: {
            copyErrors: new Map([
              ['ami-1', new AwsCallError('CopyImage', 'KMSKeyNotAccessibleFault', 'no grant')],
            ]),
          },
        },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(report.copies.map((c) => [c.sourceId, c.outcome, c.error?.code])).toEqual([
        ['ami-1', 'failed', 'KMSKeyNotAccessibleFault'],
        ['ami-2', 'copied', undefined],
      ]);
      expect(report.status).toBe('partial');
    });
  });

  describe('Shares', () => {
    it('names an invalid account id, shares with the valid ones and skips nothing else', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.shareWith]: '111122223333, 12345, 444455556666' })],
        snapshots: [source('snap-a'), source('snap-b')],
      });

      // Act
      const report = await run(w);

      // Assess
      expect(report.problems).toEqual([
        expect.stringContaining('"12345" is not a 12-digit account id'),
      ]);
      expect(report.problems[0]).toContain(keys.shareWith);
      expect(w.sharing.snapshotChanges.map((c) => c.id).sort()).toEqual(['snap-a', 'snap-b']);
      for (const { change } of w.sharing.snapshotChanges) {
        expect(change.add).toEqual(['111122223333', '444455556666']);
      }
      expect(w.dest(DEST).snapshotCopies).toHaveLength(2);
      expect(report.counts.sharesChanged).toBe(2);
    });

    it('grants the accounts listed and revokes the ones no longer listed', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.shareWith]: '111122223333', [keys.ami]: 'daily' })],
        snapshots: [source('snap-a')],
        images: [image('ami-1')],
        sharing: {
          snapshotGrants: { 'snap-a': ['999988887777'] },
          imageGrants: { 'ami-1': ['111122223333', '999988887777'] },
        },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.sharing.snapshotChanges).toEqual([
        { id: 'snap-a', change: { add: ['111122223333'], remove: ['999988887777'] } },
      ]);
      expect(w.sharing.imageChanges).toEqual([
        { id: 'ami-1', change: { add: [], remove: ['999988887777'] } },
      ]);
      expect(report.shares).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ resourceId: 'snap-a', outcome: 'changed' }),
          expect.objectContaining({ resourceId: 'ami-1', outcome: 'changed' }),
        ]),
      );
    });

    it('changes nothing on a resource already shared exactly', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.shareWith]: '111122223333' })],
        snapshots: [source('snap-a')],
        sharing: { snapshotGrants: { 'snap-a': ['111122223333'] } },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.sharing.snapshotChanges).toEqual([]);
      expect(report.shares).toEqual([]);
    });

    it('blocks sharing a snapshot encrypted with the default key, naming the fix, and reports partial', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.shareWith]: '111122223333' })],
        snapshots: [
          source('snap-default-key', 'i-web', { encrypted: true, kmsKeyId: undefined }),
          source('snap-alias-key', 'i-web', { encrypted: true, kmsKeyId: 'alias/aws/ebs' }),
          source('snap-plain'),
        ],
      });

      // Act
      const report = await run(w);

      // Assess
      const blocked = report.shares.filter((s) => s.outcome === 'blocked');
      expect(blocked.map((s) => s.resourceId).sort()).toEqual([
        'snap-alias-key',
        'snap-default-key',
      ]);
      for (const s of blocked) {
        expect(s.reason).toContain('aws/ebs');
        expect(s.reason).toContain('customer-managed');
      }
      expect(w.sharing.snapshotChanges.map((c) => c.id)).toEqual(['snap-plain']);
      expect(report.status).toBe('partial');
    });

    it('shares a snapshot encrypted with a customer-managed key', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.shareWith]: '111122223333' })],
        snapshots: [
          source('snap-cmk', 'i-web', {
            encrypted: true,
            kmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
          }),
        ],
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.sharing.snapshotChanges).toEqual([
        { id: 'snap-cmk', change: { add: ['111122223333'], remove: [] } },
      ]);
      expect(report.status).toBe('succeeded');
    });

    it('still revokes grants no longer listed on a default-key snapshot', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.shareWith]: '111122223333' })],
        snapshots: [source('snap-default-key', 'i-web', { encrypted: true })],
        sharing: { snapshotGrants: { 'snap-default-key': ['999988887777'] } },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.sharing.snapshotChanges).toEqual([
        {
          id: 'snap-default-key',
          change: expect.objectContaining({ add: [], remove: ['999988887777'] }),
        },
      ]);
      expect(report.shares.map((s) => s.outcome).sort()).toEqual(['blocked', 'changed']);
    });

    it('leaves the grants of an instance without share-with alone', async () => {
      // Prepare
      const w = world({
        instances: [web()],
        snapshots: [source('snap-a')],
        sharing: { snapshotGrants: { 'snap-a': ['999988887777'] } },
      });

      // Act
      await run(w);

      // Assess
      expect(w.sharing.snapshotChanges).toEqual([]);
    });
  });

  describe('Destination retention', () => {
    it('keeps the copy-retain count of copies per source volume and schedule, deleting the oldest', async () => {
      // Prepare
      const w = world({
        instances: [web()],
        destinations: {
          [DEST]: {
            copies: [
              existingCopy('snap-c-data-3', 'vol-data', 3),
              existingCopy('snap-c-data-2', 'vol-data', 2),
              existingCopy('snap-c-data-1', 'vol-data', 1),
              existingCopy('snap-c-root-3', 'vol-root', 3),
              existingCopy('snap-c-root-1', 'vol-root', 1),
              existingCopy('snap-c-weekly-9', 'vol-data', 9, { [keys.schedule]: 'weekly' }),
            ],
          },
        },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.dest(DEST).deleted).toEqual(['snap-c-data-3']);
      expect(report.destinationRetention).toEqual([
        expect.objectContaining({ region: DEST, resourceId: 'snap-c-data-3', action: 'deleted' }),
      ]);
      expect(report.counts.copiesDeleted).toBe(1);
    });

    it('journals before and after each deletion, the before record first', async () => {
      // Prepare
      const w = world({
        instances: [web()],
        destinations: {
          [DEST]: {
            copies: [
              existingCopy('snap-c-3', 'vol-data', 3),
              existingCopy('snap-c-2', 'vol-data', 2),
              existingCopy('snap-c-1', 'vol-data', 1),
            ],
          },
        },
      });

      // Act
      await run(w);

      // Assess
      expect(w.events).toEqual(['before snap-c-3', 'delete snap-c-3', 'after snap-c-3']);
      expect(w.journal.records.map((r) => [r.action, r.phase, r.outcome])).toEqual([
        ['delete-snapshot', 'before', undefined],
        ['delete-snapshot', 'after', 'done'],
      ]);
      expect(w.journal.records[0]?.details).toEqual({ region: DEST });
    });

    it('never deletes a copy an image in the destination uses', async () => {
      // Prepare
      const w = world({
        instances: [web()],
        destinations: {
          [DEST]: {
            copies: [
              existingCopy('snap-c-3', 'vol-data', 3),
              existingCopy('snap-c-2', 'vol-data', 2),
              existingCopy('snap-c-1', 'vol-data', 1),
            ],
            holders: new Map([['snap-c-3', ['ami-restored']]]),
          },
        },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.dest(DEST).deleted).toEqual([]);
      expect(report.destinationRetention.filter((d) => d.action === 'deleted')).toEqual([]);
    });

    it('never touches a destination snapshot not tagged managed by this deployment', async () => {
      // Prepare
      const w = world({
        instances: [web()],
        destinations: {
          [DEST]: {
            copies: [
              existingCopy('snap-staging-9', 'vol-data', 9, { [keys.deployment]: 'staging' }),
              existingCopy('snap-unmanaged-8', 'vol-data', 8, { [keys.managed]: 'false' }),
              existingCopy('snap-c-2', 'vol-data', 2),
              existingCopy('snap-c-1', 'vol-data', 1),
            ],
          },
        },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.dest(DEST).deleted).toEqual([]);
      expect(report.destinationRetention).toEqual([]);
    });

    it('deregisters image copies beyond their count and deletes the snapshots behind them', async () => {
      // Prepare
      const copyOf = (imageId: string, ageDays: number) =>
        image(imageId, 'i-web', {
          tags: ourTags('i-web', daysAgo(ageDays), {
            [keys.sourceImageId]: `src-${imageId}`,
            [keys.sourceRegion]: SOURCE,
            [keys.copyRetain]: '1',
          }),
        });
      const w = world({
        instances: [web()],
        destinations: { [DEST]: { imageCopies: [copyOf('ami-c-2', 2), copyOf('ami-c-1', 1)] } },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.dest(DEST).deregistered).toEqual(['ami-c-2']);
      expect(w.dest(DEST).deleted).toEqual(['snap-behind-ami-c-2']);
      expect(report.counts.imageCopiesDeregistered).toBe(1);
      // Every destructive call is recorded before and after: the image, then its snapshot.
      expect(
        w.journal.records
          .filter((r) => r.action === 'deregister-image' || r.action === 'delete-snapshot')
          .map((r) => `${r.action} ${r.resourceId} ${r.phase}${r.outcome ? ` ${r.outcome}` : ''}`),
      ).toEqual([
        'deregister-image ami-c-2 before',
        'deregister-image ami-c-2 after done',
        'delete-snapshot snap-behind-ami-c-2 before',
        'delete-snapshot snap-behind-ami-c-2 after done',
      ]);
    });
  });

  describe('Dry run', () => {
    it('copies, shares, deletes and makes private nothing, and reports the plan', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.ami]: 'daily', [keys.shareWith]: '111122223333' })],
        snapshots: [source('snap-a')],
        images: [image('ami-1'), image('ami-2')],
        sharing: {
          snapshotGrants: { 'snap-a': ['999988887777'] },
          publicSnapshots: [{ snapshotId: 'snap-a', tags: ourTags('i-web', daysAgo(0)) }],
        },
        destinations: {
          [DEST]: {
            copies: [
              existingCopy('snap-c-3', 'vol-data', 3),
              existingCopy('snap-c-2', 'vol-data', 2),
              existingCopy('snap-c-1', 'vol-data', 1),
            ],
          },
        },
        config: { makePrivate: true },
      });

      // Act
      const report = await run(w, { dryRun: true });

      // Assess
      const dest = w.dest(DEST);
      expect(dest.snapshotCopies).toEqual([]);
      expect(dest.imageCopies).toEqual([]);
      expect(dest.deleted).toEqual([]);
      expect(dest.deregistered).toEqual([]);
      expect(w.sharing.snapshotChanges).toEqual([]);
      expect(w.sharing.imageChanges).toEqual([]);
      expect(w.sleep).not.toHaveBeenCalled();
      expect(w.journal.records).toEqual([]);
      expect(report.dryRun).toBe(true);
      expect(report.copies.map((c) => c.outcome)).toEqual(['planned', 'planned', 'planned']);
      expect(report.destinationRetention).toEqual([
        expect.objectContaining({ resourceId: 'snap-c-3', action: 'planned' }),
      ]);
      expect(report.shares).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ resourceId: 'snap-a', outcome: 'planned' }),
        ]),
      );
      expect(report.publicFindings).toEqual([
        expect.objectContaining({ resourceId: 'snap-a', managed: true, madePrivate: false }),
      ]);
    });
  });

  describe('Public exposure', () => {
    const publicOnes = (): SharingOptions => ({
      publicSnapshots: [
        { snapshotId: 'snap-pub-ours', tags: ourTags('i-web', daysAgo(1)) },
        { snapshotId: 'snap-pub-theirs', tags: { Name: 'by hand' } },
        {
          snapshotId: 'snap-pub-staging',
          tags: ourTags('i-web', daysAgo(1), { [keys.deployment]: 'staging' }),
        },
      ],
      publicImages: [
        { imageId: 'ami-pub-ours', tags: ourTags('i-web', daysAgo(1)) },
        { imageId: 'ami-pub-theirs', tags: {} },
      ],
    });

    it('makes managed public backups private when makePrivate is on, and never changes unmanaged ones', async () => {
      // Prepare
      const w = world({ sharing: publicOnes(), config: { makePrivate: true } });

      // Act
      const report = await run(w);

      // Assess
      expect(w.sharing.snapshotChanges).toEqual([
        { id: 'snap-pub-ours', change: { add: [], remove: [], makePrivate: true } },
      ]);
      expect(w.sharing.imageChanges).toEqual([
        { id: 'ami-pub-ours', change: { add: [], remove: [], makePrivate: true } },
      ]);
      expect(report.publicFindings).toEqual([
        { resourceId: 'snap-pub-ours', kind: 'snapshot', managed: true, madePrivate: true },
        { resourceId: 'snap-pub-theirs', kind: 'snapshot', managed: false, madePrivate: false },
        { resourceId: 'snap-pub-staging', kind: 'snapshot', managed: false, madePrivate: false },
        { resourceId: 'ami-pub-ours', kind: 'image', managed: true, madePrivate: true },
        { resourceId: 'ami-pub-theirs', kind: 'image', managed: false, madePrivate: false },
      ]);
      expect(report.counts.publicFindings).toBe(5);
      expect(report.status).toBe('partial');
    });

    it('only reports public backups when makePrivate is off', async () => {
      // Prepare
      const w = world({ sharing: publicOnes(), config: { makePrivate: false } });

      // Act
      const report = await run(w);

      // Assess
      expect(w.sharing.snapshotChanges).toEqual([]);
      expect(w.sharing.imageChanges).toEqual([]);
      expect(report.publicFindings.every((f) => !f.madePrivate)).toBe(true);
      expect(report.publicFindings.filter((f) => f.managed).map((f) => f.resourceId)).toEqual([
        'snap-pub-ours',
        'ami-pub-ours',
      ]);
      expect(report.status).toBe('partial');
    });

    it('succeeds when the only public backups were ours and are now private', async () => {
      // Prepare
      const w = world({
        sharing: {
          publicSnapshots: [{ snapshotId: 'snap-pub', tags: ourTags('i-web', daysAgo(1)) }],
        },
        config: { makePrivate: true },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(report.publicFindings).toEqual([
        expect.objectContaining({ resourceId: 'snap-pub', madePrivate: true }),
      ]);
      expect(report.status).toBe('succeeded');
    });
  });
});

describe('Function: runCopyJob (copies are kept by their recorded lineage)', () => {
  describe('Destination retention is keyed on the recorded source volume, never vol-ffffffff', () => {
    it('trims each source volume on its own although EC2 answers vol-ffffffff for every copy', async () => {
      // Prepare: EC2 reports every copy's VolumeId as vol-ffffffff (existingCopy does).
      const w = world({
        instances: [web()],
        destinations: {
          [DEST]: {
            copies: [
              existingCopy('snap-c-a-3', 'vol-aaaa', 3),
              existingCopy('snap-c-a-2', 'vol-aaaa', 2),
              existingCopy('snap-c-a-1', 'vol-aaaa', 1),
              existingCopy('snap-c-b-3', 'vol-bbbb', 3),
              existingCopy('snap-c-b-2', 'vol-bbbb', 2),
            ],
          },
        },
      });

      // Act
      await run(w);

      // Assess
      expect(w.dest(DEST).deleted).toEqual(['snap-c-a-3']);
    });

    it('keeps and reports a copy that records no source volume, never pooling it with others', async () => {
      // Prepare: three copies of different volumes whose source-volume-id was lost.
      const lost = (id: string, age: number) =>
        existingCopy(
          id,
          'unused',
          age,
          {},
          {
            tags: ourTags('i-web', daysAgo(age), {
              [keys.sourceSnapshotId]: `snap-src-of-${id}`,
              [keys.sourceRegion]: SOURCE,
              [keys.copyRetain]: '1',
            }),
          },
        );
      const w = world({
        instances: [web()],
        destinations: {
          [DEST]: { copies: [lost('snap-l-3', 3), lost('snap-l-2', 2), lost('snap-l-1', 1)] },
        },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.dest(DEST).deleted).toEqual([]);
      expect(report.destinationRetention.map((d) => [d.resourceId, d.action])).toEqual([
        ['snap-l-3', 'skipped'],
        ['snap-l-2', 'skipped'],
        ['snap-l-1', 'skipped'],
      ]);
      expect(report.destinationRetention[0]?.reason).toContain(keys.sourceVolumeId);
      expect(report.problems).toHaveLength(3);
      expect(report.status).toBe('partial');
    });

    it('keeps a copy whose recorded source volume is vol-ffffffff itself', async () => {
      // Prepare
      const w = world({
        instances: [web()],
        destinations: {
          [DEST]: {
            copies: [
              existingCopy('snap-f-3', 'vol-ffffffff', 3),
              existingCopy('snap-f-2', 'vol-ffffffff', 2),
              existingCopy('snap-f-1', 'vol-ffffffff', 1),
            ],
          },
        },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.dest(DEST).deleted).toEqual([]);
      expect(report.destinationRetention.every((d) => d.action === 'skipped')).toBe(true);
    });

    it("leaves the snapshots behind an AMI copy to that copy's retention", async () => {
      // Prepare: CopyImage tags the snapshots it makes like the image (no source volume).
      const behind = (id: string, age: number) =>
        existingCopy(
          id,
          'unused',
          age,
          {},
          {
            tags: ourTags('i-web', daysAgo(age), {
              [keys.sourceImageId]: `ami-src-${id}`,
              [keys.sourceRegion]: SOURCE,
              [keys.copyRetain]: '1',
            }),
          },
        );
      const w = world({
        instances: [web()],
        destinations: { [DEST]: { copies: [behind('snap-ami-2', 2), behind('snap-ami-1', 1)] } },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.dest(DEST).deleted).toEqual([]);
      expect(report.destinationRetention).toEqual([]);
    });
  });

  describe('Destination retention deletes only the copies the run history recorded making', () => {
    /** The run history's creation records, as h15c's RunHistoryGateway answers them. */
    const ledger = (
      recorded: Readonly<Record<string, CreationKind>>,
      start = new Date(Date.parse(NOW) - 30 * DAY_MS),
    ): CreationLedger & { asked: string[][] } => {
      const asked: string[][] = [];
      return {
        asked,
        recordedCreations: async (ids) => {
          asked.push([...ids]);
          return new Map(
            ids.flatMap((id) => {
              const kind = recorded[id];
              return kind
                ? [
                    [
                      id,
                      {
                        resourceId: id,
                        kind,
                        runId: 'r-1',
                        job: 'copy',
                        at: NOW,
                      } as CreationRecord,
                    ] as const,
                  ]
                : [];
            }),
          );
        },
        ledgerStart: async () => start,
      };
    };
    const fourCopies = () => [
      existingCopy('snap-c-4', 'vol-data', 4),
      existingCopy('snap-c-3', 'vol-data', 3),
      existingCopy('snap-c-2', 'vol-data', 2),
      existingCopy('snap-c-1', 'vol-data', 1),
    ];

    it('keeps and reports a copy tagged as ours that the history never recorded, without counting it', async () => {
      // Prepare
      const w = world({
        instances: [web()],
        destinations: { [DEST]: { copies: fourCopies() } },
      });
      const deps = {
        ...w.deps,
        ledger: ledger({ 'snap-c-4': 'copy', 'snap-c-2': 'copy', 'snap-c-1': 'copy' }),
      };

      // Act
      const report = await runCopyJob({ trigger: 'schedule', dryRun: false }, deps);

      // Assess: c-3 is not ours to delete; c-4 is beyond the count of 2 among the recorded.
      expect(w.dest(DEST).deleted).toEqual(['snap-c-4']);
      expect(report.destinationRetention).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            resourceId: 'snap-c-3',
            action: 'skipped',
            reason: expect.stringContaining('no record of creating it'),
          }),
        ]),
      );
    });

    it('never deletes a copy the history records as something else (a snapshot set)', async () => {
      // Prepare
      const w = world({ instances: [web()], destinations: { [DEST]: { copies: fourCopies() } } });
      const deps = {
        ...w.deps,
        ledger: ledger({
          'snap-c-4': 'snapshot',
          'snap-c-3': 'copy',
          'snap-c-2': 'copy',
          'snap-c-1': 'copy',
        }),
      };

      // Act
      await runCopyJob({ trigger: 'schedule', dryRun: false }, deps);

      // Assess
      expect(w.dest(DEST).deleted).toEqual(['snap-c-3']);
    });

    it('deletes unrecorded copies made before the history kept creation records (by their tags)', async () => {
      // Prepare: EC2 made them before the ledger started.
      const old = new Date(Date.parse(NOW) - 60 * DAY_MS);
      const w = world({
        instances: [web()],
        destinations: {
          [DEST]: {
            copies: fourCopies().map((c) => ({ ...c, startTime: old })),
          },
        },
      });

      // Act
      await runCopyJob({ trigger: 'schedule', dryRun: false }, { ...w.deps, ledger: ledger({}) });

      // Assess
      expect(w.dest(DEST).deleted.sort()).toEqual(['snap-c-3', 'snap-c-4']);
    });

    it('deletes nothing in a region, and reports partial, when the history cannot be read', async () => {
      // Prepare
      const w = world({ instances: [web()], destinations: { [DEST]: { copies: fourCopies() } } });
      const unreadable: CreationLedger = {
        recordedCreations: async () => {
          throw new AwsCallError(
            'BatchGetItem',
            'ProvisionedThroughputExceededException',
            'slow down',
          );
        },
        ledgerStart: async () => new Date(Date.parse(NOW) - 30 * DAY_MS),
      };

      // Act
      const report = await runCopyJob(
        { trigger: 'schedule', dryRun: false },
        { ...w.deps, ledger: unreadable },
      );

      // Assess
      expect(w.dest(DEST).deleted).toEqual([]);
      expect(report.destinationRetention).toEqual([
        expect.objectContaining({ resourceId: DEST, action: 'skipped' }),
      ]);
      expect(report.problems.join(' ')).toContain('the run history cannot be read');
      expect(report.status).toBe('partial');
    });

    it('records each AMI copy it makes, so that it may later deregister it', async () => {
      // Prepare
      const w = world({ instances: [web({ [keys.ami]: 'daily' })], images: [image('ami-1')] });

      // Act
      await run(w);

      // Assess
      expect(w.journal.records).toEqual([
        expect.objectContaining({
          action: 'copy-image',
          resourceId: 'ami-copy-of-ami-1',
          phase: 'after',
          outcome: 'done',
          details: expect.objectContaining({ imageId: 'ami-1', region: DEST }),
        }),
      ]);
    });
  });

  describe('A rule that cannot be read keeps all copies, never one', () => {
    for (const [label, extra] of [
      ['no copy-retain at all', { [keys.copyRetain]: undefined }],
      ['copy-retain=abc', { [keys.copyRetain]: 'abc' }],
      ['copy-retain=1e3', { [keys.copyRetain]: '1e3' }],
      ['copy-retain=0x2', { [keys.copyRetain]: '0x2' }],
      ['copy-retain=0', { [keys.copyRetain]: '0' }],
    ] as const) {
      it(`keeps every copy of a lineage whose newest copy carries ${label}, and reports it`, async () => {
        // Prepare
        const newest = existingCopy('snap-c-1', 'vol-data', 1);
        const tags: Record<string, string> = { ...newest.tags };
        for (const [key, value] of Object.entries(extra)) {
          if (value === undefined) delete tags[key];
          else tags[key] = value;
        }
        const w = world({
          instances: [web()],
          destinations: {
            [DEST]: {
              copies: [
                existingCopy('snap-c-3', 'vol-data', 3),
                existingCopy('snap-c-2', 'vol-data', 2),
                { ...newest, tags },
              ],
            },
          },
        });

        // Act
        const report = await run(w);

        // Assess
        expect(w.dest(DEST).deleted).toEqual([]);
        expect(report.destinationRetention).toEqual([
          expect.objectContaining({ resourceId: 'snap-c-1', action: 'skipped' }),
        ]);
        expect(report.destinationRetention[0]?.reason).toContain(keys.copyRetain);
        expect(report.status).toBe('partial');
      });
    }

    it("copies with no count, and reports, when the source's retain tag cannot be read", async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.retain]: 'seven' })],
        snapshots: [source('snap-a'), source('snap-b')],
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.dest(DEST).snapshotCopies).toHaveLength(2);
      for (const copy of w.dest(DEST).snapshotCopies)
        expect(tagMap(copy.tags)[keys.copyRetain]).toBeUndefined();
      expect(report.problems).toEqual([
        expect.stringContaining(`i-web: the retention rule cannot be read (${keys.retain}="seven"`),
      ]);
      expect(report.problems[0]).toContain('are all kept');
      expect(report.status).toBe('partial');
    });

    it('copies with no count, never 1, when the source names a schedule that no longer exists', async () => {
      // Prepare
      const gone = source('snap-a', 'i-web', {
        tags: ourTags('i-web', daysAgo(0), { [keys.schedule]: 'hourly-retired' }),
      });
      const w = world({ instances: [web()], snapshots: [gone] });

      // Act
      const report = await run(w);

      // Assess
      expect(tagMap(w.dest(DEST).snapshotCopies[0]?.tags ?? [])[keys.copyRetain]).toBeUndefined();
      expect(report.problems).toEqual([expect.stringContaining('hourly-retired')]);
    });
  });

  describe('Each source is copied once', () => {
    it('never copies again a source whose copy retention removed', async () => {
      // Prepare: copy-retain=2 keeps the copies of day 1 and 2; the day-3 copy was retired.
      const w = world({
        instances: [web({ [keys.copyRetain]: '2' })],
        snapshots: [0, 1, 2, 3].map((age) =>
          source(`snap-day-${age}`, 'i-web', {
            volumeId: 'vol-data',
            tags: ourTags('i-web', daysAgo(age)),
          }),
        ),
        destinations: {
          [DEST]: {
            copies: [
              existingCopy('snap-c-2', 'vol-data', 2, { [keys.sourceSnapshotId]: 'snap-day-2' }),
              existingCopy('snap-c-1', 'vol-data', 1, { [keys.sourceSnapshotId]: 'snap-day-1' }),
            ],
          },
        },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.dest(DEST).snapshotCopies.map((c) => c.sourceSnapshotId)).toEqual(['snap-day-0']);
      expect(outcomes(report)).toEqual({
        [`${DEST} snap-day-0`]: 'copied',
        [`${DEST} snap-day-1`]: 'exists',
        [`${DEST} snap-day-2`]: 'exists',
        [`${DEST} snap-day-3`]: 'retired',
      });
      const retired = report.copies.find((c) => c.outcome === 'retired');
      expect(retired?.reason).toContain('not copied again');
    });

    it('never copies again an AMI whose copy retention deregistered', async () => {
      // Prepare
      const copyOf = (imageId: string, ageDays: number) =>
        image(`ami-c-${imageId}`, 'i-web', {
          tags: ourTags('i-web', daysAgo(ageDays), {
            [keys.sourceImageId]: imageId,
            [keys.sourceRegion]: SOURCE,
            [keys.copyRetain]: '1',
          }),
        });
      const w = world({
        instances: [web({ [keys.ami]: 'daily', [keys.copyRetain]: '1' })],
        images: [
          image('ami-old', 'i-web', { tags: ourTags('i-web', daysAgo(2)) }),
          image('ami-new', 'i-web', { tags: ourTags('i-web', daysAgo(1)) }),
        ],
        destinations: { [DEST]: { imageCopies: [copyOf('ami-new', 1)] } },
      });

      // Act
      const report = await run(w);

      // Assess
      expect(w.dest(DEST).imageCopies).toEqual([]);
      expect(outcomes(report)).toEqual({
        [`${DEST} ami-old`]: 'retired',
        [`${DEST} ami-new`]: 'exists',
      });
    });

    it('copies the snapshots behind an AMI only with their AMI, not a second time on their own', async () => {
      // Prepare: on AWS the AMI's snapshots carry the AMI's tags, so they list as sources.
      const w = world({
        instances: [web({ [keys.ami]: 'daily' })],
        snapshots: [
          source('snap-set'),
          source('snap-behind-ami-1'),
          source('snap-by-createimage', 'i-web', {
            description: 'Created by CreateImage(i-web) for ami-gone',
          }),
        ],
        images: [image('ami-1')],
      });

      // Act
      await run(w);

      // Assess
      expect(w.dest(DEST).snapshotCopies.map((c) => c.sourceSnapshotId)).toEqual(['snap-set']);
      expect(w.dest(DEST).imageCopies.map((c) => c.request.sourceImageId)).toEqual(['ami-1']);
    });

    it('still copies what an EBS event names when the AMIs cannot be listed, and says so', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.ami]: 'daily' })],
        snapshots: [
          source('snap-set'),
          source('snap-by-createimage', 'i-web', {
            description: 'Created by CreateImage(i-web) for ami-1',
          }),
        ],
      });
      w.images.listImagesTagged = async () => {
        throw new AwsCallError('DescribeImages', 'RequestLimitExceeded', 'slow down');
      };

      // Act
      const report = await run(w, { snapshotIds: ['snap-set', 'snap-by-createimage'] });

      // Assess
      expect(w.dest(DEST).snapshotCopies.map((c) => c.sourceSnapshotId)).toEqual(['snap-set']);
      expect(report.problems).toEqual([expect.stringContaining('AMIs could not be listed')]);
      expect(report.status).toBe('partial');
    });

    it('leaves the snapshots behind an AMI to CopyImage on an EBS event too', async () => {
      // Prepare
      const w = world({
        instances: [web({ [keys.ami]: 'daily' })],
        snapshots: [source('snap-behind-ami-1')],
        images: [image('ami-1')],
      });

      // Act
      const report = await run(w, { snapshotIds: ['snap-behind-ami-1'] });

      // Assess
      expect(w.dest(DEST).snapshotCopies).toEqual([]);
      expect(report.copies).toEqual([]);
    });
  });
});

describe('Function: runCopyJob (an "after" record that cannot be written)', () => {
  /** A journal that writes every "before" record and fails every "after" one. */
  const failAfter = (w: World) => {
    const write = w.journal.record.bind(w.journal);
    w.journal.record = async (entry) => {
      if (entry.phase === 'after') throw new Error('ProvisionedThroughputExceededException');
      await write(entry);
    };
  };
  const errorsLogged = (w: World) =>
    (w.deps.logger.error as Mock<LogFunction>).mock.calls.map(([message, extra]) => ({
      message,
      resourceId: (extra as { resourceId?: string }).resourceId,
    }));

  it('still reports each copy made, and logs the record it could not write, naming the copy', async () => {
    // Prepare
    const w = world({
      instances: [web({ [keys.ami]: 'daily' })],
      snapshots: [source('snap-a')],
      images: [image('ami-1')],
    });
    failAfter(w);

    // Act
    const report = await run(w);

    // Assess
    expect(outcomes(report)).toEqual({
      [`${DEST} snap-a`]: 'copied',
      [`${DEST} ami-1`]: 'copied',
    });
    expect(errorsLogged(w)).toEqual([
      {
        message: 'action done but its "after" record could not be written',
        resourceId: 'snap-copy-of-snap-a',
      },
      {
        message: 'action done but its "after" record could not be written',
        resourceId: 'ami-copy-of-ami-1',
      },
    ]);
  });

  it('still reports a deregistered AMI copy, and deletes the snapshots behind it, each recorded before', async () => {
    // Prepare
    const copyOf = (imageId: string, ageDays: number) =>
      image(imageId, 'i-web', {
        tags: ourTags('i-web', daysAgo(ageDays), {
          [keys.sourceImageId]: `src-${imageId}`,
          [keys.sourceRegion]: SOURCE,
          [keys.copyRetain]: '1',
        }),
      });
    const w = world({
      instances: [web()],
      destinations: { [DEST]: { imageCopies: [copyOf('ami-c-2', 2), copyOf('ami-c-1', 1)] } },
    });
    failAfter(w);

    // Act
    const report = await run(w);

    // Assess
    expect(report.destinationRetention).toEqual([
      { region: DEST, resourceId: 'ami-c-2', action: 'deregistered', reason: 'beyond count 1' },
      {
        region: DEST,
        resourceId: 'snap-behind-ami-c-2',
        action: 'deleted',
        reason: 'behind deregistered copy ami-c-2',
      },
    ]);
    expect(w.journal.records.map((r) => `${r.phase} ${r.resourceId}`)).toEqual([
      'before ami-c-2',
      'before snap-behind-ami-c-2',
    ]);
    expect(errorsLogged(w).map((e) => e.resourceId)).toEqual(['ami-c-2', 'snap-behind-ami-c-2']);
  });
});

describe('Function: parseCopyEvent', () => {
  /** An `EBS Snapshot Notification` as EventBridge delivers it. */
  const notification = (
    detail: Record<string, unknown>,
    overrides: Record<string, unknown> = {},
  ) => ({
    version: '0',
    id: '01234567-0123-0123-0123-012345678901',
    'detail-type': 'EBS Snapshot Notification',
    source: 'aws.ec2',
    account: '012345678901',
    time: '2026-11-23T03:04:05Z',
    region: SOURCE,
    resources: ['arn:aws:ec2::us-east-1:snapshot/snap-01234567890abcdef'],
    detail,
    ...overrides,
  });

  it('reads the snapshot id of a succeeded createSnapshot event from its ARN', () => {
    // Act
    const invocation = parseCopyEvent(
      notification({
        event: 'createSnapshot',
        result: 'succeeded',
        cause: '',
        snapshot_id: 'arn:aws:ec2::us-east-1:snapshot/snap-01234567890abcdef',
        source: 'arn:aws:ec2::us-east-1:volume/vol-01234567',
      }),
    );

    // Assess
    expect(invocation).toEqual({ dryRun: false, snapshotIds: ['snap-01234567890abcdef'] });
  });

  it('reads every snapshot id of a succeeded createSnapshots event', () => {
    // Act
    const invocation = parseCopyEvent(
      notification({
        event: 'createSnapshots',
        result: 'succeeded',
        cause: '',
        snapshots: [
          {
            snapshot_id: 'arn:aws:ec2::us-east-1:snapshot/snap-0aaaaaaaaaaaaaaaa',
            source: 'arn:aws:ec2::us-east-1:volume/vol-0aaaaaaaaaaaaaaaa',
            status: 'completed',
          },
          {
            snapshot_id: 'arn:aws:ec2::us-east-1:snapshot/snap-0bbbbbbbbbbbbbbbb',
            source: 'arn:aws:ec2::us-east-1:volume/vol-0bbbbbbbbbbbbbbbb',
            status: 'completed',
          },
        ],
      }),
    );

    // Assess
    expect(invocation).toEqual({
      dryRun: false,
      snapshotIds: ['snap-0aaaaaaaaaaaaaaaa', 'snap-0bbbbbbbbbbbbbbbb'],
    });
  });

  it('ignores a failed snapshot, saying why', () => {
    // Act
    const invocation = parseCopyEvent(
      notification({
        event: 'createSnapshot',
        result: 'failed',
        cause: 'Source volume not found',
        snapshot_id: 'arn:aws:ec2::us-east-1:snapshot/snap-01234567890abcdef',
      }),
    );

    // Assess
    expect(invocation.snapshotIds).toBeUndefined();
    expect(invocation.ignore).toContain('failed');
  });

  it('rejects a succeeded event that names no snapshot, naming the field', () => {
    // Act
    const act = () =>
      parseCopyEvent(
        notification({ event: 'createSnapshot', result: 'succeeded', snapshot_id: 42 }),
      );

    // Assess
    expect(act).toThrow(InvalidEventError);
    expect(act).toThrow('detail.snapshot_id');
  });

  it('rejects a snapshots list that is not a list, naming the field', () => {
    // Act
    const act = () =>
      parseCopyEvent(
        notification({ event: 'createSnapshots', result: 'succeeded', snapshots: 'snap-0abc' }),
      );

    // Assess
    expect(act).toThrow(InvalidEventError);
    expect(act).toThrow('detail.snapshots');
  });

  it('rejects a snapshots list with an entry that is not an object, naming the field', () => {
    // Act
    const act = () =>
      parseCopyEvent(
        notification({ event: 'createSnapshots', result: 'succeeded', snapshots: [null] }),
      );

    // Assess
    expect(act).toThrow(InvalidEventError);
    expect(act).toThrow('detail.snapshots');
  });

  it.each([
    ['EBS Volume Notification', 'aws.ec2'],
    ['EBS Multi-Volume Snapshots Completion Status', 'aws.ec2'],
    ['Scheduled Event', 'aws.events'],
    ['EBS Snapshot Notification', 'custom.source'],
  ])('rejects a %s event from %s, naming what it takes', (detailType, eventSource) => {
    // Act
    const act = () =>
      parseCopyEvent(
        notification({ result: 'succeeded' }, { 'detail-type': detailType, source: eventSource }),
      );

    // Assess
    expect(act).toThrow(InvalidEventError);
    expect(act).toThrow('EBS Snapshot Notification');
  });

  it('takes {"copy": true} from the catch-up schedule', () => {
    // Act
    const invocation = parseCopyEvent({ copy: true });

    // Assess
    expect(invocation).toEqual({ dryRun: false });
  });

  it('takes {"copy": true, "dryRun": true} as a dry run', () => {
    // Act
    const invocation = parseCopyEvent({ copy: true, dryRun: true });

    // Assess
    expect(invocation).toEqual({ dryRun: true });
  });

  it('rejects an extra field, naming it', () => {
    // Act
    const act = () => parseCopyEvent({ copy: true, schedule: 'daily' });

    // Assess
    expect(act).toThrow(InvalidEventError);
    expect(act).toThrow('unexpected field(s) "schedule"');
  });

  it.each([
    [{ copy: 'true' }, 'copy'],
    [{ copy: false }, 'copy'],
    [{ copy: true, dryRun: 'yes' }, 'dryRun'],
    [{ dryRun: true }, 'copy'],
  ])('rejects %j, naming the field %s', (event, field) => {
    // Act
    const act = () => parseCopyEvent(event);

    // Assess
    expect(act).toThrow(InvalidEventError);
    expect(act).toThrow(`field "${field}"`);
  });

  it.each([[null], ['copy'], [[{ copy: true }]], [42]])(
    'rejects %j, which is no object',
    (event) => {
      // Act
      const act = () => parseCopyEvent(event);

      // Assess
      expect(act).toThrow(InvalidEventError);
    },
  );
});
