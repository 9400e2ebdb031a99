import {
  type InstanceRecovery,
  type OrphanedHistory,
  RPO_GRACE_MS,
  type ScheduleRpo,
} from '../domain/recoveryReport.ts';
import type { RestoreTestStatus } from '../domain/restoreTestPlan.ts';

/** One opted-in instance on the page: its recovery picture and its copies elsewhere. */
export interface CoverageInstance extends InstanceRecovery {
  /**
   * Snapshots of the instance copied to other regions; undefined (shown as —) when no
   * copy region is configured or one could not be read.
   */
  readonly copiesInOtherRegions?: number | undefined;
  /** The cost ledger (issue 22): measured sizes and the estimated monthly cost; absent: not measured. */
  readonly fullBytes?: number | undefined;
  readonly uniqueBytes?: number | undefined;
  readonly estimatedMonthlyCost?: number | undefined;
  /** Its restore tests (issue 22); undefined (shown as —) when the history could not say. */
  readonly restoreTest?: RestoreTestStatus | undefined;
}

/** The cost ledger's figures the page shows under the instances (see lib/jobs/snapshotSizes.ts). */
export interface CoverageCosts {
  readonly currency: string;
  readonly priceTable: string;
  readonly priceSource: string;
  readonly deployment: { readonly estimatedMonthlyCost: number; readonly unmeasured: number };
  readonly note: string;
  readonly priceTableProblem?: string | undefined;
}

/** The per-run numbers the timeline draws, the same four for every job. */
export interface RunTotals {
  readonly created: number;
  readonly deleted: number;
  readonly skipped: number;
  readonly failed: number;
}

/** One error, problem or warning of a run, for the details section. */
export interface RunError {
  /** The instance, volume, snapshot or AMI it concerns, when known. */
  readonly resource?: string | undefined;
  readonly code?: string | undefined;
  readonly message: string;
}

/** One run of the history, as the page shows it. */
export interface CoverageRun {
  readonly runId: string;
  readonly job: string;
  readonly schedule?: string | undefined;
  readonly trigger: string;
  readonly dryRun: boolean;
  /** running, succeeded, partial, failed, incomplete, abandoned or rejected (a console payload to fix). */
  readonly status: string;
  readonly startedAt: string;
  readonly endedAt?: string | undefined;
  readonly totals: RunTotals;
  readonly errorSummary?: string | undefined;
  readonly errors: readonly RunError[];
}

/** A deletion that something holds back. */
export interface BlockedDeletion {
  readonly resourceId: string;
  readonly reason: string;
  readonly heldBy: readonly string[];
  readonly sizeGiB?: number | undefined;
}

/** A snapshot or AMI shared publicly, as the latest copy run found it. */
export interface PublicFinding {
  readonly resourceId: string;
  readonly kind: string;
  readonly detail: string;
}

/** Everything the coverage page shows. */
export interface CoverageData {
  readonly generatedAt: string;
  readonly deployment: string;
  readonly region: string;
  /** The runs cover this many days before `generatedAt`. */
  readonly days: number;
  readonly recovery: {
    readonly instances: readonly CoverageInstance[];
    readonly orphaned: readonly OrphanedHistory[];
  };
  /** Newest first, as the history returns them. */
  readonly runs: readonly CoverageRun[];
  /** True when the history held more runs than the page lists. */
  readonly runsTruncated?: boolean | undefined;
  readonly blocked: readonly BlockedDeletion[];
  readonly blockedGiB: number;
  /** Why the GiB held may be more than a deletion frees. */
  readonly blockedNote: string;
  /** What could not be read for the blocked list: it may be short. */
  readonly blockedWarnings?: readonly string[] | undefined;
  readonly publicFindings: readonly PublicFinding[];
  /** The copy run the findings come from; absent when none ran in the page's days. */
  readonly exposureCheckedBy?: { readonly runId: string; readonly at: string } | undefined;
  /** That copy run's account-level block public access for AMIs, per region. */
  readonly amiBlockPublicAccess?:
    | readonly { readonly region: string; readonly state: string; readonly detail?: string }[]
    | undefined;
  /** The cost ledger; absent when the report carried none. */
  readonly costs?: CoverageCosts | undefined;
}

/** How an RPO reads at a glance: every colour comes with one of these words. */
export type RpoLevel = 'met' | 'due-soon' | 'missed';

/** The share of the allowed window after which a met RPO shows as due soon (amber). */
export const DUE_SOON_FRACTION = 0.75;

const RPO_LABEL: Record<RpoLevel, string> = {
  met: 'met',
  'due-soon': 'due soon',
  missed: 'missed',
};

