/**
 * What every `npm run` tool shares: `--help` with examples, one clear line and exit code 2
 * on a bad option, `--json` for machines and `--verbose` for logs, a quiet Powertools
 * logger and no SDK version warning otherwise, and the local AWS when it runs.
 */
import { parseArgs } from 'node:util';
import { type LocalAwsInUse, useLocalAwsIfRunning } from '../harness/localStack.ts';

/** One option of a command, as `node:util` parseArgs takes it, with its help line. */
export interface CliOption {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly default?: string | boolean;
  /** The value's placeholder in the help, e.g. `<runId>`. */
  readonly value?: string;
  readonly description: string;
}

/** A command: its name, what it does, its options and examples. */
export interface CliSpec {
  /** As typed: `npm run history --`. */
  readonly command: string;
  readonly summary: string;
  /** The positional arguments' synopsis, e.g. `<function> <event.json>`. */
  readonly positionals?: string;
  readonly options: Readonly<Record<string, CliOption>>;
  readonly examples: readonly string[];
  /** Paragraphs after the options. */
  readonly notes?: readonly string[];
}

/** A bad command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  public override readonly name = 'UsageError';
}

/** The options every command takes. */
export const COMMON_OPTIONS: Readonly<Record<string, CliOption>> = {
  help: { type: 'boolean', short: 'h', description: 'show this help and exit' },
  json: { type: 'boolean', description: 'print JSON for machines instead of text' },
  verbose: {
    type: 'boolean',
    short: 'v',
    description: 'show the functions’ log lines (Powertools, JSON) on stderr',
  },
};

function allOptions(spec: CliSpec): Record<string, CliOption> {
  return { ...spec.options, ...COMMON_OPTIONS };
}

/**
 * The `--help` text: what it does, usage, every option, examples.
 *
 * @example
 * console.log(helpText(HISTORY));
 */
export function helpText(spec: CliSpec): string {
  const options = Object.entries(allOptions(spec)).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? '<value>'}` : ''}`;
    const fallback =
      o.default !== undefined && o.type === 'string' ? ` (default ${o.default})` : '';
    return `  ${flag.padEnd(28)} ${o.description}${fallback}`;
  });
  return [
    spec.summary,
    '',
    `Usage: ${spec.command} ${spec.positionals ? `${spec.positionals} ` : ''}[options]`,
    '',
    'Options:',
    ...options,
    ...(spec.notes ?? []).flatMap((note) => ['', note]),
    '',
    'Examples:',
    ...spec.examples.map((example) => `  ${example}`),
  ].join('\n');
}

/** What a command line parsed to. */
export interface ParsedCommandLine {
  readonly help: boolean;
  readonly json: boolean;
  readonly verbose: boolean;
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: readonly string[];
}

/**
 * Parses a command line strictly; a bad option becomes a {@link UsageError} of one line
 * naming it and pointing at `--help`.
 *
 * @throws {UsageError}
 * @example
 * const { values } = parseCommandLine(HISTORY, ['--run', '20261123T030002Z-9f3a12bc']);
 */
export function parseCommandLine(spec: CliSpec, argv: readonly string[]): ParsedCommandLine {
  const seeHelp = `(see ${spec.command} --help)`;
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: Object.fromEntries(
        Object.entries(allOptions(spec)).map(([name, o]) => [
          name,
          {
            type: o.type,
            ...(o.short ? { short: o.short } : {}),
            ...(o.default !== undefined ? { default: o.default } : {}),
          },
        ]),
      ) as never,
      allowPositionals: spec.positionals !== undefined,
      strict: true,
    });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const message = error instanceof Error ? error.message : String(error);
    const option = /'([^']+)'/.exec(message)?.[1] ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')
      throw new UsageError(`unknown option ${option.split(' ')[0]} ${seeHelp}`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE')
      throw new UsageError(
        /argument missing/.test(message)
          ? `option ${option.split(' ')[0]} needs a value ${seeHelp}`
          : `option ${option.split(' ')[0]} takes no value ${seeHelp}`,
      );
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL')
      throw new UsageError(`unexpected argument ${JSON.stringify(option)} ${seeHelp}`);
    throw new UsageError(`${message.split('\n')[0]} ${seeHelp}`);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  return {
    help: values.help === true,
    json: values.json === true,
    verbose: values.verbose === true,
    values,
    positionals: parsed.positionals,
  };
}

