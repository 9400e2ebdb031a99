/**
 * Fault rules for the fault proxy (harness/faultProxy.ts): EC2 weather, per-instance and
 * per-snapshot rules, the run-history table down, a simulated crash, and a lost answer's
 * replay. The fault campaign (scripts/campaign.ts) and the integration tests inject the same.
 */
import {
  type AwsErrorEffect,
  awsError,
  type FaultDecider,
  type FaultRule,
  type ProxyCall,
  reset,
  seededRandom,
} from './faultProxy.ts';

/** EC2 throttling as AWS answers it: `RequestLimitExceeded`, HTTP 503. */
export const throttled = (): AwsErrorEffect =>
  awsError('RequestLimitExceeded', 503, 'Request limit exceeded.');

/** EC2's per-volume creation rate limit (HTTP 400, not retried by the SDK). */
export const perVolumeRateExceeded = (): AwsErrorEffect =>
  awsError(
    'SnapshotCreationPerVolumeRateExceeded',
    400,
    'The maximum per volume CreateSnapshot request rate has been exceeded.',
  );

/** Bad EC2 weather: what {@link ec2Weather} injected so far. */
export interface Weather {
  readonly rule: FaultRule;
  readonly stats: { throttled: number; serverErrors: number };
}

/**
 * Seeded EC2 weather: each EC2 call (DynamoDB and the rest pass) is throttled with
 * probability `throttled` and answered 500 `InternalError` or 503 `Unavailable` with
 * probability `serverErrors`. A burst is bounded: the same request (action and body,
 * which a retry repeats) is faulted at most `maxConsecutive` times in a row, so that a
 * client with more attempts than that always gets through, and a run's outcome does not
 * depend on the order in which concurrent calls draw.
 *
 * @example
 * const weather = ec2Weather({ seed: 23 });
 * proxy.rules.add(weather.rule);
 */
export function ec2Weather(options: {
  seed: number;
  throttled?: number;
  serverErrors?: number;
  maxConsecutive?: number;
}): Weather {
  const pThrottled = options.throttled ?? 0.3;
  const pServer = options.serverErrors ?? 0.05;
  const maxConsecutive = options.maxConsecutive ?? 3;
  const random = seededRandom(options.seed);
  const streaks = new Map<string, number>();
  const stats = { throttled: 0, serverErrors: 0 };
  const rule: FaultRule = {
    name: `EC2 weather (seed ${options.seed})`,
    decide: (call) => {
      if (call.service !== 'ec2') return undefined;
      const key = `${call.action}\n${call.body}`;
      const streak = streaks.get(key) ?? 0;
      const draw = random();
      if (streak >= maxConsecutive || draw >= pThrottled + pServer) {
        streaks.delete(key);
        return undefined;
      }
      streaks.set(key, streak + 1);
      if (draw < pThrottled) {
        stats.throttled += 1;
        return throttled();
      }
      stats.serverErrors += 1;
      return draw < pThrottled + pServer / 2
        ? awsError('InternalError', 500, 'An internal error has occurred.')
        : awsError('Unavailable', 503, 'The service is unavailable.');
    },
  };
  return { rule, stats };
}

/**
 * A rule for the `CreateSnapshots` calls of one instance; `decide` sees only those,
 * numbered from 1.
 *
 * @example
 * proxy.rules.add(forInstance(web.instanceId, firstCalls(1, perVolumeRateExceeded())));
 */
export function forInstance(instanceId: string, decide: FaultDecider): FaultRule {
  return forCallsOf(
    `CreateSnapshots of ${instanceId}`,
    'CreateSnapshots',
    (call) => call.params['InstanceSpecification.InstanceId'] === instanceId,
    decide,
  );
}

/**
 * A rule for the `DeleteSnapshot` calls of one snapshot; `decide` sees only those,
 * numbered from 1.
 *
 * @example
 * proxy.rules.add(forSnapshot('snap-0abc', always(awsError('InvalidSnapshot.InUse', 400))));
 */
export function forSnapshot(snapshotId: string, decide: FaultDecider): FaultRule {
  return forCallsOf(
    `DeleteSnapshot of ${snapshotId}`,
    'DeleteSnapshot',
    (call) => call.params.SnapshotId === snapshotId,
    decide,
  );
}

