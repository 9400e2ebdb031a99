import { InvalidEventError } from '../domain/errors.ts';
import { MAX_RESTORE_TEST_SAMPLE, VOLUME_INITIALIZATION_RATE } from '../domain/restoreTestPlan.ts';
import type { ScheduleCatalog } from '../domain/schedules.ts';
import * as z from '../domain/schema.ts';
import { listFields } from './events.ts';

/** Every console action, in the order the README lists them. */
export const OPS_ACTIONS = [
  'backup',
  'retention',
  'plan',
  'report',
  'restore-volume',
  'duplicate-instance',
  'restore-instance',
  'restore-drill',
  'restore-test',
] as const;
export type OpsAction = (typeof OPS_ACTIONS)[number];

/** The largest console payload accepted; the Lambda console allows far more. */
export const MAX_PAYLOAD_BYTES = 16_384;

/** A string matching `pattern`, with one message for a wrong type and a wrong form. */
const matching = (pattern: RegExp, message: string) =>
  z.string({ error: message }).check(z.regex(pattern, message));
const whole = (message: string, min: number, max: number) =>
  z
    .number({ error: message })
    .check(
      z.int(message),
      z.minimum(min, min === 0 ? 'must be 0 or more' : `must be at least ${min}`),
      z.maximum(max, `must be at most ${max}`),
    );

/** An EC2 id: the prefix, then 8 or 17 hex digits. */
const ec2Id = (prefix: string, what: string) =>
  matching(
    new RegExp(`^${prefix}-[0-9a-f]{8}([0-9a-f]{9})?$`),
    `must be ${what} such as ${prefix}-0123456789abcdef0`,
  );
const instanceId = ec2Id('i', 'an instance id');
const volumeId = ec2Id('vol', 'a volume id');
const snapshotId = ec2Id('snap', 'a snapshot id');
const imageId = ec2Id('ami', 'an AMI id');
const deviceName = matching(
  /^(\/dev\/)?(sd[a-z][0-9]*|xvd[a-z][0-9]*|nvme[0-9]+n[0-9]+)$/,
  'must be a device name such as /dev/sdf or xvdf',
);
const availabilityZone = matching(
  /^[a-z]{2}(-[a-z]+)+-\d[a-z]$/,
  'must be an availability zone such as eu-west-1a',
);
const scheduleName = matching(
  /^[A-Za-z][A-Za-z0-9-]{0,31}$/,
  'must be a schedule name such as daily',
);
const runId = matching(
  /^\d{8}T\d{6}Z-[0-9a-f]{8}$/,
  'must be a run id such as 20261123T030002Z-9f3a12bc',
);
const instanceType = matching(
  /^[a-z][a-z0-9-]*\.[a-z0-9]+$/,
  'must be an instance type such as t3.micro',
);
const kmsKeyId = matching(
  /^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/[A-Za-z0-9/_-]+|alias\/[A-Za-z0-9/_-]+|[0-9a-f-]{36})$/,
  'must be a KMS key id, alias or ARN',
);
const name = z
  .string({ error: 'must be a Name tag value' })
  .check(z.minLength(1, 'must not be empty'), z.maxLength(255, 'must be at most 255 characters'));
const flag = z.optional(z.boolean({ error: 'must be true or false' }));

