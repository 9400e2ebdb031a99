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

const FUNCTIONS = {
  backup: 'Backup',
  retention: 'Retention',
  amis: 'Amis',
  ops: 'Ops',
  copy: 'Copy',
  fanout: 'Fanout',
  worker: 'Worker',
};
const functionArn = (fn) => ({ 'Fn::GetAtt': [`${FUNCTIONS[fn]}LambdaFunction`, 'Arn'] });

// EventBridge Scheduler schedules, written as CloudFormation resources because osls's
// `method: scheduler` can express neither a retry policy, nor a dead-letter queue, nor an
// invoke role of their own: flexible window off, the input the handlers expect.
async function scheduleResources({ resolveVariable }) {
  const list = await schedules(resolveVariable);
  const fanOut = String(await resolveVariable('self:custom.fanOut.enabled')) === 'true';
  const sweepCron = await resolveVariable('self:custom.sweepCron');
  const resources = {
    ScheduleGroup: {
      Type: 'AWS::Scheduler::ScheduleGroup',
      Properties: { Name: '${self:service}-${sls:stage}' },
    },
    SchedulesDeadLetterQueue: {
      Type: 'AWS::SQS::Queue',
      Properties: {
        QueueName: '${self:service}-${sls:stage}-undelivered-schedules',
        MessageRetentionPeriod: 1209600,
        SqsManagedSseEnabled: true,
      },
    },
    SchedulesDeadLetterQueuePolicy: {
      Type: 'AWS::SQS::QueuePolicy',
      Properties: {
        Queues: [{ Ref: 'SchedulesDeadLetterQueue' }],
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Sid: 'SchedulerSendsUndelivered',
              Effect: 'Allow',
              Principal: { Service: 'scheduler.amazonaws.com' },
              Action: 'sqs:SendMessage',
              Resource: { 'Fn::GetAtt': ['SchedulesDeadLetterQueue', 'Arn'] },
              Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
            },
          ],
        },
      },
    },
    SchedulesDeadLetterAlarm: {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: {
        AlarmName: '${self:service}-${sls:stage}-undelivered-schedules',
        AlarmDescription: 'A schedule could not invoke its function after its retries',
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [
          { Name: 'QueueName', Value: { 'Fn::GetAtt': ['SchedulesDeadLetterQueue', 'QueueName'] } },
        ],
        Statistic: 'Maximum',
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: 'AlertsTopic' }],
      },
    },
    SchedulerInvokeRole: {
      Type: 'AWS::IAM::Role',
      Properties: {
        RoleName: '${self:service}-${sls:stage}-${aws:region}-scheduler',
        AssumeRolePolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { Service: 'scheduler.amazonaws.com' },
              Action: 'sts:AssumeRole',
              Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
            },
          ],
        },
        Policies: [
          {
            PolicyName: 'invoke-snapkeeper',
            PolicyDocument: {
              Version: '2012-10-17',
              Statement: [
                {
                  Effect: 'Allow',
                  Action: 'lambda:InvokeFunction',
                  Resource: ['backup', 'retention', 'amis', 'copy', 'fanout'].map(functionArn),
                },
                {
                  Effect: 'Allow',
                  Action: 'sqs:SendMessage',
                  Resource: { 'Fn::GetAtt': ['SchedulesDeadLetterQueue', 'Arn'] },
                },
              ],
            },
          },
        ],
      },
    },
  };
  const schedule = (id, name, fn, cron, timezone, input, description) => {
    resources[id] = {
      Type: 'AWS::Scheduler::Schedule',
      Properties: {
        Name: name,
        GroupName: { Ref: 'ScheduleGroup' },
        Description: description,
        ScheduleExpression: cron,
        ScheduleExpressionTimezone: timezone || 'UTC',
        FlexibleTimeWindow: { Mode: 'OFF' },
        State: 'ENABLED',
        Target: {
          Arn: functionArn(fn),
          RoleArn: { 'Fn::GetAtt': ['SchedulerInvokeRole', 'Arn'] },
          Input: JSON.stringify(input),
          // Scheduler retries a delivery it could not make for up to a day; the slot
          // claim in the run history makes a late or repeated delivery run once.
          RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400 },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': ['SchedulesDeadLetterQueue', 'Arn'] } },
        },
      },
    };
  };
  for (const s of list) {
    const input = { schedule: s.name, scheduledTime: '<aws.scheduler.scheduled-time>' };
    const id = logicalId(s.name);
    // With fan-out on, backup and retention go through the planner (same slot claim).
    const via = (job) => (fanOut ? ['fanout', { job, ...input }] : [job, input]);
    schedule(
      `Backup${id}Schedule`,
      `backup-${s.name}`,
      via('backup')[0],
      s.cron,
      s.timezone,
      via('backup')[1],
      `snapkeeper ${s.name} backup`,
    );
    schedule(
      `Amis${id}Schedule`,
      `amis-${s.name}`,
      'amis',
      s.cron,
      s.timezone,
      input,
      `snapkeeper ${s.name} AMIs: create, then retire`,
    );
    schedule(
      `Retention${id}Schedule`,
      `retention-${s.name}`,
      via('retention')[0],
      retentionCron(s),
      s.timezone,
      via('retention')[1],
      `snapkeeper ${s.name} retention`,
    );
  }
  schedule(
    'SweepSchedule',
    'amis-sweep',
    'amis',
    sweepCron,
    'UTC',
    { sweep: true },
    'snapkeeper orphan sweep',
  );
  schedule(
    'CopySchedule',
    'copy-catch-up',
    'copy',
    await resolveVariable('self:custom.copyCron'),
    'UTC',
    { copy: true },
    'snapkeeper copies: catch up, AMIs, retention of copies, shares, public backups',
  );
  return { Resources: resources };
}

