import 'aws-sdk-client-mock-vitest/extend';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { SlotClaims } from '../../../../lib/aws/history/slotClaims.ts';
import { conditionFailed, stubbedTable, TABLE, throughputExceeded } from './dynamoDbAnswers.ts';

const docMock = mockClient(DynamoDBDocumentClient);
const SLOT = { job: 'backup', schedule: 'daily', slot: '2026-11-23T03:00:00Z' };
const KEY = { PK: 'SLOT#backup#daily#2026-11-23T03:00:00Z', SK: 'CLAIM' };
const NOW = new Date('2026-11-23T03:00:01.000Z');

afterEach(() => docMock.reset());

describe('Class: SlotClaims', () => {
  describe('Method: claimSlot', () => {
    it('writes the claim with its TTL only where none is', async () => {
      // Prepare
      docMock.on(PutCommand).resolves({});

      // Act
      const claim = await new SlotClaims(stubbedTable()).claimSlot(SLOT, 'run-1', NOW);

      // Assess
      expect(claim).toEqual({ claimed: true });
      expect(docMock).toHaveReceivedCommandWith(PutCommand, {
        TableName: TABLE,
        Item: {
          ...KEY,
          type: 'slot',
          ...SLOT,
          runId: 'run-1',
          claimedAt: NOW.toISOString(),
          expiresAt: Math.floor(NOW.getTime() / 1000) + 400 * 86_400,
        },
        ConditionExpression: 'attribute_not_exists(PK)',
      });
    });

    it('answers the holder, read strongly consistent, when the claim is lost (ConditionalCheckFailedException)', async () => {
      // Prepare
      docMock.on(PutCommand).rejects(conditionFailed());
      docMock.on(GetCommand).resolves({
        Item: { ...KEY, runId: 'run-0', claimedAt: '2026-11-23T03:00:00.500Z' },
      });

      // Act
      const claim = await new SlotClaims(stubbedTable()).claimSlot(SLOT, 'run-1', NOW);

      // Assess
      expect(claim).toEqual({
        claimed: false,
        holder: { runId: 'run-0', claimedAt: '2026-11-23T03:00:00.500Z' },
      });
      expect(docMock).toHaveReceivedCommandWith(GetCommand, { Key: KEY, ConsistentRead: true });
    });

    it('claims again when the holder is gone between the refused write and the read', async () => {
      // Prepare
      docMock.on(PutCommand).rejectsOnce(conditionFailed()).resolves({});
      docMock.on(GetCommand).resolves({});

      // Act
      const claim = await new SlotClaims(stubbedTable()).claimSlot(SLOT, 'run-1', NOW);

      // Assess
      expect(claim).toEqual({ claimed: true });
      expect(docMock).toHaveReceivedCommandTimes(PutCommand, 2);
    });

    it('fails with the AWS error when the table is throttled past the SDK retries', async () => {
      // Prepare
      docMock.on(PutCommand).rejects(throughputExceeded());

      // Act
      const claim = new SlotClaims(stubbedTable()).claimSlot(SLOT, 'run-1', NOW);

      // Assess
      await expect(claim).rejects.toMatchObject({
        action: 'PutItem',
        code: 'ProvisionedThroughputExceededException',
      });
      expect(docMock).not.toHaveReceivedCommand(GetCommand);
    });
  });

  describe('Method: takeOverSlot', () => {
    it('moves the slot only while the dead run holds it', async () => {
      // Prepare
      docMock.on(UpdateCommand).resolves({});

      // Act
      const moved = await new SlotClaims(stubbedTable()).takeOverSlot(SLOT, 'run-0', 'run-1', NOW);

      // Assess
      expect(moved).toBe(true);
      expect(docMock).toHaveReceivedCommandWith(UpdateCommand, {
        Key: KEY,
        ConditionExpression: 'runId = :from',
        ExpressionAttributeValues: { ':to': 'run-1', ':from': 'run-0', ':now': NOW.toISOString() },
      });
    });

    it('answers false when another run took it first (ConditionalCheckFailedException)', async () => {
      // Prepare
      docMock.on(UpdateCommand).rejects(conditionFailed());

      // Act
      const moved = await new SlotClaims(stubbedTable()).takeOverSlot(SLOT, 'run-0', 'run-1', NOW);

      // Assess
      expect(moved).toBe(false);
    });
  });

  describe('Method: getSlotClaim', () => {
    it('answers undefined for a slot nobody holds', async () => {
      // Prepare
      docMock.on(GetCommand).resolves({});

      // Act
      const holder = await new SlotClaims(stubbedTable()).getSlotClaim(SLOT);

      // Assess
      expect(holder).toBeUndefined();
    });
  });
});
