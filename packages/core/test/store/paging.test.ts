import { expect } from 'chai';
import type { Kysely } from 'kysely';
import { InvalidInputError } from '../../src/errors.js';
import {
  coreMigrations,
  keysetPage,
  type MigrationSet,
  migrate,
  type PageOptions,
  schemaTypes,
} from '../../src/store/index.js';
import { fileTarget, memoryTarget, pgTarget, requireTarget, type StoreTarget } from './targets.js';

interface WidgetsDatabase {
  test_widgets: {
    id: string;
    project_id: string;
    status: string;
    deleted: boolean;
    created_at: string;
  };
}

const widgetsSet: MigrationSet = {
  namespace: 'test_paging',
  dependsOn: ['core'],
  migrations: {
    '0001_widgets': {
      async up(db, { dialect }) {
        const types = schemaTypes(dialect);
        await db.schema
          .createTable('test_widgets')
          .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
          .addColumn('project_id', 'varchar(64)', (c) => c.notNull())
          .addColumn('status', 'varchar(32)', (c) => c.notNull())
          .addColumn('deleted', types.boolean, (c) => c.notNull())
          .addColumn('created_at', types.timestamp, (c) => c.notNull())
          .execute();
      },
    },
  },
};

// Six fraction digits everywhere, so SQLite's text order is time order. `b` and `c` share an
// instant (id breaks the tie); `d` and `e` differ from it by microseconds only, which a
// millisecond Date cannot tell apart.
const WIDGETS = [
  { id: 'c', status: 'available', created_at: '2026-01-01T00:00:02.000000Z' },
  { id: 'a', status: 'available', created_at: '2026-01-01T00:00:01.000000Z' },
  { id: 'e', status: 'error', created_at: '2026-01-01T00:00:02.000700Z' },
  { id: 'b', status: 'error', created_at: '2026-01-01T00:00:02.000000Z' },
  { id: 'd', status: 'available', created_at: '2026-01-01T00:00:02.000500Z' },
  { id: 'x', status: 'available', created_at: '2026-01-01T00:00:01.500000Z', deleted: true },
  { id: 'other', status: 'available', created_at: '2026-01-01T00:00:01.200000Z', project_id: 'p2' },
];

function describePaging(target: StoreTarget): void {
  describe(`keysetPage on ${target.name}`, () => {
    let db: Kysely<WidgetsDatabase>;

    before(async function () {
      this.timeout(15000);
      await requireTarget(this, target);
    });
    beforeEach(async () => {
      const store = await target.open();
      await migrate(store, [coreMigrations, widgetsSet]);
      db = store.db as Kysely<WidgetsDatabase>;
      await db
        .insertInto('test_widgets')
        .values(WIDGETS.map((w) => ({ project_id: 'p1', deleted: false, ...w })))
        .execute();
    });
    afterEach(() => target.cleanup());

    const visible = () =>
      db.selectFrom('test_widgets').where('project_id', '=', 'p1').where('deleted', '=', false);

    async function ids(page: PageOptions, status?: string): Promise<string[]> {
      let rows = visible().select('id');
      if (status !== undefined) rows = rows.where('status', '=', status);
      return (await keysetPage(visible(), rows, page, 'widget')).map((r) => r.id);
    }

    it('lists the visible rows oldest first, ties in id order, up to 1000 without a limit', async () => {
      expect(await ids({})).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
    });

    it('reads every row exactly once page by page, whatever the page size', async () => {
      for (const limit of [1, 2, 3]) {
        const seen: string[][] = [];
        let marker: string | undefined;
        // Bounded: a marker that repeats itself would otherwise page forever.
        for (let pages = 0; pages < 10; pages += 1) {
          const chunk = await ids({ limit, ...(marker ? { marker } : {}) });
          if (chunk.length === 0) break;
          seen.push(chunk);
          marker = chunk[chunk.length - 1];
        }
        expect(seen.flat(), `limit ${limit}`).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
        expect(seen.every((chunk) => chunk.length <= limit)).to.equal(true);
      }
    });

    it('starts right after a marker that differs from the next row by microseconds', async () => {
      expect(await ids({ marker: 'd' })).to.deep.equal(['e']);
      expect(await ids({ marker: 'c', limit: 1 })).to.deep.equal(['d']);
      expect(await ids({ marker: 'e' })).to.deep.equal([]);
    });

    it('accepts a visible marker that the filters leave out', async () => {
      expect(await ids({ marker: 'a' }, 'error')).to.deep.equal(['b', 'e']);
      expect(await ids({ marker: 'c' }, 'error')).to.deep.equal(['e']);
    });

    for (const [marker, why] of [
      ['nope', 'no such row'],
      ['x', 'deleted'],
      ['other', "another project's row"],
    ] as const) {
      it(`refuses the marker ${JSON.stringify(marker)} (${why}) with InvalidInputError at /marker`, async () => {
        let caught: unknown;
        try {
          await ids({ marker });
        } catch (error) {
          caught = error;
        }
        expect(caught).to.be.instanceOf(InvalidInputError);
        const error = caught as InvalidInputError;
        expect(error.code).to.equal('INVALID_INPUT');
        expect(error.message).to.match(/^Invalid widget listing: /);
        expect(error.fields).to.deep.equal([
          {
            path: '/marker',
            message: `${JSON.stringify(marker)} is not an item of this listing; start without a marker`,
          },
        ]);
      });
    }
  });
}

describePaging(memoryTarget());
describePaging(fileTarget());
describePaging(pgTarget());
