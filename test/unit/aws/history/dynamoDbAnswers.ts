/**
 * DynamoDB's answers as its API reference documents them, for the history gateways'
 * unit tests: the errors a call rejects with (after the SDK's own retries), and a
 * history table over a document client that `aws-sdk-client-mock` stubs.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { HistoryTable } from '../../../../lib/aws/history/table.ts';

/** The table name every test uses. */
export const TABLE = 'snapkeeper-test-runs';

/** An error as the SDK throws it for a DynamoDB error code (HTTP 400). */
function dynamoDbError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 400 } });
}

/** A write whose condition failed. */
export const conditionFailed = (): Error =>
  dynamoDbError('ConditionalCheckFailedException', 'The conditional request failed');

/** The table throttled past the SDK's retries. */
export const throughputExceeded = (): Error =>
  dynamoDbError(
    'ProvisionedThroughputExceededException',
    'The level of configured provisioned throughput for the table was exceeded',
  );

/** A history table (400 days of TTL) over a fresh document client, for a mocked client to answer. */
export function stubbedTable(): HistoryTable {
  const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1' }));
  return new HistoryTable(doc, TABLE, 400);
}

/** A wait that records what it was asked to wait and returns at once. */
export function recordedWaits(): { waits: number[]; sleep: (ms: number) => Promise<void> } {
  const waits: number[] = [];
  return {
    waits,
    sleep: async (ms: number) => {
      waits.push(ms);
    },
  };
}
