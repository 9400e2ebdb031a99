import { randomUUID } from 'node:crypto';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small HTTP fault-injection proxy for tests: it sits between the AWS SDK and the
 * local AWS (moto), reads which API action each call is, lets rules answer some calls
 * with AWS errors (in the wire format the SDK expects), delay them, hang them or cut
 * the connection, and forwards everything else unchanged. It listens on 127.0.0.1 only
 * and forwards to a loopback target only.
 */

/** The wire protocol of a call, as far as the proxy can tell. */
export type ProxyProtocol = 'ec2-query' | 'query' | 'json' | 'rest';

/** One call as the proxy received it: what a rule decides on. */
export interface ProxyCall {
  /** 1-based number of the call among every call the proxy received since the last reset. */
  readonly seq: number;
  /** 1-based number of the call among the calls of the same action since the last reset. */
  readonly actionSeq: number;
  /**
   * The API action: the form body's `Action` (EC2 and other query protocols), the
   * operation of the `X-Amz-Target` header (`DynamoDB_20120810.PutItem` → `PutItem`),
   * or `METHOD /path` when neither is present (REST protocols).
   */
  readonly action: string;
  readonly protocol: ProxyProtocol;
  /** The signing service from the `Authorization` header (`ec2`, `dynamodb`, ...), if any. */
  readonly service?: string | undefined;
  /** The signing region from the `Authorization` header, if any. */
  readonly region?: string | undefined;
  readonly method: string;
  /** Path and query string as received. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Form fields of a query-protocol body (and the URL query), e.g. `InstanceSpecification.InstanceId`. */
  readonly params: Readonly<Record<string, string>>;
  /** The parsed body of a JSON-protocol call; undefined otherwise or when it is not JSON. */
  readonly json?: unknown;
  readonly body: string;
  /** `Date.now()` when the proxy had read the whole request. */
  readonly receivedAt: number;
}

