/**
 * IAM of application-consistent sets (issue 21, part 1), proven over the PACKAGED roles
 * with AWS's evaluation logic: SendCommand only for the stage's fsfreeze document (and
 * the operator's listed ones), only on instances carrying snapkeeper:consistency; every
 * other document and an untagged instance refused.
 */
import { describe, expect, it } from 'vitest';
import type { CallerContext, RecordedCall } from '../../lib/aws/callRecorder.ts';
import {
  type CfnTemplate,
  readPackagedTemplate,
  readTargetRoleTemplate,
  type Statement,
} from '../iam/policies.ts';
import { simulate } from '../iam/simulation.ts';

const REGION = 'eu-west-1';
const caller = (functionName: string): CallerContext => ({
  functionName,
  region: REGION,
  deployment: 'itest',
  tagPrefix: 'snapkeeper:',
  localTagAfterCreate: false,
});
const sendCommand = (fn: string, document: string, tags: Record<string, string>): RecordedCall => ({
  caller: caller(fn),
  service: 'ssm',
  action: 'SendCommand',
  region: REGION,
  input: { DocumentName: document, InstanceIds: ['i-0db'] },
  resourceTags: { 'i-0db': tags },
});
const getInvocation = (fn: string): RecordedCall => ({
  caller: caller(fn),
  service: 'ssm',
  action: 'GetCommandInvocation',
  region: REGION,
  input: { CommandId: 'c-1', InstanceId: 'i-0db' },
});

const recording = (): RecordedCall[] =>
  ['backup', 'worker'].flatMap((fn) => [
    sendCommand(fn, 'snapkeeper-fsfreeze', {
      'snapkeeper:backup': 'true',
      'snapkeeper:consistency': 'fsfreeze',
    }),
    getInvocation(fn),
  ]);

function statementsOf(template: CfnTemplate, role: string): Statement[] {
  const policies = template.Resources[role]?.Properties?.Policies as
    | { PolicyDocument: { Statement: Statement[] } }[]
    | undefined;
  return policies?.[0]?.PolicyDocument.Statement ?? [];
}

