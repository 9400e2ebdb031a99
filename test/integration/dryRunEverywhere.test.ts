import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet, ROOT_DEVICE } from '../../harness/localFleet.ts';
import { RECORD_CALLS_VARIABLE, type RecordedCall } from '../../lib/aws/callRecorder.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import type { OpsReport } from '../../lib/jobs/consoleOps.ts';
import type { RetentionReport } from '../../lib/jobs/retentionJob.ts';
import { useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

// This file's own regions and deployment on the shared moto server.
const REGION = 'ap-east-1';
const DEST = 'us-east-1';
const DEPLOYMENT = 'itest-dryrun';
const DAY_MS = 86_400_000;

/** Every EC2 action that changes something: none may be sent while DRY_RUN is set. */
const MUTATING =
  /^(Create|Delete|Deregister|Copy|Modify|Register|Run|Terminate|Attach|Detach|Enable|Disable|Stop|Start|Reset|Import|Restore|Lock|Unlock)/;

type Handler = (event: unknown, context: Context) => Promise<unknown>;

/** The daily 03:00 UTC fire time `daysAgo` days before today's. */
function dailySlot(daysAgo: number): string {
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS + 3 * 3_600_000;
  const fire = today > Date.now() ? today - DAY_MS : today;
  return new Date(fire - daysAgo * DAY_MS).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

async function load(name: string): Promise<Handler> {
  return ((await import(`../../functions/${name}.ts`)) as { handler: Handler }).handler;
}

describe('DRY_RUN=true at every entry point against the local AWS: nothing mutating is sent', () => {
  const savedEnvironment = { ...process.env };
  let fleet: Map<string, LaunchedInstance>;
  let ec2: EC2Client;
  let callsFile: string;
  let dryFrom = 0;
  const id = (name: string) => fleet.get(name)?.instanceId ?? '';
  const rootOf = (name: string) =>
    fleet.get(name)?.volumes.find((v) => v.device === ROOT_DEVICE)?.volumeId ?? '';
  const dryCalls = (): RecordedCall[] =>
    existsSync(callsFile)
      ? readFileSync(callsFile, 'utf8')
          .slice(dryFrom)
          .split('\n')
          .filter((line) => line.trim() !== '')
          .map((line) => JSON.parse(line) as RecordedCall)
          .filter((call) => call.caller.deployment === DEPLOYMENT)
      : [];
  let liveBackupRunId = '';

  beforeAll(async () => {
    const endpoint = inject('awsEndpoint');
    // Calls are recorded to the harness's directory (or one of this file's own).
    process.env[RECORD_CALLS_VARIABLE] ??= mkdtempSync(join(tmpdir(), 'snapkeeper-dry-'));
    if (process.env[RECORD_CALLS_VARIABLE] === 'off') {
      process.env[RECORD_CALLS_VARIABLE] = mkdtempSync(join(tmpdir(), 'snapkeeper-dry-'));
    }
    callsFile = join(process.env[RECORD_CALLS_VARIABLE] ?? '', `calls-${process.pid}.jsonl`);
    ec2 = useLocalAws(endpoint, REGION, {
      DEPLOYMENT,
      LOCAL_TAG_AFTER_CREATE: 'true',
      RECYCLE_BIN_CHECK: 'false',
      RESTORE_WAIT_SECONDS: '5',
    });
    await useLocalHistoryTable(endpoint, REGION);
    fleet = await launchFleet(ec2, [
      {
        name: 'web-1',
        tags: {
          'snapkeeper:backup': 'daily',
          'snapkeeper:retain': '1',
          'snapkeeper:ami': 'daily',
          'snapkeeper:ami-retain': '1',
          'snapkeeper:copy-to': DEST,
          'snapkeeper:copy-retain': '1',
        },
      },
    ]);

    // Live runs first: two days of sets and AMIs, and their copies, so that each dry
    // run below has something it would create, copy or delete.
    vi.resetModules();
    const backup = await load('backup');
    const amis = await load('amis');
    const copy = await load('copy');
    for (const daysAgo of [2, 1]) {
      const report = (await backup(
        { schedule: 'daily', scheduledTime: dailySlot(daysAgo) },
        lambdaContext('snapkeeper-test-backup'),
      )) as BackupReport;
      liveBackupRunId = report.runId;
      await amis(
        { schedule: 'daily', scheduledTime: dailySlot(daysAgo) },
        lambdaContext('snapkeeper-test-amis'),
      );
      // The older day is copied; the newer is left for the dry copy run to plan.
      if (daysAgo === 2) await copy({ copy: true }, lambdaContext('snapkeeper-test-copy'));
    }

    // Then a container of each function started with DRY_RUN=true.
    dryFrom = existsSync(callsFile) ? statSync(callsFile).size : 0;
    process.env.DRY_RUN = 'true';
    vi.resetModules();
  }, 120_000);

  afterAll(() => {
    process.env = savedEnvironment;
  });

  it('backup plans the set it would make', async () => {
    const report = (await (
      await load('backup')
    )(
      { schedule: 'daily', scheduledTime: dailySlot(0) },
      lambdaContext('snapkeeper-test-backup'),
    )) as BackupReport;

    expect(report.dryRun).toBe(true);
    expect(report.instances.map((i) => i.outcome)).toEqual(['planned']);
  });

  it('retention plans the deletions it would make', async () => {
    const report = (await (
      await load('retention')
    )({ schedule: 'daily' }, lambdaContext('snapkeeper-test-retention'))) as RetentionReport;

    expect(report.dryRun).toBe(true);
    expect(report.counts.planned).toBeGreaterThan(0);
  });

  it('amis, its sweep and copy plan only', async () => {
    const amis = await load('amis');
    const made = (await amis(
      { schedule: 'daily', scheduledTime: dailySlot(0) },
      lambdaContext('snapkeeper-test-amis'),
    )) as { dryRun: boolean; created: readonly { outcome: string }[] };
    const swept = (await amis({ sweep: true }, lambdaContext('snapkeeper-test-amis'))) as {
      dryRun: boolean;
    };
    const copied = (await (
      await load('copy')
    )({ copy: true }, lambdaContext('snapkeeper-test-copy'))) as {
      dryRun: boolean;
      copies: readonly { outcome: string }[];
    };

    expect([made.dryRun, swept.dryRun, copied.dryRun]).toEqual([true, true, true]);
    expect(made.created.map((c) => c.outcome)).toEqual(['planned']);
    expect(copied.copies.filter((c) => c.outcome === 'planned').length).toBeGreaterThan(0);
  });

  it('every changing console action plans only', async () => {
    const ops = await load('ops');
    const payloads = [
      { action: 'backup', instanceIds: [id('web-1')] },
      { action: 'backup', schedule: 'daily' },
      { action: 'retention', schedule: 'daily', maxDeletions: 500, confirm: true },
      { action: 'restore-volume', volumeId: rootOf('web-1'), volumeType: 'gp3' },
      { action: 'restore-drill', volumeId: rootOf('web-1') },
      { action: 'duplicate-instance', instanceId: id('web-1'), confirm: true },
      {
        action: 'restore-instance',
        runId: liveBackupRunId,
        instanceId: id('web-1'),
        confirm: true,
      },
    ];
    const answers: OpsReport[] = [];
    for (const payload of payloads) {
      answers.push((await ops(payload, lambdaContext('snapkeeper-test-ops'))) as OpsReport);
    }

    expect(answers.map((a) => [a.action, a.status, a.dryRun])).toEqual(
      payloads.map((p) => [p.action, 'succeeded', true]),
    );
  });

  it('sent no mutating EC2 call from any function, while it did read the fleet', () => {
    const calls = dryCalls();
    const functions = new Set(calls.map((c) => c.caller.functionName));
    const mutating = calls
      .filter((c) => c.service === 'ec2' && MUTATING.test(c.action))
      .map((c) => `${c.caller.functionName}: ${c.action} in ${c.region}`);

    expect([...functions].sort()).toEqual(['amis', 'backup', 'copy', 'ops', 'retention']);
    expect(calls.some((c) => c.action === 'DescribeInstances')).toBe(true);
    expect(mutating).toEqual([]);
  });
});
