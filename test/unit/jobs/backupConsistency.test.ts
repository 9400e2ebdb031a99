/**
 * The backup run with application-consistent sets (issue 21, part 1): the plan carries
 * each instance's choice (its tag, else the schedule's option), the run wraps the set
 * in the pre/post scripts, and the report, its counts and the snapshots' tags say what
 * each set got. Run Command and EC2 are stubbed; the orchestration's own paths are in
 * consistentSnapshotSet.test.ts.
 */
import { describe, expect, it, vi } from 'vitest';
import type { CreatedSnapshot } from '../../../lib/aws/Ec2Gateway.ts';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import type { InstanceFacts, SnapshotSetRequest } from '../../../lib/domain/backupPlan.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import { type BackupJobDependencies, runBackupJob } from '../../../lib/jobs/backupJob.ts';
import type { RunCommandPort, RunCommandRequest } from '../../../lib/jobs/ports.ts';
import { silentLogger } from '../../../lib/jobs/runReport.ts';

const keys = tagKeys();
const SLOT = new Date('2026-11-23T03:00:00.000Z');

const instance = (id: string, tags: Record<string, string>): InstanceFacts => ({
  instanceId: id,
  state: 'running',
  rootDeviceName: '/dev/xvda',
  tags: { [keys.backup]: 'daily', Name: id, ...tags },
  volumes: [{ volumeId: `vol-${id}`, deviceName: '/dev/xvda' }],
});

function fakeEc2(instances: readonly InstanceFacts[]) {
  const requests: SnapshotSetRequest[] = [];
  const events: string[] = [];
  const ec2: BackupJobDependencies['ec2'] = {
    async *listInstancesWithTagKey() {
      for (const i of instances) yield i;
    },
    async *listInstancesByIds(ids) {
      for (const i of instances) if (ids.includes(i.instanceId)) yield i;
    },
    volumeTagsWithKey: async () => new Map(),
    async *listSnapshotsTagged(): AsyncGenerator<SnapshotFacts> {},
    deleteSnapshot: async () => undefined,
    createSnapshotSet: async (request): Promise<CreatedSnapshot[]> => {
      events.push(`create ${request.instanceId}`);
      requests.push(request);
      return request.included.map((v) => ({
        snapshotId: `snap-${v.volumeId}`,
        volumeId: v.volumeId,
        state: 'pending',
      }));
    },
  };
  return { ec2, requests, events };
}

/** Run Command: `unmanaged` instances answer InvalidInstanceId; every script succeeds. */
function fakeRunCommand(events: string[], unmanaged: readonly string[] = []) {
  const sent: RunCommandRequest[] = [];
  const port: RunCommandPort = {
    sendCommand: vi.fn(async (r: RunCommandRequest) => {
      events.push(`${r.parameters.command?.[0]} ${r.instanceId}`);
      sent.push(r);
      if (unmanaged.includes(r.instanceId)) {
        throw new AwsCallError('SendCommand', 'InvalidInstanceId', 'not in a valid state');
      }
      return `cmd-${sent.length}`;
    }),
    commandInvocation: async () => ({ state: 'success', detail: 'Success' }),
  };
  return { port, sent };
}

function deps(
  ec2: BackupJobDependencies['ec2'],
  runCommand: RunCommandPort | undefined,
  catalog = parseScheduleCatalog(DEFAULT_SCHEDULES),
): BackupJobDependencies {
  return {
    ec2,
    ...(runCommand ? { runCommand } : {}),
    config: {
      deployment: 'test',
      keys,
      catalog,
      copyTags: [],
      backupConcurrency: 4,
      manualRetainDays: 30,
      consistencyTimeoutSeconds: 5,
      consistencyFsfreezeDocument: 'snapkeeper-fsfreeze-test',
      consistencyDocuments: ['db-flush'],
    },
    clock: () => new Date('2026-11-23T03:00:07.000Z'),
    runId: '20261123T030007Z-a1b2c3d4',
    logger: silentLogger,
  };
}

const tag = (request: SnapshotSetRequest | undefined, key: string) =>
  request?.tags.find((t) => t.Key === key)?.Value;
const run = (d: BackupJobDependencies, dryRun = false) =>
  runBackupJob({ schedule: 'daily', scheduledTime: SLOT, dryRun, trigger: 'schedule' }, d);

