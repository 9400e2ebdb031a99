import { copyLineageKey, copyWouldBeKept, readCarriedCount } from './copyPolicy.ts';
import type { ImageFacts } from './imagePlan.ts';
import { toImagePoint } from './imageRetirement.ts';
import { type Ownership, ownershipOf } from './provenance.ts';
import { planRetention, type RecoveryPoint } from './retentionPlan.ts';
import { isManagedBy, type SnapshotFacts, toRecoveryPoint } from './snapshotFacts.ts';
import type { TagKeys } from './tagKeys.ts';
import type { TagMap } from './tagPolicy.ts';

/** What a copy is: a snapshot copy or an AMI copy. */
export type CopyKind = 'snapshot' | 'image';

/** The copies of one lineage in a destination, with the count its newest copy carries. */
export interface CopyLineage {
  readonly kind: CopyKind;
  readonly points: readonly RecoveryPoint[];
  /** Undefined when the newest copy carries no readable count: the lineage is kept whole. */
  readonly count: number | undefined;
  /** The newest copy's creation time, in epoch milliseconds. */
  readonly newest: number;
  readonly newestId: string;
}

/** A managed copy that names no lineage: kept and reported. */
export interface UnkeyedCopy {
  readonly id: string;
  readonly kind: CopyKind;
}

/** The copies of one destination, grouped for retention. */
export interface CopyLineages {
  readonly lineages: ReadonlyMap<string, CopyLineage>;
  readonly unkeyed: readonly UnkeyedCopy[];
}

/** The day's interval the destination's planner is given: it cannot see the schedule. */
const DAY_MS = 86_400_000;

/**
 * The destination's copies by lineage ({@link copyLineageKey}): snapshot copies by the
 * recorded source volume and schedule, never by their own volume id (`vol-ffffffff` on
 * AWS); the snapshots behind an AMI copy belong to that copy and are left out. Managed
 * copies that name no lineage come back as `unkeyed`: kept and reported. A lineage's
 * count is the one its newest copy carries (the latest policy wins; at the same instant,
 * the larger id).
 *
 * @example
 * const { lineages, unkeyed } = copyLineages(copies, images, keys, 'prod', now, holders);
 * lineages.get('snapshot|vol-0a1b2c3d|daily')?.count; // 7
 */
