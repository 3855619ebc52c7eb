import type { Io } from './io.js';

/** One column of a human table. */
export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => unknown;
}

/** `null`/`undefined` print as `-`, dates as ISO, objects as compact JSON. */
export function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value).replace(/\s*\n\s*/g, ' ');
}

/** A plain aligned table: upper-case headers, two spaces between columns, no borders. */
export function renderTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const matrix = [
    columns.map((c) => c.header.toUpperCase()),
    ...rows.map((row) => columns.map((c) => cell(c.value(row)))),
  ];
  const widths = columns.map((_, i) => Math.max(...matrix.map((line) => (line[i] ?? '').length)));
  return `${matrix
    .map((line) =>
      line
        .map((text, i) => (i === line.length - 1 ? text : text.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

/** A record as `field  value` lines, in the given order. */
export function renderRecord(fields: readonly (readonly [string, unknown])[]): string {
  const width = Math.max(...fields.map(([name]) => name.length));
  return `${fields.map(([name, value]) => `${name.padEnd(width)}  ${cell(value)}`).join('\n')}\n`;
}

/** Pretty JSON with a trailing newline; dates become ISO strings. */
export function renderJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Writes either the JSON form or the human form of a result. */
export function emit(io: Io, json: boolean, value: unknown, human: () => string): void {
  io.stdout.write(json ? renderJson(value) : human());
}

/** Seconds as a short age: `4s`, `3m12s`, `2h5m`, `3d4h`. */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  if (s < 86400)
    return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? `${Math.floor((s % 3600) / 60)}m` : ''}`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600) ? `${Math.floor((s % 86400) / 3600)}h` : ''}`;
}
