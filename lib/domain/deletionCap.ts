/**
 * A per-run cap on deletions: an absolute number, or a percentage of the managed
 * resources in scope. Above it a run deletes nothing and fails loudly, so that a
 * mis-set tag or schedule cannot wipe out a fleet's backups in one night.
 */
export type DeletionCap =
  | { readonly kind: 'count'; readonly value: number }
  | { readonly kind: 'percent'; readonly value: number };

/** A percentage cap never goes below this many deletions, so small fleets can rotate. */
export const PERCENT_CAP_FLOOR = 10;

/**
 * Parses `50` or `25%`.
 *
 * @returns undefined when the text is not a cap.
 * @example
 * parseDeletionCap('25%'); // { kind: 'percent', value: 25 }
 */
export function parseDeletionCap(text: string): DeletionCap | undefined {
  const trimmed = text.trim();
  const percent = /^(\d{1,3}(?:\.\d+)?)%$/.exec(trimmed);
  if (percent?.[1]) {
    const value = Number(percent[1]);
    return value > 0 && value <= 100 ? { kind: 'percent', value } : undefined;
  }
  if (/^\d+$/.test(trimmed)) {
    const value = Number(trimmed);
    return value <= 1_000_000 ? { kind: 'count', value } : undefined;
  }
  return undefined;
}

/**
 * The number of deletions allowed in one run.
 *
 * @example
 * deletionLimit({ kind: 'percent', value: 25 }, 400); // 100
 */
export function deletionLimit(cap: DeletionCap, managedInScope: number): number {
  if (cap.kind === 'count') return cap.value;
  return Math.max(PERCENT_CAP_FLOOR, Math.ceil((cap.value * managedInScope) / 100 - 1e-9));
}

/** The verdict on a run's planned deletions. */
export interface CapCheck {
  readonly limit: number;
  readonly planned: number;
  readonly exceeded: boolean;
  readonly reason?: string;
}

/**
 * Checks planned deletions against the cap, or against a one-run override.
 *
 * @example
 * checkDeletionCap(120, 400, { kind: 'count', value: 50 }).exceeded; // true
 */
export function checkDeletionCap(
  planned: number,
  managedInScope: number,
  cap: DeletionCap,
  override?: number,
): CapCheck {
  const limit = override ?? deletionLimit(cap, managedInScope);
  if (planned <= limit) return { limit, planned, exceeded: false };
  const source =
    override !== undefined
      ? `the maxDeletions override of ${override}`
      : cap.kind === 'percent'
        ? `MAX_DELETIONS=${cap.value}% (${limit} of ${managedInScope} managed in scope)`
        : `MAX_DELETIONS=${cap.value}`;
  return {
    limit,
    planned,
    exceeded: true,
    reason: `${planned} deletions planned, above ${source}: nothing deleted. Check the plan (dryRun), then lift the cap for one run with {"maxDeletions": ${planned}, "confirm": true}`,
  };
}
