import 'aws-sdk-client-mock-vitest/extend';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import { RunHistoryGateway } from '../../../lib/aws/RunHistoryGateway.ts';

const docMock = mockClient(DynamoDBDocumentClient);
const TABLE = 'snapkeeper-test-runs';
const SLOT = { job: 'ops:backup', schedule: 'console', slot: 'payload-abc' };
const NOW = new Date('2026-11-23T11:59:59.000Z');

function gateway(): RunHistoryGateway {
  const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1' }));
  return new RunHistoryGateway(doc, TABLE, 400);
}

/** DynamoDB's answer to a put whose condition failed, as the API reference documents it. */
function conditionFailed(): Error {
  return Object.assign(new Error('The conditional request failed'), {
    name: 'ConditionalCheckFailedException',
    $metadata: { httpStatusCode: 400 },
  });
}

describe('Class: RunHistoryGateway', () => {
  afterEach(() => {
    docMock.reset();
  });

  describe('Method: claimSlot', () => {
    it('claims only an absent slot when no lapse is given', async () => {
      // Prepare
      docMock.on(PutCommand).resolves({});

      // Act
      const claim = await gateway().claimSlot(SLOT, 'run-1', NOW);

      // Assess
      expect(claim).toEqual({ claimed: true });
      expect(docMock).toHaveReceivedCommandWith(PutCommand, {
        TableName: TABLE,
        ConditionExpression: 'attribute_not_exists(PK)',
      });
      const input = docMock.commandCalls(PutCommand)[0]?.args[0].input;
      expect(input?.ExpressionAttributeValues).toBeUndefined();
    });

    it('replaces a lapsed claim in the same conditional write, comparing the claim times', async () => {
      // Prepare
      docMock.on(PutCommand).resolves({});
      const lapsedBefore = new Date(NOW.getTime() - 300_000);

      // Act
      const claim = await gateway().claimSlot(SLOT, 'run-2', NOW, { lapsedBefore });

      // Assess
      expect(claim).toEqual({ claimed: true });
      expect(docMock).toHaveReceivedCommandWith(PutCommand, {
        TableName: TABLE,
        Item: expect.objectContaining({
          PK: 'SLOT#ops:backup#console#payload-abc',
          SK: 'CLAIM',
          runId: 'run-2',
          claimedAt: '2026-11-23T11:59:59.000Z',
        }),
        ConditionExpression: 'attribute_not_exists(PK) OR claimedAt < :lapsed',
        ExpressionAttributeValues: { ':lapsed': '2026-11-23T11:54:59.000Z' },
      });
    });

    it('answers the holder when its claim has not lapsed (the condition failed)', async () => {
      // Prepare
      docMock.on(PutCommand).rejects(conditionFailed());
      docMock.on(GetCommand).resolves({
        Item: { runId: 'run-1', claimedAt: '2026-11-23T11:59:58.000Z' },
      });

      // Act
      const claim = await gateway().claimSlot(SLOT, 'run-2', NOW, {
        lapsedBefore: new Date(NOW.getTime() - 300_000),
      });

      // Assess
      expect(claim).toEqual({
        claimed: false,
        holder: { runId: 'run-1', claimedAt: '2026-11-23T11:59:58.000Z' },
      });
      expect(docMock).toHaveReceivedCommandWith(GetCommand, { ConsistentRead: true });
    });

    it('claims again, with the same lapse, when the holder vanished between the put and the read', async () => {
      // Prepare: the item expired (TTL) between the two calls
      docMock.on(PutCommand).rejectsOnce(conditionFailed()).resolves({});
      docMock.on(GetCommand).resolves({});
      const lapsedBefore = new Date(NOW.getTime() - 300_000);

      // Act
      const claim = await gateway().claimSlot(SLOT, 'run-2', NOW, { lapsedBefore });

      // Assess
      expect(claim).toEqual({ claimed: true });
      const puts = docMock.commandCalls(PutCommand);
      expect(puts).toHaveLength(2);
      expect(puts[1]?.args[0].input.ConditionExpression).toBe(
        'attribute_not_exists(PK) OR claimedAt < :lapsed',
      );
    });

    it('raises any other error as an AwsCallError naming PutItem', async () => {
      // Prepare
      docMock.on(PutCommand).rejects(
        Object.assign(new Error('Throughput exceeds the current capacity'), {
          name: 'ProvisionedThroughputExceededException',
          $metadata: { httpStatusCode: 400 },
        }),
      );

      // Act & Assess
      await expect(gateway().claimSlot(SLOT, 'run-2', NOW)).rejects.toBeInstanceOf(AwsCallError);
      await expect(gateway().claimSlot(SLOT, 'run-2', NOW)).rejects.toThrow(/PutItem/);
    });
  });
});
