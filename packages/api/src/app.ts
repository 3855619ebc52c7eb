import { randomUUID } from 'node:crypto';
import {
  ConfigInvalidError,
  InternalError,
  InvalidInputError,
  type Logger,
  type RpcClient,
  ServiceRegistry,
  type Store,
  schemaIssues,
  silentLogger,
  withDefaults,
} from '@stratus/core';
import { ComputeApi } from '@stratus/manager-compute/client';
import { VolumeApi } from '@stratus/manager-volume/client';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifySchemaCompiler,
  LogController,
} from 'fastify';
import type { TSchema } from 'typebox';
import Value from 'typebox/value';
import { ApiConfig } from './config.js';
import type { ApiDeps } from './deps.js';
import { type ApiFamily, sendFault } from './faults.js';
import { IdentityStore } from './identity/store.js';
import { TokenStore } from './identity/tokens.js';
import { ApiMetrics } from './metrics.js';
import { blockStorageRoutes } from './routes/block-storage.js';
import { computeRoutes } from './routes/compute.js';
import { healthRoutes } from './routes/health.js';
import { type AuthRateLimitOptions, identityRoutes } from './routes/identity.js';
import { imageRoutes } from './routes/image.js';

export interface BuildAppOptions {
  /** The store with core's, the API's, the volume and the compute tables (migrated). */
  readonly store: Store;
  /** Sends the volume and compute RPCs. */
  readonly rpc: RpcClient;
  /** `ApiConfig` as written (defaults are applied here), or already resolved. */
  readonly config?: unknown;
  readonly logger?: Logger;
  /** Override collaborators (tests); built from store and rpc otherwise. */
  readonly identity?: IdentityStore;
  readonly tokens?: TokenStore;
  readonly volumes?: VolumeApi;
  readonly compute?: ComputeApi;
  /** Seconds without a heartbeat after which `os-services` reports a service down; default 60. */
  readonly serviceDownTimeSec?: number;
  /**
   * Check every response body against its route's schema and answer 500 on a mismatch. Meant for
   * tests: it makes the declared response schemas a checked contract.
   */
  readonly validateResponses?: boolean;
  /** Limits on `POST /v3/auth/tokens` (defaults: `DEFAULT_AUTH_RATE_LIMIT`); `false` turns them off. */
  readonly authRateLimit?: Partial<AuthRateLimitOptions> | false;
}

/** Apply defaults to an `ApiConfig` and validate it. @throws ConfigInvalidError listing every issue. */
export function resolveApiConfig(raw: unknown = {}): ApiConfig {
  const { value, issues } = withDefaults(ApiConfig, raw);
  if (issues.length) throw new ConfigInvalidError('@stratus/api config', issues);
  const problems = [
    ...duplicates(
      value.flavors.map((f) => f.id),
      '/flavors',
      'id',
    ),
    ...duplicates(
      value.flavors.map((f) => f.name),
      '/flavors',
      'name',
    ),
    ...duplicates(
      value.images.map((i) => i.id),
      '/images',
      'id',
    ),
  ];
  if (problems.length) throw new ConfigInvalidError('@stratus/api config', problems);
  return value;
}

function duplicates(values: string[], path: string, field: string) {
  return values
    .map((v, i) => ({ v, i }))
    .filter(({ v, i }) => values.indexOf(v) !== i)
    .map(({ v, i }) => ({ path: `${path}/${i}/${field}`, message: `${JSON.stringify(v)} is used twice` }));
}

/** A request id from the client is kept when it has the OpenStack form, else a new one is made. */
const REQUEST_ID = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Which upstream API a URL belongs to, for 404s of unknown routes. */
export function familyOfUrl(url: string): ApiFamily {
  if (url.startsWith('/v2.1')) return 'compute';
  if (url.startsWith('/volume') || /^\/v3\/[^/]+\/(volumes|snapshots|os-|limits)/.test(url)) return 'volume';
  if (url.startsWith('/image')) return 'image';
  if (url.startsWith('/v3') || url === '/') return 'identity';
  return 'plain';
}

/**
 * The API as a Fastify instance (not listening): Identity v3 at `/v3`, Block Storage v3 at
 * `/volume/v3/{project_id}` (and `/v3/{project_id}`), Compute v2.1 at `/v2.1`, Image v2 at
 * `/image/v2`, plus `/healthz` and `/metrics`. Use `app.inject()` in tests, `app.listen()` to serve.
 */
