import { DescribeSnapshotsCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { awsError, type FaultProxy, startFaultProxy } from '../../harness/faultProxy.ts';
import { lambdaContext } from '../../harness/lambdaContext.ts';
import { type LaunchedInstance, launchFleet } from '../../harness/localFleet.ts';
import type { RunHistoryGateway } from '../../lib/aws/RunHistoryGateway.ts';
import { createRunHistoryGateway } from '../../lib/aws/RunHistoryGateway.ts';
import { loadConfig } from '../../lib/config/environment.ts';
import type { FanOutReport } from '../../lib/jobs/fanOutJob.ts';
import { tagsOf, useLocalAws, useLocalHistoryTable } from '../support/localEnvironment.ts';

const HOME = 'me-south-1';
const OTHER = 'il-central-1';
const TARGET_ACCOUNT = '111111111111';
const SLOT = '2026-11-23T03:00:00Z';

type Handler<E, R> = (event: E, context: Context) => Promise<R>;

describe('Handlers: functions/fanout.ts and functions/worker.ts against the local AWS', () => {
  let proxy: FaultProxy;
  let sqs: SQSClient;
  let queueUrl: string;
  let history: RunHistoryGateway;
  let fanOut: Handler<unknown, FanOutReport>;
  let worker: Handler<SQSEvent, SQSBatchResponse>;
  const home: LaunchedInstance[] = [];
  const other: LaunchedInstance[] = [];
  const remote: LaunchedInstance[] = [];
  let remoteEc2: EC2Client;
  let homeEc2: EC2Client;
  let otherEc2: EC2Client;

  /** Receives every message in the queue, hands them to the worker in SQS batches, deletes the processed. */
  async function drain(maxRounds = 10): Promise<SQSBatchResponse[]> {
    const responses: SQSBatchResponse[] = [];
    for (let round = 0; round < maxRounds; round += 1) {
      const received = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 5,
          VisibilityTimeout: 0,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
      );
      const messages = received.Messages ?? [];
      if (messages.length === 0) break;
      const response = await worker(sqsEvent(messages), lambdaContext('snapkeeper-test-worker'));
      responses.push(response);
      const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      for (const message of messages) {
        if (failed.has(message.MessageId ?? '')) continue;
        await sqs.send(
          new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }),
        );
      }
    }
    return responses;
  }

  async function snapshotsOfDeployment(ec2: EC2Client) {
    const response = await ec2.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ['self'],
        Filters: [
          { Name: 'tag:snapkeeper:deployment', Values: ['fanout'] },
          { Name: 'tag:snapkeeper:schedule', Values: ['daily'] },
        ],
      }),
    );
    return response.Snapshots ?? [];
  }

  async function snapshotsOfRun(ec2: EC2Client, runId: string) {
    const response = await ec2.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ['self'],
        Filters: [{ Name: 'tag:snapkeeper:run-id', Values: [runId] }],
      }),
    );
    return response.Snapshots ?? [];
  }

  beforeAll(async () => {
    const moto = inject('awsEndpoint');
    proxy = await startFaultProxy({ target: moto });
    useLocalAws(proxy.endpoint, HOME, {
      DEPLOYMENT: 'fanout',
      TARGET_REGIONS: `${HOME},${OTHER}`,
      TARGET_ACCOUNTS: `self,${TARGET_ACCOUNT}`,
      TARGET_ROLE_NAME: 'snapkeeper-target',
      FANOUT_BATCH_SIZE: '2',
      FANOUT_MAX_ATTEMPTS: '3',
      AWS_MAX_ATTEMPTS: '2',
      EVENT_BUS_NAME: '',
      SCHEDULES: JSON.stringify([
        { name: 'daily', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 2 },
        { name: 'weekly', cron: 'cron(0 4 ? * SUN *)', timezone: 'UTC', retain: 4 },
      ]),
      MAX_DELETIONS: '100%',
    });
    await useLocalHistoryTable(moto, HOME);
    sqs = new SQSClient({ region: HOME, endpoint: moto });
    queueUrl =
      (await sqs.send(new CreateQueueCommand({ QueueName: 'snapkeeper-fanout-test' }))).QueueUrl ??
      '';
    process.env.FANOUT_QUEUE_URL = queueUrl;
    homeEc2 = new EC2Client({ region: HOME, endpoint: moto });
    otherEc2 = new EC2Client({ region: OTHER, endpoint: moto });
    const sts = new STSClient({ region: HOME, endpoint: moto });
    const assumed = await sts.send(
      new AssumeRoleCommand({
        RoleArn: `arn:aws:iam::${TARGET_ACCOUNT}:role/snapkeeper-target`,
        RoleSessionName: 'arrange',
      }),
    );
    const c = assumed.Credentials;
    remoteEc2 = new EC2Client({
      region: HOME,
      endpoint: moto,
      credentials: {
        accessKeyId: c?.AccessKeyId ?? '',
        secretAccessKey: c?.SecretAccessKey ?? '',
        sessionToken: c?.SessionToken ?? '',
      },
    });
    const opted = (name: string, tags: Record<string, string> = {}) => ({
      name,
      tags: { 'snapkeeper:backup': 'daily', ...tags },
      dataVolumes: [{ device: '/dev/sdf', sizeGiB: 10 }],
    });
    home.push(
      ...(
        await launchFleet(homeEc2, [
          opted('home-1'),
          opted('home-2'),
          opted('home-3'),
          opted('home-4'),
          opted('home-5'),
          { name: 'home-weekly', tags: { 'snapkeeper:backup': 'weekly' } },
          { name: 'home-untagged' },
        ])
      ).values(),
    );
    other.push(...(await launchFleet(otherEc2, [opted('other-1'), opted('other-2')])).values());
    remote.push(...(await launchFleet(remoteEc2, [opted('remote-1')])).values());
    ({ handler: fanOut } = (await import('../../functions/fanout.ts')) as unknown as {
      handler: typeof fanOut;
    });
    ({ handler: worker } = (await import('../../functions/worker.ts')) as unknown as {
      handler: typeof worker;
    });
    history = createRunHistoryGateway(loadConfig(process.env), process.env.HISTORY_TABLE ?? '', 30);
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  beforeEach(() => {
    proxy.rules.clear();
    proxy.resetStats();
  });

  it('splits a slot per (account, region, batch), runs every batch, and finishes one run when the last batch is done', async () => {
    // Act: the planner
    const report = await fanOut(
      { job: 'backup', schedule: 'daily', scheduledTime: SLOT },
      lambdaContext('snapkeeper-test-fanout'),
    );

    // Assess: what was planned and sent
    expect(report.status).toBe('running');
    expect(report.targets).toEqual([
      { account: 'self', region: HOME, instances: 5, batches: 3 },
      { account: 'self', region: OTHER, instances: 2, batches: 1 },
      { account: TARGET_ACCOUNT, region: HOME, instances: 1, batches: 1 },
      { account: TARGET_ACCOUNT, region: OTHER, instances: 0, batches: 0 },
    ]);
    expect(report.counts).toEqual({ targets: 4, targetsFailed: 0, instances: 8, batches: 5 });
    expect((await history.getRun(report.runId))?.status).toBe('running');
    expect((await history.runBatches(report.runId)).map((b) => b.status)).toEqual(
      Array(5).fill('pending'),
    );

    // Act: the workers
    const responses = await drain();

    // Assess: every batch went through, under the planner's run id
    expect(responses.flatMap((r) => r.batchItemFailures)).toEqual([]);
    const batches = await history.runBatches(report.runId);
    expect(batches.map((b) => [b.status, b.attempts])).toEqual(Array(5).fill(['succeeded', 1]));
    const run = await history.getRun(report.runId);
    expect(run).toMatchObject({ status: 'succeeded' });
    expect(run?.counts).toMatchObject({ batches: 5, backedUp: 8, failed: 0, batchesFailed: 0 });

    // Assess: the snapshots exist in each account and region, one set per instance
    const made = {
      home: await snapshotsOfRun(homeEc2, report.runId),
      other: await snapshotsOfRun(otherEc2, report.runId),
      remote: await snapshotsOfRun(remoteEc2, report.runId),
    };
    const instancesOf = (snapshots: typeof made.home) =>
      [...new Set(snapshots.map((s) => tagsOf(s)['snapkeeper:instance-id']))].sort();
    expect(instancesOf(made.home)).toEqual(
      home
        .filter((i) => i.name.match(/^home-\d$/))
        .map((i) => i.instanceId)
        .sort(),
    );
    expect(made.home).toHaveLength(10);
    expect(instancesOf(made.other)).toEqual(other.map((i) => i.instanceId).sort());
    expect(instancesOf(made.remote)).toEqual(remote.map((i) => i.instanceId));
    for (const snapshot of [...made.home, ...made.other, ...made.remote]) {
      expect(tagsOf(snapshot)).toMatchObject({
        'snapkeeper:slot': SLOT,
        'snapkeeper:schedule': 'daily',
        'snapkeeper:deployment': 'fanout',
      });
    }

    // Assess: the other account was reached through its role
    expect(proxy.calls('AssumeRole')).toBeGreaterThanOrEqual(1);
    const assumed = proxy.requests('AssumeRole')[0];
    expect(assumed?.params.RoleArn).toBe(`arn:aws:iam::${TARGET_ACCOUNT}:role/snapkeeper-target`);
  });

  it('answers a second delivery of the same slot with the running or finished run, sending nothing again', async () => {
    // Act
    const again = (await fanOut(
      { job: 'backup', schedule: 'daily', scheduledTime: SLOT },
      lambdaContext('snapkeeper-test-fanout'),
    )) as unknown as { status: string };

    // Assess
    expect(again.status).toBe('running'); // the first run's report, as recorded at dispatch
    expect(proxy.calls('SendMessageBatch')).toBe(0);
    expect(proxy.calls('CreateSnapshots')).toBe(0);
  });

  it('retries a batch whose instance failed: the retry resumes by the slot tag and never repeats a create', async () => {
    // Prepare: CreateSnapshots of home-2 fails (every attempt) on the first delivery
    const slot = '2026-11-24T03:00:00Z';
    const failing = home[1]?.instanceId ?? '';
    const rule = proxy.rules.add({
      action: 'CreateSnapshots',
      decide: (call) =>
        call.params['InstanceSpecification.InstanceId'] === failing
          ? awsError('InternalError', 500, 'simulated outage')
          : undefined,
    });
    const report = await fanOut(
      { job: 'backup', schedule: 'daily', scheduledTime: slot },
      lambdaContext('snapkeeper-test-fanout'),
    );

    // Act: first delivery of every batch
    const first = await drain(1);

    // Assess: only the batch holding home-2 failed, and it is checkpointed for retry
    expect(first[0]?.batchItemFailures).toHaveLength(1);
    const before = await history.runBatches(report.runId);
    const retried = before.find((b) => b.status === 'retry');
    expect(retried).toMatchObject({ attempts: 1, counts: { backedUp: 1, failed: 1 } });
    expect((await history.getRun(report.runId))?.status).toBe('running');

    // Act: the outage ends; the queue delivers the failed batch again
    rule.remove();
    proxy.resetStats();
    await drain();

    // Assess: the retry made only home-2's set; home-1's set (same batch) was not repeated
    expect(proxy.calls('CreateSnapshots')).toBe(1);
    const after = await history.runBatches(report.runId);
    expect(after.find((b) => b.batchId === retried?.batchId)).toMatchObject({
      status: 'succeeded',
      attempts: 2,
      counts: { covered: 1, backedUp: 1 },
    });
    const made = await snapshotsOfRun(homeEc2, report.runId);
    const perInstance = new Map<string, number>();
    for (const s of made) {
      const id = tagsOf(s)['snapkeeper:instance-id'] ?? '';
      perInstance.set(id, (perInstance.get(id) ?? 0) + 1);
    }
    expect([...perInstance.values()]).toEqual(Array(5).fill(2));
    expect((await history.getRun(report.runId))?.status).toBe('succeeded');
  });

  it('does nothing for a batch delivered again after it finished', async () => {
    // Prepare
    const slot = '2026-11-25T03:00:00Z';
    await fanOut(
      { job: 'backup', schedule: 'daily', scheduledTime: slot },
      lambdaContext('snapkeeper-test-fanout'),
    );
    const received = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1 }),
    );
    const message = received.Messages?.[0] as Message;
    await worker(sqsEvent([message]), lambdaContext('snapkeeper-test-worker'));
    proxy.resetStats();

    // Act: SQS delivers the same message again (at-least-once)
    const response = await worker(sqsEvent([message]), lambdaContext('snapkeeper-test-worker'));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(proxy.calls('CreateSnapshots')).toBe(0);
    expect(proxy.calls('DescribeInstances')).toBe(0);
    await drain();
  });

  it('runs retention as one batch per target, each at the whole DeleteSnapshot rate, keeping 2 of the 3 sets', async () => {
    // Prepare: every instance has the sets of three slots by now
    const before = {
      home: await snapshotsOfDeployment(homeEc2),
      other: await snapshotsOfDeployment(otherEc2),
      remote: await snapshotsOfDeployment(remoteEc2),
    };

    // Act
    const report = await fanOut(
      { job: 'retention', schedule: 'daily', scheduledTime: '2026-11-25T04:00:00Z' },
      lambdaContext('snapkeeper-test-fanout'),
    );
    const peeked = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 0,
      }),
    );
    await drain();

    // Assess: four targets, four batches, each marked to take the whole rate
    expect(report.counts).toMatchObject({ targets: 4, batches: 4 });
    expect(
      (peeked.Messages ?? []).map(
        (m) => (JSON.parse(m.Body ?? '{}') as { rateShare?: number }).rateShare,
      ),
    ).toEqual(Array((peeked.Messages ?? []).length).fill(1));
    expect(peeked.Messages?.length).toBeGreaterThan(0);
    const run = await history.getRun(report.runId);
    expect(run?.status).toBe('succeeded');
    const after = {
      home: await snapshotsOfDeployment(homeEc2),
      other: await snapshotsOfDeployment(otherEc2),
      remote: await snapshotsOfDeployment(remoteEc2),
    };
    for (const key of ['home', 'other', 'remote'] as const) {
      const perVolume = new Map<string, number>();
      for (const s of after[key])
        perVolume.set(s.VolumeId ?? '', (perVolume.get(s.VolumeId ?? '') ?? 0) + 1);
      expect(
        [...perVolume.values()].every((n) => n === 2),
        key,
      ).toBe(true);
      expect(after[key].length).toBeLessThan(before[key].length);
    }
    expect(run?.counts).toMatchObject({ deleted: 16, failed: 0 });
  });

  it('rejects a malformed batch message by name, and only that record fails', async () => {
    // Act
    const response = await worker(
      sqsEvent([
        { MessageId: 'bad-1', Body: JSON.stringify({ runId: 'r', job: 'backup' }) },
        { MessageId: 'bad-2', Body: 'not json' },
      ]),
      lambdaContext('snapkeeper-test-worker'),
    ).catch((error: Error) => error);

    // Assess: both fail, so Powertools reports a full batch failure
    expect(response).toBeInstanceOf(Error);
    expect(String((response as Error).message)).toMatch(/All records failed/);
  });
});

function sqsEvent(messages: readonly Message[]): SQSEvent {
  return {
    Records: messages.map((m) => ({
      messageId: m.MessageId ?? 'id',
      receiptHandle: m.ReceiptHandle ?? 'handle',
      body: m.Body ?? '',
      attributes: {
        ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
        SentTimestamp: '0',
        SenderId: 'local',
        ApproximateFirstReceiveTimestamp: '0',
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-2:123456789012:snapkeeper-fanout-test',
      awsRegion: 'us-east-2',
    })),
  };
}
