import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CreatedSnapshot } from '../../lib/aws/Ec2Gateway.ts';
import {
  type BackupContext,
  type InstanceBackupDecision,
  type InstanceFacts,
  planInstanceBackup,
  type SnapshotSetRequest,
} from '../../lib/domain/backupPlan.ts';
import { InvalidEventError, InvalidScheduleDefinitionError } from '../../lib/domain/errors.ts';
import {
  type ImageContext,
  type InstanceImageDecision,
  planInstanceImage,
  withUniqueNames,
} from '../../lib/domain/imagePlan.ts';
import { retentionRuleFor } from '../../lib/domain/retentionPolicy.ts';
import {
  DEFAULT_SCHEDULES,
  parseScheduleCatalog,
  resolveSchedule,
} from '../../lib/domain/schedules.ts';
import type { SnapshotFacts } from '../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../lib/domain/tagKeys.ts';
import { quoteShort, type TagMap, type TagProblem } from '../../lib/domain/tagPolicy.ts';
import { type BackupJobDependencies, runBackupJob } from '../../lib/jobs/backupJob.ts';
import { parseAmiEvent, parseRetentionEvent, parseScheduledEvent } from '../../lib/jobs/events.ts';
import { parseOpsPayload } from '../../lib/jobs/opsPayload.ts';
import { silentLogger } from '../../lib/jobs/runReport.ts';
import { parseTagDispatchEvent } from '../../lib/jobs/tagScheduleEvents.ts';

// ---------------------------------------------------------------------------------------
// The corpus: test/fixtures/bad-input/*.json
// ---------------------------------------------------------------------------------------

/** A malformed (or deliberately odd) tag, and what snapkeeper must make of it. */
interface TagCase {
  readonly name: string;
  readonly on: 'instance' | 'volume';
  readonly input: {
    /** The tags of the resource named by `on`. */
    readonly tags: Readonly<Record<string, string>>;
    /** For `on: volume`, the tags of the instance the volume is attached to. */
    readonly instanceTags?: Readonly<Record<string, string>>;
  };
  readonly expect: {
    /** The tag key the problem must name (or the key that must be ignored). */
    readonly field: string;
    readonly messageIncludes: readonly string[];
    readonly messageExcludes?: readonly string[];
    /** How many problems the planner reporting the key may raise for it. */
    readonly problemCount?: number;
    /** A documented value read without a problem. */
    readonly accepted?: boolean;
    /** A key that is not ours (an `aws:` twin, another vendor's): never read, never a problem. */
    readonly ignored?: boolean;
    /**
     * A key that misses one of ours (case, spaces, a typo): never read, but reported as a
     * problem naming it, in the runs of the key it was meant to be.
     */
    readonly nearMissOf?: string;
  };
  readonly safe: {
    /** Backed up in the runs of `schedules` (default: daily). */
    readonly backedUp?: boolean;
    readonly schedules?: readonly string[];
    readonly bootIncluded?: boolean;
    readonly volumeIncluded?: boolean;
    /** A retention rule exists (false: retention keeps everything). */
    readonly retentionRule?: boolean;
    /** An AMI is made in the runs of `schedules` (default: daily). */
    readonly imaged?: boolean;
    readonly noReboot?: boolean;
  };
}

/** A malformed console payload or schedule event, and the error it must get. */
interface RejectedCase {
  readonly name: string;
  readonly parser?: 'scheduled' | 'retention' | 'ami' | 'tag';
  readonly input: unknown;
  readonly expect: { readonly field: string; readonly messageIncludes: readonly string[] };
}

const corpus = <T>(file: string): T[] =>
  JSON.parse(readFileSync(new URL(`../fixtures/bad-input/${file}`, import.meta.url), 'utf8'));

const tagCases = corpus<TagCase>('tags.json');
const payloadCases = corpus<RejectedCase>('console-payloads.json');
const eventCases = corpus<RejectedCase>('schedule-events.json');
const scheduleOptionCases = corpus<RejectedCase>('schedule-options.json');

/** `it.each` rows titled by the case's full name. */
const named = <T extends { readonly name: string }>(cases: readonly T[]): [string, T][] =>
  cases.map((c) => [c.name, c]);

