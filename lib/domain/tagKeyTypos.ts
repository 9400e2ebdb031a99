import { closest, distance } from 'fastest-levenshtein';
import { tagMessage } from './messages.ts';
import { restoreTagKeys, type TagKeys } from './tagKeys.ts';
import type { TagMap, TagProblem } from './tagPolicy.ts';

/** A key this many edits (or fewer) from a key snapkeeper reads is taken for a typo of it. */
export const MAX_KEY_EDIT_DISTANCE = 2;

/** How a tag key misses the key it was meant to be. */
export type KeyMistake = 'spacing' | 'case' | 'spelling' | 'unknown';

/** A tag key that is not read but looks meant for a key that is. */
export interface KeyNearMiss {
  readonly key: string;
  readonly value: string;
  /** The key snapkeeper reads that it was most likely meant to be. */
  readonly intended: string;
  readonly mistake: KeyMistake;
}

/**
 * The keys snapkeeper reads on an instance: the ones an operator writes.
 *
 * @example
 * instanceTagKeys(tagKeys()).includes('snapkeeper:backup'); // true
 */
export function instanceTagKeys(keys: TagKeys): readonly string[] {
  return [
    keys.backup,
    keys.retain,
    keys.retainDays,
    keys.retainTiers,
    keys.excludeBoot,
    keys.ami,
    keys.amiReboot,
    keys.amiRetain,
    keys.copyTo,
    keys.copyRetain,
    keys.copyKmsKey,
    keys.shareWith,
    keys.consistency,
    keys.lock,
  ];
}

/**
 * Finds the tag keys of a resource that snapkeeper does not read but that look meant
 * for a key it does read (`readable`): the same key in another letter case
 * (`Snapkeeper:Backup`), with spaces (`snapkeeper:backup `, `snapkeeper: backup`), one
 * or two characters off (`snapkeeper:backups`, `snapkeper:backup`, `snapkeeper-backup`),
 * or any other key under the prefix in any letter case (`snapkeeper:retention`).
 *
 * Never flagged: a key snapkeeper knows exactly (`known`, which includes the keys it
 * writes, those on restored and duplicated instances included), `aws:` keys, and everyone else's keys (`Name`, `Backup`, `backup`,
 * `kubernetes.io/...`), which are far more than two edits from any of ours. Short keys
 * (from a short custom prefix) allow one edit per five characters, so that `sk:ami` does
 * not claim `sk:app`.
 *
 * @example
 * findNearMissKeys({ 'Snapkeeper:backup': 'daily' }, instanceTagKeys(keys), keys);
 * // [{ key: 'Snapkeeper:backup', value: 'daily', intended: 'snapkeeper:backup', mistake: 'case' }]
 */
export function findNearMissKeys(
  tags: TagMap,
  readable: readonly string[],
  keys: TagKeys,
): KeyNearMiss[] {
  // The keys snapkeeper writes (on backups, copies, and what the console restores) are
  // known too: an instance restored by the console, then opted in, reports none of them.
  const known = new Set<string>([
    ...Object.values(keys),
    ...Object.values(restoreTagKeys(keys)),
    ...readable,
  ]);
  const knownLowered = new Set([...known].map((k) => k.toLowerCase()));
  const lowered = readable.map((k) => k.toLowerCase());
  const prefix = keys.prefix.toLowerCase();
  const found: KeyNearMiss[] = [];
  for (const [key, value] of Object.entries(tags)) {
    if (known.has(key) || key.toLowerCase().startsWith('aws:')) continue;
    const squeezed = key.replace(/\s+/g, '').toLowerCase();
    const exact = lowered.indexOf(squeezed);
    if (exact >= 0) {
      const intended = readable[exact] as string;
      const mistake = /\s/.test(key) ? 'spacing' : 'case';
      found.push({ key, value, intended, mistake });
      continue;
    }
    const nearest = closest(squeezed, lowered);
    const edits = distance(squeezed, nearest);
    const allowed = Math.min(MAX_KEY_EDIT_DISTANCE, Math.floor(nearest.length / 5));
    const intended = readable[lowered.indexOf(nearest)] as string;
    if (edits <= allowed) {
      found.push({ key, value, intended, mistake: 'spelling' });
    } else if (prefix !== '' && squeezed.startsWith(prefix) && !knownLowered.has(squeezed)) {
      found.push({ key, value, intended, mistake: 'unknown' });
    }
  }
  return found;
}

/**
 * The near-miss keys of an instance as tag problems, one each, naming the key and its
 * value (as every tag problem does), the key it was likely meant to be, and the fix. Each
 * problem's `intendedKey` is that key, so a caller can tell a typo of the opt-in tag;
 * `only` keeps the typos of the keys a caller reads (all instance keys when absent).
 *
 * @example
 * nearMissProblems('i-1', { 'snapkeeper:backups': 'daily' }, keys)[0]?.message;
 * // 'snapkeeper:backups="daily": this key is not read; did you mean snapkeeper:backup (1 character off)? ...'
 */
export function nearMissProblems(
  resourceId: string,
  tags: TagMap,
  keys: TagKeys,
  only?: readonly string[],
): TagProblem[] {
  // Matched against every key an instance can carry, so that a typo is taken for the
  // key it is closest to; `only` then keeps the typos of the keys a caller reads.
  const readable = [...new Set([...instanceTagKeys(keys), ...(only ?? [])])];
  const misses = findNearMissKeys(tags, readable, keys).filter(
    (miss) => only === undefined || only.includes(miss.intended),
  );
  return misses.map((miss) => {
    const how = describeMistake(miss);
    const effect =
      miss.intended === keys.backup
        ? '; until it is renamed the instance is not backed up by it'
        : miss.intended === keys.ami
          ? '; until it is renamed the instance gets no AMI by it'
          : '; until it is renamed it is ignored';
    return {
      resourceId,
      key: miss.key,
      value: miss.value,
      intendedKey: miss.intended,
      message: tagMessage(miss.key, miss.value, `: this key is not read; ${how}${effect}`),
    };
  });
}

function describeMistake(miss: KeyNearMiss): string {
  switch (miss.mistake) {
    case 'spacing': {
      const cased =
        miss.key.replace(/\s+/g, '') !== miss.intended ? ' and another letter case' : '';
      return `it has spaces${cased}; rename it to ${miss.intended}`;
    }
    case 'case':
      return `keys are case-sensitive; rename it to ${miss.intended}`;
    case 'spelling': {
      const edits = distance(
        miss.key.replace(/\s+/g, '').toLowerCase(),
        miss.intended.toLowerCase(),
      );
      return `did you mean ${miss.intended} (${edits} character${edits === 1 ? '' : 's'} off)? rename it`;
    }
    default:
      return `snapkeeper reads no such key; did you mean ${miss.intended}? rename it`;
  }
}
