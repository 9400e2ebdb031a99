/**
 * A run-events port that records the "run finished" summaries a job publishes, for the
 * jobs' unit tests; set `failure` to make publishing fail.
 */
import type { RunEventsPort, RunSummary } from '../../lib/jobs/slotRun.ts';

/**
 * Records each published summary, or throws `failure` when it is set.
 *
 * @example
 * const events = new RecordingEvents();
 * events.failure = sdkError('ThrottlingException', 'Rate exceeded');
 * await runSlot({ ...deps, events });
 * expect(events.published).toEqual([]);
 */
export class RecordingEvents implements RunEventsPort {
  public readonly published: RunSummary[] = [];
  public failure: unknown;

  public async publishRunFinished(summary: RunSummary): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    this.published.push(summary);
  }
}
