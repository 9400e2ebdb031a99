import {
  DescribeLockedSnapshotsCommand,
  type EC2Client,
  LockSnapshotCommand,
  type LockSnapshotCommandInput,
  ModifySnapshotTierCommand,
  paginateDescribeSnapshotTierStatus,
  RestoreSnapshotTierCommand,
} from '@aws-sdk/client-ec2';
import type { TierRestore, TierRestoreResult, TierStatus } from '../domain/archiveTier.ts';
import {
  COMPLIANCE_COOL_OFF_HOURS,
  LOCK_STATES,
  type LockRequest,
  type LockResult,
  type LockState,
  type SnapshotLockStatus,
} from '../domain/snapshotLock.ts';
import { toAwsCallError } from './errors.ts';

/** DescribeLockedSnapshots with SnapshotIds: ids per request (the API sets no documented cap). */
const IDS_PER_REQUEST = 100;

/**
 * The snapshot-lock and storage-tier calls of EC2, typed in domain terms. Built on the
 * account's rate-limited EC2 client. Request and answer shapes follow the EC2 API
 * reference pages LockSnapshot, DescribeLockedSnapshots, ModifySnapshotTier and
 * RestoreSnapshotTier.
 *
 * @example
 * const tiers = new Ec2SnapshotTierGateway(ec2);
 * await tiers.lockSnapshot({ snapshotId: 'snap-1', mode: 'governance', days: 365 });
 */
export class Ec2SnapshotTierGateway {
  readonly #client: EC2Client;

  public constructor(client: EC2Client) {
    this.#client = client;
  }

  /**
   * Locks one snapshot. Governance locks can be removed by a principal allowed
   * `ec2:UnlockSnapshot`; compliance locks get a {@link COMPLIANCE_COOL_OFF_HOURS}-hour
   * cool-off, after which nobody can remove them. A pending snapshot can be locked: its
   * lock duration starts when it completes.
   *
   * @throws {AwsCallError} with EC2's code (e.g. `InvalidSnapshot.NotFound`).
   * @example
   * await tiers.lockSnapshot({ snapshotId: 'snap-1', mode: 'governance', days: 365 });
   */
  public async lockSnapshot(request: LockRequest): Promise<LockResult> {
    const input: LockSnapshotCommandInput = {
      SnapshotId: request.snapshotId,
      LockMode: request.mode,
      ...(request.expiresAt
        ? { ExpirationDate: request.expiresAt }
        : { LockDuration: request.days }),
      ...(request.mode === 'compliance' ? { CoolOffPeriod: COMPLIANCE_COOL_OFF_HOURS } : {}),
    };
    try {
      const answer = await this.#client.send(new LockSnapshotCommand(input));
      return {
        snapshotId: answer.SnapshotId ?? request.snapshotId,
        // No state in the answer: what was asked for (compliance starts in its cool-off).
        state: answer.LockState
          ? toLockState(answer.LockState)
          : request.mode === 'governance'
            ? 'governance'
            : 'compliance-cooloff',
        expiresOn: answer.LockExpiresOn,
      };
    } catch (error) {
      throw toAwsCallError('LockSnapshot', error);
    }
  }

