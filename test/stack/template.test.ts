/**
 * The stack as CloudFormation receives it: the template and the function zips that
 * `npm run package` writes to .serverless/ (stage ci, region us-east-1), read without
 * credentials. `npm test` packages the stack before it runs vitest.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../harness/localAws.ts';
import { runHistoryTableDefinition } from '../../harness/localTable.ts';
import { RUN_FINISHED } from '../../lib/aws/RunEventsGateway.ts';
import { nextFireTime } from '../../lib/domain/schedules.ts';

// ---------------------------------------------------------------------------------------
// What the stack must be (the specification the template is held to)
// ---------------------------------------------------------------------------------------

/** The stage `npm run package` packages by default. */
const STAGE = 'ci';
const TAG_PREFIX = 'snapkeeper:';
const MANAGED_TAG = `${TAG_PREFIX}managed`;
const DEPLOYMENT_TAG = `${TAG_PREFIX}deployment`;
const BUNDLE_BUDGET_BYTES = 1.5 * 1024 * 1024;
const SCHEDULED_TIME = '<aws.scheduler.scheduled-time>';

const FUNCTIONS = [
  { name: 'backup', logicalId: 'BackupLambdaFunction', role: 'BackupRole' },
  { name: 'retention', logicalId: 'RetentionLambdaFunction', role: 'RetentionRole' },
  { name: 'amis', logicalId: 'AmisLambdaFunction', role: 'AmisRole' },
  { name: 'copy', logicalId: 'CopyLambdaFunction', role: 'CopyRole' },
  { name: 'fanout', logicalId: 'FanoutLambdaFunction', role: 'FanoutRole' },
  { name: 'restoreTest', logicalId: 'RestoreTestLambdaFunction', role: 'RestoreTestRole' },
] as const;
type FunctionName = (typeof FUNCTIONS)[number]['name'];

const SCHEDULES = [
  {
    name: 'daily',
    cron: 'cron(0 3 * * ? *)',
    retentionCron: 'cron(0 4 * * ? *)',
    retain: 7,
    alarmThreshold: 172_800,
  },
  {
    name: 'weekly',
    cron: 'cron(0 4 ? * SUN *)',
    retentionCron: 'cron(0 5 ? * SUN *)',
    retain: 4,
    alarmThreshold: 1_209_600,
  },
  {
    name: 'monthly',
    cron: 'cron(0 5 1 * ? *)',
    retentionCron: 'cron(0 6 1 * ? *)',
    retain: 12,
    // Twice the longest month.
    alarmThreshold: 5_356_800,
  },
] as const;

const SWEEP_CRON = 'cron(30 6 * * ? *)';

/** Every schedule the stack must create: who it invokes, when, and with what. */
const SCHEDULE_TARGETS: readonly {
  readonly fn: FunctionName;
  readonly schedule: string;
  readonly cron: string;
  readonly input: Readonly<Record<string, unknown>>;
}[] = [
  ...SCHEDULES.flatMap((s) => [
    { fn: 'backup' as const, schedule: s.name, cron: s.cron },
    { fn: 'amis' as const, schedule: s.name, cron: s.cron },
    { fn: 'retention' as const, schedule: s.name, cron: s.retentionCron },
  ]).map((target) => ({
    ...target,
    input: { schedule: target.schedule, scheduledTime: SCHEDULED_TIME },
  })),
  { fn: 'amis', schedule: 'sweep', cron: SWEEP_CRON, input: { sweep: true } },
  { fn: 'copy', schedule: 'catch-up', cron: 'cron(0 7 * * ? *)', input: { copy: true } },
  // The packaged weekly schedule has restoreTests, without a cron: it runs with retention.
  {
    fn: 'restoreTest',
    schedule: 'weekly',
    cron: 'cron(0 5 ? * SUN *)',
    input: { schedule: 'weekly', scheduledTime: SCHEDULED_TIME },
  },
  // Schedules from instances' tags: the dispatcher every 15 minutes, their retention.
  {
    fn: 'backup',
    schedule: 'tag',
    cron: 'cron(0/15 * * * ? *)',
    input: { schedule: 'tag', scheduledTime: SCHEDULED_TIME },
  },
  {
    fn: 'retention',
    schedule: 'tag',
    cron: 'cron(45 0/6 * * ? *)',
    input: { schedule: 'tag', scheduledTime: SCHEDULED_TIME },
  },
];

/** The creating actions that tagging at creation may name (`ec2:CreateAction`). */
const CREATE_ACTIONS = [
  'CreateSnapshots',
  'CreateSnapshot',
  'CreateImage',
  'RegisterImage',
  'CopySnapshot',
  'CopyImage',
  'CreateVolume',
  'RunInstances',
];

/** The EC2 actions that bring snapshots or images into being. */
const CREATING_SNAPSHOTS_OR_IMAGES = [
  'ec2:CreateSnapshots',
  'ec2:CreateSnapshot',
  'ec2:CreateImage',
  'ec2:RegisterImage',
  'ec2:CopySnapshot',
  'ec2:CopyImage',
];

/** The EC2 writes each function makes, and so may be granted; every other one is refused. */
const EC2_WRITES = [
  'ec2:CreateSnapshots',
  'ec2:CreateImage',
  'ec2:CreateTags',
  'ec2:DeleteSnapshot',
  'ec2:DeregisterImage',
  'ec2:CreateVolume',
  'ec2:DeleteVolume',
] as const;
const EC2_WRITES_BY_FUNCTION: Readonly<Record<FunctionName, readonly string[]>> = {
  backup: ['ec2:CreateSnapshots', 'ec2:CreateTags', 'ec2:DeleteSnapshot'],
  retention: ['ec2:DeleteSnapshot'],
  amis: ['ec2:CreateImage', 'ec2:CreateTags', 'ec2:DeleteSnapshot', 'ec2:DeregisterImage'],
  // Copies are tagged at creation and retired in their region; no snapshot sets or AMIs of its own.
  copy: ['ec2:CreateTags', 'ec2:DeleteSnapshot', 'ec2:DeregisterImage'],
  // The planner only reads fleets and sends batches.
  fanout: [],
  // Restore tests make volumes from managed snapshots, tagged at creation, and delete them.
  restoreTest: ['ec2:CreateVolume', 'ec2:CreateTags', 'ec2:DeleteVolume'],
};

// ---------------------------------------------------------------------------------------
// Reading the packaged template and zips
// ---------------------------------------------------------------------------------------

const SERVERLESS_DIR = join(PROJECT_ROOT, '.serverless');
const TEMPLATE_FILE = join(SERVERLESS_DIR, 'cloudformation-template-update-stack.json');
const PACKAGE_INPUTS = ['serverless.yml', 'scripts/serverlessVariables.cjs'];

