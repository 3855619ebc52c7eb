import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type OpenDatabaseOptions, openDatabase, type Store } from '../../src/store/index.js';

/** PostgreSQL used by the store tests; `STRATUS_TEST_PG_URL` overrides. */
export const PG_URL = process.env.STRATUS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** One database the shared suite runs against. */
export interface StoreTarget {
  readonly name: string;
  /** Resolves to a reason when the target cannot run here (tests then skip). */
  available(): Promise<string | undefined>;
  /** A fresh, empty database. */
  open(options?: OpenDatabaseOptions): Promise<Store>;
  /** Drops everything `open` created. */
  cleanup(): Promise<void>;
}

export function memoryTarget(): StoreTarget {
  const stores: Store[] = [];
  return {
    name: 'sqlite::memory:',
    available: async () => undefined,
    async open(options) {
      const store = await openDatabase('sqlite::memory:', options);
      stores.push(store);
      return store;
    },
    async cleanup() {
      await Promise.all(stores.splice(0).map((s) => s.close()));
    },
  };
}

export function fileTarget(): StoreTarget {
  const stores: Store[] = [];
  const dirs: string[] = [];
  return {
    name: 'sqlite file',
    available: async () => undefined,
    async open(options) {
      const dir = mkdtempSync(join(tmpdir(), 'stratus-store-'));
      dirs.push(dir);
      const store = await openDatabase(`sqlite:${join(dir, 'stratus.db')}`, options);
      stores.push(store);
      return store;
    },
    async cleanup() {
      await Promise.all(stores.splice(0).map((s) => s.close()));
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
}

let schemaCounter = 0;

/** A uniquely named PostgreSQL schema, for one test's tables. */
export function uniqueSchema(): string {
  schemaCounter += 1;
  return `stratus_t${process.pid}_${Date.now().toString(36)}_${schemaCounter}`;
}

/** Runs `fn` with a short-lived admin client on {@link PG_URL}. */
export async function withPgClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Why PostgreSQL cannot be used here, or undefined when it can. */
export async function pgUnavailableReason(): Promise<string | undefined> {
  try {
    await withPgClient((c) => c.query('select 1'));
    return undefined;
  } catch (error) {
    const e = error as { code?: string; message?: string };
    return `PostgreSQL at ${PG_URL} is unreachable (${e.code ?? e.message ?? String(error)}); set STRATUS_TEST_PG_URL`;
  }
}

export function pgTarget(): StoreTarget {
  const stores: Store[] = [];
  const schemas: string[] = [];
  return {
    name: 'postgres',
    available: pgUnavailableReason,
    async open(options) {
      const schema = uniqueSchema();
      await withPgClient((c) => c.query(`create schema ${schema}`));
      schemas.push(schema);
      const store = await openDatabase(PG_URL, { schema, ...options });
      stores.push(store);
      return store;
    },
    async cleanup() {
      await Promise.all(stores.splice(0).map((s) => s.close()));
      const drop = schemas.splice(0);
      if (drop.length) {
        await withPgClient(async (c) => {
          for (const schema of drop) await c.query(`drop schema if exists ${schema} cascade`);
        });
      }
    },
  };
}

/**
 * Skips the calling suite when its target is unavailable, printing one line; with
 * `CI` set the suite fails instead, so a missing service is never silently green.
 */
export async function requireTarget(
  ctx: Mocha.Context,
  target: Pick<StoreTarget, 'name' | 'available'>,
): Promise<void> {
  const reason = await target.available();
  if (!reason) return;
  if (process.env.CI) throw new Error(`${reason} (CI is set, so this fails instead of skipping)`);
  console.log(`      skipped ${target.name} store tests: ${reason}`);
  ctx.skip();
}
