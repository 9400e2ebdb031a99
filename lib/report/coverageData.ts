import type { ActionItem, RunRecord } from '../aws/RunHistoryGateway.ts';
import type { InstanceFacts } from '../domain/backupPlan.ts';
import { readCopyPolicy } from '../domain/copyPolicy.ts';
import type { TagKeys } from '../domain/tagKeys.ts';
import type { ConsoleRecoveryReport, OpsDependencies } from '../jobs/consoleOps.ts';
import { runConsoleOperation } from '../jobs/consoleOps.ts';
import type { HistoryQueriesPort, SnapshotsPort } from '../jobs/ports.ts';
import type {
  CoverageData,
  CoverageRun,
  PublicFinding,
  RunError,
  RunTotals,
} from './htmlReport.ts';

/** What the page's data is read through: the console's dependencies and the run history. */
export interface CoverageDependencies extends Omit<OpsDependencies, 'history'> {
  readonly history: Pick<HistoryQueriesPort, 'runActions' | 'latestRuns'>;
  /**
   * Each copy destination region's snapshots, for the copies column. Without it, or
   * without destination regions, the column shows —.
   */
  readonly destination?:
    | ((region: string) => Pick<SnapshotsPort, 'listSnapshotsTagged'>)
    | undefined;
}

/** Options of {@link collectCoverageData}. */
export interface CoverageOptions {
  /** Runs of this many days before now (1 to 400). */
  readonly days: number;
  /** At most this many runs, newest first (default 2000). */
  readonly maxRuns?: number | undefined;
}

const DAY_MS = 86_400_000;
/** Errors kept per run; the details section says how to read the rest. */
const MAX_ERRORS = 200;

/**
 * Reads what the coverage page shows: the console `report` (recovery points, RPO,
 * orphaned history, blocked deletions; run as the console would, dry) and the runs of
 * the last `days` days from the history, with the errors of every run that did not
 * cleanly succeed (from its stored report and its failed actions). Reads only.
 *
 * @example
 * const data = await collectCoverageData(deps, { days: 14 });
 * writeFileSync('report.html', renderCoverageHtml(data));
 */
export async function collectCoverageData(
  deps: CoverageDependencies,
  options: CoverageOptions,
): Promise<CoverageData> {
  const { days } = options;
  if (!Number.isInteger(days) || days < 1 || days > 400)
    throw new RangeError(`days must be a whole number from 1 to 400; got ${String(days)}`);
  const maxRuns = options.maxRuns ?? 2000;
  const now = deps.clock();
  const answer = await runConsoleOperation({ action: 'report' }, deps);
  if (answer.status === 'failed')
    throw new Error(`the recovery report failed: ${answer.error?.message ?? 'no error given'}`);
  const report = answer.result as ConsoleRecoveryReport;
  const since = new Date(now.getTime() - days * DAY_MS).toISOString();
  const records = await deps.history.latestRuns(deps.config.deployment, {
    since,
    limit: maxRuns + 1,
  });
  const runs: CoverageRun[] = [];
  for (const record of records.slice(0, maxRuns)) {
    const troubled = !['succeeded', 'running', 'rejected'].includes(record.status);
    const actions = troubled ? await deps.history.runActions(record.runId) : [];
    runs.push(toCoverageRun(record, actions));
  }
  const copies = await countCopies(deps);
  return {
    generatedAt: now.toISOString(),
    deployment: deps.config.deployment,
    region: deps.config.region,
    days,
    recovery: {
      instances: copies
        ? report.instances.map((i) => ({
            ...i,
            copiesInOtherRegions: copies.get(i.instanceId) ?? 0,
          }))
        : report.instances,
      orphaned: report.orphaned,
    },
    runs,
    ...(records.length > maxRuns ? { runsTruncated: true } : {}),
    blocked: report.blocked,
    blockedGiB: report.blockedGiB,
    blockedNote: report.note,
    ...(report.blockedWarnings ? { blockedWarnings: report.blockedWarnings } : {}),
    ...exposureFrom(records),
    ...(report.costs ? { costs: report.costs } : {}),
  };
}

/**
 * The public exposure findings of the newest finished copy run among the page's runs
 * (the copy job looks for public snapshots and AMIs). A stored report too large to keep
 * its list still gives the count, as one finding that says where to look.
 *
 * @example
 * exposureFrom(records).publicFindings; // [{ resourceId: 'snap-1', kind: 'public snapshot', detail: '...' }]
 */
