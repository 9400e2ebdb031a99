import { z } from 'zod';
import { InvalidEventError } from '../domain/errors.ts';
import type { ScheduleCatalog } from '../domain/schedules.ts';

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
] as const;
export type OpsAction = (typeof OPS_ACTIONS)[number];

/** The largest console payload accepted; the Lambda console allows far more. */
export const MAX_PAYLOAD_BYTES = 16_384;

const instanceId = z
  .string({ error: 'must be an instance id such as i-0123456789abcdef0' })
  .regex(/^i-[0-9a-f]{8}([0-9a-f]{9})?$/, 'must be an instance id such as i-0123456789abcdef0');
const volumeId = z
  .string({ error: 'must be a volume id such as vol-0123456789abcdef0' })
  .regex(/^vol-[0-9a-f]{8}([0-9a-f]{9})?$/, 'must be a volume id such as vol-0123456789abcdef0');
const snapshotId = z
  .string({ error: 'must be a snapshot id such as snap-0123456789abcdef0' })
  .regex(
    /^snap-[0-9a-f]{8}([0-9a-f]{9})?$/,
    'must be a snapshot id such as snap-0123456789abcdef0',
  );
const imageId = z
  .string({ error: 'must be an AMI id such as ami-0123456789abcdef0' })
  .regex(/^ami-[0-9a-f]{8}([0-9a-f]{9})?$/, 'must be an AMI id such as ami-0123456789abcdef0');
const deviceName = z
  .string({ error: 'must be a device name such as /dev/sdf or xvdf' })
  .regex(
    /^(\/dev\/)?(sd[a-z][0-9]*|xvd[a-z][0-9]*|nvme[0-9]+n[0-9]+)$/,
    'must be a device name such as /dev/sdf or xvdf',
  );
const availabilityZone = z
  .string({ error: 'must be an availability zone such as eu-west-1a' })
  .regex(/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/, 'must be an availability zone such as eu-west-1a');
const scheduleName = z
  .string({ error: 'must be a schedule name' })
  .regex(/^[A-Za-z][A-Za-z0-9-]{0,31}$/, 'must be a schedule name such as daily');
const dryRun = z.boolean({ error: 'must be true or false' }).optional();
const confirm = z.boolean({ error: 'must be true or false' }).optional();
const runId = z
  .string({ error: 'must be a run id such as 20261123T030002Z-9f3a12bc' })
  .regex(/^\d{8}T\d{6}Z-[0-9a-f]{8}$/, 'must be a run id such as 20261123T030002Z-9f3a12bc');
const instanceType = z
  .string({ error: 'must be an instance type such as t3.micro' })
  .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'must be an instance type such as t3.micro');
const name = z
  .string({ error: 'must be a Name tag value' })
  .min(1, 'must not be empty')
  .max(255, 'must be at most 255 characters');

const schemas = {
  backup: z
    .object({
      action: z.literal('backup'),
      instanceIds: z
        .array(instanceId, { error: 'must be a list of instance ids' })
        .min(1, 'must name at least one instance')
        .max(100, 'must name at most 100 instances')
        .optional(),
      schedule: scheduleName.optional(),
      dryRun,
    })
    .strict(),
  retention: z
    .object({
      action: z.literal('retention'),
      schedule: scheduleName,
      dryRun,
      maxDeletions: z
        .number({ error: 'must be a whole number of deletions' })
        .int('must be a whole number of deletions')
        .min(0, 'must be 0 or more')
        .max(1_000_000, 'must be at most 1000000')
        .optional(),
      confirm,
    })
    .strict(),
  plan: z.object({ action: z.literal('plan'), schedule: scheduleName.optional() }).strict(),
  report: z.object({ action: z.literal('report'), schedule: scheduleName.optional() }).strict(),
  'restore-volume': z
    .object({
      action: z.literal('restore-volume'),
      snapshotId: snapshotId.optional(),
      volumeId: volumeId.optional(),
      instanceId: instanceId.optional(),
      device: deviceName.optional(),
      availabilityZone: availabilityZone.optional(),
      volumeType: z
        .enum(['gp2', 'gp3', 'io1', 'io2', 'st1', 'sc1', 'standard'], {
          error: 'must be one of gp2, gp3, io1, io2, st1, sc1, standard',
        })
        .optional(),
      sizeGiB: z
        .number({ error: 'must be a whole number of GiB' })
        .int('must be a whole number of GiB')
        .min(1, 'must be at least 1')
        .max(65_536, 'must be at most 65536')
        .optional(),
      iops: z
        .number({ error: 'must be a whole number' })
        .int('must be a whole number')
        .min(100)
        .max(256_000)
        .optional(),
      kmsKeyId: z
        .string({ error: 'must be a KMS key id, alias or ARN' })
        .regex(
          /^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/[A-Za-z0-9/_-]+|alias\/[A-Za-z0-9/_-]+|[0-9a-f-]{36})$/,
          'must be a KMS key id, alias or ARN',
        )
        .optional(),
      attachTo: z
        .object(
          { instanceId, device: deviceName },
          { error: 'must be {"instanceId": "i-...", "device": "/dev/sdf"}' },
        )
        .strict()
        .optional(),
      dryRun,
      confirm,
    })
    .strict(),
  'duplicate-instance': z
    .object({
      action: z.literal('duplicate-instance'),
      imageId: imageId.optional(),
      instanceId: instanceId.optional(),
      instanceType: instanceType.optional(),
      name: name.optional(),
      dryRun,
      confirm,
    })
    .strict(),
  'restore-instance': z
    .object({
      action: z.literal('restore-instance'),
      runId,
      instanceId,
      instanceType: instanceType.optional(),
      name: name.optional(),
      dryRun,
      confirm,
    })
    .strict(),
  'restore-drill': z
    .object({
      action: z.literal('restore-drill'),
      volumeId: volumeId.optional(),
      snapshotId: snapshotId.optional(),
      availabilityZone: availabilityZone.optional(),
      dryRun,
    })
    .strict(),
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
        `unexpected field(s) ${issue.keys.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')} for action "${action}"; it takes ${allowed}`,
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
  const needConfirm = (
    what: string,
    dryRun: boolean | undefined,
    confirmed: boolean | undefined,
  ) => {
    if (dryRun !== true && confirmed !== true) {
      throw new InvalidEventError(`${what} needs "confirm": true (or "dryRun": true to preview)`);
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
    case 'restore-volume': {
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
      return;
    }
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
  }
}
