/**
 * End-to-end check of the c7n side of the benchmark, against a private moto:
 * 5 tagged instances with 2 volumes each, c7n's backup policy, then its retention policy on
 * the snapshots we mark for deletion. Exits non-zero when a count is off.
 *
 * Run: npx tsx scripts/bench/custodianProbe.ts
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateTagsCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { PROJECT_ROOT, startLocalAws } from '../../harness/localAws.ts';
import { ensureCustodian, runCustodian } from './custodian.ts';

const REGION = 'us-east-1';
const INSTANCES = 5;
const TAG_KEY = 'snapkeeper:backup';
const DELETE_TAG = { key: 'snapkeeper:bench-delete', value: 'yes' };

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`probe failed: ${message}`);
}

const custodian = await ensureCustodian(PROJECT_ROOT);
const aws = await startLocalAws();
const workDir = await mkdtemp(join(tmpdir(), 'snapkeeper-c7n-'));
try {
  const ec2 = new EC2Client({
    endpoint: aws.endpoint,
    region: REGION,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const tags = [
    { Key: TAG_KEY, Value: 'daily' },
    { Key: 'Name', Value: 'c7n-probe' },
  ];
  await ec2.send(
    new RunInstancesCommand({
      ImageId: 'ami-12345678',
      InstanceType: 't3.micro',
      MinCount: INSTANCES,
      MaxCount: INSTANCES,
      BlockDeviceMappings: [
        { DeviceName: '/dev/xvda', Ebs: { VolumeSize: 8 } },
        { DeviceName: '/dev/sdf', Ebs: { VolumeSize: 20 } },
      ],
      TagSpecifications: [
        { ResourceType: 'instance', Tags: tags },
        { ResourceType: 'volume', Tags: tags },
      ],
    }),
  );
  // An untagged instance c7n must leave alone.
  await ec2.send(new RunInstancesCommand({ ImageId: 'ami-12345678', MinCount: 1, MaxCount: 1 }));

  const listSnapshots = async () =>
    (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots ?? [];

  const backup = await runCustodian({
    custodian,
    endpoint: aws.endpoint,
    region: REGION,
    job: 'backup',
    tagKey: TAG_KEY,
    workDir: join(workDir, 'backup'),
  });
  const made = await listSnapshots();
  check(backup.exitCode === 0, `backup exited ${backup.exitCode}: ${backup.stderr}`);
  check(backup.resources === INSTANCES, `backup acted on ${backup.resources} instances`);
  check(made.length === INSTANCES * 2, `backup made ${made.length} snapshots`);
  check(
    made.every((s) => s.Tags?.some((t) => t.Key === TAG_KEY && t.Value === 'daily')),
    'a snapshot lacks the copied instance tag',
  );

  const doomed = made.slice(0, 4).flatMap((s) => (s.SnapshotId ? [s.SnapshotId] : []));
  await ec2.send(
    new CreateTagsCommand({
      Resources: doomed,
      Tags: [{ Key: DELETE_TAG.key, Value: DELETE_TAG.value }],
    }),
  );
  const retention = await runCustodian({
    custodian,
    endpoint: aws.endpoint,
    region: REGION,
    job: 'retention',
    tagKey: TAG_KEY,
    deleteTag: DELETE_TAG,
    workDir: join(workDir, 'retention'),
  });
  const left = await listSnapshots();
  check(retention.exitCode === 0, `retention exited ${retention.exitCode}: ${retention.stderr}`);
  check(retention.resources === doomed.length, `retention matched ${retention.resources}`);
  check(retention.deleted === doomed.length, `retention deleted ${retention.deleted}`);
  check(left.length === made.length - doomed.length, `${left.length} snapshots left`);
  check(!left.some((s) => s.SnapshotId && doomed.includes(s.SnapshotId)), 'a doomed one is left');

  const time = (r: { seconds: number; policySeconds?: number; apiCalls?: object }) =>
    `${r.seconds.toFixed(2)} s (c7n's own ${r.policySeconds?.toFixed(2) ?? '?'} s), calls ${JSON.stringify(r.apiCalls)}`;
  console.log(
    `backup: ${backup.resources} instances -> ${made.length} snapshots in ${time(backup)}`,
  );
  console.log(
    `retention: ${retention.resources} matched, ${retention.deleted} deleted, ${left.length} left in ${time(retention)}`,
  );
  console.log('c7n probe: ok');
} finally {
  await aws.stop();
  // KEEP=1 keeps the policies and c7n's output for a look.
  if (!process.env.KEEP) await rm(workDir, { recursive: true, force: true });
}
