import { type Kysely, sql } from 'kysely';
import { ConfigInvalidError, type InvalidField } from '../errors.js';
import type { Store } from './database.js';
import { type AnyDatabase, type StoreDialect, schemaTypes, toDateOrNull } from './dialect.js';
import { withStoreErrors } from './store-errors.js';

/** What a migration gets besides the (transaction-bound) database. */
export interface MigrationContext {
  readonly dialect: StoreDialect;
}

/** One schema change. It runs in a transaction together with its record. */
export interface Migration {
  up(db: Kysely<AnyDatabase>, context: MigrationContext): Promise<void>;
}

/**
 * The migrations of one package, under its own namespace (`core`, `volume`, ...).
 * Migrations run in the order of their names: prefix them `0001_`, `0002_`, ...
 */
export interface MigrationSet {
  readonly namespace: string;
  /** Namespaces whose migrations must run first (e.g. tables referenced by a foreign key). */
  readonly dependsOn?: readonly string[];
  readonly migrations: Readonly<Record<string, Migration>>;
}

/** One migration's state in {@link migrationStatus}. */
export interface MigrationStatusEntry {
  readonly namespace: string;
  readonly name: string;
  readonly state: 'applied' | 'pending';
  /** On the database clock; `null` while pending. */
  readonly appliedAt: Date | null;
}

/** A migration {@link migrate} applied in this run. */
export interface AppliedMigration {
  readonly namespace: string;
  readonly name: string;
}

/** The table recording applied migrations. */
export const MIGRATIONS_TABLE = 'stratus_migrations';

/** Row of {@link MIGRATIONS_TABLE}. */
export interface MigrationsTable {
  namespace: string;
  name: string;
  applied_at: Date | string;
}

/**
 * Key of the PostgreSQL advisory lock held for a whole migration run, so two processes
 * starting together migrate one after the other ("strat" in ASCII).
 */
export const MIGRATION_LOCK_KEY = 0x7374726174;

/**
 * Orders sets so each comes after those it depends on; among independent sets the
 * given order is kept. Throws a `CONFIG_INVALID` error naming duplicate namespaces,
 * unknown dependencies and cycles.
 */
export function orderMigrationSets(sets: readonly MigrationSet[]): MigrationSet[] {
  const byName = new Map<string, MigrationSet>();
  const issues: InvalidField[] = [];
  for (const set of sets) {
    const known = byName.get(set.namespace);
    // The same set reached through two plugins (compute ships volume's too) is applied once.
    if (known && known !== set) {
      issues.push({ path: `/${set.namespace}`, message: 'namespace is declared by two migration sets' });
    }
    byName.set(set.namespace, set);
  }
  const unique = [...new Set(sets)];
  for (const set of sets) {
    for (const dep of set.dependsOn ?? []) {
      if (!byName.has(dep)) {
        issues.push({
          path: `/${set.namespace}/dependsOn`,
          message: `depends on unknown namespace "${dep}"; pass its migration set to migrate() too`,
        });
      }
    }
  }
  if (issues.length) throw new ConfigInvalidError('migration sets', issues);

  const ordered: MigrationSet[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (set: MigrationSet, path: string[]): void => {
    const seen = state.get(set.namespace);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      const cycle = [...path.slice(path.indexOf(set.namespace)), set.namespace].join(' -> ');
      throw new ConfigInvalidError('migration sets', [
        {
          path: `/${set.namespace}/dependsOn`,
          message: `dependency cycle ${cycle}; remove one of these dependsOn entries`,
        },
      ]);
    }
    state.set(set.namespace, 'visiting');
    for (const dep of set.dependsOn ?? []) visit(byName.get(dep) as MigrationSet, [...path, set.namespace]);
    state.set(set.namespace, 'done');
    ordered.push(set);
  };
  for (const set of unique) visit(set, []);
  return ordered;
}

function migrationNames(set: MigrationSet): string[] {
  return Object.keys(set.migrations).sort();
}

/**
 * Applies every pending migration of `sets`, dependencies first, each in its own
 * transaction with its record in `stratus_migrations`. Running it again is a no-op.
 * Safe when several processes start at once: PostgreSQL runs hold an advisory lock,
 * SQLite takes the write lock (`BEGIN IMMEDIATE`) and re-checks before each migration.
 *
 * @returns the migrations applied by this call, in order.
 */
