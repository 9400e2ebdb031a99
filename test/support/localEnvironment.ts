import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeSnapshotsCommand, EC2Client, type Snapshot } from '@aws-sdk/client-ec2';
import { useLocalAwsEnvironment } from '../../harness/localAws.ts';
import { createLocalHistoryTable } from '../../harness/localTable.ts';

/**
 * Points this test file at the shared local AWS in its own region, with a deployment
 * name, and returns an EC2 client for arranging and checking.
 */
export function useLocalAws(
  endpoint: string,
  region: string,
  extra: Record<string, string> = {},
): EC2Client {
  useLocalAwsEnvironment(endpoint, region);
  process.env.AWS_MAX_ATTEMPTS = '3';
  process.env.HISTORY_TABLE = `snapkeeper-test-${region}-runs`;
  process.env.DUPLICATE_WAIT_SECONDS = '20';
  for (const [key, value] of Object.entries(extra)) process.env[key] = value;
  return new EC2Client({ region, endpoint });
}

/** Creates this file's run-history table (from serverless.yml) in the local AWS. */
export async function useLocalHistoryTable(endpoint: string, region: string): Promise<string> {
  const table = process.env.HISTORY_TABLE ?? `snapkeeper-test-${region}-runs`;
  await createLocalHistoryTable(new DynamoDBClient({ region, endpoint }), table);
  return table;
}

/** Every snapshot owned by the account that carries a tag with a value. */
export async function snapshotsTagged(
  ec2: EC2Client,
  key: string,
  value: string,
): Promise<Snapshot[]> {
  const response = await ec2.send(
    new DescribeSnapshotsCommand({
      OwnerIds: ['self'],
      Filters: [{ Name: `tag:${key}`, Values: [value] }],
    }),
  );
  return response.Snapshots ?? [];
}

/** A resource's tags (snapshot, image, instance) as a record. */
export function tagsOf(resource: {
  Tags?: { Key?: string | undefined; Value?: string | undefined }[] | undefined;
}): Record<string, string> {
  return Object.fromEntries((resource.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}
