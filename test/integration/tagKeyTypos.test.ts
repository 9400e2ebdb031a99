import { readFileSync } from 'node:fs';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet } from '../../harness/localFleet.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import { snapshotsTagged, useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

const REGION = 'ap-northeast-2';
const event = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../../events/${name}`, import.meta.url), 'utf8'));

describe('Tag keys that miss ours (issue 15, defect 12), against the local AWS', () => {
  let ec2: EC2Client;
  let fleet: Map<string, LaunchedInstance>;
  let handler: (event: unknown, context: unknown) => Promise<BackupReport>;
  const id = (name: string) => fleet.get(name)?.instanceId ?? '';

  beforeAll(async () => {
    ec2 = useLocalAws(inject('awsEndpoint'), REGION, { DEPLOYMENT: 'itest-keys' });
    await useLocalHistoryTable(inject('awsEndpoint'), REGION);
    fleet = await launchFleet(ec2, [
      { name: 'good-1', tags: { 'snapkeeper:backup': 'daily' } },
      { name: 'case-1', tags: { 'Snapkeeper:backup': 'daily' } },
      { name: 'plural-1', tags: { 'snapkeeper:backups': 'true' } },
      { name: 'space-1', tags: { 'snapkeeper:backup ': 'true' } },
      { name: 'retain-1', tags: { 'snapkeeper:backup': 'daily', 'Snapkeeper:retain': '30' } },
      {
        name: 'other-1',
        tags: { Backup: 'true', backup: 'daily', 'kubernetes.io/cluster/prod': 'owned' },
      },
    ]);
    ({ handler } = (await import('../../functions/backup.ts')) as unknown as {
      handler: typeof handler;
    });
  });

  it('backs up only the exact opt-in key, and reports every near-miss key by instance and key', async () => {
    // Act
    const report = await handler(event('backup-daily.json'), lambdaContext());

    // Assess: good-1 and retain-1 are backed up; the near misses are not, and say so.
    const made = await snapshotsTagged(ec2, 'snapkeeper:deployment', 'itest-keys');
    const backedUp = new Set(
      made.map((s) => s.Tags?.find((t) => t.Key === 'snapkeeper:instance-id')?.Value),
    );
    expect([...backedUp].sort()).toEqual([id('good-1'), id('retain-1')].sort());
    const byName = new Map(report.instances.map((r) => [r.name, r]));
    for (const [name, key] of [
      ['case-1', 'Snapkeeper:backup'],
      ['plural-1', 'snapkeeper:backups'],
      ['space-1', 'snapkeeper:backup '],
    ] as const) {
      expect(byName.get(name), name).toMatchObject({
        instanceId: id(name),
        outcome: 'skipped',
        error: { code: 'InvalidTag' },
      });
      expect(byName.get(name)?.problems?.[0]).toContain(`${key}=`);
      expect(byName.get(name)?.problems?.[0]).toContain('rename it');
    }
    expect(byName.get('retain-1')?.problems?.[0]).toContain('Snapkeeper:retain="30"');
    expect(byName.has('other-1')).toBe(false);
    expect(report.status).toBe('partial');
  });
});
