import {
  CreateImageCommand,
  CreateLaunchTemplateCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
  type Image,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet } from '../../harness/localFleet.ts';
import type { AmiReport } from '../../lib/jobs/amiJob.ts';
import type { SweepReport } from '../../lib/jobs/sweepJob.ts';
import { tagsOf, useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

const REGION = 'eu-central-1';
const DEPLOYMENT = 'itest-ami';
const day = (n: number) => `2026-11-${String(n).padStart(2, '0')}T03:00:00Z`;

describe('Handler: functions/amis.ts against the local AWS, over several simulated days', () => {
  let ec2: EC2Client;
  let fleet: Map<string, LaunchedInstance>;
  let handler: (event: unknown, context: unknown) => Promise<AmiReport | SweepReport>;
  const id = (name: string) => fleet.get(name)?.instanceId ?? '';
  const runDay = async (n: number): Promise<AmiReport> => {
    vi.setSystemTime(new Date(Date.parse(day(n)) + 5 * 60_000));
    return (await handler(
      { schedule: 'daily', scheduledTime: day(n) },
      lambdaContext(),
    )) as AmiReport;
  };
  const imagesOf = async (instanceId: string): Promise<Image[]> => {
    const r = await ec2.send(
      new DescribeImagesCommand({
        Owners: ['self'],
        Filters: [{ Name: 'tag:snapkeeper:instance-id', Values: [instanceId] }],
      }),
    );
    return (r.Images ?? []).sort((a, b) =>
      (tagsOf(a)['snapkeeper:slot'] ?? '').localeCompare(tagsOf(b)['snapkeeper:slot'] ?? ''),
    );
  };
  const snapshotExists = async (snapshotId: string): Promise<boolean> => {
    const r = await ec2.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ['self'],
        Filters: [{ Name: 'snapshot-id', Values: [snapshotId] }],
      }),
    );
    return (r.Snapshots ?? []).length > 0;
  };
  const snapshotOf = (image: Image | undefined) =>
    image?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId ?? '';
  const byInstance = (report: AmiReport, name: string) =>
    report.created.find((c) => c.instanceId === id(name));

  beforeAll(async () => {
    ec2 = useLocalAws(inject('awsEndpoint'), REGION, {
      DEPLOYMENT,
      LOCAL_TAG_AFTER_CREATE: 'true',
      RECYCLE_BIN_CHECK: 'false',
      MAX_DELETIONS: '50',
    });
    await useLocalHistoryTable(inject('awsEndpoint'), REGION);
    fleet = await launchFleet(ec2, [
      {
        name: 'web-1',
        tags: { 'snapkeeper:ami': 'daily', 'snapkeeper:ami-retain': '2', CostCenter: 'x' },
      },
      { name: 'app-1', tags: { 'snapkeeper:ami': 'true', 'snapkeeper:ami-reboot': 'true' } },
      { name: 'plain-1', tags: { 'snapkeeper:backup': 'true' } },
      { name: 'typo-1', tags: { 'snapkeeper:ami': 'dayly' } },
    ]);
    vi.useFakeTimers({ toFake: ['Date'] });
    ({ handler } = (await import('../../functions/amis.ts')) as unknown as {
      handler: typeof handler;
    });
  });

  afterAll(() => {
    vi.useRealTimers();
  });

  it('creates one AMI per opted-in instance, named readably and tagged like snapshots', async () => {
    const report = await runDay(1);

    expect(report.status).toBe('partial'); // typo-1
    expect(byInstance(report, 'web-1')).toMatchObject({
      outcome: 'created',
      imageName: 'web-1-itest-ami-daily-20261101T0300Z',
      noReboot: true,
    });
    expect(byInstance(report, 'app-1')).toMatchObject({ outcome: 'created', noReboot: false });
    expect(byInstance(report, 'plain-1')).toBeUndefined();
    expect(byInstance(report, 'typo-1')?.error?.message).toContain(
      'snapkeeper:ami="dayly" is not a known schedule',
    );
    const [image] = await imagesOf(id('web-1'));
    const expected = {
      'snapkeeper:managed': 'true',
      'snapkeeper:deployment': DEPLOYMENT,
      'snapkeeper:schedule': 'daily',
      'snapkeeper:slot': day(1),
      'snapkeeper:instance-id': id('web-1'),
      'snapkeeper:run-id': report.runId,
      'snapkeeper:created-at': '2026-11-01T03:05:00.000Z',
      Name: 'web-1',
    };
    expect(tagsOf(image ?? {})).toMatchObject(expected);
    const snapshot = await ec2.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ['self'],
        Filters: [{ Name: 'snapshot-id', Values: [snapshotOf(image)] }],
      }),
    );
    expect(tagsOf(snapshot.Snapshots?.[0] ?? {})).toMatchObject(expected);
  });

  it('makes nothing more for a slot delivered twice, and answers with the first run’s report', async () => {
    const first = (await imagesOf(id('web-1')))[0];

    const report = await runDay(1);

    expect(byInstance(report, 'web-1')).toMatchObject({
      outcome: 'created',
      imageId: first?.ImageId,
    });
    expect(await imagesOf(id('web-1'))).toHaveLength(1);
  });

  it('retires beyond the count, never an AMI a launch template uses, and deletes the retired AMI’s snapshots', async () => {
    await runDay(2);
    const [first] = await imagesOf(id('web-1'));
    await ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: 'web-template',
        LaunchTemplateData: { ImageId: first?.ImageId, InstanceType: 't3.micro' },
      }),
    );
    const day3 = await runDay(3);
    expect(day3.blocked).toEqual([
      expect.objectContaining({ imageId: first?.ImageId, instanceId: id('web-1') }),
    ]);
    expect(day3.blocked[0]?.heldBy[0]).toMatch(
      /^launch template lt-\w+ \(web-template\) version 1/,
    );
    expect(day3.counts.deregistered).toBe(0);

    const beforeDay4 = await imagesOf(id('web-1'));
    const second = beforeDay4[1];
    const day4 = await runDay(4);

    expect(day4.retired).toEqual([
      expect.objectContaining({
        imageId: second?.ImageId,
        outcome: 'deregistered',
        reason: 'beyond count 2',
        snapshots: [
          expect.objectContaining({ snapshotId: snapshotOf(second), outcome: 'deleted' }),
        ],
      }),
    ]);
    const left = (await imagesOf(id('web-1'))).map((i) => i.ImageId);
    expect(left).toEqual([first?.ImageId, beforeDay4[2]?.ImageId, expect.any(String)]);
    expect(await snapshotExists(snapshotOf(second))).toBe(false);
    expect(await snapshotExists(snapshotOf(first))).toBe(true);
    // app-1 keeps the schedule's default (7): nothing retired.
    expect(await imagesOf(id('app-1'))).toHaveLength(4);
  });

  it('sweeps the snapshots of AMIs deregistered by hand: ours deleted, others only reported', async () => {
    const images = await imagesOf(id('web-1'));
    const ours = images[images.length - 1];
    await ec2.send(new DeregisterImageCommand({ ImageId: ours?.ImageId }));
    const foreign = await ec2.send(
      new CreateImageCommand({ InstanceId: id('plain-1'), Name: 'by-hand' }),
    );
    const foreignImage = await ec2.send(
      new DescribeImagesCommand({ ImageIds: [foreign.ImageId ?? ''] }),
    );
    const foreignSnapshot = snapshotOf(foreignImage.Images?.[0]);
    await ec2.send(new DeregisterImageCommand({ ImageId: foreign.ImageId }));

    const preview = (await handler({ sweep: true, dryRun: true }, lambdaContext())) as SweepReport;
    expect(preview.deleted.map((d) => [d.snapshotId, d.outcome])).toEqual([
      [snapshotOf(ours), 'planned'],
    ]);
    expect(await snapshotExists(snapshotOf(ours))).toBe(true);

    const report = (await handler({ sweep: true }, lambdaContext())) as SweepReport;

    expect(report.deleted).toEqual([
      expect.objectContaining({
        snapshotId: snapshotOf(ours),
        imageId: ours?.ImageId,
        outcome: 'deleted',
      }),
    ]);
    expect(report.reportedOnly).toEqual([
      expect.objectContaining({
        snapshotId: foreignSnapshot,
        imageId: foreign.ImageId,
        sizeGiB: 15,
      }),
    ]);
    expect(report.reportedOnly[0]?.reason).toContain('not created by this deployment');
    expect(await snapshotExists(snapshotOf(ours))).toBe(false);
    expect(await snapshotExists(foreignSnapshot)).toBe(true);
    expect(report.note).toContain('incremental');
  });
});
