/**
 * The demo: a simulated fortnight of a small fleet in the local AWS (moto). Every day
 * the schedules fire through the real Lambda handlers (backup, AMIs, retention), with
 * the clock moved forward; along the way an instance is retired, a slot is delivered
 * twice, and the run history fills up. Then a restore drill, a restore, the report, the
 * coverage page, and a fan-out of one slot over two regions. Run with `npm run demo`.
 */

import { join } from 'node:path';
import {
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import FakeTimers from '@sinonjs/fake-timers';
import { lambdaContext } from '../harness/lambdaContext.ts';
import { PROJECT_ROOT } from '../harness/localAws.ts';
import { launchFleet, ROOT_DEVICE } from '../harness/localFleet.ts';
import { DEMO_FLEET, startLocalStack } from '../harness/localStack.ts';
import { recoveryLine } from '../lib/domain/recoveryReport.ts';
import { type CliSpec, CONSOLE_IO, isMain, runTool, type ToolIo, UsageError } from './cli.ts';
import { startConsistencyDemo } from './demo/consistency.ts';
import { costLines, startEbsStandIn } from './demo/costs.ts';
import { demoLocksAndArchive } from './demo/locksAndArchive.ts';
import { weeklyRestoreTest } from './demo/restoreTests.ts';
import { TagScheduleDemo } from './demo/tagSchedules.ts';
import { history } from './history.ts';
import { writeCoverageReport } from './report.ts';

const REGION = 'us-east-1';
const FIRST_DAY = Date.UTC(2026, 10, 9); // Monday 9 November 2026
const DAYS = 14;
const bold = (text: string) => `\x1b[1m${text}\x1b[0m`;
const dim = (text: string) => `\x1b[2m${text}\x1b[0m`;

type Handler = (event: unknown, context: unknown) => Promise<Record<string, unknown>>;

function heading(text: string): void {
  console.log(`\n${bold(`== ${text}`)}`);
}

async function invoke(
  handler: Handler,
  event: unknown,
  name: string,
): Promise<Record<string, unknown>> {
  try {
    return await handler(event, lambdaContext(`snapkeeper-demo-${name}`));
  } catch (error) {
    const report = (error as { report?: Record<string, unknown> }).report;
    return report ?? { status: 'failed', error: { message: (error as Error).message } };
  }
}

function counts(report: Record<string, unknown>): Record<string, number> {
  return (report.counts as Record<string, number> | undefined) ?? {};
}

async function main(): Promise<void> {
  heading('Starting the local AWS (moto in server mode on a loopback port)');
  const stack = await startLocalStack('demo', REGION);
  const { aws, ec2 } = stack;
  const ebsStandIn = await startEbsStandIn(); // the cost ledger's block lists (moto lists none of EC2's)
  const clock = FakeTimers.install({ toFake: ['Date'], now: FIRST_DAY });
  try {
    console.log(
      `local AWS at ${aws.endpoint}, region ${REGION}, deployment "demo", history table ${stack.table}`,
    );

    heading('A small fleet, opted in by tags');
    const fleet = await stack.launch(DEMO_FLEET);
    const consistency = await startConsistencyDemo(aws, fleet);
    const tagged = await TagScheduleDemo.start(ec2);
    for (const i of fleet.values()) {
      console.log(
        `  ${i.name.padEnd(9)} ${i.instanceId}  ${i.volumes.map((v) => `${v.device}(${v.sizeGiB}G)`).join(' ')}`,
      );
    }
    console.log(
      dim(
        '  web-1, web-2: snapkeeper:backup=true (daily, keep 7)\n' +
          '  db-1: daily,weekly with retain daily=5,weekly=4; a daily AMI, keep 3; /dev/sdg tagged snapkeeper:skip=true\n' +
          '  batch-1: stopped, still backed up daily; legacy-1: untagged; typo-1: snapkeeper:backup=dialy (a typo)',
      ),
    );
    console.log(dim(tagged.describe()));

    const load = async (name: string) =>
      ((await import(`../functions/${name}.ts`)) as unknown as { handler: Handler }).handler;
    const backup = await load('backup');
    const amis = await load('amis');
    const retention = await load('retention');

    heading(
      `A simulated fortnight: ${new Date(FIRST_DAY).toDateString()} to ${new Date(FIRST_DAY + (DAYS - 1) * 86_400_000).toDateString()}`,
    );
    console.log(
      dim('  each day: backup and AMIs at 03:00 UTC (weekly too on Sundays), retention at 04:00'),
    );
    for (let day = 0; day < DAYS; day += 1) {
      const midnight = FIRST_DAY + day * 86_400_000;
      const date = new Date(midnight);
      const label = date.toUTCString().slice(0, 11);
      const sunday = date.getUTCDay() === 0;
      const slot = new Date(midnight + 3 * 3_600_000).toISOString();
      const notes: string[] = [];

      if (day === 9) {
        await ec2.send(
          new TerminateInstancesCommand({ InstanceIds: [fleet.get('web-2')?.instanceId ?? ''] }),
        );
        notes.push('web-2 terminated: its history is now an orphan (last snapshot always kept)');
      }

      clock.setSystemTime(midnight + 3 * 3_600_000 + 5_000);
      const daily = await invoke(backup, { schedule: 'daily', scheduledTime: slot }, 'backup');
      if (day === 4) {
        const again = await invoke(backup, { schedule: 'daily', scheduledTime: slot }, 'backup');
        notes.push(
          `daily slot delivered twice: the second made nothing and answered with run ${String(again.runId)}`,
        );
      }
      const images = await invoke(amis, { schedule: 'daily', scheduledTime: slot }, 'amis');

      clock.setSystemTime(midnight + 4 * 3_600_000 + 5_000);
      // The weekly slot fires at 04:00: delivered before it comes, it would be refused.
      const weekly = sunday
        ? await invoke(
            backup,
            { schedule: 'weekly', scheduledTime: new Date(midnight + 4 * 3_600_000).toISOString() },
            'backup',
          )
        : undefined;
      const kept = await invoke(
        retention,
        { schedule: 'daily', scheduledTime: new Date(midnight + 4 * 3_600_000).toISOString() },
        'retention',
      );
      const keptWeekly = sunday
        ? await invoke(retention, { schedule: 'weekly' }, 'retention')
        : undefined;

      // The restore test (05:00) before the tag dispatches (06:00 to the next 00:45): the
      // clock only moves forward, as on AWS.
      if (sunday)
        notes.push(
          await weeklyRestoreTest(await load('restoreTest'), midnight, (t) =>
            clock.setSystemTime(t),
          ),
        );
      notes.push(await tagged.day(midnight, { backup, retention }, clock, invoke, day === 4));
      const d = counts(daily);
      const a = counts(images);
      const r = counts(kept);
      const w = weekly ? counts(weekly) : undefined;
      const rw = keptWeekly ? counts(keptWeekly) : undefined;
      console.log(
        `  ${label}  backup ${String(daily.status).padEnd(9)} ${String(d.snapshots ?? 0).padStart(2)} snapshots` +
          `${w ? ` (+${w.snapshots ?? 0} weekly)` : ''}` +
          ` | AMIs +${a.created ?? 0} -${a.deregistered ?? 0}` +
          ` | retention deleted ${String((r.deleted ?? 0) + (rw?.deleted ?? 0)).padStart(2)}, kept ${r.kept ?? 0}`,
      );
      for (const note of notes) console.log(`             ${dim(`↳ ${note}`)}`);
    }

    heading('What the fortnight left in EC2');
    const snapshots =
      (
        await ec2.send(
          new DescribeSnapshotsCommand({
            OwnerIds: ['self'],
            Filters: [{ Name: 'tag:snapkeeper:managed', Values: ['true'] }],
          }),
        )
      ).Snapshots ?? [];
    const now = Date.now();
    for (const instance of fleet.values()) {
      for (const volume of instance.volumes) {
        const own = snapshots.filter((s) => s.VolumeId === volume.volumeId);
        if (own.length === 0) continue;
        const bySchedule = new Map<string, number>();
        let newest = 0;
        for (const s of own) {
          const tags = Object.fromEntries((s.Tags ?? []).map((t) => [t.Key, t.Value]));
          bySchedule.set(
            tags['snapkeeper:schedule'] ?? '?',
            (bySchedule.get(tags['snapkeeper:schedule'] ?? '?') ?? 0) + 1,
          );
          newest = Math.max(newest, Date.parse(tags['snapkeeper:created-at'] ?? '') || 0);
        }
        const ageHours = Math.round((now - newest) / 3_600_000);
        console.log(
          `  ${instance.name.padEnd(9)} ${volume.device.padEnd(10)} ${[...bySchedule]
            .map(([k, v]) => `${v} ${k}`)
            .join(', ')
            .padEnd(20)} newest ${ageHours} h old`,
        );
      }
    }
    console.log(await tagged.summary());
    const images = (await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images ?? [];
    console.log(
      `  AMIs: ${images
        .map((i) => i.Name)
        .sort()
        .join(', ')}`,
    );
    console.log(
      dim(
        '  (moto ignores ExcludeDataVolumeIds, so it also snapshots db-1 /dev/sdg; AWS does not. The request\n' +
          '   excludes it (unit tests assert it) and each report flags the extra snapshot as unexpected.)',
      ),
    );

    await consistency.summary(ec2);

    const ops = await load('ops');
    const web1 = fleet.get('web-1');
    const web1Root = web1?.volumes.find((v) => v.device === ROOT_DEVICE)?.volumeId ?? '';
    heading(
      `A restore drill of web-1's root volume (ops: {"action": "restore-drill", "volumeId": "${web1Root}"})`,
    );
    const drill = (await invoke(ops, { action: 'restore-drill', volumeId: web1Root }, 'ops'))
      .result as Record<string, unknown>;
    const source = drill.source as Record<string, unknown>;
    console.log(
      `  restored ${String(source.snapshotId)} (taken ${String(source.createdAt)}) to ${String(drill.volumeId)} in ${String(drill.availabilityZone)}; ` +
        `available after ${String((drill.drill as Record<string, unknown>)?.secondsToAvailable)} s; drill volume deleted: ${String((drill.drill as Record<string, unknown>)?.deleted)}`,
    );
    heading(
      'Restoring db-1 from its newest AMI as a new instance (ops: duplicate-instance, confirmed)',
    );
    const duplicate = (
      await invoke(
        ops,
        {
          action: 'duplicate-instance',
          instanceId: fleet.get('db-1')?.instanceId,
          name: 'db-1-restored',
          confirm: true,
        },
        'ops',
      )
    ).result as Record<string, unknown>;
    console.log(
      `  launched ${String(duplicate.instanceId)} "${String(duplicate.name)}" (${String(duplicate.instanceType)}) from ${String(duplicate.imageId)}`,
    );

    heading('The recovery-point report (ops: {"action": "report"})');
    const report = (await invoke(ops, { action: 'report' }, 'ops')).result as {
      instances: {
        name?: string;
        instanceId: string;
        newestSnapshot?: {
          snapshotId: string;
          createdAt: string;
          ageHours: number;
          schedule: string;
        };
        newestImage?: { imageId: string; createdAt: string; ageHours: number; schedule: string };
        recoveryPoints: number;
        rpo: { schedule: string; intervalHours: number; met: boolean; newestAgeHours?: number }[];
      }[];
      orphaned: { instanceId: string; name?: string; snapshots: number; sizeGiB: number }[];
      neverBackedUp: { instanceId: string }[];
    };
    for (const i of report.instances) console.log(`  ${recoveryLine(i)}`);
    for (const line of costLines(report as Parameters<typeof costLines>[0])) console.log(line);
    for (const o of report.orphaned) {
      console.log(
        `  orphaned: ${o.name ?? ''} ${o.instanceId} (gone) still has ${o.snapshots} managed snapshots, ${o.sizeGiB} GiB`,
      );
    }

    heading('The run history (npm run history -- --since 2d)');
    console.log(await history(['--since', '2d', '--limit', '8']));
    heading(
      `Everything that happened to db-1 (npm run history -- --instance ${fleet.get('db-1')?.instanceId} --since 1d)`,
    );
    console.log(
      await history([
        '--instance',
        fleet.get('db-1')?.instanceId ?? '',
        '--since',
        '1d',
        '--limit',
        '8',
      ]),
    );

    heading(
      `The coverage page of the fortnight (npm run report -- --html reports/demo-coverage.html --days ${DAYS})`,
    );
    const page = await writeCoverageReport([
      '--html',
      join(PROJECT_ROOT, 'reports', 'demo-coverage.html'),
      '--days',
      String(DAYS),
    ]);
    console.log(`  ${page}  (open it in a browser: one self-contained file)`);

    await demoFanOut(aws.endpoint, clock, FIRST_DAY + DAYS * 86_400_000);
    await demoLocksAndArchive(
      { endpoint: aws.endpoint, ec2, clock, heading, dim },
      FIRST_DAY + DAYS * 86_400_000,
    );

    heading('Done');
    console.log(
      'untagged legacy-1 got nothing; typo-1 was reported by key and value in every run (so every daily run is "partial");\n' +
        'retention kept 7 daily snapshots per volume (5 for db-1), never the held or the newest, and the orphaned web-2 kept its last.',
    );
  } finally {
    clock.uninstall();
    await ebsStandIn.close();
    await aws.stop();
  }
}

/**
 * The fan-out: the next day's slot across two regions, split into batches on a queue
 * and run by two workers at once, one run id, finished by the last batch.
 */
async function demoFanOut(
  endpoint: string,
  clock: { setSystemTime(now: number): void },
  midnight: number,
): Promise<void> {
  const other = 'eu-west-1';
  heading(`Past one invocation: the fan-out over ${REGION} and ${other}, two workers a round`);
  const sqs = new SQSClient({ region: REGION, endpoint });
  const queueUrl =
    (await sqs.send(new CreateQueueCommand({ QueueName: 'snapkeeper-demo-fanout' }))).QueueUrl ??
    '';
  Object.assign(process.env, {
    FANOUT_QUEUE_URL: queueUrl,
    TARGET_REGIONS: `${REGION},${other}`,
    FANOUT_WORKERS: '2',
    FANOUT_BATCH_SIZE: '2',
  });
  const remote = await launchFleet(new EC2Client({ region: other, endpoint }), [
    { name: 'eu-web-1', tags: { 'snapkeeper:backup': 'true' } },
    { name: 'eu-web-2', tags: { 'snapkeeper:backup': 'true' } },
    {
      name: 'eu-db-1',
      tags: { 'snapkeeper:backup': 'daily' },
      dataVolumes: [{ device: '/dev/sdf', sizeGiB: 50 }],
    },
  ]);
  console.log(
    dim(`  ${other}: ${[...remote.keys()].join(', ')} opted in (a second region, same deployment)`),
  );
  const load = async (name: string) =>
    ((await import(`../functions/${name}.ts`)) as unknown as { handler: Handler }).handler;
  const fanOut = await load('fanout');
  const worker = (await import('../functions/worker.ts')).handler as unknown as (
    event: unknown,
    context: unknown,
  ) => Promise<{ batchItemFailures: unknown[] }>;

  const slot = new Date(midnight + 3 * 3_600_000).toISOString();
  clock.setSystemTime(midnight + 3 * 3_600_000 + 5_000);
  const planned = await invoke(
    fanOut,
    { job: 'backup', schedule: 'daily', scheduledTime: slot },
    'fanout',
  );
  const runId = String(planned.runId);
  for (const t of planned.targets as {
    account: string;
    region: string;
    instances: number;
    batches: number;
  }[]) {
    console.log(
      `  planner: ${t.account}/${t.region}: ${t.instances} instances due, ${t.batches} batches queued`,
    );
  }
  console.log(`  run ${runId} is ${String(planned.status)} until its last batch is done`);

  const take = async (): Promise<Message[]> =>
    (await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1 })))
      .Messages ?? [];
  for (let round = 1; ; round += 1) {
    const messages = [...(await take()), ...(await take())];
    if (messages.length === 0) break;
    // Lambda runs the round's workers at once, each in its own process; here they take
    // their turns in this one (one Powertools Metrics buffer per process).
    for (const [i, m] of messages.entries()) {
      const body = JSON.parse(m.Body ?? '{}') as { batchId: string; instanceIds: string[] };
      await worker(
        {
          Records: [
            {
              messageId: m.MessageId,
              receiptHandle: m.ReceiptHandle,
              body: m.Body,
              attributes: { ApproximateReceiveCount: '1' },
              messageAttributes: {},
              eventSource: 'aws:sqs',
            },
          ],
        },
        lambdaContext(`snapkeeper-demo-worker-${i + 1}`),
      );
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }),
      );
      console.log(
        `  round ${round}, worker ${i + 1}: batch ${body.batchId} (${body.instanceIds.length} instances)`,
      );
    }
  }
  heading(`The fan-out run and its batches (npm run history -- --run ${runId})`);
  const shown = (await history(['--run', runId])).split('\n');
  const header = shown.findIndex((line) => /^batch\s/.test(line));
  const table = header < 0 ? [] : [shown[header], shown[header + 1]];
  for (const line of shown.slice(header + 2)) {
    if (!line.startsWith('self/')) break;
    table.push(line);
  }
  for (const line of shown) {
    if (/^(status|counts|errorSummary):/.test(line)) console.log(`  ${line.slice(0, 150)}`);
  }
  for (const line of table) console.log(`  ${String(line).slice(0, 150)}`);
}

