import 'aws-sdk-client-mock-vitest/extend';
import {
  DynamoDBDocumentClient,
  QueryCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { HistoryQueries } from '../../../../lib/aws/history/historyQueries.ts';
import { stubbedTable } from './dynamoDbAnswers.ts';

const docMock = mockClient(DynamoDBDocumentClient);

/**
 * Answers the queries page by page (`paged`: each page but the last with a
 * LastEvaluatedKey; otherwise each query gets one page), and returns the inputs of
 * every query copied as sent (the paginator reuses its input object).
 */
function answerQueries(pages: Record<string, unknown>[][], paged = true): QueryCommandInput[] {
  const sent: QueryCommandInput[] = [];
  docMock.on(QueryCommand).callsFake((input: QueryCommandInput) => {
    sent.push({ ...input });
    const page = pages[sent.length - 1] ?? [];
    return {
      Items: page,
      ...(paged && sent.length < pages.length
        ? { LastEvaluatedKey: { PK: `page-${sent.length}` } }
        : {}),
    };
  });
  return sent;
}

const run = (runId: string, startedAt: string) => ({
  PK: `RUN#${runId}`,
  SK: 'RUN',
  runId,
  startedAt,
});

afterEach(() => docMock.reset());

describe('Class: HistoryQueries', () => {
  describe('Method: latestRuns', () => {
    it('reads the deployment partition of GSI1 newest first, page after page', async () => {
      // Prepare
      const sent = answerQueries([[run('r3', 'c'), run('r2', 'b')], [run('r1', 'a')]]);

      // Act
      const runs = await new HistoryQueries(stubbedTable()).latestRuns('prod');

      // Assess
      expect(runs.map((r) => r.runId)).toEqual(['r3', 'r2', 'r1']);
      expect(sent[0]).toMatchObject({
        IndexName: 'GSI1',
        KeyConditionExpression: 'GSI1PK = :pk',
        ExpressionAttributeValues: { ':pk': 'RUNS#prod' },
        ScanIndexForward: false,
        Limit: 100,
      });
      expect(sent[1]?.ExclusiveStartKey).toEqual({ PK: 'page-1' });
    });

    it('reads from a normalised since, and no further than the limit', async () => {
      // Prepare
      const sent = answerQueries([[run('r3', 'c'), run('r2', 'b')], [run('r1', 'a')]]);

      // Act
      const runs = await new HistoryQueries(stubbedTable()).latestRuns('prod', {
        since: '2026-11-16T00:00:00Z',
        limit: 2,
      });

      // Assess
      expect(runs.map((r) => r.runId)).toEqual(['r3', 'r2']);
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatchObject({
        KeyConditionExpression: 'GSI1PK = :pk AND GSI1SK >= :since',
        ExpressionAttributeValues: { ':pk': 'RUNS#prod', ':since': '2026-11-16T00:00:00.000Z' },
        Limit: 2,
      });
    });
  });

  describe('Methods: runsOfJob, runsOfSchedule', () => {
    it('read the job partition of GSI2 and the schedule partition of GSI3', async () => {
      // Prepare
      const sent = answerQueries([[], []], false);
      const queries = new HistoryQueries(stubbedTable());

      // Act
      await queries.runsOfJob('prod', 'backup');
      await queries.runsOfSchedule('prod', 'daily');

      // Assess
      expect(sent.map((q) => [q.IndexName, q.ExpressionAttributeValues?.[':pk']])).toEqual([
        ['GSI2', 'JOB#prod#backup'],
        ['GSI3', 'SCHEDULE#prod#daily'],
      ]);
    });
  });

  describe('Method: resourceHistory', () => {
    it('merges the three indexes once per item, newest first', async () => {
      // Prepare: the same action found on two indexes.
      const action = (sequence: number, at: string) => ({
        PK: 'RUN#r1',
        SK: `ACTION#${sequence}`,
        at,
        sequence,
      });
      docMock
        .on(QueryCommand)
        .resolvesOnce({ Items: [action(1, '2026-11-23T03:00:01Z')] })
        .resolvesOnce({
          Items: [action(2, '2026-11-23T03:00:02Z'), action(1, '2026-11-23T03:00:01Z')],
        })
        .resolvesOnce({ Items: [action(3, '2026-11-23T03:00:02Z')] });

      // Act
      const found = await new HistoryQueries(stubbedTable()).resourceHistory('i-1');

      // Assess
      expect(found.map((a) => a.sequence)).toEqual([3, 2, 1]);
      expect(docMock).toHaveReceivedCommandTimes(QueryCommand, 3);
    });
  });

  describe('Methods: runActions, runBatches', () => {
    it('read under the run by sort-key prefix; batch checkpoints strongly consistent', async () => {
      // Prepare
      const sent = answerQueries(
        [
          [{ PK: 'RUN#r1', SK: 'ACTION#000001#snap-1#before' }],
          [{ PK: 'RUN#r1', SK: 'BATCH#self/eu-west-1/0001', status: 'succeeded', attempts: 1 }],
        ],
        false,
      );
      const queries = new HistoryQueries(stubbedTable());

      // Act
      const actions = await queries.runActions('r1');
      const batches = await queries.runBatches('r1');

      // Assess
      expect(actions).toHaveLength(1);
      expect(batches).toEqual([
        { batchId: 'self/eu-west-1/0001', status: 'succeeded', attempts: 1 },
      ]);
      expect(sent.map((q) => [q.ExpressionAttributeValues?.[':prefix'], q.ConsistentRead])).toEqual(
        [
          ['ACTION#', undefined],
          ['BATCH#', true],
        ],
      );
    });
  });
});
