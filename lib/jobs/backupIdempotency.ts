/**
 * A backup slot's exactly-once, in one place (the run itself is in `backupJob.ts`):
 * - the re-read of a resumed slot's own sets: an instance with a set is covered, and a
 *   second set of one instance for one slot is removed ({@link readSlotSets},
 *   {@link coveredResult}, {@link removeDuplicateSets});
 * - the re-read of the run's own snapshots after a CreateSnapshots whose answer may
 *   have been lost (the SDK retried; CreateSnapshots takes no client token, so the run
 *   id tag plays its part): one set is kept, the extra copies deleted
 *   ({@link uncertainAttemptsOf}, {@link reconcileRetriedSet});
 * - the recording of what a create answered, at once ({@link recordCreated}).
 *
 * Every fallback takes the safe side: a pending copy is kept, a deletion is recorded
 * before and after, and what cannot be confirmed is reported (the run is partial).
 */
import type { CreatedSnapshot } from '../aws/Ec2Gateway.ts';
import type { AwsCallError } from '../aws/errors.ts';
import { CreateSnapshotSetError, toAwsCallError } from '../aws/errors.ts';
import type { InstanceBackupDecision } from '../domain/backupPlan.ts';
import { imageOfSnapshot, isDisasterRecoveryCopy } from '../domain/provenance.ts';
import type { SnapshotFacts } from '../domain/snapshotFacts.ts';
import type {
  BackupJobDependencies,
  DuplicateSet,
  InstanceBackupResult,
  RetriedDuplicate,
} from './backupReport.ts';
import { RECONCILE_WAITS_MS } from './backupReport.ts';
import type { Behind } from './historyPipeline.ts';
import type { ActionJournal, ReportedError } from './ports.ts';
import { deleteSnapshotRecorded } from './recordedDeletion.ts';
import { recordAfter } from './runReport.ts';

/** A slot's sets: instance id → run id → the snapshots that run made for the slot. */
export type SlotSets = Map<string, Map<string, SnapshotFacts[]>>;

/** A due instance's decision (the planner's `not-due` is filtered out before). */
export type DueDecision = Exclude<InstanceBackupDecision, { kind: 'not-due' }>;

/**
 * The sets already made for the slot, by instance and run (a batch reads only its own
 * instances'). Neither a disaster-recovery copy nor an AMI's snapshot is a set of the slot.
 *
 * @example
 * const sets = await readSlotSets(deps, 'daily', '2026-11-23T03:00Z');
 */
export async function readSlotSets(
  deps: BackupJobDependencies,
  schedule: string,
  slot: string,
  instanceIds?: readonly string[],
): Promise<SlotSets> {
  const { keys, deployment } = deps.config;
  const sets: SlotSets = new Map();
  const filter: Record<string, string | readonly string[]> = {
    [keys.managed]: 'true',
    [keys.deployment]: deployment,
    [keys.schedule]: schedule,
    [keys.slot]: slot,
  };
  // A batch reads only its own instances' sets (EC2 takes up to 200 values a filter).
  const chunks: (readonly string[] | undefined)[] = [];
  if (instanceIds === undefined) chunks.push(undefined);
  else for (let i = 0; i < instanceIds.length; i += 200) chunks.push(instanceIds.slice(i, i + 200));
  for (const chunk of chunks) {
    const tags = chunk ? { ...filter, [keys.instanceId]: chunk } : filter;
    for await (const snapshot of deps.ec2.listSnapshotsTagged(tags)) {
      // Neither a disaster-recovery copy of the slot (another region's deployment of this
      // stage copies with the source's tags) nor an AMI's snapshot is a set of this slot:
      // never covered by them, never removed as duplicates.
      if (isDisasterRecoveryCopy(snapshot.tags, keys) || imageOfSnapshot(snapshot.description))
        continue;
      addSlotSnapshot(sets, snapshot, keys.instanceId, keys.runId);
    }
  }
  return sets;
}

function addSlotSnapshot(
  sets: SlotSets,
  snapshot: SnapshotFacts,
  instanceKey: string,
  runKey: string,
): void {
  const instanceId = snapshot.tags[instanceKey];
  const runId = snapshot.tags[runKey] ?? 'unknown';
  if (!instanceId) return;
  const byRun = sets.get(instanceId) ?? new Map<string, SnapshotFacts[]>();
  const set = byRun.get(runId);
  if (set) set.push(snapshot);
  else byRun.set(runId, [snapshot]);
  sets.set(instanceId, byRun);
}