  /**
   * The locks of the given snapshots, by snapshot id; a snapshot without a lock is absent.
   *
   * @throws {AwsCallError}
   * @example
   * const locks = await tiers.lockedSnapshots(['snap-1', 'snap-2']);
   */
  public async lockedSnapshots(
    snapshotIds: readonly string[],
  ): Promise<Map<string, SnapshotLockStatus>> {
    const locks = new Map<string, SnapshotLockStatus>();
    for (let start = 0; start < snapshotIds.length; start += IDS_PER_REQUEST) {
      const ids = snapshotIds.slice(start, start + IDS_PER_REQUEST);
      let nextToken: string | undefined;
      try {
        do {
          const page = await this.#client.send(
            new DescribeLockedSnapshotsCommand({ SnapshotIds: ids, NextToken: nextToken }),
          );
          for (const info of page.Snapshots ?? []) {
            if (!info.SnapshotId) continue;
            locks.set(info.SnapshotId, {
              snapshotId: info.SnapshotId,
              state: toLockState(info.LockState),
              expiresOn: info.LockExpiresOn,
            });
          }
          nextToken = page.NextToken || undefined;
        } while (nextToken);
      } catch (error) {
        throw toAwsCallError('DescribeLockedSnapshots', error);
      }
    }
    return locks;
  }

  /**
   * Moves one completed snapshot to the archive tier; answers when tiering started.
   *
   * @throws {AwsCallError}
   * @example
   * const { startedAt } = await tiers.archiveSnapshot('snap-1');
   */
  public async archiveSnapshot(snapshotId: string): Promise<{ startedAt?: Date | undefined }> {
    try {
      const answer = await this.#client.send(
        new ModifySnapshotTierCommand({ SnapshotId: snapshotId, StorageTier: 'archive' }),
      );
      return { startedAt: answer.TieringStartTime };
    } catch (error) {
      throw toAwsCallError('ModifySnapshotTier', error);
    }
  }

  /**
   * The tier of each given snapshot, with its last tiering operation (when an archived
   * point was archived, whether a restore is under way and until when it lasts).
   *
   * @throws {AwsCallError}
   * @example
   * const tiers = await gateway.tierStatuses(['snap-1']);
   */
  public async tierStatuses(snapshotIds: readonly string[]): Promise<Map<string, TierStatus>> {
    const statuses = new Map<string, TierStatus>();
    try {
      for (let start = 0; start < snapshotIds.length; start += IDS_PER_REQUEST) {
        const pages = paginateDescribeSnapshotTierStatus(
          { client: this.#client, pageSize: 1000 },
          {
            Filters: [
              { Name: 'snapshot-id', Values: snapshotIds.slice(start, start + IDS_PER_REQUEST) },
            ],
          },
        );
        for await (const page of pages) {
          for (const status of page.SnapshotTierStatuses ?? []) {
            if (!status.SnapshotId) continue;
            statuses.set(status.SnapshotId, {
              snapshotId: status.SnapshotId,
              tier: status.StorageTier === 'archive' ? 'archive' : 'standard',
              lastTieringStartTime: status.LastTieringStartTime,
              lastOperation: status.LastTieringOperationStatus,
              restoreExpiryTime: status.RestoreExpiryTime,
            });
          }
        }
      }
    } catch (error) {
      throw toAwsCallError('DescribeSnapshotTierStatus', error);
    }
    return statuses;
  }

  /**
   * Starts restoring an archived snapshot to the standard tier, for `days` or for good.
   *
   * @throws {AwsCallError}
   * @example
   * await tiers.restoreSnapshotTier('snap-1', { kind: 'temporary', days: 3 });
   */
  public async restoreSnapshotTier(
    snapshotId: string,
    restore: TierRestore,
  ): Promise<TierRestoreResult> {
    try {
      const answer = await this.#client.send(
        new RestoreSnapshotTierCommand(
          restore.kind === 'permanent'
            ? { SnapshotId: snapshotId, PermanentRestore: true }
            : { SnapshotId: snapshotId, TemporaryRestoreDays: restore.days },
        ),
      );
      return {
        snapshotId: answer.SnapshotId ?? snapshotId,
        startedAt: answer.RestoreStartTime,
        permanent: answer.IsPermanentRestore ?? restore.kind === 'permanent',
        days: answer.RestoreDuration ?? (restore.kind === 'temporary' ? restore.days : undefined),
      };
    } catch (error) {
      throw toAwsCallError('RestoreSnapshotTier', error);
    }
  }
}

/**
 * EC2's lock state in the domain's terms. An unknown state (a new one EC2 may add) is
 * taken as compliance: the side that never deletes.
 */
function toLockState(state: string | undefined): LockState {
  return (LOCK_STATES as readonly string[]).includes(state ?? '')
    ? (state as LockState)
    : 'compliance';
}
