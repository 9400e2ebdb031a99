/**
 * Application-consistent snapshot sets (issue 21, part 1): what the instance tag
 * `snapkeeper:consistency` and the schedule option `consistency` mean, which one wins,
 * and how a set's outcome is written on its snapshots. Pure: no SDK, no clock, no I/O.
 */
import { InvalidTagError } from './errors.ts';
import type { TagKeys } from './tagKeys.ts';

/** The document snapkeeper ships for `fsfreeze` (deploy/ssm/snapkeeper-fsfreeze.yml). */
export const FSFREEZE_DOCUMENT = 'snapkeeper-fsfreeze';

/** AWS's own document for VSS-enabled snapshots of Windows instances. */
export const VSS_DOCUMENT = 'AWSEC2-CreateVssSnapshot';

/** The default wait for {@link VSS_DOCUMENT}, in seconds: VSS freezes, snapshots and tags. */
export const DEFAULT_VSS_TIMEOUT_SECONDS = 180;

/** The default wait for the pre script, in seconds (`CONSISTENCY_TIMEOUT_SECONDS`). */
export const DEFAULT_PRE_TIMEOUT_SECONDS = 30;

/**
 * How a set is made consistent. `strict` is the trailing `!`: no fallback, the instance
 * is skipped and reported when the application-consistent path fails.
 */
export type ConsistencyMode =
  | { readonly kind: 'crash'; readonly strict: false }
  | { readonly kind: 'fsfreeze'; readonly strict: boolean }
  | { readonly kind: 'vss'; readonly strict: boolean }
  | {
      readonly kind: 'ssm';
      readonly strict: boolean;
      readonly document: string;
      readonly version?: string | undefined;
    };

/** What a set got, written as the `snapkeeper:consistency` tag of its snapshots. */
export type ConsistencyOutcome = 'app' | 'crash' | 'crash-fallback';

/** The crash-consistent default. */
export const CRASH: ConsistencyMode = { kind: 'crash', strict: false };

// SSM document names: 3-128 of letters, digits, `_`, `-`, `.` (SSM API reference, CreateDocument).
const DOCUMENT_NAME = /^[A-Za-z0-9_.-]{3,128}$/;
// A document version: a number, or `$LATEST` / `$DEFAULT` (SendCommand DocumentVersion).
const DOCUMENT_VERSION = /^([1-9][0-9]{0,5}|\$LATEST|\$DEFAULT)$/;

/**
 * Parses a consistency value (the instance tag or the schedule option).
 *
 * @param where the tag key or option name, for the error message.
 * @throws {InvalidTagError} naming the key, the value and the accepted forms.
 * @example
 * parseConsistency('fsfreeze!', 'snapkeeper:consistency'); // { kind: 'fsfreeze', strict: true }
 * parseConsistency('ssm:db-flush:3', 'snapkeeper:consistency').document; // 'db-flush'
 */
export function parseConsistency(value: string, where: string): ConsistencyMode {
  const trimmed = value.trim();
  const strict = trimmed.endsWith('!');
  const body = (strict ? trimmed.slice(0, -1) : trimmed).trim();
  const lower = body.toLowerCase();
  const fail = (why: string): never => {
    throw new InvalidTagError(
      where,
      value,
      `${why}; use crash, fsfreeze, vss or ssm:<document>[:<version>], with a trailing ! for "no fallback: skip and report"`,
    );
  };
  if (lower === 'crash') {
    if (strict) fail('"crash!" means nothing (crash-consistent is the fallback itself)');
    return CRASH;
  }
  if (lower === 'fsfreeze') return { kind: 'fsfreeze', strict };
  if (lower === 'vss') return { kind: 'vss', strict };
  if (lower.startsWith('ssm:')) {
    const [document = '', version, ...rest] = body.slice(4).split(':');
    if (rest.length > 0) fail('has too many ":"');
    if (!DOCUMENT_NAME.test(document)) {
      fail(
        `names the document ${JSON.stringify(document)}, which is not a valid SSM document name`,
      );
    }
    if (version !== undefined && !DOCUMENT_VERSION.test(version)) {
      fail(
        `names the version ${JSON.stringify(version)}; a version is a number, $LATEST or $DEFAULT`,
      );
    }
    return { kind: 'ssm', strict, document, ...(version !== undefined ? { version } : {}) };
  }
  return fail(body === '' ? 'is empty' : 'is not a consistency mode');
}

