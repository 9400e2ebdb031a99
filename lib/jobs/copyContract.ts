import type { SnapkeeperConfig } from '../config/environment.ts';
import type { AmiPublicAccessPort, AmiPublicAccessResult } from './amiPublicAccess.ts';
import type { CreationLedger } from './ownership.ts';
import type {
  ActionJournal,
  CopiesPort,
  Ec2Port,
  ImagesPort,
  ReportedError,
  SnapshotsPort,
} from './ports.ts';
import type { RunEssentials, RunInput, RunReportHeader } from './runOpening.ts';

// What the copy job is asked, reads and acts through, and answers: the types its parts
// (copies, destination retention, shares, exposure) share with runCopyJob.

/** The gateways of one region. */
export interface RegionGateways {
  readonly ec2: Pick<SnapshotsPort, 'listSnapshotsTagged' | 'deleteSnapshot' | 'snapshotHolders'>;
  readonly images: Pick<ImagesPort, 'listImagesTagged' | 'deregisterImage'> & AmiPublicAccessPort;
  readonly copies: Pick<CopiesPort, 'copySnapshot' | 'copyImage'>;
}

/** What the copy job reads and acts through. */
export interface CopyJobDependencies extends RunEssentials {
  readonly ec2: Pick<
    Ec2Port,
    'listInstancesWithTagKey' | 'listSnapshotsTagged' | 'describeSnapshotsByIds'
  >;
  readonly images: Pick<ImagesPort, 'listImagesTagged'> & AmiPublicAccessPort;
  /** Shares and public exposure in the source region. */
  readonly sharing: Pick<
    CopiesPort,
    | 'snapshotGrants'
    | 'imageGrants'
    | 'changeSnapshotGrants'
    | 'changeImageGrants'
    | 'publicSnapshots'
    | 'publicImages'
  >;
  readonly destination: (region: string) => RegionGateways;
  readonly config: Pick<
    SnapkeeperConfig,
    | 'region'
    | 'deployment'
    | 'keys'
    | 'catalog'
    | 'manualRetainDays'
    | 'copyKmsKeys'
    | 'makePrivate'
    | 'localTagAfterCreate'
  > &
    Partial<Pick<SnapkeeperConfig, 'blockPublicAmis' | 'maxInFlight'>>;
  /**
   * The run history's creation records: destination retention deletes only the copies
   * it recorded making (`copy-snapshot`, `copy-image`), or made before it kept records.
   * Without it, the tags alone decide.
   */
  readonly ledger?: CreationLedger | undefined;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** What a copy run is asked to do. */
export interface CopyJobInput extends Pick<RunInput, 'dryRun' | 'trigger'> {
  /** Copy these source snapshots (an `EBS Snapshot Notification`); all of them when absent. */
  readonly snapshotIds?: readonly string[] | undefined;
}

/** One copy of one source into one region. */
export interface CopyResult {
  readonly kind: 'snapshot' | 'image';
  readonly sourceId: string;
  readonly region: string;
  /** `retired`: copy retention removed (or would at once remove) its copy; not copied again. */
  readonly outcome: 'copied' | 'exists' | 'waiting' | 'planned' | 'retired' | 'failed';
  readonly copyId?: string | undefined;
  readonly encryptedWith?: string | undefined;
  readonly reason?: string | undefined;
  readonly error?: ReportedError | undefined;
}

/** The JSON report of a copy run. */
export interface CopyReport extends RunReportHeader<'copy'> {
  readonly counts: {
    readonly copied: number;
    readonly existing: number;
    readonly waiting: number;
    readonly failed: number;
    readonly copiesDeleted: number;
    readonly imageCopiesDeregistered: number;
    readonly sharesChanged: number;
    readonly publicFindings: number;
  };
  readonly copies: readonly CopyResult[];
  readonly destinationRetention: readonly {
    region: string;
    resourceId: string;
    action: 'deleted' | 'deregistered' | 'planned' | 'failed' | 'skipped';
    reason: string;
  }[];
  readonly shares: readonly {
    resourceId: string;
    added: readonly string[];
    removed: readonly string[];
    outcome: 'changed' | 'planned' | 'blocked' | 'failed';
    reason?: string | undefined;
  }[];
  /** Public snapshots and AMIs of the account: a security finding each. */
  readonly publicFindings: readonly {
    resourceId: string;
    kind: 'snapshot' | 'image';
    managed: boolean;
    madePrivate: boolean;
  }[];
  /** The account's block public access for AMIs, per region (source, then destinations). */
  readonly amiBlockPublicAccess: readonly AmiPublicAccessResult[];
  readonly problems: readonly string[];
}

/** One destination retention entry of a copy report. */
export type DestinationRetentionResult = CopyReport['destinationRetention'][number];

/** One share entry of a copy report. */
export type ShareResult = CopyReport['shares'][number];

/** One public finding of a copy report. */
export type PublicFinding = CopyReport['publicFindings'][number];

/** One copy run as its parts see it: what it was asked, its dependencies, and its journal. */
export interface CopyRun {
  readonly input: CopyJobInput;
  readonly deps: CopyJobDependencies;
  /** The journal of record: the dependencies' one, else a log of each record. */
  readonly journal: ActionJournal;
  readonly sleep: (ms: number) => Promise<void>;
  /** The run's problems so far; each part adds its own, in the order they arise. */
  readonly problems: string[];
}
