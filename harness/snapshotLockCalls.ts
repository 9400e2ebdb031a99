/**
 * The EBS snapshot-lock calls, answered by the fault proxy as EC2 answers them, since
 * moto does not implement them. Shapes followed (EC2 API reference, and the SDK's own
 * deserializer: elements `snapshotId`, `lockState`, `lockDuration`, `coolOffPeriod`,
 * `coolOffPeriodExpiresOn`, `lockCreatedOn`, `lockExpiresOn`, `lockDurationStartTime`,
 * `ownerId`; lists in `snapshotSet`/`item` with `nextToken`):
 * - `LockSnapshot`: LockMode governance | compliance; LockDuration (1-36500 days) or
 *   ExpirationDate, not both; CoolOffPeriod (1-72 hours) only with compliance; answers
 *   the lock, `compliance-cooloff` while the cool-off runs;
 * - `DescribeLockedSnapshots`: the locks of `SnapshotId.N` (or every lock), a state
 *   computed at the time of the call (`expired` once LockExpiresOn has passed);
 * - `DeleteSnapshot` of a snapshot whose lock holds: refused, HTTP 400. The exact error
 *   code EC2 uses was not found in the documentation; `SnapshotLocked` is this harness's
 *   choice, and nothing in snapkeeper depends on it (a failed deletion is reported
 *   whatever its code).
 * A snapshot id this emulator never saw is taken to exist (moto holds the snapshots);
 * `refuse` makes LockSnapshot of the listed ids fail like EC2 does for a snapshot that
 * does not exist.
 */
import {
  type AnswerEffect,
  type AwsErrorEffect,
  awsError,
  type FaultRule,
  type ProxyCall,
} from './faultProxy.ts';

const XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';
const DAY_MS = 86_400_000;

interface Lock {
  snapshotId: string;
  mode: 'governance' | 'compliance';
  createdOn: Date;
  expiresOn: Date;
  duration?: number | undefined;
  coolOffHours?: number | undefined;
}

/** The lock calls' state, and the rule that answers them. */
export interface SnapshotLockEmulator {
  readonly rule: FaultRule;
  /** The locks applied so far, by snapshot id. */
  readonly locks: ReadonlyMap<string, Readonly<Lock>>;
  /** Snapshot ids whose LockSnapshot is refused (`InvalidSnapshot.NotFound`). */
  readonly refuse: Set<string>;
}

/**
 * Answers LockSnapshot, DescribeLockedSnapshots and (for locked snapshots) DeleteSnapshot
 * as EC2 does; everything else goes on to moto. `clock` is the proxy's idea of now (the
 * demo shifts it).
 *
 * @example
 * const locks = snapshotLockEmulator();
 * proxy.rules.add(locks.rule);
 */
export function snapshotLockEmulator(clock: () => Date = () => new Date()): SnapshotLockEmulator {
  const locks = new Map<string, Lock>();
  const refuse = new Set<string>();
  const rule: FaultRule = {
    name: 'EBS snapshot lock (emulated)',
    action: ['LockSnapshot', 'DescribeLockedSnapshots', 'DeleteSnapshot'],
    decide: (call) => {
      const now = clock();
      switch (call.action) {
        case 'LockSnapshot':
          return lockSnapshot(call, now, locks, refuse);
        case 'DescribeLockedSnapshots':
          return describeLocked(call, now, locks);
        default: {
          const lock = locks.get(call.params.SnapshotId ?? '');
          if (!lock || stateOf(lock, now) === 'expired') return undefined;
          return awsError(
            'SnapshotLocked',
            400,
            `The snapshot '${lock.snapshotId}' is locked (${stateOf(lock, now)}) until ${iso(lock.expiresOn)} and can't be deleted.`,
          );
        }
      }
    },
  };
  return { rule, locks, refuse };
}

