/**
 * Building blocks for tests of managers and drivers running as services: polling for background
 * work, asserting rejections, request contexts, services on an in-process broker, a switchable
 * database outage, and PostgreSQL suites that skip (or fail under CI) without a database.
 *
 * ```ts
 * import { InProcessCluster, postgresSchemaFixture, waitFor } from '@stratus/testkit/fixtures';
 * ```
 */
export { admin, projectA, projectB } from './fixtures/contexts.js';
export {
  type ClusterSettings,
  InProcessCluster,
  type InProcessClusterOptions,
  type StartServiceOptions,
  TEST_SETTINGS,
  withInstance,
} from './fixtures/in-process-cluster.js';
export {
  type PostgresSchemaFixture,
  type PostgresSchemaFixtureOptions,
  postgresSchemaFixture,
  TEST_PG_URL,
} from './fixtures/postgres.js';
export { StoreOutage } from './fixtures/store-outage.js';
export { type Rejection, rejectionOf, type WaitForOptions, waitFor } from './fixtures/waiting.js';
export { defaultRunner, type SuiteFn, type SuiteRunner } from './runner.js';
