import { type DestinationStream, type Level, type Logger as PinoLogger, pino } from 'pino';

export type Logger = PinoLogger;
export type LogLevel = Level | 'silent';

export interface LoggerOptions {
  readonly level?: LogLevel;
  /** Bound on every line, e.g. `{ host, service }`. */
  readonly bindings?: Readonly<Record<string, unknown>>;
  /** Where lines go; stdout by default. Tests pass a stream to read them back. */
  readonly destination?: DestinationStream;
}

/** Keys whose values never reach a log line, at any depth pino can address. */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  'authPassword',
  '*.authPassword',
  '*.*.authPassword',
  'providerAuth',
  '*.providerAuth',
  'token',
  '*.token',
  'secret',
  '*.secret',
];

/** JSON lines (pino), one root per process; services and plugins take `child()` loggers. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const logger = pino(
    {
      level: options.level ?? 'info',
      base: { ...options.bindings },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
  return logger;
}

/** A logger that writes nothing, for tests and library callers that pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
