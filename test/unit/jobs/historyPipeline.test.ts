import { describe, expect, it } from 'vitest';
import { HistoryWriteError } from '../../../lib/aws/RunHistoryGateway.ts';
import { Behind, HistoryPipeline } from '../../../lib/jobs/historyPipeline.ts';
import type { ActionRecord } from '../../../lib/jobs/ports.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function entry(id: string, phase: 'before' | 'after' = 'before'): ActionRecord {
  return {
    runId: 'r1',
    job: 'retention',
    action: 'delete-snapshot',
    resourceId: id,
    phase,
    reason: 'beyond count 7',
  };
}

describe('Class: HistoryPipeline', () => {
  describe('Method: record', () => {
    it('puts the records queued together into batches of at most 25', async () => {
      // Prepare
      const batches: string[][] = [];
      const pipeline = new HistoryPipeline({
        recordMany: async (entries) => {
          batches.push(entries.map((e) => e.resourceId));
        },
      });

      // Act
      await Promise.all(Array.from({ length: 60 }, (_, i) => pipeline.record(entry(`snap-${i}`))));

      // Assess
      expect(batches.map((b) => b.length)).toEqual([25, 25, 10]);
      expect(pipeline.calls).toBe(3);
    });

    it('keeps at most maxInFlight batches being written, and batches what queues meanwhile', async () => {
      // Prepare: a slow table.
      let writing = 0;
      let most = 0;
      const sizes: number[] = [];
      const pipeline = new HistoryPipeline(
        {
          recordMany: async (entries) => {
            writing += 1;
            most = Math.max(most, writing);
            sizes.push(entries.length);
            await sleep(20);
            writing -= 1;
          },
        },
        { maxInFlight: 2 },
      );

      // Act: one record a millisecond for 60 ms.
      const written: Promise<void>[] = [];
      for (let i = 0; i < 60; i += 1) {
        written.push(pipeline.record(entry(`snap-${i}`)));
        await sleep(1);
      }
      await Promise.all(written);

      // Assess
      expect(most).toBeLessThanOrEqual(2);
      expect(sizes.reduce((n, s) => n + s, 0)).toBe(60);
      expect(sizes.length).toBeLessThan(20);
    });

    it('rejects only the records the table did not take; the others resolve', async () => {
      // Prepare: the second of three is never written.
      const pipeline = new HistoryPipeline({
        recordMany: async () => {
          throw new HistoryWriteError([1], 'item(s) still unprocessed after 8 rounds');
        },
      });

      // Act
      const results = await Promise.allSettled(
        ['a', 'b', 'c'].map((id) => pipeline.record(entry(id))),
      );

      // Assess
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(HistoryWriteError);
    });

    it('rejects every record of a batch whose write failed without saying which', async () => {
      // Prepare
      const pipeline = new HistoryPipeline({
        recordMany: async () => {
          throw new Error('ResourceNotFoundException: Requested resource not found');
        },
      });

      // Act
      const results = await Promise.allSettled(['a', 'b'].map((id) => pipeline.record(entry(id))));

      // Assess
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    });
  });

  describe('Method: flush', () => {
    it('resolves only when every record queued has been written', async () => {
      // Prepare
      const written: string[] = [];
      const pipeline = new HistoryPipeline({
        recordMany: async (entries) => {
          await sleep(10);
          written.push(...entries.map((e) => e.resourceId));
        },
      });
      const behind = new Behind();
      for (let i = 0; i < 30; i += 1) behind.add(pipeline.record(entry(`snap-${i}`, 'after')));

      // Act
      await behind.settled(pipeline);

      // Assess
      expect(written).toHaveLength(30);
    });
  });
});
