/**
 * The run-history table in the local AWS, made from serverless.yml's definition.
 * Part of the local AWS harness: imports only lib/ and harness/.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  UpdateContinuousBackupsCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { parse } from 'yaml';
import { createRunHistoryGateway, type RunHistoryGateway } from '../lib/aws/RunHistoryGateway.ts';
import { PROJECT_ROOT } from './localAws.ts';

interface TableDefinition {
  readonly AttributeDefinitions: CreateTableCommandInput['AttributeDefinitions'];
  readonly KeySchema: CreateTableCommandInput['KeySchema'];
  readonly GlobalSecondaryIndexes?: CreateTableCommandInput['GlobalSecondaryIndexes'];
  readonly BillingMode?: CreateTableCommandInput['BillingMode'];
  readonly SSESpecification?: { SSEEnabled?: boolean };
  readonly TimeToLiveSpecification?: { AttributeName: string; Enabled: boolean };
  readonly PointInTimeRecoverySpecification?: { PointInTimeRecoveryEnabled: boolean };
}

/**
 * The run-history table's definition, read from serverless.yml, the one place it is
 * defined. CloudFormation's intrinsic-function tags (!Ref, !GetAtt, ...) are read as
 * plain values, since the table's own properties use none.
 */
export function runHistoryTableDefinition(
  file = join(PROJECT_ROOT, 'serverless.yml'),
): TableDefinition {
  const customTags = [
    'Ref',
    'GetAtt',
    'Sub',
    'Join',
    'If',
    'Equals',
    'Not',
    'Select',
    'Split',
    'ImportValue',
  ].map((name) => ({ tag: `!${name}`, resolve: (value: unknown) => ({ [name]: value }) }));
  type Fragment = { Resources?: { RunHistoryTable?: { Properties?: TableDefinition } } };
  const document = parse(readFileSync(file, 'utf8'), { customTags, logLevel: 'silent' }) as {
    resources?: Fragment | (Fragment | string)[];
  };
  const fragments = Array.isArray(document.resources) ? document.resources : [document.resources];
  const definition = fragments
    .map((fragment) =>
      typeof fragment === 'object' ? fragment?.Resources?.RunHistoryTable?.Properties : undefined,
    )
    .find((found) => found !== undefined);
  if (!definition) throw new Error(`${file} defines no resources.Resources.RunHistoryTable`);
  return definition;
}

/**
 * Creates the run-history table in the local AWS exactly as serverless.yml defines it
 * (keys, indexes, billing, encryption, TTL, point-in-time recovery). Does nothing if
 * the table exists.
 *
 * @example
 * await createLocalHistoryTable(new DynamoDBClient({ endpoint }), 'snapkeeper-demo-runs');
 */
export async function createLocalHistoryTable(
  client: DynamoDBClient,
  tableName: string,
): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
    return;
  } catch {
    // not there yet
  }
  const definition = runHistoryTableDefinition();
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      AttributeDefinitions: definition.AttributeDefinitions,
      KeySchema: definition.KeySchema,
      GlobalSecondaryIndexes: definition.GlobalSecondaryIndexes,
      BillingMode: definition.BillingMode ?? 'PAY_PER_REQUEST',
      ...(definition.SSESpecification?.SSEEnabled ? { SSESpecification: { Enabled: true } } : {}),
    }),
  );
  if (definition.TimeToLiveSpecification) {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: {
          AttributeName: definition.TimeToLiveSpecification.AttributeName,
          Enabled: definition.TimeToLiveSpecification.Enabled,
        },
      }),
    );
  }
  if (definition.PointInTimeRecoverySpecification?.PointInTimeRecoveryEnabled) {
    await client.send(
      new UpdateContinuousBackupsCommand({
        TableName: tableName,
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      }),
    );
  }
}

/**
 * The run-history gateway of a table in the local AWS, straight to `endpoint` (moto), with
 * the few retries and the generous timeout that the tools and tests measure through.
 *
 * @example
 * const history = localHistoryGateway(moto.endpoint, 'eu-west-1', 'snapkeeper-test-runs');
 */
export function localHistoryGateway(
  endpoint: string,
  region: string,
  table: string,
): RunHistoryGateway {
  return createRunHistoryGateway(
    { region, maxAttempts: 3, requestTimeoutMs: 10_000, endpoint },
    table,
    400,
  );
}
