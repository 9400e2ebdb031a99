import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildResourceTags,
  formatSlot,
  type InstanceFacts,
} from '../../../lib/domain/backupPlan.ts';
import {
  amiName,
  type ImageContext,
  type ImageRequest,
  type InstanceImageDecision,
  imageIdFromSnapshotDescription,
  planInstanceImage,
  withUniqueNames,
} from '../../../lib/domain/imagePlan.ts';
import { DEFAULT_SCHEDULES, parseScheduleCatalog } from '../../../lib/domain/schedules.ts';
import { tagKeys } from '../../../lib/domain/tagKeys.ts';

const keys = tagKeys();
const catalog = parseScheduleCatalog(DEFAULT_SCHEDULES, 'daily');
const PROPERTY_RUNS = { numRuns: 300 };
const INSTANCE_ID = 'i-0123456789abcdef0';
const SLOT = '2026-11-23T03:00:00Z';

/** Everything EC2 accepts in an AMI name, at the lengths it accepts. */
const VALID_AMI_NAME = /^[A-Za-z0-9()[\]. /\-'@_]{3,128}$/;

function imageContext(overrides: Partial<ImageContext> = {}): ImageContext {
  return {
    keys,
    catalog,
    schedule: 'daily',
    slot: SLOT,
    deployment: 'prod',
    runId: 'run-42',
    createdAt: '2026-11-23T03:00:07Z',
    copyTags: [],
    ...overrides,
  };
}

function instance(overrides: Partial<InstanceFacts> = {}): InstanceFacts {
  return {
    instanceId: INSTANCE_ID,
    state: 'running',
    rootDeviceName: '/dev/xvda',
    tags: { 'snapkeeper:ami': 'daily', Name: 'web-1' },
    volumes: [{ volumeId: 'vol-root', deviceName: '/dev/xvda' }],
    ...overrides,
  };
}

function requestOf(decision: InstanceImageDecision): ImageRequest {
  if (decision.kind !== 'create') {
    throw new Error(`expected a create decision, got ${JSON.stringify(decision)}`);
  }
  return decision.request;
}

/** Minute-aligned slots between 2000 and 2099, as the scheduler writes them. */
const slotArbitrary = fc
  .integer({ min: Date.UTC(2000, 0, 1) / 60_000, max: Date.UTC(2099, 11, 31) / 60_000 })
  .map((minute) => formatSlot(new Date(minute * 60_000)));

/** Schedule names as the catalog allows them. */
const scheduleArbitrary = fc.stringMatching(/^[a-z][a-z0-9-]{0,31}$/);

/** Instance names of any shape: absent, empty, blank, any Unicode, huge. */
const instanceNameArbitrary = fc.oneof(
  fc.constant(undefined),
  fc.constant(''),
  fc.string({ unit: fc.constantFrom(' ', '\t', '\n'), maxLength: 5 }),
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.string({ minLength: 129, maxLength: 2000 }),
  fc.string({ unit: 'binary', minLength: 500, maxLength: 5000 }),
);

describe('Function: amiName', () => {
  it('names the image <Name>-<schedule>-<slot stamp>', () => {
    // Prepare
    const name = 'web-1';

    // Act
    const result = amiName(name, INSTANCE_ID, 'prod', 'daily', SLOT);

    // Assess
    expect(result).toBe('web-1-prod-daily-20261123T0300Z');
  });

  it("keeps every character AMI names allow: letters, digits and ()[] ./-'@_", () => {
    // Prepare
    const name = "Web 1 (prod) [eu]./a-b'c@d_e";

    // Act
    const result = amiName(name, INSTANCE_ID, 'prod', 'weekly', '2026-11-29T04:00:00Z');

    // Assess
    expect(result).toBe("Web 1 (prod) [eu]./a-b'c@d_e-prod-weekly-20261129T0400Z");
  });

  it.each([
    ['web:1', 'web_1'],
    ['web#1*', 'web_1_'],
    ['café', 'caf_'],
    ['db|primary,eu', 'db_primary_eu'],
    ['line\nbreak\ttab', 'line_break_tab'],
    ['rocket 🚀', 'rocket __'],
    ['名前', '__'],
  ])('replaces the characters AMI names disallow in %j with underscores', (name, expected) => {
    // Prepare
    const suffix = '-prod-daily-20261123T0300Z';

    // Act
    const result = amiName(name, INSTANCE_ID, 'prod', 'daily', SLOT);

    // Assess
    expect(result).toBe(`${expected}${suffix}`);
    expect(result).toMatch(VALID_AMI_NAME);
  });

  it.each([
    ['no Name tag', undefined],
    ['an empty Name tag', ''],
    ['a blank Name tag', '   '],
  ])('falls back to the instance id for an instance with %s', (_case, name) => {
    // Prepare
    const instanceId = 'i-0fedcba9876543210';

    // Act
    const result = amiName(name, instanceId, 'prod', 'daily', SLOT);

    // Assess
    expect(result).toBe('i-0fedcba9876543210-prod-daily-20261123T0300Z');
  });

  it('trims the blanks around a Name', () => {
    // Prepare
    const name = '  web-1  ';

    // Act
    const result = amiName(name, INSTANCE_ID, 'prod', 'daily', SLOT);

    // Assess
    expect(result).toBe('web-1-prod-daily-20261123T0300Z');
  });

  it('cuts a long Name so the name is 128 characters and still ends with schedule and slot', () => {
    // Prepare
    const name = 'x'.repeat(500);

    // Act
    const result = amiName(name, INSTANCE_ID, 'prod', 'monthly', '2026-12-01T05:00:00Z');

    // Assess
    expect(result).toHaveLength(128);
    expect(result.endsWith('-prod-monthly-20261201T0500Z')).toBe(true);
    expect(result).toBe(
      `${'x'.repeat(128 - '-prod-monthly-20261201T0500Z'.length)}-prod-monthly-20261201T0500Z`,
    );
  });

  it('is always a valid AMI name (3-128 allowed characters), whatever the instance Name', () => {
    // Prepare
    const input = fc.tuple(instanceNameArbitrary, scheduleArbitrary, slotArbitrary);

    // Act & Assess
    fc.assert(
      fc.property(input, ([name, schedule, slot]) => {
        const result = amiName(name, INSTANCE_ID, 'prod', schedule, slot);
        expect(result).toMatch(VALID_AMI_NAME);
      }),
      PROPERTY_RUNS,
    );
  });

  it('always ends with the schedule and the slot stamp, never cut', () => {
    // Prepare
    const input = fc.tuple(instanceNameArbitrary, scheduleArbitrary, slotArbitrary);

    // Act & Assess
    fc.assert(
      fc.property(input, ([name, schedule, slot]) => {
        const stamp = `${slot.slice(0, 4)}${slot.slice(5, 7)}${slot.slice(8, 10)}T${slot.slice(11, 13)}${slot.slice(14, 16)}Z`;
        const result = amiName(name, INSTANCE_ID, 'prod', schedule, slot);
        expect(result.endsWith(`-prod-${schedule}-${stamp}`)).toBe(true);
      }),
      PROPERTY_RUNS,
    );
  });

  it('gives every slot of an instance and schedule its own name', () => {
    // Prepare
    const input = fc.tuple(
      instanceNameArbitrary,
      scheduleArbitrary,
      fc.uniqueArray(slotArbitrary, { minLength: 2, maxLength: 5 }),
    );

    // Act & Assess
    fc.assert(
      fc.property(input, ([name, schedule, slots]) => {
        const names = slots.map((slot) => amiName(name, INSTANCE_ID, 'prod', schedule, slot));
        expect(new Set(names).size).toBe(slots.length);
      }),
      PROPERTY_RUNS,
    );
  });

  it('gives each schedule of the same slot its own name', () => {
    // Prepare
    const schedules = ['daily', 'weekly', 'monthly'];

    // Act
    const names = schedules.map((schedule) =>
      amiName('web-1', INSTANCE_ID, 'prod', schedule, SLOT),
    );

    // Assess
    expect(new Set(names).size).toBe(3);
  });

  it('gives two stages of one account and region different names for the same instance, schedule and slot (EC2 answers InvalidAMIName.Duplicate otherwise)', () => {
    // Prepare
    const facts = instance({ tags: { 'snapkeeper:ami': 'daily', Name: 'web-1' } });

    // Act
    const prod = requestOf(planInstanceImage(facts, imageContext({ deployment: 'prod' })));
    const staging = requestOf(planInstanceImage(facts, imageContext({ deployment: 'staging' })));

    // Assess
    expect(prod.name).toBe('web-1-prod-daily-20261123T0300Z');
    expect(staging.name).toBe('web-1-staging-daily-20261123T0300Z');
  });

  it('never cuts the stage, whatever the instance Name, and stays a valid AMI name', () => {
    // Prepare
    const stage = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,20}$/);
    const input = fc.tuple(instanceNameArbitrary, stage, scheduleArbitrary, slotArbitrary);

    // Act & Assess
    fc.assert(
      fc.property(input, ([name, deployment, schedule, slot]) => {
        const result = amiName(name, INSTANCE_ID, deployment, schedule, slot);
        expect(result).toMatch(VALID_AMI_NAME);
        expect(result).toContain(`-${deployment}-${schedule}-`);
      }),
      PROPERTY_RUNS,
    );
  });

  it('gives two instances that share a Name different names in the same slot (AMI names are unique per account and region)', () => {
    // Prepare
    const name = 'web';

    const context = {
      keys: tagKeys(),
      catalog,
      schedule: 'daily',
      slot: SLOT,
      deployment: 'prod',
      runId: 'r',
      createdAt: SLOT,
      copyTags: [],
    };
    const decisions = ['i-0aaaaaaaaaaaaaaaa', 'i-0bbbbbbbbbbbbbbbb', 'i-0ccccccccccccccccc'].map(
      (instanceId, i) =>
        planInstanceImage(
          {
            instanceId,
            state: 'running',
            tags: { 'snapkeeper:ami': 'daily', Name: i < 2 ? name : 'db' },
            volumes: [],
          },
          context,
        ),
    );

    // Act
    const names = withUniqueNames(decisions, context).map((d) =>
      d.kind === 'create' ? d.request.name : '',
    );

    // Assess
    expect(names).toEqual([
      'web-prod-daily-20261123T0300Z-i-0aaaaaaaaaaaaaaaa',
      'web-prod-daily-20261123T0300Z-i-0bbbbbbbbbbbbbbbb',
      'db-prod-daily-20261123T0300Z',
    ]);
  });
});

