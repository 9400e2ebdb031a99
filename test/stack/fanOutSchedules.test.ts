import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const variables = require('../../scripts/serverlessVariables.cjs') as {
  scheduleResources(options: { resolveVariable: (name: string) => Promise<unknown> }): Promise<{
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  }>;
  workerRateShare(options: {
    resolveVariable: (name: string) => Promise<unknown>;
  }): Promise<string>;
};

const CUSTOM: Record<string, unknown> = {
  'self:custom.schedules': [
    { name: 'daily', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 7 },
  ],
  'self:custom.sweepCron': 'cron(30 6 * * ? *)',
  'self:custom.copyCron': 'cron(0 7 * * ? *)',
  'self:custom.fanOut.workers': 4,
  'self:custom.tagSchedules.dispatchCron': 'cron(0/15 * * * ? *)',
  'self:custom.tagSchedules.retentionCron': 'cron(45 0/6 * * ? *)',
};

function resolver(extra: Record<string, unknown>) {
  return async (name: string) => {
    const values = { ...CUSTOM, ...extra };
    if (!(name in values)) throw new Error(`unexpected variable ${name}`);
    return values[name];
  };
}

async function targetsOf(enabled: boolean) {
  const { Resources } = await variables.scheduleResources({
    resolveVariable: resolver({ 'self:custom.fanOut.enabled': enabled }),
  });
  const target = (id: string) => {
    const t = Resources[id]?.Properties.Target as {
      Arn: { 'Fn::GetAtt': string[] };
      Input: string;
    };
    return { function: t.Arn['Fn::GetAtt'][0], input: JSON.parse(t.Input) as unknown };
  };
  return {
    backup: target('BackupDailySchedule'),
    retention: target('RetentionDailySchedule'),
    amis: target('AmisDailySchedule'),
    tagDispatch: target('BackupTagSchedule'),
    tagRetention: target('RetentionTagSchedule'),
  };
}

describe('Stack variables: the fan-out switch (custom.fanOut.enabled)', () => {
  it('sends the backup and retention schedules to their own functions when off', async () => {
    // Act
    const targets = await targetsOf(false);

    // Assess
    expect(targets.backup).toEqual({
      function: 'BackupLambdaFunction',
      input: { schedule: 'daily', scheduledTime: '<aws.scheduler.scheduled-time>' },
    });
    expect(targets.retention.function).toBe('RetentionLambdaFunction');
  });

  it('sends them to the fan-out planner, naming the job, when on; AMIs stay with their function', async () => {
    // Act
    const targets = await targetsOf(true);

    // Assess
    expect(targets.backup).toEqual({
      function: 'FanoutLambdaFunction',
      input: { job: 'backup', schedule: 'daily', scheduledTime: '<aws.scheduler.scheduled-time>' },
    });
    expect(targets.retention).toEqual({
      function: 'FanoutLambdaFunction',
      input: {
        job: 'retention',
        schedule: 'daily',
        scheduledTime: '<aws.scheduler.scheduled-time>',
      },
    });
    expect(targets.amis.function).toBe('AmisLambdaFunction');
  });

  it('keeps the tag dispatcher and its retention with their own functions, fan-out or not', async () => {
    for (const enabled of [false, true]) {
      const targets = await targetsOf(enabled);
      const input = { schedule: 'tag', scheduledTime: '<aws.scheduler.scheduled-time>' };
      expect(targets.tagDispatch).toEqual({ function: 'BackupLambdaFunction', input });
      expect(targets.tagRetention).toEqual({ function: 'RetentionLambdaFunction', input });
    }
  });

  it.each([
    [2, '0.5'],
    [3, '0.3333'],
    [4, '0.25'],
  ])('gives each of %i workers a share of %s of the rate', async (workers, share) => {
    expect(
      await variables.workerRateShare({
        resolveVariable: resolver({ 'self:custom.fanOut.workers': workers }),
      }),
    ).toBe(share);
  });

  it('refuses fewer than 2 workers (the SQS event source minimum)', async () => {
    await expect(
      variables.workerRateShare({ resolveVariable: resolver({ 'self:custom.fanOut.workers': 1 }) }),
    ).rejects.toThrow('custom.fanOut.workers must be a whole number from 2 to 1000');
  });
});
