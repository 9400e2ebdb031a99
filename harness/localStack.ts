/**
 * A local deployment: the local AWS with the deployment's environment set and its history
 * table made, the demo's fleet, and the state of the kept-up `npm run local-aws`.
 * Part of the local AWS harness: imports only lib/ and harness/.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { deploymentSchedules } from './deploymentSchedules.ts';
import {
  LOCAL_SLOT_CATCH_UP_SECONDS,
  type LocalAws,
  motoAnswers,
  PROJECT_ROOT,
  startDetachedLocalAws,
  startLocalAws,
  useLocalAwsEnvironment,
} from './localAws.ts';
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
      'snapkeeper:consistency': 'fsfreeze',
      'snapkeeper:retain': 'daily=5,weekly=4',
      'snapkeeper:ami': 'daily',
      'snapkeeper:ami-retain': '3',
    },
    dataVolumes: [
      { device: '/dev/sdf', sizeGiB: 100 },
      { device: '/dev/sdg', sizeGiB: 200, tags: { 'snapkeeper:skip': 'true' } },
    ],
  },
  // Application-consistent like db-1; the demo marks it unmanaged by SSM (scripts/demo/consistency.ts).
  {
    name: 'db-2',
    tags: { 'snapkeeper:backup': 'daily', 'snapkeeper:consistency': 'fsfreeze' },
    dataVolumes: [{ device: '/dev/sdf', sizeGiB: 50 }],
  },
  { name: 'batch-1', tags: { 'snapkeeper:backup': 'daily' }, state: 'stopped' },
  { name: 'legacy-1' },
  { name: 'typo-1', tags: { 'snapkeeper:backup': 'dialy' } },
];

/** The history table of a local deployment. */
export function localTableName(deployment: string): string {
  return `snapkeeper-${deployment}-runs`;
}

/**
 * The environment the functions read, as a deployment named `deployment` would have it,
 * with the local-only switches on (tagging AMIs after creation, no Recycle Bin) and the
 * Powertools logger quiet unless POWERTOOLS_LOG_LEVEL says otherwise.
 *
 * @example
 * Object.assign(process.env, localDeploymentEnvironment('local'));
 */
