/**
 * The event of the schedules written in instances' tags, to the backup function (the
 * dispatcher) and the retention function (their lineages): `{"schedule": "tag",
 * "scheduledTime": "<ISO 8601>"}`, optionally `"dryRun": true`. Kept apart from the
 * jobs so that each function's bundle holds only its own.
 */
import { InvalidEventError } from '../domain/errors.ts';
import * as z from '../domain/schema.ts';
import { TAG_SCHEDULE } from '../domain/tagSchedules.ts';
import { scheduledEventFields } from './events.ts';

/** A validated dispatcher invocation. */
export interface TagDispatchInvocation {
  readonly scheduledTime?: Date | undefined;
  readonly dryRun: boolean;
}

const dispatchEventSchema = z.strictObject({
  ...scheduledEventFields,
  schedule: z.literal(TAG_SCHEDULE, { error: `must be "${TAG_SCHEDULE}"` }),
});

/**
 * True when a backup event asks for the tag dispatcher (`"schedule": "tag"`, any case).
 *
 * @example
 * isTagDispatchEvent({ schedule: 'tag', scheduledTime: '2026-11-23T12:00:00Z' }); // true
 */
export function isTagDispatchEvent(event: unknown): boolean {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) return false;
  const schedule = (event as { schedule?: unknown }).schedule;
  return typeof schedule === 'string' && schedule.trim().toLowerCase() === TAG_SCHEDULE;
}

/**
 * Validates the dispatcher's event: `{"schedule": "tag", "scheduledTime": "<ISO 8601>"}`,
 * optionally `"dryRun": true`.
 *
 * @throws {InvalidEventError} naming the field.
 * @example
 * parseTagDispatchEvent({ schedule: 'tag', scheduledTime: '2026-11-23T12:00:00Z' }).dryRun; // false
 */
export function parseTagDispatchEvent(event: unknown): TagDispatchInvocation {
  const normalised =
    isTagDispatchEvent(event) && typeof event === 'object'
      ? { ...(event as object), schedule: TAG_SCHEDULE }
      : event;
  const parsed = dispatchEventSchema.safeParse(normalised);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue?.code === 'unrecognized_keys') {
      throw new InvalidEventError(
        `unexpected field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}; the tag schedules' event takes schedule, scheduledTime and dryRun only`,
      );
    }
    const field = issue?.path.join('.') || 'event';
    throw new InvalidEventError(`field "${field}" ${issue?.message ?? 'is invalid'}`);
  }
  return {
    scheduledTime:
      parsed.data.scheduledTime === undefined ? undefined : new Date(parsed.data.scheduledTime),
    dryRun: parsed.data.dryRun ?? false,
  };
}
