import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { runAsCaller } from '../aws/callRecorder.ts';
import type { LambdaRuntime } from './lambdaRuntime.ts';

/**
 * Wraps a function's handler in middy with the same Powertools middleware everywhere:
 * the Lambda context in every log line (keys reset per invocation), X-Ray tracing, and
 * the metrics flushed at the end (with the cold-start metric). When the test harness
 * records calls, every AWS call the handler makes is attributed to the function.
 *
 * @example
 * export const handler = powertoolsHandler(runtime, backup);
 */
export function powertoolsHandler<E, R>(
  runtime: Pick<LambdaRuntime, 'logger' | 'tracer' | 'metrics'> &
    Partial<Pick<LambdaRuntime, 'functionName' | 'config'>>,
  handler: (event: E, context: Context) => Promise<R>,
) {
  const { functionName, config } = runtime;
  // Only when the test harness records calls: Lambda never pays for the async context.
  const attributed =
    process.env.SNAPKEEPER_RECORD_CALLS && functionName && config
      ? (event: E, context: Context) =>
          runAsCaller(
            {
              functionName,
              region: config.region,
              deployment: config.deployment,
              tagPrefix: config.keys.prefix,
              localTagAfterCreate: config.localTagAfterCreate,
            },
            () => handler(event, context),
          )
      : handler;
  return middy(attributed)
    .use(injectLambdaContext(runtime.logger, { resetKeys: true }))
    .use(captureLambdaHandler(runtime.tracer))
    .use(logMetrics(runtime.metrics, { captureColdStartMetric: true }));
}
