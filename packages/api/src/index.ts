import { definePlugin, type ManagerEnv } from '@stratus/core';
import { computeMigrations } from '@stratus/manager-compute/client';
import { volumeMigrations } from '@stratus/manager-volume/client';
import { ApiConfig } from './config.js';
import { ApiManager } from './manager.js';
import { apiMigrations } from './migrations.js';

export { type BuildAppOptions, buildApp, familyOfUrl, resolveApiConfig } from './app.js';
export { authenticate, resolveToken } from './auth.js';
export {
  ApiConfig,
  ApiQuotas,
  CIRROS_IMAGE_ID,
  DEFAULT_FLAVORS,
  DEFAULT_IMAGES,
  FlavorEntry,
  ImageEntry,
  ProjectEntry,
  UserEntry,
} from './config.js';
export type { ApiDeps, Authenticated } from './deps.js';
export { type ApiFamily, faultBody, faultOf } from './faults.js';
export {
  hashPassword,
  isPasswordHash,
  type PasswordHashOptions,
  verifyPassword,
} from './identity/password.js';
export {
  type AddUserInput,
  type BootstrapResult,
  DEFAULT_DOMAIN,
  IdentityStore,
  newId,
  type Project,
  type User,
} from './identity/store.js';
export { type IssueTokenInput, type TokenRecord, TokenStore, tokenHash } from './identity/tokens.js';
export { ApiManager } from './manager.js';
export { ApiMetrics } from './metrics.js';
export { type ApiDatabase, apiMigrations } from './migrations.js';
export { serviceCatalog } from './routes/identity.js';

/**
 * The API service's manager plugin: `services.api.manager.plugin = "@stratus/api"`. It serves
 * OpenStack-compatible Identity v3, Block Storage v3, Compute v2.1 and Image v2 over HTTP.
 */
const apiPlugin = definePlugin({
  name: '@stratus/api',
  kind: 'manager',
  contract: '^1.0.0',
  description: 'HTTP API service: OpenStack-compatible Identity v3, Block Storage v3, Compute v2.1, Image v2',
  // The volume and compute tables too: the API writes them through VolumeApi and ComputeApi.
  migrations: [volumeMigrations, computeMigrations, apiMigrations],
  config: ApiConfig,
  create: (config, env) => new ApiManager(config, env as ManagerEnv),
});

export default apiPlugin;
export { AuthRateLimiter, type AuthRateLimitOptions, DEFAULT_AUTH_RATE_LIMIT } from './routes/identity.js';