/** The mode a set gets, where it came from, and a tag problem to report if any. */
export interface ConsistencyChoice {
  readonly mode: ConsistencyMode;
  readonly source: 'tag' | 'schedule' | 'default';
  /** Set when the instance tag could not be read: the set is crash-consistent, and this is reported. */
  readonly problem?: string | undefined;
}

/**
 * Chooses the mode of one instance's set: **the instance tag wins** over the schedule's
 * `consistency` option (like every other instance tag over its schedule's default), and
 * crash-consistent when neither says. A tag that cannot be read gives a crash-consistent
 * set with the problem reported: the backup is never lost to a typo.
 *
 * @example
 * chooseConsistency({ 'snapkeeper:consistency': 'fsfreeze' }, 'snapkeeper:consistency', undefined).mode.kind; // 'fsfreeze'
 */
export function chooseConsistency(
  tags: Readonly<Record<string, string>>,
  tagKey: string,
  scheduleMode: ConsistencyMode | undefined,
): ConsistencyChoice {
  const value = tags[tagKey];
  if (value !== undefined) {
    try {
      return { mode: parseConsistency(value, tagKey), source: 'tag' };
    } catch (error) {
      return {
        mode: CRASH,
        source: 'default',
        problem: `${error instanceof Error ? error.message : String(error)}; this set is crash-consistent`,
      };
    }
  }
  if (scheduleMode) return { mode: scheduleMode, source: 'schedule' };
  return { mode: CRASH, source: 'default' };
}

/**
 * The choice a backup plan carries for one instance's set in one schedule's run: the
 * instance tag, else the schedule's `consistency` option (validated with the catalog;
 * an unreadable one here counts as absent), else crash. Undefined for the plain default
 * (no tag, no option), so that such a set's request is as it always was.
 *
 * @example
 * planConsistency({ 'snapkeeper:consistency': 'fsfreeze' }, keys, undefined)?.mode.kind; // 'fsfreeze'
 */
export function planConsistency(
  tags: Readonly<Record<string, string>>,
  keys: Pick<TagKeys, 'consistency'>,
  scheduleOption: string | undefined,
): ConsistencyChoice | undefined {
  let scheduleMode: ConsistencyMode | undefined;
  try {
    scheduleMode =
      scheduleOption === undefined ? undefined : parseConsistency(scheduleOption, 'consistency');
  } catch {
    scheduleMode = undefined;
  }
  const choice = chooseConsistency(tags, keys.consistency, scheduleMode);
  return choice.source === 'default' && !choice.problem ? undefined : choice;
}

/**
 * The SSM document (and version) a mode runs, or undefined for `crash`. `fsfreeze` runs
 * the deployment's own copy of the shipped document (named per stage by the stack).
 *
 * @example
 * consistencyDocument({ kind: 'ssm', strict: false, document: 'db-flush' })?.name; // 'db-flush'
 */
export function consistencyDocument(
  mode: ConsistencyMode,
  fsfreezeDocument: string = FSFREEZE_DOCUMENT,
): { readonly name: string; readonly version?: string | undefined } | undefined {
  switch (mode.kind) {
    case 'crash':
      return undefined;
    case 'fsfreeze':
      return { name: fsfreezeDocument };
    case 'vss':
      return { name: VSS_DOCUMENT };
    case 'ssm':
      return { name: mode.document, ...(mode.version ? { version: mode.version } : {}) };
  }
}

