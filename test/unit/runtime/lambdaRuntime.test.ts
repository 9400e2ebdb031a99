import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLambdaRuntime } from '../../../lib/runtime/lambdaRuntime.ts';

const ENV = {
  AWS_REGION: 'us-east-1',
  DEPLOYMENT: 'unit',
  POWERTOOLS_LOG_LEVEL: 'INFO',
  POWERTOOLS_METRICS_DISABLED: 'true',
  POWERTOOLS_TRACE_ENABLED: 'false',
  HISTORY_TABLE: 'unit-runs',
};

describe('Function: createLambdaRuntime', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  it('fails at cold start naming a missing variable', () => {
    expect(() => createLambdaRuntime('backup', { ...ENV, DEPLOYMENT: undefined })).toThrow(
      'Environment variable DEPLOYMENT is required',
    );
  });

  it('puts the run id, the function and the deployment on every log line after the id is made', () => {
    // Prepare
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'INFO');
    vi.stubEnv('POWERTOOLS_DEV', 'false');
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const runtime = createLambdaRuntime('backup', ENV);

    // Act
    const runId = runtime.newRunId();
    runtime.logger.info('something happened');

    // Assess
    const line = JSON.parse(lines.find((l) => l.includes('something happened')) ?? '{}') as Record<
      string,
      unknown
    >;
    expect(runId).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{8}$/);
    expect(line).toMatchObject({ runId, function: 'backup', deployment: 'unit' });
  });
});
