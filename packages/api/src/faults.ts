import { StratusError } from '@stratus/core';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

/** Which upstream API a route imitates; decides the error body format and some statuses. */
export type ApiFamily = 'identity' | 'volume' | 'compute' | 'image' | 'plain';

/** Nova's and Cinder's fault names by status (`nova/api/openstack/wsgi.py` `Fault._fault_names`). */
const FAULT_NAMES: Readonly<Record<number, string>> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  406: 'notAcceptable',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  429: 'overLimit',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

/** Keystone's titles (and Glance's status lines). */
const TITLES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** What every 5xx says to the client; the details go to the log. */
export const INTERNAL_MESSAGE =
  'The server has either erred or is incapable of performing the requested operation.';

export interface Fault {
  readonly status: number;
  readonly message: string;
  /** True when the error is the caller's doing (logged without a stack). */
  readonly expected: boolean;
}

/**
 * The HTTP status and message an error becomes, as the upstream service of `family` answers:
 * Cinder reports a wrong state as 400 ("Invalid volume: ..."), Nova as 409; Nova reports an
 * exceeded quota as 403, Cinder as 413. Unexpected errors become a generic 500.
 */
export function faultOf(error: unknown, family: ApiFamily): Fault {
  if (StratusError.is(error)) {
    const message = error.message;
    switch (error.code) {
      case 'NOT_FOUND':
        return { status: 404, message, expected: true };
      case 'INVALID_INPUT':
      case 'UNSUPPORTED_VERSION':
        return { status: 400, message, expected: true };
      case 'INVALID_STATE':
        return family === 'volume'
          ? { status: 400, message: `Invalid volume: ${message}`, expected: true }
          : { status: 409, message, expected: true };
      case 'CONFLICT':
        return { status: 409, message, expected: true };
      case 'QUOTA_EXCEEDED':
        return { status: family === 'compute' ? 403 : 413, message, expected: true };
      case 'UNAUTHENTICATED':
        return { status: 401, message, expected: true };
      case 'RATE_LIMITED':
        return { status: 429, message, expected: true };
      case 'FORBIDDEN':
        return { status: 403, message, expected: true };
      case 'NOT_SUPPORTED':
        return { status: 501, message, expected: true };
      case 'STORE_UNAVAILABLE':
      case 'TRANSPORT_UNAVAILABLE':
      case 'TIMEOUT':
        return {
          status: 503,
          message: 'The service is temporarily unavailable; retry in a moment.',
          expected: false,
        };
      default:
        return { status: 500, message: INTERNAL_MESSAGE, expected: false };
    }
  }
  const fastifyError = error as Partial<FastifyError> & { status?: number };
  const status = fastifyError.statusCode ?? fastifyError.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { status, message: clientMessage(fastifyError, status), expected: true };
  }
  return { status: 500, message: INTERNAL_MESSAGE, expected: false };
}

function clientMessage(error: Partial<FastifyError>, status: number): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'Malformed request body: send a JSON object with Content-Type: application/json.';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'Request is too large.';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Unsupported Content-Type: send application/json.';
    default:
      if (error instanceof SyntaxError) {
        return 'Malformed request body: send a JSON object with Content-Type: application/json.';
      }
      return status === 404
        ? 'The resource could not be found.'
        : (error.message ?? TITLES[status] ?? 'Error');
  }
}

/** The body of a fault in the format of `family`. */
export function faultBody(family: ApiFamily, status: number, message: string): unknown {
  switch (family) {
    case 'identity':
      return { error: { code: status, title: TITLES[status] ?? 'Error', message } };
    case 'volume':
    case 'compute':
      // Keystonemiddleware answers unauthenticated requests for every service the Keystone way.
      if (status === 401) return { error: { code: 401, title: 'Unauthorized', message } };
      return { [FAULT_NAMES[status] ?? 'computeFault']: { code: status, message } };
    case 'image':
      if (status === 401) return { error: { code: 401, title: 'Unauthorized', message } };
      return `${status} ${TITLES[status] ?? 'Error'}\n\n${message}\n\n`;
    default:
      return { error: { code: status, title: TITLES[status] ?? 'Error', message } };
  }
}

/** Send `error` the way `family`'s upstream service would, logging unexpected errors with their stack. */
export function sendFault(
  request: FastifyRequest,
  reply: FastifyReply,
  error: unknown,
  family: ApiFamily,
): FastifyReply {
  const fault = faultOf(error, family);
  if (fault.expected) {
    request.log.info({ status: fault.status, code: (error as { code?: string }).code }, fault.message);
  } else {
    request.log.error({ err: error }, `request failed: ${(error as Error)?.message ?? String(error)}`);
  }
  if (fault.status === 401) {
    reply.header('WWW-Authenticate', 'Keystone uri="/v3"');
  }
  const body = faultBody(family, fault.status, fault.message);
  reply.code(fault.status);
  if (typeof body === 'string') reply.type('text/plain; charset=UTF-8');
  return reply.send(body);
}