/**
 * Quiets what a command line tool should not show by default: the SDK's Node version
 * warning always; Powertools' JSON log lines, metrics and tracing unless `verbose`.
 *
 * @example
 * quietEnvironment(process.env, false);
 */
export function quietEnvironment(env: NodeJS.ProcessEnv, verbose: boolean): void {
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  env.POWERTOOLS_LOG_LEVEL = verbose
    ? env.POWERTOOLS_LOG_LEVEL && env.POWERTOOLS_LOG_LEVEL !== 'SILENT'
      ? env.POWERTOOLS_LOG_LEVEL
      : 'INFO'
    : 'SILENT';
  env.POWERTOOLS_METRICS_DISABLED = 'true';
  env.POWERTOOLS_TRACE_ENABLED = 'false';
}

/**
 * One line for an error: the SDK's "Could not load credentials" becomes what to set.
 *
 * @example
 * console.error(errorLine(error));
 */
export function errorLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const name = error instanceof Error ? error.name : '';
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return 'no AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) to read a deployed stage, or start the local AWS with "npm run local-aws"';
  }
  return message.split('\n')[0] ?? message;
}

/** What a command's body answers: its output, and an exit code when it is not 0. */
export interface CommandResult {
  readonly output: string;
  readonly exitCode?: number;
}

/** Where a tool writes: its output, and its one-line errors. */
export interface ToolIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** The console, as every tool writes by default. */
export const CONSOLE_IO: ToolIo = {
  out: (text) => console.log(text),
  err: (text) => console.error(text),
};

/**
 * Runs any tool: `--help` prints the help and starts nothing; otherwise runs `body` and
 * answers its exit code. A bad command line is one line and exit code 2, any other
 * failure one line and exit code 1.
 *
 * @example
 * process.exitCode = await runTool(DEMO, process.argv.slice(2), async (cli) => { await main(); return 0; });
 */
export async function runTool(
  spec: CliSpec,
  argv: readonly string[],
  body: (cli: ParsedCommandLine) => Promise<number>,
  io: ToolIo = CONSOLE_IO,
): Promise<number> {
  const name = spec.command.replace(/^npm run /, '').replace(/ --$/, '');
  try {
    const cli = parseCommandLine(spec, argv);
    if (cli.help) {
      io.out(helpText(spec));
      return 0;
    }
    return await body(cli);
  } catch (error) {
    io.err(`${name}: ${errorLine(error)}`);
    return error instanceof UsageError ? 2 : 1;
  }
}

/**
 * Runs a command that reads AWS: as {@link runTool}, and before the body quiets the
 * environment and points it at the local AWS when one runs.
 *
 * @example
 * process.exitCode = await runCommand(HISTORY, process.argv.slice(2), async (cli) => ({ output: 'ok' }));
 */
export async function runCommand(
  spec: CliSpec,
  argv: readonly string[],
  body: (cli: ParsedCommandLine, local: LocalAwsInUse | undefined) => Promise<CommandResult>,
  io: ToolIo = CONSOLE_IO,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  return runTool(
    spec,
    argv,
    async (cli) => {
      quietEnvironment(env, cli.verbose);
      const local = await useLocalAwsIfRunning(env);
      if (local && !cli.json) io.err(local.note);
      const result = await body(cli, local);
      io.out(result.output);
      return result.exitCode ?? 0;
    },
    io,
  );
}

/** Whether this module is the script node was started with (for a `main` guard). */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && moduleUrl.endsWith(script.split('/').pop() ?? '\u0000');
}
