import { InvalidEventError, UnknownScheduleError } from '../domain/errors.ts';
import { resolveSchedule, type ScheduleCatalog } from '../domain/schedules.ts';
import * as z from '../domain/schema.ts';

/** A validated invocation of a scheduled job. */
export interface ScheduledInvocation {
  /** The schedule's canonical (lower-case) name. */
  readonly schedule: string;
  /** The scheduled time served; absent when the event carried none (constant input). */
  readonly scheduledTime?: Date | undefined;
  readonly dryRun: boolean;
}

/** An ISO 8601 instant with its zone (`Z` or an offset), as Scheduler sends it. */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

const wholeDeletions = z
  .number({ error: 'must be a whole number of deletions' })
  .check(
    z.int('must be a whole number of deletions'),
    z.minimum(0, 'must be 0 or more'),
    z.maximum(1_000_000, 'must be at most 1000000'),
  );

export const scheduledEventFields = {
  schedule: z.string({ error: 'must be a string naming a schedule' }),
  scheduledTime: z.optional(
    z
      .string({ error: 'must be an ISO 8601 time string' })
      .check(
        z.refine(
          (value) => ISO_INSTANT.test(value) && isRealDate(value),
          'must be an ISO 8601 time with a zone, such as 2026-11-23T03:00:00Z',
        ),
      ),
  ),
  dryRun: z.optional(z.boolean({ error: 'must be true or false' })),
};

const scheduledEventSchema = z.strictObject(scheduledEventFields);

const retentionEventSchema = z.strictObject({
  ...scheduledEventFields,
  maxDeletions: z.optional(wholeDeletions),
  confirm: z.optional(z.boolean({ error: 'must be true or false' })),
});

/** A validated invocation of the retention job. */
export interface RetentionInvocation extends ScheduledInvocation {
  /** A one-run override of the deletion cap, confirmed by the operator. */
  readonly maxDeletions?: number | undefined;
}

/**
 * Validates the event a schedule sends: `{ "schedule": "daily", "scheduledTime":
 * "<aws.scheduler.scheduled-time>" }` from EventBridge Scheduler, or the same shape as
 * a classic rule's constant input (then without `scheduledTime`). An event that names
 * no schedule is rejected with the shape to configure instead.
 *
 * @throws {InvalidEventError} naming the field and what is expected.
 * @example
 * parseScheduledEvent({ schedule: 'Daily', scheduledTime: '2026-11-23T03:00:00Z' }, catalog);
 * // { schedule: 'daily', scheduledTime: Date(2026-11-23T03:00:00Z), dryRun: false }
 */
export function parseScheduledEvent(event: unknown, catalog: ScheduleCatalog): ScheduledInvocation {
  const { data, schedule } = parseWith(
    scheduledEventSchema,
    'schedule, scheduledTime and dryRun',
    event,
    catalog,
  );
  return {
    schedule,
    scheduledTime: data.scheduledTime === undefined ? undefined : new Date(data.scheduledTime),
    dryRun: data.dryRun ?? false,
  };
}

/**
 * Validates a retention invocation: the scheduled shape, plus a one-run
 * `maxDeletions` override that needs `"confirm": true` (unless `dryRun`).
 *
 * @throws {InvalidEventError}
 * @example
 * parseRetentionEvent({ schedule: 'daily', maxDeletions: 500, confirm: true }, catalog).maxDeletions; // 500
 */
export function parseRetentionEvent(event: unknown, catalog: ScheduleCatalog): RetentionInvocation {
  const { data, schedule } = parseWith(
    retentionEventSchema,
    'schedule, scheduledTime, dryRun, maxDeletions and confirm',
    event,
    catalog,
  );
  if (data.maxDeletions !== undefined && data.dryRun !== true && data.confirm !== true) {
    throw new InvalidEventError(
      `field "maxDeletions" lifts the deletion cap for one run and needs "confirm": true (or "dryRun": true to preview)`,
    );
  }
  return {
    schedule,
    scheduledTime: data.scheduledTime === undefined ? undefined : new Date(data.scheduledTime),
    dryRun: data.dryRun ?? false,
    ...(data.maxDeletions !== undefined ? { maxDeletions: data.maxDeletions } : {}),
  };
}

const fanOutEventSchema = z.strictObject({
  ...scheduledEventFields,
  job: z.enum(['backup', 'retention'], { error: 'must be "backup" or "retention"' }),
});

