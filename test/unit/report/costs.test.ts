/** The coverage page's costs (issue 22, part 1): a column per instance and the deployment's line. */
import { describe, expect, it } from 'vitest';
import {
  type CoverageData,
  type CoverageInstance,
  renderCoverageHtml,
} from '../../../lib/report/htmlReport.ts';

function instance(overrides: Partial<CoverageInstance> & { instanceId: string }): CoverageInstance {
  return {
    name: 'web-1',
    schedules: ['daily'],
    rpo: [{ schedule: 'daily', intervalHours: 24, newestAgeHours: 4, met: true }],
    recoveryPoints: 7,
    images: 0,
    neverBackedUp: false,
    ...overrides,
  };
}

function data(overrides: Partial<CoverageData> = {}): CoverageData {
  return {
    generatedAt: '2026-11-15T22:30:00.000Z',
    deployment: 'prod',
    region: 'us-east-1',
    days: 14,
    recovery: {
      instances: [
        instance({
          instanceId: 'i-1',
          fullBytes: 2 ** 31,
          uniqueBytes: 2 ** 30,
          estimatedMonthlyCost: 0.05,
        }),
        instance({ instanceId: 'i-2', name: 'db-1' }),
      ],
      orphaned: [],
    },
    runs: [],
    blocked: [],
    blockedGiB: 0,
    blockedNote: '',
    publicFindings: [],
    ...overrides,
  };
}

const COSTS = {
  currency: 'USD',
  priceTable: 'aws-published:us-east-1',
  priceSource: 'AWS EBS user guide',
  deployment: { estimatedMonthlyCost: 0.05, unmeasured: 3 },
  note: 'Estimated from sizes measured once per snapshot.',
};

describe('Function: renderCoverageHtml (costs)', () => {
  it("shows each instance's estimated monthly cost, and — when it has none", () => {
    // Act
    const page = renderCoverageHtml(data({ costs: COSTS }));

    // Assess
    expect(page).toContain('Est. cost a month');
    expect(page).toContain('<td class="num cost">0.0500 USD</td>');
    expect(page).toContain('<td class="num cost">—</td>');
  });

  it('names the price table and the total under the instances, with the unmeasured count', () => {
    // Act
    const page = renderCoverageHtml(data({ costs: COSTS }));

    // Assess
    expect(page).toContain('data-price-table="aws-published:us-east-1"');
    expect(page).toContain(
      '<strong>0.0500 USD</strong> a month for the deployment (3 snapshots not measured yet)',
    );
  });

  it('flags a rejected price table', () => {
    // Act
    const page = renderCoverageHtml(
      data({
        costs: {
          ...COSTS,
          priceTableProblem: 'Environment variable SNAPSHOT_PRICES is not valid JSON',
        },
      }),
    );

    // Assess
    expect(page).toContain('price table rejected');
    expect(page).toContain('SNAPSHOT_PRICES is not valid JSON');
  });

  it('shows no cost line when the report carried no costs', () => {
    // Act
    const page = renderCoverageHtml(data());

    // Assess
    expect(page).not.toContain('class="sub costs"');
  });
});
