import 'aws-sdk-client-mock-vitest/extend';
import {
  EC2Client,
  EnableImageBlockPublicAccessCommand,
  GetImageBlockPublicAccessStateCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { Ec2ImageGateway } from '../../../lib/aws/Ec2ImageGateway.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';
import {
  amiPublicAccessProblems,
  checkAmiPublicAccess,
} from '../../../lib/jobs/amiPublicAccess.ts';
import { type CopyJobDependencies, runCopyJob } from '../../../lib/jobs/copyJob.ts';
import type { ActionRecord } from '../../../lib/jobs/ports.ts';
import { silentLogger } from '../../../lib/jobs/runReport.ts';
import { sdkError } from '../../support/sdkErrors.ts';

const ec2Mock = mockClient(EC2Client);
const RUN_ID = '20261124T070000Z-0000abcd';

function gateway(region = 'eu-west-1'): Ec2ImageGateway {
  return new Ec2ImageGateway(new EC2Client({ region }));
}

function recorder(): { journal: ActionRecord[]; deps: Parameters<typeof checkAmiPublicAccess>[2] } {
  const journal: ActionRecord[] = [];
  return {
    journal,
    deps: {
      logger: silentLogger,
      runId: RUN_ID,
      journal: {
        record: async (entry) => {
          journal.push(entry);
        },
      },
    },
  };
}

afterEach(() => {
  ec2Mock.reset();
});

describe('Function: checkAmiPublicAccess', () => {
  it('reports the state of each region as GetImageBlockPublicAccessState answers it, changing nothing', async () => {
    // Prepare
    ec2Mock
      .on(GetImageBlockPublicAccessStateCommand)
      .resolves({ ImageBlockPublicAccessState: 'block-new-sharing', ManagedBy: 'account' });
    const { journal, deps } = recorder();

    // Act
    const results = await checkAmiPublicAccess(
      [{ region: 'eu-west-1', images: gateway() }],
      { enable: false, dryRun: false },
      deps,
    );

    // Assess
    expect(results).toEqual([
      { region: 'eu-west-1', state: 'block-new-sharing', managedBy: 'account' },
    ]);
    expect(ec2Mock).not.toHaveReceivedCommand(EnableImageBlockPublicAccessCommand);
    expect(journal).toEqual([]);
  });

  it('reports unblocked without changing it when the stage option is off', async () => {
    // Prepare
    ec2Mock
      .on(GetImageBlockPublicAccessStateCommand)
      .resolves({ ImageBlockPublicAccessState: 'unblocked', ManagedBy: 'account' });

    // Act
    const results = await checkAmiPublicAccess(
      [{ region: 'eu-west-1', images: gateway() }],
      { enable: false, dryRun: false },
      recorder().deps,
    );

    // Assess
    expect(results).toEqual([{ region: 'eu-west-1', state: 'unblocked', managedBy: 'account' }]);
    expect(ec2Mock).not.toHaveReceivedCommand(EnableImageBlockPublicAccessCommand);
  });

  it('turns it on (block-new-sharing) where it is unblocked when the stage option is on, and records it', async () => {
    // Prepare
    ec2Mock
      .on(GetImageBlockPublicAccessStateCommand)
      .resolves({ ImageBlockPublicAccessState: 'unblocked', ManagedBy: 'account' });
    ec2Mock
      .on(EnableImageBlockPublicAccessCommand)
      .resolves({ ImageBlockPublicAccessState: 'block-new-sharing' });
    const { journal, deps } = recorder();

    // Act
    const results = await checkAmiPublicAccess(
      [{ region: 'eu-west-1', images: gateway() }],
      { enable: true, dryRun: false },
      deps,
    );

    // Assess
    expect(ec2Mock).toHaveReceivedCommandExactlyOnceWith(EnableImageBlockPublicAccessCommand, {
      ImageBlockPublicAccessState: 'block-new-sharing',
    });
    expect(results).toEqual([
      { region: 'eu-west-1', state: 'unblocked', managedBy: 'account', action: 'enabled' },
    ]);
    expect(journal).toEqual([
      expect.objectContaining({
        action: 'enable-image-block-public-access',
        resourceId: 'account-setting:eu-west-1',
        phase: 'after',
        outcome: 'done',
      }),
    ]);
  });

  it('only plans it in a dry run', async () => {
    // Prepare
    ec2Mock
      .on(GetImageBlockPublicAccessStateCommand)
      .resolves({ ImageBlockPublicAccessState: 'unblocked', ManagedBy: 'account' });

    // Act
    const results = await checkAmiPublicAccess(
      [{ region: 'eu-west-1', images: gateway() }],
      { enable: true, dryRun: true },
      recorder().deps,
    );

    // Assess
    expect(results[0]?.action).toBe('planned');
    expect(ec2Mock).not.toHaveReceivedCommand(EnableImageBlockPublicAccessCommand);
  });

  it("does not try to change a setting an organization's declarative policy manages, and says so", async () => {
    // Prepare
    ec2Mock
      .on(GetImageBlockPublicAccessStateCommand)
      .resolves({ ImageBlockPublicAccessState: 'unblocked', ManagedBy: 'declarative-policy' });

    // Act
    const results = await checkAmiPublicAccess(
      [{ region: 'eu-west-1', images: gateway() }],
      { enable: true, dryRun: false },
      recorder().deps,
    );

    // Assess
    expect(results[0]?.action).toBe('not-allowed');
    expect(ec2Mock).not.toHaveReceivedCommand(EnableImageBlockPublicAccessCommand);
    expect(amiPublicAccessProblems(results)).toEqual([
      "eu-west-1: block public access for AMIs is off and an organization's declarative policy manages it; ask its owner",
    ]);
  });

  it('reports a refused change as failed, as a problem of the run, without throwing', async () => {
    // Prepare
    ec2Mock
      .on(GetImageBlockPublicAccessStateCommand)
      .resolves({ ImageBlockPublicAccessState: 'unblocked', ManagedBy: 'account' });
    ec2Mock
      .on(EnableImageBlockPublicAccessCommand)
      .rejects(
        sdkError('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403),
      );

    // Act
    const results = await checkAmiPublicAccess(
      [{ region: 'eu-west-1', images: gateway() }],
      { enable: true, dryRun: false },
      recorder().deps,
    );

    // Assess
    expect(results[0]).toMatchObject({
      action: 'failed',
      error: { code: 'UnauthorizedOperation' },
    });
    expect(amiPublicAccessProblems(results)[0]).toContain(
      'eu-west-1: block public access for AMIs could not be turned on (UnauthorizedOperation',
    );
  });

  it('degrades to unknown, with the reason, where the endpoint lacks the API (the local AWS answers HTTP 500)', async () => {
    // Prepare: moto answers an action it does not implement with an HTTP 500.
    ec2Mock
      .on(GetImageBlockPublicAccessStateCommand)
      .rejects(
        sdkError(
          'InternalFailure',
          'The GetImageBlockPublicAccessState action has not been implemented',
          500,
        ),
      );

    // Act
    const results = await checkAmiPublicAccess(
      [{ region: 'eu-west-1', images: gateway() }],
      { enable: true, dryRun: false },
      recorder().deps,
    );

    // Assess
    expect(results).toEqual([
      {
        region: 'eu-west-1',
        state: 'unknown',
        reason: expect.stringContaining('has not been implemented'),
      },
    ]);
    expect(ec2Mock).not.toHaveReceivedCommand(EnableImageBlockPublicAccessCommand);
    expect(amiPublicAccessProblems(results)).toEqual([]);
  });

  it('reads each region once, and says "unknown" for a region whose gateway cannot read it', async () => {
    // Prepare
    ec2Mock
      .on(GetImageBlockPublicAccessStateCommand)
      .resolves({ ImageBlockPublicAccessState: 'block-new-sharing', ManagedBy: 'account' });

    // Act
    const results = await checkAmiPublicAccess(
      [
        { region: 'eu-west-1', images: gateway() },
        { region: 'eu-west-1', images: gateway() },
        { region: 'us-east-1', images: {} },
      ],
      { enable: false, dryRun: false },
      recorder().deps,
    );

    // Assess
    expect(results.map((r) => [r.region, r.state])).toEqual([
      ['eu-west-1', 'block-new-sharing'],
      ['us-east-1', 'unknown'],
    ]);
    expect(ec2Mock).toHaveReceivedCommandTimes(GetImageBlockPublicAccessStateCommand, 1);
  });
});

describe('Function: runCopyJob (block public access for AMIs)', () => {
  const keys = tagKeys();

  function copyDependencies(images: CopyJobDependencies['images']): CopyJobDependencies {
    return {
      ec2: {
        listInstancesWithTagKey: async function* () {},
        listSnapshotsTagged: async function* () {},
        describeSnapshotsByIds: async () => [],
      },
      images,
      sharing: {
        snapshotGrants: async () => [],
        imageGrants: async () => [],
        changeSnapshotGrants: async () => undefined,
        changeImageGrants: async () => undefined,
        publicSnapshots: async () => [],
        publicImages: async () => [],
      } as unknown as CopyJobDependencies['sharing'],
      destination: () => {
        throw new Error('no destination region in this run');
      },
      config: {
        region: 'eu-west-1',
        deployment: 'prod',
        keys,
        catalog: parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily'),
        manualRetainDays: 30,
        copyKmsKeys: {},
        makePrivate: false,
        localTagAfterCreate: false,
      },
      clock: () => new Date('2026-11-24T07:00:00Z'),
      runId: RUN_ID,
      logger: silentLogger,
    };
  }

  it('reports the source region’s state on every run', async () => {
    // Prepare
    ec2Mock
      .on(GetImageBlockPublicAccessStateCommand)
      .resolves({ ImageBlockPublicAccessState: 'block-new-sharing', ManagedBy: 'account' });
    const images = gateway();
    const deps = copyDependencies({
      listImagesTagged: async () => [],
      imageBlockPublicAccess: () => images.imageBlockPublicAccess(),
    });

    // Act
    const report = await runCopyJob({ trigger: 'schedule', dryRun: false }, deps);

    // Assess
    expect(report.amiBlockPublicAccess).toEqual([
      { region: 'eu-west-1', state: 'block-new-sharing', managedBy: 'account' },
    ]);
    expect(report.status).toBe('succeeded');
  });

  it('finishes, with the state unknown and the run not failed, on an endpoint without the API', async () => {
    // Prepare
    ec2Mock
      .on(GetImageBlockPublicAccessStateCommand)
      .rejects(sdkError('NotImplemented', 'not implemented', 501));
    const images = gateway();
    const deps = copyDependencies({
      listImagesTagged: async () => [],
      imageBlockPublicAccess: () => images.imageBlockPublicAccess(),
    });

    // Act
    const report = await runCopyJob({ trigger: 'schedule', dryRun: false }, deps);

    // Assess
    expect(report.amiBlockPublicAccess[0]?.state).toBe('unknown');
    expect(report.status).toBe('succeeded');
  });
});
