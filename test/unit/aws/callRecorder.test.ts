import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DeleteSnapshotCommand, DescribeSnapshotsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { HttpResponse } from '@smithy/protocol-http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type CallerContext,
  RECORD_CALLS_VARIABLE,
  type RecordedCall,
  recordCalls,
  runAsCaller,
} from '../../../lib/aws/callRecorder.ts';

const RETENTION: CallerContext = {
  functionName: 'retention',
  region: 'eu-west-1',
  deployment: 'prod',
  tagPrefix: 'snapkeeper:',
  localTagAfterCreate: false,
};

/** EC2 answering each action with the XML the EC2 API reference documents. */
const ANSWERS: Record<string, string> = {
  DescribeSnapshots: `<DescribeSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><snapshotSet><item><snapshotId>snap-0aa</snapshotId><status>completed</status><tagSet><item><key>snapkeeper:managed</key><value>true</value></item><item><key>snapkeeper:deployment</key><value>prod</value></item></tagSet></item></snapshotSet></DescribeSnapshotsResponse>`,
  DeleteSnapshot: `<DeleteSnapshotResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><return>true</return></DeleteSnapshotResponse>`,
};

function ec2(): EC2Client {
  return new EC2Client({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    requestHandler: {
      handle: async (request: { body?: unknown }) => {
        const action = /Action=(\w+)/.exec(String(request.body))?.[1] ?? '';
        return {
          response: new HttpResponse({
            statusCode: 200,
            headers: { 'content-type': 'text/xml' },
            body: Readable.from([Buffer.from(ANSWERS[action] ?? '')]),
          }),
        };
      },
    },
  });
}

function recorded(directory: string): RecordedCall[] {
  return readdirSync(directory).flatMap((file) =>
    readFileSync(join(directory, file), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as RecordedCall),
  );
}

describe('Function: recordCalls', () => {
  let directory: string;

  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'snapkeeper-calls-'));
    process.env[RECORD_CALLS_VARIABLE] = directory;
  });

  afterEach(() => {
    delete process.env[RECORD_CALLS_VARIABLE];
    rmSync(directory, { recursive: true, force: true });
  });

  it('records each call a function makes, with the tags of the snapshot it deletes as the function saw them', async () => {
    // Prepare
    const client = recordCalls(ec2());

    // Act
    await runAsCaller(RETENTION, async () => {
      await client.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
      await client.send(new DeleteSnapshotCommand({ SnapshotId: 'snap-0aa' }));
    });

    // Assess
    const calls = recorded(directory);
    expect(
      calls.map((c) => `${c.caller.functionName} ${c.service}:${c.action} ${c.region}`),
    ).toEqual([
      'retention ec2:DescribeSnapshots eu-west-1',
      'retention ec2:DeleteSnapshot eu-west-1',
    ]);
    expect(calls[1]?.resourceTags).toEqual({
      'snap-0aa': { 'snapkeeper:managed': 'true', 'snapkeeper:deployment': 'prod' },
    });
  });

  it('records nothing outside a function (a test arranging its fixtures)', async () => {
    // Prepare
    const client = recordCalls(ec2());

    // Act
    await client.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));

    // Assess
    expect(readdirSync(directory)).toEqual([]);
  });

  it('adds no middleware when the variable is not set (Lambda)', async () => {
    // Prepare
    delete process.env[RECORD_CALLS_VARIABLE];
    const plain = ec2();
    const before = plain.middlewareStack.identify().length;

    // Act
    const client = recordCalls(plain);

    // Assess
    expect(client.middlewareStack.identify().length).toBe(before);
  });

  it('names the target-account role a client assumed', async () => {
    // Prepare
    const role = 'arn:aws:iam::210987654321:role/snapkeeper-target';
    const client = recordCalls(ec2(), { assumedRole: role });

    // Act
    await runAsCaller({ ...RETENTION, functionName: 'worker' }, () =>
      client.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] })),
    );

    // Assess
    expect(recorded(directory).map((c) => c.assumedRole)).toEqual([role]);
  });
});
