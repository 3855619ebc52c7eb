import { mkdirSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Kysely, PostgresDialect, type PostgresPool, sql } from 'kysely';
import { ConfigInvalidError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { type AnyDatabase, type StoreDialect, toDate } from './dialect.js';
import { type BetterSqlite3Database, SqliteFile } from './sqlite-group-commit.js';
import { classifyStoreError, withStoreErrors } from './store-errors.js';

/** URL schemes {@link openDatabase} understands. */
export const SUPPORTED_DATABASE_SCHEMES = ['sqlite:', 'postgres:', 'postgresql:'] as const;

/** A SQL identifier Stratus accepts in a schema name (no quoting needed, no injection). */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** An open database: a Kysely instance plus what Stratus needs around it. */
export interface Store<DB = AnyDatabase> {
  /**
   * The query builder. Each package declares its own tables; narrow with
   * `store.db.withTables<MyTables>()` or a cast to `Kysely<MyDatabase>`.
   */
  readonly db: Kysely<DB>;
  readonly dialect: StoreDialect;
  /** The URL with any password replaced by `***`; safe to log. */
  readonly url: string;
  /** The database's clock (not this process's), in UTC. */
  now(): Promise<Date>;
  /** Closes the pool or file; further queries fail. Safe to call twice. */
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** PostgreSQL pool size; default 10. */
  readonly poolSize?: number;
  /** PostgreSQL schema to put first on `search_path` (must already exist). */
  readonly schema?: string;
  /** PostgreSQL: give up connecting after this long; default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** SQLite: wait this long for another writer's lock before failing; default 5000 ms. */
  readonly busyTimeoutMs?: number;
  /**
   * SQLite (WAL) commit durability: `normal` (default) survives a process crash with every
   * commit and an OS crash consistent but possibly without the last commits; `full` fsyncs each
   * commit (survives power loss too, at a few hundred commits/s on ordinary disks).
   */
  readonly sqliteSynchronous?: 'normal' | 'full' | undefined;
  /** Where pool-level errors (a dropped idle connection) are reported. */
  readonly logger?: Logger;
  /**
   * Loads a driver package; defaults to `import()`. Tests replace it to simulate a
   * missing driver, bundlers to hand over a pre-imported module.
   */
  readonly importDriver?: (name: 'better-sqlite3' | 'pg') => Promise<unknown>;
}

/** The embedded default database of a data directory: `sqlite:<dataDir>/stratus.db`. */
export function defaultDatabaseUrl(dataDir: string): string {
  return `sqlite:${join(resolve(dataDir), 'stratus.db')}`;
}

/** Replaces the password of a database URL (and any `password=` parameter) with `***`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
    return parsed.protocol === 'sqlite:' ? url : parsed.toString();
  } catch {
    return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
  }
}

/**
 * Opens the store named by `url`: `sqlite:<path>` (better-sqlite3 in WAL mode, created
 * with its folder if missing), `sqlite::memory:` or `postgres://user:pass@host/db`
 * (a `pg` pool; connections are made on first use). The driver package is imported
 * here, so a SQLite deployment never needs `pg` installed.
 */
export async function openDatabase<DB = AnyDatabase>(
  url: string,
  options: OpenDatabaseOptions = {},
): Promise<Store<DB>> {
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0]?.toLowerCase();
  if (scheme === 'sqlite:') return openSqlite<DB>(url, options);
  if (scheme === 'postgres:' || scheme === 'postgresql:') return openPostgres<DB>(url, options);
  throw new ConfigInvalidError('database', [
    {
      path: '/database/url',
      message: `unsupported database URL ${JSON.stringify(redactUrl(url))}; use one of ${SUPPORTED_DATABASE_SCHEMES.map((s) => `${s}...`).join(', ')} (e.g. sqlite:/var/lib/stratus/stratus.db or postgres://user:pass@host:5432/stratus)`,
    },
  ]);
}

type BetterSqlite3Constructor = new (path: string) => BetterSqlite3Database;

/** The parts of pg used here. */
interface PgModule {
  Pool: new (
    config: Record<string, unknown>,
  ) => PostgresPool & {
    on(event: 'error', listener: (error: Error) => void): unknown;
    on(
      event: 'connect',
      listener: (client: { on(event: 'error', listener: (error: Error) => void): unknown }) => void,
    ): unknown;
  };
}

async function loadDriver(name: 'better-sqlite3' | 'pg', options: OpenDatabaseOptions): Promise<unknown> {
  const load = options.importDriver ?? ((n: string) => import(n));
  try {
    const mod = (await load(name)) as { default?: unknown };
    return mod.default ?? mod;
  } catch (error) {
    const scheme = name === 'pg' ? 'postgres://' : 'sqlite:';
    throw new ConfigInvalidError(
      'database',
      [
        {
          path: '/database/url',
          message: `a ${scheme} database needs the "${name}" package, which could not be loaded (${(error as Error).message}). Add it to the application: pnpm add ${name}`,
        },
      ],
      { cause: error, details: { package: name } },
    );
  }
}

