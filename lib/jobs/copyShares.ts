import pLimit from 'p-limit';
import { toAwsCallError } from '../aws/errors.ts';
import { planShare } from '../domain/copyPolicy.ts';
import type { TagMap } from '../domain/tagPolicy.ts';
import type { CopyRun, ShareResult } from './copyContract.ts';
import type { CopySources } from './copySources.ts';

/** At most this many shares looked at and changed at once. */
const SHARES_IN_FLIGHT = 5;

/** A snapshot or AMI to share, as the share plan reads it. */
interface Shareable {
  readonly kind: 'snapshot' | 'image';
  readonly id: string;
  readonly tags: TagMap;
  /** Encrypted with the AWS-managed aws/ebs key: it cannot be shared. */
  readonly defaultKey: boolean;
  readonly encrypted: boolean;
}

/**
 * Shares each managed snapshot and AMI whose instance carries `snapkeeper:share-with`
 * with exactly the accounts it lists: grants the missing ones, revokes the others, never
 * shares with everyone. A resource encrypted with the default aws/ebs key is `blocked`
 * (revocations still go); a dry run plans only. Five at a time.
 *
 * @example
 * const shares = await shareBackups(sources, run);
 */
export async function shareBackups(sources: CopySources, run: CopyRun): Promise<ShareResult[]> {
  const { keys } = run.deps.config;
  const shares: ShareResult[] = [];
  const limit = pLimit(SHARES_IN_FLIGHT);
  const shared: Shareable[] = [
    ...sources.snapshots.map((s) => ({
      kind: 'snapshot' as const,
      id: s.snapshotId,
      tags: s.tags,
      defaultKey: s.encrypted === true && (!s.kmsKeyId || s.kmsKeyId.includes('alias/aws/ebs')),
      encrypted: s.encrypted === true,
    })),
    ...sources.images.map((i) => ({
      kind: 'image' as const,
      id: i.imageId,
      tags: i.tags,
      defaultKey: false,
      encrypted: false,
    })),
  ].filter(
    (r) => sources.instances.get(r.tags[keys.instanceId] ?? '')?.tags[keys.shareWith] !== undefined,
  );
  await Promise.all(
    shared.map((resource) =>
      limit(async () => {
        const wanted = sources.policies.get(resource.tags[keys.instanceId] ?? '')?.shareWith ?? [];
        await shareOne(resource, wanted, run, shares);
      }),
    ),
  );
  return shares;
}

/**
 * Shares one resource with exactly `wanted`, adding its entries to `results` as they
 * happen (none when nothing changes).
 */
async function shareOne(
  resource: Shareable,
  wanted: readonly string[],
  run: CopyRun,
  results: ShareResult[],
): Promise<void> {
  const { sharing } = run.deps;
  const entry = (
    outcome: ShareResult['outcome'],
    added: readonly string[],
    removed: readonly string[],
    reason?: string,
  ): ShareResult => ({
    resourceId: resource.id,
    added,
    removed,
    outcome,
    ...(reason === undefined ? {} : { reason }),
  });
  try {
    const grants =
      resource.kind === 'snapshot'
        ? await sharing.snapshotGrants(resource.id)
        : await sharing.imageGrants(resource.id);
    const plan = planShare(wanted, grants.accounts, resource.defaultKey);
    if (plan.add.length === 0 && plan.remove.length === 0 && !plan.blocked) return;
    if (plan.blocked) {
      results.push(entry('blocked', [], [], plan.blocked));
      if (plan.remove.length === 0) return;
    }
    if (run.input.dryRun) {
      results.push(entry('planned', plan.add, plan.remove));
      return;
    }
    if (resource.kind === 'snapshot') await sharing.changeSnapshotGrants(resource.id, plan);
    else await sharing.changeImageGrants(resource.id, plan);
    results.push(entry('changed', plan.add, plan.remove));
  } catch (error) {
    const failure = toAwsCallError('ModifyAttribute', error);
    // The AWS-managed aws/ebs key shows as a plain key ARN: when sharing an encrypted
    // snapshot fails, name the likely cause and its fix.
    const reason = resource.encrypted
      ? `${failure.message}; if it is encrypted with the default aws/ebs key it cannot be shared: copy it with a customer-managed KMS key (snapkeeper:copy-kms-key) and share the copy`
      : failure.message;
    results.push(entry('failed', [], [], reason));
  }
}
