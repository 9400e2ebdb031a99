import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { SnapkeeperConfig } from '../config/environment.ts';
import type { RunSummary } from '../domain/runRecords.ts';
import { recordCalls } from './callRecorder.ts';
import { clientSettings } from './clients.ts';
import { toAwsCallError } from './errors.ts';

/** The event source and detail type of the run-finished event. */
export const RUN_FINISHED = {
  source: 'snapkeeper',
  detailType: 'Snapkeeper Run Finished',
} as const;

/**
 * Publishes every finished run on EventBridge's default bus, the way DLM and AWS
 * Backup announce their jobs, so operators route outcomes with their own rules.
 *
 * @example
 * await new RunEventsGateway(new EventBridgeClient({})).publishRunFinished(summary);
 */
export class RunEventsGateway {
  readonly #client: EventBridgeClient;
  readonly #busName: string;

  public constructor(client: EventBridgeClient, busName = 'default') {
    this.#client = client;
    this.#busName = busName;
  }

  /** Sends `Snapkeeper Run Finished` with the run summary as detail. */
  public async publishRunFinished(summary: RunSummary): Promise<void> {
    try {
      const response = await this.#client.send(
        new PutEventsCommand({
          Entries: [
            {
              Source: RUN_FINISHED.source,
              DetailType: RUN_FINISHED.detailType,
              Detail: JSON.stringify(summary),
              EventBusName: this.#busName,
              Resources: [],
            },
          ],
        }),
      );
      if ((response.FailedEntryCount ?? 0) > 0) {
        const entry = response.Entries?.find((e) => e.ErrorCode);
        throw new Error(
          `${entry?.ErrorCode ?? 'PutEventsFailed'}: ${entry?.ErrorMessage ?? 'entry rejected'}`,
        );
      }
    } catch (error) {
      throw toAwsCallError('PutEvents', error);
    }
  }
}

/**
 * Builds the run-events gateway for a configuration.
 *
 * @example
 * const events = createRunEventsGateway(config);
 */
export function createRunEventsGateway(
  config: Pick<SnapkeeperConfig, 'region' | 'maxAttempts' | 'requestTimeoutMs' | 'endpoint'>,
  busName = 'default',
): RunEventsGateway {
  return new RunEventsGateway(recordCalls(new EventBridgeClient(clientSettings(config))), busName);
}