/** Messages quote what they were given cut short; none should be longer than this. */
const MAX_MESSAGE_LENGTH = 1_000;

/**
 * Expands the corpus' markers: `{"$large": bytes, "base": {...}, "fill": "string" | "array"
 * | "keys", "field": "..."}` grows `base` past `bytes` of JSON (a string field, a list of
 * instance ids, or many extra fields), and `{"$repeat": value, "times": n}` is a list.
 */
function materialise(input: unknown): unknown {
  if (Array.isArray(input)) return input.map(materialise);
  if (input === null || typeof input !== 'object') return input;
  const marker = input as Record<string, unknown>;
  if (typeof marker.$large === 'number') return large(marker);
  if (typeof marker.times === 'number' && '$repeat' in marker) {
    return Array.from({ length: marker.times }, () => marker.$repeat);
  }
  // Object.fromEntries defines own properties, so a `__proto__` key stays a plain field.
  return Object.fromEntries(Object.entries(marker).map(([k, v]) => [k, materialise(v)]));
}

function large(marker: Record<string, unknown>): Record<string, unknown> {
  const bytes = marker.$large as number;
  const base = { ...(marker.base as Record<string, unknown>) };
  const field = String(marker.field ?? 'padding');
  const size = (value: unknown) => Buffer.byteLength(JSON.stringify(value));
  if (marker.fill === 'keys') {
    const grown: Record<string, unknown> = { ...base };
    // Each `"k<i>":0,` adds its own length; counted as it grows, not re-serialised.
    for (let i = 0, total = size(base); total < bytes; i += 1) {
      grown[`k${i}`] = 0;
      total += `"k${i}":0,`.length;
    }
    return grown;
  }
  if (marker.fill === 'array') {
    const id = 'i-0123456789abcdef0';
    const count = Math.ceil((bytes - size(base)) / (id.length + 3)) + 1;
    return { ...base, [field]: Array.from({ length: count }, () => id) };
  }
  return { ...base, [field]: 'x'.repeat(Math.max(0, bytes - size(base))) };
}

// ---------------------------------------------------------------------------------------
// The real planners, with the deployment's default schedules
// ---------------------------------------------------------------------------------------

const keys = tagKeys();
const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES);
const SCHEDULES = [...catalog.schedules.keys()];
const SLOT = '2026-11-23T03:00:00Z';
const RUN_ID = '20261123T030007Z-a1b2c3d4';
const NOW = new Date('2026-11-23T03:00:07.000Z');
const ROOT_DEVICE = '/dev/xvda';
const DATA_DEVICE = '/dev/sdf';
const OUR_KEYS = [
  keys.backup,
  keys.retain,
  keys.retainDays,
  keys.retainTiers,
  keys.excludeBoot,
  keys.skip,
  keys.ami,
  keys.amiReboot,
  keys.amiRetain,
];
/** Every key the corpus uses; copied from instances when it is safe, so `aws:` keys are asked for. */
const COPY_TAGS = [
  ...new Set(tagCases.flatMap((c) => Object.keys({ ...c.input.tags, ...c.input.instanceTags }))),
];

const backupContext = (
  schedule: string,
  volumeTags: ReadonlyMap<string, TagMap> = new Map(),
): BackupContext => ({
  keys,
  catalog,
  schedule,
  slot: SLOT,
  deployment: 'test',
  runId: RUN_ID,
  createdAt: NOW.toISOString(),
  copyTags: COPY_TAGS,
  volumeTags,
});

const imageContext = (schedule: string): ImageContext => ({
  keys,
  catalog,
  schedule,
  slot: SLOT,
  deployment: 'test',
  runId: RUN_ID,
  createdAt: NOW.toISOString(),
  copyTags: COPY_TAGS,
});

/** An instance with a root and a data volume; the case's tags on the instance or the data volume. */
function factsOf(
  c: TagCase,
  id: string,
): { instance: InstanceFacts; volumeTags: Map<string, TagMap> } {
  const root = { volumeId: `vol-${id}-root`, deviceName: ROOT_DEVICE };
  const data = { volumeId: `vol-${id}-data`, deviceName: DATA_DEVICE };
  const instanceTags = c.on === 'volume' ? (c.input.instanceTags ?? {}) : c.input.tags;
  return {
    instance: {
      instanceId: `i-${id}`,
      state: 'running',
      rootDeviceName: ROOT_DEVICE,
      tags: instanceTags,
      volumes: [root, data],
    },
    volumeTags: new Map(c.on === 'volume' ? [[data.volumeId, c.input.tags]] : []),
  };
}

