import {
  CreateImageCommand,
  CreateSnapshotCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet, ROOT_DEVICE } from '../../harness/localFleet.ts';
import { DEFAULT_SCHEDULES } from '../../lib/domain/schedules.ts';
import type { RetentionReport } from '../../lib/jobs/retentionJob.ts';
import { useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

const REGION = 'us-west-2';
const DEPLOYMENT = 'itest-ret';
const DAY = 86_400_000;

describe('Handler: functions/retention.ts against the local AWS', () => {
  let ec2: EC2Client;
  let fleet: Map<string, LaunchedInstance>;
  let handler: (event: unknown, context: unknown) => Promise<RetentionReport>;
  const now = Date.now();
  const seeded = new Map<string, { volume: string; ageDays: number; kind: string }>();

  const rootOf = (name: string): string => {
    const v = fleet.get(name)?.volumes.find((x) => x.device === ROOT_DEVICE);
    if (!v) throw new Error(`no root volume for ${name}`);
    return v.volumeId;
  };
  const seed = async (
    name: string,
    ageDays: number,
    tags: Record<string, string> | 'managed',
    kind = 'managed',
  ): Promise<string> => {
    const instanceId = fleet.get(name)?.instanceId ?? 'i-00000000000000000';
    const tagSet =
      tags === 'managed'
        ? {
            'snapkeeper:managed': 'true',
            'snapkeeper:deployment': DEPLOYMENT,
            'snapkeeper:schedule': 'daily',
            'snapkeeper:instance-id': instanceId,
            'snapkeeper:created-at': new Date(now - ageDays * DAY).toISOString(),
            Name: name,
          }
        : tags;
    const response = await ec2.send(
      new CreateSnapshotCommand({
        VolumeId: rootOf(name),
        ...(Object.keys(tagSet).length > 0
          ? {
              TagSpecifications: [
                {
                  ResourceType: 'snapshot',
                  Tags: Object.entries(tagSet).map(([Key, Value]) => ({ Key, Value })),
                },
              ],
            }
          : {}),
      }),
    );
    const id = response.SnapshotId ?? '';
    seeded.set(id, { volume: rootOf(name), ageDays, kind });
    return id;
  };
  const existing = async (): Promise<Set<string>> => {
    const response = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
    return new Set((response.Snapshots ?? []).map((s) => s.SnapshotId ?? ''));
  };
  const ids = (name: string, predicate: (age: number, kind: string) => boolean): string[] =>
    [...seeded.entries()]
      .filter(([, s]) => s.volume === rootOf(name) && predicate(s.ageDays, s.kind))
      .map(([id]) => id);

  let heldSnapshot = '';
  let amiId = '';

  beforeAll(async () => {
    ec2 = useLocalAws(inject('awsEndpoint'), REGION, {
      DEPLOYMENT,
      MAX_DELETIONS: '50',
      // Orphaned histories may go entirely after 5 days, to exercise the AMI guard.
      SCHEDULES: JSON.stringify(
        DEFAULT_SCHEDULES.map((d) =>
          d.name === 'daily' ? { ...d, expireOrphansAfterDays: 5 } : d,
        ),
      ),
    });
    await useLocalHistoryTable(inject('awsEndpoint'), REGION);
    fleet = await launchFleet(ec2, [
      { name: 'web-1', tags: { 'snapkeeper:backup': 'true' } },
      {
        name: 'db-1',
        tags: {
          'snapkeeper:backup': 'daily',
          'snapkeeper:retain': '3',
          'snapkeeper:retain-days': '5',
        },
      },
      { name: 'app-1', tags: { 'snapkeeper:backup': 'daily', 'snapkeeper:retain': 'daily=2' } },
      { name: 'stale-1', tags: { 'snapkeeper:backup': 'true' } },
      { name: 'bad-1', tags: { 'snapkeeper:backup': 'true', 'snapkeeper:retain': 'seven' } },
      { name: 'gone-1', tags: { 'snapkeeper:backup': 'true' }, state: 'terminated' },
    ]);
    // web-1: ten daily snapshots, aged 0..9 days; default count 7.
    for (let age = 0; age < 10; age += 1) await seed('web-1', age, 'managed');
    // Snapshots of the same volume that snapkeeper did not create, or another stage did.
    await seed('web-1', 40, {}, 'by-hand');
    await seed(
      'web-1',
      41,
      { 'aws:dlm:lifecycle-policy-id': 'policy-0abc', 'snapkeeper:managed': 'false' },
      'dlm',
    );
    await seed(
      'web-1',
      42,
      { 'aws:backup:source-resource': 'arn:aws:ec2:::volume/x' },
      'aws-backup',
    );
    await seed(
      'web-1',
      43,
      {
        'snapkeeper:managed': 'true',
        'snapkeeper:deployment': 'other-stage',
        'snapkeeper:schedule': 'daily',
        'snapkeeper:created-at': new Date(now - 43 * DAY).toISOString(),
      },
      'other-stage',
    );
    // db-1: count 3 and 5 days: aged 0.25..7.25 → only those over 5 days (5.25, 6.25, 7.25) go.
    for (let age = 0; age < 8; age += 1) await seed('db-1', age + 0.25, 'managed');
    // app-1: count 2, four snapshots: ages 2 and 3 go.
    for (let age = 0; age < 4; age += 1) await seed('app-1', age, 'managed');
    // An AMI of app-1 whose snapshot carries our tags and is 10 days old. Its volume is
    // a temporary one (moto), so its history is an orphan past expireOrphansAfterDays:
    // due to go, but an AMI uses it. (moto's RegisterImage ignores the mappings it is
    // given, so CreateImage is the way to have an AMI hold a snapshot here.)
    const image = await ec2.send(
      new CreateImageCommand({ InstanceId: fleet.get('app-1')?.instanceId, Name: 'app-1-golden' }),
    );
    amiId = image.ImageId ?? '';
    const described = await ec2.send(new DescribeImagesCommand({ ImageIds: [amiId] }));
    heldSnapshot = described.Images?.[0]?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId ?? '';
    await ec2.send(
      new CreateTagsCommand({
        Resources: [heldSnapshot],
        Tags: Object.entries({
          'snapkeeper:managed': 'true',
          'snapkeeper:deployment': DEPLOYMENT,
          'snapkeeper:schedule': 'daily',
          'snapkeeper:instance-id': fleet.get('app-1')?.instanceId ?? '',
          'snapkeeper:created-at': new Date(now - 10 * DAY).toISOString(),
        }).map(([Key, Value]) => ({ Key, Value })),
      }),
    );
    // stale-1: nothing newer than 3 days: its backups are failing.
    for (let age = 3; age < 13; age += 1) await seed('stale-1', age, 'managed');
    // bad-1: a malformed retain tag: keep everything.
    for (let age = 0; age < 9; age += 1) await seed('bad-1', age, 'managed');
    // gone-1: terminated, an orphan: count 7 applies to the rest.
    for (let age = 0; age < 9; age += 1) await seed('gone-1', age, 'managed');

    ({ handler } = (await import('../../functions/retention.ts')) as unknown as {
      handler: typeof handler;
    });
  });

  it('plans without deleting anything in a dry run, one reason per snapshot', async () => {
    const before = await existing();

    const report = await handler({ schedule: 'daily', dryRun: true }, lambdaContext());

    expect(await existing()).toEqual(before);
    expect(report.dryRun).toBe(true);
    const web = report.volumes.find((v) => v.volumeId === rootOf('web-1'));
    expect(report.counts.planned).toBe(10);
    expect(web?.deletions.map((d) => d.outcome)).toEqual(['planned', 'planned', 'planned']);
    expect(web?.deletions.every((d) => d.reason === 'beyond count 7')).toBe(true);
    expect(web?.kept).toHaveLength(7);
  });

  it('refuses to run above a one-run cap: deletes nothing and fails loudly', async () => {
    const before = await existing();

    await expect(
      handler({ schedule: 'daily', maxDeletions: 1, confirm: true }, lambdaContext()),
    ).rejects.toThrow(/deletions planned, above the maxDeletions override of 1: nothing deleted/);
    await expect(
      handler({ schedule: 'daily', maxDeletions: 100 }, lambdaContext()),
    ).rejects.toThrow(/needs "confirm": true/);

    expect(await existing()).toEqual(before);
  });

  it('deletes exactly what is beyond each volume’s rule and nothing else', async () => {
    const report = await handler({ schedule: 'daily' }, lambdaContext());
    const left = await existing();

    // web-1: the three oldest of ten managed go; the newest seven stay.
    for (const id of ids('web-1', (age, kind) => kind === 'managed' && age >= 7)) {
      expect(left).not.toContain(id);
    }
    for (const id of ids('web-1', (age, kind) => kind === 'managed' && age < 7)) {
      expect(left).toContain(id);
    }
    // Never touched: made by hand, by DLM, by AWS Backup, by another stage.
    for (const id of ids('web-1', (_, kind) => kind !== 'managed')) expect(left).toContain(id);
    // db-1: beyond count 3 AND older than 5 days.
    expect(ids('db-1', (age) => !left.has(ids('db-1', (a) => a === age)[0] ?? '')).sort()).toEqual(
      ids('db-1', (age) => age > 5).sort(),
    );
    // app-1: count 2: ages 2 and 3 go.
    for (const id of ids('app-1', (age) => age >= 2)) expect(left).not.toContain(id);
    for (const id of ids('app-1', (age) => age < 2)) expect(left).toContain(id);
    // The AMI's snapshot (made by CreateImage, tagged as ours): AMI retention's alone
    // (issue 15, defect 4): never in a volume's lineage, kept and named with its AMI.
    expect(left).toContain(heldSnapshot);
    expect(report.volumes.some((v) => v.blocked.some((b) => b.snapshotId === heldSnapshot))).toBe(
      false,
    );
    expect(report.excluded).toContainEqual(
      expect.objectContaining({ snapshotId: heldSnapshot, kind: 'image-snapshot', sizeGiB: 15 }),
    );
    expect(report.excluded?.find((e) => e.snapshotId === heldSnapshot)?.reason).toContain(amiId);
    // stale-1: failing backups: nothing deleted, and said so.
    for (const id of ids('stale-1', () => true)) expect(left).toContain(id);
    const stale = report.volumes.find((v) => v.volumeId === rootOf('stale-1'));
    expect(stale?.failing).toMatch(/no backup started for 3 days/);
    // bad-1: malformed retain tag: nothing deleted, problem named.
    for (const id of ids('bad-1', () => true)) expect(left).toContain(id);
    const bad = report.volumes.find((v) => v.volumeId === rootOf('bad-1'));
    expect(bad?.problems?.[0]).toContain('snapkeeper:retain="seven"');
    // gone-1: an orphan: count 7 on the rest.
    const gone = report.volumes.find((v) => v.volumeId === rootOf('gone-1'));
    expect(gone?.orphan).toBe(true);
    expect(gone?.deletions).toHaveLength(2);

    expect(report.status).toBe('partial'); // stale-1 and bad-1 need attention
    expect(report.counts.deleted).toBe(3 + 3 + 2 + 2);
    expect(report.counts.blockedGiB).toBe(0);
    expect(report.counts.blocked).toBe(0);
  });

  it('is idempotent: a second run deletes nothing more', async () => {
    const report = await handler({ schedule: 'daily' }, lambdaContext());

    expect(report.counts.deleted).toBe(0);
    expect(report.counts.planned).toBe(0);
  });
});
