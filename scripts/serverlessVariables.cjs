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

module.exports = {
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
