/**
 * The demo's part for schedules written in a tag (issue 22 part 2): one instance,
 * `six-1`, on `snapkeeper:backup=rate(6 hours)` with `snapkeeper:retain=tag=8`. Each
 * simulated day the dispatcher (the backup function with `{"schedule": "tag"}`) runs at
 * 06:00, 12:00, 18:00 and the next 00:00, once twice (a repeated delivery makes
 * nothing), and the tag retention runs at 00:45 as the stack schedules it.
 */
import { DescribeSnapshotsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { type LaunchedInstance, launchFleet } from '../../harness/localFleet.ts';

type Handler = (event: unknown, context: unknown) => Promise<Record<string, unknown>>;
type Invoke = (handler: Handler, event: unknown, name: string) => Promise<Record<string, unknown>>;

const RATE = 'rate(6 hours)';
const HOUR = 3_600_000;
const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;

/** The demo's tag-scheduled instance and what its days did. */
export class TagScheduleDemo {
  readonly #ec2: EC2Client;
  readonly #instance: LaunchedInstance;

  private constructor(ec2: EC2Client, instance: LaunchedInstance) {
    this.#ec2 = ec2;
    this.#instance = instance;
  }

  /** Launches `six-1`, on its own `rate(6 hours)` tag. */
  public static async start(ec2: EC2Client): Promise<TagScheduleDemo> {
    const fleet = await launchFleet(ec2, [
      { name: 'six-1', tags: { 'snapkeeper:backup': RATE, 'snapkeeper:retain': 'tag=8' } },
    ]);
    const instance = fleet.get('six-1');
    if (!instance) throw new Error('six-1 was not launched');
    return new TagScheduleDemo(ec2, instance);
  }

  /** One line for the fleet listing. */
  public describe(): string {
    return `  six-1     ${this.#instance.instanceId}  snapkeeper:backup=${RATE}, retain tag=8: dispatched every 6 h, no redeploy`;
  }

  /**
   * The day's dispatches and the tag retention after them (the clock only moves on);
   * the day's note.
   */
  public async day(
    midnight: number,
    handlers: { backup: Handler; retention: Handler },
    clock: { setSystemTime(ms: number): void },
    invoke: Invoke,
    repeat: boolean,
  ): Promise<string> {
    let made = 0;
    let duplicates = 0;
    for (const at of [6, 12, 18, 24].map((h) => midnight + h * HOUR)) {
      clock.setSystemTime(at + 20_000);
      const times = repeat && at === midnight + 12 * HOUR ? 2 : 1;
      for (let i = 0; i < times; i += 1) {
        const report = await invoke(
          handlers.backup,
          { schedule: 'tag', scheduledTime: iso(at) },
          'backup',
        );
        const runs = (report.runs as { outcome: string; expression: string }[] | undefined) ?? [];
        made += runs.filter((r) => r.expression === RATE && r.outcome === 'ran').length;
        duplicates += runs.filter((r) => r.expression === RATE && r.outcome === 'duplicate').length;
      }
    }
    const retentionAt = midnight + 24 * HOUR + 45 * 60_000;
    clock.setSystemTime(retentionAt + 5_000);
    const kept = await invoke(
      handlers.retention,
      { schedule: 'tag', scheduledTime: iso(retentionAt) },
      'retention',
    );
    const deleted = (kept.counts as { deleted?: number } | undefined)?.deleted ?? 0;
    const repeated = duplicates > 0 ? `, the 12:00 dispatch delivered twice made nothing more` : '';
    return `six-1 (${RATE}): ${made} sets at 06, 12, 18, 00 UTC${repeated}; tag retention deleted ${deleted} (keeps 8)`;
  }

  /** What the fortnight left of six-1's own lineage. */
  public async summary(): Promise<string> {
    const snapshots =
      (
        await this.#ec2.send(
          new DescribeSnapshotsCommand({
            OwnerIds: ['self'],
            Filters: [{ Name: 'tag:snapkeeper:instance-id', Values: [this.#instance.instanceId] }],
          }),
        )
      ).Snapshots ?? [];
    const slots = snapshots
      .filter((s) => s.Tags?.some((t) => t.Key === 'snapkeeper:schedule' && t.Value === RATE))
      .map((s) => s.Tags?.find((t) => t.Key === 'snapkeeper:slot')?.Value ?? '')
      .sort();
    return `  six-1     ${slots.length} sets tagged snapkeeper:schedule=${RATE}, slots ${slots[0] ?? '-'} … ${slots.at(-1) ?? '-'}`;
  }
}
