/**
 * The snapshot tier gateway against moto (ModifySnapshotTier, DescribeSnapshotTierStatus,
 * RestoreSnapshotTier, DescribeSnapshots' StorageTier), and the lock calls through the
 * fault proxy's lock emulator (moto lacks them; harness/snapshotLockCalls.ts).
 */
import { CreateSnapshotCommand, CreateVolumeCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../harness/faultProxy.ts';
import {
  type SnapshotLockEmulator,
  snapshotLockEmulator,
} from '../../harness/snapshotLockCalls.ts';
import { createEc2Client } from '../../lib/aws/clients.ts';
import { Ec2Gateway } from '../../lib/aws/Ec2Gateway.ts';
import { Ec2SnapshotTierGateway } from '../../lib/aws/Ec2SnapshotTierGateway.ts';
import { AwsCallError } from '../../lib/aws/errors.ts';

// This file's own region on the shared moto server.
const REGION = 'il-central-1';

describe('Integration: snapshot locks and tiers', () => {
  let proxy: FaultProxy;
  let emulator: SnapshotLockEmulator;
  let direct: EC2Client;
  let proxied: EC2Client;
  let tiers: Ec2SnapshotTierGateway;
  let ec2: Ec2Gateway;

  async function newSnapshot(): Promise<string> {
    const volume = await direct.send(
      new CreateVolumeCommand({ AvailabilityZone: `${REGION}a`, Size: 8 }),
    );
    const snapshot = await direct.send(new CreateSnapshotCommand({ VolumeId: volume.VolumeId }));
    return snapshot.SnapshotId as string;
  }

  beforeAll(async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'testing');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'testing');
    vi.stubEnv('AWS_SESSION_TOKEN', 'testing');
    const motoEndpoint = inject('awsEndpoint');
    proxy = await startFaultProxy({ target: motoEndpoint });
    emulator = snapshotLockEmulator();
    proxy.rules.add(emulator.rule);
    const settings = { region: REGION, maxAttempts: 2, requestTimeoutMs: 10_000 };
    direct = createEc2Client({ ...settings, endpoint: motoEndpoint });
    proxied = createEc2Client({ ...settings, endpoint: proxy.endpoint });
    tiers = new Ec2SnapshotTierGateway(proxied);
    ec2 = new Ec2Gateway(proxied, { snapshotRateRetryMs: 10, snapshotRateRetries: 1 });
  });

  afterAll(async () => {
    direct?.destroy();
    proxied?.destroy();
    await proxy?.stop();
    vi.unstubAllEnvs();
  });

  describe('the archive tier (moto)', () => {
    it('archives a snapshot; DescribeSnapshots and DescribeSnapshotTierStatus then say archive', async () => {
      // Prepare
      const snapshotId = await newSnapshot();

      // Act
      const { startedAt } = await tiers.archiveSnapshot(snapshotId);
      const [facts] = await ec2.describeSnapshotsByIds([snapshotId]);
      const status = (await tiers.tierStatuses([snapshotId])).get(snapshotId);

      // Assess
      expect(startedAt).toBeInstanceOf(Date);
      expect(facts?.storageTier).toBe('archive');
      expect(status).toMatchObject({ tier: 'archive', lastOperation: 'archival-completed' });
      expect(status?.lastTieringStartTime).toBeInstanceOf(Date);
    });

    it('restores an archived snapshot temporarily for N days, or for good', async () => {
      // Prepare
      const temporary = await newSnapshot();
      const permanent = await newSnapshot();
      await tiers.archiveSnapshot(temporary);
      await tiers.archiveSnapshot(permanent);

      // Act
      const restored = await tiers.restoreSnapshotTier(temporary, { kind: 'temporary', days: 3 });
      const kept = await tiers.restoreSnapshotTier(permanent, { kind: 'permanent' });
      const statuses = await tiers.tierStatuses([temporary, permanent]);

      // Assess
      expect(restored).toMatchObject({ snapshotId: temporary, permanent: false, days: 3 });
      expect(kept).toMatchObject({ snapshotId: permanent, permanent: true });
      expect(statuses.get(temporary)?.restoreExpiryTime).toBeInstanceOf(Date);
      expect(statuses.get(permanent)?.tier).toBe('standard');
    });

    it('reports a tier call on a snapshot that does not exist', async () => {
      const failure = await tiers
        .archiveSnapshot('snap-0123456789abcdef0')
        .catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({ action: 'ModifySnapshotTier' });
    });
  });

  describe('snapshot locks (the fault proxy answers as EC2)', () => {
    it('locks a snapshot, reads the lock back and refuses to delete it', async () => {
      // Prepare
      const snapshotId = await newSnapshot();

      // Act
      const locked = await tiers.lockSnapshot({ snapshotId, mode: 'governance', days: 30 });
      const read = await tiers.lockedSnapshots([snapshotId, 'snap-00000000000000000']);
      const deletion = await ec2.deleteSnapshot(snapshotId).catch((e: unknown) => e);

      // Assess
      expect(locked).toMatchObject({ snapshotId, state: 'governance' });
      expect([...read.keys()]).toEqual([snapshotId]);
      expect(read.get(snapshotId)?.expiresOn?.getTime()).toBe(locked.expiresOn?.getTime());
      expect(deletion).toMatchObject({ action: 'DeleteSnapshot', code: 'SnapshotLocked' });
    });

    it('starts a compliance lock in its cool-off', async () => {
      // Prepare
      const snapshotId = await newSnapshot();

      // Act
      const locked = await tiers.lockSnapshot({ snapshotId, mode: 'compliance', days: 1 });

      // Assess
      expect(locked.state).toBe('compliance-cooloff');
      expect(emulator.locks.get(snapshotId)?.coolOffHours).toBe(24);
    });

    it('answers a refused lock with EC2 error', async () => {
      // Prepare
      const snapshotId = await newSnapshot();
      emulator.refuse.add(snapshotId);

      // Act
      const failure = await tiers
        .lockSnapshot({ snapshotId, mode: 'governance', days: 1 })
        .catch((e: unknown) => e);

      // Assess
      expect(failure).toMatchObject({ action: 'LockSnapshot', code: 'InvalidSnapshot.NotFound' });
    });
  });
});
