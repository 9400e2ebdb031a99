import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ListRulesCommand, RbinClient } from '@aws-sdk/client-rbin';
import { afterEach, describe, expect, it, vi } from 'vitest';

/**
 * `@aws-sdk/client-rbin` 3.523.0 (the newest the registry serves) is given the credential
 * provider every other client uses through package.json `overrides`, which keeps its old
 * credential chain out of the bundles (docs/benchmarks.md). This proves the real client
 * still resolves the function's credentials from the environment, as in Lambda, and signs.
 */
describe('Recycle Bin client: credentials under the package.json override', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('signs a ListRules with the environment credentials, as a Lambda function has them', async () => {
    // Prepare: a local endpoint answering as the Recycle Bin API reference documents.
    let headers: IncomingHttpHeaders = {};
    const server = createServer((request, response) => {
      headers = request.headers;
      request.resume();
      request.on('end', () => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({
            Rules: [
              {
                Identifier: 'rule-1',
                RetentionPeriod: { RetentionPeriodValue: 7, RetentionPeriodUnit: 'DAYS' },
              },
            ],
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAIOSFODNN7EXAMPLE');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
    vi.stubEnv('AWS_SESSION_TOKEN', 'session-token');
    const client = new RbinClient({
      region: 'eu-west-1',
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    });

    // Act
    try {
      const answer = await client.send(new ListRulesCommand({ ResourceType: 'EBS_SNAPSHOT' }));

      // Assess
      expect(answer.Rules?.map((r) => r.Identifier)).toEqual(['rule-1']);
      expect(headers.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE\/\d{8}\/eu-west-1\/rbin\/aws4_request/,
      );
      expect(headers['x-amz-security-token']).toBe('session-token');
    } finally {
      client.destroy();
      server.close();
    }
  });
});
