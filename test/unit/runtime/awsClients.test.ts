import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { assumeTargetRole, targetRoleArn } from '../../../lib/aws/targetRoles.ts';
import { loadConfig, type SnapkeeperConfig } from '../../../lib/config/environment.ts';
import { ConfigurationError } from '../../../lib/domain/errors.ts';
import type { Target } from '../../../lib/domain/fanOut.ts';
import { type AwsClients, createAwsClients } from '../../../lib/runtime/awsClients.ts';
import { destinationGateways, imageGateway } from '../../../lib/runtime/gateways.ts';
import { createLambdaRuntime } from '../../../lib/runtime/lambdaRuntime.ts';

const OTHER_ACCOUNT = '210987654321';
const SELF_IRELAND: Target = { account: 'self', region: 'eu-west-1' };
const OTHER_IRELAND: Target = { account: OTHER_ACCOUNT, region: 'eu-west-1' };

function configWith(env: Record<string, string> = {}): SnapkeeperConfig {
  return loadConfig({ AWS_REGION: 'eu-west-1', DEPLOYMENT: 'prod', ...env });
}

/** The clients of a function that reaches other accounts (the fan-out functions'). */
function targetClients(config: SnapkeeperConfig, wrap?: <C>(client: C) => C): AwsClients {
  return createAwsClients(config, {
    reachAccount: assumeTargetRole(config),
    ...(wrap ? { wrap } : {}),
  });
}

