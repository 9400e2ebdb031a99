// functions/backup.ts
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { captureLambdaHandler } from "@aws-lambda-powertools/tracer/middleware";
import middy from "@middy/core";

// lib/domain/schedules.ts
import awsCronParser from "aws-cron-parser";
import { z } from "zod";

// lib/domain/errors.ts
var SnapkeeperError = class extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "SnapkeeperError";
  }
};
var InvalidEventError = class extends SnapkeeperError {
  constructor(message, options) {
    super(message, options);
    this.name = "InvalidEventError";
  }
};
var UnknownScheduleError = class extends SnapkeeperError {
  schedule;
  known;
  constructor(schedule, known) {
    super(`"${schedule}" is not a known schedule; known: ${known.join(", ")}`);
    this.name = "UnknownScheduleError";
    this.schedule = schedule;
    this.known = known;
  }
};
var InvalidScheduleDefinitionError = class extends SnapkeeperError {
  constructor(message, options) {
    super(message, options);
    this.name = "InvalidScheduleDefinitionError";
  }
};
var ConfigurationError = class extends SnapkeeperError {
  variable;
  constructor(variable, message, options) {
    super(`Environment variable ${variable} ${message}`, options);
    this.name = "ConfigurationError";
    this.variable = variable;
  }
};
var RunFailedError = class extends SnapkeeperError {
  report;
  constructor(job, runId, reason, report) {
    super(`${job} run ${runId} failed: ${reason}`);
    this.name = "RunFailedError";
    this.report = report;
  }
};
var RunIncompleteError = class extends SnapkeeperError {
  report;
  constructor(job, runId, remaining, report) {
    super(
      `${job} run ${runId} is incomplete: ${remaining} item(s) left; the retry of this event resumes it`
    );
    this.name = "RunIncompleteError";
    this.report = report;
  }
};

// lib/domain/schedules.ts
var DEFAULT_SCHEDULES = [
  { name: "daily", cron: "cron(0 3 * * ? *)", timezone: "UTC", retain: 7 },
  { name: "weekly", cron: "cron(0 4 ? * SUN *)", timezone: "UTC", retain: 4 },
  { name: "monthly", cron: "cron(0 5 1 * ? *)", timezone: "UTC", retain: 12 }
];
var RESERVED_SCHEDULE_NAMES = ["true", "false", "manual", "all"];
var SCHEDULE_NAME = /^[a-z][a-z0-9-]{0,31}$/;
var scheduleSchema = z.object({
  name: z.string().transform((s) => s.trim().toLowerCase()).pipe(
    z.string().regex(
      SCHEDULE_NAME,
      'must be 1-32 lower-case letters, digits or "-", starting with a letter'
    ).refine((n) => !RESERVED_SCHEDULE_NAMES.includes(n), "is a reserved word")
  ),
  cron: z.string().min(1),
  timezone: z.string().default("UTC"),
  retain: z.number().int().min(1).max(1e3),
  retainDays: z.number().int().min(0).max(36500).optional(),
  retainTiers: z.string().optional(),
  expireOrphansAfterDays: z.number().int().min(1).max(36500).optional(),
  retentionCron: z.string().min(1).optional(),
  amiRetain: z.number().int().min(1).max(1e3).optional()
}).strict();
function parseScheduleCatalog(input, defaultSchedule = "daily") {
  const parsed = z.array(scheduleSchema).min(1).safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join(".") : "schedules";
    throw new InvalidScheduleDefinitionError(
      `schedule definition ${where}: ${issue?.message ?? "invalid"}`
    );
  }
  const schedules = /* @__PURE__ */ new Map();
  for (const definition of parsed.data) {
    if (schedules.has(definition.name)) {
      throw new InvalidScheduleDefinitionError(`schedule "${definition.name}" is defined twice`);
    }
    validateCron(definition.cron, definition.name);
    if (definition.retentionCron) validateCron(definition.retentionCron, definition.name);
    validateTimeZone(definition.timezone, definition.name);
    schedules.set(definition.name, stripUndefined(definition));
  }
  const defaultName = defaultSchedule.trim().toLowerCase();
  if (!schedules.has(defaultName)) {
    throw new InvalidScheduleDefinitionError(
      `default schedule "${defaultSchedule}" is not defined; defined: ${[...schedules.keys()].join(", ")}`
    );
  }
  return { schedules, defaultSchedule: defaultName };
}
function resolveSchedule(catalog, name) {
  const found = catalog.schedules.get(name.trim().toLowerCase());
  if (!found) throw new UnknownScheduleError(name, [...catalog.schedules.keys()]);
  return found;
}
function previousFireTime(schedule, at) {
  const cron = parseCronBody(cronBody(schedule.cron));
  let from = floorToMinute(toWallClock(at, schedule.timezone)).getTime() + 6e4;
  for (let attempt = 0; attempt < 4; attempt += 1) {
    const wall = awsCronParser.prev(cron, new Date(from));
    if (!wall) break;
    const instant = fromWallClock(wall, schedule.timezone);
    if (instant.getTime() <= at.getTime()) return instant;
    const earlier = new Date(instant.getTime() - 36e5);
    if (toWallClock(earlier, schedule.timezone).getTime() === wall.getTime() && earlier.getTime() <= at.getTime()) {
      return earlier;
    }
    from = wall.getTime();
  }
  throw new InvalidScheduleDefinitionError(
    `schedule "${schedule.name}" never fires before ${at.toISOString()}`
  );
}
function floorToMinute(date) {
  return new Date(Math.floor(date.getTime() / 6e4) * 6e4);
}
function cronBody(expression) {
  const match = /^cron\((.*)\)$/.exec(expression.trim());
  if (!match?.[1]) {
    throw new InvalidScheduleDefinitionError(
      `"${expression}" is not an AWS cron expression; write it as cron(minutes hours day-of-month month day-of-week year)`
    );
  }
  return match[1].trim();
}
function parseCronBody(body) {
  return awsCronParser.parse(body);
}
function validateCron(expression, name) {
  const body = cronBody(expression);
  const fields = body.split(/\s+/);
  if (fields.length !== 6) {
    throw new InvalidScheduleDefinitionError(
      `schedule "${name}": cron "${body}" has ${fields.length} fields; AWS cron has 6 (minutes hours day-of-month month day-of-week year)`
    );
  }
  const dayOfMonth = fields[2];
  const dayOfWeek = fields[4];
  if (dayOfMonth === "?" === (dayOfWeek === "?")) {
    throw new InvalidScheduleDefinitionError(
      `schedule "${name}": cron "${body}" must have "?" in exactly one of day-of-month and day-of-week`
    );
  }
  try {
    const parsed = parseCronBody(body);
    if (!awsCronParser.next(parsed, new Date(Date.UTC(2e3, 0, 1)))) throw new Error("never fires");
  } catch (error) {
    throw new InvalidScheduleDefinitionError(
      `schedule "${name}": cron "${body}" is not valid (${error.message})`,
      { cause: error }
    );
  }
}
function validateTimeZone(timezone, name) {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch (error) {
    throw new InvalidScheduleDefinitionError(
      `schedule "${name}": "${timezone}" is not an IANA time zone`,
      { cause: error }
    );
  }
}
var formatters = /* @__PURE__ */ new Map();
function wallFormatter(timezone) {
  let formatter = formatters.get(timezone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit"
    });
    formatters.set(timezone, formatter);
  }
  return formatter;
}
function toWallClock(instant, timezone) {
  if (timezone === "UTC") return new Date(instant.getTime());
  const parts = {};
  for (const part of wallFormatter(timezone).formatToParts(instant)) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  return new Date(
    Date.UTC(
      parts.year ?? 1970,
      (parts.month ?? 1) - 1,
      parts.day ?? 1,
      parts.hour ?? 0,
      parts.minute ?? 0,
      parts.second ?? 0,
      instant.getUTCMilliseconds()
    )
  );
}
function fromWallClock(wall, timezone) {
  if (timezone === "UTC") return new Date(wall.getTime());
  let guess = wall.getTime();
  for (let i = 0; i < 3; i += 1) {
    const offset = toWallClock(new Date(guess), timezone).getTime() - guess;
    const next = wall.getTime() - offset;
    if (next === guess) break;
    guess = next;
  }
  return new Date(guess);
}
function stripUndefined(definition) {
  return Object.fromEntries(
    Object.entries(definition).filter(([, v]) => v !== void 0)
  );
}
function slotOf(schedule, scheduledTime, now) {
  const time = scheduledTime ?? previousFireTime(schedule, now);
  return `${time.toISOString().slice(0, 19)}Z`;
}
var MANUAL_SCHEDULE = "manual";
function manualSchedule(retainDays) {
  return {
    name: MANUAL_SCHEDULE,
    cron: "cron(0 0 * * ? *)",
    timezone: "UTC",
    retain: 1,
    retainDays
  };
}
function resolveJobSchedule(catalog, name, manualRetainDays) {
  return name.trim().toLowerCase() === MANUAL_SCHEDULE ? manualSchedule(manualRetainDays) : resolveSchedule(catalog, name);
}

// lib/jobs/backupJob.ts
import pLimit from "p-limit";

