import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeSnapshotsCommand, EC2Client, type Snapshot } from '@aws-sdk/client-ec2';
import { type FaultProxy, startFaultProxy } from '../../harness/faultProxy.ts';
import { useLocalAwsEnvironment } from '../../harness/localAws.ts';
import { createLocalHistoryTable, localHistoryGateway } from '../../harness/localTable.ts';
import type { RunHistoryGateway } from '../../lib/aws/RunHistoryGateway.ts';

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

/** This file's local AWS behind a fault proxy of its own: see {@link useFaultProxiedAws}. */
export interface FaultProxiedAws {
  /** Between the handlers and moto: add rules to it. */
  readonly proxy: FaultProxy;
  /** Straight to moto, for arranging and checking. */
  readonly ec2: EC2Client;
  /** This file's run-history table. */
  readonly table: string;
  /** The history, read straight from moto. */
  readonly history: RunHistoryGateway;
}

/**
 * Puts a fault proxy of this file's own in front of the shared local AWS (moto at
 * `motoEndpoint`) and points the handlers at it ({@link useLocalAws}, with `extra`), while
 * the file arranges and checks straight in moto: an EC2 client, the history table (made)
 * and its gateway. Stop the proxy and destroy the client after the file.
 *
 * @example
 * ({ proxy, ec2, history } = await useFaultProxiedAws(inject('awsEndpoint'), REGION, ENVIRONMENT));
 */
export async function useFaultProxiedAws(
  motoEndpoint: string,
  region: string,
  extra: Record<string, string> = {},
): Promise<FaultProxiedAws> {
  const proxy = await startFaultProxy({ target: motoEndpoint });
  useLocalAws(proxy.endpoint, region, extra);
  const ec2 = new EC2Client({ region, endpoint: motoEndpoint });
  const table = await useLocalHistoryTable(motoEndpoint, region);
  return { proxy, ec2, table, history: localHistoryGateway(motoEndpoint, region, table) };
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
