import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { sql } from 'kysely';
import { StratusError } from '../../src/errors.js';
import {
  classifyStoreError,
  coreMigrations,
  defaultDatabaseUrl,
  migrate,
  openDatabase,
  redactUrl,
  ServiceRegistry,
} from '../../src/store/index.js';
import { PG_URL, pgUnavailableReason, requireTarget, uniqueSchema, withPgClient } from './targets.js';

const here = dirname(fileURLToPath(import.meta.url));

async function rejection(promise: Promise<unknown>): Promise<StratusError> {
  try {
    await promise;
  } catch (error) {
    expect(StratusError.is(error), `not a StratusError: ${String(error)}`).to.equal(true);
    return error as StratusError;
  }
  throw new Error('expected the promise to reject');
}

function notFound(name: string): Error {
  return Object.assign(new Error(`Cannot find package '${name}' imported from /app`), {
    code: 'ERR_MODULE_NOT_FOUND',
  });
}

describe('store: opening and failures', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'stratus-store-'));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('refuses an unknown scheme and lists the supported ones', async () => {
    const error = await rejection(openDatabase('mysql://root:pw@db/stratus'));
    expect(error.code).to.equal('CONFIG_INVALID');
    expect(error.message).to.contain('sqlite:').and.contain('postgres:').and.contain('postgresql:');
    expect(error.message).not.to.contain(':pw@');
  });

  it('names the package to add when the PostgreSQL driver is missing', async () => {
    const error = await rejection(
      openDatabase('postgres://u:secret@127.0.0.1/db', {
        importDriver: async (name) => Promise.reject(notFound(name)),
      }),
    );
    expect(error.code).to.equal('CONFIG_INVALID');
    expect(error.message).to.contain('pnpm add pg');
    expect(error.details).to.include({ package: 'pg' });
  });

  it('names the package to add when the SQLite driver is missing', async () => {
    const error = await rejection(
      openDatabase('sqlite::memory:', { importDriver: async (name) => Promise.reject(notFound(name)) }),
    );
    expect(error.message).to.contain('pnpm add better-sqlite3');
  });

  it('loads only the driver its URL needs', async () => {
    const loaded: string[] = [];
    const store = await openDatabase('sqlite::memory:', {
      importDriver: async (name) => {
        loaded.push(name);
        return import(name);
      },
    });
    await store.close();
    expect(loaded).to.deep.equal(['better-sqlite3']);
  });

  it('creates the embedded default database and its folder, in WAL mode with foreign keys', async () => {
    const dataDir = join(tmp, 'nested', 'data');
    const url = defaultDatabaseUrl(dataDir);
    expect(url).to.equal(`sqlite:${join(dataDir, 'stratus.db')}`);
    const store = await openDatabase(url);
    try {
      expect(existsSync(join(dataDir, 'stratus.db'))).to.equal(true);
      const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(store.db);
      expect(mode.rows[0]?.journal_mode).to.equal('wal');
      const fk = await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(store.db);
      expect(fk.rows[0]?.foreign_keys).to.equal(1);
      expect(store.dialect).to.equal('sqlite');
    } finally {
      await store.close();
    }
  });

  it('redacts passwords from the URL it exposes', async () => {
    expect(redactUrl('postgres://admin:s3cr3t@db.example:5432/stratus')).to.equal(
      'postgres://admin:***@db.example:5432/stratus',
    );
    expect(redactUrl('postgresql://db/stratus?user=a&password=s3cr3t')).not.to.contain('s3cr3t');
    expect(redactUrl('sqlite:/var/lib/stratus/stratus.db')).to.equal('sqlite:/var/lib/stratus/stratus.db');
    const store = await openDatabase('postgres://admin:s3cr3t@127.0.0.1:1/stratus');
    try {
      expect(store.url).to.equal('postgres://admin:***@127.0.0.1:1/stratus');
      expect(String(store)).not.to.contain('s3cr3t');
      expect(JSON.stringify(store)).not.to.contain('s3cr3t');
    } finally {
      await store.close();
    }
  });

  it('turns an unreachable PostgreSQL into a retryable StoreUnavailableError', async () => {
    const store = await openDatabase('postgres://postgres:s3cr3t@127.0.0.1:1/test');
    try {
      const error = await rejection(store.now());
      expect(error.code).to.equal('STORE_UNAVAILABLE');
      expect(error.name).to.equal('StoreUnavailable');
      expect(error.retryable).to.equal(true);
      expect(error.message).to.contain('ECONNREFUSED').and.contain('127.0.0.1:1');
      expect(error.message).not.to.contain('s3cr3t');

      const registry = new ServiceRegistry(store);
      const beat = await rejection(registry.reportState({ host: 'st-1', binary: 'stratus-volume' }));
      expect(beat.code).to.equal('STORE_UNAVAILABLE');
      expect(beat.message).to.contain('report state of service st-1/stratus-volume');
    } finally {
      await store.close();
    }
  });

  it('a PostgreSQL connection reset during a query fails that query as retryable; the process lives on', async function () {
    await requireTarget(this, { name: 'postgres', available: pgUnavailableReason });
    // A TCP proxy to PostgreSQL whose sockets the test resets (RST), as a network failure would.
    const target = new URL(PG_URL);
    const sockets: Socket[] = [];
    const proxy = createServer((client) => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      sockets.push(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      // A reset client does not end the pipe: without this the upstream socket (and mocha) stays open.
      client.on('close', () => upstream.destroy());
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const url = new URL(PG_URL);
    url.hostname = '127.0.0.1';
    url.port = String((proxy.address() as AddressInfo).port);
    const store = await openDatabase(url.toString(), { poolSize: 1 });
    try {
      const outcome = sql`select pg_sleep(10)`.execute(store.db).then(
        () => new Error('the query survived its connection'),
        (e: unknown) => classifyStoreError(e),
      );
      for (let i = 0; i < 100 && sockets.length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      for (const socket of sockets) socket.resetAndDestroy();
      const error = await outcome;
      expect(StratusError.is(error), String(error)).to.equal(true);
      expect((error as StratusError).code).to.equal('STORE_UNAVAILABLE');
      expect((error as StratusError).retryable).to.equal(true);
      // The client emitted 'error' while checked out for the query: handled, so nothing was
      // thrown at the process (mocha would report it), and the pool replaces the connection.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await store.now()).to.be.instanceOf(Date);
    } finally {
      await store.close();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('turns SQLite still locked after busy_timeout into StoreUnavailableError', async () => {
    const file = join(tmp, 'busy.db');
    const setup = await openDatabase(`sqlite:${file}`);
    await migrate(setup, [coreMigrations]);
    await setup.close();

    const holder = new Database(file);
    holder.exec('BEGIN IMMEDIATE');
    const store = await openDatabase(`sqlite:${file}`, { busyTimeoutMs: 50 });
    try {
      const error = await rejection(
        new ServiceRegistry(store).register({
          host: 'st-1',
          binary: 'stratus-volume',
          topic: 'volume',
          version: '1',
        }),
      );
      expect(error.code).to.equal('STORE_UNAVAILABLE');
      expect(error.retryable).to.equal(true);
      expect(error.details).to.include({ driverCode: 'SQLITE_BUSY' });
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
      await store.close();
    }
  });

  it('classifies driver errors by code and message', () => {
    const cases: [unknown, string][] = [
      [Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' }), 'STORE_UNAVAILABLE'],
      [Object.assign(new Error('getaddrinfo ENOTFOUND db'), { code: 'ENOTFOUND' }), 'STORE_UNAVAILABLE'],
      [
        Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
        'STORE_UNAVAILABLE',
      ],
      [
        Object.assign(new Error('the database system is starting up'), { code: '57P03' }),
        'STORE_UNAVAILABLE',
      ],
      [Object.assign(new Error('connection failure'), { code: '08006' }), 'STORE_UNAVAILABLE'],
      [new Error('Connection terminated unexpectedly'), 'STORE_UNAVAILABLE'],
      [
        new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })], ''),
        'STORE_UNAVAILABLE',
      ],
      [Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }), 'STORE_UNAVAILABLE'],
      [Object.assign(new Error('duplicate key value'), { code: '23505' }), 'CONFLICT'],
      [Object.assign(new Error('relation "x" does not exist'), { code: '42P01' }), 'STORE_FAILURE'],
      [Object.assign(new Error('no such table: x'), { code: 'SQLITE_ERROR' }), 'STORE_FAILURE'],
      ['a string', 'STORE_FAILURE'],
    ];
    for (const [input, code] of cases) {
      const error = classifyStoreError(input, { operation: 'test' });
      expect(error.code, String(input)).to.equal(code);
      expect(error.retryable, String(input)).to.equal(code === 'STORE_UNAVAILABLE');
      if (typeof input === 'object') expect(error.cause).to.equal(input);
    }
    const typed = new StratusError('NOT_FOUND', 'gone');
    expect(classifyStoreError(typed)).to.equal(typed);
  });
});

