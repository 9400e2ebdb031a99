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
  const rawTimeout = env.CONSISTENCY_TIMEOUT_SECONDS?.trim() ?? '';
  let timeout = DEFAULT_PRE_TIMEOUT_SECONDS;
  if (rawTimeout !== '') {
    timeout = Number(rawTimeout);
    if (!/^\d+$/.test(rawTimeout) || timeout < 5 || timeout > 300) {
      throw new ConfigurationError(
        'CONSISTENCY_TIMEOUT_SECONDS',
        `must be a whole number of seconds from 5 to 300 (the wait for a pre script, and the freeze's bound less 60 s); got ${JSON.stringify(rawTimeout)}`,
      );
    }
  }
  const rawVss = env.CONSISTENCY_VSS_TIMEOUT_SECONDS?.trim() ?? '';
  let vssTimeout = DEFAULT_VSS_TIMEOUT_SECONDS;
  if (rawVss !== '') {
    vssTimeout = Number(rawVss);
    if (!/^\d+$/.test(rawVss) || vssTimeout < 30 || vssTimeout > 600) {
      throw new ConfigurationError(
        'CONSISTENCY_VSS_TIMEOUT_SECONDS',
        `must be a whole number of seconds from 30 to 600 (the wait for AWSEC2-CreateVssSnapshot); got ${JSON.stringify(rawVss)}`,
      );
    }
  }
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
