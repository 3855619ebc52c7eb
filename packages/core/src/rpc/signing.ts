import { createHmac, timingSafeEqual } from 'node:crypto';
import Type, { type Static } from 'typebox';
import { ConfigInvalidError, UnauthenticatedError } from '../errors.js';
import { withDefaults } from '../schema.js';

/** A shared secret with the id that names it on the wire. */
export const RpcSigningKey = Type.Object(
  {
    id: Type.String({
      pattern: '^[A-Za-z0-9._-]{1,64}$',
      description: 'Key id put in every signed message (e.g. "2025-06"); never the secret itself',
    }),
    secret: Type.String({
      minLength: 32,
      maxLength: 1024,
      description: 'Shared secret, at least 32 characters (e.g. `openssl rand -base64 32`)',
    }),
  },
  { additionalProperties: false },
);
export type RpcSigningKey = Static<typeof RpcSigningKey>;

/**
 * `rpcSigning` of the deployment config: an HMAC-SHA256 over every RPC message. Every process on
 * the bus needs the same keys. Rotation: add the new key to `acceptKeys` everywhere, then move it
 * to the front of `keys` everywhere, then drop the old one.
 */
export const RpcSigningConfig = Type.Object(
  {
    keys: Type.Array(RpcSigningKey, {
      minItems: 1,
      description: 'The first key signs outgoing messages; every key listed here also verifies',
    }),
    acceptKeys: Type.Array(RpcSigningKey, {
      default: [],
      description: 'Extra keys accepted on incoming messages only (the next or the previous key)',
    }),
    maxSkewSec: Type.Integer({
      minimum: 1,
      maximum: 3600,
      default: 300,
      description:
        'A message signed more than this many seconds before (or after) the receiver clock is rejected as a replay',
    }),
    requireSigned: Type.Boolean({
      default: true,
      description:
        'Reject unsigned messages. false only while enabling signing on a running deployment: unsigned messages are then accepted (and logged), signed ones still verified',
    }),
    replayCacheSize: Type.Integer({
      minimum: 1000,
      default: 100_000,
      description: 'Message ids remembered per RPC server within the window, to refuse a second copy',
    }),
  },
  { additionalProperties: false },
);
export type RpcSigningConfig = Static<typeof RpcSigningConfig>;
/** `RpcSigningConfig` as written: defaults may be missing. */
export type RpcSigningConfigInput = Pick<RpcSigningConfig, 'keys'> & Partial<RpcSigningConfig>;

/** The members a signed message carries besides its own. */
export type SignatureFields = {
  /** Id of the key that signed. */
  readonly keyId: string;
  /** Epoch ms at signing, on the sender's clock. */
  readonly signedAt: number;
  /** base64url HMAC-SHA256 of the canonical JSON of the message without `signature`. */
  readonly signature: string;
};

/** Why a message was refused. */
export type SignatureFailure =
  | 'unsigned'
  | 'malformed'
  | 'unknown-key'
  | 'bad-signature'
  | 'expired'
  | 'replayed';

export type VerifyResult =
  | { readonly ok: true; readonly keyId: string | null }
  | { readonly ok: false; readonly reason: SignatureFailure; readonly message: string };

const SIGNED_FIELDS = ['keyId', 'signedAt', 'signature'] as const;

/**
 * Canonical JSON: what `JSON.stringify` would produce (`toJSON` honoured, `undefined` and functions
 * dropped from objects, null in arrays, non-finite numbers as null) with object keys sorted by
 * UTF-16 code unit at every level, so sender and receiver hash the same bytes after a JSON trip.
 */
export function canonicalJson(value: unknown): string {
  return write(value) ?? 'null';
}