describe('store: two processes migrating one PostgreSQL database', () => {
  const schema = uniqueSchema();
  before(async function () {
    this.timeout(15000);
    await requireTarget(this, { name: 'postgres', available: pgUnavailableReason });
    await withPgClient((c) => c.query(`create schema ${schema}`));
  });
  after(async () => {
    if (!(await pgUnavailableReason()))
      await withPgClient((c) => c.query(`drop schema if exists ${schema} cascade`));
  });

  function child(): {
    ready: Promise<void>;
    go(): void;
    done: Promise<{ code: number | null; out: string; err: string }>;
  } {
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', join(here, 'fixtures', 'migrate-child.ts'), PG_URL, schema],
      {
        cwd: join(here, '..', '..'),
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    let markReady: () => void = () => {};
    const ready = new Promise<void>((resolve) => {
      markReady = resolve;
    });
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('ready\n')) markReady();
    });
    proc.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      proc.on('close', (code) => {
        markReady();
        resolve({ code, out, err });
      });
    });
    return { ready, go: () => proc.stdin.write('go\n'), done };
  }

  it('both succeed and each migration is applied exactly once', async function () {
    this.timeout(60000);
    const a = child();
    const b = child();
    await Promise.all([a.ready, b.ready]);
    a.go();
    b.go();
    const results = await Promise.all([a.done, b.done]);
    for (const r of results) expect(r.code, r.err).to.equal(0);

    const applied = results.flatMap(
      (r) => JSON.parse(r.out.split('\n')[1] ?? '[]') as { namespace: string; name: string }[],
    );
    expect(applied.map((m) => `${m.namespace}/${m.name}`).sort()).to.deep.equal([
      'core/0001_services',
      'core/0002_services_binary_host_idx',
      'slow/0001_slow_table',
      'slow/0002_slow_index',
    ]);
    const rows = await withPgClient((c) =>
      c.query(`select namespace, name from ${schema}.stratus_migrations order by namespace, name`),
    );
    expect(rows.rowCount).to.equal(4);
  });
});
