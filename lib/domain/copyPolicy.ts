import { partOf, quoteShort, tagMessage } from './messages.ts';
import { planRetention, type RecoveryPoint } from './retentionPlan.ts';
import type { TagKeys } from './tagKeys.ts';
import { MAX_RETAIN_COUNT, type TagMap, type TagProblem } from './tagPolicy.ts';

/** At most this many destination regions per instance. */
export const MAX_COPY_REGIONS = 3;

const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/;
const ACCOUNT = /^\d{12}$/;

/** What an instance's tags ask for its copies and shares. */
export interface CopyPolicy {
  /** Destination regions, at most 3, never the source region. */
  readonly regions: readonly string[];
  /** Copies kept per source in each destination; undefined: the source's count. */
  readonly retain?: number | undefined;
  /** KMS key per destination region (copies are encrypted with it). */
  readonly kmsKeys: Readonly<Record<string, string>>;
  /** Accounts the snapshots and AMIs are shared with. */
  readonly shareWith: readonly string[];
  readonly problems: readonly TagProblem[];
}

/**
 * Reads the copy and share tags of an instance. Never throws: an unreadable value is a
 * problem naming the key, and that part of the policy is left out (no copy to a bad
 * region, no share with a bad account) while the rest still applies.
 *
 * @example
 * readCopyPolicy('i-1', { 'snapkeeper:copy-to': 'eu-west-1' }, keys, 'us-east-1', {}).regions; // ['eu-west-1']
 */
export function readCopyPolicy(
  resourceId: string,
  tags: TagMap,
  keys: TagKeys,
  sourceRegion: string,
  defaultKmsKeys: Readonly<Record<string, string>>,
  scheduleRegions: readonly string[] = [],
): CopyPolicy {
  const problems: TagProblem[] = [];
  // Each message prints the value once: a part of a list is named only when there are more.
  const fail: Fail = (key, value, reason) =>
    problems.push({ resourceId, key, value, message: tagMessage(key, value, reason) });
  const regions = readRegions(tags, keys, sourceRegion, scheduleRegions, fail);
  const retain = readRetain(tags, keys, fail);
  const kmsKeys = readKmsKeys(tags, keys, regions, defaultKmsKeys, fail);
  const shareWith = readShareWith(tags, keys, fail);
  return { regions, ...(retain !== undefined ? { retain } : {}), kmsKeys, shareWith, problems };
}

/** Records a problem with one tag's value. */
type Fail = (key: string, value: string, reason: string) => void;

/** `copy-to` (else the schedules' copyTo): valid regions, never the source, at most 3. */
function readRegions(
  tags: TagMap,
  keys: TagKeys,
  sourceRegion: string,
  scheduleRegions: readonly string[],
  fail: Fail,
): string[] {
  const regions: string[] = [];
  const rawRegions = tags[keys.copyTo];
  const listed = (
    rawRegions === undefined ? scheduleRegions.map((r) => r.trim()) : list(rawRegions)
  ).map((r) => r.toLowerCase());
  // A problem names where the regions came from: the tag, or the schedule's copyTo.
  const regionKey = rawRegions === undefined ? 'schedule copyTo' : keys.copyTo;
  const regionValue = rawRegions ?? scheduleRegions.join(',');
  for (const region of listed) {
    if (!REGION.test(region)) {
      fail(regionKey, regionValue, `${partOf(listed, region)} not a region such as eu-west-1`);
    } else if (region === sourceRegion) {
      const what = listed.length === 1 ? 'is' : `: ${region} is`;
      fail(regionKey, regionValue, `${what} the source region`);
    } else if (!regions.includes(region)) {
      regions.push(region);
    }
  }
  if (regions.length > MAX_COPY_REGIONS) {
    fail(
      regionKey,
      regionValue,
      `names ${regions.length} regions; at most ${MAX_COPY_REGIONS}, the first ${MAX_COPY_REGIONS} are used`,
    );
    regions.length = MAX_COPY_REGIONS;
  }
  return regions;
}

