import { describe, expect, it } from 'vitest';
import type { PinnedTemplateVersion } from '../../../lib/aws/AutoScalingGateway.ts';
import {
  AwsCallError,
  ImageGoneError,
  ImageNameTakenError,
  SnapshotInUseError,
  SnapshotNotFoundError,
} from '../../../lib/aws/errors.ts';
import type { InstanceFacts } from '../../../lib/domain/backupPlan.ts';
import type { ImageFacts, ImageRequest } from '../../../lib/domain/imagePlan.ts';
import type { RecycleBinRule } from '../../../lib/domain/recycleBin.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { TagMap } from '../../../lib/domain/tagPolicy.ts';
import {
  type AmiJobDependencies,
  type AmiJobInput,
  type AmiReport,
  type ImageRetireResult,
  runAmiJob,
} from '../../../lib/jobs/amiJob.ts';
import type { CreationLedger } from '../../../lib/jobs/ownership.ts';
import type { ActionJournal } from '../../../lib/jobs/ports.ts';
import { silentLogger } from '../../../lib/jobs/runReport.ts';
import { RecordingJournal } from '../../support/recordingJournal.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const keys = tagKeys();
const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const DEPLOYMENT = 'prod';
const RUN_ID = '20261123T030030Z-4m1j0b00';
/** Thirty seconds after the daily schedule fired. */
const NOW = '2026-11-23T03:00:30.000Z';
const SLOT_TIME = new Date('2026-11-23T03:00:00.000Z');
const DAY_MS = 86_400_000;

/** The daily slot `daysAgo` days before today's, as the slot tag holds it. */
const slotAt = (daysAgo: number): string =>
  new Date(SLOT_TIME.getTime() - daysAgo * DAY_MS).toISOString().replace('.000Z', 'Z');
/** When the daily AMI of that slot was created: five seconds after it fired. */
const createdAt = (daysAgo: number): string =>
  new Date(SLOT_TIME.getTime() + 5_000 - daysAgo * DAY_MS).toISOString().replace('.000Z', 'Z');
const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

/** The tags snapkeeper writes on a daily AMI of this deployment (and on its snapshots). */
function ourTags(instanceId: string, daysAgo: number, extra: TagMap = {}): TagMap {
  return {
    [keys.managed]: 'true',
    [keys.deployment]: DEPLOYMENT,
    [keys.schedule]: 'daily',
    [keys.slot]: slotAt(daysAgo),
    [keys.instanceId]: instanceId,
    [keys.runId]: `run-d${daysAgo}`,
    [keys.createdAt]: createdAt(daysAgo),
    Name: 'web-1',
    ...extra,
  };
}

/**
 * The daily AMI of `instanceId` taken `daysAgo` days ago: `ami-web-d3` for i-web three
 * days ago, backed by two 8 GiB snapshots `snap-web-d3-root` and `snap-web-d3-data`.
 */
function ami(instanceId: string, daysAgo: number, overrides: Partial<ImageFacts> = {}): ImageFacts {
  const short = instanceId.replace(/^i-/, '');
  return {
    imageId: `ami-${short}-d${daysAgo}`,
    name: `${short}-daily-d${daysAgo}`,
    state: 'available',
    creationDate: new Date(createdAt(daysAgo)),
    tags: ourTags(instanceId, daysAgo),
    snapshotIds: [`snap-${short}-d${daysAgo}-root`, `snap-${short}-d${daysAgo}-data`],
    sizeGiB: 16,
    deregistrationProtected: false,
    isPublic: false,
    ...overrides,
  };
}

function amis(instanceId: string, daysAgo: readonly number[]): ImageFacts[] {
  return daysAgo.map((d) => ami(instanceId, d));
}

/** The snapshots behind images, tagged like their image (as CreateImage tags them). */
function snapshotsOf(images: readonly ImageFacts[]): SnapshotFacts[] {
  return images.flatMap((image) =>
    image.snapshotIds.map((snapshotId) => ({
      snapshotId,
      volumeId: snapshotId.replace(/^snap-/, 'vol-'),
      state: 'completed',
      startTime: image.creationDate ?? new Date(0),
      tags: image.tags,
      sizeGiB: 8,
      description: `Created by CreateImage(${image.tags[keys.instanceId]}) for ${image.imageId}`,
    })),
  );
}

/** i-web, opted into daily AMIs. */
function webInstance(tags: TagMap = {}, instanceId = 'i-web'): InstanceFacts {
  return {
    instanceId,
    state: 'running',
    rootDeviceName: '/dev/xvda',
    tags: { [keys.ami]: 'daily', Name: 'web-1', ...tags },
    volumes: [{ volumeId: `vol-${instanceId}`, deviceName: '/dev/xvda' }],
  };
}

type Ec2Port = AmiJobDependencies['ec2'];
type ImagesPort = AmiJobDependencies['images'];

interface FakeEc2Options {
  readonly instances?: readonly InstanceFacts[];
  readonly snapshots?: readonly SnapshotFacts[];
  /** Per snapshot id: what DeleteSnapshot throws. */
  readonly deleteErrors?: ReadonlyMap<string, Error>;
  readonly instancesError?: unknown;
  readonly describeSnapshotsError?: unknown;
  /** Shared with the other fakes and the journal, to check the order of calls. */
  readonly events?: string[];
}

/** A hand-rolled EC2 gateway: instances streamed as given, snapshots answered by id. */
class FakeEc2 implements Ec2Port {
  public readonly instanceTagKeys: string[] = [];
  public readonly describedSnapshotIds: string[][] = [];
  public readonly deleted: string[] = [];

  readonly #options: FakeEc2Options;

  public constructor(options: FakeEc2Options = {}) {
    this.#options = options;
  }

