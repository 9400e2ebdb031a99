/**
 * What the run-history table holds, as its gateways read and write it: runs, action
 * items, slot claims, and the options of the read-side queries.
 *
 * The one place the history gateways take the job-side record types from
 * (`ActionRecord`, `CreationLedger`): when those move, only these imports change.
 */
import type { ActionRecord, CreationLedger, RunDescription } from '../../domain/runRecords.ts';

export type { ActionRecord, CreationLedger };

/** A run as the history table holds it. */
export interface RunRecord extends RunDescription {
  readonly trigger: string;
  readonly endedAt?: string | undefined;
  readonly leaseRenewedAt?: string | undefined;
  /** What is left, for an `incomplete` run. */
  readonly remaining?: readonly string[] | undefined;
  /** The run's report as JSON (cut to fit an item), returned to duplicate deliveries. */
  readonly report?: string | undefined;
  readonly expiresAt?: number | undefined;
}

/** An action as the history table holds it. */
export interface ActionItem extends ActionRecord {
  readonly at: string;
  readonly sequence: number;
  readonly instanceId?: string | undefined;
  readonly volumeId?: string | undefined;
}

/** One step of an action as the journal takes it: the time and the resource's owners may be given. */
export type JournalEntry = ActionRecord & { at?: string; instanceId?: string; volumeId?: string };

/** Who holds a slot. */
export interface SlotClaim {
  readonly runId: string;
  readonly claimedAt: string;
}

/** Options of the history queries. */
export interface QueryOptions {
  /** ISO time: only items at or after it. */
  readonly since?: string | undefined;
  readonly limit?: number | undefined;
}
