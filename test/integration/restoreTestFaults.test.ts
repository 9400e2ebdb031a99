import { DescribeVolumesCommand, type EC2Client, type Volume } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type { FaultProxy, FaultRule } from '../../harness/faultProxy.ts';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { launchFleet } from '../../harness/localFleet.ts';
import type { BackupReport } from '../../lib/jobs/backupJob.ts';
import type { RestoreTestReport } from '../../lib/jobs/restoreTestJob.ts';
import { tagsOf, useFaultProxiedAws } from '../support/localEnvironment.ts';

// moto makes a volume `available` at once and deletes any volume. AWS answers
// DescribeVolumes with `creating` for seconds to minutes, and may answer `error`; and it
// refuses DeleteVolume of a volume still being created (IncorrectState). A fault proxy
// between the handler and moto answers as AWS would.
const REGION = 'ap-east-2';
const DEPLOYMENT = 'itest-rt-faults';
const SCHEDULES = [
  { name: 'daily', cron: 'cron(0 3 * * ? *)', retain: 7, restoreTests: { instances: 'all' } },
];

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

/**
 * DescribeVolumes of one volume id (the test's polls; the leftover search filters by
 * tag) answered with `state` for the polls `when` picks (1-based).
 */
function volumeState(state: string, when: (poll: number) => boolean): FaultRule {
  let polls = 0;
  return {
    name: `DescribeVolumes says ${state}`,
    action: 'DescribeVolumes',
    decide: (call) => {
      if (!call.params['VolumeId.1']) return undefined;
      polls += 1;
      return when(polls)
        ? {
            kind: 'rewrite',
            rewrite: (answer) =>
              answer.body.replace(/<status>available<\/status>/g, `<status>${state}</status>`),
          }
        : undefined;
    },
  };
}

/** The report of a run, whether the handler answered it or threw it (a failed run). */
async function reportOf(run: Promise<unknown>): Promise<RestoreTestReport> {
  try {
    return (await run) as RestoreTestReport;
  } catch (error) {
    const report = (error as { report?: RestoreTestReport }).report;
    if (!report) throw error;
    return report;
  }
}

describe('Restore tests against AWS-like volume states (fault proxy in front of the local AWS)', () => {
  let proxy: FaultProxy;
  let ec2: EC2Client;
  let restoreTest: Handler;

  const testVolumes = async (): Promise<Volume[]> =>
    ((await ec2.send(new DescribeVolumesCommand({}))).Volumes ?? []).filter(
      (v) => tagsOf(v)['snapkeeper:restore-test'] === 'true',
    );

  beforeAll(async () => {
    ({ proxy, ec2 } = await useFaultProxiedAws(inject('awsEndpoint'), REGION, {
      DEPLOYMENT,
      SCHEDULES: JSON.stringify(SCHEDULES),
      RESTORE_WAIT_SECONDS: '6',
    }));
    await launchFleet(ec2, [{ name: 'web-1', tags: { 'snapkeeper:backup': 'daily' } }]);
    const load = async (name: string): Promise<Handler> =>
      ((await import(`../../functions/${name}.ts`)) as { handler: Handler }).handler;
    const backup = (await (
      await load('backup')
    )({ schedule: 'daily' }, lambdaContext())) as BackupReport;
    if (backup.status !== 'succeeded') console.log('BACKUP', JSON.stringify(backup).slice(0, 3000));
    expect(backup.status).toBe('succeeded');
    restoreTest = await load('restoreTest');
  });

  beforeEach(() => {
    proxy.rules.clear();
  });

  afterAll(async () => {
    ec2?.destroy();
    await proxy?.stop();
  });

  it('times creating → available: a volume creating for two polls passes, its time counted from CreateVolume', async () => {
    // Prepare
    proxy.rules.add(volumeState('creating', (poll) => poll <= 2));

    // Act
    const report = await reportOf(restoreTest({ schedule: 'daily' }, lambdaContext()));

    // Assess: polled at 0 s, 1 s (after 1 s) and 3 s (after 2 s more).
    expect(report.status).toBe('succeeded');
    const volume = report.instances[0]?.volumes[0];
    expect(volume).toMatchObject({ outcome: 'passed', deleted: true });
    expect(volume?.secondsToAvailable).toBeGreaterThanOrEqual(3);
    expect(await testVolumes()).toEqual([]);
  });

  it('fails a volume that goes into error, and still deletes it', async () => {
    // Prepare
    proxy.rules.add(volumeState('error', () => true));

    // Act
    const report = await reportOf(restoreTest({ schedule: 'daily' }, lambdaContext()));

    // Assess
    expect(report.status).toBe('failed');
    expect(report.error?.code).toBe('RestoreTestFailed');
    expect(report.instances[0]?.volumes[0]).toMatchObject({
      outcome: 'failed',
      problems: ['the volume went into state error'],
      deleted: true,
    });
    expect(await testVolumes()).toEqual([]);
  });

  it('fails a volume still creating when the wait ends, and reports the one EC2 will not delete yet', async () => {
    // Prepare: creating for ever, and DeleteVolume refused as AWS refuses it then.
    proxy.rules.add(volumeState('creating', () => true));
    proxy.rules.add({
      action: 'DeleteVolume',
      decide: () => ({
        kind: 'error',
        code: 'IncorrectState',
        status: 400,
        message: "The volume is 'creating'",
      }),
    });

    // Act
    const report = await reportOf(restoreTest({ schedule: 'daily' }, lambdaContext()));

    // Assess
    const volume = report.instances[0]?.volumes[0];
    expect(volume?.outcome).toBe('failed');
    expect(volume?.problems[0]).toMatch(/^not available after \d+ s \(state creating\)$/);
    expect(volume?.deleted).toBe(false);
    expect(report.counts.leftoversRemaining).toBe(1);
    const left = await testVolumes();
    expect(left.map((v) => v.VolumeId)).toEqual([volume?.testVolumeId]);
    expect(tagsOf(left[0] ?? {})['snapkeeper:deployment']).toBe(DEPLOYMENT);
  });

  it('finds the leftover by tag on the next run and reports it while it may still be in use', async () => {
    // Act
    const report = await reportOf(
      restoreTest({ schedule: 'daily', dryRun: true }, lambdaContext()),
    );

    // Assess
    expect(report.leftovers).toEqual([
      {
        volumeId: (await testVolumes())[0]?.VolumeId,
        outcome: 'kept',
        reason: 'made in the last 16 minutes: it may belong to a test still running',
      },
    ]);
  });
});
