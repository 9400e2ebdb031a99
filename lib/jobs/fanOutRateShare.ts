// A fan-out batch's share of its target's EC2 rate follows the run's unfinished batches
// of that target (issue 19): when the run's tail has fewer batches left than workers,
// the batches still running take the idle workers' shares.
import {
  type BatchMessage,
  SHARE_REFRESH_MS,
  TAIL_SHARE_REFRESH_MS,
  tailRateShare,
  unfinishedBatchesOf,
} from '../domain/fanOut.ts';
import type { LoggerPort, RateShareControl, RunHistoryPort } from './ports.ts';

/** What a batch needs to follow its run's unfinished batches. */
export interface RateShareFollowing {
  readonly history: Pick<RunHistoryPort, 'runBatches'>;
  /** The share control of the target's EC2 client that the batch's calls go through. */
  readonly control: RateShareControl;
  /** The batch's own share: its message's `rateShare`, else `EC2_RATE_SHARE`. */
  readonly baseShare: number;
  readonly logger: LoggerPort;
  /** How often the run's batches are read again; {@link SHARE_REFRESH_MS} when absent. */
  readonly refreshMs?: number | undefined;
}

/**
 * Starts a batch at its base share (a cached client the previous batch raised is set
 * back), then every `refreshMs` reads the run's batch checkpoints and raises the share to
 * `tailRateShare(baseShare, unfinished)` of the batch's target (every
 * {@link TAIL_SHARE_REFRESH_MS} once no more batches are left than run at once, when
 * each one that ends frees a share). The share only goes up
 * while the batch runs; a read that fails or misses some of the run's batches keeps the
 * share (logged once, at warn) and never fails the batch. A batch at the whole rate
 * already reads nothing. The timer is unref'd, and the returned `stop` (call it when
 * the batch ends, also on a throw) clears it; a read still in flight then changes nothing.
 *
 * @returns `stop`.
 * @example
 * const stop = followRunRateShare(message, { history, control, baseShare: 0.25, logger });
 * try { await runBatch(); } finally { stop(); }
 */
export function followRunRateShare(
  message: Pick<BatchMessage, 'runId' | 'batchId' | 'target' | 'batches'>,
  following: RateShareFollowing,
): () => void {
  const { control, logger } = following;
  const baseShare = tailRateShare(following.baseShare, Number.POSITIVE_INFINITY);
  let current = baseShare;
  control.setShare(current);
  if (current >= 1) return () => undefined;
  // Once no more batches are left than run at once, every batch that ends frees a share:
  // read more often then, so the ones left take it within a fraction of a second.
  const tailFrom = Math.ceil(1 / baseShare);
  const tailMs = Math.min(following.refreshMs ?? SHARE_REFRESH_MS, TAIL_SHARE_REFRESH_MS);
  let inTail = false;
  let stopped = false;
  let warned = false;
  const keep = (reason: string) => {
    if (warned) return;
    warned = true;
    logger.warn('the batch keeps its EC2 rate share', { batchId: message.batchId, reason });
  };
  const refresh = async () => {
    try {
      const checkpoints = await following.history.runBatches(message.runId);
      if (stopped) return;
      const unfinished = unfinishedBatchesOf(message.target, message.batches, checkpoints);
      if (unfinished !== undefined) inTail = unfinished <= tailFrom;
      if (unfinished === undefined) {
        keep(`the run's batches read were ${checkpoints.length} of ${message.batches}`);
        return;
      }
      const next = tailRateShare(baseShare, unfinished);
      if (next <= current) return;
      current = next;
      control.setShare(next);
      logger.debug('EC2 rate share raised: fewer batches of the target left', {
        batchId: message.batchId,
        unfinished,
        share: next,
      });
    } catch (error) {
      keep(
        `the run's batches could not be read: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const schedule = () => {
    timer = setTimeout(read, inTail ? tailMs : (following.refreshMs ?? SHARE_REFRESH_MS));
    timer.unref?.();
  };
  const read = () => {
    if (stopped) return;
    void refresh().finally(() => {
      if (!stopped) schedule();
    });
  };
  schedule();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
