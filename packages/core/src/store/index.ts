export {
  type BooleanColumn,
  type CoreDatabase,
  coreMigrations,
  type ServicesTable,
  type TimestampColumn,
} from './core-migrations.js';
export {
  defaultDatabaseUrl,
  type OpenDatabaseOptions,
  openDatabase,
  redactUrl,
  type Store,
  SUPPORTED_DATABASE_SCHEMES,
} from './database.js';
export {
  type AnyDatabase,
  currentTimestamp,
  dialectOf,
  type SchemaTypes,
  type StoreDialect,
  schemaTypes,
  toBoolean,
  toDate,
  toDateOrNull,
} from './dialect.js';
export {
  type AppliedMigration,
  MIGRATION_LOCK_KEY,
  MIGRATIONS_TABLE,
  type Migration,
  type MigrationContext,
  type MigrationSet,
  type MigrationStatusEntry,
  type MigrationsTable,
  migrate,
  migrationStatus,
  orderMigrationSets,
  tableExists,
} from './migrations.js';
export { type KeysetTable, keysetPage, MAX_PAGE_SIZE, type PageOptions } from './paging.js';
export { PreparedQuery, type QueryRunner } from './prepared.js';
export {
  type HeartbeatResult,
  type ListServicesFilter,
  type RegisterServiceInput,
  type ServiceRecord,
  type ServiceRef,
  ServiceRegistry,
  type ServiceRegistryOptions,
} from './service-registry.js';
export { classifyStoreError, type StoreErrorContext, withStoreErrors } from './store-errors.js';
export { type TransitionOptions, transitionStatus } from './transition.js';