/**
 * Grades one schedule's RPO: missed (red) when not met, due soon (amber) when the newest
 * backup is in the last quarter of the allowed window (the interval plus the grace hour),
 * met (green) otherwise.
 *
 * @example
 * rpoLevel({ schedule: 'daily', intervalHours: 24, newestAgeHours: 20, met: true }); // 'due-soon'
 */
export function rpoLevel(rpo: ScheduleRpo): RpoLevel {
  if (!rpo.met || rpo.newestAgeHours === undefined) return 'missed';
  return rpo.newestAgeHours >= DUE_SOON_FRACTION * allowedHours(rpo) ? 'due-soon' : 'met';
}

function allowedHours(rpo: ScheduleRpo): number {
  return rpo.intervalHours + RPO_GRACE_MS / 3_600_000;
}

/** Markup that is already safe: only {@link html} makes it. */
class SafeHtml {
  public readonly value: string;
  public constructor(value: string) {
    this.value = value;
  }
  public toString(): string {
    return this.value;
  }
}

type Part = SafeHtml | string | number | boolean | undefined | null | readonly Part[];

/**
 * Escapes text for HTML element content and quoted attribute values.
 *
 * @example
 * escapeHtml('<b title="x">'); // '&lt;b title=&quot;x&quot;&gt;'
 */
