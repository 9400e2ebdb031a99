import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidEventError } from '../../../lib/domain/errors.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import {
  MAX_PAYLOAD_BYTES,
  OPS_ACTIONS,
  type OpsAction,
  parseOpsPayload,
} from '../../../lib/jobs/opsPayload.ts';

const CATALOG = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const PROPERTY_RUNS = { numRuns: 500 };

const INSTANCE = 'i-0123456789abcdef0';
const OTHER_INSTANCE = 'i-0fedcba9876543210';
const VOLUME = 'vol-0123456789abcdef0';
const SNAPSHOT = 'snap-0123456789abcdef0';
const IMAGE = 'ami-0123456789abcdef0';
const RUN_ID = '20261123T030002Z-9f3a12bc';

/** What every message about the action lists, in the README's order. */
const ACTIONS_LIST =
  'actions: backup, retention, plan, report, restore-volume, duplicate-instance, restore-instance, restore-drill, restore-test';
const KNOWN_SCHEDULES = 'known: daily, weekly, monthly';

/** The fields each action takes: the payload contract of the issue. */
const FIELDS: Record<OpsAction, readonly string[]> = {
  backup: ['action', 'instanceIds', 'schedule', 'dryRun'],
  retention: ['action', 'schedule', 'dryRun', 'maxDeletions', 'confirm'],
  plan: ['action', 'schedule'],
  report: ['action', 'schedule'],
  'restore-volume': [
    'action',
    'snapshotId',
    'volumeId',
    'instanceId',
    'device',
    'availabilityZone',
    'volumeType',
    'sizeGiB',
    'iops',
    'kmsKeyId',
    'attachTo',
    'dryRun',
    'confirm',
  ],
  'duplicate-instance': [
    'action',
    'imageId',
    'instanceId',
    'instanceType',
    'name',
    'dryRun',
    'confirm',
  ],
  'restore-instance': [
    'action',
    'runId',
    'instanceId',
    'instanceType',
    'name',
    'dryRun',
    'confirm',
  ],
  'restore-drill': ['action', 'volumeId', 'snapshotId', 'availabilityZone', 'dryRun'],
  'restore-test': [
    'action',
    'schedule',
    'instanceIds',
    'instances',
    'volumeInitializationRate',
    'dryRun',
  ],
};
const EVERY_FIELD = [...new Set(Object.values(FIELDS).flat())];

const EVENTS_DIR = new URL('../../../events/', import.meta.url);
const SAMPLE_FILES = readdirSync(EVENTS_DIR)
  .filter((f) => /^ops-.*\.json$/.test(f))
  .sort();
const SAMPLES: [string, Record<string, unknown>][] = SAMPLE_FILES.map((file) => [
  file,
  JSON.parse(readFileSync(new URL(file, EVENTS_DIR), 'utf8')) as Record<string, unknown>,
]);

/** The error thrown for a payload, or a failure when none is. */
function rejectionOf(payload: unknown): unknown {
  try {
    parseOpsPayload(payload, CATALOG);
  } catch (error) {
    return error;
  }
  return expect.fail(`payload was accepted: ${JSON.stringify(payload)?.slice(0, 200)}`);
}

function restoreVolume(fields: Record<string, unknown>): Record<string, unknown> {
  return { action: 'restore-volume', snapshotId: SNAPSHOT, ...fields };
}

type BadCase = readonly [what: string, payload: unknown, expected: readonly (string | RegExp)[]];

const instanceIdExpected = 'must be an instance id such as i-0123456789abcdef0';
const volumeIdExpected = 'must be a volume id such as vol-0123456789abcdef0';
const snapshotIdExpected = 'must be a snapshot id such as snap-0123456789abcdef0';
const imageIdExpected = 'must be an AMI id such as ami-0123456789abcdef0';
const runIdExpected = 'must be a run id such as 20261123T030002Z-9f3a12bc';
const deviceExpected = 'must be a device name such as /dev/sdf or xvdf';
const zoneExpected = 'must be an availability zone such as eu-west-1a';
const kmsExpected = 'must be a KMS key id, alias or ARN';
const scheduleExpected = 'must be a schedule name';
const booleanExpected = 'must be true or false';
const notObject = ['must be a JSON object with an "action"', ACTIONS_LIST];
const notAnAction = ['field "action"', 'is not an action', ACTIONS_LIST];
const field = (name: string, expected: string) => [`field "${name}" ${expected}`];
const unexpected = (action: string, ...keys: string[]) => [
  ...keys.map((k) => `"${k}"`),
  /unexpected field/,
  `for action "${action}"`,
  `it takes ${FIELDS[action as OpsAction].join(', ')}`,
];
const unknownSchedule = (name: string) => [
  'field "schedule"',
  `"${name}" is not a known schedule`,
  KNOWN_SCHEDULES,
];
const needsConfirm = (what: string) => [what, 'needs "confirm": true', '"dryRun": true'];