describe('IAM of consistency pre/post scripts over the packaged roles', () => {
  it('allows backup and worker to send the fsfreeze document to a consistency-tagged instance and read it', async () => {
    const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), [recording()]);
    const ssm = report.verdicts.filter((v) => v.request.action.startsWith('ssm:'));
    expect(ssm.filter((v) => v.unexpected)).toEqual([]);
    expect(ssm.filter((v) => v.expected === 'allowed')).toHaveLength(6);
    expect(report.unsupportedKeys).toEqual([]);
  });

  it('refuses, for every role, another document and an instance without the opt-in tag', async () => {
    const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), [recording()]);
    const refused = report.verdicts.filter(
      (v) => v.expected === 'denied' && v.request.action === 'ssm:SendCommand',
    );
    expect(refused.filter((v) => v.unexpected)).toEqual([]);
    const why = new Set(refused.map((v) => v.why));
    expect([...why]).toEqual(
      expect.arrayContaining([
        'SendCommand of AWS-RunShellScript (anything as root)',
        "SendCommand of another stage's document",
        'SendCommand to an instance without snapkeeper:consistency',
        'SendCommand to an untagged instance',
      ]),
    );
    // Every role of the template, and the target-account role.
    expect(new Set(refused.map((v) => v.role)).size).toBeGreaterThanOrEqual(8);
  });

  it('allows backup and worker to send AWS’s AWSEC2-CreateVssSnapshot (account-less ARN) to a consistency-tagged instance only', async () => {
    const vssDocument = `arn:aws:ssm:${REGION}::document/AWSEC2-CreateVssSnapshot`;
    const vss = ['backup', 'worker'].map((fn) =>
      sendCommand(fn, 'AWSEC2-CreateVssSnapshot', { 'snapkeeper:consistency': 'vss' }),
    );
    const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), [vss]);
    const sends = report.verdicts.filter(
      (v) => v.request.action === 'ssm:SendCommand' && v.expected === 'allowed',
    );
    // The instance side is simulated with AWS's evaluation logic.
    const onInstances = sends.filter((v) => v.request.resource !== vssDocument);
    expect(onInstances).toHaveLength(2);
    expect(onInstances.filter((v) => v.unexpected)).toEqual([]);
    const untagged = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), [
      [sendCommand('backup', 'AWSEC2-CreateVssSnapshot', { 'snapkeeper:backup': 'true' })],
    ]);
    expect(
      untagged.verdicts
        .filter((v) => v.unexpected && v.request.resource !== vssDocument)
        .map((v) => v.why),
    ).toEqual(['backup ssm:SendCommand']);
    // The document side: the simulator types a resource by the Service Authorization
    // Reference's pattern, whose ${Account} must not be empty, so it cannot evaluate an
    // AWS-owned document's ARN (no account); the packaged statements are read instead:
    // exactly that ARN, no wildcard, in backup's and worker's document statement only.
    expect(sends.filter((v) => v.request.resource === vssDocument).map((v) => v.result)).toEqual([
      'error: {"message":"no.resource.types"}',
      'error: {"message":"no.resource.types"}',
    ]);
    const template = readPackagedTemplate();
    const vssArn = {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation's Fn::Sub syntax
      'Fn::Sub': 'arn:${AWS::Partition}:ssm:${AWS::Region}::document/AWSEC2-CreateVssSnapshot',
    };
    for (const role of ['BackupRole', 'WorkerRole']) {
      const documents = statementsOf(template, role).find(
        (s) => s.Sid === 'SendOnlyTheConsistencyDocuments',
      ) as Statement & { Resource: unknown[] };
      expect(documents.Resource).toContainEqual(vssArn);
      const accountless = documents.Resource.filter((r) =>
        JSON.stringify(r).includes('}::document/'),
      );
      expect(accountless).toEqual([vssArn]);
    }
    const refused = report.verdicts.filter(
      (v) => v.expected === 'denied' && v.request.action === 'ssm:SendCommand',
    );
    expect(refused.map((v) => v.why)).toContain(
      'SendCommand of AWS-RunPowerShellScript (anything as SYSTEM)',
    );
  });

  it('refuses the ops role any SendCommand (its bundle has no SSM client)', async () => {
    const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), [
      [sendCommand('ops', 'snapkeeper-fsfreeze', { 'snapkeeper:consistency': 'fsfreeze' })],
    ]);
    expect(report.verdicts.filter((v) => v.unexpected && v.role === 'ops')).toHaveLength(2);
  });

  it('refuses a recorded SendCommand to an instance the recording saw untagged', async () => {
    const report = await simulate(readPackagedTemplate(), readTargetRoleTemplate(), [
      [sendCommand('backup', 'snapkeeper-fsfreeze', { 'snapkeeper:backup': 'true' })],
    ]);
    expect(report.verdicts.filter((v) => v.unexpected).map((v) => v.why)).toEqual([
      'backup ssm:SendCommand',
    ]);
  });

  it('fails when the instance condition is dropped (the untagged instance is then allowed)', async () => {
    const template = JSON.parse(JSON.stringify(readPackagedTemplate())) as CfnTemplate;
    const statement = statementsOf(template, 'BackupRole').find(
      (s) => s.Sid === 'SendCommandsOnlyToConsistencyTaggedInstances',
    ) as Statement & { Condition?: unknown };
    expect(statement).toBeDefined();
    delete statement.Condition;
    const report = await simulate(template, readTargetRoleTemplate(), [recording()]);
    expect(
      report.verdicts.filter((v) => v.unexpected && v.role === 'backup').map((v) => v.why),
    ).toEqual(
      expect.arrayContaining([
        'SendCommand to an instance without snapkeeper:consistency',
        'SendCommand to an untagged instance',
      ]),
    );
  });
});
