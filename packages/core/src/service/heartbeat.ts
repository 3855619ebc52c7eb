import { StratusError } from '../errors.js';
import type { Logger } from '../log/logger.js';

/**
 * Reports this service's liveness every `intervalSeconds` (Nova's report_state). A failing report
 * is logged once with its reason and the service keeps serving; the recovery is logged too.
 * Reports are chained, never concurrent: a slow store delays the next one instead of piling up.
 */
export class Heartbeat {
  readonly #report: () => Promise<void>;
  readonly #logger: Logger;
  #intervalMs: number;
  #timer?: NodeJS.Timeout;
  #inFlight?: Promise<void>;
  #running = false;
  #failingSince: Date | undefined;
  #failures = 0;

  constructor(report: () => Promise<void>, options: { intervalSeconds: number; logger: Logger }) {
    this.#report = report;
    this.#intervalMs = options.intervalSeconds * 1000;
    this.#logger = options.logger;
  }

  /** True while the last report failed. */
  get failing(): boolean {
    return this.#failingSince !== undefined;
  }

  /** Reports once now (so a started service is visible at once), then on every interval. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    await this.beat();
    this.#scheduleNext();
  }

  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#inFlight;
  }

  setInterval(seconds: number): void {
    this.#intervalMs = seconds * 1000;
  }

  /** One report; never throws. */
  async beat(): Promise<void> {
    const attempt = this.#attempt();
    this.#inFlight = attempt;
    await attempt;
  }

  async #attempt(): Promise<void> {
    try {
      await this.#report();
      if (this.#failingSince) {
        this.#logger.info(
          { failures: this.#failures, since: this.#failingSince.toISOString() },
          'heartbeat recovered: the service registry is reachable again',
        );
        this.#failingSince = undefined;
        this.#failures = 0;
      }
    } catch (err) {
      this.#failures += 1;
      if (!this.#failingSince) {
        this.#failingSince = new Date();
        const retryable = StratusError.is(err) && err.retryable;
        this.#logger.error(
          { err, retryable },
          'heartbeat failed: the service keeps serving and retries every interval; it may show as down until the store is reachable',
        );
      }
    }
  }

  #scheduleNext(): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => {
      void this.beat().then(() => this.#scheduleNext());
    }, this.#intervalMs);
    this.#timer.unref();
  }
}
