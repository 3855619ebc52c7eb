import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import {
  CommandFailedError,
  CommandNotAllowedError,
  CommandNotFoundError,
  CommandTimeoutError,
  ConfigInvalidError,
  type InvalidField,
} from '../errors.js';
import { type Logger, silentLogger } from '../log/logger.js';
import { type CommandFilter, filterIssues, matchFilters } from './filters.js';

/** PATH and locale every command gets unless overridden; nothing else leaks from the parent. */
export const MINIMAL_ENV: Readonly<Record<string, string>> = Object.freeze({
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LC_ALL: 'C',
  LANG: 'C',
});

const REDACTED = '[redacted]';

export interface ExecutorOptions {
  /** The only commands this executor will start. */
  readonly filters: readonly CommandFilter[];
  /**
   * Prefix for commands whose filter says `asRoot`, e.g. `['sudo', '-n']` or
   * `['/path/lvm-vm', 'exec', '--']`. Empty or absent means "running as root already": such
   * commands run directly. It is trusted config and is not matched against the filters.
   */
  readonly rootHelper?: readonly string[];
  /** Merged over {@link MINIMAL_ENV} (PATH, LC_ALL=C, LANG=C); the parent's env is not inherited. */
  readonly env?: Readonly<Record<string, string>>;
  /** Per-attempt time limit when a run gives none; absent or 0 means no limit. */
  readonly defaultTimeoutMs?: number;
  /** After a timeout's SIGTERM, how long before SIGKILL. Default 2000 ms. */
  readonly killGraceMs?: number;
  /** Default: a silent logger. Never receives stdin input; `redact`ed arguments are masked. */
  readonly logger?: Logger;
  /** At most this many processes at once; further runs queue in call order. Default: unbounded. */
  readonly maxConcurrent?: number;
  /** Sleep between retries; injectable so tests need not wait. Default: a timer promise. */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface RunOptions {
  /** Written to the child's stdin, which is then closed. Never logged. Absent: stdin is /dev/null. */
  readonly input?: string | Uint8Array;
  /** Per-attempt time limit (queue time not counted); overrides the executor's default. 0 = none. */
  readonly timeoutMs?: number;
  /** Extra attempts after the first, only for failures chosen by `retryOnExitCodes`/`retryIf`. */
  readonly retries?: number;
  /** Wait between attempts. Default 1000 ms. */
  readonly retryDelayMs?: number;
  /** Exit codes that earn a retry. Default: none. */
  readonly retryOnExitCodes?: readonly number[];
  /** Decides retries for failures `retryOnExitCodes` does not cover (e.g. `isCommandTimeout`). */
  readonly retryIf?: (err: CommandFailedError) => boolean;
  /**
   * Which exit codes count as success: `true` (default) = only 0; an array = exactly those codes
   * (list 0 too if it is a success); `false` = any exit code. A timeout, a missing executable or
   * a death by signal always throws.
   */
  readonly checkExitCode?: boolean | readonly number[];
  /** Merged over the executor's env for this run. */
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Argument positions (argv indexes, 0 = the command) masked in logs, errors and results. */
  readonly redact?: readonly number[];
}

export interface CommandResult {
  /** What ran, root helper prefix included, with `redact`ed positions masked. */
  readonly argv: readonly string[];
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Of the last attempt, queue time excluded. */
  readonly durationMs: number;
}

interface Outcome {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  readonly timedOut: boolean;
  readonly spawnError?: NodeJS.ErrnoException;
}

/**
 * Runs external commands the way nova's `utils.execute` did, minus the shell: an argument array
 * goes straight to `spawn`, and only commands a {@link CommandFilter} allows are started (the
 * nova-rootwrap idea, enforced in-process).
 *
 * Failures are typed: {@link CommandNotAllowedError} before anything starts;
 * {@link CommandFailedError} for an unaccepted exit code or a signal; its subclasses
 * {@link CommandTimeoutError} (`details.timedOut`, retryable) and {@link CommandNotFoundError}
 * (exit code 127).
 */
export class Executor {
  /** The commands this executor allows. */
  readonly filters: readonly CommandFilter[];
  /** Prefix for `asRoot` commands; empty when running as root already. */
  readonly rootHelper: readonly string[];
  readonly #options: ExecutorOptions;
  readonly #env: Readonly<Record<string, string>>;
  readonly #logger: Logger;
  readonly #sleep: (ms: number) => Promise<void>;
  #pool: Pool;

