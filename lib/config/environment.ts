import { type PriceTable, readPriceTable } from '../domain/costLedger.ts';
import { type DeletionCap, parseDeletionCap } from '../domain/deletionCap.ts';
import { ConfigurationError, SnapkeeperError } from '../domain/errors.ts';
import { REGION_NAME, TARGET_ACCOUNT } from '../domain/fanOut.ts';
import {
  DEFAULT_SCHEDULES,
  parseScheduleCatalog,
  type ScheduleCatalog,
} from '../domain/schedules.ts';
import { complianceAllowed } from '../domain/snapshotLock.ts';
import { DEFAULT_TAG_PREFIX, type TagKeys, tagKeys } from '../domain/tagKeys.ts';
import { type ConsistencySettings, loadConsistencySettings } from './consistencySettings.ts';

/** The whole configuration of a snapkeeper function, read and validated once. */
export interface SnapkeeperConfig {
  readonly region: string;
  /** The stage that owns what it creates; no stage touches another's resources. */
  readonly deployment: string;
  readonly keys: TagKeys;
  readonly catalog: ScheduleCatalog;
  /** SNAPSHOT_LOCK_ALLOW_COMPLIANCE is the exact risk phrase: compliance-mode locks allowed. */
  readonly allowComplianceLocks: boolean;
  readonly copyTags: readonly string[];
  /** Instances backed up in parallel at the start of a run (the number then adapts up to `maxInFlight`). */
  readonly backupConcurrency: number;
  /** Wait before retrying `SnapshotCreationPerVolumeRateExceeded`. */
  readonly snapshotRateRetryMs: number;
  /** How many times a per-volume rate error is retried within a run before it is deferred. */
  readonly snapshotRateRetries: number;
  /** Attempts per AWS call, including the first (SDK standard retry mode). */
  readonly maxAttempts: number;
  /** Per-request timeout for AWS calls. */
  readonly requestTimeoutMs: number;
  /** Per-run cap on deletions (`MAX_DELETIONS`: `50` or `25%`). */
  readonly maxDeletions: DeletionCap;
  /** Deletions in flight at the start of a run (the number then adapts up to `maxInFlight`). */
  readonly deleteConcurrency: number;
  /**
   * The most mutating EC2 calls of one job in flight at once (`MAX_IN_FLIGHT`): from
   * `BACKUP_CONCURRENCY` / `DELETE_CONCURRENCY` the number grows while work waits on
   * slots, not on the rate limiter's tokens, and halves when EC2 throttles.
   */
  readonly maxInFlight: number;
  /**
   * Local-only: create AMIs without TagSpecifications and tag them right after, because
   * the local AWS (moto) answers tags at creation with HTTP 500. Off in production.
   */
  readonly localTagAfterCreate: boolean;
  /** Check Recycle Bin rules before deleting a deregistered AMI's snapshots. */
  readonly recycleBinCheck: boolean;
  /** The run-history table; absent only in unit tests and bare local runs. */
  readonly historyTable?: string | undefined;
  /** Days the history is kept (DynamoDB TTL). */
  readonly historyRetentionDays: number;
  /** The function's timeout: a run whose lease is older than this plus a margin is dead. */
  readonly functionTimeoutMs: number;
  /** Jobs stop starting new work when less than this is left of the invocation. */
  readonly safetyMarginMs: number;
  /** How long a duplicate delivery waits for the first one to finish. */
  readonly duplicateWaitMs: number;
  /** Publish `Snapkeeper Run Finished` on this EventBridge bus; off when empty. */
  readonly eventBusName?: string | undefined;
  /** Days console backups of named instances (schedule `manual`) are kept. */
  readonly manualRetainDays: number;
  /** How long a restore waits for its volume to become available. */
  readonly restoreWaitMs: number;
  /** A changing console payload repeated within this window runs once. */
  readonly consoleDedupeMs: number;
  /**
   * How late a delivery's `scheduledTime` may be and still be served, beyond the one
   * interval of its schedule always allowed (SLOT_CATCH_UP_SECONDS, default 0).
   */
  readonly slotCatchUpMs: number;
  /** The bucket the console `report` action writes the coverage page to; off when absent. */
  readonly reportBucket?: string | undefined;
  /** Key prefix of the coverage pages in that bucket. */
  readonly reportPrefix: string;
  /** KMS key per destination region for copies (`COPY_KMS_KEYS` JSON); tags may override. */
  readonly copyKmsKeys: Readonly<Record<string, string>>;
  /** Opt-in: make this deployment's public snapshots and AMIs private again. */
  readonly makePrivate: boolean;
  /** Opt-in: turn on the account's block public access for AMIs where it is off. */
  readonly blockPublicAmis: boolean;
  /** This process's share of the account's EC2 request rate (1; 1/N with N workers at once). */
  readonly ec2RateShare: number;
  /** The fraction of each EC2 bucket our limiter uses (`EC2_RATE_HEADROOM`, 0.98). */
  readonly ec2RateHeadroom: number;
  /** Raised EC2 limits, per action: `{"CreateSnapshots": {"burst": 200, "refillPerSecond": 10}}`. */
  readonly ec2RateLimits: Readonly<Record<string, { burst: number; refillPerSecond: number }>>;
  /** Regions the fan-out reaches (`TARGET_REGIONS`); the function's own region by default. */
  readonly targetRegions: readonly string[];
  /** Accounts the fan-out reaches (`TARGET_ACCOUNTS`): `self` and 12-digit ids. */
  readonly targetAccounts: readonly string[];
  /** The role assumed in every other target account. */
  readonly targetRoleName: string;
  /** The external id the target role's trust policy requires, if any. */
  readonly targetExternalId?: string | undefined;
  /** The queue the fan-out planner sends batches to. */
  readonly fanOutQueueUrl?: string | undefined;
  /** Instances per fan-out batch (at most 200: one filtered describe). */
  readonly fanOutBatchSize: number;
  /** Workers running at once (the queue's maximum concurrency): batches spread over them. */
  readonly fanOutWorkers: number;
  /** Deliveries of a batch before its failure is final (the queue's maxReceiveCount). */
  readonly fanOutMaxAttempts: number;
  /** When true, every job only plans. */
  readonly dryRun: boolean;
  /** Pre/post scripts of application-consistent sets (issue 21): timeout, documents. */
  readonly consistencyTimeoutSeconds: ConsistencySettings['consistencyTimeoutSeconds'];
  readonly consistencyVssTimeoutSeconds: ConsistencySettings['consistencyVssTimeoutSeconds'];
  readonly consistencyFsfreezeDocument: ConsistencySettings['consistencyFsfreezeDocument'];
  readonly consistencyDocuments: ConsistencySettings['consistencyDocuments'];
  readonly localSsmEndpoint?: ConsistencySettings['localSsmEndpoint'];
  /** Snapshot storage prices of the cost ledger (SNAPSHOT_PRICES, else the region's published ones). */
  readonly priceTable: PriceTable;
  /** Why SNAPSHOT_PRICES was rejected (the published prices are used): shown with every cost. */
  readonly priceTableProblem?: string | undefined;
  /** Snapshots a retention run measures at most with the EBS direct APIs (SNAPSHOT_MEASURE_LIMIT; 0: off). */
  readonly snapshotMeasureLimit: number;
  /** The EBS direct APIs' own endpoint (AWS_ENDPOINT_URL_EBS, the SDK's per-service variable); local only. */
  readonly ebsEndpoint?: string | undefined;
  /** Custom endpoint (the local AWS); undefined in production. */
  readonly endpoint?: string | undefined;
}

