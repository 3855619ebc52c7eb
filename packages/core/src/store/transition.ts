import type { Kysely } from 'kysely';
import { InvalidInputError } from '../errors.js';
import type { AnyDatabase } from './dialect.js';
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
  const set = options.set ?? {};
  const bad = [
    ...(TABLE.test(table)
      ? []
      : [{ path: '/table', message: `${JSON.stringify(table)} is not a plain table name` }]),
    ...[idColumn, statusColumn, ...Object.keys(set)]
      .filter((c) => !IDENTIFIER.test(c))
      .map((c) => ({ path: '/column', message: `${JSON.stringify(c)} is not a plain column name` })),
    ...(options.from.length ? [] : [{ path: '/from', message: 'lists no status to transition from' }]),
    ...(statusColumn in set ? [{ path: `/set/${statusColumn}`, message: 'use `to` to set the status' }] : []),
  ];
  if (bad.length) throw new InvalidInputError('Invalid status transition', bad);

  return withStoreErrors({ operation: `move ${table} ${id} to ${options.to}` }, async () => {
    const result = await db
      .updateTable(table)
      .set({ ...set, [statusColumn]: options.to })
      .where(idColumn, '=', id)
      .where(statusColumn, 'in', [...options.from])
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  });
}
