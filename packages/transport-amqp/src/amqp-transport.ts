import { readFileSync } from 'node:fs';
import {
  ConfigInvalidError,
  type ConsumeOptions,
  type Consumer,
  type Delivery,
  type DeliveryHandler,
  InternalError,
  InvalidInputError,
  InvalidStateError,
  type Logger,
  type RequestOptions,
  type RequestRoute,
  type Route,
  Route as RouteSchema,
  routeName,
  StratusError,
  schemaIssues,
  silentLogger,
  TimeoutError,
  Transport,
  type TransportMessage,
  TransportUnavailableError,
  withDefaults,
} from '@stratus/core';
import {
  connect as amqpConnect,
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  type Message,
  type Options,
  type SocketOptions,
} from 'amqplib';
import { AmqpTransportConfig } from './config.js';
import {
  checkObject,
  decodeReply,
  decodeRequest,
  encodeBody,
  encodePlainBody,
  encodeReply,
  encodeRequest,
  isRpcEnvelope,
  isRpcReply,
  newMessageId,
  toCoreReply,
  unwrapEnvelope,
} from './wire.js';

/** Header counting how often a message was handed out without being settled (see `maxRedeliveries`). */
export const REDELIVERIES_HEADER = 'x-stratus-redeliveries';
/** Headers stamped on a dead-lettered message. */
export const DEAD_REASON_HEADER = 'x-stratus-dead-reason';
export const DEAD_QUEUE_HEADER = 'x-stratus-original-queue';

/** Where the transport is in its life: `reconnecting` after a lost connection, until it is back. */
export type AmqpTransportState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface AmqpTransportOptions {
  readonly logger?: Logger;
  /**
   * Shown as the connection name in RabbitMQ's management UI and `rabbitmqctl list_connections`
   * (client property `connection_name`). Default `stratus:<pid>`.
   */
  readonly connectionName?: string;
}

/** Raw config as an operator writes it; defaults are applied by the constructor. */
export type AmqpTransportConfigInput = Partial<Omit<AmqpTransportConfig, 'reconnect'>> & {
  readonly reconnect?: Partial<AmqpTransportConfig['reconnect']>;
};

/** One live AMQP connection and the channels every transport operation shares. */
interface Link {
  readonly model: ChannelModel;
  readonly url: string;
  /** Confirm channel for casts (they resolve on the broker's confirm) and republished messages. */
  readonly pub: ConfirmChannel;
  /**
   * Plain channel for calls and replies: a call's reply is its confirmation (a lost request is a
   * timeout either way), so confirm bookkeeping would only cost broker work per message. It also
   * consumes RabbitMQ's direct reply-to pseudo-queue, which only the publishing channel can use.
   */
  readonly fast: Channel;
  /**
   * This connection's reply queue (`reply_<hex>`, oslo's `_reply_q`): Python oslo.messaging
   * servers answer there. Stratus servers answer over direct reply-to instead.
   */
  readonly replyQueue: string;
  /** Routes declared on this connection (exchange, queue, binding). */
  readonly declared: Map<string, Promise<void>>;
  /** Channel for declarations, recreated after a declaration closed it (406). */
  decl: Promise<Channel> | undefined;
  /** Serialises declarations: a failing one closes the channel under the others. */
  declChain: Promise<unknown>;
  dead: boolean;
}

interface ConsumerState {
  readonly routes: readonly Route[];
  readonly handler: DeliveryHandler;
  readonly prefetch: number;
  active: boolean;
  channel: Channel | undefined;
  tags: string[];
  inflight: number;
  /**
   * Deliveries received while `prefetch` handlers were running. The broker's window is per queue
   * (see startConsumer), so up to `prefetch` per bound queue may arrive; they wait here, unacked.
   */
  waiting: Waiting[];
  /** Closes the channel once the last handler settled (after cancel()). */
  drained: (() => void) | undefined;
}

interface Waiting {
  readonly ch: Channel;
  readonly msg: ConsumeMessage;
  readonly queue: string;
  readonly delivery: Delivery;
}

interface PendingRequest {
  readonly resolve: (message: TransportMessage) => void;
  readonly reject: (error: unknown) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  readonly target: string;
  /** The RPC envelope's id (the core reply carries it), absent for a non-RPC request. */
  readonly envelopeId: string | undefined;
  /** A non-null result received before the `ending` message (oslo's older two-message replies). */
  result?: unknown;
}

const JSON_PROPS = { contentType: 'application/json', contentEncoding: 'utf-8' } as const;

/**
 * RabbitMQ's direct reply-to pseudo-queue: a reply published to the name the broker substitutes
 * goes straight to the calling channel's consumer, without a queue process in between.
 */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

/** A direct reply is transient by nature (its pseudo-queue has no storage) and read only by Stratus. */
const DIRECT_REPLY_PROPS = (correlationId: string): Options.Publish => ({
  contentType: JSON_PROPS.contentType,
  correlationId,
});

/**
 * A `Transport` over RabbitMQ (AMQP 0-9-1, amqplib), speaking oslo.messaging's rabbit wire format
 * and topology so Python OpenStack services and Stratus services call each other:
 *
 * - topic and direct routes: queues `<topic>` and `<topic>.<host>` bound to the control exchange
 *   (a topic exchange, `controlExchange`), declared exactly as oslo declares them;
 * - fanout: exchange `<topic>_fanout`, one exclusive `<topic>_fanout_<hex>` queue per consumer;
 * - requests carry `_msg_id` and `_reply_q` (one exclusive `reply_<hex>` queue per connection);
 *   replies go through the default exchange as `{result, failure, ending}`.
 *
 * Reliability: TCP_NODELAY, heartbeats, reconnect with exponential backoff and jitter over every
 * URL (topology re-declared, consumers resumed), publisher confirms on casts, pending calls failed
 * at once with a retryable `TransportUnavailableError` when their connection drops, and messages
 * redelivered more than `maxRedeliveries` times moved to a dead-letter queue.
 */
