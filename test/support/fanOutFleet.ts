import {
  type BatchSpec,
  batchCountFor,
  planInstanceBatches,
  type Target,
} from '../../lib/domain/fanOut.ts';

/** The target the fan-out's domain tests plan for. */
export const SELF_IRELAND: Target = { account: 'self', region: 'eu-west-1' };

const FLEET: { instanceId: string; volumeIds: string[] }[] = [];

/** Instances `i-00000001`, `i-00000002`, ... each with one root volume. */
export function fleet(size: number): { instanceId: string; volumeIds: string[] }[] {
  while (FLEET.length < size) {
    const id = (FLEET.length + 1).toString(16).padStart(8, '0');
    FLEET.push({ instanceId: `i-${id}`, volumeIds: [`vol-${id}`] });
  }
  return FLEET.slice(0, size);
}

/** Each batch's number of instances. */
export const sizesOf = (batches: readonly { instanceIds?: readonly string[] | undefined }[]) =>
  batches.map((b) => b.instanceIds?.length ?? 0);

/** `due` instances planned as the planner plans them: its batch count, workers and limit. */
export function planAsPlanner(scenario: {
  due: number;
  maxBatch: number;
  workers: number;
}): BatchSpec[] {
  const { due, maxBatch, workers } = scenario;
  return planInstanceBatches(
    SELF_IRELAND,
    fleet(due),
    new Map(),
    batchCountFor(due, maxBatch, workers),
    workers,
    maxBatch,
  );
}
