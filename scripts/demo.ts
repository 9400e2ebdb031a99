/**
 * The demo: a small fleet in the local AWS (moto), the `daily` schedule fired through
 * the real Lambda handler, and what it made. Run with `npm run demo`.
 */
import { DescribeSnapshotsCommand, EC2Client } from '@aws-sdk/client-ec2';
import type { BackupReport } from '../lib/jobs/backupJob.ts';
import { lambdaContext } from '../test/support/lambdaContext.ts';
import { deploymentSchedules } from './deploymentSchedules.ts';
import { startLocalAws, useLocalAwsEnvironment } from './localAws.ts';
import { launchFleet, ROOT_DEVICE } from './localFleet.ts';

const REGION = 'us-east-1';

function heading(text: string): void {
  console.log(`\n\x1b[1m== ${text}\x1b[0m`);
}

async function main(): Promise<void> {
  heading('Starting the local AWS (moto in server mode on a loopback port)');
  const aws = await startLocalAws();
  try {
    useLocalAwsEnvironment(aws.endpoint, REGION);
    Object.assign(process.env, {
      DEPLOYMENT: 'demo',
      SCHEDULES: JSON.stringify(deploymentSchedules()),
      COPY_TAGS: 'CostCenter',
      POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    console.log(`local AWS at ${aws.endpoint}, region ${REGION}, deployment "demo"`);

    heading('Creating a small fleet');
    const ec2 = new EC2Client({ region: REGION, endpoint: aws.endpoint });
    const fleet = await launchFleet(ec2, [
      { name: 'web-1', tags: { 'snapkeeper:backup': 'true', CostCenter: 'shop' } },
      {
        name: 'web-2',
        tags: { 'snapkeeper:backup': 'true', CostCenter: 'shop' },
        dataVolumes: [{ device: '/dev/sdf', sizeGiB: 20 }],
      },
      {
        name: 'db-1',
        tags: { 'snapkeeper:backup': 'daily,weekly', 'snapkeeper:retain': 'daily=14,weekly=8' },
        dataVolumes: [
          { device: '/dev/sdf', sizeGiB: 100 },
          { device: '/dev/sdg', sizeGiB: 200, tags: { 'snapkeeper:skip': 'true' } },
        ],
      },
      { name: 'batch-1', tags: { 'snapkeeper:backup': 'daily' }, state: 'stopped' },
      { name: 'legacy-1' },
      { name: 'typo-1', tags: { 'snapkeeper:backup': 'dialy' } },
    ]);
    const rows = [...fleet.values()].map((i) => ({
      name: i.name,
      instance: i.instanceId,
      volumes: i.volumes.map((v) => `${v.device}(${v.sizeGiB}G)`).join(' '),
    }));
    console.table(rows);
    console.log(
      'tags: web-1/web-2 snapkeeper:backup=true; db-1 daily,weekly with /dev/sdg tagged snapkeeper:skip=true;\n' +
        '      batch-1 stopped, daily; legacy-1 untagged; typo-1 snapkeeper:backup=dialy (a typo)',
    );

    heading('Firing the "daily" schedule through functions/backup.ts');
    const { handler } = (await import('../functions/backup.ts')) as unknown as {
      handler: (event: unknown, context: unknown) => Promise<BackupReport>;
    };
    const now = new Date();
    const slot = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), 3));
    if (slot > now) slot.setUTCDate(slot.getUTCDate() - 1);
    const event = { schedule: 'daily', scheduledTime: slot.toISOString() };
    console.log(`event: ${JSON.stringify(event)}`);
    const report = await handler(event, lambdaContext('snapkeeper-demo-backup'));

    console.log(`run ${report.runId}: status ${report.status}`, report.counts);
    const made = report.instances.map((r) => ({
      instance: r.name ?? r.instanceId,
      outcome: r.outcome,
      snapshots:
        r.snapshots
          ?.map((s) => `${s.deviceName}→${s.snapshotId}${s.unexpected ? ' (!)' : ''}`)
          .join(' ') ?? '',
      note:
        r.error?.message ??
        r.excludedVolumes?.map((e) => `${e.deviceName}: ${e.reason}`).join('; ') ??
        '',
    }));
    console.table(made);
    if (report.instances.some((r) => r.snapshots?.some((s) => s.unexpected))) {
      console.log(
        '(!) moto ignores ExcludeDataVolumeIds, so it also snapshotted the skipped volume; AWS does not.\n' +
          '    The request sent the exclusion (asserted in unit tests) and the report flags the extra snapshot.',
      );
    }

    heading('The snapshots in EC2, as snapkeeper tagged them');
    const listed = await ec2.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ['self'],
        Filters: [{ Name: 'tag:snapkeeper:managed', Values: ['true'] }],
      }),
    );
    const first = listed.Snapshots?.find((s) => s.Tags?.some((t) => t.Value === 'web-2'));
    console.log(
      `${listed.Snapshots?.length ?? 0} managed snapshots. Tags of one (web-2 ${ROOT_DEVICE} or data):`,
    );
    console.table(Object.fromEntries((first?.Tags ?? []).map((t) => [t.Key, t.Value])));
    heading('Done');
    console.log(
      'untagged legacy-1 got nothing; typo-1 was reported by name and key; the run is "partial" because of it.',
    );
  } finally {
    await aws.stop();
  }
}

await main();
