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

function page(instances: CoverageInstance[]): string {
  const data: CoverageData = {
    generatedAt: '2026-11-15T22:30:00.000Z',
    deployment: 'prod',
    region: 'eu-west-1',
    days: 14,
    recovery: { instances, orphaned: [] },
    runs: [],
    blocked: [],
    blockedGiB: 0,
    blockedNote: '',
    publicFindings: [],
  };
  return renderCoverageHtml(data);
}

function cellOf(html: string, instanceId: string): string {
  const row = html.slice(html.indexOf(`data-instance-id="${instanceId}"`));
  return row.slice(row.indexOf('<td class="restore-test"'), row.indexOf('</tr>'));
}

describe('Coverage page: the last restore test per instance', () => {
  it('shows the last successful test and its time to available', () => {
    const html = page([
      instance({
        instanceId: 'i-0aaaaaaaaaaaaaaa1',
        restoreTest: {
          neverTested: false,
          lastTestedAt: '2026-11-15T05:00:00.000Z',
          lastOutcome: 'passed',
          lastPassedAt: '2026-11-15T05:00:00.000Z',
          lastPassedSeconds: 42.5,
        },
      }),
    ]);

    const cell = cellOf(html, 'i-0aaaaaaaaaaaaaaa1');
    expect(cell).toContain('data-restore-test="passed"');
    expect(cell).toContain('42.5 s to available');
    expect(cell).toContain('2026-11-15');
  });

  it('flags an instance never tested', () => {
    const html = page([
      instance({ instanceId: 'i-0aaaaaaaaaaaaaaa1', restoreTest: { neverTested: true } }),
    ]);

    expect(cellOf(html, 'i-0aaaaaaaaaaaaaaa1')).toContain('never tested');
  });

  it('says when the last test failed, beside the last one that passed', () => {
    const html = page([
      instance({
        instanceId: 'i-0aaaaaaaaaaaaaaa1',
        restoreTest: {
          neverTested: false,
          lastTestedAt: '2026-11-15T05:00:00.000Z',
          lastOutcome: 'failed',
          lastPassedAt: '2026-11-08T05:00:00.000Z',
          lastPassedSeconds: 30,
        },
      }),
    ]);

    const cell = cellOf(html, 'i-0aaaaaaaaaaaaaaa1');
    expect(cell).toContain('data-restore-test="failed"');
    expect(cell).toContain('last test failed');
    expect(cell).toContain('30 s to available');
  });

  it('shows — when the history could not say', () => {
    const html = page([instance({ instanceId: 'i-0aaaaaaaaaaaaaaa1' })]);

    expect(cellOf(html, 'i-0aaaaaaaaaaaaaaa1')).toBe('<td class="restore-test">—</td>\n');
  });
});
