/**
 * What AWS authorizes for each recorded call: one IAM request per (action, resource)
 * that the service checks, with the condition keys the call sets (request tags,
 * `ec2:CreateAction`, the resource's tags, `ec2:Add/group`, ...). The recording's
 * stage and tag prefix are read as the packaged stage's, and the local-only "tag right
 * after creating" fallback as the tagging at creation that real AWS gets.
 */
import type { RecordedCall } from '../../lib/aws/callRecorder.ts';
import { ssmRequestsOf } from './ssmRequests.ts';

/** One authorization AWS makes. */
export interface IamRequest {
  /** `service:Action`, e.g. `ec2:DeleteSnapshot`. */
  readonly action: string;
  readonly resource: string;
  /** The account that owns the resource. */
  readonly resourceAccount: string;
  readonly context: Readonly<Record<string, string | readonly string[]>>;
}

/** How the recording maps onto the packaged stack. */
export interface StackNames {
  /** The packaged stage (the template's snapkeeper:deployment value). */
  readonly stage: string;
  /** The template's tag prefix. */
  readonly tagPrefix: string;
  /** The run-history table's name in the template. */
  readonly historyTable: string;
  /** The fan-out queue's name in the template. */
  readonly fanOutQueue: string;
  /** The failed-invocations queue's name in the template. */
  readonly failedInvocationsQueue: string;
  /** The account the recording ran in. */
  readonly account: string;
  /** A region the packaged stage lets EC2 use KMS keys in (its own). */
  readonly kmsRegion?: string | undefined;
}

type Tags = Record<string, string>;
type Loose = Record<string, unknown>;

const field = (value: unknown, key: string): unknown =>
  value && typeof value === 'object' ? (value as Loose)[key] : undefined;
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const text = (value: unknown): string | undefined =>
  typeof value === 'string' ? value : undefined;

/** The account of a role ARN (`arn:aws:iam::111122223333:role/x`). */
export function accountOfRole(arn: string): string {
  return arn.split(':')[4] ?? '';
}

const accountOfKey = (arn: string): string => arn.split(':')[4] ?? '';

/** Tags as the packaged stage would carry them: the prefix and the stage renamed. */
function normalTags(call: RecordedCall, tags: Tags, names: StackNames): Tags {
  const out: Tags = {};
  for (const [key, value] of Object.entries(tags)) {
    const ownKey = key.startsWith(call.caller.tagPrefix);
    const renamed = ownKey ? `${names.tagPrefix}${key.slice(call.caller.tagPrefix.length)}` : key;
    const deploymentTag = renamed === `${names.tagPrefix}deployment`;
    out[renamed] = deploymentTag && value === call.caller.deployment ? names.stage : value;
  }
  return out;
}

const requestTagContext = (tags: Tags): Record<string, string | string[]> => ({
  ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])),
  ...(Object.keys(tags).length > 0 ? { 'aws:TagKeys': Object.keys(tags) } : {}),
});