  public async *listInstancesWithTagKey(tagKey: string): AsyncGenerator<InstanceFacts> {
    this.instanceTagKeys.push(tagKey);
    for (const instance of this.#options.instances ?? []) yield instance;
    if (this.#options.instancesError !== undefined) throw this.#options.instancesError;
  }

  public async describeSnapshotsByIds(snapshotIds: readonly string[]): Promise<SnapshotFacts[]> {
    this.describedSnapshotIds.push([...snapshotIds]);
    if (this.#options.describeSnapshotsError !== undefined) {
      throw this.#options.describeSnapshotsError;
    }
    return (this.#options.snapshots ?? []).filter(
      (s) => snapshotIds.includes(s.snapshotId) && !this.deleted.includes(s.snapshotId),
    );
  }

  public async deleteSnapshot(snapshotId: string): Promise<void> {
    this.#options.events?.push(`delete ${snapshotId}`);
    const error = this.#options.deleteErrors?.get(snapshotId);
    if (error) throw error;
    this.deleted.push(snapshotId);
  }
}

interface FakeImagesOptions {
  /** Every image the account owns; tag queries are answered by matching every tag. */
  readonly images?: readonly ImageFacts[];
  /** Images that slip through the retire query's tag filters (as a lax filter would let them). */
  readonly strays?: readonly ImageFacts[];
  /** Image → the running or stopped instances launched from it. */
  readonly instanceUsage?: ReadonlyMap<string, readonly string[]>;
  /** Image → the default or latest launch template versions naming it. */
  readonly templateUsage?: ReadonlyMap<string, readonly string[]>;
  /** `<launch template id>:<version>` → the image that pinned version names. */
  readonly pinnedVersions?: ReadonlyMap<string, string>;
  /** Per instance id: what CreateImage throws. */
  readonly createErrors?: ReadonlyMap<string, Error>;
  /** Per image id: what DeregisterImage throws. */
  readonly deregisterErrors?: ReadonlyMap<string, Error>;
  readonly listError?: unknown;
  /** Images that tag filters do not find yet (EC2's tags are eventually consistent). */
  readonly notYetInTagFilters?: readonly string[];
  readonly usageError?: unknown;
  readonly ownImagesError?: unknown;
  /** DescribeImages still lists a deregistered image for a while (eventual consistency). */
  readonly staleAfterDeregister?: boolean;
  readonly events?: string[];
}

/**
 * A hand-rolled image gateway over an in-memory account: CreateImage adds a pending image
 * tagged as requested, DeregisterImage removes one, and every call is recorded.
 */
class FakeImages implements ImagesPort {
  public readonly tagQueries: Record<string, string>[] = [];
  public readonly createRequests: ImageRequest[] = [];
  public readonly deregisterCalls: string[] = [];
  public readonly nameQueries: string[] = [];
  public readonly deregistered: string[] = [];
  public readonly usageQueries: string[][] = [];
  public readonly pinnedQueries: PinnedTemplateVersion[][] = [];
  public ownImagesCalls = 0;

  readonly #options: FakeImagesOptions;
  readonly #account: ImageFacts[];

  public constructor(options: FakeImagesOptions = {}) {
    this.#options = options;
    this.#account = [...(options.images ?? [])];
  }

  public async listImagesTagged(tags: Readonly<Record<string, string>>): Promise<ImageFacts[]> {
    this.tagQueries.push({ ...tags });
    if (this.#options.listError !== undefined) throw this.#options.listError;
    const matching = this.#live().filter(
      (image) =>
        !this.#options.notYetInTagFilters?.includes(image.imageId) &&
        Object.entries(tags).every(([key, value]) => image.tags[key] === value),
    );
    return keys.slot in tags ? matching : [...matching, ...(this.#options.strays ?? [])];
  }

  public async listOwnImages(): Promise<ImageFacts[]> {
    this.ownImagesCalls += 1;
    if (this.#options.ownImagesError !== undefined) throw this.#options.ownImagesError;
    const listed = this.#options.staleAfterDeregister ? this.#account : this.#live();
    return [...listed, ...(this.#options.strays ?? [])];
  }

  public async createImage(request: ImageRequest): Promise<{ imageId: string }> {
    this.createRequests.push(request);
    this.#options.events?.push(`create ${request.instanceId}`);
    const error = this.#options.createErrors?.get(request.instanceId);
    if (error) throw error;
    const imageId = `ami-new-${request.instanceId.replace(/^i-/, '')}`;
    this.#account.push({
      imageId,
      name: request.name,
      state: 'pending',
      creationDate: new Date(NOW),
      tags: Object.fromEntries(request.tags.map((t) => [t.Key, t.Value])),
      snapshotIds: [],
      sizeGiB: 8,
      deregistrationProtected: false,
      isPublic: false,
    });
    return { imageId };
  }

  public async findImageByName(name: string): Promise<ImageFacts | undefined> {
    this.nameQueries.push(name);
    return this.#live().find((image) => image.name === name);
  }

  public async deregisterImage(imageId: string): Promise<void> {
    this.deregisterCalls.push(imageId);
    this.#options.events?.push(`deregister ${imageId}`);
    const error = this.#options.deregisterErrors?.get(imageId);
    if (error instanceof ImageGoneError) this.deregistered.push(imageId);
    if (error) throw error;
    this.deregistered.push(imageId);
  }

  public async instancesUsingImages(imageIds: readonly string[]): Promise<Map<string, string[]>> {
    this.usageQueries.push([...imageIds]);
    if (this.#options.usageError !== undefined) throw this.#options.usageError;
    return new Map(
      [...(this.#options.instanceUsage ?? [])]
        .filter(([imageId]) => imageIds.includes(imageId))
        .map(([imageId, holders]) => [imageId, [...holders]]),
    );
  }

  public async imagesInLaunchTemplates(
    pinned: readonly PinnedTemplateVersion[] = [],
  ): Promise<Map<string, string[]>> {
    this.pinnedQueries.push([...pinned]);
    const usage = new Map(
      [...(this.#options.templateUsage ?? [])].map(([imageId, holders]) => [imageId, [...holders]]),
    );
    for (const pin of pinned) {
      const imageId = this.#options.pinnedVersions?.get(`${pin.launchTemplateId}:${pin.version}`);
      if (!imageId) continue;
      usage.set(imageId, [
        ...(usage.get(imageId) ?? []),
        `launch template ${pin.launchTemplateId} version ${pin.version} (pinned by an Auto Scaling group)`,
      ]);
    }
    return usage;
  }

  #live(): ImageFacts[] {
    return this.#account.filter((image) => !this.deregistered.includes(image.imageId));
  }
}

/** What the Auto Scaling groups of the account hold. */
class FakeAutoScaling implements NonNullable<AmiJobDependencies['autoScaling']> {
  readonly #pinned: readonly PinnedTemplateVersion[];
  readonly #launchConfigurations: ReadonlyMap<string, readonly string[]>;

  public constructor(
    options: {
      pinned?: readonly PinnedTemplateVersion[];
      launchConfigurationImages?: ReadonlyMap<string, readonly string[]>;
    } = {},
  ) {
    this.#pinned = options.pinned ?? [];
    this.#launchConfigurations = options.launchConfigurationImages ?? new Map();
  }

  public async imageHolders(): Promise<{
    pinned: PinnedTemplateVersion[];
    launchConfigurationImages: Map<string, string[]>;
  }> {
    return {
      pinned: [...this.#pinned],
      launchConfigurationImages: new Map(
        [...this.#launchConfigurations].map(([imageId, holders]) => [imageId, [...holders]]),
      ),
    };
  }
}

/** The account's Recycle Bin rules for AMIs, or the error reading them. */
class FakeRecycleBin implements NonNullable<AmiJobDependencies['recycleBin']> {
  public calls = 0;
  readonly #rules: readonly RecycleBinRule[] | Error;

  public constructor(rules: readonly RecycleBinRule[] | Error = []) {
    this.#rules = rules;
  }

  public async imageRules(): Promise<RecycleBinRule[]> {
    this.calls += 1;
    if (this.#rules instanceof Error) throw this.#rules;
    return [...this.#rules];
  }
}

function dailyRun(overrides: Partial<AmiJobInput> = {}): AmiJobInput {
  return {
    schedule: 'daily',
    scheduledTime: SLOT_TIME,
    dryRun: false,
    trigger: 'schedule',
    ...overrides,
  };
}

function dependencies(
  ec2: FakeEc2,
  images: FakeImages,
  overrides: Partial<Omit<AmiJobDependencies, 'config'>> & {
    readonly config?: Partial<AmiJobDependencies['config']>;
  } = {},
): AmiJobDependencies {
  const { config, ...rest } = overrides;
  return {
    ec2,
    images,
    recycleBin: new FakeRecycleBin(),
    autoScaling: new FakeAutoScaling(),
    config: {
      deployment: DEPLOYMENT,
      keys,
      catalog,
      copyTags: [],
      backupConcurrency: 4,
      maxDeletions: { kind: 'count', value: 100 },
      deleteConcurrency: 1,
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

/**
 * A fleet of one instance, i-web, with the daily AMIs of the given days (0: today's,
 * already made for this slot) and their snapshots.
 */
function fleet(
  instanceTags: TagMap,
  history: readonly ImageFacts[],
  options: { images?: FakeImagesOptions; ec2?: Omit<FakeEc2Options, 'instances'> } = {},
): { ec2: FakeEc2; images: FakeImages } {
  const ec2 = new FakeEc2({
    instances: [webInstance(instanceTags)],
    snapshots: snapshotsOf(history),
    ...options.ec2,
  });
  const images = new FakeImages({ images: history, ...options.images });
  return { ec2, images };
}

function retiredImage(report: AmiReport, imageId: string): ImageRetireResult {
  const found = report.retired.find((r) => r.imageId === imageId);
  if (!found) throw new Error(`no retirement of ${imageId} in the report`);
  return found;
}

describe('Function: runAmiJob', () => {
  describe('Create: one AMI per opted-in instance', () => {
    it('creates an AMI only for the instances whose snapkeeper:ami lists the schedule', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        instances: [
          webInstance({ [keys.ami]: 'daily' }, 'i-daily'),
          webInstance({ [keys.ami]: 'true' }, 'i-default'),
          webInstance({ [keys.ami]: 'weekly, Daily' }, 'i-list'),
          webInstance({ [keys.ami]: 'weekly' }, 'i-weekly'),
          webInstance({ [keys.ami]: 'false' }, 'i-off'),
        ],
      });
      const images = new FakeImages();

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(ec2.instanceTagKeys).toEqual(['snapkeeper:ami']);
      expect(images.createRequests.map((r) => r.instanceId).sort()).toEqual([
        'i-daily',
        'i-default',
        'i-list',
      ]);
      expect(report.created.map((c) => [c.instanceId, c.outcome])).toEqual([
        ['i-daily', 'created'],
        ['i-default', 'created'],
        ['i-list', 'created'],
      ]);
      expect(report.counts).toMatchObject({ due: 3, created: 3, failed: 0 });
      expect(report.status).toBe('succeeded');
    });

    it('asks CreateImage for a named, described, no-reboot AMI tagged at creation', async () => {
      // Prepare
      const ec2 = new FakeEc2({ instances: [webInstance()] });
      const images = new FakeImages();

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(images.createRequests).toEqual([
        {
          instanceId: 'i-web',
          name: 'web-1-prod-daily-20261123T0300Z',
          description: 'snapkeeper daily AMI of i-web (web-1) for 2026-11-23T03:00:00Z',
          noReboot: true,
          tags: [
            { Key: 'snapkeeper:managed', Value: 'true' },
            { Key: 'snapkeeper:deployment', Value: 'prod' },
            { Key: 'snapkeeper:schedule', Value: 'daily' },
            { Key: 'snapkeeper:slot', Value: '2026-11-23T03:00:00Z' },
            { Key: 'snapkeeper:instance-id', Value: 'i-web' },
            { Key: 'snapkeeper:run-id', Value: RUN_ID },
            { Key: 'snapkeeper:created-at', Value: NOW },
            { Key: 'Name', Value: 'web-1' },
          ],
        },
      ]);
      expect(report.created).toEqual([
        {
          instanceId: 'i-web',
          name: 'web-1',
          outcome: 'created',
          imageId: 'ami-new-web',
          imageName: 'web-1-prod-daily-20261123T0300Z',
          noReboot: true,
        },
      ]);
    });

    it("takes InvalidAMIName.Duplicate for the slot's own name as that slot's AMI already made (an earlier attempt's answer was lost), not as a failure", async () => {
      // Prepare: the earlier attempt's image, not yet found by the slot's tag filters.
      const made = ami('i-web', 0, {
        imageId: 'ami-earlier',
        name: 'web-1-prod-daily-20261123T0300Z',
        state: 'pending',
        tags: ourTags('i-web', 0, { [keys.runId]: 'run-earlier' }),
      });
      const ec2 = new FakeEc2({ instances: [webInstance()] });
      const images = new FakeImages({
        images: [made],
        notYetInTagFilters: ['ami-earlier'],
        createErrors: new Map([
          [
            'i-web',
            new ImageNameTakenError('web-1-prod-daily-20261123T0300Z', {
              cause: sdkError(
                'InvalidAMIName.Duplicate',
                'AMI name web-1-prod-daily-20261123T0300Z is already in use by AMI ami-earlier',
              ),
            }),
          ],
        ]),
      });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(images.nameQueries).toEqual(['web-1-prod-daily-20261123T0300Z']);
      expect(report.created).toEqual([
        expect.objectContaining({
          instanceId: 'i-web',
          outcome: 'exists',
          imageId: 'ami-earlier',
          imageName: 'web-1-prod-daily-20261123T0300Z',
        }),
      ]);
      expect(report.created[0]?.reason).toContain('InvalidAMIName.Duplicate');
      expect(report.counts).toMatchObject({ due: 1, created: 0, failed: 0 });
      expect(report.status).toBe('succeeded');
    });

    it('records the AMI an earlier attempt made as created, so that its retirement may take it later', async () => {
      // Prepare: the earlier attempt made the image; its answer (and so its record) was lost.
      const made = ami('i-web', 0, {
        imageId: 'ami-earlier',
        name: 'web-1-prod-daily-20261123T0300Z',
        tags: ourTags('i-web', 0, { [keys.runId]: 'run-earlier' }),
      });
      const ec2 = new FakeEc2({ instances: [webInstance()] });
      const images = new FakeImages({
        images: [made],
        notYetInTagFilters: ['ami-earlier'],
        createErrors: new Map([
          ['i-web', new ImageNameTakenError('web-1-prod-daily-20261123T0300Z')],
        ]),
      });
      const journal = new RecordingJournal();

      // Act
      await runAmiJob(dailyRun(), dependencies(ec2, images, { journal }));

      // Assess
      expect(journal.records.filter((r) => r.action === 'create-image')).toEqual([
        expect.objectContaining({ resourceId: 'ami-earlier', phase: 'after', outcome: 'done' }),
      ]);
    });

    it.each([
      ['another stage', { [keys.deployment]: 'staging' }],
      ['another slot', { [keys.slot]: '2026-11-22T03:00:00Z' }],
      ['another instance', { [keys.instanceId]: 'i-other' }],
      ['no snapkeeper tags (a person made it)', { [keys.managed]: 'false' }],
    ])(
      'reports a failure, claiming nothing, when the name is held by an image of %s',
      async (_case, tags) => {
        // Prepare
        const holder = ami('i-web', 0, {
          imageId: 'ami-holder',
          name: 'web-1-prod-daily-20261123T0300Z',
          tags: ourTags('i-web', 0, tags),
        });
        const ec2 = new FakeEc2({ instances: [webInstance()] });
        const images = new FakeImages({
          images: [holder],
          notYetInTagFilters: ['ami-holder'],
          createErrors: new Map([
            ['i-web', new ImageNameTakenError('web-1-prod-daily-20261123T0300Z')],
          ]),
        });

        // Act
        const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

        // Assess
        expect(report.created).toEqual([
          expect.objectContaining({
            instanceId: 'i-web',
            outcome: 'failed',
            error: expect.objectContaining({ code: 'InvalidAMIName.Duplicate' }),
          }),
        ]);
        expect(report.created[0]?.imageId).toBeUndefined();
        expect(report.counts).toMatchObject({ failed: 1 });
        expect(report.status).toBe('failed');
      },
    );

    it('reports a failure when the image holding the name cannot be seen yet', async () => {
      // Prepare
      const ec2 = new FakeEc2({ instances: [webInstance()] });
      const images = new FakeImages({
        createErrors: new Map([
          ['i-web', new ImageNameTakenError('web-1-prod-daily-20261123T0300Z')],
        ]),
      });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(report.created.map((c) => [c.outcome, c.error?.code])).toEqual([
        ['failed', 'InvalidAMIName.Duplicate'],
      ]);
    });

    it('lets CreateImage reboot the instance when snapkeeper:ami-reboot is true', async () => {
      // Prepare
      const ec2 = new FakeEc2({ instances: [webInstance({ [keys.amiReboot]: 'true' })] });
      const images = new FakeImages();

      // Act
      await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(images.createRequests.map((r) => r.noReboot)).toEqual([false]);
    });

    it("reports 'exists' and calls no CreateImage for an instance that already has its AMI for this slot", async () => {
      // Prepare
      const today = ami('i-web', 0);
      const ec2 = new FakeEc2({
        instances: [webInstance(), webInstance({}, 'i-db')],
        snapshots: snapshotsOf([today]),
      });
      const images = new FakeImages({ images: [today] });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(images.tagQueries[0]).toEqual({
        'snapkeeper:managed': 'true',
        'snapkeeper:deployment': 'prod',
        'snapkeeper:schedule': 'daily',
        'snapkeeper:slot': '2026-11-23T03:00:00Z',
      });
      expect(images.createRequests.map((r) => r.instanceId)).toEqual(['i-db']);
      expect(report.created).toContainEqual({
        instanceId: 'i-web',
        name: 'web-1',
        outcome: 'exists',
        imageId: 'ami-web-d0',
        imageName: 'web-daily-d0',
        reason: 'already has ami-web-d0 for this slot',
      });
      expect(report.counts).toMatchObject({ due: 2, created: 1 });
      expect(report.status).toBe('succeeded');
    });

    it('keeps creating for the other instances when CreateImage fails for one; the run is partial', async () => {
      // Prepare
      const ec2 = new FakeEc2({ instances: [webInstance(), webInstance({}, 'i-db')] });
      const images = new FakeImages({
        createErrors: new Map([
          ['i-web', sdkError('ResourceLimitExceeded', 'You have reached your AMI quota')],
        ]),
      });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(images.createRequests.map((r) => r.instanceId).sort()).toEqual(['i-db', 'i-web']);
      expect(report.created).toContainEqual(
        expect.objectContaining({
          instanceId: 'i-web',
          outcome: 'failed',
          error: {
            code: 'ResourceLimitExceeded',
            message: 'CreateImage failed: ResourceLimitExceeded: You have reached your AMI quota',
          },
        }),
      );
      expect(report.created).toContainEqual(
        expect.objectContaining({ instanceId: 'i-db', outcome: 'created' }),
      );
      expect(report.counts).toMatchObject({ due: 2, created: 1, failed: 1 });
      expect(report.status).toBe('partial');
    });

    it('fails the run when CreateImage fails for every due instance', async () => {
      // Prepare
      const quota = sdkError('ResourceLimitExceeded', 'You have reached your AMI quota');
      const ec2 = new FakeEc2({ instances: [webInstance(), webInstance({}, 'i-db')] });
      const images = new FakeImages({
        createErrors: new Map([
          ['i-web', quota],
          ['i-db', quota],
        ]),
      });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(report.counts).toMatchObject({ due: 2, created: 0, failed: 2 });
      expect(report.status).toBe('failed');
    });
  });

  describe('Describe failures', () => {
    it.each([
      [
        'the opted-in instances cannot be listed',
        { ec2: { instancesError: sdkError('RequestLimitExceeded', 'Request limit exceeded.') } },
      ],
      [
        'the images cannot be listed',
        { images: { listError: sdkError('RequestLimitExceeded', 'Request limit exceeded.') } },
      ],
      [
        'the instances using the images cannot be read',
        { images: { usageError: sdkError('RequestLimitExceeded', 'Request limit exceeded.') } },
      ],
    ])('fails the run, with the AWS code, and changes nothing when %s', async (_, failure) => {
      // Prepare: today's AMI exists (nothing to create); four older ones are beyond the count.
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(5)), failure);
      const journal = new RecordingJournal();

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images, { journal }));

      // Assess
      expect(report.status).toBe('failed');
      expect(report.error?.code).toBe('RequestLimitExceeded');
      expect(images.createRequests).toEqual([]);
      expect(images.deregisterCalls).toEqual([]);
      expect(ec2.deleted).toEqual([]);
      expect(journal.records).toEqual([]);
    });

    it('reports the AMIs already created when the images cannot be listed afterwards (partial)', async () => {
      // Prepare
      const images = new FakeImages({ usageError: sdkError('RequestLimitExceeded', 'Slow down') });
      const ec2 = new FakeEc2({ instances: [webInstance()] });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(report.created).toEqual([expect.objectContaining({ outcome: 'created' })]);
      expect(report.status).toBe('partial');
      expect(report.error?.code).toBe('RequestLimitExceeded');
    });
  });

  describe('Retire: how many AMIs to keep', () => {
    it("keeps the newest N AMIs, N from the instance's snapkeeper:ami-retain number", async () => {
      // Prepare
      const { ec2, images } = fleet({ [keys.amiRetain]: '2' }, amis('i-web', range(5)));

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(images.deregistered).toEqual(['ami-web-d2', 'ami-web-d3', 'ami-web-d4']);
      expect(report.kept).toEqual([
        { imageId: 'ami-web-d0', instanceId: 'i-web', reason: 'kept: newest 1 of 2' },
        { imageId: 'ami-web-d1', instanceId: 'i-web', reason: 'kept: newest 2 of 2' },
      ]);
      expect(report.retired.map((r) => [r.imageId, r.reason, r.outcome])).toEqual([
        ['ami-web-d2', 'beyond count 2', 'deregistered'],
        ['ami-web-d3', 'beyond count 2', 'deregistered'],
        ['ami-web-d4', 'beyond count 2', 'deregistered'],
      ]);
      expect(ec2.deleted.sort()).toEqual(
        ['d2', 'd3', 'd4'].flatMap((d) => [`snap-web-${d}-data`, `snap-web-${d}-root`]),
      );
      expect(report.counts).toMatchObject({
        imagesInScope: 5,
        plannedDeregistrations: 3,
        deregistered: 3,
        snapshotsDeleted: 6,
        blocked: 0,
      });
      expect(report.status).toBe('succeeded');
    });

    it('takes the count for this schedule from the per-schedule form of snapkeeper:ami-retain', async () => {
      // Prepare
      const { ec2, images } = fleet(
        { [keys.amiRetain]: 'weekly=5,daily=2' },
        amis('i-web', range(4)),
      );

      // Act
      await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(images.deregistered).toEqual(['ami-web-d2', 'ami-web-d3']);
    });

    it("falls back to the schedule's amiRetain when the instance sets none", async () => {
      // Prepare
      const withAmiRetain = parseScheduleCatalog(
        DEFAULT_SCHEDULES.map((s) => (s.name === 'daily' ? { ...s, amiRetain: 3 } : s)),
        'daily',
      );
      const { ec2, images } = fleet({}, amis('i-web', range(5)));

      // Act
      await runAmiJob(
        dailyRun(),
        dependencies(ec2, images, { config: { catalog: withAmiRetain } }),
      );

      // Assess
      expect(images.deregistered).toEqual(['ami-web-d3', 'ami-web-d4']);
    });

    it("falls back to the schedule's retain (daily: 7), never to the snapshots' snapkeeper:retain", async () => {
      // Prepare
      const { ec2, images } = fleet({ [keys.retain]: '1' }, amis('i-web', range(9)));

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(images.deregistered).toEqual(['ami-web-d7', 'ami-web-d8']);
      expect(report.kept).toHaveLength(7);
    });

    it('deregisters nothing of an instance whose snapkeeper:ami-retain is malformed, and warns', async () => {
      // Prepare
      const { ec2, images } = fleet({ [keys.amiRetain]: 'seven' }, amis('i-web', range(9)));

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(images.deregisterCalls).toEqual([]);
      expect(ec2.deleted).toEqual([]);
      expect(report.retired).toEqual([]);
      expect(report.kept).toHaveLength(9);
      expect(report.warnings).toHaveLength(1);
      expect(report.warnings[0]).toMatch(
        /^i-web: AMI retention tags cannot be read \(.*snapkeeper:ami-retain.*\); nothing deregistered$/,
      );
      expect(report.status).toBe('partial');
    });
  });

  describe('Safety: never deregister an AMI in use', () => {
    const heldCases: {
      what: string;
      holder: string;
      image?: Partial<ImageFacts>;
      images?: Omit<FakeImagesOptions, 'images'>;
      autoScaling?: FakeAutoScaling;
    }[] = [
      {
        what: 'a running or stopped instance launched from it',
        holder: 'instance i-0app',
        images: { instanceUsage: new Map([['ami-web-d3', ['instance i-0app']]]) },
      },
      {
        what: "a launch template's default version",
        holder: 'launch template lt-0a (web) version 4 (default)',
        images: {
          templateUsage: new Map([
            ['ami-web-d3', ['launch template lt-0a (web) version 4 (default)']],
          ]),
        },
      },
      {
        what: "a launch template's latest version",
        holder: 'launch template lt-0a (web) version 5',
        images: {
          templateUsage: new Map([['ami-web-d3', ['launch template lt-0a (web) version 5']]]),
        },
      },
      {
        what: 'a launch template version an Auto Scaling group pins',
        holder: 'launch template lt-0a version 3 (pinned by an Auto Scaling group)',
        images: { pinnedVersions: new Map([['lt-0a:3', 'ami-web-d3']]) },
        autoScaling: new FakeAutoScaling({
          pinned: [{ launchTemplateId: 'lt-0a', version: '3', group: 'web-asg' }],
        }),
      },
      {
        what: "an Auto Scaling group's launch configuration",
        holder: 'launch configuration lc-web (group web-asg)',
        autoScaling: new FakeAutoScaling({
          launchConfigurationImages: new Map([
            ['ami-web-d3', ['launch configuration lc-web (group web-asg)']],
          ]),
        }),
      },
      {
        what: 'deregistration protection',
        holder: 'deregistration protection',
        image: { deregistrationProtected: true },
      },
      { what: 'being disabled', holder: 'disabled image', image: { state: 'disabled' } },
    ];

    it.each(heldCases)(
      'skips an AMI held by $what and reports it blocked, with what holds it and its size',
      async ({ holder, image, images: imageOptions, autoScaling }) => {
        // Prepare: keep 2 of 4; ami-web-d2 goes, ami-web-d3 would go but is held.
        const history = [ami('i-web', 0), ami('i-web', 1), ami('i-web', 2), ami('i-web', 3, image)];
        const { ec2, images } = fleet({ [keys.amiRetain]: '2' }, history, {
          ...(imageOptions ? { images: imageOptions } : {}),
        });

        // Act
        const report = await runAmiJob(
          dailyRun(),
          dependencies(ec2, images, autoScaling ? { autoScaling } : {}),
        );

        // Assess
        expect(images.deregisterCalls).toEqual(['ami-web-d2']);
        expect(ec2.deleted.sort()).toEqual(['snap-web-d2-data', 'snap-web-d2-root']);
        expect(report.blocked).toEqual([
          {
            imageId: 'ami-web-d3',
            instanceId: 'i-web',
            reason: `beyond count 2, but held by ${holder}`,
            heldBy: [holder],
            sizeGiB: 16,
          },
        ]);
        expect(report.counts).toMatchObject({ blocked: 1, blockedGiB: 16, deregistered: 1 });
      },
    );

    it('asks which images instances use for every image in scope, and passes the pinned versions on', async () => {
      // Prepare
      const pinned = [{ launchTemplateId: 'lt-0a', version: '3', group: 'web-asg' }];
      const { ec2, images } = fleet({}, amis('i-web', range(2)));

      // Act
      await runAmiJob(
        dailyRun(),
        dependencies(ec2, images, { autoScaling: new FakeAutoScaling({ pinned }) }),
      );

      // Assess
      expect(images.usageQueries).toEqual([['ami-web-d0', 'ami-web-d1']]);
      expect(images.pinnedQueries).toEqual([pinned]);
    });
  });

  describe('Safety: never delete a snapshot another AMI still uses', () => {
    it('keeps a snapshot that another AMI of the account uses after the deregistration', async () => {
      // Prepare: a golden image made by hand shares the root snapshot of ami-web-d3.
      const history = amis('i-web', range(4));
      const golden: ImageFacts = {
        ...ami('i-web', 9),
        imageId: 'ami-golden',
        tags: { Name: 'golden' },
        snapshotIds: ['snap-web-d3-root'],
      };
      const { ec2, images } = fleet({ [keys.amiRetain]: '3' }, history, {
        images: { images: [...history, golden] },
      });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(images.deregistered).toEqual(['ami-web-d3']);
      expect(ec2.deleted).toEqual(['snap-web-d3-data']);
      expect(retiredImage(report, 'ami-web-d3').snapshots).toEqual([
        {
          snapshotId: 'snap-web-d3-root',
          outcome: 'kept',
          reason: 'still used by ami-golden',
          sizeGiB: 8,
        },
        {
          snapshotId: 'snap-web-d3-data',
          outcome: 'deleted',
          reason: 'behind deregistered ami-web-d3',
          sizeGiB: 8,
        },
      ]);
      expect(report.counts).toMatchObject({ snapshotsDeleted: 1, snapshotsKept: 1 });
    });

    it('keeps a snapshot shared with an AMI whose deregistration failed in the same run', async () => {
      // Prepare: ami-web-d2 and ami-web-d3 share snap-shared; only d2 can be deregistered.
      const history = [
        ami('i-web', 0),
        ami('i-web', 1),
        ami('i-web', 2, { snapshotIds: ['snap-shared', 'snap-web-d2-data'] }),
        ami('i-web', 3, { snapshotIds: ['snap-shared', 'snap-web-d3-data'] }),
      ];
      const { ec2, images } = fleet({ [keys.amiRetain]: '2' }, history, {
        images: {
          deregisterErrors: new Map([
            ['ami-web-d3', sdkError('UnauthorizedOperation', 'not allowed')],
          ]),
        },
      });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(images.deregistered).toEqual(['ami-web-d2']);
      expect(ec2.deleted).toEqual(['snap-web-d2-data']);
      expect(retiredImage(report, 'ami-web-d2').snapshots[0]).toEqual({
        snapshotId: 'snap-shared',
        outcome: 'kept',
        reason: 'still used by ami-web-d3',
        sizeGiB: 8,
      });
    });

    it('deletes the snapshots behind the retired AMIs together, paced by the bucket, not one after another', async () => {
      // Prepare: 6 AMIs to retire, 2 snapshots each, 100 ms a DeleteSnapshot.
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(7)));
      const remove = ec2.deleteSnapshot.bind(ec2);
      let inFlight = 0;
      let most = 0;
      ec2.deleteSnapshot = async (snapshotId) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 100));
        inFlight -= 1;
        return remove(snapshotId);
      };

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess: one after another took 12 × 100 ms and never had two in flight.
      expect(ec2.deleted).toHaveLength(12);
      expect(most).toBeGreaterThan(1);
      expect(report.retired.flatMap((r) => r.snapshots.map((x) => x.outcome))).toEqual(
        Array.from({ length: 12 }, () => 'deleted'),
      );
    });

    it('deletes a snapshot shared by two AMIs once both are deregistered, and only once', async () => {
      // Prepare
      const history = [
        ami('i-web', 0),
        ami('i-web', 1, { snapshotIds: ['snap-shared', 'snap-web-d1-data'] }),
        ami('i-web', 2, { snapshotIds: ['snap-shared', 'snap-web-d2-data'] }),
      ];
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, history);

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(ec2.deleted.sort()).toEqual(['snap-shared', 'snap-web-d1-data', 'snap-web-d2-data']);
      expect(retiredImage(report, 'ami-web-d2').snapshots[0]).toEqual({
        snapshotId: 'snap-shared',
        outcome: 'skipped',
        reason: 'already gone',
      });
    });

    it('does not count the deregistered AMI itself as a user when DescribeImages still lists it', async () => {
      // Prepare
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(2)), {
        images: { staleAfterDeregister: true },
      });

      // Act
      await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(ec2.deleted.sort()).toEqual(['snap-web-d1-data', 'snap-web-d1-root']);
    });

    it('keeps the snapshots, with a warning, when the images cannot be listed after deregistering', async () => {
      // Prepare
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(2)), {
        images: { ownImagesError: sdkError('RequestLimitExceeded', 'Slow down') },
      });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(images.deregistered).toEqual(['ami-web-d1']);
      expect(ec2.deleted).toEqual([]);
      expect(retiredImage(report, 'ami-web-d1').snapshots.map((s) => s.outcome)).toEqual([
        'kept',
        'kept',
      ]);
      expect(report.warnings).toEqual([
        expect.stringMatching(/^images could not be listed after deregistering .*Slow down/),
      ]);
      expect(report.status).toBe('partial');
    });

    it('keeps the snapshots, and still reports, when they cannot be described after deregistering', async () => {
      // Prepare
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(2)), {
        ec2: { describeSnapshotsError: sdkError('RequestLimitExceeded', 'Slow down') },
      });

      // Act
      const run = runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      const report = await run.catch((error: unknown) => {
        throw new Error(`runAmiJob rejected instead of reporting: ${String(error)}`);
      });
      expect(images.deregistered).toEqual(['ami-web-d1']);
      expect(ec2.deleted).toEqual([]);
      expect(retiredImage(report, 'ami-web-d1').snapshots.map((s) => s.outcome)).not.toContain(
        'deleted',
      );
      expect(report.status).toBe('partial');
    });
  });

  describe('Safety: never touch what this deployment did not create', () => {
    it('never deregisters an AMI without our tags that slipped through the filters, however old', async () => {
      // Prepare
      const strays = [
        { ...ami('i-web', 30, { tags: ourTags('i-web', 30, { [keys.deployment]: 'staging' }) }) },
        { ...ami('i-web', 31, { tags: {} }), imageId: 'ami-untagged' },
        {
          ...ami('i-web', 32, { tags: ourTags('i-web', 32, { [keys.managed]: 'false' }) }),
          imageId: 'ami-unmanaged',
        },
        {
          ...ami('i-web', 33, { tags: ourTags('i-web', 33, { [keys.deployment]: '' }) }),
          imageId: 'ami-no-deployment',
        },
      ];
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(3)), {
        images: { strays },
      });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(images.deregisterCalls).toEqual(['ami-web-d1', 'ami-web-d2']);
      expect(report.retired.map((r) => r.imageId)).toEqual(['ami-web-d1', 'ami-web-d2']);
      expect(ec2.deleted.every((id) => /^snap-web-d[12]-/.test(id))).toBe(true);
    });

    it('keeps a snapshot behind our AMI that is not tagged as ours, with its size', async () => {
      // Prepare
      const history = amis('i-web', range(2));
      const snapshots = snapshotsOf(history).map((s) =>
        s.snapshotId === 'snap-web-d1-data' ? { ...s, tags: {}, sizeGiB: 100 } : s,
      );
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, history, { ec2: { snapshots } });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(ec2.deleted).toEqual(['snap-web-d1-root']);
      expect(retiredImage(report, 'ami-web-d1').snapshots).toContainEqual({
        snapshotId: 'snap-web-d1-data',
        outcome: 'kept',
        reason: 'not tagged as created by this deployment',
        sizeGiB: 100,
      });
    });
  });

  describe('Mode: dry run', () => {
    it("creates, deregisters and deletes nothing, journals nothing, and reports each step as 'planned'", async () => {
      // Prepare: no AMI for this slot yet; keep 2 of the 4 older ones.
      const { ec2, images } = fleet({ [keys.amiRetain]: '2' }, amis('i-web', range(4, 1)));
      const journal = new RecordingJournal();
      const recycleBin = new FakeRecycleBin();

      // Act
      const report = await runAmiJob(
        dailyRun({ dryRun: true }),
        dependencies(ec2, images, { journal, recycleBin }),
      );

      // Assess
      expect(images.createRequests).toEqual([]);
      expect(images.deregisterCalls).toEqual([]);
      expect(ec2.deleted).toEqual([]);
      expect(journal.records).toEqual([]);
      expect(recycleBin.calls).toBe(0);
      expect(report.created).toEqual([
        {
          instanceId: 'i-web',
          name: 'web-1',
          outcome: 'planned',
          imageName: 'web-1-prod-daily-20261123T0300Z',
          noReboot: true,
        },
      ]);
      expect(report.retired).toEqual(
        ['ami-web-d3', 'ami-web-d4'].map((imageId) => ({
          imageId,
          instanceId: 'i-web',
          reason: 'beyond count 2',
          outcome: 'planned',
          snapshots: ['root', 'data'].map((device) => ({
            snapshotId: `${imageId.replace('ami-', 'snap-')}-${device}`,
            outcome: 'planned',
            reason: `behind ${imageId}, deleted after it is deregistered`,
          })),
        })),
      );
      expect(report.dryRun).toBe(true);
      expect(report.status).toBe('succeeded');
      expect(report.counts).toMatchObject({
        plannedDeregistrations: 2,
        deregistered: 0,
        snapshotsDeleted: 0,
      });
    });
  });

  describe('Recycle Bin: a deregistered AMI stays restorable', () => {
    const rule = (overrides: Partial<RecycleBinRule>): RecycleBinRule => ({
      identifier: 'rule-0',
      retentionDays: 7,
      resourceTags: [],
      excludeTags: [],
      ...overrides,
    });

    it.each([
      ['a region-level rule', rule({ identifier: 'rule-region', retentionDays: 7 })],
      [
        'a tag-level rule matching a tag and value of the AMI',
        rule({
          identifier: 'rule-ours',
          retentionDays: 14,
          resourceTags: [
            { key: 'team', value: 'db' },
            { key: 'snapkeeper:managed', value: 'true' },
          ],
        }),
      ],
      [
        'a tag-level rule matching a tag key of the AMI',
        rule({ identifier: 'rule-named', retentionDays: 30, resourceTags: [{ key: 'Name' }] }),
      ],
    ])(
      'keeps the snapshots of a deregistered AMI that %s covers, naming the rule and its days',
      async (_, covering) => {
        // Prepare
        const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(2)));
        const recycleBin = new FakeRecycleBin([covering]);

        // Act
        const report = await runAmiJob(dailyRun(), dependencies(ec2, images, { recycleBin }));

        // Assess
        expect(images.deregistered).toEqual(['ami-web-d1']);
        expect(ec2.deleted).toEqual([]);
        const snapshots = retiredImage(report, 'ami-web-d1').snapshots;
        expect(snapshots.map((s) => s.snapshotId)).toEqual([
          'snap-web-d1-root',
          'snap-web-d1-data',
        ]);
        for (const snapshot of snapshots) {
          expect(snapshot.outcome).toBe('kept');
          expect(snapshot.reason).toContain(`Recycle Bin rule ${covering.identifier}`);
          expect(snapshot.reason).toContain(`${covering.retentionDays} days`);
        }
        expect(report.counts.snapshotsKept).toBe(2);
      },
    );

    it.each([
      ['a tag-level rule for other tags', rule({ resourceTags: [{ key: 'team', value: 'db' }] })],
      [
        'a tag-level rule for another value of one of its tags',
        rule({ resourceTags: [{ key: 'snapkeeper:deployment', value: 'staging' }] }),
      ],
      [
        'a region-level rule excluding its tags',
        rule({ excludeTags: [{ key: 'snapkeeper:managed', value: 'true' }] }),
      ],
    ])('deletes the snapshots of a deregistered AMI that only %s names', async (_, other) => {
      // Prepare
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(2)));

      // Act
      await runAmiJob(
        dailyRun(),
        dependencies(ec2, images, { recycleBin: new FakeRecycleBin([other]) }),
      );

      // Assess
      expect(ec2.deleted.sort()).toEqual(['snap-web-d1-data', 'snap-web-d1-root']);
    });

    it('keeps the snapshots and warns, the run partial, when the Recycle Bin rules cannot be read', async () => {
      // Prepare
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(2)));
      const recycleBin = new FakeRecycleBin(
        sdkError('AccessDeniedException', 'not authorized to perform rbin:ListRules'),
      );

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images, { recycleBin }));

      // Assess
      expect(ec2.deleted).toEqual([]);
      expect(retiredImage(report, 'ami-web-d1').snapshots).toEqual([
        {
          snapshotId: 'snap-web-d1-root',
          outcome: 'kept',
          reason: 'Recycle Bin rules could not be read',
        },
        {
          snapshotId: 'snap-web-d1-data',
          outcome: 'kept',
          reason: 'Recycle Bin rules could not be read',
        },
      ]);
      expect(report.warnings).toEqual([
        expect.stringMatching(
          /^Recycle Bin rules could not be read \(.*rbin:ListRules\); snapshots of deregistered AMIs kept$/,
        ),
      ]);
      expect(report.status).toBe('partial');
    });
  });

  describe('Pending images', () => {
    it('never deregisters a pending AMI and never counts one toward the count, old or new', async () => {
      // Prepare: no AMI for this slot yet (CreateImage adds a pending one); d9 is stuck pending.
      const history = [
        ami('i-web', 1),
        ami('i-web', 2),
        ami('i-web', 3),
        ami('i-web', 9, { state: 'pending' }),
      ];
      const { ec2, images } = fleet({ [keys.amiRetain]: '2' }, history);

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(report.created.map((c) => c.imageId)).toEqual(['ami-new-web']);
      expect(images.deregisterCalls).toEqual(['ami-web-d3']);
      expect(report.kept).toEqual([
        { imageId: 'ami-web-d1', instanceId: 'i-web', reason: 'kept: newest 1 of 2' },
        { imageId: 'ami-web-d2', instanceId: 'i-web', reason: 'kept: newest 2 of 2' },
        {
          imageId: 'ami-web-d9',
          instanceId: 'i-web',
          reason: 'kept: pending (not counted, never deleted)',
        },
        {
          imageId: 'ami-new-web',
          instanceId: 'i-web',
          reason: 'kept: pending (not counted, never deleted)',
        },
      ]);
    });
  });

  describe('History: every AMI made, skipped or failed is an item of its resource', () => {
    it('records an AMI made under the AMI (and its instance), a skipped instance and a failed creation under the instance', async () => {
      // Prepare
      const ec2 = new FakeEc2({
        instances: [
          webInstance(),
          webInstance({ [keys.ami]: 'dialy' }, 'i-typo'),
          webInstance({}, 'i-quota'),
        ],
      });
      const images = new FakeImages({
        createErrors: new Map([
          ['i-quota', sdkError('ResourceLimitExceeded', 'You have reached your AMI quota')],
        ]),
      });
      const journal = new RecordingJournal();

      // Act
      await runAmiJob(dailyRun(), dependencies(ec2, images, { journal }));

      // Assess
      const byResource = new Map(journal.records.map((r) => [r.resourceId, r]));
      expect(byResource.get('ami-new-web')).toEqual({
        runId: RUN_ID,
        job: 'amis',
        action: 'create-image',
        resourceId: 'ami-new-web',
        phase: 'after',
        outcome: 'done',
        reason: 'scheduled AMI of i-web',
        details: {
          instanceId: 'i-web',
          slot: '2026-11-23T03:00:00Z',
          imageName: expect.stringContaining('web-1'),
          noReboot: true,
        },
      });
      expect(byResource.get('i-typo')).toMatchObject({
        action: 'skip-instance',
        phase: 'after',
        outcome: 'skipped',
        reason: expect.stringContaining('dialy'),
        details: { instanceId: 'i-typo' },
      });
      expect(byResource.get('i-quota')).toMatchObject({
        action: 'create-image',
        outcome: 'failed',
        error: { code: 'ResourceLimitExceeded' },
        details: { instanceId: 'i-quota' },
      });
      expect(journal.records).toHaveLength(3);
    });

    it('records nothing in a dry run, and nothing for an AMI the slot already has', async () => {
      // Prepare
      const { ec2, images } = fleet({}, amis('i-web', [0]));
      const dryJournal = new RecordingJournal();
      const journal = new RecordingJournal();

      // Act
      await runAmiJob(
        dailyRun({ dryRun: true }),
        dependencies(ec2, new FakeImages(), { journal: dryJournal }),
      );
      await runAmiJob(dailyRun(), dependencies(ec2, images, { journal }));

      // Assess
      expect(dryJournal.records).toEqual([]);
      expect(journal.records).toEqual([]);
    });

    it('keeps the AMI and logs when its record cannot be written', async () => {
      // Prepare
      const ec2 = new FakeEc2({ instances: [webInstance()] });
      const images = new FakeImages();
      const journal: ActionJournal = {
        record: async () => {
          throw sdkError('ProvisionedThroughputExceededException', 'slow down');
        },
      };

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images, { journal }));

      // Assess
      expect(report.created[0]).toMatchObject({ outcome: 'created', imageId: 'ami-new-web' });
      expect(images.deregisterCalls).toEqual([]);
    });
  });

  describe('Journal: every deregistration and deletion recorded before and after', () => {
    it('records the snapshot ids, deregisters, then deletes each snapshot between its own records', async () => {
      // Prepare
      const events: string[] = [];
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(2)), {
        images: { events },
        ec2: { events },
      });
      const journal = new RecordingJournal({ events });

      // Act
      await runAmiJob(dailyRun(), dependencies(ec2, images, { journal }));

      // Assess
      expect(events).toEqual([
        'before ami-web-d1',
        'deregister ami-web-d1',
        'after ami-web-d1 done',
        'before snap-web-d1-root',
        'delete snap-web-d1-root',
        'after snap-web-d1-root done',
        'before snap-web-d1-data',
        'delete snap-web-d1-data',
        'after snap-web-d1-data done',
      ]);
      expect(journal.records[0]).toEqual({
        runId: RUN_ID,
        job: 'amis',
        action: 'deregister-image',
        resourceId: 'ami-web-d1',
        phase: 'before',
        reason: 'beyond count 1',
        details: {
          instanceId: 'i-web',
          snapshotIds: ['snap-web-d1-root', 'snap-web-d1-data'],
          sizeGiB: 16,
        },
      });
      expect(journal.records[2]).toEqual({
        runId: RUN_ID,
        job: 'amis',
        action: 'delete-snapshot',
        resourceId: 'snap-web-d1-root',
        phase: 'before',
        reason: 'behind deregistered ami-web-d1',
        details: { imageId: 'ami-web-d1', sizeGiB: 8 },
      });
    });

    it('does not deregister an AMI whose "before" record cannot be written: failed, snapshots kept', async () => {
      // Prepare
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(3)));
      const journal = new RecordingJournal({ failBefore: ['ami-web-d1'] });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images, { journal }));

      // Assess
      expect(images.deregisterCalls).toEqual(['ami-web-d2']);
      const failed = retiredImage(report, 'ami-web-d1');
      expect(failed).toMatchObject({
        outcome: 'failed',
        error: { code: 'JournalUnavailable' },
      });
      expect(failed.error?.message).toContain('Requested resource not found');
      expect(failed.snapshots.map((s) => [s.snapshotId, s.outcome, s.reason])).toEqual([
        ['snap-web-d1-root', 'kept', 'the AMI was not deregistered'],
        ['snap-web-d1-data', 'kept', 'the AMI was not deregistered'],
      ]);
      expect(ec2.deleted.sort()).toEqual(['snap-web-d2-data', 'snap-web-d2-root']);
      expect(journal.records.filter((r) => r.resourceId === 'ami-web-d1')).toEqual([]);
      expect(report.status).toBe('partial');
      expect(report.counts).toMatchObject({ deregistered: 1, failed: 1 });
    });

    it('does not delete a snapshot whose "before" record cannot be written', async () => {
      // Prepare
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(2)));
      const journal = new RecordingJournal({ failBefore: ['snap-web-d1-root'] });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images, { journal }));

      // Assess
      expect(ec2.deleted).toEqual(['snap-web-d1-data']);
      expect(retiredImage(report, 'ami-web-d1').snapshots[0]).toMatchObject({
        snapshotId: 'snap-web-d1-root',
        outcome: 'failed',
        error: { code: 'JournalUnavailable' },
      });
      expect(report.status).toBe('partial');
    });
  });

  describe('Races at deregistration and deletion', () => {
    it.each(['InvalidAMIID.Unavailable', 'InvalidAMIID.NotFound'])(
      "treats an AMI already deregistered (%s) as 'gone' and still cleans up its snapshots",
      async (code) => {
        // Prepare
        const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(2)), {
          images: {
            deregisterErrors: new Map([['ami-web-d1', new ImageGoneError('ami-web-d1', code)]]),
          },
        });
        const journal = new RecordingJournal();

        // Act
        const report = await runAmiJob(dailyRun(), dependencies(ec2, images, { journal }));

        // Assess
        expect(retiredImage(report, 'ami-web-d1')).toMatchObject({
          outcome: 'gone',
          reason: `beyond count 1; already deregistered (${code})`,
        });
        expect(ec2.deleted.sort()).toEqual(['snap-web-d1-data', 'snap-web-d1-root']);
        expect(
          journal.records
            .filter((r) => r.action === 'deregister-image')
            .map((r) => [r.phase, r.outcome]),
        ).toEqual([
          ['before', undefined],
          ['after', 'done'],
        ]);
        expect(report.status).toBe('succeeded');
      },
    );

    it('fails an AMI that DeregisterImage refuses, keeps its snapshots, and makes the run partial', async () => {
      // Prepare
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(2)), {
        images: {
          deregisterErrors: new Map([
            ['ami-web-d1', new AwsCallError('DeregisterImage', 'UnauthorizedOperation', 'denied')],
          ]),
        },
      });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(retiredImage(report, 'ami-web-d1')).toMatchObject({
        outcome: 'failed',
        error: { code: 'UnauthorizedOperation' },
      });
      expect(ec2.deleted).toEqual([]);
      expect(report.status).toBe('partial');
    });

    it('keeps a snapshot an image took since the plan (InUse) and skips one already gone (NotFound), without failing', async () => {
      // Prepare
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(2)), {
        ec2: {
          deleteErrors: new Map<string, Error>([
            ['snap-web-d1-root', new SnapshotInUseError('snap-web-d1-root')],
            ['snap-web-d1-data', new SnapshotNotFoundError('snap-web-d1-data')],
          ]),
        },
      });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(retiredImage(report, 'ami-web-d1').snapshots).toEqual([
        {
          snapshotId: 'snap-web-d1-root',
          outcome: 'kept',
          reason: 'behind deregistered ami-web-d1; in use by another image (InvalidSnapshot.InUse)',
          sizeGiB: 8,
        },
        {
          snapshotId: 'snap-web-d1-data',
          outcome: 'skipped',
          reason: 'behind deregistered ami-web-d1; already deleted',
          sizeGiB: 8,
        },
      ]);
      expect(report.counts).toMatchObject({ failed: 0, snapshotsKept: 1, snapshotsDeleted: 0 });
      expect(report.status).toBe('succeeded');
    });

    it('fails a snapshot deletion that EC2 refuses for another reason, the run partial', async () => {
      // Prepare
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(2)), {
        ec2: {
          deleteErrors: new Map([
            ['snap-web-d1-root', sdkError('UnauthorizedOperation', 'not authorized')],
          ]),
        },
      });

      // Act
      const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

      // Assess
      expect(retiredImage(report, 'ami-web-d1').snapshots[0]).toMatchObject({
        snapshotId: 'snap-web-d1-root',
        outcome: 'failed',
        error: { code: 'UnauthorizedOperation' },
      });
      expect(ec2.deleted).toEqual(['snap-web-d1-data']);
      expect(report.status).toBe('partial');
    });
  });

  describe('Cap: a run deregisters at most MAX_DELETIONS AMIs', () => {
    it('deregisters nothing and fails with DeletionCapExceeded when more are planned than the cap', async () => {
      // Prepare: five AMIs beyond a count of 1, a cap of 2.
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(6)));
      const journal = new RecordingJournal();

      // Act
      const report = await runAmiJob(
        dailyRun(),
        dependencies(ec2, images, {
          journal,
          config: { maxDeletions: { kind: 'count', value: 2 } },
        }),
      );

      // Assess
      expect(images.deregisterCalls).toEqual([]);
      expect(ec2.deleted).toEqual([]);
      expect(journal.records).toEqual([]);
      expect(report.retired.map((r) => r.outcome)).toEqual(Array(5).fill('planned'));
      expect(report.cap).toMatchObject({ limit: 2, planned: 5, exceeded: true });
      expect(report.status).toBe('failed');
      expect(report.error?.code).toBe('DeletionCapExceeded');
      expect(report.error?.message).toContain('"maxDeletions": 5');
    });

    it('lets a one-run maxDeletions override lift the cap', async () => {
      // Prepare
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(6)));

      // Act
      const report = await runAmiJob(
        dailyRun({ maxDeletions: 5 }),
        dependencies(ec2, images, { config: { maxDeletions: { kind: 'count', value: 2 } } }),
      );

      // Assess
      expect(images.deregistered).toHaveLength(5);
      expect(report.cap).toEqual({ limit: 5, planned: 5, exceeded: false });
      expect(report.status).toBe('succeeded');
    });

    it('holds to a maxDeletions override lower than the configured cap', async () => {
      // Prepare
      const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(3)));

      // Act
      const report = await runAmiJob(dailyRun({ maxDeletions: 1 }), dependencies(ec2, images));

      // Assess
      expect(images.deregisterCalls).toEqual([]);
      expect(report.status).toBe('failed');
      expect(report.error?.code).toBe('DeletionCapExceeded');
    });
  });
});

