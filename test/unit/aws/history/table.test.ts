import 'aws-sdk-client-mock-vitest/extend';
import {
  BatchGetCommand,
  type BatchGetCommandInput,
  BatchWriteCommand,
  type BatchWriteCommandInput,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsCallError } from '../../../../lib/aws/errors.ts';
import {
  BATCH_BACKOFF_CAP_MS,
  BATCH_ROUNDS,
  backoffMs,
  retryUnprocessed,
} from '../../../../lib/aws/history/table.ts';
import {
  conditionFailed,
  recordedWaits,
  stubbedTable,
  TABLE,
  throughputExceeded,
} from './dynamoDbAnswers.ts';

const docMock = mockClient(DynamoDBDocumentClient);

const item = (n: number) => ({ PK: `RUN#r1`, SK: `BATCH#${String(n).padStart(3, '0')}`, n });
const items = (count: number) => Array.from({ length: count }, (_, n) => item(n));

/** The items of every BatchWriteItem call, call by call. */
function writtenItems(): Record<string, unknown>[][] {
  return docMock
    .commandCalls(BatchWriteCommand)
    .map((call) =>
      ((call.args[0].input as BatchWriteCommandInput).RequestItems?.[TABLE] ?? []).map(
        (r) => r.PutRequest?.Item as Record<string, unknown>,
      ),
    );
}

/** DynamoDB leaving all but the first item of a call unprocessed. */
const leaveAllButFirst = (input: BatchWriteCommandInput) => ({
  UnprocessedItems: { [TABLE]: (input.RequestItems?.[TABLE] ?? []).slice(1) },
});

afterEach(() => docMock.reset());

describe('Function: backoffMs', () => {
  it('waits at most 50 ms before the first retry and doubles the ceiling each round', () => {
    // Act
    const ceilings = [1, 2, 3, 4].map((round) => backoffMs(round, () => 1));

    // Assess
    expect(ceilings).toEqual([50, 100, 200, 400]);
  });

  it('draws the wait with full jitter below the ceiling, never above the cap', () => {
    // Act and assess
    expect(backoffMs(3, () => 0.5)).toBe(100);
    expect(backoffMs(3, () => 0)).toBe(0);
    expect(backoffMs(40, () => 1)).toBe(BATCH_BACKOFF_CAP_MS);
  });
});

describe('Function: retryUnprocessed', () => {
  it('calls again with what is left until nothing is, waiting between rounds', async () => {
    // Prepare
    const { waits, sleep } = recordedWaits();
    const seen: number[][] = [];

    // Act
    const left = await retryUnprocessed(
      [1, 2, 3],
      async (pending) => {
        seen.push([...pending]);
        return pending.slice(1);
      },
      { rounds: 5, sleep },
    );

    // Assess
    expect(left).toEqual([]);
    expect(seen).toEqual([[1, 2, 3], [2, 3], [3]]);
    expect(waits).toHaveLength(2);
  });

  it('stops after the bound on rounds and answers what is still left', async () => {
    // Prepare
    const { waits, sleep } = recordedWaits();
    let calls = 0;

    // Act
    const left = await retryUnprocessed(
      ['x'],
      async (pending) => {
        calls += 1;
        return [...pending];
      },
      { rounds: 4, sleep },
    );

    // Assess
    expect(left).toEqual(['x']);
    expect(calls).toBe(4);
    expect(waits).toHaveLength(3);
  });

  it('makes nothing of an empty batch', async () => {
    // Act
    const left = await retryUnprocessed([], async () => ['never'], {});

    // Assess
    expect(left).toEqual([]);
  });
});

