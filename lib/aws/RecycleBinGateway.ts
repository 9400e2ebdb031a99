import { GetRuleCommand, paginateListRules, RbinClient } from '@aws-sdk/client-rbin';
import type { SnapkeeperConfig } from '../config/environment.ts';
import type { RecycleBinRule } from '../domain/recycleBin.ts';
import { recordCalls } from './callRecorder.ts';
import { clientSettings } from './clients.ts';
import { toAwsCallError } from './errors.ts';

/**
 * Recycle Bin rules for AMIs (the `rbin` service).
 *
 * @example
 * const rules = await new RecycleBinGateway(new RbinClient({})).imageRules();
 */
export class RecycleBinGateway {
  readonly #client: RbinClient;

  public constructor(client: RbinClient) {
    this.#client = client;
  }

  /**
   * Every rule that retains EC2 images, tag-level and region-level.
   *
   * @example
   * const rules = await recycleBin.imageRules();
   */
  public async imageRules(): Promise<RecycleBinRule[]> {
    const rules: RecycleBinRule[] = [];
    try {
      const pages = paginateListRules(
        { client: this.#client, pageSize: 100 },
        { ResourceType: 'EC2_IMAGE' },
      );
      for await (const page of pages) {
        for (const summary of page.Rules ?? []) {
          if (!summary.Identifier) continue;
          // The summary lacks the rule's tags; a rule whose exclusions this client cannot
          // read is taken to cover every image (the side that keeps snapshots).
          const rule = await this.#client.send(
            new GetRuleCommand({ Identifier: summary.Identifier }),
          );
          if (rule.Status && rule.Status !== 'available') continue;
          rules.push({
            identifier: summary.Identifier,
            retentionDays: rule.RetentionPeriod?.RetentionPeriodValue ?? 0,
            resourceTags: (rule.ResourceTags ?? []).map((t) => ({
              key: t.ResourceTagKey ?? '',
              value: t.ResourceTagValue,
            })),
            excludeTags: [],
          });
        }
      }
    } catch (error) {
      throw toAwsCallError('ListRules', error);
    }
    return rules;
  }
}

/**
 * Builds the Recycle Bin gateway for a configuration.
 *
 * @example
 * const recycleBin = createRecycleBinGateway(config);
 */
export function createRecycleBinGateway(
  config: Pick<SnapkeeperConfig, 'region' | 'maxAttempts' | 'requestTimeoutMs' | 'endpoint'>,
): RecycleBinGateway {
  return new RecycleBinGateway(recordCalls(new RbinClient(clientSettings(config))));
}
