import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  COPY_VOLUME_ID,
  copyLineageKey,
  copyTags,
  copyWouldBeKept,
  MAX_COPY_REGIONS,
  planShare,
  readCarriedCount,
  readCopyPolicy,
} from '../../../lib/domain/copyPolicy.ts';
import type { RecoveryPoint } from '../../../lib/domain/retentionPlan.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import type { TagMap } from '../../../lib/domain/tagPolicy.ts';

const keys = tagKeys();
const SOURCE_REGION = 'us-east-1';
const INSTANCE = 'i-0123456789abcdef0';

/** The policy of an instance in the source region, with no configured default keys. */
function policyOf(
  tags: TagMap,
  options: { defaultKeys?: Record<string, string>; scheduleRegions?: string[] } = {},
) {
  return readCopyPolicy(
    INSTANCE,
    tags,
    keys,
    SOURCE_REGION,
    options.defaultKeys ?? {},
    options.scheduleRegions,
  );
}

describe('Function: readCopyPolicy', () => {
  describe('Tag: copy-to', () => {
    it('reads a comma list of regions, trimmed and lower-cased, in the order given', () => {
      // Act
      const policy = policyOf({ [keys.copyTo]: ' EU-West-1 ,us-west-2,  ' });

      // Assess
      expect(policy.regions).toEqual(['eu-west-1', 'us-west-2']);
      expect(policy.problems).toEqual([]);
    });

    it('counts a region named twice once, without a problem', () => {
      // Act
      const policy = policyOf({ [keys.copyTo]: 'eu-west-1, EU-WEST-1, us-west-2, eu-west-1' });

      // Assess
      expect(policy.regions).toEqual(['eu-west-1', 'us-west-2']);
      expect(policy.problems).toEqual([]);
    });

    it('accepts GovCloud and ISO region names', () => {
      // Act
      const policy = policyOf({ [keys.copyTo]: 'us-gov-west-1,us-isob-east-1' });

      // Assess
      expect(policy.regions).toEqual(['us-gov-west-1', 'us-isob-east-1']);
    });

    it(`keeps at most ${MAX_COPY_REGIONS} regions, the first ones, and says so`, () => {
      // Prepare
      const value = 'eu-west-1,eu-west-2,eu-west-3,eu-central-1';

      // Act
      const policy = policyOf({ [keys.copyTo]: value });

      // Assess
      expect(MAX_COPY_REGIONS).toBe(3);
      expect(policy.regions).toEqual(['eu-west-1', 'eu-west-2', 'eu-west-3']);
      expect(policy.problems).toHaveLength(1);
      expect(policy.problems[0]).toMatchObject({
        resourceId: INSTANCE,
        key: keys.copyTo,
        value,
      });
      expect(policy.problems[0]?.message).toContain('4 regions');
      expect(policy.problems[0]?.message).toContain('at most 3');
    });

    it('never copies to the source region, and names it as a problem', () => {
      // Act
      const policy = policyOf({ [keys.copyTo]: 'US-EAST-1, eu-west-1' });

      // Assess
      expect(policy.regions).toEqual(['eu-west-1']);
      expect(policy.problems).toHaveLength(1);
      expect(policy.problems[0]).toMatchObject({ key: keys.copyTo, value: 'US-EAST-1, eu-west-1' });
      expect(policy.problems[0]?.message).toContain('us-east-1 is the source region');
    });

    it.each([['mars-1'], ['eu_west_1'], ['euwest1'], ['eu-west-one']])(
      'names the key and the bad value %s, and still copies to the good regions',
      (bad) => {
        // Prepare
        const value = `eu-west-1,${bad},us-west-2`;

        // Act
        const policy = policyOf({ [keys.copyTo]: value });

        // Assess
        expect(policy.regions).toEqual(['eu-west-1', 'us-west-2']);
        expect(policy.problems).toHaveLength(1);
        expect(policy.problems[0]).toMatchObject({ resourceId: INSTANCE, key: keys.copyTo, value });
        expect(policy.problems[0]?.message).toContain(keys.copyTo);
        expect(policy.problems[0]?.message).toContain(`"${bad}" is not a region`);
      },
    );

    it('still applies the rest of the policy when copy-to is bad', () => {
      // Act
      const policy = policyOf({
        [keys.copyTo]: 'nowhere',
        [keys.copyRetain]: '4',
        [keys.shareWith]: '111122223333',
      });

      // Assess
      expect(policy.regions).toEqual([]);
      expect(policy.retain).toBe(4);
      expect(policy.shareWith).toEqual(['111122223333']);
      expect(policy.problems.map((p) => p.key)).toEqual([keys.copyTo]);
    });

    it('uses the schedule-level regions when the instance has no copy-to tag', () => {
      // Act
      const policy = policyOf({}, { scheduleRegions: ['eu-west-1', 'ap-southeast-2'] });

      // Assess
      expect(policy.regions).toEqual(['eu-west-1', 'ap-southeast-2']);
      expect(policy.problems).toEqual([]);
    });

    it('trims, lower-cases and deduplicates the schedule-level regions as it does the tag', () => {
      // Act
      const policy = policyOf({}, { scheduleRegions: [' EU-West-1 ', 'eu-west-1', 'us-west-2'] });

      // Assess
      expect(policy.regions).toEqual(['eu-west-1', 'us-west-2']);
      expect(policy.problems).toEqual([]);
    });

    it('lets the instance tag override the schedule-level regions', () => {
      // Act
      const policy = policyOf(
        { [keys.copyTo]: 'us-west-2' },
        { scheduleRegions: ['eu-west-1', 'ap-southeast-2'] },
      );

      // Assess
      expect(policy.regions).toEqual(['us-west-2']);
    });

    it('never copies to the source region even when the schedule names it', () => {
      // Act
      const policy = policyOf({}, { scheduleRegions: [SOURCE_REGION, 'eu-west-1'] });

      // Assess
      expect(policy.regions).toEqual(['eu-west-1']);
      expect(policy.problems[0]?.message).toContain('is the source region');
    });

    it('copies nowhere when neither the instance nor the schedule names a region', () => {
      // Act
      const policy = policyOf({ Name: 'web-1' });

      // Assess
      expect(policy).toEqual({ regions: [], kmsKeys: {}, shareWith: [], problems: [] });
    });
  });

  describe('Tag: copy-retain', () => {
    it.each([
      ['1', 1],
      ['7', 7],
      [' 30 ', 30],
      ['1000', 1000],
    ])('keeps %s copies per source', (value, expected) => {
      // Act
      const policy = policyOf({ [keys.copyRetain]: value });

      // Assess
      expect(policy.retain).toBe(expected);
      expect(policy.problems).toEqual([]);
    });

    it.each([['0'], ['1001'], ['-3'], ['2.5'], ['seven'], [''], ['1e3']])(
      'rejects %j as a problem naming key and value, and leaves the source count in use',
      (value) => {
        // Act
        const policy = policyOf({ [keys.copyRetain]: value, [keys.copyTo]: 'eu-west-1' });

        // Assess
        expect(policy.retain).toBeUndefined();
        expect('retain' in policy).toBe(false);
        expect(policy.regions).toEqual(['eu-west-1']);
        expect(policy.problems).toHaveLength(1);
        expect(policy.problems[0]).toMatchObject({ key: keys.copyRetain, value });
        expect(policy.problems[0]?.message).toContain('1 to 1000');
        expect(policy.problems[0]?.message).toContain("the source's count is used");
      },
    );

    it('leaves the count to the source when the tag is absent', () => {
      // Act
      const policy = policyOf({ [keys.copyTo]: 'eu-west-1' });

      // Assess
      expect(policy.retain).toBeUndefined();
    });
  });

  describe('Tag: copy-kms-key', () => {
    it('uses one key for every destination region', () => {
      // Act
      const policy = policyOf({
        [keys.copyTo]: 'eu-west-1,us-west-2',
        [keys.copyKmsKey]: ' alias/dr-backups ',
      });

      // Assess
      expect(policy.kmsKeys).toEqual({
        'eu-west-1': 'alias/dr-backups',
        'us-west-2': 'alias/dr-backups',
      });
      expect(policy.problems).toEqual([]);
    });

    it('reads a region=key list, a key per region', () => {
      // Prepare
      const arn = 'arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

      // Act
      const policy = policyOf({
        [keys.copyTo]: 'eu-west-1,us-west-2',
        [keys.copyKmsKey]: `eu-west-1=alias/dr-eu, us-west-2 = ${arn}`,
      });

      // Assess
      expect(policy.kmsKeys).toEqual({ 'eu-west-1': 'alias/dr-eu', 'us-west-2': arn });
      expect(policy.problems).toEqual([]);
    });

    it.each([
      ['eu-west-1'],
      ['eu-west-1='],
      ['=alias/x'],
      ['eu-west-1=alias/a=b'],
      ['mars-1=alias/x'],
    ])('names the malformed entry %j and keeps the well-formed ones', (bad) => {
      // Prepare
      const value = `us-west-2=alias/good,${bad}`;

      // Act
      const policy = policyOf({ [keys.copyTo]: 'eu-west-1,us-west-2', [keys.copyKmsKey]: value });

      // Assess
      expect(policy.kmsKeys).toEqual({ 'us-west-2': 'alias/good' });
      expect(policy.regions).toEqual(['eu-west-1', 'us-west-2']);
      expect(policy.problems).toHaveLength(1);
      expect(policy.problems[0]).toMatchObject({ key: keys.copyKmsKey, value });
      expect(policy.problems[0]?.message).toContain(
        `entry ${JSON.stringify(bad)} is not region=key`,
      );
    });

    it('names every key of a list of bare keys, since none says its region', () => {
      // Act
      const policy = policyOf({
        [keys.copyTo]: 'eu-west-1',
        [keys.copyKmsKey]: 'alias/a,alias/b',
      });

      // Assess
      expect(policy.kmsKeys).toEqual({});
      expect(policy.problems.map((p) => p.message)).toEqual([
        expect.stringContaining('"alias/a" is not region=key'),
        expect.stringContaining('"alias/b" is not region=key'),
      ]);
    });

    it('falls back to the configured key of each region when the tag is absent', () => {
      // Act
      const policy = policyOf(
        { [keys.copyTo]: 'eu-west-1,us-west-2' },
        { defaultKeys: { 'eu-west-1': 'alias/config-eu' } },
      );

      // Assess
      expect(policy.kmsKeys).toEqual({ 'eu-west-1': 'alias/config-eu' });
    });

    it('lets the tag override the configured keys, region by region', () => {
      // Act
      const policy = policyOf(
        { [keys.copyTo]: 'eu-west-1,us-west-2', [keys.copyKmsKey]: 'us-west-2=alias/tag-us' },
        { defaultKeys: { 'eu-west-1': 'alias/config-eu', 'us-west-2': 'alias/config-us' } },
      );

      // Assess
      expect(policy.kmsKeys).toEqual({
        'eu-west-1': 'alias/config-eu',
        'us-west-2': 'alias/tag-us',
      });
    });

    it('lets one key in the tag override the configured key of every destination', () => {
      // Act
      const policy = policyOf(
        { [keys.copyTo]: 'eu-west-1,us-west-2', [keys.copyKmsKey]: 'alias/tag-all' },
        { defaultKeys: { 'eu-west-1': 'alias/config-eu' } },
      );

      // Assess
      expect(policy.kmsKeys).toEqual({
        'eu-west-1': 'alias/tag-all',
        'us-west-2': 'alias/tag-all',
      });
    });

    it('does not change the configured keys it was given', () => {
      // Prepare
      const defaults = { 'eu-west-1': 'alias/config-eu' };

      // Act
      policyOf(
        { [keys.copyTo]: 'eu-west-1', [keys.copyKmsKey]: 'alias/tag' },
        { defaultKeys: defaults },
      );

      // Assess
      expect(defaults).toEqual({ 'eu-west-1': 'alias/config-eu' });
    });
  });

  describe('Tag: share-with', () => {
    it('reads 12-digit account ids, trimmed and deduplicated', () => {
      // Act
      const policy = policyOf({
        [keys.shareWith]: ' 111122223333,444455556666 , 111122223333,',
      });

      // Assess
      expect(policy.shareWith).toEqual(['111122223333', '444455556666']);
      expect(policy.problems).toEqual([]);
    });

    it.each([['12345'], ['1111222233334'], ['1111-2222-3333'], ['all'], ['11112222333a']])(
      'names the bad account id %j and still shares with the valid ones',
      (bad) => {
        // Prepare
        const value = `111122223333,${bad},444455556666`;

        // Act
        const policy = policyOf({ [keys.shareWith]: value, [keys.copyTo]: 'eu-west-1' });

        // Assess
        expect(policy.shareWith).toEqual(['111122223333', '444455556666']);
        expect(policy.regions).toEqual(['eu-west-1']);
        expect(policy.problems).toHaveLength(1);
        expect(policy.problems[0]).toMatchObject({
          resourceId: INSTANCE,
          key: keys.shareWith,
          value,
        });
        expect(policy.problems[0]?.message).toContain(
          `${JSON.stringify(bad)} is not a 12-digit account id`,
        );
      },
    );

    it('never lets a share-with value make a resource public', () => {
      fc.assert(
        fc.property(fc.array(fc.string(), { maxLength: 6 }), (entries) => {
          // Act
          const policy = policyOf({ [keys.shareWith]: entries.join(',') });

          // Assess
          for (const account of policy.shareWith) expect(account).toMatch(/^\d{12}$/);
          expect(new Set(policy.shareWith).size).toBe(policy.shareWith.length);
        }),
      );
    });
  });
});

