import { RequestContext } from '../context.js';
import {
  type Consumer,
  type Delivery,
  type Route,
  routeName,
  type Transport,
} from '../contracts/transport.js';
import {
  InternalError,
  InvalidInputError,
  InvalidStateError,
  StratusError,
  UnauthenticatedError,
  UnsupportedVersionError,
} from '../errors.js';
import { type Logger, silentLogger } from '../log/logger.js';
import { schemaIssues, validatorOf } from '../schema.js';
import type { CallInfo, Endpoint, EndpointTable } from './endpoints.js';
import { parseVersion, RpcEnvelope, type RpcReply } from './envelope.js';
import { errorToPayload, UnknownMethodError } from './errors.js';
import type { EnvelopeSigner, ReplayCache } from './signing.js';

export interface RpcServerOptions {
  /** The topic served (`volume`): consumes `volume`, `volume.<host>` and the `volume` fanout. */
  readonly topic: string;
  readonly host: string;
  readonly endpoints: EndpointTable;
  /** API version served, `major.minor`: callers with the same major and a minor up to this are accepted. */
  readonly version: string;
  /** Endpoint namespace served; null (the default) serves envelopes without one. */
  readonly namespace?: string | null;
  /** Most handlers running at once (the transport prefetch over all three queues). Default 64. */
  readonly maxConcurrency?: number;
  readonly logger?: Logger;
  /**
   * Verifies every message before anything else (`rpcSigning`): unsigned, tampered, stale or
   * replayed messages are logged and answered with `UNAUTHENTICATED`, never dispatched. Replies
   * are signed with it.
   */
  readonly signer?: EnvelopeSigner;
}

export interface StopOptions {
  /** How long to wait for handlers in flight. Default 30000. */
  readonly timeoutMs?: number;
}

export interface StopResult {
  /** True when every handler in flight finished (and replied) within the timeout. */
  readonly drained: boolean;
  /** Handlers still running when `stop()` gave up waiting. */
  readonly pending: number;
}

/**
 * Serves an endpoint table on a transport. Each message is checked in this order, and any failure
 * is answered (for calls) with a typed error while the server goes on serving: envelope shape
 * (`INVALID_INPUT`), deadline (passed → dropped, nobody waits), version (`UNSUPPORTED_VERSION`),
 * method (`UnknownMethod`, code `NOT_SUPPORTED`), args (`INVALID_INPUT` naming each field),
 * then the handler.
 */
export class RpcServer {
  readonly topic: string;
  readonly host: string;
  readonly version: string;
  private readonly transport: Transport;
  private readonly endpoints: EndpointTable;
  private readonly namespace: string | null;
  private readonly maxConcurrency: number;
  private readonly logger: Logger;
  private readonly serverVersion: { major: number; minor: number };
  private readonly signer: EnvelopeSigner | undefined;
  private readonly replay: ReplayCache | undefined;
  private consumer: Consumer | undefined;
  private active = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(transport: Transport, options: RpcServerOptions) {
    this.transport = transport;
    this.topic = options.topic;
    this.host = options.host;
    this.version = options.version;
    this.endpoints = options.endpoints;
    this.namespace = options.namespace ?? null;
    this.maxConcurrency = options.maxConcurrency ?? 64;
    this.logger = (options.logger ?? silentLogger()).child({ topic: options.topic, host: options.host });
    this.serverVersion = parseVersion(options.version, 'RpcServer version');
    this.signer = options.signer;
    // One cache per server: a fanout hands every server its own copy of the same message id.
    this.replay = options.signer?.createReplayCache();
    if (!Number.isInteger(this.maxConcurrency) || this.maxConcurrency < 1) {
      throw new InvalidInputError('Invalid RpcServer options', [
        { path: '/maxConcurrency', message: 'must be an integer >= 1' },
      ]);
    }
    this.checkEndpointVersions();
  }

  /** Handlers running now. */
  get inFlight(): number {
    return this.active;
  }

  /** Consume `topic`, `topic.host` and the topic's fanout, sharing one window of `maxConcurrency`. */
  async start(): Promise<void> {
    if (this.consumer)
      throw new InvalidStateError(`The ${this.topic} RPC server on ${this.host} is already started`);
    const bindings: Route[] = [
      { kind: 'topic', topic: this.topic },
      { kind: 'direct', topic: this.topic, host: this.host },
      { kind: 'fanout', topic: this.topic },
    ];
    this.consumer = await this.transport.consume(bindings, (delivery) => this.onDelivery(delivery), {
      prefetch: this.maxConcurrency,
    });
    this.logger.info({ version: this.version, maxConcurrency: this.maxConcurrency }, 'rpc server consuming');
  }

