import { randomUUID } from 'node:crypto';
import { DescribeSnapshotsCommand, type EC2Client, type Snapshot } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import {
  always,
  awsError,
  type FaultProxy,
  firstCalls,
  hang,
  startFaultProxy,
  withProbability,
} from '../../harness/faultProxy.ts';
import { type LaunchedInstance, launchFleet, launchInstance } from '../../harness/localFleet.ts';
import { createEc2Client } from '../../lib/aws/clients.ts';
import { Ec2Gateway } from '../../lib/aws/Ec2Gateway.ts';
import {
  AwsCallError,
  ConcurrentSnapshotLimitError,
  SnapshotRateDeferredError,
} from '../../lib/aws/errors.ts';
import type { SnapkeeperConfig } from '../../lib/config/environment.ts';
import type { SnapshotSetRequest } from '../../lib/domain/backupPlan.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../lib/domain/schedules.ts';
import { tagKeys } from '../../lib/domain/tagKeys.ts';
import { runBackupJob } from '../../lib/jobs/backupJob.ts';
import { silentLogger } from '../../lib/jobs/runReport.ts';

// This file's own region on the shared moto server.
const REGION = 'ap-southeast-2';
const KEYS = tagKeys();
const throttled = () => awsError('RequestLimitExceeded', 503, 'Request limit exceeded.');

/** A CreateSnapshots request for an instance, all volumes but `excludeDataVolumeIds`. */
function snapshotSetRequest(
  instance: LaunchedInstance,
  runId: string,
  excludeDataVolumeIds: readonly string[] = [],
): SnapshotSetRequest {
  const volumes = instance.volumes.map((v) => ({ volumeId: v.volumeId, deviceName: v.device }));
  return {
    instanceId: instance.instanceId,
    excludeBootVolume: false,
    excludeDataVolumeIds,
    included: volumes.filter((v) => !excludeDataVolumeIds.includes(v.volumeId)),
    excluded: volumes
      .filter((v) => excludeDataVolumeIds.includes(v.volumeId))
      .map((volume) => ({ volume, reason: 'volume tagged snapkeeper:skip=true' })),
    description: `snapkeeper test ${runId}`,
    tags: [
      { Key: KEYS.runId, Value: runId },
      { Key: KEYS.instanceId, Value: instance.instanceId },
    ],
  };
}

/** Snapshots in moto (read directly, not through the proxy) made by one run. */
async function snapshotsOfRun(ec2: EC2Client, runId: string): Promise<Snapshot[]> {
  const response = await ec2.send(
    new DescribeSnapshotsCommand({
      OwnerIds: ['self'],
      Filters: [{ Name: `tag:${KEYS.runId}`, Values: [runId] }],
    }),
  );
  return response.Snapshots ?? [];
}

function tagValue(snapshot: Snapshot, key: string): string | undefined {
  return snapshot.Tags?.find((t) => t.Key === key)?.Value;
}

const newRunId = (label: string) => `ec2retries-${label}-${randomUUID().slice(0, 8)}`;