describe('Function: copyTags', () => {
  const source = { volumeId: 'vol-data', snapshotId: 'snap-src' };
  const asMap = (tags: { Key: string; Value: string }[]) =>
    Object.fromEntries(tags.map((t) => [t.Key, t.Value]));

  it("keeps the source's tags and adds where the copy came from and the count at copy time", () => {
    // Prepare
    const sourceTags = {
      [keys.managed]: 'true',
      [keys.deployment]: 'prod',
      [keys.schedule]: 'daily',
      [keys.instanceId]: INSTANCE,
      Name: 'web-1',
      CostCenter: 'cc-42',
    };

    // Act
    const tags = copyTags(sourceTags, keys, source, SOURCE_REGION, 7);

    // Assess
    expect(asMap(tags)).toEqual({
      ...sourceTags,
      [keys.sourceVolumeId]: 'vol-data',
      [keys.sourceSnapshotId]: 'snap-src',
      [keys.sourceRegion]: SOURCE_REGION,
      [keys.copyRetain]: '7',
    });
  });

  it('writes no count when the source rule could not be read, and drops a copied-over one', () => {
    // Act
    const tags = copyTags({ [keys.copyRetain]: '1' }, keys, source, SOURCE_REGION, undefined);

    // Assess
    expect(asMap(tags)[keys.copyRetain]).toBeUndefined();
  });

  it('names the source image for an AMI copy, and no volume or snapshot', () => {
    // Act
    const tags = asMap(copyTags({ Name: 'web-1' }, keys, { imageId: 'ami-src' }, SOURCE_REGION, 4));

    // Assess
    expect(tags[keys.sourceImageId]).toBe('ami-src');
    expect(tags).not.toHaveProperty(keys.sourceVolumeId);
    expect(tags).not.toHaveProperty(keys.sourceSnapshotId);
    expect(tags[keys.copyRetain]).toBe('4');
  });

  it('never copies aws: tags, whatever their case', () => {
    // Act
    const tags = copyTags(
      { 'aws:backup:source-resource': 'x', 'AWS:cloudformation:stack-name': 'y', Name: 'web-1' },
      keys,
      source,
      SOURCE_REGION,
      7,
    );

    // Assess
    expect(tags.map((t) => t.Key.toLowerCase()).filter((k) => k.startsWith('aws:'))).toEqual([]);
    expect(asMap(tags).Name).toBe('web-1');
  });

  it('replaces stale source tags on the source with the true ones', () => {
    // Act
    const tags = copyTags(
      {
        [keys.sourceRegion]: 'ap-south-1',
        [keys.copyRetain]: '99',
        [keys.sourceVolumeId]: 'vol-x',
      },
      keys,
      source,
      SOURCE_REGION,
      7,
    );

    // Assess
    expect(tags.filter((t) => t.Key === keys.sourceRegion)).toEqual([
      { Key: keys.sourceRegion, Value: SOURCE_REGION },
    ]);
    expect(asMap(tags)[keys.copyRetain]).toBe('7');
    expect(asMap(tags)[keys.sourceVolumeId]).toBe('vol-data');
  });

  it('never writes more than 50 tags, always with its own source tags and unique keys', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.oneof(
            fc.string({ minLength: 1, maxLength: 20 }),
            fc.constantFrom('aws:x', 'AWS:y', keys.sourceRegion, keys.copyRetain, 'Name'),
          ),
          fc.string({ maxLength: 20 }),
          { maxKeys: 80 },
        ),
        fc.record({
          volumeId: fc.option(fc.constant('vol-1'), { nil: undefined }),
          snapshotId: fc.option(fc.constant('snap-1'), { nil: undefined }),
          imageId: fc.option(fc.constant('ami-1'), { nil: undefined }),
        }),
        fc.integer({ min: 1, max: 1000 }),
        (sourceTags, from, retain) => {
          // Act
          const tags = copyTags(sourceTags, keys, from, SOURCE_REGION, retain);

          // Assess
          expect(tags.length).toBeLessThanOrEqual(50);
          expect(new Set(tags.map((t) => t.Key)).size).toBe(tags.length);
          expect(tags.some((t) => t.Key.toLowerCase().startsWith('aws:'))).toBe(false);
          const map = asMap(tags);
          expect(map[keys.sourceRegion]).toBe(SOURCE_REGION);
          expect(map[keys.copyRetain]).toBe(String(retain));
          if (from.volumeId) expect(map[keys.sourceVolumeId]).toBe(from.volumeId);
          if (from.snapshotId) expect(map[keys.sourceSnapshotId]).toBe(from.snapshotId);
          if (from.imageId) expect(map[keys.sourceImageId]).toBe(from.imageId);
        },
      ),
    );
  });

  it('keeps every own tag of a source that leaves room for them', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,9}$/), fc.string(), {
          maxKeys: 45,
        }),
        (sourceTags) => {
          // Act
          const map = asMap(copyTags(sourceTags, keys, source, SOURCE_REGION, 3));

          // Assess
          for (const [key, value] of Object.entries(sourceTags)) expect(map[key]).toBe(value);
        },
      ),
    );
  });
});

