import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../../../lib/aws/RunHistoryGateway.ts';
import type { ScheduleRpo } from '../../../lib/domain/recoveryReport.ts';
import { runTotals, toCoverageRun } from '../../../lib/report/coverageData.ts';
import {
  type CoverageData,
  type CoverageInstance,
  type CoverageRun,
  escapeHtml,
  renderCoverageHtml,
  rpoLevel,
} from '../../../lib/report/htmlReport.ts';

const HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>';
const NOW = '2026-11-15T22:30:00.000Z';

function instance(overrides: Partial<CoverageInstance> & { instanceId: string }): CoverageInstance {
  return {
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
    ...overrides,
  };
}

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

const FAILED_RUN = run({
  runId: '20261115T040005Z-0000dead',
  job: 'retention',
  status: 'failed',
  startedAt: '2026-11-15T04:00:05.000Z',
  totals: { created: 0, deleted: 0, skipped: 0, failed: 0 },
  errorSummary: 'DeletionCapExceeded: 3 deletions planned, above the maxDeletions override of 0',
  errors: [{ resource: 'vol-0aaaaaaaaaaaaaaa1', code: 'failing', message: 'no backup for 3 days' }],
});

function data(overrides: Partial<CoverageData> = {}): CoverageData {
  return {
    generatedAt: NOW,
    deployment: 'prod',
    region: 'eu-west-1',
    days: 14,
    recovery: {
      instances: [
        instance({ instanceId: 'i-0aaaaaaaaaaaaaaa1', name: 'web-1' }),
        instance({
          instanceId: 'i-0bbbbbbbbbbbbbbb2',
          name: 'db-1',
          schedules: ['daily', 'weekly'],
          rpo: [
            { schedule: 'daily', intervalHours: 24, newestAgeHours: 20, met: true },
            { schedule: 'weekly', intervalHours: 168, newestAgeHours: 40, met: true },
          ],
          newestImage: {
            imageId: 'ami-0bbbbbbbbbbbbbbb2',
            createdAt: '2026-11-15T02:30:00.000Z',
            ageHours: 20,
            schedule: 'daily',
          },
          images: 3,
          recoveryPoints: 9,
        }),
        instance({
          instanceId: 'i-0ccccccccccccccc3',
          name: 'late-1',
          newestSnapshot: undefined,
          rpo: [{ schedule: 'daily', intervalHours: 24, newestAgeHours: undefined, met: false }],
          recoveryPoints: 0,
          neverBackedUp: true,
        }),
      ],
      orphaned: [],
    },
    runs: [
      FAILED_RUN,
      run({
        runId: '20261115T030005Z-0000beef',
        totals: { created: 10, deleted: 5, skipped: 1, failed: 0 },
      }),
      run({
        runId: '20261114T030005Z-0000cafe',
        startedAt: '2026-11-14T03:00:05.000Z',
        status: 'partial',
        totals: { created: 3, deleted: 0, skipped: 0, failed: 1 },
        errors: [{ resource: 'i-0ccccccccccccccc3', code: 'problem', message: 'dialy' }],
      }),
    ],
    blocked: [
      {
        resourceId: 'snap-0ddddddddddddddd4',
        reason: 'backs an AMI',
        heldBy: ['ami-0bbbbbbbbbbbbbbb2'],
        sizeGiB: 100,
      },
      {
        resourceId: 'snap-0eeeeeeeeeeeeeee5',
        reason: 'in use by a launch template',
        heldBy: ['lt-0123', 'asg web'],
        sizeGiB: 8,
      },
    ],
    blockedGiB: 108,
    blockedNote: 'GiB are the sizes of the source volumes; the bytes freed may be less.',
    publicFindings: [],
    ...overrides,
  };
}

/** The markup of the element with this id (up to its closing tag of the same name). */
function elementById(page: string, id: string): string {
  const start = page.indexOf(`id="${id}"`);
  if (start < 0) throw new Error(`no element with id ${id}`);
  const open = page.lastIndexOf('<', start);
  const tag = /^<([a-z0-9]+)/.exec(page.slice(open))?.[1] ?? '';
  return page.slice(open, page.indexOf(`</${tag}>`, start) + tag.length + 3);
}

