/**
 * The cost ledger's measuring against the local AWS (moto 5.2.x), which implements
 * `ListSnapshotBlocks` and `ListChangedBlocks` with these differences from AWS, probed
 * here and covered by the stubbed unit tests (test/unit/aws/EbsDirectGateway.test.ts):
 * - only snapshots made through the EBS direct APIs (StartSnapshot, PutSnapshotBlock,
 *   CompleteSnapshot) can be listed; a snapshot made by EC2's CreateSnapshot answers
 *   HTTP 500 with an HTML page. Those snapshots are EC2 snapshots too (DescribeSnapshots
 *   lists them with their tags), so the measuring job sees them as it sees ours;
 * - `BlockSize` is 512 (AWS answers 524288, 512 KiB): the gateway reads it from each answer;
 * - no paging (`NextToken` never set, `MaxResults` ignored);
 * - ListChangedBlocks compares block contents and lists only blocks the first snapshot
 *   holds (AWS compares block tokens and also lists blocks only the second holds, with a
 *   `SecondBlockToken` only); ParentSnapshotId is ignored, so a second snapshot holds
 *   only the blocks written to it;
 * - DescribeSnapshots gives no `FullSnapshotSizeInBytes`: the full size comes from
 *   ListSnapshotBlocks (the fallback the job states).
 */
