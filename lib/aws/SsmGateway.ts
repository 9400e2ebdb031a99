import {
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import type { SnapkeeperConfig } from '../config/environment.ts';
import type { CommandInvocationState, RunCommandRequest } from '../domain/runCommand.ts';
import { recordCalls } from './callRecorder.ts';
import { clientSettings } from './clients.ts';
import { awsErrorCode, toAwsCallError } from './errors.ts';
import { type BucketSpec, RateLimiter } from './rateLimiter.ts';

/**
 * Our side of Systems Manager's API rate limits. SSM does not publish per-action buckets
 * the way EC2 does (its quotas are per account and region, `ThrottlingException` when
 * exceeded, raisable in Service Quotas): these are deliberately low, since a backup run
 * sends one pre and one post command per opted-in instance.
 */
export const SSM_BUCKETS: Readonly<Record<string, BucketSpec>> = {
  SendCommand: { burst: 20, refillPerSecond: 5 },
  GetCommandInvocation: { burst: 40, refillPerSecond: 20 },
};

/**
 * Run Command through one rate-limited SSM client: sends a document to one instance
 * (one command per instance, never `Targets`), and reads its invocation.
 *
 * AWS answers checked (SSM API reference, SendCommand and GetCommandInvocation): an
 * instance that is not managed (no agent, no instance profile, stopped) makes
 * SendCommand fail with `InvalidInstanceId`; right after SendCommand,
 * GetCommandInvocation may answer `InvocationDoesNotExist` for a while (read as
 * `missing`, polled again); `Status` is one of Pending, InProgress, Delayed, Success,
 * Cancelled, TimedOut, Failed, Cancelling, with `StatusDetails` such as `Undeliverable`,
 * `Terminated`, `DeliveryTimedOut`, `ExecutionTimedOut`.
 *
 * @example
 * const ssm = new SsmGateway(new SSMClient({}));
 * const id = await ssm.sendCommand({ instanceId: 'i-1', document: 'snapkeeper-fsfreeze', parameters: { command: ['pre-script'] }, deliveryTimeoutSeconds: 30, comment: 'pre' });
 */
export class SsmGateway {
  readonly #client: SSMClient;

  public constructor(client: SSMClient) {
    this.#client = client;
  }

  /** Sends `request.document` to one instance; resolves with the command id. */
  public async sendCommand(request: RunCommandRequest): Promise<string> {
    try {
      const answer = await this.#client.send(
        new SendCommandCommand({
          InstanceIds: [request.instanceId],
          DocumentName: request.document,
          ...(request.documentVersion ? { DocumentVersion: request.documentVersion } : {}),
          Parameters: Object.fromEntries(
            Object.entries(request.parameters).map(([k, v]) => [k, [...v]]),
          ),
          // SendCommand's TimeoutSeconds is the delivery timeout, 30 to 2,592,000.
          TimeoutSeconds: Math.max(30, Math.ceil(request.deliveryTimeoutSeconds)),
          Comment: request.comment.slice(0, 100),
        }),
      );
      const id = answer.Command?.CommandId;
      if (!id) throw new Error('SendCommand answered without a command id');
      return id;
    } catch (error) {
      throw toAwsCallError('SendCommand', error);
    }
  }

  /** Where one command stands on one instance. */
  public async commandInvocation(
    commandId: string,
    instanceId: string,
  ): Promise<CommandInvocationState> {
    let answer: GetCommandInvocationCommandOutput;
    try {
      answer = await this.#client.send(
        new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }),
      );
    } catch (error) {
      if (awsErrorCode(error) === 'InvocationDoesNotExist') {
        return { state: 'missing', detail: 'InvocationDoesNotExist' };
      }
      throw toAwsCallError('GetCommandInvocation', error);
    }
    return invocationState(answer);
  }
}

/**
 * Maps GetCommandInvocation's answer to a state.
 *
 * @example
 * invocationState({ Status: 'Success', StatusDetails: 'Success', $metadata: {} }).state; // 'success'
 */
export function invocationState(
  answer: Pick<
    GetCommandInvocationCommandOutput,
    'Status' | 'StatusDetails' | 'StandardErrorContent'
  >,
): CommandInvocationState {
  const status = answer.Status ?? 'Pending';
  const detail = answer.StatusDetails ? `${status} / ${answer.StatusDetails}` : status;
  const output = answer.StandardErrorContent?.trim().slice(0, 500) || undefined;
  switch (status) {
    case 'Success':
      return { state: 'success', detail };
    case 'Failed':
      return { state: 'failed', detail, ...(output ? { output } : {}) };
    case 'TimedOut':
      return { state: 'timed-out', detail };
    case 'Cancelled':
    case 'Cancelling':
      return { state: 'cancelled', detail };
    default:
      return { state: 'pending', detail };
  }
}

/**
 * Puts the limiter in front of every attempt the SSM client makes (after the SDK's
 * retry step, so retries take tokens too).
 */
function withSsmRateLimit(client: SSMClient, limiter: RateLimiter): SSMClient {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      await limiter.acquire(String(context.commandName ?? 'Unknown').replace(/Command$/, ''));
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'snapkeeperSsmRateLimit', override: true },
  );
  return client;
}

/**
 * Builds the Run Command gateway for a configuration: its client is rate-limited like
 * EC2's, with {@link SSM_BUCKETS} scaled by `EC2_RATE_SHARE`.
 *
 * @example
 * const ssm = createSsmGateway(loadConfig(process.env));
 */
export function createSsmGateway(
  config: Pick<
    SnapkeeperConfig,
    'region' | 'maxAttempts' | 'requestTimeoutMs' | 'endpoint' | 'ec2RateShare' | 'ec2RateHeadroom'
  > & { readonly localSsmEndpoint?: string | undefined },
): SsmGateway {
  const endpoint = config.localSsmEndpoint ?? config.endpoint;
  const client = recordCalls(new SSMClient(clientSettings({ ...config, endpoint })));
  const limiter = new RateLimiter({
    share: config.ec2RateShare,
    headroom: config.ec2RateHeadroom,
    overrides: SSM_BUCKETS,
  });
  return new SsmGateway(withSsmRateLimit(client, limiter));
}
