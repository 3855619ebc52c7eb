import { StratusError, type StratusErrorCode } from '@stratus/core';
import { CliError, ExitCode } from './exit.js';
import type { Connection } from './profile.js';

/** Service types of the catalog the CLI uses, with the aliases older catalogs use. */
const SERVICE_TYPES = {
  compute: ['compute'],
  volume: ['block-storage', 'volumev3', 'volume'],
  image: ['image'],
} as const;
export type ServiceType = keyof typeof SERVICE_TYPES;

interface CatalogEntry {
  readonly type: string;
  readonly endpoints: readonly { readonly interface: string; readonly url: string }[];
}

const CODE_BY_STATUS: Record<number, StratusErrorCode> = {
  400: 'INVALID_INPUT',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'INVALID_STATE',
  413: 'QUOTA_EXCEEDED',
  501: 'NOT_SUPPORTED',
  503: 'STORE_UNAVAILABLE',
};

/** A response: status, parsed JSON body (undefined when empty) and the server's clock. */
export interface ApiResponse<T> {
  readonly status: number;
  readonly body: T;
  /** The `Date` header, to compute ages on the server's clock rather than this machine's. */
  readonly serverDate: Date | undefined;
}

/**
 * A client of the Stratus HTTP API (the OpenStack-compatible subset): authenticates with Identity
 * v3, then sends requests to the endpoints of the token's catalog. Failures are typed: HTTP errors
 * become `StratusError`s with the upstream message, an unreachable API or bad credentials a
 * `CliError` with exit code 4.
 */
export class ApiClient {
  readonly connection: Connection;
  readonly token: string;
  readonly projectId: string;
  readonly #catalog: readonly CatalogEntry[];
  readonly #fetch: typeof fetch;

  private constructor(
    connection: Connection,
    token: string,
    projectId: string,
    catalog: readonly CatalogEntry[],
    fetchFn: typeof fetch,
  ) {
    this.connection = connection;
    this.token = token;
    this.projectId = projectId;
    this.#catalog = catalog;
    this.#fetch = fetchFn;
  }

  /** Authenticate (`POST /v3/auth/tokens`, password method, project scope). */
  static async connect(connection: Connection, fetchFn: typeof fetch = fetch): Promise<ApiClient> {
    const url = `${connection.endpoint}/v3/auth/tokens`;
    const body = {
      auth: {
        identity: {
          methods: ['password'],
          password: {
            user: {
              name: connection.username,
              domain: { name: connection.userDomain ?? 'Default' },
              password: connection.password,
            },
          },
        },
        scope: {
          project: { name: connection.project, domain: { name: connection.projectDomain ?? 'Default' } },
        },
      },
    };
    const response = await send(
      fetchFn,
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
      },
      connection,
    );
    const parsed = await readJson(response);
    if (response.status === 401 || response.status === 403) {
      throw new CliError(
        `Authentication as ${connection.username} (project ${connection.project}) at ${connection.endpoint} failed: ${faultMessage(parsed) ?? response.statusText}`,
        {
          exitCode: ExitCode.UNREACHABLE,
          hint: `Check the credentials (from ${connection.source}); stratus user passwd resets a password.`,
        },
      );
    }
    if (!response.ok) throw httpError(response, parsed, `POST ${url}`);
    const token = response.headers.get('x-subject-token');
    const tokenBody = (parsed as { token?: { project?: { id?: string }; catalog?: CatalogEntry[] } }).token;
    if (!token || !tokenBody?.project?.id) {
      throw new CliError(`${connection.endpoint} answered the login without a project-scoped token`, {
        exitCode: ExitCode.UNREACHABLE,
        hint: 'Is --endpoint the Stratus API (its Identity v3 is at <endpoint>/v3)?',
      });
    }
    return new ApiClient(connection, token, tokenBody.project.id, tokenBody.catalog ?? [], fetchFn);
  }

  /** The public URL of a service from the token's catalog. */
  endpointFor(type: ServiceType): string {
    for (const alias of SERVICE_TYPES[type]) {
      const entry = this.#catalog.find((e) => e.type === alias);
      const endpoint = entry?.endpoints.find((e) => e.interface === 'public') ?? entry?.endpoints[0];
      if (endpoint) return endpoint.url.replace(/\/+$/, '');
    }
    throw new CliError(`The API's catalog has no ${type} endpoint`, {
      exitCode: ExitCode.UNREACHABLE,
      hint: `Is the ${type} part of this deployment running? stratus service list shows what is registered.`,
    });
  }

  /** Sends a request to `<service endpoint><path>`; throws a typed error on any non-2xx answer. */
  async request<T = unknown>(
    service: ServiceType,
    method: string,
    path: string,
    options: { body?: unknown; query?: Record<string, string | number | boolean | undefined> } = {},
  ): Promise<ApiResponse<T>> {
    const url = new URL(`${this.endpointFor(service)}${path}`);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const response = await send(
      this.#fetch,
      url.href,
      {
        method,
        headers: {
          accept: 'application/json',
          'x-auth-token': this.token,
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      },
      this.connection,
    );
    const body = await readJson(response);
    if (!response.ok) throw httpError(response, body, `${method} ${url.pathname}`);
    const date = response.headers.get('date');
    return { status: response.status, body: body as T, serverDate: date ? new Date(date) : undefined };
  }
}

async function send(
  fetchFn: typeof fetch,
  url: string,
  init: RequestInit,
  connection: Connection,
): Promise<Response> {
  try {
    return await fetchFn(url, { ...init, signal: AbortSignal.timeout(60_000) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (error as Error).message;
    throw new CliError(`Cannot reach the Stratus API at ${connection.endpoint} (${why})`, {
      exitCode: ExitCode.UNREACHABLE,
      hint:
        connection.source === 'flags and environment'
          ? 'Check --endpoint / STRATUS_ENDPOINT, and that the API service is running.'
          : `Is "stratus up" still running? (endpoint from ${connection.source})`,
      cause: error,
    });
  }
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The message of an OpenStack error body: `{"error": {...}}` (Keystone) or `{"itemNotFound": {...}}` (Nova, Cinder). */
function faultMessage(body: unknown): string | undefined {
  if (typeof body === 'string') return body.slice(0, 500);
  if (typeof body !== 'object' || body === null) return undefined;
  for (const value of Object.values(body as Record<string, unknown>)) {
    if (
      typeof value === 'object' &&
      value !== null &&
      typeof (value as { message?: unknown }).message === 'string'
    ) {
      return (value as { message: string }).message;
    }
  }
  const message = (body as { message?: unknown }).message;
  return typeof message === 'string' ? message : undefined;
}

function httpError(response: Response, body: unknown, what: string): Error {
  const message = faultMessage(body) ?? `${what} answered ${response.status} ${response.statusText}`;
  if (response.status === 401) {
    return new CliError(`The API refused the token: ${message}`, {
      exitCode: ExitCode.UNREACHABLE,
      hint: 'Log in again (run the command again); check the credentials if it persists.',
    });
  }
  const code = CODE_BY_STATUS[response.status] ?? 'INTERNAL';
  return new StratusError(code, message, {
    httpStatus: response.status,
    details: { request: what, status: response.status },
  });
}