interface Resource {
  readonly Type: string;
  readonly Properties?: unknown;
}

interface Template {
  readonly Resources: Readonly<Record<string, Resource>>;
  readonly Outputs?: Readonly<Record<string, { readonly Value?: unknown }>>;
}

interface FunctionProperties {
  readonly Runtime?: string;
  readonly Architectures?: readonly string[];
  readonly Timeout?: number;
  readonly MemorySize?: number;
  readonly TracingConfig?: { readonly Mode?: string };
  readonly Role?: unknown;
  readonly Environment?: { readonly Variables?: Readonly<Record<string, unknown>> };
  readonly Code?: { readonly S3Key?: unknown };
}

interface EventInvokeConfigProperties {
  readonly FunctionName?: unknown;
  readonly Qualifier?: string;
  readonly MaximumRetryAttempts?: number;
  readonly DestinationConfig?: { readonly OnFailure?: { readonly Destination?: unknown } };
}

interface ScheduleProperties {
  readonly ScheduleExpression?: string;
  readonly ScheduleExpressionTimezone?: string;
  readonly FlexibleTimeWindow?: { readonly Mode?: string };
  readonly State?: string;
  readonly Target?: {
    readonly Arn?: unknown;
    readonly RoleArn?: unknown;
    readonly Input?: string;
    readonly RetryPolicy?: {
      readonly MaximumRetryAttempts?: number;
      readonly MaximumEventAgeInSeconds?: number;
    };
    readonly DeadLetterConfig?: { readonly Arn?: unknown };
  };
}

interface Statement {
  readonly Sid?: string;
  readonly Effect?: string;
  readonly Principal?: unknown;
  readonly Action?: string | readonly string[];
  readonly NotAction?: string | readonly string[];
  readonly Resource?: unknown;
  readonly NotResource?: unknown;
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

interface PolicyDocument {
  readonly Statement?: Statement | readonly Statement[];
}

interface RoleProperties {
  readonly AssumeRolePolicyDocument?: PolicyDocument;
  readonly Policies?: readonly {
    readonly PolicyName?: string;
    readonly PolicyDocument?: PolicyDocument;
  }[];
  readonly ManagedPolicyArns?: readonly unknown[];
}

interface KeySchemaElement {
  readonly AttributeName: string;
  readonly KeyType: string;
}

interface TableProperties {
  readonly TableName?: unknown;
  readonly BillingMode?: string;
  readonly KeySchema?: readonly KeySchemaElement[];
  readonly GlobalSecondaryIndexes?: readonly {
    readonly IndexName: string;
    readonly KeySchema: readonly KeySchemaElement[];
  }[];
  readonly TimeToLiveSpecification?: {
    readonly AttributeName?: string;
    readonly Enabled?: boolean;
  };
  readonly PointInTimeRecoverySpecification?: { readonly PointInTimeRecoveryEnabled?: boolean };
  readonly SSESpecification?: { readonly SSEEnabled?: boolean };
}

interface AlarmProperties {
  readonly Namespace?: string;
  readonly MetricName?: string;
  readonly Dimensions?: readonly { readonly Name: string; readonly Value: unknown }[];
  readonly Metrics?: readonly {
    readonly MetricStat?: {
      readonly Metric?: {
        readonly MetricName?: string;
        readonly Dimensions?: readonly { readonly Name: string; readonly Value: unknown }[];
      };
    };
  }[];
  readonly Period?: number;
  readonly EvaluationPeriods?: number;
  readonly DatapointsToAlarm?: number;
  readonly Threshold?: number;
  readonly ComparisonOperator?: string;
  readonly TreatMissingData?: string;
  readonly AlarmActions?: readonly unknown[];
}

interface RuleProperties {
  readonly State?: string;
  readonly EventBusName?: unknown;
  readonly EventPattern?: {
    readonly source?: readonly string[];
    readonly 'detail-type'?: readonly string[];
    readonly detail?: {
      readonly status?: readonly string[];
      readonly deployment?: readonly string[];
    };
  };
  readonly Targets?: readonly { readonly Arn?: unknown }[];
}

let loaded: Template | undefined;

/** The packaged template; a clear failure when `npm run package` has not run. */
function template(): Template {
  if (loaded) return loaded;
  if (!existsSync(TEMPLATE_FILE)) {
    throw new Error(
      `${TEMPLATE_FILE} is missing: run \`npm run package\` first (\`npm test\` packages the stack before running vitest)`,
    );
  }
  loaded = JSON.parse(readFileSync(TEMPLATE_FILE, 'utf8')) as Template;
  return loaded;
}

function resourcesOfType<P>(type: string): [string, P][] {
  return Object.entries(template().Resources)
    .filter(([, resource]) => resource.Type === type)
    .map(([logicalId, resource]) => [logicalId, (resource.Properties ?? {}) as P]);
}

function propertiesOf<P>(logicalId: string, type: string): P {
  const resource = template().Resources[logicalId];
  if (resource?.Type !== type) throw new Error(`the template has no ${type} named ${logicalId}`);
  return (resource.Properties ?? {}) as P;
}

function asArray<T>(value: T | readonly T[] | undefined): readonly T[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]) as readonly T[];
}

const ref = (logicalId: string) => ({ Ref: logicalId });
/** How {@link render} shows a reference: `${Name}` or `${Name.Attribute}`. */
const placeholder = (reference: string) => `\${${reference}}`;
const arnOf = (logicalId: string) => ({ 'Fn::GetAtt': [logicalId, 'Arn'] });

/**
 * An intrinsic-function value as one readable string: `${Table.Arn}`, `${Queue}`,
 * Fn::Join joined, Fn::Sub as written.
 */
function render(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    if (typeof object.Ref === 'string') return placeholder(object.Ref);
    const getAtt = object['Fn::GetAtt'];
    if (Array.isArray(getAtt)) return placeholder(getAtt.join('.'));
    const sub = object['Fn::Sub'];
    if (typeof sub === 'string') return sub;
    if (Array.isArray(sub) && typeof sub[0] === 'string') return sub[0];
    const join = object['Fn::Join'];
    if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) {
      return (join[1] as unknown[]).map(render).join(join[0]);
    }
  }
  return JSON.stringify(value);
}

/** IAM wildcard matching: `*` any run of characters, `?` one. */
function wildcardMatches(pattern: string, value: string, ignoreCase: boolean): boolean {
  const source = [...pattern]
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, ignoreCase ? 'i' : '').test(value);
}

interface PermissionStatement {
  readonly role: string;
  readonly label: string;
  readonly statement: Statement;
}