describe('The AWS clients of the composition root (createAwsClients, targetRoleArn)', () => {
  describe('Function: targetRoleArn', () => {
    it("reaches the deployment's own account with the function's credentials", () => {
      // Prepare
      const { targetRoleName } = configWith();

      // Act
      const arn = targetRoleArn(SELF_IRELAND, targetRoleName);

      // Assess
      expect(arn).toBeUndefined();
    });

    it('reaches another account through the default target role', () => {
      // Prepare
      const { targetRoleName } = configWith();

      // Act
      const arn = targetRoleArn(OTHER_IRELAND, targetRoleName);

      // Assess
      expect(arn).toBe(`arn:aws:iam::${OTHER_ACCOUNT}:role/snapkeeper-target`);
    });

    it('reaches another account through the role TARGET_ROLE_NAME names', () => {
      // Prepare
      const { targetRoleName } = configWith({ TARGET_ROLE_NAME: 'backup-operator' });

      // Act
      const arn = targetRoleArn(OTHER_IRELAND, targetRoleName);

      // Assess
      expect(arn).toBe(`arn:aws:iam::${OTHER_ACCOUNT}:role/backup-operator`);
    });

    it.each([
      ['us-east-1', 'aws'],
      ['eu-west-1', 'aws'],
      ['ap-southeast-2', 'aws'],
      ['cn-north-1', 'aws-cn'],
      ['cn-northwest-1', 'aws-cn'],
      ['us-gov-west-1', 'aws-us-gov'],
      ['us-gov-east-1', 'aws-us-gov'],
    ])('names the role of a target in %s in the %s partition', (region, partition) => {
      // Prepare
      const { targetRoleName } = configWith();

      // Act
      const arn = targetRoleArn({ account: OTHER_ACCOUNT, region }, targetRoleName);

      // Assess
      expect(arn).toBe(`arn:${partition}:iam::${OTHER_ACCOUNT}:role/snapkeeper-target`);
    });

    it('never names a role for the own account, whatever the partition', () => {
      // Prepare
      const { targetRoleName } = configWith();

      // Act
      const arns = ['cn-north-1', 'us-gov-west-1'].map((region) =>
        targetRoleArn({ account: 'self', region }, targetRoleName),
      );

      // Assess
      expect(arns).toEqual([undefined, undefined]);
    });
  });

  describe('Function: createAwsClients, ec2', () => {
    it('builds one gateway per target and hands it out again for the same target', () => {
      // Prepare
      const wrapped: EC2Client[] = [];
      const gateways = targetClients(configWith(), (client) => {
        wrapped.push(client as unknown as EC2Client);
        return client;
      });

      // Act
      const first = gateways.ec2(SELF_IRELAND);
      const again = gateways.ec2({ account: 'self', region: 'eu-west-1' });

      // Assess
      expect(again).toBe(first);
      expect(wrapped).toHaveLength(1);
    });

    it('builds a gateway of its own for each other region or account', () => {
      // Prepare
      const gateways = targetClients(configWith());

      // Act
      const built = [
        gateways.ec2(SELF_IRELAND),
        gateways.ec2({ account: 'self', region: 'us-east-1' }),
        gateways.ec2(OTHER_IRELAND),
        gateways.ec2({ account: OTHER_ACCOUNT, region: 'us-east-1' }),
      ];

      // Assess
      expect(new Set(built).size).toBe(4);
      expect(gateways.ec2(OTHER_IRELAND)).toBe(built[2]);
    });

    it("points each target's client at the target's region", async () => {
      // Prepare
      const wrapped: EC2Client[] = [];
      const gateways = targetClients(configWith(), (client) => {
        wrapped.push(client as unknown as EC2Client);
        return client;
      });

      // Act
      gateways.ec2({ account: 'self', region: 'ap-southeast-2' });
      gateways.ec2({ account: OTHER_ACCOUNT, region: 'us-gov-west-1' });

      // Assess
      const regions = await Promise.all(wrapped.map((client) => client.config.region()));
      expect(regions).toEqual(['ap-southeast-2', 'us-gov-west-1']);
    });
  });

  describe('given calls through a gateway (against a local endpoint)', () => {
    /** A stand-in for STS and EC2 on localhost: answers AssumeRole and DescribeVolumes. */
    let server: Server;
    let endpoint: string;
    const requests: { action: string; body: URLSearchParams; authorization: string }[] = [];

    const readBody = async (request: IncomingMessage): Promise<string> => {
      let body = '';
      for await (const chunk of request) body += String(chunk);
      return body;
    };

    beforeEach(async () => {
      requests.length = 0;
      vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDFUNCTION');
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'function-secret');
      vi.stubEnv('AWS_SESSION_TOKEN', '');
      vi.stubEnv('AWS_PROFILE', '');
      server = createServer((request, response) => {
        void readBody(request).then((text) => {
          const body = new URLSearchParams(text);
          const action = body.get('Action') ?? '';
          requests.push({ action, body, authorization: request.headers.authorization ?? '' });
          response.setHeader('content-type', 'text/xml');
          if (action === 'AssumeRole') {
            response.end(
              '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>' +
                '<Credentials><AccessKeyId>ASIAASSUMED</AccessKeyId><SecretAccessKey>assumed-secret</SecretAccessKey>' +
                '<SessionToken>assumed-token</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>' +
                `<AssumedRoleUser><Arn>arn:aws:sts::${OTHER_ACCOUNT}:assumed-role/snapkeeper-target/s</Arn>` +
                '<AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult>' +
                '<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></AssumeRoleResponse>',
            );
            return;
          }
          response.end(
            '<DescribeVolumesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">' +
              '<requestId>r-2</requestId><volumeSet/></DescribeVolumesResponse>',
          );
        });
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    afterEach(async () => {
      vi.unstubAllEnvs();
      server.close();
      await once(server, 'close');
    });

    function localConfig(env: Record<string, string> = {}): SnapkeeperConfig {
      return configWith({ AWS_ENDPOINT_URL: endpoint, AWS_MAX_ATTEMPTS: '1', ...env });
    }

    it("calls the own account's EC2 with the function's credentials, assuming no role", async () => {
      // Prepare
      const gateways = targetClients(localConfig());

      // Act
      await gateways.ec2({ account: 'self', region: 'us-east-1' }).volumeTagsWithKey('k');

      // Assess
      expect(requests.map((r) => r.action)).toEqual(['DescribeVolumes']);
      expect(requests[0]?.authorization).toContain('Credential=AKIDFUNCTION/');
      expect(requests[0]?.authorization).toContain('/us-east-1/ec2/aws4_request');
    });

    it("assumes the target role, with the external id, and calls the target's EC2 as that role", async () => {
      // Prepare
      const gateways = targetClients(
        localConfig({ TARGET_ROLE_NAME: 'backup-operator', TARGET_EXTERNAL_ID: 'ext-42' }),
      );

      // Act
      await gateways.ec2({ account: OTHER_ACCOUNT, region: 'us-east-1' }).volumeTagsWithKey('k');

      // Assess
      expect(requests.map((r) => r.action)).toEqual(['AssumeRole', 'DescribeVolumes']);
      const assume = requests[0]?.body;
      expect(assume?.get('RoleArn')).toBe(`arn:aws:iam::${OTHER_ACCOUNT}:role/backup-operator`);
      expect(assume?.get('ExternalId')).toBe('ext-42');
      expect(assume?.get('RoleSessionName')).toBe('snapkeeper-prod');
      expect(assume?.get('DurationSeconds')).toBe('3600');
      expect(requests[0]?.authorization).toContain('Credential=AKIDFUNCTION/');
      expect(requests[1]?.authorization).toContain('Credential=ASIAASSUMED/');
      expect(requests[1]?.authorization).toContain('/us-east-1/ec2/aws4_request');
    });

    it('sends no external id when none is configured', async () => {
      // Prepare
      const gateways = targetClients(localConfig());

      // Act
      await gateways.ec2(OTHER_IRELAND).volumeTagsWithKey('k');

      // Assess
      expect(requests[0]?.action).toBe('AssumeRole');
      expect(requests[0]?.body.has('ExternalId')).toBe(false);
    });

    it('assumes the role once for the calls of a reused gateway', async () => {
      // Prepare
      const gateways = targetClients(localConfig());

      // Act
      await gateways.ec2(OTHER_IRELAND).volumeTagsWithKey('k');
      await gateways.ec2(OTHER_IRELAND).volumeTagsWithKey('k');

      // Assess
      expect(requests.map((r) => r.action)).toEqual([
        'AssumeRole',
        'DescribeVolumes',
        'DescribeVolumes',
      ]);
    });
  });
});

describe('The one client cache of the runtime (key: account + region)', () => {
  const ENV = {
    AWS_REGION: 'eu-west-1',
    DEPLOYMENT: 'unit',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_TRACE_ENABLED: 'false',
    HISTORY_TABLE: 'unit-runs',
  };
  const rateLimited = (client: EC2Client) =>
    client.middlewareStack.identify().some((entry) => entry.startsWith('snapkeeperRateLimit'));

  it("gives the runtime's gateway, its other regions and a copy's destinations one client per region", () => {
    // Prepare
    const runtime = createLambdaRuntime('copy', ENV);
    const destination = destinationGateways(runtime);

    // Act
    const home = runtime.clients.ec2Client({ account: 'self', region: 'eu-west-1' });
    const away = runtime.clients.ec2Client({ account: 'self', region: 'us-east-1' });

    // Assess
    expect(runtime.ec2.client).toBe(home);
    expect(runtime.ec2In('eu-west-1')).toBe(runtime.ec2);
    expect(runtime.ec2In('us-east-1').client).toBe(away);
    expect(destination('us-east-1').ec2).toBe(runtime.ec2In('us-east-1'));
    expect(destination('us-east-1').images).toBe(imageGateway(runtime, 'us-east-1'));
    expect(away).not.toBe(home);
  });

  it('shares one rate-limited client, and so one limiter, among the gateways of a target', () => {
    // Prepare
    const built: EC2Client[] = [];
    const clients = createAwsClients(configWith(), {
      wrap: (client) => {
        built.push(client as unknown as EC2Client);
        return client;
      },
    });
    const target: Target = { account: 'self', region: 'us-east-1' };

    // Act
    const ec2 = clients.ec2(target);
    const images = clients.gateway(target, 'images', (client) => ({ client }));
    const again = clients.ec2Client(target);

    // Assess
    expect(built).toHaveLength(1);
    expect(ec2.client).toBe(again);
    expect(images.client).toBe(again);
    expect(rateLimited(again)).toBe(true);
  });

  it('gives a rate share of its own (a retention batch at the whole rate) a client of its own', () => {
    // Prepare
    const clients = createAwsClients(configWith({ EC2_RATE_SHARE: '0.25' }));
    const target: Target = { account: 'self', region: 'us-east-1' };

    // Act
    const shared = clients.ec2(target);
    const whole = clients.ec2(target, 1);

    // Assess
    expect(clients.ec2(target, 0.25)).toBe(shared);
    expect(whole).not.toBe(shared);
    expect(clients.ec2(target, 1)).toBe(whole);
  });

  it('refuses another account in a function that reaches none, rather than calling its own', () => {
    // Prepare
    const runtime = createLambdaRuntime('backup', ENV);

    // Act
    const reach = () => runtime.clients.ec2(OTHER_IRELAND);

    // Assess
    expect(reach).toThrow(ConfigurationError);
    expect(reach).toThrow('TARGET_ACCOUNTS');
  });

  it('reaches another account through the assumed role in a fan-out function', () => {
    // Prepare
    const runtime = createLambdaRuntime('worker', ENV, { reachAccount: assumeTargetRole });

    // Act
    const other = runtime.clients.ec2Client(OTHER_IRELAND);

    // Assess
    expect(other).not.toBe(runtime.ec2.client);
    expect(runtime.clients.ec2Client(OTHER_IRELAND)).toBe(other);
    expect(rateLimited(other)).toBe(true);
  });

  it('builds any other client once per container', () => {
    // Prepare
    const clients = createAwsClients(configWith());
    const build = vi.fn(() => ({ built: true }));

    // Act
    const first = clients.once('autoscaling', build);
    const second = clients.once('autoscaling', build);

    // Assess
    expect(second).toBe(first);
    expect(build).toHaveBeenCalledTimes(1);
  });
});
