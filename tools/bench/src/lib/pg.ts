import { openDatabase } from '@stratus/core';
import { sql } from 'kysely';
import { PG_ADMIN_URL, PG_DB } from './env.js';

/** Create the bench's own database when missing (other suites share `test`; the bench must not). */
export async function ensureBenchDatabase(): Promise<void> {
  const admin = await openDatabase(PG_ADMIN_URL, { poolSize: 1 });
  try {
    const { rows } = await sql<{
      one: number;
    }>`select 1 as one from pg_database where datname = ${PG_DB}`.execute(admin.db);
    if (rows.length === 0) await sql`create database ${sql.id(PG_DB)}`.execute(admin.db);
  } finally {
    await admin.close();
  }
}
