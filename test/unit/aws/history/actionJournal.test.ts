import 'aws-sdk-client-mock-vitest/extend';
import { BatchWriteCommand, DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import {
  HistoryActionJournal,
  HistoryWriteError,
} from '../../../../lib/aws/history/actionJournal.ts';
import { CreationRecords } from '../../../../lib/aws/history/creationLedger.ts';
import type { JournalEntry } from '../../../../lib/aws/history/records.ts';
import { stubbedTable, TABLE, throughputExceeded } from './dynamoDbAnswers.ts';

const docMock = mockClient(DynamoDBDocumentClient);

function journal(): HistoryActionJournal {
  const table = stubbedTable();
  return new HistoryActionJournal(table, new CreationRecords(table));
}

const made: JournalEntry = {
  runId: 'r1',
  job: 'backup',
  action: 'create-snapshot',
  resourceId: 'snap-new',
  phase: 'after',
  outcome: 'done',
  reason: 'scheduled backup',
  at: '2026-11-23T03:00:05.000Z',
  instanceId: 'i-1',
  volumeId: 'vol-1',
};

afterEach(() => docMock.reset());

describe('Class: HistoryActionJournal', () => {
  describe('Method: recordBatch', () => {
    it('writes nothing and names every entry when the ledger start cannot be written', async () => {
      // Prepare
      docMock.on(PutCommand).rejects(throughputExceeded());

      // Act
      const recorded = journal().recordBatch([made, { ...made, resourceId: 'snap-2' }]);

      // Assess
      await expect(recorded).rejects.toBeInstanceOf(HistoryWriteError);
      await expect(recorded).rejects.toMatchObject({
        unwritten: [0, 1],
        message: expect.stringContaining('ProvisionedThroughputExceededException'),
        cause: expect.objectContaining({ action: 'PutItem' }),
      });
      expect(docMock).not.toHaveReceivedCommand(BatchWriteCommand);
    });

    it('numbers the actions of one journal in order across single and batched records', async () => {
      // Prepare
      docMock.on(PutCommand).resolves({});
      docMock.on(BatchWriteCommand).resolves({ UnprocessedItems: {} });
      const history = journal();
      const before: JournalEntry = { ...made, action: 'delete-snapshot', phase: 'before' };

      // Act
      await history.record(before);
      await history.recordBatch([before, before]);

      // Assess
      const single = docMock.commandCalls(PutCommand)[0]?.args[0].input.Item;
      const batched = docMock
        .commandCalls(BatchWriteCommand)[0]
        ?.args[0].input.RequestItems?.[TABLE]?.map((r) => r.PutRequest?.Item?.sequence);
      expect(single?.sequence).toBe(1);
      expect(batched).toEqual([2, 3]);
    });
  });
});