function oldestSetFirst(a: [string, SnapshotFacts[]], b: [string, SnapshotFacts[]]): number {
  const start = (set: SnapshotFacts[]) => Math.min(...set.map((s) => s.startTime.getTime()));
  return start(a[1]) - start(b[1]) || a[0].localeCompare(b[0]);
}

/**
 * A due instance a resumed slot already backed up: `covered` by the oldest set (its
 * snapshots recorded now, since the run that made them may have died before recording
 * them); `undefined` when the instance has no set yet or is not to be backed up.
 *
 * @example
 * const covered = await coveredResult(decision, slotSets, deps, journal, behind);
 * if (covered) return covered;
 */
export async function coveredResult(
  decision: DueDecision,
  slotSets: SlotSets,
  deps: BackupJobDependencies,
  journal: ActionJournal,
  behind: Behind,
): Promise<InstanceBackupResult | undefined> {
  const existing = slotSets.get(decision.instanceId);
  if (!existing || existing.size === 0 || decision.kind !== 'backup') return undefined;
  const [runId, set] = [...existing.entries()].sort(oldestSetFirst)[0] as [string, SnapshotFacts[]];
  const covered: InstanceBackupResult = {
    instanceId: decision.instanceId,
    name: decision.name,
    outcome: 'covered',
    reason: `already backed up for this slot by run ${runId}`,
    snapshots: set.map((s) => ({
      volumeId: s.volumeId,
      deviceName: decision.request.included.find((v) => v.volumeId === s.volumeId)?.deviceName,
      snapshotId: s.snapshotId,
      sizeGiB: s.sizeGiB,
      state: s.state,
    })),
  };
  // The run that made them may have died before recording them: record them now.
  await recordCreated(
    covered,
    deps,
    journal,
    `made by run ${runId}; recorded by the run that resumed the slot`,
    behind,
  );
  return covered;
}

/**
 * Removes the extra sets of a resumed slot (an instance with sets from two runs keeps
 * the oldest): `planned` in a dry run; a set with a pending snapshot is `kept` (pending
 * snapshots are never deleted); each deletion is recorded before and after. A set left
 * in place is recorded as made, so that nothing of it is unknown.
 *
 * @example
 * const duplicates = await removeDuplicateSets(slotSets, false, deps, journal);
 */
export async function removeDuplicateSets(
  slotSets: SlotSets,
  dryRun: boolean,
  deps: BackupJobDependencies,
  journal: ActionJournal,
): Promise<DuplicateSet[]> {
  const duplicates: DuplicateSet[] = [];
  for (const [instanceId, byRun] of slotSets) {
    if (byRun.size < 2) continue;
    const [keep, ...extra] = [...byRun.entries()].sort(oldestSetFirst);
    const kept = keep?.[0] ?? '';
    for (const [runId, set] of extra) {
      const snapshotIds = set.map((s) => s.snapshotId);
      const outcome = dryRun
        ? 'planned'
        : await removeDuplicateSet(instanceId, runId, set, keep?.[0], deps, journal);
      duplicates.push({ instanceId, runId, kept, snapshotIds, outcome });
    }
  }
  return duplicates;
}

/** Deletes one extra set of the slot (or keeps it, pending), and says what became of it. */
async function removeDuplicateSet(
  instanceId: string,
  runId: string,
  set: readonly SnapshotFacts[],
  keptRunId: string | undefined,
  deps: BackupJobDependencies,
  journal: ActionJournal,
): Promise<DuplicateSet['outcome']> {
  if (set.some((s) => s.state !== 'completed')) {
    // Pending snapshots are never deleted: kept, recorded, and the run is partial.
    deps.logger.warn('duplicate snapshot set for the slot is still pending: kept', {
      instanceId,
      runId,
    });
    await recordDuplicateSet(instanceId, runId, set, 'still pending, so kept', deps, journal);
    return 'kept';
  }
  let outcome: DuplicateSet['outcome'] = 'deleted';
  for (const snapshot of set) {
    const reason = `duplicate set for the slot from run ${runId}; kept the set of run ${keptRunId}`;
    const deleted = await deleteDuplicate(
      snapshot.snapshotId,
      reason,
      { instanceId, volumeId: snapshot.volumeId },
      deps,
      journal,
    );
    if (!deleted) outcome = 'failed';
  }
  if (outcome === 'failed') {
    await recordDuplicateSet(
      instanceId,
      runId,
      set,
      'its deletion failed, so it is kept',
      deps,
      journal,
    );
  }
  deps.logger.warn('duplicate snapshot set for the slot', { instanceId, runId, outcome });
  return outcome;
}

