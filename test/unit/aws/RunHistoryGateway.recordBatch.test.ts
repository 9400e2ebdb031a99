import 'aws-sdk-client-mock-vitest/extend';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  type BatchWriteCommandInput,
  DynamoDBDocumentClient,
  PutCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { HistoryWriteError, RunHistoryGateway } from '../../../lib/aws/RunHistoryGateway.ts';
import type { ActionRecord } from '../../../lib/jobs/ports.ts';

const TABLE = 'snapkeeper-test-runs';
const docMock = mockClient(DynamoDBDocumentClient);
const noWait = async () => undefined;

function gateway(): RunHistoryGateway {
  const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1' }));
  return new RunHistoryGateway(doc, TABLE, 400);
}

function before(id: string): ActionRecord {
  return {
    runId: 'r1',
    job: 'retention',
    action: 'delete-snapshot',
    resourceId: id,
    phase: 'before',
    reason: 'beyond count 7',
    details: { volumeId: 'vol-1' },
  };
}

const ids = (n: number) =>
  Array.from({ length: n }, (_, i) => `snap-${String(i).padStart(3, '0')}`);

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

/** DynamoDB's answer when the table is throttled for the whole batch (after the SDK's retries). */
const throughputExceeded = () =>
  Object.assign(
    new Error('The level of configured provisioned throughput for the table was exceeded'),
    {
      name: 'ProvisionedThroughputExceededException',
      $metadata: { httpStatusCode: 400 },
    },
  );

afterEach(() => docMock.reset());

describe('Class: RunHistoryGateway', () => {
  describe('Method: recordBatch', () => {
    it('writes 60 records in BatchWriteItem calls of at most 25 items, no PutItem', async () => {
      // Prepare
      docMock.on(BatchWriteCommand).resolves({ UnprocessedItems: {} });

      // Act
      await gateway().recordBatch(ids(60).map(before), { sleep: noWait });

      // Assess
      const calls = writtenItems();
      expect(calls.map((c) => c.length)).toEqual([25, 25, 10]);
      expect(docMock).not.toHaveReceivedCommand(PutCommand);
      const keys = calls.flat().map((i) => String(i.SK));
      expect(new Set(keys).size).toBe(60);
      expect(calls[0]?.[0]).toMatchObject({
        PK: 'RUN#r1',
        type: 'action',
        resourceId: 'snap-000',
        phase: 'before',
        GSI1PK: 'RES#snap-000',
        GSI3PK: 'RES#vol-1',
      });
    });

    it('writes the unprocessed items again, with back-off, until all are written', async () => {
      // Prepare: DynamoDB leaves 2 of 3 items unprocessed, then 1, then none.
      const waits: number[] = [];
      docMock
        .on(BatchWriteCommand)
        .callsFakeOnce((input: BatchWriteCommandInput) => ({
          UnprocessedItems: { [TABLE]: (input.RequestItems?.[TABLE] ?? []).slice(1) },
        }))
        .callsFakeOnce((input: BatchWriteCommandInput) => ({
          UnprocessedItems: { [TABLE]: (input.RequestItems?.[TABLE] ?? []).slice(1) },
        }))
        .resolves({ UnprocessedItems: {} });

      // Act
      await gateway().recordBatch(ids(3).map(before), {
        sleep: async (ms) => {
          waits.push(ms);
        },
      });

      // Assess
      expect(writtenItems().map((c) => c.map((i) => i.resourceId))).toEqual([
        ['snap-000', 'snap-001', 'snap-002'],
        ['snap-001', 'snap-002'],
        ['snap-002'],
      ]);
      expect(waits).toHaveLength(2);
      expect(waits[0]).toBeLessThanOrEqual(50);
      expect(waits[1]).toBeLessThanOrEqual(100);
    });

    it('names the records never written when items stay unprocessed through every round', async () => {
      // Prepare: the last item is never processed.
      docMock.on(BatchWriteCommand).callsFake((input: BatchWriteCommandInput) => ({
        UnprocessedItems: {
          [TABLE]: (input.RequestItems?.[TABLE] ?? []).filter(
            (r) => r.PutRequest?.Item?.resourceId === 'snap-002',
          ),
        },
      }));

      // Act
      const written = gateway().recordBatch(ids(3).map(before), { sleep: noWait, rounds: 3 });

      // Assess
      await expect(written).rejects.toBeInstanceOf(HistoryWriteError);
      await expect(written).rejects.toMatchObject({ unwritten: [2] });
      expect(docMock).toHaveReceivedCommandTimes(BatchWriteCommand, 3);
    });

    it('a call that fails (throughput exceeded after the SDK retries) leaves only its own records unwritten', async () => {
      // Prepare: 30 records, two calls; the second call fails.
      docMock
        .on(BatchWriteCommand)
        .resolvesOnce({ UnprocessedItems: {} })
        .rejectsOnce(throughputExceeded());

      // Act
      const written = gateway().recordBatch(ids(30).map(before), { sleep: noWait });

      // Assess
      await expect(written).rejects.toMatchObject({
        name: 'HistoryWriteError',
        unwritten: Array.from({ length: 5 }, (_, i) => 25 + i),
        message: expect.stringContaining('ProvisionedThroughputExceededException'),
      });
    });

    it('writes the creation record of a resource made in the same batch as its action item, once per key', async () => {
      // Prepare
      docMock.on(BatchWriteCommand).resolves({ UnprocessedItems: {} });
      docMock.on(PutCommand).resolves({});
      const made: ActionRecord = {
        runId: 'r1',
        job: 'backup',
        action: 'create-snapshot',
        resourceId: 'snap-new',
        phase: 'after',
        outcome: 'done',
        reason: 'scheduled backup',
        details: { instanceId: 'i-1', volumeId: 'vol-1' },
      };

      // Act: the same snapshot recorded twice (made, then recorded again by a resumed slot).
      await gateway().recordBatch([made, made], { sleep: noWait });

      // Assess
      const items = writtenItems().flat();
      const creations = items.filter((i) => i.type === 'creation');
      expect(creations).toHaveLength(1);
      expect(creations[0]).toMatchObject({
        PK: 'CREATED#snap-new',
        SK: 'CREATED',
        kind: 'snapshot',
      });
      expect(creations[0]).not.toHaveProperty('expiresAt');
      expect(items.filter((i) => i.type === 'action')).toHaveLength(2);
      // The ledger's start is written (conditionally) before any creation record.
      expect(docMock).toHaveReceivedCommandWith(PutCommand, {
        Item: expect.objectContaining({ PK: 'LEDGER', SK: 'START' }),
      });
    });
  });
});