export function localDeploymentEnvironment(
  deployment: string,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  return {
    DEPLOYMENT: deployment,
    SCHEDULES: JSON.stringify(deploymentSchedules()),
    COPY_TAGS: 'CostCenter',
    HISTORY_TABLE: localTableName(deployment),
    LOCAL_TAG_AFTER_CREATE: 'true',
    RECYCLE_BIN_CHECK: 'false',
    RESTORE_WAIT_SECONDS: '30',
    MAX_DELETIONS: env.MAX_DELETIONS ?? '50',
    POWERTOOLS_LOG_LEVEL: env.POWERTOOLS_LOG_LEVEL ?? 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_TRACE_ENABLED: 'false',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

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
  const table = localTableName(deployment);
  Object.assign(process.env, localDeploymentEnvironment(deployment));
  await createLocalHistoryTable(new DynamoDBClient({ region, endpoint: aws.endpoint }), table);
  const ec2 = new EC2Client({ region, endpoint: aws.endpoint });
  return { aws, ec2, region, table, launch: (specs = DEMO_FLEET) => launchFleet(ec2, specs) };
}

/** The deployment name of the local AWS that `npm run local-aws` keeps up. */
export const LOCAL_DEPLOYMENT = 'local';

/** What `npm run local-aws` writes to `.local-aws/state.json` while moto runs. */
export interface LocalAwsState {
  readonly pid: number;
  readonly port: number;
  readonly endpoint: string;
  readonly region: string;
  readonly deployment: string;
  readonly table: string;
  readonly startedAt: string;
  readonly fleet: readonly LaunchedInstance[];
}

/** Where the kept-up local AWS keeps its state: `.local-aws/` (or SNAPKEEPER_LOCAL_AWS_DIR). */
export function localAwsDirectory(env: NodeJS.ProcessEnv = process.env): string {
  return env.SNAPKEEPER_LOCAL_AWS_DIR?.trim() || join(PROJECT_ROOT, '.local-aws');
}

function stateFile(directory: string): string {
  return join(directory, 'state.json');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The kept-up local AWS when it runs: its state file exists, its process lives and moto
 * answers. A state file left by a dead process is removed.
 *
 * @example
 * const local = await runningLocalAws(localAwsDirectory());
 */
export async function runningLocalAws(directory: string): Promise<LocalAwsState | undefined> {
  let state: LocalAwsState;
  try {
    state = JSON.parse(readFileSync(stateFile(directory), 'utf8')) as LocalAwsState;
  } catch {
    return undefined;
  }
  if (typeof state.pid === 'number' && alive(state.pid) && (await motoAnswers(state.endpoint)))
    return state;
  rmSync(stateFile(directory), { force: true });
  return undefined;
}

/**
 * Starts the local AWS that stays up (`npm run local-aws`): moto detached, the history
 * table as serverless.yml defines it, and the demo's fleet; writes the state file. When
 * one already runs, returns it untouched.
 *
 * @example
 * const { state, started } = await startKeptLocalAws(localAwsDirectory());
 */
export async function startKeptLocalAws(
  directory: string,
  region = 'us-east-1',
): Promise<{ state: LocalAwsState; started: boolean }> {
  const running = await runningLocalAws(directory);
  if (running) return { state: running, started: false };
  mkdirSync(directory, { recursive: true });
  const moto = await startDetachedLocalAws(join(directory, 'moto.log'));
  try {
    const deployment = LOCAL_DEPLOYMENT;
    const table = localTableName(deployment);
    const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
    await createLocalHistoryTable(
      new DynamoDBClient({ region, endpoint: moto.endpoint, credentials }),
      table,
    );
    const fleet = await launchFleet(
      new EC2Client({ region, endpoint: moto.endpoint, credentials }),
      DEMO_FLEET,
    );
    const state: LocalAwsState = {
      ...moto,
      region,
      deployment,
      table,
      startedAt: new Date().toISOString(),
      fleet: [...fleet.values()],
    };
    writeFileSync(stateFile(directory), `${JSON.stringify(state, null, 2)}\n`);
    return { state, started: true };
  } catch (error) {
    process.kill(moto.pid, 'SIGTERM');
    throw error;
  }
}

/**
 * Stops the kept-up local AWS and removes its state; returns what was stopped, if anything.
 *
 * @example
 * await stopKeptLocalAws(localAwsDirectory());
 */
export async function stopKeptLocalAws(directory: string): Promise<LocalAwsState | undefined> {
  const state = await runningLocalAws(directory);
  if (!state) return undefined;
  process.kill(state.pid, 'SIGTERM');
  // A loaded machine can take seconds to end moto; a killed process is gone only once reaped.
  if (!(await ended(state.pid, 10_000))) {
    process.kill(state.pid, 'SIGKILL');
    await ended(state.pid, 5_000);
  }
  rmSync(stateFile(directory), { force: true });
  return state;
}

/** Whether `pid` ended within `ms`, looking every 100 ms. */
async function ended(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return !alive(pid);
}

/** The exports that point a shell (the AWS CLI, a script) at the kept-up local AWS. */
export function localAwsExports(state: LocalAwsState): string {
  return [
    `export AWS_ENDPOINT_URL=${state.endpoint}`,
    `export AWS_REGION=${state.region}`,
    'export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing',
    `export DEPLOYMENT=${state.deployment} HISTORY_TABLE=${state.table}`,
  ].join('\n');
}

/**
 * Points this process at the local AWS when it should. The kept-up local AWS, when it runs
 * (unless SNAPKEEPER_LOCAL_AWS=off) and AWS_ENDPOINT_URL is unset or names it, with the local
 * deployment's whole environment and dummy credentials; another loopback AWS_ENDPOINT_URL
 * with dummy credentials when none are set. Returns a one-line note saying which, or
 * undefined when the deployed account is used.
 *
 * @example
 * const note = await useLocalAwsIfRunning(process.env);
 */
export async function useLocalAwsIfRunning(
  env: NodeJS.ProcessEnv = process.env,
): Promise<LocalAwsInUse | undefined> {
  const endpoint = env.AWS_ENDPOINT_URL?.trim().replace(/\/$/, '');
  const off = env.SNAPKEEPER_LOCAL_AWS?.trim().toLowerCase() === 'off';
  const state = off ? undefined : await runningLocalAws(localAwsDirectory(env));
  if (state && (!endpoint || endpoint === state.endpoint)) {
    env.AWS_ENDPOINT_URL = state.endpoint;
    env.AWS_REGION = state.region;
    env.AWS_ACCESS_KEY_ID = 'testing';
    env.AWS_SECRET_ACCESS_KEY = 'testing';
    env.AWS_SESSION_TOKEN = 'testing';
    delete env.AWS_PROFILE;
    env.SLOT_CATCH_UP_SECONDS ??= LOCAL_SLOT_CATCH_UP_SECONDS;
    Object.assign(env, localDeploymentEnvironment(state.deployment, env));
    return {
      note: `using the local AWS at ${state.endpoint} (npm run local-aws; stop it with npm run local-aws -- --stop)`,
      state,
    };
  }
  if (endpoint && /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(endpoint)) {
    if (!env.AWS_ACCESS_KEY_ID && !env.AWS_PROFILE) {
      env.AWS_ACCESS_KEY_ID = 'testing';
      env.AWS_SECRET_ACCESS_KEY = 'testing';
    }
    env.RECYCLE_BIN_CHECK ??= 'false';
    env.SLOT_CATCH_UP_SECONDS ??= LOCAL_SLOT_CATCH_UP_SECONDS;
    return { note: `using the local AWS at ${endpoint} (AWS_ENDPOINT_URL)` };
  }
  return undefined;
}

/** The local AWS a command uses: a note to print, and the kept-up one's state when it is that. */
export interface LocalAwsInUse {
  readonly note: string;
  readonly state?: LocalAwsState;
}
