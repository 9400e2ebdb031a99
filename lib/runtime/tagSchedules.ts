import type { Context } from 'aws-lambda';
import { isTagDispatchEvent } from '../jobs/tagScheduleEvents.ts';
import type { LambdaRuntime } from './lambdaRuntime.ts';
import { powertoolsHandler } from './powertoolsHandler.ts';

/**
 * A function's handler that also answers `{"schedule": "tag"}`: that event goes to
 * `tagJob` (the dispatcher, or the retention of tag lineages) in the same Powertools
 * wrapper; every other event to the function's own handler.
 *
 * @example
 * export const handler = withTagSchedules(runtime, dispatchTagSchedules, scheduledJobHandler(...));
 */
export function withTagSchedules<R>(
  runtime: LambdaRuntime,
  tagJob: (runtime: LambdaRuntime, event: unknown, context: Context) => Promise<unknown>,
  handler: (event: unknown, context: Context) => Promise<R>,
): (event: unknown, context: Context) => Promise<unknown> {
  const tag = powertoolsHandler(runtime, (event: unknown, context: Context) =>
    tagJob(runtime, event, context),
  );
  return (event, context) =>
    isTagDispatchEvent(event) ? tag(event, context) : handler(event, context);
}