export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function part(value: Part): string {
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(part).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

/** A template whose every interpolation is escaped unless it is markup made here. */
function html(strings: TemplateStringsArray, ...values: Part[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += part(value) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

const STATUS_LEVEL: Record<string, 'ok' | 'warn' | 'bad' | 'info'> = {
  succeeded: 'ok',
  partial: 'warn',
  incomplete: 'warn',
  running: 'info',
  failed: 'bad',
  abandoned: 'bad',
  // A console payload to fix: nothing was done, nothing failed.
  rejected: 'info',
};
const STATUS_ICON = { ok: '✓', warn: '!', bad: '✕', info: '…' } as const;
const RPO_CUE = { met: 'ok', 'due-soon': 'warn', missed: 'bad' } as const;

/** A coloured badge that always says in words what its colour means. */
function cue(level: 'ok' | 'warn' | 'bad' | 'info', label: string, title?: string): SafeHtml {
  return html`<span class="cue cue-${level}" data-cue="${level}"${title ? html` title="${title}"` : ''}><span aria-hidden="true">${STATUS_ICON[level]}</span> ${label}</span>`;
}

function statusCue(status: string): SafeHtml {
  return cue(STATUS_LEVEL[status] ?? 'info', status);
}

const pad = (n: number) => String(n).padStart(2, '0');

function when(iso: string | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

function hours(h: number): string {
  return h >= 72 ? `${(h / 24).toFixed(1)} d` : `${h.toFixed(1)} h`;
}

function gib(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/** An element id made of safe characters, unique on the page. */
function anchorIds(runs: readonly CoverageRun[]): Map<string, string> {
  const ids = new Map<string, string>();
  const used = new Set<string>();
  for (const run of runs) {
    const base = `run-${run.runId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    let id = base;
    for (let n = 2; used.has(id); n += 1) id = `${base}-${n}`;
    used.add(id);
    ids.set(run.runId, id);
  }
  return ids;
}

/** A run with something to read in the details: not cleanly succeeded, or with errors. */
function hasDetails(run: CoverageRun): boolean {
  return (
    !['succeeded', 'running'].includes(run.status) ||
    run.errors.length > 0 ||
    run.errorSummary !== undefined
  );
}

function worstLevel(levels: readonly RpoLevel[]): RpoLevel {
  if (levels.includes('missed')) return 'missed';
  if (levels.includes('due-soon')) return 'due-soon';
  return 'met';
}

const SEVERITY: Record<RpoLevel, number> = { missed: 0, 'due-soon': 1, met: 2 };

/** Where the exposure findings come from: the copy run that looked, or that none did. */
function exposureSource(data: CoverageData) {
  return data.exposureCheckedBy
    ? html` Checked by copy run <span class="id">${data.exposureCheckedBy.runId}</span> at ${when(data.exposureCheckedBy.at)}.`
    : html` No copy run in these ${data.days} days looked (the copy function finds public backups).`;
}

function amiBlockLine(data: CoverageData) {
  const regions = data.amiBlockPublicAccess ?? [];
  if (regions.length === 0) return '';
  return html`<p class="sub" data-ami-block="${regions.every((r) => r.state === 'block-new-sharing') ? 'on' : 'not-on'}">Block public access for AMIs: ${regions.map(
    (r, i) =>
      html`${i > 0 ? '; ' : ''}${r.region} ${r.state === 'block-new-sharing' ? cue('ok', 'on (block-new-sharing)') : cue('bad', r.state)}${r.detail ? ` (${r.detail})` : ''}`,
  )}.</p>`;
}

/**
 * Renders the coverage and history page: one self-contained HTML document (inline CSS
 * and hand-written inline SVG, no script, no request to anywhere: its Content Security
 * Policy forbids both). Every string from the data is escaped.
 *
 * @example
 * writeFileSync('report.html', renderCoverageHtml(await collectCoverageData(deps, { days: 14 })));
 */
export function renderCoverageHtml(data: CoverageData): string {
  const anchors = anchorIds(data.runs);
  const instances = [...data.recovery.instances]
    .map((instance) => ({
      instance,
      levels: instance.rpo.map(rpoLevel),
    }))
    .sort(
      (a, b) =>
        SEVERITY[worstLevel(a.levels)] - SEVERITY[worstLevel(b.levels)] ||
        (a.instance.name ?? a.instance.instanceId).localeCompare(
          b.instance.name ?? b.instance.instanceId,
        ),
    );
  const allLevels = instances.flatMap((i) => i.levels);
  const count = (level: RpoLevel) => allLevels.filter((l) => l === level).length;
  const failedRuns = data.runs.filter((r) => STATUS_LEVEL[r.status] === 'bad');
  const rejectedRuns = data.runs.filter((r) => r.status === 'rejected');
  const title = `Backup coverage — ${data.deployment} (${data.region})`;

  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="generator" content="snapkeeper">
<title>${title}</title>
<style>${new SafeHtml(STYLE)}</style>
</head>
<body>
<header>
<h1>Backup coverage: <span class="deployment">${data.deployment}</span></h1>
<p class="meta">Region <strong>${data.region}</strong> · generated <time datetime="${data.generatedAt}">${when(data.generatedAt)}</time> · runs of the last ${data.days} day${data.days === 1 ? '' : 's'}</p>
<nav aria-label="Sections"><a href="#instances">Instances</a> <a href="#timeline">Runs</a> <a href="#errors">Run errors</a> <a href="#blocked">Blocked deletions</a> <a href="#orphaned">Orphaned</a> <a href="#exposure">Public exposure</a></nav>
</header>
<main>
<section id="summary" aria-label="Summary" class="cards">
${card('Instances', instances.length, 'opted in', undefined)}
${card('RPO met', count('met'), 'schedules', count('met') > 0 ? cue('ok', 'met') : undefined)}
${card('Due soon', count('due-soon'), 'in the last quarter of the window', count('due-soon') > 0 ? cue('warn', 'due soon') : undefined)}
${card('RPO missed', count('missed'), 'schedules', count('missed') > 0 ? cue('bad', 'missed') : undefined)}
${card(`Runs, ${data.days} d`, data.runs.length, data.runsTruncated ? 'newest shown; more exist' : 'recorded', undefined)}
${card('Failed runs', failedRuns.length, 'failed or abandoned', failedRuns.length > 0 ? cue('bad', 'failed') : undefined)}
${card('Rejected payloads', rejectedRuns.length, 'console payloads to fix; nothing done', rejectedRuns.length > 0 ? cue('info', 'rejected') : undefined)}
${card('Blocked GiB', gib(data.blockedGiB), `${data.blocked.length} deletion${data.blocked.length === 1 ? '' : 's'} held`, undefined)}
${card('Public exposure', data.publicFindings.length === 0 ? 'none' : data.publicFindings.length, data.publicFindings.length === 0 ? 'none found' : 'findings', data.publicFindings.length > 0 ? cue('bad', 'public') : undefined)}
</section>

<section id="instances" aria-labelledby="instances-h">
<h2 id="instances-h">Instances and their recovery points</h2>
<p class="legend">RPO: ${cue('ok', 'met')} newest backup well inside its schedule's window · ${cue('warn', 'due soon')} in the last ${Math.round((1 - DUE_SOON_FRACTION) * 100)}% of the window (interval + 1 h grace) · ${cue('bad', 'missed')} older than the window, or none yet</p>
${
  instances.length === 0
    ? html`<p class="empty">No instance carries an opt-in tag.</p>`
    : instanceTable(
        instances.map((i) => i.instance),
        data.costs?.currency,
      )
}
${costsLine(data.costs)}
</section>

<section id="timeline" aria-labelledby="timeline-h">
<h2 id="timeline-h">Runs of the last ${data.days} day${data.days === 1 ? '' : 's'}</h2>
${timeline(data, anchors)}
${runTable(data.runs, anchors)}
</section>

<section id="errors" aria-labelledby="errors-h">
<h2 id="errors-h">Run errors</h2>
${runDetails(data.runs, anchors)}
</section>

<section id="blocked" aria-labelledby="blocked-h">
<h2 id="blocked-h">Blocked deletions</h2>
${blockedTable(data)}
</section>

<section id="orphaned" aria-labelledby="orphaned-h">
<h2 id="orphaned-h">Orphaned history (instance gone)</h2>
${orphanedTable(data.recovery.orphaned)}
</section>

<section id="exposure" aria-labelledby="exposure-h">
<h2 id="exposure-h">Public exposure</h2>
${
  data.publicFindings.length === 0
    ? html`<p class="empty" data-findings="0">${cue('ok', 'none found')} No snapshot or AMI of this deployment was found shared publicly.${exposureSource(data)}</p>`
    : html`<table><thead><tr><th scope="col">Resource</th><th scope="col">Finding</th><th scope="col">Detail</th></tr></thead><tbody>${data.publicFindings.map(
        (f) =>
          html`<tr><td class="id">${f.resourceId}</td><td>${cue('bad', f.kind)}</td><td>${f.detail}</td></tr>`,
      )}</tbody></table><p class="sub">${exposureSource(data)}</p>`
}
${amiBlockLine(data)}
</section>
</main>
<footer><p>snapkeeper · ${data.deployment} · ${data.region} · this file is self-contained and makes no network request.</p></footer>
</body>
</html>
`;
  return page.value;
}

function card(label: string, value: string | number, note: string, badge: SafeHtml | undefined) {
  return html`<div class="card"><div class="card-label">${label}</div><div class="card-value">${value}</div><div class="card-note">${badge ?? ''} ${note}</div></div>`;
}

function costsLine(costs: CoverageCosts | undefined): SafeHtml {
  if (!costs) return html``;
  const total = `${costs.deployment.estimatedMonthlyCost.toFixed(4)} ${costs.currency}`;
  return html`<p class="sub costs" data-price-table="${costs.priceTable}">Estimated snapshot storage: <strong>${total}</strong> a month for the deployment${costs.deployment.unmeasured > 0 ? ` (${costs.deployment.unmeasured} snapshots not measured yet)` : ''}; prices: ${costs.priceTable} (${costs.priceSource}). ${costs.note}${costs.priceTableProblem ? html` ${cue('warn', 'price table rejected')} ${costs.priceTableProblem}` : ''}</p>`;
}

function costCell(i: CoverageInstance, currency: string | undefined): string {
  return i.estimatedMonthlyCost === undefined || !currency
    ? '—'
    : `${i.estimatedMonthlyCost.toFixed(4)} ${currency}`;
}

function instanceTable(instances: readonly CoverageInstance[], currency?: string): SafeHtml {
  return html`<div class="scroll"><table class="instances">
<thead><tr><th scope="col">Instance</th><th scope="col">RPO per schedule (age of newest / allowed)</th><th scope="col">Newest snapshot</th><th scope="col">Newest AMI</th><th scope="col" class="num">Recovery points</th><th scope="col" class="num">AMIs</th><th scope="col" class="num">Copies in other regions</th><th scope="col" class="num">Est. cost a month</th><th scope="col">Last restore test</th></tr></thead>
<tbody>
${instances.map(
  (i) => html`<tr data-instance-id="${i.instanceId}" data-rpo="${worstLevel(i.rpo.map(rpoLevel))}">
<th scope="row"><span class="name">${i.name ?? '(no Name tag)'}</span><br><span class="id">${i.instanceId}</span></th>
<td class="rpo">${i.rpo.map((r) => rpoCell(r))}</td>
<td class="newest-snapshot">${i.newestSnapshot ? html`<span class="id">${i.newestSnapshot.snapshotId}</span><br><span class="sub">${when(i.newestSnapshot.createdAt)} · ${hours(i.newestSnapshot.ageHours)} ago · ${i.newestSnapshot.schedule}</span>` : html`<span class="none">never</span>`}${appConsistentLine(i)}</td>
<td class="newest-image">${i.newestImage ? html`<span class="id">${i.newestImage.imageId}</span><br><span class="sub">${when(i.newestImage.createdAt)} · ${hours(i.newestImage.ageHours)} ago · ${i.newestImage.schedule}</span>` : html`<span class="sub no-image">none</span>`}</td>
<td class="num recovery-points">${i.recoveryPoints}</td>
<td class="num images">${i.images}</td>
<td class="num copies">${i.copiesInOtherRegions ?? '—'}</td>
<td class="num cost">${costCell(i, currency)}</td>
${restoreTestCell(i.restoreTest)}
</tr>`,
)}
</tbody></table></div>`;
}

/** The newest application-consistent point, for instances that have one or ask for one. */
function appConsistentLine(i: CoverageInstance): SafeHtml | string {
  const p = i.newestAppConsistent;
  if (p) {
    return html`<br><span class="sub app-consistent" data-app-consistent="${p.snapshotId}">app-consistent: <span class="id">${p.snapshotId}</span> · ${hours(p.ageHours)} ago · ${p.schedule}</span>`;
  }
  if (i.consistency === undefined || /^\s*crash\s*$/i.test(i.consistency)) return '';
  return html`<br><span class="sub app-consistent" data-app-consistent="none">app-consistent: ${cue('warn', 'none yet')} (${i.consistency})</span>`;
}

/** The last successful restore test and its time; an instance never tested is flagged. */
function restoreTestCell(test: RestoreTestStatus | undefined): SafeHtml {
  if (!test) return html`<td class="restore-test">—</td>`;
  if (test.neverTested)
    return html`<td class="restore-test" data-restore-test="never"><span class="none">never tested</span></td>`;
  const failedSince =
    test.lastOutcome === 'failed'
      ? html`<br><span class="sub restore-test-failed">last test failed ${when(test.lastTestedAt)}</span>`
      : '';
  const passed = test.lastPassedAt
    ? html`${when(test.lastPassedAt)}<br><span class="sub">${test.lastPassedSeconds ?? '?'} s to available</span>`
    : html`<span class="none">never passed</span>`;
  return html`<td class="restore-test" data-restore-test="${test.lastOutcome ?? 'passed'}">${passed}${failedSince}</td>`;
}

function rpoCell(rpo: ScheduleRpo): SafeHtml {
  const level = rpoLevel(rpo);
  const allowed = allowedHours(rpo);
  const age = rpo.newestAgeHours;
  const fraction = age === undefined ? 1 : Math.min(age / allowed, 1);
  const text = age === undefined ? 'no backup yet' : `${hours(age)} of ${hours(allowed)} allowed`;
  return html`<div class="rpo-line" data-schedule="${rpo.schedule}" data-level="${level}"><span class="schedule">${rpo.schedule}</span> ${cue(RPO_CUE[level], RPO_LABEL[level])} <span class="age">${text}</span>
<svg class="meter" width="120" height="8" viewBox="0 0 120 8" role="img" aria-label="${rpo.schedule}: ${RPO_LABEL[level]}, ${text}"><title>${rpo.schedule}: ${RPO_LABEL[level]}, ${text}</title><rect width="120" height="8" rx="2" class="meter-bg"/><rect width="${(fraction * 120).toFixed(1)}" height="8" rx="2" class="fill-${RPO_CUE[level]}"/><line x1="${DUE_SOON_FRACTION * 120}" x2="${DUE_SOON_FRACTION * 120}" y1="0" y2="8" class="meter-tick"/></svg></div>`;
}

const SERIES = [
  { key: 'created', label: 'created' },
  { key: 'deleted', label: 'deleted' },
  { key: 'skipped', label: 'skipped' },
  { key: 'failed', label: 'failed' },
] as const;

function niceMax(value: number): number {
  if (value <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function timeline(data: CoverageData, anchors: Map<string, string>): SafeHtml {
  const legend = html`<p class="legend" id="timeline-legend">${SERIES.map((s) => html`<span class="key"><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" class="bar-${s.key}"/></svg> ${s.label}</span> `)}<span class="key"><span class="fail-mark" aria-hidden="true">✕</span> failed run (select it for its errors)</span> <span class="key">Each column is one run, oldest on the left; created and deleted count snapshots and AMIs.</span></p>`;
  if (data.runs.length === 0)
    return html`${legend}<p class="empty">No run was recorded in the last ${data.days} days.</p>`;
  const runs = [...data.runs].sort(
    (a, b) => a.startedAt.localeCompare(b.startedAt) || a.runId.localeCompare(b.runId),
  );
  const step = Math.max(8, Math.min(40, Math.floor(1200 / runs.length)));
  const barWidth = Math.max(5, Math.round(step * 0.65));
  const left = 44;
  const top = 54;
  const plot = 180;
  const bottom = 34;
  const width = left + runs.length * step + 16;
  const height = top + plot + bottom;
  const totalOf = (r: CoverageRun) =>
    r.totals.created + r.totals.deleted + r.totals.skipped + r.totals.failed;
  const max = niceMax(Math.max(1, ...runs.map(totalOf)));
  const y = (v: number) => top + plot - (v / max) * plot;
  const ticks = [0, max / 2, max].filter((t) => Number.isInteger(t));
  const parts: SafeHtml[] = [];
  for (const t of ticks) {
    parts.push(
      html`<line x1="${left - 4}" x2="${width - 8}" y1="${y(t)}" y2="${y(t)}" class="grid"/><text x="${left - 8}" y="${y(t) + 4}" text-anchor="end" class="axis">${t}</text>`,
    );
  }
  let lastDay = '';
  let lastLabelX = -Infinity;
  runs.forEach((run, index) => {
    const x = left + index * step;
    const day = run.startedAt.slice(0, 10);
    if (day !== lastDay) {
      if (index > 0)
        parts.push(
          html`<line x1="${x - (step - barWidth) / 2}" x2="${x - (step - barWidth) / 2}" y1="${top - 6}" y2="${top + plot + 6}" class="day-line"/>`,
        );
      if (x - lastLabelX >= 44) {
        parts.push(
          html`<text x="${x}" y="${top + plot + 20}" class="axis day-label">${day.slice(5)}</text>`,
        );
        lastLabelX = x;
      }
      lastDay = day;
    }
    let base = top + plot;
    const segments: SafeHtml[] = [];
    for (const s of SERIES) {
      const value = run.totals[s.key];
      if (value <= 0) continue;
      const h = (value / max) * plot;
      base -= h;
      segments.push(
        html`<rect x="${x}" y="${base.toFixed(1)}" width="${barWidth}" height="${h.toFixed(1)}" class="bar-${s.key}"/>`,
      );
    }
    if (segments.length === 0)
      segments.push(
        html`<rect x="${x}" y="${top + plot - 2}" width="${barWidth}" height="2" class="bar-none"/>`,
      );
    const level = STATUS_LEVEL[run.status] ?? 'info';
    const label = `${when(run.startedAt)} ${run.job}${run.schedule ? ` ${run.schedule}` : ''}${run.dryRun ? ' (dry run)' : ''}: ${run.status}; created ${run.totals.created}, deleted ${run.totals.deleted}, skipped ${run.totals.skipped}, failed ${run.totals.failed}`;
    const mark =
      level === 'bad'
        ? html`<rect x="${x - (step - barWidth) / 2}" y="${top - 50}" width="${step}" height="${plot + 50}" class="fail-band"/><text x="${x + barWidth / 2}" y="${top - 4}" transform="rotate(-90 ${x + barWidth / 2} ${top - 4})" class="fail-label">✕ ${run.status}</text>`
        : '';
    const body = html`<title>${label}</title>${mark}${segments}`;
    const anchor = anchors.get(run.runId) ?? '';
    parts.push(
      hasDetails(run)
        ? html`<a href="#${anchor}" class="run run-${level}" data-run-id="${run.runId}" data-status="${run.status}" aria-label="${label}; details">${body}</a>`
        : html`<g class="run run-${level}" data-run-id="${run.runId}" data-status="${run.status}" role="img" aria-label="${label}">${body}</g>`,
    );
  });
  parts.push(
    html`<line x1="${left}" x2="${width - 8}" y1="${top + plot}" y2="${top + plot}" class="axis-line"/>`,
  );
  return html`${legend}<div class="scroll chart"><svg id="timeline-chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="group" aria-label="Runs over time: created, deleted, skipped and failed per run" aria-describedby="timeline-legend">${parts}</svg></div>`;
}

function runTable(runs: readonly CoverageRun[], anchors: Map<string, string>): SafeHtml {
  if (runs.length === 0) return html``;
  const sum = (key: keyof RunTotals) => runs.reduce((n, r) => n + r.totals[key], 0);
  return html`<details class="runs" open><summary>All ${runs.length} runs, newest first</summary><div class="scroll"><table class="runs-table">
<thead><tr><th scope="col">Started</th><th scope="col">Job</th><th scope="col">Schedule</th><th scope="col">Trigger</th><th scope="col">Status</th><th scope="col" class="num">Created</th><th scope="col" class="num">Deleted</th><th scope="col" class="num">Skipped</th><th scope="col" class="num">Failed</th><th scope="col">Errors</th><th scope="col">Run</th></tr></thead>
<tbody>
${runs.map((r) => {
  const anchor = anchors.get(r.runId) ?? '';
  return html`<tr data-run-id="${r.runId}" data-status="${r.status}" class="status-${STATUS_LEVEL[r.status] ?? 'info'}">
<td class="nowrap"><time datetime="${r.startedAt}">${when(r.startedAt)}</time></td>
<td>${r.job}${r.dryRun ? html` <span class="tag">dry run</span>` : ''}</td>
<td>${r.schedule ?? '—'}</td>
<td>${r.trigger}</td>
<td class="status">${statusCue(r.status)}</td>
<td class="num created">${r.totals.created}</td>
<td class="num deleted">${r.totals.deleted}</td>
<td class="num skipped">${r.totals.skipped}</td>
<td class="num failed">${r.totals.failed}</td>
<td class="errors">${hasDetails(r) ? html`<a href="#${anchor}">${r.errorSummary ? truncate(r.errorSummary, 90) : `${r.errors.length} problem${r.errors.length === 1 ? '' : 's'}`}</a>` : '—'}</td>
<td class="id run-id">${r.runId}</td>
</tr>`;
})}
</tbody>
<tfoot><tr><th scope="row" colspan="5">Total</th><td class="num">${sum('created')}</td><td class="num">${sum('deleted')}</td><td class="num">${sum('skipped')}</td><td class="num">${sum('failed')}</td><td colspan="2"></td></tr></tfoot>
</table></div></details>`;
}

function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

const MAX_ERRORS_SHOWN = 50;

function runDetails(runs: readonly CoverageRun[], anchors: Map<string, string>): SafeHtml {
  const withDetails = runs.filter(hasDetails);
  if (withDetails.length === 0)
    return html`<p class="empty">${cue('ok', 'none')} Every run succeeded without errors.</p>`;
  const order = (r: CoverageRun) => (STATUS_LEVEL[r.status] === 'bad' ? 0 : 1);
  const sorted = [...withDetails].sort(
    (a, b) => order(a) - order(b) || b.startedAt.localeCompare(a.startedAt),
  );
  return html`${sorted.map((r) => {
    const shown = r.errors.slice(0, MAX_ERRORS_SHOWN);
    return html`<article class="run-detail status-${STATUS_LEVEL[r.status] ?? 'info'}" id="${anchors.get(r.runId) ?? ''}" data-run-id="${r.runId}" data-status="${r.status}" tabindex="-1">
<h3>${statusCue(r.status)} ${r.job}${r.schedule ? ` · ${r.schedule}` : ''} · ${when(r.startedAt)}${r.dryRun ? ' · dry run' : ''}</h3>
<p class="sub">Run <span class="id">${r.runId}</span>, ${r.trigger}</p>
${r.errorSummary ? html`<p class="error-summary">${r.errorSummary}</p>` : ''}
${
  shown.length > 0
    ? html`<ul class="error-list">${shown.map(
        (e) =>
          html`<li>${e.resource ? html`<span class="id">${e.resource}</span> ` : ''}${e.code ? html`<code>${e.code}</code> ` : ''}${e.message}</li>`,
      )}</ul>${r.errors.length > shown.length ? html`<p class="sub">and ${r.errors.length - shown.length} more: <code>npm run history -- --run ${r.runId}</code></p>` : ''}`
    : r.errorSummary
      ? ''
      : html`<p class="sub">No error was recorded: <code>npm run history -- --run ${r.runId}</code></p>`
}
<p class="back"><a href="#timeline">↑ back to the runs</a></p>
</article>`;
  })}`;
}

function blockedTable(data: CoverageData): SafeHtml {
  const warnings = data.blockedWarnings ?? [];
  const note = html`${warnings.map((w) => html`<p class="blocked-warning">${cue('warn', 'incomplete')} ${w}</p>`)}<p class="note">${data.blockedNote}</p>`;
  if (data.blocked.length === 0)
    return warnings.length > 0
      ? html`<p class="empty">No blocked deletion was found, but not everything could be read.</p>${note}`
      : html`<p class="empty">No deletion is blocked.</p>${note}`;
  return html`<div class="scroll"><table class="blocked">
<thead><tr><th scope="col">Resource</th><th scope="col">Held by</th><th scope="col">Why</th><th scope="col" class="num">GiB</th></tr></thead>
<tbody>${data.blocked.map(
    (b) =>
      html`<tr data-resource-id="${b.resourceId}"><td class="id">${b.resourceId}</td><td class="held-by">${b.heldBy.length > 0 ? b.heldBy.join(', ') : '—'}</td><td>${b.reason}</td><td class="num gib">${b.sizeGiB === undefined ? '—' : gib(b.sizeGiB)}</td></tr>`,
  )}</tbody>
<tfoot><tr><th scope="row" colspan="3">Total held (${data.blocked.length} deletion${data.blocked.length === 1 ? '' : 's'})</th><td class="num blocked-total">${gib(data.blockedGiB)}</td></tr></tfoot>
</table></div>${note}`;
}

function orphanedTable(orphaned: readonly OrphanedHistory[]): SafeHtml {
  if (orphaned.length === 0)
    return html`<p class="empty">None: every managed snapshot belongs to a live instance.</p>`;
  return html`<div class="scroll"><table class="orphaned">
<thead><tr><th scope="col">Instance (gone)</th><th scope="col" class="num">Snapshots</th><th scope="col" class="num">GiB</th><th scope="col">Newest</th></tr></thead>
<tbody>${orphaned.map(
    (o) =>
      html`<tr data-instance-id="${o.instanceId}"><td>${o.name ? html`<span class="name">${o.name}</span> ` : ''}<span class="id">${o.instanceId}</span></td><td class="num">${o.snapshots}</td><td class="num">${gib(o.sizeGiB)}</td><td>${when(o.newestCreatedAt)}</td></tr>`,
  )}</tbody></table></div>`;
}

/*
 * Colours: text on tinted badges is at least 7:1; chart fills are at least 3:1 on white
 * (WCAG 1.4.11) and come from a palette that colour-blind readers tell apart; every
 * colour is also said in words.
 */
const STYLE = `
:root{color-scheme:light;--fg:#1f2937;--muted:#4b5563;--line:#d1d5db;--bg:#fff;--soft:#f3f4f6;
--ok-bg:#dcfce7;--ok-fg:#14532d;--ok:#15803d;--warn-bg:#fef3c7;--warn-fg:#713f12;--warn:#b45309;
--bad-bg:#fee2e2;--bad-fg:#7f1d1d;--bad:#b91c1c;--info-bg:#e0e7ff;--info-fg:#1e3a8a;
--created:#0072b2;--deleted:#aa4499;--skipped:#6b7280;--failed:#c2410c}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg)}
header,main,footer{max-width:1400px;margin:0 auto;padding:0 24px}
header{padding-top:20px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:15px;margin:0 0 4px}
.meta,.sub,.note,.legend,footer{color:var(--muted)}
.sub{font-size:12px}
nav a{margin-right:12px}
a{color:#1d4ed8}
a:focus-visible{outline:3px solid #1d4ed8;outline-offset:2px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px;margin-top:16px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:var(--soft)}
.card-label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.card-value{font-size:26px;font-weight:700}
.card-note{font-size:12px;color:var(--muted)}
.cue{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;white-space:nowrap;border:1px solid transparent}
.cue-ok{background:var(--ok-bg);color:var(--ok-fg);border-color:var(--ok)}
.cue-warn{background:var(--warn-bg);color:var(--warn-fg);border-color:var(--warn)}
.cue-bad{background:var(--bad-bg);color:var(--bad-fg);border-color:var(--bad)}
.cue-info{background:var(--info-bg);color:var(--info-fg);border-color:#4338ca}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
thead th{background:var(--soft);font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
tfoot th,tfoot td{font-weight:700;border-top:2px solid var(--fg)}
.num{text-align:right;font-variant-numeric:tabular-nums}
.id,code{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px}
.id,.nowrap{white-space:nowrap}
.run-id{color:var(--muted)}
.name{font-weight:600}
.none{color:var(--bad-fg);font-weight:600}
.rpo-line{margin:2px 0;white-space:nowrap}
.rpo-line .schedule{display:inline-block;min-width:56px;font-weight:600}
.rpo-line .age{font-size:12px;color:var(--muted);margin:0 6px}
.meter{vertical-align:middle}
.meter-bg{fill:#e5e7eb}.meter-tick{stroke:#111827;stroke-width:1}
.fill-ok{fill:var(--ok)}.fill-warn{fill:var(--warn)}.fill-bad{fill:var(--bad)}
tr.status-bad td{background:#fff5f5}
.tag{font-size:11px;border:1px solid var(--line);border-radius:4px;padding:0 4px;color:var(--muted);white-space:nowrap}
.chart{border:1px solid var(--line);border-radius:8px;padding:4px;background:#fff}
.bar-created{fill:var(--created)}.bar-deleted{fill:var(--deleted)}.bar-skipped{fill:var(--skipped)}.bar-failed{fill:var(--failed)}
.bar-none{fill:#9ca3af}
.grid{stroke:#e5e7eb}.axis-line{stroke:#374151}.day-line{stroke:#9ca3af;stroke-dasharray:3 3}
.axis{font-size:11px;fill:#374151}
.fail-band{fill:#fee2e2;stroke:var(--bad);stroke-width:1}
.fail-label{font-size:11px;font-weight:700;fill:var(--bad-fg)}
.fail-mark{color:var(--bad-fg);font-weight:700}
a.run:hover rect,a.run:focus rect{opacity:.8}
.legend .key{margin-right:14px;white-space:nowrap}
.legend svg{vertical-align:-1px}
details.runs summary{cursor:pointer;margin:12px 0 4px;font-weight:600}
.run-detail{border:1px solid var(--line);border-left:6px solid var(--warn);border-radius:6px;padding:8px 14px;margin:8px 0}
.run-detail p{margin:2px 0}
.run-detail.status-bad{border-left-color:var(--bad);background:#fffafa}
.run-detail:target{outline:3px solid #1d4ed8;outline-offset:2px;background:#eff6ff}
.error-summary{font-weight:600;color:var(--bad-fg)}
.run-detail.status-warn .error-summary{color:var(--warn-fg)}
td.errors{font-size:12px;max-width:420px}
.error-list{margin:4px 0;padding-left:20px}
.back{margin:4px 0 0;font-size:12px}
.empty{color:var(--muted)}
footer{margin:40px auto 24px;font-size:12px}
@media print{.scroll{overflow:visible}details.runs{display:block}}
`;