// lib/aws/errors.ts
var Ec2ErrorCode = {
  RequestLimitExceeded: "RequestLimitExceeded",
  SnapshotCreationPerVolumeRateExceeded: "SnapshotCreationPerVolumeRateExceeded",
  ConcurrentSnapshotLimitExceeded: "ConcurrentSnapshotLimitExceeded",
  SnapshotInUse: "InvalidSnapshot.InUse",
  SnapshotNotFound: "InvalidSnapshot.NotFound",
  AmiUnavailable: "InvalidAMIID.Unavailable",
  AmiNotFound: "InvalidAMIID.NotFound",
  InstanceNotFound: "InvalidInstanceID.NotFound",
  InstanceMalformed: "InvalidInstanceID.Malformed"
};
var AwsCallError = class extends SnapkeeperError {
  code;
  action;
  httpStatus;
  constructor(action, code, message, options) {
    super(`${action} failed: ${code}: ${message}`, options);
    this.name = "AwsCallError";
    this.action = action;
    this.code = code;
    this.httpStatus = options?.httpStatus;
  }
};
var ConcurrentSnapshotLimitError = class extends AwsCallError {
  constructor(instanceId, options) {
    super(
      "CreateSnapshots",
      Ec2ErrorCode.ConcurrentSnapshotLimitExceeded,
      `earlier snapshots of ${instanceId} are still pending (at most 5 per volume, 1 for st1/sc1); not retried in this run`,
      options
    );
    this.name = "ConcurrentSnapshotLimitError";
  }
};
var SnapshotRateDeferredError = class extends AwsCallError {
  constructor(instanceId, attempts, options) {
    super(
      "CreateSnapshots",
      Ec2ErrorCode.SnapshotCreationPerVolumeRateExceeded,
      `per-volume snapshot rate limit for ${instanceId} still exceeded after ${attempts} attempts; deferred to the next run`,
      options
    );
    this.name = "SnapshotRateDeferredError";
  }
};
function awsErrorCode(error) {
  if (error && typeof error === "object") {
    const candidate = error;
    if (typeof candidate.Code === "string") return candidate.Code;
    if (typeof candidate.name === "string" && candidate.name !== "Error") return candidate.name;
    if (typeof candidate.code === "string") return candidate.code;
  }
  return "UnknownError";
}
function toAwsCallError(action, error) {
  if (error instanceof AwsCallError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const status = error?.$metadata?.httpStatusCode;
  return new AwsCallError(action, awsErrorCode(error), message, {
    cause: error,
    httpStatus: status
  });
}
var SnapshotInUseError = class extends AwsCallError {
  snapshotId;
  constructor(snapshotId, options) {
    super(
      "DeleteSnapshot",
      Ec2ErrorCode.SnapshotInUse,
      `${snapshotId} is in use by an image`,
      options
    );
    this.name = "SnapshotInUseError";
    this.snapshotId = snapshotId;
  }
};
var SnapshotNotFoundError = class extends AwsCallError {
  snapshotId;
  constructor(snapshotId, options) {
    super(
      "DeleteSnapshot",
      Ec2ErrorCode.SnapshotNotFound,
      `${snapshotId} no longer exists`,
      options
    );
    this.name = "SnapshotNotFoundError";
    this.snapshotId = snapshotId;
  }
};

// lib/domain/tagPolicy.ts
var MAX_RETAIN_COUNT = 1e3;
function parseScheduleList(resourceId, key, value, catalog) {
  const problems = [];
  if (value === void 0) return { schedules: [], problems };
  const trimmed = value.trim();
  const lowered = trimmed.toLowerCase();
  if (lowered === "" || lowered === "false") return { schedules: [], problems };
  if (lowered === "true") return { schedules: [catalog.defaultSchedule], problems };
  const known = [...catalog.schedules.keys()];
  const schedules = [];
  const entries = trimmed.split(",").map((entry) => entry.trim().toLowerCase());
  if (entries.some((entry) => entry === "")) {
    problems.push(problem(resourceId, key, value, "has an empty schedule name in its list"));
  }
  for (const entry of entries) {
    if (entry === "" || schedules.includes(entry)) continue;
    if (catalog.schedules.has(entry)) {
      schedules.push(entry);
    } else {
      const what = entries.length === 1 ? "is" : `: ${quoteShort(entry)} is`;
      problems.push(
        problem(resourceId, key, value, `${what} not a known schedule; known: ${known.join(", ")}`)
      );
    }
  }
  return { schedules, problems };
}
function parseBooleanTag(resourceId, key, value, fallback) {
  if (value === void 0) return { value: fallback, problems: [] };
  const lowered = value.trim().toLowerCase();
  if (lowered === "true") return { value: true, problems: [] };
  if (lowered === "false") return { value: false, problems: [] };
  return {
    value: fallback,
    problems: [problem(resourceId, key, value, `must be true or false; using ${fallback}`)]
  };
}
function parseRetainCounts(resourceId, key, value, catalog) {
  if (value === void 0) return { problems: [] };
  const trimmed = value.trim();
  if (trimmed === "") {
    return {
      problems: [
        problem(resourceId, key, value, "is empty; expected a count such as 7 or daily=7,weekly=4")
      ]
    };
  }
  if (!trimmed.includes("=")) {
    const count = parseCount(trimmed);
    if (typeof count === "string") {
      const reason = count.startsWith('"') ? count.slice(count.indexOf('" ') + 2) : count;
      return { problems: [problem(resourceId, key, value, reason)] };
    }
    return { retain: { all: count, bySchedule: {} }, problems: [] };
  }
  const bySchedule = {};
  const problems = [];
  for (const rawEntry of trimmed.split(",")) {
    const entry = rawEntry.trim();
    const [rawName, rawCount, ...rest] = entry.split("=");
    const name = (rawName ?? "").trim().toLowerCase();
    if (entry === "" || rest.length > 0 || rawCount === void 0 || name === "") {
      problems.push(
        problem(resourceId, key, value, `entry ${quoteShort(entry)} is not schedule=count`)
      );
      continue;
    }
    if (!catalog.schedules.has(name)) {
      problems.push(
        problem(
          resourceId,
          key,
          value,
          `${quoteShort(name)} is not a known schedule; known: ${[...catalog.schedules.keys()].join(", ")}`
        )
      );
      continue;
    }
    const count = parseCount(rawCount.trim());
    if (typeof count === "string") {
      problems.push(problem(resourceId, key, value, `${name}: ${count}`));
      continue;
    }
    if (bySchedule[name] !== void 0 && bySchedule[name] !== count) {
      problems.push(
        problem(resourceId, key, value, `${name} is given twice with different counts`)
      );
      continue;
    }
    bySchedule[name] = count;
  }
  if (problems.length > 0) return { problems };
  return { retain: { bySchedule }, problems };
}
function readInstancePolicy(instanceId, tags, keys, catalog) {
  const optIn = parseScheduleList(instanceId, keys.backup, tags[keys.backup], catalog);
  const excludeBoot = parseBooleanTag(instanceId, keys.excludeBoot, tags[keys.excludeBoot], false);
  const retain = parseRetainCounts(instanceId, keys.retain, tags[keys.retain], catalog);
  const problems = [...optIn.problems, ...excludeBoot.problems, ...retain.problems];
  return {
    schedules: optIn.schedules,
    excludeBoot: excludeBoot.value,
    ...retain.retain ? { retain: retain.retain } : {},
    problems
  };
}
function parseCount(text) {
  if (!/^\d+$/.test(text)) {
    return `${quoteShort(text)} is not a whole number from 1 to ${MAX_RETAIN_COUNT}`;
  }
  const count = Number(text);
  if (count < 1 || count > MAX_RETAIN_COUNT) {
    return `${count} is out of range; expected 1 to ${MAX_RETAIN_COUNT}`;
  }
  return count;
}
function problem(resourceId, key, value, reason) {
  const separator = reason.startsWith(":") ? "" : " ";
  return { resourceId, key, value, message: `${key}=${quoteShort(value)}${separator}${reason}` };
}
function quoteShort(value, max = 64) {
  const cut = value.length > max ? `${value.slice(0, max)}\u2026` : value;
  return JSON.stringify(cut);
}

// lib/domain/backupPlan.ts
var BACKED_UP_INSTANCE_STATES = [
  "pending",
  "running",
  "stopping",
  "stopped"
];
var MAX_TAGS_PER_RESOURCE = 50;
function planInstanceBackup(instance, context) {
  const { keys } = context;
  const name = instance.tags.Name;
  const policy = readInstancePolicy(instance.instanceId, instance.tags, keys, context.catalog);
  const problems = [...policy.problems];
  const due = context.ignoreOptIn === true || policy.schedules.includes(context.schedule);
  if (!due) {
    const optInProblems = problems.filter((p) => p.key === keys.backup);
    if (optInProblems.length > 0) {
      return {
        kind: "skip",
        instanceId: instance.instanceId,
        name,
        reason: `not backed up for schedule ${context.schedule}: ${optInProblems.map((p) => p.message).join("; ")}`,
        isError: true,
        problems: optInProblems
      };
    }
    return { kind: "not-due", instanceId: instance.instanceId };
  }
  if (!BACKED_UP_INSTANCE_STATES.includes(instance.state)) {
    return {
      kind: "skip",
      instanceId: instance.instanceId,
      name,
      reason: `instance is ${instance.state}`,
      isError: false,
      problems
    };
  }
  const included = [];
  const excluded = [];
  const excludeDataVolumeIds = [];
  let rootSkipped = false;
  for (const volume of instance.volumes) {
    const isRoot = volume.deviceName === instance.rootDeviceName;
    const volumeTags = context.volumeTags.get(volume.volumeId) ?? {};
    const skip = parseBooleanTag(volume.volumeId, keys.skip, volumeTags[keys.skip], false);
    problems.push(...skip.problems);
    if (isRoot && policy.excludeBoot) {
      excluded.push({ volume, reason: `boot volume excluded by ${keys.excludeBoot}=true` });
    } else if (skip.value) {
      excluded.push({ volume, reason: `volume tagged ${keys.skip}=true` });
      if (isRoot) rootSkipped = true;
      else excludeDataVolumeIds.push(volume.volumeId);
    } else {
      included.push(volume);
    }
  }
  if (included.length === 0) {
    return {
      kind: "skip",
      instanceId: instance.instanceId,
      name,
      reason: instance.volumes.length === 0 ? "instance has no EBS volumes attached" : "no volumes left after exclusions",
      isError: false,
      problems
    };
  }
  return {
    kind: "backup",
    instanceId: instance.instanceId,
    name,
    problems,
    request: {
      instanceId: instance.instanceId,
      excludeBootVolume: policy.excludeBoot || rootSkipped,
      excludeDataVolumeIds,
      included,
      excluded,
      description: snapshotDescription(context, instance.instanceId, name),
      tags: buildResourceTags(instance.instanceId, instance.tags, context)
    }
  };
}
function buildResourceTags(instanceId, instanceTags, context) {
  const { keys } = context;
  const tags = [
    { Key: keys.managed, Value: "true" },
    { Key: keys.deployment, Value: context.deployment },
    { Key: keys.schedule, Value: context.schedule },
    { Key: keys.slot, Value: context.slot },
    { Key: keys.instanceId, Value: instanceId },
    { Key: keys.runId, Value: context.runId },
    { Key: keys.createdAt, Value: context.createdAt }
  ];
  const seen = new Set(tags.map((t) => t.Key));
  const copy = ["Name", ...context.copyTags];
  for (const key of copy) {
    if (!Object.hasOwn(instanceTags, key) || seen.has(key)) continue;
    const value = instanceTags[key];
    if (value === void 0) continue;
    if (key.toLowerCase().startsWith("aws:") || key.startsWith(keys.prefix)) continue;
    if (tags.length >= MAX_TAGS_PER_RESOURCE) break;
    tags.push({ Key: key, Value: value });
    seen.add(key);
  }
  return tags;
}
function formatSlot(time) {
  return `${time.toISOString().slice(0, 19)}Z`;
}
function snapshotDescription(context, instanceId, name) {
  const who = name ? `${instanceId} (${name})` : instanceId;
  return `snapkeeper ${context.schedule} ${context.slot} ${who}`.slice(0, 255);
}

// lib/jobs/ports.ts
var noMetrics = { count: () => void 0 };
function newRunId(now, random) {
  const stamp = now.toISOString().replace(/[-:]/g, "").slice(0, 15);
  return `${stamp}Z-${random()}`;
}
function logJournal(logger) {
  return {
    record: async (entry) => {
      logger.info(`${entry.action} ${entry.phase}`, { ...entry });
    }
  };
}

// lib/jobs/backupJob.ts
async function runBackupJob(input, deps) {
  const { config, logger } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const journal = deps.journal ?? logJournal(logger);
  const startedAt = deps.clock();
  const schedule = resolveJobSchedule(config.catalog, input.schedule, config.manualRetainDays);
  const slot = formatSlot(input.scheduledTime ?? previousFireTime(schedule, startedAt));
  const base = {
    runId: deps.runId,
    job: "backup",
    deployment: config.deployment,
    schedule: schedule.name,
    slot,
    trigger: input.trigger,
    dryRun: input.dryRun,
    startedAt: startedAt.toISOString()
  };
  logger.info("backup run started", base);
  let instances;
  let volumeTags;
  let slotSets = /* @__PURE__ */ new Map();
  try {
    instances = [];
    const source = input.instanceIds ? deps.ec2.listInstancesByIds(input.instanceIds) : deps.ec2.listInstancesWithTagKey(config.keys.backup);
    for await (const instance of source) {
      instances.push(instance);
    }
    volumeTags = await deps.ec2.volumeTagsWithKey(config.keys.skip);
    if (input.resuming) slotSets = await readSlotSets(deps, schedule.name, slot);
  } catch (error) {
    const failure = toAwsCallError("Describe", error);
    const report2 = {
      ...base,
      status: "failed",
      endedAt: deps.clock().toISOString(),
      counts: {
        due: 0,
        backedUp: 0,
        skipped: 0,
        failed: 0,
        snapshots: 0,
        covered: 0,
        deferred: 0,
        duplicatesRemoved: 0
      },
      ...input.historyUnavailable ? { warnings: [HISTORY_UNAVAILABLE] } : {},
      instances: [],
      error: { code: failure.code, message: failure.message }
    };
    logger.error("backup run failed: could not read the fleet", { report: report2 });
    metrics.count("BackupRunsFailed", 1);
    return report2;
  }
  const context = {
    keys: config.keys,
    catalog: config.catalog,
    schedule: schedule.name,
    slot,
    deployment: config.deployment,
    runId: deps.runId,
    createdAt: startedAt.toISOString(),
    copyTags: config.copyTags,
    volumeTags,
    ...input.instanceIds ? { ignoreOptIn: true } : {}
  };
  const decisions = instances.map((instance) => planInstanceBackup(instance, context)).filter((d) => d.kind !== "not-due");
  const duplicates = await removeDuplicateSets(slotSets, input.dryRun, deps, journal);
  const margin = input.safetyMarginMs ?? 0;
  const limit = pLimit(config.backupConcurrency);
  const results = await Promise.all(
    decisions.map(
      (decision) => limit(async () => {
        const existing = slotSets.get(decision.instanceId);
        if (existing && existing.size > 0 && decision.kind === "backup") {
          const [runId, set] = [...existing.entries()].sort(oldestSetFirst)[0];
          return {
            instanceId: decision.instanceId,
            name: decision.name,
            outcome: "covered",
            reason: `already backed up for this slot by run ${runId}`,
            snapshots: set.map((s) => ({
              volumeId: s.volumeId,
              snapshotId: s.snapshotId,
              sizeGiB: s.sizeGiB,
              state: s.state
            }))
          };
        }
        if (decision.kind === "backup" && input.remainingMs && input.remainingMs() < margin) {
          return {
            instanceId: decision.instanceId,
            name: decision.name,
            outcome: "deferred",
            reason: "not started: too little time left in this invocation; the next one resumes"
          };
        }
        const result = await executeDecision(decision, input.dryRun, deps);
        if (result.outcome === "created") await recordCreated(result, deps, journal);
        return result;
      })
    )
  );
  if (input.instanceIds) {
    const found = new Set(instances.map((i) => i.instanceId));
    for (const id of new Set(input.instanceIds)) {
      if (found.has(id)) continue;
      results.push({
        instanceId: id,
        outcome: "failed",
        error: {
          code: "UnknownInstance",
          message: `instance ${id} does not exist in this account and region, or is terminated`
        }
      });
    }
  }
  const counts = {
    due: results.length,
    backedUp: results.filter((r) => r.outcome === "created" || r.outcome === "planned").length,
    skipped: results.filter((r) => r.outcome === "skipped").length,
    failed: results.filter((r) => r.outcome === "failed").length,
    snapshots: results.reduce(
      (n, r) => n + (r.outcome === "created" ? r.snapshots?.length ?? 0 : 0),
      0
    ),
    covered: results.filter((r) => r.outcome === "covered").length,
    deferred: results.filter((r) => r.outcome === "deferred").length,
    duplicatesRemoved: duplicates.filter((d) => d.outcome === "deleted").length
  };
  const remaining = results.filter((r) => r.outcome === "deferred").map((r) => r.instanceId);
  const warnings = input.historyUnavailable ? [HISTORY_UNAVAILABLE] : [];
  const hasErrors = warnings.length > 0 || duplicates.some((d) => d.outcome === "failed") || results.some(
    (r) => r.outcome === "failed" || r.error !== void 0 || (r.problems?.length ?? 0) > 0
  );
  const nothingDone = counts.failed > 0 && counts.backedUp === 0 && counts.skipped === 0 && counts.covered === 0;
  const status = nothingDone ? "failed" : remaining.length > 0 ? "incomplete" : hasErrors ? "partial" : "succeeded";
  const report = {
    ...base,
    status,
    endedAt: deps.clock().toISOString(),
    counts,
    instances: results,
    ...duplicates.length > 0 ? { duplicates } : {},
    ...remaining.length > 0 ? { remaining } : {},
    ...warnings.length > 0 ? { warnings } : {}
  };
  metrics.count("SnapshotsCreated", counts.snapshots);
  metrics.count("InstancesBackedUp", input.dryRun ? 0 : counts.backedUp);
  metrics.count("InstancesSkipped", counts.skipped);
  metrics.count("InstancesFailed", counts.failed);
  metrics.count(status === "failed" ? "BackupRunsFailed" : "BackupRunsSucceeded", 1);
  const log = status === "succeeded" ? logger.info : logger.warn;
  log.call(logger, `backup run ${status}`, { report });
  return report;
}
async function executeDecision(decision, dryRun, deps) {
  const { logger } = deps;
  const problems = decision.problems.map((p) => p.message);
  for (const message of problems) {
    logger.warn("tag problem", { instanceId: decision.instanceId, problem: message });
  }
  const withProblems = problems.length > 0 ? { problems } : {};
  if (decision.kind === "skip") {
    logger.info("instance skipped", { instanceId: decision.instanceId, reason: decision.reason });
    return {
      instanceId: decision.instanceId,
      name: decision.name,
      outcome: "skipped",
      reason: decision.reason,
      ...decision.isError ? { error: { code: "InvalidTag", message: decision.reason } } : {},
      ...withProblems
    };
  }
  const { request } = decision;
  const excludedVolumes = request.excluded.map((e) => ({
    volumeId: e.volume.volumeId,
    deviceName: e.volume.deviceName,
    reason: e.reason
  }));
  const devices = new Map(request.included.map((v) => [v.volumeId, v.deviceName]));
  const excludedIds = new Set(excludedVolumes.map((e) => e.volumeId));
  if (dryRun) {
    return {
      instanceId: decision.instanceId,
      name: decision.name,
      outcome: "planned",
      snapshots: request.included.map((v) => ({
        volumeId: v.volumeId,
        deviceName: v.deviceName,
        state: "planned"
      })),
      ...excludedVolumes.length > 0 ? { excludedVolumes } : {},
      ...withProblems
    };
  }
  let created;
  try {
    created = await deps.ec2.createSnapshotSet(request);
  } catch (error) {
    const failure = toAwsCallError("CreateSnapshots", error);
    logger.error("snapshot set failed", {
      instanceId: decision.instanceId,
      code: failure.code,
      error: failure.message
    });
    return {
      instanceId: decision.instanceId,
      name: decision.name,
      outcome: "failed",
      error: { code: failure.code, message: failure.message },
      ...excludedVolumes.length > 0 ? { excludedVolumes } : {},
      ...withProblems
    };
  }
  const snapshots = created.map((s) => ({
    volumeId: s.volumeId,
    deviceName: devices.get(s.volumeId) ?? excludedVolumes.find((e) => e.volumeId === s.volumeId)?.deviceName,
    snapshotId: s.snapshotId,
    sizeGiB: s.sizeGiB,
    state: s.state,
    ...excludedIds.has(s.volumeId) ? { unexpected: true } : {}
  }));
  for (const snapshot of snapshots) {
    if (snapshot.unexpected) {
      logger.warn("EC2 snapshotted a volume the request excluded", {
        instanceId: decision.instanceId,
        volumeId: snapshot.volumeId,
        snapshotId: snapshot.snapshotId
      });
    }
  }
  logger.info("snapshot set created", {
    instanceId: decision.instanceId,
    snapshotIds: snapshots.map((s) => s.snapshotId)
  });
  return {
    instanceId: decision.instanceId,
    name: decision.name,
    outcome: "created",
    snapshots,
    ...excludedVolumes.length > 0 ? { excludedVolumes } : {},
    ...withProblems
  };
}
var HISTORY_UNAVAILABLE = "the run history could not be written: backups were made anyway (documented choice), but this run is not recorded and a duplicate delivery may not be detected";
async function readSlotSets(deps, schedule, slot) {
  const { keys, deployment } = deps.config;
  const sets = /* @__PURE__ */ new Map();
  for await (const snapshot of deps.ec2.listSnapshotsTagged({
    [keys.managed]: "true",
    [keys.deployment]: deployment,
    [keys.schedule]: schedule,
    [keys.slot]: slot
  })) {
    const instanceId = snapshot.tags[keys.instanceId];
    const runId = snapshot.tags[keys.runId] ?? "unknown";
    if (!instanceId) continue;
    const byRun = sets.get(instanceId) ?? /* @__PURE__ */ new Map();
    byRun.set(runId, [...byRun.get(runId) ?? [], snapshot]);
    sets.set(instanceId, byRun);
  }
  return sets;
}
function oldestSetFirst(a, b) {
  const start = (set) => Math.min(...set.map((s) => s.startTime.getTime()));
  return start(a[1]) - start(b[1]) || a[0].localeCompare(b[0]);
}
async function removeDuplicateSets(slotSets, dryRun, deps, journal) {
  const duplicates = [];
  for (const [instanceId, byRun] of slotSets) {
    if (byRun.size < 2) continue;
    const [keep, ...extra] = [...byRun.entries()].sort(oldestSetFirst);
    for (const [runId, set] of extra) {
      const snapshotIds = set.map((s) => s.snapshotId);
      if (dryRun || set.some((s) => s.state !== "completed")) {
        duplicates.push({
          instanceId,
          runId,
          kept: keep?.[0] ?? "",
          snapshotIds,
          outcome: "planned"
        });
        continue;
      }
      let outcome = "deleted";
      for (const snapshot of set) {
        const record = {
          runId: deps.runId,
          job: "backup",
          action: "delete-snapshot",
          resourceId: snapshot.snapshotId,
          reason: `duplicate set for the slot from run ${runId}; kept the set of run ${keep?.[0]}`,
          details: { instanceId, volumeId: snapshot.volumeId }
        };
        try {
          await journal.record({ ...record, phase: "before" });
          await deps.ec2.deleteSnapshot(snapshot.snapshotId);
          await journal.record({ ...record, phase: "after", outcome: "done" });
        } catch (error) {
          outcome = "failed";
          deps.logger.error("could not remove a duplicate snapshot", {
            snapshotId: snapshot.snapshotId,
            error: toAwsCallError("DeleteSnapshot", error).message
          });
        }
      }
      deps.logger.warn("duplicate snapshot set for the slot", { instanceId, runId, outcome });
      duplicates.push({ instanceId, runId, kept: keep?.[0] ?? "", snapshotIds, outcome });
    }
  }
  return duplicates;
}
async function recordCreated(result, deps, journal) {
  for (const snapshot of result.snapshots ?? []) {
    if (!snapshot.snapshotId) continue;
    await journal.record({
      runId: deps.runId,
      job: "backup",
      action: "create-snapshot",
      resourceId: snapshot.snapshotId,
      phase: "after",
      outcome: "done",
      reason: "scheduled backup",
      details: {
        instanceId: result.instanceId,
        volumeId: snapshot.volumeId,
        deviceName: snapshot.deviceName,
        sizeGiB: snapshot.sizeGiB
      }
    }).catch(
      (error) => deps.logger.error("snapshot made but not recorded", {
        snapshotId: snapshot.snapshotId,
        error: error instanceof Error ? error.message : String(error)
      })
    );
  }
}

// lib/jobs/events.ts
import { z as z2 } from "zod";
var ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
var scheduledEventFields = {
  schedule: z2.string({ error: "must be a string naming a schedule" }),
  scheduledTime: z2.string({ error: "must be an ISO 8601 time string" }).refine(
    (value) => ISO_INSTANT.test(value) && !Number.isNaN(Date.parse(value)),
    "must be an ISO 8601 time with a zone, such as 2026-11-23T03:00:00Z"
  ).optional(),
  dryRun: z2.boolean({ error: "must be true or false" }).optional()
};
var scheduledEventSchema = z2.object(scheduledEventFields).strict();
var retentionEventSchema = z2.object({
  ...scheduledEventFields,
  maxDeletions: z2.number({ error: "must be a whole number of deletions" }).int("must be a whole number of deletions").min(0, "must be 0 or more").max(1e6, "must be at most 1000000").optional(),
  confirm: z2.boolean({ error: "must be true or false" }).optional()
}).strict();
function parseScheduledEvent(event, catalog) {
  const { data, schedule } = parseWith(
    scheduledEventSchema,
    "schedule, scheduledTime and dryRun",
    event,
    catalog
  );
  return {
    schedule,
    scheduledTime: data.scheduledTime === void 0 ? void 0 : new Date(data.scheduledTime),
    dryRun: data.dryRun ?? false
  };
}
function parseWith(schemaToUse, fields, event, catalog) {
  const known = [...catalog.schedules.keys()].join(", ");
  const howToFix = `configure the schedule's target input as {"schedule": "<name>", "scheduledTime": "<aws.scheduler.scheduled-time>"}; known schedules: ${known}`;
  if (event === null || typeof event !== "object" || Array.isArray(event)) {
    throw new InvalidEventError(`the event must be a JSON object; ${howToFix}`);
  }
  if (!("schedule" in event)) {
    const looksLikeRule = "detail-type" in event || "source" in event;
    throw new InvalidEventError(
      `the event names no schedule${looksLikeRule ? " (this is a raw EventBridge event)" : ""}: ${howToFix}`
    );
  }
  const parsed = schemaToUse.safeParse(event);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue?.code === "unrecognized_keys") {
      throw new InvalidEventError(
        `unexpected field(s) ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}; the event takes ${fields} only`
      );
    }
    const field = issue?.path.join(".") || "event";
    throw new InvalidEventError(`field "${field}" ${issue?.message ?? "is invalid"}`);
  }
  let schedule;
  try {
    schedule = resolveSchedule(catalog, parsed.data.schedule).name;
  } catch (error) {
    if (error instanceof UnknownScheduleError) {
      throw new InvalidEventError(`field "schedule": ${error.message}`, { cause: error });
    }
    throw error;
  }
  return { data: parsed.data, schedule };
}
var sweepEventSchema = z2.object({
  sweep: z2.literal(true, { error: "must be true to run the orphan sweep" }),
  dryRun: z2.boolean({ error: "must be true or false" }).optional(),
  maxDeletions: z2.number({ error: "must be a whole number of deletions" }).int("must be a whole number of deletions").min(0, "must be 0 or more").max(1e6, "must be at most 1000000").optional(),
  confirm: z2.boolean({ error: "must be true or false" }).optional()
}).strict();

