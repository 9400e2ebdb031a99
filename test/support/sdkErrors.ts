/**
 * Errors shaped as the AWS SDK v3 throws them, for fakes and mocked clients to throw.
 */

/**
 * An AWS SDK error as a service answers it: `name` is the AWS error code, `$fault` says
 * whose fault it is (`server` from HTTP 500 on, `client` below), `$metadata` carries the
 * HTTP status.
 *
 * @example
 * ec2Mock.on(DeleteSnapshotCommand).rejects(sdkError('InvalidSnapshot.InUse', 'in use'));
 * throw sdkError('RequestLimitExceeded', 'Request limit exceeded.', 503);
 */
export function sdkError(name: string, message: string, httpStatusCode = 400): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: httpStatusCode >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode },
  });
}
