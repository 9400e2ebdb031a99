import { describe, expect, it } from 'vitest';
import type { CreatedSnapshot } from '../../../lib/aws/Ec2Gateway.ts';
import { AwsCallError, CreateSnapshotSetError, toAwsCallError } from '../../../lib/aws/errors.ts';
import { uncertainAttemptsOf } from '../../../lib/jobs/backupIdempotency.ts';

const snapshot = (extra: Partial<CreatedSnapshot> = {}): CreatedSnapshot => ({
  snapshotId: 'snap-1',
  volumeId: 'vol-1',
  state: 'pending',
  ...extra,
});

describe('Function: uncertainAttemptsOf', () => {
  it('finds none in an answer made at the first attempt', () => {
    expect(uncertainAttemptsOf({ answered: [snapshot()] })).toBe(0);
    expect(uncertainAttemptsOf({ answered: [] })).toBe(0);
  });

  it('counts the attempts before the answered one, or what the gateway counted', () => {
    expect(uncertainAttemptsOf({ answered: [snapshot({ attempts: 3 })] })).toBe(2);
    expect(
      uncertainAttemptsOf({ answered: [snapshot({ attempts: 3, uncertainAttempts: 1 })] }),
    ).toBe(1);
  });

  it('takes what a failed create counted, else one for a failure after which a set may exist', () => {
    // Prepare
    const counted = new CreateSnapshotSetError(new Error('socket hang up'), 2);
    const timeout = new AwsCallError('CreateSnapshots', 'TimeoutError', 'timed out');
    const refused = new AwsCallError('CreateSnapshots', 'UnauthorizedOperation', 'denied');

    // Act / Assess
    expect(
      uncertainAttemptsOf({ error: counted, failure: toAwsCallError('CreateSnapshots', counted) }),
    ).toBe(2);
    expect(uncertainAttemptsOf({ error: timeout, failure: timeout })).toBe(1);
    expect(uncertainAttemptsOf({ error: refused, failure: refused })).toBe(0);
  });
});