/** Every statement of every role's inline policies, labelled role/policy/sid. */
function permissionStatements(): PermissionStatement[] {
  return resourcesOfType<RoleProperties>('AWS::IAM::Role').flatMap(([role, properties]) =>
    (properties.Policies ?? []).flatMap((policy) =>
      asArray(policy.PolicyDocument?.Statement).map((statement, index) => ({
        role,
        label: `${role}/${policy.PolicyName ?? '?'}/${statement.Sid ?? index}`,
        statement,
      })),
    ),
  );
}

function allows(statement: Statement, action: string): boolean {
  if (statement.Effect !== 'Allow') return false;
  if (statement.Action !== undefined) {
    return asArray(statement.Action).some((pattern) => wildcardMatches(pattern, action, true));
  }
  if (statement.NotAction !== undefined) {
    return !asArray(statement.NotAction).some((pattern) => wildcardMatches(pattern, action, true));
  }
  return false;
}

/** The role of every Lambda function in the template, by function logical id. */
function functionRoles(): [string, string][] {
  return resourcesOfType<FunctionProperties>('AWS::Lambda::Function').map(([id, fn]) => [
    id,
    render(fn.Role).replace(/^\$\{(.*)\.Arn\}$/, '$1'),
  ]);
}

function grantsIn(role: string, action: string): boolean {
  return permissionStatements().some((p) => p.role === role && allows(p.statement, action));
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation's placeholder, literally.
const PARTITION_PLACEHOLDER = '${AWS::Partition}';

/** A statement's resources, `${AWS::Partition}` read as the commercial partition `aws`. */
function resourcesOf(statement: Statement): string[] {
  return asArray(statement.Resource)
    .map(render)
    .map((arn) => arn.replaceAll(PARTITION_PLACEHOLDER, 'aws'));
}

function stringEquals(statement: Statement, key: string): readonly unknown[] {
  return asArray(statement.Condition?.StringEquals?.[key]);
}

function alarms(): [string, AlarmProperties][] {
  return resourcesOfType<AlarmProperties>('AWS::CloudWatch::Alarm');
}

function dimensionsOf(alarm: AlarmProperties): Record<string, string> {
  return Object.fromEntries((alarm.Dimensions ?? []).map((d) => [d.Name, render(d.Value)]));
}

function recoveryPointAlarm(schedule: string): AlarmProperties {
  const found = alarms().filter(
    ([, alarm]) =>
      alarm.MetricName === 'RecoveryPointAge' && dimensionsOf(alarm).schedule === schedule,
  );
  if (found.length !== 1 || !found[0]) {
    throw new Error(`expected one RecoveryPointAge alarm for ${schedule}, found ${found.length}`);
  }
  return found[0][1];
}

interface ScheduleResource {
  readonly logicalId: string;
  readonly fn: string;
  readonly schedule: string;
  readonly properties: ScheduleProperties;
}

/** Every Scheduler schedule with the function it invokes and the schedule it serves. */
function schedules(): ScheduleResource[] {
  return resourcesOfType<ScheduleProperties>('AWS::Scheduler::Schedule').map(
    ([logicalId, properties]) => {
      const target = render(properties.Target?.Arn);
      const fn =
        FUNCTIONS.find((f) => target === placeholder(`${f.logicalId}.Arn`))?.name ?? target;
      let input: { schedule?: unknown; sweep?: unknown; copy?: unknown } = {};
      try {
        input = JSON.parse(properties.Target?.Input ?? '{}') as typeof input;
      } catch {
        // reported by the input assertions
      }
      const schedule =
        input.sweep === true ? 'sweep' : input.copy === true ? 'catch-up' : String(input.schedule);
      return { logicalId, fn, schedule, properties };
    },
  );
}

function scheduleFor(fn: string, schedule: string): ScheduleResource {
  const found = schedules().filter((s) => s.fn === fn && s.schedule === schedule);
  if (found.length !== 1 || !found[0]) {
    throw new Error(`expected one schedule invoking ${fn} for ${schedule}, found ${found.length}`);
  }
  return found[0];
}

/** The longest time between two fires of a cron over a year, in seconds. */
function longestIntervalSeconds(cron: string, timezone: string): number {
  const definition = { name: 'probe', cron, timezone, retain: 1 };
  const end = Date.UTC(2027, 0, 1);
  let previous = nextFireTime(definition, new Date(Date.UTC(2026, 0, 1)));
  let longest = 0;
  while (previous.getTime() < end) {
    const next = nextFireTime(definition, previous);
    longest = Math.max(longest, next.getTime() - previous.getTime());
    previous = next;
  }
  return longest / 1000;
}

/** The cron with its hour one later: `cron(0 3 * * ? *)` → `cron(0 4 * * ? *)`. */
function anHourLater(cron: string): string {
  const fields = /^cron\((.*)\)$/.exec(cron)?.[1]?.split(/\s+/) ?? [];
  if (fields.length !== 6 || !/^\d+$/.test(fields[1] ?? '')) return `(cannot shift ${cron})`;
  fields[1] = String(Number(fields[1]) + 1);
  return `cron(${fields.join(' ')})`;
}

interface ZipEntry {
  readonly name: string;
  readonly size: number;
}

/** The entries of a zip archive, read from its central directory. */
function zipEntries(file: string): ZipEntry[] {
  const buffer = readFileSync(file);
  const end = buffer.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error(`${file} is not a zip archive`);
  const count = buffer.readUInt16LE(end + 10);
  let offset = buffer.readUInt32LE(end + 16);
  const entries: ZipEntry[] = [];
  for (let i = 0; i < count; i += 1) {
    if (buffer.readUInt32LE(offset) !== 0x02014b50)
      throw new Error(`${file}: bad central directory`);
    const size = buffer.readUInt32LE(offset + 24);
    const nameLength = buffer.readUInt16LE(offset + 28);
    const extraLength = buffer.readUInt16LE(offset + 30);
    const commentLength = buffer.readUInt16LE(offset + 32);
    const name = buffer.toString('utf8', offset + 46, offset + 46 + nameLength);
    entries.push({ name, size });
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

// ---------------------------------------------------------------------------------------
// The specification
// ---------------------------------------------------------------------------------------

describe(`Stack: the packaged CloudFormation template (stage ${STAGE})`, () => {
  it('was packaged after the last change to serverless.yml and its variables script', () => {
    // Prepare
    const packagedAt = existsSync(TEMPLATE_FILE) ? statSync(TEMPLATE_FILE).mtimeMs : 0;

    // Act
    const newer = PACKAGE_INPUTS.filter(
      (file) => statSync(join(PROJECT_ROOT, file)).mtimeMs > packagedAt,
    );

    // Assess
    expect(template().Resources, 'the template has resources').toBeDefined();
    expect(newer, 'changed since the template was packaged: run `npm run package`').toEqual([]);
  });

  describe('Functions', () => {
    it.each(FUNCTIONS)(
      'runs $name on nodejs22.x, arm64, with a timeout, memory and active tracing',
      ({ logicalId }) => {
        // Act
        const fn = propertiesOf<FunctionProperties>(logicalId, 'AWS::Lambda::Function');

        // Assess
        expect(fn.Runtime).toBe('nodejs22.x');
        expect(fn.Architectures).toEqual(['arm64']);
        expect(fn.Timeout).toBeGreaterThan(0);
        expect(fn.Timeout).toBeLessThanOrEqual(900);
        expect(fn.MemorySize).toBeGreaterThanOrEqual(128);
        expect(fn.MemorySize).toBeLessThanOrEqual(10_240);
        expect(fn.TracingConfig).toEqual({ Mode: 'Active' });
      },
    );

    it('gives each function a role of its own: BackupRole, RetentionRole, AmisRole', () => {
      // Act
      const roles = FUNCTIONS.map(
        ({ logicalId }) =>
          propertiesOf<FunctionProperties>(logicalId, 'AWS::Lambda::Function').Role,
      );
      const everyRole = functionRoles().map(([, role]) => role);

      // Assess
      expect(roles).toEqual(FUNCTIONS.map(({ role }) => arnOf(role)));
      for (const role of everyRole) propertiesOf<RoleProperties>(role, 'AWS::IAM::Role');
      expect(new Set(everyRole).size, 'no two functions share a role').toBe(everyRole.length);
    });

    it.each(FUNCTIONS)(
      'tells $name the stage, the run-history table and the schedules',
      ({ logicalId }) => {
        // Act
        const variables =
          propertiesOf<FunctionProperties>(logicalId, 'AWS::Lambda::Function').Environment
            ?.Variables ?? {};
        const schedulesVariable = JSON.parse(String(variables.SCHEDULES)) as unknown;

        // Assess
        expect(variables.DEPLOYMENT).toBe(STAGE);
        expect(variables.TAG_PREFIX).toBe(TAG_PREFIX);
        expect(variables.HISTORY_TABLE).toEqual(ref('RunHistoryTable'));
        expect(schedulesVariable).toEqual(
          SCHEDULES.map(({ name, cron, retain }) =>
            expect.objectContaining({ name, cron, retain }),
          ),
        );
      },
    );

    it.each(FUNCTIONS)(
      'sends $name invocations that failed twice more to FailedInvocationsQueue',
      ({ logicalId }) => {
        // Act
        const configs = resourcesOfType<EventInvokeConfigProperties>(
          'AWS::Lambda::EventInvokeConfig',
        ).filter(([, config]) => render(config.FunctionName) === placeholder(logicalId));

        // Assess
        expect(configs).toHaveLength(1);
        const [, config] = configs[0] ?? ['', {} as EventInvokeConfigProperties];
        expect(config.Qualifier).toBe('$LATEST');
        expect(config.MaximumRetryAttempts).toBe(2);
        expect(config.DestinationConfig?.OnFailure?.Destination).toEqual(
          arnOf('FailedInvocationsQueue'),
        );
        propertiesOf(`FailedInvocationsQueue`, 'AWS::SQS::Queue');
      },
    );
  });

  describe('Schedules', () => {
    it('has one EventBridge Scheduler schedule per function and schedule, plus the sweep and the copy catch-up, and no other', () => {
      // Act
      const found = schedules().map((s) => `${s.fn}/${s.schedule}`);

      // Assess
      expect(found.sort()).toEqual(SCHEDULE_TARGETS.map((t) => `${t.fn}/${t.schedule}`).sort());
    });

    it.each(SCHEDULE_TARGETS)(
      'invokes $fn for $schedule at $cron with exactly $input',
      ({ fn, schedule, cron, input }) => {
        // Act
        const { properties } = scheduleFor(fn, schedule);

        // Assess
        expect(properties.ScheduleExpression).toBe(cron);
        expect(properties.State ?? 'ENABLED').toBe('ENABLED');
        expect(JSON.parse(properties.Target?.Input ?? 'null')).toStrictEqual(input);
      },
    );

    it('runs each retention an hour after its backup', () => {
      // Act
      const pairs = SCHEDULES.map(({ name }) => ({
        name,
        expected: anHourLater(scheduleFor('backup', name).properties.ScheduleExpression ?? ''),
        retention: scheduleFor('retention', name).properties.ScheduleExpression,
      }));

      // Assess
      for (const { name, expected, retention } of pairs) {
        expect(retention, `retention for ${name}`).toBe(expected);
      }
    });

    it('fires every schedule on time in a named time zone (flexible window off)', () => {
      // Act
      const all = schedules();

      // Assess
      expect(all.length).toBeGreaterThan(0);
      for (const { logicalId, properties } of all) {
        expect(properties.FlexibleTimeWindow, logicalId).toEqual({ Mode: 'OFF' });
        expect(properties.ScheduleExpressionTimezone, logicalId).toMatch(
          /^[A-Za-z_]+(\/[\w+-]+)*$/,
        );
      }
    });

    it('delivers every schedule with SchedulerInvokeRole, never a function role', () => {
      // Act
      const roles = schedules().map((s) => [s.logicalId, s.properties.Target?.RoleArn]);

      // Assess
      for (const [logicalId, role] of roles) {
        expect(role, String(logicalId)).toEqual(arnOf('SchedulerInvokeRole'));
      }
    });

    it('retries every delivery and dead-letters the ones that fail to SchedulesDeadLetterQueue', () => {
      // Act
      const all = schedules();

      // Assess
      propertiesOf('SchedulesDeadLetterQueue', 'AWS::SQS::Queue');
      for (const { logicalId, properties } of all) {
        const retry = properties.Target?.RetryPolicy;
        expect(retry?.MaximumRetryAttempts, logicalId).toBeGreaterThan(0);
        expect(retry?.MaximumEventAgeInSeconds, logicalId).toBeGreaterThan(0);
        expect(properties.Target?.DeadLetterConfig?.Arn, logicalId).toEqual(
          arnOf('SchedulesDeadLetterQueue'),
        );
      }
    });

    it('lets only scheduler.amazonaws.com assume the invoke role', () => {
      // Act
      const trust = asArray(
        propertiesOf<RoleProperties>('SchedulerInvokeRole', 'AWS::IAM::Role')
          .AssumeRolePolicyDocument?.Statement,
      );

      // Assess
      expect(trust.length).toBeGreaterThan(0);
      for (const statement of trust) {
        expect(statement.Effect).toBe('Allow');
        expect(asArray(statement.Action)).toEqual(['sts:AssumeRole']);
        expect(statement.Principal).toBeTypeOf('object');
        const principal = statement.Principal as Record<string, unknown>;
        expect(Object.keys(principal)).toEqual(['Service']);
        expect(asArray(principal.Service as string | string[])).toEqual([
          'scheduler.amazonaws.com',
        ]);
      }
    });

    it('lets the invoke role invoke the scheduled functions and send to the dead-letter queue, nothing else', () => {
      // Prepare
      const role = propertiesOf<RoleProperties>('SchedulerInvokeRole', 'AWS::IAM::Role');

      // Act
      const granted = permissionStatements()
        .filter((p) => p.role === 'SchedulerInvokeRole')
        .flatMap(({ statement }) => {
          expect(statement.Effect).toBe('Allow');
          expect(statement.NotAction).toBeUndefined();
          expect(statement.NotResource).toBeUndefined();
          expect(statement.Condition).toBeUndefined();
          return asArray(statement.Action).flatMap((action) =>
            resourcesOf(statement).map((resource) => `${action} ${resource}`),
          );
        });

      // Assess
      expect(role.ManagedPolicyArns ?? []).toEqual([]);
      expect(granted.sort()).toEqual(
        [
          ...FUNCTIONS.map(
            ({ logicalId }) => `lambda:InvokeFunction ${placeholder(`${logicalId}.Arn`)}`,
          ),
          `sqs:SendMessage ${placeholder('SchedulesDeadLetterQueue.Arn')}`,
        ].sort(),
      );
    });
  });

  describe('IAM: least privilege in every role', () => {
    it('keeps every permission in the roles’ inline policies (no managed or separate policies)', () => {
      // Act
      const roles = resourcesOfType<RoleProperties>('AWS::IAM::Role');

      // Assess
      expect(roles.map(([id]) => id).sort()).toEqual(
        [...functionRoles().map(([, role]) => role), 'SchedulerInvokeRole'].sort(),
      );
      for (const [id, role] of roles) expect(role.ManagedPolicyArns ?? [], id).toEqual([]);
      expect(resourcesOfType('AWS::IAM::Policy')).toEqual([]);
      expect(resourcesOfType('AWS::IAM::ManagedPolicy')).toEqual([]);
    });

    it('lets only lambda.amazonaws.com assume the function roles', () => {
      // Prepare
      const roles = functionRoles();

      // Act
      const trusts = roles.flatMap(([, role]) =>
        asArray(
          propertiesOf<RoleProperties>(role, 'AWS::IAM::Role').AssumeRolePolicyDocument?.Statement,
        ),
      );

      // Assess
      expect(trusts).toHaveLength(roles.length);
      for (const statement of trusts) {
        expect(statement).toMatchObject({
          Effect: 'Allow',
          Principal: { Service: 'lambda.amazonaws.com' },
          Action: 'sts:AssumeRole',
        });
      }
    });

    it('allows no `*`, `ec2:*` or other `service:*` action', () => {
      // Act
      const offenders = permissionStatements().flatMap(({ label, statement }) =>
        statement.Effect === 'Allow'
          ? asArray(statement.Action)
              .filter((action) => action === '*' || /^[^:]+:\*$/.test(action))
              .map((action) => `${label}: ${action}`)
          : [],
      );

      // Assess
      expect(permissionStatements().length).toBeGreaterThan(0);
      expect(offenders).toEqual([]);
    });

    it('allows nothing through NotAction or NotResource', () => {
      // Act
      const offenders = permissionStatements()
        .filter(
          ({ statement }) =>
            statement.Effect === 'Allow' &&
            (statement.NotAction !== undefined || statement.NotResource !== undefined),
        )
        .map(({ label }) => label);

      // Assess
      expect(offenders).toEqual([]);
    });

    it(`deletes snapshots and deregisters images only when tagged ${MANAGED_TAG}=true and ${DEPLOYMENT_TAG}=${STAGE}`, () => {
      // Act
      const destructive = permissionStatements().filter(
        ({ statement }) =>
          allows(statement, 'ec2:DeleteSnapshot') || allows(statement, 'ec2:DeregisterImage'),
      );
      const offenders = destructive
        .filter(
          ({ statement }) =>
            JSON.stringify(stringEquals(statement, `aws:ResourceTag/${MANAGED_TAG}`)) !==
              JSON.stringify(['true']) ||
            JSON.stringify(stringEquals(statement, `aws:ResourceTag/${DEPLOYMENT_TAG}`)) !==
              JSON.stringify([STAGE]),
        )
        .map(({ label }) => label);

      // Assess
      expect(destructive.length).toBeGreaterThan(0);
      expect(offenders).toEqual([]);
    });

    it(`creates snapshots and images only with the request tags ${MANAGED_TAG}=true and ${DEPLOYMENT_TAG}=${STAGE}`, () => {
      // Prepare
      const createdResources = [
        'arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0',
        'arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0',
      ];

      // Act
      const creating = permissionStatements().filter(
        ({ statement }) =>
          CREATING_SNAPSHOTS_OR_IMAGES.some((action) => allows(statement, action)) &&
          resourcesOf(statement).some((pattern) =>
            createdResources.some((arn) => wildcardMatches(pattern, arn, false)),
          ),
      );
      // RegisterImage authorizes the snapshots an image is registered from as sources:
      // those carry the resource tags of this stage's own backups instead.
      const registeredFromOwnSnapshots = ({ statement }: { statement: Statement }) =>
        asArray(statement.Action).join() === 'ec2:RegisterImage' &&
        resourcesOf(statement).join() === 'arn:aws:ec2:*::snapshot/*' &&
        JSON.stringify(stringEquals(statement, `aws:ResourceTag/${MANAGED_TAG}`)) ===
          JSON.stringify(['true']) &&
        JSON.stringify(stringEquals(statement, `aws:ResourceTag/${DEPLOYMENT_TAG}`)) ===
          JSON.stringify([STAGE]);
      const offenders = creating
        .filter(
          (entry) =>
            !registeredFromOwnSnapshots(entry) &&
            (JSON.stringify(stringEquals(entry.statement, `aws:RequestTag/${MANAGED_TAG}`)) !==
              JSON.stringify(['true']) ||
              JSON.stringify(stringEquals(entry.statement, `aws:RequestTag/${DEPLOYMENT_TAG}`)) !==
                JSON.stringify([STAGE])),
        )
        .map(({ label }) => label);

      // Assess
      expect(creating.some(({ statement }) => allows(statement, 'ec2:CreateSnapshots'))).toBe(true);
      expect(creating.some(({ statement }) => allows(statement, 'ec2:CreateImage'))).toBe(true);
      expect(offenders).toEqual([]);
    });

    it('tags only at creation (an ec2:CreateAction condition naming creating actions)', () => {
      // Act
      const tagging = permissionStatements().filter(({ statement }) =>
        allows(statement, 'ec2:CreateTags'),
      );
      const offenders = tagging
        .filter(({ statement }) => {
          const actions = stringEquals(statement, 'ec2:CreateAction');
          return (
            actions.length === 0 ||
            actions.some((a) => typeof a !== 'string' || !CREATE_ACTIONS.includes(a))
          );
        })
        .map(({ label }) => label);

      // Assess
      expect(tagging.length).toBeGreaterThan(0);
      expect(offenders).toEqual([]);
    });

    it('denies every function role sharing a snapshot with everyone (ec2:Add/group all)', () => {
      // Prepare
      const roles = functionRoles().map(([, role]) => role);

      // Act
      const deniedByRole = roles.map((role) => [
        role,
        permissionStatements().some(
          (p) =>
            p.role === role &&
            p.statement.Effect === 'Deny' &&
            asArray(p.statement.Action).includes('ec2:ModifySnapshotAttribute') &&
            JSON.stringify(stringEquals(p.statement, 'ec2:Add/group')) ===
              JSON.stringify(['all']) &&
            resourcesOf(p.statement).includes('*'),
        ),
      ]);

      // Assess
      expect(roles).toEqual(expect.arrayContaining(FUNCTIONS.map(({ role }) => role)));
      expect(deniedByRole).toEqual(roles.map((role) => [role, true]));
    });

    it("denies ModifyImageAttribute outright to every role but copy, which may change only its own stage's AMIs (the action supports no ec2:Add/group)", () => {
      // Prepare
      const roles = functionRoles().map(([, role]) => role);

      // Act
      const unconditionalDeny = (role: string) =>
        permissionStatements().some(
          (p) =>
            p.role === role &&
            p.statement.Effect === 'Deny' &&
            asArray(p.statement.Action).includes('ec2:ModifyImageAttribute') &&
            p.statement.Condition === undefined &&
            resourcesOf(p.statement).includes('*'),
        );
      const imageGrants = permissionStatements().filter(({ statement }) =>
        allows(statement, 'ec2:ModifyImageAttribute'),
      );
      const deniesOnAddGroup = permissionStatements().filter(
        ({ statement }) =>
          asArray(statement.Action).includes('ec2:ModifyImageAttribute') &&
          stringEquals(statement, 'ec2:Add/group').length > 0,
      );

      // Assess
      expect(roles.filter((role) => role !== 'CopyRole' && !unconditionalDeny(role))).toEqual([]);
      expect(imageGrants.map(({ role }) => role)).toEqual(['CopyRole']);
      for (const { statement } of imageGrants) {
        expect(resourcesOf(statement)).toEqual(['arn:aws:ec2:*::image/*']);
        expect(stringEquals(statement, `aws:ResourceTag/${MANAGED_TAG}`)).toEqual(['true']);
        expect(stringEquals(statement, `aws:ResourceTag/${DEPLOYMENT_TAG}`)).toEqual([STAGE]);
      }
      expect(deniesOnAddGroup.map(({ label }) => label)).toEqual([]);
    });

    it('writes every ARN in the partition the stack is deployed in, never a literal arn:aws', () => {
      // Act
      const literal = JSON.stringify(template()).match(/"arn:aws:[^"]*"/g) ?? [];

      // Assess
      expect(literal).toEqual([]);
    });

    it('allows DynamoDB actions on the run-history table and its indexes only', () => {
      // Prepare
      const table = placeholder('RunHistoryTable.Arn');
      const allowed = [table, `${table}/index/*`];

      // Act
      const dynamo = permissionStatements().filter(
        ({ statement }) =>
          statement.Effect === 'Allow' &&
          asArray(statement.Action).some((action) => /^dynamodb:/i.test(action)),
      );
      const offenders = dynamo.flatMap(({ label, statement }) =>
        resourcesOf(statement)
          .filter((resource) => !allowed.includes(resource))
          .map((resource) => `${label}: ${resource}`),
      );

      // Assess
      expect(dynamo.length).toBeGreaterThan(0);
      expect(offenders).toEqual([]);
    });

    it.each(FUNCTIONS)(
      'lets $name read the creation records in batches (dynamodb:BatchGetItem): only what the history recorded is deleted',
      ({ role }) => {
        expect(grantsIn(role, 'dynamodb:BatchGetItem')).toBe(true);
      },
    );

    it('allows events:PutEvents on the default event bus only', () => {
      // Prepare
      const defaultBus =
        /^arn:(aws[a-z-]*|\$\{AWS::Partition\}):events:(\$\{AWS::Region\}|[a-z0-9-]+):(\$\{AWS::AccountId\}|\d{12}):event-bus\/default$/;

      // Act
      const publishing = permissionStatements().filter(({ statement }) =>
        allows(statement, 'events:PutEvents'),
      );
      const offenders = publishing.flatMap(({ label, statement }) =>
        resourcesOf(statement)
          .filter((resource) => !defaultBus.test(resource))
          .map((resource) => `${label}: ${resource}`),
      );

      // Assess
      expect(publishing.length).toBeGreaterThan(0);
      expect(offenders).toEqual([]);
    });

    it.each(FUNCTIONS)('grants $name only the EC2 writes it makes', ({ name, role }) => {
      // Act
      const granted = EC2_WRITES.filter((action) => grantsIn(role, action));

      // Assess
      expect(granted).toEqual(EC2_WRITES.filter((a) => EC2_WRITES_BY_FUNCTION[name].includes(a)));
    });
  });

  describe('Run-history table', () => {
    const table = () => propertiesOf<TableProperties>('RunHistoryTable', 'AWS::DynamoDB::Table');

    it('bills per request and is keyed PK (hash) / SK (range)', () => {
      // Act
      const { BillingMode, KeySchema } = table();

      // Assess
      expect(BillingMode).toBe('PAY_PER_REQUEST');
      expect(KeySchema).toEqual([
        { AttributeName: 'PK', KeyType: 'HASH' },
        { AttributeName: 'SK', KeyType: 'RANGE' },
      ]);
    });

    it('has the indexes GSI1, GSI2 and GSI3, each keyed GSIn PK / SK', () => {
      // Act
      const indexes = (table().GlobalSecondaryIndexes ?? []).map(({ IndexName, KeySchema }) => ({
        IndexName,
        KeySchema,
      }));

      // Assess
      expect(indexes).toEqual(
        [1, 2, 3].map((n) => ({
          IndexName: `GSI${n}`,
          KeySchema: [
            { AttributeName: `GSI${n}PK`, KeyType: 'HASH' },
            { AttributeName: `GSI${n}SK`, KeyType: 'RANGE' },
          ],
        })),
      );
    });

    it('expires items on expiresAt, with point-in-time recovery and encryption on', () => {
      // Act
      const properties = table();

      // Assess
      expect(properties.TimeToLiveSpecification).toEqual({
        AttributeName: 'expiresAt',
        Enabled: true,
      });
      expect(properties.PointInTimeRecoverySpecification).toEqual({
        PointInTimeRecoveryEnabled: true,
      });
      expect(properties.SSESpecification).toEqual({ SSEEnabled: true });
    });

    it('is the table the local AWS creates (harness/localTable.ts runHistoryTableDefinition())', () => {
      // Prepare
      const { TableName: _deployedName, ...deployed } = table() as Record<string, unknown>;

      // Act
      const { TableName: _localName, ...local } = runHistoryTableDefinition() as unknown as Record<
        string,
        unknown
      >;

      // Assess
      expect(deployed).toEqual(local);
    });
  });

  describe('Alarms and alerts', () => {
    it.each(SCHEDULES)(
      'alarms when the newest $name recovery point is older than $alarmThreshold s, or none is reported',
      ({ name, alarmThreshold }) => {
        // Act
        const alarm = recoveryPointAlarm(name);

        // Assess
        expect(alarm.Namespace).toBe('Snapkeeper');
        expect(alarm.Threshold).toBe(alarmThreshold);
        expect(alarm.ComparisonOperator).toBe('GreaterThanThreshold');
        expect(alarm.TreatMissingData).toBe('breaching');
        expect(dimensionsOf(alarm)).toMatchObject({ deployment: STAGE, schedule: name });
        expect(alarm.AlarmActions).toContainEqual(ref('AlertsTopic'));
      },
    );

    it.each(SCHEDULES)(
      'keeps the $name recovery-point alarm OK while its reporter runs on schedule',
      ({ name }) => {
        // Prepare: the function named by the alarm's job dimension publishes RecoveryPointAge
        // when a schedule invokes it for this schedule, or for every schedule as the sweep;
        // the most frequent of those runs is taken as the reporting interval.
        const alarm = recoveryPointAlarm(name);
        const job = dimensionsOf(alarm).job;
        const reporters = schedules().filter(
          (s) => s.fn === job && (s.schedule === name || s.schedule === 'sweep'),
        );
        const reportEvery = Math.min(
          ...reporters.map(({ properties }) =>
            longestIntervalSeconds(
              properties.ScheduleExpression ?? '',
              properties.ScheduleExpressionTimezone ?? 'UTC',
            ),
          ),
        );
        expect(reporters.length, `schedules invoking ${job} for ${name}`).toBeGreaterThan(0);
        const periods = alarm.EvaluationPeriods ?? 1;
        const period = alarm.Period ?? 60;
        const toAlarm = alarm.DatapointsToAlarm ?? periods;

        // Act: at worst the evaluation window holds floor(window / interval) reports; every
        // other period has no data, which TreatMissingData 'breaching' counts as breaching.
        const reported = Math.min(periods, Math.floor((periods * period) / reportEvery));
        const breachingWhileHealthy =
          alarm.TreatMissingData === 'breaching' ? periods - reported : 0;

        // Assess
        expect(
          breachingWhileHealthy,
          `${periods} periods of ${period} s, ${toAlarm} to alarm, one report every ${reportEvery} s`,
        ).toBeLessThan(toAlarm);
      },
    );

    it('alarms on failed backup and retention runs, on any function error and on undelivered invocations', () => {
      // Act
      const byMetric = alarms().map(([, alarm]) => alarm);
      const runsFailed = (metric: string, job: string) =>
        byMetric.find(
          (a) =>
            a.Namespace === 'Snapkeeper' &&
            a.MetricName === metric &&
            dimensionsOf(a).job === job &&
            dimensionsOf(a).deployment === STAGE,
        );
      const lambdaErrors = byMetric.find((a) =>
        (a.Metrics ?? []).some((m) => m.MetricStat?.Metric?.MetricName === 'Errors'),
      );
      const queueAlarm = (queue: string) =>
        byMetric.find(
          (a) =>
            a.Namespace === 'AWS/SQS' &&
            a.MetricName === 'ApproximateNumberOfMessagesVisible' &&
            dimensionsOf(a).QueueName === placeholder(`${queue}.QueueName`),
        );

      // Assess
      const failureAlarms = [
        runsFailed('BackupRunsFailed', 'backup'),
        runsFailed('RetentionRunsFailed', 'retention'),
        lambdaErrors,
        queueAlarm('FailedInvocationsQueue'),
        queueAlarm('SchedulesDeadLetterQueue'),
      ];
      // Each notifies through the one failures alarm, not on its own (test/stack/alerts.test.ts).
      const failures = propertiesOf<{ AlarmActions?: unknown[] }>(
        'FailuresAlarm',
        'AWS::CloudWatch::CompositeAlarm',
      );
      expect(failures.AlarmActions).toEqual([ref('AlertsTopic')]);
      for (const alarm of failureAlarms) {
        expect(alarm).toMatchObject({
          Threshold: 0,
          ComparisonOperator: 'GreaterThanThreshold',
        });
        expect(alarm?.AlarmActions).toBeUndefined();
      }
      const watched = (lambdaErrors?.Metrics ?? []).flatMap(
        (m) => m.MetricStat?.Metric?.Dimensions?.map((d) => render(d.Value)) ?? [],
      );
      expect(watched.sort()).toEqual(
        [...FUNCTIONS.map(({ logicalId }) => logicalId), 'WorkerLambdaFunction']
          .map((logicalId) => placeholder(logicalId))
          .sort(),
      );
    });

    it('sends partial runs of this deployment to the alerts topic (failed and incomplete ones reach it through the failures alarm)', () => {
      // Act
      const rule = propertiesOf<RuleProperties>('UnsuccessfulRunsRule', 'AWS::Events::Rule');

      // Assess
      expect(rule.State ?? 'ENABLED').toBe('ENABLED');
      expect(rule.EventBusName ?? 'default').toBe('default');
      expect(rule.EventPattern?.source).toEqual(['snapkeeper']);
      expect(rule.EventPattern?.['detail-type']).toEqual(['Snapkeeper Run Finished']);
      expect([RUN_FINISHED.source, RUN_FINISHED.detailType]).toEqual([
        'snapkeeper',
        'Snapkeeper Run Finished',
      ]);
      expect([...(rule.EventPattern?.detail?.status ?? [])].sort()).toEqual(['partial']);
      expect(rule.EventPattern?.detail?.deployment).toEqual([STAGE]);
      expect(rule.Targets?.map((t) => t.Arn)).toEqual([ref('AlertsTopic')]);
    });

    it('encrypts the alerts topic with a key EventBridge and CloudWatch may use (not the AWS-managed alias/aws/sns)', () => {
      // Act
      const topic = propertiesOf<{ KmsMasterKeyId?: unknown }>('AlertsTopic', 'AWS::SNS::Topic');

      // Assess: the aws/sns key policy cannot be edited and grants neither
      // events.amazonaws.com nor cloudwatch.amazonaws.com kms:GenerateDataKey/kms:Decrypt,
      // so every alarm action and rule delivery to the topic would fail.
      expect(render(topic.KmsMasterKeyId ?? '')).not.toMatch(/alias\/aws\/sns$/);
    });

    it('outputs RunHistoryTableName and AlertsTopicArn', () => {
      // Act
      const outputs = template().Outputs ?? {};

      // Assess
      expect(outputs.RunHistoryTableName?.Value).toEqual(ref('RunHistoryTable'));
      expect(outputs.AlertsTopicArn?.Value).toEqual(ref('AlertsTopic'));
    });
  });

  describe('Fan-out', () => {
    interface QueueProperties {
      VisibilityTimeout?: number;
      RedrivePolicy?: { deadLetterTargetArn?: unknown; maxReceiveCount?: number };
    }
    interface MappingProperties {
      EventSourceArn?: unknown;
      FunctionName?: unknown;
      BatchSize?: number;
      FunctionResponseTypes?: string[];
      ScalingConfig?: { MaximumConcurrency?: number };
    }
    const worker = () =>
      propertiesOf<FunctionProperties>('WorkerLambdaFunction', 'AWS::Lambda::Function');
    const mapping = () => {
      const found = resourcesOfType<MappingProperties>('AWS::Lambda::EventSourceMapping');
      expect(found).toHaveLength(1);
      return (found[0] ?? ['', {} as MappingProperties])[1];
    };

    it('feeds the worker from FanOutQueue with partial batch failures and a cap on workers at once', () => {
      // Act
      const source = mapping();

      // Assess
      expect(source.EventSourceArn).toEqual(arnOf('FanOutQueue'));
      expect(render(source.FunctionName)).toBe(placeholder('WorkerLambdaFunction.Arn'));
      expect(source.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      expect(source.ScalingConfig?.MaximumConcurrency).toBeGreaterThanOrEqual(2);
    });

    it('gives each worker its share of the account’s EC2 rate: 1 / the workers at once', () => {
      // Act
      const workers = mapping().ScalingConfig?.MaximumConcurrency ?? 0;
      const share = Number(worker().Environment?.Variables?.EC2_RATE_SHARE);

      // Assess
      expect(share).toBeGreaterThan(0);
      expect(share).toBeLessThanOrEqual(1 / workers);
      expect(share).toBeGreaterThan(0.99 / workers);
    });

    it('dead-letters a batch after as many deliveries as the worker is told to try', () => {
      // Act
      const queue = propertiesOf<QueueProperties>('FanOutQueue', 'AWS::SQS::Queue');
      const attempts = Number(worker().Environment?.Variables?.FANOUT_MAX_ATTEMPTS);

      // Assess
      expect(queue.RedrivePolicy?.deadLetterTargetArn).toEqual(arnOf('FanOutDeadLetterQueue'));
      expect(queue.RedrivePolicy?.maxReceiveCount).toBe(attempts);
      expect(queue.VisibilityTimeout).toBeGreaterThan(worker().Timeout ?? 900);
    });

    it('lets the planner send to the fan-out queue and both assume only the target-account role', () => {
      // Act
      const assume = permissionStatements().filter(({ statement }) =>
        allows(statement, 'sts:AssumeRole'),
      );

      // Assess
      expect(assume.map(({ role }) => role).sort()).toEqual(['FanoutRole', 'WorkerRole']);
      for (const { statement } of assume) {
        expect(resourcesOf(statement)).toEqual(['arn:aws:iam::*:role/snapkeeper-target']);
      }
      expect(grantsIn('FanoutRole', 'sqs:SendMessage')).toBe(true);
      expect(EC2_WRITES.filter((action) => grantsIn('WorkerRole', action))).toEqual([
        'ec2:CreateSnapshots',
        'ec2:CreateTags',
        'ec2:DeleteSnapshot',
      ]);
    });
  });

  describe('Packages', () => {
    /** Asserts one function's zip: the deployed one, within budget, one bundle, no map. */
    function expectPackaged(name: string, logicalId: string): void {
      const zip = join(SERVERLESS_DIR, `${name}.zip`);
      const code = propertiesOf<FunctionProperties>(logicalId, 'AWS::Lambda::Function').Code;
      const entries = existsSync(zip) ? zipEntries(zip).filter((e) => !e.name.endsWith('/')) : [];
      expect(existsSync(zip), `${zip}: run \`npm run package\``).toBe(true);
      expect(render(code?.S3Key), logicalId).toMatch(new RegExp(`/${name}\\.zip$`));
      expect(statSync(zip).size, zip).toBeLessThanOrEqual(BUNDLE_BUDGET_BYTES);
      expect(entries.map((e) => e.name)).toEqual([`functions/${name}.mjs`]);
      expect(entries.filter((e) => e.name.endsWith('.map'))).toEqual([]);
    }

    it.each(FUNCTIONS)(
      'ships $name as one .mjs bundle without a source map in a zip of at most 1.5 MB',
      ({ name, logicalId }) => {
        expectPackaged(name, logicalId);
      },
    );

    it('ships every other function of the stack the same way', () => {
      // Prepare
      const named: readonly string[] = FUNCTIONS.map(({ logicalId }) => logicalId);

      // Act
      const others = resourcesOfType<FunctionProperties>('AWS::Lambda::Function')
        .filter(([logicalId]) => !named.includes(logicalId))
        .map(([logicalId, fn]) => ({
          logicalId,
          name: /\/([^/]+)\.zip$/.exec(render(fn.Code?.S3Key))?.[1] ?? logicalId,
        }));

      // Assess
      for (const { name, logicalId } of others) expectPackaged(name, logicalId);
    });
  });
});
