import { NotFoundError } from '@stratus/core';
import type { Command } from 'commander';
import { ApiClient } from '../api-client.js';
import type { CliContext } from '../context.js';
import { CliError, ExitCode, usageError } from '../exit.js';
import { type ConnectionFlags, resolveConnection } from '../profile.js';
import { type Phase, type WaitResult, waitFor } from '../wait.js';

/** Adds the connection options to a client command group; its subcommands inherit them. */
export function withConnection(command: Command): Command {
  return command
    .option(
      '--endpoint <url>',
      'API base URL (env STRATUS_ENDPOINT; default: ./.stratus/profile.json from stratus up)',
    )
    .option('--username <name>', 'user to log in as (env STRATUS_USERNAME)')
    .option('--password <password>', 'password (env STRATUS_PASSWORD; prefer the env or the profile)')
    .option('--project <name>', 'project to work in (env STRATUS_PROJECT)')
    .option('--profile <file>', 'profile file with endpoint and credentials (env STRATUS_PROFILE)');
}

/** Adds `--wait` and `--wait-timeout` to a command that starts a long operation. */
export function withWait(command: Command): Command {
  return command
    .option(
      '-w, --wait',
      'wait until the operation finishes (progress on a terminal); exit 1 if it ends in error',
    )
    .option('--wait-timeout <seconds>', 'give up waiting after this long', '600');
}

export interface WaitFlags {
  readonly wait?: boolean;
  readonly waitTimeout?: string;
  readonly json?: boolean;
}

/** Log in with the connection resolved from the command's (and its groups') flags. */
export async function connect(ctx: CliContext, command: Command): Promise<ApiClient> {
  const flags = command.optsWithGlobals() as ConnectionFlags;
  return ApiClient.connect(await resolveConnection(flags, ctx.io));
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** Whether a reference is an id (then it is fetched directly) rather than a name. */
export function looksLikeId(ref: string): boolean {
  return UUID.test(ref);
}

/**
 * The one item whose id or name is `ref`. None is NotFound (exit 3); several with that name is a
 * usage error listing their ids.
 */
export function pickOne<T extends { id: string; name?: string | null }>(
  items: readonly T[],
  ref: string,
  kind: string,
): T {
  const byId = items.find((i) => i.id === ref);
  if (byId) return byId;
  const named = items.filter((i) => i.name === ref);
  if (named.length === 1) return named[0] as T;
  if (named.length > 1) {
    throw usageError(
      `${named.length} ${kind}s are named "${ref}" (${named.map((i) => i.id).join(', ')})`,
      `Name the ${kind} by its id.`,
    );
  }
  throw new NotFoundError(kind, ref);
}

/** `--wait-timeout`, checked. */
export function waitTimeout(flags: WaitFlags): number {
  const seconds = Number(flags.waitTimeout ?? 600);
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw usageError(`--wait-timeout must be a positive number of seconds`);
  return seconds;
}

/** Parses a positive integer option (sizes, counts). */
export function positiveInt(text: string | undefined, option: string): number {
  const value = Number(text);
  if (text === undefined || !Number.isInteger(value) || value < 1) {
    throw usageError(
      `${option} must be a whole number of at least 1${text === undefined ? '' : `, got "${text}"`}`,
    );
  }
  return value;
}

/**
 * Wait (when asked) and turn the result into an exit: an error state is exit 1 with the reason.
 * Returns the final resource (undefined when it is gone).
 */
export async function waitIfAsked<T>(
  ctx: CliContext,
  flags: WaitFlags,
  options: {
    label: string;
    poll: () => Promise<T | undefined>;
    phase: (r: T | undefined) => Phase;
    describe: (r: T | undefined) => string;
    reason?: (r: T | undefined) => string | null | undefined;
  },
): Promise<T | undefined> {
  const result: WaitResult<T> = await waitFor({
    stream: ctx.io.stderr,
    env: ctx.io.env,
    label: options.label,
    poll: options.poll,
    phase: options.phase,
    describe: options.describe,
    timeoutSec: waitTimeout(flags),
  });
  if (result.phase === 'error') {
    const reason = options.reason?.(result.resource);
    throw new CliError(
      `${options.label} ended in status ${options.describe(result.resource)}${reason ? `: ${reason}` : ''}`,
      {
        exitCode: ExitCode.FAILED,
        hint: 'The show command has the details; the service log (stratus up: .stratus/stratus.log) has the cause.',
      },
    );
  }
  return result.resource;
}

/** `undefined` when the API answers 404 (a deleted resource), the value otherwise. */
export async function unlessGone<T>(fetch: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fetch();
  } catch (error) {
    if ((error as { code?: string }).code === 'NOT_FOUND') return undefined;
    throw error;
  }
}

/** Runs `fn` for each id, continuing past failures; the first failure is rethrown at the end. */
export async function forEachRef(
  ctx: CliContext,
  refs: readonly string[],
  fn: (ref: string) => Promise<void>,
): Promise<void> {
  let first: unknown;
  for (const ref of refs) {
    try {
      await fn(ref);
    } catch (error) {
      first ??= error;
      if (refs.length > 1) {
        ctx.io.stderr.write(`stratus: ${ref}: ${(error as Error).message}\n`);
      }
    }
  }
  if (first !== undefined) throw first;
}
