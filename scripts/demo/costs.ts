/**
 * The demo's part of the cost ledger (issue 22, part 1).
 *
 * moto lists blocks only of snapshots made through the EBS direct APIs (an EC2-made
 * snapshot answers HTTP 500), so the demo puts a small stand-in for the two List calls in
 * front of the retention function (`AWS_ENDPOINT_URL_EBS`, the SDK's own per-service
 * endpoint variable): it answers `ListSnapshotBlocks` and `ListChangedBlocks` for any
 * snapshot id in AWS's REST shapes (512 KiB blocks), with block counts derived from the
 * id: a few hundred MiB written at first, a few MiB changed a day. The figures are
 * invented; what the demo shows is the real path: measured once by retention, recorded
 * in the history, priced in the report and on the page.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';

const BLOCK_SIZE = 524_288;

/** A stand-in EBS direct endpoint, and how to stop it. */
export interface EbsStandIn {
  readonly endpoint: string;
  close(): Promise<void>;
}

function seed(id: string): number {
  return createHash('sha256').update(id).digest().readUInt32BE(0);
}

/** Blocks a snapshot holds (all its data): 600 to 1,000 blocks of 512 KiB. */
const fullBlocks = (id: string) => 600 + (seed(id) % 400);
/** Blocks changed since the previous snapshot: 4 to 40 (2 to 20 MiB). */
const changedBlocks = (id: string) => 4 + (seed(`changed:${id}`) % 36);

function blocks(count: number, withFirst: boolean) {
  return Array.from({ length: count }, (_, i) =>
    withFirst
      ? { BlockIndex: i, FirstBlockToken: `f${i}`, SecondBlockToken: `s${i}` }
      : { BlockIndex: i, BlockToken: `t${i}` },
  );
}

/**
 * Starts the stand-in on a loopback port and points the EBS direct clients at it.
 *
 * @example
 * const ebs = await startEbsStandIn();
 * try { ... } finally { await ebs.close(); }
 */
export async function startEbsStandIn(): Promise<EbsStandIn> {
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://stand-in');
    const match = /^\/snapshots\/([^/]+)\/(blocks|changedblocks)$/.exec(url.pathname);
    const id = decodeURIComponent(match?.[1] ?? '');
    const answer =
      match?.[2] === 'blocks'
        ? { Blocks: blocks(fullBlocks(id), false) }
        : match?.[2] === 'changedblocks'
          ? { ChangedBlocks: blocks(changedBlocks(id), true) }
          : undefined;
    response.writeHead(answer ? 200 : 404, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify(
        answer
          ? { ...answer, BlockSize: BLOCK_SIZE, VolumeSize: 8, ExpiryTime: Date.now() / 1000 + 600 }
          : { message: 'not found' },
      ),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const endpoint = `http://127.0.0.1:${port}`;
  process.env.AWS_ENDPOINT_URL_EBS = endpoint;
  return {
    endpoint,
    close: () =>
      new Promise<void>((resolve) => {
        delete process.env.AWS_ENDPOINT_URL_EBS;
        server.close(() => resolve());
      }),
  };
}

/** The cost fields of one instance in the console `report` answer. */
interface InstanceCosts {
  readonly name?: string | undefined;
  readonly instanceId: string;
  readonly fullBytes?: number | undefined;
  readonly uniqueBytes?: number | undefined;
  readonly estimatedMonthlyCost?: number | undefined;
}

const mib = (bytes: number | undefined) => `${((bytes ?? 0) / 2 ** 20).toFixed(0)} MiB`;

/**
 * Lines for the demo: each instance's measured sizes and estimated monthly cost, and the
 * price table they were priced with.
 *
 * @example
 * for (const line of costLines(report)) console.log(line);
 */
export function costLines(report: {
  readonly instances: readonly InstanceCosts[];
  readonly costs?: {
    readonly currency: string;
    readonly priceTable: string;
    readonly deployment?: { readonly estimatedMonthlyCost: number; readonly unmeasured: number };
  };
}): string[] {
  const costs = report.costs;
  if (!costs) return ['  (no costs in the report)'];
  const lines = report.instances
    .filter((i) => i.fullBytes !== undefined)
    .map(
      (i) =>
        `  ${(i.name ?? i.instanceId).padEnd(9)} full ${mib(i.fullBytes).padStart(9)}  unique ${mib(i.uniqueBytes).padStart(8)}  ~${(i.estimatedMonthlyCost ?? 0).toFixed(4)} ${costs.currency}/month`,
    );
  lines.push(
    `  deployment ~${(costs.deployment?.estimatedMonthlyCost ?? 0).toFixed(4)} ${costs.currency}/month (${costs.deployment?.unmeasured ?? 0} snapshots not measured yet); prices: ${costs.priceTable}`,
  );
  return lines;
}
