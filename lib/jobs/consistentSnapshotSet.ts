/**
 * Application-consistent snapshot sets (issue 21, part 1): the pre script through Run
 * Command, a bounded wait, the snapshot call, and the post script — always, after the
 * snapshot call succeeded, failed or threw, whenever a pre script was sent.
 */
import pLimit from 'p-limit';
import type { SnapshotSetRequest, Tag } from '../domain/backupPlan.ts';
import {
  type ConsistencyChoice,
  type ConsistencyMode,
  type ConsistencyOutcome,
  consistencyDocument,
  consistencyTags,
  DEFAULT_PRE_TIMEOUT_SECONDS,
  formatConsistency,
  onPreFailure,
} from '../domain/consistency.ts';
import type { RunCommandRequest } from '../domain/runCommand.ts';
import type { TagKeys } from '../domain/tagKeys.ts';
import type { CommandInvocationState, LoggerPort, RunCommandPort } from './ports.ts';

/**
 * The most pre scripts one run keeps in flight at once (SendCommand to a final state):
 * Run Command's own limits are per account and region, and one run's sets of a fleet
 * must not crowd them; post scripts are never held back (a frozen filesystem waits).
 */
export const MAX_COMMANDS_IN_FLIGHT = 10;

/** EC2 allows 50 tags per resource. */
const MAX_TAGS = 50;

/** How long the snapshot call may take after the pre script, inside the freeze bound. */
export const SNAPSHOT_CALL_BUDGET_SECONDS = 60;

/** What the consistency step needs. */
export interface ConsistencyDependencies {
  readonly ssm: RunCommandPort;
  readonly keys: Pick<TagKeys, 'consistency' | 'consistencyReason'>;
  readonly logger: LoggerPort;
  /** The wait for the pre (and post) script, in seconds (`CONSISTENCY_TIMEOUT_SECONDS`). */
  readonly timeoutSeconds?: number | undefined;
  /** The wait for AWSEC2-CreateVssSnapshot, in seconds (`CONSISTENCY_VSS_TIMEOUT_SECONDS`). */
  readonly vssTimeoutSeconds?: number | undefined;
  /** The deployment's fsfreeze document (`CONSISTENCY_FSFREEZE_DOCUMENT`), `snapkeeper-fsfreeze` by default. */
  readonly fsfreezeDocument?: string | undefined;
  /**
   * The operator's documents the stack allows (`CONSISTENCY_DOCUMENTS`): an `ssm:` mode
   * naming another falls back (or skips with `!`) before any call. Unchecked when absent.
   */
  readonly allowedDocuments?: readonly string[] | undefined;
  /** Limits the pre scripts in flight across the run (Run Command's limits); posts never wait. */
  readonly preLimit?: (<T>(fn: () => Promise<T>) => Promise<T>) | undefined;
  readonly sleep?: ((ms: number) => Promise<void>) | undefined;
  readonly now?: (() => number) | undefined;
  /** Between two GetCommandInvocation calls, in ms (1,000 by default). */
  readonly pollMs?: number | undefined;
}

/** How one script ran. */
export interface ScriptRun {
  readonly commandId?: string | undefined;
  readonly state: CommandInvocationState['state'] | 'not-sent' | 'send-failed' | 'wait-failed';
  readonly detail: string;
}

/** What the consistency step did for one set; travels in the run report and history. */
export interface ConsistencyRecord {
  /** The mode asked for, e.g. `fsfreeze!`. */
  readonly requested: string;
  /** What the set got; `skipped` when `!` forbade the fallback (no set made); `planned` in a dry run. */
  readonly outcome: ConsistencyOutcome | 'skipped' | 'planned';
  readonly reason: string;
  readonly pre?: ScriptRun | undefined;
  readonly post?: ScriptRun | undefined;
  /** Problems to report (the run is partial): a fallback, a failed post script. */
  readonly problems: readonly string[];
}

/** The set (or the create's error) and what the consistency step did. */
export type ConsistentSetResult<T> =
  | { readonly kind: 'created'; readonly value: T; readonly consistency: ConsistencyRecord }
  | {
      readonly kind: 'create-failed';
      readonly error: unknown;
      readonly consistency: ConsistencyRecord;
    }
  | { readonly kind: 'skipped'; readonly consistency: ConsistencyRecord };

