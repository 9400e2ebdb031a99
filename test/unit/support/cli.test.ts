import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { useLocalAwsIfRunning } from '../../../harness/localStack.ts';
import {
  type CliSpec,
  errorLine,
  helpText,
  parseCommandLine,
  quietEnvironment,
  runCommand,
  UsageError,
} from '../../../scripts/cli.ts';
import { HISTORY_COMMAND, history } from '../../../scripts/history.ts';
import {
  describeReport,
  INVOKE_COMMAND,
  readEvent,
  reportFailed,
} from '../../../scripts/invoke.ts';
import { LOCAL_AWS_COMMAND } from '../../../scripts/localAwsCommand.ts';
import { OPS_COMMAND, replacePlaceholders } from '../../../scripts/ops.ts';
import { REPORT_COMMAND, writeCoverageReport } from '../../../scripts/report.ts';

const COMMANDS: Record<string, CliSpec> = {
  history: HISTORY_COMMAND,
  report: REPORT_COMMAND,
  ops: OPS_COMMAND,
  invoke: INVOKE_COMMAND,
  'local-aws': LOCAL_AWS_COMMAND,
};

/** Runs a command's parsing and body as its main does, capturing what it printed. */
async function run(spec: CliSpec, argv: string[], env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCommand(
    spec,
    argv,
    async () => ({ output: 'ran' }),
    { out: (t) => out.push(t), err: (t) => err.push(t) },
    { SNAPKEEPER_LOCAL_AWS: 'off', ...env },
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('The npm run tools behave like command line tools', () => {
  for (const [name, spec] of Object.entries(COMMANDS)) {
    describe(`npm run ${name}`, () => {
      it('answers --help (and -h) with what it does, its options and examples, and exit code 0', async () => {
        for (const flag of ['--help', '-h']) {
          const { code, out, err } = await run(spec, [flag]);
          expect(code).toBe(0);
          expect(err).toBe('');
          expect(out).toContain(`Usage: npm run ${name} --`);
          expect(out).toContain('--json');
          expect(out).toContain('--verbose');
          const examples = out.slice(out.indexOf('Examples:')).split('\n').slice(1);
          expect(examples.length).toBeGreaterThanOrEqual(2);
          for (const example of examples) expect(example).toMatch(/^ {2}npm run /);
        }
      });

      it('answers an unknown option with one line naming it, and exit code 2', async () => {
        const { code, out, err } = await run(spec, ['--frobnicate']);
        expect(code).toBe(2);
        expect(out).toBe('');
        expect(err).toBe(`${name}: unknown option --frobnicate (see npm run ${name} -- --help)`);
      });
    });
  }

  it('names an option given without its value', () => {
    expect(() => parseCommandLine(HISTORY_COMMAND, ['--run'])).toThrow(
      new UsageError('option --run needs a value (see npm run history -- --help)'),
    );
  });

  it('rejects a stray argument of a command that takes none', () => {
    expect(() => parseCommandLine(HISTORY_COMMAND, ['daily'])).toThrow(
      'unexpected argument "daily" (see npm run history -- --help)',
    );
  });

  it('checks option values before reaching AWS: --limit, --since, --days, --html', async () => {
    await expect(history(['--limit', 'ten'])).rejects.toThrow(UsageError);
    await expect(history(['--limit', '0'])).rejects.toThrow(
      '--limit "0": use a whole number from 1 to 1000',
    );
    await expect(history(['--since', 'last week'])).rejects.toThrow(
      '--since "last week": use 7d, 24h, 30m or an ISO time',
    );
    await expect(writeCoverageReport(['--days', '3'])).rejects.toThrow('--html <file> is required');
    await expect(writeCoverageReport(['--html', 'x.html', '--days', '0'])).rejects.toThrow(
      '--days "0": use a whole number from 1 to 400',
    );
  });

  it('turns the SDK’s "Could not load credentials" into what to set', () => {
    const error = Object.assign(new Error('Could not load credentials from any providers'), {
      name: 'CredentialsProviderError',
    });
    expect(errorLine(error)).toBe(
      'no AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) to read a deployed stage, or start the local AWS with "npm run local-aws"',
    );
    expect(errorLine(new Error('first line\nstack-ish second line'))).toBe('first line');
  });

  it('is quiet by default: no SDK version warning, no Powertools JSON logs, metrics or traces', () => {
    const env: NodeJS.ProcessEnv = { POWERTOOLS_LOG_LEVEL: 'INFO' };
    quietEnvironment(env, false);
    expect(env).toEqual({
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_TRACE_ENABLED: 'false',
    });
    const verbose: NodeJS.ProcessEnv = {};
    quietEnvironment(verbose, true);
    expect(verbose.POWERTOOLS_LOG_LEVEL).toBe('INFO');
    expect(verbose.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBe('true');
  });

  it('prints a failure as one line prefixed with the command, exit code 1', async () => {
    const err: string[] = [];
    const code = await runCommand(
      HISTORY_COMMAND,
      [],
      async () => {
        throw new Error('Requested resource not found\n    at somewhere');
      },
      { out: () => undefined, err: (t) => err.push(t) },
      { SNAPKEEPER_LOCAL_AWS: 'off' },
    );
    expect(code).toBe(1);
    expect(err).toEqual(['history: Requested resource not found']);
  });
});

describe('The local AWS, found by the other commands', () => {
  const directories: string[] = [];
  afterEach(() => {
    for (const d of directories.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('gives a loopback AWS_ENDPOINT_URL dummy credentials, so the SDK does not ask for real ones', async () => {
    const env: NodeJS.ProcessEnv = {
      AWS_ENDPOINT_URL: 'http://127.0.0.1:4566',
      SNAPKEEPER_LOCAL_AWS: 'off',
    };
    const local = await useLocalAwsIfRunning(env);
    expect(local?.note).toBe('using the local AWS at http://127.0.0.1:4566 (AWS_ENDPOINT_URL)');
    expect(env.AWS_ACCESS_KEY_ID).toBe('testing');
    expect(env.RECYCLE_BIN_CHECK).toBe('false');
  });

  it('never adds credentials for an endpoint that is not loopback, nor uses a local AWS that does not run', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'snapkeeper-local-'));
    directories.push(directory);
    const remote: NodeJS.ProcessEnv = { AWS_ENDPOINT_URL: 'https://ec2.eu-west-1.amazonaws.com' };
    expect(await useLocalAwsIfRunning(remote)).toBeUndefined();
    expect(remote.AWS_ACCESS_KEY_ID).toBeUndefined();
    const none: NodeJS.ProcessEnv = { SNAPKEEPER_LOCAL_AWS_DIR: directory };
    expect(await useLocalAwsIfRunning(none)).toBeUndefined();
    expect(none.AWS_ENDPOINT_URL).toBeUndefined();
  });
});

describe('Events for invoke and ops', () => {
  it('reads a file, a sample’s name (with the ops- prefix for ops) or inline JSON', () => {
    expect(readEvent('events/backup-daily.json')).toEqual({
      schedule: 'daily',
      scheduledTime: '2026-11-23T03:00:00Z',
    });
    expect(readEvent('backup-daily')).toEqual(readEvent('events/backup-daily.json'));
    expect(readEvent('report', 'ops-')).toEqual(readEvent('events/ops-report.json'));
    expect(readEvent('{"action": "report"}')).toEqual({ action: 'report' });
  });

  it('rejects what is neither, and JSON that does not parse, in one line', () => {
    expect(() => readEvent('no-such-sample')).toThrow(
      '"no-such-sample" is neither a file, a sample in events/, nor inline JSON',
    );
    expect(() => readEvent('{"action": ')).toThrow(/^the inline event is not valid JSON/);
  });

  it('replaces the samples’ placeholder ids with the local fleet’s', () => {
    const web = {
      name: 'web-1',
      instanceId: 'i-web',
      volumes: [{ device: '/dev/sda1', volumeId: 'vol-root', sizeGiB: 8 }],
    };
    const db = { name: 'db-1', instanceId: 'i-db', volumes: [] };
    expect(
      replacePlaceholders(
        {
          instanceIds: ['i-0123456789abcdef0', 'i-0fedcba9876543210'],
          volumeId: 'vol-0123456789abcdef0',
          snapshotId: 'snap-0123456789abcdef0',
          runId: '20261123T030002Z-9f3a12bc',
        },
        { web, db, snapshotId: 'snap-new', runId: '20261206T030001Z-00000000' },
      ),
    ).toEqual({
      instanceIds: ['i-web', 'i-db'],
      volumeId: 'vol-root',
      snapshotId: 'snap-new',
      runId: '20261206T030001Z-00000000',
    });
  });

  it('prints a report as a headline and indented text, and fails the command on a failed or rejected run', () => {
    const text = describeReport({
      runId: 'r-1',
      job: 'backup',
      status: 'partial',
      counts: { due: 2 },
    });
    expect(text.split('\n')[0]).toBe('run r-1, job backup, status partial');
    expect(text).toContain('counts:\n  due: 2');
    expect(reportFailed({ status: 'rejected' })).toBe(true);
    expect(reportFailed({ status: 'failed' })).toBe(true);
    expect(reportFailed({ status: 'partial' })).toBe(false);
  });
});

describe('helpText', () => {
  it('lists each option once with its placeholder and default', () => {
    const text = helpText(HISTORY_COMMAND);
    expect(text).toMatch(/--limit <n>\s+at most this many rows \(1-1000\) \(default 50\)/);
    expect(text.match(/^ {6}--run /gm)).toHaveLength(1);
  });
});