/** An AWS error answer. */
export interface AwsErrorEffect {
  readonly kind: 'error';
  /** The AWS error code, e.g. `RequestLimitExceeded`. */
  readonly code: string;
  /** HTTP status of the answer, e.g. 503 for EC2 throttling, 400 for client errors. */
  readonly status: number;
  readonly message: string;
  /** Extra response headers, e.g. `retry-after`. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Wait, then forward the call (dropped if the client gave up meanwhile). */
export interface DelayEffect {
  readonly kind: 'delay';
  readonly ms: number;
}

/**
 * Never forward the call and never answer it: hold the connection open for `ms`
 * (or until the client gives up, when `ms` is absent), then close it.
 */
export interface HangEffect {
  readonly kind: 'hang';
  readonly ms?: number | undefined;
}

/** Cut the connection at once without an answer (the client sees ECONNRESET). */
export interface ResetEffect {
  readonly kind: 'reset';
}

/** What happens to a call a rule decided on. */
export type FaultEffect = AwsErrorEffect | DelayEffect | HangEffect | ResetEffect;

/**
 * Decides on a call: an effect, or undefined to let later rules (and finally the
 * target) have it. `match` is the 1-based number of the call among the calls this
 * rule's `action` filter has let through since the rule was added.
 */
export type FaultDecider = (call: ProxyCall, match: number) => FaultEffect | undefined;

/** A fault rule: which calls it looks at, and what it does to them. */
export interface FaultRule {
  /** A name for reports; defaults to the action filter. */
  readonly name?: string;
  /** Calls the rule looks at: one action, several, a predicate, or every call when absent. */
  readonly action?: string | readonly string[] | ((action: string) => boolean);
  readonly decide: FaultDecider;
}

/** A rule once added: remove it, or see how often it matched and fired. */
export interface ActiveRule {
  readonly name: string;
  /** Calls the rule's action filter let through. */
  readonly matched: number;
  /** Calls the rule answered with an effect. */
  readonly fired: number;
  remove(): void;
}

/** What the proxy did with a call, recorded with it. */
export type ProxyOutcome =
  | 'forwarded'
  | 'error'
  | 'delayed'
  | 'hang'
  | 'reset'
  | 'abandoned'
  | 'upstream-error';

/** A recorded call: the call, the rule that fired on it (if any) and what happened. */
export interface ProxyRecord extends ProxyCall {
  readonly rule?: string | undefined;
  readonly effect?: FaultEffect['kind'] | undefined;
  outcome?: ProxyOutcome | undefined;
}

/** A running fault proxy. */
export interface FaultProxy {
  /** The proxy's URL, e.g. `http://127.0.0.1:43121`: give it to the SDK as `endpoint`. */
  readonly endpoint: string;
  readonly port: number;
  readonly rules: {
    /** Adds a rule after the existing ones; the first rule that returns an effect wins. */
    add(rule: FaultRule): ActiveRule;
    /** Removes every rule. */
    clear(): void;
    readonly list: readonly ActiveRule[];
  };
  /** Calls received (faulted or not), of one action or of all. */
  calls(action?: string): number;
  /** Calls a rule answered with an effect (errors, delays, hangs, resets), of one action or of all. */
  faults(action?: string): number;
  /** Every recorded call, of one action or of all, in arrival order. */
  requests(action?: string): readonly ProxyRecord[];
  /** Forgets the recorded calls and counts (rules stay). */
  resetStats(): void;
  /** Stops listening, cuts open connections and cancels pending delays and hangs. */
  stop(): Promise<void>;
}

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** The loopback URL to forward to, e.g. moto's `http://127.0.0.1:5000`. */
  readonly target: string;
  /** Rules to start with. */
  readonly rules?: readonly FaultRule[];
  /** Keep at most this many call records (oldest dropped first). Default 10,000. */
  readonly maxRecords?: number;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/**
 * Starts the fault proxy on a free port of 127.0.0.1 in front of a loopback target.
 *
 * @throws {Error} when the target is not an http URL on a loopback host.
 * @example
 * const proxy = await startFaultProxy({ target: inject('awsEndpoint') });
 * proxy.rules.add({ action: 'CreateSnapshots', decide: firstCalls(2, awsError('RequestLimitExceeded', 503)) });
 * const ec2 = createEc2Client({ region, maxAttempts: 3, requestTimeoutMs: 5_000, endpoint: proxy.endpoint });
 * // ... proxy.calls('CreateSnapshots') === 3
 * await proxy.stop();
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  if (target.protocol !== 'http:' || !LOOPBACK_HOSTS.has(target.hostname)) {
    throw new Error(
      `fault proxy target must be an http URL on a loopback host; got ${options.target}`,
    );
  }
  const maxRecords = options.maxRecords ?? 10_000;
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const timers = new Set<NodeJS.Timeout>();

  interface RuleState {
    readonly rule: FaultRule;
    readonly name: string;
    matched: number;
    fired: number;
    removed: boolean;
  }
  let rules: RuleState[] = [];
  let records: ProxyRecord[] = [];
  let seq = 0;
  const perAction = new Map<string, { calls: number; faults: number }>();

  const activeRule = (state: RuleState): ActiveRule => ({
    name: state.name,
    get matched() {
      return state.matched;
    },
    get fired() {
      return state.fired;
    },
    remove: () => {
      state.removed = true;
      rules = rules.filter((r) => r !== state);
    },
  });

  const addRule = (rule: FaultRule): ActiveRule => {
    const state: RuleState = {
      rule,
      name: rule.name ?? describeFilter(rule.action),
      matched: 0,
      fired: 0,
      removed: false,
    };
    rules = [...rules, state];
    return activeRule(state);
  };
  for (const rule of options.rules ?? []) addRule(rule);

  const countsOf = (action: string) => {
    let counts = perAction.get(action);
    if (!counts) {
      counts = { calls: 0, faults: 0 };
      perAction.set(action, counts);
    }
    return counts;
  };

  const decide = (call: ProxyCall): { effect: FaultEffect; rule: string } | undefined => {
    for (const state of [...rules]) {
      if (state.removed || !filterMatches(state.rule.action, call.action)) continue;
      state.matched += 1;
      const effect = state.rule.decide(call, state.matched);
      if (effect) {
        state.fired += 1;
        return { effect, rule: state.name };
      }
    }
    return undefined;
  };

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  const forward = (record: ProxyRecord, req: IncomingMessage, res: ServerResponse, body: Buffer) =>
    new Promise<void>((resolve) => {
      const upstream = httpRequest(
        {
          host: target.hostname.replace(/^\[|\]$/g, ''),
          port: target.port || 80,
          method: req.method,
          path: req.url,
          headers: req.headers,
          agent,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
          answer.pipe(res);
          answer.on('end', resolve);
          answer.on('error', () => {
            res.destroy();
            resolve();
          });
        },
      );
      upstream.on('error', (error) => {
        record.outcome = 'upstream-error';
        if (!res.headersSent) {
          res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(`fault proxy: upstream ${options.target} failed: ${error.message}`);
        } else {
          res.destroy();
        }
        resolve();
      });
      // A client that gives up mid-call takes the upstream call down with it.
      res.on('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      upstream.end(body);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    seq += 1;
    const parsed = describeCall(req, body);
    const counts = countsOf(parsed.action);
    counts.calls += 1;
    const call: ProxyCall = {
      ...parsed,
      seq,
      actionSeq: counts.calls,
      receivedAt: Date.now(),
    };
    let decision: { effect: FaultEffect; rule: string } | undefined;
    try {
      decision = decide(call);
    } catch (error) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`fault proxy: rule failed: ${error instanceof Error ? error.message : error}`);
      return;
    }
    const record: ProxyRecord = {
      ...call,
      rule: decision?.rule,
      effect: decision?.effect.kind,
      outcome: undefined,
    };
    records.push(record);
    if (records.length > maxRecords) records = records.slice(records.length - maxRecords);
    if (decision) counts.faults += 1;

    const effect = decision?.effect;
    if (effect?.kind === 'error') {
      record.outcome = 'error';
      const answer = errorAnswer(call, effect);
      res.writeHead(effect.status, answer.headers);
      res.end(answer.body);
      return;
    }
    if (effect?.kind === 'reset') {
      record.outcome = 'reset';
      req.socket.destroy();
      return;
    }
    if (effect?.kind === 'hang') {
      record.outcome = 'hang';
      const gone = new Promise<void>((resolve) => res.once('close', () => resolve()));
      await (effect.ms === undefined ? gone : Promise.race([gone, wait(effect.ms)]));
      req.socket.destroy();
      return;
    }
    if (effect?.kind === 'delay') {
      let clientGone = false;
      const onClose = () => {
        clientGone = true;
      };
      res.once('close', onClose);
      await wait(effect.ms);
      res.off('close', onClose);
      if (clientGone || res.destroyed) {
        record.outcome = 'abandoned';
        return;
      }
      record.outcome = 'delayed';
    } else {
      record.outcome = 'forwarded';
    }
    await forward(record, req, res, body);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`fault proxy: ${error instanceof Error ? error.message : String(error)}`);
      } else {
        res.destroy();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  const filtered = (action: string | undefined) =>
    action === undefined ? records : records.filter((r) => r.action === action);
  const sum = (action: string | undefined, key: 'calls' | 'faults') => {
    if (action !== undefined) return perAction.get(action)?.[key] ?? 0;
    let total = 0;
    for (const counts of perAction.values()) total += counts[key];
    return total;
  };

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    rules: {
      add: addRule,
      clear: () => {
        for (const state of rules) state.removed = true;
        rules = [];
      },
      get list() {
        return rules.map(activeRule);
      },
    },
    calls: (action) => sum(action, 'calls'),
    faults: (action) => sum(action, 'faults'),
    requests: (action) => [...filtered(action)],
    resetStats: () => {
      records = [];
      perAction.clear();
      seq = 0;
    },
    stop: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      agent.destroy();
      await closed;
    },
  };
}

// ---------------------------------------------------------------------------------
// Effects and deciders

/**
 * An AWS error answer. EC2 throttling is `awsError('RequestLimitExceeded', 503)`.
 *
 * @example
 * awsError('SnapshotCreationPerVolumeRateExceeded', 400, 'The maximum per volume CreateSnapshot request rate has been exceeded.');
 */
export function awsError(
  code: string,
  status: number,
  message = `${code} (injected by the fault proxy)`,
  headers?: Readonly<Record<string, string>>,
): AwsErrorEffect {
  return { kind: 'error', code, status, message, ...(headers ? { headers } : {}) };
}

/**
 * Forward the call after `ms` milliseconds (dropped if the client gave up meanwhile).
 *
 * @example
 * proxy.rules.add({ action: 'DescribeInstances', decide: always(delay(200)) });
 */
export function delay(ms: number): DelayEffect {
  return { kind: 'delay', ms };
}

/**
 * Never answer: hold the connection for `ms` (or until the client gives up), then close it.
 *
 * @example
 * proxy.rules.add({ action: 'CreateSnapshots', decide: firstCalls(1, hang(3_000)) });
 */
export function hang(ms?: number): HangEffect {
  return { kind: 'hang', ms };
}

/**
 * Cut the connection without an answer.
 *
 * @example
 * proxy.rules.add({ decide: nthCall(2, reset()) });
 */
export function reset(): ResetEffect {
  return { kind: 'reset' };
}

/**
 * A decider that applies the effect to the first `n` calls the rule sees.
 *
 * @example
 * proxy.rules.add({ action: 'CreateSnapshots', decide: firstCalls(2, awsError('RequestLimitExceeded', 503)) });
 */
export function firstCalls(n: number, effect: FaultEffect): FaultDecider {
  return (_call, match) => (match <= n ? effect : undefined);
}

/**
 * A decider that applies the effect to the rule's `n`th call only (1-based).
 *
 * @example
 * proxy.rules.add({ action: 'DescribeInstances', decide: nthCall(2, awsError('InternalError', 500)) });
 */
export function nthCall(n: number, effect: FaultEffect): FaultDecider {
  return (_call, match) => (match === n ? effect : undefined);
}

/**
 * A decider that applies the effect to every call the rule sees.
 *
 * @example
 * proxy.rules.add({ action: 'CreateSnapshots', decide: always(hang()) });
 */
export function always(effect: FaultEffect): FaultDecider {
  return () => effect;
}

/**
 * A decider that applies the effect to each call with probability `p`, drawn from a
 * seeded generator: the same seed gives the same sequence of decisions for the same
 * sequence of calls.
 *
 * @example
 * proxy.rules.add({ decide: withProbability(0.3, 42, awsError('RequestLimitExceeded', 503)) });
 */
export function withProbability(p: number, seed: number, effect: FaultEffect): FaultDecider {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`probability must be from 0 to 1; got ${p}`);
  const random = seededRandom(seed);
  return () => (random() < p ? effect : undefined);
}