export async function migrate(store: Store, sets: readonly MigrationSet[]): Promise<AppliedMigration[]> {
  const ordered = orderMigrationSets(sets);
  const context: MigrationContext = { dialect: store.dialect };
  return withStoreErrors({ operation: 'migrate the database', url: store.url }, () =>
    store.db.connection().execute(async (conn) => {
      if (store.dialect === 'postgres') {
        await sql`select pg_advisory_lock(${sql.lit(MIGRATION_LOCK_KEY)})`.execute(conn);
        try {
          return await applyAll(conn, ordered, context);
        } finally {
          await sql`select pg_advisory_unlock(${sql.lit(MIGRATION_LOCK_KEY)})`
            .execute(conn)
            .catch(() => undefined);
        }
      }
      return applyAll(conn, ordered, context);
    }),
  );
}

async function applyAll(
  conn: Kysely<AnyDatabase>,
  ordered: readonly MigrationSet[],
  context: MigrationContext,
): Promise<AppliedMigration[]> {
  // On SQLite a transaction holds the write lock from its start (the store's groups begin
  // immediate), so the re-check below cannot race another process; on PostgreSQL everything stays
  // on the connection that holds the advisory lock.
  await conn.transaction().execute((trx) => ensureMigrationsTable(trx, context.dialect));
  const applied: AppliedMigration[] = [];
  let done = await appliedKeys(conn);
  for (const set of ordered) {
    for (const name of migrationNames(set)) {
      if (done.has(key(set.namespace, name))) continue;
      const migration = set.migrations[name] as Migration;
      const operation = `apply migration ${set.namespace}/${name}`;
      const ran = await withStoreErrors({ operation }, () =>
        conn.transaction().execute(async (trx) => {
          // Another process may have applied it since we looked (SQLite has no run-wide lock).
          if (context.dialect === 'sqlite') {
            done = await appliedKeys(trx);
            if (done.has(key(set.namespace, name))) return false;
          }
          await migration.up(trx, context);
          await trx
            .insertInto(MIGRATIONS_TABLE)
            .values({ namespace: set.namespace, name, applied_at: schemaTypes(context.dialect).now })
            .execute();
          return true;
        }),
      );
      if (ran) applied.push({ namespace: set.namespace, name });
    }
  }
  return applied;
}

/**
 * Lists every migration of `sets` in the order {@link migrate} would run them, with
 * whether it is applied (and when) or pending. Changes nothing.
 */
export async function migrationStatus(
  store: Store,
  sets: readonly MigrationSet[],
): Promise<MigrationStatusEntry[]> {
  const ordered = orderMigrationSets(sets);
  return withStoreErrors({ operation: 'read the migration status', url: store.url }, async () => {
    const applied = new Map<string, Date | null>();
    if (await tableExists(store.db, store.dialect, MIGRATIONS_TABLE)) {
      const rows = await store.db
        .selectFrom(MIGRATIONS_TABLE)
        .select(['namespace', 'name', 'applied_at'])
        .execute();
      for (const row of rows) applied.set(key(row.namespace, row.name), toDateOrNull(row.applied_at));
    }
    return ordered.flatMap((set) =>
      migrationNames(set).map((name): MigrationStatusEntry => {
        const k = key(set.namespace, name);
        return applied.has(k)
          ? { namespace: set.namespace, name, state: 'applied', appliedAt: applied.get(k) ?? null }
          : { namespace: set.namespace, name, state: 'pending', appliedAt: null };
      }),
    );
  });
}

async function ensureMigrationsTable(conn: Kysely<AnyDatabase>, dialect: StoreDialect): Promise<void> {
  const t = schemaTypes(dialect);
  await conn.schema
    .createTable(MIGRATIONS_TABLE)
    .ifNotExists()
    .addColumn('namespace', 'varchar(100)', (c) => c.notNull())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('applied_at', t.timestamp, (c) => c.notNull().defaultTo(t.now))
    .addPrimaryKeyConstraint('stratus_migrations_pkey', ['namespace', 'name'])
    .execute();
}

async function appliedKeys(conn: Kysely<AnyDatabase>): Promise<Set<string>> {
  const rows = await conn.selectFrom(MIGRATIONS_TABLE).select(['namespace', 'name']).execute();
  return new Set(rows.map((r) => key(r.namespace, r.name)));
}

/** Whether a table exists in the current schema (`search_path` on PostgreSQL). */
export async function tableExists(
  db: Kysely<AnyDatabase>,
  dialect: StoreDialect,
  table: string,
): Promise<boolean> {
  if (dialect === 'postgres') {
    const { rows } = await sql<{ found: string | null }>`select to_regclass(${table})::text as found`.execute(
      db,
    );
    return rows[0]?.found != null;
  }
  const { rows } = await sql<{
    name: string;
  }>`select name from sqlite_master where type = 'table' and name = ${table}`.execute(db);
  return rows.length > 0;
}

function key(namespace: string, name: string): string {
  return `${namespace}\u0000${name}`;
}
