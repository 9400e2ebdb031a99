import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../lib/config/environment.ts';
import { ConfigurationError } from '../../../lib/domain/errors.ts';

type Environment = Record<string, string | undefined>;

const MINIMAL: Environment = { AWS_REGION: 'eu-west-1', DEPLOYMENT: 'prod' };

function configurationError(env: Environment): ConfigurationError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigurationError) return error;
    throw error;
  }
  throw new Error('expected loadConfig to throw a ConfigurationError');
}

describe('Function: loadConfig (fan-out and rate variables)', () => {
  it('reaches only its own account and region, one worker, when nothing is set', () => {
    // Prepare
    const env = { ...MINIMAL };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config).toMatchObject({
      targetRegions: ['eu-west-1'],
      targetAccounts: ['self'],
      targetRoleName: 'snapkeeper-target',
      fanOutBatchSize: 200,
      fanOutWorkers: 1,
      fanOutMaxAttempts: 3,
      ec2RateHeadroom: 0.98,
    });
    expect(config.targetExternalId).toBeUndefined();
    expect(config.fanOutQueueUrl).toBeUndefined();
  });

  it('defaults the target region to AWS_DEFAULT_REGION when AWS_REGION is not set', () => {
    // Prepare
    const env = { AWS_DEFAULT_REGION: 'us-west-2', DEPLOYMENT: 'prod' };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config.targetRegions).toEqual(['us-west-2']);
  });

  it('reads every fan-out variable when all are set', () => {
    // Prepare
    const env: Environment = {
      ...MINIMAL,
      TARGET_REGIONS: 'eu-west-1,us-east-1',
      TARGET_ACCOUNTS: 'self,210987654321',
      TARGET_ROLE_NAME: 'backup-operator',
      TARGET_EXTERNAL_ID: 'ext-42',
      FANOUT_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/snapkeeper-prod-fanout',
      FANOUT_BATCH_SIZE: '50',
      FANOUT_WORKERS: '8',
      FANOUT_MAX_ATTEMPTS: '5',
      EC2_RATE_HEADROOM: '0.9',
    };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config).toMatchObject({
      targetRegions: ['eu-west-1', 'us-east-1'],
      targetAccounts: ['self', '210987654321'],
      targetRoleName: 'backup-operator',
      targetExternalId: 'ext-42',
      fanOutQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/snapkeeper-prod-fanout',
      fanOutBatchSize: 50,
      fanOutWorkers: 8,
      fanOutMaxAttempts: 5,
      ec2RateHeadroom: 0.9,
    });
  });

  it('reads the target lists as trimmed comma lists, without empty entries or repeats', () => {
    // Prepare
    const env = {
      ...MINIMAL,
      TARGET_REGIONS: ' us-east-1 , ,eu-west-1,us-east-1,',
      TARGET_ACCOUNTS: '210987654321, self ,210987654321',
    };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config.targetRegions).toEqual(['us-east-1', 'eu-west-1']);
    expect(config.targetAccounts).toEqual(['210987654321', 'self']);
  });

  it.each([
    ['empty', ''],
    ['blank', '  '],
    ['only commas', ' , ,'],
  ])('falls back to the defaults when the target lists are %s', (_case, value) => {
    // Prepare
    const env = { ...MINIMAL, TARGET_REGIONS: value, TARGET_ACCOUNTS: value };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config.targetRegions).toEqual(['eu-west-1']);
    expect(config.targetAccounts).toEqual(['self']);
  });

  it('treats blank optional values as unset', () => {
    // Prepare
    const env = {
      ...MINIMAL,
      TARGET_ROLE_NAME: '  ',
      TARGET_EXTERNAL_ID: ' ',
      FANOUT_QUEUE_URL: '',
      FANOUT_BATCH_SIZE: '',
      FANOUT_WORKERS: ' ',
      FANOUT_MAX_ATTEMPTS: '',
      EC2_RATE_HEADROOM: '  ',
    };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config).toMatchObject({
      targetRoleName: 'snapkeeper-target',
      fanOutBatchSize: 200,
      fanOutWorkers: 1,
      fanOutMaxAttempts: 3,
      ec2RateHeadroom: 0.98,
    });
    expect(config.targetExternalId).toBeUndefined();
    expect(config.fanOutQueueUrl).toBeUndefined();
  });

  it('trims the role name, external id and queue url', () => {
    // Prepare
    const env = {
      ...MINIMAL,
      TARGET_ROLE_NAME: ' backup-operator ',
      TARGET_EXTERNAL_ID: ' ext-42 ',
      FANOUT_QUEUE_URL: ' https://sqs.eu-west-1.amazonaws.com/123456789012/q ',
    };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config.targetRoleName).toBe('backup-operator');
    expect(config.targetExternalId).toBe('ext-42');
    expect(config.fanOutQueueUrl).toBe('https://sqs.eu-west-1.amazonaws.com/123456789012/q');
  });

  it.each([
    ['FANOUT_BATCH_SIZE', '1', 1],
    ['FANOUT_BATCH_SIZE', '200', 200],
    ['FANOUT_WORKERS', '1000', 1000],
    ['FANOUT_MAX_ATTEMPTS', '1', 1],
    ['FANOUT_MAX_ATTEMPTS', '20', 20],
    ['EC2_RATE_HEADROOM', '0.5', 0.5],
    ['EC2_RATE_HEADROOM', '1', 1],
  ])('accepts %s=%s at the edge of its range', (variable, value, expected) => {
    // Prepare
    const env = { ...MINIMAL, [variable]: value };

    // Act
    const config = loadConfig(env);

    // Assess
    const field = {
      FANOUT_BATCH_SIZE: config.fanOutBatchSize,
      FANOUT_WORKERS: config.fanOutWorkers,
      FANOUT_MAX_ATTEMPTS: config.fanOutMaxAttempts,
      EC2_RATE_HEADROOM: config.ec2RateHeadroom,
    }[variable];
    expect(field).toBe(expected);
  });

  it.each([['e+.@_,=-'], ['a'.repeat(64)], ['Snapkeeper_Target.v2']])(
    'accepts the IAM role name %j',
    (name) => {
      // Prepare
      const env = { ...MINIMAL, TARGET_ROLE_NAME: name };

      // Act
      const config = loadConfig(env);

      // Assess
      expect(config.targetRoleName).toBe(name);
    },
  );

  it.each([
    [
      'TARGET_ACCOUNTS',
      '21098765432',
      'must list 12-digit account ids or "self"; got "21098765432"',
    ],
    ['TARGET_ACCOUNTS', 'self,prod', 'must list 12-digit account ids or "self"; got "prod"'],
    ['TARGET_ACCOUNTS', 'SELF', 'must list 12-digit account ids or "self"; got "SELF"'],
    ['TARGET_REGIONS', 'eu-west-1,Ireland', 'must list region names like eu-west-1; got "Ireland"'],
    ['TARGET_REGIONS', 'eu-west-1a', 'must list region names like eu-west-1; got "eu-west-1a"'],
    [
      'TARGET_ROLE_NAME',
      'role/snapkeeper',
      'must be an IAM role name (1-64 letters, digits and +=,.@_-); got "role/snapkeeper"',
    ],
    [
      'TARGET_ROLE_NAME',
      'a'.repeat(65),
      `must be an IAM role name (1-64 letters, digits and +=,.@_-); got "${'a'.repeat(65)}"`,
    ],
    ['FANOUT_BATCH_SIZE', '0', 'must be from 1 to 200; got 0'],
    ['FANOUT_BATCH_SIZE', '201', 'must be from 1 to 200; got 201'],
    // A huge number is printed as given, never in exponent form (1e+21).
    [
      'FANOUT_BATCH_SIZE',
      '1000000000000000000000',
      'must be from 1 to 200; got 1000000000000000000000',
    ],
    ['FANOUT_BATCH_SIZE', 'ten', 'must be a whole number from 1 to 200; got "ten"'],
    ['FANOUT_BATCH_SIZE', '12.5', 'must be a whole number from 1 to 200; got "12.5"'],
    ['FANOUT_WORKERS', '0', 'must be from 1 to 1000; got 0'],
    ['FANOUT_WORKERS', '1001', 'must be from 1 to 1000; got 1001'],
    ['FANOUT_WORKERS', '-4', 'must be a whole number from 1 to 1000; got "-4"'],
    ['FANOUT_MAX_ATTEMPTS', '0', 'must be from 1 to 20; got 0'],
    ['FANOUT_MAX_ATTEMPTS', '21', 'must be from 1 to 20; got 21'],
    ['FANOUT_MAX_ATTEMPTS', 'three', 'must be a whole number from 1 to 20; got "three"'],
    ['EC2_RATE_HEADROOM', '0.49', 'must be a number from 0.5 to 1; got "0.49"'],
    ['EC2_RATE_HEADROOM', '1.01', 'must be a number from 0.5 to 1; got "1.01"'],
    ['EC2_RATE_HEADROOM', '98%', 'must be a number from 0.5 to 1; got "98%"'],
    ['EC2_RATE_HEADROOM', 'Infinity', 'must be a number from 0.5 to 1; got "Infinity"'],
  ])('rejects %s=%j, naming the variable', (variable, value, reason) => {
    // Prepare
    const env = { ...MINIMAL, [variable]: value };

    // Act
    const error = configurationError(env);

    // Assess
    expect(error.variable).toBe(variable);
    expect(error.message).toBe(`Environment variable ${variable} ${reason}`);
  });

  it('names TARGET_ACCOUNTS before TARGET_REGIONS when both are bad', () => {
    // Prepare
    const env = { ...MINIMAL, TARGET_ACCOUNTS: 'prod', TARGET_REGIONS: 'Ireland' };

    // Act
    const error = configurationError(env);

    // Assess
    expect(error.variable).toBe('TARGET_ACCOUNTS');
  });
});
