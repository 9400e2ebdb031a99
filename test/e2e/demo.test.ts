import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../harness/localAws.ts';

/** Runs the demo as `npm run demo` does (its own local AWS), and returns what it printed. */
async function runDemo(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(PROJECT_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'scripts/demo.ts'],
      {
        cwd: PROJECT_ROOT,
        env: { ...process.env, NO_COLOR: '1', AWS_ENDPOINT_URL: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    // The demo's bold and dim styles: ESC [ ... m.
    const styles = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
    child.on('close', (code) => resolve({ code, output: output.replace(styles, '') }));
  });
}

describe('The demo (npm run demo): a fortnight of a small fleet, end to end', () => {
  let demo: { code: number | null; output: string };

  beforeAll(async () => {
    demo = await runDemo();
  }, 180_000);

  it('runs to the end without an error', () => {
    expect(demo.code, demo.output.slice(-2000)).toBe(0);
    expect(demo.output).toContain('== Done');
  });

  it('fires the schedules on each of the fourteen days', () => {
    const days = demo.output
      .split('\n')
      .filter((line) => /^\s{2}\w{3}, \d{2} \w{3}\s+backup /.test(line));
    expect(days).toHaveLength(14);
    for (const day of days) expect(day).toMatch(/backup (succeeded|partial)/);
  });

  it('shows a duplicate slot run once, retention at work, and the orphan keeping its last snapshot', () => {
    expect(demo.output).toMatch(/daily slot delivered twice: the second made nothing/);
    expect(demo.output).toMatch(/retention deleted\s+[1-9]\d*, kept/);
    expect(demo.output).toMatch(/web-2 terminated/);
  });

  it('restores: a drill of a volume and a new instance from an AMI', () => {
    expect(demo.output).toMatch(/restored snap-[0-9a-f]+ .* drill volume deleted: true/);
    expect(demo.output).toMatch(/launched i-[0-9a-f]+ "db-1-restored"/);
  });

  it('proves restores on a schedule: the weekly restore test on each Sunday, its volumes deleted', () => {
    const tests = demo.output.match(
      /weekly restore test succeeded: i-[0-9a-f]+ passed \(\d+ volume\(s\), [\d.]+ s to available, deleted\)/g,
    );
    expect(tests).toHaveLength(2);
  });

  it('reports recovery points, the run history and the coverage page', () => {
    expect(demo.output).toMatch(/recovery points, newest snapshot/);
    expect(demo.output).toMatch(/orphaned: .*web-2/);
    expect(demo.output).toContain('demo-coverage.html');
  });

  it('prices the fleet: measured sizes and estimated monthly costs in the report (issue 22)', () => {
    expect(demo.output).toMatch(/web-1\s+full\s+\d+ MiB\s+unique\s+\d+ MiB\s+~0\.\d{4} USD\/month/);
    expect(demo.output).toMatch(
      /deployment ~0\.\d{4} USD\/month .*prices: aws-published:us-east-1/,
    );
  });

  it('fans the next slot out over two regions and finishes one run from its batches', () => {
    expect(demo.output).toMatch(/planner: self\/us-east-1: \d+ instances due, \d+ batches queued/);
    expect(demo.output).toMatch(/planner: self\/eu-west-1: 3 instances due, \d+ batches queued/);
    expect(demo.output).toMatch(/round 1, worker 1: batch self\//);
    expect(demo.output).toMatch(/^\s+status: (succeeded|partial)$/m);
    expect(demo.output).toMatch(/^\s+self\/eu-west-1\/0001\s+succeeded\s+1\s/m);
  });
});
