import { describe, expect, it } from 'vitest';
import type { InstanceFacts } from '../../../lib/domain/backupPlan.ts';
import { buildRecoveryReport, recoveryLine } from '../../../lib/domain/recoveryReport.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import type { SnapshotFacts } from '../../../lib/domain/snapshotFacts.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import { type CoverageData, renderCoverageHtml } from '../../../lib/report/htmlReport.ts';

const KEYS = tagKeys();
const NOW = new Date('2026-11-23T10:00:00.000Z');
const HOUR = 3_600_000;

const instance = (instanceId: string, tags: Record<string, string>): InstanceFacts => ({
  instanceId,
  state: 'running',
  tags: { [KEYS.backup]: 'daily', ...tags },
  volumes: [],
});

const snapshot = (
  id: string,
  instanceId: string,
  ageHours: number,
  consistency: string | undefined,
  state = 'completed',
): SnapshotFacts => ({
  snapshotId: id,
  volumeId: 'vol-1',
  state,
  startTime: new Date(NOW.getTime() - ageHours * HOUR),
  sizeGiB: 8,
  tags: {
    [KEYS.managed]: 'true',
    [KEYS.deployment]: 'prod',
    [KEYS.instanceId]: instanceId,
    [KEYS.schedule]: 'daily',
    [KEYS.runId]: `run-${id}`,
    ...(consistency ? { [KEYS.consistency]: consistency } : {}),
  },
});

function report() {
  return buildRecoveryReport({
    instances: [
      instance('i-db', { Name: 'db-1', [KEYS.consistency]: 'fsfreeze' }),
      instance('i-db2', { Name: 'db-2', [KEYS.consistency]: 'ssm:db-flush' }),
      instance('i-web', { Name: 'web-1' }),
    ],
    snapshots: [
      // db-1: the newest set fell back; the one before was app-consistent; a newer app one is pending.
      snapshot('snap-app-old', 'i-db', 50, 'app'),
      snapshot('snap-app', 'i-db', 26, 'app'),
      snapshot('snap-fallback', 'i-db', 2, 'crash-fallback'),
      snapshot('snap-app-pending', 'i-db', 1, 'app', 'pending'),
      snapshot('snap-db2', 'i-db2', 2, 'crash-fallback'),
      snapshot('snap-web', 'i-web', 2, 'crash'),
    ],
    images: [],
    catalog: parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily'),
    keys: KEYS,
    deployment: 'prod',
    now: NOW,
  });
}

describe('the newest application-consistent point in the report', () => {
  it('is the newest completed snapshot tagged app, per instance, beside the newest of any kind', () => {
    const [db, db2, web] = report().instances;
    expect(db?.newestSnapshot?.snapshotId).toBe('snap-fallback');
    expect(db?.newestAppConsistent).toEqual({
      snapshotId: 'snap-app',
      createdAt: '2026-11-22T08:00:00.000Z',
      ageHours: 26,
      schedule: 'daily',
    });
    expect(db?.consistency).toBe('fsfreeze');
    expect(db2?.newestAppConsistent).toBeUndefined();
    expect(db2?.consistency).toBe('ssm:db-flush');
    expect(web).not.toHaveProperty('newestAppConsistent');
    expect(web).not.toHaveProperty('consistency');
  });

  it('is in the console report’s text line', () => {
    const [db, , web] = report().instances;
    expect(recoveryLine(db as never)).toContain('newest app-consistent 26 h');
    expect(recoveryLine(web as never)).not.toContain('app-consistent');
  });

  it('is on the coverage page: the point, "none yet" for an instance that asks, nothing for crash', () => {
    const recovery = report();
    const data: CoverageData = {
      generatedAt: NOW.toISOString(),
      deployment: 'prod',
      region: 'eu-west-1',
      days: 14,
      recovery: { instances: recovery.instances, orphaned: [] },
      runs: [],
      blocked: [],
      blockedGiB: 0,
      blockedNote: '',
      publicFindings: [],
    };
    const page = renderCoverageHtml(data);
    expect(page).toContain('data-app-consistent="snap-app"');
    expect(page).toMatch(
      /data-app-consistent="none">app-consistent: .*none yet.* \(ssm:db-flush\)/,
    );
    expect(page.match(/data-app-consistent=/g)).toHaveLength(2);
  });
});
