import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { TestUser } from './all-in-one.js';

/** A logged-in user: token, ids, and request helpers. */
export interface Session {
  readonly token: string;
  readonly userId: string;
  readonly projectId: string;
  /** `/volume/v3/<projectId>` */
  readonly volumeRoot: string;
}

/** Password login scoped to the user's project (by name, in the Default domain). */
export async function login(app: FastifyInstance, user: TestUser): Promise<Session> {
  const res = await app.inject({
    method: 'POST',
    url: '/v3/auth/tokens',
    payload: {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: user.name, domain: { name: 'Default' }, password: user.password } },
        },
        scope: { project: { name: user.project, domain: { id: 'default' } } },
      },
    },
  });
  if (res.statusCode !== 201) throw new Error(`login of ${user.name} failed: ${res.statusCode} ${res.body}`);
  const body = res.json() as { token: { user: { id: string }; project: { id: string } } };
  const projectId = body.token.project.id;
  return {
    token: res.headers['x-subject-token'] as string,
    userId: body.token.user.id,
    projectId,
    volumeRoot: `/volume/v3/${projectId}`,
  };
}

/** An authenticated request (JSON payload). */
export function call(
  app: FastifyInstance,
  session: Session | undefined,
  method: NonNullable<InjectOptions['method']>,
  url: string,
  payload?: unknown,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  const options: InjectOptions = {
    method,
    url,
    headers: { ...(session ? { 'x-auth-token': session.token } : {}), ...headers },
  };
  if (payload !== undefined) options.payload = payload as NonNullable<InjectOptions['payload']>;
  return app.inject(options);
}
