import { randomUUID } from 'node:crypto';
import { DescribeSnapshotsCommand, type EC2Client, type Snapshot } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { ssmScriptAnswers, ssmUnmanaged } from '../../harness/consistencyFaults.ts';
import { type FaultProxy, startFaultProxy } from '../../harness/faultProxy.ts';
import { type LaunchedInstance, launchInstance } from '../../harness/localFleet.ts';
import { clientSettings, createEc2Client } from '../../lib/aws/clients.ts';
import { Ec2Gateway } from '../../lib/aws/Ec2Gateway.ts';
import { SsmGateway } from '../../lib/aws/SsmGateway.ts';
import type { SnapshotSetRequest } from '../../lib/domain/backupPlan.ts';
import { chooseConsistency } from '../../lib/domain/consistency.ts';
import { tagKeys } from '../../lib/domain/tagKeys.ts';
import { takeConsistentSet } from '../../lib/jobs/consistentSnapshotSet.ts';
import { silentLogger } from '../../lib/jobs/runReport.ts';

// This file's own region on the shared moto server.
const REGION = 'ap-southeast-5';
const KEYS = tagKeys();

function requestFor(instance: LaunchedInstance, runId: string): SnapshotSetRequest {
  const volumes = instance.volumes.map((v) => ({ volumeId: v.volumeId, deviceName: v.device }));
  return {
    instanceId: instance.instanceId,
    excludeBootVolume: false,
    excludeDataVolumeIds: [],
    included: volumes,
    excluded: [],
    description: `snapkeeper consistency test ${runId}`,
    tags: [
      { Key: KEYS.managed, Value: 'true' },
      { Key: KEYS.runId, Value: runId },
      { Key: KEYS.instanceId, Value: instance.instanceId },
    ],
  };
}

function tagValue(snapshot: Snapshot, key: string): string | undefined {
  return snapshot.Tags?.find((t) => t.Key === key)?.Value;
}

describe('Integration: consistent snapshot sets through Run Command (moto + fault proxy)', () => {
  let proxy: FaultProxy;
  let direct: EC2Client;
  let ssmClient: SSMClient;
  let ssm: SsmGateway;
  let ec2: Ec2Gateway;
  let db: LaunchedInstance;

  const snapshotsOfRun = async (runId: string): Promise<Snapshot[]> =>
    (
      await direct.send(
        new DescribeSnapshotsCommand({
          OwnerIds: ['self'],
          Filters: [{ Name: `tag:${KEYS.runId}`, Values: [runId] }],
        }),
      )
    ).Snapshots ?? [];

  const take = (value: string, runId: string, timeoutSeconds = 2) =>
    takeConsistentSet(
      requestFor(db, runId),
      chooseConsistency({ [KEYS.consistency]: value }, KEYS.consistency, undefined),
      (r) => ec2.createSnapshotSet(r),
      {
        ssm,
        keys: KEYS,
        logger: silentLogger,
        timeoutSeconds,
        pollMs: 100,
        fsfreezeDocument: 'snapkeeper-fsfreeze-test',
      },
    );

  beforeAll(async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'testing');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'testing');
    const moto = inject('awsEndpoint');
    proxy = await startFaultProxy({ target: moto });
    direct = createEc2Client({
      region: REGION,
      maxAttempts: 3,
      requestTimeoutMs: 30_000,
      endpoint: moto,
    });
    ec2 = new Ec2Gateway(direct);
    ssmClient = new SSMClient(
      clientSettings({
        region: REGION,
        maxAttempts: 1,
        requestTimeoutMs: 10_000,
        endpoint: proxy.endpoint,
      }),
    );
    ssm = new SsmGateway(ssmClient);
    db = await launchInstance(direct, {
      name: 'consistency-db-1',
      dataVolumes: [{ device: '/dev/sdf', sizeGiB: 10 }],
    });
  });

  afterAll(async () => {
    ssmClient?.destroy();
    direct?.destroy();
    await proxy?.stop();
    vi.unstubAllEnvs();
  });

  beforeEach(() => {
    proxy.rules.clear();
    proxy.resetStats();
  });

  it('makes an app set: pre script, CreateSnapshots tagged app, post script (moto answers Success)', async () => {
    const runId = `consistency-app-${randomUUID().slice(0, 8)}`;
    const result = await take('fsfreeze', runId);
    expect(result.kind).toBe('created');
    expect(result.consistency).toMatchObject({ outcome: 'app', problems: [] });
    expect(result.consistency.pre?.state).toBe('success');
    expect(result.consistency.post?.state).toBe('success');
    expect(proxy.calls('SendCommand')).toBe(2);
    const made = await snapshotsOfRun(runId);
    expect(made).toHaveLength(2);
    for (const snapshot of made) expect(tagValue(snapshot, KEYS.consistency)).toBe('app');
  });

  it('falls back to crash-consistent when SSM answers InvalidInstanceId (unmanaged), and says so on the snapshots', async () => {
    proxy.rules.add(ssmUnmanaged([db.instanceId]));
    const runId = `consistency-unmanaged-${randomUUID().slice(0, 8)}`;
    const result = await take('fsfreeze', runId);
    expect(result.consistency.outcome).toBe('crash-fallback');
    expect(proxy.faults('SendCommand')).toBe(1);
    const made = await snapshotsOfRun(runId);
    expect(made).toHaveLength(2);
    for (const snapshot of made) {
      expect(tagValue(snapshot, KEYS.consistency)).toBe('crash-fallback');
      expect(tagValue(snapshot, KEYS.consistencyReason)).toContain(
        'not managed by Systems Manager',
      );
    }
  });

  it('falls back when the pre script fails, and still sends the post script', async () => {
    proxy.rules.add(ssmScriptAnswers([db.instanceId], 'Failed'));
    const runId = `consistency-fails-${randomUUID().slice(0, 8)}`;
    const result = await take('ssm:db-flush', runId);
    expect(result.consistency.outcome).toBe('crash-fallback');
    expect(result.consistency.reason).toContain('the script exited 1');
    expect(proxy.calls('SendCommand')).toBe(2);
    expect(result.consistency.problems.some((p) => p.includes('post script db-flush failed'))).toBe(
      true,
    );
  });

  it('falls back when the pre script hangs past the timeout', async () => {
    proxy.rules.add(ssmScriptAnswers([db.instanceId], 'InProgress'));
    const runId = `consistency-hangs-${randomUUID().slice(0, 8)}`;
    const started = Date.now();
    const result = await take('fsfreeze', runId, 1);
    expect(result.consistency.outcome).toBe('crash-fallback');
    expect(result.consistency.pre?.state).toBe('timed-out');
    // The pre wait and the post wait, each bounded by the 1 s timeout.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await snapshotsOfRun(runId)).length).toBe(2);
  });

  it('makes no set with "!" when the instance is unmanaged: skipped and reported', async () => {
    proxy.rules.add(ssmUnmanaged([db.instanceId]));
    const runId = `consistency-strict-${randomUUID().slice(0, 8)}`;
    const result = await take('fsfreeze!', runId);
    expect(result.kind).toBe('skipped');
    expect(await snapshotsOfRun(runId)).toHaveLength(0);
  });
});