/** The markup of the table row (or other element) carrying this data attribute value. */
function rowOf(page: string, attribute: string, value: string, tag = 'tr'): string {
  const start = page.indexOf(`<${tag} ${attribute}="${value}"`);
  if (start < 0) throw new Error(`no <${tag}> with ${attribute}=${value}`);
  return page.slice(start, page.indexOf(`</${tag}>`, start));
}

const text = (markup: string) =>
  markup
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();

const VOID = new Set(['meta', 'br', 'img', 'input', 'link', 'hr', 'col', 'wbr']);

/** Checks that every tag is closed in order; returns the problems found. */
function unbalancedTags(page: string): string[] {
  const stack: string[] = [];
  const problems: string[] = [];
  const body = page.replace(/<style>[\s\S]*?<\/style>/, '<style></style>');
  for (const match of body.matchAll(/<(\/?)([a-zA-Z][\w-]*)([^>]*)>/g)) {
    const [, closing, name = '', rest = ''] = match;
    const tag = name.toLowerCase();
    if (VOID.has(tag) || rest.endsWith('/')) continue;
    if (!closing) stack.push(tag);
    else if (stack.pop() !== tag) problems.push(`</${tag}> at ${match.index}`);
  }
  return [...problems, ...stack.map((t) => `<${t}> never closed`)];
}

