import type { InvalidField } from '../errors.js';

/**
 * One command a plugin declares it may run (nova-rootwrap's filters). The Executor refuses
 * anything that matches no filter, before a process starts.
 */
export interface CommandFilter {
  /** The executable, as argv[0]: a bare name found on PATH (`lvcreate`) or an absolute path. */
  readonly command: string;
  /** Run through the configured root helper (e.g. `sudo`). Default: false. */
  readonly asRoot?: boolean;
  /**
   * When given, every argument must fully match at least one of these patterns; an argument that
   * matches none refuses the command. Omit to allow any arguments.
   *
   * Patterns are anchored (`/lv-\d+/` means `^(?:lv-\d+)$`). The flags `g`, `y` and `m` are
   * dropped: `g`/`y` make `test()` stateful, and `m` would let `^`/`$` match at a line break
   * inside an argument.
   */
  readonly args?: readonly RegExp[];
}

/** Outcome of matching an argv against a filter list. */
export type FilterMatch =
  | { readonly allowed: true; readonly filter: CommandFilter }
  | { readonly allowed: false; readonly reason: string };

const KEPT_FLAGS = new Set(['i', 's', 'u', 'v', 'd']);
const anchoredCache = new WeakMap<RegExp, RegExp>();

/** The whole-argument form of `pattern`: `^(?:source)$`, without stateful or multiline flags. */
export function anchored(pattern: RegExp): RegExp {
  let re = anchoredCache.get(pattern);
  if (re === undefined) {
    const flags = [...pattern.flags].filter((f) => KEPT_FLAGS.has(f)).join('');
    re = new RegExp(`^(?:${pattern.source})$`, flags);
    anchoredCache.set(pattern, re);
  }
  return re;
}

/**
 * Problems with a filter list, empty when it is usable. A filter's command must be a bare name
 * (no `/`) or an absolute path: a relative path would depend on the working directory.
 */
export function filterIssues(filters: readonly CommandFilter[]): InvalidField[] {
  const issues: InvalidField[] = [];
  filters.forEach((filter, i) => {
    const cmd: unknown = filter.command;
    if (typeof cmd !== 'string' || cmd === '') {
      issues.push({ path: `/${i}/command`, message: 'must be a non-empty string' });
    } else if (cmd.includes('\0')) {
      issues.push({ path: `/${i}/command`, message: 'must not contain a NUL byte' });
    } else if (cmd.includes('/') && !cmd.startsWith('/')) {
      issues.push({ path: `/${i}/command`, message: `"${cmd}" must be a bare name or an absolute path` });
    }
    filter.args?.forEach((pattern, j) => {
      if (!(pattern instanceof RegExp)) {
        issues.push({ path: `/${i}/args/${j}`, message: 'must be a RegExp' });
      }
    });
  });
  return issues;
}

/**
 * Find the filter that allows `argv`. argv[0] must equal a filter's `command` exactly (a bare-name
 * filter does not allow `/tmp/evil/lvcreate`, and an absolute-path filter does not allow the bare
 * name); then, when the filter lists `args`, every further argument must fully match one of them.
 * Several filters may name the same command; the first that allows the whole argv wins.
 *
 * `display` is what reasons quote (argv with secrets masked); it defaults to argv.
 */
export function matchFilters(
  filters: readonly CommandFilter[],
  argv: readonly string[],
  display: readonly string[] = argv,
): FilterMatch {
  const command = argv[0];
  if (command === undefined) return { allowed: false, reason: 'the argument vector is empty' };
  const candidates = filters.filter((f) => f.command === command);
  if (candidates.length === 0) {
    return { allowed: false, reason: `no command filter allows "${display[0] ?? command}"` };
  }
  let firstReason = '';
  for (const filter of candidates) {
    const bad = firstRefusedArgument(filter, argv);
    if (bad === -1) return { allowed: true, filter };
    firstReason ||= `argument ${bad} (${JSON.stringify(display[bad] ?? argv[bad])}) matches none of the patterns allowed for "${display[0] ?? command}"`;
  }
  return { allowed: false, reason: firstReason };
}

/** Index of the first argument the filter refuses, or -1 when all pass. */
function firstRefusedArgument(filter: CommandFilter, argv: readonly string[]): number {
  const patterns = filter.args;
  if (patterns === undefined) return -1;
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!patterns.some((p) => anchored(p).test(arg))) return i;
  }
  return -1;
}
