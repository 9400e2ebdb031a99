import type { TagMap } from './tagPolicy.ts';

/** A Recycle Bin retention rule for AMIs, in domain terms. */
export interface RecycleBinRule {
  readonly identifier: string;
  readonly retentionDays: number;
  /** Tag-level rule: covers images with any of these tags. Empty: a region-level rule. */
  readonly resourceTags: readonly { key: string; value?: string | undefined }[];
  /** Region-level rule: images with any of these tags are not covered. */
  readonly excludeTags: readonly { key: string; value?: string | undefined }[];
}

/**
 * The Recycle Bin rule that would keep an image after deregistration, if any. While
 * an image can still be restored from the bin, its snapshots must stay.
 *
 * @example
 * recycleBinRuleFor({ team: 'web' }, rules)?.retentionDays; // 7
 */
export function recycleBinRuleFor(
  imageTags: TagMap,
  rules: readonly RecycleBinRule[],
): RecycleBinRule | undefined {
  const has = (tag: { key: string; value?: string | undefined }) =>
    Object.hasOwn(imageTags, tag.key) &&
    (tag.value === undefined || tag.value === '' || imageTags[tag.key] === tag.value);
  return rules.find((rule) =>
    rule.resourceTags.length > 0 ? rule.resourceTags.some(has) : !rule.excludeTags.some(has),
  );
}
