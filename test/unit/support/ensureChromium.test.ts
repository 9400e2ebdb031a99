import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../harness/localAws.ts';

const SCRIPT = join(PROJECT_ROOT, 'scripts', 'ensure-chromium.sh');

/**
 * Runs scripts/ensure-chromium.sh with only the given fake commands on PATH: `id` says
 * who we are, `apt-get` (when given) records its arguments and may "install" the browser.
 */
function ensure(
  directory: string,
  fakes: { uid: number; aptGet?: 'installs' | 'fails' | 'installs-elsewhere' },
) {
  const bin = join(directory, 'bin');
  spawnSync('/bin/mkdir', ['-p', bin]);
  const browser = join(directory, 'chromium');
  const calls = join(directory, 'apt-get.calls');
  const fake = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/bash\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  fake('id', `echo ${fakes.uid}`);
  if (fakes.aptGet) {
    const install =
      fakes.aptGet === 'installs'
        ? `printf '#!/bin/sh\\n' > '${browser}'; /bin/chmod +x '${browser}'`
        : fakes.aptGet === 'fails'
          ? 'exit 100'
          : 'true';
    fake(
      'apt-get',
      `echo "$@" >> '${calls}'\nif [ "$1" = "install" ] || [ "$3" = "install" ]; then ${install}; fi`,
    );
  }
  const result = spawnSync('/bin/bash', [SCRIPT], {
    encoding: 'utf8',
    env: { PATH: bin, CHROMIUM_PATH: browser },
  });
  return {
    code: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    browser,
    aptCalls: existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [],
  };
}

describe('The page test’s browser is installed by the project’s own setup step (scripts/ensure-chromium.sh)', () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'snapkeeper-chromium-'));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  it('does nothing when the browser is there', () => {
    writeFileSync(join(directory, 'chromium'), '#!/bin/sh\n');
    chmodSync(join(directory, 'chromium'), 0o755);
    const run = ensure(directory, { uid: 0, aptGet: 'installs' });
    expect(run.code).toBe(0);
    expect(run.aptCalls).toEqual([]);
    expect(run.stdout + run.stderr).toBe('');
  });

  it('installs Debian’s chromium with apt-get when it is missing and we are root', () => {
    const run = ensure(directory, { uid: 0, aptGet: 'installs' });
    expect(run.code, run.stderr).toBe(0);
    expect(run.aptCalls).toEqual(['update -qq', 'install -y -qq --no-install-recommends chromium']);
    expect(existsSync(run.browser)).toBe(true);
    expect(run.stdout).toBe(
      "setup: installing Debian's chromium for the page test (apt-get, once)...\n",
    );
  });

  it('says in one line what to do when it is not root, and installs nothing', () => {
    const run = ensure(directory, { uid: 1000, aptGet: 'installs' });
    expect(run.code).toBe(3);
    expect(run.aptCalls).toEqual([]);
    expect(run.stderr.trim().split('\n')).toEqual([
      `setup: ${run.browser} is missing and this is not root: run "sudo apt-get install chromium" (or set CHROMIUM_PATH to a Chromium); the page test needs it`,
    ]);
  });

  it('says in one line what to do when there is no package manager', () => {
    const run = ensure(directory, { uid: 0 });
    expect(run.code).toBe(3);
    expect(run.stderr.trim().split('\n')).toEqual([
      `setup: ${run.browser} is missing and there is no apt-get: install Chromium with your package manager (or set CHROMIUM_PATH to it); the page test needs it`,
    ]);
  });

  it('says so when apt-get fails, or installs a browser somewhere else', () => {
    const failed = ensure(directory, { uid: 0, aptGet: 'fails' });
    expect(failed.code).toBe(3);
    expect(failed.stderr).toMatch(
      /^setup: apt-get could not install chromium \(see .*\); the page test needs it\n$/,
    );
    rmSync(join(directory, 'apt-get.calls'), { force: true });
    const elsewhere = ensure(directory, { uid: 0, aptGet: 'installs-elsewhere' });
    expect(elsewhere.code).toBe(3);
    expect(elsewhere.stderr).toContain('set CHROMIUM_PATH to the browser');
  });

  it('is what .ci/run relies on: .ci/run is the README’s test command and nothing else', () => {
    const ci = readFileSync(join(PROJECT_ROOT, '.ci', 'run'), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('#'));
    expect(ci).toEqual(['set -euo pipefail', 'cd "$(dirname "$0")/.."', 'exec npm test']);
  });
});