// lib/domain/runHistory.ts
var FINISHED_STATUSES = ["succeeded", "partial"];
var RESUMABLE_STATUSES = ["failed", "incomplete", "abandoned"];
var HISTORY_INDEXES = {
  byRunsOrResource: "GSI1",
  byJobOrInstance: "GSI2",
  byScheduleOrVolume: "GSI3"
};
function runKeys(run) {
  const sort = `${run.startedAt}#${run.runId}`;
  return {
    PK: `RUN#${run.runId}`,
    SK: "RUN",
    GSI1PK: `RUNS#${run.deployment}`,
    GSI1SK: sort,
    GSI2PK: `JOB#${run.deployment}#${run.job}`,
    GSI2SK: sort,
    ...run.schedule ? { GSI3PK: `SCHEDULE#${run.deployment}#${run.schedule}`, GSI3SK: sort } : {}
  };
}
function actionKeys(action) {
  const sort = `${action.at}#${action.runId}#${String(action.sequence).padStart(6, "0")}`;
  return {
    PK: `RUN#${action.runId}`,
    SK: `ACTION#${String(action.sequence).padStart(6, "0")}#${action.resourceId}#${action.phase}`,
    GSI1PK: `RES#${action.resourceId}`,
    GSI1SK: sort,
    ...action.instanceId && action.instanceId !== action.resourceId ? { GSI2PK: `RES#${action.instanceId}`, GSI2SK: sort } : {},
    ...action.volumeId && action.volumeId !== action.resourceId ? { GSI3PK: `RES#${action.volumeId}`, GSI3SK: sort } : {}
  };
}
function slotKeys(slot) {
  return { PK: `SLOT#${slot.job}#${slot.schedule}#${slot.slot}`, SK: "CLAIM" };
}
function expiresAt(at, retentionDays) {
  return Math.floor(at.getTime() / 1e3) + retentionDays * 86400;
}
function isAbandoned(run, now, timeoutMs, marginMs) {
  if (run.status !== "running" || !run.leaseRenewedAt) return false;
  return now.getTime() - Date.parse(run.leaseRenewedAt) > timeoutMs + marginMs;
}

