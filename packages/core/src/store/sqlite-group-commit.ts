import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type TransactionSettings,
} from 'kysely';
import { toSqliteParameter } from './dialect.js';

/** The parts of a better-sqlite3 database used here (typed locally: its types are a dev dependency). */
export interface BetterSqlite3Database {
  readonly inTransaction: boolean;
  pragma(source: string): unknown;
  prepare(source: string): BetterSqlite3Statement;
  close(): unknown;
}

interface BetterSqlite3Statement {
  readonly reader: boolean;
  readonly readonly: boolean;
  all(parameters: readonly unknown[]): unknown[];
  run(parameters: readonly unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  iterate(parameters: readonly unknown[]): IterableIterator<unknown>;
}

/** Prepared statements kept per SQL text; Kysely asks for one per query and preparing cost more than running. */
const STATEMENT_CACHE_SIZE = 512;

/** The savepoint a Kysely transaction runs in, inside the group's transaction. */
const TRANSACTION_SAVEPOINT = 'stratus_transaction';

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * A Kysely dialect for better-sqlite3 with **group commit**: the statements of concurrent callers
 * share one SQLite transaction, committed once per turn of the event loop, and each caller is
 * answered only after that commit. A WAL commit (frames, WAL-index locks) costs far more than a
 * small statement, and a busy service writes the same few pages many times per turn, so sharing
 * the commit is most of the embedded store's write cost (BENCHMARKS.md, scenario 3).
 *
 * What callers see is unchanged: a statement's promise settles after its effect is committed (or
 * rejects if the commit fails, with nothing of it kept), a failed statement rejects at once and
 * undoes only itself (SQLite's statement atomicity), and a Kysely transaction runs in a savepoint
 * of the group, alone on the connection until it commits or rolls back, so its rollback undoes
 * exactly its own statements. Reads while a group is open also wait for its commit, so nobody acts
 * on data that a failed commit would take back. The group takes SQLite's write lock when it opens
 * (`BEGIN IMMEDIATE`) and holds it until the commit at the end of the turn; other processes on the
 * same file wait for it as they would for any writer (`busy_timeout`). Stores of one process opened
 * on the same file share one `SqliteFile` (one connection): two connections of one thread would
 * wait on each other's lock with the event loop blocked.
 */
export class SqliteFile {
  readonly database: BetterSqlite3Database;
  readonly #driver: GroupCommitSqliteDriver;
  readonly #onClosed: () => void;
  #users = 0;

  constructor(database: BetterSqlite3Database, onClosed: () => void = () => {}) {
    this.database = database;
    this.#driver = new GroupCommitSqliteDriver(database);
    this.#onClosed = onClosed;
  }

  /** A dialect for one more `Kysely` on this file; the file closes when the last of them is destroyed. */
  dialect(): Dialect {
    this.#users++;
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      if (--this.#users > 0) return;
      this.#onClosed();
      await this.#driver.destroy();
    };
    const driver = this.#driver;
    return {
      createDriver: () => ({
        init: () => driver.init(),
        acquireConnection: () => driver.acquireConnection(),
        beginTransaction: (connection, settings) => driver.beginTransaction(connection, settings),
        commitTransaction: (connection) => driver.commitTransaction(connection),
        rollbackTransaction: (connection) => driver.rollbackTransaction(connection),
        savepoint: (connection, name) => driver.savepoint(connection, name),
        rollbackToSavepoint: (connection, name) => driver.rollbackToSavepoint(connection, name),
        releaseSavepoint: (connection, name) => driver.releaseSavepoint(connection, name),
        releaseConnection: () => driver.releaseConnection(),
        destroy: release,
      }),
      createQueryCompiler: () => new SqliteQueryCompiler(),
      createAdapter: () => new SqliteAdapter(),
      createIntrospector: (db) => new SqliteIntrospector(db),
    };
  }
}

class GroupCommitSqliteDriver implements Driver {
  readonly #db: BetterSqlite3Database;
  readonly #statements = new Map<string, BetterSqlite3Statement>();
  /** Callers waiting for the open group's commit; undefined while no group is open. */
  #group: Waiter[] | undefined;
  /** The connection whose Kysely transaction runs now; other connections' statements wait for it. */
  #transactionOwner: GroupConnection | undefined;
  #transactionEnded: (() => void)[] = [];
  /** The group was due to commit while a transaction ran: commit as soon as it ends. */
  #commitAfterTransaction = false;
  /** The group died (a failed commit or an error SQLite answers with a rollback) inside the running transaction. */
  #transactionLost: unknown;

  constructor(db: BetterSqlite3Database) {
    this.#db = db;
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    // No lock per connection: a single statement runs synchronously, so only transactions need to be alone.
    return new GroupConnection(this);
  }

  async beginTransaction(connection: DatabaseConnection, _settings?: TransactionSettings): Promise<void> {
    const owner = connection as GroupConnection;
    while (this.busyFor(owner)) await this.transactionEnd();
    this.openGroup();
    this.#transactionOwner = owner;
    this.#transactionLost = undefined;
    this.exec(`savepoint ${TRANSACTION_SAVEPOINT}`);
  }

  async commitTransaction(_connection?: DatabaseConnection): Promise<void> {
    const lost = this.#transactionLost;
    if (lost !== undefined) {
      this.endTransaction();
      throw lost;
    }
    try {
      this.exec(`release ${TRANSACTION_SAVEPOINT}`);
    } catch (error) {
      this.endTransaction();
      throw error;
    }
    const committed = this.afterCommit();
    this.endTransaction();
    return committed;
  }

  async rollbackTransaction(_connection?: DatabaseConnection): Promise<void> {
    try {
      // Gone already when SQLite rolled the whole group back on an error.
      if (this.#db.inTransaction && this.#transactionLost === undefined) {
        this.exec(`rollback to ${TRANSACTION_SAVEPOINT}`);
        this.exec(`release ${TRANSACTION_SAVEPOINT}`);
      }
    } finally {
      this.endTransaction();
    }
  }

  // Kysely's nested savepoints (`trx.savepoint(name)`), inside the transaction's own.
  async savepoint(_connection: DatabaseConnection, name: string): Promise<void> {
    this.exec(`savepoint ${quoteIdentifier(name)}`);
  }

  async rollbackToSavepoint(_connection: DatabaseConnection, name: string): Promise<void> {
    this.exec(`rollback to ${quoteIdentifier(name)}`);
  }

  async releaseSavepoint(_connection: DatabaseConnection, name: string): Promise<void> {
    this.exec(`release ${quoteIdentifier(name)}`);
  }

  async releaseConnection(): Promise<void> {}

  async destroy(): Promise<void> {
    this.commitGroup();
    // Still open only when a transaction was left running: closing rolls it back.
    const abandoned = this.#group ?? [];
    this.#group = undefined;
    for (const waiter of abandoned) waiter.reject(new Error('The database was closed before its commit'));
    this.#statements.clear();
    this.#db.close();
  }

  /** Run one statement for `connection`; its result is handed out once it is committed. */
  async execute(connection: GroupConnection, query: CompiledQuery): Promise<QueryResult<unknown>> {
    while (this.busyFor(connection)) await this.transactionEnd();
    const inTransaction = this.#transactionOwner === connection;
    if (inTransaction && this.#transactionLost !== undefined) throw this.#transactionLost;
    const statement = this.statement(query.sql);
    if (!inTransaction && this.#group === undefined && statement.readonly) {
      return runStatement(statement, query.parameters);
    }
    this.openGroup();
    let result: QueryResult<unknown>;
    try {
      result = runStatement(statement, query.parameters);
    } catch (error) {
      this.checkGroupSurvived(error);
      throw error;
    }
    // Inside a transaction its commit is what waits for the group.
    if (inTransaction) return result;
    await this.afterCommit();
    return result;
  }

  async *stream(
    connection: GroupConnection,
    query: CompiledQuery,
  ): AsyncIterableIterator<QueryResult<unknown>> {
    // Rows are read lazily: let the open group commit first so none of them can be taken back.
    while (this.busyFor(connection) || (this.#transactionOwner !== connection && this.#group !== undefined)) {
      await (this.busyFor(connection) ? this.transactionEnd() : this.afterCommit());
    }
    const rows = this.#db.prepare(query.sql).iterate(query.parameters.map(toSqliteParameter));
    for (const row of rows) yield { rows: [row] };
  }

  /**
   * True when another connection's transaction runs now. Callers loop on it with `await
   * this.transactionEnd()` and act in the same synchronous stretch as their last check: any
   * await in between would let a transaction begin unseen.
   */
  private busyFor(connection: GroupConnection): boolean {
    return this.#transactionOwner !== undefined && this.#transactionOwner !== connection;
  }

  private transactionEnd(): Promise<void> {
    return new Promise<void>((resolve) => this.#transactionEnded.push(resolve));
  }

  private endTransaction(): void {
    this.#transactionOwner = undefined;
    this.#transactionLost = undefined;
    const waiting = this.#transactionEnded;
    this.#transactionEnded = [];
    for (const wake of waiting) wake();
    if (this.#commitAfterTransaction) {
      this.#commitAfterTransaction = false;
      this.commitGroup();
    }
  }

  private openGroup(): void {
    if (this.#group !== undefined) return;
    this.exec('begin immediate');
    this.#group = [];
    setImmediate(() => this.commitGroup());
  }

  /** A promise settled by the open group's commit. */
  private afterCommit(): Promise<void> {
    const group = this.#group;
    if (group === undefined) return Promise.resolve();
    return new Promise<void>((resolve, reject) => group.push({ resolve, reject }));
  }

  private commitGroup(): void {
    const group = this.#group;
    if (group === undefined) return;
    if (this.#transactionOwner !== undefined) {
      this.#commitAfterTransaction = true;
      return;
    }
    this.#group = undefined;
    try {
      this.exec('commit');
    } catch (error) {
      if (this.#db.inTransaction) this.exec('rollback');
      for (const waiter of group) waiter.reject(error);
      return;
    }
    for (const waiter of group) waiter.resolve();
  }

  /** After a failed statement: SQLite keeps the group unless the error was one it answers with a rollback. */
  private checkGroupSurvived(error: unknown): void {
    if (this.#db.inTransaction || this.#group === undefined) return;
    const group = this.#group;
    this.#group = undefined;
    if (this.#transactionOwner !== undefined) this.#transactionLost = error;
    for (const waiter of group) waiter.reject(error);
  }

  private exec(sql: string): void {
    this.statement(sql).run([]);
  }

  private statement(text: string): BetterSqlite3Statement {
    const cache = this.#statements;
    let statement = cache.get(text);
    if (statement) {
      // Re-inserted: Map order is recency order.
      cache.delete(text);
    } else {
      statement = this.#db.prepare(text);
      if (cache.size >= STATEMENT_CACHE_SIZE) {
        const oldest = cache.keys().next();
        if (!oldest.done) cache.delete(oldest.value);
      }
    }
    cache.set(text, statement);
    return statement;
  }
}

/** What Kysely holds between acquire and release: a name for one caller, so its transaction can be told apart. */
class GroupConnection implements DatabaseConnection {
  readonly #driver: GroupCommitSqliteDriver;
  constructor(driver: GroupCommitSqliteDriver) {
    this.#driver = driver;
  }
  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return this.#driver.execute(this, query) as Promise<QueryResult<R>>;
  }
  streamQuery<R>(query: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    return this.#driver.stream(this, query) as AsyncIterableIterator<QueryResult<R>>;
  }
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * better-sqlite3 refuses Date and boolean parameters; they are converted the way the schema
 * helpers store them (ISO text, 0/1) so the same query code serves both dialects.
 */
function runStatement(
  statement: BetterSqlite3Statement,
  parameters: readonly unknown[],
): QueryResult<unknown> {
  const mapped = parameters.map(toSqliteParameter);
  if (statement.reader) return { rows: statement.all(mapped) };
  const { changes, lastInsertRowid } = statement.run(mapped);
  return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
}