type Environment = Readonly<Record<string, string | undefined>>;

/**
 * Reads and validates the configuration from environment variables. Fails with the
 * variable's name on the first missing or bad value, so a broken deployment fails
 * at cold start rather than mid-run.
 *
 * @throws {ConfigurationError}
 * @example
 * const config = loadConfig(process.env);
 */
// biome-ignore lint/complexity/noExcessiveLinesPerFunction: one flat read per documented variable, in the reference's order; splitting it would scatter the list the docs test ties to docs/reference.md
export function loadConfig(env: Environment): SnapkeeperConfig {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) throw new ConfigurationError('AWS_REGION', 'is required');

  const deployment = required(env, 'DEPLOYMENT');
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(deployment)) {
    throw new ConfigurationError(
      'DEPLOYMENT',
      `must be 1-64 letters, digits, "-" or "_" (the stage name); got ${JSON.stringify(deployment)}`,
    );
  }

  const prefix = env.TAG_PREFIX ?? DEFAULT_TAG_PREFIX;
  if (!/^[A-Za-z0-9_.:/=+@-]{1,64}$/.test(prefix) || prefix.toLowerCase().startsWith('aws:')) {
    throw new ConfigurationError(
      'TAG_PREFIX',
      `must be 1-64 tag-key characters and must not start with "aws:"; got ${JSON.stringify(prefix)}`,
    );
  }

  let schedules: unknown = DEFAULT_SCHEDULES;
  if (env.SCHEDULES !== undefined && env.SCHEDULES.trim() !== '') {
    try {
      schedules = JSON.parse(env.SCHEDULES);
    } catch (error) {
      throw new ConfigurationError(
        'SCHEDULES',
        'is not valid JSON (expected a list of schedules)',
        {
          cause: error,
        },
      );
    }
  }
  let catalog: ScheduleCatalog;
  try {
    catalog = parseScheduleCatalog(schedules, env.DEFAULT_SCHEDULE ?? 'daily', {
      allowComplianceLocks: complianceAllowed(env.SNAPSHOT_LOCK_ALLOW_COMPLIANCE),
    });
  } catch (error) {
    if (error instanceof SnapkeeperError) {
      const variable = error.message.startsWith('default schedule')
        ? 'DEFAULT_SCHEDULE'
        : 'SCHEDULES';
      throw new ConfigurationError(variable, `is invalid: ${error.message}`, { cause: error });
    }
    throw error;
  }

  const copyTags = (env.COPY_TAGS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
  if (copyTags.length > 40)
    throw new ConfigurationError('COPY_TAGS', 'lists more than 40 tag keys');
  const reserved = copyTags.find((k) => k.toLowerCase().startsWith('aws:') || k.startsWith(prefix));
  if (reserved) {
    throw new ConfigurationError(
      'COPY_TAGS',
      `cannot copy ${JSON.stringify(reserved)}: aws: and ${prefix} keys are reserved`,
    );
  }

  const capText = env.MAX_DELETIONS?.trim() || '25%';
  const maxDeletions = parseDeletionCap(capText);
  if (!maxDeletions) {
    throw new ConfigurationError(
      'MAX_DELETIONS',
      `must be a number of deletions (50) or a percentage of the managed snapshots in scope (25%); got ${JSON.stringify(env.MAX_DELETIONS)}`,
    );
  }

  const targetRegions = list(env.TARGET_REGIONS, [region]);
  const targetAccounts = list(env.TARGET_ACCOUNTS, ['self']);
  const badAccount = targetAccounts.find((a) => !TARGET_ACCOUNT.test(a));
  if (badAccount !== undefined) {
    throw new ConfigurationError(
      'TARGET_ACCOUNTS',
      `must list 12-digit account ids or "self"; got ${JSON.stringify(badAccount)}`,
    );
  }
  const badRegion = targetRegions.find((r) => !REGION_NAME.test(r));
  if (badRegion !== undefined) {
    throw new ConfigurationError(
      'TARGET_REGIONS',
      `must list region names like eu-west-1; got ${JSON.stringify(badRegion)}`,
    );
  }

  const endpoint = env.AWS_ENDPOINT_URL;
  return {
    region,
    deployment,
    keys: tagKeys(prefix),
    catalog: {
      ...catalog,
      tagSchedules: {
        minIntervalMs: integer(env, 'TAG_SCHEDULE_MIN_INTERVAL_MINUTES', 60, 15, 525_600) * 60_000,
        maxExpressions: integer(env, 'TAG_SCHEDULE_MAX_EXPRESSIONS', 20, 1, 200),
        retain: integer(env, 'TAG_SCHEDULE_RETAIN', 7, 1, 1000),
      },
    },
    allowComplianceLocks: complianceAllowed(env.SNAPSHOT_LOCK_ALLOW_COMPLIANCE),
    copyTags,
    backupConcurrency: integer(env, 'BACKUP_CONCURRENCY', 10, 1, 100),
    snapshotRateRetryMs: integer(env, 'SNAPSHOT_RATE_RETRY_SECONDS', 15, 0, 120) * 1000,
    snapshotRateRetries: integer(env, 'SNAPSHOT_RATE_RETRIES', 2, 0, 10),
    maxAttempts: integer(env, 'AWS_MAX_ATTEMPTS', 8, 1, 20),
    requestTimeoutMs: integer(env, 'AWS_REQUEST_TIMEOUT_MS', 30_000, 100, 300_000),
    maxDeletions,
    deleteConcurrency: integer(env, 'DELETE_CONCURRENCY', 5, 1, 50),
    maxInFlight: integer(env, 'MAX_IN_FLIGHT', 64, 1, 256),
    localTagAfterCreate: boolean(env, 'LOCAL_TAG_AFTER_CREATE', false),
    recycleBinCheck: boolean(env, 'RECYCLE_BIN_CHECK', true),
    historyTable: env.HISTORY_TABLE?.trim() || undefined,
    historyRetentionDays: integer(env, 'HISTORY_RETENTION_DAYS', 400, 1, 36_500),
    functionTimeoutMs: integer(env, 'FUNCTION_TIMEOUT_SECONDS', 900, 1, 900) * 1000,
    safetyMarginMs: integer(env, 'SAFETY_MARGIN_SECONDS', 60, 0, 600) * 1000,
    duplicateWaitMs: integer(env, 'DUPLICATE_WAIT_SECONDS', 10, 0, 300) * 1000,
    eventBusName:
      env.EVENT_BUS_NAME === undefined ? 'default' : env.EVENT_BUS_NAME.trim() || undefined,
    manualRetainDays: integer(env, 'MANUAL_RETAIN_DAYS', 30, 1, 36_500),
    restoreWaitMs: integer(env, 'RESTORE_WAIT_SECONDS', 600, 1, 840) * 1000,
    consoleDedupeMs: integer(env, 'CONSOLE_DEDUPE_SECONDS', 300, 1, 86_400) * 1000,
    slotCatchUpMs: integer(env, 'SLOT_CATCH_UP_SECONDS', 0, 0, 315_360_000) * 1000,
    reportBucket: env.REPORT_BUCKET?.trim() || undefined,
    reportPrefix: env.REPORT_PREFIX ?? 'snapkeeper/',
    copyKmsKeys: kmsKeys(env.COPY_KMS_KEYS),
    makePrivate: boolean(env, 'MAKE_PRIVATE', false),
    blockPublicAmis: boolean(env, 'BLOCK_PUBLIC_AMIS', false),
    ec2RateShare: rateShare(env.EC2_RATE_SHARE),
    ec2RateLimits: rateLimits(env.EC2_RATE_LIMITS),
    ec2RateHeadroom: headroom(env.EC2_RATE_HEADROOM),
    targetRegions,
    targetAccounts,
    targetRoleName: roleName(env.TARGET_ROLE_NAME),
    targetExternalId: env.TARGET_EXTERNAL_ID?.trim() || undefined,
    fanOutQueueUrl: env.FANOUT_QUEUE_URL?.trim() || undefined,
    fanOutBatchSize: integer(env, 'FANOUT_BATCH_SIZE', 200, 1, 200),
    fanOutMaxAttempts: integer(env, 'FANOUT_MAX_ATTEMPTS', 3, 1, 20),
    fanOutWorkers: integer(env, 'FANOUT_WORKERS', 1, 1, 1000),
    dryRun: boolean(env, 'DRY_RUN', false),
    ...loadConsistencySettings(env),
    ...priceTableOf(env.SNAPSHOT_PRICES, region),
    snapshotMeasureLimit: integer(env, 'SNAPSHOT_MEASURE_LIMIT', 200, 0, 10_000),
    ...(endpoint ? { endpoint } : {}),
    ...(env.AWS_ENDPOINT_URL_EBS?.trim() ? { ebsEndpoint: env.AWS_ENDPOINT_URL_EBS.trim() } : {}),
  };
}