function write(input: unknown): string | undefined {
  let value = input;
  if (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  ) {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) return `[${value.map((v) => write(v) ?? 'null').join(',')}]`;
      const parts: string[] = [];
      for (const key of Object.keys(value).sort()) {
        const item = write((value as Record<string, unknown>)[key]);
        if (item !== undefined) parts.push(`${JSON.stringify(key)}:${item}`);
      }
      return `{${parts.join(',')}}`;
    }
    case 'bigint':
      throw new TypeError('a bigint cannot be serialised to JSON');
    default:
      return undefined;
  }
}

/**
 * Remembers the ids of accepted messages for one replay window, so a second copy of a signed
 * message is refused. Bounded: when full, the oldest id is forgotten and messages signed at or
 * before its time are refused from then on (a floor), so eviction never reopens a replay.
 */
export class ReplayCache {
  readonly #windowMs: number;
  readonly #maxEntries: number;
  /** id → signedAt, in arrival order. */
  readonly #seen = new Map<string, number>();
  #floor = Number.NEGATIVE_INFINITY;

  constructor(windowMs: number, maxEntries = 100_000) {
    this.#windowMs = windowMs;
    this.#maxEntries = Math.max(1, Math.floor(maxEntries));
  }

  /** Ids remembered now. */
  get size(): number {
    return this.#seen.size;
  }

  /**
   * Record `id`; false when it was seen within the window, or when `signedAt` is at or below the
   * floor left by an eviction.
   */
  admit(id: string, signedAt: number, now: number): boolean {
    this.#expire(now);
    if (this.#seen.has(id) || signedAt <= this.#floor) return false;
    if (this.#seen.size >= this.#maxEntries) {
      const [oldestId, oldestAt] = this.#seen.entries().next().value as [string, number];
      this.#seen.delete(oldestId);
      this.#floor = Math.max(this.#floor, oldestAt);
    }
    this.#seen.set(id, signedAt);
    return true;
  }

  #expire(now: number): void {
    // Arrival order is close to signing order; stop at the first id still inside the window.
    for (const [id, at] of this.#seen) {
      if (at >= now - this.#windowMs) break;
      this.#seen.delete(id);
    }
  }
}

export interface VerifyOptions {
  /** Refuse a message id seen before (requests); omit for replies, which the transport pairs. */
  readonly replay?: ReplayCache;
}

/**
 * Signs RPC messages with a shared secret and verifies them (HMAC-SHA256 over canonical JSON of
 * the message minus `signature`; `keyId` and `signedAt` are inside the signed text). Give one to
 * `RpcClient` and `RpcServer` (option `signer`); both then refuse unsigned, tampered, unknown-key
 * and stale messages. Secrets never appear in errors or logs.
 */
export class EnvelopeSigner {
  /** Id of the key that signs. */
  readonly keyId: string;
  /** Largest |receiver clock - signedAt| accepted, in ms. */
  readonly windowMs: number;
  readonly requireSigned: boolean;
  readonly replayCacheSize: number;
  readonly #signingSecret: string;
  readonly #secrets: ReadonlyMap<string, string>;
  readonly #now: () => number;

  /**
   * @param config `RpcSigningConfig` (defaults applied here).
   * @param options.now clock in epoch ms; `Date.now` by default (sinon fake timers work).
   * @throws ConfigInvalidError naming each bad field (never echoing a secret).
   */
  constructor(config: RpcSigningConfigInput, options: { now?: () => number } = {}) {
    const { value, issues } = withDefaults(RpcSigningConfig, config);
    const ids = [...value.keys, ...value.acceptKeys].map((k) => k.id);
    ids.forEach((id, i) => {
      if (ids.indexOf(id) !== i) issues.push({ path: '/keys', message: `key id "${id}" is listed twice` });
    });
    if (issues.length > 0) {
      // typebox messages may quote the value; a secret must not reach an error or a log.
      throw new ConfigInvalidError(
        'rpcSigning',
        issues.map((i) => ({
          path: i.path,
          message: i.path.endsWith('/secret') ? 'must be a string of 32 to 1024 characters' : i.message,
        })),
      );
    }
    const first = value.keys[0] as RpcSigningKey;
    this.keyId = first.id;
    this.#signingSecret = first.secret;
    this.#secrets = new Map([...value.keys, ...value.acceptKeys].map((k) => [k.id, k.secret]));
    this.windowMs = value.maxSkewSec * 1000;
    this.requireSigned = value.requireSigned;
    this.replayCacheSize = value.replayCacheSize;
    this.#now = options.now ?? (() => Date.now());
  }