const resourceTagContext = (tags: Tags): Record<string, string> =>
  Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:ResourceTag/${k}`, v]));

/** Tags set at creation for one resource type, from TagSpecifications. */
function specified(input: unknown, type: string): Tags | undefined {
  const specs = list(field(input, 'TagSpecifications')).filter(
    (s) => field(s, 'ResourceType') === type,
  );
  if (specs.length === 0) return undefined;
  return Object.assign(
    {},
    ...specs.flatMap((s) =>
      list(field(s, 'Tags')).map((t) => ({
        [text(field(t, 'Key')) ?? '']: text(field(t, 'Value')) ?? '',
      })),
    ),
  );
}

/**
 * The local-only fallback (LOCAL_TAG_AFTER_CREATE): a CreateTags right after a
 * CreateImage, RegisterImage or CopyImage on the image it made (and that image's
 * snapshots) is what real AWS gets as TagSpecifications of the creating call. Returns,
 * per index of a creating call, the tags it would have carried, and per index of such a
 * CreateTags, the creating action.
 */
export function foldTagsAfterCreate(calls: readonly RecordedCall[]): {
  lateTags: Map<number, Tags>;
  createAction: Map<number, string>;
} {
  const lateTags = new Map<number, Tags>();
  const createAction = new Map<number, string>();
  const createdBy = new Map<string, number>();
  calls.forEach((call, index) => {
    if (call.service !== 'ec2') return;
    if (['CreateImage', 'RegisterImage', 'CopyImage'].includes(call.action))
      for (const id of call.created ?? []) createdBy.set(id, index);
    if (call.action !== 'CreateTags' || !call.caller.localTagAfterCreate) return;
    const resources = list(field(call.input, 'Resources')).map(text);
    const creator = resources
      .map((id) => (id ? createdBy.get(id) : undefined))
      .find((i) => i !== undefined);
    if (creator === undefined) return;
    const creating = calls[creator];
    if (!creating || creating.caller.functionName !== call.caller.functionName) return;
    const tags = Object.fromEntries(
      list(field(call.input, 'Tags')).map((t) => [
        text(field(t, 'Key')) ?? '',
        text(field(t, 'Value')) ?? '',
      ]),
    );
    lateTags.set(creator, tags);
    createAction.set(index, creating.action);
  });
  return { lateTags, createAction };
}

/**
 * The IAM requests AWS makes for one recorded call.
 *
 * @example
 * const requests = requestsOf(call, names, { lateTags: undefined, createAction: undefined });
 */
export function requestsOf(
  call: RecordedCall,
  names: StackNames,
  fold: { lateTags?: Tags | undefined; createAction?: string | undefined } = {},
): IamRequest[] {
  const account = call.assumedRole ? accountOfRole(call.assumedRole) : names.account;
  const region = call.region;
  const homeRegion = call.caller.region;
  const input = call.input;
  const requests: IamRequest[] = [];
  const add = (
    action: string,
    resource: string,
    context: Record<string, string | readonly string[]> = {},
    resourceAccount = account,
  ) => requests.push({ action, resource, resourceAccount, context });
  const tagsOf = (id: string | undefined): Tags => {
    const known = id ? call.resourceTags?.[id] : undefined;
    return normalTags(call, known ?? {}, names);
  };
  const snapshot = (id = 'snap-00000000000000000') => `arn:aws:ec2:${region}::snapshot/${id}`;
  const image = (id = 'ami-00000000000000000') => `arn:aws:ec2:${region}::image/${id}`;
  const inAccount = (type: string, id: string) => `arn:aws:ec2:${region}:${account}:${type}/${id}`;

  if (call.service === 'ec2') {
    const ec2 = (action: string) => `ec2:${action}`;
    // Tags requested at creation (or, in the local fallback, right after).
    const requested = (type: string): Tags | undefined => {
      const tags = specified(input, type) ?? (type === 'image' ? fold.lateTags : undefined);
      return tags ? normalTags(call, tags, names) : undefined;
    };
    const created = call.created ?? [];
    const tagOnCreate = (resource: string, type: string) => {
      const tags = requested(type);
      if (tags)
        add('ec2:CreateTags', resource, {
          'ec2:CreateAction': call.action,
          ...requestTagContext(tags),
        });
    };
    const createdResource = (type: string, make: (id?: string) => string, ids = created) => {
      const targets = ids.length > 0 ? ids.map((id) => make(id)) : [make()];
      for (const resource of targets) {
        add(ec2(call.action), resource, requestTagContext(requested(type) ?? {}));
        tagOnCreate(resource, type);
      }
    };
    switch (call.action) {
      case 'CreateSnapshots': {
        const instance = text(field(field(input, 'InstanceSpecification'), 'InstanceId')) ?? 'i-0';
        add(ec2(call.action), inAccount('instance', instance));
        add(ec2(call.action), inAccount('volume', 'vol-00000000000000000'));
        createdResource('snapshot', snapshot);
        break;
      }
      case 'CreateSnapshot':
        add(ec2(call.action), inAccount('volume', text(field(input, 'VolumeId')) ?? 'vol-0'));
        createdResource('snapshot', snapshot);
        break;
      case 'CreateImage': {
        add(ec2(call.action), inAccount('instance', text(field(input, 'InstanceId')) ?? 'i-0'));
        createdResource('image', image);
        // The snapshots CreateImage makes: tagged from the snapshot specification, or in
        // the local fallback with the image's tags.
        const snapshotTags = specified(input, 'snapshot') ?? fold.lateTags;
        const tags = snapshotTags ? normalTags(call, snapshotTags, names) : {};
        add(ec2(call.action), snapshot(), requestTagContext(tags));
        if (snapshotTags)
          add('ec2:CreateTags', snapshot(), {
            'ec2:CreateAction': call.action,
            ...requestTagContext(tags),
          });
        break;
      }
      case 'RegisterImage': {
        createdResource('image', image);
        for (const m of list(field(input, 'BlockDeviceMappings'))) {
          const id = text(field(field(m, 'Ebs'), 'SnapshotId'));
          if (id) add(ec2(call.action), snapshot(id), resourceTagContext(tagsOf(id)));
        }
        break;
      }
      case 'CopyImage': {
        createdResource('image', image);
        const tags = requested('snapshot') ?? requested('image') ?? {};
        add(ec2(call.action), snapshot(), requestTagContext(tags));
        if (specified(input, 'snapshot') ?? fold.lateTags)
          add('ec2:CreateTags', snapshot(), {
            'ec2:CreateAction': call.action,
            ...requestTagContext(tags),
          });
        break;
      }
      case 'CopySnapshot':
        createdResource('snapshot', snapshot);
        break;
      case 'CreateVolume': {
        createdResource('volume', (id = 'vol-00000000000000000') => inAccount('volume', id));
        const source = text(field(input, 'SnapshotId'));
        if (source) add(ec2(call.action), snapshot(source), resourceTagContext(tagsOf(source)));
        break;
      }
      case 'RunInstances': {
        createdResource('instance', (id = 'i-00000000000000000') => inAccount('instance', id));
        const imageId = text(field(input, 'ImageId'));
        if (imageId) add(ec2(call.action), image(imageId), resourceTagContext(tagsOf(imageId)));
        add(ec2(call.action), inAccount('network-interface', 'eni-00000000000000000'));
        add(ec2(call.action), inAccount('subnet', text(field(input, 'SubnetId')) ?? 'subnet-0'));
        const groups = list(field(input, 'SecurityGroupIds')).map(text);
        for (const group of groups.length > 0 ? groups : ['sg-0'])
          add(ec2(call.action), inAccount('security-group', group ?? 'sg-0'));
        const volumeTags = requested('volume');
        add(
          ec2(call.action),
          inAccount('volume', 'vol-00000000000000000'),
          requestTagContext(volumeTags ?? {}),
        );
        if (volumeTags) tagOnCreate(inAccount('volume', 'vol-00000000000000000'), 'volume');
        const keyName = text(field(input, 'KeyName'));
        if (keyName) add(ec2(call.action), inAccount('key-pair', keyName));
        break;
      }
      case 'AttachVolume':
        add(ec2(call.action), inAccount('instance', text(field(input, 'InstanceId')) ?? 'i-0'));
        add(ec2(call.action), inAccount('volume', text(field(input, 'VolumeId')) ?? 'vol-0'));
        break;
      case 'DeleteVolume': {
        const id = text(field(input, 'VolumeId'));
        add(ec2(call.action), inAccount('volume', id ?? 'vol-0'), resourceTagContext(tagsOf(id)));
        break;
      }
      case 'DeleteSnapshot':
      case 'ModifySnapshotTier':
      case 'RestoreSnapshotTier': {
        const id = text(field(input, 'SnapshotId'));
        add(ec2(call.action), snapshot(id), resourceTagContext(tagsOf(id)));
        break;
      }
      case 'LockSnapshot': {
        const id = text(field(input, 'SnapshotId'));
        const days = field(input, 'LockDuration');
        add(ec2(call.action), snapshot(id), {
          ...resourceTagContext(tagsOf(id)),
          ...(typeof days === 'number' ? { 'ec2:SnapshotLockDuration': String(days) } : {}),
        });
        break;
      }
      case 'DeregisterImage': {
        const id = text(field(input, 'ImageId'));
        add(ec2(call.action), image(id), resourceTagContext(tagsOf(id)));
        break;
      }
      case 'ModifySnapshotAttribute': {
        const id = text(field(input, 'SnapshotId'));
        const op = text(field(input, 'OperationType')) === 'remove' ? 'Remove' : 'Add';
        const groups = list(field(input, 'GroupNames')).map(String);
        const users = list(field(input, 'UserIds')).map(String);
        add(ec2(call.action), snapshot(id), {
          ...resourceTagContext(tagsOf(id)),
          ...(groups.length > 0 ? { [`ec2:${op}/group`]: groups } : {}),
          ...(users.length > 0 ? { [`ec2:${op}/userId`]: users } : {}),
          'ec2:Attribute': text(field(input, 'Attribute')) ?? 'createVolumePermission',
        });
        break;
      }
      case 'ModifyImageAttribute': {
        const id = text(field(input, 'ImageId'));
        add(ec2(call.action), image(id), resourceTagContext(tagsOf(id)));
        break;
      }
      case 'CreateTags': {
        const createAction = fold.createAction;
        for (const id of list(field(input, 'Resources')).map(String)) {
          const resource = id.startsWith('snap-')
            ? snapshot(id)
            : id.startsWith('ami-')
              ? image(id)
              : id.startsWith('vol-')
                ? inAccount('volume', id)
                : inAccount('instance', id);
          const tags = Object.fromEntries(
            list(field(input, 'Tags')).map((t) => [
              text(field(t, 'Key')) ?? '',
              text(field(t, 'Value')) ?? '',
            ]),
          );
          add(ec2(call.action), resource, {
            ...requestTagContext(normalTags(call, tags, names)),
            ...(createAction
              ? { 'ec2:CreateAction': createAction }
              : resourceTagContext(tagsOf(id))),
          });
        }
        break;
      }
      default:
        // Describe*, Get*, List*: wildcard-only actions.
        add(ec2(call.action), '*');
    }
    // EC2 uses the KMS key for the caller when the call names one (or asks for
    // encryption with the account's default key): through EC2 in the call's region.
    const keyId = text(field(input, 'KmsKeyId'));
    if (
      ['CopySnapshot', 'CopyImage', 'CreateVolume', 'RunInstances', 'RegisterImage'].includes(
        call.action,
      ) &&
      (keyId !== undefined || field(input, 'Encrypted') === true)
    ) {
      const key = keyId?.startsWith('arn:')
        ? keyId.replace(/:alias\/.*$/, ':key/00000000-0000-0000-0000-000000000000')
        : `arn:aws:kms:${region}:${account}:key/${keyId && !keyId.startsWith('alias/') ? keyId : '00000000-0000-0000-0000-000000000000'}`;
      // The packaged stage lists only its own region; the recording's regions are the
      // ones its configuration reaches (copy destinations), so they are read as a stage
      // region. That EC2 in any other region is refused is the negative set's to prove.
      const via = { 'kms:ViaService': `ec2.${names.kmsRegion ?? region}.amazonaws.com` };
      for (const action of [
        'kms:DescribeKey',
        'kms:Decrypt',
        'kms:GenerateDataKeyWithoutPlaintext',
        'kms:ReEncryptFrom',
        'kms:ReEncryptTo',
      ])
        add(action, key, via, accountOfKey(key));
      add(
        'kms:CreateGrant',
        key,
        { ...via, 'kms:GrantIsForAWSResource': 'true' },
        accountOfKey(key),
      );
    }
    return requests;
  }

  if (call.service === 'dynamodb') {
    const table = (name: string | undefined) =>
      `arn:aws:dynamodb:${homeRegion}:${names.account}:table/${name ? names.historyTable : 'none'}`;
    const action = dynamoAction(call.action);
    if (action === 'dynamodb:BatchWriteItem' || action === 'dynamodb:BatchGetItem') {
      for (const name of Object.keys((field(input, 'RequestItems') as Loose | undefined) ?? {}))
        add(action, table(name));
    } else if (action === 'dynamodb:TransactWriteItems') {
      for (const item of list(field(input, 'TransactItems')))
        for (const [op, body] of Object.entries(item as Loose)) {
          const itemAction = { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem' }[op];
          add(
            itemAction ? `dynamodb:${itemAction}` : 'dynamodb:ConditionCheckItem',
            table(text(field(body, 'TableName'))),
          );
        }
    } else {
      const index = text(field(input, 'IndexName'));
      const tableArn = table(text(field(input, 'TableName')));
      add(action, index ? `${tableArn}/index/${index}` : tableArn);
    }
    return requests;
  }

  if (call.service === 'ssm') return ssmRequestsOf(call, names, tagsOf);

  if (call.service === 'sqs') {
    const url = text(field(input, 'QueueUrl')) ?? '';
    const queue = url.endsWith('failed-invocations')
      ? names.failedInvocationsQueue
      : names.fanOutQueue;
    const action = call.action.replace(/Batch$/, '');
    add(`sqs:${action}`, `arn:aws:sqs:${homeRegion}:${names.account}:${queue}`);
    return requests;
  }

  if (call.service === 'eventbridge') {
    const buses = list(field(input, 'Entries')).map((e) => text(field(e, 'EventBusName')));
    for (const bus of new Set(buses.length > 0 ? buses : [undefined]))
      add(
        `events:${call.action}`,
        `arn:aws:events:${homeRegion}:${names.account}:event-bus/${bus ?? 'default'}`,
      );
    return requests;
  }

  if (call.service === 'ebs') {
    // The EBS direct APIs authorize each snapshot they read (resource type snapshot,
    // aws:ResourceTag supported: Service Authorization Reference, Amazon EBS).
    for (const key of ['SnapshotId', 'FirstSnapshotId', 'SecondSnapshotId']) {
      const id = text(field(input, key));
      if (id) add(`ebs:${call.action}`, snapshot(id), resourceTagContext(tagsOf(id)));
    }
    return requests;
  }

  if (call.service === 's3') {
    const bucket = text(field(input, 'Bucket')) ?? '';
    const key = text(field(input, 'Key')) ?? '';
    add(`s3:${call.action}`, `arn:aws:s3:::${bucket}/${key}`);
    return requests;
  }

  // Auto Scaling and Recycle Bin: read-only, wildcard resources.
  const prefix = call.service === 'autoscaling' ? 'autoscaling' : call.service;
  add(`${prefix}:${call.action}`, '*');
  return requests;
}

/** The IAM action of a DynamoDB (document client or plain) command. */
function dynamoAction(action: string): string {
  const documentCommands: Record<string, string> = {
    Put: 'PutItem',
    Get: 'GetItem',
    Update: 'UpdateItem',
    Delete: 'DeleteItem',
    BatchWrite: 'BatchWriteItem',
    BatchGet: 'BatchGetItem',
    TransactWrite: 'TransactWriteItems',
    TransactGet: 'TransactGetItems',
  };
  return `dynamodb:${documentCommands[action] ?? action}`;
}