describe('runBackupJob with snapkeeper:consistency', () => {
  it('freezes, snapshots tagged app, thaws, and counts it; the run succeeds', async () => {
    const fleet = fakeEc2([instance('i-db', { [keys.consistency]: 'fsfreeze' })]);
    const ssm = fakeRunCommand(fleet.events);
    const report = await run(deps(fleet.ec2, ssm.port));
    expect(fleet.events).toEqual(['pre-script i-db', 'create i-db', 'post-script i-db']);
    expect(ssm.sent[0]?.document).toBe('snapkeeper-fsfreeze-test');
    expect(tag(fleet.requests[0], keys.consistency)).toBe('app');
    expect(report.status).toBe('succeeded');
    expect(report.counts).toMatchObject({ backedUp: 1, appConsistent: 1, crashFallback: 0 });
    expect(report.instances[0]?.consistency).toMatchObject({
      requested: 'fsfreeze',
      outcome: 'app',
    });
  });

  it('falls back to crash-consistent for an unmanaged instance, tags the set so, and ends partial with the reason', async () => {
    const fleet = fakeEc2([
      instance('i-db', { [keys.consistency]: 'fsfreeze' }),
      instance('i-db2', { [keys.consistency]: 'fsfreeze' }),
    ]);
    const ssm = fakeRunCommand(fleet.events, ['i-db2']);
    const report = await run(deps(fleet.ec2, ssm.port));
    const db2 = report.instances.find((i) => i.instanceId === 'i-db2');
    expect(db2?.outcome).toBe('created');
    expect(db2?.consistency?.outcome).toBe('crash-fallback');
    expect(db2?.problems?.join()).toContain('not managed by Systems Manager');
    const request = fleet.requests.find((r) => r.instanceId === 'i-db2');
    expect(tag(request, keys.consistency)).toBe('crash-fallback');
    expect(report.status).toBe('partial');
    expect(report.counts).toMatchObject({ backedUp: 2, appConsistent: 1, crashFallback: 1 });
  });

  it('skips and reports an unmanaged instance whose tag says ! (no set made)', async () => {
    const fleet = fakeEc2([instance('i-db', { [keys.consistency]: 'fsfreeze!' })]);
    const ssm = fakeRunCommand(fleet.events, ['i-db']);
    const report = await run(deps(fleet.ec2, ssm.port));
    expect(fleet.requests).toHaveLength(0);
    expect(report.instances[0]).toMatchObject({
      outcome: 'skipped',
      error: { code: 'ConsistencyUnavailable' },
    });
    expect(report.counts).toMatchObject({ skipped: 1, consistencySkipped: 1 });
    expect(report.status).toBe('partial');
  });

  it('applies the schedule’s consistency option to an instance without the tag; the tag wins over it', async () => {
    const catalog = parseScheduleCatalog([
      { name: 'daily', cron: 'cron(0 3 * * ? *)', retain: 7, consistency: 'ssm:db-flush:2' },
    ]);
    const fleet = fakeEc2([
      instance('i-db', {}),
      instance('i-web', { [keys.consistency]: 'crash' }),
    ]);
    const ssm = fakeRunCommand(fleet.events);
    const report = await run(deps(fleet.ec2, ssm.port, catalog));
    expect(ssm.sent.map((s) => [s.instanceId, s.document, s.documentVersion])).toEqual([
      ['i-db', 'db-flush', '2'],
      ['i-db', 'db-flush', '2'],
    ]);
    expect(
      tag(
        fleet.requests.find((r) => r.instanceId === 'i-web'),
        keys.consistency,
      ),
    ).toBe('crash');
    expect(report.status).toBe('succeeded');
  });

  it('sends nothing in a dry run, and says which mode a real run would use', async () => {
    const fleet = fakeEc2([instance('i-db', { [keys.consistency]: 'fsfreeze' })]);
    const ssm = fakeRunCommand(fleet.events);
    const report = await run(deps(fleet.ec2, ssm.port), true);
    expect(ssm.port.sendCommand).not.toHaveBeenCalled();
    expect(fleet.requests).toHaveLength(0);
    expect(report.instances[0]?.consistency).toMatchObject({
      requested: 'fsfreeze',
      outcome: 'planned',
    });
  });

  it('falls back, reported, when the run has no Run Command (a batch in another account)', async () => {
    const fleet = fakeEc2([instance('i-db', { [keys.consistency]: 'fsfreeze' })]);
    const report = await run(deps(fleet.ec2, undefined));
    expect(report.instances[0]?.consistency?.reason).toContain('RunCommandUnavailable');
    expect(tag(fleet.requests[0], keys.consistency)).toBe('crash-fallback');
  });

  it('leaves a plain instance’s request and report as they always were', async () => {
    const fleet = fakeEc2([instance('i-web', {})]);
    const ssm = fakeRunCommand(fleet.events);
    const report = await run(deps(fleet.ec2, ssm.port));
    expect(fleet.requests[0]).not.toHaveProperty('consistency');
    expect(tag(fleet.requests[0], keys.consistency)).toBeUndefined();
    expect(report.instances[0]).not.toHaveProperty('consistency');
    expect(report.counts).not.toHaveProperty('appConsistent');
    expect(ssm.port.sendCommand).not.toHaveBeenCalled();
  });

  it('reports a bad tag and still makes the set (crash-fallback)', async () => {
    const fleet = fakeEc2([instance('i-db', { [keys.consistency]: 'fsfreez' })]);
    const ssm = fakeRunCommand(fleet.events);
    const report = await run(deps(fleet.ec2, ssm.port));
    expect(report.instances[0]?.outcome).toBe('created');
    expect(report.instances[0]?.problems?.join()).toContain(
      'snapkeeper:consistency="fsfreez" is not a consistency mode',
    );
    expect(report.status).toBe('partial');
  });
});