// Least privilege: each function gets its own role with only the calls it makes.
const STATEMENTS = {
  describeFleet: (actions) => ({
    Sid: 'DescribeOnly',
    Effect: 'Allow',
    Action: actions,
    Resource: '*',
  }),
  createSnapshotSets: [
    {
      Sid: 'CreateManagedSnapshotSets',
      Effect: 'Allow',
      Action: 'ec2:CreateSnapshots',
      Resource: 'arn:aws:ec2:*::snapshot/*',
      Condition: {
        StringEquals: {
          'aws:RequestTag/snapkeeper:managed': 'true',
          'aws:RequestTag/snapkeeper:deployment': '${sls:stage}',
        },
      },
    },
    {
      Sid: 'CreateSnapshotSetsFromInstances',
      Effect: 'Allow',
      Action: 'ec2:CreateSnapshots',
      Resource: ['arn:aws:ec2:*:*:instance/*', 'arn:aws:ec2:*:*:volume/*'],
    },
  ],
  createImages: [
    {
      Sid: 'CreateManagedImages',
      Effect: 'Allow',
      Action: 'ec2:CreateImage',
      Resource: ['arn:aws:ec2:*::image/*', 'arn:aws:ec2:*::snapshot/*'],
      Condition: {
        StringEquals: {
          'aws:RequestTag/snapkeeper:managed': 'true',
          'aws:RequestTag/snapkeeper:deployment': '${sls:stage}',
        },
      },
    },
    {
      Sid: 'CreateImagesFromInstances',
      Effect: 'Allow',
      Action: 'ec2:CreateImage',
      Resource: 'arn:aws:ec2:*:*:instance/*',
    },
  ],
  tagAtCreation: (createActions, resources) => ({
    Sid: 'TagOnlyAtCreation',
    Effect: 'Allow',
    Action: 'ec2:CreateTags',
    Resource: resources,
    Condition: { StringEquals: { 'ec2:CreateAction': createActions } },
  }),
  deleteManagedSnapshots: {
    Sid: 'DeleteOnlyOwnManagedSnapshots',
    Effect: 'Allow',
    Action: 'ec2:DeleteSnapshot',
    Resource: 'arn:aws:ec2:*::snapshot/*',
    Condition: {
      StringEquals: {
        'aws:ResourceTag/snapkeeper:managed': 'true',
        'aws:ResourceTag/snapkeeper:deployment': '${sls:stage}',
      },
    },
  },
  deregisterManagedImages: {
    Sid: 'DeregisterOnlyOwnManagedImages',
    Effect: 'Allow',
    Action: 'ec2:DeregisterImage',
    Resource: 'arn:aws:ec2:*::image/*',
    Condition: {
      StringEquals: {
        'aws:ResourceTag/snapkeeper:managed': 'true',
        'aws:ResourceTag/snapkeeper:deployment': '${sls:stage}',
      },
    },
  },
  neverPublic: {
    Sid: 'NeverMakeAnythingPublic',
    Effect: 'Deny',
    Action: ['ec2:ModifySnapshotAttribute', 'ec2:ModifyImageAttribute'],
    Resource: '*',
    Condition: { StringEquals: { 'ec2:Add/group': 'all' } },
  },
  runHistory: {
    Sid: 'RunHistoryTableOnly',
    Effect: 'Allow',
    Action: [
      'dynamodb:GetItem',
      'dynamodb:BatchGetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:Query',
    ],
    Resource: [
      { 'Fn::GetAtt': ['RunHistoryTable', 'Arn'] },
      { 'Fn::Join': ['/', [{ 'Fn::GetAtt': ['RunHistoryTable', 'Arn'] }, 'index', '*']] },
    ],
  },
  runHistoryBatches: {
    Sid: 'RecordFanOutBatches',
    Effect: 'Allow',
    Action: 'dynamodb:BatchWriteItem',
    Resource: { 'Fn::GetAtt': ['RunHistoryTable', 'Arn'] },
  },
  assumeTargetRoles: (roleName) => ({
    Sid: 'AssumeTheTargetAccountRoleOnly',
    Effect: 'Allow',
    Action: 'sts:AssumeRole',
    Resource: `arn:aws:iam::*:role/${roleName}`,
  }),
  runEvents: {
    Sid: 'PublishRunEventsOnDefaultBus',
    Effect: 'Allow',
    Action: 'events:PutEvents',
    Resource: {
      'Fn::Sub': 'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default',
    },
  },
  failureDestination: {
    Sid: 'SendFailedInvocations',
    Effect: 'Allow',
    Action: 'sqs:SendMessage',
    Resource: { 'Fn::GetAtt': ['FailedInvocationsQueue', 'Arn'] },
  },
  tracing: {
    Sid: 'Tracing',
    Effect: 'Allow',
    Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
    Resource: '*',
  },
  logs: (fn) => ({
    Sid: 'OwnLogGroup',
    Effect: 'Allow',
    Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    Resource: {
      'Fn::Sub': `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/\${self:service}-\${sls:stage}-${fn}:*`,
    },
  }),
};

