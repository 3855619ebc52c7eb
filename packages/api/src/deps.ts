import type { Logger, RequestContext, ServiceRegistry, Store } from '@stratus/core';
import type { ComputeApi } from '@stratus/manager-compute/client';
import type { VolumeApi } from '@stratus/manager-volume/client';
import type { FastifyRequest } from 'fastify';
import type { ApiConfig } from './config.js';
import type { IdentityStore, Project, User } from './identity/store.js';
import type { TokenRecord, TokenStore } from './identity/tokens.js';
import type { ApiMetrics } from './metrics.js';

/** Everything the routes use; built once by `buildApp`. */
export interface ApiDeps {
  readonly config: ApiConfig;
  readonly store: Store;
  readonly logger: Logger;
  readonly identity: IdentityStore;
  readonly tokens: TokenStore;
  readonly volumes: VolumeApi;
  readonly compute: ComputeApi;
  readonly registry: ServiceRegistry;
  readonly metrics: ApiMetrics;
}

/** Who sent an authenticated request: the token and what it resolves to. */
export interface Authenticated {
  readonly token: string;
  readonly record: TokenRecord;
  readonly user: User;
  readonly project: Project | null;
  readonly roles: readonly string[];
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The API's collaborators (identity, tokens, volume and compute APIs, metrics). */
    readonly stratus: ApiDeps;
  }
  interface FastifyRequest {
    /** Set by the auth hook on every authenticated route. */
    ctx: RequestContext;
    auth: Authenticated | undefined;
  }
  interface FastifyContextConfig {
    /** Routes reachable without a token (discovery, token issue, health, metrics). */
    public?: boolean;
  }
}

/** The URL clients reach this API at: config `publicUrl`, else the request's own scheme and Host. */
export function baseUrl(config: ApiConfig, request: FastifyRequest): string {
  if (config.publicUrl) return config.publicUrl.replace(/\/+$/, '');
  return `${request.protocol}://${request.host}`;
}

/** The catalog roots, all on this one port. */
export const PATHS = {
  identity: '/v3',
  volume: '/volume',
  compute: '/v2.1',
  image: '/image',
} as const;
