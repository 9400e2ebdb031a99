import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { assumeTargetRole } from '../lib/aws/targetRoles.ts';
import { type BatchMessage, parseBatchMessage } from '../lib/domain/fanOut.ts';
import { type BatchOutcome, runFanOutBatch } from '../lib/jobs/fanOutJob.ts';
import {
  fanOutQueueGateway,
  runCommandGateway,
  snapshotTierGateway,
} from '../lib/runtime/gateways.ts';
import { remainingTime } from '../lib/runtime/invocation.ts';
import { jobMetricsFor } from '../lib/runtime/jobMetrics.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { powertoolsHandler } from '../lib/runtime/powertoolsHandler.ts';

const runtime = createLambdaRuntime('worker', process.env, { reachAccount: assumeTargetRole });
const processor = new BatchProcessor(EventType.SQS);
// A batch out of time after some progress continues in a new message.
const metricsFor = jobMetricsFor(runtime);
const queue = fanOutQueueGateway(runtime);

/**
 * Fan-out worker: each SQS record is one batch of a fan-out run, processed in turn and
 * checkpointed in the run history. Records that failed, or must resume, are reported
 * as partial batch failures, so the queue delivers only those again. Each target's EC2
 * gateway (and rate limiter) comes from the runtime's cache, reused while warm.
 */
async function worker(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const handleRecord = async (record: SQSRecord): Promise<BatchOutcome> => {
    const message = parseBatchMessage(parseBody(record.body));
    runtime.logger.appendKeys({ runId: message.runId, batchId: message.batchId });
    return runFanOutBatch(message, {
      history: runtime.history,
      ec2For: (target, share) => runtime.clients.ec2(target, share),
      rateShareFor: (target, share) => runtime.clients.rateShare(target, share),
      // Consistent sets' scripts run in the deployment's own account and region only.
      runCommandFor: (target) =>
        target.account === 'self' && target.region === runtime.config.region
          ? runCommandGateway(runtime)
          : undefined,
      // Locks and tiers of the batch's own account and region (the target role allows them).
      tiersFor: (target, share) => snapshotTierGateway(runtime, target, share),
      ...(queue ? { requeue: sendAgain } : {}),
      config: runtime.config,
      clock: runtime.clock,
      logger: runtime.logger,
      metrics: runtime.metricsPort,
      metricsFor,
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