/** `npm run demo`'s command line. */
export const DEMO_COMMAND: CliSpec = {
  command: 'npm run demo --',
  summary:
    'The demo: starts a local AWS (moto) and plays a simulated fortnight of a small fleet through the real handlers (backups, AMIs, retention, a retired instance, a slot delivered twice), then a restore drill, a restore, the report, the coverage page and a fan-out over two regions. Needs no AWS account.',
  options: {},
  examples: ['npm run demo', 'npm run demo -- --verbose 2> demo-logs.jsonl'],
  notes: [
    'It prints a narrative for people: --json is refused. --help starts nothing. The coverage page is written to reports/demo-coverage.html.',
  ],
};

/**
 * Runs `npm run demo` with a command line; answers the exit code (2 for a bad command line).
 *
 * @example
 * process.exitCode = await demoCommand(['--verbose']);
 */
export async function demoCommand(
  argv: readonly string[],
  io: ToolIo = CONSOLE_IO,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  return runTool(
    DEMO_COMMAND,
    argv,
    async (cli) => {
      if (cli.json)
        throw new UsageError(
          'option --json: the demo prints a narrative, not JSON (see npm run demo -- --help)',
        );
      // The local stack keeps the functions' Powertools logs silent unless told otherwise.
      if (cli.verbose && (env.POWERTOOLS_LOG_LEVEL ?? 'SILENT') === 'SILENT')
        env.POWERTOOLS_LOG_LEVEL = 'INFO';
      await main();
      return 0;
    },
    io,
  );
}

if (isMain(import.meta.url)) process.exitCode = await demoCommand(process.argv.slice(2));