/** Deletes one duplicate snapshot, recorded before and after: true when it is gone. */
async function deleteDuplicate(
  snapshotId: string,
  reason: string,
  details: { readonly instanceId: string; readonly volumeId: string },
  deps: BackupJobDependencies,
  journal: ActionJournal,
): Promise<boolean> {
  const attempt = await deleteSnapshotRecorded(
    {
      runId: deps.runId,
      job: 'backup',
      action: 'delete-snapshot',
      resourceId: snapshotId,
      reason,
      details,
    },
    () => deps.ec2.deleteSnapshot(snapshotId),
    journal,
    deps.logger,
    () => reason,
  );
  return attempt.kind === 'deleted' || attempt.kind === 'gone';
}

/** Records a duplicate set left in place as made (by the run that made it), so that nothing of it is unknown. */
async function recordDuplicateSet(
  instanceId: string,
  runId: string,
  set: readonly SnapshotFacts[],
  why: string,
  deps: BackupJobDependencies,
  journal: ActionJournal,
): Promise<void> {
  await recordCreated(
    {
      instanceId,
      outcome: 'created',
      snapshots: set.map((s) => ({
        volumeId: s.volumeId,
        snapshotId: s.snapshotId,
        sizeGiB: s.sizeGiB,
        state: s.state,
      })),
    },
    deps,
    journal,
    `duplicate set for the slot, made by run ${runId}; ${why}`,
  );
}

/**
 * Records each snapshot of a result as created (`create-snapshot`, after, done), best
 * effort: a journal error is logged, never undoes the snapshot. With `behind` the
 * records of a set go out together, written behind the next creates.
 *
 * @example
 * await recordCreated(result, deps, journal, 'scheduled backup', behind);
 */
export async function recordCreated(
  result: InstanceBackupResult,
  deps: BackupJobDependencies,
  journal: ActionJournal,
  reason = 'scheduled backup',
  behind?: Behind,
): Promise<void> {
  for (const snapshot of result.snapshots ?? []) {
    if (!snapshot.snapshotId) continue;
    const written = recordAfter(journal, deps.logger, {
      runId: deps.runId,
      job: 'backup',
      action: 'create-snapshot',
      resourceId: snapshot.snapshotId,
      outcome: 'done',
      reason,
      details: {
        instanceId: result.instanceId,
        volumeId: snapshot.volumeId,
        deviceName: snapshot.deviceName,
        sizeGiB: snapshot.sizeGiB,
      },
    });
    if (behind) behind.add(written);
    else await written;
  }
}

/**
 * Failures after which a set may exist all the same (the SDK retried, or an answer was
 * lost), for a gateway that does not count its uncertain attempts.
 */
const RETRIED_FAILURES =
  /^(TimeoutError|RequestTimeout|RequestTimeoutException|ETIMEDOUT|ECONNRESET|EPIPE|InternalError|InternalFailure|ServiceUnavailable|Unavailable|RequestLimitExceeded|UnknownError)$/;

/**
 * How many attempts of a CreateSnapshots may have made a set whose answer was lost:
 * from the answer (its attempts beyond the first), or from the error it failed with.
 *
 * @example
 * uncertainAttemptsOf({ answered: [{ ...snapshot, attempts: 2 }] }); // 1
 */
export function uncertainAttemptsOf(
  outcome:
    | { readonly answered: readonly CreatedSnapshot[] }
    | { readonly error: unknown; readonly failure: AwsCallError },
): number {
  if ('answered' in outcome) {
    return Math.max(
      0,
      ...outcome.answered.map((s) => s.uncertainAttempts ?? Math.max(0, (s.attempts ?? 1) - 1)),
    );
  }
  // A create that failed after retries may still have made a set whose answer was lost.
  return outcome.error instanceof CreateSnapshotSetError
    ? outcome.error.uncertainAttempts
    : Number(RETRIED_FAILURES.test(outcome.failure.code));
}

/** What the reconciliation of a retried CreateSnapshots found and did. */
export interface Reconciled {
  /** One snapshot per volume: the answered one, else the first made. */
  readonly kept: CreatedSnapshot[];
  readonly duplicates: RetriedDuplicate[];
  /** Why the run cannot say the instance has exactly one set; the run is partial. */
  readonly error?: ReportedError | undefined;
}

/** The CreateSnapshots to reconcile: the instance, what it asked and answered, and how many attempts are in doubt. */
export interface RetriedCreate {
  readonly instanceId: string;
  readonly volumeIds: readonly string[];
  readonly answered: readonly CreatedSnapshot[];
  readonly uncertain: number;
}