const schemas = {
  backup: z.strictObject({
    action: z.literal('backup'),
    instanceIds: z.optional(
      z
        .array(instanceId, { error: 'must be a list of instance ids' })
        .check(
          z.minLength(1, 'must name at least one instance'),
          z.maxLength(100, 'must name at most 100 instances'),
        ),
    ),
    schedule: z.optional(scheduleName),
    dryRun: flag,
  }),
  retention: z.strictObject({
    action: z.literal('retention'),
    schedule: scheduleName,
    dryRun: flag,
    maxDeletions: z.optional(whole('must be a whole number of deletions', 0, 1_000_000)),
    confirm: flag,
  }),
  plan: z.strictObject({ action: z.literal('plan'), schedule: z.optional(scheduleName) }),
  report: z.strictObject({
    action: z.literal('report'),
    schedule: z.optional(scheduleName),
    /** Also return the coverage page's data (and write the page to REPORT_BUCKET). */
    page: flag,
    days: z.optional(whole('must be a whole number of days', 1, 400)),
  }),
  'restore-volume': z.strictObject({
    action: z.literal('restore-volume'),
    snapshotId: z.optional(snapshotId),
    volumeId: z.optional(volumeId),
    instanceId: z.optional(instanceId),
    device: z.optional(deviceName),
    availabilityZone: z.optional(availabilityZone),
    volumeType: z.optional(
      z.enum(['gp2', 'gp3', 'io1', 'io2', 'st1', 'sc1', 'standard'], {
        error: 'must be one of gp2, gp3, io1, io2, st1, sc1, standard',
      }),
    ),
    sizeGiB: z.optional(whole('must be a whole number of GiB', 1, 65_536)),
    iops: z.optional(whole('must be a whole number', 100, 256_000)),
    throughput: z.optional(whole('must be a whole number of MiB/s', 125, 2000)),
    kmsKeyId: z.optional(kmsKeyId),
    attachTo: z.optional(
      z.strictObject(
        { instanceId, device: deviceName },
        {
          error: (issue) =>
            issue.code === 'invalid_type'
              ? 'must be {"instanceId": "i-...", "device": "/dev/sdf"}'
              : undefined,
        },
      ),
    ),
    dryRun: flag,
    confirm: flag,
    /** From the archive tier: `{"days": N}` or `"permanent"`, checked by readTierRestore. */
    archiveRestore: z.optional(z.unknown()),
  }),
  'duplicate-instance': z.strictObject({
    action: z.literal('duplicate-instance'),
    imageId: z.optional(imageId),
    instanceId: z.optional(instanceId),
    instanceType: z.optional(instanceType),
    name: z.optional(name),
    dryRun: flag,
    confirm: flag,
  }),
  'restore-instance': z.strictObject({
    action: z.literal('restore-instance'),
    runId,
    instanceId,
    instanceType: z.optional(instanceType),
    name: z.optional(name),
    dryRun: flag,
    confirm: flag,
  }),
  'restore-drill': z.strictObject({
    action: z.literal('restore-drill'),
    volumeId: z.optional(volumeId),
    snapshotId: z.optional(snapshotId),
    availabilityZone: z.optional(availabilityZone),
    dryRun: flag,
    /** From the archive tier: `{"days": N}` or `"permanent"`, checked by readTierRestore. */
    archiveRestore: z.optional(z.unknown()),
  }),
  'restore-test': z.strictObject({
    action: z.literal('restore-test'),
    schedule: z.optional(scheduleName),
    instanceIds: z.optional(
      z
        .array(instanceId, { error: 'must be a list of instance ids' })
        .check(
          z.minLength(1, 'must name at least one instance'),
          z.maxLength(
            MAX_RESTORE_TEST_SAMPLE,
            `must name at most ${MAX_RESTORE_TEST_SAMPLE} instances`,
          ),
        ),
    ),
    instances: z.optional(
      z.union(
        [
          z.literal('all'),
          whole('must be "all" or a whole number of instances', 1, MAX_RESTORE_TEST_SAMPLE),
        ],
        {
          error: `must be "all" or a whole number of instances from 1 to ${MAX_RESTORE_TEST_SAMPLE}`,
        },
      ),
    ),
    volumeInitializationRate: z.optional(
      whole(
        'must be a whole number of MiB/s',
        VOLUME_INITIALIZATION_RATE.min,
        VOLUME_INITIALIZATION_RATE.max,
      ),
    ),
    dryRun: flag,
  }),
} as const;

/** A validated console payload. */
export type OpsPayload = { [K in OpsAction]: z.infer<(typeof schemas)[K]> }[OpsAction];

