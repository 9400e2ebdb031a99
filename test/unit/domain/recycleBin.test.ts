import { describe, expect, it } from 'vitest';
import { type RecycleBinRule, recycleBinRuleFor } from '../../../lib/domain/recycleBin.ts';

function rule(overrides: Partial<RecycleBinRule> = {}): RecycleBinRule {
  return {
    identifier: 'rule-region',
    retentionDays: 7,
    resourceTags: [],
    excludeTags: [],
    ...overrides,
  };
}

describe('Function: recycleBinRuleFor', () => {
  it('finds no rule when there are none', () => {
    // Prepare
    const tags = { 'snapkeeper:managed': 'true' };

    // Act
    const found = recycleBinRuleFor(tags, []);

    // Assess
    expect(found).toBeUndefined();
  });

  describe('region-level rule', () => {
    it.each([
      ['no tags', {}],
      ['any tags', { team: 'web', 'snapkeeper:managed': 'true' }],
    ])('covers an image with %s', (_case, tags) => {
      // Prepare
      const regionRule = rule({ retentionDays: 14 });

      // Act
      const found = recycleBinRuleFor(tags, [regionRule]);

      // Assess
      expect(found).toBe(regionRule);
      expect(found?.retentionDays).toBe(14);
    });

    it('does not cover an image carrying an exclusion tag key', () => {
      // Prepare
      const regionRule = rule({ excludeTags: [{ key: 'no-bin' }] });

      // Act
      const found = recycleBinRuleFor({ 'no-bin': 'anything' }, [regionRule]);

      // Assess
      expect(found).toBeUndefined();
    });

    it('does not cover an image whose tag matches an exclusion key and value', () => {
      // Prepare
      const regionRule = rule({ excludeTags: [{ key: 'env', value: 'dev' }] });

      // Act
      const found = recycleBinRuleFor({ env: 'dev' }, [regionRule]);

      // Assess
      expect(found).toBeUndefined();
    });

    it('still covers an image whose tag has the exclusion key but another value', () => {
      // Prepare
      const regionRule = rule({ excludeTags: [{ key: 'env', value: 'dev' }] });

      // Act
      const found = recycleBinRuleFor({ env: 'prod' }, [regionRule]);

      // Assess
      expect(found).toBe(regionRule);
    });

    it('excludes on any one of several exclusion tags', () => {
      // Prepare
      const regionRule = rule({
        excludeTags: [
          { key: 'env', value: 'dev' },
          { key: 'no-bin', value: '' },
        ],
      });

      // Act
      const found = recycleBinRuleFor({ env: 'prod', 'no-bin': 'yes' }, [regionRule]);

      // Assess
      expect(found).toBeUndefined();
    });
  });

  describe('tag-level rule', () => {
    it('covers an image carrying the rule tag key, whatever its value, when the rule names no value', () => {
      // Prepare
      const tagRule = rule({ identifier: 'rule-tag', resourceTags: [{ key: 'team' }] });

      // Act
      const found = recycleBinRuleFor({ team: 'payments' }, [tagRule]);

      // Assess
      expect(found).toBe(tagRule);
    });

    it('treats an empty rule value as key only', () => {
      // Prepare
      const tagRule = rule({ identifier: 'rule-tag', resourceTags: [{ key: 'team', value: '' }] });

      // Act
      const found = recycleBinRuleFor({ team: 'payments' }, [tagRule]);

      // Assess
      expect(found).toBe(tagRule);
    });

    it('covers an image whose tag matches key and value', () => {
      // Prepare
      const tagRule = rule({
        identifier: 'rule-tag',
        resourceTags: [{ key: 'team', value: 'web' }],
      });

      // Act
      const found = recycleBinRuleFor({ team: 'web' }, [tagRule]);

      // Assess
      expect(found).toBe(tagRule);
    });

    it.each([
      ['no tags', {}],
      ['another value', { team: 'payments' }],
      ['the value under another key', { owner: 'web' }],
      ['the key in another case', { Team: 'web' }],
    ])('does not cover an image with %s', (_case, tags) => {
      // Prepare
      const tagRule = rule({
        identifier: 'rule-tag',
        resourceTags: [{ key: 'team', value: 'web' }],
      });

      // Act
      const found = recycleBinRuleFor(tags, [tagRule]);

      // Assess
      expect(found).toBeUndefined();
    });

    it('covers an image matching any one of the rule tags', () => {
      // Prepare
      const tagRule = rule({
        identifier: 'rule-tag',
        resourceTags: [
          { key: 'team', value: 'web' },
          { key: 'backup', value: 'bin' },
        ],
      });

      // Act
      const found = recycleBinRuleFor({ backup: 'bin' }, [tagRule]);

      // Assess
      expect(found).toBe(tagRule);
    });

    it('is not fooled by inherited object properties', () => {
      // Prepare
      const tagRule = rule({ identifier: 'rule-tag', resourceTags: [{ key: 'toString' }] });

      // Act
      const found = recycleBinRuleFor({}, [tagRule]);

      // Assess
      expect(found).toBeUndefined();
    });
  });

  it('returns the first rule that covers the image, skipping those that do not', () => {
    // Prepare
    const teamRule = rule({
      identifier: 'rule-team',
      resourceTags: [{ key: 'team', value: 'api' }],
    });
    const regionRule = rule({ identifier: 'rule-region', retentionDays: 30 });
    const otherRegionRule = rule({ identifier: 'rule-region-2', retentionDays: 90 });

    // Act
    const found = recycleBinRuleFor({ team: 'web' }, [teamRule, regionRule, otherRegionRule]);

    // Assess
    expect(found?.identifier).toBe('rule-region');
  });
});