/**
 * After a CreateSnapshots some of whose attempts may have made a set whose answer was
 * lost (`uncertain` of them; CreateSnapshots takes no client token, so the run id tag
 * on every snapshot of the set plays its part): lists the run's snapshots of the
 * instance, and, since EC2's describes are eventually consistent, lists again after
 * each of the waits until every volume shows all the sets that can exist (the answered
 * one and one per uncertain attempt) or the waits run out (or a wait would take more
 * than half the invocation's time left).
 * It keeps one snapshot per volume (the one the answer named, else the first made) and
 * deletes the extra copies, recorded before and after. A pending extra copy is kept and
 * reported: pending snapshots are never deleted.
 *
 * Every fallback reports: a listing that fails every time, or waits that run out with
 * fewer sets than the uncertain attempts could have made, set `error` (the run is
 * partial), naming the run id tag an extra set would carry.
 *
 * @example
 * const reconciled = await reconcileRetriedSet(
 *   { instanceId, volumeIds, answered, uncertain: 1 }, deps, journal, () => 60_000);
 */
export async function reconcileRetriedSet(
  create: RetriedCreate,
  deps: BackupJobDependencies,
  journal: ActionJournal,
  timeLeftMs: () => number,
): Promise<Reconciled> {
  const { keys } = deps.config;
  const { instanceId, answered, uncertain } = create;
  const look = await listUntilVisible(create, deps, timeLeftMs);
  const kept: CreatedSnapshot[] = [...answered];
  const lookFor = `look for snapshots tagged ${keys.runId}=${deps.runId} and ${keys.instanceId}=${instanceId}`;
  if (!look.found) {
    const code = look.lastError?.code ?? 'UnknownError';
    return {
      kept,
      duplicates: [],
      error: {
        code,
        message: `could not list this run’s snapshots of ${instanceId} (${look.reads} tries over ${seconds(look.waited)}: ${look.lastError?.message ?? code}) to look for a second set from a CreateSnapshots attempt whose answer was lost; ${answered.length > 0 ? 'the answered set is recorded; ' : ''}${lookFor}`,
      },
    };
  }
  const duplicates = await keepOnePerVolume(instanceId, look.found, answered, kept, deps, journal);
  await recordExtraCopiesKept(instanceId, duplicates, deps, journal);

  // Fewer sets than the lost answers could have made: one may still appear (eventual consistency).
  if (kept.length === 0 || look.visible) return { kept, duplicates };
  return {
    kept,
    duplicates,
    error: {
      code: 'DuplicateUnconfirmed',
      message: `CreateSnapshots for ${instanceId} was retried, and ${uncertain} attempt${uncertain === 1 ? '' : 's'} may have made a set whose answer was lost; after ${look.reads} listings over ${seconds(look.waited)} fewer sets are visible than could exist, and EC2's describes are eventually consistent: ${lookFor} other than ${kept.map((s) => s.snapshotId).join(', ')}`,
    },
  };
}

/** What the listings of the run's snapshots of an instance found. */
interface Listing {
  /** The last successful listing; absent when every one failed. */
  readonly found?: SnapshotFacts[] | undefined;
  readonly lastError?: AwsCallError | undefined;
  /** Whether every set that can exist was visible in `found`. */
  readonly visible: boolean;
  readonly reads: number;
  readonly waited: number;
}

/** Lists the run's snapshots of the instance until every possible set shows, or the waits run out. */
async function listUntilVisible(
  create: RetriedCreate,
  deps: BackupJobDependencies,
  timeLeftMs: () => number,
): Promise<Listing> {
  const { answered, uncertain, instanceId } = create;
  const waits = deps.reconcile?.waitsMs ?? RECONCILE_WAITS_MS;
  const sleep =
    deps.reconcile?.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  // The sets that can exist for each volume: the answered one, and one per uncertain attempt.
  const possible = (answered.length > 0 ? 1 : 0) + uncertain;
  // The volumes the answer named (EC2 makes one snapshot per volume), else those requested.
  const volumes = new Set(answered.length > 0 ? answered.map((s) => s.volumeId) : create.volumeIds);
  let found: SnapshotFacts[] | undefined;
  let lastError: AwsCallError | undefined;
  let reads = 0;
  let waited = 0;
  for (let round = 0; ; round += 1) {
    try {
      reads += 1;
      found = await listRunSnapshots(instanceId, deps);
      lastError = undefined;
    } catch (error) {
      lastError = toAwsCallError('DescribeSnapshots', error);
      deps.logger.warn('could not list the run’s snapshots of the instance; trying again', {
        instanceId,
        code: lastError.code,
      });
    }
    if (found && allSetsVisible(found, answered, volumes, possible)) break;
    const wait = waits[round];
    // Half the time left stays for the rest of the run.
    if (wait === undefined || wait > timeLeftMs() / 2) break;
    await sleep(wait);
    waited += wait;
  }
  const visible = found !== undefined && allSetsVisible(found, answered, volumes, possible);
  return { found, lastError, visible, reads, waited };
}

