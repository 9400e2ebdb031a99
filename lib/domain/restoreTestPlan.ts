/**
 * Restore tests: which instances a run tests (all, or N rotating: the least recently
 * tested first), which snapshot set of each it restores, and whether a restored volume
 * is what the snapshot promised. Pure: the job reads the facts and acts.
 */
import type { Tag } from './backupPlan.ts';
import { InvalidScheduleDefinitionError } from './errors.ts';
import * as z from './schema.ts';
import { effectiveCreatedAt, type SnapshotFacts } from './snapshotFacts.ts';
import type { TagKeys } from './tagKeys.ts';
import type { TagMap } from './tagPolicy.ts';

/**
 * The EBS Provisioned Rate for Volume Initialization, in MiB/s, as the CreateVolume API
 * reference gives its `VolumeInitializationRate` ("Valid range: 100 - 300 MiB/s";
 * supported only for volumes created from snapshots).
 */
export const VOLUME_INITIALIZATION_RATE = { min: 100, max: 300 } as const;

/** The most instances one run tests when a sample size is given. */
export const MAX_RESTORE_TEST_SAMPLE = 50;

/** A schedule's `restoreTests` option: which instances each run tests, and how. */
export interface RestoreTestOptions {
  /** `all`, or how many instances a run tests, the least recently tested first. */
  readonly instances: 'all' | number;
  /** MiB/s (100-300): restore at a provisioned initialization rate; absent: AWS's default. */
  readonly volumeInitializationRate?: number | undefined;
  /** When the scheduled test runs (AWS cron); absent: with the schedule's retention. */
  readonly cron?: string | undefined;
}

/** The schema of a `restoreTests` option; also used by the console payload. */
export const restoreTestOptionsSchema = z.strictObject({
  instances: z._default(
    z.union([
      z.literal('all'),
      z
        .number()
        .check(
          z.int('must be a whole number or "all"'),
          z.minimum(1),
          z.maximum(MAX_RESTORE_TEST_SAMPLE),
        ),
    ]),
    'all',
  ),
  volumeInitializationRate: z.optional(
    z
      .number()
      .check(
        z.int('must be a whole number of MiB/s'),
        z.minimum(VOLUME_INITIALIZATION_RATE.min),
        z.maximum(VOLUME_INITIALIZATION_RATE.max),
      ),
  ),
  cron: z.optional(z.string().check(z.minLength(1))),
});

/**
 * Validates a schedule's `restoreTests` option.
 *
 * @throws {InvalidScheduleDefinitionError} naming the schedule, the field and the limits.
 * @example
 * parseRestoreTestOptions({ instances: 2, volumeInitializationRate: 200 }, 'daily');
 * // { instances: 2, volumeInitializationRate: 200 }
 */
export function parseRestoreTestOptions(input: unknown, schedule: string): RestoreTestOptions {
  const parsed = restoreTestOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.length ? `.${issue.path.join('.')}` : '';
    throw new InvalidScheduleDefinitionError(
      `schedule "${schedule}": restoreTests${field}: ${issue?.message ?? 'invalid'}; ${RESTORE_TEST_OPTIONS_HELP}`,
    );
  }
  const { instances, volumeInitializationRate, cron } = parsed.data;
  return {
    instances,
    ...(volumeInitializationRate === undefined ? {} : { volumeInitializationRate }),
    ...(cron === undefined ? {} : { cron }),
  };
}

/** How to write the option, for error messages. */
export const RESTORE_TEST_OPTIONS_HELP = `write restoreTests as { instances: "all" or 1-${MAX_RESTORE_TEST_SAMPLE}, volumeInitializationRate: ${VOLUME_INITIALIZATION_RATE.min}-${VOLUME_INITIALIZATION_RATE.max} (MiB/s, optional), cron: "cron(...)" (optional) }`;

/** An instance's restore tests as the report and the page show them. */
export interface RestoreTestStatus {
  /** No test of it in the history (RESTORE_TEST_HISTORY_DAYS): flagged. */
  readonly neverTested: boolean;
  readonly lastPassedAt?: string | undefined;
  /** The slowest volume's seconds from CreateVolume to available, in that test. */
  readonly lastPassedSeconds?: number | undefined;
  readonly lastTestedAt?: string | undefined;
  readonly lastOutcome?: 'passed' | 'failed' | undefined;
}

/** A restore test's volume as DescribeVolumes describes it. */
export interface TestVolume {
  readonly volumeId: string;
  readonly state: string;
  readonly sizeGiB?: number | undefined;
  readonly encrypted?: boolean | undefined;
  readonly kmsKeyId?: string | undefined;
  readonly availabilityZone?: string | undefined;
  readonly createTime?: Date | undefined;
  readonly tags: TagMap;
}

/** A restore test's CreateVolume: no size or key, so the volume takes the snapshot's. */
export interface TestVolumeRequest {
  readonly snapshotId: string;
  readonly availabilityZone: string;
  /** Default gp3. */
  readonly volumeType?: string | undefined;
  /** MiB/s, 100-300 (CreateVolume `VolumeInitializationRate`). */
  readonly volumeInitializationRate?: number | undefined;
  readonly tags: readonly Tag[];
}

/** An instance that may be tested, and when its last test (of any outcome) ran. */
export interface RestoreTestCandidate {
  readonly instanceId: string;
  /** ISO 8601; absent when the history holds no test of it. */
  readonly lastTestedAt?: string | undefined;
}

