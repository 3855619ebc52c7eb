import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { type Kysely, sql } from 'kysely';
import { openDatabase, type Store } from '../../src/store/index.js';

interface Tables {
  item: { id: number; note: string };
  parent: { id: number };
  child: { id: number; parent_id: number };
}

/** Rejects or throws: the error; resolves: a failure of the test. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the promise to reject');
}

const WAL_HEADER = 32;
const WAL_FRAME = 24 + 4096;

describe('store: SQLite group commit', () => {
  let tmp: string;
  let path: string;
  let store: Store<Tables>;
  let db: Kysely<Tables>;
  /** Another connection to the same file, as another process would have: it sees only what is committed. */
  let observer: Database.Database;

  const seen = (id: number) => observer.prepare('select count(*) as n from item where id = ?').get(id);
  const ids = () =>
    (observer.prepare('select id from item order by id').all() as { id: number }[]).map((r) => r.id);

  beforeEach(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'stratus-group-'));
    path = join(tmp, 'g.db');
    store = await openDatabase<Tables>(`sqlite:${path}`);
    db = store.db;
    await sql`create table item (id integer primary key, note text not null)`.execute(db);
    await sql`create table parent (id integer primary key)`.execute(db);
    await sql`create table child (id integer primary key, parent_id integer not null
      references parent (id) deferrable initially deferred)`.execute(db);
    observer = new Database(path);
    observer.pragma('wal_checkpoint(TRUNCATE)');
  });
  afterEach(async () => {
    observer.close();
    await store.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('answers each write only once it is committed: another connection already sees it', async () => {
    const seenWhenAnswered = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        db
          .insertInto('item')
          .values({ id: i, note: 'x' })
          .execute()
          .then(() => seen(i)),
      ),
    );
    expect(seenWhenAnswered).to.deep.equal(Array.from({ length: 50 }, () => ({ n: 1 })));
  });

  it('lets concurrent writes share one commit: the WAL grows by one commit, not fifty', async () => {
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => db.insertInto('item').values({ id: i, note: 'x' }).execute()),
    );
    const frames = (statSync(`${path}-wal`).size - WAL_HEADER) / WAL_FRAME;
    // One commit of this table writes a couple of pages; fifty commits wrote fifty or more frames.
    expect(frames).to.be.greaterThan(0).and.below(5);
    expect(ids()).to.have.length(50);
  });

  it('rejects a failing statement alone; the rest of its group is committed', async () => {
    await db.insertInto('item').values({ id: 1, note: 'first' }).execute();
    const results = await Promise.allSettled([
      db.insertInto('item').values({ id: 2, note: 'x' }).execute(),
      db.insertInto('item').values({ id: 1, note: 'duplicate' }).execute(),
      db.insertInto('item').values({ id: 3, note: 'x' }).execute(),
    ]);
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).to.match(/UNIQUE/);
    expect(ids()).to.deep.equal([1, 2, 3]);
    expect(observer.prepare('select note from item where id = 1').get()).to.deep.equal({ note: 'first' });
  });

  it('runs a transaction alone: its rollback undoes its own statements, not a concurrent write', async () => {
    const order: string[] = [];
    const transaction = db.transaction().execute(async (trx) => {
      await trx.insertInto('item').values({ id: 1, note: 'in the transaction' }).execute();
      // Give the concurrent writer every chance to run inside the transaction.
      await new Promise((resolve) => setTimeout(resolve, 20));
      order.push('transaction fails');
      throw new Error('changed my mind');
    });
    const concurrent = db
      .insertInto('item')
      .values({ id: 2, note: 'outside' })
      .execute()
      .then(() => order.push('concurrent write answered'));
    expect((await rejection(transaction)).message).to.equal('changed my mind');
    await concurrent;
    expect(order).to.deep.equal(['transaction fails', 'concurrent write answered']);
    expect(ids()).to.deep.equal([2]);
  });

  it('answers a committed transaction once the commit is done, and keeps nested savepoints apart', async () => {
    const trx = await db.startTransaction().execute();
    await trx.insertInto('item').values({ id: 1, note: 'kept' }).execute();
    const inner = await trx.savepoint('inner').execute();
    await inner.insertInto('item').values({ id: 2, note: 'undone' }).execute();
    await inner.rollbackToSavepoint('inner').execute();
    await trx.insertInto('item').values({ id: 3, note: 'kept' }).execute();
    expect(ids(), 'nothing is visible before the commit').to.deep.equal([]);
    await trx.commit().execute();
    expect(ids()).to.deep.equal([1, 3]);
  });

  it('answers a read made while a group is open after that group commits', async () => {
    const write = db.insertInto('item').values({ id: 7, note: 'x' }).execute();
    const read = db
      .selectFrom('item')
      .select('id')
      .execute()
      .then((rows) => ({ rows, committed: seen(7) }));
    await write;
    expect(await read).to.deep.equal({ rows: [{ id: 7 }], committed: { n: 1 } });
  });

  it('fails every caller of a group whose commit fails, keeps none of their rows, and goes on', async () => {
    const results = await Promise.allSettled([
      db.insertInto('item').values({ id: 1, note: 'innocent bystander' }).execute(),
      // A deferred foreign key is checked at commit: the only way a commit itself fails here.
      db.insertInto('child').values({ id: 1, parent_id: 42 }).execute(),
    ]);
    expect(results.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
    expect(String((results[0] as PromiseRejectedResult).reason)).to.match(/FOREIGN KEY/);
    expect(ids()).to.deep.equal([]);
    await db.insertInto('item').values({ id: 2, note: 'after' }).execute();
    expect(ids()).to.deep.equal([2]);
  });

  it('shares the file with another store: both write, each waits for the other group', async () => {
    const other = await openDatabase<Tables>(`sqlite:${path}`);
    try {
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          (i % 2 === 0 ? db : other.db).insertInto('item').values({ id: i, note: 'x' }).execute(),
        ),
      );
    } finally {
      await other.close();
    }
    // Closing one store leaves the shared connection to the other.
    await db.insertInto('item').values({ id: 40, note: 'after the other closed' }).execute();
    expect(ids()).to.have.length(41);
  });
});
