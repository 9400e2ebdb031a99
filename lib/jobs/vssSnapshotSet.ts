/**
 * VSS-enabled snapshot sets of Windows instances (issue 21, part 1, `vss`): AWS's own
 * Run Command document `AWSEC2-CreateVssSnapshot` freezes the VSS writers and makes the
 * snapshots of the instance's volumes itself, tagged with what snapkeeper passes in its
 * `tags` parameter. snapkeeper then finds the set by its slot, run and instance tags,
 * records it like any set, and falls back to a crash-consistent `CreateSnapshots` set
 * (reported) when the document fails or does not finish in time.
 */
import type { CreatedSnapshot } from '../aws/Ec2Gateway.ts';
import type { SnapshotSetRequest, Tag } from '../domain/backupPlan.ts';
import {
  type ConsistencyChoice,
  consistencyTags,
  DEFAULT_VSS_TIMEOUT_SECONDS,
  formatConsistency,
  VSS_DOCUMENT,
} from '../domain/consistency.ts';
import type { TagKeys } from '../domain/tagKeys.ts';
import {
  addProblem,
  type ConsistencyDependencies,
  type ConsistentSetResult,
  fallBack,
  preFailureReason,
  type ScriptRun,
  sendAndWait,
} from './consistentSnapshotSet.ts';
import type { Ec2Port } from './ports.ts';

/** The document's `tags` parameter is `Key=k,Value=v;Key=k2,Value=v2`: these cannot be inside. */
const TAG_SEPARATORS = /[,;]/;

/** Tag keys AWSEC2-CreateVssSnapshot reserves for itself (passing one fails the command). */
const RESERVED_TAGS = new Set(['Device', 'AppConsistent', 'AwsVssConfig']);

/** What the VSS step needs beyond the Run Command dependencies. */
export interface VssDependencies extends ConsistencyDependencies {
  readonly keys: Pick<TagKeys, 'consistency' | 'consistencyReason' | 'prefix'>;
}

/**
 * The document's parameters for one set, or the reason the set cannot go through it.
 * Only snapkeeper's own tags are passed (deployment, managed, schedule, slot, instance,
 * run id, created-at, retain policy, and `consistency=app`): copied tags (`Name`,
 * `COPY_TAGS`) are not on VSS sets.
 *
 * @example
 * vssParameters(request, keys); // { parameters: { ExcludeBootVolume: ['False'], ..., tags: ['Key=snapkeeper:managed,Value=true;...'] } }
 */
export function vssParameters(
  request: SnapshotSetRequest,
  keys: VssDependencies['keys'],
): { readonly parameters: Record<string, string[]> } | { readonly refused: string } {
  if (request.excludeDataVolumeIds.length > 0) {
    return {
      refused: `AWSEC2-CreateVssSnapshot snapshots every attached data volume and cannot leave out ${request.excludeDataVolumeIds.join(', ')} (tagged to skip)`,
    };
  }
  const own = request.tags.filter(
    (t) => t.Key.startsWith(keys.prefix) && t.Key !== keys.consistencyReason,
  );
  const tags: Tag[] = [
    ...own.filter((t) => t.Key !== keys.consistency),
    ...consistencyTags(keys, 'app', '').slice(0, 1),
  ];
  const unsendable = tags.filter(
    (t) => RESERVED_TAGS.has(t.Key) || TAG_SEPARATORS.test(t.Key) || TAG_SEPARATORS.test(t.Value),
  );
  if (unsendable.length > 0) {
    return {
      refused: `the document's tags parameter cannot carry ${unsendable.map((t) => `${t.Key}=${t.Value}`).join(', ')} (a "," or ";" in a tag, or a key the document reserves)`,
    };
  }
  return {
    parameters: {
      ExcludeBootVolume: [request.excludeBootVolume ? 'True' : 'False'],
      NoWriters: ['False'],
      CopyOnly: ['False'],
      CreateAmi: ['False'],
      description: [request.description.slice(0, 255)],
      tags: [tags.map((t) => `Key=${t.Key},Value=${t.Value}`).join(';')],
    },
  };
}

/**
 * Makes one instance's set through AWSEC2-CreateVssSnapshot:
 * 1. `find` first (one read): a set of this slot already made for the instance (a retried slot, or
 *    an earlier attempt whose answer was lost) is the set: the document is not sent again;
 * 2. SendCommand of the document with snapkeeper's tags, waited for at most the VSS
 *    timeout (`CONSISTENCY_VSS_TIMEOUT_SECONDS`);
 * 3. `find` again, patiently (the re-reads of a lagging describe are `find`'s): the set
 *    is `app` (a set found after a failed or timed-out document is kept, reported);
 * 4. when none is found, the crash-consistent fallback through `create` — or with `vss!` no set: skipped and reported.
 *
 * Never throws for SSM's sake: every SSM failure is in the record.
 *
 * @example
 * const r = await takeVssSet(request, choice, (req) => createSet(req), (req) => findSet(req), deps);
 */
