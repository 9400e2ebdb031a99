import 'aws-sdk-client-mock-vitest/extend';
import { GetCommandInvocationCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsCallError } from '../../../lib/aws/errors.ts';
import { createSsmGateway, invocationState, SsmGateway } from '../../../lib/aws/SsmGateway.ts';
import { sdkError } from '../../support/sdkErrors.ts';

// Shapes from the SSM API reference: SendCommand (response `Command` with `CommandId`,
// errors InvalidInstanceId, InvalidDocument, InvalidDocumentVersion); GetCommandInvocation
// (`Status` Pending | InProgress | Delayed | Success | Cancelled | TimedOut | Failed |
// Cancelling, `StatusDetails`, `StandardErrorContent`; error InvocationDoesNotExist).
const ssmMock = mockClient(SSMClient);
const newGateway = () => new SsmGateway(new SSMClient({ region: 'eu-west-2' }));

const request = {
  instanceId: 'i-0db',
  document: 'snapkeeper-fsfreeze-dev',
  parameters: { command: ['pre-script'], maxFreezeSeconds: ['90'] },
  deliveryTimeoutSeconds: 5,
  comment: `snapkeeper pre-script ${'x'.repeat(200)}`,
};

describe('SsmGateway', () => {
  afterEach(() => ssmMock.reset());

  describe('sendCommand', () => {
    it('sends one document to one instance and answers the command id', async () => {
      ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-1', Status: 'Pending' } });
      await expect(newGateway().sendCommand({ ...request, documentVersion: '3' })).resolves.toBe(
        'c-1',
      );
      expect(ssmMock).toHaveReceivedCommandWith(SendCommandCommand, {
        InstanceIds: ['i-0db'],
        DocumentName: 'snapkeeper-fsfreeze-dev',
        DocumentVersion: '3',
        Parameters: { command: ['pre-script'], maxFreezeSeconds: ['90'] },
        // SendCommand's TimeoutSeconds (delivery) is at least 30.
        TimeoutSeconds: 30,
      });
      const input = ssmMock.commandCalls(SendCommandCommand)[0]?.args[0].input;
      expect(input?.Comment?.length).toBe(100);
      expect(input?.Targets).toBeUndefined();
    });

    it('throws an AwsCallError with code InvalidInstanceId for an instance SSM does not manage', async () => {
      ssmMock
        .on(SendCommandCommand)
        .rejects(sdkError('InvalidInstanceId', 'Instances [[i-0db]] not in a valid state'));
      const error = await newGateway()
        .sendCommand(request)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AwsCallError);
      expect(error).toMatchObject({ action: 'SendCommand', code: 'InvalidInstanceId' });
    });

    it('throws when SSM answers without a command id', async () => {
      ssmMock.on(SendCommandCommand).resolves({});
      await expect(newGateway().sendCommand(request)).rejects.toThrow('without a command id');
    });
  });

  describe('commandInvocation', () => {
    it('reads InvocationDoesNotExist (right after SendCommand) as missing, not as a failure', async () => {
      ssmMock
        .on(GetCommandInvocationCommand)
        .rejects(sdkError('InvocationDoesNotExist', 'not yet'));
      await expect(newGateway().commandInvocation('c-1', 'i-0db')).resolves.toEqual({
        state: 'missing',
        detail: 'InvocationDoesNotExist',
      });
    });

    it('throws other errors as AwsCallError', async () => {
      ssmMock.on(GetCommandInvocationCommand).rejects(sdkError('InvalidCommandId', 'no'));
      await expect(newGateway().commandInvocation('c-1', 'i-0db')).rejects.toMatchObject({
        code: 'InvalidCommandId',
      });
    });

    it('reads a failed script with its error output', async () => {
      ssmMock.on(GetCommandInvocationCommand).resolves({
        Status: 'Failed',
        StatusDetails: 'Failed',
        StandardErrorContent: 'fsfreeze: /data: Operation not supported\n',
      });
      await expect(newGateway().commandInvocation('c-1', 'i-0db')).resolves.toEqual({
        state: 'failed',
        detail: 'Failed / Failed',
        output: 'fsfreeze: /data: Operation not supported',
      });
    });
  });

  describe('invocationState', () => {
    it.each([
      ['Pending', 'pending'],
      ['InProgress', 'pending'],
      ['Delayed', 'pending'],
      ['Success', 'success'],
      ['Failed', 'failed'],
      ['TimedOut', 'timed-out'],
      ['Cancelled', 'cancelled'],
      ['Cancelling', 'cancelled'],
    ] as const)('maps Status %s to %s', (status, state) => {
      expect(invocationState({ Status: status }).state).toBe(state);
    });

    it('keeps StatusDetails (Undeliverable, DeliveryTimedOut) in the detail', () => {
      expect(invocationState({ Status: 'Failed', StatusDetails: 'Undeliverable' }).detail).toBe(
        'Failed / Undeliverable',
      );
    });
  });

  it('is built rate-limited, with SendCommand and GetCommandInvocation in their own buckets', async () => {
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-9' } });
    const gateway = createSsmGateway({
      region: 'eu-west-2',
      maxAttempts: 1,
      requestTimeoutMs: 1_000,
      endpoint: undefined,
      ec2RateShare: 1,
      ec2RateHeadroom: 1,
    });
    await expect(gateway.sendCommand(request)).resolves.toBe('c-9');
  });
});
