import {
  Driver,
  definePlugin,
  endpoint,
  Manager,
  type ManagerEnv,
  openDatabase,
  type Store,
  StoreUnavailableError,
} from '@stratus/core';
import { expect } from 'chai';
import sinon from 'sinon';
import Type from 'typebox';
import {
  admin,
  InProcessCluster,
  postgresSchemaFixture,
  projectA,
  projectB,
  rejectionOf,
  StoreOutage,
  waitFor,
  withInstance,
} from '../src/fixtures.js';
import type { SuiteFn, SuiteRunner } from '../src/runner.js';
import { failures, MiniRunner } from './support/mini-runner.js';

class CountingDriver extends Driver {
  closed = 0;
  override async close(): Promise<void> {
    this.closed += 1;
  }
}

class EchoManager extends Manager<CountingDriver> {
  readonly rpcVersion = '1.0';
  readonly endpoints = {
    echo: endpoint(Type.Object({ text: Type.String() }), (_ctx, args) => ({
      text: args.text,
      host: this.host,
    })),
  };
}

const driverManifest = definePlugin({
  name: 'counting-driver',
  kind: 'volume-driver',
  contract: '^1.0.0',
  create: () => new CountingDriver(),
});

const managerManifest = definePlugin({
  name: 'echo-manager',
  kind: 'manager',
  contract: '^1.0.0',
  driverKind: 'volume-driver',
  create: (_config, env) => new EchoManager(env as ManagerEnv),
});

/** A runner that keeps the `before` and `after` hooks a fixture registers, to run them by hand. */
function hookRecorder(): { runner: SuiteRunner; before: SuiteFn[]; after: SuiteFn[] } {
  const before: SuiteFn[] = [];
  const after: SuiteFn[] = [];
  const ignore = () => undefined;
  const runner: SuiteRunner = {
    describe: ignore,
    it: ignore,
    beforeEach: ignore,
    afterEach: ignore,
    before: (fn) => before.push(fn),
    after: (fn) => after.push(fn),
  };
  return { runner, before, after };
}

