/**
 * Cloud Custodian (c7n) as the benchmark's point of comparison: installs it into the project's
 * `.venv-aws` and runs the same backup and retention jobs as snapkeeper against a local endpoint.
 *
 * What c7n 0.9.53 does on EC2, read from its source (c7n/resources/ec2.py, ebs.py, ami.py):
 * - every run: one `sts:GetCallerIdentity` at start (the `run` command has no account-id option).
 * - backup (`ec2` + `snapshot`): one DescribeInstances (filtered server side by `tag-key` through
 *   the policy's `query`; DescribeTags only if the describe returned no tags), then one
 *   `CreateSnapshots` per instance (InstanceSpecification, ExcludeBootVolume false, tags at
 *   creation through TagSpecifications because `copy-tags` is set), 2 threads. No CreateTags.
 *   It logs and skips an instance on InvalidInstanceId.NotFound, ConcurrentSnapshotLimitExceeded
 *   and IncorrectState; on any other error the other instances still run, then the policy fails
 *   (exit code 2).
 * - retention (`ebs-snapshot` + `delete`): one DescribeSnapshots (OwnerIds self, MaxResults 1000,
 *   filtered server side by the delete tag), one DescribeImages (Owners self), then one
 *   `DeleteSnapshot` per snapshot, 2 threads over chunks of 50. The delete action always drops
 *   snapshots that one of the account's AMIs references, silently (its `skip-ami-snapshots`
 *   option is read under the wrong key, so it cannot be turned off): such snapshots are listed in
 *   resources.json but neither deleted nor counted in `deleted`. InvalidSnapshot.NotFound is
 *   skipped; any other error is logged and ends that thread's chunk, the exit code stays 0.
 *
 * Retries: botocore (legacy mode, 5 attempts, random * 2^n s) retries any 500/502/503/504/509/
 * 429 and `RequestLimitExceeded` only when it comes with HTTP 503, as EC2 sends it. Around that,
 * c7n's own `get_retry` (8 attempts, 1, 2, 4 ... s less up to 20% jitter) retries
 * RequestLimitExceeded and the throttling codes on CreateSnapshots and the describes, and only
 * RequestLimitExceeded on DeleteSnapshot. SnapshotCreationPerVolumeRateExceeded is never retried.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Options of one c7n run. */
export interface CustodianRunOptions {
  /** Path of the `custodian` executable, as `ensureCustodian` returns it. */
  custodian: string;
  /** Loopback endpoint for every AWS call (moto, or the counting proxy in front of it). */
  endpoint: string;
  region: string;
  job: 'backup' | 'retention';
  /** Backup: the instances carrying this tag key (any value) are snapshotted. */
  tagKey: string;
  /** Retention: exactly the snapshots carrying this tag are deleted. Required for retention. */
  deleteTag?: { key: string; value: string };
  /** Where the policy file and c7n's output (`out/`) go. */
  workDir: string;
  /** Extra environment for c7n, applied last. */
  env?: Record<string, string>;
}

/** What one c7n run did. */
export interface CustodianRunResult {
  /** Wall-clock time of the process, Python start-up (about a second) included. */
  seconds: number;
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Resources the policy matched and ran its action on (`resources.json`). */
  resources: number;
  /** Retention only: snapshots the delete action reports deleted (`action-snapshotdelete`). */
  deleted?: number;
  /** c7n's own timing of the policy (query, filters, action), start-up excluded. */
  policySeconds?: number;
  /** c7n's count of its API calls by `service.Operation` (STS at start-up not included). */
  apiCalls?: Record<string, number>;
}

/** The part of c7n's `metadata.json` read here. */
interface CustodianMetadata {
  execution?: { duration?: number };
  'api-stats'?: Record<string, number>;
}

const REQUIREMENTS = join('scripts', 'requirements-bench.txt');
const MARKER = '.snapkeeper-bench-installed';

function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ exitCode: code ?? 1, stdout, stderr }));
  });
}

/**
 * Installs `scripts/requirements-bench.txt` into `<root>/.venv-aws` unless it is already there
 * (a marker holds the requirements' hash), and returns the path of the `custodian` executable.
 * The venv itself comes from `scripts/setup.sh`. Note that c7n pins boto3/botocore exactly, so
 * this moves the venv's boto3 (moto runs fine on it).
 *
 * @throws {Error} when the venv is missing or pip fails.
 * @example
 * const custodian = await ensureCustodian(PROJECT_ROOT);
 */
