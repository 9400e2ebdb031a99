/**
 * `npm run local-aws`: a local AWS (moto) that stays up between commands, with the demo's
 * fleet and the run-history table; `--stop` ends it, `--status` says whether it runs.
 */

import {
  type LocalAwsState,
  localAwsDirectory,
  localAwsExports,
  runningLocalAws,
  startKeptLocalAws,
  stopKeptLocalAws,
} from '../harness/localStack.ts';
import { type CliSpec, isMain, runCommand, UsageError } from './cli.ts';

/** The command line of `npm run local-aws`. */
export const LOCAL_AWS_COMMAND: CliSpec = {
  command: 'npm run local-aws --',
  summary:
    'Starts a local AWS (moto on a loopback port) that stays up between commands, with the demo’s fleet\nand the run-history table, and prints the exports to paste. npm run ops, invoke, history and report\nuse it while it runs, with dummy local credentials; nothing reaches AWS.',
  options: {
    stop: { type: 'boolean', description: 'stop it (its resources are gone)' },
    status: { type: 'boolean', description: 'say whether it runs, and where' },
    region: {
      type: 'string',
      value: '<region>',
      default: 'us-east-1',
      description: 'the fleet’s region',
    },
  },
  notes: [
    'Its pid, port and fleet are in .local-aws/state.json (SNAPKEEPER_LOCAL_AWS_DIR moves it), moto’s\noutput in .local-aws/moto.log. SNAPKEEPER_LOCAL_AWS=off makes the other commands ignore it.',
  ],
  examples: [
    'npm run local-aws',
    'npm run ops -- backup-instances && npm run history',
    'npm run report -- --html report.html',
    'npm run local-aws -- --stop',
  ],
};

function describe(state: LocalAwsState, started: boolean): string {
  return [
    `${started ? 'started' : 'already running:'} the local AWS at ${state.endpoint} (pid ${state.pid}, region ${state.region}, deployment "${state.deployment}", table ${state.table})`,
    'fleet:',
    ...state.fleet.map((i) => `  ${i.name.padEnd(9)} ${i.instanceId}`),
    '',
    'npm run ops, invoke, history and report use it now. For other tools (the AWS CLI), paste:',
    localAwsExports(state),
    '',
    'Stop it with: npm run local-aws -- --stop',
  ].join('\n');
}

if (isMain(import.meta.url)) {
  // It starts and stops the local AWS: it never runs against one it found.
  process.env.SNAPKEEPER_LOCAL_AWS = 'off';
  process.exitCode = await runCommand(LOCAL_AWS_COMMAND, process.argv.slice(2), async (cli) => {
    const directory = localAwsDirectory(process.env);
    if (cli.values.stop && cli.values.status)
      throw new UsageError('give --stop or --status, not both');
    if (cli.values.stop) {
      const stopped = await stopKeptLocalAws(directory);
      if (cli.json) return { output: JSON.stringify({ stopped: stopped ?? null }, null, 2) };
      return {
        output: stopped
          ? `stopped the local AWS at ${stopped.endpoint} (pid ${stopped.pid})`
          : 'no local AWS was running',
      };
    }
    if (cli.values.status) {
      const state = await runningLocalAws(directory);
      if (cli.json) return { output: JSON.stringify({ running: state ?? null }, null, 2) };
      return {
        output: state ? describe(state, false) : 'no local AWS is running (npm run local-aws)',
        exitCode: state ? 0 : 3,
      };
    }
    const { state, started } = await startKeptLocalAws(
      directory,
      String(cli.values.region ?? 'us-east-1'),
    );
    return { output: cli.json ? JSON.stringify(state, null, 2) : describe(state, started) };
  });
}
