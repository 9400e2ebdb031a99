/**
 * A metrics port that records the counts a job emits, in order, for the jobs' unit tests.
 */
import type { MetricsPort } from '../../lib/jobs/ports.ts';

/**
 * Records each `count(name, value)` as a `[name, value]` pair, in order.
 *
 * @example
 * const metrics = new RecordingMetrics();
 * await runBackup({ ...deps, metrics });
 * expect(metrics.valueOf('SnapshotsCreated')).toBe(3);
 */
export class RecordingMetrics implements MetricsPort {
  public readonly counts: [string, number][] = [];

  public count(name: string, value: number): void {
    this.counts.push([name, value]);
  }

  /** The first value counted under `name` (undefined when none was). */
  public valueOf(name: string): number | undefined {
    return this.counts.find(([n]) => n === name)?.[1];
  }
}
