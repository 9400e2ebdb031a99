/**
 * Each adapter satisfies its port. The checks are at the type level: `npx tsc` (run by
 * `npm test`) fails to compile this file when an adapter drifts from its port, and the
 * tests below only name which pair each line checks.
 */
import { describe, expectTypeOf, it } from 'vitest';
import type { AutoScalingGateway } from '../../lib/aws/AutoScalingGateway.ts';
import type { EbsDirectGateway } from '../../lib/aws/EbsDirectGateway.ts';
import type { Ec2CopyGateway } from '../../lib/aws/Ec2CopyGateway.ts';
import type { Ec2Gateway } from '../../lib/aws/Ec2Gateway.ts';
import type { Ec2ImageGateway } from '../../lib/aws/Ec2ImageGateway.ts';
import type { Ec2RestoreGateway } from '../../lib/aws/Ec2RestoreGateway.ts';
import type { Ec2RestoreTestGateway } from '../../lib/aws/Ec2RestoreTestGateway.ts';
import type { FanOutQueueGateway } from '../../lib/aws/FanOutQueueGateway.ts';
import type { SnapshotSizeRecords } from '../../lib/aws/history/snapshotSizes.ts';
import type { RecycleBinGateway } from '../../lib/aws/RecycleBinGateway.ts';
import type { RunEventsGateway } from '../../lib/aws/RunEventsGateway.ts';
import type { RunHistoryGateway } from '../../lib/aws/RunHistoryGateway.ts';
import type { SsmGateway } from '../../lib/aws/SsmGateway.ts';
import type {
  ActionJournal,
  BatchCheckpointsPort,
  CopiesPort,
  CreationLedgerPort,
  EbsDirectPort,
  Ec2Port,
  FanOutQueuePort,
  HistoryJournalPort,
  HistoryQueriesPort,
  ImageHoldersPort,
  ImagePublicAccessPort,
  ImagesPort,
  InstancesPort,
  LoggerPort,
  MetricsPort,
  RecycleBinPort,
  RestorePort,
  RestoreTestPort,
  RunCommandPort,
  RunEventsPort,
  RunHistoryPort,
  RunsPort,
  SlotClaimsPort,
  SnapshotSizesPort,
  SnapshotsPort,
} from '../../lib/jobs/ports.ts';
import { logJournal, noMetrics, silentLogger } from '../../lib/jobs/runReport.ts';

describe('the EC2 adapters satisfy their ports', () => {
  it('Ec2Gateway is the EC2 port: instances, volumes, snapshots and own images', () => {
    expectTypeOf<Ec2Gateway>().toExtend<Ec2Port>();
    expectTypeOf<Ec2Gateway>().toExtend<InstancesPort>();
    expectTypeOf<Ec2Gateway>().toExtend<SnapshotsPort>();
  });

  it('Ec2ImageGateway is the images port, and the image block public access port', () => {
    expectTypeOf<Ec2ImageGateway>().toExtend<ImagesPort>();
    expectTypeOf<Ec2ImageGateway>().toExtend<ImagePublicAccessPort>();
  });

  it('Ec2CopyGateway is the copies, sharing and exposure port', () => {
    expectTypeOf<Ec2CopyGateway>().toExtend<CopiesPort>();
  });

  it('Ec2RestoreGateway is the restore port', () => {
    expectTypeOf<Ec2RestoreGateway>().toExtend<RestorePort>();
  });

  it('SsmGateway is the Run Command port', () => {
    expectTypeOf<SsmGateway>().toExtend<RunCommandPort>();
  });

  it('Ec2RestoreTestGateway is the restore-test port', () => {
    expectTypeOf<Ec2RestoreTestGateway>().toExtend<RestoreTestPort>();
  });

  it('AutoScalingGateway and RecycleBinGateway are the image-holder ports', () => {
    expectTypeOf<AutoScalingGateway>().toExtend<ImageHoldersPort>();
    expectTypeOf<RecycleBinGateway>().toExtend<RecycleBinPort>();
  });
});

describe('the other adapters satisfy their ports', () => {
  it('EbsDirectGateway is the EBS direct port, SnapshotSizeRecords the snapshot sizes port (the cost ledger)', () => {
    expectTypeOf<EbsDirectGateway>().toExtend<EbsDirectPort>();
    expectTypeOf<SnapshotSizeRecords>().toExtend<SnapshotSizesPort>();
  });

  it('FanOutQueueGateway is the fan-out queue port', () => {
    expectTypeOf<FanOutQueueGateway>().toExtend<FanOutQueuePort>();
  });

  it('RunEventsGateway is the events port', () => {
    expectTypeOf<RunEventsGateway>().toExtend<RunEventsPort>();
  });

  it('RunHistoryGateway is every history port: slot claims, runs, journal, batches, queries, ledger', () => {
    expectTypeOf<RunHistoryGateway>().toExtend<RunHistoryPort>();
    expectTypeOf<RunHistoryGateway>().toExtend<SlotClaimsPort>();
    expectTypeOf<RunHistoryGateway>().toExtend<RunsPort>();
    expectTypeOf<RunHistoryGateway>().toExtend<HistoryJournalPort>();
    expectTypeOf<RunHistoryGateway>().toExtend<ActionJournal>();
    expectTypeOf<RunHistoryGateway>().toExtend<BatchCheckpointsPort>();
    expectTypeOf<RunHistoryGateway>().toExtend<HistoryQueriesPort>();
    expectTypeOf<RunHistoryGateway>().toExtend<CreationLedgerPort>();
  });

  it('the silent logger, the dropped metrics and the log journal are a logger, metrics and a journal', () => {
    expectTypeOf(silentLogger).toExtend<LoggerPort>();
    expectTypeOf(noMetrics).toExtend<MetricsPort>();
    expectTypeOf(logJournal(silentLogger)).toExtend<ActionJournal>();
  });
});

describe('a port refuses an adapter that drifts', () => {
  it('a gateway missing a method, or with another signature, is not its port', () => {
    expectTypeOf<Omit<Ec2Gateway, 'deleteSnapshot'>>().not.toExtend<SnapshotsPort>();
    expectTypeOf<
      Omit<RunEventsGateway, 'publishRunFinished'> & {
        publishRunFinished(x: number): Promise<void>;
      }
    >().not.toExtend<RunEventsPort>();
  });
});
