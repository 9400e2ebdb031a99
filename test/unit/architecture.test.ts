/**
 * The layer rules (docs/architecture.md, "The layers and their rules") hold, and the
 * check that enforces them in `npm test` (dependency-cruiser with
 * `.dependency-cruiser.cjs`) catches an import that breaks them. What the cruiser
 * cannot see is checked here: the domain reads no clock, and jobs and the report name
 * adapter modules type-only.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cruise, type IConfiguration, type ICruiseResult } from 'dependency-cruiser';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const config = createRequire(import.meta.url)(
  join(root, '.dependency-cruiser.cjs'),
) as IConfiguration;

/** Every `.ts` file under `dir` (relative to the repository), recursively. */
function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join(dir, file));
}

/** Cruises `files` under `baseDir` with the project's rules; the violations as `rule: from -> to`. */
async function violations(baseDir: string, files: string[]): Promise<string[]> {
  const { output } = await cruise(files, {
    ...config.options,
    baseDir,
    validate: true,
    ruleSet: { forbidden: config.forbidden ?? [] },
    tsConfig: undefined,
  } as never);
  return (output as ICruiseResult).summary.violations.map(
    (v) => `${v.rule.name}: ${v.from} -> ${v.to}`,
  );
}

describe('the import-direction check', () => {
  const fixture = mkdtempSync(join(tmpdir(), 'snapkeeper-layers-'));
  afterAll(() => rmSync(fixture, { recursive: true, force: true }));

  /** Writes a fixture tree: file → its imports. */
  function tree(files: Record<string, readonly string[]>): string[] {
    for (const [file, imports] of Object.entries(files)) {
      mkdirSync(join(fixture, dirname(file)), { recursive: true });
      const lines = imports.map((target, i) => `import * as m${i} from '${target}';`);
      writeFileSync(join(fixture, file), `${lines.join('\n')}\nexport const x = 1;\n`);
    }
    return Object.keys(files);
  }

  it('passes on the real tree', async () => {
    expect(await violations(root, ['lib', 'functions', 'harness', 'scripts'])).toEqual([]);
  });

  it('catches every forbidden direction, and lets the allowed ones through', async () => {
    const files = tree({
      'lib/domain/plan.ts': ['./other.ts', '../aws/gateway.ts', 'node:fs', '@aws-sdk/client-ec2'],
      'lib/domain/other.ts': [],
      'lib/config/environment.ts': ['../domain/plan.ts', '../aws/gateway.ts'],
      'lib/aws/gateway.ts': ['../domain/plan.ts', './errors.ts', '../jobs/job.ts'],
      'lib/aws/errors.ts': [],
      'lib/aws/clients.ts': [],
      'lib/jobs/job.ts': [
        './ports.ts',
        '../aws/errors.ts',
        '../aws/clients.ts',
        '../runtime/root.ts',
      ],
      'lib/jobs/ports.ts': [],
      'lib/report/html.ts': ['../jobs/job.ts', '../runtime/root.ts'],
      'lib/runtime/root.ts': ['../aws/gateway.ts', '../jobs/job.ts', '../../harness/aws.ts'],
      'functions/backup.ts': ['../lib/runtime/root.ts', '../test/fake.ts'],
      'harness/aws.ts': ['../lib/aws/gateway.ts', '../scripts/tool.ts'],
      'scripts/tool.ts': ['../harness/aws.ts', '../lib/runtime/root.ts', '../test/fake.ts'],
      'test/fake.ts': ['../scripts/tool.ts'],
    });
    expect((await violations(fixture, files)).sort()).toEqual([
      'adapters-import-below-jobs: lib/aws/gateway.ts -> lib/jobs/job.ts',
      'config-imports-only-domain: lib/config/environment.ts -> lib/aws/gateway.ts',
      'domain-imports-only-domain: lib/domain/plan.ts -> @aws-sdk/client-ec2',
      'domain-imports-only-domain: lib/domain/plan.ts -> fs',
      'domain-imports-only-domain: lib/domain/plan.ts -> lib/aws/gateway.ts',
      'harness-imports-lib-only: harness/aws.ts -> scripts/tool.ts',
      'jobs-import-domain-config-ports: lib/jobs/job.ts -> lib/aws/clients.ts',
      'jobs-import-domain-config-ports: lib/jobs/job.ts -> lib/runtime/root.ts',
      'lib-and-functions-never-import-tools: functions/backup.ts -> test/fake.ts',
      'lib-and-functions-never-import-tools: lib/runtime/root.ts -> harness/aws.ts',
      'report-imports-domain-config-jobs: lib/report/html.ts -> lib/runtime/root.ts',
      'scripts-never-import-tests: scripts/tool.ts -> test/fake.ts',
    ]);
  });

  it('is the list docs/architecture.md gives: every rule is named there', () => {
    const page = readFileSync(join(root, 'docs/architecture.md'), 'utf8');
    for (const rule of config.forbidden ?? []) expect(page).toContain(`\`${rule.name}\``);
  });
});

describe('what the cruiser cannot see', () => {
  it('the domain reads no clock, no randomness and no environment', () => {
    const clock =
      /Date\.now\(|new Date\(\)|performance\.now\(|process\.hrtime|Math\.random\(|process\.env/;
    const offenders = sources('lib/domain').filter((file) =>
      clock.test(readFileSync(join(root, file), 'utf8')),
    );
    expect(offenders).toEqual([]);
  });

  /**
   * Values jobs may still import from an adapter module: error classes that moved to
   * lib/aws/errors.ts and are re-exported by their gateway, until the codemod
   * (the one-time codemod of issue 20) imports them from lib/aws/errors.ts.
   */
  const MOVED_ERRORS = new Set(['CreateSnapshotSetError', 'ImageNameTakenError']);

  it('jobs and the report name adapter modules type-only (apart from moved error classes)', () => {
    const importStatement = /import\s+(type\s+)?\{([^}]*)\}\s+from\s+'(\.\.\/aws\/[^']+)'/g;
    const offenders: string[] = [];
    for (const file of [...sources('lib/jobs'), ...sources('lib/report')]) {
      for (const match of readFileSync(join(root, file), 'utf8').matchAll(importStatement)) {
        const [, typeOnly, names = '', from = ''] = match;
        if (typeOnly || from === '../aws/errors.ts') continue;
        const values = names
          .split(',')
          .map((name) => name.trim())
          .filter((name) => name && !name.startsWith('type ') && !MOVED_ERRORS.has(name));
        if (values.length > 0) offenders.push(`${file}: ${values.join(', ')} from ${from}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
