/**
 * `vss` sets against moto (issue 21, part 1): SendCommand of AWSEC2-CreateVssSnapshot and
 * GetCommandInvocation go to moto (through the fault proxy); moto answers Success but
 * runs no document, so `vssDocumentMakesSnapshots` (harness) makes the tagged set the
 * document would make, from the `tags` parameter snapkeeper passes. The set is then found
 * by its tags through the real DescribeSnapshots.
 */
import { randomUUID } from 'node:crypto';
import { DescribeSnapshotsCommand, type EC2Client, type Snapshot } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import {
  ssmScriptAnswers,
  ssmUnmanaged,
  vssDocumentMakesSnapshots,
} from '../../harness/consistencyFaults.ts';
import { type FaultProxy, startFaultProxy } from '../../harness/faultProxy.ts';
import { type LaunchedInstance, launchInstance } from '../../harness/localFleet.ts';
import { clientSettings, createEc2Client } from '../../lib/aws/clients.ts';
import { Ec2Gateway } from '../../lib/aws/Ec2Gateway.ts';
import { SsmGateway } from '../../lib/aws/SsmGateway.ts';
import type { SnapshotSetRequest } from '../../lib/domain/backupPlan.ts';
import { chooseConsistency } from '../../lib/domain/consistency.ts';
import { tagKeys } from '../../lib/domain/tagKeys.ts';
import { silentLogger } from '../../lib/jobs/runReport.ts';
import { findVssSet, takeVssSet } from '../../lib/jobs/vssSnapshotSet.ts';

// This file's own region on the shared moto server.
const REGION = 'ap-southeast-1';
const KEYS = tagKeys();

function requestFor(instance: LaunchedInstance, slot: string): SnapshotSetRequest {
  const volumes = instance.volumes.map((v) => ({ volumeId: v.volumeId, deviceName: v.device }));
  return {
    instanceId: instance.instanceId,
    excludeBootVolume: false,
    excludeDataVolumeIds: [],
    included: volumes,
    excluded: [],
    description: `snapkeeper vss test ${slot}`,
    tags: [
      { Key: KEYS.managed, Value: 'true' },
      { Key: KEYS.deployment, Value: 'itest' },
      { Key: KEYS.schedule, Value: 'daily' },
      { Key: KEYS.slot, Value: slot },
      { Key: KEYS.instanceId, Value: instance.instanceId },
      { Key: KEYS.runId, Value: `run-${slot}` },
      { Key: KEYS.retain, Value: '7' },
    ],
  };
}

const tagValue = (snapshot: Snapshot, key: string) =>
  snapshot.Tags?.find((t) => t.Key === key)?.Value;

describe('Integration: vss sets through AWSEC2-CreateVssSnapshot (moto + a document stub)', () => {
  let proxy: FaultProxy;
  let direct: EC2Client;
  let ssmClient: SSMClient;
  let ec2: Ec2Gateway;
  let ssm: ReturnType<typeof vssDocumentMakesSnapshots>;
  let win: LaunchedInstance;

  const snapshotsOfSlot = async (slot: string): Promise<Snapshot[]> =>
    (
      await direct.send(
        new DescribeSnapshotsCommand({
          OwnerIds: ['self'],
          Filters: [{ Name: `tag:${KEYS.slot}`, Values: [slot] }],
        }),
      )
    ).Snapshots ?? [];

  const take = (value: string, slot: string) =>
    takeVssSet(
      requestFor(win, slot),
      chooseConsistency({ [KEYS.consistency]: value }, KEYS.consistency, undefined),
      (r) => ec2.createSnapshotSet(r),
      (r, patient) =>
        findVssSet(r, patient, {
          keys: KEYS,
          ec2,
          waitsMs: [200, 400],
          sleep: (ms) => new Promise((res) => setTimeout(res, ms)),
          timeLeftMs: () => 600_000,
        }),
      { ssm, keys: KEYS, logger: silentLogger, vssTimeoutSeconds: 2, pollMs: 100 },
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
    ssm = vssDocumentMakesSnapshots(new SsmGateway(ssmClient), direct);
    win = await launchInstance(direct, {
      name: 'vss-sql-1',
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

  it('sends the document with snapkeeper’s tags and finds the set it made, tagged app', async () => {
    const slot = `2026-12-06T03:${randomUUID().slice(0, 4)}`;
    const before = ssm.made();
    const result = await take('vss', slot);
    expect(result.kind).toBe('created');
    expect(result.consistency).toMatchObject({ outcome: 'app', problems: [] });
    expect(result.consistency.pre?.state).toBe('success');
    expect(proxy.calls('SendCommand')).toBe(1);
    expect(ssm.made()).toBe(before + 1);
    const made = await snapshotsOfSlot(slot);
    expect(made).toHaveLength(2);
    expect(result.kind === 'created' && result.value.map((s) => s.snapshotId).sort()).toEqual(
      made.map((s) => s.SnapshotId).sort(),
    );
    for (const s of made) {
      expect(tagValue(s, KEYS.consistency)).toBe('app');
      expect(tagValue(s, KEYS.runId)).toBe(`run-${slot}`);
      expect(tagValue(s, KEYS.retain)).toBe('7');
    }
  });

  it('keeps one set per slot: a retried slot finds the set and sends nothing', async () => {
    const slot = `2026-12-06T04:${randomUUID().slice(0, 4)}`;
    await take('vss', slot);
    proxy.resetStats();
    const again = await take('vss', slot);
    expect(again.kind).toBe('created');
    expect(again.consistency.outcome).toBe('app');
    expect(proxy.calls('SendCommand')).toBe(0);
    expect(await snapshotsOfSlot(slot)).toHaveLength(2);
  });

  it('falls back to a crash-consistent CreateSnapshots set, reported, when the instance is unmanaged', async () => {
    proxy.rules.add(ssmUnmanaged([win.instanceId]));
    const slot = `2026-12-06T05:${randomUUID().slice(0, 4)}`;
    const result = await take('vss', slot);
    expect(result.consistency.outcome).toBe('crash-fallback');
    expect(result.consistency.reason).toContain('not managed by Systems Manager');
    const made = await snapshotsOfSlot(slot);
    expect(made).toHaveLength(2);
    for (const s of made) expect(tagValue(s, KEYS.consistency)).toBe('crash-fallback');
  });

  it('skips with vss!, making no set, when the instance is unmanaged', async () => {
    proxy.rules.add(ssmUnmanaged([win.instanceId]));
    const slot = `2026-12-06T06:${randomUUID().slice(0, 4)}`;
    const result = await take('vss!', slot);
    expect(result.kind).toBe('skipped');
    expect(await snapshotsOfSlot(slot)).toHaveLength(0);
  });

  it('keeps, and reports, a set the document made although it answered Failed', async () => {
    proxy.rules.add(ssmScriptAnswers([win.instanceId], 'Failed'));
    const slot = `2026-12-06T07:${randomUUID().slice(0, 4)}`;
    const result = await take('vss', slot);
    expect(result.kind).toBe('created');
    expect(result.consistency.pre?.state).toBe('failed');
    expect(result.consistency.problems.join()).toContain('yet made this set');
    expect(await snapshotsOfSlot(slot)).toHaveLength(2);
  });
});
