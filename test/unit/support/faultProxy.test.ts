import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  always,
  awsError,
  delay,
  type FaultProxy,
  firstCalls,
  hang,
  nthCall,
  reset,
  seededRandom,
  startFaultProxy,
  withProbability,
} from '../../../harness/faultProxy.ts';

/** What the echo server saw of one request. */
interface Echo {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

const EC2_FORM = 'application/x-www-form-urlencoded; charset=utf-8';

function ec2Call(endpoint: string, action: string, extra = '', signal?: AbortSignal) {
  return fetch(`${endpoint}/`, {
    method: 'POST',
    headers: {
      'content-type': EC2_FORM,
      authorization:
        'AWS4-HMAC-SHA256 Credential=testing/20260101/ap-southeast-2/ec2/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: `Action=${action}&Version=2016-11-15${extra}`,
    ...(signal ? { signal } : {}),
  });
}

function jsonCall(endpoint: string, target: string, body: unknown) {
  return fetch(`${endpoint}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': target },
    body: JSON.stringify(body),
  });
}

describe('Script: faultProxy', () => {
  let upstream: Server;
  let target: string;
  const received: Echo[] = [];
  let proxy: FaultProxy;

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const echo: Echo = {
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        };
        received.push(echo);
        res.writeHead(201, { 'content-type': 'application/json', 'x-upstream': 'echo' });
        res.end(JSON.stringify(echo));
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    target = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    proxy = await startFaultProxy({ target });
  });

  afterAll(async () => {
    await proxy.stop();
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  beforeEach(() => {
    received.length = 0;
    proxy.rules.clear();
    proxy.resetStats();
  });

  afterEach(() => {
    proxy.rules.clear();
  });

  describe('Function: startFaultProxy', () => {
    it('listens on 127.0.0.1 and refuses a target that is not on a loopback host', async () => {
      // Act
      const refused = startFaultProxy({ target: 'http://example.com:80' });

      // Assess
      expect(proxy.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      await expect(refused).rejects.toThrow('loopback');
    });

    it('forwards method, path, headers and body unchanged and streams the answer back', async () => {
      // Prepare
      const body = JSON.stringify({ hello: 'world' });

      // Act
      const response = await fetch(`${proxy.endpoint}/some/path?x=1`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', 'x-custom': 'kept' },
        body,
      });
      const echo = (await response.json()) as Echo;

      // Assess
      expect(response.status).toBe(201);
      expect(response.headers.get('x-upstream')).toBe('echo');
      expect(echo).toMatchObject({ method: 'PUT', url: '/some/path?x=1', body });
      expect(echo.headers['x-custom']).toBe('kept');
      expect(echo.headers.host).toBe(new URL(proxy.endpoint).host);
      expect(proxy.requests()).toMatchObject([
        {
          action: 'PUT /some/path',
          protocol: 'rest',
          outcome: 'forwarded',
          json: { hello: 'world' },
        },
      ]);
    });

    it('reads the action of query and JSON calls and counts calls per action', async () => {
      // Act
      await ec2Call(proxy.endpoint, 'CreateSnapshots', '&InstanceSpecification.InstanceId=i-1');
      await ec2Call(proxy.endpoint, 'CreateSnapshots', '&InstanceSpecification.InstanceId=i-2');
      await jsonCall(proxy.endpoint, 'DynamoDB_20120810.PutItem', { TableName: 'runs' });

      // Assess
      expect(proxy.calls()).toBe(3);
      expect(proxy.calls('CreateSnapshots')).toBe(2);
      expect(proxy.calls('PutItem')).toBe(1);
      expect(proxy.calls('DeleteSnapshot')).toBe(0);
      const [first, second, third] = proxy.requests();
      expect(first).toMatchObject({
        seq: 1,
        actionSeq: 1,
        protocol: 'ec2-query',
        service: 'ec2',
        region: 'ap-southeast-2',
        params: { Action: 'CreateSnapshots', 'InstanceSpecification.InstanceId': 'i-1' },
      });
      expect(second).toMatchObject({ seq: 2, actionSeq: 2 });
      expect(third).toMatchObject({
        action: 'PutItem',
        protocol: 'json',
        json: { TableName: 'runs' },
      });
      expect(received).toHaveLength(3);
    });
  });

  describe('Rules', () => {
    it('answers the first N calls of an action with an EC2 XML error and forwards the rest', async () => {
      // Prepare
      const rule = proxy.rules.add({
        action: 'CreateSnapshots',
        decide: firstCalls(2, awsError('RequestLimitExceeded', 503, 'Request limit exceeded.')),
      });

      // Act
      const answers = [];
      for (let i = 0; i < 3; i += 1) answers.push(await ec2Call(proxy.endpoint, 'CreateSnapshots'));
      await ec2Call(proxy.endpoint, 'DescribeInstances');
      const firstBody = await answers[0]?.text();

      // Assess
      expect(answers.map((a) => a.status)).toEqual([503, 503, 201]);
      expect(answers[0]?.headers.get('content-type')).toContain('text/xml');
      expect(firstBody).toMatch(
        /<Response><Errors><Error><Code>RequestLimitExceeded<\/Code><Message>Request limit exceeded\.<\/Message><\/Error><\/Errors><RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>$/,
      );
      expect(received.map((r) => new URLSearchParams(r.body).get('Action'))).toEqual([
        'CreateSnapshots',
        'DescribeInstances',
      ]);
      expect(proxy.faults('CreateSnapshots')).toBe(2);
      expect(proxy.faults()).toBe(2);
      expect(rule).toMatchObject({ name: 'CreateSnapshots', matched: 3, fired: 2 });
    });

    it('answers JSON-protocol calls with a JSON error in the request content type', async () => {
      // Prepare
      proxy.rules.add({
        action: 'PutItem',
        decide: always(awsError('ProvisionedThroughputExceededException', 400, 'slow down')),
      });

      // Act
      const answer = await jsonCall(proxy.endpoint, 'DynamoDB_20120810.PutItem', {});

      // Assess
      expect(answer.status).toBe(400);
      expect(answer.headers.get('content-type')).toBe('application/x-amz-json-1.0');
      expect(answer.headers.get('x-amzn-errortype')).toBe('ProvisionedThroughputExceededException');
      expect(await answer.json()).toEqual({
        __type: 'ProvisionedThroughputExceededException',
        message: 'slow down',
      });
      expect(received).toHaveLength(0);
    });

    it('lets the first rule with an effect win, counts per rule, and stops a removed rule', async () => {
      // Prepare
      const second = proxy.rules.add({
        action: ['DescribeInstances', 'DescribeVolumes'],
        decide: nthCall(2, awsError('InternalError', 500)),
      });
      const byParam = proxy.rules.add({
        name: 'instance i-bad',
        decide: (call) =>
          call.params['InstanceId.1'] === 'i-bad'
            ? awsError('InvalidInstanceID.NotFound', 400)
            : undefined,
      });

      // Act
      const statuses: number[] = [];
      for (const extra of ['', '&InstanceId.1=i-bad', '', '']) {
        statuses.push((await ec2Call(proxy.endpoint, 'DescribeInstances', extra)).status);
      }
      byParam.remove();
      statuses.push(
        (await ec2Call(proxy.endpoint, 'DescribeInstances', '&InstanceId.1=i-bad')).status,
      );

      // Assess
      expect(statuses).toEqual([201, 500, 201, 201, 201]);
      expect(second).toMatchObject({ matched: 5, fired: 1 });
      expect(byParam).toMatchObject({ name: 'instance i-bad', matched: 3, fired: 0 });
      expect(proxy.rules.list.map((r) => r.name)).toEqual(['DescribeInstances|DescribeVolumes']);
    });

    it('delays a call before forwarding it', async () => {
      // Prepare
      proxy.rules.add({ action: 'DescribeInstances', decide: firstCalls(1, delay(150)) });
      const started = Date.now();

      // Act
      const answer = await ec2Call(proxy.endpoint, 'DescribeInstances');

      // Assess
      expect(answer.status).toBe(201);
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      expect(proxy.requests()).toMatchObject([{ effect: 'delay', outcome: 'delayed' }]);
      expect(received).toHaveLength(1);
    });

    it('hangs a call until the client gives up and never forwards it', async () => {
      // Prepare
      proxy.rules.add({ action: 'CreateSnapshots', decide: always(hang()) });
      const started = Date.now();

      // Act
      const call = ec2Call(proxy.endpoint, 'CreateSnapshots', '', AbortSignal.timeout(200));

      // Assess
      await expect(call).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(proxy.requests()).toMatchObject([{ effect: 'hang', outcome: 'hang' }]);
      expect(received).toHaveLength(0);
    });

    it('closes a hung call after its time and cuts a reset call at once', async () => {
      // Prepare
      proxy.rules.add({ action: 'CreateSnapshots', decide: firstCalls(1, hang(100)) });
      proxy.rules.add({ action: 'DeleteSnapshot', decide: always(reset()) });

      // Act
      const [hung, cut] = await Promise.allSettled([
        ec2Call(proxy.endpoint, 'CreateSnapshots'),
        ec2Call(proxy.endpoint, 'DeleteSnapshot'),
      ]);

      // Assess
      expect(hung).toMatchObject({ status: 'rejected', reason: { message: 'fetch failed' } });
      expect(cut).toMatchObject({ status: 'rejected', reason: { message: 'fetch failed' } });
      expect(
        proxy
          .requests()
          .map((r) => r.outcome)
          .sort(),
      ).toEqual(['hang', 'reset']);
      expect(proxy.faults()).toBe(2);
      expect(received).toHaveLength(0);
    });

    it('faults a seeded, repeatable share of calls', async () => {
      // Prepare
      proxy.rules.add({ decide: withProbability(0.3, 42, awsError('RequestLimitExceeded', 503)) });
      const replay = withProbability(0.3, 42, awsError('RequestLimitExceeded', 503));
      const expected = Array.from({ length: 20 }, (_, i) =>
        replay({} as never, i + 1) ? 503 : 201,
      );

      // Act
      const statuses: number[] = [];
      for (let i = 0; i < 20; i += 1) {
        statuses.push((await ec2Call(proxy.endpoint, 'DescribeSnapshots')).status);
      }

      // Assess
      expect(statuses).toEqual(expected);
      expect(proxy.faults()).toBe(expected.filter((s) => s === 503).length);
      expect(proxy.faults()).toBeGreaterThan(0);
      expect(proxy.faults()).toBeLessThan(20);
    });
  });

  describe('Function: seededRandom', () => {
    it('repeats a sequence for a seed, differs across seeds and spreads over [0, 1)', () => {
      // Prepare
      const draws = (seed: number) => {
        const random = seededRandom(seed);
        return Array.from({ length: 10_000 }, () => random());
      };

      // Act
      const a = draws(7);
      const b = draws(7);
      const c = draws(8);

      // Assess
      expect(a).toEqual(b);
      expect(a.slice(0, 10)).not.toEqual(c.slice(0, 10));
      expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...a)).toBeLessThan(1);
      const share = a.filter((x) => x < 0.3).length / a.length;
      expect(share).toBeGreaterThan(0.27);
      expect(share).toBeLessThan(0.33);
    });

    it('rejects a probability outside [0, 1]', () => {
      // Act
      const build = () => withProbability(1.5, 1, reset());

      // Assess
      expect(build).toThrow(RangeError);
    });
  });
});