// lib/jobs/slotRun.ts
async function runOnce(params, deps, work) {
  const { history, logger } = deps;
  const sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  const timeoutMs = deps.functionTimeoutMs ?? 9e5;
  const marginMs = deps.abandonMarginMs ?? 12e4;
  let historyUnavailable = false;
  let trigger = params.trigger;
  let resuming = false;
  let previousRunId;
  try {
    await markDeadRuns(params, deps, timeoutMs, marginMs);
  } catch (error) {
    logger.warn("could not check for abandoned runs", {
      error: toAwsCallError("Query", error).message
    });
  }
  const slot = params.slot && params.schedule && !params.dryRun ? { job: params.job, schedule: params.schedule, slot: params.slot } : void 0;
  if (slot) {
    try {
      const claim = await claimOrResolve(slot, params, deps, sleep, timeoutMs, marginMs);
      if (claim.kind !== "claimed") return claim;
      resuming = claim.previousRunId !== void 0;
      previousRunId = claim.previousRunId;
      if (resuming) trigger = "retry";
    } catch (error) {
      const failure = toAwsCallError("ClaimSlot", error);
      if (deps.historyRequired) throw failure;
      historyUnavailable = true;
      logger.error("run history unavailable: going on without a slot claim", {
        error: failure.message
      });
    }
  }
  const startedAt = deps.clock().toISOString();
  if (!historyUnavailable) {
    try {
      await history.startRun({
        runId: params.runId,
        deployment: deps.deployment,
        job: params.job,
        trigger,
        schedule: params.schedule,
        slot: params.slot,
        requestedBy: params.requestedBy,
        dryRun: params.dryRun,
        startedAt,
        status: "running",
        ...previousRunId ? { resumedFrom: previousRunId } : {}
      });
    } catch (error) {
      const failure = toAwsCallError("StartRun", error);
      if (deps.historyRequired) throw failure;
      historyUnavailable = true;
      logger.error("run history unavailable: going on without a run record", {
        error: failure.message
      });
    }
  }
  const timer = historyUnavailable ? void 0 : setInterval(() => {
    history.renewLease(params.runId, deps.clock()).catch(
      (error) => logger.warn("lease renewal failed", {
        error: toAwsCallError("UpdateItem", error).message
      })
    );
  }, deps.leaseRenewMs ?? 3e4);
  timer?.unref?.();
  let report;
  try {
    report = await work({
      runId: params.runId,
      trigger,
      resuming,
      previousRunId,
      historyUnavailable
    });
  } catch (error) {
    if (timer) clearInterval(timer);
    const failure = error instanceof Error ? error.message : String(error);
    if (!historyUnavailable) {
      await history.finishRun(params.runId, {
        status: "failed",
        endedAt: deps.clock().toISOString(),
        errorSummary: failure
      }).catch(() => void 0);
    }
    await publish(deps, {
      runId: params.runId,
      deployment: deps.deployment,
      job: params.job,
      trigger,
      schedule: params.schedule,
      slot: params.slot,
      requestedBy: params.requestedBy,
      dryRun: params.dryRun,
      status: "failed",
      startedAt,
      endedAt: deps.clock().toISOString(),
      errorSummary: failure
    });
    throw error;
  }
  if (timer) clearInterval(timer);
  const summary = {
    runId: params.runId,
    deployment: deps.deployment,
    job: params.job,
    trigger,
    schedule: params.schedule,
    slot: params.slot,
    requestedBy: params.requestedBy,
    dryRun: params.dryRun,
    status: report.status,
    startedAt: report.startedAt,
    endedAt: report.endedAt,
    counts: report.counts,
    errorSummary: report.error ? `${report.error.code}: ${report.error.message}` : void 0,
    resumedFrom: previousRunId
  };
  if (!historyUnavailable) {
    try {
      await history.finishRun(params.runId, {
        status: report.status,
        endedAt: report.endedAt,
        counts: report.counts,
        errorSummary: summary.errorSummary,
        remaining: report.remaining,
        report
      });
    } catch (error) {
      logger.error("the run finished but its final record could not be written", {
        error: toAwsCallError("UpdateItem", error).message
      });
    }
  }
  await publish(deps, summary);
  return { kind: "ran", report };
}
async function claimOrResolve(slot, params, deps, sleep, timeoutMs, marginMs) {
  const { history } = deps;
  const waitMs = deps.duplicateWaitMs ?? 1e4;
  const deadline = deps.clock().getTime() + waitMs;
  for (; ; ) {
    const claim = await history.claimSlot(slot, params.runId, deps.clock());
    if (claim.claimed) return { kind: "claimed" };
    const holderId = claim.holder.runId;
    const holder = await history.getRun(holderId);
    const now = deps.clock();
    if (holder && FINISHED_STATUSES.includes(holder.status)) {
      deps.logger.info("duplicate delivery of a finished slot: returning the first run\u2019s report", {
        heldBy: holderId
      });
      return {
        kind: "duplicate",
        heldBy: holderId,
        report: holder.report ? JSON.parse(holder.report) : holder
      };
    }
    const dead = holder && RESUMABLE_STATUSES.includes(holder.status) || holder && isAbandoned(holder, now, timeoutMs, marginMs) || !holder && now.getTime() - Date.parse(claim.holder.claimedAt) > timeoutMs + marginMs;
    if (dead) {
      if (holder?.status === "running" && holder.leaseRenewedAt) {
        await history.markAbandoned(holderId, holder.leaseRenewedAt, now, params.runId);
      }
      if (await history.takeOverSlot(slot, holderId, params.runId, now)) {
        deps.logger.warn("taking over the slot to resume its work", {
          previousRunId: holderId,
          status: holder?.status
        });
        return { kind: "claimed", previousRunId: holderId };
      }
      continue;
    }
    if (now.getTime() >= deadline) {
      const message = `slot ${slot.schedule} ${slot.slot} of ${slot.job} is held by run ${holderId}, still running; nothing done`;
      deps.logger.info(message);
      return { kind: "in-progress", heldBy: holderId, message };
    }
    await sleep(Math.min(1e3, Math.max(50, deadline - now.getTime())));
  }
}
async function markDeadRuns(params, deps, timeoutMs, marginMs) {
  const now = deps.clock();
  const recent = await deps.history.runsOfJob(deps.deployment, params.job, { limit: 50 });
  for (const run of recent) {
    if (run.runId !== params.runId && isAbandoned(run, now, timeoutMs, marginMs) && run.leaseRenewedAt) {
      if (await deps.history.markAbandoned(run.runId, run.leaseRenewedAt, now, params.runId)) {
        deps.logger.warn("marked a dead run abandoned", {
          abandonedRunId: run.runId,
          leaseRenewedAt: run.leaseRenewedAt
        });
      }
    }
  }
}
async function publish(deps, summary) {
  if (!deps.events) return;
  try {
    await deps.events.publishRunFinished(summary);
  } catch (error) {
    deps.logger.error("could not publish the run-finished event", {
      error: toAwsCallError("PutEvents", error).message
    });
  }
}

