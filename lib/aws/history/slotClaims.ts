/**
 * Slot claims: which run holds one schedule slot of one job (`SLOT#…`, `CLAIM`), taken
 * with a conditional write so that two deliveries of a slot get one winner, replaced when
 * lapsed, and moved from a dead run to the one that resumes it.
 */
import { type SlotKey, slotKeys } from '../../domain/runHistory.ts';
import type { SlotClaim } from './records.ts';
import type { HistoryTable } from './table.ts';

/** What claiming a slot answers: claimed, or who holds it. */
export type SlotClaimOutcome = { claimed: true } | { claimed: false; holder: SlotClaim };

/**
 * The slot claims of the history table.
 *
 * @example
 * const claims = new SlotClaims(table);
 * const claim = await claims.claimSlot({ job: 'backup', schedule: 'daily', slot }, runId, now);
 */
export class SlotClaims {
  readonly #table: HistoryTable;

  public constructor(table: HistoryTable) {
    this.#table = table;
  }

  /**
   * Claims a slot for a run with a conditional write. Returns the current holder when
   * another run has it.
   *
   * @example
   * const claim = await claims.claimSlot({ job: 'backup', schedule: 'daily', slot }, runId, now);
   */
  public async claimSlot(
    slot: SlotKey,
    runId: string,
    now: Date,
    options: { readonly lapsedBefore?: Date | undefined } = {},
  ): Promise<SlotClaimOutcome> {
    // `lapsedBefore`: a claim made before it has lapsed and is replaced in the same
    // conditional write, so two racing claimers still get one winner.
    const lapsed = options.lapsedBefore;
    const claimed = await this.#table.putIf({
      Item: {
        ...slotKeys(slot),
        type: 'slot',
        ...slot,
        runId,
        claimedAt: now.toISOString(),
        expiresAt: this.#table.expiresAt(now),
      },
      ...(lapsed
        ? {
            ConditionExpression: 'attribute_not_exists(PK) OR claimedAt < :lapsed',
            ExpressionAttributeValues: { ':lapsed': lapsed.toISOString() },
          }
        : { ConditionExpression: 'attribute_not_exists(PK)' }),
    });
    if (claimed) return { claimed: true };
    // The holder may have gone (its claim expired) between the write and this read: claim again.
    const holder = await this.getSlotClaim(slot);
    if (!holder) return this.claimSlot(slot, runId, now, options);
    return { claimed: false, holder };
  }

  /**
   * Moves a slot from a dead or failed run to a new one, only if `fromRunId` still holds it.
   *
   * @returns false when someone else took it first.
   * @example
   * const mine = await claims.takeOverSlot(slot, deadRunId, runId, now);
   */
  public async takeOverSlot(
    slot: SlotKey,
    fromRunId: string,
    toRunId: string,
    now: Date,
  ): Promise<boolean> {
    const moved = await this.#table.updateIf({
      Key: slotKeys(slot),
      UpdateExpression: 'SET runId = :to, claimedAt = :now, previousRunId = :from',
      ConditionExpression: 'runId = :from',
      ExpressionAttributeValues: { ':to': toRunId, ':from': fromRunId, ':now': now.toISOString() },
    });
    return moved !== false;
  }

  /**
   * The run holding a slot, if any (strongly consistent).
   *
   * @example
   * const holder = await claims.getSlotClaim(slot);
   */
  public async getSlotClaim(slot: SlotKey): Promise<SlotClaim | undefined> {
    const item = await this.#table.get(slotKeys(slot));
    return item ? { runId: String(item.runId), claimedAt: String(item.claimedAt) } : undefined;
  }
}
