import { StratusError, type StratusErrorCode } from '@stratus/core';

/** Exit codes scripts can rely on (documented in the README). */
export const ExitCode = {
  /** The command did what was asked. */
  OK: 0,
  /** The operation failed, or the resource ended in an error state. */
  FAILED: 1,
  /** The command line was wrong (unknown option, missing argument, invalid value). */
  USAGE: 2,
  /** The named resource does not exist. */
  NOT_FOUND: 3,
  /** The deployment (API, database, transport) cannot be reached, or authentication failed. */
  UNREACHABLE: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface CliErrorOptions {
  readonly exitCode?: ExitCode;
  /** One line telling the user what to do next. */
  readonly hint?: string;
  readonly cause?: unknown;
}

/** An error meant for the terminal: one line, a hint, an exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;

  constructor(message: string, options: CliErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = options.exitCode ?? ExitCode.FAILED;
    this.hint = options.hint;
  }
}

/** A usage error (exit 2). */
export function usageError(message: string, hint?: string): CliError {
  return new CliError(message, { exitCode: ExitCode.USAGE, ...(hint ? { hint } : {}) });
}

const EXIT_BY_CODE: Partial<Record<StratusErrorCode, ExitCode>> = {
  NOT_FOUND: ExitCode.NOT_FOUND,
  INVALID_INPUT: ExitCode.USAGE,
  UNSUPPORTED_VERSION: ExitCode.USAGE,
  STORE_UNAVAILABLE: ExitCode.UNREACHABLE,
  TRANSPORT_UNAVAILABLE: ExitCode.UNREACHABLE,
};

/** The exit code an error maps to. */
export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof CliError) return error.exitCode;
  if (StratusError.is(error)) return EXIT_BY_CODE[error.code] ?? ExitCode.FAILED;
  return ExitCode.FAILED;
}

const HINT_BY_CODE: Partial<Record<StratusErrorCode, string>> = {
  STORE_UNAVAILABLE:
    'Check database.url in the config (stratus config show) and that the database is running.',
  TRANSPORT_UNAVAILABLE: 'Check transport.config in the config and that the message broker is running.',
  CONFIG_INVALID: 'Fix the listed paths in the config file; stratus config schema prints every key.',
  PLUGIN_NOT_FOUND: 'stratus plugins check lists every configured plugin and what is wrong with it.',
};

/**
 * The lines printed for a failed command: `stratus: <message>`, a hint when one is known,
 * and the stack (with causes) only when `debug` is set.
 */
export function formatError(error: unknown, debug: boolean): string {
  const lines: string[] = [];
  const message = error instanceof Error ? error.message : String(error);
  const [first = '', ...rest] = message.split('\n');
  lines.push(`stratus: ${first}`);
  lines.push(...rest);
  const hint =
    error instanceof CliError ? error.hint : StratusError.is(error) ? HINT_BY_CODE[error.code] : undefined;
  if (hint) lines.push(`hint: ${hint}`);
  if (debug) {
    let current: unknown = error;
    while (current instanceof Error) {
      lines.push(current.stack ?? String(current));
      current = current.cause;
      if (current) lines.push('caused by:');
    }
  } else if (!(error instanceof CliError) && !StratusError.is(error)) {
    lines.push('hint: this looks like a bug; run again with --debug for the stack trace and report it.');
  }
  return `${lines.join('\n')}\n`;
}