export function exposureFrom(records: readonly RunRecord[]): {
  publicFindings: PublicFinding[];
  exposureCheckedBy?: { runId: string; at: string };
  amiBlockPublicAccess?: { region: string; state: string; detail?: string }[];
} {
  const run = records.find(
    (r) => r.job === 'copy' && !r.dryRun && r.status !== 'running' && r.status !== 'failed',
  );
  if (!run) return { publicFindings: [] };
  const checkedBy = { runId: run.runId, at: run.endedAt ?? run.startedAt };
  let stored: { publicFindings?: unknown; amiBlockPublicAccess?: unknown } = {};
  try {
    stored = run.report ? (JSON.parse(run.report) as typeof stored) : {};
  } catch {
    stored = {};
  }
  const listed = Array.isArray(stored.publicFindings)
    ? (stored.publicFindings as {
        resourceId?: string;
        kind?: string;
        managed?: boolean;
        madePrivate?: boolean;
      }[])
    : undefined;
  const amiBlock = Array.isArray(stored.amiBlockPublicAccess)
    ? {
        amiBlockPublicAccess: (
          stored.amiBlockPublicAccess as { region?: string; state?: string; reason?: string }[]
        ).map((r) => ({
          region: r.region ?? '?',
          state: r.state ?? 'unknown',
          ...(r.reason ? { detail: r.reason } : {}),
        })),
      }
    : {};
  if (listed) {
    return {
      ...amiBlock,
      exposureCheckedBy: checkedBy,
      publicFindings: listed.map((f) => ({
        resourceId: f.resourceId ?? '?',
        kind: `public ${f.kind ?? 'resource'}`,
        detail: `${f.managed ? 'made by this deployment' : 'not made by snapkeeper'}; ${
          f.madePrivate ? 'made private again (MAKE_PRIVATE)' : 'still public'
        }`,
      })),
    };
  }
  const count = run.counts?.publicFindings ?? 0;
  return {
    ...amiBlock,
    exposureCheckedBy: checkedBy,
    publicFindings:
      count > 0
        ? [
            {
              resourceId: run.runId,
              kind: `${count} public backups`,
              detail: `the list was too long to keep with the run: npm run history -- --run ${run.runId} --json`,
            },
          ]
        : [],
  };
}

/**
 * The regions copies go to: every schedule's `copyTo`, every region with a copy key
 * (`COPY_KMS_KEYS`) and the regions instances name in their `snapkeeper:copy-to` tags
 * (`tagged`, see {@link taggedCopyRegions}), less the deployment's own.
 *
 * @example
 * copyRegions(config, ['ap-south-1']); // ['ap-south-1', 'eu-west-1', 'us-west-2']
 */
export function copyRegions(
  config: Pick<CoverageDependencies['config'], 'catalog' | 'copyKmsKeys' | 'region'>,
  tagged: readonly string[] = [],
): string[] {
  const named = [
    ...[...config.catalog.schedules.values()].flatMap((s) => s.copyTo ?? []),
    ...Object.keys(config.copyKmsKeys),
    ...tagged,
  ];
  return [...new Set(named)].filter((region) => region !== config.region).sort();
}

/**
 * The regions instances ask copies in with their `snapkeeper:copy-to` tag, read as the
 * copy job reads it (a bad region is left out, as the copy job leaves it out).
 *
 * @example
 * taggedCopyRegions([{ instanceId: 'i-1', tags: { 'snapkeeper:copy-to': 'eu-west-1' } }], keys, 'us-east-1'); // ['eu-west-1']
 */
export function taggedCopyRegions(
  instances: readonly Pick<InstanceFacts, 'instanceId' | 'tags'>[],
  keys: TagKeys,
  region: string,
): string[] {
  const regions = instances.flatMap(
    (i) => readCopyPolicy(i.instanceId, i.tags, keys, region, {}).regions,
  );
  return [...new Set(regions)].sort();
}

/**
 * This deployment's copies of this region's backups in every destination region, by
 * instance (copies carry their source's instance id and region). Undefined when there
 * is nothing to read, or a region cannot be read: the column then shows — rather than
 * a count that may be short.
 */
async function countCopies(deps: CoverageDependencies): Promise<Map<string, number> | undefined> {
  if (!deps.destination) return undefined;
  const { keys, deployment, region } = deps.config;
  const counts = new Map<string, number>();
  try {
    const tagged: InstanceFacts[] = [];
    for await (const instance of deps.ec2.listInstancesWithTagKey(keys.copyTo))
      tagged.push(instance);
    const regions = copyRegions(deps.config, taggedCopyRegions(tagged, keys, region));
    if (regions.length === 0) return undefined;
    for (const destination of regions) {
      for await (const copy of deps.destination(destination).listSnapshotsTagged({
        [keys.managed]: 'true',
        [keys.deployment]: deployment,
        [keys.sourceRegion]: region,
      })) {
        const instanceId = copy.tags[keys.instanceId];
        if (!instanceId || copy.state === 'error') continue;
        counts.set(instanceId, (counts.get(instanceId) ?? 0) + 1);
      }
    }
  } catch (error) {
    deps.logger.warn('copies in other regions could not be read: the column shows —', {
      error: error instanceof Error ? error.message : String(error),
    });
    return undefined;
  }
  return counts;
}