/** `copy-retain`: a whole number from 1 to the maximum count, else the source's count. */
function readRetain(tags: TagMap, keys: TagKeys, fail: Fail): number | undefined {
  const rawRetain = tags[keys.copyRetain];
  if (rawRetain === undefined) return undefined;
  const trimmed = rawRetain.trim();
  if (/^\d+$/.test(trimmed) && Number(trimmed) >= 1 && Number(trimmed) <= MAX_RETAIN_COUNT) {
    return Number(trimmed);
  }
  fail(
    keys.copyRetain,
    rawRetain,
    `is not a whole number from 1 to ${MAX_RETAIN_COUNT}; the source's count is used`,
  );
  return undefined;
}

/** `copy-kms-key`: one key for every region, or `region=key` entries, over the defaults. */
function readKmsKeys(
  tags: TagMap,
  keys: TagKeys,
  regions: readonly string[],
  defaultKmsKeys: Readonly<Record<string, string>>,
  fail: Fail,
): Record<string, string> {
  const kmsKeys: Record<string, string> = { ...defaultKmsKeys };
  const rawKeys = tags[keys.copyKmsKey];
  if (rawKeys === undefined) return kmsKeys;
  const entries = list(rawKeys);
  if (entries.length === 1 && !entries[0]?.includes('=')) {
    for (const region of regions) kmsKeys[region] = entries[0] ?? '';
    return kmsKeys;
  }
  for (const entry of entries) {
    const [region, key, ...rest] = entry.split('=');
    if (!region || !key || rest.length > 0 || !REGION.test(region.trim())) {
      const what = entries.length === 1 ? 'is' : `: entry ${quoteShort(entry)} is`;
      fail(keys.copyKmsKey, rawKeys, `${what} not region=key`);
      continue;
    }
    kmsKeys[region.trim()] = key.trim();
  }
  return kmsKeys;
}

/** `share-with`: 12-digit account ids, each once. */
function readShareWith(tags: TagMap, keys: TagKeys, fail: Fail): string[] {
  const shareWith: string[] = [];
  const rawShare = tags[keys.shareWith];
  if (rawShare === undefined) return shareWith;
  const accounts = list(rawShare);
  for (const account of accounts) {
    if (!ACCOUNT.test(account)) {
      fail(keys.shareWith, rawShare, `${partOf(accounts, account)} not a 12-digit account id`);
    } else if (!shareWith.includes(account)) {
      shareWith.push(account);
    }
  }
  return shareWith;
}

/**
 * The tags of a copy: the source's own snapkeeper tags (and Name, and copied tags),
 * plus where it came from and the policy at copy time, since the destination region
 * cannot see the instance.
 *
 * @example
 * copyTags(source.tags, keys, { volumeId: 'vol-1', snapshotId: 'snap-1' }, 'us-east-1', 7);
 */
export function copyTags(
  sourceTags: TagMap,
  keys: TagKeys,
  source: {
    volumeId?: string | undefined;
    snapshotId?: string | undefined;
    imageId?: string | undefined;
  },
  sourceRegion: string,
  retain: number | undefined,
): { Key: string; Value: string }[] {
  const reserved = new Set([
    keys.sourceVolumeId,
    keys.sourceSnapshotId,
    keys.sourceImageId,
    keys.sourceRegion,
    keys.copyRetain,
  ]);
  const tags = Object.entries(sourceTags)
    .filter(([key]) => !key.toLowerCase().startsWith('aws:') && !reserved.has(key))
    .map(([Key, Value]) => ({ Key, Value }));
  const added = [
    ...(source.volumeId ? [{ Key: keys.sourceVolumeId, Value: source.volumeId }] : []),
    ...(source.snapshotId ? [{ Key: keys.sourceSnapshotId, Value: source.snapshotId }] : []),
    ...(source.imageId ? [{ Key: keys.sourceImageId, Value: source.imageId }] : []),
    { Key: keys.sourceRegion, Value: sourceRegion },
    // No count when the source's rule could not be read: destination retention keeps all.
    ...(retain !== undefined ? [{ Key: keys.copyRetain, Value: String(retain) }] : []),
  ];
  return [...tags.slice(0, 50 - added.length), ...added];
}

/** The volume id EC2 reports for every copied snapshot: it names no real volume. */
export const COPY_VOLUME_ID = 'vol-ffffffff';

const VOLUME_ID = /^vol-[\w-]+$/;

