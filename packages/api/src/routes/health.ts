import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import Type from 'typebox';
import type { ApiDeps } from '../deps.js';

const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  checks: Type.Object({ database: Type.String() }),
});

/** `GET /healthz` (no auth: load balancers call it) and `GET /metrics` (Prometheus text). */
export function healthRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get(
      '/healthz',
      { config: { public: true }, schema: { response: { 200: Health, 503: Health } } },
      async (request, reply) => {
        try {
          await deps.store.now();
          return { status: 'ok', checks: { database: 'ok' } };
        } catch (error) {
          request.log.warn({ err: error }, 'health check: database unreachable');
          reply.code(503);
          return { status: 'unavailable', checks: { database: 'unreachable' } };
        }
      },
    );

    app.get('/metrics', { config: { public: true } }, async (_request, reply) => {
      reply.type('text/plain; version=0.0.4; charset=utf-8');
      return deps.metrics.render();
    });
  };
}
