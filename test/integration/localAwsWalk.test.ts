import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../harness/localAws.ts';
import type { LocalAwsState } from '../../harness/localStack.ts';

const TSX = join(PROJECT_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs one of the npm run tools as `npm run <tool>` does (tsx), as a newcomer would: no
 * AWS credentials, no AWS_ENDPOINT_URL, nothing exported; the kept-up local AWS's state
 * in its own folder.
 */
function tool(directory: string, script: string, args: string[]): Promise<Ran> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  env.SNAPKEEPER_LOCAL_AWS_DIR = directory;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TSX, `scripts/${script}.ts`, ...args], {
      cwd: PROJECT_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('The walk: npm run local-aws, then ops backup, history --run, report --html, --stop', () => {
  let directory: string;
  let started: Ran;
  let state: LocalAwsState;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'snapkeeper-walk-'));
    started = await tool(directory, 'localAwsCommand', []);
    state = JSON.parse(readFileSync(join(directory, 'state.json'), 'utf8')) as LocalAwsState;
  }, 120_000);

  afterAll(async () => {
    if (state && alive(state.pid)) process.kill(state.pid, 'SIGKILL');
    rmSync(directory, { recursive: true, force: true });
  });

  it('local-aws starts moto on a loopback port that stays up, with the demo’s fleet, and prints the exports', () => {
    expect(started.code, started.stderr).toBe(0);
    expect(started.stderr).toBe('');
    expect(state.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(alive(state.pid)).toBe(true);
    expect(state.fleet.map((i) => i.name)).toEqual([
      'web-1',
      'web-2',
      'db-1',
      'db-2',
      'batch-1',
      'legacy-1',
      'typo-1',
    ]);
    expect(started.stdout).toContain(`started the local AWS at ${state.endpoint}`);
    expect(started.stdout).toContain(`export AWS_ENDPOINT_URL=${state.endpoint}`);
    expect(started.stdout).toContain('export DEPLOYMENT=local HISTORY_TABLE=snapkeeper-local-runs');
    expect(started.stdout).toContain('npm run local-aws -- --stop');
  });

  it('a second local-aws finds the one running and starts nothing', async () => {
    const again = await tool(directory, 'localAwsCommand', ['--status']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`already running: the local AWS at ${state.endpoint}`);
  });

  it('ops, history, report and invoke use it, with no credentials typed, and print no logs or warnings', async () => {
    const web = state.fleet.find((i) => i.name === 'web-1');
    const note = `using the local AWS at ${state.endpoint} (npm run local-aws; stop it with npm run local-aws -- --stop)`;

    const backup = await tool(directory, 'ops', ['backup-instances', '--json']);
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stderr).toBe('');
    const answer = JSON.parse(backup.stdout) as {
      runId: string;
      status: string;
      result: {
        backup: { instances: { instanceId: string; snapshots: { snapshotId: string }[] }[] };
      };
    };
    expect(answer.status).toBe('succeeded');
    const made = answer.result.backup.instances[0];
    expect(made?.instanceId).toBe(web?.instanceId);
    const snapshotId = made?.snapshots[0]?.snapshotId ?? '';
    expect(snapshotId).toMatch(/^snap-/);

    const run = await tool(directory, 'history', ['--run', answer.runId]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr.trim()).toBe(note);
    expect(run.stdout).toContain(`runId: ${answer.runId}`);
    expect(run.stdout).toMatch(new RegExp(`create-snapshot\\s+${snapshotId}\\s+after\\s+done`));

    const page = join(directory, 'page', 'coverage.html');
    const report = await tool(directory, 'report', ['--html', page]);
    expect(report.code, report.stderr).toBe(0);
    expect(report.stderr.trim()).toBe(note);
    expect(report.stdout).toContain(`wrote ${page}`);
    const html = readFileSync(page, 'utf8');
    expect(html).toContain('<title>Backup coverage — local (us-east-1)</title>');
    expect(html).toContain(web?.instanceId ?? 'web-1');
    expect(html).toContain(answer.runId);

    const dryRun = await tool(directory, 'invoke', ['backup', 'backup-daily-dry-run', '--json']);
    expect(dryRun.code, dryRun.stderr).toBe(0);
    expect(dryRun.stderr).toBe('');
    expect(JSON.parse(dryRun.stdout)).toMatchObject({ job: 'backup', dryRun: true });

    // The local AWS has no Recycle Bin: the AMI job is told so, and warns of nothing.
    const amis = await tool(directory, 'invoke', ['amis', 'amis-daily', '--json']);
    expect(amis.code, amis.stderr).toBe(0);
    expect(amis.stderr).toBe('');
    expect(JSON.parse(amis.stdout)).toMatchObject({ job: 'amis', counts: { created: 1 } });
    expect(amis.stdout).not.toContain('Recycle Bin');
  }, 120_000);

  it('local-aws --stop ends it; then the tools say it is gone instead of asking for credentials', async () => {
    const stopped = await tool(directory, 'localAwsCommand', ['--stop']);
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toBe('');
    expect(stopped.stdout.trim()).toBe(
      `stopped the local AWS at ${state.endpoint} (pid ${state.pid})`,
    );
    expect(alive(state.pid)).toBe(false);
    expect(existsSync(join(directory, 'state.json'))).toBe(false);
    const invoke = await tool(directory, 'invoke', ['backup', 'backup-daily-dry-run']);
    expect(invoke.code).toBe(1);
    expect(invoke.stderr.trim()).toBe(
      'invoke: no local AWS is running: start it with "npm run local-aws" (invoke runs the functions locally only)',
    );
    const status = await tool(directory, 'localAwsCommand', ['--status']);
    expect(status.code).toBe(3);
    expect(status.stdout.trim()).toBe('no local AWS is running (npm run local-aws)');
  }, 60_000);
});
