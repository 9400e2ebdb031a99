/**
 * The deployment's settings of application-consistent snapshot sets (issue 21, part 1),
 * read from the environment by `loadConfig`.
 */
import {
  DEFAULT_PRE_TIMEOUT_SECONDS,
  DEFAULT_VSS_TIMEOUT_SECONDS,
  FSFREEZE_DOCUMENT,
} from '../domain/consistency.ts';
import { ConfigurationError } from '../domain/errors.ts';

/** What the backup job needs to run pre and post scripts. */
export interface ConsistencySettings {
  /** Seconds the run waits for a pre (or post) script (`CONSISTENCY_TIMEOUT_SECONDS`, 30). */
  readonly consistencyTimeoutSeconds: number;
  /**
   * Seconds the run waits for AWSEC2-CreateVssSnapshot (`CONSISTENCY_VSS_TIMEOUT_SECONDS`,
   * 180, 30 to 600): VSS freezes the writers, snapshots every volume and tags them.
   */
  readonly consistencyVssTimeoutSeconds: number;
  /** The stage's own copy of the fsfreeze document (`CONSISTENCY_FSFREEZE_DOCUMENT`). */
  readonly consistencyFsfreezeDocument: string;
  /**
   * The operator's own documents `ssm:<document>` may name (`CONSISTENCY_DOCUMENTS`, comma
   * separated): the stack's IAM allows SendCommand for these (and the fsfreeze document)
   * only, so another is refused before any call, with the reason, and falls back.
   */
  readonly consistencyDocuments: readonly string[];
  /**
   * Local AWS only (`LOCAL_SSM_ENDPOINT`): Systems Manager's endpoint when it is not
   * `AWS_ENDPOINT_URL`'s, e.g. a fault proxy that marks an instance unmanaged in the demo.
   */
  readonly localSsmEndpoint?: string | undefined;
}

const DOCUMENT_NAME = /^[A-Za-z0-9_.-]{3,128}$/;

/**
 * Reads the consistency settings.
 *
 * @throws {ConfigurationError} naming the variable and the fix.
 * @example
 * loadConsistencySettings({ CONSISTENCY_TIMEOUT_SECONDS: '45' }).consistencyTimeoutSeconds; // 45
 */
export function loadConsistencySettings(
  env: Readonly<Record<string, string | undefined>>,
): ConsistencySettings {
  const timeout = readSeconds(env, 'CONSISTENCY_TIMEOUT_SECONDS', DEFAULT_PRE_TIMEOUT_SECONDS, {
    min: 5,
    max: 300,
    what: "the wait for a pre script, and the freeze's bound less 60 s",
  });
  const vssTimeout = readSeconds(
    env,
    'CONSISTENCY_VSS_TIMEOUT_SECONDS',
    DEFAULT_VSS_TIMEOUT_SECONDS,
    {
      min: 30,
      max: 600,
      what: 'the wait for AWSEC2-CreateVssSnapshot',
    },
  );
  const fsfreeze = env.CONSISTENCY_FSFREEZE_DOCUMENT?.trim() || FSFREEZE_DOCUMENT;
  const documents = (env.CONSISTENCY_DOCUMENTS ?? '')
    .split(',')
    .map((d) => d.trim())
    .filter((d) => d !== '');
  for (const name of [fsfreeze, ...documents]) {
    if (!DOCUMENT_NAME.test(name)) {
      throw new ConfigurationError(
        name === fsfreeze ? 'CONSISTENCY_FSFREEZE_DOCUMENT' : 'CONSISTENCY_DOCUMENTS',
        `${JSON.stringify(name)} is not an SSM document name (3-128 letters, digits, "_", "-" or ".")`,
      );
    }
  }
  const localSsmEndpoint = env.LOCAL_SSM_ENDPOINT?.trim() || undefined;
  return {
    ...(localSsmEndpoint ? { localSsmEndpoint } : {}),
    consistencyTimeoutSeconds: timeout,
    consistencyVssTimeoutSeconds: vssTimeout,
    consistencyFsfreezeDocument: fsfreeze,
    consistencyDocuments: [...new Set(documents)],
  };
}

/** A whole number of seconds from `min` to `max`, or `fallback` when unset. */
function readSeconds(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  fallback: number,
  range: { readonly min: number; readonly max: number; readonly what: string },
): number {
  const raw = env[name]?.trim() ?? '';
  if (raw === '') return fallback;
  const seconds = Number(raw);
  if (!/^\d+$/.test(raw) || seconds < range.min || seconds > range.max) {
    throw new ConfigurationError(
      name,
      `must be a whole number of seconds from ${range.min} to ${range.max} (${range.what}); got ${JSON.stringify(raw)}`,
    );
  }
  return seconds;
}
