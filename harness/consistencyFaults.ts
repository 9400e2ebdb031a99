/**
 * Fault rules for Systems Manager Run Command (issue 21, part 1). moto answers every
 * SendCommand with `Success`, whatever the instance or document (probed with moto 5.2:
 * an unknown instance id and an unknown document both get `Success`), so the paths
 * where AWS answers otherwise are made here, in the fault proxy:
 * - {@link ssmUnmanaged}: SendCommand to an instance that is not managed by Systems
 *   Manager answers `InvalidInstanceId` (HTTP 400), as the SSM API reference documents;
 * - {@link ssmScriptAnswers}: GetCommandInvocation of a command on an instance answers
 *   `Failed` (the script exited non-zero) or `InProgress` forever (a script that hangs:
 *   the run's wait times out).
 */
import { CreateSnapshotsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { RunCommandPort } from '../lib/jobs/ports.ts';
import { awsError, type FaultRule, type ProxyCall, rewriteAnswer } from './faultProxy.ts';

function instanceIdsOf(call: ProxyCall): string[] {
  const json = call.json as { InstanceIds?: unknown; InstanceId?: unknown } | undefined;
  if (Array.isArray(json?.InstanceIds)) return json.InstanceIds.map(String);
  if (typeof json?.InstanceId === 'string') return [json.InstanceId];
  return [];
}

/**
 * SendCommand to one of these instances answers `InvalidInstanceId`, as AWS does for an
 * instance with no SSM agent, no instance profile, or not running.
 *
 * @example
 * proxy.rules.add(ssmUnmanaged(['i-0123']));
 */
export function ssmUnmanaged(instanceIds: readonly string[]): FaultRule {
  const ids = new Set(instanceIds);
  return {
    name: `SSM: unmanaged ${[...ids].join(',')}`,
    action: 'SendCommand',
    decide: (call) =>
      instanceIdsOf(call).some((id) => ids.has(id))
        ? awsError(
            'InvalidInstanceId',
            400,
            'Instances [[' +
              instanceIdsOf(call).join(', ') +
              ']] not in a valid state for account 123456789012',
          )
        : undefined,
  };
}

/**
 * GetCommandInvocation on one of these instances answers `status` instead of moto's
 * `Success`: `Failed` (with an error output) or `InProgress` (never finishing). `only`
 * limits it to the pre or post script by the command ids a test learned.
 *
 * @example
 * proxy.rules.add(ssmScriptAnswers(['i-0123'], 'Failed'));
 */
export function ssmScriptAnswers(
  instanceIds: readonly string[],
  status: 'Failed' | 'InProgress',
): FaultRule {
  const ids = new Set(instanceIds);
  return {
    name: `SSM: scripts on ${[...ids].join(',')} answer ${status}`,
    action: 'GetCommandInvocation',
    decide: (call) =>
      instanceIdsOf(call).some((id) => ids.has(id))
        ? rewriteAnswer((answer) => {
            const body = JSON.parse(answer.body) as Record<string, unknown>;
            return JSON.stringify({
              ...body,
              Status: status,
              StatusDetails: status,
              ResponseCode: status === 'Failed' ? 1 : -1,
              StandardErrorContent:
                status === 'Failed' ? 'injected by the fault proxy: the script exited 1' : '',
            });
          })
        : undefined,
  };
}

/**
 * moto answers SendCommand of `AWSEC2-CreateVssSnapshot` with `Success` but makes no
 * snapshots (it runs no document). This wraps a Run Command port so that the document
 * does what AWS documents it does: one `CreateSnapshots` of the instance (boot volume
 * left out when `ExcludeBootVolume=True`), tagged with the `tags` parameter
 * (`Key=k,Value=v;…`) plus AWS's `AppConsistent=true`, once the real SendCommand to moto
 * (through the fault proxy) was accepted. `made` counts the sets it made.
 *
 * @example
 * const ssm = vssDocumentMakesSnapshots(new SsmGateway(client), ec2Client);
 */
export function vssDocumentMakesSnapshots(
  ssm: RunCommandPort,
  ec2: EC2Client,
): RunCommandPort & { readonly made: () => number } {
  let made = 0;
  return {
    made: () => made,
    commandInvocation: (commandId, instanceId) => ssm.commandInvocation(commandId, instanceId),
    sendCommand: async (request) => {
      // Sent first: an instance SSM refuses (unmanaged) runs no document.
      const commandId = await ssm.sendCommand(request);
      if (request.document === 'AWSEC2-CreateVssSnapshot') {
        const tags = (request.parameters.tags?.[0] ?? '')
          .split(';')
          .filter((t) => t !== '')
          .map((pair) => {
            const [, Key = '', Value = ''] = /^Key=(.*),Value=(.*)$/.exec(pair) ?? [];
            return { Key, Value };
          });
        await ec2.send(
          new CreateSnapshotsCommand({
            InstanceSpecification: {
              InstanceId: request.instanceId,
              ExcludeBootVolume: request.parameters.ExcludeBootVolume?.[0] === 'True',
            },
            Description: request.parameters.description?.[0],
            TagSpecifications: [
              {
                ResourceType: 'snapshot',
                Tags: [...tags, { Key: 'AppConsistent', Value: 'true' }],
              },
            ],
          }),
        );
        made += 1;
      }
      return commandId;
    },
  };
}
