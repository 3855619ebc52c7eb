import { randomBytes } from 'node:crypto';
import Type, { type Static } from 'typebox';
import { RequestContextData } from '../context.js';
import { InvalidInputError } from '../errors.js';

/** An RPC API version, `major.minor` (`1.3`). */
export const RpcVersion = Type.String({ pattern: '^(0|[1-9][0-9]{0,5})\\.(0|[1-9][0-9]{0,5})$' });
export type RpcVersion = Static<typeof RpcVersion>;

/** Wire names are identifiers (`create_volume`), snake_case as in OpenStack. */
export const RpcMethodName = Type.String({
  minLength: 1,
  maxLength: 128,
  pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
});

/**
 * One RPC request as it crosses a transport. Unknown members are allowed (and ignored) so a newer
 * client's envelope still reaches an older server; the reply address is transport metadata.
 */
export const RpcEnvelope = Type.Object({
  /** Message id: 32 hex chars (oslo's `_msg_id`), unique per message. */
  id: Type.String({ minLength: 1, maxLength: 128 }),
  method: RpcMethodName,
  /** Keyword arguments, validated against the endpoint's schema before its handler runs. */
  args: Type.Record(Type.String(), Type.Unknown()),
  context: RequestContextData,
  /** The API version the caller needs: the server's major must match and its minor be at least this. */
  version: RpcVersion,
  /** Endpoint namespace (oslo's target namespace); null or absent for the manager's own API. */
  namespace: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 128 }), Type.Null()])),
  /** Epoch ms after which the caller no longer waits; the server drops the message unanswered. */
  deadline: Type.Optional(Type.Number()),
  /** Signing key id, when the sender signs (`rpcSigning`); see `EnvelopeSigner`. */
  keyId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  /** Epoch ms at signing, on the sender's clock. */
  signedAt: Type.Optional(Type.Number()),
  /** base64url HMAC-SHA256 of the canonical JSON of the envelope without this member. */
  signature: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
});
export type RpcEnvelope = Static<typeof RpcEnvelope>;

/** An error as it crosses the wire; rebuilt as `RemoteError` by the caller. */
export const RpcErrorPayload = Type.Object({
  /** The remote error's class name (`NotFound`, `TypeError`). */
  type: Type.String(),
  /** A `StratusErrorCode` for Stratus errors, `INTERNAL` for anything else. */
  code: Type.String(),
  message: Type.String(),
  /** The error's `details`. */
  data: Type.Record(Type.String(), Type.Unknown()),
  retryable: Type.Boolean(),
  httpStatus: Type.Optional(Type.Integer({ minimum: 100, maximum: 599 })),
});
export type RpcErrorPayload = Static<typeof RpcErrorPayload>;

/** The answer to a call: `result` (absent when the handler returned nothing) or `error`. */
export const RpcReply = Type.Object({
  /** The request's message id. */
  id: Type.String(),
  result: Type.Optional(Type.Unknown()),
  error: Type.Optional(RpcErrorPayload),
});
export type RpcReply = Static<typeof RpcReply>;

export interface ParsedVersion {
  readonly major: number;
  readonly minor: number;
}

/** Versions seen lately: every message carries one, and a handful of distinct ones exist. Bounded (wire input). */
const parsedVersions = new Map<string, ParsedVersion>();
const PARSED_VERSIONS_MAX = 256;

/**
 * `'1.3'` → `{ major: 1, minor: 3 }`.
 * @throws InvalidInputError when `version` is not `major.minor`.
 */
export function parseVersion(version: string, what = 'RPC version'): ParsedVersion {
  const known = parsedVersions.get(version);
  if (known) return known;
  const match = /^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$/.exec(version);
  if (!match) {
    throw new InvalidInputError(`${what} "${version}" is not of the form major.minor (e.g. "1.0")`, [
      { path: '/version', message: 'must be major.minor' },
    ]);
  }
  const parsed = Object.freeze({ major: Number(match[1]), minor: Number(match[2]) });
  if (parsedVersions.size >= PARSED_VERSIONS_MAX) parsedVersions.clear();
  parsedVersions.set(version, parsed);
  return parsed;
}

/** Random per process, so ids of different processes never meet; the counter makes them unique here. */
const ID_PREFIX = randomBytes(10).toString('hex');
let idCounter = 0;

/**
 * A new message id: 32 hex chars like oslo's `_msg_id` (a uuid4 without dashes) — 80 random bits
 * per process followed by a 48-bit counter, unique without a random draw per message.
 */
export function newMessageId(): string {
  idCounter = (idCounter + 1) % 0x1000000000000;
  return ID_PREFIX + idCounter.toString(16).padStart(12, '0');
}

/** True when a server speaking `server` can serve a caller asking for `requested`. */
export function versionCompatible(server: string, requested: string): boolean {
  const s = parseVersion(server);
  const r = parseVersion(requested);
  return s.major === r.major && r.minor <= s.minor;
}
