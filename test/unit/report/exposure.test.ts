import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../../../lib/aws/RunHistoryGateway.ts';
import { exposureFrom } from '../../../lib/report/coverageData.ts';

function run(overrides: Partial<RunRecord> & Pick<RunRecord, 'runId' | 'job'>): RunRecord {
  return {
    deployment: 'prod',
    trigger: 'schedule',
    dryRun: false,
    startedAt: '2026-11-23T07:00:01Z',
    endedAt: '2026-11-23T07:00:09Z',
    status: 'succeeded',
    ...overrides,
  };
}

const finding = (resourceId: string, managed: boolean, madePrivate: boolean) => ({
  resourceId,
  kind: 'snapshot',
  managed,
  madePrivate,
});

describe('Function: exposureFrom', () => {
  it('takes the findings of the newest finished copy run, newest first as the history lists runs', () => {
    // Prepare
    const records = [
      run({ runId: 'backup-1', job: 'backup' }),
      run({
        runId: 'copy-new',
        job: 'copy',
        status: 'partial',
        report: JSON.stringify({
          publicFindings: [finding('snap-1', true, false), finding('snap-2', false, false)],
        }),
      }),
      run({ runId: 'copy-old', job: 'copy', report: JSON.stringify({ publicFindings: [] }) }),
    ];

    // Act
    const exposure = exposureFrom(records);

    // Assess
    expect(exposure.exposureCheckedBy).toEqual({ runId: 'copy-new', at: '2026-11-23T07:00:09Z' });
    expect(exposure.publicFindings).toEqual([
      {
        resourceId: 'snap-1',
        kind: 'public snapshot',
        detail: 'made by this deployment; still public',
      },
      {
        resourceId: 'snap-2',
        kind: 'public snapshot',
        detail: 'not made by snapkeeper; still public',
      },
    ]);
  });

  it('says a finding was made private again', () => {
    const exposure = exposureFrom([
      run({
        runId: 'c',
        job: 'copy',
        report: JSON.stringify({ publicFindings: [finding('snap-3', true, true)] }),
      }),
    ]);

    expect(exposure.publicFindings[0]?.detail).toBe(
      'made by this deployment; made private again (MAKE_PRIVATE)',
    );
  });

  it('skips dry, running and failed copy runs: they did not look, or did not finish looking', () => {
    const exposure = exposureFrom([
      run({ runId: 'dry', job: 'copy', dryRun: true }),
      run({ runId: 'live', job: 'copy', status: 'running' }),
      run({ runId: 'broken', job: 'copy', status: 'failed' }),
    ]);

    expect(exposure).toEqual({ publicFindings: [] });
  });

  it('keeps the count of a report stored without its list, as one finding saying where to look', () => {
    const exposure = exposureFrom([
      run({
        runId: 'copy-big',
        job: 'copy',
        counts: { publicFindings: 412 },
        report: JSON.stringify({ truncated: 'the full report was too large to store' }),
      }),
    ]);

    expect(exposure.publicFindings).toEqual([
      {
        resourceId: 'copy-big',
        kind: '412 public backups',
        detail:
          'the list was too long to keep with the run: npm run history -- --run copy-big --json',
      },
    ]);
  });

  it('finds nothing, and names no run, when no copy run is among the page’s runs', () => {
    expect(exposureFrom([run({ runId: 'b', job: 'backup' })])).toEqual({ publicFindings: [] });
  });
});

describe('Function: exposureFrom (block public access for AMIs)', () => {
  it('takes the block public access for AMIs the newest finished copy run read, per region', () => {
    // Prepare
    const records = [
      run({
        runId: 'copy-new',
        job: 'copy',
        report: JSON.stringify({
          publicFindings: [],
          amiBlockPublicAccess: [
            { region: 'eu-west-1', state: 'block-new-sharing', managedBy: 'account' },
            { region: 'us-east-1', state: 'unknown', reason: 'UnauthorizedOperation: denied' },
          ],
        }),
      }),
    ];

    // Act
    const exposure = exposureFrom(records);

    // Assess
    expect(exposure.amiBlockPublicAccess).toEqual([
      { region: 'eu-west-1', state: 'block-new-sharing' },
      { region: 'us-east-1', state: 'unknown', detail: 'UnauthorizedOperation: denied' },
    ]);
  });
});
