import { createFanOutQueueGateway } from '../lib/aws/FanOutQueueGateway.ts';
import { TargetGateways } from '../lib/aws/TargetGateways.ts';
import { ConfigurationError } from '../lib/domain/errors.ts';
import { planTargets } from '../lib/domain/fanOut.ts';
import { resolveSchedule } from '../lib/domain/schedules.ts';
import { parseFanOutEvent } from '../lib/jobs/events.ts';
import { planFanOut } from '../lib/jobs/fanOutJob.ts';
import { runOnce } from '../lib/jobs/slotRun.ts';
import { answer, scheduledSlot, slotRunDependencies } from '../lib/runtime/invocation.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { powertoolsHandler } from '../lib/runtime/powertoolsHandler.ts';

const runtime = createLambdaRuntime('fanout', process.env);
const { config } = runtime;
if (!config.fanOutQueueUrl) throw new ConfigurationError('FANOUT_QUEUE_URL', 'is required');
const queue = createFanOutQueueGateway(config, config.fanOutQueueUrl);
const targets = planTargets(config.targetAccounts, config.targetRegions);
const gateways = new TargetGateways(config, (client) => runtime.tracer.captureAWSv3Client(client));

/**
 * Fan-out planner: `{ "job": "backup", "schedule": "daily", "scheduledTime": "..." }` →
 * the slot's work split per (account, region, batch) onto the queue, once per slot. The
 * run stays `running` until the workers finish every batch.
 */
async function fanOut(event: unknown): Promise<unknown> {
  const invocation = parseFanOutEvent(event, config.catalog);
  const schedule = resolveSchedule(config.catalog, invocation.schedule);
  const dryRun = invocation.dryRun || config.dryRun;
  const runId = runtime.newRunId();
  const slot = scheduledSlot(runtime, schedule, invocation.scheduledTime, invocation.job);
  const outcome = await runOnce(
    { job: invocation.job, runId, trigger: 'schedule', dryRun, schedule: schedule.name, slot },
    slotRunDependencies(runtime, { historyRequired: true }),
    (run) =>
      planFanOut(
        {
          job: invocation.job,
          schedule: schedule.name,
          slot,
          dryRun,
          trigger: run.trigger,
          resuming: run.resuming,
        },
        {
          targets,
          ec2For: (target) => gateways.ec2(target),
          queue,
          history: runtime.history,
          config,
          clock: runtime.clock,
          runId,
          logger: runtime.logger,
          metrics: runtime.metricsPort,
          metricsFor: runtime.metricsForJob,
        },
      ),
  );
  return answer(outcome, runtime.metricsPort);
}

export const handler = powertoolsHandler(runtime, fanOut);
