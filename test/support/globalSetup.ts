import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startLocalAws } from '../../scripts/localAws.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
  }
}

/** Starts one local AWS (moto) for the integration project and stops it afterwards. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const aws = await startLocalAws();
  project.provide('awsEndpoint', aws.endpoint);
  return () => aws.stop();
}
