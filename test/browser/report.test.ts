import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AutoScalingClient, CreateAutoScalingGroupCommand } from '@aws-sdk/client-auto-scaling';
import {
  CreateImageCommand,
  CreateLaunchTemplateCommand,
  CreateSnapshotCommand,
  CreateTagsCommand,
  CreateVolumeCommand,
  DescribeImagesCommand,
  EC2Client,
  type Image,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { deploymentSchedules } from '../../harness/deploymentSchedules.ts';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { PROJECT_ROOT } from '../../harness/localAws.ts';
import { type LaunchedInstance, launchFleet } from '../../harness/localFleet.ts';
import { DEMO_FLEET } from '../../harness/localStack.ts';
import { createRunHistoryGateway, type RunRecord } from '../../lib/aws/RunHistoryGateway.ts';
import { loadConfig } from '../../lib/config/environment.ts';
import type { ConsoleRecoveryReport, OpsReport } from '../../lib/jobs/consoleOps.ts';
import { writeCoverageReport } from '../../scripts/report.ts';
import { useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SCREENSHOT = join(PROJECT_ROOT, 'reports', 'coverage.png');
const PAGE_COPY = join(PROJECT_ROOT, 'reports', 'coverage.html');
const REGION = 'eu-south-1';
/** Named only by web-2's snapkeeper:copy-to tag (no schedule copyTo, no COPY_KMS_KEYS). */
const TAG_COPY_REGION = 'il-central-1';
/** Mistyped console payloads sent during the week: rejected, never failed runs. */
const MISTYPED = [
  { action: 'reprot' },
  { action: 'backup', schedule: 'dialy' },
  { action: 'restore-volume', snapshotId: 'snap-0123456789abcdef0', volumeType: 'io2' },
];
const DEPLOYMENT = 'btest-report';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Monday 9 November 2026; the week ends on Sunday, when the weekly schedule fires too. */
const FIRST_DAY = Date.UTC(2026, 10, 9);
const DAYS = 7;
/** The page is made at 22:30 on the Sunday: 19.5 h after the daily backups, in their last quarter. */
const REPORT_TIME = FIRST_DAY + (DAYS - 1) * DAY + 22.5 * HOUR;

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

/** The numbers a history record says a run made, read job by job from its own counts. */
function expectedNumbers(run: RunRecord) {
  const c = (key: string) => run.counts?.[key] ?? 0;
  switch (run.job) {
    case 'backup':
      return { created: c('snapshots'), deleted: c('duplicatesRemoved'), skipped: c('skipped') };
    case 'amis':
      return {
        created: c('created'),
        deleted: c('deregistered') + c('snapshotsDeleted'),
        skipped: 0,
      };
    case 'retention':
      return { created: 0, deleted: c('deleted'), skipped: c('skipped') };
    case 'ops':
      return { created: 0, deleted: 0, skipped: 0 };
    default:
      throw new Error(`the seeded history holds no ${run.job} run`);
  }
}

/** WCAG contrast ratio of two CSS rgb() colours. */
function contrast(foreground: string, background: string): number {
  const luminance = (css: string) => {
    const [r = 0, g = 0, b = 0] = (css.match(/[\d.]+/g) ?? []).map(Number);
    const linear = (v: number) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  };
  const [light, dark] = [luminance(foreground), luminance(background)].sort((a, b) => b - a);
  return ((light ?? 0) + 0.05) / ((dark ?? 0) + 0.05);
}

describe('Page: the coverage and history report, opened from a file in headless Chromium', () => {
  let ec2: EC2Client;
  let fleet: Map<string, LaunchedInstance>;
  let file: string;
  let runs: RunRecord[];
  let recovery: ConsoleRecoveryReport;
  let browser: Browser | undefined;
  let page: Page;
  const requests: string[] = [];
  const consoleErrors: string[] = [];

  let heldSnapshot: string;
  let chromiumMissing: Error | undefined;
  /** db-1's AMI of day 0 (a launch template version an Auto Scaling group pins) and of day 1 (an instance runs it). */
  const heldImages: { pinned: string; running: string; runner: string } = {
    pinned: '',
    running: '',
    runner: '',
  };

  /** db-1's newest managed AMI. */
  const newestAmiOfDb = async (): Promise<string> => {
    const described = await ec2.send(
      new DescribeImagesCommand({
        Owners: ['self'],
        Filters: [
          { Name: 'tag:snapkeeper:instance-id', Values: [fleet.get('db-1')?.instanceId ?? ''] },
        ],
      }),
    );
    const slot = (i: Image) => i.Tags?.find((t) => t.Key === 'snapkeeper:slot')?.Value ?? '';
    return (
      [...(described.Images ?? [])].sort((a, b) => slot(b).localeCompare(slot(a)))[0]?.ImageId ?? ''
    );
  };

  /** Holds db-1's day-0 AMI by a launch template version an Auto Scaling group pins. */
  const holdByAutoScaling = async (): Promise<string> => {
    const imageId = await newestAmiOfDb();
    const template = await ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: 'btest-golden',
        LaunchTemplateData: { ImageId: imageId, InstanceType: 't3.micro' },
      }),
    );
    await new AutoScalingClient({ region: REGION, endpoint: inject('awsEndpoint') }).send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: 'btest-web-asg',
        LaunchTemplate: {
          LaunchTemplateId: template.LaunchTemplate?.LaunchTemplateId,
          Version: '1',
        },
        MinSize: 0,
        MaxSize: 1,
        DesiredCapacity: 0,
        AvailabilityZones: [`${REGION}a`],
      }),
    );
    return imageId;
  };

  /** Holds db-1's day-1 AMI by an instance launched from it. */
  const holdByInstance = async (): Promise<{ imageId: string; instanceId: string }> => {
    const imageId = await newestAmiOfDb();
    const launched = await ec2.send(
      new RunInstancesCommand({
        ImageId: imageId,
        InstanceType: 't3.micro',
        MinCount: 1,
        MaxCount: 1,
      }),
    );
    return { imageId, instanceId: launched.Instances?.[0]?.InstanceId ?? '' };
  };

  /** Copies of web-2's backups in the region its snapkeeper:copy-to tag names, tagged as the copy job tags them. */
  const copiesForTheTag = async (count: number) => {
    const web2 = fleet.get('web-2')?.instanceId ?? '';
    await ec2.send(
      new CreateTagsCommand({
        Resources: [web2],
        Tags: [{ Key: 'snapkeeper:copy-to', Value: TAG_COPY_REGION }],
      }),
    );
    const remote = new EC2Client({ region: TAG_COPY_REGION, endpoint: inject('awsEndpoint') });
    const volume = await remote.send(
      new CreateVolumeCommand({ AvailabilityZone: `${TAG_COPY_REGION}a`, Size: 20 }),
    );
    for (let n = 0; n < count; n += 1)
      await remote.send(
        new CreateSnapshotCommand({
          VolumeId: volume.VolumeId,
          TagSpecifications: [
            {
              ResourceType: 'snapshot',
              Tags: Object.entries({
                'snapkeeper:managed': 'true',
                'snapkeeper:deployment': DEPLOYMENT,
                'snapkeeper:source-region': REGION,
                'snapkeeper:instance-id': web2,
              }).map(([Key, Value]) => ({ Key, Value })),
            },
          ],
        }),
      );
  };

  /**
   * An AMI made by hand of an instance, whose snapshot carries this deployment's tags as a
   * daily snapshot: its volume is a temporary one (moto), so it is orphaned history that
   * retention would delete, but the AMI holds it. (moto's RegisterImage ignores the
   * mappings it is given, so CreateImage is the way to have an AMI hold a snapshot.)
   */
  const holdBySomeoneElsesImage = async (name: string, createdAt: number): Promise<string> => {
    const instanceId = fleet.get(name)?.instanceId ?? '';
    const image = await ec2.send(
      new CreateImageCommand({ InstanceId: instanceId, Name: `${name}-golden` }),
    );
    const described = await ec2.send(
      new DescribeImagesCommand({ ImageIds: [image.ImageId ?? ''] }),
    );
    const snapshotId = described.Images?.[0]?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId ?? '';
    await ec2.send(
      new CreateTagsCommand({
        Resources: [snapshotId],
        Tags: Object.entries({
          'snapkeeper:managed': 'true',
          'snapkeeper:deployment': DEPLOYMENT,
          'snapkeeper:schedule': 'daily',
          'snapkeeper:instance-id': instanceId,
          'snapkeeper:created-at': new Date(createdAt).toISOString(),
        }).map(([Key, Value]) => ({ Key, Value })),
      }),
    );
    return snapshotId;
  };

  const open = async () => {
    await page.goto(pathToFileURL(file).href);
  };

  beforeAll(async () => {
    // The project's own setup step installs Debian's chromium the first time (apt-get, as
    // root), or says in one line why it cannot; then every test here fails with that line.
    const ensured = spawnSync('bash', [join(PROJECT_ROOT, 'scripts', 'ensure-chromium.sh')], {
      encoding: 'utf8',
      env: { ...process.env, CHROMIUM_PATH: CHROMIUM },
    });
    if (!existsSync(CHROMIUM)) {
      chromiumMissing = new Error(
        ensured.stderr.trim() ||
          `${CHROMIUM} is missing: this test drives Debian's chromium package (apt-get install chromium)`,
      );
      return;
    }
    // Prepare: the demo's fleet backed up for a week through the handlers, with one failed
    // retention run (a one-run cap of 0 deletions when there is something to delete).
    ec2 = useLocalAws(inject('awsEndpoint'), REGION, {
      DEPLOYMENT,
      // Orphaned history may go after 3 days, so a held snapshot is due to go: blocked.
      SCHEDULES: JSON.stringify(
        deploymentSchedules().map((s) =>
          (s as { name: string }).name === 'daily'
            ? { ...(s as object), expireOrphansAfterDays: 3 }
            : s,
        ),
      ),
      LOCAL_TAG_AFTER_CREATE: 'true',
      RECYCLE_BIN_CHECK: 'false',
      MAX_DELETIONS: '50',
      COPY_TAGS: 'CostCenter',
    });
    await useLocalHistoryTable(inject('awsEndpoint'), REGION);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(FIRST_DAY);
    fleet = await launchFleet(ec2, DEMO_FLEET);
    const load = async (name: string) =>
      ((await import(`../../functions/${name}.ts`)) as { handler: Handler }).handler;
    const [backup, amis, retention, ops] = await Promise.all(
      ['backup', 'amis', 'retention', 'ops'].map(load),
    );
    const invoke = async (handler: Handler | undefined, event: unknown) =>
      (handler as Handler)(event, lambdaContext('snapkeeper-btest-report'));
    for (let day = 0; day < DAYS; day += 1) {
      const midnight = FIRST_DAY + day * DAY;
      const sunday = new Date(midnight).getUTCDay() === 0;
      vi.setSystemTime(midnight + 3 * HOUR + 5_000);
      const slot = new Date(midnight + 3 * HOUR).toISOString();
      await invoke(backup, { schedule: 'daily', scheduledTime: slot });
      await invoke(amis, { schedule: 'daily', scheduledTime: slot });
      if (day === 0) heldSnapshot = await holdBySomeoneElsesImage('web-1', midnight + 3 * HOUR);
      vi.setSystemTime(midnight + 4 * HOUR + 5_000);
      // The weekly slot fires at 04:00: delivered before it comes, it would be refused.
      if (sunday)
        await invoke(backup, {
          schedule: 'weekly',
          scheduledTime: new Date(midnight + 4 * HOUR).toISOString(),
        });
      if (day === DAYS - 1)
        await expect(
          invoke(retention, { schedule: 'daily', maxDeletions: 0, confirm: true }),
        ).rejects.toThrow(/above the maxDeletions override of 0/);
      await invoke(retention, {
        schedule: 'daily',
        scheduledTime: new Date(midnight + 4 * HOUR).toISOString(),
      });
      // The day's AMI of db-1 is still there (the AMI job retires it days later): hold it.
      if (day === 0) heldImages.pinned = await holdByAutoScaling();
      if (day === 1) {
        const held = await holdByInstance();
        heldImages.running = held.imageId;
        heldImages.runner = held.instanceId;
      }
      if (day === 2) for (const payload of MISTYPED) await invoke(ops, payload);
    }
    // late-1 opts in after the last backups: never backed up, its RPO missed.
    const late = await launchFleet(ec2, [
      { name: 'late-1', tags: { 'snapkeeper:backup': 'daily' } },
    ]);
    for (const [name, instance] of late) fleet.set(name, instance);
    await copiesForTheTag(3);
    vi.setSystemTime(REPORT_TIME);

    // Act: `npm run report -- --html <file> --days 14`, as an operator runs it.
    file = join(mkdtempSync(join(tmpdir(), 'snapkeeper-report-')), 'coverage.html');
    expect(await writeCoverageReport(['--html', file, '--days', '14'], process.env)).toBe(file);

    // The sources the page must agree with: the history table and the console report.
    const config = loadConfig(process.env);
    runs = await createRunHistoryGateway(config, config.historyTable ?? '', 30).latestRuns(
      DEPLOYMENT,
      { limit: 1000 },
    );
    recovery = ((await invoke(ops, { action: 'report' })) as OpsReport)
      .result as ConsoleRecoveryReport;
    vi.useRealTimers();

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('request', (request) => {
      if (!request.url().startsWith('file:')) requests.push(request.url());
    });
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
    await open();
  }, 300_000);

  // Without the browser every test fails with the reason, rather than being skipped.
  beforeEach(() => {
    if (chromiumMissing) throw chromiumMissing;
  });

  afterAll(async () => {
    vi.useRealTimers();
    await browser?.close();
    if (file) rmSync(join(file, '..'), { recursive: true, force: true });
  });

  it('renders the page from the file alone: no request leaves it, no error is logged', async () => {
    expect(await page.title()).toBe(`Backup coverage — ${DEPLOYMENT} (${REGION})`);
    await expect.poll(() => page.locator('h1').innerText()).toBe(`Backup coverage: ${DEPLOYMENT}`);
    for (const id of ['instances', 'timeline', 'errors', 'blocked', 'orphaned', 'exposure'])
      expect(await page.locator(`section#${id}`).isVisible()).toBe(true);
    expect(requests).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });

  it('shows one row per opted-in instance with the report’s newest snapshot and AMI, recovery points and AMIs', async () => {
    const rows = await page.$$eval('#instances tr[data-instance-id]', (trs) =>
      trs.map((tr) => ({
        instanceId: tr.getAttribute('data-instance-id'),
        snapshot: tr.querySelector('.newest-snapshot .id')?.textContent ?? null,
        image: tr.querySelector('.newest-image .id')?.textContent ?? null,
        recoveryPoints: Number(tr.querySelector('.recovery-points')?.textContent),
        images: Number(tr.querySelector('.images')?.textContent),
        copies: tr.querySelector('.copies')?.textContent,
      })),
    );

    const expected = recovery.instances.map((i) => ({
      instanceId: i.instanceId,
      snapshot: i.newestSnapshot?.snapshotId ?? null,
      image: i.newestImage?.imageId ?? null,
      recoveryPoints: i.recoveryPoints,
      images: i.images,
      // web-2's snapkeeper:copy-to names a region: every row counts its copies there.
      copies: i.instanceId === fleet.get('web-2')?.instanceId ? '3' : '0',
    }));
    const byId = (a: { instanceId: string | null }, b: { instanceId: string | null }) =>
      String(a.instanceId).localeCompare(String(b.instanceId));
    expect(rows.sort(byId)).toEqual(expected.sort(byId));
    const id = (name: string) => fleet.get(name)?.instanceId;
    expect(rows.map((r) => r.instanceId)).toEqual(
      expect.arrayContaining([id('web-1'), id('db-1'), id('batch-1'), id('late-1')]),
    );
    expect(rows.find((r) => r.instanceId === id('db-1'))).toMatchObject({
      recoveryPoints: expect.any(Number),
      image: expect.stringMatching(/^ami-/),
    });
    expect(rows.find((r) => r.instanceId === id('db-1'))?.recoveryPoints).toBeGreaterThan(5);
  });

  it('colours each schedule’s RPO green, amber or red as the report’s ages say, and names the colour in words', async () => {
    const lines = await page.$$eval('#instances .rpo-line', (divs) =>
      divs.map((div) => ({
        instanceId: div.closest('tr')?.getAttribute('data-instance-id'),
        schedule: div.getAttribute('data-schedule'),
        label: div.querySelector('.cue')?.innerText.replace(/^\W+\s*/, ''),
        cue: div.querySelector('.cue')?.getAttribute('data-cue'),
      })),
    );

    const expected = recovery.instances.flatMap((i) =>
      i.rpo.map((r) => {
        const allowed = r.intervalHours + 1;
        const [label, cue] = !r.met
          ? ['missed', 'bad']
          : (r.newestAgeHours ?? 0) >= 0.75 * allowed
            ? ['due soon', 'warn']
            : ['met', 'ok'];
        return { instanceId: i.instanceId, schedule: r.schedule, label, cue };
      }),
    );
    const key = (l: { instanceId?: string | null; schedule: string | null }) =>
      `${l.instanceId} ${l.schedule}`;
    expect([...lines].sort((a, b) => key(a).localeCompare(key(b)))).toEqual(
      [...expected].sort((a, b) => key(a).localeCompare(key(b))),
    );
    expect(new Set(lines.map((l) => l.label))).toEqual(new Set(['met', 'due soon', 'missed']));
    const late = fleet.get('late-1')?.instanceId;
    expect(lines.find((l) => l.instanceId === late)).toMatchObject({ label: 'missed', cue: 'bad' });
  });

  it('gives every colour cue on the page a word, in text of at least 4.5:1 contrast', async () => {
    const cues = await page.$$eval('[data-cue]', (elements) =>
      elements.map((element) => {
        const style = element.ownerDocument.defaultView.getComputedStyle(element);
        return {
          text: element.innerText.trim(),
          color: style.color,
          background: style.backgroundColor,
        };
      }),
    );

    expect(cues.length).toBeGreaterThan(10);
    for (const cue of cues) {
      expect(cue.text).toMatch(/^[✓!✕…] [a-z][a-z ]+$/);
      expect(contrast(cue.color, cue.background)).toBeGreaterThanOrEqual(4.5);
    }
  });

  it('lists every run of the history table with its status and numbers, and draws a column for each', async () => {
    const rows = await page.$$eval('.runs-table tbody tr', (trs) =>
      trs.map((tr) => ({
        runId: tr.getAttribute('data-run-id'),
        status: tr.querySelector('.status')?.innerText.replace(/^\W+\s*/, ''),
        created: Number(tr.querySelector('.created')?.textContent),
        deleted: Number(tr.querySelector('.deleted')?.textContent),
        skipped: Number(tr.querySelector('.skipped')?.textContent),
        failed: Number(tr.querySelector('.failed')?.textContent),
      })),
    );

    expect(runs.length).toBeGreaterThanOrEqual(3 * DAYS + 2);
    expect(rows).toEqual(
      runs.map((run) => ({
        runId: run.runId,
        status: run.status,
        ...expectedNumbers(run),
        failed: run.counts?.failed ?? 0,
      })),
    );
    const created = rows.reduce((n, r) => n + r.created, 0);
    expect(created).toBeGreaterThan(0);
    expect(rows.reduce((n, r) => n + r.deleted, 0)).toBeGreaterThan(0);
    expect(await page.locator('#timeline-chart [data-run-id]').count()).toBe(runs.length);
  });

  it('shows the failed run as failed, and its link in the chart jumps to its error text', async () => {
    const failed = runs.find((r) => r.status === 'failed');
    expect(failed?.errorSummary).toMatch(/^DeletionCapExceeded: .*maxDeletions override of 0/);
    const runId = failed?.runId ?? '';
    const row = page.locator(`.runs-table tr[data-run-id="${runId}"]`);
    expect(await row.locator('.status').innerText()).toBe('✕ failed');
    const column = page.locator(`#timeline-chart a[data-run-id="${runId}"]`);
    expect(await column.locator('.fail-label').textContent()).toBe('✕ failed');

    await column.click();

    const target = page.locator(':target');
    await expect.poll(() => target.getAttribute('data-run-id')).toBe(runId);
    expect(new URL(page.url()).hash).toBe(`#run-${runId}`);
    expect(await target.isVisible()).toBe(true);
    // Scrolled down to it: its top edge at the top of the 900 px viewport.
    expect(await page.evaluate('window.scrollY')).toBeGreaterThan(0);
    const box = await target.boundingBox();
    expect(box?.y).toBeGreaterThan(-2);
    expect(box?.y).toBeLessThan(900);
    expect(await target.innerText()).toContain(failed?.errorSummary ?? 'no summary');
    expect(await target.locator('h3').innerText()).toMatch(/^✕ failed retention · daily/);
  });

  it('links the failed run’s row in the runs table to the same error text', async () => {
    await open();
    const failed = runs.find((r) => r.status === 'failed');

    await page.locator(`.runs-table tr[data-run-id="${failed?.runId}"] .errors a`).click();

    await expect
      .poll(() => page.locator(':target').getAttribute('data-run-id'))
      .toBe(failed?.runId);
    expect(await page.locator(':target .error-summary').innerText()).toBe(failed?.errorSummary);
  });

  it('lists the blocked deletions with what holds them, totals their GiB and says the bytes freed may be less', async () => {
    const rows = await page.$$eval('#blocked tbody tr', (trs) =>
      trs.map((tr) => ({
        resourceId: tr.getAttribute('data-resource-id'),
        heldBy: tr.querySelector('.held-by')?.textContent,
        sizeGiB: tr.querySelector('.gib')?.textContent,
      })),
    );

    expect(rows).toEqual(
      recovery.blocked.map((b) => ({
        resourceId: b.resourceId,
        heldBy: b.heldBy.length > 0 ? b.heldBy.join(', ') : '—',
        sizeGiB: b.sizeGiB === undefined ? '—' : String(b.sizeGiB),
      })),
    );
    // Issue 15, defect 4: a snapshot CreateImage made belongs to AMI retention: snapshot
    // retention never plans to delete it, so it is no blocked deletion. (The rows of blocked
    // deletions are rendered from synthetic reports in test/unit/report/htmlReport.test.ts:
    // the local AWS has no other way to hold a snapshot.)
    // What this fleet holds are two AMIs (an Auto Scaling group's and an instance's, issue
    // 17: the next test names their holders), and the total is theirs.
    expect(recovery.blocked.map((b) => b.resourceId)).not.toContain(heldSnapshot);
    expect(rows.map((r) => r.resourceId).sort()).toEqual(
      [heldImages.pinned, heldImages.running].sort(),
    );
    expect(recovery.blockedGiB).toBe(
      recovery.blocked.reduce((total, b) => total + (b.sizeGiB ?? 0), 0),
    );
    expect(recovery.blockedGiB).toBeGreaterThan(0);
    expect(await page.locator('#blocked').innerText()).toContain(recovery.note);
  });

  it('lists the AMIs an Auto Scaling group and an instance hold among the blocked deletions, naming the group, template, version and instance', async () => {
    const held = await page.$$eval('#blocked tbody tr', (trs) =>
      Object.fromEntries(
        trs.map((tr) => [
          tr.getAttribute('data-resource-id'),
          tr.querySelector('.held-by')?.textContent ?? '',
        ]),
      ),
    );

    expect(held[heldImages.pinned]).toMatch(
      /launch template lt-\w+ \(btest-golden\) version 1, pinned by Auto Scaling group btest-web-asg/,
    );
    expect(held[heldImages.running]).toContain(`instance ${heldImages.runner}`);
    expect(await page.locator('#blocked').innerText()).not.toContain('No deletion is blocked');
    expect(recovery.blocked.map((b) => b.resourceId)).toEqual(
      expect.arrayContaining([heldImages.pinned, heldImages.running]),
    );
  });

  it('counts the copies made for a snapkeeper:copy-to tag in the copies column', async () => {
    const web2 = fleet.get('web-2')?.instanceId;

    const copies = await page
      .locator(`#instances tr[data-instance-id="${web2}"] .copies`)
      .innerText();

    expect(copies).toBe('3');
  });

  it('counts mistyped console payloads apart as rejected, not as failed runs', async () => {
    const cardValue = (label: string) =>
      page
        .locator('.card', { has: page.locator('.card-label', { hasText: label }) })
        .locator('.card-value')
        .innerText();
    const rejectedRuns = runs.filter((r) => r.status === 'rejected');
    const failedRuns = runs.filter((r) => ['failed', 'abandoned'].includes(r.status));

    expect(rejectedRuns).toHaveLength(MISTYPED.length);
    expect(rejectedRuns.every((r) => r.job.startsWith('ops'))).toBe(true);
    expect(await cardValue('Rejected payloads')).toBe(String(MISTYPED.length));
    expect(await cardValue('Failed runs')).toBe(String(failedRuns.length));
    expect(failedRuns.map((r) => r.job)).toEqual(['retention']);
    for (const run of rejectedRuns) {
      const row = page.locator(`.runs-table tr[data-run-id="${run.runId}"]`);
      expect(await row.locator('.status').innerText()).toBe('… rejected');
      expect(
        await page.locator(`#timeline-chart [data-run-id="${run.runId}"] .fail-label`).count(),
      ).toBe(0);
    }
  });

  it('says no public exposure was found', async () => {
    expect(await page.locator('#exposure').innerText()).toContain('none found');
  });

  it('keeps a full-page screenshot (reports/coverage.png) and the page (reports/coverage.html) as test artifacts', async () => {
    mkdirSync(join(PROJECT_ROOT, 'reports'), { recursive: true });
    rmSync(SCREENSHOT, { force: true });
    await open();

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    copyFileSync(file, PAGE_COPY);

    const png = readFileSync(SCREENSHOT);
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect(png.length).toBeGreaterThan(50_000);
    expect(readFileSync(PAGE_COPY, 'utf8')).toBe(readFileSync(file, 'utf8'));
  });
});
