// Variables that serverless.yml computes from its own `custom.schedules`, so that the
// schedules are written once: the SCHEDULES environment variable and the backup events.
'use strict';

async function schedules(resolveVariable) {
  const list = await resolveVariable('self:custom.schedules');
  if (!Array.isArray(list) || list.length === 0)
    throw new Error('custom.schedules must be a non-empty list');
  return list;
}

// Retention runs an hour after its backup unless a schedule sets retentionCron: the
// cron's minute and hour must then be plain numbers before 23:00.
function retentionCron(s) {
  if (s.retentionCron) return s.retentionCron;
  const body = /^cron\((.*)\)$/.exec(String(s.cron).trim());
  const fields = body ? body[1].trim().split(/\s+/) : [];
  if (
    fields.length === 6 &&
    /^\d+$/.test(fields[0]) &&
    /^\d+$/.test(fields[1]) &&
    Number(fields[1]) < 23
  ) {
    fields[1] = String(Number(fields[1]) + 1);
    return `cron(${fields.join(' ')})`;
  }
  throw new Error(`schedule ${s.name}: set retentionCron (cannot shift ${s.cron} by an hour)`);
}

// The interval of a schedule in seconds (next fire minus the one before), for alarms.
function intervalSeconds(s) {
  const parser = require('aws-cron-parser');
  const body = /^cron\((.*)\)$/.exec(String(s.cron).trim());
  const cron = parser.parse(body ? body[1] : '');
  const first = parser.next(cron, new Date(Date.UTC(2026, 0, 1)));
  const second = parser.next(cron, new Date(first.getTime() + 1000));
  return Math.round((second.getTime() - first.getTime()) / 1000);
}

function logicalId(name) {
  return name.replace(/(^|-)(\w)/g, (_, __, c) => c.toUpperCase()).replace(/[^A-Za-z0-9]/g, '');
}

module.exports = {
  intervalSeconds,
  // Dead-man's switch: one alarm per schedule on the age of the oldest "newest recovery
  // point", above twice the interval, missing data treated as breaching (nothing ran).
  recoveryPointAlarms: async ({ resolveVariable }) => {
    const resources = {};
    for (const s of await schedules(resolveVariable)) {
      resources[`RecoveryPointAge${logicalId(s.name)}Alarm`] = {
        Type: 'AWS::CloudWatch::Alarm',
        Properties: {
          AlarmName: `\${self:service}-\${sls:stage}-recovery-point-age-${s.name}`,
          AlarmDescription: `No ${s.name} recovery point newer than twice the schedule's interval, or no retention run reported one`,
          Namespace: 'Snapkeeper',
          MetricName: 'RecoveryPointAge',
          // The exact dimension set the retention function publishes it with.
          Dimensions: [
            { Name: 'service', Value: 'snapkeeper' },
            { Name: 'deployment', Value: '${sls:stage}' },
            { Name: 'job', Value: 'retention' },
            { Name: 'schedule', Value: s.name },
          ],
          Statistic: 'Maximum',
          Period: 3600,
          EvaluationPeriods: Math.max(1, Math.min(24, Math.ceil((2 * intervalSeconds(s)) / 3600))),
          DatapointsToAlarm: 1,
          Threshold: 2 * intervalSeconds(s),
          ComparisonOperator: 'GreaterThanThreshold',
          TreatMissingData: 'breaching',
          AlarmActions: [{ Ref: 'AlertsTopic' }],
          OKActions: [{ Ref: 'AlertsTopic' }],
        },
      };
    }
    return { Resources: resources };
  },
  retentionCron,
  schedulesJson: async ({ resolveVariable }) => JSON.stringify(await schedules(resolveVariable)),
  backupEvents: async ({ resolveVariable }) =>
    (await schedules(resolveVariable)).map((s) => ({
      schedule: {
        method: 'scheduler',
        name: `\${self:service}-\${sls:stage}-backup-${s.name}`,
        description: `snapkeeper ${s.name} backup`,
        rate: [s.cron],
        timezone: s.timezone || 'UTC',
        input: { schedule: s.name, scheduledTime: '<aws.scheduler.scheduled-time>' },
      },
    })),
  amiEvents: async ({ resolveVariable }) => [
    ...(await schedules(resolveVariable)).map((s) => ({
      schedule: {
        method: 'scheduler',
        name: `\${self:service}-\${sls:stage}-amis-${s.name}`,
        description: `snapkeeper ${s.name} AMIs: create, then retire`,
        rate: [s.cron],
        timezone: s.timezone || 'UTC',
        input: { schedule: s.name, scheduledTime: '<aws.scheduler.scheduled-time>' },
      },
    })),
    {
      schedule: {
        method: 'scheduler',
        name: `\${self:service}-\${sls:stage}-amis-sweep`,
        description: 'snapkeeper orphan sweep: snapshots of AMIs that are gone',
        rate: [await resolveVariable('self:custom.sweepCron')],
        timezone: 'UTC',
        input: { sweep: true },
      },
    },
  ],
  retentionEvents: async ({ resolveVariable }) =>
    (await schedules(resolveVariable)).map((s) => ({
      schedule: {
        method: 'scheduler',
        name: `\${self:service}-\${sls:stage}-retention-${s.name}`,
        description: `snapkeeper ${s.name} retention`,
        rate: [retentionCron(s)],
        timezone: s.timezone || 'UTC',
        input: { schedule: s.name, scheduledTime: '<aws.scheduler.scheduled-time>' },
      },
    })),
};