/**
 * The four numbers the timeline draws, from a run's counts whatever its job: created
 * counts snapshots (`snapshots`) and AMIs (`created`); deleted counts snapshots
 * (`deleted`, `snapshotsDeleted`, `duplicatesRemoved`) and AMIs (`deregistered`).
 *
 * @example
 * runTotals({ snapshots: 4, skipped: 1, failed: 0 }); // { created: 4, deleted: 0, skipped: 1, failed: 0 }
 */
export function runTotals(counts: Readonly<Record<string, number>> | undefined): RunTotals {
  const n = (key: string) => {
    const value = counts?.[key];
    return typeof value === 'number' && Number.isFinite(value) ? value : 0;
  };
  return {
    created: n('snapshots') + n('created'),
    deleted: n('deleted') + n('deregistered') + n('snapshotsDeleted') + n('duplicatesRemoved'),
    skipped: n('skipped'),
    failed: n('failed'),
  };
}

/**
 * A history run as the page shows it, with its errors: the failed actions, then every
 * `error`, failing-backups note, tag problem and warning found in its stored report (the summary is not
 * repeated).
 *
 * @example
 * toCoverageRun(await history.getRun(runId), await history.runActions(runId));
 */
export function toCoverageRun(record: RunRecord, actions: readonly ActionItem[] = []): CoverageRun {
  const errors: RunError[] = [];
  const seen = new Set<string>();
  if (record.errorSummary) seen.add(`|${record.errorSummary}`);
  const add = (error: RunError) => {
    const key = `${error.resource ?? ''}|${error.code ? `${error.code}: ` : ''}${error.message}`;
    const bare = `|${error.code ? `${error.code}: ` : ''}${error.message}`;
    if (seen.has(key) || seen.has(bare) || errors.length >= MAX_ERRORS) return;
    seen.add(key);
    errors.push(error);
  };
  for (const action of actions) {
    if (action.phase === 'after' && action.outcome === 'failed')
      add({
        resource: action.resourceId,
        code: action.error?.code,
        message: action.error?.message ?? action.reason,
      });
  }
  for (const error of reportErrors(record.report)) add(error);
  return {
    runId: record.runId,
    job: record.job,
    schedule: record.schedule,
    trigger: record.trigger,
    dryRun: record.dryRun === true,
    status: isRejectedPayload(record) ? 'rejected' : record.status,
    startedAt: record.startedAt,
    endedAt: record.endedAt,
    totals: runTotals(record.counts),
    errorSummary: record.errorSummary,
    errors,
  };
}

/**
 * A console payload that was rejected: recorded `rejected`, or, by runs recorded before
 * that status existed, a failed console run whose error is `InvalidPayload`.
 *
 * @example
 * isRejectedPayload({ job: 'ops', status: 'failed', errorSummary: 'InvalidPayload: field "x" ...' }); // true
 */
export function isRejectedPayload(
  record: Pick<RunRecord, 'job' | 'status' | 'errorSummary'>,
): boolean {
  if (record.status === 'rejected') return true;
  return (
    /^ops(:|$)/.test(record.job) &&
    record.status === 'failed' &&
    (record.errorSummary ?? '').startsWith('InvalidPayload:')
  );
}

const RESOURCE_KEYS = ['snapshotId', 'imageId', 'volumeId', 'instanceId'] as const;

/** Every `error`, `failing` note, `problems` and `warnings` entry of a stored report, with its resource. */
function reportErrors(stored: string | undefined): RunError[] {
  if (!stored) return [];
  let report: unknown;
  try {
    report = JSON.parse(stored);
  } catch {
    return [];
  }
  const found: RunError[] = [];
  const visit = (node: unknown, resource: string | undefined) => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item, resource);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const item = node as Record<string, unknown>;
    const own = RESOURCE_KEYS.map((k) => item[k]).find((v) => typeof v === 'string') as
      | string
      | undefined;
    const here = own ?? resource;
    const error = item.error as { code?: unknown; message?: unknown } | undefined;
    if (error && typeof error === 'object' && typeof error.message === 'string')
      found.push({
        resource: here,
        code: typeof error.code === 'string' ? error.code : undefined,
        message: error.message,
      });
    if (typeof item.failing === 'string')
      found.push({ resource: here, code: 'failing', message: item.failing });
    for (const [key, code] of [
      ['problems', 'problem'],
      ['warnings', 'warning'],
    ] as const) {
      const list = item[key];
      if (Array.isArray(list))
        for (const message of list)
          if (typeof message === 'string') found.push({ resource: here, code, message });
    }
    for (const [key, value] of Object.entries(item))
      if (key !== 'error' && value && typeof value === 'object') visit(value, here);
  };
  visit(report, undefined);
  return found;
}
