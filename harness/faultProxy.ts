import { randomUUID } from 'node:crypto';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small HTTP fault-injection proxy for tests: it sits between the AWS SDK and the
 * local AWS (moto), reads which API action each call is, lets rules answer some calls
 * with AWS errors (in the wire format the SDK expects), delay them, hang them, cut
 * the connection or rewrite the target's answer, and forwards everything else
 * unchanged. It listens on 127.0.0.1 only and forwards to a loopback target only.
 *
 * Two ready-made rules simulate where AWS differs from the local AWS (moto) in answers
 * rather than in errors:
 * - {@link eventualConsistency}: EC2 documents that describes are eventually consistent
 *   after a create. The rule watches the answers of `CreateSnapshot`, `CreateSnapshots`,
 *   `CopySnapshot`, `CreateImage`, `CopyImage` and `RegisterImage` and drops the
 *   resources they made from `DescribeSnapshots` and `DescribeImages` answers for
 *   `lagMs` after the create answered, or from the first `describes` answers that
 *   would have listed them (an AMI's snapshots, described `... for ami-...`, follow
 *   their AMI).
 * - {@link copiesReportUnknownVolume}: on AWS a snapshot made by `CopySnapshot` reports
 *   the volume id `vol-ffffffff`; moto reports the source's volume. The rule rewrites
 *   the `volumeId` of copies in `DescribeSnapshots` answers (snapshots a `CopySnapshot`
 *   through the proxy answered, those of chosen regions, or those a predicate picks by
 *   description or tags), and drops them from answers filtered by another `volume-id`,
 *   as AWS would.
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

/** The target's answer to a forwarded call, as a rewrite sees it. */
export interface ProxyAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The answer's body as UTF-8 text (the proxy asks the target for an unencoded body). */
  readonly body: string;
}

/**
 * Forward the call, then give the client `rewrite`'s body instead of the target's
 * (the content length is fixed up). Returning the body unchanged makes the rule an
 * observer: the call counts as a fault only when the body changed.
 */
export interface RewriteEffect {
  readonly kind: 'rewrite';
  readonly rewrite: (answer: ProxyAnswer, call: ProxyCall) => string;
}

/**
 * Forward the call (EC2 acts on it), then never deliver the answer: hold the
 * connection for `ms` (or until the client gives up, when `ms` is absent), then close
 * it. This is the lost answer of a call that took effect; rewrites of earlier rules
 * still see the answer (so {@link eventualConsistency} learns what was made).
 */
export interface LoseAnswerEffect {
  readonly kind: 'lose-answer';
  readonly ms?: number | undefined;
}

/**
 * Never forward the call: answer it with this body, as the service would. For calls the
 * local AWS does not implement (the EBS snapshot-lock calls: harness/snapshotLockCalls.ts).
 */
export interface AnswerEffect {
  readonly kind: 'answer';
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
}

/**
 * What happens to a call a rule decided on. Rewrites compose: a rule that returns a
 * rewrite lets later rules decide too, and the first other effect wins (a delay or a
 * lost answer still runs the rewrites on the answer; an error, hang or reset skips them).
 */
export type FaultEffect =
  | AwsErrorEffect
  | DelayEffect
  | HangEffect
  | ResetEffect
  | RewriteEffect
  | LoseAnswerEffect
  | AnswerEffect;

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
  | 'rewritten'
  | 'answer-lost'
  | 'abandoned'
  | 'upstream-error'
  | 'answered';

/** A recorded call: the call, the rule that fired on it (if any) and what happened. */
export interface ProxyRecord extends ProxyCall {
  /** The rule that fired (the rewriting rules, comma-separated, when only rewrites did). */
  readonly rule?: string | undefined;
  /** The effect; `rewrite` only when a rewrite changed the answer. */
  effect?: FaultEffect['kind'] | undefined;
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
  /**
   * Calls a rule answered with an effect (errors, delays, hangs, resets, and rewrites
   * that changed the answer), of one action or of all.
   */
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