/**
 * Validates a console payload. An unknown action lists the valid ones; a missing field,
 * wrong type, bad id, unexpected field, or a destructive action without `"confirm": true`
 * (unless `dryRun`) is rejected naming the field and what is expected. Nothing is done
 * for a rejected payload.
 *
 * @throws {InvalidEventError}
 * @example
 * parseOpsPayload({ action: 'report' }, catalog); // { action: 'report' }
 */
export function parseOpsPayload(payload: unknown, catalog: ScheduleCatalog): OpsPayload {
  const actions = OPS_ACTIONS.join(', ');
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new InvalidEventError(
      `the payload must be a JSON object with an "action"; actions: ${actions}`,
    );
  }
  const size = Buffer.byteLength(JSON.stringify(payload));
  if (size > MAX_PAYLOAD_BYTES) {
    throw new InvalidEventError(
      `the payload is ${size} bytes; at most ${MAX_PAYLOAD_BYTES} are accepted`,
    );
  }
  const action = (payload as { action?: unknown }).action;
  if (action === undefined)
    throw new InvalidEventError(`field "action" is missing; actions: ${actions}`);
  if (typeof action !== 'string' || !(OPS_ACTIONS as readonly string[]).includes(action)) {
    const shown = typeof action === 'string' ? JSON.stringify(action.slice(0, 40)) : typeof action;
    throw new InvalidEventError(`field "action": ${shown} is not an action; actions: ${actions}`);
  }
  const schema = schemas[action as OpsAction];
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue?.code === 'unrecognized_keys') {
      const allowed = Object.keys(schema.shape).join(', ');
      throw new InvalidEventError(
        `unexpected field(s) ${listFields(issue.keys.map((k) => [...issue.path, k].join('.')))} for action "${action}"; it takes ${allowed}`,
      );
    }
    const field = issue?.path.join('.') || 'payload';
    throw new InvalidEventError(
      `field "${field}" ${issue?.message ?? 'is invalid'} (action "${action}")`,
    );
  }
  const data = parsed.data as OpsPayload;
  checkRules(data, catalog);
  return data;
}

function checkRules(data: OpsPayload, catalog: ScheduleCatalog): void {
  const known = [...catalog.schedules.keys()];
  const scheduleOf = (value: string | undefined, allowManual: boolean) => {
    if (value === undefined) return;
    const lowered = value.toLowerCase();
    if (!catalog.schedules.has(lowered) && !(allowManual && lowered === 'manual')) {
      throw new InvalidEventError(
        `field "schedule": "${value}" is not a known schedule; known: ${known.join(', ')}`,
      );
    }
  };
  switch (data.action) {
    case 'backup':
      scheduleOf(data.schedule, false);
      if ((data.instanceIds === undefined) === (data.schedule === undefined)) {
        throw new InvalidEventError(
          'action "backup" takes either "instanceIds" (a list of instance ids) or "schedule" (back up everything tagged for it), not both and not neither',
        );
      }
      return;
    case 'retention':
      scheduleOf(data.schedule, true);
      if (data.maxDeletions !== undefined)
        needConfirm(
          'field "maxDeletions" lifts the deletion cap for one run and',
          data.dryRun,
          data.confirm,
        );
      return;
    case 'plan':
    case 'report':
      scheduleOf(data.schedule, false);
      return;
    case 'restore-volume':
      checkRestoreVolume(data);
      return;
    case 'duplicate-instance':
      if ((data.imageId === undefined) === (data.instanceId === undefined)) {
        throw new InvalidEventError(
          'action "duplicate-instance" takes exactly one of "imageId" (an AMI) or "instanceId" (its newest managed AMI)',
        );
      }
      needConfirm(
        'action "duplicate-instance" launches an instance and',
        data.dryRun,
        data.confirm,
      );
      return;
    case 'restore-instance':
      needConfirm(
        'action "restore-instance" registers an AMI, launches an instance and',
        data.dryRun,
        data.confirm,
      );
      return;
    case 'restore-drill':
      if ((data.volumeId === undefined) === (data.snapshotId === undefined)) {
        throw new InvalidEventError(
          'action "restore-drill" takes exactly one of "volumeId" (its newest completed snapshot) or "snapshotId"',
        );
      }
      return;
    case 'restore-test':
      scheduleOf(data.schedule, false);
      if (data.instanceIds && data.instances !== undefined)
        throw new InvalidEventError(
          'action "restore-test" takes "instanceIds" (test exactly these) or "instances" (how many to pick, the least recently tested first), not both',
        );
      return;
  }
}

