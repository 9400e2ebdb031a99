/**
 * The fault campaign's report (scripts/campaign/report.ts) and the harness's slot clock:
 * what `npm run campaign` prints from its scenarios' tallies, and when it says a target was
 * missed.
 */
import { describe, expect, it } from 'vitest';
import { latestFire, slotText } from '../../../harness/slotClock.ts';
import { summarizeCampaign } from '../../../scripts/campaign/report.ts';
import { emptyTally, type Tally } from '../../../scripts/campaign/scenario.ts';

function tally(overrides: Partial<Tally>): Tally {
  return { ...emptyTally('a scenario'), ...overrides };
}

const THROTTLING = tally({
  scenario: 'throttling',
  faults: 16,
  faultKinds: { error: 16 },
  calls: 54,
  backupsExpected: 5,
  backupsMade: 5,
  deletionsDue: 4,
  deletionsDone: 4,
  historyExpected: 16,
  historyFound: 16,
  checks: [{ name: 'backup succeeded', ok: true }],
  seconds: 17.24,
});
const TIMEOUTS = tally({
  scenario: 'timeouts',
  faults: 9,
  faultKinds: { error: 2, hang: 7 },
  calls: 52,
  backupsExpected: 3,
  backupsMade: 2,
  backupsReported: 1,
  checks: [{ name: 'run partial', ok: true }],
  seconds: 23.3,
});

describe('Function: summarizeCampaign', () => {
  it('prints a row per scenario and a total, the faults by kind, and every loss at 0 as ok', () => {
    // Act
    const summary = summarizeCampaign([THROTTLING, TIMEOUTS], 151.2);

    // Assess
    const lines = summary.text.split('\n');
    expect(lines[0]).toBe(
      'snapkeeper fault campaign: 2 scenarios against a local AWS (moto) behind a fault proxy',
    );
    expect(lines.find((l) => l.startsWith('throttling'))?.split(/\s{2,}/)).toEqual([
      'throttling',
      '16',
      '54',
      '5/5/0',
      '0/0',
      '4/4/0',
      '0',
      '16/16',
      '1/1',
      '17.2 s',
    ]);
    expect(lines.find((l) => l.startsWith('total'))?.split(/\s{2,}/)).toEqual([
      'total',
      '25',
      '106',
      '8/7/1',
      '0/0',
      '4/4/0',
      '0',
      '16/16',
      '2/2',
      '40.5 s',
    ]);
    expect(lines).toContain('faults injected: 25 (18 error, 7 hang) over 106 calls');
    expect(lines).toContain('  backups lost (expected - made - reported)        0  ok');
    expect(lines.at(-1)).toBe('campaign took 151.2 s');
    expect(summary.missed).toBe(false);
    expect(summary.tallies).toEqual([THROTTLING, TIMEOUTS]);
  });

  it('says MISSED for a loss, names a failed check and an error, and marks the campaign missed', () => {
    // Prepare
    const lost = tally({
      scenario: 'races',
      backupsExpected: 3,
      backupsMade: 2,
      checks: [{ name: 'one set each', ok: false }],
    });
    const broken = { ...tally({ scenario: 'crash' }), error: 'child exited 1: boom' };

    // Act
    const summary = summarizeCampaign([lost, broken], 3);

    // Assess
    const lines = summary.text.split('\n');
    expect(lines).toContain('  backups lost (expected - made - reported)        1  MISSED');
    expect(lines).toContain('check failed in races: one set each');
    expect(lines).toContain('error in crash: child exited 1: boom');
    expect(lines.find((l) => l.startsWith('crash'))).toMatch(/ERROR {2}/);
    expect(summary.missed).toBe(true);
  });
});

describe('Function: latestFire', () => {
  it('answers the same day when the fire time has passed, the day before when it has not', () => {
    const noon = Date.parse('2026-12-06T12:00:00Z');
    expect(slotText(latestFire(3, 0, noon))).toBe('2026-12-06T03:00:00Z');
    expect(slotText(latestFire(13, 30, noon))).toBe('2026-12-05T13:30:00Z');
    expect(slotText(latestFire(12, 0, noon))).toBe('2026-12-06T12:00:00Z');
  });
});
