/**
 * oslo.messaging's rabbit wire format, and its mapping to and from core's RPC envelope.
 *
 * Every message body is the JSON of an oslo "message envelope 2.0":
 * `{"oslo.version": "2.0", "oslo.message": "<JSON of the inner message>"}`. The inner message of a
 * request is oslo's flat dict (`method`, `args`, `version`, `namespace`, `_msg_id`, `_reply_q`,
 * `_unique_id`, `_context_<key>`); a reply is `{result, failure, ending, _msg_id, _unique_id}`.
 *
 * Core's `RpcEnvelope` / `RpcReply` map onto that losslessly. Any other JSON object (the transport
 * contract carries arbitrary messages) travels verbatim under `_stratus_raw`, so it survives the
 * trip exactly; an oslo peer never sends or receives those.
 */
import { randomUUID } from 'node:crypto';
import {
  InvalidInputError,
  type RequestContextData,
  RpcEnvelope,
  type RpcErrorPayload,
  RpcErrorPayload as RpcErrorPayloadSchema,
  type TransportMessage,
  validatorOf,
} from '@stratus/core';

/** oslo's `_RPC_ENVELOPE_VERSION`. */
export const OSLO_ENVELOPE_VERSION = '2.0';
const OSLO_ENVELOPE_MAJOR = '2';
export const OSLO_VERSION_KEY = 'oslo.version';
export const OSLO_MESSAGE_KEY = 'oslo.message';
/** Inner key carrying a message that is not an RPC envelope or reply, verbatim. */
export const RAW_KEY = '_stratus_raw';
/** Inner key carrying core's `deadline` (epoch ms); oslo's dispatcher ignores unknown keys. */
export const DEADLINE_KEY = '_stratus_deadline';
/** `module` of failures Stratus sends: not importable in Python, so oslo rebuilds a RemoteError. */
export const STRATUS_FAILURE_MODULE = 'stratus';

const ENVELOPE_KEYS = new Set(['id', 'method', 'args', 'context', 'version', 'namespace', 'deadline']);
const REPLY_KEYS = new Set(['id', 'result', 'error']);

const CONTEXT_PREFIX = '_context_';
/** Context members with a fixed oslo name (and the aliases other OpenStack releases use). */
const CONTEXT_FIXED = new Set([
  'request_id',
  'user_id',
  'user',
  'project_id',
  'project',
  'tenant',
  'roles',
  'is_admin',
  'read_deleted',
  'timestamp',
]);
const CONTEXT_CORE_KEYS = new Set([
  'requestId',
  'userId',
  'projectId',
  'roles',
  'isAdmin',
  'readDeleted',
  'timestamp',
]);

/** Failure classes of oslo.messaging's dispatcher that have a Stratus code. */
const OSLO_FAILURE_CODES: Readonly<Record<string, string>> = {
  NoSuchMethod: 'NOT_SUPPORTED',
  UnsupportedVersion: 'UNSUPPORTED_VERSION',
  ExpectedException: 'REMOTE_ERROR',
};

/** `userId` → `user_id`. */
export function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** `user_id` → `userId`. */
export function camelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** A fresh 32-hex id, the shape of oslo's `_msg_id` / `_unique_id`. */
export function newMessageId(): string {
  return randomUUID().replaceAll('-', '');
}

/**
 * The AMQP body of an inner oslo message: envelope 2.0 (the inner message as a JSON string),
 * serialised once, straight from the caller's objects (what JSON gives is what the receiver gets).
 * @throws InvalidInputError when the message cannot be serialised (a cycle, a BigInt).
 */
export function encodeBody(inner: Record<string, unknown>, what: string): Buffer {
  const text = stringify(inner, what);
  // Same bytes as JSON.stringify(wrapEnvelope(inner)), without building the outer object.
  return Buffer.from(
    `{"${OSLO_VERSION_KEY}":"${OSLO_ENVELOPE_VERSION}","${OSLO_MESSAGE_KEY}":${JSON.stringify(text)}}`,
  );
}

