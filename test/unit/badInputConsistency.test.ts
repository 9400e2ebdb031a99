/**
 * The bad-input corpus of `snapkeeper:consistency` (test/fixtures/bad-input/consistency.json)
 * and of the schedule option `consistency`: every bad value gets an error naming the tag,
 * the value and the accepted forms, and the instance still gets its snapshot set
 * (crash-consistent, tagged crash-fallback with the reason): nothing else is lost.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SnapshotSetRequest } from '../../lib/domain/backupPlan.ts';
import { chooseConsistency } from '../../lib/domain/consistency.ts';
import { InvalidScheduleDefinitionError } from '../../lib/domain/errors.ts';
import { parseScheduleCatalog } from '../../lib/domain/schedules.ts';
import { tagKeys } from '../../lib/domain/tagKeys.ts';
import { takeConsistentSet } from '../../lib/jobs/consistentSnapshotSet.ts';
import type { RunCommandPort } from '../../lib/jobs/ports.ts';
import { silentLogger } from '../../lib/jobs/runReport.ts';
import { takeVssSet } from '../../lib/jobs/vssSnapshotSet.ts';

interface ConsistencyCase {
  readonly name: string;
  readonly input: { readonly tags: Readonly<Record<string, string>> };
  readonly expect: {
    readonly field: string;
    readonly messageIncludes: readonly string[];
    readonly accepted?: boolean;
  };
  readonly safe: {
    readonly outcome: 'app' | 'crash' | 'crash-fallback' | 'skipped';
    readonly setMade: boolean;
  };
}

const cases: ConsistencyCase[] = JSON.parse(
  readFileSync(new URL('../fixtures/bad-input/consistency.json', import.meta.url), 'utf8'),
);
const keys = tagKeys();
const request: SnapshotSetRequest = {
  instanceId: 'i-corpus',
  excludeBootVolume: false,
  excludeDataVolumeIds: [],
  included: [],
  excluded: [],
  description: 'corpus',
  tags: [],
};
/** A managed instance whose scripts succeed. */
const ssm: RunCommandPort = {
  sendCommand: async () => 'cmd-1',
  commandInvocation: async () => ({ state: 'success', detail: 'Success' }),
};

describe('bad input: snapkeeper:consistency', () => {
  it('holds cases for empty, blank, unicode, huge, negative, 1e9, float, trailing-comma, schedule-name, aws: and mixed-case values', () => {
    const values = cases.map((c) => c.input.tags[keys.consistency] ?? '');
    expect(values).toEqual(expect.arrayContaining(['', '   ', '1e9', '-1', 'daily', 'FSFreeze']));
    expect(values.some((v) => v.length >= 256)).toBe(true);
    expect(values.some((v) => [...v].some((ch) => (ch.codePointAt(0) ?? 0) > 0x7f))).toBe(true);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const choice = chooseConsistency(c.input.tags, keys.consistency, undefined);
    const made: SnapshotSetRequest[] = [];
    const create = async (r: SnapshotSetRequest) => {
      made.push(r);
      return [];
    };
    const deps = { ssm, keys, logger: silentLogger, timeoutSeconds: 5, pollMs: 1 };
    // vss goes through AWS's document, as in a backup run; here it makes no set to find.
    const result =
      choice.mode.kind === 'vss'
        ? await takeVssSet(request, choice, create, async () => undefined, deps)
        : await takeConsistentSet(request, choice, create, deps);
    expect(result.consistency.outcome).toBe(c.safe.outcome);
    expect(made.length > 0).toBe(c.safe.setMade);
    if (c.expect.accepted) {
      expect(choice.problem).toBeUndefined();
    } else {
      const problem = choice.problem ?? '';
      expect(problem).toContain(c.expect.field);
      for (const part of c.expect.messageIncludes) expect(problem).toContain(part);
      expect(problem.length).toBeLessThan(1_000);
      // The problem reaches the run report, and the set's reason tag.
      expect(result.consistency.problems).toContain(problem);
      expect(made[0]?.tags.find((t) => t.Key === keys.consistencyReason)?.Value).toBeTruthy();
    }
    for (const part of c.expect.accepted ? c.expect.messageIncludes : []) {
      expect(result.consistency.reason).toContain(part);
    }
  });
});

describe('bad input: the schedule option consistency', () => {
  const daily = { name: 'daily', cron: 'cron(0 3 * * ? *)', retain: 7 };
  it.each([
    ['', 'is empty'],
    ['freeze', 'is not a consistency mode'],
    ['ssm:db flush', 'not a valid SSM document name'],
    ['crash!', 'means nothing'],
  ])('refuses %j naming the schedule and the fix (%s)', (value, why) => {
    let caught: unknown;
    try {
      parseScheduleCatalog([{ ...daily, consistency: value }]);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidScheduleDefinitionError);
    expect((caught as Error).message).toContain('schedule "daily" consistency');
    expect((caught as Error).message).toContain(why);
    expect((caught as Error).message).toContain('use crash, fsfreeze, vss or ssm:<document>');
  });

  it('refuses a non-string option naming the field', () => {
    expect(() => parseScheduleCatalog([{ ...daily, consistency: 7 }])).toThrow(/consistency/);
  });
});
