import { AsyncLocalStorage } from 'node:async_hooks';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The environment variable that turns call recording on: a directory each process
 * appends its calls to (`calls-<pid>.jsonl`). Only the test harness sets it; in Lambda
 * the middleware is never added.
 */
export const RECORD_CALLS_VARIABLE = 'SNAPKEEPER_RECORD_CALLS';

/** Who is calling: the function whose role AWS evaluates the call against. */
export interface CallerContext {
  /** The function (backup, retention, amis, ops, copy, fanout, worker). */
  readonly functionName: string;
  /** Its own region (the stack's: where its table, queue and event bus are). */
  readonly region: string;
  /** Its stage (the snapkeeper:deployment tag value it writes and checks). */
  readonly deployment: string;
  /** Its tag prefix (`snapkeeper:` unless configured). */
  readonly tagPrefix: string;
  /** The local-only fallback that tags right after creating (LOCAL_TAG_AFTER_CREATE). */
  readonly localTagAfterCreate: boolean;
}

/**
 * One recorded AWS call, as the IAM simulation (test/iam) reads it: what was asked, by
 * which function, where, and the tags of the resources it names as far as the function
 * itself has seen them (described, created or tagged earlier in the same process).
 */
export interface RecordedCall {
  readonly caller: CallerContext;
  /** The role ARN a target-account client assumed; absent for the function's own role. */
  readonly assumedRole?: string | undefined;
  readonly service: string;
  readonly action: string;
  readonly region: string;
  readonly input: unknown;
  /** Ids of what the call created (snapshots, images, volumes, instances). */
  readonly created?: readonly string[] | undefined;
  /** The AWS error code, when the call failed. */
  readonly error?: string | undefined;
  /** Tags of the resources the call names, by id; null when never seen. */
  readonly resourceTags?: Readonly<Record<string, Record<string, string> | null>> | undefined;
}

const callers = /* @__PURE__ */ new AsyncLocalStorage<CallerContext>();

/**
 * Runs `work` as `caller`: every call a recorded client makes inside it is attributed
 * to that function. The composition root wraps each handler in it.
 *
 * @example
 * return runAsCaller({ functionName: 'backup', region: 'eu-west-1', deployment: 'prod', tagPrefix: 'snapkeeper:', localTagAfterCreate: false }, () => handler(event));
 */
export function runAsCaller<T>(caller: CallerContext, work: () => T): T {
  return callers.run(caller, work);
}

type Tags = Record<string, string>;
const seenTags = /* @__PURE__ */ new Map<string, Tags>();

interface MiddlewareClient {
  readonly middlewareStack: {
    add: (middleware: unknown, options: { step: 'initialize'; name: string }) => void;
  };
  readonly config: { region: unknown };
}

/**
 * Adds the recording middleware to an SDK v3 client when {@link RECORD_CALLS_VARIABLE}
 * is set (otherwise returns the client untouched). Calls made outside
 * {@link runAsCaller} (a test arranging its fixtures) are not recorded.
 *
 * @example
 * const ec2 = recordCalls(new EC2Client(settings));
 */
export function recordCalls<C>(client: C, options: { assumedRole?: string | undefined } = {}): C {
  // Spelled out (not by RECORD_CALLS_VARIABLE): the bundles' esbuild `define` (serverless.yml
  // custom.esbuild) makes it `undefined`, so the branch and the whole recorder leave every bundle.
  if (process.env.SNAPKEEPER_RECORD_CALLS) {
    return withRecorder(client, options, process.env.SNAPKEEPER_RECORD_CALLS);
  }
  return client;
}

