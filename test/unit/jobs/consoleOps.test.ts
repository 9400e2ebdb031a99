import 'aws-sdk-client-mock-vitest/extend';
import { CreateSnapshotsCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { Ec2Gateway } from '../../../lib/aws/Ec2Gateway.ts';
import { loadConfig } from '../../../lib/config/environment.ts';
import { InvalidEventError } from '../../../lib/domain/errors.ts';
import { type OpsDependencies, runConsoleOperation } from '../../../lib/jobs/consoleOps.ts';
import { silentLogger } from '../../../lib/jobs/runReport.ts';

const ec2Mock = mockClient(EC2Client);
const KNOWN = 'i-0123456789abcdef0';
const OTHER = 'i-0fedcba9876543210';
const UNKNOWN = 'i-0badc0ffee0000000';

function dependencies(): OpsDependencies {
  const unused = {} as never;
  return {
    ec2: new Ec2Gateway(new EC2Client({ region: 'eu-west-1' })),
    images: unused,
    restore: unused,
    history: unused,
    config: loadConfig({ AWS_REGION: 'eu-west-1', DEPLOYMENT: 'prod' }),
    clock: () => new Date('2026-11-23T11:00:00Z'),
    runId: '20261123T110000Z-0a1b2c3d',
    logger: silentLogger,
    journal: { record: async () => undefined },
  };
}

/** A DescribeInstances answer page, as EC2 answers a filtered request. */
function page(ids: readonly string[], NextToken?: string) {
  return {
    Reservations: ids.map((InstanceId) => ({
      Instances: [{ InstanceId, State: { Name: 'running' as const }, Tags: [] }],
    })),
    ...(NextToken ? { NextToken } : {}),
  };
}

describe('Function: runConsoleOperation', () => {
  afterEach(() => {
    ec2Mock.reset();
  });

  describe('Action: backup of named instances', () => {
    it('rejects naming the ids EC2 does not list (unknown or terminated), and creates nothing', async () => {
      // Prepare: a filter on unknown ids answers no error, just fewer instances (EC2 API reference)
      ec2Mock.on(DescribeInstancesCommand).resolves(page([KNOWN]));

      // Act
      const act = runConsoleOperation(
        { action: 'backup', instanceIds: [KNOWN, UNKNOWN] },
        dependencies(),
      );

      // Assess
      await expect(act).rejects.toBeInstanceOf(InvalidEventError);
      await expect(act).rejects.toThrow(
        `field "instanceIds": ${UNKNOWN} is not an instance of this account in eu-west-1 (unknown or terminated); nothing was backed up`,
      );
      expect(ec2Mock).toHaveReceivedCommandWith(DescribeInstancesCommand, {
        Filters: expect.arrayContaining([
          { Name: 'instance-id', Values: [KNOWN, UNKNOWN] },
          { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
        ]),
      });
      expect(ec2Mock).not.toHaveReceivedCommand(CreateSnapshotsCommand);
    });

    it('finds instances listed on a later page before judging any unknown', async () => {
      // Prepare: EC2 pages a filtered DescribeInstances
      ec2Mock
        .on(DescribeInstancesCommand)
        .resolvesOnce(page([KNOWN], 'token-2'))
        .resolvesOnce(page([OTHER]))
        .resolves(page([]));

      // Act
      const act = runConsoleOperation(
        { action: 'backup', instanceIds: [KNOWN, OTHER, UNKNOWN] },
        dependencies(),
      );

      // Assess: only the id on no page is named
      await expect(act).rejects.toThrow(`field "instanceIds": ${UNKNOWN} is not an instance`);
      expect(ec2Mock).toHaveReceivedCommandTimes(DescribeInstancesCommand, 2);
      expect(ec2Mock).toHaveReceivedNthCommandWith(DescribeInstancesCommand, 2, {
        NextToken: 'token-2',
      });
    });

    it('names every unknown id, at most ten of them, and how many more', async () => {
      // Prepare
      ec2Mock.on(DescribeInstancesCommand).resolves(page([]));
      const ids = Array.from({ length: 12 }, (_, n) => `i-0${String(n).padStart(16, '0')}`);

      // Act
      const act = runConsoleOperation({ action: 'backup', instanceIds: ids }, dependencies());

      // Assess
      await expect(act).rejects.toThrow(
        `field "instanceIds": ${ids.slice(0, 10).join(', ')} and 2 more are not instances of this account in eu-west-1`,
      );
    });
  });
});