/**
 * A deterministic pseudo-random generator (mulberry32) returning numbers in [0, 1).
 *
 * @example
 * const random = seededRandom(7);
 * random(); // always the same first number for seed 7
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

// ---------------------------------------------------------------------------------
// Wire formats

/**
 * Reads the action, protocol, signing service and region and the parameters of a call.
 * Exported for the proxy's own unit tests.
 *
 * @example
 * describeCall(req, Buffer.from('Action=DescribeInstances&Version=2016-11-15')).action; // 'DescribeInstances'
 */
export function describeCall(
  req: Pick<IncomingMessage, 'method' | 'url' | 'headers'>,
  body: Buffer,
): Omit<ProxyCall, 'seq' | 'actionSeq' | 'receivedAt'> {
  const method = req.method ?? 'GET';
  const path = req.url ?? '/';
  const headers = req.headers;
  const text = body.toString('utf8');
  const scope = signingScope(headers.authorization);
  const url = new URL(path, 'http://proxy.invalid');
  const contentType = String(headers['content-type'] ?? '').toLowerCase();
  const target = headers['x-amz-target'];

  const params: Record<string, string> = {};
  for (const [key, value] of url.searchParams) params[key] = value;
  if (contentType.startsWith('application/x-www-form-urlencoded')) {
    for (const [key, value] of new URLSearchParams(text)) params[key] = value;
  }

  let action: string;
  let protocol: ProxyProtocol;
  let json: unknown;
  if (typeof target === 'string' && target !== '') {
    action = target.slice(target.lastIndexOf('.') + 1);
    protocol = 'json';
    json = parseJson(text);
  } else if (params.Action !== undefined) {
    action = params.Action;
    protocol = scope.service === 'ec2' || isEc2Version(params.Version) ? 'ec2-query' : 'query';
  } else {
    action = `${method} ${url.pathname}`;
    protocol = 'rest';
    if (contentType.includes('json')) json = parseJson(text);
  }
  return {
    action,
    protocol,
    service: scope.service,
    region: scope.region,
    method,
    path,
    headers,
    params,
    ...(json !== undefined ? { json } : {}),
    body: text,
  };
}