/** Renders a mode back to its tag form, e.g. `ssm:db-flush:3!`. */
export function formatConsistency(mode: ConsistencyMode): string {
  const bang = mode.strict ? '!' : '';
  if (mode.kind === 'ssm') {
    return `ssm:${mode.document}${mode.version ? `:${mode.version}` : ''}${bang}`;
  }
  return `${mode.kind}${bang}`;
}

/**
 * What to do when the application-consistent path failed before the snapshot call: a
 * crash-consistent set (`crash-fallback`), or, with `!`, skip and report.
 *
 * @example
 * onPreFailure({ kind: 'fsfreeze', strict: true }); // 'skip'
 */
export function onPreFailure(mode: ConsistencyMode): 'crash-fallback' | 'skip' {
  return mode.strict ? 'skip' : 'crash-fallback';
}

/** Tag values are at most 256 characters (EC2). */
const MAX_TAG_VALUE = 256;

/**
 * The tags that say what a set got: `snapkeeper:consistency` = `app` | `crash` |
 * `crash-fallback`, and `snapkeeper:consistency-reason` (the mode asked for, and why a
 * fallback happened) when there is one, cut to EC2's 256 characters. EC2 tag values
 * take letters, digits, spaces and `+ - = . _ : / @`; other characters become spaces.
 *
 * @example
 * consistencyTags(tagKeys(), 'app', 'fsfreeze'); // [{ Key: 'snapkeeper:consistency', Value: 'app' }, ...]
 */
export function consistencyTags(
  keys: Pick<TagKeys, 'consistency' | 'consistencyReason'>,
  outcome: ConsistencyOutcome,
  reason: string,
): { Key: string; Value: string }[] {
  const clean = reason
    .replace(/[^\p{L}\p{N} +\-=._:/@]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  const cut = clean.length > MAX_TAG_VALUE ? clean.slice(0, MAX_TAG_VALUE) : clean;
  return [
    { Key: keys.consistency, Value: outcome },
    ...(cut ? [{ Key: keys.consistencyReason, Value: cut }] : []),
  ];
}

/** Whether a snapshot's tags say it belongs to an application-consistent set. */
export function isApplicationConsistent(
  tags: Readonly<Record<string, string>>,
  keys: Pick<TagKeys, 'consistency'>,
): boolean {
  return tags[keys.consistency] === 'app';
}

/** An instance's newest application-consistent recovery point, for the report and the page. */
export interface AppConsistentPoint {
  readonly snapshotId: string;
  readonly createdAt: string;
  readonly ageHours: number;
  readonly schedule: string;
}

/**
 * The newest completed snapshot of an instance tagged `snapkeeper:consistency=app`
 * (a set is app-consistent as a whole: any of its snapshots stands for it), or
 * undefined when there is none.
 *
 * @example
 * newestApplicationConsistent(completed, keys, (s) => s.startTime, now)?.snapshotId;
 */
export function newestApplicationConsistent(
  snapshots: readonly {
    readonly snapshotId: string;
    readonly state: string;
    readonly tags: Readonly<Record<string, string>>;
  }[],
  keys: Pick<TagKeys, 'consistency' | 'schedule'>,
  createdAt: (snapshot: { readonly tags: Readonly<Record<string, string>> }) => Date,
  now: Date,
): AppConsistentPoint | undefined {
  let newest: { id: string; at: Date; schedule: string } | undefined;
  for (const s of snapshots) {
    if (s.state !== 'completed' || !isApplicationConsistent(s.tags, keys)) continue;
    const at = createdAt(s);
    if (!newest || at.getTime() > newest.at.getTime()) {
      newest = { id: s.snapshotId, at, schedule: s.tags[keys.schedule] ?? '' };
    }
  }
  if (!newest) return undefined;
  return {
    snapshotId: newest.id,
    createdAt: newest.at.toISOString(),
    ageHours: Math.round(((now.getTime() - newest.at.getTime()) / 3_600_000) * 10) / 10,
    schedule: newest.schedule,
  };
}