/**
 * The lineage a copy in a destination belongs to, for its retention: snapshot copies by
 * the source volume recorded on the copy (`source-volume-id`) and schedule, AMI copies by
 * instance and schedule. Never the copy's own volume id, which EC2 reports as
 * `vol-ffffffff` for every copy. A copy without a usable record has no lineage
 * (`undefined`): it is kept and reported, never pooled with others.
 *
 * @example
 * copyLineageKey('snapshot', { 'snapkeeper:source-volume-id': 'vol-0a1b2c3d', 'snapkeeper:schedule': 'daily' }, keys);
 * // 'snapshot|vol-0a1b2c3d|daily'
 */
export function copyLineageKey(
  kind: 'snapshot' | 'image',
  tags: TagMap,
  keys: TagKeys,
): string | undefined {
  const schedule = tags[keys.schedule];
  if (!schedule) return undefined;
  if (kind === 'image') {
    const instanceId = tags[keys.instanceId];
    return instanceId && /^i-[\w-]+$/.test(instanceId)
      ? `image|${instanceId}|${schedule}`
      : undefined;
  }
  const volumeId = tags[keys.sourceVolumeId];
  if (!volumeId || volumeId === COPY_VOLUME_ID || !VOLUME_ID.test(volumeId)) return undefined;
  return `snapshot|${volumeId}|${schedule}`;
}

/**
 * The count a copy carries (`copy-retain`, a whole number from 1 to 1000), or
 * `undefined` when it carries none or an unreadable one: its lineage is then kept whole,
 * never trimmed to a guessed count.
 *
 * @example
 * readCarriedCount({ 'snapkeeper:copy-retain': '10' }, keys); // 10
 * readCarriedCount({ 'snapkeeper:copy-retain': '1e3' }, keys); // undefined
 */
export function readCarriedCount(tags: TagMap, keys: TagKeys): number | undefined {
  const raw = tags[keys.copyRetain]?.trim();
  if (raw === undefined || !/^\d{1,4}$/.test(raw)) return undefined;
  const count = Number(raw);
  return count >= 1 && count <= MAX_RETAIN_COUNT ? count : undefined;
}

/**
 * Whether a copy of `candidate` made now would survive the destination's retention of
 * its lineage (the copies already there, with the lineage's count): a source whose copy
 * retention removed, or would remove at once, is not copied again. With no count, or
 * while the lineage is failing, everything stays and the copy is made.
 *
 * @example
 * copyWouldBeKept({ id: 'snap-old', createdAt: tenDaysAgo }, copies, 3, now); // false
 */
export function copyWouldBeKept(
  candidate: { readonly id: string; readonly createdAt: Date },
  copies: readonly RecoveryPoint[],
  count: number | undefined,
  now: Date,
): boolean {
  if (count === undefined) return true;
  const point: RecoveryPoint = {
    id: `candidate:${candidate.id}`,
    state: 'completed',
    createdAt: candidate.createdAt,
    managed: true,
  };
  const plan = planRetention(
    [...copies.filter((c) => c.id !== point.id), point],
    { count },
    { now, timezone: 'UTC', orphan: true, intervalMs: 86_400_000 },
  );
  return plan.decisions.find((d) => d.id === point.id)?.action !== 'delete';
}

/** What to grant and revoke to share a resource with exactly the listed accounts. */
export interface SharePlan {
  readonly add: readonly string[];
  readonly remove: readonly string[];
  /** Set when the resource cannot be shared, with the fix. */
  readonly blocked?: string | undefined;
}

/**
 * The share plan of one snapshot or AMI: grant the listed accounts, revoke the others.
 * A resource encrypted with the default `aws/ebs` key cannot be shared at all.
 *
 * @example
 * planShare(['111122223333'], ['444455556666'], false); // { add: ['111122223333'], remove: ['444455556666'] }
 */
export function planShare(
  wanted: readonly string[],
  granted: readonly string[],
  encryptedWithDefaultKey: boolean,
): SharePlan {
  const add = wanted.filter((a) => !granted.includes(a));
  const remove = granted.filter((a) => a !== 'all' && !wanted.includes(a));
  if (encryptedWithDefaultKey && add.length > 0) {
    return {
      add: [],
      remove,
      blocked:
        'encrypted with the default aws/ebs key, which cannot be shared: copy it with a customer-managed KMS key (snapkeeper:copy-kms-key) and share the copy, or back the volume up from a volume encrypted with a customer-managed key',
    };
  }
  return { add, remove };
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
}