/** The price table; a bad one never fails the cold start (it only prices estimates). */
function priceTableOf(
  raw: string | undefined,
  region: string,
): Pick<SnapkeeperConfig, 'priceTable' | 'priceTableProblem'> {
  const { table, problem } = readPriceTable(raw, region);
  return problem ? { priceTable: table, priceTableProblem: problem } : { priceTable: table };
}

function list(raw: string | undefined, fallback: readonly string[]): readonly string[] {
  const items = (raw ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  return items.length > 0 ? [...new Set(items)] : fallback;
}

function roleName(raw: string | undefined): string {
  const name = raw?.trim() || 'snapkeeper-target';
  if (!/^[\w+=,.@-]{1,64}$/.test(name)) {
    throw new ConfigurationError(
      'TARGET_ROLE_NAME',
      `must be an IAM role name (1-64 letters, digits and +=,.@_-); got ${JSON.stringify(raw)}`,
    );
  }
  return name;
}

function required(env: Environment, name: string): string {
  const value = env[name];
  if (value === undefined || value.trim() === '') throw new ConfigurationError(name, 'is required');
  return value.trim();
}

function integer(
  env: Environment,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) {
    throw new ConfigurationError(
      name,
      `must be a whole number from ${min} to ${max}; got ${JSON.stringify(raw)}`,
    );
  }
  const value = Number(raw.trim());
  if (value < min || value > max) {
    // The text as given: a huge number never prints in exponent form (1e+21).
    throw new ConfigurationError(name, `must be from ${min} to ${max}; got ${raw.trim()}`);
  }
  return value;
}