function lockSnapshot(
  call: ProxyCall,
  now: Date,
  locks: Map<string, Lock>,
  refuse: ReadonlySet<string>,
): AnswerEffect | AwsErrorEffect {
  const p = call.params;
  const snapshotId = p.SnapshotId ?? '';
  if (refuse.has(snapshotId)) {
    return awsError(
      'InvalidSnapshot.NotFound',
      400,
      `The snapshot '${snapshotId}' does not exist.`,
    );
  }
  const mode = p.LockMode;
  if (mode !== 'governance' && mode !== 'compliance') {
    return awsError(
      'InvalidParameterValue',
      400,
      `Value (${mode}) for parameter LockMode is invalid.`,
    );
  }
  if ((p.LockDuration === undefined) === (p.ExpirationDate === undefined)) {
    return awsError(
      'InvalidParameterCombination',
      400,
      'Specify either LockDuration or ExpirationDate.',
    );
  }
  if (p.CoolOffPeriod !== undefined && mode !== 'compliance') {
    return awsError(
      'InvalidParameterCombination',
      400,
      'CoolOffPeriod is only valid with compliance mode.',
    );
  }
  const duration = p.LockDuration === undefined ? undefined : Number(p.LockDuration);
  if (
    duration !== undefined &&
    !(Number.isInteger(duration) && duration >= 1 && duration <= 36_500)
  ) {
    return awsError(
      'InvalidParameterValue',
      400,
      `Value (${p.LockDuration}) for parameter LockDuration is invalid. Valid range is 1-36500.`,
    );
  }
  const expiresOn =
    duration !== undefined
      ? new Date(now.getTime() + duration * DAY_MS)
      : new Date(p.ExpirationDate ?? '');
  if (Number.isNaN(expiresOn.getTime()) || expiresOn.getTime() <= now.getTime()) {
    return awsError('InvalidParameterValue', 400, 'The ExpirationDate must be in the future.');
  }
  const coolOffHours = p.CoolOffPeriod === undefined ? undefined : Number(p.CoolOffPeriod);
  const lock: Lock = { snapshotId, mode, createdOn: now, expiresOn, duration, coolOffHours };
  locks.set(snapshotId, lock);
  return xmlAnswer('LockSnapshotResponse', lockFields(lock, now));
}

function describeLocked(
  call: ProxyCall,
  now: Date,
  locks: ReadonlyMap<string, Lock>,
): AnswerEffect {
  const asked = Object.entries(call.params)
    .filter(([key]) => /^SnapshotId\.\d+$/.test(key))
    .map(([, value]) => value);
  const shown = [...locks.values()].filter(
    (l) => asked.length === 0 || asked.includes(l.snapshotId),
  );
  const items = shown
    .map((l) => `<item><ownerId>123456789012</ownerId>${lockFields(l, now)}</item>`)
    .join('');
  return xmlAnswer('DescribeLockedSnapshotsResponse', `<snapshotSet>${items}</snapshotSet>`);
}

function stateOf(lock: Lock, now: Date): string {
  if (now.getTime() >= lock.expiresOn.getTime()) return 'expired';
  if (lock.mode === 'governance') return 'governance';
  const coolOffEnds = lock.createdOn.getTime() + (lock.coolOffHours ?? 0) * 3_600_000;
  return now.getTime() < coolOffEnds ? 'compliance-cooloff' : 'compliance';
}

function lockFields(lock: Lock, now: Date): string {
  return [
    `<snapshotId>${lock.snapshotId}</snapshotId>`,
    `<lockState>${stateOf(lock, now)}</lockState>`,
    lock.duration !== undefined ? `<lockDuration>${lock.duration}</lockDuration>` : '',
    lock.coolOffHours !== undefined
      ? `<coolOffPeriod>${lock.coolOffHours}</coolOffPeriod><coolOffPeriodExpiresOn>${iso(new Date(lock.createdOn.getTime() + lock.coolOffHours * 3_600_000))}</coolOffPeriodExpiresOn>`
      : '',
    `<lockCreatedOn>${iso(lock.createdOn)}</lockCreatedOn>`,
    `<lockDurationStartTime>${iso(lock.createdOn)}</lockDurationStartTime>`,
    `<lockExpiresOn>${iso(lock.expiresOn)}</lockExpiresOn>`,
  ].join('');
}

function xmlAnswer(element: string, inner: string): AnswerEffect {
  return {
    kind: 'answer',
    status: 200,
    contentType: 'text/xml;charset=UTF-8',
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<${element} xmlns="${XMLNS}"><requestId>00000000-0000-4000-8000-000000000000</requestId>${inner}</${element}>`,
  };
}

function iso(date: Date): string {
  return date.toISOString();
}
