/**
 * The data shapes of Systems Manager Run Command that the SSM gateway and the jobs both
 * use (issue 21, part 1): what is sent to one instance, and where its invocation stands.
 */

/** One Run Command on one instance. */
export interface RunCommandRequest {
  readonly instanceId: string;
  readonly document: string;
  readonly documentVersion?: string | undefined;
  readonly parameters: Readonly<Record<string, readonly string[]>>;
  /** Seconds SSM waits for the agent to pick the command up before it gives up (min 30). */
  readonly deliveryTimeoutSeconds: number;
  readonly comment: string;
}

/** Where a command invocation stands, from GetCommandInvocation. */
export interface CommandInvocationState {
  /** `pending` until a final state; `missing` while SSM does not list it yet (eventual consistency). */
  readonly state: 'pending' | 'missing' | 'success' | 'failed' | 'timed-out' | 'cancelled';
  /** SSM's own `Status` / `StatusDetails`, e.g. `Failed` / `Undeliverable`. */
  readonly detail: string;
  /** The first 500 characters of the script's error output, when it failed. */
  readonly output?: string | undefined;
}
