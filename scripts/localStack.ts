import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { deploymentSchedules } from './deploymentSchedules.ts';
import { type LocalAws, startLocalAws, useLocalAwsEnvironment } from './localAws.ts';
import { type InstanceSpec, type LaunchedInstance, launchFleet } from './localFleet.ts';
import { createLocalHistoryTable } from './localTable.ts';

/** The demo's small fleet: what the demo and `npm run ops` act on. */
export const DEMO_FLEET: readonly InstanceSpec[] = [
  { name: 'web-1', tags: { 'snapkeeper:backup': 'true', CostCenter: 'shop' } },
  {
    name: 'web-2',
    tags: { 'snapkeeper:backup': 'true', CostCenter: 'shop' },
    dataVolumes: [{ device: '/dev/sdf', sizeGiB: 20 }],
  },
  {
    name: 'db-1',
    tags: {
      'snapkeeper:backup': 'daily,weekly',
      'snapkeeper:retain': 'daily=5,weekly=4',
      'snapkeeper:ami': 'daily',
      'snapkeeper:ami-retain': '3',
    },
    dataVolumes: [
      { device: '/dev/sdf', sizeGiB: 100 },
      { device: '/dev/sdg', sizeGiB: 200, tags: { 'snapkeeper:skip': 'true' } },
    ],
  },
  { name: 'batch-1', tags: { 'snapkeeper:backup': 'daily' }, state: 'stopped' },
  { name: 'legacy-1' },
  { name: 'typo-1', tags: { 'snapkeeper:backup': 'dialy' } },
];

/** A running local AWS with the deployment's environment set and its history table made. */
export interface LocalStack {
  readonly aws: LocalAws;
  readonly ec2: EC2Client;
  readonly region: string;
  readonly table: string;
  launch(specs?: readonly InstanceSpec[]): Promise<Map<string, LaunchedInstance>>;
}

/**
 * Starts the local AWS and sets the environment the functions read, as a deployment
 * named `deployment` would have it (local-only switches on: tagging AMIs after creation,
 * no Recycle Bin).
 *
 * @example
 * const stack = await startLocalStack('demo');
 */
export async function startLocalStack(
  deployment: string,
  region = 'us-east-1',
): Promise<LocalStack> {
  const aws = await startLocalAws();
  useLocalAwsEnvironment(aws.endpoint, region);
  const table = `snapkeeper-${deployment}-runs`;
  Object.assign(process.env, {
    DEPLOYMENT: deployment,
    SCHEDULES: JSON.stringify(deploymentSchedules()),
    COPY_TAGS: 'CostCenter',
    HISTORY_TABLE: table,
    LOCAL_TAG_AFTER_CREATE: 'true',
    RECYCLE_BIN_CHECK: 'false',
    RESTORE_WAIT_SECONDS: '30',
    MAX_DELETIONS: process.env.MAX_DELETIONS ?? '50',
    POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_TRACE_ENABLED: 'false',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  await createLocalHistoryTable(new DynamoDBClient({ region, endpoint: aws.endpoint }), table);
  const ec2 = new EC2Client({ region, endpoint: aws.endpoint });
  return { aws, ec2, region, table, launch: (specs = DEMO_FLEET) => launchFleet(ec2, specs) };
}