/**
 * A limiter for the pre scripts in flight in one run, like EC2's paced pool.
 *
 * @example
 * const preLimit = commandsInFlight(10);
 */
export function commandsInFlight(limit: number): <T>(fn: () => Promise<T>) => Promise<T> {
  const limiter = pLimit(Math.max(1, limit));
  return (fn) => limiter(fn);
}

/**
 * Makes one instance's snapshot set with the chosen consistency:
 * - `crash`: `create` at once, tagged `crash` (or `crash-fallback` when the tag was unreadable);
 * - `fsfreeze` / `ssm:<doc>`: the pre script (`command=pre-script`), a wait of at most
 *   the timeout, then `create` tagged `app`; if the instance is not managed, or the pre
 *   script fails or times out, `create` tagged `crash-fallback` with the reason — or,
 *   with `!`, no set: skipped and reported. The post script (`command=post-script`)
 *   runs whenever a pre script was sent, after `create` answered or threw;
 * - `vss`: here a reported `crash-fallback` (skipped with `!`); the backup run takes the
 *   VSS path itself through `takeVssSet` (vssSnapshotSet.ts), which can find the set the
 *   document makes.
 *
 * `create` receives the request with the consistency tags added (tagged at creation).
 * Never throws for SSM's sake: every SSM failure is in the record.
 *
 * @example
 * const r = await takeConsistentSet(request, choice, (req) => ec2.createSnapshotSet(req), deps);
 */
export async function takeConsistentSet<T>(
  request: SnapshotSetRequest,
  choice: ConsistencyChoice,
  create: (request: SnapshotSetRequest) => Promise<T>,
  deps: ConsistencyDependencies,
): Promise<ConsistentSetResult<T>> {
  const { mode } = choice;
  const requested = formatConsistency(mode);
  const document = consistencyDocument(mode, deps.fsfreezeDocument);
  if (mode.kind === 'crash' || document === undefined) {
    const outcome = choice.problem ? 'crash-fallback' : 'crash';
    const reason = choice.problem ?? `crash (${choice.source})`;
    const record = {
      requested,
      outcome,
      reason,
      problems: choice.problem ? [choice.problem] : [],
    } as const;
    return createTagged(request, record, create, deps);
  }
  if (mode.kind === 'vss') {
    return fallBack(request, mode, requested, VSS_NOT_SUPPORTED, undefined, create, deps);
  }

  if (
    mode.kind === 'ssm' &&
    deps.allowedDocuments !== undefined &&
    !deps.allowedDocuments.includes(mode.document)
  ) {
    const why = `the document ${mode.document} is not listed in CONSISTENCY_DOCUMENTS (custom.consistency.documents), so the stack's IAM refuses to send it: list it there and deploy`;
    return fallBack(request, mode, requested, why, undefined, create, deps);
  }
  const pre = await runPre(request.instanceId, document, mode, deps);
  if (pre.state !== 'success') {
    const why = preFailureReason(document.name, pre);
    const result = await fallBack(request, mode, requested, why, pre, create, deps);
    return pre.commandId ? withPost(result, request.instanceId, document, mode, deps) : result;
  }
  const started = (deps.now ?? Date.now)();
  const record = {
    requested,
    outcome: 'app' as const,
    reason: `${requested}: pre script succeeded`,
    pre,
    problems: [],
  };
  const result = await createTagged(request, record, create, deps);
  const took = ((deps.now ?? Date.now)() - started) / 1000;
  const withLate =
    mode.kind === 'fsfreeze' && took > SNAPSHOT_CALL_BUDGET_SECONDS
      ? addProblem(
          result,
          `the snapshot call took ${Math.round(took)} s, longer than the ${SNAPSHOT_CALL_BUDGET_SECONDS} s the freeze is bounded to after the pre script: the filesystems may have been thawed by the timer first, so this set may be only crash-consistent although tagged app`,
        )
      : result;
  return withPost(withLate, request.instanceId, document, mode, deps);
}

