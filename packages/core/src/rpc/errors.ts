import { StratusError, type StratusErrorCode, type StratusErrorOptions } from '../errors.js';
import type { RpcErrorPayload } from './envelope.js';

/** Every `StratusErrorCode` (a Record, so adding a code without listing it here fails to compile). */
const KNOWN_CODES: Readonly<Record<StratusErrorCode, true>> = {
  NOT_FOUND: true,
  INVALID_INPUT: true,
  INVALID_STATE: true,
  CONFLICT: true,
  QUOTA_EXCEEDED: true,
  UNAUTHENTICATED: true,
  FORBIDDEN: true,
  TIMEOUT: true,
  UNSUPPORTED_VERSION: true,
  NOT_SUPPORTED: true,
  PLUGIN_NOT_FOUND: true,
  PLUGIN_INVALID: true,
  PLUGIN_KIND_MISMATCH: true,
  CONTRACT_MISMATCH: true,
  CONFIG_INVALID: true,
  COMMAND_FAILED: true,
  COMMAND_NOT_ALLOWED: true,
  DRIVER_FAILURE: true,
  STORE_UNAVAILABLE: true,
  STORE_FAILURE: true,
  TRANSPORT_UNAVAILABLE: true,
  REMOTE_ERROR: true,
  INTERNAL: true,
  RATE_LIMITED: true,
};

/**
 * An error raised by the remote handler of a `call`, rebuilt on the caller's side.
 *
 * `code` keeps the remote code when it is a known `StratusErrorCode`, so callers branch the same
 * way whether the error happened locally or remotely (`StratusError.is(e, 'NOT_FOUND')`, and the
 * API maps it to the same HTTP status); an unknown code becomes `REMOTE_ERROR`. `type` is the
 * remote class name (`NotFound`, `TypeError`), `remoteCode` the code exactly as sent. Check for a
 * remote origin with `isRemoteError(e)`.
 */
export class RemoteError extends StratusError {
  override readonly name = 'RemoteError';
  /** The remote error's class name. */
  readonly type: string;
  /** The remote code as sent, even when it is not a known `StratusErrorCode`. */
  readonly remoteCode: string;

  constructor(payload: RpcErrorPayload, options: StratusErrorOptions = {}) {
    const code = Object.hasOwn(KNOWN_CODES, payload.code)
      ? (payload.code as StratusErrorCode)
      : 'REMOTE_ERROR';
    super(code, payload.message, {
      retryable: payload.retryable,
      ...(payload.httpStatus === undefined ? {} : { httpStatus: payload.httpStatus }),
      ...options,
      details: { ...payload.data, ...options.details },
    });
    Object.defineProperty(this, REMOTE_BRAND, { value: true });
    this.type = payload.type;
    this.remoteCode = payload.code;
  }

  /** The error as it crossed the wire, so a handler re-throwing it forwards the original type. */
  toPayload(): RpcErrorPayload {
    return {
      type: this.type,
      code: this.remoteCode,
      message: this.message,
      data: { ...this.details },
      retryable: this.retryable,
      httpStatus: this.httpStatus,
    };
  }
}

const REMOTE_BRAND = Symbol.for('@stratus/core:remote-error');

/** True for a `RemoteError` from any copy of @stratus/core. */
export function isRemoteError(value: unknown): value is RemoteError {
  return StratusError.is(value) && (value as unknown as Record<symbol, unknown>)[REMOTE_BRAND] === true;
}

/**
 * A call named a method the server does not declare (code `NOT_SUPPORTED`: usually version skew or
 * a typo in a client stub). Logged quietly by the server: it is the caller's mistake.
 */
export class UnknownMethodError extends StratusError {
  override readonly name = 'UnknownMethod';
  constructor(topic: string, method: string, namespace: string | null, options: StratusErrorOptions = {}) {
    const where = namespace ? `namespace "${namespace}" of the ${topic} API` : `the ${topic} API`;
    super(
      'NOT_SUPPORTED',
      `Method "${method}" is not declared in ${where}. Check the method name, or upgrade the ${topic} service to a version that has it.`,
      { ...options, details: { topic, method, namespace, ...options.details } },
    );
  }

  override get expected(): boolean {
    return true;
  }
}

/**
 * What a thrown value looks like on the wire. Stratus errors keep name, code and details;
 * anything else travels as `type` = its `name` with code `INTERNAL`.
 */
export function errorToPayload(error: unknown): RpcErrorPayload {
  if (isRemoteError(error)) return error.toPayload();
  if (StratusError.is(error)) {
    return {
      type: error.name,
      code: error.code,
      message: error.message,
      data: { ...error.details },
      retryable: error.retryable,
      httpStatus: error.httpStatus,
    };
  }
  if (error instanceof Error) {
    return {
      type: error.name || 'Error',
      code: 'INTERNAL',
      message: error.message,
      data: {},
      retryable: false,
    };
  }
  return { type: 'Error', code: 'INTERNAL', message: String(error), data: {}, retryable: false };
}