describe('Function: runAmiJob, at the buckets’ pace (issue 19)', () => {
  it('describes the snapshots behind all the retired AMIs in one call, not one per AMI', async () => {
    // Prepare: 6 AMIs to retire, 2 snapshots each.
    const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(7)));

    // Act
    const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

    // Assess
    expect(ec2.describedSnapshotIds).toHaveLength(1);
    expect([...(ec2.describedSnapshotIds[0] ?? [])].sort()).toEqual(
      amis('i-web', range(6, 1))
        .flatMap((i) => i.snapshotIds)
        .sort(),
    );
    expect(report.counts).toMatchObject({ deregistered: 6, snapshotsDeleted: 12 });
  });

  it('describes nothing in a dry run', async () => {
    // Prepare
    const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(3)));

    // Act
    await runAmiJob(dailyRun({ dryRun: true }), dependencies(ec2, images));

    // Assess
    expect(ec2.describedSnapshotIds).toEqual([]);
    expect(images.ownImagesCalls).toBe(0);
  });
});

describe('Function: runAmiJob, near the deadline', () => {
  it("starts nothing below the safety margin, keeps the AMIs' snapshots, and ends 'incomplete' with what is left", async () => {
    // Prepare
    const { ec2, images } = fleet({ [keys.amiRetain]: '2' }, amis('i-web', range(4)));

    // Act
    const report = await runAmiJob(
      dailyRun({ remainingMs: () => 10_000, safetyMarginMs: 60_000 }),
      dependencies(ec2, images),
    );

    // Assess
    expect(images.deregistered).toEqual([]);
    expect(ec2.deleted).toEqual([]);
    expect(report.status).toBe('incomplete');
    expect(report.retired.map((r) => [r.imageId, r.outcome])).toEqual([
      ['ami-web-d2', 'deferred'],
      ['ami-web-d3', 'deferred'],
    ]);
    expect(report.retired.flatMap((r) => r.snapshots.map((s) => s.outcome))).not.toContain(
      'deleted',
    );
    expect(report.remaining).toEqual(expect.arrayContaining(['ami-web-d2', 'ami-web-d3']));
  });
});

