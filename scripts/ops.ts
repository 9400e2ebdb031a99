/**
 * Runs a console payload against the local AWS: `npm run ops -- events/ops-report.json`.
 *
 * It starts a local AWS with the demo's fleet, takes one daily backup and AMI so there
 * is something to act on, replaces the sample payloads' placeholder ids with the fleet's
 * (i-0123456789abcdef0 → web-1, i-0fedcba9876543210 → db-1 (which has an AMI),
 * vol-0123456789abcdef0 → web-1's root volume,
 * snap-0123456789abcdef0 → its newest snapshot, the sample run id → that backup's run),
 * invokes functions/ops.ts and prints the answer.
 */
import { readFileSync } from 'node:fs';
import { lambdaContext } from '../test/support/lambdaContext.ts';
import { ROOT_DEVICE } from './localFleet.ts';
import { startLocalStack } from './localStack.ts';

type Handler = (event: unknown, context: unknown) => Promise<Record<string, unknown>>;

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: npm run ops -- <events/ops-*.json>');
    process.exitCode = 2;
    return;
  }
  const text = readFileSync(file, 'utf8');
  const stack = await startLocalStack('local');
  try {
    const fleet = await stack.launch();
    const web = fleet.get('web-1');
    const load = async (name: string) =>
      ((await import(`../functions/${name}.ts`)) as unknown as { handler: Handler }).handler;
    const slot = new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000 + 3 * 3_600_000);
    if (slot.getTime() > Date.now()) slot.setUTCDate(slot.getUTCDate() - 1);
    const backup = await (await load('backup'))(
      { schedule: 'daily', scheduledTime: slot.toISOString() },
      lambdaContext(),
    );
    await (await load('amis'))(
      { schedule: 'daily', scheduledTime: slot.toISOString() },
      lambdaContext(),
    );
    const webResult = (
      backup.instances as {
        instanceId: string;
        snapshots?: { snapshotId?: string; deviceName?: string }[];
      }[]
    ).find((r) => r.instanceId === web?.instanceId);
    const root = web?.volumes.find((v) => v.device === ROOT_DEVICE);
    const replaced = text
      .replaceAll('i-0123456789abcdef0', web?.instanceId ?? '')
      .replaceAll('i-0fedcba9876543210', fleet.get('db-1')?.instanceId ?? '')
      .replaceAll('vol-0123456789abcdef0', root?.volumeId ?? '')
      .replaceAll('snap-0123456789abcdef0', webResult?.snapshots?.[0]?.snapshotId ?? '')
      .replaceAll('20261123T030002Z-9f3a12bc', String(backup.runId));
    console.error(
      `local AWS at ${stack.aws.endpoint}; fleet: ${[...fleet.values()].map((i) => `${i.name}=${i.instanceId}`).join(' ')}`,
    );
    console.error(`payload: ${replaced.trim()}`);
    const answer = await (await load('ops'))(
      JSON.parse(replaced),
      lambdaContext('snapkeeper-local-ops'),
    );
    console.log(JSON.stringify(answer, null, 2));
  } finally {
    await stack.aws.stop();
  }
}

await main();
