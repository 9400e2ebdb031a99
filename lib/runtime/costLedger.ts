/**
 * The cost ledger's dependencies in a function's runtime (issue 22, part 1). The EBS
 * direct client is built here, once per container, and only the retention function
 * imports this file: `@aws-sdk/client-ebs` is in no other bundle.
 */
import { createEbsDirectClient, EbsDirectGateway } from '../aws/EbsDirectGateway.ts';
import type { RetentionCostDependencies } from '../jobs/snapshotSizes.ts';
import type { LambdaRuntime } from './lambdaRuntime.ts';

/**
 * What retention measures and prices through: the EBS direct APIs (measuring), the run
 * history's size records, and the price table. Undefined without a history table (no
 * sizes can be kept, so none are measured).
 *
 * @example
 * runRetentionJob(input, { ...deps, costs: retentionCostLedger(runtime) });
 */
export function retentionCostLedger(
  runtime: Pick<LambdaRuntime, 'config' | 'clients' | 'history'>,
): Pick<RetentionCostDependencies, 'ebs' | 'sizes' | 'config'> | undefined {
  const { config } = runtime;
  if (!config.historyTable) return undefined;
  return {
    ebs: runtime.clients.once(
      'ebs-direct',
      () => new EbsDirectGateway(createEbsDirectClient(config)),
    ),
    sizes: runtime.history.sizes,
    config,
  };
}
