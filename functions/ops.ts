import type { Context } from 'aws-lambda';
import { createAutoScalingGateway } from '../lib/aws/AutoScalingGateway.ts';
import { Ec2ImageGateway } from '../lib/aws/Ec2ImageGateway.ts';
import { Ec2RestoreGateway } from '../lib/aws/Ec2RestoreGateway.ts';
import { Ec2RestoreTestGateway } from '../lib/aws/Ec2RestoreTestGateway.ts';
import { handleConsolePayload } from '../lib/runtime/consoleInvocation.ts';
import { createLambdaRuntime } from '../lib/runtime/lambdaRuntime.ts';
import { powertoolsHandler } from '../lib/runtime/powertoolsHandler.ts';

const runtime = createLambdaRuntime('ops', process.env);
const gateways = {
  images: new Ec2ImageGateway(runtime.ec2.client, {
    tagAfterCreate: runtime.config.localTagAfterCreate,
  }),
  restore: new Ec2RestoreGateway(runtime.ec2.client),
  restoreTests: new Ec2RestoreTestGateway(runtime.ec2.client),
  autoScaling: createAutoScalingGateway(runtime.config),
  // Console operations never deregister an AMI (plans are dry runs), so they never read
  // Recycle Bin rules: leaving the client out keeps this bundle small.
  recycleBin: undefined,
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