describe('Class: HistoryTable', () => {
  describe('Method: putIf', () => {
    it('answers false when DynamoDB refuses the condition (ConditionalCheckFailedException)', async () => {
      // Prepare
      docMock.on(PutCommand).rejects(conditionFailed());

      // Act
      const written = await stubbedTable().putIf({
        Item: { PK: 'SLOT#x', SK: 'CLAIM' },
        ConditionExpression: 'attribute_not_exists(PK)',
      });

      // Assess
      expect(written).toBe(false);
      expect(docMock).toHaveReceivedCommandWith(PutCommand, {
        TableName: TABLE,
        ConditionExpression: 'attribute_not_exists(PK)',
      });
    });

    it('throws any other error as an AwsCallError naming PutItem', async () => {
      // Prepare
      docMock.on(PutCommand).rejects(throughputExceeded());

      // Act
      const written = stubbedTable().putIf({ Item: { PK: 'SLOT#x', SK: 'CLAIM' } });

      // Assess
      await expect(written).rejects.toBeInstanceOf(AwsCallError);
      await expect(written).rejects.toMatchObject({
        action: 'PutItem',
        code: 'ProvisionedThroughputExceededException',
        httpStatus: 400,
      });
    });
  });

  describe('Method: put', () => {
    it('throws a failed condition like any other error', async () => {
      // Prepare
      docMock.on(PutCommand).rejects(conditionFailed());

      // Act
      const written = stubbedTable().put({
        Item: { PK: 'RUN#r1', SK: 'RUN' },
        ConditionExpression: 'attribute_not_exists(PK)',
      });

      // Assess
      await expect(written).rejects.toMatchObject({
        name: 'AwsCallError',
        action: 'PutItem',
        code: 'ConditionalCheckFailedException',
      });
    });
  });

  describe('Method: updateIf', () => {
    it('answers the attributes asked back, or {} when none were', async () => {
      // Prepare
      docMock
        .on(UpdateCommand)
        .resolvesOnce({ Attributes: { status: 'running' } })
        .resolvesOnce({});
      const table = stubbedTable();
      const update = { Key: { PK: 'RUN#r1', SK: 'RUN' }, UpdateExpression: 'SET a = :a' };

      // Act
      const first = await table.updateIf(update);
      const second = await table.updateIf(update);

      // Assess
      expect(first).toEqual({ status: 'running' });
      expect(second).toEqual({});
    });

    it('answers false on a failed condition and throws UpdateItem errors otherwise', async () => {
      // Prepare
      docMock.on(UpdateCommand).rejectsOnce(conditionFailed()).rejectsOnce(throughputExceeded());
      const table = stubbedTable();
      const update = { Key: { PK: 'RUN#r1', SK: 'RUN' }, UpdateExpression: 'SET a = :a' };

      // Act and assess
      await expect(table.updateIf(update)).resolves.toBe(false);
      await expect(table.updateIf(update)).rejects.toMatchObject({
        action: 'UpdateItem',
        code: 'ProvisionedThroughputExceededException',
      });
    });
  });

  describe('Method: get', () => {
    it('reads strongly consistent and wraps a failure as an AwsCallError naming GetItem', async () => {
      // Prepare
      docMock
        .on(GetCommand)
        .resolvesOnce({ Item: { PK: 'RUN#r1' } })
        .rejectsOnce(throughputExceeded());
      const table = stubbedTable();

      // Act
      const found = await table.get({ PK: 'RUN#r1', SK: 'RUN' });
      const failed = table.get({ PK: 'RUN#r1', SK: 'RUN' });

      // Assess
      expect(found).toEqual({ PK: 'RUN#r1' });
      expect(docMock).toHaveReceivedCommandWith(GetCommand, {
        TableName: TABLE,
        ConsistentRead: true,
      });
      await expect(failed).rejects.toMatchObject({ action: 'GetItem' });
    });
  });

  describe('Method: writeBatch', () => {
    it('writes 60 items in calls of at most 25', async () => {
      // Prepare
      docMock.on(BatchWriteCommand).resolves({ UnprocessedItems: {} });

      // Act
      const outcome = await stubbedTable().writeBatch(items(60), (i) => i, {
        failedCalls: 'throw',
      });

      // Assess
      expect(writtenItems().map((call) => call.length)).toEqual([25, 25, 10]);
      expect(outcome).toEqual({ unprocessed: [], failed: [] });
    });

    it('writes the UnprocessedItems again, backing off, until DynamoDB answers none', async () => {
      // Prepare
      const { waits, sleep } = recordedWaits();
      docMock
        .on(BatchWriteCommand)
        .callsFakeOnce(leaveAllButFirst)
        .callsFakeOnce(leaveAllButFirst)
        .resolves({ UnprocessedItems: {} });

      // Act
      const outcome = await stubbedTable().writeBatch(items(3), (i) => i, {
        sleep,
        failedCalls: 'throw',
      });

      // Assess
      expect(writtenItems().map((call) => call.map((i) => i.n))).toEqual([[0, 1, 2], [1, 2], [2]]);
      expect(outcome.unprocessed).toEqual([]);
      expect(waits).toHaveLength(2);
      expect(waits[0]).toBeLessThanOrEqual(50);
      expect(waits[1]).toBeLessThanOrEqual(100);
    });

    it('gives up after the bound on rounds and answers the items never written', async () => {
      // Prepare: DynamoDB never processes anything.
      const { sleep } = recordedWaits();
      docMock.on(BatchWriteCommand).callsFake((input: BatchWriteCommandInput) => ({
        UnprocessedItems: { [TABLE]: input.RequestItems?.[TABLE] ?? [] },
      }));

      // Act
      const outcome = await stubbedTable().writeBatch(items(2), (i) => i, {
        sleep,
        failedCalls: 'throw',
      });

      // Assess
      expect(outcome.unprocessed.map((i) => i.n)).toEqual([0, 1]);
      expect(docMock).toHaveReceivedCommandTimes(BatchWriteCommand, BATCH_ROUNDS);
    });

    it("collects a call that fails (ProvisionedThroughputExceededException) and writes the others' items", async () => {
      // Prepare: the second of two calls fails.
      docMock
        .on(BatchWriteCommand)
        .resolvesOnce({ UnprocessedItems: {} })
        .rejectsOnce(throughputExceeded());

      // Act
      const outcome = await stubbedTable().writeBatch(items(30), (i) => i, {
        failedCalls: 'collect',
      });

      // Assess
      expect(outcome.unprocessed).toEqual([]);
      expect(outcome.failed).toHaveLength(1);
      expect(outcome.failed[0]?.entries.map((i) => i.n)).toEqual([25, 26, 27, 28, 29]);
      expect(outcome.failed[0]?.error).toMatchObject({
        action: 'BatchWriteItem',
        code: 'ProvisionedThroughputExceededException',
      });
    });

    it('throws the first failed call when told to, writing nothing after it', async () => {
      // Prepare
      docMock.on(BatchWriteCommand).rejects(throughputExceeded());

      // Act
      const outcome = stubbedTable().writeBatch(items(30), (i) => i, { failedCalls: 'throw' });

      // Assess
      await expect(outcome).rejects.toMatchObject({
        name: 'AwsCallError',
        action: 'BatchWriteItem',
        code: 'ProvisionedThroughputExceededException',
      });
      expect(docMock).toHaveReceivedCommandTimes(BatchWriteCommand, 1);
    });
  });

  describe('Method: getBatch', () => {
    const keys = (count: number) =>
      Array.from({ length: count }, (_, n) => ({ PK: `CREATED#snap-${n}`, SK: 'CREATED' }));

    it('reads 250 keys in strongly consistent calls of at most 100', async () => {
      // Prepare: every key found.
      docMock.on(BatchGetCommand).callsFake((input: BatchGetCommandInput) => ({
        Responses: { [TABLE]: input.RequestItems?.[TABLE]?.Keys ?? [] },
      }));

      // Act
      const found = await stubbedTable().getBatch(keys(250), { concurrency: 2 });

      // Assess
      const calls = docMock.commandCalls(BatchGetCommand).map((c) => c.args[0].input);
      expect(calls.map((c) => c.RequestItems?.[TABLE]?.Keys?.length)).toEqual([100, 100, 50]);
      expect(calls.every((c) => c.RequestItems?.[TABLE]?.ConsistentRead === true)).toBe(true);
      expect(found).toHaveLength(250);
    });

    it('reads the UnprocessedKeys again until DynamoDB answers none', async () => {
      // Prepare
      const { waits, sleep } = recordedWaits();
      docMock
        .on(BatchGetCommand)
        .resolvesOnce({
          Responses: { [TABLE]: [{ PK: 'CREATED#snap-0' }] },
          UnprocessedKeys: { [TABLE]: { Keys: keys(3).slice(1) } },
        })
        .resolvesOnce({
          Responses: { [TABLE]: [{ PK: 'CREATED#snap-1' }] },
          UnprocessedKeys: { [TABLE]: { Keys: keys(3).slice(2) } },
        })
        .resolvesOnce({ Responses: { [TABLE]: [{ PK: 'CREATED#snap-2' }] } });

      // Act
      const found = await stubbedTable().getBatch(keys(3), { sleep, concurrency: 1 });

      // Assess
      expect(found.map((i) => i.PK)).toEqual([
        'CREATED#snap-0',
        'CREATED#snap-1',
        'CREATED#snap-2',
      ]);
      const asked = docMock
        .commandCalls(BatchGetCommand)
        .map((c) => c.args[0].input.RequestItems?.[TABLE]?.Keys?.length);
      expect(asked).toEqual([3, 2, 1]);
      expect(waits).toHaveLength(2);
    });

    it('throws an AwsCallError naming BatchGetItem when keys stay unprocessed past the bound', async () => {
      // Prepare
      const { waits, sleep } = recordedWaits();
      docMock.on(BatchGetCommand).resolves({
        Responses: { [TABLE]: [] },
        UnprocessedKeys: { [TABLE]: { Keys: keys(1) } },
      });

      // Act
      const found = stubbedTable().getBatch(keys(1), { rounds: 3, sleep, concurrency: 1 });

      // Assess
      await expect(found).rejects.toMatchObject({
        name: 'AwsCallError',
        action: 'BatchGetItem',
        message: expect.stringContaining('1 key(s) stayed unprocessed after 3 tries'),
      });
      expect(docMock).toHaveReceivedCommandTimes(BatchGetCommand, 3);
      expect(waits).toHaveLength(2);
    });

    it('throws the AWS error of a refused read (ProvisionedThroughputExceededException)', async () => {
      // Prepare
      docMock.on(BatchGetCommand).rejects(throughputExceeded());

      // Act
      const found = stubbedTable().getBatch(keys(1), { concurrency: 1 });

      // Assess
      await expect(found).rejects.toMatchObject({
        action: 'BatchGetItem',
        code: 'ProvisionedThroughputExceededException',
      });
    });
  });

  describe('Method: query', () => {
    it('follows LastEvaluatedKey page after page', async () => {
      // Prepare: three pages; the paginator reuses its input, so the start keys are read as sent.
      const pages = [
        { Items: [item(0), item(1)], LastEvaluatedKey: { PK: 'RUN#r1', SK: 'BATCH#001' } },
        { Items: [item(2)], LastEvaluatedKey: { PK: 'RUN#r1', SK: 'BATCH#002' } },
        { Items: [item(3)] },
      ];
      const starts: unknown[] = [];
      docMock.on(QueryCommand).callsFake((input: QueryCommandInput) => {
        starts.push(input.ExclusiveStartKey && { ...input.ExclusiveStartKey });
        return pages[starts.length - 1];
      });

      // Act
      const found = await stubbedTable().query({
        KeyConditionExpression: 'PK = :pk',
        ExpressionAttributeValues: { ':pk': 'RUN#r1' },
      });

      // Assess
      expect(found.map((i) => i.n)).toEqual([0, 1, 2, 3]);
      expect(starts).toEqual([
        undefined,
        { PK: 'RUN#r1', SK: 'BATCH#001' },
        { PK: 'RUN#r1', SK: 'BATCH#002' },
      ]);
      expect(docMock).toHaveReceivedCommandWith(QueryCommand, { TableName: TABLE });
    });

    it('stops reading pages once the limit is reached', async () => {
      // Prepare
      docMock
        .on(QueryCommand)
        .resolvesOnce({ Items: [item(0), item(1)], LastEvaluatedKey: { PK: 'RUN#r1', SK: 'x' } })
        .resolvesOnce({ Items: [item(2), item(3)], LastEvaluatedKey: { PK: 'RUN#r1', SK: 'y' } });

      // Act
      const found = await stubbedTable().query(
        { KeyConditionExpression: 'PK = :pk', ExpressionAttributeValues: { ':pk': 'RUN#r1' } },
        { pageSize: 2, limit: 3 },
      );

      // Assess
      expect(found.map((i) => i.n)).toEqual([0, 1, 2]);
      expect(docMock).toHaveReceivedCommandTimes(QueryCommand, 2);
      expect(docMock).toHaveReceivedCommandWith(QueryCommand, { Limit: 2 });
    });

    it('wraps a failed page as an AwsCallError naming Query', async () => {
      // Prepare
      docMock.on(QueryCommand).rejects(throughputExceeded());

      // Act
      const found = stubbedTable().query({ KeyConditionExpression: 'PK = :pk' });

      // Assess
      await expect(found).rejects.toMatchObject({
        action: 'Query',
        code: 'ProvisionedThroughputExceededException',
      });
    });
  });
});