  /**
   * Stop consuming, then wait up to `timeoutMs` for handlers in flight; their replies are still
   * sent. Does not close the transport.
   */
  async stop(options: StopOptions = {}): Promise<StopResult> {
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer) await consumer.cancel();
    if (this.active === 0) return { drained: true, pending: 0 };
    const timeoutMs = options.timeoutMs ?? 30_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drained = await Promise.race([
      new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true))),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!drained) {
      this.logger.warn({ pending: this.active, timeoutMs }, 'rpc server stopped with handlers still running');
    }
    return { drained, pending: drained ? 0 : this.active };
  }

  private async onDelivery(delivery: Delivery): Promise<void> {
    this.active++;
    try {
      await this.dispatch(delivery);
    } catch (error) {
      // dispatch() answers every failure itself; reaching here is a bug, but must not kill the consumer.
      this.logger.error({ err: error }, 'rpc dispatch failed');
    } finally {
      this.active--;
      if (this.active === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const wake of waiters) wake();
      }
    }
  }

  private async dispatch(delivery: Delivery): Promise<void> {
    const raw = delivery.message;
    if (this.signer) {
      const verdict = this.signer.verify(raw, this.replay ? { replay: this.replay } : {});
      if (!verdict.ok) {
        // Quoted fields are bounded: this is untrusted input reaching the log.
        this.logger.warn(
          {
            route: routeName(delivery.route),
            reason: verdict.reason,
            messageId: typeof raw.id === 'string' ? raw.id.slice(0, 128) : undefined,
            method: typeof raw.method === 'string' ? raw.method.slice(0, 128) : undefined,
            keyId: typeof raw.keyId === 'string' ? raw.keyId.slice(0, 64) : undefined,
          },
          `rejected rpc message: ${verdict.message}`,
        );
        const error = new UnauthenticatedError(`RPC message rejected: ${verdict.message}`, {
          details: { reason: verdict.reason },
        });
        await this.send(
          delivery,
          { id: typeof raw.id === 'string' ? raw.id : '', error: errorToPayload(error) },
          this.logger,
        );
        return;
      }
    }
    if (!validatorOf(RpcEnvelope).Check(raw)) {
      const error = new InvalidInputError(
        `Malformed RPC envelope received on ${routeName(delivery.route)}`,
        schemaIssues(RpcEnvelope, raw),
      );
      this.logger.warn(
        { route: routeName(delivery.route), fields: error.fields },
        'rejected malformed rpc envelope',
      );
      await this.send(
        delivery,
        { id: typeof raw.id === 'string' ? raw.id : '', error: errorToPayload(error) },
        this.logger,
      );
      return;
    }
    const envelope = raw;
    const ctx = RequestContext.fromJSON(envelope.context);
    // A child logger per message costs more than dispatching it: built on first use only.
    let child: Logger | undefined;
    const log = () =>
      (child ??= this.logger.child({
        requestId: ctx.requestId,
        method: envelope.method,
        messageId: envelope.id,
      }));
    if (envelope.deadline !== undefined && Date.now() > envelope.deadline) {
      log().warn(
        { deadline: new Date(envelope.deadline).toISOString() },
        'rpc message dropped: its deadline passed before it was served, nobody waits for the answer',
      );
      return;
    }
    let result: unknown;
    try {
      const endpoint = this.resolve(envelope);
      const args = this.checkArgs(envelope, endpoint);
      const call = new Call(envelope, log);
      result = endpoint.handler(ctx, args, call);
      // A synchronous handler's result needs no extra turn of the microtask queue.
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') result = await result;
    } catch (error) {
      this.logFailure(log(), envelope.method, error);
      await this.send(delivery, { id: envelope.id, error: errorToPayload(error) }, log);
      return;
    }
    await this.send(delivery, result === undefined ? { id: envelope.id } : { id: envelope.id, result }, log);
  }

  private resolve(envelope: RpcEnvelope): Endpoint {
    const requested = parseVersion(envelope.version);
    const server = this.serverVersion;
    if (requested.major !== server.major || requested.minor > server.minor) {
      throw new UnsupportedVersionError(
        `The caller needs ${this.topic} API ${envelope.version}, but ${this.host} serves ${this.version}: ${
          requested.major !== server.major
            ? 'the major versions differ'
            : 'this host is older; upgrade it or cap the caller'
        }.`,
        {
          details: {
            requested: envelope.version,
            served: this.version,
            host: this.host,
            method: envelope.method,
          },
        },
      );
    }
    const namespace = envelope.namespace ?? null;
    // Own properties only: a wire name like `toString` or `__proto__` never reaches Object.prototype.
    const endpoint =
      namespace === this.namespace && Object.hasOwn(this.endpoints, envelope.method)
        ? this.endpoints[envelope.method]
        : undefined;
    if (!endpoint) throw new UnknownMethodError(this.topic, envelope.method, namespace);
    return endpoint;
  }

  private checkArgs(envelope: RpcEnvelope, endpoint: Endpoint): unknown {
    const args = envelope.args;
    const polluting = protoKeys(args, '');
    if (polluting.length > 0) {
      throw new InvalidInputError(
        `Invalid arguments for ${envelope.method}`,
        polluting.map((path) => ({ path, message: 'the key "__proto__" is not allowed' })),
      );
    }
    if (!validatorOf(endpoint.args).Check(args)) {
      throw new InvalidInputError(
        `Invalid arguments for ${envelope.method}`,
        schemaIssues(endpoint.args, args),
      );
    }
    return args;
  }

  /** Reply when the sender waits; a reply that cannot be serialised becomes an error reply. */
  private async send(delivery: Delivery, reply: RpcReply, logger: Logger | (() => Logger)): Promise<void> {
    const log = typeof logger === 'function' ? logger : () => logger;
    if (!delivery.reply) return;
    try {
      await delivery.reply(this.signed(reply));
    } catch (error) {
      if (reply.error) {
        log().error({ err: error }, 'rpc error reply could not be sent');
        return;
      }
      log().error({ err: error }, 'rpc result could not be sent');
      const failure = new InternalError(
        `The result could not be sent back: ${(error as Error).message}. The handler must return JSON-serialisable data.`,
      );
      try {
        await delivery.reply(this.signed({ id: reply.id, error: errorToPayload(failure) }));
      } catch (again) {
        log().error({ err: again }, 'rpc error reply could not be sent');
      }
    }
  }

  private signed(reply: RpcReply): Record<string, unknown> {
    return this.signer ? this.signer.sign(reply) : reply;
  }

  private logFailure(log: Logger, method: string, error: unknown): void {
    if (StratusError.is(error) && error.expected) {
      // Not under `err`: pino's error serializer would attach a stack.
      log.info({ error: { type: error.name, code: error.code } }, `${method} failed: ${error.message}`);
    } else {
      log.error({ err: error }, `${method} raised an unexpected error`);
    }
  }

  private checkEndpointVersions(): void {
    const issues: { path: string; message: string }[] = [];
    for (const [name, entry] of Object.entries(this.endpoints)) {
      if (entry.version === undefined) continue;
      const introduced = parseVersion(entry.version, `version of endpoint ${name}`);
      if (introduced.major !== this.serverVersion.major || introduced.minor > this.serverVersion.minor) {
        issues.push({
          path: `/${name}/version`,
          message: `${entry.version} is not within server version ${this.version}`,
        });
      }
    }
    if (issues.length > 0)
      throw new InvalidInputError(`Endpoints of ${this.topic} do not match its version`, issues);
  }
}