/**
 * `JSON.stringify(message)` for a transport message sent as it is (direct replies).
 * @throws InvalidInputError when `message` is not an object or cannot be serialised.
 */
export function encodePlainBody(message: unknown, what: string): Buffer {
  checkObject(message, what);
  return Buffer.from(stringify(message, what));
}

/** @throws InvalidInputError unless `message` is a JSON object (not an array, not null). */
export function checkObject(message: unknown, what: string): asserts message is TransportMessage {
  if (!isObject(message)) {
    throw new InvalidInputError(`A transport ${what} must be a JSON object`, [
      { path: '/', message: 'must be an object' },
    ]);
  }
}

function stringify(value: unknown, what: string): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw new InvalidInputError(
      `A transport ${what} must be JSON-serialisable: ${(error as Error).message}`,
      [],
      { cause: error },
    );
  }
}

/** Wrap an inner oslo message in envelope 2.0. */
export function wrapEnvelope(inner: Record<string, unknown>): Record<string, string> {
  return { [OSLO_VERSION_KEY]: OSLO_ENVELOPE_VERSION, [OSLO_MESSAGE_KEY]: JSON.stringify(inner) };
}

/**
 * The inner dict of a received body: envelope 2.0 unwrapped; a bare dict (oslo's pre-envelope 1.0
 * format) taken as is.
 * @throws InvalidInputError when the body is not JSON, not an object, or a newer major envelope.
 */
