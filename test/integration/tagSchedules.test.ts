import { readFileSync } from 'node:fs';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet } from '../../harness/localFleet.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import type { TagDispatchReport } from '../../lib/jobs/tagScheduleDispatch.ts';
import type { TagRetentionReport } from '../../lib/jobs/tagScheduleRetention.ts';
import {
  snapshotsTagged,
  tagsOf,
  useLocalAws,
  useLocalHistoryTable,
} from '../support/localEnvironment.ts';

const REGION = 'ap-southeast-6';
const DEPLOYMENT = 'itest-tag';
const RATE = 'rate(6 hours)';
const QUARTER_MS = 900_000;
const event = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL(`../../events/${name}`, import.meta.url), 'utf8'));

describe('Handler: functions/backup.ts as the tag dispatcher, against the local AWS over simulated days', () => {
  let ec2: EC2Client;
  let fleet: Map<string, LaunchedInstance>;
  let handler: (event: unknown, context: unknown) => Promise<TagDispatchReport | BackupReport>;
  const id = (name: string) => fleet.get(name)?.instanceId ?? '';
  const dispatch = async (iso: string, delayMs = 20_000): Promise<TagDispatchReport> => {
    vi.setSystemTime(new Date(Date.parse(iso) + delayMs));
    return (await handler(
      { schedule: 'tag', scheduledTime: iso },
      lambdaContext(),
    )) as TagDispatchReport;
  };
  const setsOf = async (name: string, schedule = RATE): Promise<string[]> => {
    const snapshots = await snapshotsTagged(ec2, 'snapkeeper:instance-id', id(name));
    return snapshots
      .map(tagsOf)
      .filter((tags) => tags['snapkeeper:schedule'] === schedule)
      .map((tags) => tags['snapkeeper:slot'] ?? '')
      .sort();
  };

  beforeAll(async () => {
    ec2 = useLocalAws(inject('awsEndpoint'), REGION, { DEPLOYMENT, MAX_DELETIONS: '50' });
    await useLocalHistoryTable(inject('awsEndpoint'), REGION);
    fleet = await launchFleet(ec2, [
      { name: 'six-1', tags: { 'snapkeeper:backup': RATE, 'snapkeeper:retain': 'tag=3' } },
      { name: 'both-1', tags: { 'snapkeeper:backup': `weekly, ${RATE}` } },
      { name: 'paris-1', tags: { 'snapkeeper:backup': 'cron(0 3 * * ? *)@Europe/Paris' } },
      { name: 'fast-1', tags: { 'snapkeeper:backup': 'rate(5 minutes)' } },
      { name: 'named-1', tags: { 'snapkeeper:backup': 'daily' } },
    ]);
    vi.useFakeTimers({ toFake: ['Date'] });
    ({ handler } = (await import('../../functions/backup.ts')) as unknown as {
      handler: typeof handler;
    });
  });

  afterAll(() => {
    vi.useRealTimers();
  });

  it('makes one set per slot of rate(6 hours) over a day of dispatches: 4 sets', async () => {
    // Every hour, and every 15 minutes (the default) around noon: 30 dispatches.
    const start = Date.parse('2026-11-23T00:00:00Z');
    const times: number[] = [];
    for (let t = start; t < start + 24 * 3_600_000; t += QUARTER_MS) {
      const hour = new Date(t).getUTCHours();
      if (t % 3_600_000 === 0 || hour === 11 || hour === 12) times.push(t);
    }
    const reports: TagDispatchReport[] = [];
    for (const t of times) {
      reports.push(await dispatch(new Date(t).toISOString().replace('.000Z', 'Z')));
    }

    const slots = ['00:00', '06:00', '12:00', '18:00'].map((h) => `2026-11-23T${h}:00Z`);
    expect(await setsOf('six-1')).toEqual(slots);
    expect(await setsOf('both-1')).toEqual(slots);
    // The Paris cron: 03:00 in Paris is 02:00Z in November.
    expect(await setsOf('paris-1', 'cron(0 3 * * ? *)@Europe/Paris')).toEqual([
      '2026-11-22T02:00:00Z',
      '2026-11-23T02:00:00Z',
    ]);
    // Only the dispatches at a slot ran it; every other found it claimed.
    const ran = reports.flatMap((r) => r.runs.filter((run) => run.outcome === 'ran'));
    expect(ran.filter((r) => r.expression === RATE).map((r) => r.slot)).toEqual(slots);
    expect([...(ran.find((r) => r.expression === RATE)?.instanceIds ?? [])].sort()).toEqual(
      [id('six-1'), id('both-1')].sort(),
    );
    // named-1 (daily) is none of the dispatcher's business; fast-1 is refused, by name.
    expect(ran.flatMap((r) => r.instanceIds)).not.toContain(id('named-1'));
    expect(await setsOf('fast-1', 'rate(5 minutes)')).toEqual([]);
    expect(reports[0]?.status).toBe('partial');
    expect(reports[0]?.problems).toEqual([
      {
        instanceId: id('fast-1'),
        message: expect.stringMatching(
          new RegExp(
            `^instance ${id('fast-1')}: snapkeeper:backup="rate\\(5 minutes\\)" is a schedule expression that fires every 5 min, more often than the minimum interval of 60 min`,
          ),
        ),
      },
    ]);
  });

  it('tags each set with the expression as its schedule, so that it is its own lineage', async () => {
    const [snapshot] = (await snapshotsTagged(ec2, 'snapkeeper:instance-id', id('six-1'))).filter(
      (s) => tagsOf(s)['snapkeeper:slot'] === '2026-11-23T12:00:00Z',
    );
    expect(tagsOf(snapshot ?? {})).toMatchObject({
      'snapkeeper:managed': 'true',
      'snapkeeper:deployment': DEPLOYMENT,
      'snapkeeper:schedule': RATE,
      'snapkeeper:retain': 'tag=3',
    });
  });

  it('never doubles a set when a dispatch is repeated or delivered late', async () => {
    const repeated = await dispatch('2026-11-23T18:00:00Z', 5 * 3_600_000 + 50 * 60_000);
    const again = await dispatch('2026-11-23T18:00:00Z', 5 * 3_600_000 + 55 * 60_000);

    for (const report of [repeated, again]) {
      expect(report.runs.find((r) => r.expression === RATE)).toMatchObject({
        slot: '2026-11-23T18:00:00Z',
        outcome: 'duplicate',
      });
      expect(report.counts.ran).toBe(0);
    }
    expect(await setsOf('six-1')).toHaveLength(4);
  });

  it('catches up only the newest slot after missed dispatches', async () => {
    // The next day: the dispatcher runs at 00:00, then not again until 20:00.
    await dispatch('2026-11-24T00:00:00Z');
    const late = await dispatch('2026-11-24T20:00:00Z');

    expect(late.runs.find((r) => r.expression === RATE)).toMatchObject({
      slot: '2026-11-24T18:00:00Z',
      outcome: 'ran',
    });
    const nextDay = (await setsOf('six-1')).filter((s) => s.startsWith('2026-11-24'));
    expect(nextDay).toEqual(['2026-11-24T00:00:00Z', '2026-11-24T18:00:00Z']);
  });

  it('applies retention to each expression as its own lineage: tag=N counts, the default otherwise', async () => {
    const { handler: retention } = (await import('../../functions/retention.ts')) as unknown as {
      handler: (event: unknown, context: unknown) => Promise<TagRetentionReport>;
    };
    vi.setSystemTime(new Date('2026-11-24T20:30:00Z'));
    const before = await setsOf('both-1');
    const dry = await retention(
      { schedule: 'tag', scheduledTime: '2026-11-24T20:30:00Z', dryRun: true },
      lambdaContext(),
    );
    expect(await setsOf('six-1')).toHaveLength(6);

    const report = await retention(
      { schedule: 'tag', scheduledTime: '2026-11-24T20:30:00Z' },
      lambdaContext(),
    );
    const again = await retention(
      { schedule: 'tag', scheduledTime: '2026-11-24T20:30:00Z' },
      lambdaContext(),
    );

    expect(dry.runs.find((r) => r.expression === RATE)).toMatchObject({ planned: 3, deleted: 0 });
    expect(report.runs.map((r) => r.expression).sort()).toEqual([
      'cron(0 3 * * ? *)@Europe/Paris',
      RATE,
    ]);
    expect(report.runs.find((r) => r.expression === RATE)).toMatchObject({
      outcome: 'ran',
      deleted: 3,
    });
    // six-1 keeps its newest 3 (snapkeeper:retain=tag=3); both-1 the default 7 of 6.
    expect(await setsOf('six-1')).toEqual([
      '2026-11-23T18:00:00Z',
      '2026-11-24T00:00:00Z',
      '2026-11-24T18:00:00Z',
    ]);
    expect(await setsOf('both-1')).toEqual(before);
    expect(again.runs.find((r) => r.expression === RATE)?.outcome).toBe('duplicate');
  });

  it("shows each instance's next run from its tag in plan, and its cadence with its RPO in report", async () => {
    const { handler: ops } = (await import('../../functions/ops.ts')) as unknown as {
      handler: (event: unknown, context: unknown) => Promise<{ result: Record<string, unknown> }>;
    };
    vi.setSystemTime(new Date('2026-11-24T20:40:00Z'));

    const plan = (await ops({ action: 'plan' }, lambdaContext())).result as {
      tagSchedules: {
        runs: { instanceId: string; expression: string; nextRun: string; lastSlot: string }[];
        problems: string[];
      };
    };
    const report = (await ops({ action: 'report' }, lambdaContext())).result as {
      instances: {
        instanceId: string;
        rpo: { schedule: string; intervalHours: number; met: boolean }[];
      }[];
    };

    expect(plan.tagSchedules.runs).toContainEqual({
      instanceId: id('six-1'),
      name: 'six-1',
      expression: RATE,
      lastSlot: '2026-11-24T18:00:00Z',
      nextRun: '2026-11-25T00:00:00Z',
    });
    expect(plan.tagSchedules.runs.find((r) => r.instanceId === id('paris-1'))?.nextRun).toBe(
      '2026-11-25T02:00:00Z',
    );
    expect(plan.tagSchedules.problems).toEqual([
      expect.stringContaining(`instance ${id('fast-1')}: snapkeeper:backup="rate(5 minutes)"`),
    ]);
    expect(report.instances.find((i) => i.instanceId === id('both-1'))?.rpo).toEqual([
      expect.objectContaining({ schedule: 'weekly' }),
      expect.objectContaining({ schedule: RATE, intervalHours: 6, met: true }),
    ]);
  });

  it('takes the sample event, and refuses a dispatch time ahead of the clock by name', async () => {
    expect(event('backup-tag-dispatch.json')).toEqual({
      schedule: 'tag',
      scheduledTime: '2026-11-23T12:00:00Z',
    });
    vi.setSystemTime(new Date('2026-11-25T00:00:00Z'));
    await expect(
      handler({ schedule: 'tag', scheduledTime: '2026-11-25T06:00:00Z' }, lambdaContext()),
    ).rejects.toThrow(/field "scheduledTime": 2026-11-25T06:00:00.000Z is ahead of the clock/);
    await expect(handler({ schedule: 'TAG', when: 'now' }, lambdaContext())).rejects.toThrow(
      /unexpected field\(s\) "when"; the tag schedules' event takes schedule, scheduledTime and dryRun only/,
    );
  });
});
