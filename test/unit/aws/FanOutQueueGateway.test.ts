import 'aws-sdk-client-mock-vitest/extend';
import {
  SendMessageBatchCommand,
  type SendMessageBatchCommandInput,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import { FanOutQueueGateway } from '../../../lib/aws/FanOutQueueGateway.ts';
import type { BatchMessage } from '../../../lib/domain/fanOut.ts';

const sqsMock = mockClient(SQSClient);
const QUEUE = 'http://127.0.0.1:9/123456789012/snapkeeper-test-fanout';

function message(n: number): BatchMessage {
  return {
    runId: 'r1',
    job: 'backup',
    schedule: 'daily',
    slot: '2026-11-23T03:00:00Z',
    dryRun: false,
    batches: 25,
    batchId: `self/eu-west-1/${String(n).padStart(4, '0')}`,
    target: { account: 'self', region: 'eu-west-1' },
    instanceIds: [`i-${String(n).padStart(8, '0')}`],
  };
}

function gateway(): FanOutQueueGateway {
  return new FanOutQueueGateway(new SQSClient({ region: 'eu-west-1' }), QUEUE);
}

function sentBodies(): string[][] {
  return sqsMock
    .commandCalls(SendMessageBatchCommand)
    .map((call) =>
      ((call.args[0].input as SendMessageBatchCommandInput).Entries ?? []).map(
        (e) => (JSON.parse(e.MessageBody ?? '{}') as BatchMessage).batchId,
      ),
    );
}

afterEach(() => {
  sqsMock.reset();
});

describe('Class: FanOutQueueGateway', () => {
  it('sends every message as its JSON, ten a call, to its queue', async () => {
    // Prepare
    sqsMock.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    const messages = Array.from({ length: 23 }, (_, i) => message(i + 1));

    // Act
    const unsent = await gateway().send(messages);

    // Assess
    expect(unsent).toEqual([]);
    expect(sentBodies().map((batch) => batch.length)).toEqual([10, 10, 3]);
    expect(sentBodies().flat()).toEqual(messages.map((m) => m.batchId));
    expect(sqsMock).toHaveReceivedCommandWith(SendMessageBatchCommand, { QueueUrl: QUEUE });
  });

  it('holds every message back the delay asked, at most the 900 s SQS allows', async () => {
    // Prepare
    sqsMock.on(SendMessageBatchCommand).resolves({ Failed: [] });

    // Act
    await gateway().send([message(1)], 300);
    await gateway().send([message(2)], 5000);

    // Assess
    const delays = sqsMock
      .commandCalls(SendMessageBatchCommand)
      .map(
        (call) => (call.args[0].input as SendMessageBatchCommandInput).Entries?.[0]?.DelaySeconds,
      );
    expect(delays).toEqual([300, 900]);
  });

  it('sends again the entries SQS did not take, and only those', async () => {
    // Prepare: the first call takes 2 of 3
    sqsMock
      .on(SendMessageBatchCommand)
      .resolvesOnce({
        Failed: [{ Id: '1', Code: 'InternalError', SenderFault: false }],
      })
      .resolves({ Failed: [] });

    // Act
    const unsent = await gateway().send([message(1), message(2), message(3)]);

    // Assess
    expect(unsent).toEqual([]);
    expect(sentBodies()).toEqual([
      ['self/eu-west-1/0001', 'self/eu-west-1/0002', 'self/eu-west-1/0003'],
      ['self/eu-west-1/0002'],
    ]);
  });

  it('gives back the batch ids still refused after three rounds', async () => {
    // Prepare
    sqsMock
      .on(SendMessageBatchCommand)
      .resolves({ Failed: [{ Id: '0', Code: 'InternalError', SenderFault: false }] });

    // Act
    const unsent = await gateway().send([message(7)]);

    // Assess
    expect(unsent).toEqual(['self/eu-west-1/0007']);
    expect(sqsMock).toHaveReceivedCommandTimes(SendMessageBatchCommand, 3);
  });

  it('throws an AwsCallError naming SendMessageBatch when SQS refuses the call itself', async () => {
    // Prepare
    sqsMock.on(SendMessageBatchCommand).rejects(
      Object.assign(new Error('Access to the resource is denied'), {
        name: 'AccessDenied',
        $fault: 'client',
        $metadata: { httpStatusCode: 403 },
      }),
    );

    // Act
    const error = await gateway()
      .send([message(1)])
      .catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(AwsCallError);
    expect((error as AwsCallError).message).toMatch(/SendMessageBatch/);
    expect((error as AwsCallError).code).toBe('AccessDenied');
  });
});