/**
 * What a handler learns about its call. A class, not an object literal with a getter: such a
 * literal is built through the runtime's slow path on every message.
 */
class Call implements CallInfo {
  readonly messageId: string;
  readonly method: string;
  readonly version: string;
  readonly deadline?: number;
  readonly #log: () => Logger;
  constructor(envelope: RpcEnvelope, log: () => Logger) {
    this.messageId = envelope.id;
    this.method = envelope.method;
    this.version = envelope.version;
    if (envelope.deadline !== undefined) this.deadline = envelope.deadline;
    this.#log = log;
  }
  get logger(): Logger {
    return this.#log();
  }
}

/** JSON pointers of every `__proto__` key in `value` (JSON.parse makes them own properties). */
function protoKeys(value: unknown, path: string): string[] {
  const found: string[] = [];
  collectProtoKeys(value, path, 0, found);
  return found;
}

function collectProtoKeys(value: unknown, path: string, depth: number, found: string[]): void {
  if (typeof value !== 'object' || value === null || depth > 64) return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      // Paths are only built on the way down into objects: the common case finds nothing.
      if (typeof item === 'object' && item !== null) collectProtoKeys(item, `${path}/${i}`, depth + 1, found);
    }
    return;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    if (key === '__proto__') found.push(`${path}/${key}`);
    const member = (value as Record<string, unknown>)[key];
    if (typeof member === 'object' && member !== null)
      collectProtoKeys(member, `${path}/${key}`, depth + 1, found);
  }
}
