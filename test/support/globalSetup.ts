import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { PROJECT_ROOT, startLocalAws } from '../../harness/localAws.ts';
import { RECORD_CALLS_VARIABLE } from '../../lib/aws/callRecorder.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
  }
}

/** Where the integration tests and the demo record every AWS call a function makes. */
export const RECORDED_CALLS_DIRECTORY = join(PROJECT_ROOT, 'reports', 'iam-calls');

/**
 * Starts one local AWS (moto) for the integration project and stops it afterwards, and
 * turns on the recording of every AWS call a function makes (the IAM simulation that
 * `npm test` runs after vitest evaluates them: test/iam). `SNAPKEEPER_RECORD_CALLS=off`
 * turns it off.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env[RECORD_CALLS_VARIABLE] !== 'off') {
    process.env[RECORD_CALLS_VARIABLE] ??= RECORDED_CALLS_DIRECTORY;
    rmSync(process.env[RECORD_CALLS_VARIABLE], { recursive: true, force: true });
  } else {
    delete process.env[RECORD_CALLS_VARIABLE];
  }
  const aws = await startLocalAws();
  project.provide('awsEndpoint', aws.endpoint);
  return () => aws.stop();
}
