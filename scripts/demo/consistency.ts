/**
 * The demo's part of issue 21.1, application-consistent snapshot sets: db-1 and db-2
 * carry `snapkeeper:consistency=fsfreeze` (DEMO_FLEET). moto runs every Run Command with
 * `Success`, whatever the instance, so db-1 gets app-consistent sets; db-2 is marked
 * unmanaged by a fault proxy in front of moto that answers its SendCommand with
 * `InvalidInstanceId`, as AWS does for an instance without the SSM agent or its
 * instance profile: its sets fall back to crash-consistent, tagged and reported so.
 */
import { DescribeSnapshotsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { ssmUnmanaged } from '../../harness/consistencyFaults.ts';
import { startFaultProxy } from '../../harness/faultProxy.ts';
import type { LocalAws } from '../../harness/localAws.ts';
import type { LaunchedInstance } from '../../harness/localFleet.ts';

const dim = (text: string) => `\x1b[2m${text}\x1b[0m`;

/** What the demo calls back at the end of the fortnight. */
export interface ConsistencyDemo {
  /** Prints what each db instance's sets got, from the snapshots' own tags. */
  summary(ec2: EC2Client): Promise<void>;
}

/**
 * Puts Systems Manager behind a fault proxy that marks db-2 unmanaged (before the
 * handlers are loaded: they read LOCAL_SSM_ENDPOINT when their runtime is built). The
 * proxy stops with the local AWS (`aws.stop`).
 *
 * @example
 * const consistency = await startConsistencyDemo(aws, fleet);
 */
export async function startConsistencyDemo(
  aws: LocalAws,
  fleet: ReadonlyMap<string, LaunchedInstance>,
): Promise<ConsistencyDemo> {
  const proxy = await startFaultProxy({ target: aws.endpoint });
  const db2 = fleet.get('db-2')?.instanceId ?? '';
  proxy.rules.add(ssmUnmanaged([db2]));
  process.env.LOCAL_SSM_ENDPOINT = proxy.endpoint;
  const stopAws = aws.stop.bind(aws);
  Object.assign(aws, {
    stop: async () => {
      await proxy.stop();
      await stopAws();
    },
  });
  console.log(
    dim(
      '  db-1, db-2: snapkeeper:consistency=fsfreeze (freeze, snapshot, thaw through Run Command).\n' +
        `  db-2 (${db2}) is marked UNMANAGED on purpose: a fault proxy in front of moto answers its\n` +
        '  SendCommand with InvalidInstanceId (moto itself runs every command with Success), so its sets fall back.',
    ),
  );
  return {
    summary: async (ec2) => {
      console.log('\n\x1b[1m== Application-consistent sets (snapkeeper:consistency)\x1b[0m');
      const snapshots =
        (
          await ec2.send(
            new DescribeSnapshotsCommand({
              OwnerIds: ['self'],
              Filters: [{ Name: 'tag-key', Values: ['snapkeeper:consistency'] }],
            }),
          )
        ).Snapshots ?? [];
      for (const name of ['db-1', 'db-2']) {
        const id = fleet.get(name)?.instanceId;
        const tags = snapshots
          .map((s) => Object.fromEntries((s.Tags ?? []).map((t) => [t.Key, t.Value])))
          .filter((t) => t['snapkeeper:instance-id'] === id);
        const count = (value: string) =>
          new Set(
            tags
              .filter((t) => t['snapkeeper:consistency'] === value)
              .map((t) => t['snapkeeper:run-id']),
          ).size;
        const reason = tags.find((t) => t['snapkeeper:consistency'] === 'crash-fallback')?.[
          'snapkeeper:consistency-reason'
        ];
        console.log(
          `  ${name.padEnd(9)} ${count('app')} app-consistent sets, ${count('crash-fallback')} crash-fallback` +
            `${reason ? `\n            ${dim(`↳ ${reason}`)}` : ''}`,
        );
      }
      console.log(
        dim(
          '  (every snapshot says which it got in snapkeeper:consistency; the run report counts appConsistent and\n' +
            '   crashFallback, and the report below shows each instance’s newest app-consistent point)',
        ),
      );
    },
  };
}
