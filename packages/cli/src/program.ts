import { Command, CommanderError } from 'commander';
import { registerConfig } from './commands/config.js';
import { registerDb } from './commands/db.js';
import { registerDoctor } from './commands/doctor.js';
import { registerPlugins } from './commands/plugins.js';
import { registerServe } from './commands/serve.js';
import { registerServer } from './commands/server.js';
import { registerService } from './commands/service.js';
import { registerUp } from './commands/up.js';
import { registerUser } from './commands/user.js';
import { registerVolume } from './commands/volume.js';
import type { CliContext } from './context.js';
import { ExitCode, formatError } from './exit.js';
import { type Io, processIo } from './io.js';

/** The CLI's version (kept equal to package.json by the release process). */
export const CLI_VERSION = '0.1.0';

const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  the operation failed, or the resource ended in an error state
  2  usage error (unknown option, missing or invalid argument)
  3  not found
  4  cannot reach the deployment (API, database, broker) or authentication failed`;

/** Builds the `stratus` command tree; commands write through `ctx.io`. */
export function createProgram(ctx: CliContext): Command {
  const program = new Command('stratus');
  program
    .description('Run and use Stratus: OpenStack-style volume and compute services on Node.js')
    .version(CLI_VERSION, '-V, --version')
    .option('--debug', 'print stack traces of errors')
    .showSuggestionAfterError(true)
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => ctx.io.stdout.write(text),
      writeErr: (text) => ctx.io.stderr.write(text),
      // Commander's own errors (unknown option, missing argument) become our one-line form.
      outputError: (text, write) => write(`stratus: ${text.replace(/^error: /, '')}`),
    });
  registerUp(program, ctx);
  registerServe(program, ctx);
  registerVolume(program, ctx);
  registerServer(program, ctx);
  registerService(program, ctx);
  registerUser(program, ctx);
  registerPlugins(program, ctx);
  registerConfig(program, ctx);
  registerDb(program, ctx);
  registerDoctor(program, ctx);
  return program;
}

/** Runs `stratus <argv>` and resolves with the exit code; never throws. */
export async function run(argv: readonly string[], io: Io = processIo()): Promise<number> {
  let exitCode: number = ExitCode.OK;
  const ctx: CliContext = {
    io,
    setExitCode: (code) => {
      exitCode = code;
    },
  };
  const program = createProgram(ctx);
  const debug = argv.includes('--debug') || io.env.STRATUS_DEBUG === '1';
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return commanderExit(error, io, argv);
    io.stderr.write(formatError(error, debug));
    const { exitCodeFor } = await import('./exit.js');
    return exitCodeFor(error);
  }
}

function commanderExit(error: CommanderError, io: Io, argv: readonly string[]): number {
  if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.OK;
  // A group command run without a subcommand prints its help: still a usage error.
  if (error.code === 'commander.help' || error.code === 'commander.executeSubCommandAsync') {
    return ExitCode.USAGE;
  }
  let words = argv.filter((a) => !a.startsWith('-')).slice(0, 3);
  // The unknown word itself has no help; point at its parent's.
  if (error.code === 'commander.unknownCommand') words = words.slice(0, -1);
  words = words.slice(0, 2);
  io.stderr.write(`hint: run "stratus ${words.length ? `${words.join(' ')} ` : ''}--help" for usage.\n`);
  return ExitCode.USAGE;
}
