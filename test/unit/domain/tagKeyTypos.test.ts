import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import {
  findNearMissKeys,
  instanceTagKeys,
  nearMissProblems,
} from '../../../lib/domain/tagKeyTypos.ts';

const keys = tagKeys();
const READABLE = instanceTagKeys(keys);
const INSTANCE = 'i-0123456789abcdef0';

describe('Function: findNearMissKeys', () => {
  describe('Keys that miss ours are found, with the key they were meant to be', () => {
    it.each([
      ['Snapkeeper:backup', keys.backup, 'case'],
      ['snapkeeper:Backup', keys.backup, 'case'],
      ['SNAPKEEPER:BACKUP', keys.backup, 'case'],
      ['snapkeeper:backup ', keys.backup, 'spacing'],
      [' snapkeeper:backup', keys.backup, 'spacing'],
      ['snapkeeper: backup', keys.backup, 'spacing'],
      ['Snapkeeper:Backup ', keys.backup, 'spacing'],
      ['snapkeeper:backups', keys.backup, 'spelling'],
      ['snapkeeper:bakup', keys.backup, 'spelling'],
      ['snapkeper:bakup', keys.backup, 'spelling'],
      ['snapkeeper-backup', keys.backup, 'spelling'],
      ['snapkeeper:bcakup', keys.backup, 'spelling'],
      ['snapkeeper:retains', keys.retain, 'spelling'],
      ['snapkeeper:retain-day', keys.retainDays, 'spelling'],
      ['snapkeeper:exclude_boot', keys.excludeBoot, 'spelling'],
      ['snapkeeper:amis', keys.ami, 'spelling'],
      ['snapkeeper:copy-too', keys.copyTo, 'spelling'],
      ['snapkeeper:share_with', keys.shareWith, 'spelling'],
      ['snapkeeper:retention', keys.retain, 'unknown'],
      ['SnapKeeper:whatever', keys.retain, 'unknown'],
    ] as const)('%s misses %s (%s)', (key, intended, mistake) => {
      // Act
      const found = findNearMissKeys({ [key]: 'daily' }, READABLE, keys);

      // Assess
      expect(found).toHaveLength(1);
      expect(found[0]).toMatchObject({ key, value: 'daily', mistake });
      if (mistake !== 'unknown') expect(found[0]?.intended).toBe(intended);
    });

    it('takes a case variant of any key we read for that key (property)', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...READABLE),
          fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
          (key, upper) => {
            const variant = [...key].map((ch, i) => (upper[i] ? ch.toUpperCase() : ch)).join('');
            fc.pre(variant !== key);
            const found = findNearMissKeys({ [variant]: 'x' }, READABLE, keys);
            return found.length === 1 && found[0]?.intended === key;
          },
        ),
      );
    });

    it('takes any one-character slip in a key we read for a near miss (property)', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...READABLE),
          fc.nat(),
          fc.constantFrom('insert', 'delete', 'replace'),
          fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz-_:.'),
          (key, at, how, ch) => {
            const i = at % key.length;
            const slipped =
              how === 'insert'
                ? key.slice(0, i) + ch + key.slice(i)
                : how === 'delete'
                  ? key.slice(0, i) + key.slice(i + 1)
                  : key.slice(0, i) + ch + key.slice(i + 1);
            fc.pre(!Object.values(keys).includes(slipped));
            return findNearMissKeys({ [slipped]: 'x' }, READABLE, keys).length === 1;
          },
        ),
      );
    });
  });

  describe('Other keys are never taken for ours', () => {
    it.each([
      'Name',
      'Backup',
      'backup',
      'BackupPlan',
      'aws:backup:source-resource',
      'aws:snapkeeper:backup',
      'AWS:snapkeeper:backup',
      'aws:cloudformation:stack-name',
      'kubernetes.io/cluster/prod',
      'dlm:managed',
      'snapshot:backup',
      'snapshotter:backup',
      'snap:backup',
      'keeper:backup',
      'CostCenter',
      'Environment',
    ])('%s', (key) => {
      // Assess
      expect(findNearMissKeys({ [key]: 'true' }, READABLE, keys)).toEqual([]);
    });

    it('never flags a key snapkeeper knows exactly, read or written (property)', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...Object.values(keys).filter((k) => k !== keys.prefix)),
          (key) => findNearMissKeys({ [key]: 'x' }, READABLE, keys).length === 0,
        ),
      );
    });

    it.each(['snapkeeper:restored-from', 'snapkeeper:duplicated-from', 'snapkeeper:source-image'])(
      'never flags %s, which the console writes on the instances it restores or duplicates',
      (key) => {
        // Assess
        expect(findNearMissKeys({ [key]: 'i-0123456789abcdef0' }, READABLE, keys)).toEqual([]);
      },
    );

    it('never flags the keys the console writes on restored instances under a custom prefix', () => {
      // Prepare
      const custom = tagKeys('acme-backup:');

      // Assess
      expect(
        findNearMissKeys(
          { 'acme-backup:restored-from': 'i-1', 'acme-backup:source-image': 'ami-1' },
          instanceTagKeys(custom),
          custom,
        ),
      ).toEqual([]);
    });

    it('never flags a short key without our prefix (property)', () => {
      fc.assert(
        fc.property(
          fc.stringMatching(/^[A-Za-z][A-Za-z0-9_./-]{0,9}$/),
          (key) => findNearMissKeys({ [key]: 'x' }, READABLE, keys).length === 0,
        ),
      );
    });

    it('allows fewer edits for the short keys of a short prefix', () => {
      // Prepare
      const short = tagKeys('sk:');

      // Assess: "sk:app" is 2 edits from "sk:ami" but 6 characters allow only 1.
      expect(findNearMissKeys({ 'sk:app': 'x' }, instanceTagKeys(short), short)).toEqual([
        expect.objectContaining({ mistake: 'unknown' }),
      ]);
      expect(findNearMissKeys({ 'SK:AMI': 'x' }, instanceTagKeys(short), short)).toEqual([
        expect.objectContaining({ intended: 'sk:ami', mistake: 'case' }),
      ]);
    });
  });
});

