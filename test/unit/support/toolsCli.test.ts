/**
 * The remaining `npm run` tools behave like command line tools (issue 18): `--help` with
 * examples, exit code 0, and nothing started; a bad option is one line naming it, exit
 * code 2, before anything runs. The TypeScript tools run in process (the local AWS
 * stubbed to fail if started); the shell scripts run as npm runs them.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';

vi.mock('../../../harness/localStack.ts', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../../harness/localStack.ts')>()),
  startLocalStack: vi.fn(() => Promise.reject(new Error('the local AWS must not start'))),
}));

const { campaignCommand } = await import('../../../scripts/campaign.ts');
const { demoCommand } = await import('../../../scripts/demo.ts');
const { plannerBenchCommand } = await import('../../../scripts/bench/plannerBench.ts');
const { benchBundlesCommand } = await import('../../../scripts/benchBundles.ts');
const { startLocalStack } = await import('../../../harness/localStack.ts');
const { PROJECT_ROOT } = await import('../../../harness/localAws.ts');

type Io = { out: (text: string) => void; err: (text: string) => void };
type Command = (argv: readonly string[], io: Io) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  campaign: campaignCommand,
  demo: demoCommand,
  'bench:planner': plannerBenchCommand,
  'bench:bundles': benchBundlesCommand,
};

/** Runs a tool's command line in process, capturing what it printed. */
async function run(command: Command, argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await command(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const packageJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};

/** Runs an npm script's shell command line as `npm run <name> -- <args>` does. */
function runScript(name: string, args: readonly string[]) {
  const command = packageJson.scripts[name] ?? '';
  // Only the project's own shell scripts, never a real deploy (every deploy/remove call
  // here stops at --help or at a bad option, before --dry-run would matter).
  expect(command, `npm run ${name}`).toMatch(/^bash scripts\/(deploy|package|demo)\.sh/);
  const result = spawnSync('bash', ['-c', `${command} "$@"`, 'npm', ...args], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: result.status, out: result.stdout.trim(), err: result.stderr.trim() };
}

/** The help's examples: the lines after `Examples:`. */
const examplesOf = (help: string) =>
  help
    .slice(help.indexOf('Examples:'))
    .split('\n')
    .slice(1)
    .filter((line) => line !== '');

describe('The npm run tools without --help until now answer --help and refuse bad options', () => {
  for (const [name, command] of Object.entries(COMMANDS)) {
    describe(`npm run ${name}`, () => {
      it('answers --help (and -h) with what it does, its options and examples, exit code 0, starting nothing', async () => {
        for (const flag of ['--help', '-h']) {
          const { code, out, err } = await run(command, [flag]);
          expect(code).toBe(0);
          expect(err).toBe('');
          expect(out).toContain(`Usage: npm run ${name} --`);
          expect(out).toContain('Options:');
          expect(examplesOf(out).length).toBeGreaterThanOrEqual(2);
          for (const example of examplesOf(out)) expect(example).toMatch(/^ {2}npm run /);
        }
        expect(startLocalStack).not.toHaveBeenCalled();
      });

      it('answers an unknown option with one line naming it, and exit code 2', async () => {
        const { code, out, err } = await run(command, ['--frobnicate']);
        expect(code).toBe(2);
        expect(out).toBe('');
        expect(err).toBe(`${name}: unknown option --frobnicate (see npm run ${name} -- --help)`);
        expect(startLocalStack).not.toHaveBeenCalled();
      });
    });
  }

  it('campaign: keeps its internal --scenario/--target pair, and names a half of it', async () => {
    const { code, err } = await run(campaignCommand, ['--scenario', 'races']);
    expect(code).toBe(2);
    expect(err).toBe(
      'campaign: --scenario and --target go together (internal; see npm run campaign -- --help)',
    );
  });

  it('campaign: --only names a filter that matches nothing; --list lists every scenario, each in a region of its own', async () => {
    const none = await run(campaignCommand, ['--only', 'no such scenario']);
    expect(none.code).toBe(2);
    expect(none.err).toBe(
      'campaign: --only "no such scenario" matches no scenario (see npm run campaign -- --list)',
    );

    const { code, out } = await run(campaignCommand, ['--list']);
    expect(code).toBe(0);
    const lines = out.split('\n');
    for (const defect of ['#1)', '#2)', '#3)', '#4)', '#5, #6)', '#8, #9)', '#10)', '#11)'])
      expect(lines.filter((line) => line.includes(defect))).toHaveLength(1);
    const regions = lines.map((line) => /\(([a-z0-9-]+)\)$/.exec(line)?.[1]);
    expect(regions).not.toContain(undefined);
    expect(new Set(regions).size).toBe(lines.length);
    expect(startLocalStack).not.toHaveBeenCalled();
  });

  it('demo: refuses --json by name (it prints a narrative)', async () => {
    const { code, err } = await run(demoCommand, ['--json']);
    expect(code).toBe(2);
    expect(err).toBe(
      'demo: option --json: the demo prints a narrative, not JSON (see npm run demo -- --help)',
    );
  });

  it.each([
    [['--runs', '0'], 'bench:bundles: --runs "0": use a whole number from 1 to 1000'],
    [['--runs', 'ten'], 'bench:bundles: --runs "ten": use a whole number from 1 to 1000'],
    [
      ['--function', 'nope'],
      'bench:bundles: --function "nope": not a function of serverless.yml (use one of backup, retention, amis, ops, restoreTest, fanout, worker, copy)',
    ],
  ])('bench:bundles: refuses %j by name before building anything', async (argv, line) => {
    const { code, out, err } = await run(benchBundlesCommand, argv);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toBe(line);
  });

  // deploy and remove get --dry-run as well: should --help ever be missed, nothing deploys.
  describe.each([
    ['package', []],
    ['deploy', ['--dry-run']],
    ['remove', ['--dry-run']],
    ['demo', []],
  ])('npm run %s', (name, dry) => {
    it('answers --help with its options and examples, exit code 0', () => {
      const { code, out, err } = runScript(name, ['--help', ...dry]);
      expect(err).toBe('');
      expect(code).toBe(0);
      expect(out).toContain(`Usage: npm run ${name} --`);
      expect(out).toContain('Options:');
      expect(examplesOf(out).length).toBeGreaterThanOrEqual(2);
      for (const example of examplesOf(out)) expect(example).toMatch(/^ {2}npm run /);
      expect(out).not.toMatch(/^\+ /m);
    });

    it('answers an unknown option with one line naming it, and exit code 2', () => {
      const { code, out, err } = runScript(name, ['--frobnicate', ...dry]);
      expect(code).toBe(2);
      expect(out).toBe('');
      expect(err.split('\n')).toHaveLength(1);
      expect(err).toMatch(
        new RegExp(
          `^${name}: unknown option --frobnicate\\b.*\\(see npm run ${name} -- --help\\)$`,
        ),
      );
    });
  });

  it.each([
    [
      'package',
      ['--stage'],
      'package: option --stage needs a value (see npm run package -- --help)',
    ],
    ['package', ['prod'], 'package: unexpected argument "prod" (see npm run package -- --help)'],
    [
      'deploy',
      ['--region', '--dry-run'],
      'deploy: option --region needs a value (see npm run deploy -- --help)',
    ],
  ])('%s %j: one line naming what is wrong, exit code 2', (name, args, line) => {
    const { code, out, err } = runScript(name, args);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toBe(line);
  });
});