describe('runBackupJob with snapkeeper:consistency=vss', () => {
  /** EC2 whose describe lists the set AWSEC2-CreateVssSnapshot made once it was sent. */
  function vssFleet(existing = false) {
    const fleet = fakeEc2([instance('i-win', { [keys.consistency]: 'vss' })]);
    let sent = existing;
    const listed: Record<string, unknown>[] = [];
    const made: SnapshotFacts = {
      snapshotId: 'snap-vss-1',
      volumeId: 'vol-i-win',
      state: 'pending',
      startTime: new Date('2026-11-23T03:00:09.000Z'),
      tags: {},
    };
    const ec2: BackupJobDependencies['ec2'] = {
      ...fleet.ec2,
      async *listSnapshotsTagged(tags) {
        listed.push({ ...tags });
        // The run's own slot read lists nothing (a fresh slot); the VSS look finds the set.
        if (sent && tags[keys.instanceId] === 'i-win' && !Array.isArray(tags[keys.instanceId]))
          yield made;
      },
    };
    const port: RunCommandPort = {
      sendCommand: vi.fn(async (r: RunCommandRequest) => {
        fleet.events.push(`send ${r.document}`);
        sent = true;
        return 'cmd-vss';
      }),
      commandInvocation: async () => ({ state: 'success', detail: 'Success' }),
    };
    return { ...fleet, ec2, port, listed };
  }

  it('sends AWSEC2-CreateVssSnapshot, finds its set by tags, records it, and counts it app', async () => {
    const fleet = vssFleet();
    const records: { action: string; resourceId: string; phase?: string }[] = [];
    const report = await run({
      ...deps(fleet.ec2, fleet.port),
      journal: { record: async (r) => void records.push(r as never) },
    });
    expect(fleet.events).toEqual(['send AWSEC2-CreateVssSnapshot']);
    const win = report.instances[0];
    expect(win?.outcome).toBe('created');
    expect(win?.snapshots?.map((s) => s.snapshotId)).toEqual(['snap-vss-1']);
    expect(win?.consistency).toMatchObject({ requested: 'vss', outcome: 'app' });
    expect(report.counts).toMatchObject({ backedUp: 1, appConsistent: 1 });
    expect(report.status).toBe('succeeded');
    expect(
      records.some((r) => r.action === 'create-snapshot' && r.resourceId === 'snap-vss-1'),
    ).toBe(true);
    const tags = (vi.mocked(fleet.port.sendCommand).mock.calls[0]?.[0].parameters.tags ?? [])[0];
    expect(tags).toContain(`Key=${keys.slot},Value=2026-11-23T03:00:00Z`);
    expect(tags).toContain(`Key=${keys.consistency},Value=app`);
  });

  it('falls back to a crash-consistent set, reported, when the run has no Run Command', async () => {
    const fleet = vssFleet();
    const report = await run(deps(fleet.ec2, undefined));
    expect(report.instances[0]?.consistency?.outcome).toBe('crash-fallback');
    expect(fleet.events).toEqual(['create i-win']);
    expect(report.status).toBe('partial');
  });
});
