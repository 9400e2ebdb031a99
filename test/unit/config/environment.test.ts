import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../lib/config/environment.ts';
import {
  ConfigurationError,
  InvalidScheduleDefinitionError,
  SnapkeeperError,
} from '../../../lib/domain/errors.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';

type Environment = Record<string, string | undefined>;

const MINIMAL: Environment = { AWS_REGION: 'eu-west-1', DEPLOYMENT: 'prod' };

const HOURLY_SCHEDULES = JSON.stringify([
  { name: 'hourly', cron: 'cron(0 * * * ? *)', retain: 24 },
  { name: 'nightly', cron: 'cron(0 3 * * ? *)', timezone: 'Europe/Paris', retain: 14 },
]);

function configurationError(env: Environment): ConfigurationError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigurationError) return error;
    throw error;
  }
  throw new Error('expected loadConfig to throw a ConfigurationError');
}

describe('Function: loadConfig', () => {
  it('applies the documented defaults when only the required variables are set', () => {
    // Prepare
    const env = { ...MINIMAL };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config).toMatchObject({
      region: 'eu-west-1',
      deployment: 'prod',
      keys: tagKeys('snapkeeper:'),
      catalog: { defaultSchedule: 'daily' },
      copyTags: [],
      backupConcurrency: 10,
      snapshotRateRetryMs: 15_000,
      snapshotRateRetries: 2,
      maxAttempts: 8,
      requestTimeoutMs: 30_000,
      dryRun: false,
    });
    expect('endpoint' in config).toBe(false);
  });

  it('ships the default schedules: daily 03:00, weekly Sunday 04:00, monthly 1st 05:00 UTC', () => {
    // Prepare
    const env = { ...MINIMAL };

    // Act
    const { catalog } = loadConfig(env);

    // Assess
    expect([...catalog.schedules.values()]).toEqual([
      { name: 'daily', cron: 'cron(0 3 * * ? *)', timezone: 'UTC', retain: 7 },
      { name: 'weekly', cron: 'cron(0 4 ? * SUN *)', timezone: 'UTC', retain: 4 },
      { name: 'monthly', cron: 'cron(0 5 1 * ? *)', timezone: 'UTC', retain: 12 },
    ]);
  });

  it('reads every variable when all are set', () => {
    // Prepare
    const env: Environment = {
      AWS_REGION: 'us-east-1',
      DEPLOYMENT: 'staging_2',
      TAG_PREFIX: 'acme-backup:',
      SCHEDULES: HOURLY_SCHEDULES,
      DEFAULT_SCHEDULE: 'nightly',
      COPY_TAGS: 'CostCenter,Team',
      BACKUP_CONCURRENCY: '25',
      SNAPSHOT_RATE_RETRY_SECONDS: '30',
      SNAPSHOT_RATE_RETRIES: '5',
      AWS_MAX_ATTEMPTS: '3',
      AWS_REQUEST_TIMEOUT_MS: '5000',
      DRY_RUN: 'true',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:5000',
    };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config).toMatchObject({
      region: 'us-east-1',
      deployment: 'staging_2',
      keys: tagKeys('acme-backup:'),
      copyTags: ['CostCenter', 'Team'],
      backupConcurrency: 25,
      snapshotRateRetryMs: 30_000,
      snapshotRateRetries: 5,
      maxAttempts: 3,
      requestTimeoutMs: 5000,
      dryRun: true,
      endpoint: 'http://127.0.0.1:5000',
    });
    expect([...config.catalog.schedules.keys()]).toEqual(['hourly', 'nightly']);
    expect(config.catalog.defaultSchedule).toBe('nightly');
    expect(config.catalog.schedules.get('nightly')?.timezone).toBe('Europe/Paris');
  });

  it('falls back to AWS_DEFAULT_REGION when AWS_REGION is not set', () => {
    // Prepare
    const env = { DEPLOYMENT: 'prod', AWS_DEFAULT_REGION: 'ap-southeast-2' };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config.region).toBe('ap-southeast-2');
  });

  it('trims the deployment name', () => {
    // Prepare
    const env = { ...MINIMAL, DEPLOYMENT: '  dev  ' };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config.deployment).toBe('dev');
  });

  it('reads the given environment only, as a snapshot taken once', () => {
    // Prepare
    const env: Environment = { ...MINIMAL, BACKUP_CONCURRENCY: '4' };
    const config = loadConfig(env);

    // Act
    env.BACKUP_CONCURRENCY = '99';
    env.DEPLOYMENT = undefined;

    // Assess
    expect(config.backupConcurrency).toBe(4);
    expect(config.deployment).toBe('prod');
  });

  it.each([
    ['AWS_REGION', 'missing', { DEPLOYMENT: 'prod' }, 'is required'],
    ['AWS_REGION', 'empty', { AWS_REGION: '', DEPLOYMENT: 'prod' }, 'is required'],
    ['DEPLOYMENT', 'missing', { AWS_REGION: 'eu-west-1' }, 'is required'],
    ['DEPLOYMENT', 'empty', { ...MINIMAL, DEPLOYMENT: '' }, 'is required'],
    ['DEPLOYMENT', 'blank', { ...MINIMAL, DEPLOYMENT: '   ' }, 'is required'],
    ['DEPLOYMENT', 'with a space', { ...MINIMAL, DEPLOYMENT: 'prod eu' }, 'must be'],
    ['DEPLOYMENT', 'with a slash', { ...MINIMAL, DEPLOYMENT: 'team/prod' }, 'must be'],
    ['DEPLOYMENT', 'starting with "-"', { ...MINIMAL, DEPLOYMENT: '-prod' }, 'must be'],
    ['DEPLOYMENT', '65 characters long', { ...MINIMAL, DEPLOYMENT: 'p'.repeat(65) }, 'must be'],
    ['TAG_PREFIX', 'starting with aws:', { ...MINIMAL, TAG_PREFIX: 'aws:backup:' }, 'aws:'],
    ['TAG_PREFIX', 'starting with AWS:', { ...MINIMAL, TAG_PREFIX: 'AWS:' }, 'aws:'],
    ['TAG_PREFIX', 'with a space', { ...MINIMAL, TAG_PREFIX: 'snap keeper:' }, 'must be'],
    ['TAG_PREFIX', 'empty', { ...MINIMAL, TAG_PREFIX: '' }, 'must be'],
    ['TAG_PREFIX', '65 characters long', { ...MINIMAL, TAG_PREFIX: 'x'.repeat(65) }, 'must be'],
    ['SCHEDULES', 'not JSON', { ...MINIMAL, SCHEDULES: '[{name: daily}' }, 'is not valid JSON'],
    ['SCHEDULES', 'an empty list', { ...MINIMAL, SCHEDULES: '[]' }, 'is invalid'],
    ['SCHEDULES', 'an object', { ...MINIMAL, SCHEDULES: '{"name":"daily"}' }, 'is invalid'],
    [
      'SCHEDULES',
      'a schedule without "?"',
      { ...MINIMAL, SCHEDULES: '[{"name":"daily","cron":"cron(0 3 * * * *)","retain":7}]' },
      'must have "?" in exactly one of day-of-month and day-of-week',
    ],
    [
      'SCHEDULES',
      'a schedule with a bad time zone',
      {
        ...MINIMAL,
        SCHEDULES:
          '[{"name":"daily","cron":"cron(0 3 * * ? *)","timezone":"Nowhere/X","retain":7}]',
      },
      'is not an IANA time zone',
    ],
    [
      'SCHEDULES',
      'a schedule keeping nothing',
      { ...MINIMAL, SCHEDULES: '[{"name":"daily","cron":"cron(0 3 * * ? *)","retain":0}]' },
      'is invalid',
    ],
    [
      'DEFAULT_SCHEDULE',
      'not among the schedules',
      { ...MINIMAL, DEFAULT_SCHEDULE: 'yearly' },
      'default schedule "yearly" is not defined; defined: daily, weekly, monthly',
    ],
    [
      'DEFAULT_SCHEDULE',
      'not among custom schedules',
      { ...MINIMAL, SCHEDULES: HOURLY_SCHEDULES, DEFAULT_SCHEDULE: 'daily' },
      'defined: hourly, nightly',
    ],
    [
      'COPY_TAGS',
      'listing an aws: key',
      { ...MINIMAL, COPY_TAGS: 'Team,aws:cloudformation:stack-name' },
      'aws:cloudformation:stack-name',
    ],
    [
      'COPY_TAGS',
      'listing a key under our prefix',
      { ...MINIMAL, COPY_TAGS: 'snapkeeper:backup' },
      'snapkeeper:backup',
    ],
    [
      'COPY_TAGS',
      'listing 41 keys',
      { ...MINIMAL, COPY_TAGS: Array.from({ length: 41 }, (_, i) => `Tag${i}`).join(',') },
      'more than 40',
    ],
    ['BACKUP_CONCURRENCY', 'zero', { ...MINIMAL, BACKUP_CONCURRENCY: '0' }, 'from 1 to 100'],
    ['BACKUP_CONCURRENCY', '101', { ...MINIMAL, BACKUP_CONCURRENCY: '101' }, 'from 1 to 100'],
    ['BACKUP_CONCURRENCY', 'a word', { ...MINIMAL, BACKUP_CONCURRENCY: 'ten' }, 'whole number'],
    ['BACKUP_CONCURRENCY', 'a fraction', { ...MINIMAL, BACKUP_CONCURRENCY: '2.5' }, 'whole number'],
    ['BACKUP_CONCURRENCY', 'negative', { ...MINIMAL, BACKUP_CONCURRENCY: '-1' }, 'whole number'],
    [
      'SNAPSHOT_RATE_RETRY_SECONDS',
      '121',
      { ...MINIMAL, SNAPSHOT_RATE_RETRY_SECONDS: '121' },
      'from 0 to 120',
    ],
    [
      'SNAPSHOT_RATE_RETRY_SECONDS',
      'with a unit',
      { ...MINIMAL, SNAPSHOT_RATE_RETRY_SECONDS: '15s' },
      'whole number',
    ],
    ['SNAPSHOT_RATE_RETRIES', '11', { ...MINIMAL, SNAPSHOT_RATE_RETRIES: '11' }, 'from 0 to 10'],
    ['AWS_MAX_ATTEMPTS', 'zero', { ...MINIMAL, AWS_MAX_ATTEMPTS: '0' }, 'from 1 to 20'],
    ['AWS_MAX_ATTEMPTS', '21', { ...MINIMAL, AWS_MAX_ATTEMPTS: '21' }, 'from 1 to 20'],
    [
      'AWS_REQUEST_TIMEOUT_MS',
      '99',
      { ...MINIMAL, AWS_REQUEST_TIMEOUT_MS: '99' },
      'from 100 to 300000',
    ],
    [
      'AWS_REQUEST_TIMEOUT_MS',
      '300001',
      { ...MINIMAL, AWS_REQUEST_TIMEOUT_MS: '300001' },
      'from 100 to 300000',
    ],
    ['DRY_RUN', 'yes', { ...MINIMAL, DRY_RUN: 'yes' }, 'must be true or false; got "yes"'],
    ['DRY_RUN', '1', { ...MINIMAL, DRY_RUN: '1' }, 'must be true or false; got "1"'],
  ])('rejects %s when %s, naming the variable', (variable, _label, env, fragment) => {
    // Prepare
    const environment: Environment = env;

    // Act
    const error = configurationError(environment);

    // Assess
    expect(error).toBeInstanceOf(SnapkeeperError);
    expect(error.name).toBe('ConfigurationError');
    expect(error.variable).toBe(variable);
    expect(error.message.startsWith(`Environment variable ${variable} `)).toBe(true);
    expect(error.message).toContain(fragment);
  });

  it('keeps the JSON parse failure as the cause of a SCHEDULES error', () => {
    // Prepare
    const env = { ...MINIMAL, SCHEDULES: 'not json' };

    // Act
    const error = configurationError(env);

    // Assess
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  it('keeps the schedule definition error as the cause of a SCHEDULES error', () => {
    // Prepare
    const env = {
      ...MINIMAL,
      SCHEDULES: '[{"name":"true","cron":"cron(0 3 * * ? *)","retain":7}]',
    };

    // Act
    const error = configurationError(env);

    // Assess
    expect(error.variable).toBe('SCHEDULES');
    expect(error.cause).toBeInstanceOf(InvalidScheduleDefinitionError);
    expect(error.message).toContain('reserved');
  });

  it('refuses a schedule named tag: the dispatcher of the schedules written in tags', () => {
    // Prepare
    const env = {
      ...MINIMAL,
      SCHEDULES: '[{"name":"Tag","cron":"cron(0 3 * * ? *)","retain":7}]',
    };

    // Act
    const error = configurationError(env);

    // Assess
    expect(error.variable).toBe('SCHEDULES');
    expect(error.message).toContain(
      'schedule definition 0.name: is reserved: "tag" is the dispatcher',
    );
    expect(error.message).toContain('give this schedule another name');
  });

  it('reads the limits of schedules written in tags, with their defaults', () => {
    // Act
    const defaults = loadConfig(MINIMAL).catalog.tagSchedules;
    const set = loadConfig({
      ...MINIMAL,
      TAG_SCHEDULE_MIN_INTERVAL_MINUTES: '120',
      TAG_SCHEDULE_MAX_EXPRESSIONS: '5',
      TAG_SCHEDULE_RETAIN: '3',
    }).catalog.tagSchedules;

    // Assess
    expect(defaults).toEqual({ minIntervalMs: 3_600_000, maxExpressions: 20, retain: 7 });
    expect(set).toEqual({ minIntervalMs: 7_200_000, maxExpressions: 5, retain: 3 });
    expect(
      configurationError({ ...MINIMAL, TAG_SCHEDULE_MIN_INTERVAL_MINUTES: '5' }).message,
    ).toContain('TAG_SCHEDULE_MIN_INTERVAL_MINUTES');
  });

  it.each([
    ['BACKUP_CONCURRENCY', '1', 'backupConcurrency', 1],
    ['BACKUP_CONCURRENCY', '100', 'backupConcurrency', 100],
    ['BACKUP_CONCURRENCY', ' 20 ', 'backupConcurrency', 20],
    ['SNAPSHOT_RATE_RETRY_SECONDS', '0', 'snapshotRateRetryMs', 0],
    ['SNAPSHOT_RATE_RETRY_SECONDS', '120', 'snapshotRateRetryMs', 120_000],
    ['SNAPSHOT_RATE_RETRIES', '0', 'snapshotRateRetries', 0],
    ['SNAPSHOT_RATE_RETRIES', '10', 'snapshotRateRetries', 10],
    ['AWS_MAX_ATTEMPTS', '1', 'maxAttempts', 1],
    ['AWS_MAX_ATTEMPTS', '20', 'maxAttempts', 20],
    ['AWS_REQUEST_TIMEOUT_MS', '100', 'requestTimeoutMs', 100],
    ['AWS_REQUEST_TIMEOUT_MS', '300000', 'requestTimeoutMs', 300_000],
    ['BACKUP_CONCURRENCY', '', 'backupConcurrency', 10],
    ['AWS_MAX_ATTEMPTS', '  ', 'maxAttempts', 8],
  ])('accepts %s=%j as %s %i', (variable, value, field, expected) => {
    // Prepare
    const env = { ...MINIMAL, [variable]: value };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config).toHaveProperty(field, expected);
  });

  it.each([
    ['true', true],
    ['TRUE', true],
    [' True ', true],
    ['false', false],
    ['FALSE', false],
    ['', false],
  ])('reads DRY_RUN=%j as %s', (value, expected) => {
    // Prepare
    const env = { ...MINIMAL, DRY_RUN: value };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config.dryRun).toBe(expected);
  });

  it('uses the default schedules when SCHEDULES is empty', () => {
    // Prepare
    const env = { ...MINIMAL, SCHEDULES: '  ' };

    // Act
    const config = loadConfig(env);

    // Assess
    expect([...config.catalog.schedules.keys()]).toEqual(['daily', 'weekly', 'monthly']);
  });

  it('reads DEFAULT_SCHEDULE case-insensitively', () => {
    // Prepare
    const env = { ...MINIMAL, DEFAULT_SCHEDULE: 'Weekly' };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config.catalog.defaultSchedule).toBe('weekly');
  });

  it('reads COPY_TAGS as a trimmed comma list without empty entries', () => {
    // Prepare
    const env = { ...MINIMAL, COPY_TAGS: ' CostCenter , Team,, Project ,' };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config.copyTags).toEqual(['CostCenter', 'Team', 'Project']);
  });

  it('accepts 40 COPY_TAGS keys', () => {
    // Prepare
    const keys = Array.from({ length: 40 }, (_, i) => `Tag${i}`);
    const env = { ...MINIMAL, COPY_TAGS: keys.join(',') };

    // Act
    const config = loadConfig(env);

    // Assess
    expect(config.copyTags).toEqual(keys);
  });

  it('reserves the keys of the configured prefix, not the default one, in COPY_TAGS', () => {
    // Prepare
    const allowed = { ...MINIMAL, TAG_PREFIX: 'acme:', COPY_TAGS: 'snapkeeper:owner' };
    const reserved = { ...MINIMAL, TAG_PREFIX: 'acme:', COPY_TAGS: 'acme:owner' };

    // Act
    const config = loadConfig(allowed);
    const error = configurationError(reserved);

    // Assess
    expect(config.copyTags).toEqual(['snapkeeper:owner']);
    expect(error.variable).toBe('COPY_TAGS');
  });

  it('builds every tag key from the configured prefix', () => {
    // Prepare
    const env = { ...MINIMAL, TAG_PREFIX: 'acme-backup:' };

    // Act
    const { keys } = loadConfig(env);

    // Assess
    expect(keys.prefix).toBe('acme-backup:');
    expect(keys.backup).toBe('acme-backup:backup');
    expect(keys.managed).toBe('acme-backup:managed');
    expect(
      Object.entries(keys).every(
        ([name, key]) => name === 'prefix' || key.startsWith('acme-backup:'),
      ),
    ).toBe(true);
  });
});
