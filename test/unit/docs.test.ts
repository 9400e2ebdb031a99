import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../harness/localAws.ts';

const read = (path: string) => readFileSync(join(PROJECT_ROOT, path), 'utf8');
/** The README and every page of docs/ (not docs/pending/, the engineers' notes for the lead). */
const PAGES = [
  'README.md',
  ...readdirSync(join(PROJECT_ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const ALL_TEXT = PAGES.map(read).join('\n');

/** The variables a file reads as `env.NAME` or through a helper given `env, 'NAME'`. */
function variablesRead(path: string): Set<string> {
  const source = read(path);
  const names = new Set<string>();
  for (const m of source.matchAll(/\benv\.([A-Z][A-Z0-9_]+)/g)) names.add(m[1] as string);
  for (const m of source.matchAll(/\benv,\s*'([A-Z][A-Z0-9_]+)'/g)) names.add(m[1] as string);
  return names;
}

/** The backticked names in the first column of a markdown section's tables. */
function documentedVariables(page: string, heading: string): Set<string> {
  const text = read(page);
  const start = text.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`${page} has no section "${heading}"`);
  const rest = text.slice(start + heading.length + 2);
  const next = rest.search(/\n#{2,6} /);
  const section = next < 0 ? rest : rest.slice(0, next);
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const first = line.split('|')[1] ?? '';
    for (const m of first.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.add(m[1] as string);
  }
  return names;
}

const sorted = (set: Set<string>) => [...set].sort();

describe('The docs and the code stay in step', () => {
  it('the README fits on a screen: under 200 lines, with the picture of the coverage page', () => {
    const readme = read('README.md');
    expect(readme.split('\n').length).toBeLessThan(200);
    const image = /!\[[^\]]+\]\((docs\/[\w.-]+\.png)\)/.exec(readme)?.[1];
    expect(image).toBe('docs/coverage.png');
    const png = readFileSync(join(PROJECT_ROOT, image ?? ''));
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    for (const section of [
      '## The two commands',
      '## A five-minute tour',
      '## Tags: the quick reference',
      '## Deploy in three steps',
      '## Where to read on',
    ])
      expect(readme).toContain(`\n${section}\n`);
  });

  it('the README links every page of docs/, and every relative link of every page resolves', () => {
    const readme = read('README.md');
    for (const page of PAGES.filter((p) => p !== 'README.md'))
      expect(readme, `README links ${page}`).toContain(`](${page})`);
    for (const page of PAGES) {
      for (const m of read(page).matchAll(/\]\(([^)#\s]+)(#[^)\s]*)?\)/g)) {
        const target = m[1] as string;
        if (/^[a-z]+:/.test(target)) continue;
        const path = resolve(dirname(join(PROJECT_ROOT, page)), target);
        expect(existsSync(path), `${page} links ${target}`).toBe(true);
        const anchor = m[2]?.slice(1);
        if (anchor && target.endsWith('.md')) {
          const anchors = readFileSync(path, 'utf8')
            .split('\n')
            .filter((l) => /^#{1,6} /.test(l))
            .map((l) =>
              l
                .replace(/^#+ /, '')
                .toLowerCase()
                .replace(/[^\w\s-]/g, '')
                .replace(/\s/g, '-'),
            );
          expect(anchors, `${page} links ${target}#${anchor}`).toContain(anchor);
        }
      }
    }
  });

  it('every environment variable the configuration reads is documented, and every documented one is read', () => {
    const read = variablesRead('lib/config/environment.ts');
    expect(read.size).toBeGreaterThan(30);
    expect(
      sorted(documentedVariables('docs/reference.md', '## Configuration: environment variables')),
    ).toEqual(sorted(read));
  });

  it('the variables of the runtime, Powertools and the local tools are documented where they are read', () => {
    const runtime = documentedVariables(
      'docs/reference.md',
      '### Read by the runtime, Powertools and the SDK',
    );
    const runtimeSource = read('lib/runtime/lambdaRuntime.ts');
    // Powertools and the SDK read these themselves; the tools and tests set them.
    const byLibraries = [
      'POWERTOOLS_LOG_LEVEL',
      'POWERTOOLS_TRACE_ENABLED',
      'POWERTOOLS_METRICS_DISABLED',
      'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED',
    ];
    for (const name of runtime)
      expect(runtimeSource.includes(name) || byLibraries.includes(name), name).toBe(true);
    for (const name of variablesRead('lib/runtime/lambdaRuntime.ts'))
      expect(runtime).toContain(name);

    const tools = documentedVariables('docs/reference.md', '### Read by the local tools');
    const toolSources = [
      'harness/localStack.ts',
      'scripts/cli.ts',
      'scripts/ensure-chromium.sh',
      'test/browser/report.test.ts',
    ]
      .map(read)
      .join('\n');
    for (const name of tools) expect(toolSources, name).toContain(name);
    for (const name of ['SNAPKEEPER_LOCAL_AWS_DIR', 'SNAPKEEPER_LOCAL_AWS', 'CHROMIUM_PATH'])
      expect(tools).toContain(name);
  });

  it('every file in events/ is named in the docs', () => {
    const missing = readdirSync(join(PROJECT_ROOT, 'events')).filter((f) => !ALL_TEXT.includes(f));
    expect(missing).toEqual([]);
  });

  it('every `npm run` script the docs name exists, and every tool with --help is named', () => {
    const scripts = Object.keys(
      (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts,
    );
    const named = new Set(
      [...ALL_TEXT.matchAll(/npm run ([a-z][\w:-]*)/g)].map((m) => m[1] as string),
    );
    expect(sorted(new Set([...named].filter((n) => !scripts.includes(n))))).toEqual([]);
    for (const tool of ['local-aws', 'ops', 'invoke', 'history', 'report', 'demo'])
      expect(named).toContain(tool);
  });

  it('every source file the docs name exists', () => {
    const paths = new Set(
      [
        ...ALL_TEXT.matchAll(
          /`((?:lib|functions|scripts|test|deploy|events)\/[\w./-]+\.(?:ts|sh|yml|json|py))`/g,
        ),
      ].map((m) => m[1] as string),
    );
    expect(paths.size).toBeGreaterThan(20);
    const missing = [...paths].filter(
      (p) => !existsSync(join(PROJECT_ROOT, p)) && !existsSync(join(PROJECT_ROOT, 'events', p)),
    );
    expect(missing).toEqual([]);
  });

  it('every metric the jobs emit and every alarm the stack defines is documented', () => {
    const reference = read('docs/reference.md');
    const jobs = readdirSync(join(PROJECT_ROOT, 'lib', 'jobs'))
      .map((f) => read(`lib/jobs/${f}`))
      .join('\n');
    const metrics = new Set(
      [
        ...jobs.matchAll(
          /(?:count|seconds)\(\s*(?:[^'()]*\?\s*)?'([A-Z]\w+)'(?:\s*:\s*'([A-Z]\w+)')?/g,
        ),
        // closeRun's envelope: `counts: { SnapshotsDeleted: counts.deleted }` and `runs: { succeeded: 'X', failed: 'Y' }`.
        ...jobs.matchAll(/\b([A-Z][a-z]\w+):\s*(?:report\.)?counts\.\w+/g),
        ...jobs.matchAll(/(?:succeeded|failed):\s*'([A-Z]\w+)'/g),
      ].flatMap((m) => [m[1], m[2]].filter((n): n is string => n !== undefined)),
    );
    // The metrics a job counts through closeRun: its `runs` names and its `counts` keys
    // (metric names are two words or more, as `SnapshotsCreated`; tag keys are one).
    for (const m of jobs.matchAll(/(?:succeeded|failed): '([A-Z]\w+)'/g))
      metrics.add(m[1] as string);
    // (An SSM document's parameters, `ExcludeBootVolume: ['False']`, are lists of strings, not counts.)
    for (const m of jobs.matchAll(/^\s+([A-Z][a-z]+[A-Z]\w*): (?![['"])/gm))
      metrics.add(m[1] as string);
    expect(metrics.size).toBeGreaterThan(15);
    for (const metric of metrics) expect(reference, metric).toContain(`\`${metric}\``);
    const stack = `${read('serverless.yml')}\n${read('scripts/serverlessVariables.cjs')}`;
    const alarms = [
      ...stack.matchAll(
        /AlarmName: ['`]?\\?\$\{self:service\}-\\?\$\{sls:stage\}-([\w-]+?)(?:-\$\{s\.name\})?['`,\n]/g,
      ),
    ].map((m) => m[1] as string);
    expect(alarms).toContain('recovery-point-age');
    expect(alarms).toContain('undelivered-schedules');
    expect(alarms.length).toBeGreaterThan(6);
    for (const alarm of alarms)
      expect(reference, alarm).toMatch(new RegExp(`\`${alarm}(-<schedule>)?\``));
  });

  it('names where things live as the code has them: runStatus in the jobs, amis.ts calling two jobs', () => {
    expect(read('lib/jobs/runReport.ts')).toContain('export function runStatus(');
    const architecture = read('docs/architecture.md');
    expect(architecture).toContain('(runReport.ts: runStatus)');
    expect(architecture).toMatch(/amis\.ts calls two/);
    const amis = read('functions/amis.ts');
    expect(amis).toContain('runAmiJob(');
    expect(amis).toContain('runSweepJob(');
  });
});
