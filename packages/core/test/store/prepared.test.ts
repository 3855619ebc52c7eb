import { expect } from 'chai';
import { type Kysely, sql } from 'kysely';
import { StratusError } from '../../src/errors.js';
import {
  type AnyDatabase,
  coreMigrations,
  currentTimestamp,
  dialectOf,
  type MigrationSet,
  migrate,
  PreparedQuery,
  transitionStatus,
} from '../../src/store/index.js';
import { fileTarget, memoryTarget, pgTarget, requireTarget, type StoreTarget } from './targets.js';

const itemsSet: MigrationSet = {
  namespace: 'test_prepared',
  dependsOn: ['core'],
  migrations: {
    '0001_items': {
      async up(db) {
        await db.schema
          .createTable('test_items')
          .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
          .addColumn('status', 'varchar(32)', (c) => c.notNull())
          .addColumn('note', 'varchar(255)')
          .addColumn('size', 'integer')
          .addColumn('updated_at', 'varchar(64)')
          .execute();
      },
    },
  },
};

function describePrepared(target: StoreTarget): void {
  describe(`prepared statements on ${target.name}`, () => {
    before(async function () {
      this.timeout(15000);
      await requireTarget(this, target);
    });
    afterEach(() => target.cleanup());

    async function items(): Promise<Kysely<AnyDatabase>> {
      const store = await target.open();
      await migrate(store, [coreMigrations, itemsSet]);
      await store.db
        .insertInto('test_items')
        .values([
          { id: 'a', status: 'available', size: 1 },
          { id: 'b', status: 'available', size: 2 },
          { id: 'c', status: 'error', size: 3 },
        ])
        .execute();
      return store.db;
    }

    async function row(db: Kysely<AnyDatabase>, id: string) {
      return db.selectFrom('test_items').selectAll().where('id', '=', id).executeTakeFirst();
    }

    describe('PreparedQuery', () => {
      it('runs one compiled query with each call’s values, constants kept', async () => {
        const db = await items();
        const read = new PreparedQuery<{ id: string }, { id: string; size: number }>(
          (slot) =>
            db
              .selectFrom('test_items')
              .select(['id', 'size'])
              .where('status', '=', 'available')
              .where('id', '=', slot('id')),
          ['id'],
        );
        expect((await read.executeTakeFirst(db, { id: 'a' }))?.size).to.equal(1);
        expect((await read.executeTakeFirst(db, { id: 'b' }))?.size).to.equal(2);
        // `c` is in error: the constant condition still applies.
        expect(await read.executeTakeFirst(db, { id: 'c' })).to.equal(undefined);
        expect(read.sql).to.match(/"status" = /);
      });

      it('reports the rows a write changed, and runs inside a transaction', async () => {
        const db = await items();
        const rename = new PreparedQuery<{ id: string; note: string }, never>(
          (slot) =>
            db
              .updateTable('test_items')
              .set({ note: slot('note') })
              .where('id', '=', slot('id')),
          ['id', 'note'],
        );
        expect((await rename.run(db, { id: 'a', note: 'first' })).numAffectedRows).to.equal(1n);
        expect((await rename.run(db, { id: 'zz', note: 'none' })).numAffectedRows).to.equal(0n);
        await db.transaction().execute(async (trx) => {
          await rename.run(trx, { id: 'b', note: 'in trx' });
        });
        expect((await row(db, 'a'))?.note).to.equal('first');
        expect((await row(db, 'b'))?.note).to.equal('in trx');
      });

      it('refuses a parameter name the query never uses', async () => {
        const db = await items();
        let caught: unknown;
        try {
          new PreparedQuery<{ id: string; other: string }, never>(
            (slot) => db.selectFrom('test_items').selectAll().where('id', '=', slot('id')),
            ['id', 'other'],
          );
        } catch (error) {
          caught = error;
        }
        expect(StratusError.is(caught, 'INVALID_INPUT')).to.equal(true);
        expect((caught as Error).message + JSON.stringify((caught as StratusError).details)).to.contain(
          'other',
        );
      });
    });

    describe('transitionStatus with its statement cache', () => {
      it('applies each call’s own values when the same transition repeats', async () => {
        const db = await items();
        const move = (id: string, note: string) =>
          transitionStatus(db, 'test_items', id, {
            from: ['available'],
            to: 'deleting',
            set: { note, updated_at: currentTimestamp(dialectOf(db)) },
          });
        expect(await move('a', 'note a')).to.equal(true);
        expect(await move('b', 'note b')).to.equal(true);
        expect(await move('a', 'again')).to.equal(false);
        expect(await row(db, 'a')).to.include({ status: 'deleting', note: 'note a' });
        expect(await row(db, 'b')).to.include({ status: 'deleting', note: 'note b' });
      });

      it('tells transitions apart by statuses and columns set', async () => {
        const db = await items();
        expect(await transitionStatus(db, 'test_items', 'a', { from: ['available'], to: 'x' })).to.equal(
          true,
        );
        expect(await transitionStatus(db, 'test_items', 'c', { from: ['available'], to: 'x' })).to.equal(
          false,
        );
        expect(await transitionStatus(db, 'test_items', 'c', { from: ['error'], to: 'y' })).to.equal(true);
        expect(
          await transitionStatus(db, 'test_items', 'b', { from: ['available'], to: 'x', set: { size: 9 } }),
        ).to.equal(true);
        expect(await row(db, 'a')).to.include({ status: 'x', size: 1 });
        expect(await row(db, 'b')).to.include({ status: 'x', size: 9 });
        expect(await row(db, 'c')).to.include({ status: 'y' });
      });

      it('leaves out columns set to undefined, as an update does', async () => {
        const db = await items();
        await db.updateTable('test_items').set({ note: 'kept' }).where('id', '=', 'a').execute();
        expect(
          await transitionStatus(db, 'test_items', 'a', {
            from: ['available'],
            to: 'x',
            set: { note: undefined, size: 5 },
          }),
        ).to.equal(true);
        expect(await row(db, 'a')).to.include({ status: 'x', note: 'kept', size: 5 });
      });

      it('uses the values of an SQL expression holding parameters on every call', async () => {
        const db = await items();
        for (const [id, note] of [
          ['a', 'one'],
          ['b', 'two'],
        ] as const) {
          expect(
            await transitionStatus(db, 'test_items', id, {
              from: ['available'],
              to: 'x',
              set: { note: sql`${note}` },
            }),
          ).to.equal(true);
        }
        expect((await row(db, 'a'))?.note).to.equal('one');
        expect((await row(db, 'b'))?.note).to.equal('two');
      });

      it('still refuses bad identifiers once the same shape with good ones is cached', async () => {
        const db = await items();
        await transitionStatus(db, 'test_items', 'a', { from: ['available'], to: 'x', set: { note: 'ok' } });
        let caught: unknown;
        try {
          await transitionStatus(db, 'test_items', 'b', {
            from: ['available'],
            to: 'x',
            set: { 'note = 1, status': 'x' },
          });
        } catch (error) {
          caught = error;
        }
        expect(StratusError.is(caught, 'INVALID_INPUT')).to.equal(true);
        expect((await row(db, 'b'))?.status).to.equal('available');
      });
    });
  });
}

describePrepared(memoryTarget());
describePrepared(fileTarget());
describePrepared(pgTarget());