function functionRoles(reportBucket, reportPrefix, targetRoleName) {
  const common = (fn) => [
    STATEMENTS.logs(fn),
    STATEMENTS.tracing,
    STATEMENTS.runHistory,
    STATEMENTS.runEvents,
    STATEMENTS.failureDestination,
    STATEMENTS.neverPublic,
  ];
  const statements = {
    backup: [
      STATEMENTS.describeFleet([
        'ec2:DescribeInstances',
        'ec2:DescribeVolumes',
        'ec2:DescribeSnapshots',
      ]),
      ...STATEMENTS.createSnapshotSets,
      STATEMENTS.tagAtCreation(['CreateSnapshots'], 'arn:aws:ec2:*::snapshot/*'),
      // Only to remove the extra copy of a duplicate set for a slot.
      STATEMENTS.deleteManagedSnapshots,
    ],
    retention: [
      STATEMENTS.describeFleet([
        'ec2:DescribeInstances',
        'ec2:DescribeVolumes',
        'ec2:DescribeSnapshots',
        'ec2:DescribeImages',
      ]),
      STATEMENTS.deleteManagedSnapshots,
    ],
    amis: [
      STATEMENTS.describeFleet([
        'ec2:DescribeInstances',
        'ec2:DescribeSnapshots',
        'ec2:DescribeImages',
        'ec2:DescribeLaunchTemplates',
        'ec2:DescribeLaunchTemplateVersions',
        'ec2:ListImagesInRecycleBin',
        'autoscaling:DescribeAutoScalingGroups',
        'autoscaling:DescribeLaunchConfigurations',
        'rbin:ListRules',
        'rbin:GetRule',
      ]),
      ...STATEMENTS.createImages,
      STATEMENTS.tagAtCreation(
        ['CreateImage'],
        ['arn:aws:ec2:*::image/*', 'arn:aws:ec2:*::snapshot/*'],
      ),
      STATEMENTS.deregisterManagedImages,
      STATEMENTS.deleteManagedSnapshots,
    ],
    // Console operations: everything the jobs do, plus restores and launches.
    ops: [
      STATEMENTS.describeFleet([
        'ec2:DescribeInstances',
        'ec2:DescribeVolumes',
        'ec2:DescribeSnapshots',
        'ec2:DescribeImages',
        'ec2:DescribeLaunchTemplates',
        'ec2:DescribeLaunchTemplateVersions',
        'ec2:ListImagesInRecycleBin',
        'autoscaling:DescribeAutoScalingGroups',
        'autoscaling:DescribeLaunchConfigurations',
        'rbin:ListRules',
        'rbin:GetRule',
      ]),
      ...STATEMENTS.createSnapshotSets,
      ...STATEMENTS.createImages,
      STATEMENTS.deregisterManagedImages,
      STATEMENTS.deleteManagedSnapshots,
      {
        Sid: 'RestoreVolumesTaggedForThisStage',
        Effect: 'Allow',
        Action: 'ec2:CreateVolume',
        Resource: 'arn:aws:ec2:*:*:volume/*',
        Condition: { StringEquals: { 'aws:RequestTag/snapkeeper:deployment': '${sls:stage}' } },
      },
      {
        Sid: 'RestoreFromSnapshots',
        Effect: 'Allow',
        Action: 'ec2:CreateVolume',
        Resource: 'arn:aws:ec2:*::snapshot/*',
      },
      {
        Sid: 'AttachRestoredVolumes',
        Effect: 'Allow',
        Action: 'ec2:AttachVolume',
        Resource: ['arn:aws:ec2:*:*:instance/*', 'arn:aws:ec2:*:*:volume/*'],
      },
      {
        Sid: 'DeleteOnlyDrillVolumes',
        Effect: 'Allow',
        Action: 'ec2:DeleteVolume',
        Resource: 'arn:aws:ec2:*:*:volume/*',
        Condition: {
          StringEquals: {
            'aws:ResourceTag/snapkeeper:restore-drill': 'true',
            'aws:ResourceTag/snapkeeper:deployment': '${sls:stage}',
          },
        },
      },
      {
        Sid: 'RegisterManagedImagesFromSnapshots',
        Effect: 'Allow',
        Action: 'ec2:RegisterImage',
        Resource: ['arn:aws:ec2:*::image/*', 'arn:aws:ec2:*::snapshot/*'],
        Condition: {
          StringEquals: {
            'aws:RequestTag/snapkeeper:managed': 'true',
            'aws:RequestTag/snapkeeper:deployment': '${sls:stage}',
          },
        },
      },
      {
        Sid: 'LaunchOnlyTaggedDuplicates',
        Effect: 'Allow',
        Action: 'ec2:RunInstances',
        Resource: 'arn:aws:ec2:*:*:instance/*',
        Condition: { StringLike: { 'aws:RequestTag/snapkeeper:source-image': 'ami-*' } },
      },
      {
        Sid: 'LaunchWithTheSourcesNetworkAndImage',
        Effect: 'Allow',
        Action: 'ec2:RunInstances',
        Resource: [
          'arn:aws:ec2:*::image/*',
          'arn:aws:ec2:*::snapshot/*',
          'arn:aws:ec2:*:*:volume/*',
          'arn:aws:ec2:*:*:network-interface/*',
          'arn:aws:ec2:*:*:subnet/*',
          'arn:aws:ec2:*:*:security-group/*',
          'arn:aws:ec2:*:*:key-pair/*',
        ],
      },
      ...(reportBucket
        ? [
            {
              Sid: 'WriteCoveragePagesOnly',
              Effect: 'Allow',
              Action: 's3:PutObject',
              Resource: `arn:aws:s3:::${reportBucket}/${reportPrefix}*`,
            },
          ]
        : []),
      STATEMENTS.tagAtCreation(
        ['CreateSnapshots', 'CreateImage', 'CreateVolume', 'RunInstances', 'RegisterImage'],
        [
          'arn:aws:ec2:*::snapshot/*',
          'arn:aws:ec2:*::image/*',
          'arn:aws:ec2:*:*:volume/*',
          'arn:aws:ec2:*:*:instance/*',
        ],
      ),
    ],
  };
  // Copies: CopySnapshot/CopyImage tagged managed for this stage, from our own managed
  // sources; deletion of our own copies; shares to listed accounts only (the explicit
  // deny in every role forbids adding 'all').
  statements.copy = [
    STATEMENTS.describeFleet([
      'ec2:DescribeInstances',
      'ec2:DescribeSnapshots',
      'ec2:DescribeImages',
      'ec2:DescribeSnapshotAttribute',
      'ec2:DescribeImageAttribute',
    ]),
    {
      Sid: 'CopyIntoManagedCopies',
      Effect: 'Allow',
      Action: ['ec2:CopySnapshot', 'ec2:CopyImage'],
      Resource: ['arn:aws:ec2:*::snapshot/*', 'arn:aws:ec2:*::image/*'],
      Condition: {
        StringEquals: {
          'aws:RequestTag/snapkeeper:managed': 'true',
          'aws:RequestTag/snapkeeper:deployment': '${sls:stage}',
        },
      },
    },
    STATEMENTS.tagAtCreation(
      ['CopySnapshot', 'CopyImage'],
      ['arn:aws:ec2:*::snapshot/*', 'arn:aws:ec2:*::image/*'],
    ),
    STATEMENTS.deleteManagedSnapshots,
    STATEMENTS.deregisterManagedImages,
    {
      Sid: 'ShareOnlyOwnManagedBackups',
      Effect: 'Allow',
      Action: ['ec2:ModifySnapshotAttribute', 'ec2:ModifyImageAttribute'],
      Resource: ['arn:aws:ec2:*::snapshot/*', 'arn:aws:ec2:*::image/*'],
      Condition: {
        StringEquals: {
          'aws:ResourceTag/snapkeeper:managed': 'true',
          'aws:ResourceTag/snapkeeper:deployment': '${sls:stage}',
        },
      },
    },
    {
      Sid: 'EncryptCopiesThroughEc2Only',
      Effect: 'Allow',
      Action: [
        'kms:CreateGrant',
        'kms:Decrypt',
        'kms:DescribeKey',
        'kms:Encrypt',
        'kms:GenerateDataKeyWithoutPlaintext',
        'kms:ReEncrypt*',
      ],
      Resource: '*',
      Condition: { StringLike: { 'kms:ViaService': 'ec2.*.amazonaws.com' } },
    },
  ];
  // The fan-out planner reads each target's fleet and sends batches; the worker does
  // what backup and retention do, in this account or through the target role.
  statements.fanout = [
    STATEMENTS.describeFleet(['ec2:DescribeInstances', 'ec2:DescribeVolumes']),
    STATEMENTS.runHistoryBatches,
    STATEMENTS.assumeTargetRoles(targetRoleName),
    {
      Sid: 'SendFanOutBatches',
      Effect: 'Allow',
      Action: 'sqs:SendMessage',
      Resource: { 'Fn::GetAtt': ['FanOutQueue', 'Arn'] },
    },
  ];
  statements.worker = [
    STATEMENTS.describeFleet([
      'ec2:DescribeInstances',
      'ec2:DescribeVolumes',
      'ec2:DescribeSnapshots',
      'ec2:DescribeImages',
    ]),
    ...STATEMENTS.createSnapshotSets,
    STATEMENTS.tagAtCreation(['CreateSnapshots'], 'arn:aws:ec2:*::snapshot/*'),
    STATEMENTS.deleteManagedSnapshots,
    STATEMENTS.assumeTargetRoles(targetRoleName),
    {
      Sid: 'ReceiveFanOutBatches',
      Effect: 'Allow',
      // SendMessage: a batch out of time continues in a new message.
      Action: [
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:SendMessage',
      ],
      Resource: { 'Fn::GetAtt': ['FanOutQueue', 'Arn'] },
    },
  ];
  const resources = {};
  for (const [fn, logical] of Object.entries(FUNCTIONS)) {
    resources[`${logical}Role`] = {
      Type: 'AWS::IAM::Role',
      Properties: {
        RoleName: `\${self:service}-\${sls:stage}-\${aws:region}-${fn}`,
        AssumeRolePolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { Service: 'lambda.amazonaws.com' },
              Action: 'sts:AssumeRole',
            },
          ],
        },
        Policies: [
          {
            PolicyName: `snapkeeper-${fn}`,
            PolicyDocument: {
              Version: '2012-10-17',
              Statement: [...statements[fn], ...common(fn)],
            },
          },
        ],
      },
    };
  }
  return { Resources: resources };
}

module.exports = {
  intervalSeconds,
  scheduleResources,
  functionRoles: async ({ resolveVariable }) =>
    functionRoles(
      await resolveVariable('self:custom.reportBucket'),
      await resolveVariable('self:custom.reportPrefix'),
      await resolveVariable('self:custom.fanOut.roleName'),
    ),
  // Each worker's share of the account's EC2 rate: 1 / the workers running at once.
  workerRateShare: async ({ resolveVariable }) => {
    const workers = Number(await resolveVariable('self:custom.fanOut.workers'));
    if (!Number.isInteger(workers) || workers < 2 || workers > 1000)
      throw new Error('custom.fanOut.workers must be a whole number from 2 to 1000');
    return String(Math.floor((1 / workers) * 10_000) / 10_000);
  },
  // Dead-man's switch: one alarm per schedule on the age of the oldest "newest recovery
  // point" (published daily by the sweep for every schedule), above twice the interval,
  // missing data treated as breaching (nothing ran, or a broken role).
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
            { Name: 'job', Value: 'amis' },
            { Name: 'schedule', Value: s.name },
          ],
          Statistic: 'Maximum',
          // The daily orphan sweep publishes it for every schedule: one datapoint a day.
          Period: 86400,
          EvaluationPeriods: 1,
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
