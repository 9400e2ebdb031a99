import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { createFanOutQueueGateway } from '../lib/aws/FanOutQueueGateway.ts';
import { TargetGateways } from '../lib/aws/TargetGateways.ts';
import { type BatchMessage, parseBatchMessage } from '../lib/domain/fanOut.ts';
import { type BatchOutcome, runFanOutBatch } from '../lib/jobs/fanOutJob.ts';
import { remainingTime } from '../lib/runtime/invocation.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { powertoolsHandler } from '../lib/runtime/powertoolsHandler.ts';

const runtime = createLambdaRuntime('worker', process.env);
const processor = new BatchProcessor(EventType.SQS);
// One EC2 gateway (and rate limiter) per target account and region, reused while warm.
const targets = new TargetGateways(runtime.config, (client) =>
  runtime.tracer.captureAWSv3Client(client),
);

/**
 * Fan-out worker: each SQS record is one batch of a fan-out run, processed in turn and
 * checkpointed in the run history. Records that failed, or must resume, are reported
 * as partial batch failures, so the queue delivers only those again.
 */
async function worker(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const handleRecord = async (record: SQSRecord): Promise<BatchOutcome> => {
    const message = parseBatchMessage(parseBody(record.body));
    runtime.logger.appendKeys({ runId: message.runId, batchId: message.batchId });
    return runFanOutBatch(message, {
      history: runtime.history,
      ec2For: (target, share) => targets.ec2(target, share),
      ...(queue
        ? {
            requeue: async (message: BatchMessage, delaySeconds?: number) =>
              sendAgain(message, delaySeconds),
          }
        : {}),
      config: runtime.config,
      clock: runtime.clock,
      logger: runtime.logger,
      metrics: runtime.metricsPort,
      metricsFor: runtime.metricsForJob,
      journal: runtime.journal,
      ledger: runtime.history,
      events: runtime.events,
      remainingMs: remainingTime(context),
    });
  };
  return processPartialResponse(event, handleRecord, processor, {
    context,
    processInParallel: false,
  });
}

// A batch out of time after some progress continues in a new message.
const queue = runtime.config.fanOutQueueUrl
  ? createFanOutQueueGateway(runtime.config, runtime.config.fanOutQueueUrl)
  : undefined;

async function sendAgain(message: BatchMessage, delaySeconds?: number): Promise<void> {
  const unsent = (await queue?.send([message], delaySeconds)) ?? [message.batchId];
  if (unsent.length > 0) throw new Error(`batch ${message.batchId} could not be sent again`);
}

function parseBody(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (error) {
    runtime.logger.error('fan-out message is not JSON', { body: body.slice(0, 500) });
    throw error;
  }
}

export const handler = powertoolsHandler(runtime, worker);