/**
 * The instances a run tests: all of them, or the `sample` least recently tested (never
 * tested first, then the oldest test; ties by instance id), so that successive runs
 * rotate through the fleet.
 *
 * @example
 * selectRestoreTests([{ instanceId: 'i-a', lastTestedAt: '2026-11-01T00:00:00Z' }, { instanceId: 'i-b' }], 1);
 * // ['i-b']
 */
export function selectRestoreTests(
  candidates: readonly RestoreTestCandidate[],
  sample: 'all' | number,
): string[] {
  const unique = new Map<string, RestoreTestCandidate>();
  for (const candidate of candidates) {
    const seen = unique.get(candidate.instanceId);
    if (!seen || testedTime(candidate) > testedTime(seen))
      unique.set(candidate.instanceId, candidate);
  }
  const ordered = [...unique.values()].sort(
    (a, b) =>
      testedTime(a) - testedTime(b) ||
      (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0),
  );
  const count = sample === 'all' ? ordered.length : Math.max(0, Math.floor(sample));
  return ordered.slice(0, count).map((c) => c.instanceId);
}

function testedTime(candidate: RestoreTestCandidate): number {
  if (!candidate.lastTestedAt) return Number.NEGATIVE_INFINITY;
  const time = Date.parse(candidate.lastTestedAt);
  return Number.isNaN(time) ? Number.NEGATIVE_INFINITY : time;
}

/** One instance's newest completed snapshot set: the snapshots of one run. */
export interface SnapshotSet {
  readonly instanceId: string;
  readonly runId: string;
  readonly createdAt: Date;
  readonly snapshots: readonly SnapshotFacts[];
}

/**
 * The newest set of an instance whose every snapshot is `completed` (a set with a
 * pending or failed snapshot is passed over: a test restores what a restore would).
 * Snapshots without a run id tag form no set.
 *
 * @example
 * newestCompletedSet('i-a', snapshotsOfA, keys, now)?.runId; // '20261123T030000Z-a1b2c3d4'
 */
export function newestCompletedSet(
  instanceId: string,
  snapshots: readonly SnapshotFacts[],
  keys: Pick<TagKeys, 'runId' | 'instanceId' | 'createdAt'>,
  now: Date,
): SnapshotSet | undefined {
  const byRun = new Map<string, SnapshotFacts[]>();
  for (const snapshot of snapshots) {
    const runId = snapshot.tags[keys.runId];
    if (!runId || snapshot.tags[keys.instanceId] !== instanceId) continue;
    byRun.set(runId, [...(byRun.get(runId) ?? []), snapshot]);
  }
  let newest: SnapshotSet | undefined;
  for (const [runId, set] of byRun) {
    if (set.some((s) => s.state !== 'completed')) continue;
    const createdAt = new Date(
      Math.max(
        ...set.map((s) => effectiveCreatedAt(s.tags, s.startTime, keys as TagKeys, now).getTime()),
      ),
    );
    if (
      !newest ||
      createdAt.getTime() > newest.createdAt.getTime() ||
      (createdAt.getTime() === newest.createdAt.getTime() && runId > newest.runId)
    ) {
      newest = {
        instanceId,
        runId,
        createdAt,
        snapshots: [...set].sort((a, b) => (a.snapshotId < b.snapshotId ? -1 : 1)),
      };
    }
  }
  return newest;
}

/** What a restored volume must be: what its snapshot promised. */
export interface ExpectedVolume {
  readonly sizeGiB?: number | undefined;
  readonly encrypted?: boolean | undefined;
  readonly kmsKeyId?: string | undefined;
}

/** A restored volume as DescribeVolumes described it. */
export interface ObservedVolume {
  readonly state: string;
  readonly sizeGiB?: number | undefined;
  readonly encrypted?: boolean | undefined;
  readonly kmsKeyId?: string | undefined;
}

/**
 * Why a restored volume fails its test, or an empty list when it passes: it must be
 * `available`, of the snapshot's size (the test asks for no other size), encrypted
 * when the snapshot is, and with the snapshot's KMS key when the snapshot names one.
 *
 * @example
 * restoredVolumeProblems({ sizeGiB: 8, encrypted: false }, { state: 'available', sizeGiB: 8, encrypted: false });
 * // []
 */
export function restoredVolumeProblems(
  expected: ExpectedVolume,
  observed: ObservedVolume,
): string[] {
  const problems: string[] = [];
  if (observed.state !== 'available') problems.push(`state is ${observed.state}, not available`);
  if (expected.sizeGiB !== undefined && observed.sizeGiB !== expected.sizeGiB)
    problems.push(`size is ${observed.sizeGiB ?? 'unknown'} GiB, expected ${expected.sizeGiB} GiB`);
  const wantEncrypted = expected.encrypted === true;
  // An unencrypted snapshot restores encrypted when the account encrypts new volumes by
  // default (EC2 GetEbsEncryptionByDefault): not a failure, so only the reverse is checked.
  if (wantEncrypted && observed.encrypted !== true)
    problems.push('is not encrypted, the snapshot is');
  if (
    wantEncrypted &&
    expected.kmsKeyId &&
    observed.kmsKeyId &&
    keyIdOf(observed.kmsKeyId) !== keyIdOf(expected.kmsKeyId)
  )
    problems.push(`KMS key is ${observed.kmsKeyId}, the snapshot's is ${expected.kmsKeyId}`);
  if (wantEncrypted && expected.kmsKeyId && !observed.kmsKeyId)
    problems.push(`KMS key is not reported, the snapshot's is ${expected.kmsKeyId}`);
  return problems;
}

/** A key ARN and its bare id name the same key. */
function keyIdOf(key: string): string {
  const match = /:key\/([^/]+)$/.exec(key);
  return match?.[1] ?? key;
}
