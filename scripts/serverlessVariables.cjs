// Variables that serverless.yml computes from its own `custom.schedules`, so that the
// schedules are written once: the SCHEDULES environment variable and the backup events.
'use strict';

async function schedules(resolveVariable) {
  const list = await resolveVariable('self:custom.schedules');
  if (!Array.isArray(list) || list.length === 0)
    throw new Error('custom.schedules must be a non-empty list');
  return list;
}

module.exports = {
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
};
