import { describe, expect, it } from 'vitest';
import { parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import { copyRegions } from '../../../lib/report/coverageData.ts';

function config(copyTo: Record<string, string[]>, copyKmsKeys: Record<string, string> = {}) {
  const catalog = parseScheduleCatalog(
    Object.entries(copyTo).map(([name, regions]) => ({
      name,
      cron: 'cron(0 3 * * ? *)',
      timezone: 'UTC',
      retain: 7,
      ...(regions.length > 0 ? { copyTo: regions } : {}),
    })),
    Object.keys(copyTo)[0] ?? 'daily',
  );
  return { catalog, copyKmsKeys, region: 'eu-west-1' };
}

describe('Function: copyRegions', () => {
  it('lists every schedule’s copy regions and every region with a copy key, once each, sorted', () => {
    expect(
      copyRegions(
        config(
          { daily: ['us-west-2', 'eu-central-1'], weekly: ['us-west-2'] },
          { 'ap-south-1': 'alias/k' },
        ),
      ),
    ).toEqual(['ap-south-1', 'eu-central-1', 'us-west-2']);
  });

  it('leaves out the deployment’s own region', () => {
    expect(
      copyRegions(config({ daily: [] }, { 'eu-west-1': 'alias/k', 'us-east-1': 'alias/k' })),
    ).toEqual(['us-east-1']);
  });

  it('is empty when nothing is copied (the page then shows — for copies)', () => {
    expect(copyRegions(config({ daily: [] }))).toEqual([]);
  });
});
