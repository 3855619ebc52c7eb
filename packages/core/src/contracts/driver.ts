import type { Executor } from '../exec/executor.js';
import type { Logger } from '../log/logger.js';

/** What core hands every plugin's `create()`: the host it runs on and the shared facilities. */
export interface PluginEnv {
  /** This host's name, as registered in the service registry. */
  readonly host: string;
  /** A child logger bound to this plugin (`plugin`, `host`). */
  readonly logger: Logger;
  /** Runs external commands through the root helper with the plugin's command filters. */
  readonly executor: Executor;
  /** Folder for this deployment's local state (`<dataDir>`). */
  readonly dataDir: string;
}

/**
 * Base of every driver: the only code that touches the outside world. A manager owns exactly one
 * driver and calls `setup()` and `checkForSetupError()` once from `initHost()`, `close()` at stop.
 */
export abstract class Driver {
  /**
   * Prepare the backend (create a thin pool, open a connection). Runs once before any other call;
   * must be idempotent across restarts.
   */
  async setup(): Promise<void> {}

  /**
   * Throw a typed error saying what is missing (a volume group, a command) when the backend cannot
   * serve. Called after `setup()`; the service refuses to start when it throws.
   */
  async checkForSetupError(): Promise<void> {}

  /** Release connections and timers. No call is made after it. */
  async close(): Promise<void> {}
}