export class AmqpTransport extends Transport {
  /** The effective config (defaults applied). */
  readonly config: AmqpTransportConfig;
  private readonly logger: Logger;
  private readonly connectionName: string;
  private readonly deadLetterQueue: string;
  /** TLS material read once (files at construction), for `amqps://` URLs. */
  private readonly tlsOptions: SocketOptions;
  private stateValue: AmqpTransportState = 'idle';
  private link: Link | undefined;
  private connecting: Promise<void> | undefined;
  private urlIndex = 0;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly pending = new Map<string, PendingRequest>();
  private readonly consumers = new Set<ConsumerState>();
  /** Every open consumer channel, cancelled ones still draining included, and when it closes. */
  private readonly consumerChannels = new Map<Channel, Promise<void>>();
  private readonly warnedPreconditions = new Set<string>();
  private readonly sharedQueues = new Set<string>();
  private publishProps: Options.Publish | undefined;

  /** @throws ConfigInvalidError naming every invalid config member. */
  constructor(config: AmqpTransportConfigInput = {}, options: AmqpTransportOptions = {}) {
    super();
    const { value, issues } = withDefaults(AmqpTransportConfig, config);
    if (issues.length > 0) throw new ConfigInvalidError('@stratus/transport-amqp', issues);
    if (value.reconnect.maxDelayMs < value.reconnect.minDelayMs) {
      throw new ConfigInvalidError('@stratus/transport-amqp', [
        { path: '/reconnect/maxDelayMs', message: 'must be at least reconnect.minDelayMs' },
      ]);
    }
    this.config = value;
    this.logger = options.logger ?? silentLogger();
    this.connectionName = options.connectionName ?? `stratus:${process.pid}`;
    this.deadLetterQueue = value.deadLetterQueue ?? `${value.controlExchange}:dead-letter`;
    this.tlsOptions = tlsOptions(value.tls);
  }

  /** `open` while connected; `reconnecting` while a lost connection is being re-established. */
  get state(): AmqpTransportState {
    return this.stateValue;
  }

  /**
   * Names of the topic and host queues this transport declared (consumed or published to) since it
   * was created. They outlive the connection, as oslo's do; tools and tests use this to remove them.
   */
  declaredQueues(): string[] {
    return [...this.sharedQueues];
  }

  /** The queue poison messages end in. */
  get deadLetterQueueName(): string {
    return this.deadLetterQueue;
  }