// lib/runtime/invocation.ts
function slotRunDependencies(runtime2, options) {
  return {
    history: runtime2.history,
    events: runtime2.events,
    deployment: runtime2.config.deployment,
    clock: runtime2.clock,
    logger: runtime2.logger,
    functionTimeoutMs: runtime2.config.functionTimeoutMs,
    duplicateWaitMs: runtime2.config.duplicateWaitMs,
    historyRequired: options.historyRequired
  };
}
function answer(outcome, metrics) {
  if (outcome.kind !== "ran") metrics?.count("DuplicateDeliveries", 1);
  if (outcome.kind === "in-progress") {
    return { status: "in-progress", heldBy: outcome.heldBy, message: outcome.message };
  }
  if (outcome.kind === "duplicate") return outcome.report;
  const { report } = outcome;
  if (report.status === "failed") {
    throw new RunFailedError(
      report.job,
      report.runId,
      report.error?.message ?? `${report.job} run failed`,
      report
    );
  }
  if (report.status === "incomplete") {
    throw new RunIncompleteError(report.job, report.runId, report.remaining?.length ?? 0, report);
  }
  return report;
}
function remainingTime(context) {
  return () => context.getRemainingTimeInMillis();
}

// lib/runtime/lambdaRuntime.ts
import { randomBytes } from "node:crypto";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { Tracer } from "@aws-lambda-powertools/tracer";

// lib/aws/clients.ts
import { EC2Client } from "@aws-sdk/client-ec2";
function clientSettings(config) {
  return {
    region: config.region,
    maxAttempts: config.maxAttempts,
    retryMode: "standard",
    // throwOnRequestTimeout: without it the handler only warns and a hung call waits
    // until Lambda kills the run.
    requestHandler: {
      connectionTimeout: 5e3,
      requestTimeout: config.requestTimeoutMs,
      throwOnRequestTimeout: true
    },
    ...config.endpoint ? { endpoint: config.endpoint } : {}
  };
}
function createEc2Client(config) {
  return new EC2Client(clientSettings(config));
}