/** A rule named `name` for the calls of `action` that `matches` picks, numbered from 1 for `decide`. */
function forCallsOf(
  name: string,
  action: string,
  matches: (call: ProxyCall) => boolean,
  decide: FaultDecider,
): FaultRule {
  let seen = 0;
  return {
    name,
    action,
    decide: (call) => {
      if (!matches(call)) return undefined;
      seen += 1;
      return decide(call, seen);
    },
  };
}

/**
 * What a DynamoDB `PutItem` (or `BatchWriteItem`) writes, from its JSON body: the item's
 * `type` (`slot`, `run`, `action`) and, for an action, its `action` and `phase`.
 *
 * @example
 * dynamoItem(call).type === 'action';
 */
export function dynamoItem(call: ProxyCall): { type?: string; action?: string; phase?: string } {
  type Item = Record<string, { S?: string }>;
  const body = call.json as
    | { Item?: Item; RequestItems?: Record<string, { PutRequest?: { Item?: Item } }[]> }
    | undefined;
  // Since issue 19 the history writes its records in batches (BatchWriteItem): such a
  // call is read as its first action record (else its first item).
  const batched = Object.values(body?.RequestItems ?? {})
    .flat()
    .flatMap((request) => (request.PutRequest?.Item ? [request.PutRequest.Item] : []));
  const item = body?.Item ?? batched.find((i) => i.type?.S === 'action') ?? batched[0];
  const text = (key: string) => item?.[key]?.S;
  const found: { type?: string; action?: string; phase?: string } = {};
  const type = text('type');
  const action = text('action');
  const phase = text('phase');
  if (type !== undefined) found.type = type;
  if (action !== undefined) found.action = action;
  if (phase !== undefined) found.phase = phase;
  return found;
}

/**
 * The run-history table down: every DynamoDB call (or those `only` picks) answers,
 * in turn, 500 `InternalServerError` and 400 `ProvisionedThroughputExceededException`.
 *
 * @example
 * proxy.rules.add(historyDown());
 */
export function historyDown(only?: (call: ProxyCall) => boolean): FaultRule {
  let answered = 0;
  return {
    name: 'run-history table down',
    decide: (call) => {
      if (call.service !== 'dynamodb' || (only && !only(call))) return undefined;
      answered += 1;
      return answered % 2 === 1
        ? awsError('InternalServerError', 500, 'Internal server error')
        : awsError(
            'ProvisionedThroughputExceededException',
            400,
            'The level of configured provisioned throughput for the table was exceeded.',
          );
    },
  };
}

/** A simulated crash: see {@link crashAfter}. */
export interface Crash {
  readonly rule: FaultRule;
  readonly crashed: () => boolean;
}

/**
 * A process that dies: once `n` calls of `action` have been let through, the connection
 * of every later call of any service (EC2, DynamoDB, EventBridge) is cut. Whatever the
 * handler does after that point (its history writes, its final record) never lands.
 *
 * @example
 * const crash = crashAfter('CreateSnapshots', 2);
 * proxy.rules.add(crash.rule);
 */
export function crashAfter(action: string, n: number): Crash {
  let seen = 0;
  let crashed = false;
  return {
    rule: {
      name: `crash after ${n} ${action}`,
      decide: (call) => {
        if (crashed) return reset();
        if (call.action === action) {
          seen += 1;
          if (seen >= n) crashed = true;
        }
        return undefined;
      },
    },
    crashed: () => crashed,
  };
}

/**
 * Sends a call the proxy received straight to the target (moto), as if the network had
 * delivered it and only its answer were lost: pair it with `hang()` for the client's
 * copy. Resolves to the target's HTTP status.
 *
 * @example
 * proxy.rules.add(forInstance(id, (call, n) => (n === 1 ? (replayTo(moto, call), hang()) : undefined)));
 */
export async function replayTo(target: string, call: ProxyCall): Promise<number> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(call.headers)) {
    if (typeof value === 'string' && !['host', 'content-length', 'connection'].includes(name)) {
      headers[name] = value;
    }
  }
  const response = await fetch(new URL(call.path, target), {
    method: call.method,
    headers,
    body: call.body,
  });
  await response.text();
  return response.status;
}
