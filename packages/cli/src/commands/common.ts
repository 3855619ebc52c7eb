import { NotFoundError } from '@stratus/core';
import type { Command } from 'commander';
import { ApiClient, type ServiceType } from '../api-client.js';
import { type CliContext, type JsonFlag, withJson } from '../context.js';
import { CliError, ExitCode, usageError } from '../exit.js';
import { emit } from '../output.js';
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

/** How `--wait` follows one resource through one operation. */
export interface WaitSpec<T> {
  readonly label: string;
  readonly poll: () => Promise<T | undefined>;
  readonly phase: (r: T | undefined) => Phase;
  readonly describe: (r: T | undefined) => string;
  readonly reason?: ((r: T | undefined) => string | null | undefined) | undefined;
}

/** What `--wait` knows of a kind of resource whatever the operation: all of a WaitSpec but its phase. */
export type ResourceWatch<T> = Omit<WaitSpec<T>, 'phase'>;

/**
 * Wait (when asked) and turn the result into an exit: an error state is exit 1 with the reason.
 * Returns the final resource (undefined when it is gone).
 */
export async function waitIfAsked<T>(
  ctx: CliContext,
  flags: WaitFlags,
  options: WaitSpec<T>,
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

/** Phase of a resource with a plain status: `transient` statuses keep waiting, `ok` ones succeed, the rest fail. */
export function statusPhase(transient: readonly string[], ok: readonly string[]) {
  return (r: { status: string } | undefined): Phase => {
    if (!r) return 'error';
    if (transient.includes(r.status)) return 'pending';
    return ok.includes(r.status) ? 'done' : 'error';
  };
}

/** Phase of a deletion: gone (or `deleted`) succeeds, `transient` statuses keep waiting, the rest fail. */
export function deletionPhase(transient: readonly string[]) {
  return (r: { status: string } | undefined): Phase =>
    !r || r.status === 'deleted' ? 'done' : transient.includes(r.status) ? 'pending' : 'error';
}

/** Where a kind of resource lives: `GET /{collection}/{id}` answers `{ [kind]: ... }`. */
export interface ResourcePath {
  readonly service: ServiceType;
  readonly collection: string;
  readonly kind: string;
}

/** The resource `ref` names: fetched directly by id, or the one of that name in the detailed list. */
export async function findByRef<T extends { id: string; name?: string | null }>(
  client: ApiClient,
  { service, collection, kind }: ResourcePath,
  ref: string,
): Promise<T> {
  if (looksLikeId(ref)) {
    const { body } = await client.request<Record<string, T>>(
      service,
      'GET',
      `/${collection}/${encodeURIComponent(ref)}`,
    );
    return body[kind] as T;
  }
  const { body } = await client.request<Record<string, T[]>>(service, 'GET', `/${collection}/detail`);
  return pickOne(body[collection] as T[], ref, kind);
}

/** `show <kind>`: one resource, by id or name, as a record (or JSON). */
export function addShowCommand<T extends { id: string; name?: string | null }>(
  group: Command,
  ctx: CliContext,
  path: ResourcePath,
  record: (item: T) => string,
): void {
  withJson(group.command('show'))
    .description(`show one ${path.kind}`)
    .argument(`<${path.kind}>`, 'id or name')
    .action(async (ref: string, flags: JsonFlag, command: Command) => {
      const item = await findByRef<T>(await connect(ctx, command), path, ref);
      emit(ctx.io, Boolean(flags.json), item, () => record(item));
    });
}

/** `list` of the project's resources (`--all-projects`, `--status`) from `GET /{collection}/detail`. */
export function addListCommand<T>(
  group: Command,
  ctx: CliContext,
  options: {
    readonly path: ResourcePath;
    readonly description: string;
    readonly statusHelp: string;
    /** The status as the API spells it. */
    readonly status?: (text: string) => string;
    readonly table: (items: readonly T[]) => string;
  },
): void {
  const { service, collection } = options.path;
  withJson(group.command('list'))
    .description(options.description)
    .option('--all-projects', 'every project (admin)')
    .option('--status <status>', options.statusHelp)
    .action(async (flags: JsonFlag & { allProjects?: boolean; status?: string }, command: Command) => {
      const client = await connect(ctx, command);
      const status =
        flags.status === undefined || !options.status ? flags.status : options.status(flags.status);
      const { body } = await client.request<Record<string, T[]>>(service, 'GET', `/${collection}/detail`, {
        query: { all_tenants: flags.allProjects ? 1 : undefined, status },
      });
      const items = body[collection] as T[];
      emit(ctx.io, Boolean(flags.json), items, () => options.table(items));
    });
}

/**
 * `delete <kind...>`: each resource is looked up and deleted and, with `--wait`, followed until it
 * is gone; one line per resource names its id. A failure does not stop the others.
 */
export function addDeleteCommand<T extends { id: string; name?: string | null }>(
  group: Command,
  ctx: CliContext,
  resource: {
    readonly path: ResourcePath;
    readonly description: string;
    readonly watch: (client: ApiClient, item: T) => ResourceWatch<T>;
    /** When the deletion is over (done), still going (pending) or failed (error). */
    readonly phase: WaitSpec<T>['phase'];
  },
): void {
  const { service, collection, kind } = resource.path;
  withWait(group.command('delete'))
    .description(resource.description)
    .argument(`<${kind}...>`, 'ids or names')
    .action(async (refs: string[], flags: WaitFlags, command: Command) => {
      const client = await connect(ctx, command);
      await forEachRef(ctx, refs, async (ref) => {
        const item = await findByRef<T>(client, resource.path, ref);
        await client.request(service, 'DELETE', `/${collection}/${item.id}`);
        if (flags.wait) {
          const watch = resource.watch(client, item);
          await waitIfAsked(ctx, flags, {
            ...watch,
            phase: resource.phase,
            describe: (r) => (r ? watch.describe(r) : 'deleted'),
          });
        }
        ctx.io.stdout.write(`${flags.wait ? 'deleted' : 'deleting'} ${kind} ${item.id}\n`);
      });
    });
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
