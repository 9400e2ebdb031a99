/**
 * The campaign's report: one row per scenario and a total (faults, calls, backups, extra
 * snapshots, deletions, wrong deletions, history records, checks, time), the faults
 * injected by kind, the losses with their target of 0, and every error and failed check.
 */
import type { Tally } from './scenario.ts';

/** What the campaign printed, what it measured, and whether a target was missed. */
export interface CampaignSummary {
  readonly text: string;
  readonly tallies: Tally[];
  readonly missed: boolean;
}

type NumberKey = { [K in keyof Tally]-?: Tally[K] extends number ? K : never }[keyof Tally];

const HEADER = [
  'scenario',
  'faults',
  'calls',
  'backups exp/made/rep',
  'extra snaps/rep',
  'deletions due/done/rep',
  'wrong del',
  'history exp/found',
  'checks',
  'time',
];

/**
 * The campaign's summary of the tallies, `seconds` after it started.
 *
 * @example
 * io.out(summarizeCampaign(tallies, 151.2).text);
 */
export function summarizeCampaign(tallies: Tally[], seconds: number): CampaignSummary {
  const sum = (key: NumberKey) => tallies.reduce((n, t) => n + t[key], 0);
  const checks = tallies.flatMap((t) => t.checks);
  const passed = `${checks.filter((c) => c.ok).length}/${checks.length}`;
  const rows: string[][] = [HEADER, ...tallies.map(rowOf)];
  rows.push([
    'total',
    ...countsOf(sum),
    passed,
    `${tallies.reduce((n, t) => n + t.seconds, 0).toFixed(1)} s`,
  ]);
  const losses = lossesOf(sum);
  const out = [
    `snapkeeper fault campaign: ${tallies.length} scenarios against a local AWS (moto) behind a fault proxy`,
    '',
    formatTable(rows),
    '',
    `scenarios run: ${tallies.length}; checks passed: ${passed}`,
    `faults injected: ${sum('faults')} (${Object.entries(faultKindsOf(tallies))
      .map(([kind, n]) => `${n} ${kind}`)
      .join(', ')}) over ${sum('calls')} calls`,
    `backups expected ${sum('backupsExpected')}, made ${sum('backupsMade')}, failed and reported ${sum('backupsReported')}`,
    `deletions due ${sum('deletionsDue')}, done ${sum('deletionsDone')}, failed and reported ${sum('deletionsReported')}`,
    '',
    'losses (target 0 each):',
    ...losses.map(
      ([label, n]) =>
        `  ${label.padEnd(46)} ${String(n).padStart(3)}  ${n === 0 ? 'ok' : 'MISSED'}`,
    ),
  ];
  for (const t of tallies) {
    if (t.error) out.push(`error in ${t.scenario}: ${t.error}`);
    for (const c of t.checks) if (!c.ok) out.push(`check failed in ${t.scenario}: ${c.name}`);
  }
  out.push('', `campaign took ${seconds.toFixed(1)} s`);
  const missed =
    losses.some(([, n]) => n !== 0) || checks.some((c) => !c.ok) || tallies.some((t) => t.error);
  return { text: out.join('\n'), tallies, missed };
}

/** One scenario's row. */
function rowOf(t: Tally): string[] {
  const count = (key: NumberKey) => t[key];
  const checks = t.error ? 'ERROR' : `${t.checks.filter((c) => c.ok).length}/${t.checks.length}`;
  return [t.scenario, ...countsOf(count), checks, `${t.seconds.toFixed(1)} s`];
}

/** The counting columns of a row, from one scenario's figures or from their sums. */
function countsOf(n: (key: NumberKey) => number): string[] {
  return [
    String(n('faults')),
    String(n('calls')),
    `${n('backupsExpected')}/${n('backupsMade')}/${n('backupsReported')}`,
    `${n('duplicates')}/${n('duplicatesReported')}`,
    `${n('deletionsDue')}/${n('deletionsDone')}/${n('deletionsReported')}`,
    String(n('wrongDeletions')),
    `${n('historyExpected')}/${n('historyFound')}`,
  ];
}

/** The faults injected, by kind, over every scenario. */
function faultKindsOf(tallies: readonly Tally[]): Record<string, number> {
  const kinds: Record<string, number> = {};
  for (const t of tallies) {
    for (const [kind, n] of Object.entries(t.faultKinds)) kinds[kind] = (kinds[kind] ?? 0) + n;
  }
  return kinds;
}

/** The losses, each with a target of 0. */
function lossesOf(sum: (key: NumberKey) => number): [string, number][] {
  return [
    [
      'backups lost (expected - made - reported)',
      sum('backupsExpected') - sum('backupsMade') - sum('backupsReported'),
    ],
    ['duplicate snapshots not deleted nor reported', sum('duplicates') - sum('duplicatesReported')],
    [
      'deletions lost (due - done - reported)',
      sum('deletionsDue') - sum('deletionsDone') - sum('deletionsReported'),
    ],
    ['deletions not due or without their record', sum('wrongDeletions')],
    ['history records lost (expected - found)', sum('historyExpected') - sum('historyFound')],
  ];
}

/** A table: the first column padded right, the others left, a rule under the header. */
function formatTable(rows: readonly (readonly string[])[]): string {
  const widths =
    rows[0]?.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length))) ?? [];
  return rows
    .map((row, index) => {
      const line = row
        .map((cell, col) =>
          col === 0 ? cell.padEnd(widths[col] ?? 0) : cell.padStart(widths[col] ?? 0),
        )
        .join('  ');
      return index === 0 ? `${line}\n${'-'.repeat(line.length)}` : line;
    })
    .join('\n');
}
