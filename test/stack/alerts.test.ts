/**
 * Alerts as a person receives them: which alarms and rules of the packaged template
 * (`npm run package`, stage ci) reach the alerts topic when something goes wrong, and
 * how many messages one failure makes. CloudWatch and EventBridge are modelled only as
 * far as these resources use them: a metric alarm goes into ALARM when a datapoint of
 * its metric and dimensions is above 0; a composite alarm when one of its children
 * does; an alarm notifies once when it goes into ALARM (not again while it stays
 * there); a rule sends one message per matching event.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../harness/localAws.ts';

const require = createRequire(import.meta.url);
const variables = require('../../scripts/serverlessVariables.cjs') as {
  alertResources(options: { resolveVariable: (name: string) => Promise<unknown> }): Promise<{
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  }>;
  alertRuleTargets(options: {
    resolveVariable: (name: string) => Promise<unknown>;
  }): Promise<{ Id: string; Arn: unknown }[]>;
  recoveryPointAlarms(options: { resolveVariable: (name: string) => Promise<unknown> }): Promise<{
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  }>;
};

const STAGE = 'ci';
const TEMPLATE_FILE = join(
  PROJECT_ROOT,
  '.serverless',
  'cloudformation-template-update-stack.json',
);
const TOPIC = { Ref: 'AlertsTopic' };

interface Resource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}

function template(): Record<string, Resource> {
  if (!existsSync(TEMPLATE_FILE)) {
    throw new Error(
      `${TEMPLATE_FILE} is missing: run \`npm run package\` first (\`npm test\` packages the stack before running vitest)`,
    );
  }
  return (
    JSON.parse(readFileSync(TEMPLATE_FILE, 'utf8')) as { Resources: Record<string, Resource> }
  ).Resources;
}

/** What one failure (or run) makes happen, as CloudWatch and EventBridge see it. */
interface Signals {
  /** Datapoints of snapkeeper's metrics, with their dimensions. */
  readonly metrics?: readonly { name: string; dimensions: Record<string, string> }[];
  /** Functions (logical ids) whose invocations threw. */
  readonly threw?: readonly string[];
  /** Queues (logical ids) that received a message. */
  readonly queued?: readonly string[];
  /** `Snapkeeper Run Finished` events published. */
  readonly runsFinished?: readonly { status: string; job: string }[];
}

const sameValue = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const notifies = (actions: unknown) =>
  Array.isArray(actions) && actions.some((a) => sameValue(a, TOPIC));

/** The metric alarms a set of signals puts into ALARM. */
function metricAlarmsFiring(resources: Record<string, Resource>, signals: Signals): Set<string> {
  const firing = new Set<string>();
  for (const [id, resource] of Object.entries(resources)) {
    if (resource.Type !== 'AWS::CloudWatch::Alarm') continue;
    const p = resource.Properties ?? {};
    const dims = (p.Dimensions ?? []) as { Name: string; Value: unknown }[];
    if (p.Namespace === 'Snapkeeper') {
      const hit = (signals.metrics ?? []).some(
        (m) =>
          m.name === p.MetricName &&
          dims.every((d) => m.dimensions[d.Name] === d.Value) &&
          Object.keys(m.dimensions).length === dims.length,
      );
      if (hit) firing.add(id);
    } else if (p.Namespace === 'AWS/SQS') {
      const queue = (dims[0]?.Value as { 'Fn::GetAtt'?: string[] } | undefined)?.[
        'Fn::GetAtt'
      ]?.[0];
      if (queue && (signals.queued ?? []).includes(queue)) firing.add(id);
    } else if (Array.isArray(p.Metrics)) {
      const watched = (
        p.Metrics as {
          MetricStat?: {
            Metric?: { MetricName?: string; Dimensions?: { Value: { Ref?: string } }[] };
          };
        }[]
      )
        .filter((m) => m.MetricStat?.Metric?.MetricName === 'Errors')
        .flatMap((m) => m.MetricStat?.Metric?.Dimensions?.map((d) => d.Value.Ref) ?? []);
      if ((signals.threw ?? []).some((fn) => watched.includes(fn))) firing.add(id);
    }
  }
  return firing;
}

