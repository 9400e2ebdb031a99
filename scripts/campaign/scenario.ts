/**
 * The shape of a campaign scenario: what it runs against (its context: the fault proxy,
 * moto straight, the history, the handlers), what it measures (its tally) and its checks.
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import type { FaultProxy } from '../../harness/faultProxy.ts';
import type { RunHistoryGateway } from '../../lib/aws/RunHistoryGateway.ts';

/** A function's Lambda handler, as the scenarios call it. */
export type Handler = (event: unknown, context: Context) => Promise<unknown>;
/** The functions a scenario calls (functions/<name>.ts). */
export type FunctionName = 'backup' | 'retention' | 'amis' | 'copy' | 'ops';

/** What a scenario runs against, in its child process. */
export interface ScenarioContext {
  readonly proxy: FaultProxy;
  /** moto's endpoint, behind the proxy. */
  readonly target: string;
  /** The scenario's own region. */
  readonly region: string;
  /** Straight to moto. */
  readonly ec2: EC2Client;
  readonly doc: DynamoDBDocumentClient;
  readonly history: RunHistoryGateway;
  readonly table: string;
  readonly deployment: string;
  handler(name: FunctionName): Promise<Handler>;
}

/** What one scenario measured. */
export interface Tally {
  scenario: string;
  faults: number;
  faultKinds: Record<string, number>;
  calls: number;
  backupsExpected: number;
  backupsMade: number;
  backupsReported: number;
  duplicates: number;
  /** Duplicates EC2 refused to delete, reported failed by a run made partial. */
  duplicatesReported: number;
  deletionsDue: number;
  deletionsDone: number;
  deletionsReported: number;
  wrongDeletions: number;
  historyExpected: number;
  historyFound: number;
  checks: { name: string; ok: boolean }[];
  seconds: number;
  error?: string;
}

/** One scenario: its name, its own region, its environment, and what it runs and measures. */
export interface Scenario {
  readonly name: string;
  readonly region: string;
  readonly env?: Readonly<Record<string, string>>;
  run(ctx: ScenarioContext, tally: Tally): Promise<void>;
}

/** Records a named check of a scenario. */
export const check = (tally: Tally, name: string, ok: boolean) => tally.checks.push({ name, ok });

/**
 * A tally with nothing measured yet.
 *
 * @example
 * const tally = emptyTally('races');
 */
export function emptyTally(scenario: string): Tally {
  return {
    scenario,
    faults: 0,
    faultKinds: {},
    calls: 0,
    backupsExpected: 0,
    backupsMade: 0,
    backupsReported: 0,
    duplicates: 0,
    duplicatesReported: 0,
    deletionsDue: 0,
    deletionsDone: 0,
    deletionsReported: 0,
    wrongDeletions: 0,
    historyExpected: 0,
    historyFound: 0,
    checks: [],
    seconds: 0,
  };
}