describe('Function: planInstanceImage', () => {
  it('creates an AMI of an instance whose snapkeeper:ami lists the schedule', () => {
    // Prepare
    const facts = instance({ tags: { 'snapkeeper:ami': 'daily', Name: 'web-1' } });

    // Act
    const decision = planInstanceImage(facts, imageContext());

    // Assess
    expect(decision).toEqual({
      kind: 'create',
      instanceId: INSTANCE_ID,
      name: 'web-1',
      problems: [],
      request: {
        instanceId: INSTANCE_ID,
        name: 'web-1-prod-daily-20261123T0300Z',
        description: `snapkeeper daily AMI of ${INSTANCE_ID} (web-1) for ${SLOT}`,
        noReboot: true,
        tags: [
          { Key: 'snapkeeper:managed', Value: 'true' },
          { Key: 'snapkeeper:deployment', Value: 'prod' },
          { Key: 'snapkeeper:schedule', Value: 'daily' },
          { Key: 'snapkeeper:slot', Value: SLOT },
          { Key: 'snapkeeper:instance-id', Value: INSTANCE_ID },
          { Key: 'snapkeeper:run-id', Value: 'run-42' },
          { Key: 'snapkeeper:created-at', Value: '2026-11-23T03:00:07Z' },
          { Key: 'Name', Value: 'web-1' },
        ],
      },
    });
  });

  it.each([
    ['true', 'daily', 'create'],
    ['TRUE', 'daily', 'create'],
    ['true', 'weekly', 'not-due'],
    ['daily,weekly', 'weekly', 'create'],
    [' Weekly ', 'weekly', 'create'],
    ['weekly', 'daily', 'not-due'],
    ['false', 'daily', 'not-due'],
    ['', 'daily', 'not-due'],
  ])('with snapkeeper:ami=%j, in a %s run: %s', (value, schedule, kind) => {
    // Prepare
    const facts = instance({ tags: { 'snapkeeper:ami': value } });

    // Act
    const decision = planInstanceImage(facts, imageContext({ schedule }));

    // Assess
    expect(decision.kind).toBe(kind);
  });

  it('takes `true` to mean the default schedule of the catalog', () => {
    // Prepare
    const weeklyDefault = parseScheduleCatalog(DEFAULT_SCHEDULES, 'weekly');
    const facts = instance({ tags: { 'snapkeeper:ami': 'true' } });

    // Act
    const weekly = planInstanceImage(
      facts,
      imageContext({ catalog: weeklyDefault, schedule: 'weekly' }),
    );
    const daily = planInstanceImage(facts, imageContext({ catalog: weeklyDefault }));

    // Assess
    expect(weekly.kind).toBe('create');
    expect(daily).toEqual({ kind: 'not-due', instanceId: INSTANCE_ID });
  });

  it('is not due for an instance without snapkeeper:ami, even one with snapkeeper:backup', () => {
    // Prepare
    const facts = instance({ tags: { 'snapkeeper:backup': 'daily', Name: 'web-1' } });

    // Act
    const decision = planInstanceImage(facts, imageContext());

    // Assess
    expect(decision).toEqual({ kind: 'not-due', instanceId: INSTANCE_ID });
  });

  it('reads the tags under the configured prefix', () => {
    // Prepare
    const acme = tagKeys('acme:');
    const facts = instance({ tags: { 'acme:ami': 'daily', 'acme:ami-reboot': 'true' } });

    // Act
    const decision = planInstanceImage(facts, imageContext({ keys: acme }));

    // Assess
    expect(requestOf(decision).noReboot).toBe(false);
    expect(requestOf(decision).tags[0]).toEqual({ Key: 'acme:managed', Value: 'true' });
  });

  describe('NoReboot', () => {
    it('asks for no reboot when snapkeeper:ami-reboot is absent', () => {
      // Prepare
      const facts = instance({ tags: { 'snapkeeper:ami': 'daily' } });

      // Act
      const decision = planInstanceImage(facts, imageContext());

      // Assess
      expect(requestOf(decision).noReboot).toBe(true);
    });

    it.each([
      ['true', false],
      ['TRUE', false],
      [' true ', false],
      ['false', true],
      ['False', true],
    ])('with snapkeeper:ami-reboot=%j sets NoReboot to %s', (value, noReboot) => {
      // Prepare
      const facts = instance({
        tags: { 'snapkeeper:ami': 'daily', 'snapkeeper:ami-reboot': value },
      });

      // Act
      const decision = planInstanceImage(facts, imageContext());

      // Assess
      expect(requestOf(decision).noReboot).toBe(noReboot);
      expect(decision.kind === 'create' && decision.problems).toEqual([]);
    });

    it.each(['yes', '1', '', 'reboot'])(
      'with a malformed snapkeeper:ami-reboot=%j still creates the AMI without reboot and reports the problem',
      (value) => {
        // Prepare
        const facts = instance({
          tags: { 'snapkeeper:ami': 'daily', 'snapkeeper:ami-reboot': value },
        });

        // Act
        const decision = planInstanceImage(facts, imageContext());

        // Assess
        expect(decision.kind).toBe('create');
        expect(requestOf(decision).noReboot).toBe(true);
        expect(decision.kind === 'create' && decision.problems).toEqual([
          {
            resourceId: INSTANCE_ID,
            key: 'snapkeeper:ami-reboot',
            value,
            message: `snapkeeper:ami-reboot=${JSON.stringify(value)} must be true or false; using false`,
          },
        ]);
      },
    );

    it('reports a malformed snapkeeper:ami-reboot only in the runs the instance is due in, like the backup plan', () => {
      // Prepare
      const facts = instance({
        tags: { 'snapkeeper:ami': 'weekly', 'snapkeeper:ami-reboot': 'yes' },
      });

      // Act
      const decision = planInstanceImage(facts, imageContext({ schedule: 'daily' }));

      // Assess
      expect(decision).toEqual({ kind: 'not-due', instanceId: INSTANCE_ID });
    });
  });

  describe('tags', () => {
    it('tags the AMI exactly as snapshots are tagged (the shared tag contract)', () => {
      // Prepare
      const tags = {
        'snapkeeper:ami': 'daily',
        Name: 'web-1',
        CostCenter: '42',
        Team: 'payments',
        Unrelated: 'x',
      };
      const context = imageContext({ copyTags: ['CostCenter', 'Team', 'Missing'] });
      const facts = instance({ tags });

      // Act
      const decision = planInstanceImage(facts, context);

      // Assess
      expect(requestOf(decision).tags).toEqual(buildResourceTags(INSTANCE_ID, tags, context));
      expect(requestOf(decision).tags).toEqual([
        { Key: 'snapkeeper:managed', Value: 'true' },
        { Key: 'snapkeeper:deployment', Value: 'prod' },
        { Key: 'snapkeeper:schedule', Value: 'daily' },
        { Key: 'snapkeeper:slot', Value: SLOT },
        { Key: 'snapkeeper:instance-id', Value: INSTANCE_ID },
        { Key: 'snapkeeper:run-id', Value: 'run-42' },
        { Key: 'snapkeeper:created-at', Value: '2026-11-23T03:00:07Z' },
        { Key: 'Name', Value: 'web-1' },
        { Key: 'CostCenter', Value: '42' },
        { Key: 'Team', Value: 'payments' },
      ]);
    });

    it('never copies aws: tags or tags under its own prefix, even when asked to', () => {
      // Prepare
      const tags = {
        'snapkeeper:ami': 'daily',
        'snapkeeper:managed': 'false',
        'aws:cloudformation:stack-name': 'web',
        CostCenter: '42',
      };
      const context = imageContext({
        copyTags: [
          'snapkeeper:ami',
          'snapkeeper:managed',
          'aws:cloudformation:stack-name',
          'CostCenter',
        ],
      });

      // Act
      const decision = planInstanceImage(instance({ tags }), context);

      // Assess
      const written = requestOf(decision).tags;
      expect(written.filter((t) => t.Key === 'snapkeeper:managed')).toEqual([
        { Key: 'snapkeeper:managed', Value: 'true' },
      ]);
      expect(written.map((t) => t.Key)).not.toContain('snapkeeper:ami');
      expect(written.map((t) => t.Key)).not.toContain('aws:cloudformation:stack-name');
      expect(written.at(-1)).toEqual({ Key: 'CostCenter', Value: '42' });
    });
  });

  describe('name and description', () => {
    it('names and describes the AMI of an instance without Name by its instance id', () => {
      // Prepare
      const facts = instance({ tags: { 'snapkeeper:ami': 'daily' } });

      // Act
      const decision = planInstanceImage(facts, imageContext());

      // Assess
      expect(decision).toMatchObject({ kind: 'create', name: undefined });
      expect(requestOf(decision).name).toBe(`${INSTANCE_ID}-prod-daily-20261123T0300Z`);
      expect(requestOf(decision).description).toBe(
        `snapkeeper daily AMI of ${INSTANCE_ID} for ${SLOT}`,
      );
    });

    it('keeps the description within 255 characters and the name valid for a huge, odd Name', () => {
      // Prepare
      const facts = instance({ tags: { 'snapkeeper:ami': 'daily', Name: `é${'w'.repeat(400)}` } });

      // Act
      const decision = planInstanceImage(facts, imageContext());

      // Assess
      expect(requestOf(decision).description.length).toBeLessThanOrEqual(255);
      expect(requestOf(decision).description.startsWith('snapkeeper daily AMI of ')).toBe(true);
      expect(requestOf(decision).name).toMatch(VALID_AMI_NAME);
    });
  });

  describe('tag problems', () => {
    it('skips, as an error, an instance whose snapkeeper:ami names no known schedule, naming key and value', () => {
      // Prepare
      const facts = instance({ tags: { 'snapkeeper:ami': 'dialy', Name: 'web-1' } });

      // Act
      const decision = planInstanceImage(facts, imageContext());

      // Assess
      expect(decision).toMatchObject({
        kind: 'skip',
        instanceId: INSTANCE_ID,
        name: 'web-1',
        isError: true,
        problems: [{ resourceId: INSTANCE_ID, key: 'snapkeeper:ami', value: 'dialy' }],
      });
      expect(decision.kind === 'skip' && decision.reason).toContain('snapkeeper:ami="dialy"');
      expect(decision.kind === 'skip' && decision.reason).toContain('no AMI for schedule daily');
    });

    it('reports the typo in every schedule run, whatever the schedule', () => {
      // Prepare
      const facts = instance({ tags: { 'snapkeeper:ami': 'wekly' } });

      // Act
      const decisions = ['daily', 'weekly', 'monthly'].map((schedule) =>
        planInstanceImage(facts, imageContext({ schedule })),
      );

      // Assess
      for (const decision of decisions) {
        expect(decision).toMatchObject({ kind: 'skip', isError: true });
      }
    });

    it('still creates the AMI for the schedule named correctly beside a typo, and carries the problem', () => {
      // Prepare
      const facts = instance({ tags: { 'snapkeeper:ami': 'daily,wekly' } });

      // Act
      const decision = planInstanceImage(facts, imageContext());

      // Assess
      expect(decision.kind).toBe('create');
      expect(decision.kind === 'create' && decision.problems).toMatchObject([
        { key: 'snapkeeper:ami', value: 'daily,wekly' },
      ]);
      expect(decision.kind === 'create' && decision.problems[0]?.message).toContain('"wekly"');
    });
  });

  describe('instance state', () => {
    it.each(['pending', 'running', 'stopping', 'stopped'])(
      'creates the AMI of an instance that is %s',
      (state) => {
        // Prepare
        const facts = instance({ state });

        // Act
        const decision = planInstanceImage(facts, imageContext());

        // Assess
        expect(decision.kind).toBe('create');
      },
    );

    it.each(['terminated', 'shutting-down', 'unknown'])(
      'skips an instance that is %s, with the state as reason and no error',
      (state) => {
        // Prepare
        const facts = instance({ state });

        // Act
        const decision = planInstanceImage(facts, imageContext());

        // Assess
        expect(decision).toEqual({
          kind: 'skip',
          instanceId: INSTANCE_ID,
          name: 'web-1',
          reason: `instance is ${state}`,
          isError: false,
          problems: [],
        });
      },
    );

    it('does not mention a terminated instance in a run it is not due in', () => {
      // Prepare
      const facts = instance({ state: 'terminated', tags: { 'snapkeeper:ami': 'weekly' } });

      // Act
      const decision = planInstanceImage(facts, imageContext());

      // Assess
      expect(decision).toEqual({ kind: 'not-due', instanceId: INSTANCE_ID });
    });
  });
});

