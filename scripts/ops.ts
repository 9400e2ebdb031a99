/**
 * Runs a console payload against the local AWS: `npm run ops -- events/ops-report.json`.
 *
 * With the local AWS that `npm run local-aws` keeps up, it acts on that one, so what it
 * does stays for `npm run history` and `npm run report`. Without it, it starts a throwaway
 * local AWS with the demo's fleet, takes one daily backup and AMI so there is something to
 * act on, and stops it at the end. Either way the sample payloads' placeholder ids are
 * replaced with the fleet's (i-0123456789abcdef0 → web-1, i-0fedcba9876543210 → db-1,
 * vol-0123456789abcdef0 → web-1's root volume, snap-0123456789abcdef0 → its newest
 * snapshot, the sample run id → that snapshot's run), then functions/ops.ts is invoked.
 */
import { DescribeSnapshotsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { type LaunchedInstance, ROOT_DEVICE } from '../harness/localFleet.ts';
import { startLocalStack } from '../harness/localStack.ts';
import { type CliSpec, isMain, runCommand, UsageError } from './cli.ts';
import { describeReport, invokeFunction, readEvent, reportFailed } from './invoke.ts';

/** The command line of `npm run ops`. */
export const OPS_COMMAND: CliSpec = {
  command: 'npm run ops --',
  summary:
    'Runs a console operation (the ops function) locally: backup, retention, plan, report, restores.',
  positionals: '<payload>',
  options: {},
  notes: [
    'The payload: a file (events/ops-report.json), a sample’s name without "ops-" and ".json"\n(report, backup-instances, restore-drill, ...), or inline JSON. Its placeholder ids are replaced\nwith the demo fleet’s (i-0123456789abcdef0 is web-1, i-0fedcba9876543210 db-1).',
    'With `npm run local-aws` running it acts on that local AWS, and the result stays for\n`npm run history` and `npm run report`; otherwise on a throwaway one (fleet, one daily backup\nand AMI), gone when it ends. It never reaches a deployed account: there, invoke the ops function\n(aws lambda invoke --function-name snapkeeper-<stage>-ops). Exits 1 when the payload is rejected\nor the run failed.',
  ],
  examples: [
    'npm run ops -- backup-instances             # events/ops-backup-instances.json',
    'npm run ops -- events/ops-plan-daily.json',
    'npm run ops -- \'{"action": "report"}\' --json',
    'npm run ops -- restore-drill --verbose',
  ],
};

/** The sample payloads' placeholder ids, replaced with the local fleet's. */
export interface Placeholders {
  readonly web?: LaunchedInstance | undefined;
  readonly db?: LaunchedInstance | undefined;
  readonly snapshotId?: string | undefined;
  readonly runId?: string | undefined;
}

/**
 * Replaces the samples' placeholder ids with the local fleet's.
 *
 * @example
 * replacePlaceholders({ action: 'report' }, {});
 */
export function replacePlaceholders(payload: unknown, ids: Placeholders): unknown {
  const root = ids.web?.volumes.find((v) => v.device === ROOT_DEVICE);
  const text = JSON.stringify(payload)
    .replaceAll('i-0123456789abcdef0', ids.web?.instanceId ?? 'i-0123456789abcdef0')
    .replaceAll('i-0fedcba9876543210', ids.db?.instanceId ?? 'i-0fedcba9876543210')
    .replaceAll('vol-0123456789abcdef0', root?.volumeId ?? 'vol-0123456789abcdef0')
    .replaceAll('snap-0123456789abcdef0', ids.snapshotId ?? 'snap-0123456789abcdef0')
    .replaceAll('20261123T030002Z-9f3a12bc', ids.runId ?? '20261123T030002Z-9f3a12bc');
  return JSON.parse(text);
}

/** The newest managed snapshot of web-1's root volume and its run, if there is one. */
async function newestRootSnapshot(
  ec2: EC2Client,
  web: LaunchedInstance | undefined,
): Promise<{ snapshotId?: string | undefined; runId?: string | undefined }> {
  const root = web?.volumes.find((v) => v.device === ROOT_DEVICE);
  if (!root) return {};
  const snapshots =
    (
      await ec2.send(
        new DescribeSnapshotsCommand({
          OwnerIds: ['self'],
          Filters: [
            { Name: 'volume-id', Values: [root.volumeId] },
            { Name: 'tag:snapkeeper:managed', Values: ['true'] },
          ],
        }),
      )
    ).Snapshots ?? [];
  const newest = snapshots.sort(
    (a, b) => (b.StartTime?.getTime() ?? 0) - (a.StartTime?.getTime() ?? 0),
  )[0];
  return {
    snapshotId: newest?.SnapshotId,
    runId: newest?.Tags?.find((t) => t.Key === 'snapkeeper:run-id')?.Value,
  };
}

/** Yesterday's or today's 03:00 UTC, whichever has passed last. */
function lastDailySlot(): string {
  const slot = new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000 + 3 * 3_600_000);
  if (slot.getTime() > Date.now()) slot.setUTCDate(slot.getUTCDate() - 1);
  return slot.toISOString();
}

if (isMain(import.meta.url)) {
  process.exitCode = await runCommand(OPS_COMMAND, process.argv.slice(2), async (cli, local) => {
    const [argument, ...rest] = cli.positionals;
    if (!argument || rest.length > 0)
      throw new UsageError('give one payload, e.g. "npm run ops -- report" (see --help)');
    const payload = readEvent(argument, 'ops-');
    const show = (text: string) => {
      if (!cli.json) console.error(text);
    };
    let answer: Record<string, unknown>;
    if (local?.state) {
      const { EC2Client } = await import('@aws-sdk/client-ec2');
      const ec2 = new EC2Client({ region: local.state.region, endpoint: local.state.endpoint });
      const fleet = new Map(local.state.fleet.map((i) => [i.name, i]));
      const web = fleet.get('web-1');
      const replaced = replacePlaceholders(payload, {
        web,
        db: fleet.get('db-1'),
        ...(await newestRootSnapshot(ec2, web)),
      });
      show(`payload: ${JSON.stringify(replaced)}`);
      answer = await invokeFunction('ops', replaced);
    } else {
      show(
        'no local AWS is running (npm run local-aws): using a throwaway one, gone when this ends',
      );
      const stack = await startLocalStack('local');
      try {
        const fleet = await stack.launch();
        const slot = lastDailySlot();
        await invokeFunction('backup', { schedule: 'daily', scheduledTime: slot });
        await invokeFunction('amis', { schedule: 'daily', scheduledTime: slot });
        const web = fleet.get('web-1');
        const replaced = replacePlaceholders(payload, {
          web,
          db: fleet.get('db-1'),
          ...(await newestRootSnapshot(stack.ec2, web)),
        });
        show(`payload: ${JSON.stringify(replaced)}`);
        answer = await invokeFunction('ops', replaced);
      } finally {
        await stack.aws.stop();
      }
    }
    return {
      output: cli.json ? JSON.stringify(answer, null, 2) : describeReport(answer),
      exitCode: reportFailed(answer) ? 1 : 0,
    };
  });
}