interface Evaluation {
  readonly instance: InstanceFacts;
  readonly backup: ReadonlyMap<string, InstanceBackupDecision>;
  readonly image: ReadonlyMap<string, InstanceImageDecision>;
  readonly retention: ReturnType<typeof retentionRuleFor>;
  readonly amiRetention: ReturnType<typeof retentionRuleFor>;
}

/** Runs one case through every planner that reads tags, for every schedule. */
function evaluate(c: TagCase, id = 'corpus'): Evaluation {
  const { instance, volumeTags } = factsOf(c, id);
  const daily = resolveSchedule(catalog, 'daily');
  return {
    instance,
    backup: new Map(
      SCHEDULES.map((s) => [s, planInstanceBackup(instance, backupContext(s, volumeTags))]),
    ),
    image: new Map(SCHEDULES.map((s) => [s, planInstanceImage(instance, imageContext(s))])),
    retention: retentionRuleFor(daily, instance.tags, instance.instanceId, keys, catalog),
    amiRetention: retentionRuleFor(
      daily,
      instance.tags,
      instance.instanceId,
      keys,
      catalog,
      keys.amiRetain,
    ),
  };
}

const problemsOf = (decision: InstanceBackupDecision | InstanceImageDecision | undefined) =>
  decision && 'problems' in decision ? decision.problems : [];

/** Every problem any planner raised for the case, as raised (not deduplicated). */
function allProblems(e: Evaluation): TagProblem[] {
  return [
    ...[...e.backup.values()].flatMap(problemsOf),
    ...[...e.image.values()].flatMap(problemsOf),
    ...e.retention.problems,
    ...e.amiRetention.problems,
  ];
}

/** The problems raised by the planner that reads the case's key, in the case's first schedule. */
function problemsOfReader(c: TagCase, e: Evaluation): readonly TagProblem[] {
  const schedule = c.safe.schedules?.[0] ?? 'daily';
  switch (c.expect.nearMissOf ?? c.expect.field) {
    case keys.backup:
    case keys.excludeBoot:
    case keys.skip:
      return problemsOf(e.backup.get(schedule));
    case keys.ami:
    case keys.amiReboot:
      return problemsOf(e.image.get(schedule));
    case keys.amiRetain:
      // A near miss of the AMI count is reported by the AMI runs too.
      return c.expect.nearMissOf ? problemsOf(e.image.get(schedule)) : e.amiRetention.problems;
    default:
      return e.retention.problems;
  }
}

const tagValueOf = (c: TagCase): string => c.input.tags[c.expect.field] ?? '';
const reported = tagCases.filter((c) => !c.expect.accepted && !c.expect.ignored);
const quiet = tagCases.filter((c) => c.expect.accepted || c.expect.ignored);
const withBackupSafety = tagCases.filter((c) => c.safe.backedUp !== undefined);
const withImageSafety = tagCases.filter((c) => c.safe.imaged !== undefined);
const withRetentionSafety = tagCases.filter((c) => c.safe.retentionRule !== undefined);

/** The error a parser throws for an input, or a failure when it accepts it. */
function rejection(parse: () => unknown): unknown {
  try {
    parse();
  } catch (error) {
    return error;
  }
  return new Error('accepted: no error was thrown');
}

const hasControlCharacter = (text: string): boolean =>
  [...text].some((ch) => (ch.codePointAt(0) ?? 0) < 0x20 || ch === '\u007f');

function expectSpecificRejection(error: unknown, c: RejectedCase): void {
  expect(error).toBeInstanceOf(InvalidEventError);
  const message = (error as Error).message;
  expect(message).toContain(c.expect.field);
  for (const fragment of c.expect.messageIncludes) expect(message).toContain(fragment);
  expect(message.length, 'the message stays short whatever the input size').toBeLessThanOrEqual(
    MAX_MESSAGE_LENGTH,
  );
  expect(hasControlCharacter(message), `control characters in ${JSON.stringify(message)}`).toBe(
    false,
  );
}

