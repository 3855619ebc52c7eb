import { createLogger, type Logger } from '@stratus/core';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

/** One route as Fastify serves it: `GET /v2.1/servers/:server_id`. */
export interface RouteEntry {
  readonly method: string;
  readonly url: string;
}

/**
 * Every route of `app`, read from Fastify's own route tree (`printRoutes`), so a route added later
 * is walked by the security tests without anyone listing it.
 */
export function routesOf(app: FastifyInstance): RouteEntry[] {
  const stack: string[] = [];
  const routes: RouteEntry[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const at = line.indexOf('── ');
    if (at < 0) continue;
    const depth = Math.round((at - 1) / 4);
    const match = /^(\S+)(?: \(([^)]*)\))?$/.exec(line.slice(at + 3).trim());
    if (!match) continue;
    stack.length = depth;
    const url = (stack[depth - 1] ?? '') + (match[1] as string);
    stack[depth] = url;
    for (const method of (match[2] ?? '').split(',').map((m) => m.trim())) {
      if (method) routes.push({ method, url });
    }
  }
  return routes;
}

/** A pino logger at `trace` keeping every line, raw text and parsed. */
export function captureLogger(): { logger: Logger; text: string[]; lines: Record<string, unknown>[] } {
  const text: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: 'trace',
    destination: {
      write: (line: string) => {
        text.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  });
  return { logger, text, lines };
}

/**
 * True when the response is a typed failure in one of the upstream formats (Keystone's
 * `{error: {code, title, message}}`, Nova's and Cinder's `{<faultName>: {code, message}}`,
 * Glance's text) whose code equals the status.
 */
export function isTypedFault(res: LightMyRequestResponse, method: string): boolean {
  if (res.statusCode < 400) return false;
  if (method === 'HEAD') return true;
  if (res.headers['content-type']?.toString().startsWith('text/plain')) {
    return res.body.startsWith(`${res.statusCode} `);
  }
  let body: unknown;
  try {
    body = res.json();
  } catch {
    return false;
  }
  if (typeof body !== 'object' || body === null) return false;
  const values = Object.values(body as Record<string, unknown>);
  if (values.length !== 1) return false;
  const fault = values[0] as { code?: unknown; message?: unknown };
  return fault?.code === res.statusCode && typeof fault.message === 'string';
}
