import { readFileSync } from 'node:fs';
import { DescribeSnapshotsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet, ROOT_DEVICE } from '../../harness/localFleet.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import {
  snapshotsTagged,
  tagsOf,
  useLocalAws,
  useLocalHistoryTable,
} from '../support/localEnvironment.ts';

const REGION = 'eu-west-1';
const event = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../../events/${name}`, import.meta.url), 'utf8'));

describe('Handler: functions/backup.ts against the local AWS', () => {
  let ec2: EC2Client;
  let fleet: Map<string, LaunchedInstance>;
  let handler: (event: unknown, context: unknown) => Promise<BackupReport>;
  const instance = (name: string): LaunchedInstance => {
    const found = fleet.get(name);
    if (!found) throw new Error(`no instance ${name}`);
    return found;
  };
  const volume = (name: string, device: string): string => {
    const found = instance(name).volumes.find((v) => v.device === device);
    if (!found) throw new Error(`no ${device} on ${name}`);
    return found.volumeId;
  };

  beforeAll(async () => {
    ec2 = useLocalAws(inject('awsEndpoint'), REGION, {
      DEPLOYMENT: 'itest',
      COPY_TAGS: 'CostCenter',
    });
    await useLocalHistoryTable(inject('awsEndpoint'), REGION);
    fleet = await launchFleet(ec2, [
      {
        name: 'web-1',
        tags: { 'snapkeeper:backup': 'true' },
        dataVolumes: [{ device: '/dev/sdf', sizeGiB: 20 }],
      },
      {
        name: 'db-1',
        tags: { 'snapkeeper:backup': ' Daily, weekly,daily ', CostCenter: 'cc-42', Team: 'data' },
        dataVolumes: [
          { device: '/dev/sdf', sizeGiB: 50 },
          { device: '/dev/sdg', sizeGiB: 100, tags: { 'snapkeeper:skip': 'true' } },
        ],
      },
      { name: 'batch-1', tags: { 'snapkeeper:backup': 'daily' }, state: 'stopped' },
      {
        name: 'noboot-1',
        tags: { 'snapkeeper:backup': 'true', 'snapkeeper:exclude-boot': 'true' },
        dataVolumes: [{ device: '/dev/sdf', sizeGiB: 10 }],
      },
      { name: 'legacy-1' },
      { name: 'off-1', tags: { 'snapkeeper:backup': 'false' } },
      { name: 'weekly-1', tags: { 'snapkeeper:backup': 'weekly' } },
      { name: 'typo-1', tags: { 'snapkeeper:backup': 'dialy' } },
      { name: 'gone-1', tags: { 'snapkeeper:backup': 'true' }, state: 'terminated' },
    ]);
    ({ handler } = (await import('../../functions/backup.ts')) as unknown as {
      handler: typeof handler;
    });
  });

  it('snapshots every attached volume of every instance opted into the schedule, tagged at creation', async () => {
    // Act
    const report = await handler(event('backup-daily.json'), lambdaContext());

    // Assess: the report
    expect(report.job).toBe('backup');
    expect(report.schedule).toBe('daily');
    expect(report.slot).toBe('2026-11-23T03:00:00Z');
    expect(report.status).toBe('partial'); // typo-1 carries a malformed tag
    const byName = new Map(report.instances.map((r) => [r.name, r]));
    expect([...byName.keys()].sort()).toEqual(['batch-1', 'db-1', 'noboot-1', 'typo-1', 'web-1']);
    expect(byName.get('typo-1')).toMatchObject({
      outcome: 'skipped',
      instanceId: instance('typo-1').instanceId,
      error: { code: 'InvalidTag' },
      problems: [
        'snapkeeper:backup="dialy" is not a known schedule; known: daily, weekly, monthly',
      ],
    });

    // Assess: what exists in EC2, found by the run id tag
    const made = await snapshotsTagged(ec2, 'snapkeeper:run-id', report.runId);
    const volumesMade = new Set(made.map((s) => s.VolumeId));
    const expected = [
      volume('web-1', ROOT_DEVICE),
      volume('web-1', '/dev/sdf'),
      volume('db-1', ROOT_DEVICE),
      volume('db-1', '/dev/sdf'),
      volume('batch-1', ROOT_DEVICE),
      volume('noboot-1', '/dev/sdf'),
    ];
    for (const volumeId of expected) expect(volumesMade).toContain(volumeId);
    expect(volumesMade).not.toContain(volume('noboot-1', ROOT_DEVICE));
    for (const name of ['legacy-1', 'off-1', 'weekly-1', 'typo-1', 'gone-1']) {
      for (const v of instance(name).volumes) expect(volumesMade).not.toContain(v.volumeId);
    }
    // moto ignores ExcludeDataVolumeIds (AWS honours it): the skipped volume may have been
    // snapshotted by the local AWS, and then the report flags it as unexpected.
    const skipped = volume('db-1', '/dev/sdg');
    const extra = made.filter((s) => !expected.includes(s.VolumeId ?? ''));
    expect(extra.map((s) => s.VolumeId).every((v) => v === skipped)).toBe(true);
    const dbSnapshots = byName.get('db-1')?.snapshots ?? [];
    for (const s of dbSnapshots) expect(s.unexpected === true).toBe(s.volumeId === skipped);
    expect(byName.get('db-1')?.excludedVolumes).toEqual([
      { volumeId: skipped, deviceName: '/dev/sdg', reason: 'volume tagged snapkeeper:skip=true' },
    ]);

    // Assess: the tags of every snapshot
    for (const snapshot of made) {
      const tags = tagsOf(snapshot);
      const owner = [...fleet.values()].find((i) =>
        i.volumes.some((v) => v.volumeId === snapshot.VolumeId),
      );
      expect(tags).toMatchObject({
        'snapkeeper:managed': 'true',
        'snapkeeper:deployment': 'itest',
        'snapkeeper:schedule': 'daily',
        'snapkeeper:slot': '2026-11-23T03:00:00Z',
        'snapkeeper:instance-id': owner?.instanceId,
        'snapkeeper:run-id': report.runId,
        Name: owner?.name,
      });
      expect(Date.parse(tags['snapkeeper:created-at'] ?? '')).not.toBeNaN();
      if (owner?.name === 'db-1') expect(tags.CostCenter).toBe('cc-42');
      expect(tags.Team).toBeUndefined();
    }
    // The report records each snapshot's volume and device.
    const web = byName.get('web-1');
    expect(web?.outcome).toBe('created');
    expect(web?.snapshots?.map((s) => s.deviceName).sort()).toEqual(['/dev/sda1', '/dev/sdf']);
  });

  it('makes nothing for the weekly schedule except weekly instances', async () => {
    const report = await handler(event('backup-weekly.json'), lambdaContext());

    const names = report.instances.map((r) => r.name).sort();
    expect(names).toEqual(['db-1', 'typo-1', 'weekly-1']);
    const made = await snapshotsTagged(ec2, 'snapkeeper:run-id', report.runId);
    const owners = new Set(made.map((s) => tagsOf(s).Name));
    expect([...owners].sort()).toEqual(['db-1', 'weekly-1']);
    expect(made.every((s) => tagsOf(s)['snapkeeper:schedule'] === 'weekly')).toBe(true);
  });

  it('serves the latest slot of the schedule when a classic rule sends constant input', async () => {
    const before = new Date();
    const report = await handler(event('backup-daily-rule-constant-input.json'), lambdaContext());

    const slot = new Date(report.slot);
    expect(report.slot).toMatch(/^\d{4}-\d\d-\d\dT03:00:00Z$/);
    expect(slot.getTime()).toBeLessThanOrEqual(before.getTime());
    expect(before.getTime() - slot.getTime()).toBeLessThan(24 * 3600 * 1000);
  });

  it('plans without creating anything in a dry run', async () => {
    const count = async () =>
      (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots?.length ?? 0;
    const before = await count();

    const report = await handler(event('backup-daily-dry-run.json'), lambdaContext());

    expect(report.dryRun).toBe(true);
    expect(report.instances.find((r) => r.name === 'web-1')?.outcome).toBe('planned');
    expect(await count()).toBe(before);
  });

  it('rejects an event that names no schedule, saying how to fix it, and makes nothing', async () => {
    const count = async () =>
      (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots?.length ?? 0;
    const before = await count();

    await expect(
      handler(event('eventbridge-scheduled-event-without-schedule.json'), lambdaContext()),
    ).rejects.toThrow(
      /names no schedule.*"schedule": "<name>".*known schedules: daily, weekly, monthly/,
    );
    await expect(handler({ schedule: 'dialy' }, lambdaContext())).rejects.toThrow(
      'field "schedule": "dialy" is not a known schedule; known: daily, weekly, monthly',
    );
    expect(await count()).toBe(before);
  });
});