describe('Function: nearMissProblems', () => {
  it('names the key and its value once, the key it misses and the fix', () => {
    // Act
    const [problem] = nearMissProblems(INSTANCE, { 'Snapkeeper:backup': 'daily' }, keys);

    // Assess
    expect(problem).toEqual({
      resourceId: INSTANCE,
      key: 'Snapkeeper:backup',
      value: 'daily',
      intendedKey: keys.backup,
      message:
        'Snapkeeper:backup="daily": this key is not read; keys are case-sensitive; rename it to snapkeeper:backup; until it is renamed the instance is not backed up by it',
    });
  });

  it('shows a trailing space in the key, before the value', () => {
    // Act
    const [problem] = nearMissProblems(INSTANCE, { 'snapkeeper:backup ': 'true' }, keys);

    // Assess
    expect(problem?.message).toMatch(
      /^snapkeeper:backup ="true": this key is not read; it has spaces;/,
    );
  });

  it('says how far a misspelt key is from the key it misses', () => {
    // Act
    const [problem] = nearMissProblems(INSTANCE, { 'snapkeper:bakup': 'true' }, keys);

    // Assess
    expect(problem?.message).toContain('did you mean snapkeeper:backup (2 characters off)?');
  });

  it('keeps only the near misses of the keys a caller reads', () => {
    // Prepare
    const tags = { 'Snapkeeper:backup': 'daily', 'Snapkeeper:ami': 'daily' };

    // Act
    const problems = nearMissProblems(INSTANCE, tags, keys, [keys.ami]);

    // Assess
    expect(problems.map((p) => p.intendedKey)).toEqual([keys.ami]);
    expect(problems[0]?.message).toContain('the instance gets no AMI by it');
  });

  it('takes a key the caller reads for a known key, never a near miss', () => {
    // Assess
    expect(
      nearMissProblems(INSTANCE, { 'snapkeeper:retain-images': '2' }, keys, [
        'snapkeeper:retain-images',
      ]),
    ).toEqual([]);
  });
});
