/**
 * What the backup planner (`backupPlan.ts`) and the AMI planner (`imagePlan.ts`) share:
 * the shape of a per-instance decision (act with a request, skip with the reason, or
 * not due), the run facts a decision depends on, and how a skip is built and reported.
 * Pure: no SDK, no clock, no I/O.
 */
import type { ScheduleCatalog } from './schedules.ts';
import type { TagKeys } from './tagKeys.ts';
import type { TagMap, TagProblem } from './tagPolicy.ts';

/** An instance left out of a run, and why. */
export interface InstanceSkip {
  readonly kind: 'skip';
  readonly instanceId: string;
  readonly name?: string | undefined;
  readonly reason: string;
  /** True when the skip comes from a fault the operator must fix (a bad tag). */
  readonly isError: boolean;
  readonly problems: readonly TagProblem[];
}

/** An instance the run acts on, with the one call it makes. */
export interface InstanceAction<Kind extends string, Request> {
  readonly kind: Kind;
  readonly instanceId: string;
  readonly name?: string | undefined;
  readonly request: Request;
  readonly problems: readonly TagProblem[];
}

/** An instance the run is not for (its schedule does not list this one). */
export interface InstanceNotDue {
  readonly kind: 'not-due';
  readonly instanceId: string;
}

/**
 * What to do with one instance in one run of a job: act (`Kind`, with its `Request`),
 * skip with the reason, or nothing because it is not due.
 *
 * @example
 * type InstanceBackupDecision = InstanceDecision<'backup', SnapshotSetRequest>;
 */
export type InstanceDecision<Kind extends string, Request> =
  | InstanceAction<Kind, Request>
  | InstanceSkip
  | InstanceNotDue;

/** The run facts every resource a run creates is named and tagged from. */
export interface RunFacts {
  readonly keys: TagKeys;
  readonly catalog: ScheduleCatalog;
  /** The schedule being served, or `manual` for an unscheduled console backup. */
  readonly schedule: string;
  /** The scheduled time served, ISO 8601 UTC. */
  readonly slot: string;
  readonly deployment: string;
  readonly runId: string;
  /** The actual time of the run, ISO 8601 UTC. */
  readonly createdAt: string;
  /** Instance tag keys copied onto what is created (cost allocation). */
  readonly copyTags: readonly string[];
}

/** EC2 instance states in which snapkeeper still backs an instance up (snapshots or AMIs). */
export const BACKED_UP_INSTANCE_STATES: readonly string[] = [
  'pending',
  'running',
  'stopping',
  'stopped',
];

/**
 * A skip of an instance, by its id and Name tag.
 *
 * @example
 * skipInstance({ instanceId: 'i-1', tags: { Name: 'web' } }, 'instance is terminated', false, []);
 */
export function skipInstance(
  instance: { readonly instanceId: string; readonly tags: TagMap },
  reason: string,
  isError: boolean,
  problems: readonly TagProblem[],
): InstanceSkip {
  return {
    kind: 'skip',
    instanceId: instance.instanceId,
    name: instance.tags.Name,
    reason,
    isError,
    problems,
  };
}

/** A skipped instance as a run reports it. */
export interface SkippedInstance {
  readonly instanceId: string;
  readonly name?: string | undefined;
  readonly outcome: 'skipped';
  readonly reason: string;
  readonly error?: { readonly code: 'InvalidTag'; readonly message: string };
  readonly problems?: readonly string[];
}

/**
 * How a run reports a skip: an error (`InvalidTag`) when a bad tag caused it, and the
 * tag problems, one message each, when there are any.
 *
 * @example
 * skippedResult(decision); // { instanceId: 'i-1', outcome: 'skipped', reason: 'instance is stopped', ... }
 */
export function skippedResult(decision: InstanceSkip): SkippedInstance {
  const problems = decision.problems.map((p) => p.message);
  return {
    instanceId: decision.instanceId,
    name: decision.name,
    outcome: 'skipped',
    reason: decision.reason,
    ...(decision.isError ? { error: { code: 'InvalidTag', message: decision.reason } } : {}),
    ...(problems.length > 0 ? { problems } : {}),
  };
}
