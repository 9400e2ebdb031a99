/**
 * The schedules of serverless.yml, as the local demo, tools and tests read them.
 * Part of the local AWS harness: imports only lib/ and harness/.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { PROJECT_ROOT } from './localAws.ts';

/**
 * The schedules defined in serverless.yml (`custom.schedules`): the one place an
 * operator edits them. The local demo and tests read them from there too, so local
 * runs use exactly what a deployment would.
 *
 * @example
 * process.env.SCHEDULES = JSON.stringify(deploymentSchedules());
 */
export function deploymentSchedules(file = join(PROJECT_ROOT, 'serverless.yml')): unknown[] {
  const document = parse(readFileSync(file, 'utf8'), { logLevel: 'silent' }) as {
    custom?: { schedules?: unknown };
  };
  const schedules = document.custom?.schedules;
  if (!Array.isArray(schedules)) throw new Error(`${file} has no custom.schedules list`);
  return schedules;
}
