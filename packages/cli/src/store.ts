import { coreMigrations, type MigrationSet, openDatabase, type Store } from '@stratus/core';
import { checkPlugins, type Deployment } from './deployment.js';
import { CliError } from './exit.js';

/** Core's migration set plus every configured manager's, for `db migrate|status` and `doctor`. */
export async function migrationSets(deployment: Deployment): Promise<MigrationSet[]> {
  const reports = await checkPlugins(deployment);
  const broken = reports.filter((r) => r.kind === 'manager' && !r.ok);
  if (broken.length) {
    throw new CliError(
      `Cannot collect the database migrations: ${broken.map((r) => `${r.at} (${r.spec}): ${r.problem}`).join('; ')}`,
      { hint: 'stratus plugins check shows what is wrong with each plugin.' },
    );
  }
  const sets: MigrationSet[] = [coreMigrations];
  const seen = new Set([coreMigrations.namespace]);
  for (const report of reports) {
    for (const set of report.kind === 'manager' ? (report.manifest?.migrations ?? []) : []) {
      if (seen.has(set.namespace)) continue;
      seen.add(set.namespace);
      sets.push(set);
    }
  }
  return sets;
}

/** Opens the deployment's store, runs `fn`, closes it. */
export async function withStore<T>(deployment: Deployment, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openDatabase(deployment.config.database.url, {
    connectTimeoutMs: 5000,
    sqliteSynchronous: deployment.config.database.sqliteSynchronous,
  });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