/** A validated invocation of the fan-out planner. */
export interface FanOutInvocation extends ScheduledInvocation {
  readonly job: 'backup' | 'retention';
}

/**
 * Validates the fan-out planner's event: the scheduled shape plus the job to fan out,
 * `{ "job": "backup", "schedule": "daily", "scheduledTime": "..." }`.
 *
 * @throws {InvalidEventError}
 * @example
 * parseFanOutEvent({ job: 'backup', schedule: 'daily' }, catalog).job; // 'backup'
 */
export function parseFanOutEvent(event: unknown, catalog: ScheduleCatalog): FanOutInvocation {
  const { data, schedule } = parseWith(
    fanOutEventSchema,
    'job, schedule, scheduledTime and dryRun',
    event,
    catalog,
  );
  return {
    job: data.job,
    schedule,
    scheduledTime: data.scheduledTime === undefined ? undefined : new Date(data.scheduledTime),
    dryRun: data.dryRun ?? false,
  };
}

function parseWith<T extends z.ZodMiniType<{ schedule: string }>>(
  schemaToUse: T,
  fields: string,
  event: unknown,
  catalog: ScheduleCatalog,
): { data: z.infer<T>; schedule: string } {
  const known = [...catalog.schedules.keys()].join(', ');
  const howToFix = `configure the schedule's target input as {"schedule": "<name>", "scheduledTime": "<aws.scheduler.scheduled-time>"}; known schedules: ${known}`;
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    throw new InvalidEventError(`the event must be a JSON object; ${howToFix}`);
  }
  if (!('schedule' in event)) {
    const looksLikeRule = 'detail-type' in event || 'source' in event;
    throw new InvalidEventError(
      `the event names no schedule${looksLikeRule ? ' (this is a raw EventBridge event)' : ''}: ${howToFix}`,
    );
  }
  const parsed = schemaToUse.safeParse(event);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue?.code === 'unrecognized_keys') {
      throw new InvalidEventError(
        `unexpected field(s) ${listFields(issue.keys)}; the event takes ${fields} only`,
      );
    }
    const field = issue?.path.join('.') || 'event';
    throw new InvalidEventError(`field "${field}" ${issue?.message ?? 'is invalid'}`);
  }
  let schedule: string;
  try {
    schedule = resolveSchedule(catalog, (parsed.data as { schedule: string }).schedule).name;
  } catch (error) {
    if (error instanceof UnknownScheduleError) {
      throw new InvalidEventError(`field "schedule": ${error.message}`, { cause: error });
    }
    throw error;
  }
  return { data: parsed.data as z.infer<T>, schedule };
}

const sweepEventSchema = z.strictObject({
  sweep: z.literal(true, { error: 'must be true to run the orphan sweep' }),
  dryRun: z.optional(z.boolean({ error: 'must be true or false' })),
  maxDeletions: z.optional(wholeDeletions),
  confirm: z.optional(z.boolean({ error: 'must be true or false' })),
});

/** A validated invocation of the `amis` function: a schedule's AMIs, or the orphan sweep. */
export type AmiInvocation =
  | ({ readonly kind: 'schedule' } & RetentionInvocation)
  | {
      readonly kind: 'sweep';
      readonly dryRun: boolean;
      readonly maxDeletions?: number | undefined;
    };

/**
 * Validates an `amis` invocation: `{ "schedule": "daily", "scheduledTime": ... }` creates
 * and retires that schedule's AMIs; `{ "sweep": true }` runs the orphan sweep. Both take
 * `dryRun`, and `maxDeletions` with `"confirm": true`.
 *
 * @throws {InvalidEventError}
 * @example
 * parseAmiEvent({ sweep: true, dryRun: true }, catalog); // { kind: 'sweep', dryRun: true }
 */
export function parseAmiEvent(event: unknown, catalog: ScheduleCatalog): AmiInvocation {
  if (event !== null && typeof event === 'object' && !Array.isArray(event) && 'sweep' in event) {
    const parsed = sweepEventSchema.safeParse(event);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      if (issue?.code === 'unrecognized_keys') {
        throw new InvalidEventError(
          `unexpected field(s) ${listFields(issue.keys)}; the sweep takes sweep, dryRun, maxDeletions and confirm only`,
        );
      }
      throw new InvalidEventError(
        `field "${issue?.path.join('.') || 'event'}" ${issue?.message ?? 'is invalid'}`,
      );
    }
    if (
      parsed.data.maxDeletions !== undefined &&
      parsed.data.dryRun !== true &&
      parsed.data.confirm !== true
    ) {
      throw new InvalidEventError(
        'field "maxDeletions" lifts the deletion cap for one run and needs "confirm": true (or "dryRun": true to preview)',
      );
    }
    return {
      kind: 'sweep',
      dryRun: parsed.data.dryRun ?? false,
      ...(parsed.data.maxDeletions !== undefined ? { maxDeletions: parsed.data.maxDeletions } : {}),
    };
  }
  return { kind: 'schedule', ...parseRetentionEvent(event, catalog) };
}