import { createHash } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CompleteSnapshotCommand,
  EBSClient,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { CreateSnapshotCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { launchFleet, ROOT_DEVICE } from '../../harness/localFleet.ts';
import { recordCalls, runAsCaller } from '../../lib/aws/callRecorder.ts';
import { EbsDirectGateway } from '../../lib/aws/EbsDirectGateway.ts';
import { Ec2Gateway } from '../../lib/aws/Ec2Gateway.ts';
import { SnapshotSizeRecords } from '../../lib/aws/history/snapshotSizes.ts';
import { HistoryTable } from '../../lib/aws/history/table.ts';
import { defaultPriceTable } from '../../lib/domain/costLedger.ts';
import type { SnapshotFacts } from '../../lib/domain/snapshotFacts.ts';
import type { RetentionReport } from '../../lib/jobs/retentionJob.ts';
import { silentLogger } from '../../lib/jobs/runReport.ts';
import { costLedgerOf, measureSnapshotSizes } from '../../lib/jobs/snapshotSizes.ts';
import { useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

const REGION = 'mx-central-1';
const DEPLOYMENT = 'itest-costs';
const MOTO_BLOCK = 512;

describe('Cost ledger: snapshot sizes measured with the EBS direct APIs, against the local AWS', () => {
  let ebsClient: EBSClient;
  let ec2Client: EC2Client;
  let ec2: Ec2Gateway;
  let sizes: SnapshotSizeRecords;
  const made: string[] = [];

  /** A snapshot made through the direct APIs, with `blocks` (index → fill byte) written. */
  async function directSnapshot(blocks: Record<number, number>): Promise<string> {
    const started = await ebsClient.send(
      new StartSnapshotCommand({
        VolumeSize: 1,
        Tags: [
          { Key: 'snapkeeper:managed', Value: 'true' },
          { Key: 'snapkeeper:deployment', Value: DEPLOYMENT },
          { Key: 'snapkeeper:schedule', Value: 'daily' },
          { Key: 'snapkeeper:instance-id', Value: 'i-0costs' },
        ],
      }),
    );
    const id = started.SnapshotId ?? '';
    for (const [index, fill] of Object.entries(blocks)) {
      const data = Buffer.alloc(MOTO_BLOCK, fill);
      await ebsClient.send(
        new PutSnapshotBlockCommand({
          SnapshotId: id,
          BlockIndex: Number(index),
          BlockData: data,
          DataLength: MOTO_BLOCK,
          Checksum: createHash('sha256').update(data).digest('base64'),
          ChecksumAlgorithm: 'SHA256',
        }),
      );
    }
    await ebsClient.send(
      new CompleteSnapshotCommand({
        SnapshotId: id,
        ChangedBlocksCount: Object.keys(blocks).length,
      }),
    );
    made.push(id);
    return id;
  }

  beforeAll(async () => {
    const endpoint = inject('awsEndpoint');
    ec2Client = useLocalAws(endpoint, REGION, { DEPLOYMENT });
    const table = await useLocalHistoryTable(endpoint, REGION);
    ebsClient = new EBSClient({ region: REGION, endpoint });
    ec2 = new Ec2Gateway(recordCalls(ec2Client));
    const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region: REGION, endpoint }));
    sizes = new SnapshotSizeRecords(new HistoryTable(doc, table, 400));
  });

  async function listed(): Promise<SnapshotFacts[]> {
    const all: SnapshotFacts[] = [];
    for await (const s of ec2.listSnapshotsTagged({
      'snapkeeper:managed': 'true',
      'snapkeeper:deployment': DEPLOYMENT,
    }))
      all.push(s);
    // The volumes moto makes for direct-API snapshots differ: give them one lineage.
    return all.map((s) => ({ ...s, volumeId: 'vol-costs' }));
  }

  it('moto gives no FullSnapshotSizeInBytes, so the full size falls back to ListSnapshotBlocks', async () => {
    // Prepare
    await directSnapshot({ 0: 1, 1: 1, 2: 1, 3: 1 });

    // Act
    const [snapshot] = await listed();

    // Assess
    expect(snapshot?.fullSizeBytes).toBeUndefined();
    expect(snapshot?.state).toBe('completed');
    expect(snapshot?.storageTier).toBe('standard');
  });

  it('measures full and unique bytes once, records them, and prices the instance', async () => {
    // Prepare: the second snapshot rewrites 2 of the first's 4 blocks (moto keeps no parent).
    await directSnapshot({ 0: 2, 1: 2, 2: 1, 3: 1 });
    // As the retention function (its calls are recorded for the IAM simulation).
    const asRetention = <T>(work: () => Promise<T>) =>
      runAsCaller(
        {
          functionName: 'retention',
          region: REGION,
          deployment: DEPLOYMENT,
          tagPrefix: 'snapkeeper:',
          localTagAfterCreate: false,
        },
        work,
      );
    const snapshots = await asRetention(listed);
    const deps = {
      ebs: new EbsDirectGateway(
        recordCalls(new EBSClient({ region: REGION, endpoint: inject('awsEndpoint') })),
      ),
      sizes,
      clock: () => new Date(),
      runId: 'itest-costs-1',
      logger: silentLogger,
    };

    // Act
    const first = await asRetention(() =>
      measureSnapshotSizes(snapshots, { limit: 10, record: true }, deps),
    );
    const again = await measureSnapshotSizes(snapshots, { limit: 10, record: true }, deps);

    // Assess
    const [older, newer] = made;
    expect(first.measured.map((m) => [m.snapshotId, m.fullBytes, m.uniqueBytes])).toEqual([
      [older, 4 * MOTO_BLOCK, 4 * MOTO_BLOCK],
      [newer, 4 * MOTO_BLOCK, 2 * MOTO_BLOCK],
    ]);
    expect(first.measured.every((m) => m.fullFrom === 'blocks')).toBe(true);
    expect(again.measured).toEqual([]);
    const recorded = await sizes.recordedSizes(made);
    expect(recorded.get(newer ?? '')).toMatchObject({
      previousSnapshotId: older,
      uniqueBytes: 1024,
    });
    const ledger = costLedgerOf(
      snapshots,
      recorded,
      { instanceId: 'snapkeeper:instance-id', schedule: 'snapkeeper:schedule' },
      defaultPriceTable('us-east-1'),
      new Date(),
    );
    expect(ledger.byInstance['i-0costs']).toMatchObject({
      snapshots: 2,
      unmeasured: 0,
      fullBytes: 8 * MOTO_BLOCK,
      uniqueBytes: 6 * MOTO_BLOCK,
    });
    expect(ledger.byInstance['i-0costs']?.estimatedMonthlyCost).toBeGreaterThan(0);
  });

  it('skips a snapshot moto cannot list (made by CreateSnapshot) and says why, losing nothing else', async () => {
    // Prepare: an EC2-made snapshot is unknown to moto's EBS direct backend (HTTP 500).
    const ebs = new EbsDirectGateway(ebsClient);

    // Act
    const read = ebs.snapshotBytes('snap-0000000000000000f');

    // Assess
    await expect(read).rejects.toMatchObject({ action: 'ListSnapshotBlocks' });
  });

  it('the retention function measures in its scheduled run and reports what it could not (moto cannot read EC2-made snapshots)', async () => {
    // Prepare: an opted-in instance with an EC2-made managed snapshot.
    const fleet = await launchFleet(ec2Client, [
      { name: 'costs-1', tags: { 'snapkeeper:backup': 'daily' } },
    ]);
    const instance = fleet.get('costs-1');
    const root = instance?.volumes.find((v) => v.device === ROOT_DEVICE)?.volumeId ?? '';
    const made = await ec2Client.send(
      new CreateSnapshotCommand({
        VolumeId: root,
        TagSpecifications: [
          {
            ResourceType: 'snapshot',
            Tags: [
              { Key: 'snapkeeper:managed', Value: 'true' },
              { Key: 'snapkeeper:deployment', Value: DEPLOYMENT },
              { Key: 'snapkeeper:schedule', Value: 'daily' },
              { Key: 'snapkeeper:instance-id', Value: instance?.instanceId ?? '' },
            ],
          },
        ],
      }),
    );
    const { handler } = (await import('../../functions/retention.ts')) as unknown as {
      handler: (event: unknown, context: unknown) => Promise<RetentionReport>;
    };

    // Act
    const report = await handler({ schedule: 'daily' }, lambdaContext());

    // Assess: the direct-API snapshots are measured; the EC2-made one is named, and the
    // pass stopped there (HTTP 500 after the SDK's retries); the run itself is unharmed.
    expect(report.status).not.toBe('failed');
    expect(report.costs?.measured).toBeGreaterThan(0);
    expect(report.costs?.skipped?.map((s) => s.snapshotId)).toContain(made.SnapshotId);
    expect(report.costs?.warnings?.join(' ')).toContain('the rest is measured by the next runs');
    expect(report.costs).toMatchObject({
      currency: 'USD',
      priceTable: expect.stringContaining('aws-published:us-east-1'),
    });
  });

  it('the console report answers each instance with fullBytes, uniqueBytes and estimatedMonthlyCost, naming currency and price table', async () => {
    // Prepare
    const { handler } = (await import('../../functions/ops.ts')) as unknown as {
      handler: (event: unknown, context: unknown) => Promise<{ result: unknown }>;
    };

    // Act
    const answer = await handler({ action: 'report' }, lambdaContext());

    // Assess
    const result = answer.result as {
      instances: {
        instanceId: string;
        fullBytes: number;
        uniqueBytes: number;
        estimatedMonthlyCost: number;
      }[];
      costs: { currency: string; priceTable: string; priceSource: string };
    };
    expect(result.instances.length).toBeGreaterThan(0);
    for (const instance of result.instances) {
      expect(typeof instance.fullBytes).toBe('number');
      expect(typeof instance.uniqueBytes).toBe('number');
      expect(typeof instance.estimatedMonthlyCost).toBe('number');
    }
    expect(result.costs.currency).toBe('USD');
    expect(result.costs.priceTable).toContain('aws-published:us-east-1');
    expect(result.costs.priceSource).toContain('read 2026-12-06');
  });
});
