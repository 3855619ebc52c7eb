import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { createLogger, type Logger, type LogLevel } from '@stratus/core';
import type { OutStream } from './io.js';

const LEVEL_NAMES: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};
const LEVEL_VALUES: Record<string, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
};

export interface LocalLoggerOptions {
  /** JSON lines of every level >= `level` go here (appended). */
  readonly file: string;
  readonly level: LogLevel;
  /** Lines at or above this level are also shown to the user, one human line each. */
  readonly showLevel: LogLevel;
  readonly terminal: OutStream;
}

/**
 * The logger of `stratus up`: full JSON logs in a file (for when something goes wrong), and only
 * what the person at the terminal needs (warnings and errors by default) as short readable lines.
 */
export function localLogger(options: LocalLoggerOptions): { logger: Logger; close(): Promise<void> } {
  mkdirSync(path.dirname(options.file), { recursive: true });
  const file: WriteStream = createWriteStream(options.file, { flags: 'a', mode: 0o600 });
  const threshold = LEVEL_VALUES[options.showLevel] ?? Number.POSITIVE_INFINITY;
  const destination = {
    write(line: string): void {
      file.write(line);
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (typeof entry.level === 'number' && entry.level >= threshold) {
        options.terminal.write(humanLine(entry));
      }
    },
  };
  const logger = createLogger({ level: options.level, destination });
  return {
    logger,
    close: () => new Promise<void>((resolve) => file.end(() => resolve())),
  };
}

/** `12:00:01 WARN  stratus-volume: message (error message)`. */
export function humanLine(entry: Record<string, unknown>): string {
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 19) : '';
  const level = (LEVEL_NAMES[entry.level as number] ?? 'log').toUpperCase().padEnd(5);
  const who = typeof entry.service === 'string' ? `${entry.service}: ` : '';
  const err = entry.err as { message?: unknown } | undefined;
  const detail = err && typeof err.message === 'string' ? ` (${err.message})` : '';
  return `${time} ${level} ${who}${String(entry.msg ?? '')}${detail}\n`;
}
