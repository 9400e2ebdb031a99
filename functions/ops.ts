import type { Context } from 'aws-lambda';
import { handleConsolePayload } from '../lib/runtime/consoleInvocation.ts';
import {
  autoScalingGateway,
  imageGateway,
  restoreGateway,
  restoreTestGateway,
  snapshotTierGateway,
} from '../lib/runtime/gateways.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { powertoolsHandler } from '../lib/runtime/powertoolsHandler.ts';

const runtime = createLambdaRuntime('ops', process.env);
const gateways = {
  images: imageGateway(runtime),
  restore: restoreGateway(runtime),
  restoreTests: restoreTestGateway(runtime),
  autoScaling: autoScalingGateway(runtime),
  tiers: snapshotTierGateway(runtime),
  // Console operations never deregister an AMI (plans are dry runs), so they never read
  // Recycle Bin rules: leaving the client out keeps this bundle small.
  recycleBin: undefined,
  // No Run Command client: with it this bundle is over its 1,536 KB budget (1,550 KB), so
  // a console backup of an instance tagged snapkeeper:consistency falls back to a
  // crash-consistent set, reported (`runCommand: runCommandGateway(runtime)` turns it on).
  runCommand: undefined,
};

/**
 * On-demand operations from the Lambda console or `aws lambda invoke`: a payload with an
 * `action` (backup, retention, plan, report, restore-volume, duplicate-instance,
 * restore-instance, restore-drill, restore-test); samples in events/ops-*.json.
 */
async function ops(event: unknown, _context: Context): Promise<unknown> {
  return handleConsolePayload(event, runtime, gateways);
}

export const handler = powertoolsHandler(runtime, ops);
