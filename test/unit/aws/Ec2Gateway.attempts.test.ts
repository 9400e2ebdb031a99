import { EC2Client } from '@aws-sdk/client-ec2';
import { HttpResponse } from '@smithy/protocol-http';
import { describe, expect, it } from 'vitest';
import { attemptMayHaveTakenEffect, Ec2Gateway } from '../../../lib/aws/Ec2Gateway.ts';
import { AwsCallError, CreateSnapshotSetError, Ec2ErrorCode } from '../../../lib/aws/errors.ts';
import type { SnapshotSetRequest } from '../../../lib/domain/backupPlan.ts';

/**
 * These tests run the real SDK client (its retry loop, its XML deserializer) against a
 * request handler that answers each attempt as the EC2 API reference documents: the
 * gateway must tell an attempt EC2 refused (throttled, 4xx) from one whose answer was
 * lost after EC2 may have acted (timeout, cut connection, 5xx). aws-sdk-client-mock
 * replaces `send`, so it cannot show what happens inside the retry loop.
 */
type Answer =
  | { readonly status: number; readonly body: string }
  | { readonly throws: Error & { code?: string | undefined } };

const CREATED =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<CreateSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-1</requestId>' +
  '<snapshotSet><item><snapshotId>snap-0answered</snapshotId><volumeId>vol-1</volumeId>' +
  '<volumeSize>8</volumeSize><state>pending</state></item></snapshotSet></CreateSnapshotsResponse>';

function ec2Error(code: string, status: number): Answer {
  return {
    status,
    body:
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<Response><Errors><Error><Code>${code}</Code><Message>${code}</Message></Error></Errors>` +
      '<RequestID>r-2</RequestID></Response>',
  };
}

function networkError(name: string, code?: string): Answer {
  return { throws: Object.assign(new Error(`${name} (simulated)`), { name, code }) };
}

/** A gateway on a real EC2 client whose attempts get `answers` in turn. */
function gatewayAnswering(answers: readonly Answer[], maxAttempts = 4) {
  let attempt = 0;
  const client = new EC2Client({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts,
    requestHandler: {
      handle: async () => {
        const answer = answers[Math.min(attempt, answers.length - 1)] as Answer;
        attempt += 1;
        if ('throws' in answer) throw answer.throws;
        return {
          response: new HttpResponse({
            statusCode: answer.status,
            headers: { 'content-type': 'text/xml;charset=UTF-8' },
            body: new TextEncoder().encode(answer.body),
          }),
        };
      },
    },
  });
  return {
    gateway: new Ec2Gateway(client, { sleep: async () => undefined, snapshotRateRetryMs: 0 }),
    attempts: () => attempt,
  };
}

function request(): SnapshotSetRequest {
  return {
    instanceId: 'i-1',
    excludeBootVolume: false,
    excludeDataVolumeIds: [],
    included: [{ volumeId: 'vol-1', deviceName: '/dev/xvda' }],
    excluded: [],
    description: 'snapkeeper daily',
    tags: [{ Key: 'snapkeeper:managed', Value: 'true' }],
  } as unknown as SnapshotSetRequest;
}

describe('Class: Ec2Gateway, the attempts of a CreateSnapshots', () => {
  it('counts no uncertain attempt when the earlier attempts were throttled (EC2 refused them)', async () => {
    // Prepare
    const { gateway, attempts } = gatewayAnswering([
      ec2Error(Ec2ErrorCode.RequestLimitExceeded, 503),
      createdAnswer(),
    ]);

    // Act
    const created = await gateway.createSnapshotSet(request());

    // Assess
    expect(attempts()).toBe(2);
    expect(created).toMatchObject([
      { snapshotId: 'snap-0answered', attempts: 2, uncertainAttempts: 0 },
    ]);
  });

  it('counts a timed-out attempt and a 500 before the answer as two that may have made a set', async () => {
    // Prepare
    const { gateway } = gatewayAnswering([
      networkError('TimeoutError'),
      ec2Error('InternalError', 500),
      createdAnswer(),
    ]);

    // Act
    const created = await gateway.createSnapshotSet(request());

    // Assess
    expect(created).toMatchObject([{ attempts: 3, uncertainAttempts: 2 }]);
  });

  it('fails with the uncertain attempts counted when every attempt lost its answer', async () => {
    // Prepare
    const { gateway, attempts } = gatewayAnswering([networkError('Error', 'ECONNRESET')], 3);

    // Act
    const error = await gateway.createSnapshotSet(request()).catch((e: unknown) => e);

    // Assess
    expect(attempts()).toBe(3);
    expect(error).toBeInstanceOf(CreateSnapshotSetError);
    expect(error).toBeInstanceOf(AwsCallError);
    expect(error).toMatchObject({ code: 'ECONNRESET', uncertainAttempts: 3 });
  });

  it('keeps the count when a refusal follows a lost answer (the lost attempt may have made the set)', async () => {
    // Prepare: the lost attempt made snapshots, so the retry hits the pending limit.
    const { gateway } = gatewayAnswering([
      networkError('TimeoutError'),
      ec2Error(Ec2ErrorCode.ConcurrentSnapshotLimitExceeded, 400),
    ]);

    // Act
    const error = await gateway.createSnapshotSet(request()).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(CreateSnapshotSetError);
    expect(error).toMatchObject({
      code: Ec2ErrorCode.ConcurrentSnapshotLimitExceeded,
      uncertainAttempts: 1,
    });
    expect((error as Error).message).toBe(
      'CreateSnapshots failed: ConcurrentSnapshotLimitExceeded: earlier snapshots of i-1 are still pending (at most 5 per volume, 1 for st1/sc1); not retried in this run',
    );
  });

  it('counts no uncertain attempt for a client error EC2 answered at once', async () => {
    // Prepare
    const { gateway, attempts } = gatewayAnswering([ec2Error(Ec2ErrorCode.InstanceNotFound, 400)]);

    // Act
    const error = await gateway.createSnapshotSet(request()).catch((e: unknown) => e);

    // Assess
    expect(attempts()).toBe(1);
    expect(error).toMatchObject({ code: Ec2ErrorCode.InstanceNotFound, uncertainAttempts: 0 });
  });
});

describe('Function: attemptMayHaveTakenEffect', () => {
  const failure = (name: string, status?: number, code?: string) =>
    Object.assign(new Error(name), {
      name,
      ...(code ? { code } : {}),
      ...(status ? { $metadata: { httpStatusCode: status } } : {}),
    });

  it.each([
    ['a timeout', failure('TimeoutError'), true],
    ['a cut connection', failure('Error', undefined, 'ECONNRESET'), true],
    ['an internal error', failure('InternalError', 500), true],
    ['an unavailable service', failure('ServiceUnavailable', 503), true],
    ['something unknown', 'boom', true],
    ['throttling', failure('RequestLimitExceeded', 503), false],
    ['the per-volume rate', failure('SnapshotCreationPerVolumeRateExceeded', 400), false],
    ['a refused connection', failure('Error', undefined, 'ECONNREFUSED'), false],
    ['a client error', failure('UnauthorizedOperation', 403), false],
  ])('is %s: %s', (_what, error, expected) => {
    expect(attemptMayHaveTakenEffect(error)).toBe(expected);
  });
});

function createdAnswer(): Answer {
  return { status: 200, body: CREATED };
}
