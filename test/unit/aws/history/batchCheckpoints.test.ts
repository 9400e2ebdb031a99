import 'aws-sdk-client-mock-vitest/extend';
import {
  BatchWriteCommand,
  type BatchWriteCommandInput,
  DynamoDBDocumentClient,
  GetCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BatchCheckpoints } from '../../../../lib/aws/history/batchCheckpoints.ts';
import { BATCH_ROUNDS } from '../../../../lib/aws/history/table.ts';
import { conditionFailed, stubbedTable, TABLE, throughputExceeded } from './dynamoDbAnswers.ts';

const docMock = mockClient(DynamoDBDocumentClient);
const NOW = new Date('2026-11-23T03:00:05.000Z');
const STALE = new Date('2026-11-23T02:45:05.000Z');
const KEY = { PK: 'RUN#r1', SK: 'BATCH#self/eu-west-1/0001' };

const planned = (count: number) =>
  Array.from({ length: count }, (_, i) => ({
    batchId: `self/eu-west-1/${String(i + 1).padStart(4, '0')}`,
    target: { account: 'self', region: 'eu-west-1' },
    instances: 200,
  }));

afterEach(() => {
  docMock.reset();
  vi.useRealTimers();
});

describe('Class: BatchCheckpoints', () => {
  describe('Method: putBatches', () => {
    it('records every batch pending, with no attempt, in calls of at most 25', async () => {
      // Prepare
      docMock.on(BatchWriteCommand).resolves({ UnprocessedItems: {} });

      // Act
      await new BatchCheckpoints(stubbedTable()).putBatches('r1', planned(30), NOW);

      // Assess
      const calls = docMock
        .commandCalls(BatchWriteCommand)
        .map((c) => (c.args[0].input as BatchWriteCommandInput).RequestItems?.[TABLE] ?? []);
      expect(calls.map((c) => c.length)).toEqual([25, 5]);
      expect(calls[0]?.[0]?.PutRequest?.Item).toMatchObject({
        ...KEY,
        type: 'batch',
        runId: 'r1',
        status: 'pending',
        attempts: 0,
        instances: 200,
        createdAt: NOW.toISOString(),
      });
    });

    it('writes the UnprocessedItems again until DynamoDB answers none', async () => {
      // Prepare
      docMock
        .on(BatchWriteCommand)
        .callsFakeOnce((input: BatchWriteCommandInput) => ({
          UnprocessedItems: { [TABLE]: (input.RequestItems?.[TABLE] ?? []).slice(1) },
        }))
        .resolves({ UnprocessedItems: {} });

      // Act
      await new BatchCheckpoints(stubbedTable()).putBatches('r1', planned(2), NOW);

      // Assess
      const second = docMock.commandCalls(BatchWriteCommand)[1]?.args[0]
        .input as BatchWriteCommandInput;
      expect(second.RequestItems?.[TABLE]?.map((r) => r.PutRequest?.Item?.SK)).toEqual([
        'BATCH#self/eu-west-1/0002',
      ]);
    });

    it('fails naming BatchWriteItem when items stay unprocessed through every round', async () => {
      // Prepare: DynamoDB never processes the item; the back-offs run on a fake clock.
      vi.useFakeTimers({ toFake: ['setTimeout'] });
      docMock.on(BatchWriteCommand).callsFake((input: BatchWriteCommandInput) => ({
        UnprocessedItems: { [TABLE]: input.RequestItems?.[TABLE] ?? [] },
      }));

      // Act
      const put = new BatchCheckpoints(stubbedTable()).putBatches('r1', planned(1), NOW);
      const failure = expect(put).rejects.toMatchObject({
        name: 'AwsCallError',
        action: 'BatchWriteItem',
        message: expect.stringContaining('1 batch records were never written'),
      });
      await vi.runAllTimersAsync();

      // Assess
      await failure;
      expect(docMock).toHaveReceivedCommandTimes(BatchWriteCommand, BATCH_ROUNDS);
    });

    it('fails at once when a call is throttled past the SDK retries', async () => {
      // Prepare
      docMock.on(BatchWriteCommand).rejects(throughputExceeded());

      // Act
      const put = new BatchCheckpoints(stubbedTable()).putBatches('r1', planned(30), NOW);

      // Assess
      await expect(put).rejects.toMatchObject({
        code: 'ProvisionedThroughputExceededException',
      });
      expect(docMock).toHaveReceivedCommandTimes(BatchWriteCommand, 1);
    });
  });

  describe('Method: claimBatch', () => {
    it('claims a pending, retry or stale batch with one more attempt', async () => {
      // Prepare
      docMock.on(UpdateCommand).resolves({
        Attributes: { ...KEY, batchId: 'self/eu-west-1/0001', status: 'running', attempts: 2 },
      });

      // Act
      const claim = await new BatchCheckpoints(stubbedTable()).claimBatch(
        'r1',
        'self/eu-west-1/0001',
        NOW,
        STALE,
      );

      // Assess
      expect(claim).toEqual({
        kind: 'claimed',
        checkpoint: { batchId: 'self/eu-west-1/0001', status: 'running', attempts: 2 },
      });
      const sent = docMock.commandCalls(UpdateCommand)[0]?.args[0].input as UpdateCommandInput;
      expect(sent).toMatchObject({
        Key: KEY,
        ConditionExpression:
          'attribute_not_exists(PK) OR #status IN (:pending, :retry) OR (#status = :running AND leaseAt < :stale)',
        ReturnValues: 'ALL_NEW',
      });
      expect(sent.ExpressionAttributeValues?.[':stale']).toBe(STALE.toISOString());
    });

    it('answers final for a batch delivered again after it finished', async () => {
      // Prepare
      docMock.on(UpdateCommand).rejects(conditionFailed());
      docMock.on(GetCommand).resolves({
        Item: { ...KEY, batchId: 'self/eu-west-1/0001', status: 'succeeded', attempts: 1 },
      });

      // Act
      const claim = await new BatchCheckpoints(stubbedTable()).claimBatch(
        'r1',
        'self/eu-west-1/0001',
        NOW,
        STALE,
      );

      // Assess
      expect(claim.kind).toBe('final');
      expect(docMock).toHaveReceivedCommandWith(GetCommand, { Key: KEY, ConsistentRead: true });
    });

    it('answers busy while another worker holds the batch', async () => {
      // Prepare
      docMock.on(UpdateCommand).rejects(conditionFailed());
      docMock.on(GetCommand).resolves({
        Item: { ...KEY, batchId: 'self/eu-west-1/0001', status: 'running', attempts: 1 },
      });

      // Act
      const claim = await new BatchCheckpoints(stubbedTable()).claimBatch(
        'r1',
        'self/eu-west-1/0001',
        NOW,
        STALE,
      );

      // Assess
      expect(claim).toEqual({
        kind: 'busy',
        checkpoint: { batchId: 'self/eu-west-1/0001', status: 'running', attempts: 1 },
      });
    });
  });

  describe('Method: finishBatch', () => {
    it('writes the outcome with its counts, and the error summary cut when given', async () => {
      // Prepare
      docMock.on(UpdateCommand).resolves({});

      // Act
      await new BatchCheckpoints(stubbedTable()).finishBatch('r1', 'self/eu-west-1/0001', {
        status: 'retry',
        endedAt: NOW.toISOString(),
        errorSummary: 'e'.repeat(3000),
      });

      // Assess
      const sent = docMock.commandCalls(UpdateCommand)[0]?.args[0].input as UpdateCommandInput;
      expect(sent.UpdateExpression).toBe(
        'SET #status = :status, endedAt = :endedAt, counts = :counts, errorSummary = :error',
      );
      expect(sent.ExpressionAttributeValues?.[':counts']).toEqual({});
      expect(String(sent.ExpressionAttributeValues?.[':error'])).toHaveLength(2000);
    });
  });
});
