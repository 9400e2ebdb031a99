import {
  CreateSnapshotCommand,
  CreateVolumeCommand,
  EC2Client,
  type Tag,
} from '@aws-sdk/client-ec2';
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { launchFleet } from '../../harness/localFleet.ts';
import { useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

const REGION = 'ap-south-1';
const BUCKET = 'itest-coverage-pages';
/** The copy region (COPY_KMS_KEYS names it), with two copies of page-web-1's backups. */
const COPY_REGION = 'me-central-1';

type Handler = (event: unknown, context: unknown) => Promise<Record<string, unknown>>;

describe('Console action: report with "page": true', () => {
  let ops: Handler;
  let s3: S3Client;

  beforeAll(async () => {
    const endpoint = inject('awsEndpoint');
    const ec2 = useLocalAws(endpoint, REGION, {
      DEPLOYMENT: 'itest-page',
      REPORT_BUCKET: BUCKET,
      REPORT_PREFIX: 'pages/',
      RECYCLE_BIN_CHECK: 'false',
      LOCAL_TAG_AFTER_CREATE: 'true',
      COPY_KMS_KEYS: JSON.stringify({ [COPY_REGION]: 'alias/itest-copies' }),
    });
    await useLocalHistoryTable(endpoint, REGION);
    s3 = new S3Client({ region: REGION, endpoint, forcePathStyle: true });
    await s3.send(
      new CreateBucketCommand({
        Bucket: BUCKET,
        CreateBucketConfiguration: { LocationConstraint: REGION },
      }),
    );
    const fleet = await launchFleet(ec2, [
      { name: 'page-web-1', tags: { 'snapkeeper:backup': 'true' } },
    ]);
    // Two copies in the copy region, tagged as the copy job tags them (and one of
    // another deployment, which does not count).
    const remote = new EC2Client({ region: COPY_REGION, endpoint });
    const volume = await remote.send(
      new CreateVolumeCommand({ AvailabilityZone: `${COPY_REGION}a`, Size: 8 }),
    );
    const copyTags = (deployment: string): Tag[] => [
      { Key: 'snapkeeper:managed', Value: 'true' },
      { Key: 'snapkeeper:deployment', Value: deployment },
      { Key: 'snapkeeper:source-region', Value: REGION },
      { Key: 'snapkeeper:instance-id', Value: fleet.get('page-web-1')?.instanceId ?? '' },
    ];
    for (const deployment of ['itest-page', 'itest-page', 'someone-else']) {
      await remote.send(
        new CreateSnapshotCommand({
          VolumeId: volume.VolumeId,
          TagSpecifications: [{ ResourceType: 'snapshot', Tags: copyTags(deployment) }],
        }),
      );
    }
    const backup = ((await import('../../functions/backup.ts')) as unknown as { handler: Handler })
      .handler;
    await backup({ schedule: 'daily' }, lambdaContext());
    ({ handler: ops } = (await import('../../functions/ops.ts')) as unknown as {
      handler: Handler;
    });
  });

  it("returns the page's data and writes the page to the configured bucket", async () => {
    // Act
    const answer = await ops({ action: 'report', page: true, days: 7 }, lambdaContext());

    // Assess: the data
    const page = answer.page as {
      runs: { job: string }[];
      recovery: { instances: { name?: string }[] };
    };
    expect(page.runs.map((r) => r.job)).toContain('backup');
    expect(page.recovery.instances.map((i) => i.name)).toContain('page-web-1');
    const web = (
      page.recovery.instances as { name?: string; copiesInOtherRegions?: number }[]
    ).find((i) => i.name === 'page-web-1');
    expect(web?.copiesInOtherRegions).toBe(2);
    // Assess: the page in S3
    expect(answer.pageUri).toMatch(
      new RegExp(`^s3://${BUCKET}/pages/coverage-\\d{4}-\\d{2}-\\d{2}\\.html$`),
    );
    const key = String(answer.pageUri).replace(`s3://${BUCKET}/`, '');
    const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    const html = (await object.Body?.transformToString()) ?? '';
    expect(object.ContentType).toContain('text/html');
    expect(html).toContain('page-web-1');
    expect(html).toMatch(/<td class="num copies">2<\/td>/);
    expect(html).toMatch(/^<!doctype html>/i);
  });

  it('returns only the report without "page"', async () => {
    const answer = await ops({ action: 'report' }, lambdaContext());

    expect(answer.page).toBeUndefined();
    expect(answer.pageUri).toBeUndefined();
  });
});
