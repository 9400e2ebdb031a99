/**
 * The import-direction check: the layer rules of docs/architecture.md ("The layers and
 * their rules"), enforced by dependency-cruiser (MIT) in `npm test` (`npm run
 * check:layers`). Each rule's name is the one the failure message prints.
 *
 * Parser: TypeScript 7 (the native compiler) has no JavaScript API for
 * dependency-cruiser to parse with, so it parses with swc (`@swc/core`), which sees
 * every import, type-only ones included, without telling them apart. The one rule that
 * needs the difference (jobs and the report may name adapter data types, type-only) is
 * completed by test/unit/architecture.test.ts, which checks that those imports are
 * `import type`.
 *
 * @type {import('dependency-cruiser').IConfiguration}
 */

/** Pure libraries the domain may use: parsing and string distance, no I/O, no clock. */
const PURE_LIBRARIES = '(^|/)node_modules/(zod|aws-cron-parser|fastest-levenshtein)/';

/**
 * Adapter modules whose data types (never their classes' values) jobs and the report
 * name today: `CreatedSnapshot`, `ImageDetails`, `Grants`, `InstanceDetails`,
 * `RunRecord`, `ActionItem`, ... and the gateway classes in `Pick<...>` until the
 * codemod (docs/pending/hports-codemod.py) types the jobs by their ports. Type-only is
 * checked by test/unit/architecture.test.ts. Remove an entry when its types move to
 * lib/domain.
 */
const ADAPTER_TYPES_FOR_JOBS =
  '^lib/aws/(Ec2Gateway|Ec2ImageGateway|Ec2CopyGateway|Ec2RestoreGateway|AutoScalingGateway|RecycleBinGateway|FanOutQueueGateway|RunHistoryGateway)[.]ts$|^lib/aws/history/';

module.exports = {
  forbidden: [
    {
      name: 'domain-imports-only-domain',
      comment:
        'lib/domain is pure: it imports lib/domain and a few pure libraries only (no AWS SDK, no node: modules, no other layer). The clock is checked by test/unit/architecture.test.ts.',
      severity: 'error',
      from: { path: '^lib/domain/' },
      to: { pathNot: ['^lib/domain/', PURE_LIBRARIES] },
    },
    {
      name: 'config-imports-only-domain',
      comment: 'lib/config reads the environment once, into domain terms: it imports lib/domain.',
      severity: 'error',
      from: { path: '^lib/config/' },
      to: { path: '^(lib/(aws|jobs|report|runtime)|functions|scripts|harness|test)/' },
    },
    {
      name: 'adapters-import-below-jobs',
      comment:
        'lib/aws (the adapters) imports lib/domain, lib/config and lib/aws: never the jobs, the report, the runtime or the handlers.',
      severity: 'error',
      from: { path: '^lib/aws/' },
      to: { path: '^(lib/(jobs|report|runtime)|functions)/' },
    },
    {
      name: 'jobs-import-domain-config-ports',
      comment:
        'lib/jobs imports lib/domain, lib/config, lib/jobs and lib/aws/errors.ts; adapter data types are allowed type-only (ADAPTER_TYPES_FOR_JOBS); never the report, the runtime or the handlers.',
      severity: 'error',
      from: { path: '^lib/jobs/' },
      to: {
        path: '^(lib/(aws|report|runtime)|functions)/',
        pathNot: ['^lib/aws/errors[.]ts$', ADAPTER_TYPES_FOR_JOBS],
      },
    },
    {
      name: 'report-imports-domain-config-jobs',
      comment:
        'lib/report imports lib/domain, lib/config, lib/jobs and lib/report (adapter data types type-only, as for the jobs); never the runtime or the handlers.',
      severity: 'error',
      from: { path: '^lib/report/' },
      to: {
        path: '^(lib/(aws|runtime)|functions)/',
        pathNot: ['^lib/aws/errors[.]ts$', ADAPTER_TYPES_FOR_JOBS],
      },
    },
    {
      name: 'lib-and-functions-never-import-tools',
      comment:
        'Nothing in lib/ or functions/ imports scripts/, harness/ or test/ (the deployed bundles carry none of them).',
      severity: 'error',
      from: { path: '^(lib|functions)/' },
      to: { path: '^(scripts|harness|test)/' },
    },
    {
      name: 'lib-never-imports-functions',
      comment:
        'lib/ never imports the handlers (lib/runtime builds them; functions/ declares them).',
      severity: 'error',
      from: { path: '^lib/' },
      to: { path: '^functions/' },
    },
    {
      name: 'scripts-never-import-tests',
      comment: 'scripts/ (demo, benchmarks, tools) never imports test/: both import harness/.',
      severity: 'error',
      from: { path: '^scripts/' },
      to: { path: '^test/' },
    },
    {
      name: 'harness-imports-lib-only',
      comment:
        'harness/ (the local AWS) imports lib/ and itself: never scripts/, test/ or functions/.',
      severity: 'error',
      from: { path: '^harness/' },
      to: { path: '^(scripts|test|functions)/' },
    },
  ],
  options: {
    parser: 'swc',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