describe('Function: planShare', () => {
  it('adds the wanted accounts not yet granted and removes the granted ones no longer wanted', () => {
    // Act
    const plan = planShare(
      ['111122223333', '444455556666'],
      ['444455556666', '777788889999'],
      false,
    );

    // Assess
    expect(plan).toEqual({ add: ['111122223333'], remove: ['777788889999'] });
  });

  it('changes nothing when the grants already match', () => {
    // Act
    const plan = planShare(['111122223333'], ['111122223333'], false);

    // Assess
    expect(plan).toEqual({ add: [], remove: [] });
  });

  it('removes every account when none is wanted any more', () => {
    // Act
    const plan = planShare([], ['111122223333', '444455556666'], false);

    // Assess
    expect(plan).toEqual({ add: [], remove: ['111122223333', '444455556666'] });
  });

  it("never touches the group 'all': public exposure is a finding, not a share", () => {
    // Act
    const plan = planShare(['111122223333'], ['all', '444455556666'], false);

    // Assess
    expect(plan.add).not.toContain('all');
    expect(plan.remove).toEqual(['444455556666']);
  });

  it('reaches exactly the wanted set from any granted set', () => {
    const account = fc.stringMatching(/^\d{12}$/);
    fc.assert(
      fc.property(
        fc.uniqueArray(account, { maxLength: 6 }),
        fc.uniqueArray(fc.oneof(account, fc.constant('all')), { maxLength: 6 }),
        (wanted, granted) => {
          // Act
          const plan = planShare(wanted, granted, false);

          // Assess
          const after = new Set([...granted.filter((a) => !plan.remove.includes(a)), ...plan.add]);
          after.delete('all');
          expect([...after].sort()).toEqual([...wanted].sort());
          expect(plan.remove).not.toContain('all');
          expect(plan.add.filter((a) => granted.includes(a))).toEqual([]);
          expect(plan.blocked).toBeUndefined();
        },
      ),
    );
  });

  it('blocks sharing a resource encrypted with the default key, naming the fix', () => {
    // Act
    const plan = planShare(['111122223333'], [], true);

    // Assess
    expect(plan.add).toEqual([]);
    expect(plan.blocked).toContain('aws/ebs');
    expect(plan.blocked).toContain('customer-managed');
    expect(plan.blocked).toContain(keys.copyKmsKey);
  });

  it('still removes grants from a resource encrypted with the default key', () => {
    // Act
    const plan = planShare(['111122223333'], ['444455556666'], true);

    // Assess
    expect(plan.remove).toEqual(['444455556666']);
    expect(plan.add).toEqual([]);
    expect(plan.blocked).toBeDefined();
  });

  it('does not block a default-key resource when there is nothing to add', () => {
    // Act
    const plan = planShare([], ['444455556666'], true);

    // Assess
    expect(plan).toEqual({ add: [], remove: ['444455556666'] });
  });
});