  /** A replay cache sized for this signer's window (one per RPC server). */
  createReplayCache(): ReplayCache {
    return new ReplayCache(this.windowMs, this.replayCacheSize);
  }

  /**
   * A copy of `message` with `keyId`, `signedAt` and `signature` set (any previous ones replaced).
   * Sign the message exactly as it will be sent: a member changed afterwards breaks the signature.
   */
  sign<T extends Record<string, unknown>>(message: T): T & SignatureFields {
    const { signature: _s, ...rest } = message as Record<string, unknown>;
    const body = { ...rest, keyId: this.keyId, signedAt: this.#now() };
    return { ...body, signature: mac(this.#signingSecret, body) } as unknown as T & SignatureFields;
  }

  /** Check a received message; never throws. */
  verify(message: Record<string, unknown>, options: VerifyOptions = {}): VerifyResult {
    const present = SIGNED_FIELDS.filter((f) => message[f] !== undefined);
    if (present.length === 0) {
      return this.requireSigned
        ? fail('unsigned', 'the message is not signed; configure rpcSigning with the same keys on the sender')
        : { ok: true, keyId: null };
    }
    const { keyId, signedAt, signature } = message;
    if (
      typeof keyId !== 'string' ||
      typeof signature !== 'string' ||
      typeof signedAt !== 'number' ||
      !Number.isFinite(signedAt)
    ) {
      return fail('malformed', 'keyId, signedAt and signature must be a string, a number and a string');
    }
    const secret = this.#secrets.get(keyId);
    if (secret === undefined) {
      return fail(
        'unknown-key',
        `the message is signed with key "${keyId.slice(0, 64)}", which this process does not accept; add it to rpcSigning.acceptKeys`,
      );
    }
    const { signature: _s, ...body } = message;
    let expected: Buffer;
    try {
      expected = Buffer.from(mac(secret, body), 'base64url');
    } catch {
      return fail('malformed', 'the message cannot be serialised to canonical JSON');
    }
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return fail(
        'bad-signature',
        'the signature does not match the message: it was altered or signed with another secret',
      );
    }
    const now = this.#now();
    if (Math.abs(now - signedAt) > this.windowMs) {
      return fail(
        'expired',
        `the message was signed ${Math.round((now - signedAt) / 1000)} s from this host's clock, outside the ${this.windowMs / 1000} s window: a replay, or clocks out of sync (run NTP)`,
      );
    }
    if (options.replay) {
      const id = message.id;
      if (typeof id !== 'string') return fail('malformed', 'a signed request needs a string id');
      if (!options.replay.admit(id, signedAt, now)) {
        return fail('replayed', `message ${id.slice(0, 128)} was already received: a replay`);
      }
    }
    return { ok: true, keyId };
  }

  /**
   * {@link verify}, throwing on failure.
   * @throws UnauthenticatedError with `details.reason` (a {@link SignatureFailure}).
   */
  check(message: Record<string, unknown>, options: VerifyOptions = {}): void {
    const result = this.verify(message, options);
    if (!result.ok) {
      throw new UnauthenticatedError(`RPC message rejected: ${result.message}`, {
        details: { reason: result.reason },
      });
    }
  }
}

function mac(secret: string, body: unknown): string {
  return createHmac('sha256', secret).update(canonicalJson(body), 'utf8').digest('base64url');
}

function fail(reason: SignatureFailure, message: string): VerifyResult {
  return { ok: false, reason, message };
}
