/**
 * The jobs `npm run bench` measures, which peers have them, and the local AWS's answers
 * the bench corrects to what AWS answers (scripts/bench/scaleBench.ts).
 */
import type { FaultRule } from '../../harness/faultProxy.ts';

/**
 * The jobs the bench measures, in the order they run on one fleet: `copies` copies to
 * another region, `amis` is AMI retirement. Copies run before the AMIs are seeded: at
 * 5,000 instances the copy job's reads on a moto holding 10,000 AMIs and their 25,000
 * snapshots did not answer in 4.5 minutes; right after the backups, 30 s.
 */
export const BENCH_JOBS = ['backup', 'retention', 'copies', 'amis'] as const;

/** One job the bench measures. */
export type BenchJob = (typeof BENCH_JOBS)[number];

/** The peers measured beside snapkeeper, in the order they are printed. */
export const BENCH_PEERS = ['c7n', 'naive per-volume loop'] as const;

/** Which peers have a job: Cloud Custodian backs up and deletes snapshots, the naive loop backs up. */
export const PEER_JOBS: Readonly<Record<BenchJob, readonly string[]>> = {
  backup: ['c7n', 'naive per-volume loop'],
  retention: ['c7n'],
  amis: [],
  copies: [],
};

/**
 * A comma-separated option's value as names it takes; an unknown name is refused with
 * the names it takes.
 *
 * @example
 * parseNames('--limits', ['default', 'raised'], 'raised'); // Set { 'raised' }
 */
export function parseNames<T extends string>(
  option: string,
  names: readonly T[],
  value: string,
): Set<T> {
  const chosen = new Set<T>();
  for (const name of value.split(',').map((n) => n.trim())) {
    if (!(names as readonly string[]).includes(name)) {
      throw new Error(
        `${option} takes ${names.join(', ')}; got ${JSON.stringify(name)} (see npm run bench -- --help)`,
      );
    }
    chosen.add(name as T);
  }
  return chosen;
}

/**
 * The `--jobs` value as jobs; an unknown name is refused with the names it takes.
 *
 * @example
 * parseBenchJobs('backup, amis'); // Set { 'backup', 'amis' }
 */
export function parseBenchJobs(value: string): Set<BenchJob> {
  return parseNames('--jobs', BENCH_JOBS, value);
}

/** Why a peer has no figures for a job at a size. */
export interface PeerGap {
  readonly peer: (typeof BENCH_PEERS)[number];
  readonly note: string;
}

/**
 * Each peer that has no figures for a job at a size, and why: it has no such job, it
 * was turned off (`--no-custodian`, `--no-naive`), or the fleet is above `peersMax`.
 *
 * @example
 * peerGaps('backup', 5000, { peersMax: 1000 }); // both peers: 'skipped: peers run up to 1,000 instances ...'
 */
export function peerGaps(
  job: BenchJob,
  size: number,
  options: { readonly peersMax?: number; readonly off?: ReadonlySet<string> } = {},
): PeerGap[] {
  const gaps: PeerGap[] = [];
  for (const peer of BENCH_PEERS) {
    const note = !PEER_JOBS[job].includes(peer)
      ? 'no such job'
      : options.off?.has(peer)
        ? `not run (--no-${peer === 'c7n' ? 'custodian' : 'naive'})`
        : options.peersMax !== undefined && size > options.peersMax
          ? `skipped: peers run up to ${options.peersMax.toLocaleString('en-US')} instances (--peers-max); above it each would add minutes at the same pace`
          : undefined;
    if (note) gaps.push({ peer, note });
  }
  return gaps;
}

/**
 * A peer's gap as a printed line, aligned with the measured runs' lines.
 *
 * @example
 * peerGapLine('amis', 1000, { peer: 'c7n', note: 'no such job' });
 */
export function peerGapLine(job: BenchJob, size: number, gap: PeerGap): string {
  return `${job.padEnd(9)} ${String(size).padStart(5)} instances  ${gap.peer.padEnd(22)}  —  (${gap.note})`;
}

/**
 * A "—" row for each peer with no such job, so that one run prints every tool for every job.
 *
 * @example
 * peerGapRows('retention', 1000); // ['retention  1000 instances  naive per-volume loop ... —  (no such job)']
 */
export function peerGapRows(job: BenchJob, size: number): string[] {
  return peerGaps(job, size).map((gap) => peerGapLine(job, size, gap));
}

/**
 * moto ignores `DescribeSnapshots`' `RestorableByUserIds=all` and answers every own
 * snapshot, so the copy job's public-snapshot check would read each one's permissions
 * (thousands of calls AWS never asks for). The bench makes no snapshot public: this
 * rule answers that describe as AWS does, with none; any other describe passes.
 *
 * @example
 * proxy.rules.add(noPublicSnapshotsRule());
 */
export function noPublicSnapshotsRule(): FaultRule {
  return {
    name: 'no public snapshots (as AWS answers RestorableByUserIds=all)',
    action: 'DescribeSnapshots',
    decide: (call) =>
      Object.entries(call.params).some(([k, v]) => k.startsWith('RestorableBy') && v === 'all')
        ? {
            kind: 'rewrite',
            rewrite: (answer) =>
              answer.body.replace(/<snapshotSet>[\s\S]*<\/snapshotSet>/, '<snapshotSet/>'),
          }
        : undefined,
  };
}