  interface Decision {
    /** The first effect other than a rewrite, and its rule. */
    readonly effect?: Exclude<FaultEffect, RewriteEffect> | undefined;
    readonly rule?: string | undefined;
    /** Rewrites of the rules before it, in rule order. */
    readonly rewrites: readonly { effect: RewriteEffect; rule: string }[];
  }
  const decide = (call: ProxyCall): Decision => {
    const rewrites: { effect: RewriteEffect; rule: string }[] = [];
    for (const state of [...rules]) {
      if (state.removed || !filterMatches(state.rule.action, call.action)) continue;
      state.matched += 1;
      const effect = state.rule.decide(call, state.matched);
      if (!effect) continue;
      state.fired += 1;
      if (effect.kind === 'rewrite') {
        rewrites.push({ effect, rule: state.name });
        continue;
      }
      return { effect, rule: state.name, rewrites };
    }
    return { rewrites };
  };

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  const forward = (
    record: ProxyRecord,
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    rewrite?: {
      rewrites: readonly RewriteEffect[];
      call: ProxyCall;
      changed: () => void;
      /** Deliver nothing: hold the connection this long (or until the client gives up). */
      lose?: LoseAnswerEffect | undefined;
    },
  ) =>
    new Promise<void>((resolve) => {
      const headers = { ...req.headers };
      // A rewrite reads the answer as text: ask the target for an unencoded body.
      if (rewrite) delete headers['accept-encoding'];
      const upstream = httpRequest(
        {
          host: target.hostname.replace(/^\[|\]$/g, ''),
          port: target.port || 80,
          method: req.method,
          path: req.url,
          headers,
          agent,
        },
        (answer) => {
          if (!rewrite) {
            res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
            answer.pipe(res);
            answer.on('end', resolve);
            answer.on('error', () => {
              res.destroy();
              resolve();
            });
            return;
          }
          const chunks: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => chunks.push(chunk));
          answer.on('error', () => {
            res.destroy();
            resolve();
          });
          answer.on('end', () => {
            const original = Buffer.concat(chunks).toString('utf8');
            let text = original;
            try {
              for (const effect of rewrite.rewrites) {
                text = effect.rewrite(
                  { status: answer.statusCode ?? 502, headers: answer.headers, body: text },
                  rewrite.call,
                );
              }
            } catch (error) {
              res.writeHead(500, { 'content-type': 'text/plain' });
              res.end(
                `fault proxy: rewrite failed: ${error instanceof Error ? error.message : error}`,
              );
              resolve();
              return;
            }
            if (text !== original) {
              record.outcome = 'rewritten';
              rewrite.changed();
            }
            if (rewrite.lose) {
              record.outcome = 'answer-lost';
              const gone = new Promise<void>((done) => res.once('close', () => done()));
              const ms = rewrite.lose.ms;
              void (ms === undefined ? gone : Promise.race([gone, wait(ms)])).then(() => {
                req.socket.destroy();
                resolve();
              });
              return;
            }
            const out: Record<string, string | string[]> = {};
            for (const [key, value] of Object.entries(answer.headers)) {
              if (value === undefined) continue;
              if (key === 'content-length' || key === 'transfer-encoding') continue;
              out[key] = value;
            }
            out['content-length'] = String(Buffer.byteLength(text));
            res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out);
            res.end(text);
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
    let decision: Decision;
    try {
      decision = decide(call);
    } catch (error) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`fault proxy: rule failed: ${error instanceof Error ? error.message : error}`);
      return;
    }
    const rewriteRules = decision.rewrites.map((r) => r.rule);
    const record: ProxyRecord = {
      ...call,
      rule: decision.rule ?? (rewriteRules.length > 0 ? rewriteRules.join(', ') : undefined),
      // A rewrite alone is an effect only once it changed the answer (below).
      effect: decision.effect?.kind,
      outcome: undefined,
    };
    records.push(record);
    if (records.length > maxRecords) records = records.slice(records.length - maxRecords);
    // A rewrite alone counts as a fault only if it changed the answer (see below).
    if (decision.effect) counts.faults += 1;

    const effect = decision.effect;
    if (effect?.kind === 'error') {
      record.outcome = 'error';
      const answer = errorAnswer(call, effect);
      res.writeHead(effect.status, answer.headers);
      res.end(answer.body);
      return;
    }
    if (effect?.kind === 'answer') {
      record.outcome = 'answered';
      res.writeHead(effect.status, {
        'content-type': effect.contentType,
        'content-length': String(Buffer.byteLength(effect.body)),
      });
      res.end(effect.body);
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
    const lose = effect?.kind === 'lose-answer' ? effect : undefined;
    await forward(
      record,
      req,
      res,
      body,
      decision.rewrites.length > 0 || lose
        ? {
            rewrites: decision.rewrites.map((r) => r.effect),
            call,
            changed: () => {
              if (decision.effect) return;
              counts.faults += 1;
              record.effect = 'rewrite';
            },
            lose,
          }
        : undefined,
    );
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
 * Let EC2 act on the call, then lose its answer: hold the connection for `ms` (or until
 * the client gives up), then close it.
 *
 * @example
 * proxy.rules.add({ action: 'CreateSnapshots', decide: firstCalls(1, loseAnswer()) });
 */
export function loseAnswer(ms?: number): LoseAnswerEffect {
  return { kind: 'lose-answer', ms };
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
// Answers where AWS differs from the local AWS

/**
 * Forward the call, then send `rewrite`'s body instead of the target's answer.
 *
 * @example
 * proxy.rules.add({ action: 'DescribeRegions', decide: always(rewriteAnswer((a) => a.body.replace('us-east-1', 'xx'))) });
 */
export function rewriteAnswer(rewrite: RewriteEffect['rewrite']): RewriteEffect {
  return { kind: 'rewrite', rewrite };
}

/** The create actions whose answers {@link eventualConsistency} watches. */
export const CREATE_ACTIONS = [
  'CreateSnapshot',
  'CreateSnapshots',
  'CopySnapshot',
  'CreateImage',
  'CopyImage',
  'RegisterImage',
] as const;

/** Options of {@link eventualConsistency}: give `lagMs`, `describes`, or both (hidden while either holds). */
export interface EventualConsistencyOptions {
  /** Hide a created resource from describes until this many ms after its create answered. */
  readonly lagMs?: number | undefined;
  /** Hide a created resource from the first this-many describe answers that would have listed it. */
  readonly describes?: number | undefined;
  /** Which describes lag; default both. */
  readonly resources?: readonly ('snapshots' | 'images')[] | undefined;
  /** Clock, for tests. Default `Date.now`. */
  readonly now?: (() => number) | undefined;
}

/** The eventual-consistency rule, with what it has done so far. */
export interface EventualConsistencyRule extends FaultRule {
  /** Snapshot and image ids whose create answer the rule saw, by id: when it answered. */
  readonly created: ReadonlyMap<string, number>;
  /** How many times an item was left out of a describe answer. */
  readonly hidden: () => number;
}

/**
 * A rule that simulates EC2's eventual consistency after creates: a snapshot or image
 * made through the proxy is left out of `DescribeSnapshots` / `DescribeImages` answers
 * (whatever their filters) for `lagMs` after its create answered, and/or from the first
 * `describes` answers that would have listed it. A snapshot that CreateImage made
 * (described `... for ami-...`) follows its AMI. It only rewrites answers, so rules
 * added after it on the same actions (errors, lost answers) still fire; add it first
 * so that it sees every create answer, lost ones included.
 *
 * @example
 * const lag = eventualConsistency({ describes: 2 });
 * proxy.rules.add(lag);
 * // the next two DescribeSnapshots that would list a new snapshot leave it out
 */
export function eventualConsistency(options: EventualConsistencyOptions): EventualConsistencyRule {
  const { lagMs, describes } = options;
  if (lagMs === undefined && describes === undefined) {
    throw new RangeError('eventualConsistency needs lagMs, describes, or both');
  }
  for (const [name, value] of [
    ['lagMs', lagMs],
    ['describes', describes],
  ] as const) {
    if (value !== undefined && !(Number.isInteger(value) && value >= 0)) {
      throw new RangeError(
        `eventualConsistency ${name} must be a whole number from 0; got ${value}`,
      );
    }
  }
  const now = options.now ?? Date.now;
  const resources = new Set(options.resources ?? ['snapshots', 'images']);
  const created = new Map<string, number>();
  const timesHidden = new Map<string, number>();
  let hidden = 0;

  const stillHidden = (id: string, at: number): boolean => {
    const madeAt = created.get(id);
    if (madeAt === undefined) return false;
    const byTime = lagMs !== undefined && at - madeAt < lagMs;
    const byCount = describes !== undefined && (timesHidden.get(id) ?? 0) < describes;
    if (!byTime && !byCount) return false;
    timesHidden.set(id, (timesHidden.get(id) ?? 0) + 1);
    hidden += 1;
    return true;
  };

  const observe = (answer: ProxyAnswer): string => {
    if (answer.status < 300) {
      const at = now();
      for (const match of answer.body.matchAll(/<(?:snapshotId|imageId)>([^<]+)</g)) {
        const id = match[1] as string;
        if (!created.has(id)) created.set(id, at);
      }
    }
    return answer.body;
  };

  const filterDescribe =
    (set: 'snapshotSet' | 'imagesSet') =>
    (answer: ProxyAnswer): string => {
      if (answer.status >= 300) return answer.body;
      const at = now();
      return rewriteXmlItems(answer.body, set, (item) => {
        const id = xmlValue(item, set === 'snapshotSet' ? 'snapshotId' : 'imageId');
        if (id === undefined) return item;
        if (set === 'snapshotSet' && !created.has(id)) {
          // An AMI's snapshot, which CreateImage's answer does not name, follows its AMI.
          const ami = /\bfor (ami-[0-9a-f]+)/.exec(xmlValue(item, 'description') ?? '')?.[1];
          const amiMadeAt = ami === undefined ? undefined : created.get(ami);
          if (amiMadeAt !== undefined) created.set(id, amiMadeAt);
        }
        return stillHidden(id, at) ? undefined : item;
      });
    };

  const actions = new Set<string>(CREATE_ACTIONS);
  if (resources.has('snapshots')) actions.add('DescribeSnapshots');
  if (resources.has('images')) actions.add('DescribeImages');
  return {
    name: 'eventual consistency',
    action: (action) => actions.has(action),
    decide: (call) => {
      if (call.action === 'DescribeSnapshots') return rewriteAnswer(filterDescribe('snapshotSet'));
      if (call.action === 'DescribeImages') return rewriteAnswer(filterDescribe('imagesSet'));
      return rewriteAnswer(observe);
    },
    created,
    hidden: () => hidden,
  };
}

/** A described snapshot, as {@link copiesReportUnknownVolume}'s predicate sees it. */
export interface DescribedSnapshotItem {
  readonly snapshotId: string;
  readonly volumeId?: string | undefined;
  readonly description?: string | undefined;
  readonly tags: Readonly<Record<string, string>>;
  /** The signing region of the describe call. */
  readonly region?: string | undefined;
}

/** Options of {@link copiesReportUnknownVolume}. */
export interface CopiedVolumeOptions {
  /** Every snapshot described in these regions is a copy (e.g. a disaster-recovery region). */
  readonly regions?: readonly string[] | undefined;
  /** Picks copies by description or tags, e.g. those with a source-snapshot tag. */
  readonly isCopy?: ((snapshot: DescribedSnapshotItem) => boolean) | undefined;
}

/** The copied-volume rule, with what it has done so far. */
export interface CopiedVolumeRule extends FaultRule {
  /** Snapshot ids a `CopySnapshot` through the proxy answered. */
  readonly copies: ReadonlySet<string>;
  /** How many described snapshots had their volume id rewritten. */
  readonly rewritten: () => number;
}

/** The volume id AWS reports for a snapshot made by CopySnapshot. */
export const COPIED_VOLUME_ID = 'vol-ffffffff';

/**
 * A rule that makes `DescribeSnapshots` report copies as AWS does: a snapshot made by
 * `CopySnapshot` has the volume id `vol-ffffffff` (moto reports the source's volume).
 * Copies are the snapshots a `CopySnapshot` through the proxy answered, every snapshot
 * described in `regions`, and those `isCopy` picks. A describe filtered by `volume-id`
 * loses the copies unless it asked for `vol-ffffffff`, as on AWS.
 *
 * @example
 * proxy.rules.add(copiesReportUnknownVolume({ isCopy: (s) => 'snapkeeper:source-snapshot' in s.tags }));
 */
export function copiesReportUnknownVolume(options: CopiedVolumeOptions = {}): CopiedVolumeRule {
  const copies = new Set<string>();
  const regions = new Set(options.regions ?? []);
  let rewritten = 0;
  return {
    name: 'copies report vol-ffffffff',
    action: ['CopySnapshot', 'DescribeSnapshots'],
    decide: (call) => {
      if (call.action === 'CopySnapshot') {
        return rewriteAnswer((answer) => {
          const id = answer.status < 300 ? xmlValue(answer.body, 'snapshotId') : undefined;
          if (id !== undefined) copies.add(id);
          return answer.body;
        });
      }
      const volumeFilter = queryFilterValues(call.params, 'volume-id');
      return rewriteAnswer((answer) => {
        if (answer.status >= 300) return answer.body;
        return rewriteXmlItems(answer.body, 'snapshotSet', (item) => {
          const snapshotId = xmlValue(item, 'snapshotId');
          if (snapshotId === undefined) return item;
          const described: DescribedSnapshotItem = {
            snapshotId,
            volumeId: xmlValue(item, 'volumeId'),
            description: xmlValue(item, 'description'),
            tags: xmlTags(item),
            region: call.region,
          };
          const isCopy =
            copies.has(snapshotId) ||
            (call.region !== undefined && regions.has(call.region)) ||
            (options.isCopy?.(described) ?? false);
          if (!isCopy) return item;
          if (volumeFilter && !volumeFilter.includes(COPIED_VOLUME_ID)) return undefined;
          if (described.volumeId === COPIED_VOLUME_ID) return item;
          rewritten += 1;
          return described.volumeId === undefined
            ? item.replace(/<\/item>\s*$/, `<volumeId>${COPIED_VOLUME_ID}</volumeId></item>`)
            : item.replace(
                /<volumeId>[^<]*<\/volumeId>/,
                `<volumeId>${COPIED_VOLUME_ID}</volumeId>`,
              );
        });
      });
    },
    copies,
    rewritten: () => rewritten,
  };
}

/**
 * Rewrites the direct `<item>` children of the first `<set>` element of an EC2 XML
 * answer: `change` returns the item's new text, or undefined to drop it. Nested
 * `<item>`s (tags, block device mappings) stay with their parent. The rest of the
 * answer is left byte for byte. Exported for the proxy's own unit tests.
 *
 * @example
 * rewriteXmlItems(body, 'snapshotSet', (item) => (item.includes('snap-1') ? undefined : item));
 */
export function rewriteXmlItems(
  body: string,
  set: string,
  change: (item: string) => string | undefined,
): string {
  const open = body.search(new RegExp(`<${set}>`));
  if (open < 0) return body;
  const start = open + set.length + 2;
  const close = body.indexOf(`</${set}>`, start);
  if (close < 0) return body;
  const inner = body.slice(start, close);
  const token = /<(\/?)item>|<item\/>/g;
  let out = '';
  let depth = 0;
  let itemStart = -1;
  let last = 0;
  for (let match = token.exec(inner); match; match = token.exec(inner)) {
    if (match[0] === '<item/>') continue;
    if (match[1] === '') {
      if (depth === 0) itemStart = match.index;
      depth += 1;
      continue;
    }
    depth -= 1;
    if (depth !== 0) continue;
    const end = match.index + match[0].length;
    const changed = change(inner.slice(itemStart, end));
    out += inner.slice(last, itemStart) + (changed ?? '');
    last = end;
  }
  out += inner.slice(last);
  return body.slice(0, start) + out + body.slice(close);
}

/** The text of the first `<name>` element at any depth (unescaped), if any. */
function xmlValue(xmlText: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xmlText);
  return match ? unxml(match[1] as string) : undefined;
}

/** The tags of a described item (`<tagSet><item><key>..</key><value>..</value></item>...`). */
function xmlTags(item: string): Record<string, string> {
  const tags: Record<string, string> = {};
  const tagSet = /<tagSet>([\s\S]*?)<\/tagSet>/.exec(item)?.[1] ?? '';
  for (const tag of tagSet.matchAll(/<item>([\s\S]*?)<\/item>/g)) {
    const key = xmlValue(tag[1] as string, 'key');
    if (key !== undefined) tags[key] = xmlValue(tag[1] as string, 'value') ?? '';
  }
  return tags;
}

/** The values of an EC2 query filter (`Filter.N.Name` / `Filter.N.Value.M`), if the call has it. */
function queryFilterValues(
  params: Readonly<Record<string, string>>,
  name: string,
): string[] | undefined {
  for (const [key, value] of Object.entries(params)) {
    const match = /^Filter\.(\d+)\.Name$/.exec(key);
    if (!match || value !== name) continue;
    const prefix = `Filter.${match[1]}.Value.`;
    return Object.entries(params)
      .filter(([k]) => k.startsWith(prefix))
      .map(([, v]) => v);
  }
  return undefined;
}

function unxml(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
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