// ---------------------------------------------------------------------------------------

describe('Bad input corpus (test/fixtures/bad-input)', () => {
  describe('the corpus itself', () => {
    it('holds at least 200 cases in all, with unique names per file', () => {
      // Assess
      expect(tagCases.length + payloadCases.length + eventCases.length).toBeGreaterThanOrEqual(200);
      for (const cases of [tagCases, payloadCases, eventCases]) {
        expect(cases.length).toBeGreaterThan(30);
        const names = cases.map((c) => c.name);
        expect(new Set(names).size).toBe(names.length);
      }
    });

    it.each(OUR_KEYS)(
      'covers %s with empty, blank, unicode, huge, negative, 1e9, zero, float, duplicate, trailing-comma, schedule-name, aws: and mixed-case inputs',
      (key) => {
        // Prepare
        const cases = tagCases.filter(
          (c) => c.expect.field === key || c.expect.field.toLowerCase().endsWith(key.toLowerCase()),
        );
        const values = cases.filter((c) => c.expect.field === key).map(tagValueOf);
        const entries = (v: string) => v.split(',').map((e) => e.split('=')[0]?.trim());
        const covered = {
          empty: values.some((v) => v === ''),
          blank: values.some((v) => v !== '' && v.trim() === ''),
          unicode: values.some((v) => [...v].some((ch) => (ch.codePointAt(0) ?? 0) > 0x7f)),
          huge: values.some((v) => v.length >= 256),
          negative: values.some((v) => /(^|=)-\d/.test(v)),
          '1e9': values.some((v) => v.includes('1e9')),
          zero: values.some((v) => /(^|=)0$/.test(v)),
          float: values.some((v) => /\d\.\d/.test(v)),
          duplicates: values.some((v) => new Set(entries(v)).size < entries(v).length),
          trailingComma: values.some((v) => /,\s*$/.test(v)),
          scheduleName: values.some((v) => /dialy|hourly|daily|weekly/.test(v)),
          awsKey: cases.some((c) => Object.keys(c.input.tags).includes(`aws:${key}`)),
          mixedCaseKey: cases.some((c) =>
            Object.keys(c.input.tags).some((k) => k !== key && k.toLowerCase() === key),
          ),
        };

        // Assess
        expect(Object.entries(covered).filter(([, ok]) => !ok)).toEqual([]);
      },
    );

    it.each(
      named(
        [...payloadCases, ...eventCases].filter((c) => JSON.stringify(c.input).includes('$large')),
      ),
    )('%s: grown past its marked size', (_name, c) => {
      // Act
      const input = materialise(c.input);

      // Assess
      const marked = JSON.stringify(c.input).match(/"\$large":(\d+)/)?.[1];
      expect(Buffer.byteLength(JSON.stringify(input))).toBeGreaterThanOrEqual(Number(marked));
    });
  });

  describe('Tags: planInstanceBackup, planInstanceImage and retentionRuleFor', () => {
    it.each(named(tagCases))('%s: read without throwing, in every schedule', (_name, c) => {
      // Act & assess
      expect(() => evaluate(c)).not.toThrow();
    });

    it.each(named(reported))('%s: reported, naming the key and its value', (_name, c) => {
      // Prepare
      const value = tagValueOf(c);

      // Act
      const evaluation = evaluate(c);
      const mine = problemsOfReader(c, evaluation).filter((p) => p.key === c.expect.field);

      // Assess: at least one problem, each naming the key and the value (cut short if huge)
      expect(mine.length, 'problems naming the key').toBeGreaterThan(0);
      const resourceId = c.on === 'volume' ? 'vol-corpus-data' : evaluation.instance.instanceId;
      for (const problem of mine) {
        expect(problem.resourceId).toBe(resourceId);
        expect(problem.value).toBe(value);
        expect(problem.message).toContain(`${c.expect.field}=${quoteShort(value)}`);
        if (value.length > 64) expect(problem.message).not.toContain(value);
        for (const excluded of c.expect.messageExcludes ?? []) {
          expect(problem.message).not.toContain(excluded);
        }
      }
      const messages = mine.map((p) => p.message);
      expect(
        messages.some((m) => c.expect.messageIncludes.every((fragment) => m.includes(fragment))),
        `no message holds ${JSON.stringify(c.expect.messageIncludes)}:\n${messages.join('\n')}`,
      ).toBe(true);
      if (c.expect.problemCount !== undefined) {
        expect(messages, 'each distinct problem once').toHaveLength(c.expect.problemCount);
      }
    });

    it.each(named(quiet))('%s: taken without a problem', (_name, c) => {
      // Act
      const problems = allProblems(evaluate(c));

      // Assess
      expect(problems.map((p) => p.message)).toEqual([]);
    });

    it.each(named(withBackupSafety))('%s: backed up on the safe side', (_name, c) => {
      // Act
      const evaluation = evaluate(c);

      // Assess
      for (const schedule of c.safe.schedules ?? ['daily']) {
        const decision = evaluation.backup.get(schedule);
        if (c.safe.backedUp) {
          expect(decision?.kind, `backup in the ${schedule} run`).toBe('backup');
        } else if (
          (c.expect.field === keys.backup || c.expect.nearMissOf === keys.backup) &&
          !c.expect.accepted &&
          !c.expect.ignored
        ) {
          // A wholly unreadable opt-in: reported as an error in every run, never silent.
          expect(decision).toMatchObject({ kind: 'skip', isError: true });
          const reason = decision?.kind === 'skip' ? decision.reason : '';
          for (const p of problemsOf(decision)) expect(reason).toContain(p.message);
        } else {
          expect(decision?.kind, `nothing in the ${schedule} run`).toBe('not-due');
        }
        if (decision?.kind !== 'backup') continue;
        const request: SnapshotSetRequest = decision.request;
        const included = request.included.map((v) => v.deviceName);
        if (c.safe.bootIncluded !== undefined) {
          expect(included.includes(ROOT_DEVICE)).toBe(c.safe.bootIncluded);
          expect(request.excludeBootVolume).toBe(!c.safe.bootIncluded);
        }
        if (c.safe.volumeIncluded !== undefined) {
          expect(included.includes(DATA_DEVICE)).toBe(c.safe.volumeIncluded);
          expect(request.excludeDataVolumeIds.length === 0).toBe(c.safe.volumeIncluded);
        }
        expect(request.tags.filter((t) => t.Key.toLowerCase().startsWith('aws:'))).toEqual([]);
      }
    });

    it.each(named(withImageSafety))('%s: AMIs made on the safe side', (_name, c) => {
      // Act
      const evaluation = evaluate(c);

      // Assess
      for (const schedule of c.safe.schedules ?? ['daily']) {
        const decision = evaluation.image.get(schedule);
        expect(decision?.kind, `AMI in the ${schedule} run`).toBe(
          c.safe.imaged
            ? 'create'
            : (c.expect.field === keys.ami || c.expect.nearMissOf === keys.ami) &&
                reported.includes(c)
              ? 'skip'
              : 'not-due',
        );
        if (decision?.kind !== 'create') continue;
        if (c.safe.noReboot !== undefined) expect(decision.request.noReboot).toBe(c.safe.noReboot);
        expect(decision.request.tags.filter((t) => t.Key.toLowerCase().startsWith('aws:'))).toEqual(
          [],
        );
      }
    });

    it.each(named(withRetentionSafety))(
      '%s: retention keeps everything unless the rule is readable',
      (_name, c) => {
        // Act
        const evaluation = evaluate(c);
        const result =
          c.expect.field === keys.amiRetain ? evaluation.amiRetention : evaluation.retention;

        // Assess
        expect(result.rule !== undefined, JSON.stringify(result)).toBe(c.safe.retentionRule);
        if (!c.safe.retentionRule) expect(result.problems.length).toBeGreaterThan(0);
      },
    );
  });

  describe('a mixed fleet: bad tags never change a good instance', () => {
    const GOOD: readonly TagCase[] = [
      {
        name: 'good-true',
        on: 'instance',
        input: { tags: { Name: 'good-true', [keys.backup]: 'true', [keys.ami]: 'daily' } },
        expect: { field: keys.backup, messageIncludes: [] },
        safe: {},
      },
      {
        name: 'good-list',
        on: 'instance',
        input: {
          tags: {
            Name: 'good-list',
            [keys.backup]: 'daily,weekly',
            [keys.excludeBoot]: 'true',
            [keys.retain]: 'daily=14,weekly=8',
            [keys.ami]: 'daily',
            [keys.amiReboot]: 'true',
          },
        },
        expect: { field: keys.backup, messageIncludes: [] },
        safe: {},
      },
      {
        name: 'good-tiers',
        on: 'instance',
        input: {
          tags: {
            Name: 'good-tiers',
            [keys.backup]: 'Daily',
            [keys.retainDays]: '3',
            [keys.retainTiers]: 'daily=7,weekly=4',
            [keys.amiRetain]: '4',
          },
        },
        expect: { field: keys.backup, messageIncludes: [] },
        safe: {},
      },
    ];
    const bad = tagCases.map((c, i) => ({ c, ...factsOf(c, `bad${i}`) }));
    const good = GOOD.map((c, i) => ({ c, ...factsOf(c, `good${i}`) }));
    // Good instances first, in the middle and last of the list.
    const middle = Math.floor(bad.length / 2);
    const fleet = [good[0], ...bad.slice(0, middle), good[1], ...bad.slice(middle), good[2]].filter(
      (entry) => entry !== undefined,
    );
    const volumeTags = new Map(fleet.flatMap((entry) => [...entry.volumeTags]));

    it('plans every good instance exactly as it is planned alone', () => {
      for (const schedule of SCHEDULES) {
        // Act
        const together = fleet.map((f) =>
          planInstanceBackup(f.instance, backupContext(schedule, volumeTags)),
        );
        const images = withUniqueNames(
          fleet.map((f) => planInstanceImage(f.instance, imageContext(schedule))),
          imageContext(schedule),
        );

        // Assess
        for (const g of good) {
          const alone = planInstanceBackup(g.instance, backupContext(schedule, g.volumeTags));
          const index = fleet.indexOf(g);
          expect(together[index], `${g.c.name} in the ${schedule} run`).toEqual(alone);
          if (alone.kind !== 'not-due') expect(alone.problems).toEqual([]);
          const imageAlone = withUniqueNames(
            [planInstanceImage(g.instance, imageContext(schedule))],
            imageContext(schedule),
          )[0];
          expect(images[index], `${g.c.name} AMI in the ${schedule} run`).toEqual(imageAlone);
        }
      }
    });

    it('backs up every good instance in one run, reports each bad tag by key and value, and ends partial', async () => {
      // Prepare
      const ec2 = new InMemoryEc2(
        fleet.map((f) => f.instance),
        volumeTags,
      );

      // Act
      const report = await runBackupJob(
        { schedule: 'daily', scheduledTime: new Date(SLOT), dryRun: false, trigger: 'schedule' },
        {
          ec2,
          config: {
            deployment: 'test',
            keys,
            catalog,
            copyTags: COPY_TAGS,
            backupConcurrency: 4,
            manualRetainDays: 30,
          },
          clock: () => NOW,
          runId: RUN_ID,
          logger: silentLogger,
        },
      );

      // Assess: the run
      expect(report.status).toBe('partial');
      expect(report.counts.failed).toBe(0);
      const byId = new Map(report.instances.map((r) => [r.instanceId, r]));

      // Assess: every good instance is backed up, without a problem
      for (const g of good) {
        const result = byId.get(g.instance.instanceId);
        expect(result?.outcome, g.c.name).toBe('created');
        expect(result?.problems).toBeUndefined();
      }
      expect(ec2.requests.map((r) => r.instanceId)).toEqual(
        expect.arrayContaining(good.map((g) => g.instance.instanceId)),
      );

      // Assess: every bad instance the daily run reads is reported by key and value, and
      // backed up when its case says the safe side is to back up
      for (const b of bad) {
        if (!reported.includes(b.c) || b.c.safe.backedUp === undefined) continue;
        if (![keys.backup, keys.excludeBoot, keys.skip, keys.retain].includes(b.c.expect.field))
          continue;
        if ((b.c.safe.schedules ?? ['daily'])[0] !== 'daily') continue;
        const result = byId.get(b.instance.instanceId);
        const expected = `${b.c.expect.field}=${quoteShort(tagValueOf(b.c))}`;
        expect(result?.problems ?? [], b.c.name).toEqual(
          expect.arrayContaining([expect.stringContaining(expected)]),
        );
        expect(result?.outcome, b.c.name).toBe(b.c.safe.backedUp ? 'created' : 'skipped');
      }
    });
  });

  describe('Console payloads: parseOpsPayload', () => {
    it.each(named(payloadCases))(
      '%s: rejected with an InvalidEventError naming the field',
      (_name, c) => {
        // Prepare
        const input = materialise(c.input);

        // Act
        const error = rejection(() => parseOpsPayload(input, catalog));

        // Assess
        expectSpecificRejection(error, c);
      },
    );
  });

  describe('Schedule options (custom.schedules): parseScheduleCatalog', () => {
    it.each(named(scheduleOptionCases))(
      '%s: rejected naming the schedule and the option',
      (_name, c) => {
        // Prepare
        const daily = { name: 'daily', cron: 'cron(0 3 * * ? *)', retain: 7 };

        // Act
        const error = rejection(() => parseScheduleCatalog([{ ...daily, restoreTests: c.input }]));

        // Assess
        expect(error).toBeInstanceOf(InvalidScheduleDefinitionError);
        const message = (error as Error).message;
        expect(message).toContain('schedule "daily"');
        expect(message).toContain(c.expect.field);
        for (const fragment of c.expect.messageIncludes) expect(message).toContain(fragment);
      },
    );
  });

  describe('Schedule events: parseScheduledEvent, parseRetentionEvent and parseAmiEvent', () => {
    const parsers = {
      scheduled: parseScheduledEvent,
      retention: parseRetentionEvent,
      ami: parseAmiEvent,
      tag: (event: unknown, _catalog: unknown) => parseTagDispatchEvent(event),
    } as const;

    it.each(named(eventCases))(
      '%s: rejected with an InvalidEventError naming the field',
      (_name, c) => {
        // Prepare
        const input = materialise(c.input);
        const parse = parsers[c.parser ?? 'scheduled'];

        // Act
        const error = rejection(() => parse(input, catalog));

        // Assess
        expectSpecificRejection(error, c);
      },
    );
  });
});