export function unwrapEnvelope(body: Buffer | string): Record<string, unknown> {
  let outer: unknown;
  try {
    outer = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (error) {
    throw new InvalidInputError(`AMQP message body is not JSON: ${(error as Error).message}`, [], {
      cause: error,
    });
  }
  if (!isObject(outer)) throw new InvalidInputError('AMQP message body is not a JSON object');
  if (!(OSLO_VERSION_KEY in outer) || !(OSLO_MESSAGE_KEY in outer)) return outer;
  const version = String(outer[OSLO_VERSION_KEY]);
  if (version !== OSLO_ENVELOPE_VERSION && version.split('.')[0] !== OSLO_ENVELOPE_MAJOR) {
    throw new InvalidInputError(
      `Unsupported oslo envelope version ${version}: this transport speaks ${OSLO_ENVELOPE_VERSION}`,
    );
  }
  const text = outer[OSLO_MESSAGE_KEY];
  let inner: unknown;
  try {
    inner = typeof text === 'string' ? JSON.parse(text) : text;
  } catch (error) {
    throw new InvalidInputError(`oslo.message is not JSON: ${(error as Error).message}`, [], {
      cause: error,
    });
  }
  if (!isObject(inner)) throw new InvalidInputError('oslo.message is not a JSON object');
  return inner;
}

/**
 * A JSON copy of `message` (what the receiver will see), refusing non-objects and values
 * `JSON.stringify` cannot encode.
 */
export function toPlainMessage(message: unknown, what: string): TransportMessage {
  if (!isObject(message)) {
    throw new InvalidInputError(`A transport ${what} must be a JSON object`, [
      { path: '/', message: 'must be an object' },
    ]);
  }
  try {
    return JSON.parse(JSON.stringify(message)) as TransportMessage;
  } catch (error) {
    throw new InvalidInputError(
      `A transport ${what} must be JSON-serialisable: ${(error as Error).message}`,
      [],
      { cause: error },
    );
  }
}

/** True when `message` is a core RPC envelope that maps onto oslo's request format without loss. */
export function isRpcEnvelope(message: TransportMessage): message is RpcEnvelope {
  if (!Object.keys(message).every((k) => ENVELOPE_KEYS.has(k))) return false;
  if (!validatorOf(RpcEnvelope).Check(message)) return false;
  for (const key of Object.keys(message.context)) {
    if (CONTEXT_CORE_KEYS.has(key)) continue;
    const snake = snakeCase(key);
    if (CONTEXT_FIXED.has(snake) || camelCase(snake) !== key) return false;
  }
  return true;
}

/** Routing metadata of a request: where the reply goes and how it is matched. */
export interface RequestMeta {
  /** `_msg_id`: present for requests (calls), absent for casts. */
  readonly msgId?: string;
  /** `_reply_q`: the caller's reply queue. */
  readonly replyQ?: string;
}

/**
 * The inner oslo message of a request or cast. `message` is serialised later (`encodeBody`), so
 * it need not be a copy; `rpc` is `isRpcEnvelope(message)` when the caller already knows it.
 */
export function encodeRequest(
  message: TransportMessage,
  meta: RequestMeta,
  rpc: boolean = isRpcEnvelope(message),
): Record<string, unknown> {
  const route: Record<string, unknown> = {};
  if (meta.msgId !== undefined) route._msg_id = meta.msgId;
  if (meta.replyQ !== undefined) route._reply_q = meta.replyQ;
  if (!rpc) return { [RAW_KEY]: message, ...route, _unique_id: newMessageId() };
  const envelope = message as RpcEnvelope;
  const inner: Record<string, unknown> = {
    method: envelope.method,
    args: envelope.args,
    version: envelope.version,
  };
  if (envelope.namespace !== undefined) inner.namespace = envelope.namespace;
  Object.assign(inner, route);
  // Casts have no _msg_id: the envelope id travels as _unique_id (oslo's duplicate check key).
  inner._unique_id = envelope.id;
  Object.assign(inner, encodeContext(envelope.context));
  if (envelope.deadline !== undefined) inner[DEADLINE_KEY] = envelope.deadline;
  return inner;
}

/** A received request, in core's terms. */
export interface DecodedRequest {
  readonly message: TransportMessage;
  /** True when `message` is an RPC envelope (so the reply is sent as an oslo result/failure). */
  readonly rpc: boolean;
  readonly msgId?: string;
  readonly replyQ?: string;
}

/** Map a received inner oslo message to core's envelope (or the verbatim message it carries). */
export function decodeRequest(inner: Record<string, unknown>): DecodedRequest {
  const msgId = typeof inner._msg_id === 'string' && inner._msg_id !== '' ? inner._msg_id : undefined;
  const replyQ = typeof inner._reply_q === 'string' && inner._reply_q !== '' ? inner._reply_q : undefined;
  let decoded: { message: TransportMessage; rpc: boolean; msgId?: string; replyQ?: string };
  if (RAW_KEY in inner) {
    const raw = inner[RAW_KEY];
    decoded = { message: isObject(raw) ? raw : { value: raw }, rpc: false };
  } else {
    const uniqueId =
      typeof inner._unique_id === 'string' && inner._unique_id !== '' ? inner._unique_id : undefined;
    const envelope: Record<string, unknown> = {
      id: msgId ?? uniqueId ?? newMessageId(),
      // Left as sent (possibly missing): the RPC server answers a malformed envelope with INVALID_INPUT.
      method: inner.method,
      args: inner.args ?? {},
      context: decodeContext(inner),
      version: inner.version ?? '1.0',
    };
    if ('namespace' in inner) envelope.namespace = inner.namespace;
    if (typeof inner[DEADLINE_KEY] === 'number') envelope.deadline = inner[DEADLINE_KEY];
    decoded = { message: envelope, rpc: true };
  }
  // Set only when present: callers test with `in` and `!== undefined` alike.
  if (msgId !== undefined) decoded.msgId = msgId;
  if (replyQ !== undefined) decoded.replyQ = replyQ;
  return decoded;
}

/** Core context → oslo's flattened `_context_<key>` members. */
export function encodeContext(context: RequestContextData): Record<string, unknown> {
  const out: Record<string, unknown> = {
    _context_request_id: context.requestId,
    _context_user_id: context.userId,
    // oslo.context reads `user` and `project_id`; Nova of 2011 read `user_id`; older peers `tenant`.
    _context_user: context.userId,
    _context_project_id: context.projectId,
    _context_project: context.projectId,
    _context_tenant: context.projectId,
    _context_roles: context.roles,
    _context_is_admin: context.isAdmin,
    _context_timestamp: context.timestamp,
  };
  if (context.readDeleted !== undefined) out._context_read_deleted = context.readDeleted ? 'yes' : 'no';
  for (const [key, value] of Object.entries(context)) {
    if (CONTEXT_CORE_KEYS.has(key) || value === undefined) continue;
    out[`_context_${snakeCase(key)}`] = value;
  }
  return out;
}

/** oslo's `_context_<key>` members → core context (missing members get safe defaults). */
export function decodeContext(inner: Record<string, unknown>): RequestContextData {
  // One pass over the message, no intermediate Map or entry arrays: this runs for every request.
  const values: Record<string, unknown> = Object.create(null);
  const extra: string[] = [];
  for (const key of Object.keys(inner)) {
    if (!key.startsWith(CONTEXT_PREFIX)) continue;
    const name = key.slice(CONTEXT_PREFIX.length);
    values[name] = inner[key];
    if (!CONTEXT_FIXED.has(name)) extra.push(name);
  }
  const rolesRaw = values.roles;
  const roles = Array.isArray(rolesRaw) ? rolesRaw.filter((r): r is string => typeof r === 'string') : [];
  const isAdminRaw = values.is_admin;
  const context: Record<string, unknown> = {
    requestId: text(values.request_id) || `req-${randomUUID()}`,
    userId: text(values.user_id) ?? text(values.user),
    projectId: text(values.project_id) ?? text(values.project) ?? text(values.tenant),
    roles,
    isAdmin: typeof isAdminRaw === 'boolean' ? isAdminRaw : roles.some((r) => r.toLowerCase() === 'admin'),
    timestamp: text(values.timestamp) ?? new Date().toISOString(),
  };
  const readDeleted = values.read_deleted;
  if (readDeleted !== undefined && readDeleted !== null) {
    context.readDeleted = readDeleted === true || readDeleted === 'yes' || readDeleted === 'only';
  }
  for (const key of extra) {
    const name = camelCase(key);
    if (CONTEXT_CORE_KEYS.has(name)) continue;
    context[name] = values[key];
  }
  return context as RequestContextData;
}

/** `value` when it is a string, else null. */
function text(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** True when `reply` is a core `RpcReply` that maps onto oslo's result/failure without loss. */
export function isRpcReply(reply: TransportMessage): boolean {
  if (!Object.keys(reply).every((k) => REPLY_KEYS.has(k))) return false;
  if (typeof reply.id !== 'string') return false;
  if ('error' in reply && !validatorOf(RpcErrorPayloadSchema).Check(reply.error)) return false;
  return true;
}

/**
 * The inner oslo message answering request `msgId`: `{result, failure, ending: true}` for an RPC
 * reply to an RPC request (one message, as oslo.messaging has sent since 2016), else the verbatim
 * reply under `_stratus_raw`. `reply` is serialised later (`encodeBody`).
 */
export function encodeReply(
  reply: TransportMessage,
  msgId: string,
  requestWasRpc: boolean,
): Record<string, unknown> {
  const base = { _msg_id: msgId, _unique_id: newMessageId() };
  if (!requestWasRpc || !isRpcReply(reply)) {
    return { [RAW_KEY]: reply, result: null, failure: null, ending: true, ...base };
  }
  const error = reply.error as RpcErrorPayload | undefined;
  return {
    result: error ? null : (reply.result ?? null),
    failure: error ? encodeFailure(error) : null,
    ending: true,
    ...base,
  };
}

/** A core error payload as oslo's serialised failure (the JSON string oslo's clients expect). */
export function encodeFailure(error: RpcErrorPayload): string {
  const kwargs: Record<string, unknown> = {
    code: error.code,
    data: error.data,
    retryable: error.retryable,
  };
  if (error.httpStatus !== undefined) kwargs.httpStatus = error.httpStatus;
  return JSON.stringify({
    class: error.type,
    module: STRATUS_FAILURE_MODULE,
    message: error.message,
    tb: [],
    args: [error.message],
    kwargs,
  });
}

/**
 * An oslo failure (its JSON string, an object, or the 2011 `[class, message, traceback]` triple)
 * as a core error payload: `type` is the remote exception's class name. Stratus peers' own codes
 * survive; Python exceptions get `REMOTE_ERROR` (oslo dispatcher errors a matching code), with
 * their module and traceback in `data`.
 */
export function decodeFailure(failure: unknown): RpcErrorPayload {
  let parsed: unknown = failure;
  if (typeof failure === 'string') {
    try {
      parsed = JSON.parse(failure);
    } catch {
      parsed = { class: 'RemoteError', message: failure };
    }
  }
  if (Array.isArray(parsed)) {
    parsed = { class: parsed[0], message: parsed[1], tb: parsed[2] };
  }
  const f = isObject(parsed) ? parsed : { message: String(parsed) };
  const type = typeof f.class === 'string' && f.class !== '' ? f.class : 'RemoteError';
  const message = typeof f.message === 'string' ? f.message : String(f.message ?? '');
  const module = typeof f.module === 'string' ? f.module : undefined;
  const kwargs = isObject(f.kwargs) ? f.kwargs : {};
  if (module === STRATUS_FAILURE_MODULE && typeof kwargs.code === 'string') {
    const httpStatus = kwargs.httpStatus;
    return {
      type,
      code: kwargs.code,
      message,
      data: isObject(kwargs.data) ? kwargs.data : {},
      retryable: kwargs.retryable === true,
      ...(Number.isInteger(httpStatus) && (httpStatus as number) >= 100 && (httpStatus as number) <= 599
        ? { httpStatus: httpStatus as number }
        : {}),
    };
  }
  const data: Record<string, unknown> = {};
  if (module !== undefined) data.module = module;
  if (Array.isArray(f.tb)) data.traceback = f.tb.map(String);
  return { type, code: OSLO_FAILURE_CODES[type] ?? 'REMOTE_ERROR', message, data, retryable: false };
}

/** One received reply message, not yet matched to its request. */
export interface DecodedReply {
  readonly msgId: string | undefined;
  /** oslo sends `ending: true` on the last (usually only) message of a reply. */
  readonly ending: boolean;
  /** The verbatim reply of a Stratus peer to a non-RPC request. */
  readonly raw?: TransportMessage;
  readonly failure?: RpcErrorPayload;
  /** `result` when the message carries one (`null` counts: Python's `None`). */
  readonly hasResult: boolean;
  readonly result?: unknown;
}

export function decodeReply(inner: Record<string, unknown>): DecodedReply {
  const msgId = typeof inner._msg_id === 'string' ? inner._msg_id : undefined;
  // A reply without `ending` comes from a peer predating it: one message per reply.
  const ending = inner.ending === undefined ? true : inner.ending === true;
  if (RAW_KEY in inner) {
    const raw = inner[RAW_KEY];
    return { msgId, ending, raw: isObject(raw) ? raw : { value: raw }, hasResult: false };
  }
  if (inner.failure !== undefined && inner.failure !== null) {
    return { msgId, ending, failure: decodeFailure(inner.failure), hasResult: false };
  }
  return 'result' in inner
    ? { msgId, ending, hasResult: true, result: inner.result }
    : { msgId, ending, hasResult: false };
}

/** A finished reply as the core `RpcReply` of the request whose envelope id is `id`. */
export function toCoreReply(
  id: string,
  outcome: { failure?: RpcErrorPayload; result?: unknown },
): TransportMessage {
  if (outcome.failure) return { id, error: outcome.failure };
  return { id, result: outcome.result ?? null };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
