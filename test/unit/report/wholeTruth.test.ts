import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../../../lib/aws/RunHistoryGateway.ts';
import { formatAge, recoveryLine } from '../../../lib/domain/recoveryReport.ts';
import { parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import {
  copyRegions,
  isRejectedPayload,
  taggedCopyRegions,
  toCoverageRun,
} from '../../../lib/report/coverageData.ts';
import {
  type CoverageData,
  type CoverageRun,
  renderCoverageHtml,
} from '../../../lib/report/htmlReport.ts';

const keys = tagKeys();
const NOW = '2026-11-15T22:30:00.000Z';

function run(overrides: Partial<CoverageRun> & { runId: string }): CoverageRun {
  return {
    job: 'backup',
    schedule: 'daily',
    trigger: 'schedule',
    dryRun: false,
    status: 'succeeded',
    startedAt: '2026-11-15T03:00:05.000Z',
    totals: { created: 4, deleted: 0, skipped: 0, failed: 0 },
    errors: [],
    ...overrides,
  };
}

function rejected(n: number): CoverageRun {
  return run({
    runId: `20261115T1000${String(n).padStart(2, '0')}Z-0000rej${n}`,
    job: 'ops',
    schedule: undefined,
    trigger: 'console',
    dryRun: true,
    status: 'rejected',
    totals: { created: 0, deleted: 0, skipped: 0, failed: 0 },
    errorSummary: 'InvalidPayload: field "action": "reprot" is not an action',
  });
}

function data(overrides: Partial<CoverageData> = {}): CoverageData {
  return {
    generatedAt: NOW,
    deployment: 'prod',
    region: 'eu-west-1',
    days: 14,
    recovery: {
      instances: [
        {
          instanceId: 'i-0aaaaaaaaaaaaaaa1',
          name: 'web-1',
          schedules: ['daily'],
          newestSnapshot: {
            snapshotId: 'snap-0aaaaaaaaaaaaaaa1',
            createdAt: '2026-11-15T18:30:00.000Z',
            ageHours: 4,
            schedule: 'daily',
          },
          rpo: [{ schedule: 'daily', intervalHours: 24, newestAgeHours: 4, met: true }],
          recoveryPoints: 7,
          images: 0,
          neverBackedUp: false,
        },
      ],
      orphaned: [],
    },
    runs: [],
    blocked: [],
    blockedGiB: 0,
    blockedNote: 'GiB are the sizes of the source volumes.',
    publicFindings: [],
    ...overrides,
  };
}

/** The text of a summary card, by its label. */
function card(page: string, label: string): string {
  const start = page.indexOf(`<div class="card-label">${label}</div>`);
  if (start < 0) throw new Error(`no card ${label}`);
  return page
    .slice(start, page.indexOf('<div class="card">', start + 1))
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

describe('The page tells the whole truth', () => {
  describe('rejected console payloads', () => {
    it('counts rejected payloads apart, never as failed runs', () => {
      // Prepare
      const runs = [1, 2, 3].map(rejected);

      // Act
      const page = renderCoverageHtml(data({ runs }));

      // Assess
      expect(card(page, 'Failed runs')).toBe('Failed runs 0 failed or abandoned');
      expect(card(page, 'Rejected payloads')).toBe(
        'Rejected payloads 3 … rejected console payloads to fix; nothing done',
      );
      expect(page).not.toContain('class="fail-band"');
      expect(page).toContain('data-status="rejected"');
    });

    it('reads a failed console run whose error is InvalidPayload, recorded before the rejected status, as rejected', () => {
      // Prepare
      const legacy: RunRecord = {
        runId: '20261101T100000Z-0000aaaa',
        deployment: 'prod',
        job: 'ops',
        trigger: 'console',
        dryRun: true,
        startedAt: '2026-11-01T10:00:00.000Z',
        status: 'failed',
        errorSummary: 'InvalidPayload: field "action" is missing',
      };

      // Act
      const coverage = toCoverageRun(legacy);

      // Assess
      expect(coverage.status).toBe('rejected');
      expect(isRejectedPayload({ ...legacy, status: 'rejected' })).toBe(true);
      expect(isRejectedPayload({ ...legacy, errorSummary: 'Throttling: slow down' })).toBe(false);
      expect(isRejectedPayload({ ...legacy, job: 'retention' })).toBe(false);
    });
  });

  describe('held AMIs among the blocked deletions', () => {
    it('lists an AMI held by an Auto Scaling group with the group, the template and its version, and does not say no deletion is blocked', () => {
      // Prepare
      const holder =
        'launch template lt-0123 (web-lt) version 2, pinned by Auto Scaling group web-asg';

      // Act
      const page = renderCoverageHtml(
        data({
          blocked: [
            {
              resourceId: 'ami-0aaaaaaaaaaaaaaa1',
              reason: `beyond count 2, but held by ${holder}`,
              heldBy: [holder],
              sizeGiB: 8,
            },
          ],
          blockedGiB: 8,
        }),
      );

      // Assess
      expect(page).not.toContain('No deletion is blocked');
      expect(page).toContain(
        '<tr data-resource-id="ami-0aaaaaaaaaaaaaaa1"><td class="id">ami-0aaaaaaaaaaaaaaa1</td><td class="held-by">launch template lt-0123 (web-lt) version 2, pinned by Auto Scaling group web-asg</td>',
      );
    });
  });

  describe('copies in other regions', () => {
    it('takes the regions instances name in snapkeeper:copy-to, as the copy job reads them', () => {
      // Act
      const tagged = taggedCopyRegions(
        [
          { instanceId: 'i-1', tags: { [keys.copyTo]: 'ap-south-1, us-west-2' } },
          { instanceId: 'i-2', tags: { [keys.copyTo]: 'US-WEST-2' } },
          { instanceId: 'i-3', tags: { [keys.copyTo]: 'eu-west-1' } },
          { instanceId: 'i-4', tags: { [keys.copyTo]: 'mars-north-1x' } },
        ],
        keys,
        'eu-west-1',
      );

      // Assess
      expect(tagged).toEqual(['ap-south-1', 'us-west-2']);
      expect(
        copyRegions(
          {
            catalog: parseScheduleCatalog(
              [{ name: 'daily', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 7 }],
              'daily',
            ),
            copyKmsKeys: {},
            region: 'eu-west-1',
          },
          tagged,
        ),
      ).toEqual(['ap-south-1', 'us-west-2']);
    });
  });

  describe('the age of what is missing', () => {
    it('prints "none" for a missing AMI or snapshot, never "- h"', () => {
      // Prepare
      const instance = {
        instanceId: 'i-0aaaaaaaaaaaaaaa1',
        name: 'web-1',
        recoveryPoints: 3,
        newestSnapshot: {
          snapshotId: 'snap-1',
          createdAt: NOW,
          ageHours: 2.1,
          schedule: 'daily',
        },
        newestImage: undefined,
        rpo: [{ schedule: 'daily', intervalHours: 24, newestAgeHours: 2.1, met: true }],
      };

      // Act
      const line = recoveryLine(instance);

      // Assess
      expect(line).toBe(
        'web-1      3 recovery points, newest snapshot 2.1 h, newest AMI none; RPO daily met (2.1 h)',
      );
      expect(line).not.toContain('- h');
      expect(formatAge(undefined)).toBe('none');
      expect(formatAge(0)).toBe('0 h');
    });

    it('shows "none" in the page’s newest-AMI cell for an instance without an AMI', () => {
      // Act
      const page = renderCoverageHtml(data());

      // Assess
      expect(page).toContain(
        '<td class="newest-image"><span class="sub no-image">none</span></td>',
      );
    });
  });
});
