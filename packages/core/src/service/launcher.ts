import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../log/logger.js';
import type { StopResult } from '../rpc/server.js';
import type { Service } from './service.js';

/** The parts of `process` the Launcher uses; tests pass an EventEmitter. */
export interface SignalSource {
  on(signal: NodeJS.Signals, listener: () => void): unknown;
  off(signal: NodeJS.Signals, listener: () => void): unknown;
}

export interface LauncherOptions {
  readonly services: readonly Service[];
  readonly logger: Logger;
  /** Re-reads the config for SIGHUP; without it SIGHUP is logged and ignored. */
  readonly reloadConfig?: () => Promise<Pick<ResolvedConfig, 'log' | 'reportInterval' | 'periodicInterval'>>;
  readonly signals?: SignalSource;
  /** Called on a second SIGTERM/SIGINT: exit at once, non-zero. */
  readonly exit?: (code: number) => void;
}

const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * Runs one or several services in one process. SIGTERM/SIGINT stop them gracefully (a second
 * signal exits at once with code 130); SIGHUP reloads what can change live.
 */
export class Launcher {
  readonly #options: LauncherOptions;
  readonly #signals: SignalSource;
  readonly #exit: (code: number) => void;
  #stopping?: Promise<StopResult[]>;
  #keepAlive?: NodeJS.Timeout;
  #resolveDone!: (results: StopResult[]) => void;
  readonly #done: Promise<StopResult[]>;
  readonly #onStop = (): void => this.#handleStopSignal();
  readonly #onHup = (): void => void this.#reload();

  constructor(options: LauncherOptions) {
    this.#options = options;
    this.#signals = options.signals ?? process;
    this.#exit = options.exit ?? ((code) => process.exit(code));
    this.#done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  /** Start every service in order; if one fails, the ones already started are stopped. */
  async launch(): Promise<void> {
    const started: Service[] = [];
    try {
      for (const service of this.#options.services) {
        await service.start();
        started.push(service);
      }
    } catch (error) {
      await Promise.all(started.map((s) => s.stop()));
      throw error;
    }
    for (const signal of STOP_SIGNALS) this.#signals.on(signal, this.#onStop);
    this.#signals.on('SIGHUP', this.#onHup);
    // In-memory services hold no socket; keep the process alive until stopped.
    this.#keepAlive = setInterval(() => {}, 1 << 30);
  }

  /** Resolves when the services have stopped (after a signal or `stop()`). */
  wait(): Promise<StopResult[]> {
    return this.#done;
  }

  /** Stop every service (in reverse start order), once. */
  stop(): Promise<StopResult[]> {
    this.#stopping ??= (async () => {
      const results: StopResult[] = [];
      for (const service of [...this.#options.services].reverse()) {
        results.push(await service.stop());
      }
      this.#detach();
      this.#resolveDone(results);
      return results;
    })();
    return this.#stopping;
  }

  #handleStopSignal(): void {
    if (this.#stopping) {
      this.#options.logger.warn('second stop signal: exiting now without waiting for in-flight requests');
      this.#exit(130);
      return;
    }
    this.#options.logger.info('stop signal received: stopping gracefully (send it again to exit at once)');
    void this.stop();
  }

  async #reload(): Promise<void> {
    const reload = this.#options.reloadConfig;
    if (!reload) {
      this.#options.logger.info('SIGHUP received, but there is no config file to reload');
      return;
    }
    try {
      const settings = await reload();
      for (const service of this.#options.services) service.reload(settings);
      this.#options.logger.level = settings.log.level;
      this.#options.logger.info(
        {
          level: settings.log.level,
          reportInterval: settings.reportInterval,
          periodicInterval: settings.periodicInterval,
        },
        'configuration reloaded',
      );
    } catch (err) {
      this.#options.logger.error(
        { err },
        'reloading the configuration failed; the previous one stays in force',
      );
    }
  }

  #detach(): void {
    for (const signal of STOP_SIGNALS) this.#signals.off(signal, this.#onStop);
    this.#signals.off('SIGHUP', this.#onHup);
    if (this.#keepAlive) clearInterval(this.#keepAlive);
  }
}
