/**
 * The EBS direct gateway against a stubbed client answering as the EBS direct APIs
 * reference documents `ListChangedBlocks` and `ListSnapshotBlocks`: pages that hold
 * fewer blocks than asked (even none) while `NextToken` is set, `BlockSize` in every
 * answer (524288), `SecondBlockToken` absent for a block the second snapshot no longer
 * holds, and the errors `RequestThrottledException` (HTTP 400, `Reason`
 * ACCOUNT_THROTTLED), `ThrottlingException`, `ValidationException` (`Reason`
 * UNRELATED_SNAPSHOTS) and `ResourceNotFoundException`.
 */
import 'aws-sdk-client-mock-vitest/extend';
import {
  EBSClient,
  ListChangedBlocksCommand,
  ListSnapshotBlocksCommand,
} from '@aws-sdk/client-ebs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import {
  EbsDirectGateway,
  EbsThrottledError,
  SnapshotUnreadableError,
} from '../../../lib/aws/EbsDirectGateway.ts';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const ebsMock = mockClient(EBSClient);
const BLOCK = 524_288;

function gateway(): EbsDirectGateway {
  return new EbsDirectGateway(new EBSClient({ region: 'eu-west-1' }));
}

function blocks(from: number, count: number) {
  return Array.from({ length: count }, (_, i) => ({ BlockIndex: from + i, BlockToken: `t${i}` }));
}

afterEach(() => {
  ebsMock.reset();
});

describe('Class: EbsDirectGateway', () => {
  describe('Method: snapshotBytes', () => {
    it('follows NextToken through short and empty pages, counting blocks times the block size', async () => {
      // Prepare
      ebsMock
        .on(ListSnapshotBlocksCommand, { SnapshotId: 'snap-1', NextToken: undefined })
        .resolves({ Blocks: blocks(0, 3), BlockSize: BLOCK, VolumeSize: 8, NextToken: 'p2' })
        .on(ListSnapshotBlocksCommand, { SnapshotId: 'snap-1', NextToken: 'p2' })
        .resolves({ Blocks: [], BlockSize: BLOCK, VolumeSize: 8, NextToken: 'p3' })
        .on(ListSnapshotBlocksCommand, { SnapshotId: 'snap-1', NextToken: 'p3' })
        .resolves({ Blocks: blocks(3, 2), BlockSize: BLOCK, VolumeSize: 8 });

      // Act
      const count = await gateway().snapshotBytes('snap-1');

      // Assess
      expect(count).toEqual({ blocks: 5, blockSize: BLOCK, bytes: 5 * BLOCK, pages: 3 });
      expect(ebsMock).toHaveReceivedCommandTimes(ListSnapshotBlocksCommand, 3);
      expect(ebsMock).toHaveReceivedCommandWith(ListSnapshotBlocksCommand, {
        SnapshotId: 'snap-1',
        MaxResults: 10_000,
      });
    });

    it('reads an empty snapshot as 0 bytes', async () => {
      // Prepare
      ebsMock.on(ListSnapshotBlocksCommand).resolves({ Blocks: [], VolumeSize: 8 });

      // Act
      const count = await gateway().snapshotBytes('snap-1');

      // Assess
      expect(count.bytes).toBe(0);
    });

    it.each([
      ['ThrottlingException', 'Rate exceeded'],
      ['RequestThrottledException', 'The request was throttled (ACCOUNT_THROTTLED)'],
    ])('turns %s (after the SDK retries) into EbsThrottledError', async (code, message) => {
      // Prepare
      ebsMock
        .on(ListSnapshotBlocksCommand)
        .rejects(Object.assign(sdkError(code, message), { Reason: 'ACCOUNT_THROTTLED' }));

      // Act
      const read = gateway().snapshotBytes('snap-1');

      // Assess
      await expect(read).rejects.toBeInstanceOf(EbsThrottledError);
      await expect(read).rejects.toMatchObject({ code, action: 'ListSnapshotBlocks' });
    });

    it('names a snapshot the APIs cannot read (still pending, or gone)', async () => {
      // Prepare
      ebsMock.on(ListSnapshotBlocksCommand).rejects(
        Object.assign(sdkError('ResourceNotFoundException', 'The snapshot was not found', 404), {
          Reason: 'SNAPSHOT_NOT_FOUND',
        }),
      );

      // Act
      const read = gateway().snapshotBytes('snap-pending');

      // Assess
      await expect(read).rejects.toBeInstanceOf(SnapshotUnreadableError);
      await expect(read).rejects.toMatchObject({
        snapshotId: 'snap-pending',
        code: 'ResourceNotFoundException:SNAPSHOT_NOT_FOUND',
      });
    });

    it('reports any other error as an AwsCallError naming the action', async () => {
      // Prepare
      ebsMock.on(ListSnapshotBlocksCommand).rejects(sdkError('AccessDeniedException', 'no', 403));

      // Act
      const read = gateway().snapshotBytes('snap-1');

      // Assess
      await expect(read).rejects.toBeInstanceOf(AwsCallError);
      await expect(read).rejects.toMatchObject({
        code: 'AccessDeniedException',
        action: 'ListSnapshotBlocks',
      });
    });
  });

  describe('Method: changedBytes', () => {
    it('counts only the changed blocks the second snapshot holds, over every page', async () => {
      // Prepare
      ebsMock
        .on(ListChangedBlocksCommand, { NextToken: undefined })
        .resolves({
          ChangedBlocks: [
            { BlockIndex: 0, FirstBlockToken: 'a', SecondBlockToken: 'b' },
            { BlockIndex: 1, SecondBlockToken: 'c' },
            { BlockIndex: 2, FirstBlockToken: 'd' },
          ],
          BlockSize: BLOCK,
          NextToken: 'next',
        })
        .on(ListChangedBlocksCommand, { NextToken: 'next' })
        .resolves({
          ChangedBlocks: [{ BlockIndex: 9, FirstBlockToken: 'e', SecondBlockToken: 'f' }],
          BlockSize: BLOCK,
        });

      // Act
      const count = await gateway().changedBytes('snap-old', 'snap-new');

      // Assess
      expect(count).toEqual({ blocks: 3, blockSize: BLOCK, bytes: 3 * BLOCK, pages: 2 });
      expect(ebsMock).toHaveReceivedCommandWith(ListChangedBlocksCommand, {
        FirstSnapshotId: 'snap-old',
        SecondSnapshotId: 'snap-new',
      });
    });

    it('names unrelated snapshots with the Reason, so the caller can measure the full size', async () => {
      // Prepare
      ebsMock.on(ListChangedBlocksCommand).rejects(
        Object.assign(sdkError('ValidationException', 'The snapshots are not related'), {
          Reason: 'UNRELATED_SNAPSHOTS',
        }),
      );

      // Act
      const read = gateway().changedBytes('snap-a', 'snap-b');

      // Assess
      await expect(read).rejects.toMatchObject({
        name: 'SnapshotUnreadableError',
        code: 'ValidationException:UNRELATED_SNAPSHOTS',
      });
    });

    it('refuses an answer with blocks but no block size', async () => {
      // Prepare
      ebsMock
        .on(ListChangedBlocksCommand)
        .resolves({ ChangedBlocks: [{ BlockIndex: 0, SecondBlockToken: 'x' }] });

      // Act
      const read = gateway().changedBytes('snap-a', 'snap-b');

      // Assess
      await expect(read).rejects.toMatchObject({ code: 'NoBlockSize' });
    });
  });
});
