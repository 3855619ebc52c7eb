import { RequestContext, UnauthenticatedError } from '@stratus/core';
import type { FastifyRequest } from 'fastify';
import type { ApiDeps, Authenticated } from './deps.js';

/** Headers carrying the caller's token, as keystonemiddleware reads them. */
export const AUTH_HEADER = 'x-auth-token';

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Resolve a token to its user, project and roles (read fresh, so a removed role or disabled user
 * takes effect at once). Undefined when it is unknown, expired, revoked, or its user is gone.
 */
export async function resolveToken(deps: ApiDeps, token: string): Promise<Authenticated | undefined> {
  const record = await deps.tokens.validate(token);
  if (!record) return undefined;
  const user = await deps.identity.userById(record.userId);
  if (!user?.enabled) return undefined;
  if (record.projectId === null) return { token, record, user, project: null, roles: [] };
  const project = await deps.identity.projectById(record.projectId);
  if (!project) return undefined;
  const roles = await deps.identity.rolesOf(user.id, project.id);
  // A token whose user lost every role on its project no longer grants anything there.
  if (roles.length === 0) return undefined;
  return { token, record, user, project, roles };
}

/**
 * The auth hook: reads `X-Auth-Token`, sets `request.auth` and `request.ctx` (request id, user,
 * project, roles; admin when the `admin` role is held).
 * @throws UnauthenticatedError (401) when the token is missing or not valid.
 */
export async function authenticate(deps: ApiDeps, request: FastifyRequest): Promise<void> {
  const token = header(request, AUTH_HEADER);
  if (!token) {
    throw new UnauthenticatedError('The request you have made requires authentication: send X-Auth-Token.');
  }
  const auth = await resolveToken(deps, token);
  if (!auth) {
    throw new UnauthenticatedError(
      'The request you have made requires authentication: the token is invalid, expired or revoked; get a new one from POST /v3/auth/tokens.',
    );
  }
  request.auth = auth;
  request.ctx = new RequestContext({
    requestId: String(request.id),
    userId: auth.user.id,
    projectId: auth.project?.id ?? null,
    roles: auth.roles,
    isAdmin: auth.roles.includes('admin'),
  });
  request.log = request.log.child({ userId: auth.user.id, projectId: auth.project?.id ?? null });
}

/** Read a header (first value). */
export { header as readHeader };