/** Adds the recording middleware to `client`, writing to `directory`. */
function withRecorder<C>(
  client: C,
  options: { assumedRole?: string | undefined },
  directory: string,
): C {
  const target = client as unknown as MiddlewareClient;
  if (!target.middlewareStack || typeof target.middlewareStack.add !== 'function') return client;
  const file = join(directory, `calls-${process.pid}.jsonl`);
  target.middlewareStack.add(
    (next: (args: { input: unknown }) => Promise<{ output: unknown }>, context: Ctx) =>
      async (args: { input: unknown }) => {
        const caller = callers.getStore();
        if (!caller) return next(args);
        const service = (context.clientName ?? 'unknown').replace(/Client$/, '').toLowerCase();
        const action = (context.commandName ?? 'unknown').replace(/Command$/, '');
        const region = await regionOf(target);
        const named = namedResources(action, args.input);
        const resourceTags =
          named.length > 0
            ? Object.fromEntries(named.map((id) => [id, seenTags.get(id) ?? null]))
            : undefined;
        const write = (extra: Partial<RecordedCall>) => {
          const call: RecordedCall = {
            caller,
            ...(options.assumedRole ? { assumedRole: options.assumedRole } : {}),
            service,
            action,
            region,
            input: compactInput(service, args.input),
            ...(resourceTags ? { resourceTags } : {}),
            ...extra,
          };
          try {
            mkdirSync(directory, { recursive: true });
            appendFileSync(file, `${JSON.stringify(call)}\n`);
          } catch {
            // Recording is a test aid: it never fails a call.
          }
        };
        try {
          const result = await next(args);
          const created = learn(service, action, args.input, result.output);
          write(created.length > 0 ? { created } : {});
          return result;
        } catch (error) {
          const name = (error as { name?: string; Code?: string }).Code ?? (error as Error).name;
          write({ error: name ?? 'Error' });
          throw error;
        }
      },
    { step: 'initialize', name: 'snapkeeperCallRecorder' },
  );
  return client;
}

interface Ctx {
  readonly clientName?: string;
  readonly commandName?: string;
}

async function regionOf(client: MiddlewareClient): Promise<string> {
  const region = client.config.region;
  try {
    return String(typeof region === 'function' ? await region() : region);
  } catch {
    return 'unknown';
  }
}

type Loose = Record<string, unknown> | undefined;
const field = (value: unknown, key: string): unknown =>
  value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const text = (value: unknown): string | undefined =>
  typeof value === 'string' ? value : undefined;

/** The existing resources an EC2 call names, whose tags IAM conditions may read. */
function namedResources(action: string, input: unknown): string[] {
  const ids: (string | undefined)[] = [];
  switch (action) {
    case 'DeleteSnapshot':
    case 'ModifySnapshotAttribute':
    case 'CreateVolume':
    case 'LockSnapshot':
    case 'ModifySnapshotTier':
    case 'RestoreSnapshotTier':
      ids.push(text(field(input, 'SnapshotId')));
      break;
    case 'DeregisterImage':
    case 'ModifyImageAttribute':
    case 'RunInstances':
      ids.push(text(field(input, 'ImageId')));
      break;
    case 'DeleteVolume':
    case 'AttachVolume':
      ids.push(text(field(input, 'VolumeId')));
      break;
    case 'CopySnapshot':
      ids.push(text(field(input, 'SourceSnapshotId')));
      break;
    case 'ListSnapshotBlocks':
      ids.push(text(field(input, 'SnapshotId')));
      break;
    case 'ListChangedBlocks':
      ids.push(text(field(input, 'FirstSnapshotId')), text(field(input, 'SecondSnapshotId')));
      break;
    case 'CopyImage':
      ids.push(text(field(input, 'SourceImageId')));
      break;
    case 'RegisterImage':
      for (const m of list(field(input, 'BlockDeviceMappings')))
        ids.push(text(field(field(m, 'Ebs'), 'SnapshotId')));
      break;
    case 'CreateTags':
      for (const id of list(field(input, 'Resources'))) ids.push(text(id));
      break;
    case 'SendCommand':
      for (const id of list(field(input, 'InstanceIds'))) ids.push(text(id));
      break;
    default:
      break;
  }
  return ids.filter((id): id is string => id !== undefined);
}