/** True when an ISO time names a real calendar date and clock time (no 30 February). */
export function isRealDate(value: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value);
  if (!match || Number.isNaN(Date.parse(value))) return false;
  const [year, month, day, hour, minute] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day && hour < 24 && minute < 60;
}

/** Names unexpected fields, at most five of them, each cut short. */
export function listFields(keys: readonly string[]): string {
  const shown = keys
    .slice(0, 5)
    .map((k) => JSON.stringify(k.length > 40 ? `${k.slice(0, 40)}…` : k));
  return keys.length > 5 ? `${shown.join(', ')} and ${keys.length - 5} more` : shown.join(', ');
}

const copyEventSchema = z.strictObject({
  copy: z.literal(true, { error: 'must be true to run the copy job' }),
  dryRun: z.optional(z.boolean({ error: 'must be true or false' })),
});

/** A validated invocation of the copy job. */
export interface CopyInvocation {
  readonly dryRun: boolean;
  /** Source snapshots named by an `EBS Snapshot Notification`; all when absent. */
  readonly snapshotIds?: readonly string[] | undefined;
  /** Set when the event needs nothing (a failed snapshot): why. */
  readonly ignore?: string | undefined;
}

/**
 * Validates a copy invocation: EventBridge's `EBS Snapshot Notification` (copy what it
 * names as soon as it completes), or `{ "copy": true }` from the schedule that catches
 * up on whatever the events missed.
 *
 * @throws {InvalidEventError}
 * @example
 * parseCopyEvent({ copy: true }); // { dryRun: false }
 */
export function parseCopyEvent(event: unknown): CopyInvocation {
  if (
    event !== null &&
    typeof event === 'object' &&
    !Array.isArray(event) &&
    'detail-type' in event
  ) {
    const e = event as {
      'detail-type'?: unknown;
      source?: unknown;
      detail?: Record<string, unknown>;
    };
    if (e['detail-type'] !== 'EBS Snapshot Notification' || e.source !== 'aws.ec2') {
      throw new InvalidEventError(
        `the copy job takes "EBS Snapshot Notification" events from aws.ec2 or {"copy": true}; got ${JSON.stringify(String(e['detail-type']).slice(0, 60))}`,
      );
    }
    const detail = e.detail ?? {};
    if (detail.result !== 'succeeded')
      return { dryRun: false, ignore: `snapshot result ${String(detail.result)}` };
    const listed = detail.snapshots ?? [];
    if (!Array.isArray(listed) || listed.some((x) => x === null || typeof x !== 'object')) {
      throw new InvalidEventError(
        'field "detail.snapshots" must be a list of {"snapshot_id": "arn:..."} objects',
      );
    }
    const arns = [
      detail.snapshot_id,
      ...(listed as { snapshot_id?: unknown }[]).map((x) => x.snapshot_id),
    ].filter((a): a is string => typeof a === 'string');
    const ids = [
      ...new Set(
        arns.map((a) => /snap-[0-9a-f]+$/.exec(a)?.[0]).filter((id): id is string => !!id),
      ),
    ];
    if (ids.length === 0)
      throw new InvalidEventError('field "detail.snapshot_id" names no snapshot');
    return { dryRun: false, snapshotIds: ids };
  }
  const parsed = copyEventSchema.safeParse(event);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue?.code === 'unrecognized_keys') {
      throw new InvalidEventError(
        `unexpected field(s) ${listFields(issue.keys)}; the copy job takes copy and dryRun only`,
      );
    }
    throw new InvalidEventError(
      `field "${issue?.path.join('.') || 'event'}" ${issue?.message ?? 'is invalid'}; the copy job takes an "EBS Snapshot Notification" event or {"copy": true}`,
    );
  }
  return { dryRun: parsed.data.dryRun ?? false };
}
