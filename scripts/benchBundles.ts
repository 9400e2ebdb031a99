/**
 * Bundle benchmark (not a test): `npm run bench:bundles [-- --runs 20] [--function backup]`.
 *
 * For each function in serverless.yml, builds its production bundle exactly as
 * serverless-esbuild does from `custom.esbuild`, and the same handler unbundled (only
 * our own code bundled; node_modules left to Node's module resolution at import time).
 * Prints the bundle's size and the cold init time of both (the median over fresh `node`
 * processes of the time `await import()` of the file takes, measured in the child),
 * with a verdict against the budget: bundle ≤ 1.5 MB, init ≤ 60% of the unbundled one.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { type BuildOptions, build, version as esbuildVersion } from 'esbuild';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../harness/localAws.ts';
import { type CliSpec, CONSOLE_IO, isMain, runTool, type ToolIo, UsageError } from './cli.ts';

const BUNDLE_BUDGET_BYTES = 1.5 * 1024 * 1024;
const INIT_BUDGET_RATIO = 0.6;

/** What module init needs so that it does not fail, and stays quiet, in a child. */
const CHILD_ENV = {
  DEPLOYMENT: 'bench',
  AWS_REGION: 'us-east-1',
  HISTORY_TABLE: 'bench-runs',
  // Only read at init; no call is made (a loopback address all the same).
  FANOUT_QUEUE_URL: 'http://127.0.0.1:9/123456789012/bench-fanout',
  POWERTOOLS_METRICS_DISABLED: 'true',
  POWERTOOLS_TRACE_ENABLED: 'false',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

/** serverless-esbuild's own options, which it strips before calling esbuild. */
const PLUGIN_ONLY_OPTIONS = [
  'concurrency',
  'zipConcurrency',
  'exclude',
  'nativeZip',
  'packager',
  'packagePath',
  'watch',
  'keepOutputDirectory',
  'packagerOptions',
  'installExtraArgs',
  'outputFileExtension',
  'outputBuildFolder',
  'outputWorkFolder',
  'nodeExternals',
  'skipBuild',
  'skipRebuild',
  'skipBuildExcludeFns',
  'stripEntryResolveExtensions',
  'disposeContext',
];

/** Timed in the child: the import of the file named by the first argument. */
const CHILD_SCRIPT = [
  'const started = performance.now();',
  'await import(process.argv[1]);',
  "process.stdout.write(String(performance.now() - started) + '\\n');",
  'process.exit(0);',
].join('\n');

interface ServerlessFile {
  readonly provider?: { readonly runtime?: string };
  readonly custom?: { readonly esbuild?: Readonly<Record<string, unknown>> };
  readonly functions?: Readonly<Record<string, { readonly handler?: string }>>;
}

interface FunctionEntry {
  readonly name: string;
  /** The handler's source file, relative to the project, e.g. `functions/backup.ts`. */
  readonly entry: string;
}

function readServerlessFile(): ServerlessFile {
  // CloudFormation's short-form tags (!Ref, !GetAtt, ...) read as plain values.
  const customTags = ['Ref', 'GetAtt', 'Sub', 'Join', 'If', 'Equals', 'Not', 'Select', 'Split'].map(
    (name) => ({ tag: `!${name}`, resolve: (value: unknown) => ({ [name]: value }) }),
  );
  return parse(readFileSync(join(PROJECT_ROOT, 'serverless.yml'), 'utf8'), {
    customTags,
    logLevel: 'silent',
  }) as ServerlessFile;
}

function functionEntries(file: ServerlessFile): FunctionEntry[] {
  return Object.entries(file.functions ?? {}).map(([name, fn]) => {
    const handler = fn.handler ?? '';
    const module = handler.slice(0, handler.lastIndexOf('.'));
    if (!module) throw new Error(`serverless.yml: function ${name} has no handler`);
    return { name, entry: `${module}.ts` };
  });
}

/** The esbuild options serverless-esbuild derives from serverless.yml's custom.esbuild. */
function productionOptions(file: ServerlessFile): { options: BuildOptions; extension: string } {
  const custom = { ...(file.custom?.esbuild ?? {}) };
  const runtime = /^nodejs(\d+)\.x$/.exec(file.provider?.runtime ?? '')?.[1];
  const extension =
    typeof custom.outputFileExtension === 'string' ? custom.outputFileExtension : '.js';
  const exclude = Array.isArray(custom.exclude) ? (custom.exclude as string[]) : ['aws-sdk'];
  const external = Array.isArray(custom.external) ? (custom.external as string[]) : [];
  for (const key of PLUGIN_ONLY_OPTIONS) delete custom[key];
  const options: BuildOptions = {
    bundle: true,
    platform: 'node',
    ...(runtime ? { target: `node${runtime}` } : {}),
    ...(custom as BuildOptions),
    external: [...external, ...(exclude.includes('*') ? [] : exclude)],
    ...(extension !== '.js' ? { outExtension: { '.js': extension } } : {}),
  };
  return { options, extension };
}

/** The same handler with only our code bundled: packages load from node_modules. */
function unbundledOptions(production: BuildOptions): BuildOptions {
  return {
    bundle: true,
    packages: 'external',
    minify: false,
    sourcemap: false,
    format: 'esm',
    platform: 'node',
    ...(production.target ? { target: production.target } : {}),
    ...(production.outExtension ? { outExtension: production.outExtension } : {}),
  };
}

async function buildInto(
  options: BuildOptions,
  entry: string,
  outRoot: string,
  extension: string,
): Promise<string> {
  await build({
    ...options,
    absWorkingDir: PROJECT_ROOT,
    entryPoints: [entry],
    outdir: join(outRoot, dirname(entry)),
    write: true,
    logLevel: 'warning',
  });
  return join(outRoot, entry.replace(/\.ts$/, extension));
}

/** One cold init: a fresh `node` that imports the file and reports how long it took. */
function coldInitMs(file: string): number {
  const child = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', CHILD_SCRIPT, pathToFileURL(file).href],
    {
      cwd: dirname(file),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...CHILD_ENV },
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  const ms = Number.parseFloat(child.stdout?.trim() ?? '');
  if (child.status !== 0 || !Number.isFinite(ms)) {
    throw new Error(
      `importing ${file} failed (exit ${child.status ?? child.signal}): ${child.stderr?.trim()}`,
    );
  }
  return ms;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}

const kb = (bytes: number) => (bytes / 1024).toFixed(1);

interface Row {
  readonly name: string;
  readonly bundleBytes: number;
  readonly zippedBytes: number;
  readonly bundledMs: number;
  readonly unbundledMs: number;
}

function verdict(row: Row): string {
  const ratio = row.bundledMs / row.unbundledMs;
  const problems = [
    ...(row.bundleBytes > BUNDLE_BUDGET_BYTES
      ? [`bundle ${kb(row.bundleBytes)} KB > ${kb(BUNDLE_BUDGET_BYTES)} KB`]
      : []),
    ...(ratio > INIT_BUDGET_RATIO
      ? [`init ${(ratio * 100).toFixed(0)}% > ${INIT_BUDGET_RATIO * 100}% of unbundled`]
      : []),
  ];
  return problems.length === 0 ? 'within budget' : `OVER BUDGET: ${problems.join('; ')}`;
}

/** `npm run bench:bundles`'s command line. */
export const BENCH_BUNDLES_COMMAND: CliSpec = {
  command: 'npm run bench:bundles --',
  summary: `Bundle benchmark (not a test): builds each function of serverless.yml as serverless-esbuild does, and the same handler unbundled, and prints the bundle's size and the median cold init of both over fresh node processes, against the budget (bundle ≤ ${BUNDLE_BUDGET_BYTES / 1024 / 1024} MB, init ≤ ${INIT_BUDGET_RATIO * 100}% of the unbundled one). Needs no AWS.`,
  options: {
    runs: {
      type: 'string',
      value: '<n>',
      default: '20',
      description: 'fresh node processes timed per build, 1-1000',
    },
    function: {
      type: 'string',
      value: '<name>',
      description: 'only this function of serverless.yml (e.g. backup)',
    },
  },
  examples: [
    'npm run bench:bundles',
    'npm run bench:bundles -- --runs 5 --function backup',
    'npm run bench:bundles -- --json > bundles.json',
  ],
  notes: ['--json prints the rows as JSON. --verbose changes nothing. --help builds nothing.'],
};

/**
 * Runs `npm run bench:bundles` with a command line; answers the exit code (2 for a bad
 * command line, 1 when the run failed).
 *
 * @example
 * process.exitCode = await benchBundlesCommand(['--runs', '5']);
 */
export async function benchBundlesCommand(
  argv: readonly string[],
  io: ToolIo = CONSOLE_IO,
): Promise<number> {
  return runTool(
    BENCH_BUNDLES_COMMAND,
    argv,
    async (cli) => {
      const text = String(cli.values.runs);
      const runs = Number(text);
      if (!/^\d+$/.test(text) || runs < 1 || runs > 1000)
        throw new UsageError(`--runs ${JSON.stringify(text)}: use a whole number from 1 to 1000`);
      const file = readServerlessFile();
      const names = functionEntries(file).map((fn) => fn.name);
      const only = cli.values.function as string | undefined;
      if (only !== undefined && !names.includes(only))
        throw new UsageError(
          `--function ${JSON.stringify(only)}: not a function of serverless.yml (use one of ${names.join(', ')})`,
        );
      const rows = await main(file, runs, only, cli.json ? () => undefined : io.out);
      if (cli.json)
        io.out(
          JSON.stringify(
            rows.map((row) => ({ ...row, verdict: verdict(row) })),
            null,
            2,
          ),
        );
      return 0;
    },
    io,
  );
}

async function main(
  file: ServerlessFile,
  runs: number,
  only: string | undefined,
  log: (text: string) => void,
): Promise<Row[]> {
  const { options, extension } = productionOptions(file);
  const functions = functionEntries(file).filter((fn) => only === undefined || fn.name === only);

  // Bundles need nothing beside them; the unbundled builds sit inside the project so
  // that their bare imports resolve to its node_modules.
  const bundledDir = mkdtempSync(join(tmpdir(), 'snapkeeper-bench-bundled-'));
  const unbundledDir = mkdtempSync(join(PROJECT_ROOT, '.bench-unbundled-'));
  const cleanUp = () => {
    rmSync(bundledDir, { recursive: true, force: true });
    rmSync(unbundledDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanUp();
    process.exit(130);
  });

  try {
    log(
      `esbuild ${esbuildVersion} with serverless.yml custom.esbuild: bundle=${options.bundle} ` +
        `minify=${options.minify} format=${options.format} platform=${options.platform} ` +
        `target=${options.target} mainFields=[${options.mainFields?.join(', ')}] ` +
        `sourcemap=${options.sourcemap ?? false} banner=${options.banner?.js?.includes('createRequire') ? 'createRequire' : 'none'}`,
    );
    log(
      `cold init: median of ${runs} fresh node ${process.version} processes, ` +
        '`await import()` timed in the child; unbundled = packages external, unminified\n',
    );
    const rows: Row[] = [];
    for (const fn of functions) {
      const bundle = await buildInto(options, fn.entry, bundledDir, extension);
      const unbundled = await buildInto(
        unbundledOptions(options),
        fn.entry,
        unbundledDir,
        extension,
      );
      // One untimed import of each first, so that both start with a warm file cache.
      coldInitMs(bundle);
      coldInitMs(unbundled);
      const bundledTimes: number[] = [];
      const unbundledTimes: number[] = [];
      for (let run = 0; run < runs; run += 1) {
        bundledTimes.push(coldInitMs(bundle));
        unbundledTimes.push(coldInitMs(unbundled));
      }
      rows.push({
        name: fn.name,
        bundleBytes: statSync(bundle).size,
        zippedBytes: deflateRawSync(readFileSync(bundle), { level: 9 }).length,
        bundledMs: median(bundledTimes),
        unbundledMs: median(unbundledTimes),
      });
    }

    const header = [
      'function',
      'bundle KB',
      'deflated KB',
      'init bundled',
      'init unbundled',
      'ratio',
    ];
    const table = rows.map((row) => [
      row.name,
      kb(row.bundleBytes),
      kb(row.zippedBytes),
      `${row.bundledMs.toFixed(1)} ms`,
      `${row.unbundledMs.toFixed(1)} ms`,
      `${((row.bundledMs / row.unbundledMs) * 100).toFixed(0)}%`,
    ]);
    const widths = header.map((h, i) =>
      Math.max(h.length, ...table.map((r) => (r[i] ?? '').length)),
    );
    const line = (cells: readonly string[]) =>
      cells
        .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
        .join('  ');
    log(line(header));
    for (const cells of table) log(line(cells));
    log(
      `\nbudget: bundle ≤ ${kb(BUNDLE_BUDGET_BYTES)} KB, init ≤ ${INIT_BUDGET_RATIO * 100}% of unbundled`,
    );
    for (const row of rows) log(`${row.name}: ${verdict(row)}`);
    return rows;
  } finally {
    cleanUp();
  }
}

if (isMain(import.meta.url)) process.exitCode = await benchBundlesCommand(process.argv.slice(2));
