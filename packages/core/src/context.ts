import { randomUUID } from 'node:crypto';
import Type, { type Static } from 'typebox';

/** What crosses the wire with every RPC: who asked, for which project, under which request id. */
export const RequestContextData = Type.Object(
  {
    requestId: Type.String({ minLength: 1 }),
    userId: Type.Union([Type.String(), Type.Null()]),
    projectId: Type.Union([Type.String(), Type.Null()]),
    roles: Type.Array(Type.String()),
    isAdmin: Type.Boolean(),
    readDeleted: Type.Optional(Type.Boolean()),
    timestamp: Type.String(),
  },
  { additionalProperties: true },
);
export type RequestContextData = Static<typeof RequestContextData>;

export interface RequestContextInit {
  readonly requestId?: string;
  readonly userId?: string | null;
  readonly projectId?: string | null;
  readonly roles?: readonly string[];
  readonly isAdmin?: boolean;
  readonly readDeleted?: boolean;
  readonly timestamp?: string;
}

/**
 * Who is acting. Immutable: `elevated()` returns an admin copy for internal work
 * (periodic tasks, cross-service bookkeeping) without changing the caller's context.
 */
export class RequestContext {
  readonly requestId: string;
  readonly userId: string | null;
  readonly projectId: string | null;
  readonly roles: readonly string[];
  readonly isAdmin: boolean;
  readonly readDeleted: boolean;
  readonly timestamp: string;

  constructor(init: RequestContextInit = {}) {
    this.requestId = init.requestId ?? `req-${randomUUID()}`;
    this.userId = init.userId ?? null;
    this.projectId = init.projectId ?? null;
    this.roles = Object.freeze([...(init.roles ?? [])]);
    this.isAdmin = init.isAdmin ?? this.roles.includes('admin');
    this.readDeleted = init.readDeleted ?? false;
    this.timestamp = init.timestamp ?? new Date().toISOString();
    Object.freeze(this);
  }

  /** A context for the service itself: admin, no user or project. */
  static admin(init: Omit<RequestContextInit, 'isAdmin'> = {}): RequestContext {
    return new RequestContext({
      ...init,
      isAdmin: true,
      roles: [...new Set([...(init.roles ?? []), 'admin'])],
    });
  }

  static fromJSON(data: RequestContextData): RequestContext {
    return new RequestContext({
      requestId: data.requestId,
      userId: data.userId,
      projectId: data.projectId,
      roles: data.roles,
      isAdmin: data.isAdmin,
      timestamp: data.timestamp,
      ...(data.readDeleted === undefined ? {} : { readDeleted: data.readDeleted }),
    });
  }

  /** The same request, with admin rights (Nova's `context.elevated()`). */
  elevated(readDeleted = this.readDeleted): RequestContext {
    return new RequestContext({
      ...this.toJSON(),
      isAdmin: true,
      roles: this.roles.includes('admin') ? this.roles : [...this.roles, 'admin'],
      readDeleted,
    });
  }

  hasRole(role: string): boolean {
    return this.roles.includes(role);
  }

  /** True when this context may act on a resource owned by `projectId`. */
  canAccessProject(projectId: string | null): boolean {
    return this.isAdmin || (this.projectId !== null && this.projectId === projectId);
  }

  toJSON(): RequestContextData {
    return {
      requestId: this.requestId,
      userId: this.userId,
      projectId: this.projectId,
      roles: [...this.roles],
      isAdmin: this.isAdmin,
      readDeleted: this.readDeleted,
      timestamp: this.timestamp,
    };
  }
}
