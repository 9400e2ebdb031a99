import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readCopyPolicy } from '../../../lib/domain/copyPolicy.ts';
import { formatNumber, partOf, quoteShort, tagMessage } from '../../../lib/domain/messages.ts';
import { parseRetainDays, parseTierCounts } from '../../../lib/domain/retentionPolicy.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import { parseRetainCounts } from '../../../lib/domain/tagPolicy.ts';

const keys = tagKeys();
const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const INSTANCE = 'i-0123456789abcdef0';
const occurrences = (text: string, part: string) => text.split(part).length - 1;

describe('Function: formatNumber', () => {
  it('prints digits, never exponent form', () => {
    // Assess
    expect(formatNumber(1e21)).toBe('1000000000000000000000');
    expect(formatNumber(1000)).toBe('1000');
    expect(formatNumber(2.5)).toBe('2.5');
    expect(formatNumber(1e-7)).toBe('0.0000001');
  });

  it('never prints an exponent for any finite number (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        (n) => !/e/i.test(formatNumber(n)),
      ),
    );
  });
});

describe('Function: tagMessage', () => {
  it('prints the key and the value once, then the reason', () => {
    // Assess
    expect(tagMessage('snapkeeper:retain', '5000', 'is out of range')).toBe(
      'snapkeeper:retain="5000" is out of range',
    );
    expect(tagMessage('snapkeeper:copy-to', 'a,b', ': "b" is not a region')).toBe(
      'snapkeeper:copy-to="a,b": "b" is not a region',
    );
  });
});

describe('Function: partOf', () => {
  it('names a part only when the list has more than one', () => {
    // Assess
    expect(partOf(['x'], 'x')).toBe('is');
    expect(partOf(['x', 'y'], 'y')).toBe(': "y" is');
  });

  it('cuts a huge part short', () => {
    // Assess
    expect(partOf(['a', 'b'.repeat(500)], 'b'.repeat(500))).toBe(
      `: ${quoteShort('b'.repeat(500))} is`,
    );
  });
});

describe('Messages print a value once and never in exponent form', () => {
  /** Messages about a whole value: it is printed once, as given. */
  const oneValueMessages = (value: string): string[] =>
    [
      ...parseRetainCounts(INSTANCE, keys.retain, value, catalog).problems,
      ...parseRetainDays(INSTANCE, keys.retainDays, value).problems,
      ...readCopyPolicy(INSTANCE, { [keys.copyRetain]: value }, keys, 'us-east-1', {}).problems,
    ].map((p) => p.message);
  /** Messages about one entry of a list, which name the entry: never in exponent form. */
  const entryMessages = (value: string): string[] =>
    [
      ...parseRetainCounts(INSTANCE, keys.retain, `daily=${value}`, catalog).problems,
      ...parseTierCounts(INSTANCE, keys.retainTiers, `daily=${value}`).problems,
    ].map((p) => p.message);

  it.each(['5000', '1000000000000000000000'])(
    'a per-schedule count of %s names its entry as given, never in exponent form',
    (value) => {
      const messages = entryMessages(value);
      expect(messages).toHaveLength(2);
      for (const message of messages) {
        expect(message).toContain(`daily: "${value}"`);
        expect(message).not.toMatch(/\de\+\d/);
      }
    },
  );

  it.each(['5000', '12345', '1000000000000000000000', '99999999999999999999999999'])(
    'a count of %s: the value once, as given',
    (value) => {
      for (const message of oneValueMessages(value)) {
        expect(occurrences(message, value), message).toBe(1);
        expect(message).not.toMatch(/\de\+\d/);
      }
    },
  );

  it('never prints a numeric value twice or in exponent form (property)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[1-9]\d{4,40}$/), (value) =>
        oneValueMessages(value).every((m) => occurrences(m, value) === 1 && !/\de\+\d/.test(m)),
      ),
    );
  });

  it.each([
    [keys.copyTo, 'ireland'],
    [keys.copyTo, 'us-east-1'],
    [keys.shareWith, '1234'],
    [keys.copyKmsKey, 'eu-west-1='],
  ])('%s=%s: a one-entry list is printed once', (key, value) => {
    // Act
    const { problems } = readCopyPolicy(
      INSTANCE,
      { [keys.copyTo]: 'eu-west-1', [key]: value },
      keys,
      'us-east-1',
      {},
    );

    // Assess
    expect(problems).toHaveLength(1);
    expect(occurrences(problems[0]?.message ?? '', value)).toBe(1);
  });

  it('names the bad part of a longer list', () => {
    // Act
    const { problems } = readCopyPolicy(
      INSTANCE,
      { [keys.copyTo]: 'eu-west-1,ireland' },
      keys,
      'us-east-1',
      {},
    );

    // Assess
    expect(problems[0]?.message).toBe(
      'snapkeeper:copy-to="eu-west-1,ireland": "ireland" is not a region such as eu-west-1',
    );
  });
});
