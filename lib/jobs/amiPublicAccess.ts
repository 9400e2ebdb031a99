import type { ImageBlockPublicAccess } from '../aws/Ec2ImageGateway.ts';
import { toAwsCallError } from '../aws/errors.ts';
import type { ActionJournal, ImagePublicAccessPort, LoggerPort, ReportedError } from './ports.ts';
import { recordAfter } from './runReport.ts';

/**
 * The account-level block public access for AMIs of one region, as a copy run found it
 * (and, with the stage option on, turned it on).
 */
export interface AmiPublicAccessResult extends ImageBlockPublicAccess {
  readonly region: string;
  /**
   * `enabled`: EnableImageBlockPublicAccess was called (EC2 applies it within minutes);
   * `planned`: a dry run would call it; `failed`: it was refused; `not-allowed`: an
   * organization's declarative policy manages the setting, so the account cannot.
   */
  readonly action?: 'enabled' | 'planned' | 'failed' | 'not-allowed' | undefined;
  readonly error?: ReportedError | undefined;
}

/** The image calls of one region this check uses; absent ones make the state `unknown`. */
export type AmiPublicAccessPort = Partial<ImagePublicAccessPort>;

/**
 * Reads the block public access for AMIs in each region (`GetImageBlockPublicAccessState`)
 * and, when `enable` is on and a region is `unblocked`, turns it on
 * (`EnableImageBlockPublicAccess`, `block-new-sharing`), recording the change. Never
 * throws: a state that cannot be read is `unknown` with its reason (the local AWS does
 * not implement the calls), and a refused change is `failed` with its error.
 *
 * @example
 * const found = await checkAmiPublicAccess([{ region: 'eu-west-1', images }], { enable: false, dryRun: false }, deps);
 * // [{ region: 'eu-west-1', state: 'block-new-sharing', managedBy: 'account' }]
 */
export async function checkAmiPublicAccess(
  regions: readonly { readonly region: string; readonly images: AmiPublicAccessPort }[],
  options: { readonly enable: boolean; readonly dryRun: boolean },
  deps: { readonly logger: LoggerPort; readonly journal: ActionJournal; readonly runId: string },
): Promise<AmiPublicAccessResult[]> {
  const results: AmiPublicAccessResult[] = [];
  for (const { region, images } of regions) {
    if (results.some((r) => r.region === region)) continue;
    const found: ImageBlockPublicAccess = images.imageBlockPublicAccess
      ? await images.imageBlockPublicAccess()
      : { state: 'unknown', reason: 'not read by this run' };
    const result: AmiPublicAccessResult = { region, ...found };
    if (found.state !== 'unblocked' || !options.enable) {
      if (found.state !== 'block-new-sharing')
        deps.logger.warn('block public access for AMIs is not on', { ...result });
      results.push(result);
      continue;
    }
    if (found.managedBy === 'declarative-policy') {
      results.push({ ...result, action: 'not-allowed' });
      continue;
    }
    if (options.dryRun || !images.enableImageBlockPublicAccess) {
      results.push({ ...result, action: 'planned' });
      continue;
    }
    try {
      await images.enableImageBlockPublicAccess();
      results.push({ ...result, action: 'enabled' });
      // The setting changed: a journal error is logged, never undoes it.
      await recordAfter(deps.journal, deps.logger, {
        runId: deps.runId,
        job: 'copy',
        action: 'enable-image-block-public-access',
        resourceId: `account-setting:${region}`,
        outcome: 'done',
        reason: 'BLOCK_PUBLIC_AMIS is on and the region was unblocked',
        details: { region, state: 'block-new-sharing' },
      });
    } catch (error) {
      const failure = toAwsCallError('EnableImageBlockPublicAccess', error);
      results.push({
        ...result,
        action: 'failed',
        error: { code: failure.code, message: failure.message },
      });
    }
  }
  return results;
}

/**
 * The run's problems from the check: a change asked for that did not happen.
 *
 * @example
 * amiPublicAccessProblems(results); // ['eu-west-1: block public access for AMIs could not be turned on (...)']
 */
export function amiPublicAccessProblems(results: readonly AmiPublicAccessResult[]): string[] {
  return results.flatMap((r) =>
    r.action === 'failed'
      ? [
          `${r.region}: block public access for AMIs could not be turned on (${r.error?.code ?? 'error'}: ${r.error?.message ?? ''})`,
        ]
      : r.action === 'not-allowed'
        ? [
            `${r.region}: block public access for AMIs is off and an organization's declarative policy manages it; ask its owner`,
          ]
        : [],
  );
}
