import {
  type CommandFailedError,
  type CommandResult,
  type Executor,
  isCommandTimeout,
  type Logger,
  type RunOptions,
  StratusError,
} from '@stratus/core';

/** The part of core's Executor the driver uses; tests pass a sinon stub of it. */
export type CommandExecutor = Pick<Executor, 'run'>;

/** Injectable sleep, so tests need not wait for backoff. */
export type Sleep = (ms: number) => Promise<void>;

export interface CommandRunnerOptions {
  readonly executor: CommandExecutor;
  readonly logger: Logger;
  /** At most this many pooled commands run at once. */
  readonly maxConcurrent: number;
  /** Time limit of each attempt unless a run gives its own. */
  readonly timeoutMs: number;
  readonly sleep: Sleep;
}

/** Options of one run: core's RunOptions minus retries, which the driver decides itself. */
export type DriverRunOptions = Pick<RunOptions, 'timeoutMs' | 'redact' | 'checkExitCode' | 'input'> & {
  /** Skip the concurrency pool (long data copies must not starve LVM commands). */
  readonly unpooled?: boolean;
};

/** Exit code of a process killed by SIGSEGV (128 + 11); `lvs`/`vgs` do that under load on some releases. */
export const SEGFAULT_EXIT = 139;

/** True for a failed command whose exit code, stderr or timeout says "run it again". */
export function isCommandFailure(e: unknown): e is CommandFailedError {
  return StratusError.is(e, 'COMMAND_FAILED');
}

/**
 * Runs the driver's commands through core's Executor, at most `maxConcurrent` at a time (FIFO), each
 * with a time limit. Retries are explicit ({@link CommandRunner.retrying}) so that every retry path
 * is visible in the driver and testable with a stubbed executor.
 */
export class CommandRunner {
  readonly #options: CommandRunnerOptions;
  #active = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(options: CommandRunnerOptions) {
    this.#options = options;
  }

  /** Run argv once, in the pool unless `unpooled`. */
  async run(argv: readonly string[], options: DriverRunOptions = {}): Promise<CommandResult> {
    const { unpooled, ...rest } = options;
    const runOptions: RunOptions = { timeoutMs: this.#options.timeoutMs, ...rest };
    if (unpooled) return this.#options.executor.run(argv, runOptions);
    await this.#acquire();
    try {
      return await this.#options.executor.run(argv, runOptions);
    } finally {
      this.#release();
    }
  }

  /**
   * Run argv up to `1 + retries` times while `retryIf` says the failure is transient, sleeping
   * `delayMs * 2^n` between attempts and running `between` (e.g. `udevadm settle`) before each retry.
   */
  async retrying(
    argv: readonly string[],
    policy: {
      readonly retries: number;
      readonly delayMs: number;
      readonly retryIf: (e: CommandFailedError) => boolean;
      readonly between?: () => Promise<void>;
    },
    options: DriverRunOptions = {},
  ): Promise<CommandResult> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.run(argv, options);
      } catch (e) {
        if (attempt >= policy.retries || !isCommandFailure(e) || !policy.retryIf(e)) throw e;
        const wait = policy.delayMs * 2 ** attempt;
        this.#options.logger.warn(
          {
            argv: e.argv,
            exitCode: e.exitCode,
            attempt: attempt + 2,
            attempts: policy.retries + 1,
            waitMs: wait,
          },
          'transient LVM failure; retrying',
        );
        if (wait > 0) await this.#options.sleep(wait);
        await policy.between?.();
      }
    }
  }

  /** A read-only report (`vgs`, `lvs`): retried on a segfault (exit 139) or a timeout. */
  report(argv: readonly string[], retries: number, delayMs: number, options: DriverRunOptions = {}) {
    return this.retrying(
      argv,
      { retries, delayMs, retryIf: (e) => e.exitCode === SEGFAULT_EXIT || isCommandTimeout(e) },
      options,
    );
  }

  async #acquire(): Promise<void> {
    if (this.#active < this.#options.maxConcurrent) {
      this.#active++;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#active--;
  }
}