// lib/aws/Ec2Gateway.ts
import {
  CreateSnapshotsCommand,
  DeleteSnapshotCommand,
  DescribeSnapshotsCommand,
  paginateDescribeImages,
  paginateDescribeInstances,
  paginateDescribeSnapshots,
  paginateDescribeVolumes
} from "@aws-sdk/client-ec2";
var DESCRIBE_PAGE_SIZE = 1e3;
var DESCRIBE_VOLUMES_PAGE_SIZE = 500;
var Ec2Gateway = class {
  #client;
  #rateRetryMs;
  #rateRetries;
  #sleep;
  constructor(client, options = {}) {
    this.#client = client;
    this.#rateRetryMs = options.snapshotRateRetryMs ?? 15e3;
    this.#rateRetries = options.snapshotRateRetries ?? 2;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }
  /** The underlying SDK client, for gateways of later capabilities that share it. */
  get client() {
    return this.#client;
  }
  /**
   * Streams every instance that carries a tag key, in any state but terminated or
   * shutting down, page by page (1000 a page).
   *
   * @example
   * for await (const i of gateway.listInstancesWithTagKey('snapkeeper:backup')) console.log(i.instanceId);
   */
  async *listInstancesWithTagKey(tagKey, states = ["pending", "running", "stopping", "stopped"]) {
    const filters = [
      { Name: "tag-key", Values: [tagKey] },
      { Name: "instance-state-name", Values: [...states] }
    ];
    try {
      const pages = paginateDescribeInstances(
        { client: this.#client, pageSize: DESCRIBE_PAGE_SIZE },
        { Filters: filters }
      );
      for await (const page of pages) {
        for (const reservation of page.Reservations ?? []) {
          for (const instance of reservation.Instances ?? []) {
            const facts = toInstanceFacts(instance);
            if (facts) yield facts;
          }
        }
      }
    } catch (error) {
      throw toAwsCallError("DescribeInstances", error);
    }
  }
  /**
   * Streams the given instances (not terminated), whatever their tags. Unknown ids are
   * simply absent (a filter, not `InstanceIds`, so one bad id does not fail them all).
   *
   * @example
   * for await (const i of gateway.listInstancesByIds(['i-0abc'])) console.log(i.state);
   */
  async *listInstancesByIds(instanceIds, states = ["pending", "running", "stopping", "stopped"]) {
    try {
      for (let i = 0; i < instanceIds.length; i += 200) {
        const pages = paginateDescribeInstances(
          { client: this.#client, pageSize: DESCRIBE_PAGE_SIZE },
          {
            Filters: [
              { Name: "instance-id", Values: instanceIds.slice(i, i + 200) },
              { Name: "instance-state-name", Values: [...states] }
            ]
          }
        );
        for await (const page of pages) {
          for (const reservation of page.Reservations ?? []) {
            for (const instance of reservation.Instances ?? []) {
              const facts = toInstanceFacts(instance);
              if (facts) yield facts;
            }
          }
        }
      }
    } catch (error) {
      throw toAwsCallError("DescribeInstances", error);
    }
  }
  /**
   * The tags of every volume that carries a tag key, by volume id: one paginated
   * describe per run, never one per volume.
   *
   * @example
   * const skipped = await gateway.volumeTagsWithKey('snapkeeper:skip');
   */
  async volumeTagsWithKey(tagKey) {
    const result = /* @__PURE__ */ new Map();
    try {
      const pages = paginateDescribeVolumes(
        { client: this.#client, pageSize: DESCRIBE_VOLUMES_PAGE_SIZE },
        { Filters: [{ Name: "tag-key", Values: [tagKey] }] }
      );
      for await (const page of pages) {
        for (const volume of page.Volumes ?? []) {
          if (volume.VolumeId) result.set(volume.VolumeId, toTagMap(volume.Tags));
        }
      }
    } catch (error) {
      throw toAwsCallError("DescribeVolumes", error);
    }
    return result;
  }
  /**
   * Creates one crash-consistent snapshot set of an instance with `CreateSnapshots`,
   * tagged at creation (no separate CreateTags). `RequestLimitExceeded` and 5xx are
   * retried by the SDK; `SnapshotCreationPerVolumeRateExceeded` is retried here after
   * a pause and then deferred; `ConcurrentSnapshotLimitExceeded` is not retried.
   *
   * @throws {ConcurrentSnapshotLimitError | SnapshotRateDeferredError | AwsCallError}
   * @example
   * const snapshots = await gateway.createSnapshotSet(decision.request);
   */
  async createSnapshotSet(request) {
    const command = new CreateSnapshotsCommand({
      InstanceSpecification: {
        InstanceId: request.instanceId,
        ExcludeBootVolume: request.excludeBootVolume,
        ...request.excludeDataVolumeIds.length > 0 ? { ExcludeDataVolumeIds: [...request.excludeDataVolumeIds] } : {}
      },
      Description: request.description,
      TagSpecifications: [
        {
          ResourceType: "snapshot",
          Tags: request.tags.map((t) => ({ Key: t.Key, Value: t.Value }))
        }
      ]
    });
    for (let attempt = 1; ; attempt += 1) {
      try {
        const response = await this.#client.send(command);
        return (response.Snapshots ?? []).flatMap(
          (s) => s.SnapshotId && s.VolumeId ? [
            {
              snapshotId: s.SnapshotId,
              volumeId: s.VolumeId,
              sizeGiB: s.VolumeSize,
              state: s.State ?? "pending",
              startTime: s.StartTime?.toISOString()
            }
          ] : []
        );
      } catch (error) {
        const code = awsErrorCode(error);
        if (code === Ec2ErrorCode.ConcurrentSnapshotLimitExceeded) {
          throw new ConcurrentSnapshotLimitError(request.instanceId, { cause: error });
        }
        if (code === Ec2ErrorCode.SnapshotCreationPerVolumeRateExceeded) {
          if (attempt > this.#rateRetries) {
            throw new SnapshotRateDeferredError(request.instanceId, attempt, { cause: error });
          }
          await this.#sleep(this.#rateRetryMs);
          continue;
        }
        throw toAwsCallError("CreateSnapshots", error);
      }
    }
  }
  /**
   * Streams the account's own snapshots that carry every given tag (server-side
   * filters, `OwnerIds: ['self']`, 1000 a page). The `owner-id` is checked again here,
   * since some EC2 look-alikes ignore `OwnerIds`.
   *
   * @example
   * for await (const s of gateway.listSnapshotsTagged({ 'snapkeeper:managed': 'true' })) { ... }
   */
  async *listSnapshotsTagged(tags, ownerId) {
    const filters = Object.entries(tags).map(([key, value]) => ({
      Name: `tag:${key}`,
      Values: [value]
    }));
    try {
      const pages = paginateDescribeSnapshots(
        { client: this.#client, pageSize: DESCRIBE_PAGE_SIZE },
        { OwnerIds: ["self"], Filters: filters }
      );
      for await (const page of pages) {
        for (const snapshot of page.Snapshots ?? []) {
          if (!snapshot.SnapshotId) continue;
          if (ownerId && snapshot.OwnerId && snapshot.OwnerId !== ownerId) continue;
          yield {
            snapshotId: snapshot.SnapshotId,
            volumeId: snapshot.VolumeId ?? "vol-ffffffff",
            state: snapshot.State ?? "pending",
            startTime: snapshot.StartTime ?? /* @__PURE__ */ new Date(0),
            tags: toTagMap(snapshot.Tags),
            sizeGiB: snapshot.VolumeSize,
            description: snapshot.Description,
            ownerId: snapshot.OwnerId
          };
        }
      }
    } catch (error) {
      throw toAwsCallError("DescribeSnapshots", error);
    }
  }
  /**
   * The given snapshots (missing ones are simply absent from the result), 1000 ids a call.
   *
   * @example
   * const [snapshot] = await gateway.describeSnapshotsByIds(['snap-1']);
   */
  async describeSnapshotsByIds(snapshotIds) {
    const result = [];
    for (let i = 0; i < snapshotIds.length; i += DESCRIBE_PAGE_SIZE) {
      const chunk = snapshotIds.slice(i, i + DESCRIBE_PAGE_SIZE);
      try {
        const response = await this.#client.send(
          new DescribeSnapshotsCommand({
            OwnerIds: ["self"],
            Filters: [{ Name: "snapshot-id", Values: chunk }]
          })
        );
        for (const snapshot of response.Snapshots ?? []) {
          if (!snapshot.SnapshotId) continue;
          result.push({
            snapshotId: snapshot.SnapshotId,
            volumeId: snapshot.VolumeId ?? "vol-ffffffff",
            state: snapshot.State ?? "pending",
            startTime: snapshot.StartTime ?? /* @__PURE__ */ new Date(0),
            tags: toTagMap(snapshot.Tags),
            sizeGiB: snapshot.VolumeSize,
            description: snapshot.Description,
            ownerId: snapshot.OwnerId
          });
        }
      } catch (error) {
        throw toAwsCallError("DescribeSnapshots", error);
      }
    }
    return result;
  }
  /**
   * Every image the account owns, disabled ones included (`IncludeDisabled`: a
   * disabled AMI still holds its snapshots), 1000 a page.
   *
   * @example
   * const images = await gateway.listOwnImages();
   */
  async listOwnImages() {
    const images = [];
    try {
      const pages = paginateDescribeImages(
        { client: this.#client, pageSize: DESCRIBE_PAGE_SIZE },
        { Owners: ["self"], IncludeDisabled: true }
      );
      for await (const page of pages) {
        for (const image of page.Images ?? []) {
          if (!image.ImageId) continue;
          images.push({
            imageId: image.ImageId,
            name: image.Name,
            state: image.State ?? "unknown",
            snapshotIds: (image.BlockDeviceMappings ?? []).flatMap(
              (m) => m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []
            ),
            tags: toTagMap(image.Tags)
          });
        }
      }
    } catch (error) {
      throw toAwsCallError("DescribeImages", error);
    }
    return images;
  }
  /**
   * Which images use each snapshot, from the block device mappings of every image
   * the account owns: the snapshots retention must never delete.
   *
   * @example
   * (await gateway.snapshotHolders()).get('snap-1'); // ['ami-1']
   */
  async snapshotHolders() {
    const holders = /* @__PURE__ */ new Map();
    for (const image of await this.listOwnImages()) {
      for (const snapshotId of image.snapshotIds) {
        holders.set(snapshotId, [...holders.get(snapshotId) ?? [], image.imageId]);
      }
    }
    return holders;
  }
  /**
   * Deletes one snapshot. `InvalidSnapshot.InUse` (an AMI registered on it since the
   * plan) and `InvalidSnapshot.NotFound` (deleted by someone else) come back as typed
   * errors for the caller to report; anything else is an {@link AwsCallError}.
   *
   * @throws {SnapshotInUseError | SnapshotNotFoundError | AwsCallError}
   * @example
   * await gateway.deleteSnapshot('snap-0abc');
   */
  async deleteSnapshot(snapshotId) {
    try {
      await this.#client.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
    } catch (error) {
      const code = awsErrorCode(error);
      if (code === Ec2ErrorCode.SnapshotInUse)
        throw new SnapshotInUseError(snapshotId, { cause: error });
      if (code === Ec2ErrorCode.SnapshotNotFound) {
        throw new SnapshotNotFoundError(snapshotId, { cause: error });
      }
      throw toAwsCallError("DeleteSnapshot", error);
    }
  }
};
function toTagMap(tags) {
  const map = {};
  for (const tag of tags ?? []) {
    if (tag.Key !== void 0) map[tag.Key] = tag.Value ?? "";
  }
  return map;
}
function toInstanceFacts(instance) {
  if (!instance.InstanceId) return void 0;
  return {
    instanceId: instance.InstanceId,
    state: instance.State?.Name ?? "unknown",
    rootDeviceName: instance.RootDeviceName,
    tags: toTagMap(instance.Tags),
    volumes: (instance.BlockDeviceMappings ?? []).flatMap(
      (mapping) => mapping.Ebs?.VolumeId && mapping.DeviceName ? [{ volumeId: mapping.Ebs.VolumeId, deviceName: mapping.DeviceName }] : []
    )
  };
}

// lib/aws/RunEventsGateway.ts
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
var RUN_FINISHED = {
  source: "snapkeeper",
  detailType: "Snapkeeper Run Finished"
};
var RunEventsGateway = class {
  #client;
  #busName;
  constructor(client, busName = "default") {
    this.#client = client;
    this.#busName = busName;
  }
  /** Sends `Snapkeeper Run Finished` with the run summary as detail. */
  async publishRunFinished(summary) {
    try {
      const response = await this.#client.send(
        new PutEventsCommand({
          Entries: [
            {
              Source: RUN_FINISHED.source,
              DetailType: RUN_FINISHED.detailType,
              Detail: JSON.stringify(summary),
              EventBusName: this.#busName,
              Resources: []
            }
          ]
        })
      );
      if ((response.FailedEntryCount ?? 0) > 0) {
        const entry = response.Entries?.find((e) => e.ErrorCode);
        throw new Error(
          `${entry?.ErrorCode ?? "PutEventsFailed"}: ${entry?.ErrorMessage ?? "entry rejected"}`
        );
      }
    } catch (error) {
      throw toAwsCallError("PutEvents", error);
    }
  }
};
function createRunEventsGateway(config, busName = "default") {
  return new RunEventsGateway(new EventBridgeClient(clientSettings(config)), busName);
}

// lib/aws/RunHistoryGateway.ts
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  paginateQuery,
  UpdateCommand
} from "@aws-sdk/lib-dynamodb";
var MAX_REPORT_BYTES = 3e5;
var RunHistoryGateway = class {
  #doc;
  #table;
  #retentionDays;
  #sequence = 0;
  constructor(doc, tableName, retentionDays) {
    this.#doc = doc;
    this.#table = tableName;
    this.#retentionDays = retentionDays;
  }
  /**
   * Claims a slot for a run with a conditional write. Returns the current holder when
   * another run has it.
   *
   * @example
   * const claim = await history.claimSlot({ job: 'backup', schedule: 'daily', slot }, runId, now);
   */
  async claimSlot(slot, runId, now) {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            ...slotKeys(slot),
            type: "slot",
            ...slot,
            runId,
            claimedAt: now.toISOString(),
            expiresAt: expiresAt(now, this.#retentionDays)
          },
          ConditionExpression: "attribute_not_exists(PK)"
        })
      );
      return { claimed: true };
    } catch (error) {
      if (awsErrorCode(error) !== "ConditionalCheckFailedException")
        throw toAwsCallError("PutItem", error);
    }
    const holder = await this.getSlotClaim(slot);
    if (!holder) return this.claimSlot(slot, runId, now);
    return { claimed: false, holder };
  }
  /**
   * Moves a slot from a dead or failed run to a new one, only if `fromRunId` still holds it.
   *
   * @returns false when someone else took it first.
   */
  async takeOverSlot(slot, fromRunId, toRunId, now) {
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: slotKeys(slot),
          UpdateExpression: "SET runId = :to, claimedAt = :now, previousRunId = :from",
          ConditionExpression: "runId = :from",
          ExpressionAttributeValues: {
            ":to": toRunId,
            ":from": fromRunId,
            ":now": now.toISOString()
          }
        })
      );
      return true;
    } catch (error) {
      if (awsErrorCode(error) === "ConditionalCheckFailedException") return false;
      throw toAwsCallError("UpdateItem", error);
    }
  }
  /** The run holding a slot, if any. */
  async getSlotClaim(slot) {
    try {
      const response = await this.#doc.send(
        new GetCommand({ TableName: this.#table, Key: slotKeys(slot), ConsistentRead: true })
      );
      const item = response.Item;
      return item ? { runId: String(item.runId), claimedAt: String(item.claimedAt) } : void 0;
    } catch (error) {
      throw toAwsCallError("GetItem", error);
    }
  }
  /**
   * Writes the run item at start, `running`, with its lease.
   *
   * @example
   * await history.startRun({ runId, deployment, job: 'backup', trigger: 'schedule', dryRun: false, startedAt, status: 'running' });
   */
  async startRun(run) {
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            ...runKeys(run),
            type: "run",
            ...stripUndefined2(run),
            leaseRenewedAt: run.leaseRenewedAt ?? run.startedAt,
            expiresAt: expiresAt(new Date(run.startedAt), this.#retentionDays)
          },
          ConditionExpression: "attribute_not_exists(PK)"
        })
      );
    } catch (error) {
      throw toAwsCallError("PutItem", error);
    }
  }
  /** Renews a running run's lease. */
  async renewLease(runId, now) {
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { PK: `RUN#${runId}`, SK: "RUN" },
          UpdateExpression: "SET leaseRenewedAt = :now",
          ConditionExpression: "#status = :running",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: { ":now": now.toISOString(), ":running": "running" }
        })
      );
    } catch (error) {
      if (awsErrorCode(error) === "ConditionalCheckFailedException") return;
      throw toAwsCallError("UpdateItem", error);
    }
  }
  /**
   * Writes a run's final status, counts, error summary and report.
   *
   * @example
   * await history.finishRun(runId, { status: 'succeeded', endedAt, counts, report });
   */
  async finishRun(runId, result) {
    const names = { "#status": "status" };
    const values = {
      ":status": result.status,
      ":endedAt": result.endedAt
    };
    const sets = ["#status = :status", "endedAt = :endedAt"];
    if (result.counts) {
      sets.push("counts = :counts");
      values[":counts"] = result.counts;
    }
    if (result.errorSummary) {
      sets.push("errorSummary = :error");
      values[":error"] = result.errorSummary.slice(0, 2e3);
    }
    if (result.remaining) {
      sets.push("remaining = :remaining");
      values[":remaining"] = result.remaining.slice(0, 1e3);
    }
    if (result.report !== void 0) {
      sets.push("report = :report");
      values[":report"] = fitReport(result.report);
    }
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { PK: `RUN#${runId}`, SK: "RUN" },
          UpdateExpression: `SET ${sets.join(", ")}`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values
        })
      );
    } catch (error) {
      throw toAwsCallError("UpdateItem", error);
    }
  }
  /**
   * Marks a run `abandoned` only if it is still `running` with the lease seen.
   *
   * @returns false when it changed in between (it was alive after all).
   */
  async markAbandoned(runId, leaseRenewedAt, now, byRunId) {
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { PK: `RUN#${runId}`, SK: "RUN" },
          UpdateExpression: "SET #status = :abandoned, endedAt = :now, errorSummary = :why",
          ConditionExpression: "#status = :running AND leaseRenewedAt = :lease",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: {
            ":abandoned": "abandoned",
            ":running": "running",
            ":lease": leaseRenewedAt,
            ":now": now.toISOString(),
            ":why": `abandoned: lease last renewed ${leaseRenewedAt}; marked by run ${byRunId}`
          }
        })
      );
      return true;
    } catch (error) {
      if (awsErrorCode(error) === "ConditionalCheckFailedException") return false;
      throw toAwsCallError("UpdateItem", error);
    }
  }
  /** One run. */
  async getRun(runId) {
    try {
      const response = await this.#doc.send(
        new GetCommand({
          TableName: this.#table,
          Key: { PK: `RUN#${runId}`, SK: "RUN" },
          ConsistentRead: true
        })
      );
      return response.Item ? toRun(response.Item) : void 0;
    } catch (error) {
      throw toAwsCallError("GetItem", error);
    }
  }
  /**
   * Records one step of an action (the journal of destructive calls, and what was made).
   *
   * @example
   * await history.record({ runId, job: 'retention', action: 'delete-snapshot', resourceId, phase: 'before', reason });
   */
  async record(entry) {
    this.#sequence += 1;
    const at = entry.at ?? (/* @__PURE__ */ new Date()).toISOString();
    const details = entry.details ?? {};
    const instanceId = entry.instanceId ?? (typeof details.instanceId === "string" ? details.instanceId : void 0);
    const volumeId = entry.volumeId ?? (typeof details.volumeId === "string" ? details.volumeId : void 0);
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            ...actionKeys({
              runId: entry.runId,
              sequence: this.#sequence,
              resourceId: entry.resourceId,
              phase: entry.phase,
              at,
              instanceId,
              volumeId
            }),
            type: "action",
            ...stripUndefined2({ ...entry, at, sequence: this.#sequence, instanceId, volumeId }),
            expiresAt: expiresAt(new Date(at), this.#retentionDays)
          }
        })
      );
    } catch (error) {
      throw toAwsCallError("PutItem", error);
    }
  }
  /** The latest runs of the deployment, newest first. */
  async latestRuns(deployment, options = {}) {
    return (await this.#queryIndex(
      HISTORY_INDEXES.byRunsOrResource,
      "GSI1",
      `RUNS#${deployment}`,
      options
    )).map(toRun);
  }
  /** Runs of one job, newest first. */
  async runsOfJob(deployment, job, options = {}) {
    return (await this.#queryIndex(
      HISTORY_INDEXES.byJobOrInstance,
      "GSI2",
      `JOB#${deployment}#${job}`,
      options
    )).map(toRun);
  }
  /** Runs of one schedule (any job), newest first. */
  async runsOfSchedule(deployment, schedule, options = {}) {
    return (await this.#queryIndex(
      HISTORY_INDEXES.byScheduleOrVolume,
      "GSI3",
      `SCHEDULE#${deployment}#${schedule}`,
      options
    )).map(toRun);
  }
  /**
   * Everything that happened to one resource (snapshot, AMI, instance or volume), newest first.
   *
   * @example
   * await history.resourceHistory('i-0abc', { since: '2026-11-16T00:00:00Z' });
   */
  async resourceHistory(resourceId, options = {}) {
    const key = `RES#${resourceId}`;
    const found = [
      ...await this.#queryIndex(HISTORY_INDEXES.byRunsOrResource, "GSI1", key, options),
      ...await this.#queryIndex(HISTORY_INDEXES.byJobOrInstance, "GSI2", key, options),
      ...await this.#queryIndex(HISTORY_INDEXES.byScheduleOrVolume, "GSI3", key, options)
    ];
    const unique = new Map(found.map((item) => [`${item.PK}|${item.SK}`, item]));
    return [...unique.values()].map((item) => item).sort((a, b) => b.at.localeCompare(a.at) || b.sequence - a.sequence);
  }
  /** A run's actions, in the order they happened. */
  async runActions(runId) {
    const items = [];
    try {
      const pages = paginateQuery(
        { client: this.#doc },
        {
          TableName: this.#table,
          KeyConditionExpression: "PK = :pk AND begins_with(SK, :action)",
          ExpressionAttributeValues: { ":pk": `RUN#${runId}`, ":action": "ACTION#" }
        }
      );
      for await (const page of pages)
        for (const item of page.Items ?? []) items.push(item);
    } catch (error) {
      throw toAwsCallError("Query", error);
    }
    return items;
  }
  async #queryIndex(index, prefix, partition, options) {
    const items = [];
    try {
      const pages = paginateQuery(
        { client: this.#doc, pageSize: Math.min(options.limit ?? 100, 1e3) },
        {
          TableName: this.#table,
          IndexName: index,
          KeyConditionExpression: options.since ? `${prefix}PK = :pk AND ${prefix}SK >= :since` : `${prefix}PK = :pk`,
          ExpressionAttributeValues: {
            ":pk": partition,
            // Keys hold times to the millisecond: normalise so "…:00Z" keeps "…:00.500Z".
            ...options.since ? { ":since": new Date(options.since).toISOString() } : {}
          },
          ScanIndexForward: false
        }
      );
      for await (const page of pages) {
        for (const item of page.Items ?? []) {
          items.push(item);
          if (options.limit !== void 0 && items.length >= options.limit) return items;
        }
      }
    } catch (error) {
      throw toAwsCallError("Query", error);
    }
    return items;
  }
};
function createRunHistoryGateway(config, tableName, retentionDays) {
  const doc = DynamoDBDocumentClient.from(new DynamoDBClient(clientSettings(config)), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true }
  });
  return new RunHistoryGateway(doc, tableName, retentionDays);
}
function toRun(item) {
  return item;
}
function fitReport(report) {
  const json = JSON.stringify(report);
  if (Buffer.byteLength(json) <= MAX_REPORT_BYTES) return json;
  const summary = report && typeof report === "object" ? Object.fromEntries(Object.entries(report).filter(([, v]) => !Array.isArray(v))) : {};
  return JSON.stringify({
    ...summary,
    truncated: "the full report was too large to store; see the action items"
  });
}
function stripUndefined2(value) {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== void 0));
}

