/**
 * The fault campaign: `npm run campaign` (`-- --help` for its options).
 *
 * Starts a local AWS (moto, through harness/localStack.ts) and runs a compact version of
 * the scenarios of test/integration/faultCampaign*.test.ts and of issue 15's defects
 * (runLifecycle, ownership, createReconcile, copyLineage) against it, each in a child
 * process of its own (the handlers read their environment once, at import), each in its
 * own region and behind its own fault proxy. Prints what was injected and what was lost:
 * backups expected vs made, deletions due vs done, duplicate sets, history records
 * expected vs found. Every loss has a target of 0; the exit code is 1 when one is missed.
 *
 * This file is the entry (the command line, and the child's command line). The campaign
 * lives in scripts/campaign/: its scenarios (faultScenarios.ts, issue15Scenarios.ts, over
 * scenario.ts and setups.ts), its measures (measures.ts), a scenario's child process
 * (child.ts) and the report (report.ts). The fault rules and the measurements of moto are
 * the harness's (harness/faultRules.ts, harness/measurements.ts), which the integration
 * tests use too; they are re-exported here as before.
 */
import { fileURLToPath } from 'node:url';
import { startLocalStack } from '../harness/localStack.ts';
import { runInChild, runScenarioHere } from './campaign/child.ts';
import { FAULT_SCENARIOS } from './campaign/faultScenarios.ts';
import { ISSUE_15_SCENARIOS } from './campaign/issue15Scenarios.ts';
import { type CampaignSummary, summarizeCampaign } from './campaign/report.ts';
import type { Scenario, Tally } from './campaign/scenario.ts';
import { type CliSpec, CONSOLE_IO, isMain, runTool, type ToolIo, UsageError } from './cli.ts';

export * from '../harness/faultRules.ts';
export * from '../harness/measurements.ts';
export { latestFire, slotText } from '../harness/slotClock.ts';

/** Every scenario, in the order the campaign runs them. */
const SCENARIOS: readonly Scenario[] = [...FAULT_SCENARIOS, ...ISSUE_15_SCENARIOS];

/** Starts the local AWS, runs each scenario in a child process of its own, and sums up. */
async function runCampaign(
  scenarios: readonly Scenario[],
  verbose: boolean,
): Promise<CampaignSummary> {
  const started = Date.now();
  const entry = fileURLToPath(import.meta.url);
  const stack = await startLocalStack('campaign');
  const tallies: Tally[] = [];
  try {
    for (const scenario of scenarios)
      tallies.push(await runInChild(entry, scenario.name, stack.aws.endpoint, verbose));
  } finally {
    await stack.aws.stop();
  }
  return summarizeCampaign(tallies, (Date.now() - started) / 1000);
}

/** `npm run campaign`'s command line. */
export const CAMPAIGN_COMMAND: CliSpec = {
  command: 'npm run campaign --',
  summary:
    "The fault campaign: starts a local AWS (moto) and runs each scenario (throttling, timeouts, crashes, lost answers, races, issue 15's defects) in a child process of its own, behind a fault proxy; prints what was injected and what was lost. Exit code 1 when a loss is not 0 or a check fails.",
  options: {
    only: {
      type: 'string',
      value: '<text>',
      description: 'run only the scenarios whose name contains <text> (case-insensitive)',
    },
    list: { type: 'boolean', description: 'list the scenarios and exit' },
    scenario: {
      type: 'string',
      value: '<name>',
      description: 'internal: run one scenario in this process (with --target)',
    },
    target: {
      type: 'string',
      value: '<endpoint>',
      description: 'internal: the local AWS endpoint for --scenario',
    },
  },
  examples: [
    'npm run campaign',
    'npm run campaign -- --only "#1)"',
    'npm run campaign -- --list',
    'npm run campaign -- --json > campaign.json',
  ],
  notes: ["--verbose passes the children's log lines through to stderr. --help starts nothing."],
};

/**
 * Runs `npm run campaign` with a command line: `--help`, `--list`, a child's
 * `--scenario`/`--target`, or the campaign. Answers the exit code (2 for a bad command line).
 *
 * @example
 * process.exitCode = await campaignCommand(['--only', 'crash']);
 */
export async function campaignCommand(
  argv: readonly string[],
  io: ToolIo = CONSOLE_IO,
): Promise<number> {
  return runTool(
    CAMPAIGN_COMMAND,
    argv,
    async (cli) => {
      const { scenario, target, only } = cli.values as Record<string, string | undefined>;
      if ((scenario === undefined) !== (target === undefined))
        throw new UsageError(
          '--scenario and --target go together (internal; see npm run campaign -- --help)',
        );
      const chosen = selectScenarios(only);
      if (cli.values.list === true) {
        io.out(chosen.map((s) => `${s.name}  (${s.region})`).join('\n'));
        return 0;
      }
      if (scenario !== undefined && target !== undefined) {
        const found = SCENARIOS.find((s) => s.name === scenario);
        if (!found) throw new Error(`no scenario ${JSON.stringify(scenario)}`);
        await runScenarioHere(found, target);
        return 0;
      }
      // The local stack keeps the functions' Powertools logs silent unless told otherwise.
      if (cli.verbose && (process.env.POWERTOOLS_LOG_LEVEL ?? 'SILENT') === 'SILENT')
        process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
      const summary = await runCampaign(chosen, cli.verbose);
      io.out(cli.json ? JSON.stringify(summary.tallies, null, 2) : summary.text);
      return summary.missed ? 1 : 0;
    },
    io,
  );
}

/** The scenarios whose name contains `only` (all without it); none is a usage error. */
function selectScenarios(only: string | undefined): readonly Scenario[] {
  if (only === undefined) return SCENARIOS;
  const chosen = SCENARIOS.filter((s) => s.name.toLowerCase().includes(only.toLowerCase()));
  if (chosen.length === 0)
    throw new UsageError(
      `--only ${JSON.stringify(only)} matches no scenario (see npm run campaign -- --list)`,
    );
  return chosen;
}

if (isMain(import.meta.url)) {
  // The handlers' clients keep sockets alive: the process leaves once its answer is out.
  campaignCommand(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
