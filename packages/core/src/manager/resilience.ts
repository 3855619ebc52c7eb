import { StratusError, TimeoutError } from '../errors.js';
import type { Logger } from '../log/logger.js';

type Log = Pick<Logger, 'info' | 'warn'>;

export interface StoreRetryOptions {
  /** Where the first failure and the recovery are logged. */
  readonly logger: Log;
  /** What is retried, for the log lines (`create_volume`, `record volume v-1 as available`). */
  readonly what: string;
  /** First pause between attempts, doubled up to `maxDelayMs`. Default 250. */
  readonly initialDelayMs?: number;
  /** Default 2000. */
  readonly maxDelayMs?: number;
  /**
   * Abort when the service stops: the retrying stops and the returned promise never settles, so a
   * cast stays unacknowledged and the broker gives it to another consumer once this one is gone
   * (failing it instead would have it acknowledged and dropped).
   */
  readonly signal?: AbortSignal;
}

/**
 * Run `fn` again, with backoff, for as long as it fails with `STORE_UNAVAILABLE`; any other
 * outcome is returned or thrown as is. For work nobody waits for (cast handlers, and the recording
 * of backend work already done): failing would leave a row in a transient state until the next
 * restart, while retrying loses nothing. `fn` must be safe to run again after a failed attempt.
 */
export async function retryWhileStoreUnavailable<T>(
  fn: () => Promise<T>,
  options: StoreRetryOptions,
): Promise<T> {
  const { logger, what, signal } = options;
  const maxDelayMs = options.maxDelayMs ?? 2000;
  let delayMs = options.initialDelayMs ?? 250;
  let failures = 0;
  for (;;) {
    if (signal?.aborted) return new Promise<T>(() => undefined);
    try {
      const result = await fn();
      if (failures > 0) logger.info({ failures }, `${what}: done once the database came back`);
      return result;
    } catch (error) {
      if (!StratusError.is(error, 'STORE_UNAVAILABLE')) throw error;
      if (failures++ === 0) {
        logger.warn({ err: error }, `${what}: the database is unreachable; retrying until it is back`);
      }
      await pause(delayMs, signal);
      delayMs = Math.min(delayMs * 2, maxDelayMs);
    }
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

export interface DriverTimeoutOptions {
  /** The limit in seconds; 0 (or less) waits forever. */
  readonly seconds: number;
  /** The work, for the error and log lines (`volume v-1 (creating)`). */
  readonly what: string;
  /** Who does the work, for the error (`volume backend`, `hypervisor`). */
  readonly backend: string;
  /** Where the late outcome of timed-out work is logged. */
  readonly logger: Pick<Logger, 'warn'>;
}

/**
 * Await backend work for at most `seconds` (a manager's `driverTimeout`): past it, reject with a
 * retryable `TIMEOUT` error so the caller moves its row to the error state and frees the handler.
 * The work is not cancelled (drivers cannot be); its late outcome is only logged.
 */
export async function withDriverTimeout<T>(
  work: () => Promise<T>,
  options: DriverTimeoutOptions,
): Promise<T> {
  const { seconds, what, backend, logger } = options;
  if (!(seconds > 0)) return work();
  const running = work();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      running.then(
        () => logger.warn(`${backend} work on ${what} finished after its timeout; its row stays in error`),
        (error: unknown) =>
          logger.warn({ err: error }, `${backend} work on ${what} failed after its timeout`),
      );
      reject(
        new TimeoutError(
          `the ${backend} did not finish ${what} within ${seconds} s (driverTimeout); check the ${backend}, then delete or retry`,
          { details: { driverTimeout: seconds } },
        ),
      );
    }, seconds * 1000);
  });
  try {
    return await Promise.race([running, expired]);
  } finally {
    clearTimeout(timer);
  }
}