/** A run history that holds the creation records of `recorded` (started long before). */
function ledger(recorded: readonly string[] | Error): CreationLedger {
  return {
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
  };
}

describe('Function: runAmiJob, ownership by the run history (issue 15, defect 11)', () => {
  it('records every AMI it creates as created, so that its own retirement may take it later', async () => {
    // Prepare
    const { ec2, images } = fleet({}, []);
    const journal = new RecordingJournal();

    // Act
    await runAmiJob(dailyRun(), dependencies(ec2, images, { journal }));

    // Assess
    expect(journal.records.filter((r) => r.action === 'create-image')).toEqual([
      expect.objectContaining({
        action: 'create-image',
        resourceId: 'ami-new-web',
        phase: 'after',
        outcome: 'done',
        details: expect.objectContaining({ instanceId: 'i-web' }),
      }),
    ]);
  });

  it('deregisters only AMIs the history recorded; one merely tagged as ours is kept and reported', async () => {
    // Prepare: retain 1; d1 and d2 are beyond it, but d2 was never recorded (made by hand with our tags).
    const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(3)));

    // Act
    const report = await runAmiJob(
      dailyRun(),
      dependencies(ec2, images, { ledger: ledger(['ami-web-d0', 'ami-web-d1']) }),
    );

    // Assess
    expect(images.deregistered).toEqual(['ami-web-d1']);
    expect(report.kept).toContainEqual({
      imageId: 'ami-web-d2',
      instanceId: 'i-web',
      reason: expect.stringContaining('no record of creating it'),
    });
    expect(ec2.deleted).not.toContain('snap-web-d2-root');
  });

  it('deregisters nothing and reports partial when the history cannot be read', async () => {
    // Prepare
    const { ec2, images } = fleet({ [keys.amiRetain]: '1' }, amis('i-web', range(3)));

    // Act
    const report = await runAmiJob(
      dailyRun(),
      dependencies(ec2, images, {
        ledger: ledger(sdkError('ProvisionedThroughputExceededException', 'slow down')),
      }),
    );

    // Assess
    expect(images.deregistered).toEqual([]);
    expect(ec2.deleted).toEqual([]);
    expect(report.status).toBe('partial');
    expect(report.warnings).toContainEqual(
      expect.stringContaining('run history could not be read'),
    );
  });
});

