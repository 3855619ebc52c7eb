import { spawn } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { constants as os } from 'node:os';
import path from 'node:path';
import Type, { type Static } from 'typebox';
import { ConfigInvalidError, type InvalidField } from '../errors.js';
import { schemaIssues, withDefaults } from '../schema.js';
import { MINIMAL_ENV } from './executor.js';
import { type CommandFilter, filterIssues, matchFilters } from './filters.js';

/**
 * `stratus-rootwrap`: the command filters enforced again, as root, when a service runs unprivileged
 * (nova-rootwrap's role). The service's root helper becomes
 * `["sudo", "-n", "stratus-rootwrap", "/etc/stratus/rootwrap.json"]`, and sudoers allows the
 * service user exactly that prefix. Rootwrap reads filter files only from root-owned folders
 * named in its root-owned config, runs nothing they do not allow, resolves executables only in
 * `execDirs`, and starts the command without a shell and with a minimal environment.
 */

/** Exit codes, as nova-rootwrap's. */
export const ROOTWRAP_EXIT = Object.freeze({
  /** The command matches no filter. */
  UNAUTHORIZED: 99,
  /** No command given (usage error). */
  NO_COMMAND: 98,
  /** The config or a filter file is missing, malformed or writable by someone other than root. */
  BAD_CONFIG: 97,
  /** The allowed executable is not in any of `execDirs`. */
  NOT_FOUND: 96,
});

const AbsolutePath = Type.String({ pattern: '^/', minLength: 2, maxLength: 4096 });

/** `/etc/stratus/rootwrap.json`. */
export const RootwrapConfig = Type.Object(
  {
    filterDirs: Type.Array(AbsolutePath, {
      minItems: 1,
      description: 'Folders of *.json filter files (one per plugin), e.g. /etc/stratus/rootwrap.d',
    }),
    execDirs: Type.Array(AbsolutePath, {
      minItems: 1,
      default: ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'],
      description: 'Where bare command names are looked up, in order; the caller’s PATH is ignored',
    }),
  },
  { additionalProperties: false },
);
export type RootwrapConfig = Static<typeof RootwrapConfig>;

/** One argument pattern in a filter file: a regex source, or source and flags (`i`, `s`, `u`). */
export const FilterPattern = Type.Union([
  Type.String({ maxLength: 4096 }),
  Type.Object(
    { source: Type.String({ maxLength: 4096 }), flags: Type.String({ pattern: '^[isu]{0,3}$' }) },
    { additionalProperties: false },
  ),
]);
export type FilterPattern = Static<typeof FilterPattern>;