export async function ensureCustodian(root: string): Promise<string> {
  const venv = join(root, '.venv-aws');
  const custodian = join(venv, 'bin', 'custodian');
  const requirements = join(root, REQUIREMENTS);
  const hash = createHash('sha256')
    .update(await readFile(requirements))
    .digest('hex');
  const marker = join(venv, MARKER);
  if (existsSync(custodian) && existsSync(marker) && (await readFile(marker, 'utf8')) === hash) {
    return custodian;
  }
  const pip = join(venv, 'bin', 'pip');
  if (!existsSync(pip)) throw new Error(`${pip} is missing: run "bash scripts/setup.sh" first`);
  const result = await run(
    pip,
    ['install', '--quiet', '--disable-pip-version-check', '-r', requirements],
    process.env,
  );
  if (result.exitCode !== 0 || !existsSync(custodian)) {
    throw new Error(`installing c7n failed (${result.exitCode}): ${result.stderr.slice(-2000)}`);
  }
  await writeFile(marker, hash);
  return custodian;
}

/** The c7n policy for a job; its name is the folder c7n writes its output under. */
function policyFor(options: CustodianRunOptions): { name: string; policy: object } {
  if (options.job === 'backup') {
    const name = 'snapkeeper-bench-backup';
    return {
      name,
      policy: {
        name,
        resource: 'ec2',
        // Server side, like snapkeeper's describe; the filter below is a client-side re-check.
        query: [{ 'tag-key': options.tagKey }],
        filters: [{ [`tag:${options.tagKey}`]: 'present' }],
        // copy-tags makes c7n call CreateSnapshots with TagSpecifications (all instance tags plus
        // `custodian_snapshot`), tags at creation as snapkeeper does.
        actions: [{ type: 'snapshot', 'copy-tags': ['*'] }],
      },
    };
  }
  const tag = options.deleteTag;
  if (!tag) throw new Error('the retention job needs deleteTag');
  const name = 'snapkeeper-bench-retention';
  return {
    name,
    policy: {
      name,
      resource: 'ebs-snapshot',
      // No age filter: delete needs none, and the tag alone picks the same snapshots as ours.
      query: [{ [`tag:${tag.key}`]: tag.value }],
      filters: [{ [`tag:${tag.key}`]: tag.value }],
      actions: [{ type: 'delete' }],
    },
  };
}

async function countJson(path: string): Promise<number | undefined> {
  if (!existsSync(path)) return undefined;
  const parsed: unknown = JSON.parse(await readFile(path, 'utf8'));
  return Array.isArray(parsed) ? parsed.length : undefined;
}

/**
 * Writes the job's policy to `<workDir>/policy.yml` and runs
 * `custodian run -s <workDir>/out --region <region> --cache-period 0 policy.yml` against
 * `endpoint` (through AWS_ENDPOINT_URL, which botocore honours) with dummy credentials and no
 * ~/.aws files. The output folder is wiped first so counts belong to this run.
 *
 * @example
 * const r = await runCustodian({ custodian, endpoint, region: 'us-east-1', job: 'backup',
 *   tagKey: 'snapkeeper:backup', workDir: '/tmp/c7n' });
 */
export async function runCustodian(options: CustodianRunOptions): Promise<CustodianRunResult> {
  const { name, policy } = policyFor(options);
  const out = join(options.workDir, 'out');
  await rm(out, { recursive: true, force: true });
  await mkdir(options.workDir, { recursive: true });
  const policyFile = join(options.workDir, 'policy.yml');
  // JSON is YAML too, and quotes every string (PyYAML would read a bare `yes` as true).
  await writeFile(policyFile, JSON.stringify({ policies: [policy] }, null, 2));

  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('AWS_')) env[key] = value;
  }
  Object.assign(env, {
    AWS_ENDPOINT_URL: options.endpoint,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_SESSION_TOKEN: 'testing',
    AWS_DEFAULT_REGION: options.region,
    AWS_REGION: options.region,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_EC2_METADATA_DISABLED: 'true',
    PYTHONUNBUFFERED: '1',
    ...options.env,
  });

  const args = ['run', '-s', out, '--region', options.region, '--cache-period', '0', policyFile];
  const started = performance.now();
  const result = await run(options.custodian, args, env);
  const seconds = (performance.now() - started) / 1000;

  const dir = join(out, name);
  const metadata = existsSync(join(dir, 'metadata.json'))
    ? (JSON.parse(await readFile(join(dir, 'metadata.json'), 'utf8')) as CustodianMetadata)
    : undefined;
  const policySeconds = metadata?.execution?.duration;
  const apiCalls = metadata?.['api-stats'];
  // The delete action's result file is named after its class: action-snapshotdelete.
  const deleted =
    options.job === 'retention'
      ? ((await countJson(join(dir, 'action-snapshotdelete'))) ?? 0)
      : undefined;
  return {
    seconds,
    ...result,
    resources: (await countJson(join(dir, 'resources.json'))) ?? 0,
    ...(deleted === undefined ? {} : { deleted }),
    ...(policySeconds === undefined ? {} : { policySeconds }),
    ...(apiCalls === undefined ? {} : { apiCalls }),
  };
}