describe('Function: copyLineageKey', () => {
  it('keys a snapshot copy on the source volume recorded on it and its schedule', () => {
    // Act
    const key = copyLineageKey(
      'snapshot',
      { [keys.sourceVolumeId]: 'vol-0a1b2c3d', [keys.schedule]: 'daily' },
      keys,
    );

    // Assess
    expect(key).toBe('snapshot|vol-0a1b2c3d|daily');
  });

  it(`never keys a lineage on ${COPY_VOLUME_ID}, on a missing volume, or without a schedule`, () => {
    // Assess
    for (const tags of [
      { [keys.sourceVolumeId]: COPY_VOLUME_ID, [keys.schedule]: 'daily' },
      { [keys.schedule]: 'daily' },
      { [keys.sourceVolumeId]: '', [keys.schedule]: 'daily' },
      { [keys.sourceVolumeId]: 'undefined', [keys.schedule]: 'daily' },
      { [keys.sourceVolumeId]: 'vol-0a1b2c3d' },
    ]) {
      expect(copyLineageKey('snapshot', tags, keys)).toBeUndefined();
    }
  });

  it('keys an AMI copy on its instance and schedule', () => {
    // Assess
    expect(
      copyLineageKey('image', { [keys.instanceId]: INSTANCE, [keys.schedule]: 'weekly' }, keys),
    ).toBe(`image|${INSTANCE}|weekly`);
    expect(copyLineageKey('image', { [keys.schedule]: 'weekly' }, keys)).toBeUndefined();
  });
});

