import type { Command } from 'commander';
import type { Io } from './io.js';

/** What every command's action receives besides its own options. */
export interface CliContext {
  readonly io: Io;
  /** Record the exit code of a command that finished without throwing (e.g. a failed check). */
  setExitCode(code: number): void;
}

/** Options every read command takes. */
export interface JsonFlag {
  readonly json?: boolean;
}

/** Adds `--json` to a read command. */
export function withJson(command: Command): Command {
  return command.option('--json', 'print JSON instead of a table');
}

/** Adds `--config FILE` (deployment config) to an operator command. */
export function withConfig(command: Command): Command {
  return command.option(
    '-c, --config <file>',
    'deployment config file (default: ./stratus.config.{json,yaml})',
  );
}
