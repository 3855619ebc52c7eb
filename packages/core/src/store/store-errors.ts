import { ConflictError, StoreUnavailableError, StratusError } from '../errors.js';

/** Socket-level failures: the database is down, unreachable or restarting. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** PostgreSQL SQLSTATEs of a server going away or not accepting connections yet. */
const PG_UNAVAILABLE_CODES = new Set(['57P01', '57P02', '57P03', '53300']);

/** SQLite still locked after busy_timeout: another writer holds it for too long. */
const SQLITE_UNAVAILABLE_CODES = new Set([
  'SQLITE_BUSY',
  'SQLITE_BUSY_SNAPSHOT',
  'SQLITE_BUSY_RECOVERY',
  'SQLITE_LOCKED',
]);

const UNAVAILABLE_MESSAGES = [
  /terminating connection/i,
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /connection (?:error|refused)/i,
  /the database system is (?:starting up|shutting down|in recovery mode)/i,
  /Client has encountered a connection error/i,
];

const UNIQUE_CODES = new Set(['23505', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY']);

/** Where a store error happened, to make the message say what to do. */
export interface StoreErrorContext {
  /** What was being done, e.g. `register service st-3/stratus-volume`. */
  readonly operation?: string;
  /** The database URL, already redacted. */
  readonly url?: string;
}

/**
 * Turns a driver error into a typed one: an unreachable or overloaded database becomes a
 * retryable {@link StoreUnavailableError} (callers such as the heartbeat keep going and
 * retry), a unique-key violation a {@link ConflictError}, anything else
 * `STORE_FAILURE`. Stratus errors pass through unchanged.
 */
export function classifyStoreError(error: unknown, context: StoreErrorContext = {}): StratusError {
  if (StratusError.is(error)) return error;
  const code = errorCode(error);
  const message = errorMessage(error);
  const where = context.operation ? ` while trying to ${context.operation}` : '';
  const details: Record<string, unknown> = { ...(code ? { driverCode: code } : {}) };
  if (context.url) details.url = context.url;
  if (context.operation) details.operation = context.operation;

  if (isUnavailable(error)) {
    const target = context.url ? `The database at ${context.url}` : 'The database';
    return new StoreUnavailableError(
      `${target} is unavailable${where} (${code ?? 'connection lost'}: ${message}). Check that it is running and reachable; the operation can be retried.`,
      { cause: error, details },
    );
  }
  if (code && UNIQUE_CODES.has(code)) {
    return new ConflictError(`A record with the same key already exists${where}: ${message}`, {
      cause: error,
      details,
    });
  }
  return new StratusError('STORE_FAILURE', `Database error${where}: ${message}`, { cause: error, details });
}

/** Runs `fn`, rethrowing any failure through {@link classifyStoreError}. */
export async function withStoreErrors<T>(context: StoreErrorContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw classifyStoreError(error, context);
  }
}

function isUnavailable(error: unknown): boolean {
  const code = errorCode(error);
  if (code) {
    if (NETWORK_CODES.has(code) || PG_UNAVAILABLE_CODES.has(code) || SQLITE_UNAVAILABLE_CODES.has(code))
      return true;
    // SQLSTATE class 08: connection exceptions.
    if (/^08[0-9A-Z]{3}$/.test(code)) return true;
  }
  // Node reports a refused dual-stack connect as an AggregateError of per-address errors.
  if (error instanceof AggregateError && error.errors.some((inner) => isUnavailable(inner))) return true;
  const message = errorMessage(error);
  return UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(message));
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code) return code;
  if (error instanceof AggregateError) {
    for (const inner of error.errors) {
      const innerCode = errorCode(inner);
      if (innerCode) return innerCode;
    }
  }
  return undefined;
}

function errorMessage(error: unknown): string {
  if (error instanceof AggregateError && !error.message) {
    return error.errors.map((inner) => errorMessage(inner)).join('; ') || 'AggregateError';
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
