/**
 * The demo's part for issue 21 (parts 2 and 3): monthly points locked against deletion,
 * old monthly points moved to the archive tier, and a restore from archive. A fortnight
 * holds no monthly slot and no point old enough to archive, so this part moves the clock
 * on, month by month, past the fortnight (and says so). moto lacks the snapshot-lock
 * calls: the functions here reach moto through the fault proxy, whose lock emulator
 * answers them as EC2 does (harness/snapshotLockCalls.ts).
 */
import { DescribeSnapshotsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { deploymentSchedules } from '../../harness/deploymentSchedules.ts';
import { startFaultProxy } from '../../harness/faultProxy.ts';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { launchFleet } from '../../harness/localFleet.ts';
import { snapshotLockEmulator } from '../../harness/snapshotLockCalls.ts';

type Handler = (event: unknown, context: unknown) => Promise<Record<string, unknown>>;

/** What the demo lends this part. */
export interface DemoContext {
  readonly endpoint: string;
  readonly ec2: EC2Client;
  readonly clock: { setSystemTime(now: number): void };
  readonly heading: (text: string) => void;
  readonly dim: (text: string) => string;
}

const MONTHS = 5;

async function invoke(handler: Handler, event: unknown, name: string) {
  try {
    return await handler(event, lambdaContext(`snapkeeper-demo-${name}`));
  } catch (error) {
    const report = (error as { report?: Record<string, unknown> }).report;
    return report ?? { status: 'failed', error: { message: (error as Error).message } };
  }
}

/**
 * Runs the part from `start` (the day after the fortnight).
 *
 * @example
 * await demoLocksAndArchive(context, FIRST_DAY + DAYS * 86_400_000);
 */
export async function demoLocksAndArchive(context: DemoContext, start: number): Promise<void> {
  const { heading, dim } = context;
  heading(
    'Locked and archived monthly points (issue 21): time-shifted five months past the fortnight',
  );
  const proxy = await startFaultProxy({ target: context.endpoint });
  proxy.rules.add(snapshotLockEmulator().rule);
  const saved = { endpoint: process.env.AWS_ENDPOINT_URL, schedules: process.env.SCHEDULES };
  try {
    // The monthly schedule as a stage would set it: archive points after 60 days.
    const schedules = (deploymentSchedules() as { name: string }[]).map((s) =>
      s.name === 'monthly' ? { ...s, archiveAfterDays: 60 } : s,
    );
    process.env.SCHEDULES = JSON.stringify(schedules);
    process.env.AWS_ENDPOINT_URL = proxy.endpoint;
    const load = async (name: string) =>
      ((await import(`../../functions/${name}.ts?locks`)) as unknown as { handler: Handler })
        .handler;
    const backup = await load('backup');
    const retention = await load('retention');
    const ops = await load('ops');
    const fleet = await launchFleet(context.ec2, [
      {
        name: 'vault-1',
        tags: { 'snapkeeper:backup': 'monthly', 'snapkeeper:lock': 'monthly=365d' },
        dataVolumes: [{ device: '/dev/sdf', sizeGiB: 50 }],
      },
      {
        name: 'ledger-1',
        tags: {
          'snapkeeper:backup': 'monthly',
          'snapkeeper:lock': 'monthly=365d',
          'snapkeeper:retain': 'monthly=2',
        },
      },
    ]);
    console.log(
      dim(
        '  (every backup run stays "partial": typo-1\'s snapkeeper:backup=dialy is reported in each run)\n' +
          '  vault-1: snapkeeper:backup=monthly, snapkeeper:lock=monthly=365d (monthly keeps 12, archiveAfterDays 60)\n' +
          '  ledger-1: the same lock, but snapkeeper:retain=monthly=2: retention would delete its older points',
      ),
    );
    const first = new Date(start);
    for (let m = 1; m <= MONTHS; m += 1) {
      const slot = Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + m, 1, 5);
      context.clock.setSystemTime(slot + 5_000);
      const made = await invoke(
        backup,
        { schedule: 'monthly', scheduledTime: new Date(slot).toISOString() },
        'backup',
      );
      context.clock.setSystemTime(slot + 3_600_000 + 5_000);
      const kept = await invoke(
        retention,
        { schedule: 'monthly', scheduledTime: new Date(slot + 3_600_000).toISOString() },
        'retention',
      );
      const locks = (made.locks as { outcome: string }[] | undefined) ?? [];
      const archive = (kept.archive as { outcome: string }[] | undefined) ?? [];
      const counts = (kept.counts as Record<string, number> | undefined) ?? {};
      console.log(
        `  ${new Date(slot).toISOString().slice(0, 10)}  backup ${String(made.status).padEnd(9)} locked ${locks.filter((l) => l.outcome === 'locked').length}` +
          ` | retention deleted ${counts.deleted ?? 0}, blocked by locks ${counts.blocked ?? 0} (${counts.blockedGiB ?? 0} GiB)` +
          ` | archived ${archive.filter((a) => a.outcome === 'archived').length}`,
      );
    }
    const plan = (await invoke(ops, { action: 'plan', schedule: 'monthly' }, 'ops')).result as
      | { schedules: { lines: string[] }[] }
      | undefined;
    const lines = plan?.schedules.flatMap((s) => s.lines) ?? [];
    for (const line of lines.filter((l) => /locked|archive/.test(l)).slice(0, 4))
      console.log(`  plan: ${line}`);

    const vaultData = fleet.get('vault-1')?.volumes.find((v) => v.device === '/dev/sdf')?.volumeId;
    if (vaultData) {
      heading(
        `Restoring vault-1's archived data volume (ops: restore-volume with "archiveRestore": {"days": 2})`,
      );
      const oldest = await oldestArchived(context.ec2, vaultData);
      if (oldest) {
        const request = {
          action: 'restore-volume',
          snapshotId: oldest,
          archiveRestore: { days: 2 },
        };
        const firstAnswer = (await invoke(ops, request, 'ops')).result as Record<string, unknown>;
        console.log(
          `  first call: ${String((firstAnswer?.archive as Record<string, unknown>)?.message ?? firstAnswer?.status)}`,
        );
        console.log(
          dim(
            '  (moto restores at once; AWS takes up to 72 hours, and answers "in-progress" meanwhile)',
          ),
        );
        // Three days later, as the answer says.
        context.clock.setSystemTime(Date.now() + 3 * 86_400_000);
        const second = (await invoke(ops, request, 'ops')).result as Record<string, unknown>;
        console.log(
          `  second call: volume ${String(second?.volumeId)} (${String(second?.status)})`,
        );
      } else {
        console.log('  no archived snapshot of vault-1 found');
      }
    }
  } finally {
    process.env.AWS_ENDPOINT_URL = saved.endpoint;
    process.env.SCHEDULES = saved.schedules;
    await proxy.stop();
  }
}

async function oldestArchived(ec2: EC2Client, volumeId: string): Promise<string | undefined> {
  const answer = await ec2.send(
    new DescribeSnapshotsCommand({
      OwnerIds: ['self'],
      Filters: [
        { Name: 'volume-id', Values: [volumeId] },
        { Name: 'storage-tier', Values: ['archive'] },
      ],
    }),
  );
  return [...(answer.Snapshots ?? [])].sort(
    (a, b) => (a.StartTime?.getTime() ?? 0) - (b.StartTime?.getTime() ?? 0),
  )[0]?.SnapshotId;
}