function tagsOf(value: unknown): Tags {
  return Object.fromEntries(
    list(value).map((t) => [text(field(t, 'Key')) ?? '', text(field(t, 'Value')) ?? '']),
  );
}

function remember(id: string | undefined, tags: Tags, merge = false): void {
  if (!id) return;
  seenTags.set(id, merge ? { ...(seenTags.get(id) ?? {}), ...tags } : tags);
}

/** Learns resource tags from what the call saw or set; returns the ids it created. */
function learn(service: string, action: string, input: unknown, output: unknown): string[] {
  if (service !== 'ec2') return [];
  for (const s of list(field(output, 'Snapshots')))
    if (action === 'DescribeSnapshots')
      remember(text(field(s, 'SnapshotId')), tagsOf(field(s, 'Tags')));
  for (const i of list(field(output, 'Images')))
    remember(text(field(i, 'ImageId')), tagsOf(field(i, 'Tags')));
  for (const v of list(field(output, 'Volumes')))
    remember(text(field(v, 'VolumeId')), tagsOf(field(v, 'Tags')));
  // Instances' tags, for the condition SendCommand puts on the instance (issue 21).
  for (const r of list(field(output, 'Reservations')))
    for (const i of list(field(r, 'Instances')))
      remember(text(field(i, 'InstanceId')), tagsOf(field(i, 'Tags')));
  if (action === 'CreateTags')
    for (const id of list(field(input, 'Resources')))
      remember(text(id), tagsOf(field(input, 'Tags')), true);
  const created: string[] = [];
  const specified = (type: string): Tags =>
    Object.assign(
      {},
      ...list(field(input, 'TagSpecifications'))
        .filter((s) => field(s, 'ResourceType') === type)
        .map((s) => tagsOf(field(s, 'Tags'))),
    );
  const made = (id: string | undefined, type: string) => {
    if (!id) return;
    created.push(id);
    remember(id, specified(type));
  };
  const out = output as Loose;
  switch (action) {
    case 'CreateSnapshots':
      for (const s of list(field(out, 'Snapshots'))) made(text(field(s, 'SnapshotId')), 'snapshot');
      break;
    case 'CreateSnapshot':
    case 'CopySnapshot':
      made(text(field(out, 'SnapshotId')), 'snapshot');
      break;
    case 'CreateImage':
    case 'RegisterImage':
    case 'CopyImage':
      made(text(field(out, 'ImageId')), 'image');
      break;
    case 'CreateVolume':
      made(text(field(out, 'VolumeId')), 'volume');
      break;
    case 'RunInstances':
      for (const i of list(field(out, 'Instances'))) made(text(field(i, 'InstanceId')), 'instance');
      break;
    default:
      break;
  }
  return created;
}

/** The input without payloads IAM never reads (items, message bodies, event details). */
function compactInput(service: string, input: unknown): unknown {
  if (!input || typeof input !== 'object') return input;
  const copy: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  if (service === 'dynamodb') {
    for (const key of ['Item', 'Key', 'ExpressionAttributeValues', 'UpdateExpression'])
      delete copy[key];
    if (copy.RequestItems && typeof copy.RequestItems === 'object')
      copy.RequestItems = Object.fromEntries(
        Object.keys(copy.RequestItems as object).map((table) => [table, []]),
      );
    if (Array.isArray(copy.TransactItems))
      copy.TransactItems = copy.TransactItems.map((item) =>
        Object.fromEntries(
          Object.entries(item as object).map(([op, body]) => [
            op,
            { TableName: field(body, 'TableName') },
          ]),
        ),
      );
  }
  if (service === 'sqs') {
    delete copy.MessageBody;
    if (Array.isArray(copy.Entries)) copy.Entries = copy.Entries.length;
  }
  if (service === 'eventbridge' && Array.isArray(copy.Entries))
    copy.Entries = copy.Entries.map((e) => ({ EventBusName: field(e, 'EventBusName') }));
  if (service === 's3') delete copy.Body;
  return copy;
}