// lib/domain/deletionCap.ts
function parseDeletionCap(text) {
  const trimmed = text.trim();
  const percent = /^(\d{1,3}(?:\.\d+)?)%$/.exec(trimmed);
  if (percent?.[1]) {
    const value = Number(percent[1]);
    return value > 0 && value <= 100 ? { kind: "percent", value } : void 0;
  }
  if (/^\d+$/.test(trimmed)) {
    const value = Number(trimmed);
    return value <= 1e6 ? { kind: "count", value } : void 0;
  }
  return void 0;
}

// lib/domain/tagKeys.ts
var DEFAULT_TAG_PREFIX = "snapkeeper:";
function tagKeys(prefix = DEFAULT_TAG_PREFIX) {
  return {
    prefix,
    backup: `${prefix}backup`,
    retain: `${prefix}retain`,
    retainDays: `${prefix}retain-days`,
    retainTiers: `${prefix}retain-tiers`,
    excludeBoot: `${prefix}exclude-boot`,
    skip: `${prefix}skip`,
    ami: `${prefix}ami`,
    amiReboot: `${prefix}ami-reboot`,
    amiRetain: `${prefix}ami-retain`,
    managed: `${prefix}managed`,
    deployment: `${prefix}deployment`,
    schedule: `${prefix}schedule`,
    slot: `${prefix}slot`,
    instanceId: `${prefix}instance-id`,
    runId: `${prefix}run-id`,
    createdAt: `${prefix}created-at`
  };
}

