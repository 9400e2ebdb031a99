import { describe, expect, it } from 'vitest';
import { skipInstance, skippedResult } from '../../../lib/domain/instanceDecision.ts';
import type { TagProblem } from '../../../lib/domain/tagPolicy.ts';

const problem = (message: string): TagProblem =>
  ({ resourceId: 'i-1', key: 'snapkeeper:backup', message }) as TagProblem;

describe('Function: skipInstance', () => {
  it('names the instance by its id and Name tag, with the reason and the problems', () => {
    // Act
    const skip = skipInstance(
      { instanceId: 'i-1', tags: { Name: 'web' } },
      'instance is terminated',
      false,
      [],
    );

    // Assess
    expect(skip).toEqual({
      kind: 'skip',
      instanceId: 'i-1',
      name: 'web',
      reason: 'instance is terminated',
      isError: false,
      problems: [],
    });
  });
});

describe('Function: skippedResult', () => {
  it('reports a skip a bad tag caused as an InvalidTag error, with each problem message', () => {
    // Prepare
    const skip = skipInstance({ instanceId: 'i-1', tags: {} }, 'not opted in: typo', true, [
      problem('typo'),
    ]);

    // Act / Assess
    expect(skippedResult(skip)).toEqual({
      instanceId: 'i-1',
      name: undefined,
      outcome: 'skipped',
      reason: 'not opted in: typo',
      error: { code: 'InvalidTag', message: 'not opted in: typo' },
      problems: ['typo'],
    });
  });

  it('reports a plain skip with neither an error nor problems', () => {
    // Prepare
    const skip = skipInstance(
      { instanceId: 'i-2', tags: { Name: 'db' } },
      'instance is stopped',
      false,
      [],
    );

    // Act
    const result = skippedResult(skip);

    // Assess
    expect(result).toEqual({
      instanceId: 'i-2',
      name: 'db',
      outcome: 'skipped',
      reason: 'instance is stopped',
    });
    expect(Object.keys(result)).not.toContain('error');
    expect(Object.keys(result)).not.toContain('problems');
  });
});
