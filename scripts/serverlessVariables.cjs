// Variables that serverless.yml computes from its own `custom.schedules`, so that the
// schedules are written once: the SCHEDULES environment variable and the backup events.
'use strict';

const {
  consistencySettings,
  consistencyStatements,
  fsfreezeDocument,
} = require('./serverlessConsistency.cjs');

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
  restoreTest: 'RestoreTest',
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
        // No action of its own: the failures alarm (alertResources) notifies once.
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
                  Resource: ['backup', 'retention', 'amis', 'copy', 'fanout', 'restoreTest'].map(
                    functionArn,
                  ),
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
    // Restore tests (issue 22): only for a schedule with the restoreTests option.
    if (s.restoreTests)
      schedule(
        `RestoreTest${id}Schedule`,
        `restore-test-${s.name}`,
        'restoreTest',
        s.restoreTests.cron || retentionCron(s),
        s.timezone,
        input,
        `snapkeeper ${s.name} restore test`,
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
  // Schedules from instances' tags: one dispatcher (never through fan-out: the stack's
  // own account and region), and the retention of every expression's lineage.
  const tagInput = { schedule: 'tag', scheduledTime: '<aws.scheduler.scheduled-time>' };
  schedule(
    'BackupTagSchedule',
    'backup-tag',
    'backup',
    await resolveVariable('self:custom.tagSchedules.dispatchCron'),
    'UTC',
    tagInput,
    'snapkeeper tag dispatcher: backs up instances whose own cron/rate tag has a slot due',
  );
  schedule(
    'RetentionTagSchedule',
    'retention-tag',
    'retention',
    await resolveVariable('self:custom.tagSchedules.retentionCron'),
    'UTC',
    tagInput,
    'snapkeeper retention of the sets made for schedules written in tags',
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

// ARNs in the stack's own partition (aws, aws-cn, aws-us-gov), never a literal `aws`.
const arn = (rest) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:${rest}` });
const SNAPSHOTS = arn('ec2:*::snapshot/*');
const IMAGES = arn('ec2:*::image/*');
const INSTANCES = arn('ec2:*:*:instance/*');
const VOLUMES = arn('ec2:*:*:volume/*');
const MANAGED_BY_STAGE = {
  'aws:ResourceTag/snapkeeper:managed': 'true',
  'aws:ResourceTag/snapkeeper:deployment': '${sls:stage}',
};
const REQUESTED_FOR_STAGE = {
  'aws:RequestTag/snapkeeper:managed': 'true',
  'aws:RequestTag/snapkeeper:deployment': '${sls:stage}',
};

// The EC2 endpoints of the stage's regions, for `kms:ViaService`: the stack's region, the
// fan-out regions, every schedule's copyTo, the regions of copyKmsKeys and kmsRegions.
async function stageRegions(resolveVariable) {
  const regions = new Set([String(await resolveVariable('aws:region'))]);
  const add = (list) => {
    for (const r of String(list ?? '').split(',')) if (r.trim()) regions.add(r.trim());
  };
  add(await resolveVariable('self:custom.fanOut.regions'));
  for (const s of await schedules(resolveVariable))
    add(Array.isArray(s.copyTo) ? s.copyTo.join(',') : s.copyTo);
  const keys = await resolveVariable('self:custom.copyKmsKeys');
  try {
    add(Object.keys(typeof keys === 'string' ? JSON.parse(keys || '{}') : (keys ?? {})).join(','));
  } catch {
    throw new Error('custom.copyKmsKeys must be JSON: {"<region>": "<key id or ARN>"}');
  }
  add(await resolveVariable('self:custom.kmsRegions'));
  for (const r of regions)
    if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(r))
      throw new Error(
        `kmsRegions/copyTo/fanOut.regions: "${r}" is not a region name (e.g. eu-west-1)`,
      );
  return [...regions].sort();
}

// Least privilege: each function gets its own role with only the calls it makes. Every
// condition key is one the action supports for that resource type (AWS's Service
// Authorization Reference); `npm test` proves it (test/iam) and parliament lints it.
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
      Resource: SNAPSHOTS,
      Condition: { StringEquals: REQUESTED_FOR_STAGE },
    },
    {
      Sid: 'CreateSnapshotSetsFromInstances',
      Effect: 'Allow',
      Action: 'ec2:CreateSnapshots',
      Resource: [INSTANCES, VOLUMES],
    },
  ],
  createImages: [
    {
      // CreateImage supports request tags on both the image and its snapshots.
      Sid: 'CreateManagedImages',
      Effect: 'Allow',
      Action: 'ec2:CreateImage',
      Resource: [IMAGES, SNAPSHOTS],
      Condition: { StringEquals: REQUESTED_FOR_STAGE },
    },
    {
      Sid: 'CreateImagesFromInstances',
      Effect: 'Allow',
      Action: 'ec2:CreateImage',
      Resource: INSTANCES,
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
    Resource: SNAPSHOTS,
    Condition: { StringEquals: MANAGED_BY_STAGE },
  },
  // Snapshot lock and archive tier (issue 21): each supports aws:ResourceTag on the
  // snapshot resource, so only this stage's managed snapshots can be locked, archived or
  // brought back from archive. No role may unlock (ec2:UnlockSnapshot is never granted).
  lockManagedSnapshots: {
    Sid: 'LockOnlyOwnManagedSnapshots',
    Effect: 'Allow',
    Action: 'ec2:LockSnapshot',
    Resource: SNAPSHOTS,
    Condition: { StringEquals: MANAGED_BY_STAGE },
  },
  archiveManagedSnapshots: {
    Sid: 'ArchiveOnlyOwnManagedSnapshots',
    Effect: 'Allow',
    Action: 'ec2:ModifySnapshotTier',
    Resource: SNAPSHOTS,
    Condition: { StringEquals: MANAGED_BY_STAGE },
  },
  restoreManagedSnapshotTier: {
    Sid: 'RestoreOnlyOwnManagedSnapshotsFromArchive',
    Effect: 'Allow',
    Action: 'ec2:RestoreSnapshotTier',
    Resource: SNAPSHOTS,
    Condition: { StringEquals: MANAGED_BY_STAGE },
  },
  // The cost ledger: block lists (EBS direct APIs) of this stage's managed snapshots only.
  measureManagedSnapshots: {
    Sid: 'MeasureOnlyOwnManagedSnapshots',
    Effect: 'Allow',
    Action: ['ebs:ListSnapshotBlocks', 'ebs:ListChangedBlocks'],
    Resource: SNAPSHOTS,
    Condition: { StringEquals: MANAGED_BY_STAGE },
  },
  deregisterManagedImages: {
    Sid: 'DeregisterOnlyOwnManagedImages',
    Effect: 'Allow',
    Action: 'ec2:DeregisterImage',
    Resource: IMAGES,
    Condition: { StringEquals: MANAGED_BY_STAGE },
  },
  // ModifySnapshotAttribute supports ec2:Add/group, so adding the group `all` (public)
  // is denied outright.
  neverPublicSnapshots: {
    Sid: 'NeverMakeSnapshotsPublic',
    Effect: 'Deny',
    Action: 'ec2:ModifySnapshotAttribute',
    Resource: '*',
    Condition: { StringEquals: { 'ec2:Add/group': 'all' } },
  },
  // ModifyImageAttribute supports no key that names the group added, so no condition can
  // tell a share from making an AMI public: every role but copy's may not call it at all
  // (copy's share flow is limited to this stage's own AMIs; the account-level block
  // public access for AMIs is what stops `all`).
  neverModifyImages: {
    Sid: 'NeverModifyImages',
    Effect: 'Deny',
    Action: 'ec2:ModifyImageAttribute',
    Resource: '*',
  },
  // EC2 uses the key for an encrypted volume, snapshot copy or AMI copy on the caller's
  // behalf: only through EC2, only in the stage's regions, grants only for AWS resources.
  kmsThroughEc2: (regions) => {
    const viaEc2 = { 'kms:ViaService': regions.map((r) => `ec2.${r}.amazonaws.com`) };
    return [
      {
        Sid: 'UseKeysThroughEc2InStageRegions',
        Effect: 'Allow',
        Action: [
          'kms:Decrypt',
          'kms:DescribeKey',
          'kms:Encrypt',
          'kms:GenerateDataKeyWithoutPlaintext',
          'kms:ReEncryptFrom',
          'kms:ReEncryptTo',
        ],
        Resource: arn('kms:*:*:key/*'),
        Condition: { StringEquals: viaEc2 },
      },
      {
        Sid: 'GrantKeysToEc2InStageRegions',
        Effect: 'Allow',
        Action: 'kms:CreateGrant',
        Resource: arn('kms:*:*:key/*'),
        Condition: {
          StringEquals: viaEc2,
          Bool: { 'kms:GrantIsForAWSResource': 'true' },
        },
      },
    ];
  },
  // Restore tests (issue 22): volumes only from this stage's own managed snapshots, only
  // tagged as this stage's restore tests at creation, and deleted only when so tagged.
  restoreTestVolumes: [
    {
      Sid: 'CreateOnlyRestoreTestVolumes',
      Effect: 'Allow',
      Action: 'ec2:CreateVolume',
      Resource: VOLUMES,
      Condition: {
        StringEquals: {
          'aws:RequestTag/snapkeeper:restore-test': 'true',
          'aws:RequestTag/snapkeeper:deployment': '${sls:stage}',
        },
      },
    },
    {
      Sid: 'RestoreTestsFromOwnManagedSnapshots',
      Effect: 'Allow',
      Action: 'ec2:CreateVolume',
      Resource: SNAPSHOTS,
      Condition: { StringEquals: MANAGED_BY_STAGE },
    },
    {
      Sid: 'DeleteOnlyRestoreTestVolumes',
      Effect: 'Allow',
      Action: 'ec2:DeleteVolume',
      Resource: VOLUMES,
      Condition: {
        StringEquals: {
          'aws:ResourceTag/snapkeeper:restore-test': 'true',
          'aws:ResourceTag/snapkeeper:deployment': '${sls:stage}',
        },
      },
    },
  ],
  runHistory: {
    Sid: 'RunHistoryTableOnly',
    Effect: 'Allow',
    Action: [
      'dynamodb:GetItem',
      'dynamodb:BatchGetItem',
      'dynamodb:PutItem',
      // The action journal writes its records in batches (issue 19).
      'dynamodb:BatchWriteItem',
      'dynamodb:UpdateItem',
      'dynamodb:Query',
    ],
    Resource: [
      { 'Fn::GetAtt': ['RunHistoryTable', 'Arn'] },
      { 'Fn::Join': ['/', [{ 'Fn::GetAtt': ['RunHistoryTable', 'Arn'] }, 'index', '*']] },
    ],
  },
  assumeTargetRoles: (roleName) => ({
    Sid: 'AssumeTheTargetAccountRoleOnly',
    Effect: 'Allow',
    Action: 'sts:AssumeRole',
    Resource: arn(`iam::*:role/${roleName}`),
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

function functionRoles(
  reportBucket,
  reportPrefix,
  targetRoleName,
  kmsRegions,
  blockPublicAmis,
  consistency = { documents: [], scheduleOptIn: false },
) {
  const common = (fn) => [
    STATEMENTS.logs(fn),
    STATEMENTS.tracing,
    STATEMENTS.runHistory,
    STATEMENTS.runEvents,
    STATEMENTS.failureDestination,
    STATEMENTS.neverPublicSnapshots,
    ...(fn === 'copy' ? [] : [STATEMENTS.neverModifyImages]),
  ];
  const statements = {
    backup: [
      STATEMENTS.describeFleet([
        'ec2:DescribeInstances',
        'ec2:DescribeVolumes',
        'ec2:DescribeSnapshots',
        'ec2:DescribeLockedSnapshots',
      ]),
      ...STATEMENTS.createSnapshotSets,
      STATEMENTS.tagAtCreation(['CreateSnapshots'], SNAPSHOTS),
      // Only to remove the extra copy of a duplicate set for a slot.
      STATEMENTS.deleteManagedSnapshots,
      STATEMENTS.lockManagedSnapshots,
    ],
    retention: [
      STATEMENTS.describeFleet([
        'ec2:DescribeInstances',
        'ec2:DescribeVolumes',
        'ec2:DescribeSnapshots',
        'ec2:DescribeImages',
        'ec2:DescribeLockedSnapshots',
        'ec2:DescribeSnapshotTierStatus',
      ]),
      STATEMENTS.deleteManagedSnapshots,
      STATEMENTS.lockManagedSnapshots,
      STATEMENTS.archiveManagedSnapshots,
      STATEMENTS.measureManagedSnapshots,
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
      STATEMENTS.tagAtCreation(['CreateImage'], [IMAGES, SNAPSHOTS]),
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
        'ec2:DescribeLockedSnapshots',
        'ec2:DescribeSnapshotTierStatus',
      ]),
      ...STATEMENTS.createSnapshotSets,
      ...STATEMENTS.createImages,
      STATEMENTS.deregisterManagedImages,
      STATEMENTS.deleteManagedSnapshots,
      STATEMENTS.lockManagedSnapshots,
      STATEMENTS.archiveManagedSnapshots,
      STATEMENTS.restoreManagedSnapshotTier,
      {
        Sid: 'RestoreVolumesTaggedForThisStage',
        Effect: 'Allow',
        Action: 'ec2:CreateVolume',
        Resource: VOLUMES,
        Condition: { StringEquals: { 'aws:RequestTag/snapkeeper:deployment': '${sls:stage}' } },
      },
      {
        Sid: 'RestoreFromSnapshots',
        Effect: 'Allow',
        Action: 'ec2:CreateVolume',
        Resource: SNAPSHOTS,
      },
      {
        Sid: 'AttachRestoredVolumes',
        Effect: 'Allow',
        Action: 'ec2:AttachVolume',
        Resource: [INSTANCES, VOLUMES],
      },
      ...STATEMENTS.restoreTestVolumes.filter((st) => st.Action === 'ec2:DeleteVolume'),
      {
        Sid: 'DeleteOnlyDrillVolumes',
        Effect: 'Allow',
        Action: 'ec2:DeleteVolume',
        Resource: VOLUMES,
        Condition: {
          StringEquals: {
            'aws:ResourceTag/snapkeeper:restore-drill': 'true',
            'aws:ResourceTag/snapkeeper:deployment': '${sls:stage}',
          },
        },
      },
      // RegisterImage authorizes the new image (request tags) and each snapshot it is
      // registered from (resource tags: only this stage's own backups), separately.
      {
        Sid: 'RegisterManagedImages',
        Effect: 'Allow',
        Action: 'ec2:RegisterImage',
        Resource: IMAGES,
        Condition: { StringEquals: REQUESTED_FOR_STAGE },
      },
      {
        Sid: 'RegisterImagesFromOwnManagedSnapshots',
        Effect: 'Allow',
        Action: 'ec2:RegisterImage',
        Resource: SNAPSHOTS,
        Condition: { StringEquals: MANAGED_BY_STAGE },
      },
      {
        Sid: 'LaunchOnlyTaggedDuplicates',
        Effect: 'Allow',
        Action: 'ec2:RunInstances',
        Resource: INSTANCES,
        Condition: { StringLike: { 'aws:RequestTag/snapkeeper:source-image': 'ami-*' } },
      },
      {
        Sid: 'LaunchWithTheSourcesNetworkAndImage',
        Effect: 'Allow',
        Action: 'ec2:RunInstances',
        Resource: [
          IMAGES,
          SNAPSHOTS,
          VOLUMES,
          arn('ec2:*:*:network-interface/*'),
          arn('ec2:*:*:subnet/*'),
          arn('ec2:*:*:security-group/*'),
          arn('ec2:*:*:key-pair/*'),
        ],
      },
      ...(reportBucket
        ? [
            {
              Sid: 'WriteCoveragePagesOnly',
              Effect: 'Allow',
              Action: 's3:PutObject',
              Resource: arn(`s3:::${reportBucket}/${reportPrefix}*`),
            },
          ]
        : []),
      STATEMENTS.tagAtCreation(
        ['CreateSnapshots', 'CreateImage', 'CreateVolume', 'RunInstances', 'RegisterImage'],
        [SNAPSHOTS, IMAGES, VOLUMES, INSTANCES],
      ),
      ...STATEMENTS.kmsThroughEc2(kmsRegions),
    ],
  };
  // Copies: CopySnapshot/CopyImage tagged managed for this stage, from our own managed
  // sources; deletion of our own copies; shares to listed accounts only (snapshots: the
  // explicit deny forbids adding 'all'; AMIs: only this stage's own).
  statements.copy = [
    STATEMENTS.describeFleet([
      'ec2:DescribeInstances',
      'ec2:DescribeSnapshots',
      'ec2:DescribeImages',
      'ec2:DescribeSnapshotAttribute',
      'ec2:DescribeImageAttribute',
    ]),
    // The account's block public access for AMIs: read on every copy run; turned on only
    // when the stage asks for it (custom.blockPublicAmis). Account-level: no resource ARN.
    {
      Sid: 'ImageBlockPublicAccess',
      Effect: 'Allow',
      Action: [
        'ec2:GetImageBlockPublicAccessState',
        ...(blockPublicAmis ? ['ec2:EnableImageBlockPublicAccess'] : []),
      ],
      Resource: '*',
    },
    {
      Sid: 'CopyIntoManagedCopies',
      Effect: 'Allow',
      Action: ['ec2:CopySnapshot', 'ec2:CopyImage'],
      Resource: [SNAPSHOTS, IMAGES],
      Condition: { StringEquals: REQUESTED_FOR_STAGE },
    },
    STATEMENTS.tagAtCreation(['CopySnapshot', 'CopyImage'], [SNAPSHOTS, IMAGES]),
    STATEMENTS.deleteManagedSnapshots,
    STATEMENTS.deregisterManagedImages,
    {
      Sid: 'ShareOnlyOwnManagedSnapshots',
      Effect: 'Allow',
      Action: 'ec2:ModifySnapshotAttribute',
      Resource: SNAPSHOTS,
      Condition: { StringEquals: MANAGED_BY_STAGE },
    },
    {
      Sid: 'ShareOnlyOwnManagedImages',
      Effect: 'Allow',
      Action: 'ec2:ModifyImageAttribute',
      Resource: IMAGES,
      Condition: { StringEquals: MANAGED_BY_STAGE },
    },
    ...STATEMENTS.kmsThroughEc2(kmsRegions),
  ];
  // The fan-out planner reads each target's fleet and sends batches; the worker does
  // what backup and retention do, in this account or through the target role.
  statements.fanout = [
    STATEMENTS.describeFleet(['ec2:DescribeInstances', 'ec2:DescribeVolumes']),
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
      'ec2:DescribeLockedSnapshots',
      'ec2:DescribeSnapshotTierStatus',
    ]),
    ...STATEMENTS.createSnapshotSets,
    STATEMENTS.tagAtCreation(['CreateSnapshots'], SNAPSHOTS),
    STATEMENTS.deleteManagedSnapshots,
    // A backup batch locks what it made; a retention batch re-checks locks and archives.
    STATEMENTS.lockManagedSnapshots,
    STATEMENTS.archiveManagedSnapshots,
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
  // Pre/post scripts of application-consistent sets (issue 21): where sets are made.
  // (Not ops: its bundle has no SSM client, so a console backup's sets fall back.)
  for (const fn of ['backup', 'worker'])
    statements[fn].push(...consistencyStatements(consistency.documents, consistency.scheduleOptIn));
  // Scheduled restore tests: read the fleet, make and delete only restore-test volumes.
  statements.restoreTest = [
    STATEMENTS.describeFleet([
      'ec2:DescribeInstances',
      'ec2:DescribeVolumes',
      'ec2:DescribeSnapshots',
    ]),
    ...STATEMENTS.restoreTestVolumes,
    STATEMENTS.tagAtCreation(['CreateVolume'], VOLUMES),
    ...STATEMENTS.kmsThroughEc2(kmsRegions),
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

// Where alerts go: the stack's own topic, plus an existing topic of the operator's
// (custom.alertTopicArn, optional). Validated here so a typo fails the deploy, naming it.
async function alertTopicArns(resolveVariable) {
  const arn = String((await resolveVariable('self:custom.alertTopicArn')) ?? '').trim();
  if (arn && !/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/.test(arn))
    throw new Error(
      `custom.alertTopicArn must be the ARN of a standard SNS topic (arn:aws:sns:<region>:<account>:<name>) or empty; got ${JSON.stringify(arn)}`,
    );
  return [{ Ref: 'AlertsTopic' }, ...(arn ? [arn] : [])];
}

// The alarms whose state a person must hear about once: a failed backup or retention
// run (fan-out ones included), any function that threw (a failed or incomplete run, or
// a crash before any report), an invocation or schedule that failed for good, a fan-out
// batch dead-lettered. One failure usually sets several of them (a failed run counts
// BackupRunsFailed and throws, Lambda retries it twice, then dead-letters it), so they
// notify nobody themselves: this composite alarm notifies once when the first goes into
// ALARM, and again only after all are OK.
const FAILURE_ALARMS = [
  'BackupRunsFailedAlarm',
  'RetentionRunsFailedAlarm',
  'LambdaErrorsAlarm',
  'FailedInvocationsAlarm',
  'SchedulesDeadLetterAlarm',
  'FanOutDeadLetterAlarm',
  'RestoreTestsFailedAlarm',
];

async function alertResources({ resolveVariable }) {
  const email = String((await resolveVariable('self:custom.alertEmail')) ?? '').trim();
  if (email && !/^[^\s@,]+@[^\s@,]+\.[^\s@,]+$/.test(email))
    throw new Error(
      `custom.alertEmail must be one email address (or empty); got ${JSON.stringify(email)}. For several people, use a mailing list or custom.alertTopicArn`,
    );
  const rule = [];
  FAILURE_ALARMS.forEach((id, i) => {
    rule.push(`${i > 0 ? ') OR ' : ''}ALARM("`, { Ref: id }, '"');
  });
  rule.push(')');
  const resources = {
    FailuresAlarm: {
      Type: 'AWS::CloudWatch::CompositeAlarm',
      Properties: {
        AlarmName: '${self:service}-${sls:stage}-failures',
        AlarmDescription:
          'snapkeeper ${sls:stage}: a run failed or a function threw. The run history says which and why: npm run history -- --stage ${sls:stage} (partial runs are announced one by one instead)',
        AlarmRule: { 'Fn::Join': ['', rule] },
        ActionsEnabled: true,
        AlarmActions: await alertTopicArns(resolveVariable),
      },
    },
  };
  if (email) {
    resources.AlertsEmailSubscription = {
      Type: 'AWS::SNS::Subscription',
      Properties: { TopicArn: { Ref: 'AlertsTopic' }, Protocol: 'email', Endpoint: email },
    };
  }
  return { Resources: resources };
}

module.exports = {
  intervalSeconds,
  alertResources,
  // The targets of the rule that announces partial runs: the alerts topic(s).
  alertRuleTargets: async ({ resolveVariable }) =>
    (await alertTopicArns(resolveVariable)).map((arn, i) => ({
      Id: i === 0 ? 'alerts' : 'operator-alerts',
      Arn: arn,
    })),
  stageRegions,
  scheduleResources,
  functionRoles: async ({ resolveVariable }) =>
    functionRoles(
      await resolveVariable('self:custom.reportBucket'),
      await resolveVariable('self:custom.reportPrefix'),
      await resolveVariable('self:custom.fanOut.roleName'),
      await stageRegions(resolveVariable),
      String(await resolveVariable('self:custom.blockPublicAmis')) === 'true',
      await consistencySettings(resolveVariable),
    ),
  consistencyResources: async () => ({ Resources: fsfreezeDocument() }),
  consistencyDocuments: async ({ resolveVariable }) =>
    (await consistencySettings(resolveVariable)).documents.join(','),
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
          AlarmActions: await alertTopicArns(resolveVariable),
          OKActions: await alertTopicArns(resolveVariable),
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
