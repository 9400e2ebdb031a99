/**
 * The IAM requests AWS makes for Systems Manager Run Command calls (issue 21, part 1),
 * and the calls that must be refused. SendCommand is authorized on the document and on
 * each instance, separately; the instance request carries the instance's tags as
 * `ssm:resourceTag/<key>` (and `aws:ResourceTag/<key>`). GetCommandInvocation takes no
 * resource-level permission.
 */
import type { RecordedCall } from '../../lib/aws/callRecorder.ts';
import type { IamRequest } from './requests.ts';

type Tags = Record<string, string>;

/** A shipped-document name in a recording, as the packaged stage names it. */
export function packagedDocument(name: string, stage: string): string {
  return /^snapkeeper-fsfreeze(-.*)?$/.test(name) ? `snapkeeper-fsfreeze-${stage}` : name;
}

/** The condition context of an instance's tags. */
export function instanceTagContext(tags: Tags): Record<string, string> {
  return Object.fromEntries(
    Object.entries(tags).flatMap(([k, v]) => [
      [`ssm:resourceTag/${k}`, v],
      [`aws:ResourceTag/${k}`, v],
    ]),
  );
}

/**
 * The requests of one recorded SSM call.
 *
 * @example
 * const requests = ssmRequestsOf(call, { stage: 'ci', account: '123456789012' }, (id) => tags);
 */
export function ssmRequestsOf(
  call: RecordedCall,
  names: { readonly stage: string; readonly account: string },
  tagsOf: (id: string) => Tags,
): IamRequest[] {
  const input = (call.input ?? {}) as { DocumentName?: unknown; InstanceIds?: unknown };
  const request = (action: string, resource: string, context = {}): IamRequest => ({
    action,
    resource,
    resourceAccount: names.account,
    context,
  });
  if (call.action !== 'SendCommand') return [request(`ssm:${call.action}`, '*')];
  const document = packagedDocument(String(input.DocumentName ?? ''), names.stage);
  const ids = Array.isArray(input.InstanceIds) ? input.InstanceIds.map(String) : [];
  // An AWS-owned document (AWSEC2-CreateVssSnapshot, AWS-…) has no account in its ARN.
  const owner = /^(AWS|AWSEC2|Amazon)-/.test(document) ? '' : names.account;
  return [
    request('ssm:SendCommand', `arn:aws:ssm:${call.region}:${owner}:document/${document}`),
    ...ids.map((id) =>
      request(
        'ssm:SendCommand',
        `arn:aws:ec2:${call.region}:${names.account}:instance/${id}`,
        instanceTagContext(tagsOf(id)),
      ),
    ),
  ];
}

/**
 * Run Commands every role must be refused: another document (AWS-RunShellScript would
 * run anything as root), and an instance without the opt-in tag.
 *
 * @example
 * cases.push(...ssmNegatives('ci', 'snapkeeper:', 'us-east-1', '123456789012'));
 */
export function ssmNegatives(
  stage: string,
  prefix: string,
  region: string,
  account: string,
): { roles: readonly string[] | 'all'; request: IamRequest; why: string }[] {
  const request = (resource: string, context = {}): IamRequest => ({
    action: 'ssm:SendCommand',
    resource,
    resourceAccount: account,
    context,
  });
  const document = (name: string) => `arn:aws:ssm:${region}:${account}:document/${name}`;
  const instance = `arn:aws:ec2:${region}:${account}:instance/i-0aaaaaaaaaaaaaaaa`;
  return [
    {
      roles: 'all',
      request: request(document('AWS-RunShellScript')),
      why: 'SendCommand of AWS-RunShellScript (anything as root)',
    },
    {
      roles: 'all',
      request: request(`arn:aws:ssm:${region}::document/AWS-RunPowerShellScript`),
      why: 'SendCommand of AWS-RunPowerShellScript (anything as SYSTEM)',
    },
    {
      roles: 'all',
      request: request(document(`snapkeeper-fsfreeze-${stage}-other`)),
      why: "SendCommand of another stage's document",
    },
    {
      roles: 'all',
      request: request(instance, instanceTagContext({ Name: 'web', [`${prefix}skip`]: 'true' })),
      why: `SendCommand to an instance without ${prefix}consistency`,
    },
    {
      roles: 'all',
      request: request(instance, {}),
      why: 'SendCommand to an untagged instance',
    },
  ];
}
