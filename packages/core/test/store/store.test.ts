import { expect } from 'chai';
import { type Kysely, sql } from 'kysely';
import sinon from 'sinon';
import { StratusError } from '../../src/errors.js';
import {
  type AnyDatabase,
  coreMigrations,
  currentTimestamp,
  dialectOf,
  type MigrationSet,
  migrate,
  migrationStatus,
  ServiceRegistry,
  type Store,
  tableExists,
  toDate,
  transitionStatus,
} from '../../src/store/index.js';
import { fileTarget, memoryTarget, pgTarget, requireTarget, type StoreTarget } from './targets.js';

/** A table like a manager's, for conditional updates. */
const volumesSet: MigrationSet = {
  namespace: 'test_volumes',
  dependsOn: ['core'],
  migrations: {
    '0001_volumes': {
      async up(db) {
        await db.schema
          .createTable('test_volumes')
          .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
          .addColumn('status', 'varchar(32)', (c) => c.notNull())
          .addColumn('note', 'varchar(255)')
          .execute();
      },
    },
  },
};

async function expectReject(promise: Promise<unknown>): Promise<StratusError> {
  try {
    await promise;
  } catch (error) {
    expect(StratusError.is(error), `not a StratusError: ${String(error)}`).to.equal(true);
    return error as StratusError;
  }
  throw new Error('expected the promise to reject');
}

/** Moves a service's heartbeat `seconds` into the past, on the database clock. */
async function ageHeartbeat(store: Store, host: string, binary: string, seconds: number): Promise<void> {
  const past =
    store.dialect === 'postgres'
      ? sql`now() - make_interval(secs => ${seconds})`
      : sql`strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ${`-${seconds} seconds`})`;
  await sql`update services set updated_at = ${past} where host = ${host} and "binary" = ${binary}`.execute(
    store.db,
  );
}

