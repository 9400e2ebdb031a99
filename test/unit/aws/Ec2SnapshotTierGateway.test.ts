/**
 * The snapshot lock and tier calls against a stubbed EC2 client. moto lacks the lock
 * calls, so the answers here are shaped as the EC2 API reference documents them:
 * - LockSnapshot (API_LockSnapshot): request SnapshotId, LockMode, LockDuration (days) or
 *   ExpirationDate, CoolOffPeriod (hours, compliance only); response SnapshotId,
 *   LockState, LockDuration, CoolOffPeriod, CoolOffPeriodExpiresOn, LockCreatedOn,
 *   LockExpiresOn, LockDurationStartTime;
 * - DescribeLockedSnapshots (API_DescribeLockedSnapshots): response Snapshots
 *   (LockedSnapshotsInfo: OwnerId, SnapshotId, LockState, LockDuration, LockExpiresOn, ...)
 *   and NextToken;
 * - ModifySnapshotTier: response SnapshotId, TieringStartTime;
 * - RestoreSnapshotTier: response SnapshotId, RestoreStartTime, RestoreDuration,
 *   IsPermanentRestore.
 */
import 'aws-sdk-client-mock-vitest/extend';
import {
  DescribeLockedSnapshotsCommand,
  DescribeSnapshotTierStatusCommand,
  EC2Client,
  LockSnapshotCommand,
  ModifySnapshotTierCommand,
  RestoreSnapshotTierCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { Ec2SnapshotTierGateway } from '../../../lib/aws/Ec2SnapshotTierGateway.ts';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import type { SnapshotTiersPort } from '../../../lib/jobs/ports.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const ec2Mock = mockClient(EC2Client);
const EXPIRES = new Date('2027-11-23T03:00:00Z');

function newGateway(): Ec2SnapshotTierGateway {
  return new Ec2SnapshotTierGateway(new EC2Client({ region: 'eu-west-1' }));
}

afterEach(() => {
  ec2Mock.reset();
});

describe('Class: Ec2SnapshotTierGateway', () => {
  it('is the snapshot tiers port', () => {
    expectTypeOf<Ec2SnapshotTierGateway>().toExtend<SnapshotTiersPort>();
  });

  describe('Method: lockSnapshot', () => {
    it('locks in governance mode for a duration in days, without a cool-off', async () => {
      // Prepare
      ec2Mock.on(LockSnapshotCommand).resolves({
        SnapshotId: 'snap-1',
        LockState: 'governance',
        LockDuration: 365,
        LockCreatedOn: new Date('2026-11-23T03:00:00Z'),
        LockExpiresOn: EXPIRES,
      });

      // Act
      const result = await newGateway().lockSnapshot({
        snapshotId: 'snap-1',
        mode: 'governance',
        days: 365,
      });

      // Assess
      expect(result).toEqual({ snapshotId: 'snap-1', state: 'governance', expiresOn: EXPIRES });
      expect(ec2Mock).toHaveReceivedCommandWith(LockSnapshotCommand, {
        SnapshotId: 'snap-1',
        LockMode: 'governance',
        LockDuration: 365,
      });
      expect(ec2Mock.commandCalls(LockSnapshotCommand)[0]?.args[0].input).not.toHaveProperty(
        'CoolOffPeriod',
      );
    });

    it('gives a compliance lock a 24-hour cool-off, and re-locks until an expiration date', async () => {
      // Prepare
      ec2Mock.on(LockSnapshotCommand).resolves({
        SnapshotId: 'snap-1',
        LockState: 'compliance-cooloff',
        CoolOffPeriod: 24,
        LockExpiresOn: EXPIRES,
      });

      // Act
      const result = await newGateway().lockSnapshot({
        snapshotId: 'snap-1',
        mode: 'compliance',
        expiresAt: EXPIRES,
      });

      // Assess
      expect(result.state).toBe('compliance-cooloff');
      expect(ec2Mock.commandCalls(LockSnapshotCommand)[0]?.args[0].input).toEqual({
        SnapshotId: 'snap-1',
        LockMode: 'compliance',
        ExpirationDate: EXPIRES,
        CoolOffPeriod: 24,
      });
    });

    it('reports a refusal with the action and EC2 code', async () => {
      // Prepare
      ec2Mock
        .on(LockSnapshotCommand)
        .rejects(
          sdkError(
            'UnauthorizedOperation',
            'You are not authorized to perform this operation.',
            403,
          ),
        );

      // Act
      const failure = await newGateway()
        .lockSnapshot({ snapshotId: 'snap-1', mode: 'governance', days: 1 })
        .catch((e: unknown) => e);

      // Assess
      expect(failure).toBeInstanceOf(AwsCallError);
      expect(failure).toMatchObject({ action: 'LockSnapshot', code: 'UnauthorizedOperation' });
    });
  });

  describe('Method: lockedSnapshots', () => {
    it('reads every page of the given ids, and takes an unknown state as compliance', async () => {
      // Prepare
      ec2Mock
        .on(DescribeLockedSnapshotsCommand, { SnapshotIds: ['snap-1', 'snap-2', 'snap-3'] })
        .resolvesOnce({
          Snapshots: [
            {
              SnapshotId: 'snap-1',
              OwnerId: '123456789012',
              LockState: 'governance',
              LockExpiresOn: EXPIRES,
            },
          ],
          NextToken: 'page-2',
        })
        .resolvesOnce({
          Snapshots: [
            { SnapshotId: 'snap-2', LockState: 'expired', LockExpiresOn: EXPIRES },
            { SnapshotId: 'snap-3', LockState: 'some-new-state' as 'governance' },
          ],
        });

      // Act
      const locks = await newGateway().lockedSnapshots(['snap-1', 'snap-2', 'snap-3']);

      // Assess
      expect([...locks.values()]).toEqual([
        { snapshotId: 'snap-1', state: 'governance', expiresOn: EXPIRES },
        { snapshotId: 'snap-2', state: 'expired', expiresOn: EXPIRES },
        { snapshotId: 'snap-3', state: 'compliance', expiresOn: undefined },
      ]);
      expect(ec2Mock.commandCalls(DescribeLockedSnapshotsCommand)[1]?.args[0].input).toEqual({
        SnapshotIds: ['snap-1', 'snap-2', 'snap-3'],
        NextToken: 'page-2',
      });
    });

    it('asks for at most 100 ids at a time and nothing for no ids', async () => {
      // Prepare
      ec2Mock.on(DescribeLockedSnapshotsCommand).resolves({ Snapshots: [] });
      const ids = Array.from({ length: 150 }, (_, i) => `snap-${i}`);

      // Act
      await newGateway().lockedSnapshots(ids);
      await newGateway().lockedSnapshots([]);

      // Assess
      const calls = ec2Mock.commandCalls(DescribeLockedSnapshotsCommand);
      expect(calls.map((c) => c.args[0].input.SnapshotIds?.length)).toEqual([100, 50]);
    });
  });

  describe('Method: archiveSnapshot', () => {
    it('moves one snapshot to the archive tier', async () => {
      // Prepare
      const started = new Date('2026-11-23T04:00:00Z');
      ec2Mock
        .on(ModifySnapshotTierCommand)
        .resolves({ SnapshotId: 'snap-1', TieringStartTime: started });

      // Act
      const result = await newGateway().archiveSnapshot('snap-1');

      // Assess
      expect(result).toEqual({ startedAt: started });
      expect(ec2Mock).toHaveReceivedCommandWith(ModifySnapshotTierCommand, {
        SnapshotId: 'snap-1',
        StorageTier: 'archive',
      });
    });

    it('reports an archive refusal', async () => {
      // Prepare
      ec2Mock
        .on(ModifySnapshotTierCommand)
        .rejects(sdkError('IncorrectState', 'The snapshot is in an incorrect state.'));

      // Act
      const failure = await newGateway()
        .archiveSnapshot('snap-1')
        .catch((e: unknown) => e);

      // Assess
      expect(failure).toMatchObject({ action: 'ModifySnapshotTier', code: 'IncorrectState' });
    });
  });

  describe('Method: tierStatuses', () => {
    it('reads the tier and last tiering operation of the given snapshots', async () => {
      // Prepare
      const started = new Date('2026-08-01T04:00:00Z');
      ec2Mock.on(DescribeSnapshotTierStatusCommand).resolves({
        SnapshotTierStatuses: [
          {
            SnapshotId: 'snap-1',
            StorageTier: 'archive',
            LastTieringStartTime: started,
            LastTieringOperationStatus: 'archival-completed',
          },
        ],
      });

      // Act
      const statuses = await newGateway().tierStatuses(['snap-1']);

      // Assess
      expect(statuses.get('snap-1')).toEqual({
        snapshotId: 'snap-1',
        tier: 'archive',
        lastTieringStartTime: started,
        lastOperation: 'archival-completed',
        restoreExpiryTime: undefined,
      });
      expect(ec2Mock).toHaveReceivedCommandWith(DescribeSnapshotTierStatusCommand, {
        Filters: [{ Name: 'snapshot-id', Values: ['snap-1'] }],
      });
    });
  });

  describe('Method: restoreSnapshotTier', () => {
    it('restores temporarily for N days', async () => {
      // Prepare
      const started = new Date('2026-11-23T04:00:00Z');
      ec2Mock.on(RestoreSnapshotTierCommand).resolves({
        SnapshotId: 'snap-1',
        RestoreStartTime: started,
        RestoreDuration: 3,
        IsPermanentRestore: false,
      });

      // Act
      const result = await newGateway().restoreSnapshotTier('snap-1', {
        kind: 'temporary',
        days: 3,
      });

      // Assess
      expect(result).toEqual({
        snapshotId: 'snap-1',
        startedAt: started,
        permanent: false,
        days: 3,
      });
      expect(ec2Mock.commandCalls(RestoreSnapshotTierCommand)[0]?.args[0].input).toEqual({
        SnapshotId: 'snap-1',
        TemporaryRestoreDays: 3,
      });
    });

    it('restores permanently without a number of days', async () => {
      // Prepare
      ec2Mock
        .on(RestoreSnapshotTierCommand)
        .resolves({ SnapshotId: 'snap-1', IsPermanentRestore: true });

      // Act
      const result = await newGateway().restoreSnapshotTier('snap-1', { kind: 'permanent' });

      // Assess
      expect(result.permanent).toBe(true);
      expect(ec2Mock.commandCalls(RestoreSnapshotTierCommand)[0]?.args[0].input).toEqual({
        SnapshotId: 'snap-1',
        PermanentRestore: true,
      });
    });
  });
});