describe('Function: runAmiJob, disaster-recovery AMI copies belong to the copy job (issue 15, defect 2)', () => {
  it('never deregisters an AMI copy in its region, though it carries the source’s managed, stage and schedule tags', async () => {
    // Prepare: 9 copies of a source instance's AMIs, which has no instance here (an orphan
    // to this region's AMI job), made before the history kept creation records.
    const copies = range(9).map((d) =>
      ami('i-gone', d, {
        tags: ourTags('i-gone', d, {
          [keys.sourceRegion]: 'us-east-1',
          [keys.sourceImageId]: `ami-source-d${d}`,
        }),
      }),
    );
    const ec2 = new FakeEc2({ instances: [], snapshots: snapshotsOf(copies) });
    const images = new FakeImages({ images: copies });

    // Act
    const report = await runAmiJob(dailyRun(), dependencies(ec2, images));

    // Assess
    expect(images.deregistered).toEqual([]);
    expect(ec2.deleted).toEqual([]);
    expect(report.kept).toHaveLength(9);
    expect(report.kept[0]?.reason).toMatch(/disaster-recovery copy/);
  });
});

describe('Function: runAmiJob, an orphan keeps the AMI policy recorded at creation (issue 15, defect 3)', () => {
  it('keeps the ami-retain=5 recorded on a terminated instance’s AMIs, not the schedule’s default of 7', async () => {
    // Prepare: the instance is gone; its 9 AMIs recorded ami-retain=5 when they were made.
    const history = range(9).map((d) =>
      ami('i-gone', d, { tags: ourTags('i-gone', d, { [keys.amiRetain]: '5' }) }),
    );
    const ec2 = new FakeEc2({ instances: [], snapshots: snapshotsOf(history) });
    const images = new FakeImages({ images: history });

    // Act
    await runAmiJob(dailyRun(), dependencies(ec2, images));

    // Assess
    expect(images.deregistered).toEqual([
      'ami-gone-d5',
      'ami-gone-d6',
      'ami-gone-d7',
      'ami-gone-d8',
    ]);
  });

  it('keeps 12 AMIs of an instance whose opt-in tag was removed, as ami-retain=12 recorded', async () => {
    // Prepare: still running, no longer opted in; the schedule alone would keep 7.
    const history = range(14).map((d) =>
      ami('i-web', d, { tags: ourTags('i-web', d, { [keys.amiRetain]: '12' }) }),
    );
    const ec2 = new FakeEc2({
      instances: [{ ...webInstance(), tags: { Name: 'web-1' } }],
      snapshots: snapshotsOf(history),
    });
    const images = new FakeImages({ images: history });

    // Act
    await runAmiJob(dailyRun(), dependencies(ec2, images));

    // Assess
    expect(images.deregistered).toEqual(['ami-web-d12', 'ami-web-d13']);
  });
});