  /**
   * Connect to the first reachable URL (each tried once, in order).
   * @throws TransportUnavailableError when no broker accepted the connection; it lists each URL's error.
   */
  override async connect(): Promise<void> {
    if (this.stateValue === 'open' || this.stateValue === 'reconnecting') return;
    if (this.connecting) return this.connecting;
    this.stateValue = 'connecting';
    this.connecting = (async () => {
      try {
        const link = await this.openLink();
        if (this.stateValue !== 'connecting') {
          // close() was called meanwhile.
          await this.release(link);
          throw new TransportUnavailableError('The AMQP transport was closed while it was connecting.');
        }
        this.link = link;
        this.stateValue = 'open';
      } catch (error) {
        if (this.stateValue === 'connecting') this.stateValue = 'idle';
        throw error;
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  override async close(): Promise<void> {
    if (this.stateValue === 'closed' || this.stateValue === 'idle') {
      this.stateValue = this.stateValue === 'idle' ? 'idle' : 'closed';
      return;
    }
    this.stateValue = 'closed';
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    for (const consumer of this.consumers) consumer.active = false;
    this.consumers.clear();
    // Consumer channels close first (cancelled ones may be closing already). amqplib buffers frames
    // per channel and muxes the buffers, so a Connection.Close can reach the broker before an ack
    // still buffered on a channel; the broker then drops the ack and redelivers a message that was
    // handled. A Channel.Close follows the acks of its own channel, and its close-ok (the 'close'
    // event) says the broker has them. Bounded: a broker that stopped answering must not hold up the close.
    const channels = [...this.consumerChannels];
    if (channels.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(
          channels.map(([ch, closed]) => {
            ch.close().catch(() => {});
            return closed;
          }),
        ),
        new Promise((resolve) => {
          timer = setTimeout(resolve, 2000);
        }),
      ]);
      clearTimeout(timer);
    }
    this.failPending(
      (id, p) => `The transport was closed while request ${id} to ${p.target} awaited its reply.`,
    );
    const link = this.link;
    this.link = undefined;
    // Closing the connection makes the broker requeue every unacknowledged delivery (redelivered).
    if (link) await this.release(link);
  }

  override async consume(
    bindings: Route | readonly Route[],
    handler: DeliveryHandler,
    options: ConsumeOptions,
  ): Promise<Consumer> {
    const link = this.liveLink('consume');
    const routes = (Array.isArray(bindings) ? bindings : [bindings]) as readonly Route[];
    if (routes.length === 0) throw new InvalidInputError('consume() needs at least one route');
    routes.forEach((route, i) => {
      checkRoute(route, `/bindings/${i}`);
    });
    if (!Number.isInteger(options.prefetch) || options.prefetch < 1) {
      throw new InvalidInputError('Invalid consume options', [
        { path: '/prefetch', message: `must be an integer >= 1, got ${String(options.prefetch)}` },
      ]);
    }
    const state: ConsumerState = {
      routes: [...routes],
      handler,
      prefetch: this.config.prefetch ?? options.prefetch,
      active: true,
      channel: undefined,
      tags: [],
      inflight: 0,
      waiting: [],
      drained: undefined,
    };
    try {
      await this.startConsumer(link, state);
    } catch (error) {
      state.active = false;
      throw this.unavailable(error, `consume ${routes.map(routeName).join(', ')}`);
    }
    this.consumers.add(state);
    return { cancel: () => this.cancelConsumer(state) };
  }

  override async publish(target: Route, message: TransportMessage): Promise<void> {
    const link = this.liveLink('publish');
    checkRoute(target, '/target');
    checkObject(message, 'message');
    const body = encodeBody(encodeRequest(message, {}), 'message');
    try {
      await this.ensureRoute(link, target);
      const { exchange, routingKey } = this.addressOf(target);
      await this.send(link, exchange, routingKey, body, this.messageProps(), this.config.confirm);
    } catch (error) {
      throw this.unavailable(error, `publish to ${routeName(target)}`);
    }
  }

  override request(
    target: RequestRoute,
    message: TransportMessage,
    options: RequestOptions,
  ): Promise<TransportMessage> {
    return new Promise<TransportMessage>((resolve, reject) => {
      const link = this.liveLink('request');
      checkRoute(target, '/target');
      if ((target as Route).kind === 'fanout') {
        throw new InvalidInputError(
          'request() cannot target a fanout: several replies would race. Use publish().',
          [{ path: '/target/kind', message: 'must be topic or direct' }],
        );
      }
      if (!(options.timeoutMs > 0)) {
        throw new InvalidInputError('Invalid request options', [
          { path: '/timeoutMs', message: `must be > 0, got ${String(options.timeoutMs)}` },
        ]);
      }
      checkObject(message, 'message');
      const rpc = isRpcEnvelope(message);
      const envelopeId = rpc ? message.id : undefined;
      // The envelope id doubles as _msg_id (so both ends log the same id) unless it is in use.
      const msgId = envelopeId !== undefined && !this.pending.has(envelopeId) ? envelopeId : newMessageId();
      // _reply_q is for oslo.messaging servers; Stratus servers answer over direct reply-to.
      const body = encodeBody(encodeRequest(message, { msgId, replyQ: link.replyQueue }, rpc), 'message');
      const name = routeName(target);
      const timer = setTimeout(() => {
        this.pending.delete(msgId);
        reject(
          new TimeoutError(`No reply on ${name} within ${options.timeoutMs} ms`, {
            details: { target, timeoutMs: options.timeoutMs },
          }),
        );
      }, options.timeoutMs);
      this.pending.set(msgId, { resolve, reject, timer, target: name, envelopeId });
      const fail = (error: unknown) => {
        const pending = this.pending.get(msgId);
        if (!pending) return;
        this.pending.delete(msgId);
        clearTimeout(pending.timer);
        pending.reject(this.unavailable(error, `request to ${name}`));
      };
      // oslo sets the call timeout as the message TTL: nobody waits for it after that.
      const props: Options.Publish = {
        ...this.messageProps(),
        expiration: String(Math.ceil(options.timeoutMs)),
        replyTo: DIRECT_REPLY_TO,
        correlationId: msgId,
      };
      this.ensureRoute(link, target)
        .then(() => {
          const { exchange, routingKey } = this.addressOf(target);
          return this.send(link, exchange, routingKey, body, props, false);
        })
        .catch(fail);
    });
  }

  // --- connection management -------------------------------------------------------------------

  /** Try each URL once, starting with the current one; the first that connects wins. */
  private async openLink(): Promise<Link> {
    const urls = this.config.urls;
    const failures: string[] = [];
    for (let i = 0; i < urls.length; i++) {
      const index = (this.urlIndex + i) % urls.length;
      const url = urls[index] as string;
      try {
        const link = await this.openOne(url);
        this.urlIndex = index;
        return link;
      } catch (error) {
        failures.push(`${redact(url)}: ${(error as Error).message}`);
        this.logger.warn({ url: redact(url), err: error }, 'AMQP broker unreachable');
      }
    }
    throw new TransportUnavailableError(
      `Could not connect to any AMQP broker (${failures.join('; ')}). Check that RabbitMQ runs, and the URLs, credentials, vhost and TLS settings of transport.config.`,
      { details: { urls: urls.map(redact) } },
    );
  }

  private async openOne(url: string): Promise<Link> {
    const model = await amqpConnect(this.connectOptions(url), this.socketOptions(url));
    coalesceWrites(model);
    let link: Link | undefined;
    try {
      model.on('error', (error: Error) => {
        this.logger.warn({ err: error, url: redact(url) }, 'AMQP connection error');
      });
      model.on('blocked', (reason: string) => {
        this.logger.warn({ reason }, 'RabbitMQ blocked this connection (resource alarm): publishing waits');
      });
      model.on('unblocked', () => this.logger.info('RabbitMQ unblocked this connection'));
      const pub = await model.createConfirmChannel();
      pub.on('error', (error: Error) => this.logger.warn({ err: error }, 'AMQP publish channel error'));
      const fast = await model.createChannel();
      fast.on('error', (error: Error) => this.logger.warn({ err: error }, 'AMQP call channel error'));
      fast.on('return', (returned: Message) => {
        this.logger.debug(
          { routingKey: returned.fields.routingKey },
          'reply dropped: its reply queue is gone (the caller timed out or disconnected)',
        );
      });
      await fast.consume(DIRECT_REPLY_TO, (msg) => this.onDirectReply(msg), { noAck: true });
      const replyQueue = `reply_${newMessageId()}`;
      const replies = await model.createChannel();
      replies.on('error', (error: Error) => this.logger.warn({ err: error }, 'AMQP reply channel error'));
      await replies.assertQueue(replyQueue, { exclusive: true, autoDelete: true, durable: false });
      await replies.consume(replyQueue, (msg) => this.onReply(msg), { noAck: true });
      const opened: Link = {
        model,
        url,
        pub,
        fast,
        replyQueue,
        declared: new Map(),
        decl: undefined,
        declChain: Promise.resolve(),
        dead: false,
      };
      link = opened;
      model.on('close', (error?: Error) => this.onLinkLost(opened, error));
      // A shared channel closing under a live connection breaks every operation: start over.
      const restart = () => {
        if (!opened.dead) void opened.model.close().catch(() => {});
      };
      pub.on('close', restart);
      fast.on('close', restart);
      replies.on('close', restart);
      this.logger.info({ url: redact(url), replyQueue }, 'AMQP transport connected');
      return opened;
    } catch (error) {
      if (!link) await model.close().catch(() => {});
      throw error;
    }
  }

  private connectOptions(raw: string): Options.Connect {
    const url = new URL(raw);
    const tls = url.protocol === 'amqps:';
    const path = decodeURIComponent(url.pathname.replace(/^\//, ''));
    return {
      protocol: tls ? 'amqps' : 'amqp',
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port ? Number(url.port) : tls ? 5671 : 5672,
      username: url.username ? decodeURIComponent(url.username) : 'guest',
      password: url.password ? decodeURIComponent(url.password) : 'guest',
      vhost: path === '' ? '/' : path,
      heartbeat: this.config.heartbeatSec,
      locale: 'en_US',
      frameMax: 131072,
    };
  }

  private socketOptions(raw: string): SocketOptions {
    const options: SocketOptions = {
      // Without it one caller waits on Nagle + delayed ACK: ~44 calls/s instead of thousands.
      noDelay: true,
      timeout: this.config.connectTimeoutMs,
      keepAlive: true,
      clientProperties: { connection_name: this.connectionName, product: '@stratus/transport-amqp' },
    };
    return raw.startsWith('amqps:') ? { ...options, ...this.tlsOptions } : options;
  }

  private onLinkLost(link: Link, error?: Error): void {
    if (link.dead) return;
    link.dead = true;
    if (this.link !== link) return;
    this.link = undefined;
    if (this.stateValue !== 'open') return;
    this.stateValue = 'reconnecting';
    this.logger.warn(
      { err: error, url: redact(link.url), pending: this.pending.size },
      'AMQP connection lost; failing pending calls and reconnecting',
    );
    for (const consumer of this.consumers) {
      consumer.channel = undefined;
      consumer.tags = [];
      consumer.waiting = [];
    }
    this.failPending(
      (id, p) =>
        `The connection to the AMQP broker dropped while request ${id} to ${p.target} awaited its reply; it may or may not have run. Retry if the operation is safe to repeat.`,
    );
    this.attempt = 0;
    // Fail over: the next URL is tried first.
    this.urlIndex = (this.urlIndex + 1) % this.config.urls.length;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const { minDelayMs, maxDelayMs, jitter } = this.config.reconnect;
    const base = Math.min(maxDelayMs, minDelayMs * 2 ** this.attempt);
    const delay = Math.max(0, Math.round(base * (1 - jitter + 2 * jitter * Math.random())));
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.reconnect();
    }, delay);
  }

  private async reconnect(): Promise<void> {
    if (this.stateValue !== 'reconnecting') return;
    let link: Link;
    try {
      link = await this.openLink();
    } catch (error) {
      this.logger.warn({ err: error, attempt: this.attempt }, 'AMQP reconnect failed; retrying');
      if (this.stateValue === 'reconnecting') this.scheduleReconnect();
      return;
    }
    if (this.stateValue !== 'reconnecting') {
      await this.release(link);
      return;
    }
    this.link = link;
    this.stateValue = 'open';
    try {
      for (const consumer of this.consumers) {
        if (consumer.active) await this.startConsumer(link, consumer);
      }
      this.logger.info(
        { url: redact(link.url), consumers: this.consumers.size, attempts: this.attempt },
        'AMQP transport reconnected; consumers resumed',
      );
      this.attempt = 0;
    } catch (error) {
      // The new connection failed while re-declaring: its close event schedules the next attempt.
      this.logger.warn({ err: error }, 'resuming consumers after reconnect failed');
      if (!link.dead) await link.model.close().catch(() => {});
    }
  }

  private async release(link: Link): Promise<void> {
    link.dead = true;
    try {
      await link.model.close();
    } catch {
      // Already closed by the broker or the network: nothing left to release.
    }
  }

  private liveLink(operation: string): Link {
    const link = this.link;
    if (link && !link.dead && this.stateValue === 'open') return link;
    if (this.stateValue === 'reconnecting' || this.stateValue === 'open') {
      throw new TransportUnavailableError(
        `AmqpTransport.${operation}(): the connection to the broker was lost and is being re-established; retry shortly.`,
      );
    }
    throw new TransportUnavailableError(
      `AmqpTransport.${operation}() needs a connected transport: call connect() first (and not after close()).`,
    );
  }

  private failPending(message: (id: string, pending: PendingRequest) => string): void {
    const entries = [...this.pending];
    this.pending.clear();
    for (const [id, pending] of entries) {
      clearTimeout(pending.timer);
      pending.reject(
        new TransportUnavailableError(message(id, pending), { details: { target: pending.target } }),
      );
    }
  }

  /** Amqplib and socket errors become retryable `TransportUnavailableError`s; typed errors pass. */
  private unavailable(error: unknown, what: string): unknown {
    if (StratusError.is(error)) return error;
    return new TransportUnavailableError(
      `AMQP ${what} failed: ${(error as Error)?.message ?? String(error)}. The broker connection is unusable; retry once it is back.`,
      { cause: error },
    );
  }

  // --- topology ----------------------------------------------------------------------------------

  private addressOf(route: Route): { exchange: string; routingKey: string } {
    if (route.kind === 'fanout') return { exchange: routeName(route), routingKey: '' };
    // The topic or host queue is bound to the control exchange under its own name, and every queue
    // is reachable through the default exchange by name: same queue, an exact-name lookup instead
    // of a topic-pattern match in the broker.
    if (!this.config.publishViaControlExchange) return { exchange: '', routingKey: routeName(route) };
    return { exchange: this.config.controlExchange, routingKey: routeName(route) };
  }

  /** Declare what `route` needs on this connection, as oslo declares it (cached per connection). */
  private ensureRoute(link: Link, route: Route): Promise<void> {
    if (route.kind === 'fanout') {
      // Auto-delete: it vanishes with its last queue, so it is re-declared on every use.
      return this.declare(link, `exchange ${routeName(route)}`, (ch) =>
        ch.assertExchange(routeName(route), 'fanout', { durable: false, autoDelete: true }),
      );
    }
    const queue = routeName(route);
    this.sharedQueues.add(queue);
    let done = link.declared.get(queue);
    if (!done) {
      const exchange = this.config.controlExchange;
      const durable = this.config.durableQueues;
      done = this.declare(link, `exchange ${exchange}`, (ch) =>
        ch.assertExchange(exchange, 'topic', { durable, autoDelete: false }),
      )
        .then(() =>
          this.declare(link, `queue ${queue}`, (ch) =>
            ch.assertQueue(queue, { durable, autoDelete: false, exclusive: false }),
          ),
        )
        .then(() => this.declare(link, `binding ${queue}`, (ch) => ch.bindQueue(queue, exchange, queue)));
      link.declared.set(queue, done);
      done.catch(() => link.declared.delete(queue));
    }
    return done;
  }

  /**
   * Run one declaration on the declaration channel. An entity that exists with other flags (406,
   * e.g. declared by Python services with another `amqp_durable_queues`) is used as it is.
   */
  private declare(link: Link, what: string, op: (ch: Channel) => Promise<unknown>): Promise<void> {
    const run = async () => {
      if (link.dead)
        throw new TransportUnavailableError(`The broker connection closed before declaring ${what}.`);
      link.decl ??= link.model.createChannel().then((ch) => {
        ch.on('error', () => {});
        ch.on('close', () => {
          link.decl = undefined;
        });
        return ch;
      });
      const ch = await link.decl;
      try {
        await op(ch);
      } catch (error) {
        if ((error as { code?: unknown }).code !== 406) throw error;
        link.decl = undefined;
        if (!this.warnedPreconditions.has(what)) {
          this.warnedPreconditions.add(what);
          this.logger.warn(
            { entity: what, err: error },
            'AMQP entity exists with other settings (another service declared it differently); using it as it is. Align durableQueues with the other services to silence this.',
          );
        }
      }
    };
    const result = link.declChain.then(run, run);
    link.declChain = result.catch(() => {});
    return result;
  }

  // --- publishing --------------------------------------------------------------------------------

  /** Properties of every call and cast (calls add theirs to a copy); built once, amqplib only reads them. */
  private messageProps(): Options.Publish {
    this.publishProps ??= { ...JSON_PROPS, deliveryMode: this.config.durableQueues ? 2 : 1 };
    return this.publishProps;
  }

  /**
   * With `waitConfirm`, publish on the link's confirm channel and resolve on the broker's ack
   * (reject on its nack); otherwise publish on the plain channel and resolve once written.
   */
  private send(
    link: Link,
    exchange: string,
    routingKey: string,
    body: Buffer,
    props: Options.Publish,
    waitConfirm: boolean,
  ): Promise<void> {
    if (link.dead) {
      return Promise.reject(new TransportUnavailableError('The broker connection closed before publishing.'));
    }
    if (!waitConfirm) {
      const ok = link.fast.publish(exchange, routingKey, body, props);
      return ok ? Promise.resolve() : new Promise((resolve) => link.fast.once('drain', () => resolve()));
    }
    return new Promise<void>((resolve, reject) => {
      link.pub.publish(exchange, routingKey, body, props, (error) => {
        if (error) {
          reject(
            new TransportUnavailableError(
              `The broker did not confirm the message for ${routingKey} (nack or channel closed); it may be lost. Retry.`,
            ),
          );
        } else resolve();
      });
    });
  }

  // --- consuming ---------------------------------------------------------------------------------

  private async startConsumer(link: Link, state: ConsumerState): Promise<void> {
    const queues: { route: Route; queue: string }[] = [];
    for (const route of state.routes) {
      if (route.kind === 'fanout') {
        await this.ensureRoute(link, route);
        const queue = `${routeName(route)}_${newMessageId()}`;
        await this.declare(link, `queue ${queue}`, async (ch) => {
          await ch.assertQueue(queue, { exclusive: true, autoDelete: true, durable: false });
          await ch.bindQueue(queue, routeName(route), route.topic);
        });
        queues.push({ route, queue });
      } else {
        await this.ensureRoute(link, route);
        queues.push({ route, queue: routeName(route) });
      }
    }
    const ch = await link.model.createChannel();
    ch.on('error', (error: Error) => this.logger.warn({ err: error }, 'AMQP consumer channel error'));
    this.consumerChannels.set(ch, new Promise((resolve) => ch.once('close', () => resolve())));
    ch.on('close', () => {
      this.consumerChannels.delete(ch);
      this.onConsumerChannelClosed(link, state, ch);
    });
    // A window per queue, not RabbitMQ's channel-wide (global) one: that makes the channel and the
    // queues coordinate on every delivery, which the broker's docs call slow, and RabbitMQ 4 drops
    // it. The shared topic queue still lends this consumer at most `prefetch` messages; the bound
    // is kept on handlers instead (onDelivery), so at most `prefetch` run at once over all queues.
    await ch.prefetch(state.prefetch, false);
    const tags: string[] = [];
    for (const { route, queue } of queues) {
      const { consumerTag } = await ch.consume(
        queue,
        (msg) => this.onDelivery(link, state, ch, route, queue, msg),
        {
          noAck: false,
        },
      );
      tags.push(consumerTag);
    }
    if (!state.active) {
      await ch.close().catch(() => {});
      return;
    }
    state.channel = ch;
    state.tags = tags;
  }

  private onConsumerChannelClosed(link: Link, state: ConsumerState, ch: Channel): void {
    if (state.channel !== ch) return;
    state.channel = undefined;
    state.tags = [];
    // The broker requeued what was delivered on it, waiting deliveries included.
    state.waiting = [];
    if (!state.active || link.dead || this.link !== link) return;
    // The channel died under a live connection (e.g. its queue was deleted): resume on a new one.
    this.logger.warn({ routes: state.routes.map(routeName) }, 'AMQP consumer channel closed; resuming');
    setTimeout(() => {
      if (state.active && this.link === link && !link.dead && !state.channel) {
        this.startConsumer(link, state).catch((error: unknown) => {
          this.logger.error({ err: error }, 'could not resume AMQP consumer');
        });
      }
    }, this.config.reconnect.minDelayMs);
  }

  private async cancelConsumer(state: ConsumerState): Promise<void> {
    if (!state.active) return;
    state.active = false;
    this.consumers.delete(state);
    const ch = state.channel;
    const tags = state.tags;
    state.tags = [];
    if (!ch) return;
    for (const tag of tags) {
      try {
        await ch.cancel(tag);
      } catch {
        // The channel is already gone: nothing more will be delivered on it.
      }
    }
    // Deliveries not started yet go back to their queue, for another consumer.
    const waiting = state.waiting;
    state.waiting = [];
    for (const entry of waiting) safely(() => entry.ch.nack(entry.msg, false, true));
    // Handlers still running ack on this channel; close it once they are done.
    const closeChannel = () => {
      state.channel = undefined;
      void ch.close().catch(() => {});
    };
    if (state.inflight === 0) closeChannel();
    else state.drained = closeChannel;
  }

  private onDelivery(
    link: Link,
    state: ConsumerState,
    ch: Channel,
    route: Route,
    queue: string,
    msg: ConsumeMessage | null,
  ): void {
    if (msg === null) {
      // The broker cancelled the consumer (its queue was deleted): resume on a fresh channel.
      this.logger.warn({ queue }, 'AMQP consumer cancelled by the broker');
      void ch.close().catch(() => {});
      return;
    }
    if (!state.active) {
      // Arrived between cancel() and the broker's cancel-ok: back to the queue for the next consumer.
      safely(() => ch.nack(msg, false, true));
      return;
    }
    const count = redeliveries(msg);
    if (msg.fields.redelivered) {
      void this.recycle(link, ch, queue, msg, count + 1);
      return;
    }
    let delivery: Delivery;
    try {
      delivery = this.toDelivery(route, msg, count);
    } catch (error) {
      void this.deadLetter(link, ch, queue, msg, `malformed: ${(error as Error).message}`);
      return;
    }
    if (state.inflight >= state.prefetch) {
      state.waiting.push({ ch, msg, queue, delivery });
      return;
    }
    this.handle(state, ch, msg, queue, delivery);
  }

  private handle(
    state: ConsumerState,
    ch: Channel,
    msg: ConsumeMessage,
    queue: string,
    delivery: Delivery,
  ): void {
    state.inflight++;
    void Promise.resolve()
      .then(() => state.handler(delivery))
      .catch((error: unknown) => {
        this.logger.warn(
          { err: error, queue },
          'transport handler rejected; the message is dropped, not requeued',
        );
      })
      .finally(() => {
        // Acknowledge on the channel it came on; if that died the broker already requeued it.
        safely(() => ch.ack(msg));
        state.inflight--;
        this.runWaiting(state);
        if (state.inflight === 0 && state.waiting.length === 0 && state.drained) {
          const drained = state.drained;
          state.drained = undefined;
          drained();
        }
      });
  }

  /** Start waiting deliveries while the window has room; hand back those nobody will run. */
  private runWaiting(state: ConsumerState): void {
    while (state.waiting.length > 0 && state.inflight < state.prefetch) {
      const next = state.waiting.shift() as Waiting;
      if (next.ch !== state.channel) continue; // its channel closed: the broker requeued it
      if (!state.active) {
        safely(() => next.ch.nack(next.msg, false, true));
        continue;
      }
      this.handle(state, next.ch, next.msg, next.queue, next.delivery);
    }
  }

  private toDelivery(route: Route, msg: ConsumeMessage, count: number): Delivery {
    const decoded = decodeRequest(unwrapEnvelope(msg.content));
    const { msgId, replyQ } = decoded;
    const base = { message: decoded.message, route, redelivered: count > 0 };
    // A Stratus caller asks for direct reply-to (and correlates by correlationId); an oslo caller
    // names its reply queue in the body.
    const replyTo = msg.properties.replyTo;
    const correlationId = msg.properties.correlationId ?? msgId;
    const direct =
      typeof replyTo === 'string' &&
      replyTo.startsWith(`${DIRECT_REPLY_TO}.`) &&
      typeof correlationId === 'string';
    if (!direct && (msgId === undefined || replyQ === undefined)) return base;
    let sent = false;
    const reply = async (answer: TransportMessage): Promise<void> => {
      if (sent)
        throw new InvalidStateError(
          `A reply to request ${msgId ?? correlationId} was already sent; send exactly one.`,
        );
      // Serialised before `sent` is set: a reply that cannot be sent may be replaced by an error reply.
      const body = direct
        ? encodePlainBody(answer, 'reply')
        : encodeBody(encodeReply(checked(answer, 'reply'), msgId as string, decoded.rpc), 'reply');
      sent = true;
      // Replies go out on the current connection: a reply queue is reachable from any of them.
      const current = this.link;
      if (!current || current.dead) {
        this.logger.debug({ msgId }, 'reply dropped: the transport is not connected');
        return;
      }
      safely(() =>
        direct
          ? // Not mandatory: RabbitMQ 3.x returns every mandatory direct reply as NO_ROUTE even
            // though it delivered it, doubling the broker's and this server's work per call.
            current.fast.publish('', replyTo, body, DIRECT_REPLY_PROPS(correlationId as string))
          : // mandatory: a reply queue that vanished returns the message instead of losing it silently.
            current.fast.publish('', replyQ as string, body, {
              ...JSON_PROPS,
              deliveryMode: 1,
              mandatory: true,
            }),
      );
    };
    return { ...base, reply };
  }

  /** A message handed out before and never settled: count it, then requeue it or dead-letter it. */
  private async recycle(
    link: Link,
    ch: Channel,
    queue: string,
    msg: ConsumeMessage,
    next: number,
  ): Promise<void> {
    if (next > this.config.maxRedeliveries) {
      await this.deadLetter(
        link,
        ch,
        queue,
        msg,
        `redelivered ${next} times without being settled (maxRedeliveries ${this.config.maxRedeliveries}): its handling crashes the consumer`,
      );
      return;
    }
    try {
      // Republished (to the tail) with the count: the broker's own redelivered flag carries no count.
      await this.send(
        link,
        '',
        queue,
        msg.content,
        { ...copyProps(msg), headers: { ...(msg.properties.headers ?? {}), [REDELIVERIES_HEADER]: next } },
        true,
      );
      safely(() => ch.ack(msg));
    } catch (error) {
      this.logger.warn({ err: error, queue }, 'could not requeue a redelivered message; the broker keeps it');
    }
  }

  private async deadLetter(
    link: Link,
    ch: Channel,
    queue: string,
    msg: ConsumeMessage,
    reason: string,
  ): Promise<void> {
    try {
      await this.declare(link, `queue ${this.deadLetterQueue}`, (c) =>
        c.assertQueue(this.deadLetterQueue, { durable: true, autoDelete: false, exclusive: false }),
      );
      await this.send(
        link,
        '',
        this.deadLetterQueue,
        msg.content,
        {
          ...copyProps(msg),
          deliveryMode: 2,
          headers: {
            ...(msg.properties.headers ?? {}),
            [DEAD_REASON_HEADER]: reason,
            [DEAD_QUEUE_HEADER]: queue,
          },
        },
        true,
      );
      safely(() => ch.ack(msg));
      this.logger.error(
        { queue, deadLetterQueue: this.deadLetterQueue, reason },
        'poison message moved to the dead-letter queue; inspect it there',
      );
    } catch (error) {
      this.logger.warn({ err: error, queue }, 'could not dead-letter a message; the broker keeps it');
    }
  }

  // --- replies -----------------------------------------------------------------------------------

  /**
   * A Stratus server's answer over direct reply-to: the reply message itself as JSON, matched by
   * correlationId (no oslo envelope: only Stratus servers answer there).
   */
  private onDirectReply(msg: ConsumeMessage | null): void {
    if (msg === null) return;
    const msgId = msg.properties.correlationId;
    const pending = typeof msgId === 'string' ? this.pending.get(msgId) : undefined;
    if (!pending || typeof msgId !== 'string') {
      this.logger.debug({ msgId }, 'late reply dropped: its request already ended');
      return;
    }
    this.pending.delete(msgId);
    clearTimeout(pending.timer);
    let reply: unknown;
    try {
      reply = JSON.parse(msg.content.toString('utf8'));
    } catch (error) {
      reply = error;
    }
    if (typeof reply !== 'object' || reply === null || Array.isArray(reply) || reply instanceof Error) {
      pending.reject(
        new InternalError(
          `Malformed reply from ${pending.target} to request ${msgId}: not a JSON object. The server is not a compatible Stratus peer.`,
        ),
      );
      return;
    }
    const answer = reply as TransportMessage;
    // The server answers with the id it saw (_msg_id), which differs from the envelope's only when
    // that id was already pending here.
    if (pending.envelopeId !== undefined && pending.envelopeId !== msgId && answer.id === msgId) {
      answer.id = pending.envelopeId;
    }
    // As over oslo's reply format, a handler that returned nothing answers null (Python's None).
    if (
      pending.envelopeId !== undefined &&
      !('result' in answer) &&
      !('error' in answer) &&
      isRpcReply(answer)
    ) {
      answer.result = null;
    }
    pending.resolve(answer);
  }

  private onReply(msg: ConsumeMessage | null): void {
    if (msg === null) return;
    let inner: Record<string, unknown>;
    try {
      inner = unwrapEnvelope(msg.content);
    } catch (error) {
      this.logger.warn({ err: error }, 'malformed reply dropped');
      return;
    }
    const reply = decodeReply(inner);
    const pending = reply.msgId === undefined ? undefined : this.pending.get(reply.msgId);
    if (!pending || reply.msgId === undefined) {
      this.logger.debug({ msgId: reply.msgId }, 'late reply dropped: its request already ended');
      return;
    }
    const settle = (value: TransportMessage) => {
      this.pending.delete(reply.msgId as string);
      clearTimeout(pending.timer);
      pending.resolve(value);
    };
    const id = pending.envelopeId ?? reply.msgId;
    if (reply.raw) {
      settle(reply.raw);
    } else if (reply.failure) {
      settle(toCoreReply(id, { failure: reply.failure }));
    } else {
      if (reply.hasResult && reply.result !== null) pending.result = reply.result;
      // A message with ending false and no result is oslo's call-monitor heartbeat: keep waiting.
      if (reply.ending) settle(toCoreReply(id, { result: pending.result }));
    }
  }
}

/** `message`, once known to be a JSON object. */
function checked(message: unknown, what: string): TransportMessage {
  checkObject(message, what);
  return message;
}

function checkRoute(route: unknown, path: string): asserts route is Route {
  const issues = schemaIssues(RouteSchema, route);
  if (issues.length > 0) {
    throw new InvalidInputError(
      'Invalid route',
      issues.map((i) => ({ path: `${path}${i.path}`, message: i.message })),
    );
  }
}

function redeliveries(msg: ConsumeMessage): number {
  const value = Number(msg.properties.headers?.[REDELIVERIES_HEADER] ?? 0);
  return Number.isFinite(value) && value > 0 ? value : 0;
}

function copyProps(msg: ConsumeMessage): Options.Publish {
  const p = msg.properties;
  const out: Options.Publish = {};
  if (p.contentType !== undefined) out.contentType = p.contentType;
  if (p.contentEncoding !== undefined) out.contentEncoding = p.contentEncoding;
  if (p.deliveryMode !== undefined) out.deliveryMode = p.deliveryMode;
  if (p.correlationId !== undefined) out.correlationId = p.correlationId;
  if (p.replyTo !== undefined) out.replyTo = p.replyTo;
  if (p.expiration !== undefined) out.expiration = p.expiration;
  if (p.messageId !== undefined) out.messageId = p.messageId;
  if (p.timestamp !== undefined) out.timestamp = p.timestamp;
  if (p.type !== undefined) out.type = p.type;
  if (p.appId !== undefined) out.appId = p.appId;
  if (p.priority !== undefined) out.priority = p.priority;
  return out;
}

/** Ack/nack on a channel that may have closed meanwhile: the broker then requeued the message. */
function safely(op: () => void): void {
  try {
    op();
  } catch {
    // Channel closed: the broker already put the message back.
  }
}

/** `amqp://user:secret@host/` → `amqp://user:***@host/` for logs and errors. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

function tlsOptions(tls: AmqpTransportConfig['tls']): SocketOptions {
  if (!tls) return {};
  return {
    rejectUnauthorized: tls.rejectUnauthorized,
    ...(tls.ca === undefined ? {} : { ca: [pem(tls.ca, 'tls.ca')] }),
    ...(tls.cert === undefined ? {} : { cert: pem(tls.cert, 'tls.cert') }),
    ...(tls.key === undefined ? {} : { key: pem(tls.key, 'tls.key') }),
    ...(tls.passphrase === undefined ? {} : { passphrase: tls.passphrase }),
    ...(tls.servername === undefined ? {} : { servername: tls.servername }),
  };
}

function pem(value: string, what: string): string {
  if (value.includes('-----BEGIN')) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch (error) {
    throw new ConfigInvalidError('@stratus/transport-amqp', [
      {
        path: `/${what.replace('.', '/')}`,
        message: `is neither PEM text nor a readable file: ${(error as Error).message}`,
      },
    ]);
  }
}

/** The amqplib internals `coalesceWrites` relies on (amqplib 2.x: `lib/connection.js`, `lib/mux.js`). */
interface AmqplibConnectionInternals {
  readonly stream?: { cork?: () => void; uncork?: () => void };
  readonly muxer?: { _readIncoming?: () => void };
}

/**
 * amqplib writes every frame group (a publish, an ack) to the socket on its own: one syscall each,
 * and on a loopback or virtual NIC the syscall is most of the cost of a message (a profile showed
 * a third of both client and server CPU in `writeBuffer`). Corking the socket around the muxer's
 * pass over the channel buffers sends everything queued in that pass in one `writev`; nothing
 * waits longer than it did (the pass is already deferred by amqplib, and it ends with the uncork).
 * Without the expected internals (another amqplib), writes go out as before.
 */
export function coalesceWrites(model: ChannelModel): boolean {
  const connection = (model as unknown as { connection?: AmqplibConnectionInternals }).connection;
  const stream = connection?.stream;
  const muxer = connection?.muxer;
  const pass = muxer?._readIncoming;
  if (!stream?.cork || !stream.uncork || !muxer || typeof pass !== 'function') return false;
  muxer._readIncoming = function readIncomingCorked(this: unknown) {
    stream.cork?.();
    try {
      pass.call(this);
    } finally {
      stream.uncork?.();
    }
  };
  return true;
}
