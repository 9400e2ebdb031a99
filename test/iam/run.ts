/**
 * `npm test` runs this after vitest: the IAM simulation over every AWS call the
 * integration tests and the demo recorded (reports/iam-calls), against the packaged
 * template. Prints the summary line and every unexpected verdict; exits 1 on any.
 * Usage: tsx test/iam/run.ts [recordings directory]
 */
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../harness/localAws.ts';
import { readPackagedTemplate, readTargetRoleTemplate } from './policies.ts';
import { readRecordings, simulate } from './simulation.ts';

const directory = process.argv[2] ?? join(PROJECT_ROOT, 'reports', 'iam-calls');
const recordings = readRecordings(directory);
const calls = recordings.reduce((n, file) => n + file.length, 0);
const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), recordings);

for (const v of report.verdicts.filter((verdict) => verdict.unexpected))
  console.log(
    `UNEXPECTED ${v.result} (expected ${v.expected}): role ${v.role}: ${v.request.action} on ${v.request.resource} ${JSON.stringify(v.request.context)} — ${v.why}`,
  );
for (const k of report.unsupportedKeys)
  console.log(
    `UNSUPPORTED CONDITION KEY: ${k.policy} ${k.sid}: ${k.action} does not support ${k.key}${k.resourceTypes.length > 0 ? ` on ${k.resourceTypes.join(', ')}` : ''}`,
  );
for (const s of new Set(report.skipped)) console.log(`not simulated: ${s}`);
console.log(`iam: ${calls} recorded calls from ${recordings.length} processes in ${directory}`);
console.log(`iam: ${report.unsupportedKeys.length} condition keys an action does not support`);
console.log(report.summary);
const failed =
  calls === 0 ||
  report.unsupportedKeys.length > 0 ||
  report.verdicts.some((verdict) => verdict.unexpected);
if (calls === 0) console.log('iam: no recorded calls (run the integration tests first)');
process.exit(failed ? 1 : 0);
