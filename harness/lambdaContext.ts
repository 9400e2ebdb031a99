/**
 * A Lambda context with a deadline, for invoking handlers in tests, the demo and the campaign.
 * Part of the local AWS harness: imports only lib/ and harness/.
 */
import type { Context } from 'aws-lambda';

/**
 * A Lambda context for invoking handlers in tests and the demo, with a deadline
 * `remainingMs` from now.
 */
export function lambdaContext(
  functionName = 'snapkeeper-test-backup',
  remainingMs = 900_000,
): Context {
  const deadline = Date.now() + remainingMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: `req-${Math.random().toString(16).slice(2, 10)}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