type BackupEc2 = BackupJobDependencies['ec2'];

/**
 * An in-memory EC2 behind the gateway interface the backup job uses: it lists the
 * instances carrying a tag key (as the EC2 `tag-key` filter does, case-sensitively),
 * the volume tags carrying a key, and answers each snapshot set with its volumes.
 */
class InMemoryEc2 implements BackupEc2 {
  public readonly requests: SnapshotSetRequest[] = [];
  readonly #instances: readonly InstanceFacts[];
  readonly #volumeTags: ReadonlyMap<string, TagMap>;

  public constructor(instances: readonly InstanceFacts[], volumeTags: ReadonlyMap<string, TagMap>) {
    this.#instances = instances;
    this.#volumeTags = volumeTags;
  }

  public async *listInstancesWithTagKey(tagKey: string): AsyncGenerator<InstanceFacts> {
    for (const instance of this.#instances)
      if (Object.hasOwn(instance.tags, tagKey)) yield instance;
  }

  public async *listInstancesByIds(ids: readonly string[]): AsyncGenerator<InstanceFacts> {
    for (const instance of this.#instances) if (ids.includes(instance.instanceId)) yield instance;
  }

  public async volumeTagsWithKey(tagKey: string): Promise<Map<string, TagMap>> {
    return new Map([...this.#volumeTags].filter(([, tags]) => Object.hasOwn(tags, tagKey)));
  }

  public async createSnapshotSet(request: SnapshotSetRequest): Promise<CreatedSnapshot[]> {
    this.requests.push(request);
    return request.included.map((v) => ({
      snapshotId: `snap-${v.volumeId}`,
      volumeId: v.volumeId,
      sizeGiB: 8,
      state: 'pending',
    }));
  }

  public async *listSnapshotsTagged(): AsyncGenerator<SnapshotFacts> {
    yield* [];
  }

  public async deleteSnapshot(): Promise<void> {
    throw new Error('the backup of a fresh slot deletes nothing');
  }
}
