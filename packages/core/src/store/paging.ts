import type { SelectQueryBuilder } from 'kysely';
import { InvalidInputError } from '../errors.js';

/** The largest page a listing serves, and the size of a page when none is asked for. */
export const MAX_PAGE_SIZE = 1000;

/** Which page of a listing to read. */
export interface PageOptions {
  /** Rows per page; default {@link MAX_PAGE_SIZE}. Callers validate the range with their options schema. */
  readonly limit?: number;
  /** Id of the last row of the previous page; none for the first page. */
  readonly marker?: string;
}

/** Tables of `DB` that {@link keysetPage} can page through: those with `id` and `created_at` columns. */
export type KeysetTable<DB> = {
  [T in keyof DB & string]: DB[T] extends { id: unknown; created_at: unknown } ? T : never;
}[keyof DB & string];

/** How the helper sees any such table; the SQL it builds names only these two columns. */
type KeysetDatabase = { keyset: { id: string; created_at: unknown } };

/**
 * One page of a listing, oldest first (`created_at`, then `id` between rows of the same instant),
 * holding the rows after `page.marker`, at most `page.limit` of them.
 *
 * `visible` is every row the caller may see (its scope: project, deleted rows); the marker must be
 * one of them. `rows` is `visible` narrowed by the listing's filters, with its selection: a marker
 * the filters leave out still marks where the next page starts.
 *
 * @param listing what is listed, for the error: `volume` gives "Invalid volume listing".
 * @throws InvalidInputError at `/marker` when the marker is not one of the visible rows.
 */
export async function keysetPage<DB, TB extends KeysetTable<DB>, O>(
  visible: SelectQueryBuilder<DB, TB, object>,
  rows: SelectQueryBuilder<DB, TB, O>,
  page: PageOptions,
  listing: string,
): Promise<O[]> {
  const scope = visible as unknown as SelectQueryBuilder<KeysetDatabase, 'keyset', object>;
  let query = rows as unknown as SelectQueryBuilder<KeysetDatabase, 'keyset', O>;
  const { marker } = page;
  if (marker !== undefined) {
    const found = await scope.select('id').where('id', '=', marker).executeTakeFirst();
    if (!found) {
      throw new InvalidInputError(`Invalid ${listing} listing`, [
        {
          path: '/marker',
          message: `${JSON.stringify(marker)} is not an item of this listing; start without a marker`,
        },
      ]);
    }
    // The marker's instant stays in SQL: read into a JS Date, PostgreSQL's microseconds would be
    // cut to milliseconds and the next page would start with the marker itself again.
    const markerTime = scope.select('created_at').where('id', '=', marker);
    query = query.where((eb) =>
      eb.or([
        eb('created_at', '>', markerTime),
        eb.and([eb('created_at', '=', markerTime), eb('id', '>', marker)]),
      ]),
    );
  }
  return query
    .orderBy('created_at')
    .orderBy('id')
    .limit(page.limit ?? MAX_PAGE_SIZE)
    .execute();
}
