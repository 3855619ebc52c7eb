import type { CompiledQuery, Kysely } from 'kysely';
import { InvalidInputError } from '../errors.js';
import type { AnyDatabase } from './dialect.js';
import { PreparedQuery } from './prepared.js';
import { withStoreErrors } from './store-errors.js';

/** Table and column names accepted by {@link transitionStatus}: plain or `schema.table`. */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const TABLE = /^(?:[A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export interface TransitionOptions {
  /** Statuses the row may be in for the change to happen. */
  readonly from: readonly string[];
  readonly to: string;
  /** More columns to set in the same statement (values, Dates, or `sql` expressions). */
  readonly set?: Readonly<Record<string, unknown>>;
  /** Default `id`. */
  readonly idColumn?: string;
  /** Default `status`. */
  readonly statusColumn?: string;
}

/**
 * Moves one row from any of `from` to `to` in a single conditional statement,
 * `UPDATE t SET status = :to, ... WHERE id = :id AND status IN (:from)`, so of two
 * racing callers exactly one wins. Never read a row, check it, then write it.
 *
 * @returns whether this call changed the row (false: missing, or in another status).
 */
export async function transitionStatus(
  db: Kysely<AnyDatabase>,
  table: string,
  id: string | number,
  options: TransitionOptions,
): Promise<boolean> {
  const idColumn = options.idColumn ?? 'id';
  const statusColumn = options.statusColumn ?? 'status';
  // Kysely leaves out columns set to undefined; so does the cache key.
  const set = Object.entries(options.set ?? {}).filter(([, value]) => value !== undefined);
  const key = cacheKey(db, table, idColumn, statusColumn, options, set);
  let statement = key === undefined ? undefined : preparedOf(db).get(key);
  if (!statement) {
    validate(table, idColumn, statusColumn, options, set);
    statement = prepare(db, table, idColumn, statusColumn, options, set);
    if (key !== undefined) {
      const cache = preparedOf(db);
      if (cache.size < CACHE_LIMIT) cache.set(key, statement);
    }
  }
  const params: Record<string, unknown> = { id };
  for (const [column, value] of set) params[column] = value;
  const compiled = statement;
  return withStoreErrors({ operation: `move ${table} ${id} to ${options.to}` }, async () => {
    const result = await compiled.run(db, params);
    return result.numAffectedRows === 1n;
  });
}

/** Distinct transitions a program makes are few; past this many, new ones are not kept. */
const CACHE_LIMIT = 512;
/** SQL text of the expressions seen, per database. */
const expressionSql = new WeakMap<object, WeakMap<object, string>>();
const cached = new WeakMap<object, Map<string, PreparedQuery<Record<string, unknown>, unknown>>>();

function preparedOf(db: Kysely<AnyDatabase>): Map<string, PreparedQuery<Record<string, unknown>, unknown>> {
  let cache = cached.get(db);
  if (!cache) {
    cache = new Map();
    cached.set(db, cache);
  }
  return cache;
}

/**
 * What makes two transitions the same statement: table, columns, statuses and which columns are
 * set (values become parameters). An SQL expression (e.g. `currentTimestamp`) is part of the text,
 * so its SQL is part of the key; one that holds parameters, or cannot be compiled alone, is not
 * cached (undefined).
 */
function cacheKey(
  db: Kysely<AnyDatabase>,
  table: string,
  idColumn: string,
  statusColumn: string,
  options: TransitionOptions,
  set: readonly (readonly [string, unknown])[],
): string | undefined {
  let key = `${table}\u0000${idColumn}\u0000${statusColumn}\u0000${String(options.to)}\u0000${options.from.join('\u0001')}`;
  for (const [column, value] of set) {
    key += `\u0000${column}`;
    if (typeof value === 'object' && value !== null && 'toOperationNode' in value) {
      let memo = expressionSql.get(db);
      if (!memo) {
        memo = new WeakMap();
        expressionSql.set(db, memo);
      }
      let text = memo.get(value);
      if (text === undefined) {
        const compile = (value as { compile?: (db: Kysely<AnyDatabase>) => CompiledQuery }).compile;
        if (typeof compile !== 'function') return undefined;
        const compiled = compile.call(value, db);
        if (compiled.parameters.length > 0) return undefined;
        text = compiled.sql;
        // Expressions are immutable: a reused one (currentTimestamp) is compiled once.
        memo.set(value, text);
      }
      key += `=${text}`;
    }
  }
  return key;
}

function validate(
  table: string,
  idColumn: string,
  statusColumn: string,
  options: TransitionOptions,
  set: readonly (readonly [string, unknown])[],
): void {
  const columns = set.map(([column]) => column);
  const bad = [
    ...(TABLE.test(table)
      ? []
      : [{ path: '/table', message: `${JSON.stringify(table)} is not a plain table name` }]),
    ...[idColumn, statusColumn, ...columns]
      .filter((c) => !IDENTIFIER.test(c))
      .map((c) => ({ path: '/column', message: `${JSON.stringify(c)} is not a plain column name` })),
    ...(options.from.length ? [] : [{ path: '/from', message: 'lists no status to transition from' }]),
    ...(columns.includes(statusColumn)
      ? [{ path: `/set/${statusColumn}`, message: 'use `to` to set the status' }]
      : []),
  ];
  if (bad.length) throw new InvalidInputError('Invalid status transition', bad);
}

/** `UPDATE t SET <set>, status = :to WHERE id = :id AND status IN (:from)`, values as parameters. */
function prepare(
  db: Kysely<AnyDatabase>,
  table: string,
  idColumn: string,
  statusColumn: string,
  options: TransitionOptions,
  set: readonly (readonly [string, unknown])[],
): PreparedQuery<Record<string, unknown>, unknown> {
  return new PreparedQuery<Record<string, unknown>, unknown>(
    (slot) => {
      const values: Record<string, unknown> = {};
      for (const [column, value] of set) {
        const expression = typeof value === 'object' && value !== null && 'toOperationNode' in value;
        values[column] = expression ? value : slot(column);
      }
      values[statusColumn] = options.to;
      return db
        .updateTable(table)
        .set(values)
        .where(idColumn, '=', slot('id'))
        .where(statusColumn, 'in', [...options.from]);
    },
    ['id'],
  );
}