export function copyLineages(
  copies: readonly SnapshotFacts[],
  images: readonly ImageFacts[],
  keys: TagKeys,
  deployment: string,
  now: Date,
  holders: ReadonlyMap<string, readonly string[]> = new Map(),
): CopyLineages {
  const lineages = new Map<string, Mutable<CopyLineage> & { points: RecoveryPoint[] }>();
  const unkeyed: UnkeyedCopy[] = [];
  const add = (kind: CopyKind, tags: TagMap, point: RecoveryPoint) => {
    const key = copyLineageKey(kind, tags, keys);
    if (key === undefined) {
      if (point.managed) unkeyed.push({ id: point.id, kind });
      return;
    }
    const count = readCarriedCount(tags, keys);
    const at = point.createdAt.getTime();
    const known = lineages.get(key);
    const group = known ?? { kind, points: [], count, newest: at, newestId: point.id };
    group.points.push(point);
    // Two copies made at the same instant: the larger id is the newest, as the planner
    // orders them, so the count read does not depend on the listing's order.
    if (known && (at > known.newest || (at === known.newest && point.id > known.newestId))) {
      known.newest = at;
      known.newestId = point.id;
      known.count = count;
    }
    lineages.set(key, group);
  };
  for (const copy of copies) {
    if (copy.tags[keys.sourceImageId] !== undefined) continue;
    add('snapshot', copy.tags, toRecoveryPoint(copy, keys, deployment, holders, now));
  }
  const noUsage = new Map<string, string[]>();
  for (const image of images) {
    add('image', image.tags, toImagePoint(image, keys, deployment, noUsage, now));
  }
  return { lineages, unkeyed };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A source about to be copied into a destination, as the retirement check reads it. */
export interface CopyCandidate {
  readonly kind: CopyKind;
  readonly sourceId: string;
  /** When the source was taken (its `created-at` tag, else EC2's time). */
  readonly createdAt: Date;
  /** The count its copy would carry; undefined when none can be read. */
  readonly count: number | undefined;
  /** The tags its copy would name its lineage by (the source volume recorded for a snapshot). */
  readonly lineageTags: TagMap;
}

/**
 * Why a source is not copied into `region` again, or `undefined` to copy it: a source
 * older than every copy its lineage keeps there was copied before and its copy retired
 * (or would be retired at once by {@link planCopyRetention}). A source newer than the
 * lineage's newest copy brings its own count; an older one is judged by the lineage's.
 *
 * @example
 * retiredSourceReason({ kind: 'snapshot', sourceId: 'snap-old', createdAt, count: 3, lineageTags }, { lineages, keys, region: 'eu-west-1', now });
 * // 'older than the 3 copies kept in eu-west-1: copy retention removed (or would remove) its copy, so it is not copied again'
 */
export function retiredSourceReason(
  candidate: CopyCandidate,
  destination: {
    readonly lineages: ReadonlyMap<string, CopyLineage>;
    readonly keys: TagKeys;
    readonly region: string;
    readonly now: Date;
  },
): string | undefined {
  const key = copyLineageKey(candidate.kind, candidate.lineageTags, destination.keys);
  const lineage = key === undefined ? undefined : destination.lineages.get(key);
  if (!lineage) return undefined;
  const count = candidate.createdAt.getTime() >= lineage.newest ? candidate.count : lineage.count;
  const point = { id: candidate.sourceId, createdAt: candidate.createdAt };
  if (copyWouldBeKept(point, lineage.points, count, destination.now)) return undefined;
  return `older than the ${count} copies kept in ${destination.region}: copy retention removed (or would remove) its copy, so it is not copied again`;
}

/** Everything one destination's copy retention plans from, already read; nothing to call. */
export interface CopyRetentionInput {
  /** This deployment's snapshot copies in the destination, those behind AMI copies included. */
  readonly copies: readonly SnapshotFacts[];
  /** This deployment's AMI copies in the destination. */
  readonly images: readonly ImageFacts[];
  /** Snapshot id → the registered images that use it. */
  readonly holders: ReadonlyMap<string, readonly string[]>;
  /** Which copies the run history recorded this job making (`copy`), or the tags alone. */
  readonly ownership: Ownership;
  readonly keys: TagKeys;
  readonly deployment: string;
  readonly now: Date;
}

/** A copy retention keeps and says why; `problem`, when set, is also a problem of the run. */
export interface KeptCopy {
  readonly resourceId: string;
  readonly reason: string;
  readonly problem?: string | undefined;
}

/** A copy retention removes: a snapshot copy, or an AMI copy with the snapshots behind it. */
export type CopyRemoval =
  | { readonly kind: 'snapshot'; readonly id: string; readonly reason: string }
  | {
      readonly kind: 'image';
      readonly id: string;
      readonly reason: string;
      /** Its snapshots: they go with it (after it is deregistered), never on their own. */
      readonly snapshotIds: readonly string[];
    };

/** One destination's copy retention plan. */
export interface CopyRetentionPlan {
  /**
   * Set when nothing may be deleted at all (the run history cannot be read, so which
   * copies this job made is unknown): the reason, and `kept` and `remove` are empty.
   */
  readonly halted?: string | undefined;
  /** Copies kept with a reason the report shows: not ours, in no lineage, or of a lineage with no count. */
  readonly kept: readonly KeptCopy[];
  /** What goes, lineage by lineage, oldest decisions in the planner's order. */
  readonly remove: readonly CopyRemoval[];
}

/**
 * Plans retention of the copies in one destination region. Pure: every fact comes in as
 * an argument. The rules, each tested as a property:
 * 1. only copies this deployment made go: tagged as ours and, with run history, recorded
 *    as a copy (or made before records were kept); the others are kept and reported;
 * 2. copies are grouped by lineage ({@link copyLineages}) and each lineage is planned with
 *    the shared {@link planRetention} as an orphan (the destination cannot see the
 *    instance): the newest copy always stays, never fewer than the count the newest copy
 *    carries, never a pending copy, never a snapshot a registered image uses;
 * 3. a lineage whose newest copy carries no readable count is kept whole, and a managed
 *    copy that names no lineage is kept: both reported;
 * 4. the snapshots behind an AMI copy go only with it (listed on its removal);
 * 5. the plan does not depend on the order the copies were listed in.
 *
 * @example
 * const plan = planCopyRetention({ copies, images, holders, ownership, keys, deployment: 'prod', now });
 * plan.remove.map((r) => r.id); // ['snap-0old', 'ami-0old']
 */
export function planCopyRetention(input: CopyRetentionInput): CopyRetentionPlan {
  const { keys, ownership, now } = input;
  if (ownership.kind === 'unreadable') {
    return {
      halted: `kept: the run history cannot be read (${ownership.reason}), so which copies this job made is unknown; nothing deleted`,
      kept: [],
      remove: [],
    };
  }
  const unowned = unownedCopies(input);
  const kept: KeptCopy[] = [...unowned].map(([resourceId, reason]) => ({ resourceId, reason }));
  const { lineages, unkeyed } = copyLineages(
    input.copies.filter((c) => !unowned.has(c.snapshotId)),
    input.images.filter((i) => !unowned.has(i.imageId)),
    keys,
    input.deployment,
    now,
    input.holders,
  );
  for (const copy of unkeyed) {
    const reason = `kept: the ${copy.kind === 'snapshot' ? `source volume (${keys.sourceVolumeId})` : `instance (${keys.instanceId})`} or schedule it was copied from is not recorded on it, so it belongs to no lineage; delete it by hand if it is not needed`;
    kept.push({ resourceId: copy.id, reason, problem: `copy ${copy.id} ${reason}` });
  }
  for (const group of lineages.values()) {
    if (group.count !== undefined) continue;
    const reason = `kept: the newest copy of this lineage (${group.newestId}) carries no readable ${keys.copyRetain}, so none of its ${group.points.length} copies is deleted; set ${keys.copyRetain} on the instance`;
    kept.push({ resourceId: group.newestId, reason, problem: reason });
  }
  const imageSnapshots = new Map(input.images.map((i) => [i.imageId, i.snapshotIds]));
  const remove: CopyRemoval[] = [];
  for (const group of lineages.values()) {
    if (group.count === undefined) continue;
    // The destination cannot see the instance: like an orphan, the last copy always stays.
    const plan = planRetention(
      group.points,
      { count: group.count },
      { now, timezone: 'UTC', orphan: true, intervalMs: DAY_MS },
    );
    for (const { id, action, reason } of plan.decisions) {
      if (action !== 'delete') continue;
      remove.push(
        group.kind === 'snapshot'
          ? { kind: 'snapshot', id, reason }
          : { kind: 'image', id, reason, snapshotIds: imageSnapshots.get(id) ?? [] },
      );
    }
  }
  return { kept, remove };
}

/**
 * The managed copies this job did not make (by the run history), with the reason each
 * is kept. The snapshots behind an AMI copy are judged by their image, not one by one.
 */
function unownedCopies(input: CopyRetentionInput): Map<string, string> {
  const { keys, deployment, ownership } = input;
  const unowned = new Map<string, string>();
  for (const c of input.copies) {
    if (c.tags[keys.sourceImageId] !== undefined) continue;
    const verdict = ownershipOf(c.snapshotId, 'copy', c.startTime, ownership);
    if (!verdict.owned && isManagedBy(c.tags, keys, deployment))
      unowned.set(c.snapshotId, verdict.reason);
  }
  for (const i of input.images) {
    const verdict = ownershipOf(i.imageId, 'copy', i.creationDate ?? new Date(0), ownership);
    if (!verdict.owned && isManagedBy(i.tags, keys, deployment))
      unowned.set(i.imageId, verdict.reason);
  }
  return unowned;
}
