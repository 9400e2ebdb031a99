/**
 * The bad-input corpus of issue 21's locks and archive tier
 * (test/fixtures/bad-input/locks-and-archive.json): the `snapkeeper:lock` tag, the
 * schedule options `lock` and `archiveAfterDays`, and the console's `archiveRestore`.
 * Each bad value gets a clear error naming the tag or field and the fix.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readTierRestore } from '../../lib/domain/archiveTier.ts';
import { InvalidEventError, InvalidTagError } from '../../lib/domain/errors.ts';
import { parseScheduleCatalog } from '../../lib/domain/schedules.ts';
import { readLockTag } from '../../lib/domain/snapshotLock.ts';

interface Corpus {
  readonly tags: readonly {
    name: string;
    input: { tags: Record<string, string> };
    expect: { field?: string; messageIncludes?: readonly string[]; accepted?: boolean };
  }[];
  readonly schedules: readonly {
    name: string;
    input: { schedule: unknown; allowComplianceLocks: boolean };
    expect: { messageIncludes: readonly string[] };
  }[];
  readonly payloads: readonly {
    name: string;
    input: { archiveRestore: unknown };
    expect: { messageIncludes?: readonly string[]; accepted?: unknown };
  }[];
}

const corpus = JSON.parse(
  readFileSync(new URL('../fixtures/bad-input/locks-and-archive.json', import.meta.url), 'utf8'),
) as Corpus;
const SCHEDULES = ['daily', 'weekly', 'monthly', 'yearly'];
const named = <T extends { name: string }>(cases: readonly T[]): [string, T][] =>
  cases.map((c) => [c.name, c]);

function errorOf(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('no error');
}

describe('Bad input corpus: locks and the archive tier', () => {
  it('covers the lock tag, both schedule options and the restore payload', () => {
    expect(corpus.tags.length).toBeGreaterThanOrEqual(15);
    expect(corpus.schedules.length).toBeGreaterThanOrEqual(8);
    expect(corpus.payloads.length).toBeGreaterThanOrEqual(8);
  });

  it.each(named(corpus.tags))('%s', (_name, c) => {
    const [key, value] = Object.entries(c.input.tags)[0] as [string, string];
    const read = () => readLockTag(key, value, SCHEDULES, false);
    if (c.expect.accepted) {
      expect(read().size).toBe(1);
      return;
    }
    const error = errorOf(read);
    expect(error).toBeInstanceOf(InvalidTagError);
    expect(error.message.startsWith(`${c.expect.field}=`)).toBe(true);
    for (const part of c.expect.messageIncludes ?? []) expect(error.message).toContain(part);
    expect(error.message.length).toBeLessThan(1_000);
  });

  it.each(named(corpus.schedules))('%s', (_name, c) => {
    const error = errorOf(() =>
      parseScheduleCatalog([c.input.schedule], undefined, {
        allowComplianceLocks: c.input.allowComplianceLocks,
      }),
    );
    for (const part of c.expect.messageIncludes) expect(error.message).toContain(part);
  });

  it.each(named(corpus.payloads))('%s', (_name, c) => {
    if (c.expect.accepted) {
      expect(readTierRestore(c.input.archiveRestore)).toEqual(c.expect.accepted);
      return;
    }
    const error = errorOf(() => readTierRestore(c.input.archiveRestore));
    expect(error).toBeInstanceOf(InvalidEventError);
    for (const part of c.expect.messageIncludes ?? []) expect(error.message).toContain(part);
  });
});