export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const config = resolveApiConfig(options.config);
  const logger = (options.logger ?? silentLogger()).child({ component: 'api' });
  const volumes =
    options.volumes ??
    new VolumeApi({
      store: options.store,
      rpc: options.rpc,
      topic: config.volumeTopic,
      maxSizeGiB: config.maxVolumeSizeGiB,
      quotas: {
        volumes: config.quotas.volumes,
        gigabytes: config.quotas.gigabytes,
        snapshots: config.quotas.snapshots,
      },
    });
  const compute =
    options.compute ??
    new ComputeApi({
      store: options.store,
      rpc: options.rpc,
      topic: config.computeTopic,
      volumeApi: volumes,
      volumeTopic: config.volumeTopic,
      flavors: Object.fromEntries(
        config.flavors.map((f) => [f.name, { vcpus: f.vcpus, memoryMiB: f.ramMiB, rootGiB: f.diskGiB }]),
      ),
    });
  const deps: ApiDeps = {
    config,
    store: options.store,
    logger,
    identity: options.identity ?? new IdentityStore(options.store),
    tokens: options.tokens ?? new TokenStore(options.store),
    volumes,
    compute,
    registry: new ServiceRegistry(options.store, {
      serviceDownTimeSec: options.serviceDownTimeSec ?? 60,
    }),
    metrics: new ApiMetrics(),
  };

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ requestIdLogLabel: 'requestId' }),
    bodyLimit: config.bodyLimitBytes,
    requestIdHeader: false,
    genReqId: (raw) => {
      const given = raw.headers['x-openstack-request-id'];
      const id = Array.isArray(given) ? given[0] : given;
      return id && REQUEST_ID.test(id) ? id : `req-${randomUUID()}`;
    },
    // Never echo a client's Host into 5xx error pages or trust forwarded headers blindly.
    trustProxy: false,
    // Router errors (a malformed or overlong URL) come before any route: answer them in the
    // family's format too, without echoing the URL.
    frameworkErrors: (error, request, reply) => {
      const status = error.statusCode === 414 ? 414 : 400;
      const fault = Object.assign(
        new Error(
          status === 414
            ? 'A path segment of the request URL is too long.'
            : 'The request URL is malformed: check its percent-encoding.',
        ),
        { statusCode: status },
      );
      return sendFault(request, reply, fault, familyOfUrl(request.url));
    },
  });
  app.decorate('stratus', deps);
  app.decorateRequest('ctx', null as never);
  app.decorateRequest('auth', undefined);

  // An empty body with Content-Type: application/json (some clients send it on DELETE) is no body.
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '' || (typeof body === 'string' && body.trim() === '')) {
      done(null, undefined);
      return;
    }
    json(request, body as string, done);
  });

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(({ schema, url, method }) =>
    serializerFor(schema as TSchema, `${method} ${url}`, options.validateResponses === true),
  );

  app.addHook('onRequest', async (request, reply) => {
    reply.header('X-Openstack-Request-Id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    deps.metrics.observe(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
  });

  app.setNotFoundHandler((request, reply) => {
    const family = familyOfUrl(request.url);
    const error = Object.assign(new Error(`No route ${request.method} ${request.url.split('?')[0]}`), {
      statusCode: 404,
    });
    return sendFault(request, reply, error, family);
  });
  // Errors outside any family (health, metrics, body parsing before routing) use Keystone's format.
  app.setErrorHandler((error, request, reply) => sendFault(request, reply, error, familyOfUrl(request.url)));

  await app.register(healthRoutes(deps));
  await app.register(
    identityRoutes(deps, options.authRateLimit === undefined ? {} : { rateLimit: options.authRateLimit }),
  );
  await app.register(blockStorageRoutes(deps), { prefix: '/volume' });
  await app.register(blockStorageRoutes(deps, { bare: true }));
  await app.register(computeRoutes(deps), { prefix: '/v2.1' });
  await app.register(imageRoutes(deps), { prefix: '/image' });
  await app.ready();
  return app;
}

/**
 * Validate with typebox (compiled once per schema); query strings, params and headers are
 * converted first (`?limit=5` → 5). A failure is an InvalidInputError naming every field.
 */
const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  return (value: unknown) => {
    const converted = httpPart === 'body' ? value : Value.Convert(schema, value);
    const issues = schemaIssues(schema, converted);
    if (issues.length === 0) return { value: converted };
    const where = httpPart === 'body' ? 'request body' : (httpPart ?? 'request');
    const fields = issues.map((i) => ({ path: i.path, message: i.message }));
    return { error: new InvalidInputError(`Invalid ${where}`, fields) };
  };
};

function serializerFor(schema: TSchema, route: string, validate: boolean) {
  return (data: unknown): string => {
    if (validate) {
      const issues = schemaIssues(schema, data);
      if (issues.length) {
        throw new InternalError(`Response of ${route} does not match its schema`, { details: { issues } });
      }
    }
    return JSON.stringify(data);
  };
}

/** Route handler helper type: a Fastify request/reply pair. */
export type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
