import { describe, expect, it } from 'vitest';
import type { Ec2Gateway } from '../../../lib/aws/Ec2Gateway.ts';
import type { Ec2ImageGateway, ImageDetails } from '../../../lib/aws/Ec2ImageGateway.ts';
import type { Ec2RestoreGateway } from '../../../lib/aws/Ec2RestoreGateway.ts';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import { loadConfig } from '../../../lib/config/environment.ts';
import type { InstanceFacts } from '../../../lib/domain/backupPlan.ts';
import {
  type ConsoleRecoveryReport,
  type OpsDependencies,
  runConsoleOperation,
} from '../../../lib/jobs/consoleOps.ts';
import { silentLogger } from '../../../lib/jobs/runReport.ts';
import { renderCoverageHtml } from '../../../lib/report/htmlReport.ts';

const NOW = new Date('2026-11-23T10:00:00.000Z');
const DAY = 86_400_000;
const config = loadConfig({
  AWS_REGION: 'eu-west-1',
  DEPLOYMENT: 'prod',
  SCHEDULES: JSON.stringify([
    { name: 'daily', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 7 },
  ]),
});
const { keys } = config;

const WEB: InstanceFacts = {
  instanceId: 'i-0aaaaaaaaaaaaaaa1',
  state: 'running',
  rootDeviceName: '/dev/xvda',
  tags: { [keys.ami]: 'daily', [keys.amiRetain]: '1', Name: 'web-1' },
  volumes: [{ volumeId: 'vol-0aaaaaaaaaaaaaaa1', deviceName: '/dev/xvda' }],
};

/** web-1's daily AMIs of the last `days` days, newest first. */
function amis(days: number): ImageDetails[] {
  return Array.from({ length: days }, (_, n) => {
    const slot = new Date(NOW.getTime() - n * DAY - 7 * 3_600_000).toISOString();
    return {
      imageId: `ami-0web${String(n).padStart(13, '0')}`,
      name: `web-1-daily-${n}`,
      state: 'available',
      creationDate: new Date(slot),
      tags: {
        [keys.managed]: 'true',
        [keys.deployment]: 'prod',
        [keys.schedule]: 'daily',
        [keys.instanceId]: WEB.instanceId,
        [keys.slot]: slot,
        [keys.createdAt]: slot,
      },
      snapshotIds: [],
      sizeGiB: 8,
      deregistrationProtected: false,
      isPublic: false,
    };
  });
}

async function* stream<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

/** An account with web-1 and three daily AMIs, read through stubs answering as EC2 does. */
function dependencies(autoScaling: OpsDependencies['autoScaling']): OpsDependencies {
  const images = amis(3);
  const ec2 = {
    listInstancesWithTagKey: (key: string) => stream(key === keys.ami ? [WEB] : []),
    listSnapshotsTagged: () => stream([]),
    listInstancesByIds: () => stream([]),
    snapshotHolders: async () => new Map<string, string[]>(),
    volumeTagsWithKey: async () => new Map(),
    describeSnapshotsByIds: async () => [],
    deleteSnapshot: async () => {
      throw new Error('a report deletes nothing');
    },
  } as unknown as Ec2Gateway;
  const imageGateway = {
    listImagesTagged: async (tags: Record<string, string>) =>
      images.filter((i) => Object.entries(tags).every(([k, v]) => i.tags[k] === v)),
    listOwnImages: async () => images,
    instancesUsingImages: async () => new Map<string, string[]>(),
    imagesInLaunchTemplates: async (
      pinned: readonly { version: string; group?: string; launchTemplateId?: string }[] = [],
    ) =>
      new Map(
        pinned
          .filter((p) => p.version === '2')
          .map((p) => [
            'ami-0web0000000000002',
            [
              `launch template ${p.launchTemplateId} (web-lt) version 2, pinned by Auto Scaling group ${p.group}`,
            ],
          ]),
      ),
    listImageSnapshots: async () => [],
    imagesInRecycleBin: async () => new Set<string>(),
    createImage: async () => {
      throw new Error('a report creates nothing');
    },
    deregisterImage: async () => {
      throw new Error('a report deregisters nothing');
    },
  } as unknown as Ec2ImageGateway;
  return {
    ec2,
    images: imageGateway,
    restore: {} as Ec2RestoreGateway,
    autoScaling,
    history: { runActions: async () => [] },
    config,
    clock: () => NOW,
    runId: '20261123T100000Z-0a1b2c3d',
    logger: silentLogger,
    journal: { record: async () => undefined },
  };
}

describe('Console report: blocked deletions', () => {
  it('lists an AMI retention would deregister but an Auto Scaling group holds, naming the group, template and version', async () => {
    // Prepare
    const deps = dependencies({
      imageHolders: async () => ({
        pinned: [{ launchTemplateId: 'lt-0123', version: '2', group: 'web-asg' }],
        followed: [],
        launchConfigurationImages: new Map(),
      }),
    });

    // Act
    const answer = await runConsoleOperation({ action: 'report' }, deps);

    // Assess
    const report = answer.result as ConsoleRecoveryReport;
    expect(report.blocked).toEqual([
      {
        resourceId: 'ami-0web0000000000002',
        reason:
          'beyond count 1, but held by launch template lt-0123 (web-lt) version 2, pinned by Auto Scaling group web-asg',
        heldBy: [
          'launch template lt-0123 (web-lt) version 2, pinned by Auto Scaling group web-asg',
        ],
        sizeGiB: 8,
      },
    ]);
    expect(report.blockedGiB).toBe(8);
    expect(report.blockedWarnings).toBeUndefined();
    expect(answer.counts).toMatchObject({ blocked: 1 });
  });

  it('says the list may be short, and never "No deletion is blocked", when the Auto Scaling groups cannot be read', async () => {
    // Prepare
    const deps = dependencies({
      imageHolders: async () => {
        throw new AwsCallError(
          'DescribeAutoScalingGroups',
          'AccessDenied',
          'not authorized to perform: autoscaling:DescribeAutoScalingGroups',
          { httpStatus: 403 },
        );
      },
    });

    // Act
    const answer = await runConsoleOperation({ action: 'report' }, deps);
    const report = answer.result as ConsoleRecoveryReport;
    const page = renderCoverageHtml({
      generatedAt: NOW.toISOString(),
      deployment: 'prod',
      region: 'eu-west-1',
      days: 14,
      recovery: { instances: report.instances, orphaned: report.orphaned },
      runs: [],
      blocked: report.blocked,
      blockedGiB: report.blockedGiB,
      blockedNote: report.note,
      blockedWarnings: report.blockedWarnings,
      publicFindings: [],
    });

    // Assess
    expect(report.blocked).toEqual([]);
    expect(report.blockedWarnings).toEqual([
      expect.stringMatching(
        /^AMIs held for daily could not be read \(.*AccessDenied.*\): the list may be short$/,
      ),
    ]);
    expect(page).not.toContain('No deletion is blocked');
    expect(page).toContain('No blocked deletion was found, but not everything could be read.');
    expect(page).toContain('the list may be short');
  });
});