/** The alarms a composite alarm's rule names (its rules here are ORs of ALARM(...)). */
function children(rule: unknown): string[] {
  const parts = (rule as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join']?.[1] ?? [];
  const text = parts
    .map((p) => (typeof p === 'string' ? p : `{${(p as { Ref: string }).Ref}}`))
    .join('');
  expect(text, 'only ORs of ALARM(...)').not.toMatch(/\bAND\b|\bNOT\b/);
  return [...text.matchAll(/ALARM\("\{(\w+)\}"\)/g)].map((m) => m[1] ?? '');
}

/** Every message the alerts topic receives for these signals. */
function notifications(resources: Record<string, Resource>, signals: Signals): string[] {
  const firing = metricAlarmsFiring(resources, signals);
  const messages: string[] = [];
  for (const [id, resource] of Object.entries(resources)) {
    const p = resource.Properties ?? {};
    if (resource.Type === 'AWS::CloudWatch::Alarm' && firing.has(id) && notifies(p.AlarmActions))
      messages.push(`alarm ${id}`);
    if (
      resource.Type === 'AWS::CloudWatch::CompositeAlarm' &&
      children(p.AlarmRule).some((child) => firing.has(child)) &&
      notifies(p.AlarmActions)
    )
      messages.push(`alarm ${id}`);
    if (resource.Type === 'AWS::Events::Rule') {
      const pattern = p.EventPattern as {
        source?: string[];
        'detail-type'?: string[];
        detail?: { status?: string[]; deployment?: string[] };
      };
      if (!pattern?.['detail-type']?.includes('Snapkeeper Run Finished')) continue;
      const targets = (p.Targets ?? []) as { Arn: unknown }[];
      if (!targets.some((t) => sameValue(t.Arn, TOPIC))) continue;
      for (const event of signals.runsFinished ?? []) {
        if (
          pattern.detail?.status?.includes(event.status) &&
          pattern.detail.deployment?.includes(STAGE)
        )
          messages.push(`event ${id} (${event.job} ${event.status})`);
      }
    }
  }
  return messages;
}

const dimensions = (job: string) => ({ service: 'snapkeeper', deployment: STAGE, job });

/** A failed scheduled run of a job in a single function, retried by Lambda twice, then dead-lettered. */
function failedRunRetried(job: 'backup' | 'retention', fn: string): Signals {
  const metric = job === 'backup' ? 'BackupRunsFailed' : 'RetentionRunsFailed';
  return {
    metrics: [1, 2, 3].map(() => ({ name: metric, dimensions: dimensions(job) })),
    threw: [fn, fn, fn],
    queued: ['FailedInvocationsQueue'],
    runsFinished: [1, 2, 3].map(() => ({ status: 'failed', job })),
  };
}

describe('Stack: alerts that reach a person', () => {
  describe('one failure, one notification', () => {
    it('sends one message for a failed backup run, though Lambda retries it twice and then dead-letters it', () => {
      // Act
      const messages = notifications(
        template(),
        failedRunRetried('backup', 'BackupLambdaFunction'),
      );

      // Assess
      expect(messages).toEqual(['alarm FailuresAlarm']);
    });

    it('sends one message for a failed retention run', () => {
      // Act
      const messages = notifications(
        template(),
        failedRunRetried('retention', 'RetentionLambdaFunction'),
      );

      // Assess
      expect(messages).toEqual(['alarm FailuresAlarm']);
    });

    it('sends one message for a failed fan-out backup run (job=backup, batches retried by the queue, one dead-lettered)', () => {
      // Act
      const messages = notifications(template(), {
        metrics: [{ name: 'BackupRunsFailed', dimensions: dimensions('backup') }],
        threw: ['WorkerLambdaFunction', 'WorkerLambdaFunction', 'WorkerLambdaFunction'],
        queued: ['FanOutDeadLetterQueue'],
        runsFinished: [{ status: 'failed', job: 'backup' }],
      });

      // Assess
      expect(messages).toEqual(['alarm FailuresAlarm']);
    });

    it('still tells of a fan-out failure counted under the worker (the metric a fan-out run counted before)', () => {
      // Act: a crash of the worker before any report.
      const messages = notifications(template(), { threw: ['WorkerLambdaFunction'] });

      // Assess
      expect(messages).toEqual(['alarm FailuresAlarm']);
    });

    it('sends one message, with the run, for a partial run (done, with errors: nothing else signals it)', () => {
      // Act
      const messages = notifications(template(), {
        runsFinished: [{ status: 'partial', job: 'backup' }],
      });

      // Assess
      expect(messages).toEqual(['event UnsuccessfulRunsRule (backup partial)']);
    });

    it.each([
      ['a function that crashed before any report', { threw: ['AmisLambdaFunction'] }],
      ['a schedule that could not invoke its function', { queued: ['SchedulesDeadLetterQueue'] }],
      [
        'an incomplete run (it throws so Lambda resumes it)',
        {
          threw: ['BackupLambdaFunction'],
          runsFinished: [{ status: 'incomplete', job: 'backup' }],
        },
      ],
    ] as [string, Signals][])('sends one message for %s', (_case, signals) => {
      // Act
      const messages = notifications(template(), signals);

      // Assess
      expect(messages).toEqual(['alarm FailuresAlarm']);
    });

    it('sends nothing for a run that succeeded', () => {
      // Act
      const messages = notifications(template(), {
        metrics: [{ name: 'BackupRunsSucceeded', dimensions: dimensions('backup') }],
        runsFinished: [{ status: 'succeeded', job: 'backup' }],
      });

      // Assess
      expect(messages).toEqual([]);
    });

    it('names, in the failures alarm, where a person reads what failed', () => {
      // Act
      const alarm = template().FailuresAlarm?.Properties ?? {};

      // Assess
      expect(alarm.AlarmDescription).toContain(`npm run history -- --stage ${STAGE}`);
      expect(alarm.OKActions).toBeUndefined();
    });
  });

  describe('who receives them (custom.alertEmail, custom.alertTopicArn)', () => {
    const OPERATOR_TOPIC = 'arn:aws:sns:eu-west-1:111122223333:ops-alerts';
    const resolver =
      (values: Record<string, unknown>) =>
      async (name: string): Promise<unknown> => {
        const all: Record<string, unknown> = {
          'self:custom.alertEmail': '',
          'self:custom.alertTopicArn': '',
          'self:custom.schedules': [
            { name: 'daily', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 7 },
          ],
          ...values,
        };
        if (!(name in all)) throw new Error(`unexpected variable ${name}`);
        return all[name];
      };

    it('subscribes the alert email to the alerts topic', async () => {
      // Act
      const { Resources } = await variables.alertResources({
        resolveVariable: resolver({ 'self:custom.alertEmail': 'ops@example.com' }),
      });

      // Assess
      expect(Resources.AlertsEmailSubscription).toEqual({
        Type: 'AWS::SNS::Subscription',
        Properties: { TopicArn: TOPIC, Protocol: 'email', Endpoint: 'ops@example.com' },
      });
    });

    it('subscribes nobody when no email is set (the packaged default)', async () => {
      // Act
      const { Resources } = await variables.alertResources({ resolveVariable: resolver({}) });

      // Assess
      expect(Resources.AlertsEmailSubscription).toBeUndefined();
      expect(template().AlertsEmailSubscription).toBeUndefined();
    });

    it('rejects an alert email that is not one address, naming custom.alertEmail', async () => {
      // Act
      const failure = await variables
        .alertResources({
          resolveVariable: resolver({ 'self:custom.alertEmail': 'a@x.io, b@x.io' }),
        })
        .catch((error: unknown) => error);

      // Assess
      expect(String(failure)).toContain('custom.alertEmail must be one email address');
    });

    it('sends every alert to an existing topic too: the failures alarm, the partial-run rule and the recovery-point alarms', async () => {
      // Prepare
      const resolveVariable = resolver({ 'self:custom.alertTopicArn': OPERATOR_TOPIC });

      // Act
      const { Resources } = await variables.alertResources({ resolveVariable });
      const targets = await variables.alertRuleTargets({ resolveVariable });
      const recovery = await variables.recoveryPointAlarms({ resolveVariable });

      // Assess
      expect(Resources.FailuresAlarm?.Properties.AlarmActions).toEqual([TOPIC, OPERATOR_TOPIC]);
      expect(targets).toEqual([
        { Id: 'alerts', Arn: TOPIC },
        { Id: 'operator-alerts', Arn: OPERATOR_TOPIC },
      ]);
      expect(recovery.Resources.RecoveryPointAgeDailyAlarm?.Properties.AlarmActions).toEqual([
        TOPIC,
        OPERATOR_TOPIC,
      ]);
    });

    it('rejects a topic ARN that is not an SNS topic ARN, naming custom.alertTopicArn', async () => {
      // Act
      const failure = await variables
        .alertRuleTargets({
          resolveVariable: resolver({ 'self:custom.alertTopicArn': 'ops-alerts' }),
        })
        .catch((error: unknown) => error);

      // Assess
      expect(String(failure)).toContain(
        'custom.alertTopicArn must be the ARN of a standard SNS topic',
      );
    });
  });
});
