import {
  type ColumnDefinitionBuilder,
  type Kysely,
  PostgresAdapter,
  type RawBuilder,
  SqliteAdapter,
  sql,
} from 'kysely';
import { StratusError } from '../errors.js';

/**
 * The table map of a store shared by every package: each package narrows it with its
 * own table interfaces (`db.withTables<VolumeTables>()`, or `Kysely<VolumeDatabase>`).
 */
// biome-ignore lint/suspicious/noExplicitAny: Kysely's own idiom for a database of unknown tables
export type AnyDatabase = any;

/** The SQL dialects a Stratus store runs on. */
export type StoreDialect = 'sqlite' | 'postgres';

/**
 * SQLite stores timestamps as ISO-8601 text in UTC with milliseconds
 * (`2026-01-02T03:04:05.678Z`): it sorts as text and `Date` parses it unambiguously,
 * unlike `CURRENT_TIMESTAMP`'s zone-less `2026-01-02 03:04:05`.
 */
const SQLITE_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/** Which dialect a Kysely instance (or transaction) talks to. */
export function dialectOf(db: Kysely<AnyDatabase>): StoreDialect {
  const adapter = db.getExecutor().adapter;
  if (adapter instanceof SqliteAdapter) return 'sqlite';
  if (adapter instanceof PostgresAdapter) return 'postgres';
  throw new StratusError(
    'STORE_FAILURE',
    'Unsupported Kysely dialect: Stratus stores run on SQLite or PostgreSQL.',
  );
}

/**
 * The database's current time as an SQL expression, for `SET updated_at = ...` and
 * `INSERT` values, so every timestamp is stamped on the one clock all hosts share.
 */
export function currentTimestamp(dialect: StoreDialect): RawBuilder<Date> {
  return dialect === 'postgres' ? POSTGRES_NOW_EXPR : SQLITE_NOW_EXPR;
}

// One instance per dialect (a RawBuilder is immutable), so statement caches can key on it.
const POSTGRES_NOW_EXPR = sql<Date>`CURRENT_TIMESTAMP`;
const SQLITE_NOW_EXPR = sql<Date>`(${sql.raw(SQLITE_NOW)})`;

/** Reads a timestamp column back as a `Date` (PostgreSQL gives a Date, SQLite ISO text). */
export function toDate(value: unknown): Date {
  if (value instanceof Date) return value;
  if (typeof value === 'string') {
    const date = new Date(normalizeTimestamp(value));
    if (!Number.isNaN(date.getTime())) return date;
  }
  if (typeof value === 'number') return new Date(value);
  throw new StratusError('STORE_FAILURE', `Stored timestamp ${JSON.stringify(value)} is not a valid date`);
}

/**
 * Makes SQL timestamp text ISO-8601: `2026-01-02 03:04:05.123456+00` (PostgreSQL text)
 * and zone-less `2026-01-02 03:04:05` (SQLite's CURRENT_TIMESTAMP, which is UTC).
 */
function normalizeTimestamp(text: string): string {
  const m = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d(?::\d\d)?)(\.\d+)?\s*(Z|[+-]\d\d(?::?\d\d)?)?$/i.exec(
    text.trim(),
  );
  if (!m) return text;
  const [, day, time, fraction = '', zone = 'Z'] = m;
  const ms = fraction ? fraction.slice(0, 4).padEnd(4, '0') : '';
  const offset = /^[+-]\d\d$/.test(zone)
    ? `${zone}:00`
    : zone.length === 5
      ? `${zone.slice(0, 3)}:${zone.slice(3)}`
      : zone;
  return `${day}T${time}${ms}${offset.toUpperCase()}`;
}

/** Like {@link toDate}, keeping SQL NULL as `null`. */
export function toDateOrNull(value: unknown): Date | null {
  return value === null || value === undefined ? null : toDate(value);
}

/** Reads a boolean column back (PostgreSQL gives a boolean, SQLite 0/1). */
export function toBoolean(value: unknown): boolean {
  return value === true || value === 1 || value === 1n || value === '1' || value === 't' || value === 'true';
}

/** Column types and defaults that mean the same on both dialects, for schema builders. */
export interface SchemaTypes {
  readonly dialect: StoreDialect;
  /** Integer key the database assigns: `serial` / `integer` (with AUTOINCREMENT). */
  readonly serial: 'serial' | 'integer';
  /** Point in time, read back with {@link toDate}: `timestamptz` / ISO text. */
  readonly timestamp: 'timestamptz' | 'text';
  /** Read back with {@link toBoolean}: `boolean` / `integer` 0-1. */
  readonly boolean: 'boolean' | 'integer';
  /** JSON document stored as text; parse it on read. */
  readonly json: 'text';
  /** Default value for a timestamp column: the database clock at insert time. */
  readonly now: RawBuilder<Date>;
  /** Makes a {@link SchemaTypes.serial} column the auto-assigned primary key. */
  primaryKey(column: ColumnDefinitionBuilder): ColumnDefinitionBuilder;
}

/** Column types for one dialect; a migration gets the dialect in its context. */
export function schemaTypes(dialect: StoreDialect): SchemaTypes {
  const pg = dialect === 'postgres';
  return {
    dialect,
    serial: pg ? 'serial' : 'integer',
    timestamp: pg ? 'timestamptz' : 'text',
    boolean: pg ? 'boolean' : 'integer',
    json: 'text',
    now: currentTimestamp(dialect),
    // AUTOINCREMENT keeps SQLite from reusing the id of a deleted row, as serial does.
    primaryKey: (column) => (pg ? column.primaryKey() : column.primaryKey().autoIncrement()),
  };
}

/** better-sqlite3 binds only numbers, strings, bigints, buffers and null. */
export function toSqliteParameter(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}