function sqlitePath(url: string): string {
  let rest = url.slice('sqlite:'.length);
  if (rest.startsWith('//')) rest = rest.slice(2);
  return rest === '' || rest === ':memory:' ? ':memory:' : rest;
}

/** SQLite files open in this process, by real path: every store on one file shares its connection. */
const openSqliteFiles = new Map<string, SqliteFile>();

async function openSqlite<DB>(url: string, options: OpenDatabaseOptions): Promise<Store<DB>> {
  const Database = (await loadDriver('better-sqlite3', options)) as BetterSqlite3Constructor;
  const path = sqlitePath(url);
  const redacted = redactUrl(url);
  const file = await withStoreErrors({ operation: 'open the SQLite database', url: redacted }, async () => {
    let key: string | undefined;
    if (path !== ':memory:') {
      mkdirSync(dirname(resolve(path)), { recursive: true });
      key = join(realpathSync(dirname(resolve(path))), basename(path));
      const open = openSqliteFiles.get(key);
      if (open) {
        // The strictest setting asked for wins on a shared connection.
        if (options.sqliteSynchronous === 'full') open.database.pragma('synchronous = FULL');
        return open;
      }
    }
    const database = new Database(path);
    try {
      database.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
      database.pragma('foreign_keys = ON');
      if (path !== ':memory:') {
        database.pragma('journal_mode = WAL');
        // In WAL mode NORMAL keeps the database consistent across crashes and loses no commit to
        // a process crash; only an OS crash or power loss may drop the last commits. FULL (the
        // default) fsyncs on every commit, which capped the embedded store at a few hundred
        // writes/s (BENCHMARKS.md, scenario 3).
        database.pragma(`synchronous = ${options.sqliteSynchronous === 'full' ? 'FULL' : 'NORMAL'}`);
        // Checkpoint every ~40 MB of WAL instead of ~4 MB: the hot rows of a busy service are the
        // same few pages rewritten, and a checkpoint copies each page once however often it
        // changed (~10% more lifecycle cycles/s, BENCHMARKS.md scenario 3). The WAL file is cut
        // back to 64 MB at most after a checkpoint.
        database.pragma('wal_autocheckpoint = 10000');
        database.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
      }
    } catch (error) {
      database.close();
      throw error;
    }
    if (key === undefined) return new SqliteFile(database);
    const opened = new SqliteFile(database, () => openSqliteFiles.delete(key));
    openSqliteFiles.set(key, opened);
    return opened;
  });
  const db = new Kysely<DB>({ dialect: file.dialect() });
  return makeStore(db, 'sqlite', redacted, sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`);
}

async function openPostgres<DB>(url: string, options: OpenDatabaseOptions): Promise<Store<DB>> {
  if (options.schema !== undefined && !IDENTIFIER.test(options.schema)) {
    throw new ConfigInvalidError('database', [
      {
        path: '/database/schema',
        message: `schema ${JSON.stringify(options.schema)} must match ${IDENTIFIER}`,
      },
    ]);
  }
  const pg = (await loadDriver('pg', options)) as PgModule;
  const redacted = redactUrl(url);
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  });
  // An idle client losing its server emits 'error' on the pool; unhandled it would kill the process.
  pool.on('error', (error: Error) => {
    options.logger?.warn(
      { err: classifyStoreError(error, { url: redacted }), url: redacted },
      'database connection lost; it will be replaced on next use',
    );
  });
  // pg-pool listens for 'error' on idle clients only. A client checked out for a query whose
  // connection drops emits it too, and unhandled that kills the process; the query itself is
  // failed (and classified as unavailable) by its own rejection, so the event needs no more.
  pool.on('connect', (client) => {
    client.on('error', (error: Error) => {
      options.logger?.debug(
        { err: classifyStoreError(error, { url: redacted }), url: redacted },
        'database connection lost during a query; the query fails and the connection is replaced',
      );
    });
  });
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  return makeStore(db, 'postgres', redacted, sql<Date>`now()`);
}

function makeStore<DB>(
  db: Kysely<DB>,
  dialect: StoreDialect,
  url: string,
  nowExpr: ReturnType<typeof sql>,
): Store<DB> {
  let closed: Promise<void> | undefined;
  return {
    db,
    dialect,
    url,
    now: () =>
      withStoreErrors({ operation: 'read the database clock', url }, async () => {
        const { rows } = await sql<{ now: unknown }>`select ${nowExpr} as now`.execute(db);
        return toDate(rows[0]?.now);
      }),
    close: () => {
      closed ??= db.destroy();
      return closed;
    },
    toString: () => `Store(${url})`,
    toJSON: () => ({ dialect, url }),
  } as Store<DB>;
}