/** A filter file: the root commands of one plugin (see {@link filterFileOf}). */
export const RootwrapFilterFile = Type.Object(
  {
    plugin: Type.Optional(Type.String({ maxLength: 214 })),
    filters: Type.Array(
      Type.Object(
        {
          command: Type.String({ minLength: 1, maxLength: 4096 }),
          args: Type.Optional(Type.Array(FilterPattern)),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type RootwrapFilterFile = Static<typeof RootwrapFilterFile>;

/**
 * The filter file for a plugin's commands: only those that run as root (the others never reach
 * rootwrap). Install it as `<filterDir>/<plugin>.json`, owned by root, mode 0644.
 */
export function filterFileOf(filters: readonly CommandFilter[], plugin?: string): RootwrapFilterFile {
  return {
    ...(plugin === undefined ? {} : { plugin }),
    filters: filters
      .filter((f) => f.asRoot === true)
      .map((f) => ({
        command: f.command,
        ...(f.args === undefined
          ? {}
          : {
              args: f.args.map((re): FilterPattern => {
                const flags = [...re.flags].filter((c) => 'isu'.includes(c)).join('');
                return flags ? { source: re.source, flags } : re.source;
              }),
            }),
      })),
  };
}

/**
 * The filters of a parsed filter file.
 * @throws ConfigInvalidError naming each bad entry (schema, bad command, regex that does not compile).
 */
export function parseFilterFile(json: unknown, where: string): CommandFilter[] {
  const issues: InvalidField[] = schemaIssues(RootwrapFilterFile, json);
  if (issues.length > 0) throw new ConfigInvalidError(where, issues);
  const file = json as RootwrapFilterFile;
  const filters: CommandFilter[] = file.filters.map((f, i) => {
    const args = f.args?.map((p, j) => {
      try {
        return typeof p === 'string' ? new RegExp(p) : new RegExp(p.source, p.flags);
      } catch (error) {
        issues.push({ path: `/filters/${i}/args/${j}`, message: (error as Error).message });
        return /$^/;
      }
    });
    return { command: f.command, asRoot: true, ...(args === undefined ? {} : { args }) };
  });
  issues.push(...filterIssues(filters).map((x) => ({ ...x, path: `/filters${x.path}` })));
  if (issues.length > 0) throw new ConfigInvalidError(where, issues);
  return filters;
}

/** Owner and mode a file the filters come from must have; `uid` is the effective uid. */
export interface TrustPolicy {
  /** Owners allowed besides root. Default: the effective uid (so tests can run unprivileged). */
  readonly uid: number;
}

function defaultPolicy(): TrustPolicy {
  return { uid: process.geteuid?.() ?? 0 };
}

/**
 * Why `file` cannot be trusted, or undefined: it must be owned by root (or the effective user,
 * which is root under sudo) and writable by nobody else, or anyone could widen the filters.
 */
export function rootwrapTrustProblem(
  file: string,
  policy: TrustPolicy = defaultPolicy(),
): string | undefined {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(file);
  } catch (error) {
    return `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
  }
  if (stat.uid !== 0 && stat.uid !== policy.uid) return `${file} is owned by uid ${stat.uid}, not root`;
  if ((stat.mode & 0o022) !== 0) {
    return `${file} is writable by its group or by others (mode ${(stat.mode & 0o777).toString(8)}); chmod go-w it`;
  }
  return undefined;
}

function readJson(file: string, policy: TrustPolicy): unknown {
  const problem = rootwrapTrustProblem(file, policy);
  if (problem) throw new ConfigInvalidError(file, [{ path: '', message: problem }]);
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigInvalidError(file, [{ path: '', message: `not JSON: ${(error as Error).message}` }]);
  }
}

/**
 * Read the rootwrap config and every filter file it points to, checking ownership and modes.
 * @throws ConfigInvalidError on any problem: rootwrap then refuses everything.
 */
export function loadRootwrap(
  configPath: string,
  policy: TrustPolicy = defaultPolicy(),
): { config: RootwrapConfig; filters: CommandFilter[] } {
  if (!path.isAbsolute(configPath)) {
    throw new ConfigInvalidError('stratus-rootwrap', [
      { path: '/config', message: `"${configPath}" must be an absolute path` },
    ]);
  }
  const { value: config, issues } = withDefaults(RootwrapConfig, readJson(configPath, policy));
  if (issues.length > 0) throw new ConfigInvalidError(configPath, issues);
  const filters: CommandFilter[] = [];
  for (const dir of config.filterDirs) {
    const problem = rootwrapTrustProblem(dir, policy);
    if (problem) throw new ConfigInvalidError(configPath, [{ path: '/filterDirs', message: problem }]);
    const names = readdirSync(dir)
      .filter((n) => n.endsWith('.json'))
      .sort();
    for (const name of names) {
      const file = path.join(dir, name);
      filters.push(...parseFilterFile(readJson(file, policy), file));
    }
  }
  return { config, filters };
}

/** The absolute path `command` runs from: itself when absolute, else the first match in `execDirs`. */
export function resolveExecutable(command: string, execDirs: readonly string[]): string | undefined {
  const candidates = path.isAbsolute(command)
    ? [command]
    : command.includes('/')
      ? []
      : execDirs.map((d) => path.join(d, command));
  for (const file of candidates) {
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not there, or not executable: try the next folder
    }
  }
  return undefined;
}

/** What rootwrap decided for one argv. */
export type RootwrapDecision =
  | { readonly allowed: true; readonly executable: string; readonly argv: readonly string[] }
  | { readonly allowed: false; readonly exitCode: number; readonly reason: string };

/**
 * Decide whether `argv` may run as root, with the config at `configPath`. Never throws: any
 * config problem refuses the command.
 */
export function authorizeRootwrap(
  configPath: string,
  argv: readonly string[],
  policy: TrustPolicy = defaultPolicy(),
): RootwrapDecision {
  if (argv.length === 0 || argv[0] === '') {
    return { allowed: false, exitCode: ROOTWRAP_EXIT.NO_COMMAND, reason: 'no command given' };
  }
  let loaded: ReturnType<typeof loadRootwrap>;
  try {
    loaded = loadRootwrap(configPath, policy);
  } catch (error) {
    return { allowed: false, exitCode: ROOTWRAP_EXIT.BAD_CONFIG, reason: (error as Error).message };
  }
  if (argv.some((a) => a.includes('\0'))) {
    return {
      allowed: false,
      exitCode: ROOTWRAP_EXIT.UNAUTHORIZED,
      reason: 'an argument contains a NUL byte',
    };
  }
  const match = matchFilters(loaded.filters, argv);
  if (!match.allowed) return { allowed: false, exitCode: ROOTWRAP_EXIT.UNAUTHORIZED, reason: match.reason };
  const executable = resolveExecutable(argv[0] as string, loaded.config.execDirs);
  if (executable === undefined) {
    return {
      allowed: false,
      exitCode: ROOTWRAP_EXIT.NOT_FOUND,
      reason: `"${argv[0]}" is not an executable in ${loaded.config.execDirs.join(', ')}`,
    };
  }
  return { allowed: true, executable, argv };
}

export interface RootwrapIo {
  /** Where refusals are reported (the Executor shows it in `CommandFailedError.stderr`). */
  readonly stderr: { write(text: string): unknown };
}

const USAGE = 'usage: stratus-rootwrap /etc/stratus/rootwrap.json <command> [args...]';

/**
 * The `stratus-rootwrap` program: `args` is `[configPath, command, ...commandArgs]`. Runs the
 * command (no shell, minimal env, stdio passed through) when allowed and resolves to its exit
 * code (128 + n for a death by signal n); resolves to a {@link ROOTWRAP_EXIT} code otherwise.
 */
export async function runRootwrap(
  args: readonly string[],
  io: RootwrapIo = { stderr: process.stderr },
): Promise<number> {
  const [configPath, ...argv] = args;
  if (configPath === undefined || argv.length === 0) {
    io.stderr.write(`stratus-rootwrap: ${USAGE}\n`);
    return ROOTWRAP_EXIT.NO_COMMAND;
  }
  const decision = authorizeRootwrap(configPath, argv);
  if (!decision.allowed) {
    io.stderr.write(`stratus-rootwrap: refused ${JSON.stringify(argv)}: ${decision.reason}\n`);
    return decision.exitCode;
  }
  return new Promise<number>((resolve) => {
    const child = spawn(decision.executable, decision.argv.slice(1), {
      shell: false,
      stdio: 'inherit',
      env: { ...MINIMAL_ENV },
      argv0: decision.argv[0] as string,
    });
    // sudo relays signals to us; pass them on so a timeout's SIGTERM reaches the command.
    const relay = (signal: NodeJS.Signals) => child.kill(signal);
    const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'];
    for (const s of signals) process.on(s, relay);
    const done = (code: number) => {
      for (const s of signals) process.off(s, relay);
      resolve(code);
    };
    child.on('error', (error) => {
      io.stderr.write(`stratus-rootwrap: cannot start ${decision.executable}: ${error.message}\n`);
      done(ROOTWRAP_EXIT.NOT_FOUND);
    });
    child.on('exit', (code, signal) => {
      done(code ?? 128 + (signal ? (os.signals[signal] ?? 0) : 0));
    });
  });
}
