import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SnapkeeperConfig } from '../config/environment.ts';
import type { BatchMessage } from '../domain/fanOut.ts';
import { recordCalls } from './callRecorder.ts';
import { clientSettings } from './clients.ts';
import { toAwsCallError } from './errors.ts';

/** SQS takes 10 messages a call. */
const SEND_BATCH = 10;

/**
 * The fan-out queue: the planner sends one message per batch, ten a call, and resends
 * the entries SQS did not take.
 *
 * @example
 * await new FanOutQueueGateway(sqs, queueUrl).send(messages);
 */
export class FanOutQueueGateway {
  readonly #client: SQSClient;
  readonly #queueUrl: string;

  public constructor(client: SQSClient, queueUrl: string) {
    this.#client = client;
    this.#queueUrl = queueUrl;
  }

  /**
   * Sends every message (each held back `delaySeconds`, at most 900, when given);
   * resolves with the batch ids that could not be sent after three rounds (empty when
   * all went).
   *
   * @throws {AwsCallError} when SQS refuses the calls themselves.
   */
  public async send(messages: readonly BatchMessage[], delaySeconds?: number): Promise<string[]> {
    const delay =
      delaySeconds === undefined
        ? {}
        : { DelaySeconds: Math.min(900, Math.max(0, Math.floor(delaySeconds))) };
    let pending = [...messages];
    for (let round = 0; round < 3 && pending.length > 0; round += 1) {
      const failed: BatchMessage[] = [];
      for (let i = 0; i < pending.length; i += SEND_BATCH) {
        const chunk = pending.slice(i, i + SEND_BATCH);
        try {
          const response = await this.#client.send(
            new SendMessageBatchCommand({
              QueueUrl: this.#queueUrl,
              Entries: chunk.map((message, index) => ({
                Id: String(index),
                MessageBody: JSON.stringify(message),
                ...delay,
              })),
            }),
          );
          for (const entry of response.Failed ?? []) {
            const message = chunk[Number(entry.Id)];
            if (message) failed.push(message);
          }
        } catch (error) {
          throw toAwsCallError('SendMessageBatch', error);
        }
      }
      pending = failed;
    }
    return pending.map((m) => m.batchId);
  }
}

/**
 * Builds the queue gateway for a configuration.
 *
 * @example
 * const queue = createFanOutQueueGateway(config, config.fanOutQueueUrl);
 */
export function createFanOutQueueGateway(
  config: Pick<SnapkeeperConfig, 'region' | 'maxAttempts' | 'requestTimeoutMs' | 'endpoint'>,
  queueUrl: string,
): FanOutQueueGateway {
  return new FanOutQueueGateway(recordCalls(new SQSClient(clientSettings(config))), queueUrl);
}
