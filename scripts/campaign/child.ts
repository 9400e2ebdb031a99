/**
 * One scenario in a child process of its own (the handlers read their environment once, at
 * import): the child's side runs the scenario behind its own fault proxy and prints its
 * tally on one marked line; the parent's side spawns the child and reads that line back.
 */
import { spawn } from 'node:child_process';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { startFaultProxy } from '../../harness/faultProxy.ts';
import { useLocalAwsEnvironment } from '../../harness/localAws.ts';
import { createLocalHistoryTable, localHistoryGateway } from '../../harness/localTable.ts';
import {
  emptyTally,
  type FunctionName,
  type Handler,
  type Scenario,
  type ScenarioContext,
  type Tally,
} from './scenario.ts';

/** The environment every scenario runs with (before its own `env`). */
export const CHILD_ENV = {
  AWS_MAX_ATTEMPTS: '4',
  AWS_REQUEST_TIMEOUT_MS: '5000',
  SNAPSHOT_RATE_RETRY_SECONDS: '0',
  SAFETY_MARGIN_SECONDS: '5',
  DUPLICATE_WAIT_SECONDS: '20',
  MAX_DELETIONS: '50',
};

/** The prefix of the child's one line of result on stdout. */
const RESULT_MARK = 'CAMPAIGN-RESULT ';

/**
 * The child's side: runs one scenario in this process against moto at `target`, behind a
 * fault proxy of its own, in the scenario's region, and prints its tally on one marked line.
 *
 * @example
 * await runScenarioHere(scenario, 'http://127.0.0.1:5000');
 */
export async function runScenarioHere(scenario: Scenario, target: string): Promise<void> {
  const tally = emptyTally(scenario.name);
  const started = Date.now();
  const proxy = await startFaultProxy({ target });
  const { region } = scenario;
  useLocalAwsEnvironment(proxy.endpoint, region);
  Object.assign(process.env, CHILD_ENV, scenario.env ?? {});
  const table = process.env.HISTORY_TABLE ?? 'snapkeeper-campaign-runs';
  const deployment = process.env.DEPLOYMENT ?? 'campaign';
  const ec2 = new EC2Client({ region, endpoint: target });
  const dynamo = new DynamoDBClient({ region, endpoint: target });
  const doc = DynamoDBDocumentClient.from(dynamo);
  try {
    await createLocalHistoryTable(dynamo, table);
    const history = localHistoryGateway(target, region, table);
    const ctx: ScenarioContext = {
      proxy,
      target,
      region,
      ec2,
      doc,
      history,
      table,
      deployment,
      handler: handlersOnDemand(),
    };
    await scenario.run(ctx, tally);
  } catch (error) {
    tally.error = error instanceof Error ? error.message : String(error);
  } finally {
    tally.faults = proxy.faults();
    tally.calls = proxy.calls();
    for (const record of proxy.requests()) {
      if (record.effect)
        tally.faultKinds[record.effect] = (tally.faultKinds[record.effect] ?? 0) + 1;
    }
    tally.seconds = (Date.now() - started) / 1000;
    await proxy.stop();
    ec2.destroy();
    dynamo.destroy();
  }
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(tally)}\n`);
}

/** The functions' handlers, each imported (and so configured) on first use, after the environment is set. */
function handlersOnDemand(): ScenarioContext['handler'] {
  const handlers = new Map<FunctionName, Handler>();
  return async (fn) => {
    let found = handlers.get(fn);
    if (!found) {
      found = ((await import(`../../functions/${fn}.ts`)) as { handler: Handler }).handler;
      handlers.set(fn, found);
    }
    return found;
  };
}

/**
 * The parent's side: runs `entry --scenario <name> --target <target>` in a child process
 * and answers the tally it printed (or an empty one carrying the child's exit code and the
 * tail of its stderr). `verbose` passes the child's log lines through to stderr.
 *
 * @example
 * const tally = await runInChild(fileURLToPath(import.meta.url), 'races', endpoint, false);
 */
export function runInChild(
  entry: string,
  name: string,
  target: string,
  verbose: boolean,
): Promise<Tally> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [...process.execArgv, entry, '--scenario', name, '--target', target],
      { stdio: ['ignore', 'pipe', 'pipe'], env: process.env },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      // The functions' Powertools lines go to stdout: --verbose shows them on stderr.
      if (verbose) {
        const lines = chunk.toString().split('\n');
        const logs = lines.filter((l) => l !== '' && !l.startsWith(RESULT_MARK));
        if (logs.length > 0) process.stderr.write(`${logs.join('\n')}\n`);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (verbose) process.stderr.write(chunk);
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    child.on('close', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
      if (line) {
        resolve(JSON.parse(line.slice(RESULT_MARK.length)) as Tally);
        return;
      }
      resolve({ ...emptyTally(name), error: `child exited ${code}: ${stderr.trim()}` });
    });
  });
}