describe('Function: readCarriedCount', () => {
  it('reads a whole number from 1 to 1000, trimmed', () => {
    // Assess
    expect(readCarriedCount({ [keys.copyRetain]: ' 10 ' }, keys)).toBe(10);
    expect(readCarriedCount({ [keys.copyRetain]: '1000' }, keys)).toBe(1000);
  });

  it('reads no count, never 1, from anything else', () => {
    // Assess
    for (const value of [undefined, '', '0', '1001', '1e3', '0x10', '-1', '2.5', 'seven', ' ']) {
      const tags = value === undefined ? {} : { [keys.copyRetain]: value };
      expect(readCarriedCount(tags, keys)).toBeUndefined();
    }
  });

  it('never reads a count outside 1..1000 (property)', () => {
    fc.assert(
      fc.property(fc.string(), (value) => {
        const count = readCarriedCount({ [keys.copyRetain]: value }, keys);
        return count === undefined || (Number.isInteger(count) && count >= 1 && count <= 1000);
      }),
    );
  });
});

describe('Function: copyWouldBeKept', () => {
  const NOW = new Date('2026-11-23T12:00:00Z');
  const at = (days: number) => new Date(NOW.getTime() - days * 86_400_000);
  const copy = (id: string, days: number): RecoveryPoint => ({
    id,
    state: 'completed',
    createdAt: at(days),
    managed: true,
  });

  it('is false for a source older than the count of copies kept', () => {
    // Assess
    expect(
      copyWouldBeKept({ id: 'snap-3', createdAt: at(3) }, [copy('c1', 1), copy('c2', 2)], 2, NOW),
    ).toBe(false);
  });

  it('is true for a source newer than the copies, or while the lineage has room', () => {
    // Assess
    expect(
      copyWouldBeKept({ id: 'snap-0', createdAt: at(0) }, [copy('c1', 1), copy('c2', 2)], 2, NOW),
    ).toBe(true);
    expect(copyWouldBeKept({ id: 'snap-3', createdAt: at(3) }, [copy('c1', 1)], 2, NOW)).toBe(true);
  });

  it('is true when the lineage has no readable count (everything is kept)', () => {
    // Assess
    expect(
      copyWouldBeKept({ id: 'snap-9', createdAt: at(9) }, [copy('c1', 1)], undefined, NOW),
    ).toBe(true);
  });

  it('counts no pending or failed copy as kept', () => {
    // Assess
    expect(
      copyWouldBeKept(
        { id: 'snap-3', createdAt: at(3) },
        [
          { ...copy('c1', 1), state: 'pending' },
          { ...copy('c2', 2), state: 'error' },
        ],
        1,
        NOW,
      ),
    ).toBe(true);
  });
});
