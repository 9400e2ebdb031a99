/**
 * Errors per layer: each layer's `errors.ts` holds its error classes, every class keeps
 * its `name` (and, for AWS calls, its `code`), and every class takes `{ cause }` and
 * passes it on (ES2022), so a log or a report can follow a failure to its origin.
 */
import { describe, expect, it } from 'vitest';
import * as awsErrors from '../../lib/aws/errors.ts';
import * as domainErrors from '../../lib/domain/errors.ts';
import * as jobErrors from '../../lib/jobs/errors.ts';

const cause = new Error('the origin');

/** One line per error class: how to make it with a cause, and what it must say. */
const cases: readonly {
  readonly make: (options: ErrorOptions) => Error;
  readonly name: string;
  readonly code?: string;
}[] = [
  { make: (o) => new domainErrors.SnapkeeperError('x', o), name: 'SnapkeeperError' },
  {
    make: (o) => new domainErrors.InvalidTagError('snapkeeper:retain', 'x', 'is not a count', o),
    name: 'InvalidTagError',
  },
  { make: (o) => new domainErrors.InvalidEventError('x', o), name: 'InvalidEventError' },
  {
    make: (o) => new domainErrors.UnknownScheduleError('nightly', ['daily'], o),
    name: 'UnknownScheduleError',
  },
  {
    make: (o) => new domainErrors.InvalidScheduleDefinitionError('x', o),
    name: 'InvalidScheduleDefinitionError',
  },
  {
    make: (o) => new domainErrors.ConfigurationError('TABLE_NAME', 'is missing', o),
    name: 'ConfigurationError',
  },
  {
    make: (o) => new awsErrors.AwsCallError('DeleteSnapshot', 'Throttling', 'slow down', o),
    name: 'AwsCallError',
    code: 'Throttling',
  },
  {
    make: (o) => new awsErrors.ConcurrentSnapshotLimitError('i-1', o),
    name: 'ConcurrentSnapshotLimitError',
    code: 'ConcurrentSnapshotLimitExceeded',
  },
  {
    make: (o) => new awsErrors.SnapshotRateDeferredError('i-1', 3, o),
    name: 'SnapshotRateDeferredError',
    code: 'SnapshotCreationPerVolumeRateExceeded',
  },
  {
    make: (o) => new awsErrors.SnapshotInUseError('snap-1', o),
    name: 'SnapshotInUseError',
    code: 'InvalidSnapshot.InUse',
  },
  {
    make: (o) => new awsErrors.SnapshotNotFoundError('snap-1', o),
    name: 'SnapshotNotFoundError',
    code: 'InvalidSnapshot.NotFound',
  },
  {
    make: (o) => new awsErrors.ImageGoneError('ami-1', 'InvalidAMIID.NotFound', o),
    name: 'ImageGoneError',
    code: 'InvalidAMIID.NotFound',
  },
  {
    // Named as the AwsCallError it is (reports read `name` and `code`); its cause is the
    // error CreateSnapshots failed with.
    make: (o) => new awsErrors.CreateSnapshotSetError(o.cause, 2),
    name: 'AwsCallError',
    code: 'UnknownError',
  },
  {
    make: (o) => new awsErrors.ImageNameTakenError('snapkeeper-web', o),
    name: 'ImageNameTakenError',
    code: 'InvalidAMIName.Duplicate',
  },
  {
    make: (o) => new awsErrors.UnknownResourceError('instance', 'i-1', o),
    name: 'UnknownResourceError',
  },
  {
    make: (o) => new jobErrors.RunFailedError('backup', 'run-1', 'nothing done', {}, o),
    name: 'RunFailedError',
  },
  {
    make: (o) => new jobErrors.SlotInProgressError('slot held', 'run-0', o),
    name: 'SlotInProgressError',
  },
  {
    make: (o) => new jobErrors.RunIncompleteError('backup', 'run-1', 3, {}, o),
    name: 'RunIncompleteError',
  },
  { make: (o) => new jobErrors.BatchRetryError('b-1', 'busy', o), name: 'BatchRetryError' },
];

describe('every error class of every layer', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s keeps its name, code and cause', (_, c) => {
    const error = c.make({ cause });
    expect(error).toBeInstanceOf(domainErrors.SnapkeeperError);
    expect(error.name).toBe(c.name);
    expect(error.cause).toBe(cause);
    if (c.code !== undefined) expect((error as awsErrors.AwsCallError).code).toBe(c.code);
  });

  it('is listed above, so that a new class cannot skip its cause', () => {
    const listed = new Set(cases.map((c) => c.make({ cause }).constructor));
    const exported = [domainErrors, awsErrors, jobErrors].flatMap((module) =>
      Object.values(module).filter(
        (value): value is new (...args: never[]) => Error =>
          typeof value === 'function' && value.prototype instanceof Error,
      ),
    );
    expect(exported.filter((errorClass) => !listed.has(errorClass))).toEqual([]);
  });
});

describe('each layer holds its own errors', () => {
  it('the domain holds the errors of tags, events, schedules and configuration', () => {
    expect(Object.keys(domainErrors).sort()).toEqual([
      'ConfigurationError',
      'InvalidEventError',
      'InvalidScheduleDefinitionError',
      'InvalidTagError',
      'SnapkeeperError',
      'UnknownScheduleError',
    ]);
  });

  it("the jobs hold a run's and a batch's endings", () => {
    expect(Object.keys(jobErrors).sort()).toEqual([
      'BatchRetryError',
      'RunFailedError',
      'RunIncompleteError',
      'SlotInProgressError',
    ]);
  });

  it('the moved classes are still exported from their old modules', async () => {
    const ec2 = await import('../../lib/aws/Ec2Gateway.ts');
    const images = await import('../../lib/aws/Ec2ImageGateway.ts');
    const restore = await import('../../lib/aws/Ec2RestoreGateway.ts');
    const fanOut = await import('../../lib/jobs/fanOutJob.ts');
    expect(ec2.CreateSnapshotSetError).toBe(awsErrors.CreateSnapshotSetError);
    expect(images.ImageNameTakenError).toBe(awsErrors.ImageNameTakenError);
    expect(restore.UnknownResourceError).toBe(awsErrors.UnknownResourceError);
    expect(fanOut.BatchRetryError).toBe(jobErrors.BatchRetryError);
  });
});
