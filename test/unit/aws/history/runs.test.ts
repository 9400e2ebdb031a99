import 'aws-sdk-client-mock-vitest/extend';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../../../lib/aws/history/records.ts';
import { fitReport, MAX_REPORT_BYTES, RunRecords } from '../../../../lib/aws/history/runs.ts';
import { conditionFailed, stubbedTable, throughputExceeded } from './dynamoDbAnswers.ts';

const docMock = mockClient(DynamoDBDocumentClient);
const KEY = { PK: 'RUN#r1', SK: 'RUN' };
const RUN: RunRecord = {
  runId: 'r1',
  deployment: 'prod',
  job: 'backup',
  trigger: 'schedule',
  schedule: 'daily',
  dryRun: false,
  startedAt: '2026-11-23T03:00:01.000Z',
  status: 'running',
};

const updateSent = (): UpdateCommandInput =>
  docMock.commandCalls(UpdateCommand)[0]?.args[0].input as UpdateCommandInput;

afterEach(() => docMock.reset());

describe('Class: RunRecords', () => {
  describe('Method: startRun', () => {
    it('writes a new run with its index keys, lease and TTL', async () => {
      // Prepare
      docMock.on(PutCommand).resolves({});

      // Act
      await new RunRecords(stubbedTable()).startRun(RUN);

      // Assess
      expect(docMock).toHaveReceivedCommandWith(PutCommand, {
        Item: expect.objectContaining({
          ...KEY,
          GSI1PK: 'RUNS#prod',
          GSI2PK: 'JOB#prod#backup',
          GSI3PK: 'SCHEDULE#prod#daily',
          type: 'run',
          leaseRenewedAt: RUN.startedAt,
          expiresAt: expect.any(Number),
        }),
        ConditionExpression: 'attribute_not_exists(PK)',
      });
    });

    it('fails when the run was already written (a run id is never reused)', async () => {
      // Prepare
      docMock.on(PutCommand).rejects(conditionFailed());

      // Act
      const started = new RunRecords(stubbedTable()).startRun(RUN);

      // Assess
      await expect(started).rejects.toMatchObject({ code: 'ConditionalCheckFailedException' });
    });
  });

  describe('Method: completeRun', () => {
    it('finishes a fan-out run once, only while it is running', async () => {
      // Prepare
      docMock.on(UpdateCommand).resolvesOnce({}).rejectsOnce(conditionFailed());
      const runs = new RunRecords(stubbedTable());
      const result = {
        status: 'succeeded' as const,
        endedAt: '2026-11-23T03:10:00.000Z',
        counts: { batches: 4 },
      };

      // Act
      const first = await runs.completeRun('r1', result);
      const second = await runs.completeRun('r1', result);

      // Assess
      expect([first, second]).toEqual([true, false]);
      expect(updateSent()).toMatchObject({
        Key: KEY,
        UpdateExpression: 'SET #status = :status, endedAt = :endedAt, counts = :counts',
        ConditionExpression: '#status = :running',
        ExpressionAttributeValues: {
          ':status': 'succeeded',
          ':endedAt': result.endedAt,
          ':counts': { batches: 4 },
          ':running': 'running',
        },
      });
    });

    it('fails with the AWS error on anything but a lost condition', async () => {
      // Prepare
      docMock.on(UpdateCommand).rejects(throughputExceeded());

      // Act
      const completed = new RunRecords(stubbedTable()).completeRun('r1', {
        status: 'failed',
        endedAt: '2026-11-23T03:10:00.000Z',
        counts: {},
      });

      // Assess
      await expect(completed).rejects.toMatchObject({
        action: 'UpdateItem',
        code: 'ProvisionedThroughputExceededException',
      });
    });
  });

  describe('Method: finishRun', () => {
    it('writes the outcome without a condition, cutting the error summary and what is left', async () => {
      // Prepare
      docMock.on(UpdateCommand).resolves({});

      // Act
      await new RunRecords(stubbedTable()).finishRun('r1', {
        status: 'incomplete',
        endedAt: '2026-11-23T03:14:00.000Z',
        errorSummary: 'x'.repeat(5000),
        remaining: Array.from({ length: 1500 }, (_, i) => `i-${i}`),
        report: { status: 'incomplete' },
      });

      // Assess
      const sent = updateSent();
      expect(sent.ConditionExpression).toBeUndefined();
      expect(sent.UpdateExpression).toBe(
        'SET #status = :status, endedAt = :endedAt, errorSummary = :error, remaining = :remaining, report = :report',
      );
      expect(String(sent.ExpressionAttributeValues?.[':error'])).toHaveLength(2000);
      expect(sent.ExpressionAttributeValues?.[':remaining']).toHaveLength(1000);
      expect(sent.ExpressionAttributeValues?.[':report']).toBe('{"status":"incomplete"}');
    });
  });

  describe('Method: renewLease', () => {
    it('leaves a run that is no longer running as it is (ConditionalCheckFailedException)', async () => {
      // Prepare
      docMock.on(UpdateCommand).rejects(conditionFailed());

      // Act
      const renewed = new RunRecords(stubbedTable()).renewLease('r1', new Date());

      // Assess
      await expect(renewed).resolves.toBeUndefined();
      expect(updateSent().ConditionExpression).toBe('#status = :running');
    });
  });

  describe('Method: markAbandoned', () => {
    it('answers false when the run renewed its lease in between', async () => {
      // Prepare
      docMock.on(UpdateCommand).rejects(conditionFailed());

      // Act
      const marked = await new RunRecords(stubbedTable()).markAbandoned(
        'r0',
        '2026-11-23T02:00:00.000Z',
        new Date('2026-11-23T03:00:00.000Z'),
        'r1',
      );

      // Assess
      expect(marked).toBe(false);
      expect(updateSent()).toMatchObject({
        ConditionExpression: '#status = :running AND leaseRenewedAt = :lease',
        ExpressionAttributeValues: expect.objectContaining({
          ':lease': '2026-11-23T02:00:00.000Z',
        }),
      });
    });
  });

  describe('Method: recordDispatch', () => {
    it('fails when the run is no longer running', async () => {
      // Prepare
      docMock.on(UpdateCommand).rejects(conditionFailed());

      // Act
      const recorded = new RunRecords(stubbedTable()).recordDispatch('r1', {
        counts: { batches: 2 },
        report: { status: 'running' },
        now: new Date(),
      });

      // Assess
      await expect(recorded).rejects.toMatchObject({ code: 'ConditionalCheckFailedException' });
    });
  });

  describe('Method: getRun', () => {
    it('reads one run strongly consistent, undefined when absent', async () => {
      // Prepare
      docMock
        .on(GetCommand)
        .resolvesOnce({ Item: { ...KEY, ...RUN } })
        .resolvesOnce({});
      const runs = new RunRecords(stubbedTable());

      // Act
      const found = await runs.getRun('r1');
      const absent = await runs.getRun('r2');

      // Assess
      expect(found).toMatchObject(RUN);
      expect(absent).toBeUndefined();
      expect(docMock).toHaveReceivedCommandWith(GetCommand, { Key: KEY, ConsistentRead: true });
    });
  });
});

describe('Function: fitReport', () => {
  it('keeps a report that fits whole', () => {
    // Act and assess
    expect(fitReport({ status: 'succeeded', actions: [1] })).toBe(
      '{"status":"succeeded","actions":[1]}',
    );
  });

  it('cuts a report too large for an item to its non-list fields, with a note', () => {
    // Prepare
    const report = { status: 'partial', actions: ['x'.repeat(MAX_REPORT_BYTES)] };

    // Act
    const stored = JSON.parse(fitReport(report));

    // Assess
    expect(stored).toEqual({ status: 'partial', truncated: expect.stringContaining('too large') });
  });
});
