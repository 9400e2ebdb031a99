import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  awsError,
  COPIED_VOLUME_ID,
  copiesReportUnknownVolume,
  eventualConsistency,
  type FaultProxy,
  firstCalls,
  loseAnswer,
  rewriteXmlItems,
  startFaultProxy,
} from '../../../harness/faultProxy.ts';

const EC2_FORM = 'application/x-www-form-urlencoded; charset=utf-8';
const XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

function ec2Call(
  endpoint: string,
  action: string,
  options: { extra?: string; region?: string; signal?: AbortSignal } = {},
) {
  return fetch(`${endpoint}/`, {
    method: 'POST',
    headers: {
      'content-type': EC2_FORM,
      authorization: `AWS4-HMAC-SHA256 Credential=testing/20260101/${options.region ?? 'ap-southeast-2'}/ec2/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: `Action=${action}&Version=2016-11-15${options.extra ?? ''}`,
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/** A described snapshot as EC2 (and moto) write it, tags nested as `<item>`s. */
function snapshotItem(
  id: string,
  volumeId: string,
  tags: Record<string, string> = {},
  description = 'snapkeeper',
): string {
  const tagItems = Object.entries(tags)
    .map(([key, value]) => `<item><key>${key}</key><value>${value}</value></item>`)
    .join('');
  return (
    `<item><snapshotId>${id}</snapshotId><volumeId>${volumeId}</volumeId><status>completed</status>` +
    `<description>${description}</description><tagSet>${tagItems}</tagSet></item>`
  );
}

function imageItem(id: string, snapshotId: string): string {
  return (
    `<item><imageId>${id}</imageId><imageState>available</imageState><blockDeviceMapping>` +
    `<item><deviceName>/dev/xvda</deviceName><ebs><snapshotId>${snapshotId}</snapshotId></ebs></item>` +
    '</blockDeviceMapping><tagSet/></item>'
  );
}

/** Snapshot and image ids in a describe answer, in order. */
function idsIn(body: string, set: 'snapshotSet' | 'imagesSet'): string[] {
  const ids: string[] = [];
  rewriteXmlItems(body, set, (item) => {
    const id = /<(?:snapshotId|imageId)>([^<]+)</.exec(item)?.[1];
    if (id) ids.push(id);
    return item;
  });
  return ids;
}

function volumeOf(body: string, snapshotId: string): string | undefined {
  let volume: string | undefined;
  rewriteXmlItems(body, 'snapshotSet', (item) => {
    if (item.includes(`<snapshotId>${snapshotId}</snapshotId>`)) {
      volume = /<volumeId>([^<]+)</.exec(item)?.[1];
    }
    return item;
  });
  return volume;
}

describe('Script: faultProxy, answers where AWS differs from the local AWS', () => {
  /** What the fake EC2 describes; its creates answer the next ids of `nextIds`. */
  const state = {
    snapshots: [] as string[],
    images: [] as string[],
    nextIds: [] as string[],
    received: [] as string[],
  };
  let upstream: Server;
  let proxy: FaultProxy;

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const action = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('Action');
        state.received.push(action ?? '');
        let body: string;
        if (action === 'DescribeSnapshots') {
          body = `<DescribeSnapshotsResponse xmlns="${XMLNS}"><requestId>r</requestId><snapshotSet>${state.snapshots.join('')}</snapshotSet></DescribeSnapshotsResponse>`;
        } else if (action === 'DescribeImages') {
          body = `<DescribeImagesResponse xmlns="${XMLNS}"><requestId>r</requestId><imagesSet>${state.images.join('')}</imagesSet></DescribeImagesResponse>`;
        } else if (action === 'CreateSnapshots') {
          const items = state.nextIds
            .map((id) => `<item><snapshotId>${id}</snapshotId><volumeId>vol-1</volumeId></item>`)
            .join('');
          body = `<CreateSnapshotsResponse xmlns="${XMLNS}"><requestId>r</requestId><snapshotSet>${items}</snapshotSet></CreateSnapshotsResponse>`;
        } else if (action === 'CreateImage') {
          body = `<CreateImageResponse xmlns="${XMLNS}"><requestId>r</requestId><imageId>${state.nextIds[0]}</imageId></CreateImageResponse>`;
        } else if (action === 'CopySnapshot') {
          body = `<CopySnapshotResponse xmlns="${XMLNS}"><requestId>r</requestId><snapshotId>${state.nextIds[0]}</snapshotId></CopySnapshotResponse>`;
        } else {
          body = `<Response><requestId>r</requestId></Response>`;
        }
        res.writeHead(200, { 'content-type': 'text/xml;charset=UTF-8' });
        res.end(body);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    proxy = await startFaultProxy({
      target: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    });
  });

  afterAll(async () => {
    await proxy.stop();
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  beforeEach(() => {
    proxy.rules.clear();
    proxy.resetStats();
    state.snapshots = [];
    state.images = [];
    state.nextIds = [];
    state.received = [];
  });

  describe('Function: rewriteXmlItems', () => {
    it('drops or changes whole top-level items and keeps their nested items and the rest byte for byte', () => {
      // Prepare
      const body = `<R><requestId>x</requestId><snapshotSet>${snapshotItem('snap-1', 'vol-1', { a: '1' })}${snapshotItem('snap-2', 'vol-2', { b: '2' })}</snapshotSet><nextToken/></R>`;

      // Act
      const dropped = rewriteXmlItems(body, 'snapshotSet', (item) =>
        item.includes('snap-1') ? undefined : item,
      );
      const unchanged = rewriteXmlItems(body, 'snapshotSet', (item) => item);

      // Assess
      expect(dropped).toBe(
        `<R><requestId>x</requestId><snapshotSet>${snapshotItem('snap-2', 'vol-2', { b: '2' })}</snapshotSet><nextToken/></R>`,
      );
      expect(unchanged).toBe(body);
      expect(rewriteXmlItems('<R/>', 'snapshotSet', () => undefined)).toBe('<R/>');
    });
  });

  describe('Function: eventualConsistency', () => {
    it('leaves a created snapshot out of the first N describes that would list it, then shows it', async () => {
      // Prepare
      const lag = eventualConsistency({ describes: 2 });
      proxy.rules.add(lag);
      state.nextIds = ['snap-new'];
      state.snapshots = [snapshotItem('snap-old', 'vol-1')];
      await ec2Call(proxy.endpoint, 'CreateSnapshots');
      state.snapshots.push(snapshotItem('snap-new', 'vol-1'));

      // Act
      const answers: string[][] = [];
      for (let i = 0; i < 3; i += 1) {
        const response = await ec2Call(proxy.endpoint, 'DescribeSnapshots');
        answers.push(idsIn(await response.text(), 'snapshotSet'));
      }

      // Assess
      expect(answers).toEqual([['snap-old'], ['snap-old'], ['snap-old', 'snap-new']]);
      expect([...lag.created.keys()]).toEqual(['snap-new']);
      expect(lag.hidden()).toBe(2);
      expect(proxy.faults('DescribeSnapshots')).toBe(2);
      expect(proxy.faults('CreateSnapshots')).toBe(0);
      expect(proxy.requests('DescribeSnapshots').map((r) => r.outcome)).toEqual([
        'rewritten',
        'rewritten',
        'forwarded',
      ]);
      expect(proxy.requests('DescribeSnapshots').map((r) => r.effect)).toEqual([
        'rewrite',
        'rewrite',
        undefined,
      ]);
      expect(proxy.requests('CreateSnapshots')).toMatchObject([
        { effect: undefined, outcome: 'forwarded' },
      ]);
    });

    it('leaves a created image, and the snapshots CreateImage made for it, out until the lag has passed', async () => {
      // Prepare
      let now = 1_000_000;
      proxy.rules.add(eventualConsistency({ lagMs: 5_000, now: () => now }));
      state.nextIds = ['ami-0abc'];
      await ec2Call(proxy.endpoint, 'CreateImage');
      state.images = [imageItem('ami-0abc', 'snap-ami')];
      state.snapshots = [
        snapshotItem('snap-ami', 'vol-9', {}, 'Created by CreateImage(i-1) for ami-0abc'),
        snapshotItem('snap-other', 'vol-2'),
      ];

      // Act
      now += 4_999;
      const early = [
        idsIn(await (await ec2Call(proxy.endpoint, 'DescribeImages')).text(), 'imagesSet'),
        idsIn(await (await ec2Call(proxy.endpoint, 'DescribeSnapshots')).text(), 'snapshotSet'),
      ];
      now += 1;
      const later = [
        idsIn(await (await ec2Call(proxy.endpoint, 'DescribeImages')).text(), 'imagesSet'),
        idsIn(await (await ec2Call(proxy.endpoint, 'DescribeSnapshots')).text(), 'snapshotSet'),
      ];

      // Assess
      expect(early).toEqual([[], ['snap-other']]);
      expect(later).toEqual([['ami-0abc'], ['snap-ami', 'snap-other']]);
    });

    it('still lets later rules fault the same calls, and learns what a create made whose answer was lost', async () => {
      // Prepare
      const lag = eventualConsistency({ describes: 1 });
      proxy.rules.add(lag);
      proxy.rules.add({ action: 'CreateSnapshots', decide: firstCalls(1, loseAnswer()) });
      proxy.rules.add({
        action: 'DescribeSnapshots',
        decide: firstCalls(1, awsError('InternalError', 500)),
      });
      state.nextIds = ['snap-lost'];

      // Act
      const lost = ec2Call(proxy.endpoint, 'CreateSnapshots', {
        signal: AbortSignal.timeout(300),
      });
      await expect(lost).rejects.toThrow();
      state.snapshots = [snapshotItem('snap-lost', 'vol-1')];
      const failed = await ec2Call(proxy.endpoint, 'DescribeSnapshots');
      const hidden = await (await ec2Call(proxy.endpoint, 'DescribeSnapshots')).text();
      const shown = await (await ec2Call(proxy.endpoint, 'DescribeSnapshots')).text();

      // Assess
      expect(state.received.filter((a) => a === 'CreateSnapshots')).toHaveLength(1);
      expect(proxy.requests('CreateSnapshots')).toMatchObject([
        { effect: 'lose-answer', outcome: 'answer-lost' },
      ]);
      expect(lag.created.has('snap-lost')).toBe(true);
      expect(failed.status).toBe(500);
      expect(idsIn(hidden, 'snapshotSet')).toEqual([]);
      expect(idsIn(shown, 'snapshotSet')).toEqual(['snap-lost']);
    });

    it('refuses options that give no lag, or a negative one', () => {
      // Act
      const none = () => eventualConsistency({});
      const negative = () => eventualConsistency({ lagMs: -1 });

      // Assess
      expect(none).toThrow('needs lagMs, describes, or both');
      expect(negative).toThrow(RangeError);
    });
  });

  describe('Function: copiesReportUnknownVolume', () => {
    it('reports vol-ffffffff for a snapshot CopySnapshot made, and the source volume for the rest', async () => {
      // Prepare
      const rule = copiesReportUnknownVolume();
      proxy.rules.add(rule);
      state.nextIds = ['snap-copy'];
      await ec2Call(proxy.endpoint, 'CopySnapshot');
      state.snapshots = [snapshotItem('snap-src', 'vol-1'), snapshotItem('snap-copy', 'vol-1')];

      // Act
      const body = await (await ec2Call(proxy.endpoint, 'DescribeSnapshots')).text();

      // Assess
      expect(volumeOf(body, 'snap-copy')).toBe(COPIED_VOLUME_ID);
      expect(volumeOf(body, 'snap-src')).toBe('vol-1');
      expect([...rule.copies]).toEqual(['snap-copy']);
      expect(rule.rewritten()).toBe(1);
    });

    it('treats every snapshot of a chosen region, or picked by tag, as a copy', async () => {
      // Prepare
      proxy.rules.add(
        copiesReportUnknownVolume({
          regions: ['eu-west-1'],
          isCopy: (s) => 'snapkeeper:source-snapshot' in s.tags,
        }),
      );
      state.snapshots = [
        snapshotItem('snap-tagged', 'vol-1', { 'snapkeeper:source-snapshot': 'snap-src' }),
        snapshotItem('snap-plain', 'vol-2'),
      ];

      // Act
      const home = await (await ec2Call(proxy.endpoint, 'DescribeSnapshots')).text();
      const away = await (
        await ec2Call(proxy.endpoint, 'DescribeSnapshots', { region: 'eu-west-1' })
      ).text();

      // Assess
      expect([volumeOf(home, 'snap-tagged'), volumeOf(home, 'snap-plain')]).toEqual([
        COPIED_VOLUME_ID,
        'vol-2',
      ]);
      expect([volumeOf(away, 'snap-tagged'), volumeOf(away, 'snap-plain')]).toEqual([
        COPIED_VOLUME_ID,
        COPIED_VOLUME_ID,
      ]);
    });

    it('drops copies from a describe filtered by the source volume, as AWS would', async () => {
      // Prepare
      proxy.rules.add(copiesReportUnknownVolume({ regions: ['eu-west-1'] }));
      state.snapshots = [snapshotItem('snap-copy', 'vol-1')];

      // Act
      const bySource = await (
        await ec2Call(proxy.endpoint, 'DescribeSnapshots', {
          region: 'eu-west-1',
          extra: '&Filter.1.Name=volume-id&Filter.1.Value.1=vol-1',
        })
      ).text();
      const byUnknown = await (
        await ec2Call(proxy.endpoint, 'DescribeSnapshots', {
          region: 'eu-west-1',
          extra: `&Filter.1.Name=volume-id&Filter.1.Value.1=${COPIED_VOLUME_ID}`,
        })
      ).text();

      // Assess
      expect(idsIn(bySource, 'snapshotSet')).toEqual([]);
      expect(idsIn(byUnknown, 'snapshotSet')).toEqual(['snap-copy']);
    });
  });
});
