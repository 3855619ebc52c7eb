import type { Compilable, CompiledQuery, QueryResult } from 'kysely';
import { InvalidInputError } from '../errors.js';

/** What runs a compiled query: a Kysely instance or a transaction. */
export interface QueryRunner {
  executeQuery<R>(query: CompiledQuery<R>): Promise<QueryResult<R>>;
}

/** Stands for a parameter while a query is compiled; replaced by the caller's value on each run. */
class Slot {
  constructor(readonly name: string) {}
}

/**
 * A query built and compiled once, then run with new parameter values: building and compiling a
 * Kysely query costs more than SQLite takes to run a simple one, and a service's hot reads and
 * state transitions run thousands of times a second with the same shape (BENCHMARKS.md, scenario 3).
 *
 * `build` receives `slot(name)`, a stand-in for a value passed to {@link execute} under `name`;
 * use it wherever the query takes a single value (not inside `in` lists, whose length is part of
 * the SQL). Anything else the query holds is fixed at compile time.
 */
export class PreparedQuery<P extends Record<string, unknown>, R> {
  readonly #compiled: CompiledQuery<R>;

  constructor(
    build: (slot: <K extends keyof P & string>(name: K) => P[K]) => Compilable<R>,
    names: readonly (keyof P & string)[],
  ) {
    const slot = <K extends keyof P & string>(name: K) => new Slot(name) as unknown as P[K];
    this.#compiled = build(slot).compile();
    const used = new Set(
      this.#compiled.parameters.filter((p): p is Slot => p instanceof Slot).map((p) => p.name),
    );
    const missing = names.filter((n) => !used.has(n));
    if (missing.length) {
      throw new InvalidInputError('Invalid prepared query', [
        {
          path: '/names',
          message: `the query never uses parameter(s) ${missing.join(', ')}; pass each through slot()`,
        },
      ]);
    }
  }

  /** The SQL text (for tests and logs). */
  get sql(): string {
    return this.#compiled.sql;
  }

  /** Runs the query; the result carries `numAffectedRows` for writes. */
  run(db: QueryRunner, params: P): Promise<QueryResult<R>> {
    const parameters = this.#compiled.parameters.map((p) => (p instanceof Slot ? params[p.name] : p));
    return db.executeQuery<R>({ ...this.#compiled, parameters });
  }

  async execute(db: QueryRunner, params: P): Promise<R[]> {
    return (await this.run(db, params)).rows;
  }

  async executeTakeFirst(db: QueryRunner, params: P): Promise<R | undefined> {
    return (await this.execute(db, params))[0];
  }
}