// lib/config/environment.ts
function loadConfig(env) {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) throw new ConfigurationError("AWS_REGION", "is required");
  const deployment = required(env, "DEPLOYMENT");
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(deployment)) {
    throw new ConfigurationError(
      "DEPLOYMENT",
      `must be 1-64 letters, digits, "-" or "_" (the stage name); got ${JSON.stringify(deployment)}`
    );
  }
  const prefix = env.TAG_PREFIX ?? DEFAULT_TAG_PREFIX;
  if (!/^[A-Za-z0-9_.:/=+@-]{1,64}$/.test(prefix) || prefix.toLowerCase().startsWith("aws:")) {
    throw new ConfigurationError(
      "TAG_PREFIX",
      `must be 1-64 tag-key characters and must not start with "aws:"; got ${JSON.stringify(prefix)}`
    );
  }
  let schedules = DEFAULT_SCHEDULES;
  if (env.SCHEDULES !== void 0 && env.SCHEDULES.trim() !== "") {
    try {
      schedules = JSON.parse(env.SCHEDULES);
    } catch (error) {
      throw new ConfigurationError(
        "SCHEDULES",
        "is not valid JSON (expected a list of schedules)",
        {
          cause: error
        }
      );
    }
  }
  let catalog;
  try {
    catalog = parseScheduleCatalog(schedules, env.DEFAULT_SCHEDULE ?? "daily");
  } catch (error) {
    if (error instanceof SnapkeeperError) {
      const variable = error.message.startsWith("default schedule") ? "DEFAULT_SCHEDULE" : "SCHEDULES";
      throw new ConfigurationError(variable, `is invalid: ${error.message}`, { cause: error });
    }
    throw error;
  }
  const copyTags = (env.COPY_TAGS ?? "").split(",").map((k) => k.trim()).filter((k) => k !== "");
  if (copyTags.length > 40)
    throw new ConfigurationError("COPY_TAGS", "lists more than 40 tag keys");
  const reserved = copyTags.find((k) => k.toLowerCase().startsWith("aws:") || k.startsWith(prefix));
  if (reserved) {
    throw new ConfigurationError(
      "COPY_TAGS",
      `cannot copy ${JSON.stringify(reserved)}: aws: and ${prefix} keys are reserved`
    );
  }
  const capText = env.MAX_DELETIONS?.trim() || "25%";
  const maxDeletions = parseDeletionCap(capText);
  if (!maxDeletions) {
    throw new ConfigurationError(
      "MAX_DELETIONS",
      `must be a number of deletions (50) or a percentage of the managed snapshots in scope (25%); got ${JSON.stringify(env.MAX_DELETIONS)}`
    );
  }
  const endpoint = env.AWS_ENDPOINT_URL;
  return {
    region,
    deployment,
    keys: tagKeys(prefix),
    catalog,
    copyTags,
    backupConcurrency: integer(env, "BACKUP_CONCURRENCY", 10, 1, 100),
    snapshotRateRetryMs: integer(env, "SNAPSHOT_RATE_RETRY_SECONDS", 15, 0, 120) * 1e3,
    snapshotRateRetries: integer(env, "SNAPSHOT_RATE_RETRIES", 2, 0, 10),
    maxAttempts: integer(env, "AWS_MAX_ATTEMPTS", 8, 1, 20),
    requestTimeoutMs: integer(env, "AWS_REQUEST_TIMEOUT_MS", 3e4, 100, 3e5),
    maxDeletions,
    deleteConcurrency: integer(env, "DELETE_CONCURRENCY", 5, 1, 50),
    localTagAfterCreate: boolean(env, "LOCAL_TAG_AFTER_CREATE", false),
    recycleBinCheck: boolean(env, "RECYCLE_BIN_CHECK", true),
    historyTable: env.HISTORY_TABLE?.trim() || void 0,
    historyRetentionDays: integer(env, "HISTORY_RETENTION_DAYS", 400, 1, 36500),
    functionTimeoutMs: integer(env, "FUNCTION_TIMEOUT_SECONDS", 900, 1, 900) * 1e3,
    safetyMarginMs: integer(env, "SAFETY_MARGIN_SECONDS", 60, 0, 600) * 1e3,
    duplicateWaitMs: integer(env, "DUPLICATE_WAIT_SECONDS", 10, 0, 300) * 1e3,
    eventBusName: env.EVENT_BUS_NAME === void 0 ? "default" : env.EVENT_BUS_NAME.trim() || void 0,
    manualRetainDays: integer(env, "MANUAL_RETAIN_DAYS", 30, 1, 36500),
    restoreWaitMs: integer(env, "RESTORE_WAIT_SECONDS", 600, 1, 840) * 1e3,
    dryRun: boolean(env, "DRY_RUN", false),
    ...endpoint ? { endpoint } : {}
  };
}
function required(env, name) {
  const value = env[name];
  if (value === void 0 || value.trim() === "") throw new ConfigurationError(name, "is required");
  return value.trim();
}
function integer(env, name, fallback, min, max) {
  const raw = env[name];
  if (raw === void 0 || raw.trim() === "") return fallback;
  if (!/^\d+$/.test(raw.trim())) {
    throw new ConfigurationError(
      name,
      `must be a whole number from ${min} to ${max}; got ${JSON.stringify(raw)}`
    );
  }
  const value = Number(raw.trim());
  if (value < min || value > max) {
    throw new ConfigurationError(name, `must be from ${min} to ${max}; got ${value}`);
  }
  return value;
}
function boolean(env, name, fallback) {
  const raw = env[name];
  if (raw === void 0 || raw.trim() === "") return fallback;
  const lowered = raw.trim().toLowerCase();
  if (lowered === "true") return true;
  if (lowered === "false") return false;
  throw new ConfigurationError(name, `must be true or false; got ${JSON.stringify(raw)}`);
}

// lib/runtime/lambdaRuntime.ts
function createLambdaRuntime(functionName, env) {
  const serviceName = env.POWERTOOLS_SERVICE_NAME ?? "snapkeeper";
  const logger = new Logger({ serviceName, persistentKeys: { function: functionName } });
  const config = loadConfig(env);
  logger.appendPersistentKeys({ deployment: config.deployment });
  const metrics = new Metrics({
    namespace: env.POWERTOOLS_METRICS_NAMESPACE ?? "Snapkeeper",
    serviceName,
    defaultDimensions: { deployment: config.deployment, job: functionName }
  });
  const tracer = new Tracer({ serviceName });
  const ec2 = new Ec2Gateway(tracer.captureAWSv3Client(createEc2Client(config)), {
    snapshotRateRetryMs: config.snapshotRateRetryMs,
    snapshotRateRetries: config.snapshotRateRetries
  });
  const clock = () => /* @__PURE__ */ new Date();
  const history = config.historyTable ? createRunHistoryGateway(config, config.historyTable, config.historyRetentionDays) : unconfiguredHistory();
  const logged = logJournal(logger);
  const journal = {
    record: async (entry) => {
      logged.record(entry);
      await history.record(entry);
    }
  };
  if (!config.historyTable) logger.warn("HISTORY_TABLE is not set: runs are not recorded");
  return {
    history,
    journal,
    ...config.eventBusName ? { events: createRunEventsGateway(config, config.eventBusName) } : {},
    config,
    logger,
    metrics,
    ec2,
    tracer,
    metricsPort: {
      count: (name, value) => metrics.addMetric(name, MetricUnit.Count, value),
      seconds: (name, value, dimensions) => {
        const single = metrics.singleMetric();
        for (const [key, dimension] of Object.entries(dimensions ?? {}))
          single.addDimension(key, dimension);
        single.addMetric(name, MetricUnit.Seconds, value);
      }
    },
    clock,
    newRunId: () => newRunId(clock(), () => randomBytes(4).toString("hex"))
  };
}
function unconfiguredHistory() {
  return new Proxy({}, {
    get: () => async () => {
      throw new Error("no run-history table is configured (HISTORY_TABLE)");
    }
  });
}

// functions/backup.ts
var runtime = createLambdaRuntime("backup", process.env);
async function backup(event, context) {
  const invocation = parseScheduledEvent(event, runtime.config.catalog);
  const schedule = resolveSchedule(runtime.config.catalog, invocation.schedule);
  const dryRun = invocation.dryRun || runtime.config.dryRun;
  const runId = runtime.newRunId();
  const slot = slotOf(schedule, invocation.scheduledTime, runtime.clock());
  const outcome = await runOnce(
    { job: "backup", runId, trigger: "schedule", dryRun, schedule: schedule.name, slot },
    slotRunDependencies(runtime, { historyRequired: false }),
    (run) => runBackupJob(
      {
        schedule: schedule.name,
        scheduledTime: new Date(slot),
        dryRun,
        trigger: run.trigger,
        resuming: run.resuming,
        historyUnavailable: run.historyUnavailable,
        remainingMs: remainingTime(context),
        safetyMarginMs: runtime.config.safetyMarginMs
      },
      {
        ec2: runtime.ec2,
        config: runtime.config,
        clock: runtime.clock,
        runId,
        logger: runtime.logger,
        metrics: runtime.metricsPort,
        journal: runtime.journal
      }
    )
  );
  return answer(outcome, runtime.metricsPort);
}
var handler = middy(backup).use(injectLambdaContext(runtime.logger, { resetKeys: true })).use(captureLambdaHandler(runtime.tracer)).use(logMetrics(runtime.metrics, { captureColdStartMetric: true }));
export {
  handler
};
