/**
 * Deploying from a fresh clone: `npm run deploy` and `npm run remove` do their own setup
 * and use the project's osls, and the target-account role's own instructions name every
 * parameter it takes. The scripts run with --dry-run, which prints each command instead
 * of running it: nothing is installed or deployed by these tests.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../harness/localAws.ts';

const packageJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};

/** Runs an npm script's command line, as `npm run <name> -- <args>` would, dry. */
function runScript(name: string, args: readonly string[]) {
  const command = packageJson.scripts[name] ?? '';
  // Refuse to run anything but the project's own deploy script (never a real deploy).
  expect(command, `npm run ${name}`).toMatch(/^bash scripts\/deploy\.sh (deploy|remove)$/);
  const result = spawnSync('bash', ['-c', `${command} "$@"`, 'npm', ...args, '--dry-run'], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    env: { ...process.env, PATH: '/usr/bin:/bin' },
  });
  const commands = result.stdout
    .split('\n')
    .filter((line) => line.startsWith('+ '))
    .map((line) => line.slice(2));
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, commands };
}

describe('Deploy: npm run deploy and npm run remove from a fresh clone', () => {
  it('sets up first, then packages and lints for the stage and region, then deploys that package with the project’s osls', () => {
    // Act
    const run = runScript('deploy', ['--stage', 'prod', '--region', 'eu-west-1']);

    // Assess
    expect(run.status, run.stderr).toBe(0);
    expect(run.commands).toEqual([
      'bash scripts/setup.sh',
      'bash scripts/package.sh --stage prod --region eu-west-1',
      'node_modules/.bin/osls deploy --stage prod --region eu-west-1 --package .serverless',
    ]);
  });

  it('deploys stage dev in us-east-1 when none is given (as serverless.yml does), and passes other options to osls', () => {
    // Act
    const run = runScript('deploy', ['--aws-profile', 'ops']);

    // Assess
    expect(run.stdout).toContain('deploy: stage dev, region us-east-1');
    expect(run.commands.at(-1)).toBe(
      'node_modules/.bin/osls deploy --stage dev --region us-east-1 --package .serverless --aws-profile ops',
    );
  });

  it('removes with its own setup too, and says the run-history table is kept', () => {
    // Act
    const run = runScript('remove', ['--stage', 'prod', '--region', 'eu-west-1']);

    // Assess
    expect(run.status, run.stderr).toBe(0);
    expect(run.commands).toEqual([
      'bash scripts/setup.sh',
      'node_modules/.bin/osls remove --stage prod --region eu-west-1',
    ]);
    expect(run.stdout).toContain('the run-history table snapkeeper-prod-runs is kept');
  });

  it.each([
    [['--stage', 'my stage'], '--stage my stage: use 1-64 letters, digits, - or _'],
    [['--region', 'Ireland'], '--region Ireland: not an AWS region name'],
  ])('refuses %j before anything runs, naming the option', (args, message) => {
    // Act
    const run = runScript('deploy', args);

    // Assess
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(message);
    expect(run.commands).toEqual([]);
  });
});

describe('Deploy: the target-account role command', () => {
  it('names every parameter of deploy/target-account-role.yml, DeploymentRegion among them', () => {
    // Prepare
    const template = readFileSync(join(PROJECT_ROOT, 'deploy', 'target-account-role.yml'), 'utf8');
    const header = template
      .split('\n')
      .filter((line) => line.startsWith('#'))
      .join('\n');
    const block = /^Parameters:\n((?: {2}.*\n|\n)*)/m.exec(template)?.[1] ?? '';
    const parameters = [...block.matchAll(/^ {2}([A-Za-z0-9]+):/gm)].map((m) => m[1]);

    // Assess
    expect(parameters).toContain('DeploymentRegion');
    for (const parameter of parameters) expect(header).toContain(`${parameter}=`);
  });
});