describe('fixtures', () => {
  afterEach(() => sinon.restore());

  describe('waitFor', () => {
    it('returns the first value that satisfies done, reading again until then', async () => {
      let reads = 0;
      const value = await waitFor(
        async () => ++reads,
        (n) => n === 3,
        'the third read',
      );
      expect(value).to.equal(3);
      expect(reads).to.equal(3);
    });

    it('fails after timeoutMs, naming what it waited for and the last value read', async () => {
      const started = Date.now();
      const error = await rejectionOf(
        waitFor(
          async () => ({ status: 'creating' }),
          (v) => v.status === 'available',
          'volume v1 to be available',
          { timeoutMs: 50, intervalMs: 10 },
        ),
      );
      expect(Date.now() - started).to.be.within(45, 1000);
      expect(error.message).to.equal(
        'timed out waiting for volume v1 to be available; last value: {"status":"creating"}',
      );
    });
  });

  describe('rejectionOf', () => {
    it('returns what the promise rejects with', async () => {
      const error = Object.assign(new Error('gone'), { code: 'NOT_FOUND', details: { id: 'x' } });
      const got = await rejectionOf(Promise.reject(error));
      expect(got).to.equal(error);
      expect(got.code).to.equal('NOT_FOUND');
    });

    it('throws when the promise resolves', async () => {
      let thrown: unknown;
      try {
        await rejectionOf(Promise.resolve('fine'));
      } catch (error) {
        thrown = error;
      }
      expect((thrown as Error)?.message).to.equal('expected the promise to reject, but it resolved');
    });
  });

  it('projectA and projectB are members of different projects; admin is an admin', () => {
    expect(projectA).to.include({ projectId: 'project-a', isAdmin: false });
    expect(projectB).to.include({ projectId: 'project-b', isAdmin: false });
    expect(admin.isAdmin).to.equal(true);
  });

  describe('StoreOutage', () => {
    let raw: Store;
    beforeEach(async () => {
      raw = await openDatabase('sqlite::memory:');
      await raw.db.schema.createTable('items').addColumn('n', 'integer').execute();
      await raw.db
        .insertInto('items' as never)
        .values({ n: 1 } as never)
        .execute();
    });
    afterEach(async () => raw.close());

    it('fails every query of the wrapped store while down, counting them; the original keeps working', async () => {
      const outage = new StoreOutage();
      const flaky = outage.wrap(raw);
      const count = (store: Store) =>
        store.db
          .selectFrom('items' as never)
          .selectAll()
          .execute();
      expect(await count(flaky)).to.have.length(1);

      outage.down = true;
      for (let i = 0; i < 2; i++) {
        const error = await rejectionOf(count(flaky));
        expect(error).to.be.instanceOf(StoreUnavailableError);
      }
      expect(outage.failed).to.equal(2);
      expect(await count(raw)).to.have.length(1);

      outage.down = false;
      expect(await count(flaky)).to.have.length(1);
      expect(outage.failed).to.equal(2);
    });

    it('with downAfterNextUpdate, lets the next UPDATE through and fails what follows', async () => {
      const outage = new StoreOutage();
      const flaky = outage.wrap(raw);
      outage.downAfterNextUpdate = true;
      await flaky.db
        .selectFrom('items' as never)
        .selectAll()
        .execute();
      expect(outage.down).to.equal(false);
      await flaky.db
        .updateTable('items' as never)
        .set({ n: 2 } as never)
        .execute();
      expect(outage.down).to.equal(true);
      expect(
        await rejectionOf(
          flaky.db
            .selectFrom('items' as never)
            .selectAll()
            .execute(),
        ),
      ).to.be.instanceOf(StoreUnavailableError);
      expect(
        await raw.db
          .selectFrom('items' as never)
          .selectAll()
          .execute(),
      ).to.deep.equal([{ n: 2 }]);
    });
  });

  describe('InProcessCluster', () => {
    let cluster: InProcessCluster;
    beforeEach(async () => {
      cluster = new InProcessCluster({ store: await openDatabase('sqlite::memory:'), name: 'fixtures' });
    });
    afterEach(async () => cluster.stop());

    it('starts services on one broker that an rpcClient reaches by host', async () => {
      await cluster.startService({
        name: 'echo',
        host: 'h-1',
        manager: managerManifest,
        driver: driverManifest,
      });
      await cluster.startService({
        name: 'echo',
        host: 'h-2',
        manager: managerManifest,
        driver: driverManifest,
      });
      const rpc = await cluster.rpcClient({ topic: 'echo' });
      expect(await rpc.call(projectA, { host: 'h-2' }, 'echo', { text: 'hi' })).to.deep.equal({
        text: 'hi',
        host: 'h-2',
      });
      expect(cluster.services.map((s) => [s.host, s.state])).to.deep.equal([
        ['h-1', 'running'],
        ['h-2', 'running'],
      ]);
    });

    it('stop() stops every service and closes the store', async () => {
      const service = await cluster.startService({
        name: 'echo',
        host: 'h-1',
        manager: managerManifest,
        driver: driverManifest,
      });
      const store = cluster.store;
      await cluster.stop();
      expect(service.state).to.equal('stopped');
      expect(await rejectionOf(store.now())).to.have.property('message');
      cluster = new InProcessCluster({ store: await openDatabase('sqlite::memory:') });
    });

    it('withInstance hands the same driver to each service start, so it outlives a restart', async () => {
      const driver = new CountingDriver();
      const manifest = withInstance(driverManifest, driver);
      const first = await cluster.startService({
        name: 'echo',
        host: 'h-1',
        manager: managerManifest,
        driver: manifest,
      });
      await first.stop();
      const second = await cluster.startService({
        name: 'echo',
        host: 'h-1',
        manager: managerManifest,
        driver: manifest,
      });
      expect((second.manager as EchoManager).driver).to.equal(driver);
      expect(driver.closed).to.equal(1);
    });

    it('driverEnv gives a driver the host and the cluster folder, and an executor that refuses commands', async () => {
      const env = cluster.driverEnv('h-9');
      expect(env).to.include({ host: 'h-9', dataDir: cluster.tmp });
      const error = await rejectionOf(env.executor.run(['rm', '-rf', '/']));
      expect(error.code).to.equal('COMMAND_NOT_ALLOWED');
    });
  });

  describe('postgresSchemaFixture without a database', () => {
    const unreachable = 'postgres://postgres@127.0.0.1:1/test';
    const ci = process.env.CI;
    afterEach(() => {
      if (ci === undefined) delete process.env.CI;
      else process.env.CI = ci;
    });

    async function runBefore(): Promise<{ skip: sinon.SinonSpy; log: sinon.SinonStub; error?: Error }> {
      const { runner, before, after } = hookRecorder();
      postgresSchemaFixture({ url: unreachable, runner });
      const skip = sinon.spy();
      const log = sinon.stub(console, 'log');
      try {
        await before[0]?.call({ skip });
        return { skip, log };
      } catch (error) {
        return { skip, log, error: error as Error };
      } finally {
        log.restore();
        for (const hook of after) await hook.call({});
      }
    }

    it('skips the suite with one line saying why', async () => {
      delete process.env.CI;
      const { skip, log, error } = await runBefore();
      expect(error).to.equal(undefined);
      expect(skip.calledOnce).to.equal(true);
      expect(log.calledOnce).to.equal(true);
      expect(log.firstCall.args[0]).to.match(
        /^ +skipped: PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:1\/test is unreachable \(.+\); set STRATUS_TEST_PG_URL to run these tests$/,
      );
    });

    it('fails instead when CI is set', async () => {
      process.env.CI = 'true';
      const { skip, error } = await runBefore();
      expect(skip.called).to.equal(false);
      expect(error?.message).to.match(/is unreachable .*CI is set, so this fails instead of skipping/);
    });
  });

  describe('postgresSchemaFixture on PostgreSQL', function () {
    this.timeout(20_000);
    const pg = postgresSchemaFixture({ schemaPrefix: 'stratus_testkit' });

    async function schemaNames(store: Store): Promise<string[]> {
      const schemas = await store.db.introspection.getSchemas();
      return schemas.map((s) => s.name);
    }

    it('gives each freshStore an empty schema of its own, and drops them after the suite', async () => {
      const runner = new MiniRunner();
      let names: string[] = [];
      runner.describe('inner', () => {
        const inner = postgresSchemaFixture({ url: pg.url, schemaPrefix: 'stratus_testkit_inner', runner });
        runner.it('opens two stores', async () => {
          const a = await inner.freshStore();
          const b = await inner.freshStore();
          // The same table in both, each with its own rows: two schemas, each first on its store's path.
          for (const store of [a, b])
            await store.db.schema.createTable('items').addColumn('n', 'integer').execute();
          await a.db
            .insertInto('items' as never)
            .values({ n: 1 } as never)
            .execute();
          expect(
            await b.db
              .selectFrom('items' as never)
              .selectAll()
              .execute(),
          ).to.deep.equal([]);
          names = (await schemaNames(a)).filter((n) =>
            n.startsWith(`stratus_testkit_inner_t${process.pid}_`),
          );
        });
      });
      const outcomes = await runner.run();
      expect(failures(outcomes)).to.deep.equal([]);
      expect(outcomes.map((o) => o.state)).to.deep.equal(['passed']);
      expect(names).to.have.length(2);
      const observer = await pg.freshStore();
      const left = await schemaNames(observer);
      expect(left.filter((n) => names.includes(n))).to.deep.equal([]);
    });
  });
});