async function listRunSnapshots(
  instanceId: string,
  deps: BackupJobDependencies,
): Promise<SnapshotFacts[]> {
  const { keys, deployment } = deps.config;
  const listed: SnapshotFacts[] = [];
  for await (const snapshot of deps.ec2.listSnapshotsTagged({
    [keys.managed]: 'true',
    [keys.deployment]: deployment,
    [keys.runId]: deps.runId,
    [keys.instanceId]: instanceId,
  })) {
    listed.push(snapshot);
  }
  return listed;
}

/**
 * Keeps one snapshot per volume (the answered one, else the first made; added to
 * `kept` when not answered) and deletes the others, recorded; a pending one is kept.
 */
async function keepOnePerVolume(
  instanceId: string,
  found: readonly SnapshotFacts[],
  answered: readonly CreatedSnapshot[],
  kept: CreatedSnapshot[],
  deps: BackupJobDependencies,
  journal: ActionJournal,
): Promise<RetriedDuplicate[]> {
  const answeredIds = new Set(answered.map((s) => s.snapshotId));
  const duplicates: RetriedDuplicate[] = [];
  const byVolume = new Map<string, SnapshotFacts[]>();
  for (const snapshot of found) {
    byVolume.set(snapshot.volumeId, [...(byVolume.get(snapshot.volumeId) ?? []), snapshot]);
  }
  for (const [volumeId, sets] of byVolume) {
    const answeredHere = answered.find((s) => s.volumeId === volumeId);
    const ordered = [...sets].sort(
      (a, b) =>
        a.startTime.getTime() - b.startTime.getTime() || a.snapshotId.localeCompare(b.snapshotId),
    );
    // The answered snapshot is kept even when the describe does not list it yet.
    const keepId = answeredHere?.snapshotId ?? ordered[0]?.snapshotId;
    const keep = ordered.find((s) => s.snapshotId === keepId);
    if (keep && !answeredIds.has(keep.snapshotId)) {
      kept.push({
        snapshotId: keep.snapshotId,
        volumeId,
        sizeGiB: keep.sizeGiB,
        state: keep.state,
      });
    }
    for (const snapshot of ordered) {
      if (snapshot.snapshotId === keepId) continue;
      if (snapshot.state !== 'completed') {
        duplicates.push({ snapshotId: snapshot.snapshotId, volumeId, outcome: 'kept' });
        continue;
      }
      const reason = `duplicate of ${keepId} from a retried CreateSnapshots whose answer was lost`;
      const deleted = await deleteDuplicate(
        snapshot.snapshotId,
        reason,
        { instanceId, volumeId },
        deps,
        journal,
      );
      duplicates.push({
        snapshotId: snapshot.snapshotId,
        volumeId,
        outcome: deleted ? 'deleted' : 'failed',
      });
    }
  }
  return duplicates;
}

/** An extra copy left in place is recorded as made by this run, so that nothing of it is unknown. */
async function recordExtraCopiesKept(
  instanceId: string,
  duplicates: readonly RetriedDuplicate[],
  deps: BackupJobDependencies,
  journal: ActionJournal,
): Promise<void> {
  for (const duplicate of duplicates) {
    if (duplicate.outcome === 'deleted') continue;
    await recordCreated(
      {
        instanceId,
        outcome: 'created',
        snapshots: [
          { volumeId: duplicate.volumeId, snapshotId: duplicate.snapshotId, state: 'extra' },
        ],
      },
      deps,
      journal,
      duplicate.outcome === 'kept'
        ? `extra copy from a retried CreateSnapshots whose answer was lost; still pending, so kept (pending snapshots are never deleted)`
        : `extra copy from a retried CreateSnapshots whose answer was lost; its deletion failed, so it is kept`,
    );
  }
}

/** Whether every volume shows every set that can exist (an answered snapshot counts even before it is listed). */
function allSetsVisible(
  found: readonly SnapshotFacts[],
  answered: readonly CreatedSnapshot[],
  volumes: ReadonlySet<string>,
  possible: number,
): boolean {
  for (const volumeId of volumes) {
    const seen = new Set(found.filter((s) => s.volumeId === volumeId).map((s) => s.snapshotId));
    for (const snapshot of answered)
      if (snapshot.volumeId === volumeId) seen.add(snapshot.snapshotId);
    if (seen.size < possible) return false;
  }
  return true;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}
