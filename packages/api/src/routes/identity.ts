import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import {
  ForbiddenError,
  InvalidInputError,
  NotFoundError,
  RateLimitedError,
  StratusError,
  UnauthenticatedError,
} from '@stratus/core';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import Type, { type Static } from 'typebox';
import { authenticate, readHeader, resolveToken } from '../auth.js';
import { type ApiDeps, type Authenticated, baseUrl } from '../deps.js';
import { sendFault } from '../faults.js';
import { DEFAULT_DOMAIN, type Project, type User } from '../identity/store.js';
import type { TokenRecord } from '../identity/tokens.js';
import { keystoneTime, Link, Loose, Nullable, stableId } from './common.js';

/** Keystone's API version served (the last 3.x of the upstream series this mirrors). */
export const IDENTITY_VERSION = 'v3.14';

const DomainRef = Type.Object(
  { id: Type.Optional(Type.String({ minLength: 1 })), name: Type.Optional(Type.String({ minLength: 1 })) },
  { additionalProperties: true },
);

const AuthRequest = Type.Object(
  {
    auth: Type.Object(
      {
        identity: Type.Object(
          {
            methods: Type.Array(Type.String(), { minItems: 1 }),
            password: Type.Optional(
              Type.Object({
                user: Type.Object(
                  {
                    id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
                    name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
                    domain: Type.Optional(DomainRef),
                    password: Type.String({ maxLength: 4096 }),
                  },
                  { additionalProperties: true },
                ),
              }),
            ),
            token: Type.Optional(Type.Object({ id: Type.String({ minLength: 1, maxLength: 512 }) })),
          },
          { additionalProperties: true },
        ),
        scope: Type.Optional(
          Type.Union([
            Type.Literal('unscoped'),
            Type.Object(
              {
                project: Type.Optional(
                  Type.Object(
                    {
                      id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
                      name: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
                      domain: Type.Optional(DomainRef),
                    },
                    { additionalProperties: false },
                  ),
                ),
                domain: Type.Optional(DomainRef),
                system: Type.Optional(Type.Unknown()),
                'OS-TRUST:trust': Type.Optional(Type.Unknown()),
              },
              { additionalProperties: false },
            ),
          ]),
        ),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
type AuthRequest = Static<typeof AuthRequest>;

const NamedDomain = Type.Object({ id: Type.String(), name: Type.String() });
const Endpoint = Type.Object({
  id: Type.String(),
  interface: Type.Union([Type.Literal('public'), Type.Literal('internal'), Type.Literal('admin')]),
  region_id: Type.String(),
  region: Type.String(),
  url: Type.String(),
});
const CatalogEntry = Type.Object({
  id: Type.String(),
  type: Type.String(),
  name: Type.String(),
  endpoints: Type.Array(Endpoint),
});
type CatalogEntry = Static<typeof CatalogEntry>;

export const TokenBody = Type.Object({
  token: Type.Object({
    methods: Type.Array(Type.String()),
    user: Type.Object({
      domain: NamedDomain,
      id: Type.String(),
      name: Type.String(),
      password_expires_at: Type.Null(),
    }),
    audit_ids: Type.Array(Type.String()),
    expires_at: Type.String(),
    issued_at: Type.String(),
    project: Type.Optional(Type.Object({ domain: NamedDomain, id: Type.String(), name: Type.String() })),
    is_domain: Type.Optional(Type.Boolean()),
    roles: Type.Optional(Type.Array(Type.Object({ id: Type.String(), name: Type.String() }))),
    catalog: Type.Optional(Type.Array(CatalogEntry)),
  }),
});
type TokenBody = Static<typeof TokenBody>;

const VersionDoc = Type.Object({
  id: Type.String(),
  status: Type.String(),
  updated: Type.String(),
  links: Type.Array(Link),
  'media-types': Type.Array(Type.Object({ base: Type.String(), type: Type.String() })),
  version: Type.Optional(Type.String()),
  min_version: Type.Optional(Type.String()),
});

const ProjectBody = Loose({
  id: Type.String(),
  name: Type.String(),
  domain_id: Type.String(),
  enabled: Type.Boolean(),
  is_domain: Type.Boolean(),
  description: Nullable(Type.String()),
});

const TokenQuery = Type.Object(
  { nocatalog: Type.Optional(Type.String()), allow_expired: Type.Optional(Type.String()) },
  { additionalProperties: true },
);

/** Keystone's v3 version document. */
export function identityVersion(base: string) {
  return {
    id: IDENTITY_VERSION,
    status: 'stable',
    updated: '2020-04-07T00:00:00Z',
    links: [{ rel: 'self', href: `${base}/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
  };
}

const INTERFACES = ['public', 'internal', 'admin'] as const;

/** The service catalog of a project-scoped token: every API on this one port. */
export function serviceCatalog(base: string, projectId: string, region: string): CatalogEntry[] {
  const service = (type: string, name: string, url: string): CatalogEntry => ({
    id: stableId('service', type),
    type,
    name,
    endpoints: INTERFACES.map((iface) => ({
      id: stableId('endpoint', type, iface),
      interface: iface,
      region_id: region,
      region,
      url,
    })),
  });
  const volume = `${base}/volume/v3/${projectId}`;
  return [
    service('identity', 'keystone', `${base}/v3`),
    service('compute', 'nova', `${base}/v2.1`),
    // Old clients look for `volumev3`, new ones for `block-storage`, as in devstack's catalog.
    service('block-storage', 'cinder', volume),
    service('volumev3', 'cinderv3', volume),
    service('image', 'glance', `${base}/image`),
  ];
}

function isDefaultDomain(
  domain: { id?: string | undefined; name?: string | undefined } | undefined,
): boolean {
  if (!domain) return true;
  if (domain.id !== undefined && domain.id !== DEFAULT_DOMAIN.id) return false;
  if (domain.name !== undefined && domain.name !== DEFAULT_DOMAIN.name) return false;
  return true;
}

const SUPPORTED_METHODS = new Set(['password', 'token']);

function tokenBody(
  deps: ApiDeps,
  request: FastifyRequest,
  who: { record: TokenRecord; user: User; project: Project | null; roles: readonly string[] },
  withCatalog: boolean,
): TokenBody {
  const { record, user, project, roles } = who;
  const token: TokenBody['token'] = {
    methods: [...record.methods],
    user: { domain: { ...DEFAULT_DOMAIN }, id: user.id, name: user.name, password_expires_at: null },
    audit_ids: record.parentAuditId ? [record.auditId, record.parentAuditId] : [record.auditId],
    expires_at: keystoneTime(record.expiresAt),
    issued_at: keystoneTime(record.issuedAt),
  };
  if (project) {
    token.project = { domain: { ...DEFAULT_DOMAIN }, id: project.id, name: project.name };
    token.is_domain = false;
    token.roles = roles.map((name) => ({ id: stableId('role', name), name }));
    if (withCatalog)
      token.catalog = serviceCatalog(baseUrl(deps.config, request), project.id, deps.config.region);
  }
  return { token };
}

/** Limits on `POST /v3/auth/tokens`, against password guessing and token-issue floods. */
export interface AuthRateLimitOptions {
  /** Length of the counting window, in seconds. Default 300. */
  readonly windowSec: number;
  /** Failed logins naming one user (by name or id) within the window before that user is refused. Default 10. */
  readonly maxFailuresPerUser: number;
  /** Failed logins from one client address within the window before it is refused. Default 50. */
  readonly maxFailuresPerClient: number;
  /** Token requests (failed or not) from one client address within the window. Default 1500. */
  readonly maxRequestsPerClient: number;
}

export const DEFAULT_AUTH_RATE_LIMIT: AuthRateLimitOptions = Object.freeze({
  windowSec: 300,
  maxFailuresPerUser: 10,
  maxFailuresPerClient: 50,
  maxRequestsPerClient: 1500,
});

/** Keys remembered per counter; beyond that, expired windows are swept and then the oldest dropped. */
const MAX_TRACKED_KEYS = 10_000;

/** Fixed-window counters by key (client address, user), in memory: one API process. */
class WindowCounter {
  readonly #windows = new Map<string, { start: number; count: number }>();
  constructor(readonly windowMs: number) {}

  /** Count in the current window of `key`, and seconds until it resets. */
  peek(key: string, now: number): { count: number; retryAfterSec: number } {
    const w = this.#windows.get(key);
    if (!w || now - w.start >= this.windowMs) return { count: 0, retryAfterSec: 0 };
    return { count: w.count, retryAfterSec: Math.max(1, Math.ceil((w.start + this.windowMs - now) / 1000)) };
  }

  add(key: string, now: number): void {
    const w = this.#windows.get(key);
    if (w && now - w.start < this.windowMs) {
      w.count++;
      return;
    }
    this.#windows.delete(key);
    if (this.#windows.size >= MAX_TRACKED_KEYS) this.#sweep(now);
    this.#windows.set(key, { start: now, count: 1 });
  }

  reset(key: string): void {
    this.#windows.delete(key);
  }

  #sweep(now: number): void {
    for (const [key, w] of this.#windows) if (now - w.start >= this.windowMs) this.#windows.delete(key);
    while (this.#windows.size >= MAX_TRACKED_KEYS) {
      const oldest = this.#windows.keys().next().value as string;
      this.#windows.delete(oldest);
    }
  }
}

/** The limiter of `POST /v3/auth/tokens`. */
export class AuthRateLimiter {
  readonly options: AuthRateLimitOptions;
  readonly #requests: WindowCounter;
  readonly #clientFailures: WindowCounter;
  readonly #userFailures: WindowCounter;

  constructor(options: Partial<AuthRateLimitOptions> = {}) {
    this.options = { ...DEFAULT_AUTH_RATE_LIMIT, ...options };
    const ms = this.options.windowSec * 1000;
    this.#requests = new WindowCounter(ms);
    this.#clientFailures = new WindowCounter(ms);
    this.#userFailures = new WindowCounter(ms);
  }

  /**
   * Count one attempt of `client` (naming `user`, when it does).
   * @throws RateLimitedError when a limit is reached; nothing is checked then (not even the password).
   */
  admit(client: string, user: string | undefined): void {
    const now = Date.now();
    const o = this.options;
    const checks: [WindowCounter, string | undefined, number, string][] = [
      [this.#requests, client, o.maxRequestsPerClient, 'token requests from your address'],
      [this.#clientFailures, client, o.maxFailuresPerClient, 'failed logins from your address'],
      [this.#userFailures, user, o.maxFailuresPerUser, 'failed logins for this user'],
    ];
    for (const [counter, key, max, what] of checks) {
      if (key === undefined) continue;
      const { count, retryAfterSec } = counter.peek(key, now);
      if (count >= max) {
        throw new RateLimitedError(`Too many ${what}; retry in ${retryAfterSec} s.`, retryAfterSec);
      }
    }
    this.#requests.add(client, now);
  }

  /** Record a failed login. */
  failed(client: string, user: string | undefined): void {
    const now = Date.now();
    this.#clientFailures.add(client, now);
    if (user !== undefined) this.#userFailures.add(user, now);
  }

  /** A successful login clears its user's failures (not the client's). */
  succeeded(user: string | undefined): void {
    if (user !== undefined) this.#userFailures.reset(user);
  }
}

/** The account a login names, for per-user limits; names are case-folded. */
function loginUserKey(body: AuthRequest): string | undefined {
  const user = body.auth.identity.password?.user;
  if (!user) return undefined;
  if (user.id !== undefined) return `id:${user.id}`;
  return user.name === undefined ? undefined : `name:${user.name.toLowerCase()}`;
}

/**
 * Identity v3: `GET /`, `GET /v3`, `POST|GET|HEAD|DELETE /v3/auth/tokens`, `GET /v3/auth/projects`,
 * `GET /v3/auth/catalog`. Errors use Keystone's `{"error": {code, title, message}}`.
 */
export function identityRoutes(
  deps: ApiDeps,
  options: { rateLimit?: Partial<AuthRateLimitOptions> | false } = {},
): FastifyPluginAsync {
  const limiter = options.rateLimit === false ? undefined : new AuthRateLimiter(options.rateLimit);
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    app.setErrorHandler((error, request, reply) => {
      if (StratusError.is(error, 'RATE_LIMITED')) {
        request.log.warn({ status: 429, client: request.ip }, error.message);
        return reply
          .code(429)
          .header('Retry-After', String(error.details.retryAfterSec))
          .send({ error: { code: 429, title: 'Too Many Requests', message: error.message } });
      }
      return sendFault(request, reply, error, 'identity');
    });
    app.addHook('preHandler', async (request) => {
      if (request.routeOptions.config.public) return;
      await authenticate(deps, request);
    });

    app.get(
      '/',
      {
        config: { public: true },
        schema: {
          response: { 300: Type.Object({ versions: Type.Object({ values: Type.Array(VersionDoc) }) }) },
        },
      },
      async (request, reply) => {
        const base = baseUrl(deps.config, request);
        reply.code(300);
        return {
          versions: {
            values: [
              identityVersion(base),
              // One port serves every API; list compute too so root discovery finds it.
              {
                id: 'v2.1',
                status: 'CURRENT',
                version: '2.1',
                min_version: '2.1',
                updated: '2013-07-23T11:33:21Z',
                links: [{ rel: 'self', href: `${base}/v2.1/` }],
                'media-types': [
                  { base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' },
                ],
              },
            ],
          },
        };
      },
    );

    for (const path of ['/v3', '/v3/']) {
      app.get(
        path,
        { config: { public: true }, schema: { response: { 200: Type.Object({ version: VersionDoc }) } } },
        async (request) => ({ version: identityVersion(baseUrl(deps.config, request)) }),
      );
    }

    app.post(
      '/v3/auth/tokens',
      {
        config: { public: true },
        schema: { body: AuthRequest, querystring: TokenQuery, response: { 201: TokenBody } },
      },
      async (request, reply) => {
        const user = loginUserKey(request.body);
        limiter?.admit(request.ip, user);
        let issued: Issued;
        try {
          issued = await issueToken(deps, request.body);
        } catch (error) {
          if (StratusError.is(error, 'UNAUTHENTICATED')) limiter?.failed(request.ip, user);
          throw error;
        }
        limiter?.succeeded(user);
        const withCatalog = request.query.nocatalog === undefined;
        request.log.info(
          { userId: issued.user.id, projectId: issued.project?.id ?? null, methods: issued.record.methods },
          'token issued',
        );
        reply.code(201).header('X-Subject-Token', issued.token);
        return tokenBody(deps, request, issued, withCatalog);
      },
    );

    /** The subject token of a validate/revoke request, checked against the caller's rights. */
    async function subjectOf(request: FastifyRequest): Promise<Authenticated> {
      const subject = readHeader(request, 'x-subject-token');
      if (!subject) {
        throw new InvalidInputError('Missing token to check', [
          { path: '/headers/X-Subject-Token', message: 'is required: the token to validate or revoke' },
        ]);
      }
      const auth = request.auth as Authenticated;
      const target = subject === auth.token ? auth : await resolveToken(deps, subject);
      if (!target) throw new NotFoundError('Token', `${subject.slice(0, 6)}…`);
      if (!request.ctx.isAdmin && target.user.id !== auth.user.id) {
        throw new ForbiddenError('Only an admin or the token owner may inspect or revoke this token.');
      }
      return target;
    }

    app.get(
      '/v3/auth/tokens',
      { schema: { querystring: TokenQuery, response: { 200: TokenBody } } },
      async (request, reply) => {
        const target = await subjectOf(request);
        reply.header('X-Subject-Token', target.token);
        return tokenBody(deps, request, target, request.query.nocatalog === undefined);
      },
    );

    app.delete('/v3/auth/tokens', async (request, reply) => {
      const target = await subjectOf(request);
      await deps.tokens.revoke(target.token);
      request.log.info({ userId: target.user.id, auditId: target.record.auditId }, 'token revoked');
      return reply.code(204).send();
    });

    app.get(
      '/v3/auth/projects',
      {
        schema: {
          response: {
            200: Type.Object({ projects: Type.Array(ProjectBody), links: Loose({ self: Type.String() }) }),
          },
        },
      },
      async (request) => {
        const base = baseUrl(deps.config, request);
        const projects = await deps.identity.projectsOf((request.auth as Authenticated).user.id);
        return {
          projects: projects.map((p) => ({
            id: p.id,
            name: p.name,
            domain_id: DEFAULT_DOMAIN.id,
            enabled: true,
            is_domain: false,
            parent_id: DEFAULT_DOMAIN.id,
            description: p.description,
            links: { self: `${base}/v3/projects/${p.id}` },
          })),
          links: { self: `${base}/v3/auth/projects`, previous: null, next: null },
        };
      },
    );

    app.get(
      '/v3/auth/catalog',
      {
        schema: {
          response: {
            200: Type.Object({ catalog: Type.Array(CatalogEntry), links: Loose({ self: Type.String() }) }),
          },
        },
      },
      async (request) => {
        const project = (request.auth as Authenticated).project;
        if (!project)
          throw new ForbiddenError('The catalog needs a project-scoped token; scope the token to a project.');
        const base = baseUrl(deps.config, request);
        return {
          catalog: serviceCatalog(base, project.id, deps.config.region),
          links: { self: `${base}/v3/auth/catalog`, previous: null, next: null },
        };
      },
    );
  };
}

interface Issued {
  readonly token: string;
  readonly record: TokenRecord;
  readonly user: User;
  readonly project: Project | null;
  readonly roles: readonly string[];
}

/**
 * Keystone's token issue: authenticate every listed method (password, or an existing token to
 * rescope), then scope to the requested project, else the user's default project, else none.
 * Failures are 401 without saying which part was wrong, as Keystone does; the log says why.
 */
async function issueToken(deps: ApiDeps, body: AuthRequest): Promise<Issued> {
  const { identity, scope } = body.auth;
  const unsupported = identity.methods.filter((m) => !SUPPORTED_METHODS.has(m));
  if (unsupported.length) {
    throw new UnauthenticatedError(
      `Attempted to authenticate with an unsupported method (${unsupported.join(', ')}); use password or token.`,
    );
  }
  let user: User | undefined;
  let parent: TokenRecord | undefined;
  if (identity.methods.includes('password')) {
    const credentials = identity.password?.user;
    if (!credentials) {
      throw new InvalidInputError('Invalid auth request', [
        { path: '/auth/identity/password', message: 'is required when methods include "password"' },
      ]);
    }
    if (credentials.id === undefined && credentials.name === undefined) {
      throw new InvalidInputError('Invalid auth request', [
        { path: '/auth/identity/password/user', message: 'needs an id, or a name and a domain' },
      ]);
    }
    if (credentials.id === undefined && credentials.domain === undefined) {
      throw new InvalidInputError('Invalid auth request', [
        { path: '/auth/identity/password/user/domain', message: 'is required with a user name' },
      ]);
    }
    const candidate =
      credentials.id !== undefined
        ? await deps.identity.userById(credentials.id)
        : isDefaultDomain(credentials.domain)
          ? await deps.identity.userByName(credentials.name as string)
          : undefined;
    const ok = await deps.identity.checkPassword(candidate, credentials.password);
    if (!ok || !candidate) {
      deps.logger.info({ user: credentials.name ?? credentials.id }, 'password authentication failed');
      throw new UnauthenticatedError('The request you have made requires authentication.');
    }
    user = candidate;
  }
  if (identity.methods.includes('token')) {
    const tokenId = identity.token?.id;
    if (!tokenId) {
      throw new InvalidInputError('Invalid auth request', [
        { path: '/auth/identity/token', message: 'is required when methods include "token"' },
      ]);
    }
    const existing = await resolveToken(deps, tokenId);
    if (!existing || (user && existing.user.id !== user.id)) {
      throw new UnauthenticatedError('The request you have made requires authentication.');
    }
    user = existing.user;
    parent = existing.record;
  }
  if (!user) throw new UnauthenticatedError();

  let project: Project | null = null;
  if (scope !== undefined && scope !== 'unscoped') {
    if (scope.domain !== undefined || scope.system !== undefined || scope['OS-TRUST:trust'] !== undefined) {
      throw new InvalidInputError('Unsupported scope', [
        {
          path: '/auth/scope',
          message: 'Stratus issues project-scoped and unscoped tokens only; scope to a project',
        },
      ]);
    }
    const wanted = scope.project;
    if (wanted) {
      if (wanted.id === undefined && (wanted.name === undefined || wanted.domain === undefined)) {
        throw new InvalidInputError('Invalid scope', [
          { path: '/auth/scope/project', message: 'needs an id, or a name and a domain' },
        ]);
      }
      const found =
        wanted.id !== undefined
          ? await deps.identity.projectById(wanted.id)
          : isDefaultDomain(wanted.domain)
            ? await deps.identity.projectByName(wanted.name as string)
            : undefined;
      if (!found) {
        deps.logger.info(
          { userId: user.id, project: wanted.name ?? wanted.id },
          'scope to an unknown project',
        );
        throw new UnauthenticatedError(`User ${user.id} has no access to the requested project.`);
      }
      project = found;
    }
  } else if (scope === undefined && user.defaultProjectId !== null) {
    project = (await deps.identity.projectById(user.defaultProjectId)) ?? null;
  }

  let roles: string[] = [];
  if (project) {
    roles = await deps.identity.rolesOf(user.id, project.id);
    if (roles.length === 0) {
      if (scope === undefined) {
        project = null;
      } else {
        throw new UnauthenticatedError(`User ${user.id} has no access to project ${project.id}.`);
      }
    }
  }

  const ttlEnd = Date.now() + deps.config.tokenTtlSec * 1000;
  // A rescoped token never outlives the token it came from, as in Keystone.
  const expiresAt = new Date(parent ? Math.min(parent.expiresAt.getTime(), ttlEnd) : ttlEnd);
  const methods = identity.methods.filter((m, i) => identity.methods.indexOf(m) === i);
  const { token, record } = await deps.tokens.issue({
    userId: user.id,
    projectId: project?.id ?? null,
    methods,
    expiresAt,
    parentAuditId: parent ? (parent.parentAuditId ?? parent.auditId) : null,
  });
  return { token, record, user, project, roles };
}
