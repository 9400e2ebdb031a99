/**
 * The roles the IAM simulation evaluates calls against, read from the packaged
 * CloudFormation template (`npm run package` writes it) and from the target-account
 * role template, with CloudFormation's intrinsic functions resolved for one account
 * and region.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, type Tags } from 'yaml';
import { PROJECT_ROOT } from '../../harness/localAws.ts';

export const PACKAGED_TEMPLATE = join(
  PROJECT_ROOT,
  '.serverless',
  'cloudformation-template-update-stack.json',
);
export const TARGET_ROLE_TEMPLATE = join(PROJECT_ROOT, 'deploy', 'target-account-role.yml');

/** The account moto answers as; the simulation's own account. */
export const ACCOUNT = '123456789012';
/** A second account, reached only through the target-account role. */
export const OTHER_ACCOUNT = '210987654321';

export interface PolicyDocument {
  readonly Version?: string;
  readonly Statement: Statement | readonly Statement[];
}

export interface Statement {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Action?: string | readonly string[];
  readonly NotAction?: string | readonly string[];
  readonly Resource?: string | readonly string[];
  readonly Condition?: Record<string, Record<string, string | readonly string[]>>;
}

export interface CfnTemplate {
  readonly Parameters?: Record<string, { Default?: unknown }>;
  readonly Conditions?: Record<string, unknown>;
  readonly Resources: Record<
    string,
    { Type: string; Properties?: Record<string, unknown>; [key: string]: unknown }
  >;
}

/** A role: its name, ARN and resolved identity policies (and trust policy). */
export interface ResolvedRole {
  readonly name: string;
  readonly arn: string;
  readonly account: string;
  readonly policies: readonly { name: string; policy: PolicyDocument }[];
  readonly trust: PolicyDocument;
}

/** The packaged template, parsed. */
export function readPackagedTemplate(path = PACKAGED_TEMPLATE): CfnTemplate {
  return JSON.parse(readFileSync(path, 'utf8')) as CfnTemplate;
}

/** CloudFormation's short-form tags (`!Sub`, `!Ref`, ...), read as their long forms. */
const SHORT_FORMS = [
  ['Sub', 'Fn::Sub'],
  ['Ref', 'Ref'],
  ['If', 'Fn::If'],
  ['Not', 'Fn::Not'],
  ['Equals', 'Fn::Equals'],
  ['GetAtt', 'Fn::GetAtt'],
  ['Join', 'Fn::Join'],
] as const;
const plain = (node: unknown): unknown =>
  node && typeof node === 'object' && 'toJSON' in node
    ? (node as { toJSON: () => unknown }).toJSON()
    : node;
const CFN_TAGS = SHORT_FORMS.flatMap(([short, long]) => [
  {
    tag: `!${short}`,
    resolve: (value: string) =>
      long === 'Fn::GetAtt' ? { [long]: value.split('.') } : { [long]: value },
  },
  { tag: `!${short}`, collection: 'seq', resolve: (seq: unknown) => ({ [long]: plain(seq) }) },
  { tag: `!${short}`, collection: 'map', resolve: (map: unknown) => ({ [long]: plain(map) }) },
]) as unknown as Tags;

/** The target-account role template, parsed (short-form tags included). */
export function readTargetRoleTemplate(path = TARGET_ROLE_TEMPLATE): CfnTemplate {
  return parse(readFileSync(path, 'utf8'), { customTags: CFN_TAGS }) as CfnTemplate;
}

interface Scope {
  readonly account: string;
  readonly region: string;
  readonly parameters?: Readonly<Record<string, string>>;
  readonly template: CfnTemplate;
}

/** The physical name or ARN a resource of the template would get. */
function attribute(scope: Scope, logicalId: string, attr: string): string {
  const resource = scope.template.Resources[logicalId];
  const props = resource?.Properties ?? {};
  const name = (key: string) => String(resolve(scope, props[key] ?? logicalId));
  const { account, region } = scope;
  switch (resource?.Type) {
    case 'AWS::DynamoDB::Table':
      return attr === 'Arn'
        ? `arn:aws:dynamodb:${region}:${account}:table/${name('TableName')}`
        : name('TableName');
    case 'AWS::SQS::Queue':
      if (attr === 'Arn') return `arn:aws:sqs:${region}:${account}:${name('QueueName')}`;
      if (attr === 'QueueName') return name('QueueName');
      return `https://sqs.${region}.amazonaws.com/${account}/${name('QueueName')}`;
    case 'AWS::IAM::Role':
      return attr === 'Arn' ? `arn:aws:iam::${account}:role/${name('RoleName')}` : name('RoleName');
    case 'AWS::SNS::Topic':
      return `arn:aws:sns:${region}:${account}:${name('TopicName')}`;
    case 'AWS::Lambda::Function':
      return `arn:aws:lambda:${region}:${account}:function:${name('FunctionName')}`;
    default:
      return `arn:aws:cloudformation:${region}:${account}:resource/${logicalId}`;
  }
}

function pseudo(scope: Scope, name: string): string | undefined {
  switch (name) {
    case 'AWS::Partition':
      return 'aws';
    case 'AWS::Region':
      return scope.region;
    case 'AWS::AccountId':
      return scope.account;
    case 'AWS::URLSuffix':
      return 'amazonaws.com';
    case 'AWS::NoValue':
      return undefined;
    default:
      return scope.parameters?.[name] ?? stringDefault(scope.template.Parameters?.[name]?.Default);
  }
}

const stringDefault = (value: unknown): string | undefined =>
  value === undefined ? undefined : String(value);

const NO_VALUE = Symbol('AWS::NoValue');