  constructor(options: ExecutorOptions) {
    const issues = filterIssues(options.filters).map((i) => ({ ...i, path: `/filters${i.path}` }));
    issues.push(...optionIssues(options));
    if (issues.length > 0) throw new ConfigInvalidError('the command executor', issues);
    this.#options = options;
    this.filters = Object.freeze([...options.filters]);
    this.rootHelper = Object.freeze([...(options.rootHelper ?? [])]);
    this.#env = { ...MINIMAL_ENV, ...options.env };
    this.#logger = options.logger ?? silentLogger();
    this.#sleep = options.sleep ?? ((ms) => delay(ms));
    this.#pool = new Pool(options.maxConcurrent ?? Number.POSITIVE_INFINITY);
  }

  /**
   * An executor with other filters (one plugin's commands) that shares this one's root helper,
   * env, timeouts and concurrency pool.
   */
  withFilters(filters: readonly CommandFilter[], logger?: Logger): Executor {
    const child = new Executor({ ...this.#options, filters, logger: logger ?? this.#logger });
    child.#pool = this.#pool;
    return child;
  }

  /**
   * Run `argv` (argv[0] is the command) and return its output once it exits with an accepted code.
   * Nothing starts unless a filter allows the argv. Retries only what `retryOnExitCodes`/`retryIf`
   * select, `retries` times at most; each attempt takes its own slot in the concurrency pool.
   */
  async run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const display = redacted(argv, options.redact);
    const refusal = argvProblem(argv);
    if (refusal !== undefined) throw new CommandNotAllowedError(display, refusal);
    const match = matchFilters(this.filters, argv, display);
    if (!match.allowed) throw new CommandNotAllowedError(display, match.reason);

    const viaHelper = match.filter.asRoot === true && this.rootHelper.length > 0;
    const full = viaHelper ? [...this.rootHelper, ...argv] : [...argv];
    const shown = viaHelper ? [...this.rootHelper, ...display] : display;
    const secrets = (options.redact ?? []).map((i) => argv[i]).filter((s): s is string => !!s);
    const attempts = 1 + Math.max(0, Math.floor(options.retries ?? 0));

    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#attempt(full, shown, secrets, options, attempt);
      } catch (err) {
        if (attempt >= attempts || !(err instanceof CommandFailedError) || !shouldRetry(err, options))
          throw err;
        this.#logger.warn(
          { argv: shown, exitCode: err.exitCode, attempt: attempt + 1, attempts },
          `command failed; retrying (attempt ${attempt + 1} of ${attempts})`,
        );
        const wait = options.retryDelayMs ?? 1000;
        if (wait > 0) await this.#sleep(wait);
      }
    }
  }

  async #attempt(
    full: readonly string[],
    shown: readonly string[],
    secrets: readonly string[],
    options: RunOptions,
    attempt: number,
  ): Promise<CommandResult> {
    const timeoutMs = options.timeoutMs ?? this.#options.defaultTimeoutMs ?? 0;
    const env = { ...this.#env, ...options.env };
    const release = await this.#pool.acquire();
    let outcome: Outcome;
    try {
      outcome = await runOnce(full, {
        env,
        cwd: options.cwd,
        input: options.input,
        timeoutMs,
        killGraceMs: this.#options.killGraceMs ?? 2000,
      });
    } finally {
      release();
    }
    this.#logger.debug(
      {
        argv: shown,
        exitCode: outcome.exitCode,
        signal: outcome.signal,
        durationMs: outcome.durationMs,
        attempt,
      },
      'ran command',
    );

    const mask = (s: string) => maskSecrets(s, secrets);
    const executable = full[0] as string;
    if (outcome.spawnError !== undefined) {
      const code = outcome.spawnError.code;
      const cwdMissing = options.cwd !== undefined && !existsSync(options.cwd);
      if (code === 'ENOENT' && !cwdMissing) {
        throw new CommandNotFoundError(shown, shown[0] ?? executable, {
          cause: outcome.spawnError,
          details: { path: env.PATH },
        });
      }
      // 126 is the shell's "found but cannot execute".
      const why = cwdMissing
        ? `the working directory ${options.cwd} does not exist`
        : `${code ?? 'error'}: ${outcome.spawnError.message}`;
      throw new CommandFailedError(
        shown,
        { exitCode: 126, stdout: '', stderr: `cannot start: ${why}` },
        { cause: outcome.spawnError, details: { spawnError: code, cwd: options.cwd } },
      );
    }
    const stdout = outcome.stdout;
    const stderr = outcome.stderr;
    if (outcome.timedOut) {
      throw new CommandTimeoutError(shown, timeoutMs, {
        signal: outcome.signal,
        stdout: mask(stdout),
        stderr: mask(stderr),
      });
    }
    if (outcome.exitCode === null) {
      throw new CommandFailedError(
        shown,
        { exitCode: null, signal: outcome.signal, stdout: mask(stdout), stderr: mask(stderr) },
        { details: { signal: outcome.signal } },
      );
    }
    if (!accepts(options.checkExitCode, outcome.exitCode)) {
      throw new CommandFailedError(shown, {
        exitCode: outcome.exitCode,
        stdout: mask(stdout),
        stderr: mask(stderr),
      });
    }
    return { argv: shown, exitCode: outcome.exitCode, stdout, stderr, durationMs: outcome.durationMs };
  }
}

