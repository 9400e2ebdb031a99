import { SnapkeeperError } from '../domain/errors.ts';

/** EC2 error codes snapkeeper treats specially; every other code is reported as is. */
export const Ec2ErrorCode = {
  RequestLimitExceeded: 'RequestLimitExceeded',
  SnapshotCreationPerVolumeRateExceeded: 'SnapshotCreationPerVolumeRateExceeded',
  ConcurrentSnapshotLimitExceeded: 'ConcurrentSnapshotLimitExceeded',
  SnapshotInUse: 'InvalidSnapshot.InUse',
  SnapshotNotFound: 'InvalidSnapshot.NotFound',
  AmiUnavailable: 'InvalidAMIID.Unavailable',
  AmiNotFound: 'InvalidAMIID.NotFound',
  InstanceNotFound: 'InvalidInstanceID.NotFound',
  InstanceMalformed: 'InvalidInstanceID.Malformed',
  AmiNameDuplicate: 'InvalidAMIName.Duplicate',
} as const;

/**
 * An AWS call that failed after the SDK's retries, carrying the AWS error code,
 * the action and the HTTP status so reports and run records can name them.
 */
export class AwsCallError extends SnapkeeperError {
  public readonly code: string;
  public readonly action: string;
  public readonly httpStatus?: number | undefined;

  public constructor(
    action: string,
    code: string,
    message: string,
    options?: ErrorOptions & { httpStatus?: number | undefined },
  ) {
    super(`${action} failed: ${code}: ${message}`, options);
    this.name = 'AwsCallError';
    this.action = action;
    this.code = code;
    this.httpStatus = options?.httpStatus;
  }
}

/** The volume already has the most pending snapshots EC2 allows; retrying within the run is useless. */
export class ConcurrentSnapshotLimitError extends AwsCallError {
  public constructor(instanceId: string, options?: ErrorOptions) {
    super(
      'CreateSnapshots',
      Ec2ErrorCode.ConcurrentSnapshotLimitExceeded,
      `earlier snapshots of ${instanceId} are still pending (at most 5 per volume, 1 for st1/sc1); not retried in this run`,
      options,
    );
    this.name = 'ConcurrentSnapshotLimitError';
  }
}

/** EC2's per-volume creation rate limit held after every retry; the backup is deferred. */
export class SnapshotRateDeferredError extends AwsCallError {
  public constructor(instanceId: string, attempts: number, options?: ErrorOptions) {
    super(
      'CreateSnapshots',
      Ec2ErrorCode.SnapshotCreationPerVolumeRateExceeded,
      `per-volume snapshot rate limit for ${instanceId} still exceeded after ${attempts} attempts; deferred to the next run`,
      options,
    );
    this.name = 'SnapshotRateDeferredError';
  }
}

/**
 * The AWS error code of anything the SDK throws (`error.name` for service errors).
 *
 * @example
 * awsErrorCode(Object.assign(new Error('x'), { name: 'RequestLimitExceeded' })); // 'RequestLimitExceeded'
 */
export function awsErrorCode(error: unknown): string {
  if (error && typeof error === 'object') {
    const candidate = error as { name?: unknown; Code?: unknown; code?: unknown };
    if (typeof candidate.Code === 'string') return candidate.Code;
    if (typeof candidate.name === 'string' && candidate.name !== 'Error') return candidate.name;
    if (typeof candidate.code === 'string') return candidate.code;
  }
  return 'UnknownError';
}

/**
 * Wraps anything thrown by an AWS call into an {@link AwsCallError} (kept as is when it already is one).
 */
export function toAwsCallError(action: string, error: unknown): AwsCallError {
  if (error instanceof AwsCallError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
    ?.httpStatusCode;
  return new AwsCallError(action, awsErrorCode(error), message, {
    cause: error,
    httpStatus: status,
  });
}

/** A snapshot that an image started using after the plan was made: skipped, never fatal. */
export class SnapshotInUseError extends AwsCallError {
  public readonly snapshotId: string;

  public constructor(snapshotId: string, options?: ErrorOptions) {
    super(
      'DeleteSnapshot',
      Ec2ErrorCode.SnapshotInUse,
      `${snapshotId} is in use by an image`,
      options,
    );
    this.name = 'SnapshotInUseError';
    this.snapshotId = snapshotId;
  }
}

/** A snapshot that someone else deleted after the plan was made. */
export class SnapshotNotFoundError extends AwsCallError {
  public readonly snapshotId: string;

  public constructor(snapshotId: string, options?: ErrorOptions) {
    super(
      'DeleteSnapshot',
      Ec2ErrorCode.SnapshotNotFound,
      `${snapshotId} no longer exists`,
      options,
    );
    this.name = 'SnapshotNotFoundError';
    this.snapshotId = snapshotId;
  }
}

/** An image that is already deregistered or never existed: treated as gone. */
export class ImageGoneError extends AwsCallError {
  public readonly imageId: string;

  public constructor(imageId: string, code: string, options?: ErrorOptions) {
    super('DeregisterImage', code, `${imageId} is already deregistered or does not exist`, options);
    this.name = 'ImageGoneError';
    this.imageId = imageId;
  }
}

/** An EC2 API the endpoint does not implement (the local AWS lacks some). */
export function isNotImplemented(error: unknown): boolean {
  const code = awsErrorCode(error);
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
    ?.httpStatusCode;
  return code === 'NotImplemented' || code === 'InvalidAction' || status === 501;
}

/**
 * `CreateSnapshots` failed after the SDK's retries; `uncertainAttempts` of its attempts
 * may have made a set all the same (their answers were lost), so the caller looks.
 */
export class CreateSnapshotSetError extends AwsCallError {
  public readonly uncertainAttempts: number;

  public constructor(error: unknown, uncertainAttempts: number) {
    const wrapped = toAwsCallError('CreateSnapshots', error);
    const message = error instanceof Error ? error.message : String(error);
    // An AwsCallError (a typed refusal) already says which action failed, and how.
    const prefix = `${wrapped.action} failed: ${wrapped.code}: `;
    super(
      'CreateSnapshots',
      wrapped.code,
      message.startsWith(prefix) ? message.slice(prefix.length) : message,
      { cause: error, httpStatus: wrapped.httpStatus },
    );
    // Named as the AwsCallError it is: reports and logs read `name` and `code`.
    this.uncertainAttempts = uncertainAttempts;
  }
}

/**
 * `CreateImage` refused the name: an image of this account and region already has it.
 * For a name that holds stage, schedule, slot (and instance), that is most often this
 * slot's own image, made by an earlier attempt whose answer was lost.
 */
export class ImageNameTakenError extends AwsCallError {
  public readonly imageName: string;

  public constructor(imageName: string, options?: ErrorOptions) {
    const status = (options?.cause as { $metadata?: { httpStatusCode?: number } } | undefined)
      ?.$metadata?.httpStatusCode;
    super(
      'CreateImage',
      Ec2ErrorCode.AmiNameDuplicate,
      `an image named ${JSON.stringify(imageName)} already exists in this account and region`,
      { ...options, httpStatus: status },
    );
    this.name = 'ImageNameTakenError';
    this.imageName = imageName;
  }
}

/** An instance id that does not exist (or is malformed), named for the operator. */
export class UnknownResourceError extends SnapkeeperError {
  public readonly resourceId: string;

  public constructor(kind: string, resourceId: string, options?: ErrorOptions) {
    super(`${kind} ${resourceId} does not exist in this account and region`, options);
    this.name = 'UnknownResourceError';
    this.resourceId = resourceId;
  }
}
