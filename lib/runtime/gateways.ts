import { type AutoScalingGateway, createAutoScalingGateway } from '../aws/AutoScalingGateway.ts';
import { Ec2CopyGateway } from '../aws/Ec2CopyGateway.ts';
import { Ec2ImageGateway } from '../aws/Ec2ImageGateway.ts';
import { Ec2RestoreGateway } from '../aws/Ec2RestoreGateway.ts';
import { Ec2RestoreTestGateway } from '../aws/Ec2RestoreTestGateway.ts';
import { Ec2SnapshotTierGateway } from '../aws/Ec2SnapshotTierGateway.ts';
import { createFanOutQueueGateway, type FanOutQueueGateway } from '../aws/FanOutQueueGateway.ts';
import { createRecycleBinGateway, type RecycleBinGateway } from '../aws/RecycleBinGateway.ts';
import { createReportBucketGateway, type ReportBucketGateway } from '../aws/ReportBucketGateway.ts';
import { createSsmGateway, type SsmGateway } from '../aws/SsmGateway.ts';
import { ConfigurationError } from '../domain/errors.ts';
import type { Target } from '../domain/fanOut.ts';
import type { RegionGateways } from '../jobs/copyJob.ts';
import type { LambdaRuntime } from './lambdaRuntime.ts';

// The gateways a function builds beyond the runtime's EC2 gateway, each once per
// container through the runtime's client cache. One function each, so that a handler's
// bundle holds only the SDK clients it uses.

type Runtime = Pick<LambdaRuntime, 'config' | 'clients'>;

/**
 * The image (AMI) gateway of this account in `region` (the function's by default),
 * over the same EC2 client as the runtime's gateway there.
 *
 * @example
 * const images = imageGateway(runtime);
 */
export function imageGateway(runtime: Runtime, region = runtime.config.region): Ec2ImageGateway {
  const { localTagAfterCreate } = runtime.config;
  return runtime.clients.gateway(
    { account: 'self', region },
    'images',
    (client) => new Ec2ImageGateway(client, { tagAfterCreate: localTagAfterCreate }),
  );
}

/**
 * The copy and sharing gateway of this account in `region` (the function's by default).
 *
 * @example
 * const sharing = copyGateway(runtime);
 */
export function copyGateway(runtime: Runtime, region = runtime.config.region): Ec2CopyGateway {
  return runtime.clients.gateway(
    { account: 'self', region },
    'copies',
    (client) => new Ec2CopyGateway(client),
  );
}

/**
 * The gateways of a copy's destination region: its EC2, image and copy gateways over
 * the one client (and rate limiter) of this account in that region.
 *
 * @example
 * runCopyJob(params, { ...deps, destination: destinationGateways(runtime) });
 */
export function destinationGateways(
  runtime: Pick<LambdaRuntime, 'config' | 'clients' | 'ec2In'>,
): (region: string) => RegionGateways {
  return (region) => ({
    ec2: runtime.ec2In(region),
    images: imageGateway(runtime, region),
    copies: copyGateway(runtime, region),
  });
}

/**
 * The restore gateway (volumes, attachments, launches) in the function's region.
 *
 * @example
 * const restore = restoreGateway(runtime);
 */
export function restoreGateway(runtime: Runtime): Ec2RestoreGateway {
  return runtime.clients.gateway(
    { account: 'self', region: runtime.config.region },
    'restore',
    (client) => new Ec2RestoreGateway(client),
  );
}

/**
 * The Run Command gateway in the function's region (pre/post scripts of application-
 * consistent sets; issue 21), for the functions that make snapshot sets.
 *
 * @example
 * const runCommand = runCommandGateway(runtime);
 */
export function runCommandGateway(runtime: Runtime): SsmGateway {
  return runtime.clients.once('ssm', () => createSsmGateway(runtime.config));
}

/**
 * The restore-test gateway (volumes restore tests make, check and delete) in the
 * function's region.
 *
 * @example
 * const tests = restoreTestGateway(runtime);
 */
export function restoreTestGateway(runtime: Runtime): Ec2RestoreTestGateway {
  return runtime.clients.gateway(
    { account: 'self', region: runtime.config.region },
    'restore-test',
    (client) => new Ec2RestoreTestGateway(client),
  );
}

/**
 * The Auto Scaling gateway in the function's region.
 *
 * @example
 * const autoScaling = autoScalingGateway(runtime);
 */
export function autoScalingGateway(runtime: Runtime): AutoScalingGateway {
  return runtime.clients.once('autoscaling', () => createAutoScalingGateway(runtime.config));
}

/**
 * The Recycle Bin gateway when `RECYCLE_BIN_CHECK` is on; undefined when it is off.
 *
 * @example
 * const recycleBin = recycleBinGateway(runtime);
 */
export function recycleBinGateway(runtime: Runtime): RecycleBinGateway | undefined {
  if (!runtime.config.recycleBinCheck) return undefined;
  return runtime.clients.once('rbin', () => createRecycleBinGateway(runtime.config));
}

/**
 * The fan-out queue (`FANOUT_QUEUE_URL`); undefined when none is configured.
 *
 * @example
 * const queue = fanOutQueueGateway(runtime);
 */
export function fanOutQueueGateway(runtime: Runtime): FanOutQueueGateway | undefined {
  const url = runtime.config.fanOutQueueUrl;
  if (!url) return undefined;
  return runtime.clients.once('fanout-queue', () => createFanOutQueueGateway(runtime.config, url));
}

/**
 * The fan-out queue, which the planner cannot work without.
 *
 * @throws {ConfigurationError} naming FANOUT_QUEUE_URL when it is not set.
 * @example
 * const queue = requiredFanOutQueueGateway(runtime);
 */
export function requiredFanOutQueueGateway(runtime: Runtime): FanOutQueueGateway {
  const queue = fanOutQueueGateway(runtime);
  if (!queue) throw new ConfigurationError('FANOUT_QUEUE_URL', 'is required');
  return queue;
}

/**
 * The bucket the coverage page is written to (`REPORT_BUCKET`); undefined when none is set.
 *
 * @example
 * const bucket = reportBucketGateway(runtime);
 */
export function reportBucketGateway(runtime: Runtime): ReportBucketGateway | undefined {
  const bucket = runtime.config.reportBucket;
  if (!bucket) return undefined;
  return runtime.clients.once('report-bucket', () =>
    createReportBucketGateway(runtime.config, bucket),
  );
}

/**
 * The snapshot lock and tier gateway (LockSnapshot, DescribeLockedSnapshots,
 * ModifySnapshotTier, DescribeSnapshotTierStatus, RestoreSnapshotTier) of `target` (this
 * account in the function's region by default; a fan-out batch's own account and region
 * in the worker), over the same rate-limited EC2 client as that target's EC2 gateway.
 *
 * @example
 * const tiers = snapshotTierGateway(runtime);
 * const batchTiers = snapshotTierGateway(runtime, message.target, message.rateShare);
 */
export function snapshotTierGateway(
  runtime: Runtime,
  target: Target = { account: 'self', region: runtime.config.region },
  share?: number,
): Ec2SnapshotTierGateway {
  return runtime.clients.gateway(
    target,
    'snapshot-tiers',
    (client) => new Ec2SnapshotTierGateway(client),
    share,
  );
}
