import type { Logger } from '../log/logger.js';

/** One periodic task of a manager. */
export interface PeriodicTask {
  readonly run: () => Promise<void> | void;
  /** Seconds between the end of one run and the start of the next; the service default when unset. */
  readonly spacing?: number;
  /** Run once as soon as the service starts, instead of one spacing later. */
  readonly runImmediately?: boolean;
}

export type PeriodicTaskTable = Readonly<Record<string, PeriodicTask>>;

/** Declare a periodic task: `{ sync_power_states: periodicTask(() => this.sync(), { spacing: 60 }) }`. */
export function periodicTask(
  run: () => Promise<void> | void,
  options: { spacing?: number; runImmediately?: boolean } = {},
): PeriodicTask {
  return { run, ...options };
}

interface TaskState {
  readonly name: string;
  readonly task: PeriodicTask;
  timer?: NodeJS.Timeout;
  running?: Promise<void>;
}

/**
 * Runs a manager's periodic tasks. Each task is scheduled `spacing` after its previous run ends,
 * so a task never overlaps itself and a slow run is never followed by runs that "catch up".
 * A throwing task is logged and rescheduled; the others are not affected.
 */
export class PeriodicTaskRunner {
  readonly #states: TaskState[];
  readonly #logger: Logger;
  #defaultSpacing: number;
  #spacingOverrides: Readonly<Record<string, number>> = {};
  #started = false;

  constructor(tasks: PeriodicTaskTable, options: { logger: Logger; defaultSpacing: number }) {
    this.#states = Object.entries(tasks).map(([name, task]) => ({ name, task }));
    this.#logger = options.logger;
    this.#defaultSpacing = options.defaultSpacing;
  }

  get taskNames(): string[] {
    return this.#states.map((s) => s.name);
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const state of this.#states) {
      this.#schedule(state, state.task.runImmediately ? 0 : this.#spacingOf(state));
    }
  }

  /**
   * Change spacings live (SIGHUP): `defaultSpacing` for tasks that set none, `overrides` by task
   * name. A task's pending wait is restarted with its new spacing.
   */
  setSpacing(defaultSpacing: number, overrides: Readonly<Record<string, number>> = {}): void {
    this.#defaultSpacing = defaultSpacing;
    this.#spacingOverrides = overrides;
    if (!this.#started) return;
    for (const state of this.#states) {
      if (state.timer && !state.running) {
        clearTimeout(state.timer);
        this.#schedule(state, this.#spacingOf(state));
      }
    }
  }

  /** Stop scheduling; resolves when runs already in progress have ended. */
  async stop(): Promise<void> {
    this.#started = false;
    for (const state of this.#states) {
      if (state.timer) clearTimeout(state.timer);
      delete state.timer;
    }
    await Promise.all(this.#states.map((s) => s.running));
  }

  #spacingOf(state: TaskState): number {
    return this.#spacingOverrides[state.name] ?? state.task.spacing ?? this.#defaultSpacing;
  }

  #schedule(state: TaskState, delaySeconds: number): void {
    state.timer = setTimeout(() => {
      delete state.timer;
      state.running = this.#runOnce(state).finally(() => {
        delete state.running;
        if (this.#started) this.#schedule(state, this.#spacingOf(state));
      });
    }, delaySeconds * 1000);
    state.timer.unref();
  }

  async #runOnce(state: TaskState): Promise<void> {
    const started = Date.now();
    try {
      await state.task.run();
      this.#logger.debug({ task: state.name, durationMs: Date.now() - started }, 'periodic task done');
    } catch (err) {
      this.#logger.error({ task: state.name, err }, `periodic task ${state.name} failed; it will run again`);
    }
  }
}
