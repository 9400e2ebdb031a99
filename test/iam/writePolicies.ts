/**
 * Writes every role policy of the packaged template and of the target-account role,
 * resolved for one account and region, as plain IAM JSON (one file per policy), for the
 * packaging lint step (parliament, scripts/package.sh).
 * Usage: tsx test/iam/writePolicies.ts <directory> [template]
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ACCOUNT,
  functionRoles,
  OTHER_ACCOUNT,
  PACKAGED_TEMPLATE,
  packagedStage,
  readPackagedTemplate,
  readTargetRoleTemplate,
  targetRole,
} from './policies.ts';

const [directory, templatePath = PACKAGED_TEMPLATE] = process.argv.slice(2);
if (!directory) throw new Error('usage: tsx test/iam/writePolicies.ts <directory> [template]');
const template = readPackagedTemplate(templatePath);
const region = 'us-east-1';
rmSync(directory, { recursive: true, force: true });
mkdirSync(directory, { recursive: true });
const roles = [
  ...functionRoles(template, { account: ACCOUNT, region }),
  [
    'target',
    targetRole(readTargetRoleTemplate(), {
      account: OTHER_ACCOUNT,
      deploymentAccount: ACCOUNT,
      stage: packagedStage(template),
      deploymentRegion: region,
    }),
  ] as const,
];
for (const [name, role] of roles)
  for (const policy of role.policies)
    writeFileSync(join(directory, `${name}.json`), `${JSON.stringify(policy.policy, null, 2)}\n`);
console.log(`wrote ${roles.length} role policies to ${directory}`);