const BAD_PAYLOADS: readonly BadCase[] = [
  // Not an object at all
  ['null', null, notObject],
  ['an array', [], notObject],
  ['an array holding a valid payload', [{ action: 'report' }], notObject],
  ['a string', 'report', notObject],
  ['a JSON text instead of an object', '{"action":"report"}', notObject],
  ['a number', 42, notObject],
  ['a boolean', true, notObject],
  ['undefined (an empty test event box)', undefined, notObject],

  // The action
  ['an empty object', {}, ['field "action" is missing', ACTIONS_LIST]],
  [
    'no action, only a schedule',
    { schedule: 'daily' },
    ['field "action" is missing', ACTIONS_LIST],
  ],
  ['"Action" capitalised', { Action: 'report' }, ['field "action" is missing', ACTIONS_LIST]],
  ['an unknown action', { action: 'restore' }, [...notAnAction, '"restore"']],
  ['an action in the wrong case', { action: 'Backup' }, [...notAnAction, '"Backup"']],
  ['an upper-case action', { action: 'REPORT' }, notAnAction],
  ['an empty action', { action: '' }, [...notAnAction, '""']],
  ['an action with a leading space', { action: ' report' }, notAnAction],
  ['a destructive-sounding action', { action: 'delete-everything' }, notAnAction],
  ['an action with a Cyrillic look-alike letter', { action: 'b\u0430ckup' }, notAnAction],
  ['an emoji action', { action: '\u{1F680}' }, notAnAction],
  ['a numeric action', { action: 5 }, [...notAnAction, 'number']],
  ['a boolean action', { action: true }, [...notAnAction, 'boolean']],
  ['a null action', { action: null }, notAnAction],
  ['an action list', { action: ['report'] }, notAnAction],
  ['an action object', { action: { name: 'report' } }, notAnAction],

  // Injection-looking strings
  ['a shell command in the action', { action: 'report; rm -rf /' }, notAnAction],
  [
    'a shell command after an instance id',
    { action: 'backup', instanceIds: ['i-0123; rm -rf /'] },
    field('instanceIds.0', instanceIdExpected),
  ],
  [
    'a script tag as snapshot id',
    restoreVolume({ snapshotId: '<script>alert(1)</script>' }),
    field('snapshotId', snapshotIdExpected),
  ],
  [
    'SQL as the schedule',
    { action: 'retention', schedule: "' OR 1=1 --", dryRun: true },
    field('schedule', scheduleExpected),
  ],
  [
    'a command substitution as run id',
    { action: 'restore-instance', runId: '$(reboot)', instanceId: INSTANCE, confirm: true },
    field('runId', runIdExpected),
  ],
  [
    'a shell command after a device',
    { action: 'restore-volume', instanceId: INSTANCE, device: '/dev/sdf; reboot' },
    field('device', deviceExpected),
  ],
  [
    'a zone with a trailing newline',
    restoreVolume({ availabilityZone: 'eu-west-1a\n' }),
    field('availabilityZone', zoneExpected),
  ],
  [
    'a path traversal as KMS alias',
    restoreVolume({ kmsKeyId: 'alias/../../etc/passwd' }),
    field('kmsKeyId', kmsExpected),
  ],
  [
    'a script tag as volume id of a drill',
    { action: 'restore-drill', volumeId: '<script>' },
    field('volumeId', volumeIdExpected),
  ],

  // Unicode
  [
    'full-width digits in an instance id',
    { action: 'backup', instanceIds: ['i-\uFF10\uFF11\uFF12\uFF13\uFF14\uFF15\uFF16\uFF17'] },
    field('instanceIds.0', instanceIdExpected),
  ],
  [
    'a non-ASCII letter in a volume id',
    { action: 'restore-drill', volumeId: 'vol-0123456789abcde\u01920' },
    field('volumeId', volumeIdExpected),
  ],
  [
    'an accented schedule name',
    { action: 'plan', schedule: 'daily\u00E9' },
    field('schedule', scheduleExpected),
  ],
  [
    'Arabic-Indic digits in a run id',
    {
      action: 'restore-instance',
      runId: '\u0662\u0660\u0662\u0666\u0661\u0661\u0662\u0663T030002Z-9f3a12bc',
      instanceId: INSTANCE,
      confirm: true,
    },
    field('runId', runIdExpected),
  ],
  ['a Chinese extra field', { action: 'report', 键: 1 }, unexpected('report', '键')],

  // Huge strings and payloads
  ['a 10 000-character action', { action: 'x'.repeat(10_000) }, notAnAction],
  [
    'a 10 000-digit instance id',
    { action: 'backup', instanceIds: [`i-${'0'.repeat(10_000)}`] },
    field('instanceIds.0', instanceIdExpected),
  ],
  [
    'a 256-character Name',
    { action: 'duplicate-instance', imageId: IMAGE, name: 'n'.repeat(256), confirm: true },
    field('name', 'must be at most 255 characters'),
  ],
  [
    'a 33-character schedule name',
    { action: 'report', schedule: 'a'.repeat(33) },
    field('schedule', scheduleExpected),
  ],
  [
    'a payload over 16 KB',
    { action: 'report', padding: 'x'.repeat(17_000) },
    [/the payload is \d+ bytes/, `at most ${MAX_PAYLOAD_BYTES}`],
  ],
  [
    'a payload over 16 KB in bytes though not in characters',
    { action: 'duplicate-instance', imageId: IMAGE, name: '\u00E9'.repeat(8_200), dryRun: true },
    [/the payload is \d+ bytes/, `at most ${MAX_PAYLOAD_BYTES}`],
  ],
  [
    '800 instance ids (over 16 KB)',
    { action: 'backup', instanceIds: Array.from({ length: 800 }, () => INSTANCE) },
    [/the payload is \d+ bytes/, `at most ${MAX_PAYLOAD_BYTES}`],
  ],

  // Extra fields
  [
    'an extra field on backup',
    { action: 'backup', schedule: 'daily', foo: 1 },
    unexpected('backup', 'foo'),
  ],
  [
    'two extra fields',
    { action: 'backup', schedule: 'daily', foo: 1, bar: 2 },
    unexpected('backup', 'foo', 'bar'),
  ],
  [
    '"dryrun" in the wrong case',
    { action: 'backup', schedule: 'daily', dryrun: true },
    unexpected('backup', 'dryrun'),
  ],
  [
    'a field with a trailing space',
    { action: 'retention', schedule: 'daily', 'dryRun ': true },
    unexpected('retention', 'dryRun '),
  ],
  [
    'instanceIds on retention',
    { action: 'retention', schedule: 'daily', instanceIds: [INSTANCE] },
    unexpected('retention', 'instanceIds'),
  ],
  ['dryRun on plan', { action: 'plan', dryRun: true }, unexpected('plan', 'dryRun')],
  ['dryRun on report', { action: 'report', dryRun: true }, unexpected('report', 'dryRun')],
  ['dryRun false on report', { action: 'report', dryRun: false }, unexpected('report', 'dryRun')],
  ['confirm on plan', { action: 'plan', confirm: true }, unexpected('plan', 'confirm')],
  [
    'confirm on a restore drill',
    { action: 'restore-drill', volumeId: VOLUME, confirm: true },
    unexpected('restore-drill', 'confirm'),
  ],
  [
    'imageId on restore-instance',
    {
      action: 'restore-instance',
      runId: RUN_ID,
      instanceId: INSTANCE,
      imageId: IMAGE,
      confirm: true,
    },
    unexpected('restore-instance', 'imageId'),
  ],
  [
    'a 5000-character extra field name',
    { action: 'report', ['k'.repeat(5_000)]: 1 },
    ['"kkkkkkkkkk', /unexpected field/, 'for action "report"'],
  ],

  // Wrong types, field by field
  [
    'instanceIds as a single string',
    { action: 'backup', instanceIds: INSTANCE },
    field('instanceIds', 'must be a list of instance ids'),
  ],
  [
    'instanceIds null',
    { action: 'backup', instanceIds: null },
    field('instanceIds', 'must be a list of instance ids'),
  ],
  [
    'instanceIds as an object',
    { action: 'backup', instanceIds: { 0: INSTANCE } },
    field('instanceIds', 'must be a list of instance ids'),
  ],
  [
    'a number among instanceIds',
    { action: 'backup', instanceIds: [INSTANCE, 5] },
    field('instanceIds.1', instanceIdExpected),
  ],
  ['schedule as a number', { action: 'backup', schedule: 7 }, field('schedule', scheduleExpected)],
  [
    'schedule as a list',
    { action: 'plan', schedule: ['daily'] },
    field('schedule', scheduleExpected),
  ],
  [
    'dryRun as a string',
    { action: 'backup', schedule: 'daily', dryRun: 'true' },
    field('dryRun', booleanExpected),
  ],
  [
    'dryRun as 1',
    { action: 'restore-drill', volumeId: VOLUME, dryRun: 1 },
    field('dryRun', booleanExpected),
  ],
  [
    'confirm as "yes"',
    { action: 'retention', schedule: 'daily', maxDeletions: 5, confirm: 'yes' },
    field('confirm', booleanExpected),
  ],
  [
    'retention without schedule',
    { action: 'retention', dryRun: true },
    field('schedule', scheduleExpected),
  ],
  [
    'a negative maxDeletions',
    { action: 'retention', schedule: 'daily', maxDeletions: -1, confirm: true },
    field('maxDeletions', 'must be 0 or more'),
  ],
  [
    'a fractional maxDeletions',
    { action: 'retention', schedule: 'daily', maxDeletions: 1.5, confirm: true },
    field('maxDeletions', 'must be a whole number of deletions'),
  ],
  [
    'maxDeletions as a string',
    { action: 'retention', schedule: 'daily', maxDeletions: '5', confirm: true },
    field('maxDeletions', 'must be a whole number of deletions'),
  ],
  [
    'a maxDeletions over a million',
    { action: 'retention', schedule: 'daily', maxDeletions: 10_000_000, confirm: true },
    field('maxDeletions', 'must be at most 1000000'),
  ],
  ['a zero sizeGiB', restoreVolume({ sizeGiB: 0 }), field('sizeGiB', 'must be at least 1')],
  ['a negative sizeGiB', restoreVolume({ sizeGiB: -5 }), field('sizeGiB', 'must be at least 1')],
  [
    'a fractional sizeGiB',
    restoreVolume({ sizeGiB: 2.5 }),
    field('sizeGiB', 'must be a whole number of GiB'),
  ],
  [
    'sizeGiB as a string',
    restoreVolume({ sizeGiB: '100' }),
    field('sizeGiB', 'must be a whole number of GiB'),
  ],
  [
    'a sizeGiB over 64 TiB',
    restoreVolume({ sizeGiB: 70_000 }),
    field('sizeGiB', 'must be at most 65536'),
  ],
  ['iops as a word', restoreVolume({ iops: 'fast' }), field('iops', 'must be a whole number')],
  ['fractional iops', restoreVolume({ iops: 3000.5 }), field('iops', 'must be a whole number')],
  [
    'an unknown volume type',
    restoreVolume({ volumeType: 'gp4' }),
    field('volumeType', 'must be one of gp2, gp3, io1, io2, st1, sc1, standard'),
  ],
  [
    'a volume type in capitals',
    restoreVolume({ volumeType: 'GP3' }),
    field('volumeType', 'must be one of gp2, gp3, io1, io2, st1, sc1, standard'),
  ],
  ['a bare word as KMS key', restoreVolume({ kmsKeyId: 'my-key' }), field('kmsKeyId', kmsExpected)],
  [
    'a KMS ARN with a short account',
    restoreVolume({ kmsKeyId: 'arn:aws:kms:eu-west-1:123:key/abc' }),
    field('kmsKeyId', kmsExpected),
  ],
  ['an empty KMS alias', restoreVolume({ kmsKeyId: 'alias/' }), field('kmsKeyId', kmsExpected)],
  [
    'a 35-character KMS key id',
    restoreVolume({ kmsKeyId: '1234abcd-12ab-34cd-56ef-1234567890a' }),
    field('kmsKeyId', kmsExpected),
  ],
  ['a numeric KMS key', restoreVolume({ kmsKeyId: 12345 }), field('kmsKeyId', kmsExpected)],
  [
    'a region as zone',
    restoreVolume({ availabilityZone: 'eu-west-1' }),
    field('availabilityZone', zoneExpected),
  ],
  [
    'a zone in capitals',
    restoreVolume({ availabilityZone: 'EU-WEST-1A' }),
    field('availabilityZone', zoneExpected),
  ],
  [
    'a zone with two letters',
    restoreVolume({ availabilityZone: 'eu-west-1ab' }),
    field('availabilityZone', zoneExpected),
  ],
  [
    'an Azure region as zone',
    { action: 'restore-drill', volumeId: VOLUME, availabilityZone: 'westeurope' },
    field('availabilityZone', zoneExpected),
  ],
  [
    'a numeric zone',
    restoreVolume({ availabilityZone: 7 }),
    field('availabilityZone', zoneExpected),
  ],
  [
    'an IDE device',
    { action: 'restore-volume', instanceId: INSTANCE, device: '/dev/hda' },
    field('device', deviceExpected),
  ],
  [
    'a device with a capital letter',
    { action: 'restore-volume', instanceId: INSTANCE, device: '/dev/sdF' },
    field('device', deviceExpected),
  ],
  [
    'a bare /dev/',
    { action: 'restore-volume', instanceId: INSTANCE, device: '/dev/' },
    field('device', deviceExpected),
  ],
  [
    'a device without a letter',
    { action: 'restore-volume', instanceId: INSTANCE, device: 'xvd' },
    field('device', deviceExpected),
  ],
  [
    'an nvme device without namespace',
    { action: 'restore-volume', instanceId: INSTANCE, device: 'nvme1' },
    field('device', deviceExpected),
  ],
  [
    'a numeric device',
    { action: 'restore-volume', instanceId: INSTANCE, device: 5 },
    field('device', deviceExpected),
  ],
  [
    'attachTo as an instance id',
    restoreVolume({ attachTo: INSTANCE, confirm: true }),
    field('attachTo', 'must be {"instanceId": "i-...", "device": "/dev/sdf"}'),
  ],
  [
    'attachTo with a bad instance id',
    restoreVolume({ attachTo: { instanceId: 'i-bad', device: '/dev/sdf' }, confirm: true }),
    field('attachTo.instanceId', instanceIdExpected),
  ],
  [
    'attachTo without device',
    restoreVolume({ attachTo: { instanceId: INSTANCE }, confirm: true }),
    field('attachTo.device', deviceExpected),
  ],
  [
    'attachTo at a bad device',
    restoreVolume({ attachTo: { instanceId: INSTANCE, device: 'sdf; reboot' }, confirm: true }),
    field('attachTo.device', deviceExpected),
  ],
  [
    'a malformed AMI id',
    { action: 'duplicate-instance', imageId: 'ami-xyz', confirm: true },
    field('imageId', imageIdExpected),
  ],
  [
    'an instance type without family',
    { action: 'duplicate-instance', imageId: IMAGE, instanceType: 'large', confirm: true },
    field('instanceType', 'must be an instance type such as t3.micro'),
  ],
  [
    'an instance type in capitals',
    {
      action: 'restore-instance',
      runId: RUN_ID,
      instanceId: INSTANCE,
      instanceType: 'T3.MICRO',
      confirm: true,
    },
    field('instanceType', 'must be an instance type such as t3.micro'),
  ],
  [
    'a numeric instance type',
    { action: 'duplicate-instance', imageId: IMAGE, instanceType: 3, confirm: true },
    field('instanceType', 'must be an instance type such as t3.micro'),
  ],
  [
    'an empty Name',
    { action: 'duplicate-instance', imageId: IMAGE, name: '', confirm: true },
    field('name', 'must not be empty'),
  ],
  [
    'a numeric Name',
    { action: 'duplicate-instance', imageId: IMAGE, name: 5, confirm: true },
    field('name', 'must be a Name tag value'),
  ],

  // Bad id formats
  [
    'an instance id of nine digits',
    { action: 'backup', instanceIds: ['i-012345678'] },
    field('instanceIds.0', instanceIdExpected),
  ],
  [
    'an instance id in capitals',
    { action: 'backup', instanceIds: ['i-0123456789ABCDEF0'] },
    field('instanceIds.0', instanceIdExpected),
  ],
  [
    'an "I-" prefix',
    { action: 'backup', instanceIds: ['I-0123456789abcdef0'] },
    field('instanceIds.0', instanceIdExpected),
  ],
  [
    'a volume id among instanceIds',
    { action: 'backup', instanceIds: [INSTANCE, VOLUME] },
    field('instanceIds.1', instanceIdExpected),
  ],
  [
    'an instance id with a leading space',
    { action: 'backup', instanceIds: [` ${INSTANCE}`] },
    field('instanceIds.0', instanceIdExpected),
  ],
  [
    'an AMI id as snapshot id',
    restoreVolume({ snapshotId: IMAGE }),
    field('snapshotId', snapshotIdExpected),
  ],
  [
    'a snapshot id of 16 digits',
    restoreVolume({ snapshotId: 'snap-0123456789abcdef' }),
    field('snapshotId', snapshotIdExpected),
  ],
  [
    'a short volume id',
    { action: 'restore-drill', volumeId: 'vol-12345' },
    field('volumeId', volumeIdExpected),
  ],
  [
    'a "snapshot-" prefix',
    { action: 'restore-drill', snapshotId: 'snapshot-0123456789abcdef0' },
    field('snapshotId', snapshotIdExpected),
  ],
  [
    'an AMI id in capitals',
    { action: 'duplicate-instance', imageId: 'AMI-0123456789ABCDEF0', confirm: true },
    field('imageId', imageIdExpected),
  ],
  [
    'a snapshot id as AMI id',
    { action: 'duplicate-instance', imageId: SNAPSHOT, dryRun: true },
    field('imageId', imageIdExpected),
  ],
  [
    'a run id as "latest"',
    { action: 'restore-instance', runId: 'latest', instanceId: INSTANCE, confirm: true },
    field('runId', runIdExpected),
  ],
  [
    'a run id with capital hex',
    {
      action: 'restore-instance',
      runId: '20261123T030002Z-9F3A12BC',
      instanceId: INSTANCE,
      confirm: true,
    },
    field('runId', runIdExpected),
  ],
  [
    'a run id without its suffix',
    { action: 'restore-instance', runId: '20261123T030002Z', instanceId: INSTANCE, confirm: true },
    field('runId', runIdExpected),
  ],
  [
    'a run id with dashes in the date',
    {
      action: 'restore-instance',
      runId: '2026-11-23T030002Z-9f3a12bc',
      instanceId: INSTANCE,
      confirm: true,
    },
    field('runId', runIdExpected),
  ],
  [
    'restore-instance without runId',
    { action: 'restore-instance', instanceId: INSTANCE, confirm: true },
    field('runId', runIdExpected),
  ],
  [
    'restore-instance without instanceId',
    { action: 'restore-instance', runId: RUN_ID, confirm: true },
    field('instanceId', instanceIdExpected),
  ],

  // backup: instances or schedule
  [
    'backup with neither instanceIds nor schedule',
    { action: 'backup' },
    ['"instanceIds"', '"schedule"', 'not neither'],
  ],
  [
    'backup with only dryRun',
    { action: 'backup', dryRun: true },
    ['"instanceIds"', '"schedule"', 'not neither'],
  ],
  [
    'backup with both instanceIds and schedule',
    { action: 'backup', instanceIds: [INSTANCE], schedule: 'daily' },
    ['"instanceIds"', '"schedule"', 'not both'],
  ],
  [
    'empty instanceIds',
    { action: 'backup', instanceIds: [] },
    field('instanceIds', 'must name at least one instance'),
  ],
  [
    '101 instanceIds',
    { action: 'backup', instanceIds: Array.from({ length: 101 }, () => INSTANCE) },
    field('instanceIds', 'must name at most 100 instances'),
  ],

  // Unknown schedules
  [
    'backup of an unknown schedule',
    { action: 'backup', schedule: 'hourly' },
    unknownSchedule('hourly'),
  ],
  [
    'backup of schedule manual',
    { action: 'backup', schedule: 'manual' },
    unknownSchedule('manual'),
  ],
  [
    'retention of an unknown schedule',
    { action: 'retention', schedule: 'yearly', dryRun: true },
    unknownSchedule('yearly'),
  ],
  [
    'plan of an unknown schedule',
    { action: 'plan', schedule: 'hourly' },
    unknownSchedule('hourly'),
  ],
  [
    'report of an unknown schedule',
    { action: 'report', schedule: 'nightly' },
    unknownSchedule('nightly'),
  ],

  // restore-volume sources
  [
    'restore-volume without a source',
    { action: 'restore-volume' },
    [
      '"restore-volume"',
      'exactly one source',
      '"snapshotId"',
      '"volumeId"',
      '"instanceId" with "device"',
    ],
  ],
  [
    'restore-volume with a device only',
    { action: 'restore-volume', device: '/dev/sdf' },
    ['"restore-volume"', 'exactly one source'],
  ],
  [
    'restore-volume from a snapshot and a volume',
    { action: 'restore-volume', snapshotId: SNAPSHOT, volumeId: VOLUME },
    ['"restore-volume"', 'exactly one source'],
  ],
  [
    'restore-volume from a snapshot and an instance device',
    { action: 'restore-volume', snapshotId: SNAPSHOT, instanceId: INSTANCE, device: '/dev/sdf' },
    ['"restore-volume"', 'exactly one source'],
  ],
  [
    'restore-volume from a volume and an instance device',
    { action: 'restore-volume', volumeId: VOLUME, instanceId: INSTANCE, device: '/dev/sdf' },
    ['"restore-volume"', 'exactly one source'],
  ],
  [
    'restore-volume from an instance without device',
    { action: 'restore-volume', instanceId: INSTANCE },
    ['"instanceId" and "device" go together'],
  ],
  [
    'restore-volume from a snapshot with a stray device',
    restoreVolume({ device: '/dev/sdf' }),
    ['"instanceId" and "device" go together'],
  ],

  // Confirmation of destructive or costly actions
  [
    'attachTo without confirm',
    restoreVolume({ attachTo: { instanceId: INSTANCE, device: '/dev/sdf' } }),
    needsConfirm('"attachTo"'),
  ],
  [
    'attachTo with confirm false',
    restoreVolume({ attachTo: { instanceId: INSTANCE, device: '/dev/sdf' }, confirm: false }),
    needsConfirm('"attachTo"'),
  ],
  [
    'attachTo with dryRun false',
    restoreVolume({ attachTo: { instanceId: INSTANCE, device: '/dev/sdf' }, dryRun: false }),
    needsConfirm('"attachTo"'),
  ],
  [
    'duplicate-instance without confirm',
    { action: 'duplicate-instance', imageId: IMAGE },
    needsConfirm('"duplicate-instance"'),
  ],
  [
    'duplicate-instance with confirm false',
    { action: 'duplicate-instance', instanceId: INSTANCE, confirm: false },
    needsConfirm('"duplicate-instance"'),
  ],
  [
    'duplicate-instance with dryRun false',
    { action: 'duplicate-instance', instanceId: INSTANCE, dryRun: false },
    needsConfirm('"duplicate-instance"'),
  ],
  [
    'duplicate-instance from an AMI and an instance',
    { action: 'duplicate-instance', imageId: IMAGE, instanceId: INSTANCE, confirm: true },
    ['"duplicate-instance"', 'exactly one of "imageId"', '"instanceId"'],
  ],
  [
    'duplicate-instance from nothing',
    { action: 'duplicate-instance', confirm: true },
    ['"duplicate-instance"', 'exactly one of "imageId"', '"instanceId"'],
  ],
  [
    'restore-instance without confirm',
    { action: 'restore-instance', runId: RUN_ID, instanceId: INSTANCE },
    needsConfirm('"restore-instance"'),
  ],
  [
    'restore-instance with confirm false',
    { action: 'restore-instance', runId: RUN_ID, instanceId: INSTANCE, confirm: false },
    needsConfirm('"restore-instance"'),
  ],
  [
    'retention maxDeletions without confirm',
    { action: 'retention', schedule: 'daily', maxDeletions: 500 },
    needsConfirm('"maxDeletions"'),
  ],
  [
    'retention maxDeletions 0 with confirm false',
    { action: 'retention', schedule: 'daily', maxDeletions: 0, confirm: false },
    needsConfirm('"maxDeletions"'),
  ],

  // restore-drill sources
  [
    'restore-drill with a volume and a snapshot',
    { action: 'restore-drill', volumeId: VOLUME, snapshotId: SNAPSHOT },
    ['"restore-drill"', 'exactly one of "volumeId"', '"snapshotId"'],
  ],
  [
    'restore-drill with neither',
    { action: 'restore-drill', dryRun: true },
    ['"restore-drill"', 'exactly one of "volumeId"', '"snapshotId"'],
  ],
];