function condition(scope: Scope, name: string): boolean {
  return Boolean(resolve(scope, scope.template.Conditions?.[name]));
}

/** Resolves Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::If, Fn::Not and Fn::Equals. */
export function resolve(scope: Scope, value: unknown): unknown {
  if (Array.isArray(value))
    return value.map((v) => resolve(scope, v)).filter((v) => v !== NO_VALUE);
  if (!value || typeof value !== 'object') return value;
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  if (keys.length === 1) {
    const [key] = keys as [string];
    const arg = object[key];
    switch (key) {
      case 'Ref': {
        const name = String(arg);
        if (name === 'AWS::NoValue') return NO_VALUE;
        if (scope.template.Resources[name]) return attribute(scope, name, 'Ref');
        return pseudo(scope, name);
      }
      case 'Fn::GetAtt': {
        const [logicalId, attr] = (Array.isArray(arg) ? arg : String(arg).split('.')) as string[];
        return attribute(scope, String(logicalId), String(attr));
      }
      case 'Fn::Sub': {
        const [body, vars] = (Array.isArray(arg) ? arg : [arg, {}]) as [
          string,
          Record<string, unknown>,
        ];
        return body.replace(/\$\{([^}!]+)\}/g, (_, name: string) => {
          if (vars[name] !== undefined) return String(resolve(scope, vars[name]));
          if (name.includes('.')) {
            const [logicalId, attr] = name.split('.') as [string, string];
            return attribute(scope, logicalId, attr);
          }
          if (scope.template.Resources[name]) return attribute(scope, name, 'Ref');
          return pseudo(scope, name) ?? '';
        });
      }
      case 'Fn::Join': {
        const [separator, parts] = arg as [string, unknown[]];
        return (resolve(scope, parts) as unknown[]).join(separator);
      }
      case 'Fn::If': {
        const [name, yes, no] = arg as [string, unknown, unknown];
        return resolve(scope, condition(scope, name) ? yes : no);
      }
      case 'Fn::Not':
        return !resolve(scope, (arg as unknown[])[0]);
      case 'Fn::Equals': {
        const [a, b] = resolve(scope, arg) as [unknown, unknown];
        return JSON.stringify(a) === JSON.stringify(b);
      }
      case 'Condition':
        return condition(scope, String(arg));
      default:
        break;
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(object)) {
    const resolved = resolve(scope, v);
    if (resolved !== NO_VALUE) out[key] = resolved;
  }
  return out;
}

function roleOf(scope: Scope, logicalId: string): ResolvedRole {
  const resource = scope.template.Resources[logicalId];
  if (resource?.Type !== 'AWS::IAM::Role') throw new Error(`the template has no role ${logicalId}`);
  const props = resolve(scope, resource.Properties ?? {}) as {
    RoleName?: string;
    AssumeRolePolicyDocument: PolicyDocument;
    Policies?: { PolicyName: string; PolicyDocument: PolicyDocument }[];
  };
  const name = props.RoleName ?? logicalId;
  return {
    name,
    arn: `arn:aws:iam::${scope.account}:role/${name}`,
    account: scope.account,
    trust: props.AssumeRolePolicyDocument,
    policies: (props.Policies ?? []).map((p) => ({ name: p.PolicyName, policy: p.PolicyDocument })),
  };
}

/**
 * Each function's role in the packaged template, by function name (backup, retention,
 * ...), resolved for a stack in `region` of `account`.
 *
 * @example
 * const roles = functionRoles(readPackagedTemplate(), { account: ACCOUNT, region: 'eu-west-1' });
 */
export function functionRoles(
  template: CfnTemplate,
  where: { account: string; region: string },
): Map<string, ResolvedRole> {
  const scope: Scope = { ...where, template };
  const roles = new Map<string, ResolvedRole>();
  for (const resource of Object.values(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const props = resource.Properties ?? {};
    const role = props.Role as { 'Fn::GetAtt'?: [string, string] } | undefined;
    const roleId = role?.['Fn::GetAtt']?.[0];
    const fnName = String(resolve(scope, props.FunctionName ?? ''));
    const short = fnName.split('-').at(-1);
    if (roleId && short) roles.set(short, roleOf(scope, roleId));
  }
  return roles;
}

/** Every IAM role of the template (function roles and others), by logical id. */
export function templateRoles(
  template: CfnTemplate,
  where: { account: string; region: string },
): Map<string, ResolvedRole> {
  const scope: Scope = { ...where, template };
  return new Map(
    Object.entries(template.Resources)
      .filter(([, resource]) => resource.Type === 'AWS::IAM::Role')
      .map(([logicalId]) => [logicalId, roleOf(scope, logicalId)]),
  );
}

/** The stage the packaged template was packaged for (its functions' DEPLOYMENT). */
export function packagedStage(template: CfnTemplate): string {
  for (const resource of Object.values(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const env = (resource.Properties?.Environment as { Variables?: Record<string, unknown> })
      ?.Variables;
    if (typeof env?.DEPLOYMENT === 'string') return env.DEPLOYMENT;
  }
  throw new Error('the packaged template has no function with a DEPLOYMENT variable');
}

/** The target-account role as deployed in `account` for a stage in `deploymentRegion`. */
export function targetRole(
  template: CfnTemplate,
  where: { account: string; deploymentAccount: string; stage: string; deploymentRegion: string },
): ResolvedRole {
  return roleOf(
    {
      account: where.account,
      region: where.deploymentRegion,
      template,
      parameters: {
        SnapkeeperAccountId: where.deploymentAccount,
        Stage: where.stage,
        DeploymentRegion: where.deploymentRegion,
      },
    },
    'TargetRole',
  );
}
