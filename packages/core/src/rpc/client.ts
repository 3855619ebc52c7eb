import type { RequestContext } from '../context.js';
import type { RequestRoute, Route, Transport } from '../contracts/transport.js';
import {
  InternalError,
  InvalidInputError,
  StratusError,
  TimeoutError,
  UnauthenticatedError,
  UnsupportedVersionError,
} from '../errors.js';
import { type Logger, silentLogger } from '../log/logger.js';
import { validatorOf } from '../schema.js';
import { newMessageId, type ParsedVersion, parseVersion, type RpcEnvelope, RpcReply } from './envelope.js';
import { RemoteError } from './errors.js';
import type { EnvelopeSigner } from './signing.js';

/** Who receives a message: the topic's shared queue, or one host's own queue (`topic.host`). */
export interface RpcTarget {
  /** Defaults to the client's `topic`. */
  readonly topic?: string;
  readonly host?: string;
}

export interface RpcClientOptions {
  /** Default topic for targets that name none. */
  readonly topic?: string;
  /** How long `call` waits for a reply unless told otherwise. Default 60000 (oslo's rpc_response_timeout). */
  readonly defaultTimeoutMs?: number;
  /** Version sent when a call names none. Default `1.0`. */
  readonly defaultVersion?: string;
  /**
   * Highest API version this client may send (rolling upgrades: cap at the oldest server's
   * version until every host is upgraded). Higher requests fail locally with `UnsupportedVersionError`.
   */
  readonly versionCap?: string;
  /** Endpoint namespace put in every envelope; none by default. */
  readonly namespace?: string | null;
  readonly logger?: Logger;
  /**
   * Signs every outgoing message and verifies every reply (`rpcSigning`); without it, messages go
   * unsigned and anyone who can publish on the broker can call any method.
   */
  readonly signer?: EnvelopeSigner;
}

export interface CallOptions {
  /** ms to wait for the reply; the client's `defaultTimeoutMs` otherwise. */
  readonly timeout?: number;
  /** API version this call needs (the version that introduced the method or its newest argument). */
  readonly version?: string;
}

export interface CastOptions {
  readonly version?: string;
}

/**
 * Sends RPCs over a `Transport`: `call` waits for the result, `cast` and `fanoutCast` do not.
 * The transport must be connected; the client owns no connection state of its own.
 */
export class RpcClient {
  readonly transport: Transport;
  private readonly topic: string | undefined;
  private readonly defaultTimeoutMs: number;
  private readonly defaultVersion: string;
  private readonly versionCap: string | undefined;
  private readonly parsedCap: ParsedVersion | undefined;
  private readonly namespace: string | null;
  private readonly logger: Logger;
  private readonly signer: EnvelopeSigner | undefined;
  /** The route of `{}` (the client's own topic), built once: most calls name no other target. */
  private readonly defaultRoute: (RequestRoute & Route) | undefined;

  constructor(transport: Transport, options: RpcClientOptions = {}) {
    this.transport = transport;
    this.topic = options.topic;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000;
    this.defaultVersion = options.defaultVersion ?? '1.0';
    this.versionCap = options.versionCap;
    this.namespace = options.namespace ?? null;
    this.logger = options.logger ?? silentLogger();
    this.signer = options.signer;
    this.defaultRoute =
      this.topic === undefined ? undefined : Object.freeze({ kind: 'topic' as const, topic: this.topic });
    parseVersion(this.defaultVersion, 'defaultVersion');
    this.parsedCap = this.versionCap === undefined ? undefined : parseVersion(this.versionCap, 'versionCap');
    if (!(this.defaultTimeoutMs > 0)) {
      throw new InvalidInputError('Invalid RpcClient options', [
        { path: '/defaultTimeoutMs', message: 'must be > 0' },
      ]);
    }
  }

  /**
   * True when `version` may be sent under this client's cap: same major, minor not above it
   * (always true without a cap). Client stubs use it to fall back to an older form of a call.
   */
  canSendVersion(version: string): boolean {
    const cap = this.parsedCap;
    if (cap === undefined) return true;
    const wanted = parseVersion(version);
    return wanted.major === cap.major && wanted.minor <= cap.minor;
  }