const GOOD_PAYLOADS: readonly [what: string, payload: Record<string, unknown>][] = [
  ['a report of one schedule', { action: 'report', schedule: 'weekly' }],
  ['a plan with the schedule in capitals', { action: 'plan', schedule: 'Daily' }],
  [
    'a backup of 100 instances',
    { action: 'backup', instanceIds: Array.from({ length: 100 }, () => INSTANCE) },
  ],
  [
    'a backup of instances with 8-digit ids',
    { action: 'backup', instanceIds: ['i-0123abcd', OTHER_INSTANCE] },
  ],
  ['a backup of a schedule, dry run', { action: 'backup', schedule: 'monthly', dryRun: true }],
  ['retention of the manual backups', { action: 'retention', schedule: 'manual', dryRun: true }],
  [
    'retention lifting the cap in a dry run',
    { action: 'retention', schedule: 'weekly', maxDeletions: 0, dryRun: true },
  ],
  ['retention without options', { action: 'retention', schedule: 'daily' }],
  [
    'restore-volume with every option',
    restoreVolume({
      availabilityZone: 'eu-west-1b',
      volumeType: 'io2',
      sizeGiB: 65_536,
      iops: 256_000,
      kmsKeyId: '1234abcd-12ab-34cd-56ef-1234567890ab',
      attachTo: { instanceId: OTHER_INSTANCE, device: 'xvdf' },
      confirm: true,
    }),
  ],
  ['restore-volume with a KMS alias', restoreVolume({ kmsKeyId: 'alias/aws/ebs' })],
  [
    'restore-volume with a KMS ARN',
    restoreVolume({
      kmsKeyId: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    }),
  ],
  [
    'restore-volume attaching in a dry run',
    restoreVolume({ attachTo: { instanceId: INSTANCE, device: '/dev/nvme1n1' }, dryRun: true }),
  ],
  [
    'restore-volume from an nvme device',
    { action: 'restore-volume', instanceId: INSTANCE, device: 'nvme0n1' },
  ],
  ['restore-volume in a long zone name', restoreVolume({ availabilityZone: 'ap-southeast-2c' })],
  [
    'duplicate-instance in a dry run',
    { action: 'duplicate-instance', imageId: IMAGE, dryRun: true },
  ],
  [
    'duplicate-instance of another type with a name',
    {
      action: 'duplicate-instance',
      imageId: IMAGE,
      instanceType: 'm7g.2xlarge',
      name: 'web \u00E9 <copy>',
      confirm: true,
    },
  ],
  [
    'restore-instance in a dry run',
    { action: 'restore-instance', runId: RUN_ID, instanceId: INSTANCE, dryRun: true },
  ],
  [
    'restore-drill from a snapshot in a zone',
    { action: 'restore-drill', snapshotId: SNAPSHOT, availabilityZone: 'us-east-1a', dryRun: true },
  ],
];

