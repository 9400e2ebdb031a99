import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DescribeImagesCommand,
  EC2Client,
  type Image,
  ModifyLaunchTemplateCommand,
  type Tag,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet } from '../../harness/localFleet.ts';
import type { RunRecord } from '../../lib/aws/RunHistoryGateway.ts';
import { createRunHistoryGateway } from '../../lib/aws/RunHistoryGateway.ts';
import { loadConfig } from '../../lib/config/environment.ts';
import type { AmiReport } from '../../lib/jobs/amiJob.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import type { ConsoleRecoveryReport, OpsReport } from '../../lib/jobs/consoleOps.ts';
import type { CoverageData } from '../../lib/report/htmlReport.ts';
import { history } from '../../scripts/history.ts';
import { tagsOf, useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

const REGION = 'ca-west-1';
/** Named only by the instance's snapkeeper:copy-to tag: no schedule copyTo, no COPY_KMS_KEYS. */
const TAG_COPY_REGION = 'ap-southeast-4';
const DEPLOYMENT = 'itest-truth';
const day = (n: number) => `2026-11-${String(n).padStart(2, '0')}T03:00:00Z`;

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

describe('Reports that tell the whole truth, against the local AWS', () => {
  let ec2: EC2Client;
  let autoScaling: AutoScalingClient;
  let fleet: Map<string, LaunchedInstance>;
  let amis: Handler;
  let ops: Handler;
  const images: Image[] = [];
  const id = (name: string) => fleet.get(name)?.instanceId ?? '';
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
  const runDay = async (n: number): Promise<AmiReport> => {
    vi.setSystemTime(new Date(Date.parse(day(n)) + 5 * 60_000));
    return (await amis({ schedule: 'daily', scheduledTime: day(n) }, lambdaContext())) as AmiReport;
  };

  beforeAll(async () => {
    const endpoint = inject('awsEndpoint');
    ec2 = useLocalAws(endpoint, REGION, {
      DEPLOYMENT,
      LOCAL_TAG_AFTER_CREATE: 'true',
      RECYCLE_BIN_CHECK: 'false',
      MAX_DELETIONS: '50',
    });
    await useLocalHistoryTable(endpoint, REGION);
    autoScaling = new AutoScalingClient({ region: REGION, endpoint });
    fleet = await launchFleet(ec2, [
      {
        name: 'truth-web',
        tags: {
          'snapkeeper:backup': 'daily',
          'snapkeeper:ami': 'daily',
          'snapkeeper:ami-retain': '1',
          'snapkeeper:copy-to': TAG_COPY_REGION,
        },
      },
    ]);
    vi.useFakeTimers({ toFake: ['Date'] });
    const load = async (name: string) =>
      ((await import(`../../functions/${name}.ts`)) as { handler: Handler }).handler;
    [amis, ops] = (await Promise.all(['amis', 'ops'].map(load))) as [Handler, Handler];

    // Day 1's AMI goes into version 1 of a launch template, which an Auto Scaling group pins.
    await runDay(1);
    const [first] = await imagesOf(id('truth-web'));
    const template = await ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: 'truth-lt',
        LaunchTemplateData: { ImageId: first?.ImageId, InstanceType: 't3.micro' },
      }),
    );
    const templateId = template.LaunchTemplate?.LaunchTemplateId ?? '';
    const group = (name: string, version: string) =>
      autoScaling.send(
        new CreateAutoScalingGroupCommand({
          AutoScalingGroupName: name,
          LaunchTemplate: { LaunchTemplateId: templateId, Version: version },
          MinSize: 0,
          MaxSize: 1,
          DesiredCapacity: 0,
          AvailabilityZones: [`${REGION}a`],
        }),
      );
    await group('truth-pinned', '1');
    // Day 2's AMI becomes the template's default and latest (v3), which another group follows.
    await runDay(2);
    const [, second] = await imagesOf(id('truth-web'));
    for (let v = 0; v < 2; v += 1)
      await ec2.send(
        new CreateLaunchTemplateVersionCommand({
          LaunchTemplateId: templateId,
          LaunchTemplateData: { ImageId: second?.ImageId, InstanceType: 't3.micro' },
        }),
      );
    await ec2.send(
      new ModifyLaunchTemplateCommand({ LaunchTemplateId: templateId, DefaultVersion: '3' }),
    );
    await group('truth-latest', '$Latest');
    await runDay(3);
    images.push(...(await imagesOf(id('truth-web'))));

    // Two copies in the tag's region, tagged as the copy job tags them.
    const remote = new EC2Client({ region: TAG_COPY_REGION, endpoint });
    const volume = await remote.send(
      new CreateVolumeCommand({ AvailabilityZone: `${TAG_COPY_REGION}a`, Size: 8 }),
    );
    const copyTags: Tag[] = [
      { Key: 'snapkeeper:managed', Value: 'true' },
      { Key: 'snapkeeper:deployment', Value: DEPLOYMENT },
      { Key: 'snapkeeper:source-region', Value: REGION },
      { Key: 'snapkeeper:instance-id', Value: id('truth-web') },
    ];
    for (let n = 0; n < 2; n += 1)
      await remote.send(
        new CreateSnapshotCommand({
          VolumeId: volume.VolumeId,
          TagSpecifications: [{ ResourceType: 'snapshot', Tags: copyTags }],
        }),
      );
    vi.setSystemTime(new Date(Date.parse(day(3)) + 3_600_000));
  }, 120_000);

  afterAll(() => {
    vi.useRealTimers();
  });

  it('moto keeps what the groups name: a pinned version 1 and $Latest', async () => {
    const groups = await autoScaling.send(new DescribeAutoScalingGroupsCommand({}));
    expect(
      (groups.AutoScalingGroups ?? []).map((g) => [
        g.AutoScalingGroupName,
        g.LaunchTemplate?.Version,
      ]),
    ).toEqual(
      expect.arrayContaining([
        ['truth-pinned', '1'],
        ['truth-latest', '$Latest'],
      ]),
    );
    expect(images).toHaveLength(3);
  });

  it('lists the held AMIs among the blocked deletions, naming the group, the template and the version', async () => {
    const [first, second] = images;

    const answer = (await ops({ action: 'report' }, lambdaContext())) as OpsReport;
    const report = answer.result as ConsoleRecoveryReport;

    const held = (imageId: string | undefined) =>
      report.blocked.find((b) => b.resourceId === imageId)?.heldBy.join('; ') ?? '';
    expect(held(first?.ImageId)).toMatch(
      /launch template lt-\w+ \(truth-lt\) version 1, pinned by Auto Scaling group truth-pinned/,
    );
    expect(held(second?.ImageId)).toMatch(
      /launch template lt-\w+ \(truth-lt\) version 3 \(default\), used by Auto Scaling group truth-latest \(\$Latest\)/,
    );
    expect(answer.counts?.blocked).toBe(report.blocked.length);
  });

  it('finds the AMI’s creation in its history: npm run history -- --resource ami-…', async () => {
    const [first] = images;

    const printed = await history(['--resource', first?.ImageId ?? '', '--json'], process.env);

    const actions = JSON.parse(printed) as {
      action: string;
      outcome?: string;
      instanceId?: string;
    }[];
    expect(actions).toContainEqual(
      expect.objectContaining({
        action: 'create-image',
        outcome: 'done',
        instanceId: id('truth-web'),
      }),
    );
  });

  it('counts the copies made for snapkeeper:copy-to on the page, with no copyTo or COPY_KMS_KEYS', async () => {
    const answer = (await ops({ action: 'report', page: true, days: 7 }, lambdaContext())) as {
      page: CoverageData;
    };

    const web = answer.page.recovery.instances.find((i) => i.instanceId === id('truth-web'));
    expect(web?.copiesInOtherRegions).toBe(2);
    expect(answer.page.blocked.map((b) => b.resourceId)).toEqual(
      expect.arrayContaining([images[0]?.ImageId, images[1]?.ImageId]),
    );
  });

  it('records a mistyped payload as rejected, not failed, and the page counts it apart', async () => {
    const before = (await ops({ action: 'report', page: true, days: 7 }, lambdaContext())) as {
      page: CoverageData;
    };
    const rejectedBefore = before.page.runs.filter((r) => r.status === 'rejected').length;

    for (const payload of [{ action: 'reprot' }, { action: 'backup', schedule: 'dialy' }])
      expect(await ops(payload, lambdaContext())).toMatchObject({ status: 'rejected' });
    const answer = (await ops({ action: 'report', page: true, days: 7 }, lambdaContext())) as {
      page: CoverageData;
    };

    const config = loadConfig(process.env);
    const runs: RunRecord[] = await createRunHistoryGateway(
      config,
      config.historyTable ?? '',
      30,
    ).latestRuns(DEPLOYMENT, { limit: 200 });
    expect(runs.filter((r) => r.status === 'failed')).toEqual([]);
    expect(answer.page.runs.filter((r) => r.status === 'rejected')).toHaveLength(
      rejectedBefore + 2,
    );
    expect(answer.page.runs.filter((r) => r.status === 'failed')).toEqual([]);
  });

  it('checks a rejected changing payload again when it is sent again in the same window', async () => {
    const payload = {
      action: 'restore-volume',
      snapshotId: 'snap-0123456789abcdef0',
      confirm: true,
    };

    const first = await ops(payload, lambdaContext());
    const again = await ops(payload, lambdaContext());

    for (const answer of [first, again])
      expect(answer).toMatchObject({
        status: 'rejected',
        error: { message: expect.stringContaining('does not exist') },
      });
  });

  it('says what a dry-run backup would do: wouldBackUp, never backedUp', async () => {
    const answer = (await ops(
      { action: 'backup', schedule: 'daily', dryRun: true },
      lambdaContext(),
    )) as OpsReport;

    const backup = (answer.result as { backup: BackupReport }).backup;
    expect(backup.counts).toMatchObject({ backedUp: 0, wouldBackUp: 1, snapshots: 0 });
  });

  it('rejects restore-volume with io2 and no iops, naming iops and its range', async () => {
    const [first] = images;
    const snapshotId = first?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId ?? '';

    const answer = await ops(
      { action: 'restore-volume', snapshotId, volumeType: 'io2', confirm: true },
      lambdaContext(),
    );

    expect(answer).toMatchObject({
      status: 'rejected',
      error: {
        code: 'InvalidPayload',
        message: expect.stringContaining(
          'field "iops" is required for volumeType io2: a whole number from 100 to 256000',
        ),
      },
    });
  });
});