export async function takeVssSet<T>(
  request: SnapshotSetRequest,
  choice: ConsistencyChoice,
  create: (request: SnapshotSetRequest) => Promise<T>,
  find: (request: SnapshotSetRequest, patient: boolean) => Promise<T | undefined>,
  deps: VssDependencies,
): Promise<ConsistentSetResult<T>> {
  const { mode } = choice;
  const requested = formatConsistency(mode);
  const appRecord = (reason: string, vss?: ScriptRun) => ({
    requested,
    outcome: 'app' as const,
    reason,
    ...(vss ? { pre: vss } : {}),
    problems: [] as string[],
  });
  const before = await findQuietly(request, find, false, deps);
  if (before !== undefined) {
    return {
      kind: 'created',
      value: before,
      consistency: appRecord(
        `${requested}: this slot's VSS set was already made; the document was not sent again`,
      ),
    };
  }
  const built = vssParameters(request, deps.keys);
  if ('refused' in built) {
    return fallBack(request, mode, requested, built.refused, undefined, create, deps);
  }
  const vss = await sendVss(request.instanceId, built.parameters, deps);
  // Nothing was sent, nothing can have been made: no need to look.
  const found =
    vss.state === 'send-failed' ? undefined : await findQuietly(request, find, true, deps);
  if (found !== undefined) {
    const record = appRecord(`${requested}: ${VSS_DOCUMENT} made the set`, vss);
    const result = { kind: 'created' as const, value: found, consistency: record };
    if (vss.state === 'success') return result;
    return addProblem(
      result,
      `${VSS_DOCUMENT} ended ${vss.state} (${vss.detail}) on ${request.instanceId}, yet made this set: it is kept, tagged app; its AppConsistent tag (written by AWS) says whether VSS froze the writers`,
    );
  }
  const why =
    vss.state === 'success'
      ? `${VSS_DOCUMENT} succeeded but no snapshot of this slot tagged for ${request.instanceId} could be found`
      : preFailureReason(VSS_DOCUMENT, vss, VSS_DOCUMENT);
  return fallBack(request, mode, requested, why, vss, create, deps);
}

async function findQuietly<T>(
  request: SnapshotSetRequest,
  find: (request: SnapshotSetRequest, patient: boolean) => Promise<T | undefined>,
  patient: boolean,
  deps: VssDependencies,
): Promise<T | undefined> {
  try {
    return await find(request, patient);
  } catch (error) {
    deps.logger.warn('could not look for the VSS set', {
      instanceId: request.instanceId,
      error: error instanceof Error ? error.message : String(error),
    });
    return undefined;
  }
}

async function sendVss(
  instanceId: string,
  parameters: Record<string, string[]>,
  deps: VssDependencies,
): Promise<ScriptRun> {
  const timeoutSeconds = deps.vssTimeoutSeconds ?? DEFAULT_VSS_TIMEOUT_SECONDS;
  const limit = deps.preLimit ?? ((fn) => fn());
  const request = {
    instanceId,
    document: VSS_DOCUMENT,
    parameters: { ...parameters, executionTimeout: [String(timeoutSeconds)] },
    deliveryTimeoutSeconds: timeoutSeconds,
    comment: `snapkeeper vss set for ${instanceId}`,
  };
  return limit(() => sendAndWait(request, timeoutSeconds, deps));
}

/** What {@link findVssSet} reads with. */
export interface VssSetReader {
  readonly keys: Pick<TagKeys, 'managed' | 'deployment' | 'schedule' | 'slot' | 'instanceId'>;
  readonly ec2: Pick<Ec2Port, 'listSnapshotsTagged'>;
  /** The waits before each re-read when patient (EC2's describes lag behind creates). */
  readonly waitsMs: readonly number[];
  readonly sleep: (ms: number) => Promise<void>;
  /** Milliseconds left in the invocation: a wait never takes more than half of them. */
  readonly timeLeftMs: () => number;
}

/**
 * The snapshots of this slot's set of the instance (by the request's managed,
 * deployment, schedule, slot and instance tags), or undefined when there are none.
 * Patient, it reads again after each wait until one is listed.
 *
 * @example
 * const set = await findVssSet(request, true, { keys, ec2, waitsMs: [1000, 2000], sleep, timeLeftMs });
 */
export async function findVssSet(
  request: SnapshotSetRequest,
  patient: boolean,
  reader: VssSetReader,
): Promise<CreatedSnapshot[] | undefined> {
  const { keys } = reader;
  const tag = (key: string) => request.tags.find((t) => t.Key === key)?.Value ?? '';
  const filter = {
    [keys.managed]: 'true',
    [keys.deployment]: tag(keys.deployment),
    [keys.schedule]: tag(keys.schedule),
    [keys.slot]: tag(keys.slot),
    [keys.instanceId]: request.instanceId,
  };
  const waits = patient ? reader.waitsMs : [];
  for (let round = 0; ; round += 1) {
    const found: CreatedSnapshot[] = [];
    for await (const s of reader.ec2.listSnapshotsTagged(filter)) {
      if (s.state === 'error') continue;
      found.push({
        snapshotId: s.snapshotId,
        volumeId: s.volumeId,
        sizeGiB: s.sizeGiB,
        state: s.state,
        startTime: s.startTime.toISOString(),
      });
    }
    if (found.length > 0) return found;
    const wait = waits[round];
    if (wait === undefined || wait > reader.timeLeftMs() / 2) return undefined;
    await reader.sleep(wait);
  }
}