describe('Function: parseOpsPayload', () => {
  describe('the bad payloads', () => {
    it('has a table of at least 80 of them', () => {
      // Assess
      expect(BAD_PAYLOADS.length).toBeGreaterThanOrEqual(80);
    });

    it.each(BAD_PAYLOADS)(
      'rejects %s, naming the field and what is expected',
      (_what, payload, expected) => {
        // Act
        const error = rejectionOf(payload);

        // Assess
        expect(error).toBeInstanceOf(InvalidEventError);
        const message = (error as InvalidEventError).message;
        for (const part of expected) {
          if (typeof part === 'string') expect(message).toContain(part);
          else expect(message).toMatch(part);
        }
        expect(message.length).toBeLessThan(600);
      },
    );

    it('leaves a rejected payload untouched', () => {
      // Prepare
      const payload = { action: 'duplicate-instance', imageId: IMAGE, name: 'copy' };
      const before = structuredClone(payload);

      // Act
      const error = rejectionOf(payload);

      // Assess
      expect(error).toBeInstanceOf(InvalidEventError);
      expect(payload).toEqual(before);
    });

    it('shows at most 40 characters of an unknown action', () => {
      // Act
      const error = rejectionOf({ action: `restore${'x'.repeat(100)}` });

      // Assess
      expect((error as Error).message).toContain(`"restore${'x'.repeat(33)}"`);
      expect((error as Error).message).not.toContain('x'.repeat(34));
    });

    it('rejects a "__proto__" field parsed from JSON as an extra field', () => {
      // Prepare
      const payload: unknown = JSON.parse('{"action":"report","__proto__":{"schedule":"daily"}}');

      // Act
      const error = rejectionOf(payload);

      // Assess
      expect(error).toBeInstanceOf(InvalidEventError);
      expect((error as Error).message).toContain('"__proto__"');
    });

    it('names the nested field of an extra key inside attachTo', () => {
      // Prepare
      const payload = restoreVolume({
        attachTo: { instanceId: INSTANCE, device: '/dev/sdf', force: true },
        confirm: true,
      });

      // Act
      const error = rejectionOf(payload);

      // Assess
      expect(error).toBeInstanceOf(InvalidEventError);
      expect((error as Error).message).toContain('attachTo.force');
    });

    it.each([
      ['below the minimum', 50, '100'],
      ['above the maximum', 300_000, '256000'],
    ])('says which iops are accepted for a whole number %s', (_what, iops, bound) => {
      // Act
      const error = rejectionOf(restoreVolume({ iops }));

      // Assess
      expect(error).toBeInstanceOf(InvalidEventError);
      expect((error as Error).message).toContain('field "iops"');
      expect((error as Error).message).toContain(bound);
    });
  });

  describe('the sample payloads in events/', () => {
    it('include one for every action', () => {
      // Act
      const actions = new Set(SAMPLES.map(([, payload]) => payload.action));

      // Assess
      expect([...actions].sort()).toEqual([...OPS_ACTIONS].sort());
    });

    it.each(SAMPLES)('parse %s unchanged', (_file, payload) => {
      // Prepare
      const before = structuredClone(payload);

      // Act
      const parsed = parseOpsPayload(payload, CATALOG);

      // Assess
      expect(parsed).toEqual(before);
      expect(payload).toEqual(before);
    });
  });

  describe('the good payloads', () => {
    it.each(GOOD_PAYLOADS)('accepts %s as given', (_what, payload) => {
      // Act
      const parsed = parseOpsPayload(payload, CATALOG);

      // Assess
      expect(parsed).toEqual(payload);
    });

    it.each(OPS_ACTIONS.filter((a) => a !== 'plan' && a !== 'report'))(
      'accepts "dryRun": true on %s',
      (action) => {
        // Prepare
        const sample = SAMPLES.find(([, p]) => p.action === action)?.[1] ?? {};
        const { confirm: _confirm, ...payload }: Record<string, unknown> = {
          ...sample,
          dryRun: true,
        };

        // Act
        const parsed = parseOpsPayload(payload, CATALOG);

        // Assess
        expect(parsed).toMatchObject({ action, dryRun: true });
      },
    );
  });

  describe('properties', () => {
    it('throws nothing but InvalidEventError, whatever JSON value it is given', () => {
      fc.assert(
        fc.property(fc.jsonValue(), (value) => {
          try {
            parseOpsPayload(value, CATALOG);
          } catch (error) {
            expect(error).toBeInstanceOf(InvalidEventError);
          }
        }),
        PROPERTY_RUNS,
      );
    });

    it('throws nothing but InvalidEventError for any action with any values in its fields', () => {
      const payload = fc
        .tuple(
          fc.constantFrom(...OPS_ACTIONS),
          fc.dictionary(fc.constantFrom(...EVERY_FIELD), fc.jsonValue({ maxDepth: 2 }), {
            maxKeys: 5,
          }),
        )
        .map(([action, fields]) => ({ ...fields, action }));
      fc.assert(
        fc.property(payload, (value) => {
          try {
            parseOpsPayload(value, CATALOG);
          } catch (error) {
            expect(error).toBeInstanceOf(InvalidEventError);
          }
        }),
        PROPERTY_RUNS,
      );
    });

    it('rejects a valid payload with any extra field, naming it', () => {
      const valid = fc.constantFrom(
        ...SAMPLES.map(([, p]) => p),
        ...GOOD_PAYLOADS.map(([, p]) => p),
      );
      const extraKey = fc.oneof(fc.constantFrom(...EVERY_FIELD), fc.string({ maxLength: 30 }));
      fc.assert(
        fc.property(valid, extraKey, fc.jsonValue({ maxDepth: 2 }), (payload, key, value) => {
          fc.pre(!FIELDS[payload.action as OpsAction].includes(key));

          // Act
          const error = rejectionOf({ ...payload, [key]: value });

          // Assess
          expect(error).toBeInstanceOf(InvalidEventError);
          expect((error as Error).message).toContain(JSON.stringify(key));
        }),
        PROPERTY_RUNS,
      );
    });
  });
});