interface OnceOptions {
  readonly env: Record<string, string>;
  readonly cwd: string | undefined;
  readonly input: string | Uint8Array | undefined;
  readonly timeoutMs: number;
  readonly killGraceMs: number;
}

/** Spawn one process and collect its outcome; never rejects. */
function runOnce(argv: readonly string[], options: OnceOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    let settled = false;
    let child: ChildProcess;

    const settle = (o: Omit<Outcome, 'durationMs' | 'stdout' | 'stderr' | 'timedOut'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(killTimer);
      clearTimeout(graceTimer);
      resolve({
        ...o,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        durationMs: Math.round(performance.now() - started),
        timedOut,
      });
    };

    try {
      child = spawn(argv[0] as string, argv.slice(1), {
        shell: false,
        env: options.env,
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
        stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        windowsHide: true,
      });
    } catch (e) {
      settle({ exitCode: null, signal: null, spawnError: e as NodeJS.ErrnoException });
      return;
    }

    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (e: NodeJS.ErrnoException) => {
      // After a successful start, 'error' only reports a failed kill(); 'close' still follows.
      if (child.pid === undefined) settle({ exitCode: null, signal: null, spawnError: e });
    });
    child.on('exit', () => {
      // A grandchild may still hold the pipes open; after a timeout kill, stop waiting for it.
      if (timedOut) {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }
    });
    child.on('close', (code, signal) => settle({ exitCode: code, signal }));

    if (options.timeoutMs > 0) {
      killTimer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
        graceTimer = setTimeout(() => child.kill('SIGKILL'), options.killGraceMs);
      }, options.timeoutMs);
    }
    if (options.input !== undefined && child.stdin) {
      // The child may exit without reading its input (EPIPE); its exit code tells the story.
      child.stdin.on('error', () => {});
      child.stdin.end(options.input);
    }
  });
}

/** FIFO counting semaphore; a released slot passes straight to the next waiter. */
class Pool {
  #active = 0;
  readonly #waiting: (() => void)[] = [];
  constructor(readonly limit: number) {}

  async acquire(): Promise<() => void> {
    if (this.#active < this.limit) this.#active++;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    };
  }
}

function optionIssues(options: ExecutorOptions): InvalidField[] {
  const issues: InvalidField[] = [];
  const max = options.maxConcurrent;
  if (max !== undefined && !(max === Number.POSITIVE_INFINITY || (Number.isInteger(max) && max >= 1))) {
    issues.push({ path: '/maxConcurrent', message: 'must be a whole number of at least 1' });
  }
  options.rootHelper?.forEach((part, i) => {
    if (typeof part !== 'string' || part === '' || part.includes('\0')) {
      issues.push({ path: `/rootHelper/${i}`, message: 'must be a non-empty string without NUL bytes' });
    }
  });
  for (const key of ['defaultTimeoutMs', 'killGraceMs'] as const) {
    const v = options[key];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) {
      issues.push({ path: `/${key}`, message: 'must be a number of milliseconds, 0 or more' });
    }
  }
  return issues;
}

/** Why argv cannot be run at all, or undefined. */
function argvProblem(argv: readonly unknown[]): string | undefined {
  if (argv.length === 0) return 'the argument vector is empty';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (typeof arg !== 'string') return `argument ${i} is a ${typeof arg}, not a string`;
    if (arg.includes('\0')) return `argument ${i} contains a NUL byte`;
  }
  if (argv[0] === '') return 'the command name is empty';
  return undefined;
}

function redacted(argv: readonly string[], positions: readonly number[] | undefined): readonly string[] {
  if (positions === undefined || positions.length === 0) return argv;
  return argv.map((arg, i) => (positions.includes(i) ? REDACTED : arg));
}

function maskSecrets(text: string, secrets: readonly string[]): string {
  return secrets.reduce((acc, s) => acc.split(s).join(REDACTED), text);
}

function accepts(check: RunOptions['checkExitCode'], exitCode: number): boolean {
  if (check === false) return true;
  if (check === undefined || check === true) return exitCode === 0;
  return check.includes(exitCode);
}

function shouldRetry(err: CommandFailedError, options: RunOptions): boolean {
  if (err.exitCode !== null && options.retryOnExitCodes?.includes(err.exitCode)) return true;
  return options.retryIf?.(err) ?? false;
}
