// The fan-out of a scheduled backup or retention run over many (account, region)
// targets: the planner (fanOutPlanner.ts) sends one queue message per batch, a worker
// (fanOutWorker.ts) runs each batch; both count the run's outcome as the job's own
// (fanOutMetrics.ts). This module keeps the entry points where the handlers import them.

export { runOutcomeMetric } from './fanOutMetrics.ts';
export {
  type FanOutDependencies,
  type FanOutInput,
  type FanOutReport,
  planFanOut,
  type TargetDispatch,
} from './fanOutPlanner.ts';
export {
  type BatchDependencies,
  type BatchOutcome,
  BatchRetryError,
  BUSY_RECHECK_SECONDS,
  runFanOutBatch,
} from './fanOutWorker.ts';
