import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeSnapshotsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../harness/faultProxy.ts';
import {
  noPublicSnapshotsRule,
  parseBenchJobs,
  peerGapRows,
  peerGaps,
} from '../../../scripts/bench/benchJobs.ts';

const XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';
const snapshot = (id: string) =>
  `<item><snapshotId>${id}</snapshotId><volumeId>vol-1</volumeId><status>completed</status><ownerId>123456789012</ownerId><tagSet/></item>`;

describe('npm run bench: the jobs it measures', () => {
  it('takes AMI retirement and copies beside backup and retention', () => {
    expect([...parseBenchJobs('backup, retention,amis,copies')]).toEqual([
      'backup',
      'retention',
      'amis',
      'copies',
    ]);
  });

  it('refuses an unknown job by name, listing the jobs it takes', () => {
    expect(() => parseBenchJobs('backup,ami')).toThrow(
      '--jobs takes backup, retention, copies, amis; got "ami"',
    );
  });

  it('says why a peer that has the job has no figures: turned off, or above the largest fleet peers run at', () => {
    expect(peerGaps('backup', 5000, { peersMax: 1000 }).map((g) => g.note)).toEqual([
      'skipped: peers run up to 1,000 instances (--peers-max); above it each would add minutes at the same pace',
      'skipped: peers run up to 1,000 instances (--peers-max); above it each would add minutes at the same pace',
    ]);
    expect(peerGaps('retention', 1000, { peersMax: 1000, off: new Set(['c7n']) })).toEqual([
      { peer: 'c7n', note: 'not run (--no-custodian)' },
      { peer: 'naive per-volume loop', note: 'no such job' },
    ]);
    expect(peerGaps('backup', 1000, { peersMax: 1000 })).toEqual([]);
  });

  it('prints a — row for each peer that has no such job, and none where both have it', () => {
    expect(peerGapRows('backup', 1000)).toEqual([]);
    expect(peerGapRows('retention', 1000)).toEqual([
      'retention  1000 instances  naive per-volume loop   —  (no such job)',
    ]);
    expect(peerGapRows('amis', 200).map((row) => row.split(/\s{2,}/)[2])).toEqual([
      'c7n',
      'naive per-volume loop',
    ]);
    expect(peerGapRows('copies', 200)).toHaveLength(2);
  });
});

describe('npm run bench: public snapshots answered as AWS answers them', () => {
  let target: Server;
  let proxy: FaultProxy;
  let ec2: EC2Client;

  beforeAll(async () => {
    // A local AWS that, like moto, ignores RestorableByUserIds and answers every own snapshot.
    target = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/xml' });
      response.end(
        `<DescribeSnapshotsResponse xmlns="${XMLNS}"><requestId>r</requestId><snapshotSet>${snapshot('snap-1')}${snapshot('snap-2')}</snapshotSet></DescribeSnapshotsResponse>`,
      );
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    proxy = await startFaultProxy({
      target: `http://127.0.0.1:${(target.address() as AddressInfo).port}`,
    });
    proxy.rules.add(noPublicSnapshotsRule());
    ec2 = new EC2Client({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      maxAttempts: 1,
    });
  });

  afterAll(async () => {
    ec2.destroy();
    await proxy.stop();
    await new Promise((resolve) => target.close(resolve));
  });

  it('answers the SDK’s RestorableByUserIds=all with no snapshot (the bench makes none public)', async () => {
    const answer = await ec2.send(
      new DescribeSnapshotsCommand({ OwnerIds: ['self'], RestorableByUserIds: ['all'] }),
    );

    expect(answer.Snapshots).toEqual([]);
  });

  it('leaves every other describe of snapshots as the local AWS answers it', async () => {
    const answer = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));

    expect(answer.Snapshots?.map((s) => s.SnapshotId)).toEqual(['snap-1', 'snap-2']);
  });
});