/**
 * The status-less part of an AWS error answer for a call's protocol: EC2's XML
 * `<Response><Errors>...`, the query protocol's `<ErrorResponse>`, or JSON with `__type`.
 *
 * @example
 * errorAnswer(call, awsError('RequestLimitExceeded', 503)).body; // '<?xml ...><Response><Errors>...'
 */
export function errorAnswer(
  call: Pick<ProxyCall, 'protocol' | 'headers'>,
  effect: AwsErrorEffect,
): { headers: Record<string, string>; body: string } {
  const requestId = randomUUID();
  const extra = effect.headers ?? {};
  if (call.protocol === 'ec2-query') {
    return {
      headers: { 'content-type': 'text/xml;charset=UTF-8', ...extra },
      body:
        '<?xml version="1.0" encoding="UTF-8"?>\n' +
        `<Response><Errors><Error><Code>${xml(effect.code)}</Code><Message>${xml(effect.message)}</Message></Error></Errors>` +
        `<RequestID>${requestId}</RequestID></Response>`,
    };
  }
  if (call.protocol === 'query') {
    const type = effect.status >= 500 ? 'Receiver' : 'Sender';
    return {
      headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId, ...extra },
      body:
        `<ErrorResponse><Error><Type>${type}</Type><Code>${xml(effect.code)}</Code>` +
        `<Message>${xml(effect.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
    };
  }
  const requested = call.headers['content-type'];
  const contentType =
    call.protocol === 'json' && typeof requested === 'string' && requested.includes('json')
      ? requested
      : 'application/json';
  return {
    headers: {
      'content-type': contentType,
      'x-amzn-requestid': requestId,
      'x-amzn-errortype': effect.code,
      ...extra,
    },
    body: JSON.stringify({ __type: effect.code, message: effect.message }),
  };
}

function signingScope(authorization: string | undefined): {
  service?: string | undefined;
  region?: string | undefined;
} {
  const match = /Credential=[^/,\s]+\/\d{8}\/([^/,\s]+)\/([^/,\s]+)\/aws4_request/.exec(
    authorization ?? '',
  );
  return match ? { region: match[1], service: match[2] } : {};
}

function isEc2Version(version: string | undefined): boolean {
  return version === '2016-11-15';
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function xml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function filterMatches(filter: FaultRule['action'], action: string): boolean {
  if (filter === undefined) return true;
  if (typeof filter === 'string') return filter === action;
  if (typeof filter === 'function') return filter(action);
  return filter.includes(action);
}

function describeFilter(filter: FaultRule['action']): string {
  if (filter === undefined) return 'any action';
  if (typeof filter === 'string') return filter;
  if (typeof filter === 'function') return 'custom filter';
  return filter.join('|');
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
