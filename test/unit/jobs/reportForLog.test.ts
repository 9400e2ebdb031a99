import { describe, expect, it } from 'vitest';
import { MAX_LOGGED_REPORT_BYTES, reportForLog } from '../../../lib/jobs/runReport.ts';

describe('Function: reportForLog', () => {
  it('logs a report that fits a log event as it is', () => {
    // Prepare
    const report = { runId: 'r1', status: 'succeeded', volumes: [{ volumeId: 'vol-1' }] };

    // Act / Assess
    expect(reportForLog(report)).toBe(report);
  });

  it('logs a report too large for one log event as its fields, the first 25 of each list and what was left out', () => {
    // Prepare: 20,000 volumes, megabytes of JSON
    const volumes = Array.from({ length: 20_000 }, (_, i) => ({
      volumeId: `vol-${String(i).padStart(17, '0')}`,
      kept: [{ snapshotId: `snap-${i}`, reason: 'within the newest 7' }],
    }));
    const report = { runId: 'r1', status: 'partial', counts: { volumes: 20_000 }, volumes };

    // Act
    const logged = reportForLog(report) as Record<string, unknown>;

    // Assess
    expect(Buffer.byteLength(JSON.stringify(logged))).toBeLessThan(MAX_LOGGED_REPORT_BYTES);
    expect(logged).toMatchObject({ runId: 'r1', status: 'partial', counts: { volumes: 20_000 } });
    expect(logged.volumes).toEqual(volumes.slice(0, 25));
    expect(logged.logged).toMatch(/^summary of a \d+ KB report: 19975 more volumes left out/);
    expect(report.volumes).toHaveLength(20_000); // the report itself is untouched
  });
});