describe('Integration: EC2 retries through the fault proxy', () => {
  let proxy: FaultProxy;
  /** Straight to moto: set-up and checks, never faulted. */
  let direct: EC2Client;
  let web: LaunchedInstance;
  const clients: EC2Client[] = [];

  const proxiedClient = (maxAttempts: number, requestTimeoutMs: number): EC2Client => {
    const client = createEc2Client({
      region: REGION,
      maxAttempts,
      requestTimeoutMs,
      endpoint: proxy.endpoint,
    });
    clients.push(client);
    return client;
  };
  const gatewayOf = (client: EC2Client, snapshotRateRetries = 2) =>
    new Ec2Gateway(client, { snapshotRateRetryMs: 10, snapshotRateRetries });

  beforeAll(async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'testing');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'testing');
    vi.stubEnv('AWS_SESSION_TOKEN', 'testing');
    const motoEndpoint = inject('awsEndpoint');
    proxy = await startFaultProxy({ target: motoEndpoint });
    direct = createEc2Client({
      region: REGION,
      maxAttempts: 3,
      requestTimeoutMs: 30_000,
      endpoint: motoEndpoint,
    });
    web = await launchInstance(direct, {
      name: 'retries-web-1',
      dataVolumes: [
        { device: '/dev/sdf', sizeGiB: 10 },
        { device: '/dev/sdg', sizeGiB: 20 },
      ],
    });
  });

  afterAll(async () => {
    for (const client of clients) client.destroy();
    direct?.destroy();
    await proxy?.stop();
    vi.unstubAllEnvs();
  });

  beforeEach(() => {
    proxy.rules.clear();
    proxy.resetStats();
  });

  describe('Method: createSnapshotSet', () => {
    it('makes the set after the SDK retries RequestLimitExceeded (HTTP 503) twice', async () => {
      // Prepare
      const gateway = gatewayOf(proxiedClient(3, 10_000));
      const runId = newRunId('throttle');
      proxy.rules.add({ action: 'CreateSnapshots', decide: firstCalls(2, throttled()) });

      // Act
      const created = await gateway.createSnapshotSet(snapshotSetRequest(web, runId));

      // Assess
      expect(proxy.calls('CreateSnapshots')).toBe(3);
      expect(proxy.faults('CreateSnapshots')).toBe(2);
      expect(created.map((s) => s.volumeId).sort()).toEqual(
        web.volumes.map((v) => v.volumeId).sort(),
      );
      expect(await snapshotsOfRun(direct, runId)).toHaveLength(web.volumes.length);
    });

    it('fails with an AwsCallError naming RequestLimitExceeded when every attempt is throttled', async () => {
      // Prepare
      const gateway = gatewayOf(proxiedClient(2, 10_000));
      const runId = newRunId('throttle-always');
      proxy.rules.add({ action: 'CreateSnapshots', decide: always(throttled()) });

      // Act
      const attempt = gateway.createSnapshotSet(snapshotSetRequest(web, runId));

      // Assess
      await expect(attempt).rejects.toSatisfy(
        (error) =>
          error instanceof AwsCallError &&
          error.code === 'RequestLimitExceeded' &&
          error.httpStatus === 503 &&
          error.message.startsWith('CreateSnapshots failed: RequestLimitExceeded'),
      );
      expect(proxy.calls('CreateSnapshots')).toBe(2);
      expect(await snapshotsOfRun(direct, runId)).toHaveLength(0);
    });

    it('makes the set after the SDK retries an HTTP 500 InternalError', async () => {
      // Prepare
      const gateway = gatewayOf(proxiedClient(3, 10_000));
      const runId = newRunId('internal');
      proxy.rules.add({
        action: 'CreateSnapshots',
        decide: firstCalls(1, awsError('InternalError', 500, 'An internal error has occurred.')),
      });

      // Act
      const created = await gateway.createSnapshotSet(snapshotSetRequest(web, runId));

      // Assess
      expect(proxy.calls('CreateSnapshots')).toBe(2);
      expect(created).toHaveLength(web.volumes.length);
      expect(await snapshotsOfRun(direct, runId)).toHaveLength(web.volumes.length);
    });

    it('retries SnapshotCreationPerVolumeRateExceeded (HTTP 400) itself after its pause', async () => {
      // Prepare
      const sleeps: number[] = [];
      const gateway = new Ec2Gateway(proxiedClient(3, 10_000), {
        snapshotRateRetryMs: 10,
        sleep: async (ms) => {
          sleeps.push(ms);
        },
      });
      const runId = newRunId('rate-once');
      proxy.rules.add({
        action: 'CreateSnapshots',
        decide: firstCalls(1, awsError('SnapshotCreationPerVolumeRateExceeded', 400)),
      });

      // Act
      const created = await gateway.createSnapshotSet(snapshotSetRequest(web, runId));

      // Assess
      expect(proxy.calls('CreateSnapshots')).toBe(2);
      expect(sleeps).toEqual([10]);
      expect(created).toHaveLength(web.volumes.length);
      expect(await snapshotsOfRun(direct, runId)).toHaveLength(web.volumes.length);
    });

    it('defers with SnapshotRateDeferredError when the per-volume rate error outlasts its retries', async () => {
      // Prepare
      const gateway = gatewayOf(proxiedClient(3, 10_000), 2);
      const runId = newRunId('rate-always');
      proxy.rules.add({
        action: 'CreateSnapshots',
        decide: always(awsError('SnapshotCreationPerVolumeRateExceeded', 400)),
      });

      // Act
      const attempt = gateway.createSnapshotSet(snapshotSetRequest(web, runId));

      // Assess
      await expect(attempt).rejects.toThrow(SnapshotRateDeferredError);
      await expect(attempt).rejects.toThrow(
        `CreateSnapshots failed: SnapshotCreationPerVolumeRateExceeded: per-volume snapshot rate limit for ${web.instanceId} still exceeded after 3 attempts; deferred to the next run`,
      );
      // 400 is not retried by the SDK: one call per gateway attempt.
      expect(proxy.calls('CreateSnapshots')).toBe(3);
      expect(await snapshotsOfRun(direct, runId)).toHaveLength(0);
    });

    it('gives up at once on ConcurrentSnapshotLimitExceeded with ConcurrentSnapshotLimitError', async () => {
      // Prepare
      const gateway = gatewayOf(proxiedClient(3, 10_000));
      const runId = newRunId('concurrent');
      proxy.rules.add({
        action: 'CreateSnapshots',
        decide: always(awsError('ConcurrentSnapshotLimitExceeded', 400)),
      });

      // Act
      const attempt = gateway.createSnapshotSet(snapshotSetRequest(web, runId));

      // Assess
      await expect(attempt).rejects.toThrow(ConcurrentSnapshotLimitError);
      await expect(attempt).rejects.toMatchObject({
        code: 'ConcurrentSnapshotLimitExceeded',
        action: 'CreateSnapshots',
      });
      expect(proxy.calls('CreateSnapshots')).toBe(1);
    });

    it('retries a call that hangs past the client request timeout, before the hang ends', async () => {
      // Prepare
      const gateway = gatewayOf(proxiedClient(3, 1_000));
      const runId = newRunId('hang-once');
      proxy.rules.add({ action: 'CreateSnapshots', decide: firstCalls(1, hang(3_000)) });
      const started = Date.now();

      // Act
      const created = await gateway.createSnapshotSet(snapshotSetRequest(web, runId));

      // Assess
      const elapsed = Date.now() - started;
      expect(proxy.requests('CreateSnapshots').map((r) => r.outcome)).toEqual([
        'hang',
        'forwarded',
      ]);
      // The client's 1 s timeout, not the proxy closing the hung call at 3 s, set off the retry.
      expect(elapsed, 'requestTimeoutMs (1 s) should cut the hung first attempt').toBeLessThan(
        2_500,
      );
      expect(created).toHaveLength(web.volumes.length);
      expect(await snapshotsOfRun(direct, runId)).toHaveLength(web.volumes.length);
    });

    it('fails within a bounded time when every attempt hangs', async () => {
      // Prepare
      const gateway = gatewayOf(proxiedClient(2, 1_000));
      const runId = newRunId('hang-always');
      proxy.rules.add({ action: 'CreateSnapshots', decide: always(hang(6_000)) });
      const started = Date.now();

      // Act
      const outcome = await gateway.createSnapshotSet(snapshotSetRequest(web, runId)).then(
        () => undefined,
        (error: unknown) => error,
      );

      // Assess
      const elapsed = Date.now() - started;
      expect(outcome).toBeInstanceOf(AwsCallError);
      expect(outcome).toMatchObject({ action: 'CreateSnapshots', code: 'TimeoutError' });
      expect(proxy.calls('CreateSnapshots')).toBe(2);
      // Two attempts of 1 s each and a short back-off; the proxy would hold each for 6 s.
      expect(elapsed, 'requestTimeoutMs (1 s) should cut each hung attempt').toBeLessThan(4_000);
      expect(await snapshotsOfRun(direct, runId)).toHaveLength(0);
    });

    it('sends the skipped data volume in InstanceSpecification.ExcludeDataVolumeId.1', async () => {
      // Prepare
      const gateway = gatewayOf(proxiedClient(3, 10_000));
      const runId = newRunId('exclude');
      const skipped = web.volumes.find((v) => v.device === '/dev/sdg');
      if (!skipped) throw new Error('web has no /dev/sdg');

      // Act
      await gateway.createSnapshotSet(snapshotSetRequest(web, runId, [skipped.volumeId]));

      // Assess
      const [sent] = proxy.requests('CreateSnapshots');
      // EC2's query name of the list member is singular (the SDK's xmlName), not ...Ids.N.
      expect(sent?.params).toMatchObject({
        'InstanceSpecification.InstanceId': web.instanceId,
        'InstanceSpecification.ExcludeBootVolume': 'false',
        'InstanceSpecification.ExcludeDataVolumeId.1': skipped.volumeId,
      });
      expect(
        Object.keys(sent?.params ?? {}).filter((k) => k.includes('ExcludeDataVolume')),
      ).toEqual(['InstanceSpecification.ExcludeDataVolumeId.1']);
    });
  });

  describe('Method: listInstancesWithTagKey', () => {
    it('lists the tagged instances after DescribeInstances is throttled twice', async () => {
      // Prepare
      const tagKey = `ec2retries-list-${Date.now()}`;
      const tagged = await launchFleet(direct, [
        { name: 'list-1', tags: { [tagKey]: 'yes' } },
        { name: 'list-2', tags: { [tagKey]: 'yes' }, state: 'stopped' },
      ]);
      const gateway = gatewayOf(proxiedClient(3, 10_000));
      proxy.rules.add({ action: 'DescribeInstances', decide: firstCalls(2, throttled()) });

      // Act
      const listed = [];
      for await (const instance of gateway.listInstancesWithTagKey(tagKey)) listed.push(instance);

      // Assess
      expect(proxy.calls('DescribeInstances')).toBe(3);
      expect(proxy.faults('DescribeInstances')).toBe(2);
      expect(listed.map((i) => i.instanceId).sort()).toEqual(
        [...tagged.values()].map((i) => i.instanceId).sort(),
      );
      expect(listed.map((i) => i.state).sort()).toEqual(['running', 'stopped']);
    });
  });

  describe('Job: runBackupJob', () => {
    it('backs every due instance up exactly once while 30% of EC2 calls are throttled', async () => {
      // Prepare
      const fleet = await launchFleet(direct, [
        ...Array.from({ length: 5 }, (_, i) => ({
          name: `job-${i + 1}`,
          tags: { [KEYS.backup]: 'true' },
          dataVolumes: [{ device: '/dev/sdf', sizeGiB: 5 + i }],
        })),
        { name: 'job-weekly', tags: { [KEYS.backup]: 'weekly' } },
      ]);
      const due = [...fleet.values()].filter((i) => i.name !== 'job-weekly');
      const runId = newRunId('job');
      const config: Pick<
        SnapkeeperConfig,
        'deployment' | 'keys' | 'catalog' | 'copyTags' | 'backupConcurrency'
      > = {
        deployment: 'itest-retries',
        keys: KEYS,
        catalog: parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily'),
        copyTags: [],
        backupConcurrency: 4,
      };
      const gateway = gatewayOf(proxiedClient(8, 10_000));
      // Seed 9 throttles, in call order: F.F...F.F.. (DescribeInstances once, DescribeVolumes
      // once, then two of the CreateSnapshots calls, whichever arrive third and fifth).
      proxy.rules.add({ name: 'throttle 30%', decide: withProbability(0.3, 9, throttled()) });

      // Act
      const report = await runBackupJob(
        { schedule: 'daily', dryRun: false, trigger: 'schedule' },
        {
          ec2: gateway,
          config: { ...config, manualRetainDays: 30 },
          clock: () => new Date(),
          runId,
          logger: silentLogger,
        },
      );

      // Assess
      expect(report.status).toBe('succeeded');
      expect(report.counts).toEqual({
        due: 5,
        backedUp: 5,
        skipped: 0,
        failed: 0,
        snapshots: 10,
        covered: 0,
        deferred: 0,
        duplicatesRemoved: 0,
      });
      const snapshots = await snapshotsOfRun(direct, runId);
      for (const instance of due) {
        const own = snapshots.filter((s) => tagValue(s, KEYS.instanceId) === instance.instanceId);
        expect(own.map((s) => s.VolumeId).sort()).toEqual(
          instance.volumes.map((v) => v.volumeId).sort(),
        );
      }
      expect(snapshots).toHaveLength(10);
      // Every action was throttled, and every fault was retried into exactly one more call.
      // DescribeInstances twice: the due instances, and every tagged instance once more for
      // near-miss tag keys (issue 15, defect 12).
      for (const [action, needed] of [
        ['DescribeInstances', 2],
        ['DescribeVolumes', 1],
        ['CreateSnapshots', 5],
      ] as const) {
        expect(proxy.faults(action), action).toBeGreaterThan(0);
        expect(proxy.calls(action), action).toBe(needed + proxy.faults(action));
      }
      expect(proxy.requests().filter((r) => r.outcome === 'forwarded')).toHaveLength(
        proxy.calls() - proxy.faults(),
      );
    });
  });
});