const VSS_NOT_SUPPORTED =
  'vss is not supported yet by this path (AWS’s AWSEC2-CreateVssSnapshot makes the snapshots itself: only the backup run’s takeVssSet can find, claim and record them)';

/** Why a script that did not succeed makes the set fall back (`what` names it, e.g. `pre script x`). */
export function preFailureReason(
  document: string,
  pre: ScriptRun,
  what = `pre script ${document}`,
): string {
  if (pre.state === 'send-failed' && pre.detail.includes('InvalidInstanceId')) {
    return `not managed by Systems Manager (${document}: ${pre.detail})`;
  }
  if (pre.state === 'timed-out' || pre.state === 'pending' || pre.state === 'missing') {
    return `${what} did not finish in time (${pre.detail})`;
  }
  return `${what} ${pre.state} (${pre.detail})`;
}

/** The crash-consistent fallback, or with `!` no set at all; reported either way. */
export async function fallBack<T>(
  request: SnapshotSetRequest,
  mode: ConsistencyMode,
  requested: string,
  why: string,
  pre: ScriptRun | undefined,
  create: (request: SnapshotSetRequest) => Promise<T>,
  deps: ConsistencyDependencies,
): Promise<ConsistentSetResult<T>> {
  if (onPreFailure(mode) === 'skip') {
    const reason = `${requested} asked for no fallback, and ${why}: no snapshot set made`;
    deps.logger.warn('consistent snapshot set skipped', { instanceId: request.instanceId, reason });
    return {
      kind: 'skipped',
      consistency: { requested, outcome: 'skipped', reason, pre, problems: [reason] },
    };
  }
  const reason = `${requested} fell back to crash-consistent: ${why}`;
  deps.logger.warn('snapshot set falls back to crash-consistent', {
    instanceId: request.instanceId,
    reason,
  });
  return createTagged(
    request,
    { requested, outcome: 'crash-fallback', reason, pre, problems: [reason] },
    create,
    deps,
  );
}

/** Calls `create` with the record's consistency tags added (tagged at creation). */
export async function createTagged<T>(
  request: SnapshotSetRequest,
  record: ConsistencyRecord & { outcome: ConsistencyOutcome },
  create: (request: SnapshotSetRequest) => Promise<T>,
  deps: ConsistencyDependencies,
): Promise<ConsistentSetResult<T>> {
  const tagged = { ...request, tags: withConsistencyTags(request.tags, record, deps) };
  try {
    return { kind: 'created', value: await create(tagged), consistency: record };
  } catch (error) {
    return { kind: 'create-failed', error, consistency: record };
  }
}

function withConsistencyTags(
  tags: readonly Tag[],
  record: ConsistencyRecord & { outcome: ConsistencyOutcome },
  deps: ConsistencyDependencies,
): Tag[] {
  const ours = new Set([deps.keys.consistency, deps.keys.consistencyReason]);
  const kept = tags.filter((t) => !ours.has(t.Key));
  // The outcome tag always goes on; the reason only when it fits EC2's 50 tags.
  const added = consistencyTags(deps.keys, record.outcome, record.reason).slice(
    0,
    Math.max(1, MAX_TAGS - kept.length),
  );
  return [...kept.slice(0, MAX_TAGS - added.length), ...added];
}

/** Adds a problem to report to a set's record. */
export function addProblem<T>(
  result: ConsistentSetResult<T>,
  problem: string,
): ConsistentSetResult<T> {
  return {
    ...result,
    consistency: { ...result.consistency, problems: [...result.consistency.problems, problem] },
  };
}

async function withPost<T>(
  result: ConsistentSetResult<T>,
  instanceId: string,
  document: { readonly name: string; readonly version?: string | undefined },
  mode: ConsistencyMode,
  deps: ConsistencyDependencies,
): Promise<ConsistentSetResult<T>> {
  // Never limited: a frozen filesystem must not wait for other instances' pre scripts.
  const post = await runScript(instanceId, document, 'post-script', mode, deps);
  const withRecord = { ...result, consistency: { ...result.consistency, post } };
  if (post.state === 'success') return withRecord;
  const problem = `post script ${document.name} ${post.state} (${post.detail}) on ${instanceId}${
    mode.kind === 'fsfreeze'
      ? ': the timer on the instance thaws the filesystems by itself'
      : ': check the application on the instance'
  }`;
  deps.logger.error('post script did not succeed', { instanceId, problem });
  return addProblem(withRecord, problem);
}

