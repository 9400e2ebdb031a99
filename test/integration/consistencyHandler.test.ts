/**
 * The backup and console handlers with application-consistent sets (issue 21, part 1),
 * against moto behind a fault proxy: moto runs every Run Command with `Success`, so the
 * proxy makes db-2 and db-3 unmanaged (SendCommand answers `InvalidInstanceId`, as AWS
 * does for an instance without the SSM agent or its instance profile). The calls made
 * here are recorded for the IAM simulation (test/iam).
 */
import { readFileSync } from 'node:fs';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ssmUnmanaged } from '../../harness/consistencyFaults.ts';
import type { FaultProxy } from '../../harness/faultProxy.ts';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet } from '../../harness/localFleet.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import { snapshotsTagged, tagsOf, useFaultProxiedAws } from '../support/localEnvironment.ts';

// This file's own region on the shared moto server.
const REGION = 'ap-southeast-7';
const KEY = 'snapkeeper:consistency';
const event = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../../events/${name}`, import.meta.url), 'utf8'));
type Handler = (event: unknown, context: unknown) => Promise<Record<string, unknown>>;

describe('Handlers: backup and the console report with snapkeeper:consistency (moto + fault proxy)', () => {
  let proxy: FaultProxy;
  let ec2: EC2Client;
  let fleet: Map<string, LaunchedInstance>;
  let backup: Handler;
  let ops: Handler;
  const id = (name: string) => fleet.get(name)?.instanceId ?? '';

  beforeAll(async () => {
    ({ proxy, ec2 } = await useFaultProxiedAws(inject('awsEndpoint'), REGION, {
      DEPLOYMENT: 'itest',
      CONSISTENCY_TIMEOUT_SECONDS: '5',
      CONSISTENCY_FSFREEZE_DOCUMENT: 'snapkeeper-fsfreeze-itest',
    }));
    fleet = await launchFleet(ec2, [
      {
        name: 'db-1',
        tags: { 'snapkeeper:backup': 'daily', [KEY]: 'fsfreeze' },
        dataVolumes: [{ device: '/dev/sdf', sizeGiB: 10 }],
      },
      { name: 'db-2', tags: { 'snapkeeper:backup': 'daily', [KEY]: 'fsfreeze' } },
      { name: 'db-3', tags: { 'snapkeeper:backup': 'daily', [KEY]: 'fsfreeze!' } },
      { name: 'web-1', tags: { 'snapkeeper:backup': 'daily' } },
    ]);
    proxy.rules.add(ssmUnmanaged([id('db-2'), id('db-3')]));
    backup = ((await import('../../functions/backup.ts')) as unknown as { handler: Handler })
      .handler;
    ops = ((await import('../../functions/ops.ts')) as unknown as { handler: Handler }).handler;
  });

  afterAll(async () => {
    ec2?.destroy();
    await proxy?.stop();
  });

  it('makes db-1 app-consistent, db-2 crash-fallback with the reason, skips db-3 (!), leaves web-1 alone', async () => {
    const report = (await backup(
      event('backup-daily.json'),
      lambdaContext(),
    )) as unknown as BackupReport;
    const byName = new Map(report.instances.map((r) => [r.name, r]));
    expect(byName.get('db-1')?.consistency).toMatchObject({
      outcome: 'app',
      requested: 'fsfreeze',
    });
    expect(byName.get('db-1')?.consistency?.post?.state).toBe('success');
    expect(byName.get('db-2')?.consistency?.outcome).toBe('crash-fallback');
    expect(byName.get('db-2')?.consistency?.reason).toContain('not managed by Systems Manager');
    expect(byName.get('db-3')).toMatchObject({
      outcome: 'skipped',
      error: { code: 'ConsistencyUnavailable' },
    });
    expect(byName.get('web-1')).not.toHaveProperty('consistency');
    expect(report.counts).toMatchObject({
      backedUp: 3,
      appConsistent: 1,
      crashFallback: 1,
      consistencySkipped: 1,
    });
    expect(report.status).toBe('partial');
    // Run Command: db-1's pre and post; db-2's and db-3's pre, refused.
    expect(proxy.calls('SendCommand')).toBe(4);
    expect(proxy.faults('SendCommand')).toBe(2);

    const app = await snapshotsTagged(ec2, KEY, 'app');
    expect(new Set(app.map((s) => tagsOf(s)['snapkeeper:instance-id']))).toEqual(
      new Set([id('db-1')]),
    );
    expect(app).toHaveLength(2);
    const fallback = await snapshotsTagged(ec2, KEY, 'crash-fallback');
    expect(fallback.map((s) => tagsOf(s)['snapkeeper:instance-id'])).toEqual([id('db-2')]);
    expect(tagsOf(fallback[0] ?? {})['snapkeeper:consistency-reason']).toContain(
      'InvalidInstanceId',
    );
    expect(
      (await snapshotsTagged(ec2, 'snapkeeper:instance-id', id('db-3'))).filter(
        (s) => tagsOf(s)['snapkeeper:managed'] === 'true',
      ),
    ).toHaveLength(0);
  });

  it('answers the console report with each instance’s newest application-consistent point', async () => {
    const answer = await ops(event('ops-report.json'), lambdaContext());
    const result = answer.result as {
      instances: {
        instanceId: string;
        consistency?: string;
        newestAppConsistent?: { snapshotId: string };
      }[];
    };
    const db1 = result.instances.find((i) => i.instanceId === id('db-1'));
    const db2 = result.instances.find((i) => i.instanceId === id('db-2'));
    expect(db1?.newestAppConsistent?.snapshotId).toMatch(/^snap-/);
    expect(db2).toMatchObject({ consistency: 'fsfreeze' });
    expect(db2).not.toHaveProperty('newestAppConsistent');
  });
});