function describeStore(target: StoreTarget): void {
  describe(`store on ${target.name}`, () => {
    before(async function () {
      this.timeout(15000);
      await requireTarget(this, target);
    });
    afterEach(async () => {
      sinon.restore();
      await target.cleanup();
    });

    describe('openDatabase', () => {
      it('reads the database clock as a Date, whatever the process clock says', async () => {
        const store = await target.open();
        sinon.useFakeTimers({ now: new Date('2001-01-01T00:00:00Z'), toFake: ['Date'] });
        const now = await store.now();
        expect(now).to.be.instanceOf(Date);
        expect(now.getUTCFullYear()).to.be.greaterThan(2020);
      });

      it('binds Date and boolean parameters and reads them back', async () => {
        const store = await target.open();
        await migrate(store, [coreMigrations]);
        const when = new Date('2030-05-06T07:08:09.123Z');
        await store.db
          .insertInto('services')
          .values({ host: 'h', binary: 'b', topic: 't', version: '1', disabled: true, created_at: when })
          .execute();
        const row = await store.db.selectFrom('services').selectAll().executeTakeFirstOrThrow();
        expect(toDate(row.created_at).toISOString()).to.equal(when.toISOString());
        const flagged = await store.db
          .selectFrom('services')
          .select('id')
          .where('disabled', '=', true)
          .execute();
        expect(flagged).to.have.length(1);
      });
    });

    describe('migrate', () => {
      it('applies pending migrations once and records each', async () => {
        const store = await target.open();
        const before = await migrationStatus(store, [coreMigrations]);
        expect(before).to.deep.equal([
          { namespace: 'core', name: '0001_services', state: 'pending', appliedAt: null },
          { namespace: 'core', name: '0002_services_binary_host_idx', state: 'pending', appliedAt: null },
        ]);

        const applied = await migrate(store, [coreMigrations]);
        expect(applied).to.deep.equal([
          { namespace: 'core', name: '0001_services' },
          { namespace: 'core', name: '0002_services_binary_host_idx' },
        ]);
        expect(await tableExists(store.db, store.dialect, 'services')).to.equal(true);

        const after = await migrationStatus(store, [coreMigrations]);
        expect(after).to.have.length(2);
        for (const migration of after) {
          expect(migration.state).to.equal('applied');
          expect(migration.appliedAt).to.be.instanceOf(Date);
        }
        const rows = await store.db.selectFrom('stratus_migrations').selectAll().execute();
        expect(rows.map((r) => `${r.namespace}/${r.name}`).sort()).to.deep.equal([
          'core/0001_services',
          'core/0002_services_binary_host_idx',
        ]);
      });

      it('is a no-op when run again', async () => {
        const store = await target.open();
        await migrate(store, [coreMigrations, volumesSet]);
        expect(await migrate(store, [coreMigrations, volumesSet])).to.deep.equal([]);
        const rows = await store.db.selectFrom('stratus_migrations').selectAll().execute();
        expect(rows).to.have.length(3);
      });

      it('runs dependencies first and migrations in name order', async () => {
        const store = await target.open();
        const ran: string[] = [];
        const parent: MigrationSet = {
          namespace: 'parent',
          migrations: {
            '0002_more': { up: async () => void ran.push('parent/0002') },
            '0001_table': {
              async up(db) {
                ran.push('parent/0001');
                await db.schema
                  .createTable('parents')
                  .addColumn('id', 'integer', (c) => c.primaryKey())
                  .execute();
              },
            },
          },
        };
        const child: MigrationSet = {
          namespace: 'child',
          dependsOn: ['parent'],
          migrations: {
            '0001_table': {
              async up(db) {
                ran.push('child/0001');
                // The foreign key only works if the parent table exists already.
                await db.schema
                  .createTable('children')
                  .addColumn('id', 'integer', (c) => c.primaryKey())
                  .addColumn('parent_id', 'integer', (c) => c.references('parents.id'))
                  .execute();
              },
            },
          },
        };
        const applied = await migrate(store, [child, parent]);
        expect(ran).to.deep.equal(['parent/0001', 'parent/0002', 'child/0001']);
        expect(applied.map((a) => `${a.namespace}/${a.name}`)).to.deep.equal([
          'parent/0001_table',
          'parent/0002_more',
          'child/0001_table',
        ]);
      });

      it('refuses a dependency cycle and an unknown dependency before touching the database', async () => {
        const store = await target.open();
        const a: MigrationSet = {
          namespace: 'a',
          dependsOn: ['b'],
          migrations: { '1': { up: async () => {} } },
        };
        const b: MigrationSet = {
          namespace: 'b',
          dependsOn: ['a'],
          migrations: { '1': { up: async () => {} } },
        };
        const cycle = await expectReject(migrate(store, [a, b]));
        expect(cycle.code).to.equal('CONFIG_INVALID');
        expect(cycle.message).to.match(/cycle a -> b -> a|cycle b -> a -> b/);

        const orphan: MigrationSet = { namespace: 'c', dependsOn: ['nope'], migrations: {} };
        const unknown = await expectReject(migrate(store, [orphan]));
        expect(unknown.code).to.equal('CONFIG_INVALID');
        expect(unknown.message).to.contain('unknown namespace "nope"');
        expect(await tableExists(store.db, store.dialect, 'stratus_migrations')).to.equal(false);
      });

      it('applies a set reached twice once, but refuses two different sets with one namespace', async () => {
        const store = await target.open();
        let runs = 0;
        const shared: MigrationSet = {
          namespace: 'shared',
          migrations: {
            '1': {
              up: async () => {
                runs += 1;
              },
            },
          },
        };
        await migrate(store, [shared, shared]);
        expect(runs).to.equal(1);
        const impostor: MigrationSet = { namespace: 'shared', migrations: {} };
        const clash = await expectReject(migrate(store, [shared, impostor]));
        expect(clash.code).to.equal('CONFIG_INVALID');
        expect(clash.message).to.contain('declared by two migration sets');
      });

      it('rolls a failing migration back with its record, keeping earlier ones', async () => {
        const store = await target.open();
        const broken: MigrationSet = {
          namespace: 'broken',
          migrations: {
            '0001_ok': {
              up: (db) => db.schema.createTable('ok_table').addColumn('id', 'integer').execute(),
            },
            '0002_fails': {
              async up(db) {
                await db.schema.createTable('half_done').addColumn('id', 'integer').execute();
                throw new Error('boom');
              },
            },
          },
        };
        const error = await expectReject(migrate(store, [broken]));
        expect(error.code).to.equal('STORE_FAILURE');
        expect(error.message).to.contain('broken/0002_fails').and.contain('boom');
        expect(await tableExists(store.db, store.dialect, 'ok_table')).to.equal(true);
        expect(await tableExists(store.db, store.dialect, 'half_done')).to.equal(false);
        const status = await migrationStatus(store, [broken]);
        expect(status.map((s) => s.state)).to.deep.equal(['applied', 'pending']);
      });
    });

    describe('ServiceRegistry', () => {
      async function registry(options?: { serviceDownTimeSec?: number }): Promise<[ServiceRegistry, Store]> {
        const store = await target.open();
        await migrate(store, [coreMigrations]);
        return [new ServiceRegistry(store, options), store];
      }

      it('registers a service, and re-registering updates it and keeps its report count', async () => {
        const [reg] = await registry();
        const first = await reg.register({
          host: 'st-1',
          binary: 'stratus-volume',
          topic: 'volume',
          version: '1.0.0',
        });
        expect(first).to.include({
          host: 'st-1',
          binary: 'stratus-volume',
          topic: 'volume',
          availabilityZone: 'nova',
          version: '1.0.0',
          reportCount: 0,
          disabled: false,
          disabledReason: null,
          up: true,
        });
        expect(first.capabilities).to.deep.equal({});
        expect(first.createdAt).to.be.instanceOf(Date);

        await reg.reportState(first.id);
        const again = await reg.register({
          host: 'st-1',
          binary: 'stratus-volume',
          topic: 'volume2',
          availabilityZone: 'az-2',
          version: '1.1.0',
        });
        expect(again).to.include({
          id: first.id,
          topic: 'volume2',
          availabilityZone: 'az-2',
          version: '1.1.0',
          reportCount: 1,
        });
        expect(await reg.list({ includeDisabled: true })).to.have.length(1);
      });

      it('increments report_count and round-trips capabilities', async () => {
        const [reg] = await registry();
        const svc = await reg.register({
          host: 'st-1',
          binary: 'stratus-volume',
          topic: 'volume',
          version: '1',
        });
        const caps = { totalCapacityGb: 100, pools: [{ name: 'vg0', free: 42.5 }], thin: true };
        await reg.reportState(svc.id);
        await reg.reportState({ host: 'st-1', binary: 'stratus-volume' }, caps);
        const third = await reg.reportState(svc.id);
        expect(third.reportCount).to.equal(3);
        expect(third.updatedAt).to.be.instanceOf(Date);
        const got = await reg.get('st-1', 'stratus-volume');
        expect(got?.reportCount).to.equal(3);
        expect(got?.capabilities).to.deep.equal(caps);
      });

      it('reports NOT_FOUND for a heartbeat of a missing service', async () => {
        const [reg] = await registry();
        const error = await expectReject(reg.reportState({ host: 'ghost', binary: 'stratus-volume' }));
        expect(error.code).to.equal('NOT_FOUND');
      });

      it('judges liveness on the database clock, not the process clock', async () => {
        const [reg, store] = await registry();
        await reg.register({ host: 'st-1', binary: 'stratus-volume', topic: 'volume', version: '1' });
        const clock = sinon.useFakeTimers({ now: Date.now() + 365 * 86400_000, toFake: ['Date'] });
        expect((await reg.get('st-1', 'stratus-volume'))?.up, 'process clock a year ahead').to.equal(true);
        clock.setSystemTime(Date.UTC(1999, 0, 1));
        expect((await reg.get('st-1', 'stratus-volume'))?.up, 'process clock in 1999').to.equal(true);

        await ageHeartbeat(store, 'st-1', 'stratus-volume', 120);
        const stale = await reg.get('st-1', 'stratus-volume');
        expect(stale?.up).to.equal(false);
        expect(stale?.lastHeartbeatAgeSec).to.be.within(119, 600);
        // A process clock that agrees with the stale stamp changes nothing either.
        clock.setSystemTime(stale?.updatedAt ?? 0);
        expect((await reg.list())[0]?.up).to.equal(false);

        const lenient = new ServiceRegistry(store, { serviceDownTimeSec: 300 });
        expect((await lenient.get('st-1', 'stratus-volume'))?.up).to.equal(true);

        await reg.reportState({ host: 'st-1', binary: 'stratus-volume' });
        expect((await reg.get('st-1', 'stratus-volume'))?.up).to.equal(true);
      });

      it('returns the stored timestamps to the millisecond, and the age on the database clock', async () => {
        const [reg, store] = await registry();
        const svc = await reg.register({
          host: 'st-1',
          binary: 'stratus-volume',
          topic: 'volume',
          version: '1',
        });
        await reg.reportState(svc.id);
        await ageHeartbeat(store, 'st-1', 'stratus-volume', 30);
        // Read the same row back through the driver's own timestamp parsing.
        const raw = await store.db
          .selectFrom('services')
          .select(['created_at', 'updated_at', 'last_seen_up'])
          .where('id', '=', svc.id)
          .executeTakeFirstOrThrow();
        const [listed] = await reg.list();
        expect(listed?.createdAt.getTime()).to.equal(toDate(raw.created_at).getTime());
        expect(listed?.updatedAt.getTime()).to.equal(toDate(raw.updated_at).getTime());
        expect(listed?.lastSeenUp?.getTime()).to.equal(toDate(raw.last_seen_up).getTime());
        expect(listed?.lastHeartbeatAgeSec).to.be.within(29.9, 90);
        expect(listed?.up).to.equal(true);
      });

      it('reads timestamps on whole and fractional milliseconds back exactly', async () => {
        const [reg, store] = await registry();
        const svc = await reg.register({
          host: 'st-1',
          binary: 'stratus-volume',
          topic: 'volume',
          version: '1',
        });
        // .123000 is where float8 seconds land just below the millisecond; .999999 just below the next.
        const cases = ['2030-01-01T00:00:00.123Z', '2030-01-01T00:00:00.999Z', '2030-06-30T23:59:59.000Z'];
        for (const iso of cases) {
          const stamp =
            store.dialect === 'postgres'
              ? sql`${iso}::timestamptz + interval '0.000999 seconds'`
              : sql`${iso}`;
          await sql`update services set created_at = ${iso}, last_seen_up = ${stamp} where id = ${svc.id}`.execute(
            store.db,
          );
          const [listed] = await reg.list();
          expect(listed?.createdAt.toISOString()).to.equal(iso);
          expect(listed?.lastSeenUp?.toISOString()).to.equal(iso);
        }
      });

      it('isUp compares a heartbeat with a database time', async () => {
        const [reg] = await registry({ serviceDownTimeSec: 60 });
        const updatedAt = new Date('2030-01-01T00:00:00Z');
        expect(reg.isUp({ updatedAt }, new Date('2030-01-01T00:01:00Z'))).to.equal(true);
        expect(reg.isUp({ updatedAt }, new Date('2030-01-01T00:01:00.001Z'))).to.equal(false);
      });

      it('lists by binary, topic and host', async () => {
        const [reg] = await registry();
        await reg.register({ host: 'st-1', binary: 'stratus-volume', topic: 'volume', version: '1' });
        await reg.register({ host: 'st-2', binary: 'stratus-volume', topic: 'volume', version: '1' });
        await reg.register({ host: 'st-1', binary: 'stratus-compute', topic: 'compute', version: '1' });
        const names = (rs: { host: string; binary: string }[]) => rs.map((r) => `${r.host}/${r.binary}`);
        expect(names(await reg.list())).to.deep.equal([
          'st-1/stratus-compute',
          'st-1/stratus-volume',
          'st-2/stratus-volume',
        ]);
        expect(names(await reg.list({ binary: 'stratus-volume' }))).to.deep.equal([
          'st-1/stratus-volume',
          'st-2/stratus-volume',
        ]);
        expect(names(await reg.list({ topic: 'compute' }))).to.deep.equal(['st-1/stratus-compute']);
        expect(names(await reg.list({ host: 'st-2' }))).to.deep.equal(['st-2/stratus-volume']);
        expect(names(await reg.list({ host: 'st-2', topic: 'compute' }))).to.deep.equal([]);
      });

      it('disables with a reason and enables again, without counting as a heartbeat', async () => {
        const [reg, store] = await registry();
        await reg.register({ host: 'st-1', binary: 'stratus-volume', topic: 'volume', version: '1' });
        await reg.register({ host: 'st-2', binary: 'stratus-volume', topic: 'volume', version: '1' });
        await ageHeartbeat(store, 'st-1', 'stratus-volume', 30);
        const before = await reg.get('st-1', 'stratus-volume');

        const disabled = await reg.setDisabled('st-1', 'stratus-volume', true, 'disk replacement');
        expect(disabled).to.include({ disabled: true, disabledReason: 'disk replacement' });
        expect(disabled.updatedAt.getTime()).to.equal(before?.updatedAt.getTime());
        expect((await reg.list()).map((r) => r.host)).to.deep.equal(['st-2']);
        expect((await reg.list({ includeDisabled: true })).map((r) => r.host)).to.deep.equal([
          'st-1',
          'st-2',
        ]);

        const enabled = await reg.setDisabled('st-1', 'stratus-volume', false);
        expect(enabled).to.include({ disabled: false, disabledReason: null });
        expect((await reg.list()).map((r) => r.host)).to.deep.equal(['st-1', 'st-2']);

        const missing = await expectReject(reg.setDisabled('nope', 'stratus-volume', true));
        expect(missing.code).to.equal('NOT_FOUND');
      });

      it('deletes a killed service', async () => {
        const [reg] = await registry();
        await reg.register({ host: 'st-1', binary: 'stratus-volume', topic: 'volume', version: '1' });
        expect(await reg.delete('st-1', 'stratus-volume')).to.equal(true);
        expect(await reg.get('st-1', 'stratus-volume')).to.equal(undefined);
        expect(await reg.delete('st-1', 'stratus-volume')).to.equal(false);
        const error = await expectReject(reg.reportState({ host: 'st-1', binary: 'stratus-volume' }));
        expect(error.code).to.equal('NOT_FOUND');
      });

      it('refuses to register without a host', async () => {
        const [reg] = await registry();
        const error = await expectReject(reg.register({ host: '', binary: 'b', topic: 't', version: '1' }));
        expect(error.code).to.equal('INVALID_INPUT');
        expect(error.message).to.contain('/host');
      });
    });

    describe('transitionStatus', () => {
      async function volumes(): Promise<Kysely<AnyDatabase>> {
        const store = await target.open({ poolSize: 12 });
        await migrate(store, [coreMigrations, volumesSet]);
        await store.db.insertInto('test_volumes').values({ id: 'vol-1', status: 'available' }).execute();
        return store.db;
      }

      it('lets exactly one of 50 concurrent callers move available -> deleting', async () => {
        const db = await volumes();
        const results = await Promise.all(
          Array.from({ length: 50 }, () =>
            transitionStatus(db, 'test_volumes', 'vol-1', { from: ['available', 'error'], to: 'deleting' }),
          ),
        );
        expect(results.filter(Boolean)).to.have.length(1);
        const row = await db
          .selectFrom('test_volumes')
          .select('status')
          .where('id', '=', 'vol-1')
          .executeTakeFirst();
        expect(row?.status).to.equal('deleting');
      });

      it('sets extra columns with the status, and refuses a row in another status', async () => {
        const db = await volumes();
        const moved = await transitionStatus(db, 'test_volumes', 'vol-1', {
          from: ['available'],
          to: 'attaching',
          set: { note: 'by test' },
        });
        expect(moved).to.equal(true);
        expect(
          await transitionStatus(db, 'test_volumes', 'vol-1', { from: ['available'], to: 'deleting' }),
        ).to.equal(false);
        expect(
          await transitionStatus(db, 'test_volumes', 'vol-9', { from: ['attaching'], to: 'in-use' }),
        ).to.equal(false);
        const row = await db
          .selectFrom('test_volumes')
          .selectAll()
          .where('id', '=', 'vol-1')
          .executeTakeFirst();
        expect(row).to.include({ status: 'attaching', note: 'by test' });
      });

      it('accepts an SQL expression such as the database clock in set', async () => {
        const db = await volumes();
        await db.schema.alterTable('test_volumes').addColumn('updated_at', 'varchar(64)').execute();
        const ok = await transitionStatus(db, 'test_volumes', 'vol-1', {
          from: ['available'],
          to: 'extending',
          set: { updated_at: currentTimestamp(dialectOf(db)) },
        });
        expect(ok).to.equal(true);
        const row = await db.selectFrom('test_volumes').select('updated_at').executeTakeFirst();
        expect(toDate(row?.updated_at).getUTCFullYear()).to.be.greaterThan(2020);
      });

      it('refuses identifiers that are not plain names', async () => {
        const db = await volumes();
        for (const [table, opts] of [
          ['test_volumes; drop table x', {}],
          ['test_volumes', { idColumn: 'id or 1=1' }],
          ['test_volumes', { statusColumn: '"status"' }],
          ['test_volumes', { set: { 'note = 1, status': 'x' } }],
        ] as const) {
          const error = await expectReject(
            transitionStatus(db, table, 'vol-1', { from: ['available'], to: 'x', ...opts }),
          );
          expect(error.code).to.equal('INVALID_INPUT');
        }
        const empty = await expectReject(
          transitionStatus(db, 'test_volumes', 'vol-1', { from: [], to: 'x' }),
        );
        expect(empty.message).to.contain('/from');
      });
    });
  });
}

describeStore(memoryTarget());
describeStore(fileTarget());
describeStore(pgTarget());