function boolean(env: Environment, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const lowered = raw.trim().toLowerCase();
  if (lowered === 'true') return true;
  if (lowered === 'false') return false;
  throw new ConfigurationError(name, `must be true or false; got ${JSON.stringify(raw)}`);
}

function kmsKeys(raw: string | undefined): Record<string, string> {
  if (raw === undefined || raw.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new ConfigurationError(
      'COPY_KMS_KEYS',
      'is not valid JSON (expected {"eu-west-1": "alias/backups"})',
      { cause: error },
    );
  }
  if (
    !parsed ||
    typeof parsed !== 'object' ||
    Array.isArray(parsed) ||
    Object.values(parsed).some((v) => typeof v !== 'string')
  ) {
    throw new ConfigurationError(
      'COPY_KMS_KEYS',
      'must map regions to KMS keys, e.g. {"eu-west-1": "alias/backups"}',
    );
  }
  return parsed as Record<string, string>;
}

function rateShare(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return 1;
  const value = Number(raw.trim());
  if (!Number.isFinite(value) || value <= 0 || value > 1) {
    throw new ConfigurationError(
      'EC2_RATE_SHARE',
      `must be a number above 0 and at most 1; got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

function headroom(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return 0.98;
  const value = Number(raw.trim());
  if (!Number.isFinite(value) || value < 0.5 || value > 1) {
    throw new ConfigurationError(
      'EC2_RATE_HEADROOM',
      `must be a number from 0.5 to 1; got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

function rateLimits(
  raw: string | undefined,
): Record<string, { burst: number; refillPerSecond: number }> {
  if (raw === undefined || raw.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new ConfigurationError('EC2_RATE_LIMITS', 'is not valid JSON', { cause: error });
  }
  const ok =
    parsed !== null &&
    typeof parsed === 'object' &&
    !Array.isArray(parsed) &&
    Object.values(parsed).every(
      (v) =>
        v !== null &&
        typeof v === 'object' &&
        Number.isFinite((v as { burst?: unknown }).burst) &&
        Number((v as { burst: number }).burst) >= 1 &&
        Number.isFinite((v as { refillPerSecond?: unknown }).refillPerSecond) &&
        Number((v as { refillPerSecond: number }).refillPerSecond) > 0,
    );
  if (!ok) {
    throw new ConfigurationError(
      'EC2_RATE_LIMITS',
      'must map EC2 actions to {"burst": n, "refillPerSecond": n}, e.g. {"CreateSnapshots": {"burst": 200, "refillPerSecond": 10}}',
    );
  }
  return parsed as Record<string, { burst: number; refillPerSecond: number }>;
}
