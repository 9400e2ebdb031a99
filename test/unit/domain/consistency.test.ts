import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CRASH,
  chooseConsistency,
  consistencyDocument,
  consistencyTags,
  formatConsistency,
  isApplicationConsistent,
  onPreFailure,
  parseConsistency,
} from '../../../lib/domain/consistency.ts';
import { InvalidTagError } from '../../../lib/domain/errors.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';

const KEY = 'snapkeeper:consistency';
const keys = tagKeys();

describe('parseConsistency', () => {
  it('reads crash, fsfreeze, vss and ssm:<document>[:<version>], case-insensitively for the modes', () => {
    expect(parseConsistency('crash', KEY)).toEqual(CRASH);
    expect(parseConsistency(' FSFreeze ', KEY)).toEqual({ kind: 'fsfreeze', strict: false });
    expect(parseConsistency('vss', KEY)).toEqual({ kind: 'vss', strict: false });
    expect(parseConsistency('ssm:Db-Flush', KEY)).toEqual({
      kind: 'ssm',
      strict: false,
      document: 'Db-Flush',
    });
    expect(parseConsistency('ssm:db-flush:3', KEY)).toEqual({
      kind: 'ssm',
      strict: false,
      document: 'db-flush',
      version: '3',
    });
    expect(parseConsistency('ssm:db-flush:$LATEST', KEY)).toMatchObject({ version: '$LATEST' });
  });

  it('reads a trailing ! as "no fallback: skip and report"', () => {
    expect(parseConsistency('fsfreeze!', KEY)).toEqual({ kind: 'fsfreeze', strict: true });
    expect(parseConsistency('ssm:db-flush:2!', KEY)).toMatchObject({ strict: true, version: '2' });
  });

  it.each([
    ['', 'is empty'],
    ['snapshot', 'is not a consistency mode'],
    ['crash!', 'means nothing'],
    ['ssm:', 'not a valid SSM document name'],
    ['ssm:a', 'not a valid SSM document name'],
    ['ssm:db flush', 'not a valid SSM document name'],
    ['ssm:db-flush:v2', 'a version is a number'],
    ['ssm:db-flush:0', 'a version is a number'],
    ['ssm:db:1:2', 'too many ":"'],
  ])('rejects %j with an error naming the tag, the value and the fix (%s)', (value, why) => {
    let caught: unknown;
    try {
      parseConsistency(value, KEY);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidTagError);
    const message = (caught as Error).message;
    expect(message).toContain(KEY);
    expect(message).toContain(why);
    expect(message).toContain('use crash, fsfreeze, vss or ssm:<document>[:<version>]');
  });

  it('reads back what formatConsistency writes (property)', () => {
    const mode = fc.oneof(
      fc.constant(CRASH),
      fc.record({
        kind: fc.constantFrom('fsfreeze' as const, 'vss' as const),
        strict: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant('ssm' as const),
        strict: fc.boolean(),
        document: fc.stringMatching(/^[A-Za-z0-9_.-]{3,20}$/),
      }),
    );
    fc.assert(
      fc.property(mode, (m) => {
        expect(parseConsistency(formatConsistency(m), KEY)).toEqual(m);
      }),
    );
  });

  it('never throws anything but an InvalidTagError on any string (property)', () => {
    fc.assert(
      fc.property(fc.string(), (value) => {
        try {
          parseConsistency(value, KEY);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidTagError);
        }
      }),
    );
  });
});

describe('chooseConsistency', () => {
  const fsfreeze = parseConsistency('fsfreeze', 'consistency');

  it('lets the instance tag win over the schedule option', () => {
    const choice = chooseConsistency({ [KEY]: 'ssm:db-flush' }, KEY, fsfreeze);
    expect(choice).toMatchObject({ source: 'tag', mode: { kind: 'ssm', document: 'db-flush' } });
    expect(chooseConsistency({ [KEY]: 'crash' }, KEY, fsfreeze).mode).toEqual(CRASH);
  });

  it('takes the schedule option when the instance has no tag, and crash when neither says', () => {
    expect(chooseConsistency({}, KEY, fsfreeze)).toEqual({ mode: fsfreeze, source: 'schedule' });
    expect(chooseConsistency({}, KEY, undefined)).toEqual({ mode: CRASH, source: 'default' });
  });

  it('gives a crash-consistent set with the problem when the tag cannot be read (never the schedule’s freeze)', () => {
    const choice = chooseConsistency({ [KEY]: 'fsfreez' }, KEY, fsfreeze);
    expect(choice.mode).toEqual(CRASH);
    expect(choice.problem).toContain('snapkeeper:consistency="fsfreez" is not a consistency mode');
    expect(choice.problem).toContain('this set is crash-consistent');
  });
});

describe('consistencyDocument and onPreFailure', () => {
  it('names the document each mode runs', () => {
    expect(consistencyDocument(CRASH)).toBeUndefined();
    expect(
      consistencyDocument({ kind: 'fsfreeze', strict: false }, 'snapkeeper-fsfreeze-dev'),
    ).toEqual({
      name: 'snapkeeper-fsfreeze-dev',
    });
    expect(consistencyDocument({ kind: 'vss', strict: true })).toEqual({
      name: 'AWSEC2-CreateVssSnapshot',
    });
    expect(
      consistencyDocument({ kind: 'ssm', strict: false, document: 'db-flush', version: '4' }),
    ).toEqual({ name: 'db-flush', version: '4' });
  });

  it('falls back to crash-consistent unless the mode says !', () => {
    expect(onPreFailure({ kind: 'fsfreeze', strict: false })).toBe('crash-fallback');
    expect(onPreFailure({ kind: 'fsfreeze', strict: true })).toBe('skip');
  });
});

describe('consistencyTags', () => {
  it('writes the outcome and the reason', () => {
    expect(consistencyTags(keys, 'crash-fallback', 'fsfreeze fell back: not managed')).toEqual([
      { Key: 'snapkeeper:consistency', Value: 'crash-fallback' },
      { Key: 'snapkeeper:consistency-reason', Value: 'fsfreeze fell back: not managed' },
    ]);
    expect(isApplicationConsistent({ 'snapkeeper:consistency': 'app' }, keys)).toBe(true);
    expect(isApplicationConsistent({ 'snapkeeper:consistency': 'crash-fallback' }, keys)).toBe(
      false,
    );
  });

  it('keeps every reason a valid EC2 tag value of at most 256 characters (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 600 }), (reason) => {
        for (const tag of consistencyTags(keys, 'app', reason)) {
          expect(tag.Value.length).toBeLessThanOrEqual(256);
          expect(tag.Value).toMatch(/^[\p{L}\p{N} +\-=._:/@]*$/u);
        }
      }),
    );
  });
});