async function runPre(
  instanceId: string,
  document: { readonly name: string; readonly version?: string | undefined },
  mode: ConsistencyMode,
  deps: ConsistencyDependencies,
): Promise<ScriptRun> {
  const limit = deps.preLimit ?? ((fn) => fn());
  return limit(() => runScript(instanceId, document, 'pre-script', mode, deps));
}

/** The seconds the fsfreeze document keeps filesystems frozen at most. */
export function maxFreezeSeconds(timeoutSeconds: number): number {
  return Math.ceil(timeoutSeconds) + SNAPSHOT_CALL_BUDGET_SECONDS;
}

async function runScript(
  instanceId: string,
  document: { readonly name: string; readonly version?: string | undefined },
  command: 'pre-script' | 'post-script',
  mode: ConsistencyMode,
  deps: ConsistencyDependencies,
): Promise<ScriptRun> {
  const timeoutSeconds = deps.timeoutSeconds ?? DEFAULT_PRE_TIMEOUT_SECONDS;
  const parameters: Record<string, string[]> = { command: [command] };
  if (mode.kind === 'fsfreeze') {
    parameters.maxFreezeSeconds = [String(maxFreezeSeconds(timeoutSeconds))];
  }
  return sendAndWait(
    {
      instanceId,
      document: document.name,
      documentVersion: document.version,
      parameters,
      deliveryTimeoutSeconds: timeoutSeconds,
      comment: `snapkeeper ${command} for ${instanceId}`,
    },
    timeoutSeconds,
    deps,
  );
}

/**
 * Sends one command and waits for it at most `timeoutSeconds`; a failed send is a
 * `send-failed` run, never a throw.
 *
 * @example
 * const run = await sendAndWait({ instanceId, document: 'AWSEC2-CreateVssSnapshot', parameters, deliveryTimeoutSeconds: 180, comment: 'vss' }, 180, deps);
 */
export async function sendAndWait(
  request: RunCommandRequest,
  timeoutSeconds: number,
  deps: Pick<ConsistencyDependencies, 'ssm' | 'sleep' | 'now' | 'pollMs'>,
): Promise<ScriptRun> {
  let commandId: string;
  try {
    commandId = await deps.ssm.sendCommand(request);
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'UnknownError';
    const message = error instanceof Error ? error.message : String(error);
    // An AwsCallError's message already names the action and the code.
    return {
      state: 'send-failed',
      detail: message.includes(code) ? message : `${code}: ${message}`,
    };
  }
  return waitFor(commandId, request.instanceId, timeoutSeconds, deps);
}

/** Polls the invocation until a final state or the timeout; a timeout leaves it `pending`. */
async function waitFor(
  commandId: string,
  instanceId: string,
  timeoutSeconds: number,
  deps: Pick<ConsistencyDependencies, 'ssm' | 'sleep' | 'now' | 'pollMs'>,
): Promise<ScriptRun> {
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const pollMs = deps.pollMs ?? 1_000;
  const deadline = now() + timeoutSeconds * 1000;
  let last: CommandInvocationState = { state: 'missing', detail: 'not read yet' };
  for (;;) {
    try {
      last = await deps.ssm.commandInvocation(commandId, instanceId);
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'UnknownError';
      return { commandId, state: 'wait-failed', detail: `GetCommandInvocation ${code}` };
    }
    if (last.state !== 'pending' && last.state !== 'missing') {
      const detail = last.output ? `${last.detail}: ${last.output}` : last.detail;
      return { commandId, state: last.state, detail };
    }
    const left = deadline - now();
    if (left <= 0) {
      return {
        commandId,
        state: 'timed-out',
        detail: `still ${last.detail} after ${timeoutSeconds} s`,
      };
    }
    await sleep(Math.min(pollMs, left));
  }
}
