import { describe, expect, it } from 'vitest';
import { loadConsistencySettings } from '../../../lib/config/consistencySettings.ts';
import { ConfigurationError } from '../../../lib/domain/errors.ts';
import { parseScheduleCatalog } from '../../../lib/domain/schedules.ts';

describe('loadConsistencySettings', () => {
  it('defaults to a 30 s wait, the shipped fsfreeze document and no operator documents', () => {
    expect(loadConsistencySettings({})).toEqual({
      consistencyTimeoutSeconds: 30,
      consistencyVssTimeoutSeconds: 180,
      consistencyFsfreezeDocument: 'snapkeeper-fsfreeze',
      consistencyDocuments: [],
    });
  });

  it('reads the timeout, the stage’s fsfreeze document and the operator’s documents', () => {
    expect(
      loadConsistencySettings({
        CONSISTENCY_TIMEOUT_SECONDS: '45',
        CONSISTENCY_VSS_TIMEOUT_SECONDS: '300',
        CONSISTENCY_FSFREEZE_DOCUMENT: 'snapkeeper-fsfreeze-prod',
        CONSISTENCY_DOCUMENTS: 'db-flush, db-flush ,redis-save',
      }),
    ).toEqual({
      consistencyTimeoutSeconds: 45,
      consistencyVssTimeoutSeconds: 300,
      consistencyFsfreezeDocument: 'snapkeeper-fsfreeze-prod',
      consistencyDocuments: ['db-flush', 'redis-save'],
    });
  });

  it.each([
    [{ CONSISTENCY_TIMEOUT_SECONDS: '4' }, 'CONSISTENCY_TIMEOUT_SECONDS', 'from 5 to 300'],
    [{ CONSISTENCY_TIMEOUT_SECONDS: '30s' }, 'CONSISTENCY_TIMEOUT_SECONDS', 'whole number'],
    [
      { CONSISTENCY_VSS_TIMEOUT_SECONDS: '29' },
      'CONSISTENCY_VSS_TIMEOUT_SECONDS',
      'from 30 to 600',
    ],
    [
      { CONSISTENCY_VSS_TIMEOUT_SECONDS: '601' },
      'CONSISTENCY_VSS_TIMEOUT_SECONDS',
      'from 30 to 600',
    ],
    [{ CONSISTENCY_DOCUMENTS: 'db flush' }, 'CONSISTENCY_DOCUMENTS', 'not an SSM document name'],
    [{ CONSISTENCY_FSFREEZE_DOCUMENT: 'x' }, 'CONSISTENCY_FSFREEZE_DOCUMENT', 'not an SSM'],
  ])('rejects %j naming %s', (env, variable, why) => {
    let caught: unknown;
    try {
      loadConsistencySettings(env);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigurationError);
    expect((caught as Error).message).toContain(variable);
    expect((caught as Error).message).toContain(why);
  });
});

describe('the schedule option consistency', () => {
  const daily = { name: 'daily', cron: 'cron(0 3 * * ? *)', retain: 7 };

  it('is kept on the schedule when valid', () => {
    const catalog = parseScheduleCatalog([{ ...daily, consistency: 'fsfreeze' }]);
    expect(catalog.schedules.get('daily')?.consistency).toBe('fsfreeze');
  });

  it('is refused with the schedule, the value and the fix', () => {
    expect(() => parseScheduleCatalog([{ ...daily, consistency: 'freeze' }])).toThrow(
      /schedule "daily" consistency="freeze" is not a consistency mode; use crash, fsfreeze, vss or ssm:<document>/,
    );
  });
});
