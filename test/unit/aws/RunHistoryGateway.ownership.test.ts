import 'aws-sdk-client-mock-vitest/extend';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type BatchGetCommandInput,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  type PutCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import { RunHistoryGateway } from '../../../lib/aws/RunHistoryGateway.ts';

const TABLE = 'snapkeeper-test-runs';
const docMock = mockClient(DynamoDBDocumentClient);

function gateway(): RunHistoryGateway {
  const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1' }));
  return new RunHistoryGateway(doc, TABLE, 400);
}

/** A creation record as the table holds it. */
function creationItem(id: string, kind = 'snapshot', volumeId = 'vol-1'): Record<string, unknown> {
  return {
    PK: `CREATED#${id}`,
    SK: 'CREATED',
    type: 'creation',
    resourceId: id,
    kind,
    runId: 'r1',
    job: 'backup',
    at: '2026-11-23T03:00:05.000Z',
    volumeId,
  };
}

const conditionalFailure = () =>
  Object.assign(new Error('The conditional request failed'), {
    name: 'ConditionalCheckFailedException',
    $metadata: { httpStatusCode: 400 },
  });

afterEach(() => docMock.reset());

describe('RunHistoryGateway: creation records (what retention may delete)', () => {
  it('writes a creation record without a TTL before the action item of a create-snapshot', async () => {
    docMock.on(PutCommand).resolves({});
    await gateway().record({
      runId: 'r1',
      job: 'backup',
      action: 'create-snapshot',
      resourceId: 'snap-1',
      phase: 'after',
      outcome: 'done',
      reason: 'scheduled backup',
      details: { instanceId: 'i-1', volumeId: 'vol-1' },
    });
    const items = docMock
      .commandCalls(PutCommand)
      .map((call) => (call.args[0].input as PutCommandInput).Item ?? {});
    expect(items.map((item) => item.PK)).toEqual(['LEDGER', 'CREATED#snap-1', 'RUN#r1']);
    expect(items[1]).toEqual({
      PK: 'CREATED#snap-1',
      SK: 'CREATED',
      type: 'creation',
      resourceId: 'snap-1',
      kind: 'snapshot',
      runId: 'r1',
      job: 'backup',
      at: expect.any(String),
      instanceId: 'i-1',
      volumeId: 'vol-1',
    });
    expect(items[1]).not.toHaveProperty('expiresAt');
    expect(items[2]).toHaveProperty('expiresAt');
  });

  it('writes no creation record for a deletion, nor for a failed creation', async () => {
    docMock.on(PutCommand).resolves({});
    const history = gateway();
    await history.record({
      runId: 'r1',
      job: 'retention',
      action: 'delete-snapshot',
      resourceId: 'snap-1',
      phase: 'before',
      reason: 'beyond count 7',
    });
    await history.record({
      runId: 'r1',
      job: 'amis',
      action: 'create-image',
      resourceId: 'ami-1',
      phase: 'after',
      outcome: 'failed',
      reason: 'x',
    });
    const pks = docMock
      .commandCalls(PutCommand)
      .map((call) => (call.args[0].input as PutCommandInput).Item?.PK);
    expect(pks).toEqual(['RUN#r1', 'RUN#r1']);
  });

  it('looks up 250 ids in 3 strongly consistent BatchGetItem calls of at most 100 keys', async () => {
    docMock.on(BatchGetCommand).callsFake((input: BatchGetCommandInput) => {
      const keys = input.RequestItems?.[TABLE]?.Keys ?? [];
      return {
        Responses: {
          [TABLE]: keys
            .map((k) => String(k.PK).replace('CREATED#', ''))
            .filter((id) => Number(id.replace('snap-', '')) % 2 === 0)
            .map((id) => creationItem(id)),
        },
      };
    });
    const ids = Array.from({ length: 250 }, (_, i) => `snap-${i}`);
    const found = await gateway().recordedCreations([...ids, 'snap-0']);
    const calls = docMock.commandCalls(BatchGetCommand).map((c) => c.args[0].input);
    expect(calls.map((c) => c.RequestItems?.[TABLE]?.Keys?.length)).toEqual([100, 100, 50]);
    expect(calls.every((c) => c.RequestItems?.[TABLE]?.ConsistentRead === true)).toBe(true);
    expect(found.size).toBe(125);
    expect(found.get('snap-2')).toEqual({
      resourceId: 'snap-2',
      kind: 'snapshot',
      runId: 'r1',
      job: 'backup',
      at: '2026-11-23T03:00:05.000Z',
      volumeId: 'vol-1',
    });
  });

  it('retries the keys DynamoDB leaves unprocessed (as BatchGetItem does under throttling)', async () => {
    docMock
      .on(BatchGetCommand)
      .resolvesOnce({
        Responses: { [TABLE]: [creationItem('snap-1')] },
        UnprocessedKeys: { [TABLE]: { Keys: [{ PK: 'CREATED#snap-2', SK: 'CREATED' }] } },
      })
      .resolvesOnce({ Responses: { [TABLE]: [creationItem('snap-2', 'copy')] } });
    const found = await gateway().recordedCreations(['snap-1', 'snap-2']);
    expect([...found.keys()]).toEqual(['snap-1', 'snap-2']);
    expect(found.get('snap-2')?.kind).toBe('copy');
    const retried = docMock.commandCalls(BatchGetCommand)[1]?.args[0].input;
    expect(retried?.RequestItems?.[TABLE]?.Keys).toEqual([{ PK: 'CREATED#snap-2', SK: 'CREATED' }]);
  });

  it('fails (so that the caller keeps everything) when keys stay unprocessed', async () => {
    docMock.on(BatchGetCommand).resolves({
      Responses: { [TABLE]: [] },
      UnprocessedKeys: { [TABLE]: { Keys: [{ PK: 'CREATED#snap-1', SK: 'CREATED' }] } },
    });
    await expect(gateway().recordedCreations(['snap-1'])).rejects.toBeInstanceOf(AwsCallError);
  }, 20_000);

  it('fails with the AWS error when the table refuses the read (AccessDeniedException)', async () => {
    docMock.on(BatchGetCommand).rejects(
      Object.assign(new Error('not authorized to perform: dynamodb:BatchGetItem'), {
        name: 'AccessDeniedException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    await expect(gateway().recordedCreations(['snap-1'])).rejects.toMatchObject({
      code: 'AccessDeniedException',
    });
  });

  it('writes the ledger start once, conditionally, and reads an existing one', async () => {
    docMock
      .on(PutCommand)
      .rejects(conditionalFailure())
      .on(GetCommand)
      .resolves({ Item: { PK: 'LEDGER', SK: 'START', startedAt: '2026-01-01T00:00:00.000Z' } });
    const history = gateway();
    const start = await history.ledgerStart(new Date('2026-11-23T12:00:00Z'));
    expect(start.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    const put = docMock.commandCalls(PutCommand)[0]?.args[0].input as PutCommandInput;
    expect(put.ConditionExpression).toBe('attribute_not_exists(PK)');
    expect(docMock.commandCalls(GetCommand)[0]?.args[0].input.ConsistentRead).toBe(true);
    // Read once per gateway: the start never moves.
    await history.ledgerStart(new Date('2026-11-24T12:00:00Z'));
    expect(docMock.commandCalls(PutCommand)).toHaveLength(1);
  });
});
