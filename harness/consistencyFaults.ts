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
