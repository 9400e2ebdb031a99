/**
 * A local AWS: moto in server mode on a loopback port (started, detached or found), and the
 * environment that points the AWS SDK at it.
 * Part of the local AWS harness: imports only lib/ and harness/.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root, wherever the script is run from. */
export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** A running local AWS (moto in server mode) on a loopback port. */
export interface LocalAws {
  readonly endpoint: string;
  readonly port: number;
  /** Wipes every resource in every region. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** Finds a free TCP port on the loopback interface. */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts moto in server mode on a free loopback port and waits until it answers.
 * Amazon's default AMIs are not loaded, so describes list only what we make.
 *
 * @example
 * const aws = await startLocalAws();
 * process.env.AWS_ENDPOINT_URL = aws.endpoint;
 */
export async function startLocalAws(options: { server?: string } = {}): Promise<LocalAws> {
  const binary = join(PROJECT_ROOT, '.venv-aws', 'bin', 'moto_server');
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: run "bash scripts/setup.sh" first`);
  }
  const port = await freeLoopbackPort();
  const endpoint = `http://127.0.0.1:${port}`;
  // `server`: a Python script that starts moto's server itself (the benchmark's patched one).
  const [command, prefix] = options.server
    ? [join(PROJECT_ROOT, '.venv-aws', 'bin', 'python'), [options.server]]
    : [binary, []];
  const child: ChildProcess = spawn(command, [...prefix, '-H', '127.0.0.1', '-p', String(port)], {
    env: {
      ...process.env,
      MOTO_EC2_LOAD_DEFAULT_AMIS: 'false',
      MOTO_ALLOW_NONEXISTENT_REGION: 'true',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  await waitForMoto(
    endpoint,
    () => child.exitCode,
    () => stderr,
  ).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  return {
    endpoint,
    port,
    reset: async () => {
      await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
    },
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** Whether moto answers on `endpoint` (its management API). */
export async function motoAnswers(endpoint: string): Promise<boolean> {
  try {
    return (await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

async function waitForMoto(
  endpoint: string,
  exitCode: () => number | null,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exitCode() !== null) throw new Error(`moto exited early (${exitCode()}): ${output()}`);
    if (await motoAnswers(endpoint)) return;
    if (Date.now() > deadline)
      throw new Error(`moto did not answer on ${endpoint} within 30 s: ${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts moto as a detached process that outlives this one (what `npm run local-aws`
 * keeps up), its output going to `logFile`. Returns its pid and endpoint once it answers.
 *
 * @example
 * const { pid, endpoint } = await startDetachedLocalAws('.local-aws/moto.log');
 */
export async function startDetachedLocalAws(
  logFile: string,
): Promise<{ pid: number; port: number; endpoint: string }> {
  const binary = join(PROJECT_ROOT, '.venv-aws', 'bin', 'moto_server');
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: run "bash scripts/setup.sh" first`);
  }
  const port = await freeLoopbackPort();
  const endpoint = `http://127.0.0.1:${port}`;
  const log = openSync(logFile, 'a');
  const child = spawn(binary, ['-H', '127.0.0.1', '-p', String(port)], {
    env: {
      ...process.env,
      MOTO_EC2_LOAD_DEFAULT_AMIS: 'false',
      MOTO_ALLOW_NONEXISTENT_REGION: 'true',
    },
    stdio: ['ignore', log, log],
    detached: true,
  });
  closeSync(log);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${binary}`);
  await waitForMoto(
    endpoint,
    () => child.exitCode,
    () => {
      try {
        return readFileSync(logFile, 'utf8').slice(-2000);
      } catch {
        return '';
      }
    },
  ).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  return { pid, port, endpoint };
}

/** Points the AWS SDK at the local AWS with dummy credentials; replayed sample slots are served. */
export function useLocalAwsEnvironment(endpoint: string, region = 'us-east-1'): void {
  process.env.AWS_ENDPOINT_URL = endpoint;
  process.env.AWS_REGION = region;
  process.env.AWS_ACCESS_KEY_ID = 'testing';
  process.env.AWS_SECRET_ACCESS_KEY = 'testing';
  process.env.AWS_SESSION_TOKEN = 'testing';
  // The sample events (events/*.json) and the campaign replay fixed slots of 2026: serve
  // them however late they are replayed. A test of the catch-up window sets its own.
  process.env.SLOT_CATCH_UP_SECONDS = LOCAL_SLOT_CATCH_UP_SECONDS;
}

/**
 * How late a replayed slot may be served locally: 10 years, so that the sample events
 * (events/*.json, dated 2026) and the campaign's fixed slots replay however late they are run.
 */
export const LOCAL_SLOT_CATCH_UP_SECONDS = String(10 * 365 * 86_400);
