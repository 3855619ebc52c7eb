import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { sql } from 'kysely';
import { openDatabase, type Store } from '../../src/store/index.js';

describe('store: SQLite file settings and statement reuse', () => {
  let dir: string;
  const stores: Store[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'stratus-sqlite-'));
  });
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  async function open(options: Parameters<typeof openDatabase>[1] = {}): Promise<Store> {
    const store = await openDatabase(`sqlite:${join(dir, 'stratus.db')}`, options);
    stores.push(store);
    return store;
  }
  const pragma = async (store: Store, name: string) =>
    Object.values((await sql.raw(`pragma ${name}`).execute(store.db)).rows[0] as object)[0];

  it('runs WAL with synchronous NORMAL by default, FULL when asked, and checkpoints every 10000 pages', async () => {
    const store = await open();
    expect(await pragma(store, 'journal_mode')).to.equal('wal');
    expect(await pragma(store, 'synchronous')).to.equal(1);
    expect(await pragma(store, 'wal_autocheckpoint')).to.equal(10000);
    await store.close();
    const full = await open({ sqliteSynchronous: 'full' });
    expect(await pragma(full, 'synchronous')).to.equal(2);
  });

  it('a reused statement gives each execution its own parameters and results', async () => {
    const store = await open();
    await sql`create table t (id integer primary key, v text)`.execute(store.db);
    for (let i = 0; i < 5; i++) {
      await store.db
        .insertInto('t')
        .values({ id: i, v: `v${i}` })
        .execute();
    }
    const read = (id: number) => store.db.selectFrom('t').select('v').where('id', '=', id).executeTakeFirst();
    const results = await Promise.all([0, 1, 2, 3, 4, 9].map(read));
    expect(results).to.deep.equal([
      { v: 'v0' },
      { v: 'v1' },
      { v: 'v2' },
      { v: 'v3' },
      { v: 'v4' },
      undefined,
    ]);
    await store.db.updateTable('t').set({ v: 'changed' }).where('id', '=', 2).execute();
    expect(await read(2)).to.deep.equal({ v: 'changed' });
  });

  it('streams get a statement of their own: the same SQL runs before, between and after them', async () => {
    const store = await open();
    await sql`create table t (id integer primary key)`.execute(store.db);
    for (let i = 0; i < 3; i++) await store.db.insertInto('t').values({ id: i }).execute();
    const query = () => store.db.selectFrom('t').select('id').orderBy('id');
    const ids = (rows: { id: unknown }[]) => rows.map((r) => r.id);
    expect(ids(await query().execute())).to.deep.equal([0, 1, 2]);
    for (let round = 0; round < 2; round++) {
      const streamed: unknown[] = [];
      for await (const row of query().stream()) streamed.push(row.id);
      expect(streamed).to.deep.equal([0, 1, 2]);
      expect(ids(await query().execute())).to.deep.equal([0, 1, 2]);
    }
  });
});