describe('Function: imageIdFromSnapshotDescription', () => {
  it.each([
    [
      'Created by CreateImage(i-0123456789abcdef0) for ami-0fedcba9876543210',
      'ami-0fedcba9876543210',
    ],
    [
      'Created by CreateImage(i-0123456789abcdef0) for ami-0fedcba9876543210 from vol-0aaaabbbbccccdddd',
      'ami-0fedcba9876543210',
    ],
    ['Created by CreateImage(i-1) for ami-2 from vol-3', 'ami-2'],
    ['Created by CreateImage(i-0abc) for ami-1234abcd', 'ami-1234abcd'],
  ])('reads the AMI id out of %j', (description, expected) => {
    // Prepare
    const text = description;

    // Act
    const imageId = imageIdFromSnapshotDescription(text);

    // Assess
    expect(imageId).toBe(expected);
  });

  it.each([
    ['no description', undefined],
    ['an empty description', ''],
    ['a snapkeeper snapshot description', `snapkeeper daily ${SLOT} i-1 (web-1)`],
    ['a CopyImage description', 'Copied for DestinationAmi ami-0abc from SourceAmi ami-0def'],
    ['text before the EC2 phrase', 'note: Created by CreateImage(i-1) for ami-0abc'],
    ['an AMI id without digits', 'Created by CreateImage(i-1) for ami-'],
    ['a description missing the instance', 'Created by CreateImage for ami-0abc'],
  ])('finds no AMI id in %s', (_case, description) => {
    // Prepare
    const text = description;

    // Act
    const imageId = imageIdFromSnapshotDescription(text);

    // Assess
    expect(imageId).toBeUndefined();
  });
});