/** A restore-volume's source, device, attachment (confirmed), IOPS and throughput. */
function checkRestoreVolume(data: Extract<OpsPayload, { action: 'restore-volume' }>): void {
  const sources = [data.snapshotId, data.volumeId, data.instanceId].filter(
    (v) => v !== undefined,
  ).length;
  if (sources !== 1) {
    throw new InvalidEventError(
      'action "restore-volume" takes exactly one source: "snapshotId", "volumeId", or "instanceId" with "device"',
    );
  }
  if ((data.instanceId === undefined) !== (data.device === undefined)) {
    throw new InvalidEventError(
      'action "restore-volume": "instanceId" and "device" go together (the instance device whose newest snapshot to restore)',
    );
  }
  if (data.attachTo)
    needConfirm('attaching the restored volume ("attachTo")', data.dryRun, data.confirm);
  checkIops(data.volumeType ?? 'gp3', data.iops);
  if (data.throughput !== undefined && (data.volumeType ?? 'gp3') !== 'gp3')
    throw new InvalidEventError(
      `field "throughput" is only for volumeType gp3 (125 to 2000 MiB/s); remove it for ${data.volumeType}`,
    );
}

/** A change beyond the ordinary needs `confirm` (or a dry run to preview it). */
function needConfirm(
  what: string,
  dryRun: boolean | undefined,
  confirmed: boolean | undefined,
): void {
  if (dryRun !== true && confirmed !== true) {
    throw new InvalidEventError(`${what} needs "confirm": true (or "dryRun": true to preview)`);
  }
}

/**
 * The IOPS CreateVolume accepts per volume type (EC2 API reference, CreateVolume `Iops`):
 * required for io1 and io2, optional for gp3 (3,000 when absent), refused for the others.
 * gp3's ceiling is the current one (80,000, with throughput up to 2,000 MiB/s); where
 * a region still has the older 16,000, EC2's refusal is reported as the restore's error.
 */
export const IOPS_RANGES: Readonly<
  Record<string, { min: number; max: number; required: boolean; perGiB: number }>
> = {
  io1: { min: 100, max: 64_000, required: true, perGiB: 50 },
  io2: { min: 100, max: 256_000, required: true, perGiB: 1000 },
  gp3: { min: 3000, max: 80_000, required: false, perGiB: 500 },
};

/**
 * Checks `iops` against the volume type, as CreateVolume would, naming the field and
 * the range; the size ratio is checked once the snapshot's size is known.
 *
 * @throws {InvalidEventError}
 * @example
 * checkIops('io2', undefined); // throws: field "iops" is required for volumeType io2: a whole number from 100 to 256000
 */
export function checkIops(volumeType: string, iops: number | undefined): void {
  const range = IOPS_RANGES[volumeType];
  if (!range) {
    if (iops !== undefined)
      throw new InvalidEventError(
        `field "iops" is not accepted for volumeType ${volumeType} (only gp3, io1 and io2 take it); remove it or choose one of those`,
      );
    return;
  }
  const span = `a whole number from ${range.min} to ${range.max}`;
  if (iops === undefined) {
    if (range.required)
      throw new InvalidEventError(
        `field "iops" is required for volumeType ${volumeType}: ${span} (at most ${range.perGiB} per GiB of the volume)`,
      );
    return;
  }
  if (iops < range.min || iops > range.max)
    throw new InvalidEventError(
      `field "iops": ${iops} is out of range for volumeType ${volumeType}: ${span}`,
    );
}