  /**
   * Call `method` and wait for its result.
   * @throws TimeoutError when no reply arrives within the timeout (a late reply is dropped).
   * @throws RemoteError when the remote handler failed (`.type`; `code` keeps known codes).
   * @throws UnsupportedVersionError when `version` exceeds the client's cap.
   */
  async call(
    ctx: RequestContext,
    target: RpcTarget,
    method: string,
    args: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<unknown> {
    const route = this.route(target);
    const timeoutMs = options.timeout ?? this.defaultTimeoutMs;
    if (!(timeoutMs > 0)) {
      throw new InvalidInputError(`Invalid timeout for ${method}`, [
        { path: '/timeout', message: 'must be > 0' },
      ]);
    }
    const envelope = this.envelope(ctx, method, args, options.version, Date.now() + timeoutMs);
    const name = this.targetName(route);
    // A child logger per call costs more than the in-process call itself: built only when used.
    const log = () =>
      this.logger.child({ requestId: ctx.requestId, method, messageId: envelope.id, target: name });
    if (this.logger.isLevelEnabled('debug')) log().debug('rpc call');
    let raw: Record<string, unknown>;
    try {
      raw = await this.transport.request(route, this.signed(envelope), { timeoutMs });
    } catch (error) {
      if (StratusError.is(error, 'TIMEOUT')) {
        throw new TimeoutError(`No reply from ${name} to ${method} within ${timeoutMs} ms`, {
          cause: error,
          details: { target: name, method, timeoutMs, messageId: envelope.id },
        });
      }
      throw error;
    }
    if (!validatorOf(RpcReply).Check(raw) || raw.id !== envelope.id) {
      log().error({ reply: raw }, 'malformed rpc reply');
      throw new InternalError(
        `Malformed reply from ${name} to ${method}: not an RPC reply for message ${envelope.id}`,
      );
    }
    const verdict = this.signer?.verify(raw);
    if (verdict && !verdict.ok) {
      log().warn({ reason: verdict.reason }, `rejected rpc reply: ${verdict.message}`);
      throw new UnauthenticatedError(`Reply from ${name} to ${method} rejected: ${verdict.message}`, {
        details: { target: name, method, reason: verdict.reason },
      });
    }
    if (raw.error) {
      throw new RemoteError(raw.error, { details: { target: name, method } });
    }
    return raw.result;
  }

  /** Send `method` without waiting for its outcome; resolves once the transport accepted it. */
  async cast(
    ctx: RequestContext,
    target: RpcTarget,
    method: string,
    args: Record<string, unknown>,
    options: CastOptions = {},
  ): Promise<void> {
    const route = this.route(target);
    const envelope = this.envelope(ctx, method, args, options.version);
    if (this.logger.isLevelEnabled('debug'))
      this.logger.debug({ requestId: ctx.requestId, method, target: this.targetName(route) }, 'rpc cast');
    await this.transport.publish(route, this.signed(envelope));
  }

  /** Cast to every host consuming `topic`'s fanout (the client's topic when none is given). */
  async fanoutCast(
    ctx: RequestContext,
    topic: string | undefined,
    method: string,
    args: Record<string, unknown>,
    options: CastOptions = {},
  ): Promise<void> {
    const resolved = topic ?? this.topic;
    if (!resolved)
      throw new InvalidInputError(`fanoutCast of ${method} names no topic and the client has no default`);
    const envelope = this.envelope(ctx, method, args, options.version);
    this.logger.debug({ requestId: ctx.requestId, method, target: `${resolved}_fanout` }, 'rpc fanout cast');
    await this.transport.publish({ kind: 'fanout', topic: resolved }, this.signed(envelope));
  }

  private signed(message: RpcEnvelope): Record<string, unknown> {
    if (!this.signer) return message;
    try {
      return this.signer.sign(message);
    } catch (error) {
      throw new InvalidInputError(
        `Arguments of ${String(message.method)} must be JSON-serialisable: ${(error as Error).message}`,
        [{ path: '/args', message: 'must be JSON-serialisable' }],
      );
    }
  }

  private route(target: RpcTarget): RequestRoute & Route {
    if (target.topic === undefined && target.host === undefined && this.defaultRoute)
      return this.defaultRoute;
    const topic = target.topic ?? this.topic;
    if (!topic) throw new InvalidInputError('RPC target names no topic and the client has no default topic');
    return target.host === undefined
      ? { kind: 'topic', topic }
      : { kind: 'direct', topic, host: target.host };
  }

  private targetName(route: RequestRoute): string {
    return route.kind === 'direct' ? `${route.topic}.${route.host}` : route.topic;
  }

  private envelope(
    ctx: RequestContext,
    method: string,
    args: unknown,
    version: string | undefined,
    deadline?: number,
  ): RpcEnvelope {
    const wanted = version ?? this.defaultVersion;
    // The default was checked by the constructor.
    if (wanted !== this.defaultVersion) parseVersion(wanted);
    if (!this.canSendVersion(wanted)) {
      throw new UnsupportedVersionError(
        `${method} needs API version ${wanted}, but this client is capped at ${this.versionCap}: a host may still run the older version. Raise versionCap once every host is upgraded.`,
        { details: { method, version: wanted, versionCap: this.versionCap } },
      );
    }
    if (typeof args !== 'object' || args === null || Array.isArray(args)) {
      throw new InvalidInputError(`Arguments of ${method} must be an object of keyword arguments`);
    }
    // The transport copies what it sends: the envelope is built once, never spread again.
    const envelope: RpcEnvelope = {
      id: newMessageId(),
      method,
      args: args as Record<string, unknown>,
      context: ctx.toJSON(),
      version: wanted,
    };
    if (this.namespace !== null) envelope.namespace = this.namespace;
    if (deadline !== undefined) envelope.deadline = deadline;
    return envelope;
  }
}
