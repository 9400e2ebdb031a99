/**
 * The backup run's side of application-consistent sets (issue 21, part 1): wraps the
 * run's "create the set" step in the pre/post scripts when the plan asks for them, and
 * says in the instance's result and the run's counts what each set got.
 */
import { AwsCallError } from '../aws/errors.ts';
import type { SnapkeeperConfig } from '../config/environment.ts';
import type { SnapshotSetRequest } from '../domain/backupPlan.ts';
import { formatConsistency } from '../domain/consistency.ts';
import type { TagKeys } from '../domain/tagKeys.ts';
import type { InstanceBackupResult } from './backupReport.ts';
import {
  type ConsistencyRecord,
  commandsInFlight,
  MAX_COMMANDS_IN_FLIGHT,
  takeConsistentSet,
} from './consistentSnapshotSet.ts';
import type { LoggerPort, RunCommandPort } from './ports.ts';
import { takeVssSet } from './vssSnapshotSet.ts';

/** What the backup run needs for consistent sets; all optional (no Run Command: every app mode falls back, reported). */
export interface BackupConsistencyDependencies {
  readonly runCommand?: RunCommandPort | undefined;
  readonly config: {
    readonly keys: Pick<TagKeys, 'consistency' | 'consistencyReason' | 'prefix'>;
  } & Partial<
    Pick<
      SnapkeeperConfig,
      | 'consistencyTimeoutSeconds'
      | 'consistencyVssTimeoutSeconds'
      | 'consistencyFsfreezeDocument'
      | 'consistencyDocuments'
    >
  >;
  readonly logger: LoggerPort;
}

/** What the step did: the set made (or not), and the record for the report. */
export type ConsistentMade<M> =
  | { readonly kind: 'made'; readonly made: M; readonly consistency?: ConsistencyRecord }
  | { readonly kind: 'skipped'; readonly consistency: ConsistencyRecord };

/** A Run Command port for a run that has none (a fan-out batch in another account). */
const UNAVAILABLE: RunCommandPort = {
  sendCommand: async () => {
    throw new AwsCallError(
      'SendCommand',
      'RunCommandUnavailable',
      'Run Command is not available to this run (console backups, and fan-out batches outside the deployment’s own account and region, make crash-consistent sets)',
    );
  },
  commandInvocation: async () => ({ state: 'failed', detail: 'RunCommandUnavailable' }),
};

// One limiter of pre scripts in flight per run (the run's dependencies object).
const limiters = new WeakMap<object, ReturnType<typeof commandsInFlight>>();

/**
 * Makes one instance's set through `make`, consistently when its request asks
 * (`request.consistency`, from the plan): unchanged when it does not. A `vss` set goes
 * through AWSEC2-CreateVssSnapshot when `find` (which reads and records the set the
 * document made) is given, else it falls back, reported.
 *
 * @example
 * const step = await makeSetConsistently(decision.request, (request) => createSet(request), deps, find);
 */
export async function makeSetConsistently<M>(
  request: SnapshotSetRequest,
  make: (request: SnapshotSetRequest) => Promise<M>,
  deps: BackupConsistencyDependencies,
  find?: (request: SnapshotSetRequest, patient: boolean) => Promise<M | undefined>,
): Promise<ConsistentMade<M>> {
  const { consistency, ...plain } = request;
  if (!consistency) return { kind: 'made', made: await make(request) };
  let preLimit = limiters.get(deps);
  if (!preLimit) {
    preLimit = commandsInFlight(MAX_COMMANDS_IN_FLIGHT);
    limiters.set(deps, preLimit);
  }
  const { config } = deps;
  const stepDeps = {
    ssm: deps.runCommand ?? UNAVAILABLE,
    keys: config.keys,
    logger: deps.logger,
    timeoutSeconds: config.consistencyTimeoutSeconds,
    vssTimeoutSeconds: config.consistencyVssTimeoutSeconds,
    fsfreezeDocument: config.consistencyFsfreezeDocument,
    allowedDocuments: config.consistencyDocuments,
    preLimit,
  };
  const result =
    consistency.mode.kind === 'vss' && find
      ? await takeVssSet(plain, consistency, make, find, stepDeps)
      : await takeConsistentSet(plain, consistency, make, stepDeps);
  if (result.kind === 'skipped') return { kind: 'skipped', consistency: result.consistency };
  // `make` reports its own failures in what it answers; a throw is handed back as is.
  if (result.kind === 'create-failed') throw result.error;
  return { kind: 'made', made: result.value, consistency: result.consistency };
}

/** The mode a dry run would use, for the planned instance's result. */
export function plannedConsistency(request: SnapshotSetRequest): {
  consistency?: ConsistencyRecord;
} {
  if (!request.consistency) return {};
  const requested = formatConsistency(request.consistency.mode);
  const problems = request.consistency.problem ? [request.consistency.problem] : [];
  return {
    consistency: {
      requested,
      outcome: 'planned',
      reason: `a real run would run ${requested}'s pre script, then the set (dry run: nothing sent)`,
      problems,
    },
  };
}

/**
 * The run's consistency counts, present only when a set asked: sets made
 * application-consistent, fallen back, and skipped for want of one (`!`).
 *
 * @example
 * const counts = { ...consistencyCounts(results) };
 */
export function consistencyCounts(
  results: readonly { readonly consistency?: ConsistencyRecord | undefined }[],
): { appConsistent?: number; crashFallback?: number; consistencySkipped?: number } {
  const records = results.flatMap((r) => (r.consistency ? [r.consistency] : []));
  if (records.length === 0) return {};
  const count = (outcome: ConsistencyRecord['outcome']) =>
    records.filter((r) => r.outcome === outcome).length;
  return {
    appConsistent: count('app'),
    crashFallback: count('crash-fallback'),
    consistencySkipped: count('skipped'),
  };
}

/**
 * An instance result's consistency fields: the record, and the tag problems with the
 * record's own (a fallback, a failed post script) so that the run reports them.
 *
 * @example
 * return { instanceId, outcome: 'created', ...consistencyFields(problems, step.consistency) };
 */
export function consistencyFields(
  problems: readonly string[],
  record: ConsistencyRecord | undefined,
): { consistency?: ConsistencyRecord; problems?: readonly string[] } {
  const all = [...problems, ...(record?.problems ?? [])];
  return {
    ...(record ? { consistency: record } : {}),
    ...(all.length > 0 ? { problems: all } : {}),
  };
}

/**
 * The result of an instance whose mode said `!` (no fallback) when the application-
 * consistent path failed: skipped, with the reason as its error.
 *
 * @example
 * if (step.kind === 'skipped') return consistencySkipped(decision, step.consistency, problems);
 */
export function consistencySkipped(
  decision: { readonly instanceId: string; readonly name?: string | undefined },
  record: ConsistencyRecord,
  problems: readonly string[],
): InstanceBackupResult {
  return {
    instanceId: decision.instanceId,
    name: decision.name,
    outcome: 'skipped',
    reason: record.reason,
    error: { code: 'ConsistencyUnavailable', message: record.reason },
    ...consistencyFields(problems, record),
  };
}