describe('Function: renderCoverageHtml', () => {
  describe('as a document', () => {
    it('is one complete HTML document with every tag closed in order', () => {
      const page = renderCoverageHtml(data());

      expect(page.startsWith('<!doctype html>\n<html lang="en">')).toBe(true);
      for (const tag of ['<html', '<head>', '<body>', '<main>', '<title>Backup'])
        expect(page.split(tag)).toHaveLength(2);
      expect(page.trimEnd().endsWith('</html>')).toBe(true);
      expect(unbalancedTags(page)).toEqual([]);
    });

    it('loads nothing: no script, no src, no stylesheet link, only in-page links, a CSP that forbids the network', () => {
      const page = renderCoverageHtml(data());

      expect(page).not.toMatch(/<script|<link|<img|<iframe|@import|url\(/i);
      expect(page).not.toMatch(/\ssrc=/i);
      const hrefs = [...page.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
      expect(hrefs.length).toBeGreaterThan(5);
      expect(hrefs.every((h) => h?.startsWith('#'))).toBe(true);
      expect(page.match(/https?:|\/\/[a-z]/gi) ?? []).toEqual([]);
      expect(page).toContain(
        `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
      );
    });

    it('names the deployment, the region, the time and the days covered', () => {
      const page = renderCoverageHtml(data());

      expect(page).toContain('<title>Backup coverage — prod (eu-west-1)</title>');
      expect(text(page)).toContain('Region eu-west-1 · generated 2026-11-15 22:30 UTC');
      expect(text(page)).toContain('runs of the last 14 days');
    });
  });

  describe('escaping', () => {
    it('escapes every string from tags and the history, so none of them can add markup', () => {
      const hostileRun = run({
        runId: HOSTILE,
        job: HOSTILE,
        schedule: HOSTILE,
        trigger: HOSTILE,
        status: 'failed',
        errorSummary: HOSTILE,
        errors: [{ resource: HOSTILE, code: HOSTILE, message: HOSTILE }],
      });
      const hostile = data({
        deployment: HOSTILE,
        region: HOSTILE,
        recovery: {
          instances: [
            instance({
              instanceId: HOSTILE,
              name: HOSTILE,
              schedules: [HOSTILE],
              rpo: [{ schedule: HOSTILE, intervalHours: 24, newestAgeHours: 1, met: true }],
              newestSnapshot: {
                snapshotId: HOSTILE,
                createdAt: HOSTILE,
                ageHours: 1,
                schedule: HOSTILE,
              },
            }),
          ],
          orphaned: [
            {
              instanceId: HOSTILE,
              name: HOSTILE,
              snapshots: 1,
              sizeGiB: 8,
              newestCreatedAt: NOW,
            },
          ],
        },
        runs: [hostileRun],
        blocked: [{ resourceId: HOSTILE, reason: HOSTILE, heldBy: [HOSTILE], sizeGiB: 1 }],
        blockedNote: HOSTILE,
        publicFindings: [{ resourceId: HOSTILE, kind: HOSTILE, detail: HOSTILE }],
      });

      const page = renderCoverageHtml(hostile);

      expect(page).not.toContain('<script');
      expect(page).not.toContain('<img');
      expect(page).not.toMatch(/"\s*onerror=/);
      expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x');
      expect(unbalancedTags(page)).toEqual([]);
    });

    it('makes element ids and their links of safe characters only, even from a hostile run id', () => {
      const page = renderCoverageHtml(
        data({ runs: [run({ runId: 'x" onmouseover="alert(1)', status: 'failed' })] }),
      );

      expect(page).toContain('id="run-x__onmouseover__alert_1_"');
      expect(page).toContain('href="#run-x__onmouseover__alert_1_"');
      expect(page).not.toContain('onmouseover="');
    });

    it('escapes the five characters that matter in content and quoted attributes', () => {
      expect(escapeHtml(`<a href='x' title="y">&</a>`)).toBe(
        '&lt;a href=&#39;x&#39; title=&quot;y&quot;&gt;&amp;&lt;/a&gt;',
      );
    });
  });

  describe('instances', () => {
    it('shows one row per instance, worst RPO first, with its newest snapshot and AMI, recovery points, AMIs and — for copies', () => {
      const page = renderCoverageHtml(data());

      const rows = [...page.matchAll(/<tr data-instance-id="([^"]+)" data-rpo="([^"]+)"/g)];
      expect(rows.map((m) => [m[1], m[2]])).toEqual([
        ['i-0ccccccccccccccc3', 'missed'],
        ['i-0bbbbbbbbbbbbbbb2', 'due-soon'],
        ['i-0aaaaaaaaaaaaaaa1', 'met'],
      ]);
      const db = rowOf(page, 'data-instance-id', 'i-0bbbbbbbbbbbbbbb2');
      expect(db).toContain('snap-0aaaaaaaaaaaaaaa1');
      expect(db).toContain('ami-0bbbbbbbbbbbbbbb2');
      expect(db).toContain('<td class="num recovery-points">9</td>');
      expect(db).toContain('<td class="num images">3</td>');
      expect(db).toContain('<td class="num copies">—</td>');
    });

    it('shows the number of copies in other regions once the data has it', () => {
      const page = renderCoverageHtml(
        data({
          recovery: {
            instances: [instance({ instanceId: 'i-0aaaaaaaaaaaaaaa1', copiesInOtherRegions: 2 })],
            orphaned: [],
          },
        }),
      );

      expect(page).toContain('<td class="num copies">2</td>');
    });

    it('says "never" and "no backup yet" for an instance never backed up, in red with the word missed', () => {
      const page = renderCoverageHtml(data());

      const late = rowOf(page, 'data-instance-id', 'i-0ccccccccccccccc3');
      expect(text(late)).toContain('never');
      expect(text(late)).toContain('daily ✕ missed no backup yet');
      expect(late).toContain('class="cue cue-bad"');
    });

    it('shows each schedule’s age against its allowed window, as words and as a meter', () => {
      const page = renderCoverageHtml(data());

      const db = rowOf(page, 'data-instance-id', 'i-0bbbbbbbbbbbbbbb2');
      expect(text(db)).toContain('daily ! due soon 20.0 h of 25.0 h allowed');
      expect(text(db)).toContain('weekly ✓ met 40.0 h of 7.0 d allowed');
      expect(db).toContain('<rect width="96.0" height="8" rx="2" class="fill-warn"/>');
    });
  });

  describe('colour cues', () => {
    it('gives every coloured badge its word: met in green, due soon in amber, missed in red', () => {
      const page = renderCoverageHtml(data());

      const badges = [
        ...page.matchAll(
          /<span class="cue cue-(\w+)" data-cue="\w+"[^>]*><span aria-hidden="true">[^<]*<\/span> ([^<]*)<\/span>/g,
        ),
      ].map((m) => [m[1], m[2]]);
      expect(badges).toHaveLength(page.split('class="cue ').length - 1);
      expect(badges.every(([, label]) => (label ?? '').trim().length > 0)).toBe(true);
      const rpo = [
        ...page.matchAll(
          /data-level="([^"]+)"><span class="schedule">[^<]*<\/span> <span class="cue cue-(\w+)"[^>]*><span aria-hidden="true">[^<]*<\/span> ([^<]*)</g,
        ),
      ].map((m) => [m[1], m[2], m[3]]);
      expect(new Set(rpo.map((r) => r.join(' ')))).toEqual(
        new Set(['missed bad missed', 'due-soon warn due soon', 'met ok met']),
      );
      expect(badges).toContainEqual(['bad', 'failed']);
      expect(badges).toContainEqual(['warn', 'partial']);
      expect(badges).toContainEqual(['ok', 'succeeded']);
    });

    it('uses dark text on light tints for the badges, for contrast', () => {
      const page = renderCoverageHtml(data());

      expect(page).toContain('--ok-bg:#dcfce7;--ok-fg:#14532d');
      expect(page).toContain('--warn-bg:#fef3c7;--warn-fg:#713f12');
      expect(page).toContain('--bad-bg:#fee2e2;--bad-fg:#7f1d1d');
    });
  });

  describe('runs', () => {
    it('draws one column per run, oldest first, with created, deleted, skipped and failed in proportion', () => {
      const page = renderCoverageHtml(data());

      const chart = elementById(page, 'timeline-chart');
      const columns = [...chart.matchAll(/data-run-id="([^"]+)"/g)].map((m) => m[1]);
      expect(columns).toEqual([
        '20261114T030005Z-0000cafe',
        '20261115T030005Z-0000beef',
        '20261115T040005Z-0000dead',
      ]);
      const busy = chart.slice(chart.indexOf('20261115T030005Z-0000beef'));
      const height = (series: string) =>
        Number(new RegExp(`height="([\\d.]+)" class="bar-${series}"`).exec(busy)?.[1]);
      expect(height('created')).toBeCloseTo(2 * height('deleted'), 0);
      expect(height('deleted')).toBeCloseTo(5 * height('skipped'), 0);
    });

    it('marks a failed run in the chart with the word failed, and links it to its errors', () => {
      const page = renderCoverageHtml(data());

      const chart = elementById(page, 'timeline-chart');
      expect(chart).toMatch(
        /<a href="#run-20261115T040005Z-0000dead" class="run run-bad" data-run-id="20261115T040005Z-0000dead" data-status="failed"[^>]*>.*?class="fail-label">✕ failed<\/text>/s,
      );
      const details = elementById(page, 'run-20261115T040005Z-0000dead');
      expect(text(details)).toContain('✕ failed retention · daily · 2026-11-15 04:00 UTC');
      expect(text(details)).toContain(
        'DeletionCapExceeded: 3 deletions planned, above the maxDeletions override of 0',
      );
      expect(text(details)).toContain('vol-0aaaaaaaaaaaaaaa1 failing no backup for 3 days');
    });

    it('links a failed run’s table row to the same errors, and lists failed runs first', () => {
      const page = renderCoverageHtml(data());

      const row = rowOf(page, 'data-run-id', '20261115T040005Z-0000dead');
      expect(row).toContain('data-status="failed" class="status-bad"');
      expect(row).toContain('<a href="#run-20261115T040005Z-0000dead">DeletionCapExceeded');
      const errors = elementById(page, 'errors');
      expect(errors.indexOf('0000dead')).toBeLessThan(errors.indexOf('0000cafe'));
    });

    it('links a partial run to its problems, and leaves a clean success unlinked', () => {
      const page = renderCoverageHtml(data());

      expect(page).toContain('href="#run-20261114T030005Z-0000cafe"');
      expect(page).not.toContain('href="#run-20261115T030005Z-0000beef"');
      expect(page).not.toContain('id="run-20261115T030005Z-0000beef"');
      expect(text(elementById(page, 'run-20261114T030005Z-0000cafe'))).toContain(
        'i-0ccccccccccccccc3 problem dialy',
      );
    });

    it('totals each number over the runs listed', () => {
      const page = renderCoverageHtml(data());

      const footer = page.slice(page.indexOf('<tfoot>', page.indexOf('runs-table')));
      expect(text(footer.slice(0, footer.indexOf('</tfoot>')))).toBe('Total 13 5 1 1');
    });

    it('says so when no run was recorded in the window', () => {
      const page = renderCoverageHtml(data({ runs: [], days: 3 }));

      expect(page).not.toContain('id="timeline-chart"');
      expect(text(page)).toContain('No run was recorded in the last 3 days.');
      expect(text(page)).toContain('Every run succeeded without errors.');
    });
  });

  describe('blocked deletions', () => {
    it('lists each with what holds it and its GiB, totals the GiB, and notes the bytes freed may be less', () => {
      const page = renderCoverageHtml(data());

      const blocked = elementById(page, 'blocked');
      expect(text(rowOf(blocked, 'data-resource-id', 'snap-0eeeeeeeeeeeeeee5'))).toBe(
        'snap-0eeeeeeeeeeeeeee5 lt-0123, asg web in use by a launch template 8',
      );
      expect(blocked).toContain('<td class="num blocked-total">108</td>');
      expect(text(blocked)).toContain('Total held (2 deletions) 108');
      expect(text(blocked)).toContain('the bytes freed may be less');
    });
  });

  describe('public exposure', () => {
    it('says none found, and that no copy run looked, when none ran in the page’s days', () => {
      const page = renderCoverageHtml(data());

      expect(text(elementById(page, 'exposure'))).toBe(
        `Public exposure ✓ none found No snapshot or AMI of this deployment was found shared publicly. No copy run in these ${data().days} days looked (the copy function finds public backups).`,
      );
    });

    it('says per region whether the block public access for AMIs is on, as the copy run read it', () => {
      const page = renderCoverageHtml({
        ...data(),
        exposureCheckedBy: { runId: 'r-copy', at: '2026-11-23T07:00:09Z' },
        amiBlockPublicAccess: [
          { region: 'eu-west-1', state: 'block-new-sharing' },
          { region: 'us-east-1', state: 'unknown', detail: 'UnauthorizedOperation: denied' },
        ],
      });

      expect(text(elementById(page, 'exposure'))).toMatch(
        /Block public access for AMIs: eu-west-1 ✓ on \(block-new-sharing\)\s*; us-east-1 ✕ unknown \(UnauthorizedOperation: denied\)\./,
      );
    });

    it('names the copy run that looked', () => {
      const page = renderCoverageHtml({
        ...data(),
        exposureCheckedBy: { runId: '20261123T070001Z-c0ffee00', at: '2026-11-23T07:00:09Z' },
      });

      expect(text(elementById(page, 'exposure'))).toMatch(
        /none found .* Checked by copy run 20261123T070001Z-c0ffee00 at 2026-11-23 07:00/,
      );
    });

    it('lists each finding', () => {
      const page = renderCoverageHtml({
        ...data(),
        publicFindings: [
          { resourceId: 'snap-0abc', kind: 'public snapshot', detail: 'still public' },
        ],
        exposureCheckedBy: { runId: 'r-copy', at: '2026-11-23T07:00:09Z' },
      });

      expect(text(elementById(page, 'exposure'))).toMatch(
        /snap-0abc .*public snapshot still public.*Checked by copy run r-copy/,
      );
    });
  });
});

describe('Function: rpoLevel', () => {
  const daily = (newestAgeHours: number | undefined, met = true): ScheduleRpo => ({
    schedule: 'daily',
    intervalHours: 24,
    newestAgeHours,
    met,
  });

  it('is met before the last quarter of the window (interval plus the grace hour)', () => {
    expect(rpoLevel(daily(18.7))).toBe('met');
  });

  it('is due soon in the last quarter of the window', () => {
    expect(rpoLevel(daily(18.75))).toBe('due-soon');
    expect(rpoLevel(daily(25))).toBe('due-soon');
  });

  it('is missed when the RPO is not met, or there is no backup at all', () => {
    expect(rpoLevel(daily(25.1, false))).toBe('missed');
    expect(rpoLevel(daily(undefined, false))).toBe('missed');
  });
});

describe('Function: runTotals', () => {
  it('reads backup, AMI and retention counts as created, deleted, skipped and failed', () => {
    expect(
      runTotals({ snapshots: 4, skipped: 1, failed: 2, duplicatesRemoved: 1, due: 9 }),
    ).toEqual({ created: 4, deleted: 1, skipped: 1, failed: 2 });
    expect(runTotals({ created: 2, deregistered: 1, snapshotsDeleted: 3, failed: 0 })).toEqual({
      created: 2,
      deleted: 4,
      skipped: 0,
      failed: 0,
    });
    expect(runTotals({ deleted: 5, kept: 7, planned: 5 })).toMatchObject({ deleted: 5 });
    expect(runTotals(undefined)).toEqual({ created: 0, deleted: 0, skipped: 0, failed: 0 });
  });
});

describe('Function: toCoverageRun', () => {
  const record: RunRecord = {
    runId: '20261115T030005Z-0000cafe',
    deployment: 'prod',
    job: 'backup',
    trigger: 'schedule',
    schedule: 'daily',
    dryRun: false,
    startedAt: '2026-11-15T03:00:05.000Z',
    status: 'partial',
    counts: { snapshots: 3, failed: 1 },
    errorSummary: 'Throttled: slow down',
    report: JSON.stringify({
      error: { code: 'Throttled', message: 'slow down' },
      instances: [
        { instanceId: 'i-0aaaaaaaaaaaaaaa1', error: { code: 'IncorrectState', message: 'busy' } },
        { instanceId: 'i-0ccccccccccccccc3', problems: ['snapkeeper:backup="dialy"'] },
      ],
      volumes: [{ volumeId: 'vol-0aaaaaaaaaaaaaaa1', failing: 'no backup for 3 days' }],
      warnings: ['history unavailable'],
    }),
  };

  it('gathers the failed actions and every error, problem and warning of the stored report, without repeating the summary', () => {
    const coverage = toCoverageRun(record, [
      {
        runId: record.runId,
        job: 'retention',
        action: 'delete-snapshot',
        resourceId: 'snap-0aaaaaaaaaaaaaaa1',
        phase: 'after',
        outcome: 'failed',
        reason: 'beyond count 7',
        error: { code: 'InvalidSnapshot.InUse', message: 'in use' },
        at: record.startedAt,
        sequence: 2,
      },
    ]);

    expect(coverage).toMatchObject({
      totals: { created: 3, deleted: 0, skipped: 0, failed: 1 },
      errorSummary: 'Throttled: slow down',
    });
    expect(coverage.errors).toEqual([
      { resource: 'snap-0aaaaaaaaaaaaaaa1', code: 'InvalidSnapshot.InUse', message: 'in use' },
      { resource: undefined, code: 'warning', message: 'history unavailable' },
      { resource: 'i-0aaaaaaaaaaaaaaa1', code: 'IncorrectState', message: 'busy' },
      { resource: 'i-0ccccccccccccccc3', code: 'problem', message: 'snapkeeper:backup="dialy"' },
      { resource: 'vol-0aaaaaaaaaaaaaaa1', code: 'failing', message: 'no backup for 3 days' },
    ]);
  });

  it('keeps a run whose stored report is cut or not JSON, with its summary only', () => {
    const coverage = toCoverageRun({ ...record, report: '{"truncated": ' });

    expect(coverage.errors).toEqual([]);
    expect(coverage.errorSummary).toBe('Throttled: slow down');
  });
});
