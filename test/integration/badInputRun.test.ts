import { readFileSync } from 'node:fs';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import {
  type InstanceSpec,
  type LaunchedInstance,
  launchFleet,
  ROOT_DEVICE,
} from '../../harness/localFleet.ts';
import {
  type ActionItem,
  createRunHistoryGateway,
  type RunHistoryGateway,
  type RunRecord,
} from '../../lib/aws/RunHistoryGateway.ts';
import { loadConfig } from '../../lib/config/environment.ts';
import { quoteShort } from '../../lib/domain/tagPolicy.ts';
import type { BackupReport, InstanceBackupResult } from '../../lib/jobs/backupJob.ts';
import { snapshotsTagged, useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

const REGION = 'eu-north-1';
const DEPLOYMENT = 'itest-bad-input';
const SLOT = '2026-11-23T03:00:00Z';
const DATA_DEVICE = '/dev/sdf';

/** A tag case of test/fixtures/bad-input/tags.json (the fields this run needs). */
interface TagCase {
  readonly name: string;
  readonly on: 'instance' | 'volume';
  readonly input: {
    readonly tags: Readonly<Record<string, string>>;
    readonly instanceTags?: Readonly<Record<string, string>>;
  };
  readonly expect: { readonly field: string; readonly messageIncludes: readonly string[] };
  readonly safe: {
    readonly backedUp?: boolean;
    readonly bootIncluded?: boolean;
    readonly volumeIncluded?: boolean;
  };
}

const corpus: TagCase[] = JSON.parse(
  readFileSync(new URL('../fixtures/bad-input/tags.json', import.meta.url), 'utf8'),
);

/** Malformed tags a daily backup run reads, taken from the corpus by name. */
const BAD_CASES = [
  'backup: an unknown schedule (typo) is reported with the known ones',
  'backup: a zero-width space glued to a name is not a schedule',
  'backup: mixed case with one typo backs up the known names',
  'backup: a 256-character list with a known first entry still backs up daily',
  'backup: a trailing comma is reported and daily still backs up',
  'exclude-boot: an empty value is not a boolean; the boot volume is still backed up',
  'exclude-boot: full-width unicode true is not a boolean; the boot volume is still backed up',
  'exclude-boot: 1e9 is not a boolean; the boot volume is still backed up',
  'skip: a 256-character value is reported cut short; the volume is still backed up',
  'skip: a negative number is not a boolean; the volume is still backed up',
  'retain: a negative count is not a whole number; retention keeps everything',
  'retain: a schedule given twice with different counts is reported; retention keeps everything',
].map((name) => {
  const found = corpus.find((c) => c.name === name);
  if (!found) throw new Error(`no tag case named ${JSON.stringify(name)} in the corpus`);
  return found;
});

const GOOD: readonly InstanceSpec[] = [
  {
    name: 'good-web',
    tags: { 'snapkeeper:backup': 'true' },
    dataVolumes: [{ device: DATA_DEVICE, sizeGiB: 10 }],
  },
  {
    name: 'good-db',
    tags: {
      'snapkeeper:backup': 'daily,weekly',
      'snapkeeper:retain': 'daily=14,weekly=8',
      'snapkeeper:exclude-boot': 'false',
    },
    dataVolumes: [{ device: DATA_DEVICE, sizeGiB: 20 }],
  },
  {
    name: 'good-app',
    tags: { 'snapkeeper:backup': 'Daily', 'snapkeeper:retain-days': '3' },
    dataVolumes: [{ device: DATA_DEVICE, sizeGiB: 5, tags: { 'snapkeeper:skip': 'false' } }],
  },
];

const badName = (index: number) => `bad-${String(index + 1).padStart(2, '0')}`;

/** The instance the case describes: its tags on the instance, or on its data volume. */
const specOf = (c: TagCase, index: number): InstanceSpec =>
  c.on === 'volume'
    ? {
        name: badName(index),
        tags: c.input.instanceTags ?? {},
        dataVolumes: [{ device: DATA_DEVICE, sizeGiB: 4, tags: c.input.tags }],
      }
    : {
        name: badName(index),
        tags: c.input.tags,
        dataVolumes: [{ device: DATA_DEVICE, sizeGiB: 4 }],
      };

describe('A backup run over a fleet with malformed tags: functions/backup.ts against the local AWS', () => {
  let ec2: EC2Client;
  let history: RunHistoryGateway;
  let fleet: Map<string, LaunchedInstance>;
  let report: BackupReport;
  let byName: Map<string | undefined, InstanceBackupResult>;
  let snapshotVolumes: Set<string | undefined>;
  let record: RunRecord | undefined;
  let actions: ActionItem[];

  const launched = (name: string): LaunchedInstance => {
    const found = fleet.get(name);
    if (!found) throw new Error(`no instance ${name}`);
    return found;
  };
  const volumeOf = (name: string, device: string): string => {
    const found = launched(name).volumes.find((v) => v.device === device);
    if (!found) throw new Error(`no ${device} on ${name}`);
    return found.volumeId;
  };

  beforeAll(async () => {
    const endpoint = inject('awsEndpoint');
    ec2 = useLocalAws(endpoint, REGION, { DEPLOYMENT });
    const table = await useLocalHistoryTable(endpoint, REGION);
    const config = loadConfig(process.env);
    history = createRunHistoryGateway(config, table, config.historyRetentionDays);
    fleet = await launchFleet(ec2, [
      GOOD[0] as InstanceSpec,
      ...BAD_CASES.slice(0, 6).map((c, i) => specOf(c, i)),
      GOOD[1] as InstanceSpec,
      ...BAD_CASES.slice(6).map((c, i) => specOf(c, i + 6)),
      GOOD[2] as InstanceSpec,
    ]);
    const { handler } = (await import('../../functions/backup.ts')) as unknown as {
      handler: (event: unknown, context: unknown) => Promise<BackupReport>;
    };

    report = await handler(
      { schedule: 'daily', scheduledTime: SLOT },
      lambdaContext('snapkeeper-itest-bad-input-backup'),
    );

    byName = new Map(report.instances.map((r) => [r.name, r]));
    const made = await snapshotsTagged(ec2, 'snapkeeper:run-id', report.runId);
    snapshotVolumes = new Set(made.map((s) => s.VolumeId));
    record = (await history.latestRuns(DEPLOYMENT, { limit: 10 })).find(
      (r) => r.runId === report.runId,
    );
    actions = await history.runActions(report.runId);
  });

  it('finishes the run as partial, without a crash and without a failed instance', () => {
    // Assess
    expect(report.job).toBe('backup');
    expect(report.slot).toBe(SLOT);
    expect(report.status).toBe('partial');
    expect(report.counts.failed).toBe(0);
    expect(report.error).toBeUndefined();
  });

  it('backs up every good instance, every volume, without a problem', () => {
    for (const spec of GOOD) {
      // Prepare
      const instance = launched(spec.name);

      // Act
      const result = byName.get(spec.name);

      // Assess
      expect(result?.outcome, spec.name).toBe('created');
      expect(result?.problems, spec.name).toBeUndefined();
      for (const volume of instance.volumes) {
        expect(snapshotVolumes, `${spec.name} ${volume.device}`).toContain(volume.volumeId);
      }
    }
  });

  it.each(BAD_CASES.map((c, i) => [c.name, c, i] as const))(
    '%s: reported by key and value, and handled on the safe side',
    (_name, c, index) => {
      // Prepare
      const name = badName(index);
      const value = c.input.tags[c.expect.field] ?? '';

      // Act
      const result = byName.get(name);

      // Assess: reported, naming the key and the value (cut short when huge)
      const problems = result?.problems ?? [];
      const naming = problems.filter((p) => p.includes(`${c.expect.field}=${quoteShort(value)}`));
      expect(naming, JSON.stringify(problems)).not.toEqual([]);
      expect(
        naming.some((p) => c.expect.messageIncludes.every((fragment) => p.includes(fragment))),
      ).toBe(true);
      if (value.length > 64) for (const p of problems) expect(p).not.toContain(value);

      // Assess: the safe fallback the corpus names
      if (c.safe.backedUp) {
        expect(result?.outcome).toBe('created');
        expect(snapshotVolumes).toContain(volumeOf(name, DATA_DEVICE));
      } else {
        expect(result).toMatchObject({ outcome: 'skipped', error: { code: 'InvalidTag' } });
        for (const volume of launched(name).volumes) {
          expect(snapshotVolumes).not.toContain(volume.volumeId);
        }
      }
      if (c.safe.bootIncluded) expect(snapshotVolumes).toContain(volumeOf(name, ROOT_DEVICE));
      if (c.safe.volumeIncluded) {
        expect(result?.excludedVolumes ?? []).toEqual([]);
        expect(snapshotVolumes).toContain(volumeOf(name, DATA_DEVICE));
      }
    },
  );

  it('records the run in the history with its status, counts and every reported problem', () => {
    // Assess
    expect(record).toMatchObject({
      runId: report.runId,
      deployment: DEPLOYMENT,
      job: 'backup',
      schedule: 'daily',
      slot: SLOT,
      status: 'partial',
      counts: report.counts,
      endedAt: report.endedAt,
    });
    const stored = JSON.parse(record?.report ?? 'null') as BackupReport | null;
    expect(stored).toEqual(report);
    const storedProblems = (stored?.instances ?? []).flatMap((r) => r.problems ?? []);
    for (const c of BAD_CASES) {
      const value = c.input.tags[c.expect.field] ?? '';
      expect(storedProblems).toEqual(
        expect.arrayContaining([expect.stringContaining(`${c.expect.field}=${quoteShort(value)}`)]),
      );
    }
  });

  it('records a create-snapshot action for every snapshot made, and none for a skipped instance', () => {
    // Prepare
    const made = report.instances.flatMap((r) =>
      r.outcome === 'created' ? (r.snapshots ?? []).map((s) => s.snapshotId) : [],
    );
    const skipped = new Set(
      report.instances.filter((r) => r.outcome === 'skipped').map((r) => r.instanceId),
    );

    // Assess
    const created = actions.filter((a) => a.action === 'create-snapshot');
    expect(created.map((a) => a.resourceId).sort()).toEqual([...made].sort());
    expect(created.filter((a) => skipped.has(a.instanceId ?? ''))).toEqual([]);
  });

  it('summarises why the run is partial in the history item, naming the malformed tags', () => {
    // Assess: `npm run history` shows errorSummary beside the status
    expect(record?.errorSummary ?? '').toContain('snapkeeper:backup');
    expect(record?.errorSummary ?? '').toContain('snapkeeper:exclude-boot');
  });
});
