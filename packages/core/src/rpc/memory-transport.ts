import { randomUUID } from 'node:crypto';
import Type from 'typebox';
import {
  type ConsumeOptions,
  type Consumer,
  type Delivery,
  type DeliveryHandler,
  type RequestOptions,
  type RequestRoute,
  type Route,
  Route as RouteSchema,
  routeName,
  Transport,
  type TransportMessage,
} from '../contracts/transport.js';
import { InvalidInputError, InvalidStateError, TimeoutError, TransportUnavailableError } from '../errors.js';
import { type Logger, silentLogger } from '../log/logger.js';
import { definePlugin } from '../plugin/manifest.js';
import { schemaIssues, validatorOf } from '../schema.js';
import { cloneCopied, copyMessage } from './json-copy.js';

/**
 * A message sitting in a queue: the broker's private snapshot, taken when it was published and
 * never handed out itself (each delivery gets its own copy), so no object is ever shared.
 */
interface QueuedMessage {
  readonly body: TransportMessage;
  readonly reply?: { readonly address: string; readonly correlationId: number };
  readonly redelivered: boolean;
}

class MemoryQueue {
  readonly messages: QueuedMessage[] = [];
  readonly consumers: ConsumerState[] = [];
  /** Round-robin cursor into `consumers`. */
  next = 0;
  constructor(
    readonly name: string,
    readonly route: Route,
  ) {}
}

interface ConsumerState {
  readonly logger: Logger;
  readonly prefetch: number;
  readonly handler: DeliveryHandler;
  readonly queues: MemoryQueue[];
  /** Delivered, not yet settled; the queue it came from, to put it back on close. */
  readonly unacked: Map<QueuedMessage, MemoryQueue>;
  active: boolean;
  /** Which of `queues` is pumped first when a slot frees, rotated so no binding starves. */
  pumpFrom: number;
  /** Called when a cancelled consumer has settled its last message. */
  drained?: () => void;
}

type ReplySink = (correlationId: number, body: TransportMessage) => void;

const CORE = Symbol('memory-broker-core');

/** The bus itself; reachable only through `MemoryBroker[CORE]`, i.e. from this module. */
class BrokerCore {
  readonly queues = new Map<string, MemoryQueue>();
  /** Fanout topic → the exclusive queue of each current fanout consumer. */
  readonly fanouts = new Map<string, Set<MemoryQueue>>();
  readonly replySinks = new Map<string, ReplySink>();

  constructor(readonly logger: Logger) {}

  sharedQueue(route: Route): MemoryQueue {
    const name = routeName(route);
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new MemoryQueue(name, route);
      this.queues.set(name, queue);
    }
    return queue;
  }

  enqueue(route: Route, message: QueuedMessage): void {
    if (route.kind === 'fanout') {
      for (const queue of this.fanouts.get(route.topic) ?? []) {
        queue.messages.push(message);
        this.pump(queue);
      }
      return;
    }
    const queue = this.sharedQueue(route);
    queue.messages.push(message);
    this.pump(queue);
  }

  subscribe(consumer: ConsumerState, routes: readonly Route[]): void {
    for (const route of routes) {
      let queue: MemoryQueue;
      if (route.kind === 'fanout') {
        queue = new MemoryQueue(`${routeName(route)}_${randomUUID().replaceAll('-', '')}`, route);
        let set = this.fanouts.get(route.topic);
        if (!set) {
          set = new Set();
          this.fanouts.set(route.topic, set);
        }
        set.add(queue);
      } else {
        queue = this.sharedQueue(route);
      }
      queue.consumers.push(consumer);
      consumer.queues.push(queue);
    }
    this.pumpConsumer(consumer);
  }

  /**
   * Stop deliveries to `consumer` (once); with `requeue`, its unsettled messages go back to the
   * queue head — also those of a consumer cancelled earlier, as RabbitMQ requeues a cancelled
   * consumer's unacknowledged messages when its channel closes.
   */
  unsubscribe(consumer: ConsumerState, requeue: boolean): void {
    if (consumer.active) {
      consumer.active = false;
      for (const queue of consumer.queues) {
        const index = queue.consumers.indexOf(consumer);
        if (index >= 0) queue.consumers.splice(index, 1);
        if (queue.next >= queue.consumers.length) queue.next = 0;
        if (queue.route.kind === 'fanout') this.fanouts.get(queue.route.topic)?.delete(queue);
      }
    }
    if (!requeue) return;
    const back = new Map<MemoryQueue, QueuedMessage[]>();
    for (const [message, queue] of consumer.unacked) {
      // A fanout queue dies with its consumer (exclusive, auto-delete): its messages go with it.
      if (queue.route.kind === 'fanout') continue;
      const list = back.get(queue) ?? [];
      list.push({ ...message, redelivered: true });
      back.set(queue, list);
    }
    consumer.unacked.clear();
    for (const [queue, list] of back) {
      queue.messages.unshift(...list);
      this.pump(queue);
    }
  }

  private pumpConsumer(consumer: ConsumerState): void {
    const count = consumer.queues.length;
    if (count === 0) return;
    const start = consumer.pumpFrom % count;
    consumer.pumpFrom = start + 1;
    for (let i = 0; i < count; i++) {
      const queue = consumer.queues[(start + i) % count];
      if (queue) this.pump(queue);
    }
  }

  private pump(queue: MemoryQueue): void {
    while (queue.messages.length > 0) {
      const consumer = this.pick(queue);
      if (!consumer) return;
      const message = queue.messages.shift() as QueuedMessage;
      this.deliver(consumer, queue, message);
    }
  }

  /** The next consumer after the cursor with a free prefetch slot. */
  private pick(queue: MemoryQueue): ConsumerState | undefined {
    const count = queue.consumers.length;
    for (let i = 0; i < count; i++) {
      const index = (queue.next + i) % count;
      const consumer = queue.consumers[index];
      if (consumer?.active && consumer.unacked.size < consumer.prefetch) {
        queue.next = (index + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  private deliver(consumer: ConsumerState, queue: MemoryQueue, message: QueuedMessage): void {
    consumer.unacked.set(message, queue);
    const reply = message.reply;
    const delivery: Delivery = reply
      ? {
          message: cloneCopied(message.body),
          route: queue.route,
          redelivered: message.redelivered,
          reply: this.replier(reply.address, reply.correlationId),
        }
      : { message: cloneCopied(message.body), route: queue.route, redelivered: message.redelivered };
    const settle = () => {
      // Absent when close() already put the message back.
      if (!consumer.unacked.delete(message)) return;
      if (consumer.active) this.pumpConsumer(consumer);
      else if (consumer.unacked.size === 0) consumer.drained?.();
    };
    const fail = (error: unknown) => {
      consumer.logger.warn(
        { err: error, queue: queue.name },
        'transport handler rejected; the message is dropped, not requeued',
      );
      settle();
    };
    // Asynchronous, like a network hop: a publisher never runs a handler inside its own call.
    queueMicrotask(() => {
      let outcome: Promise<void> | void;
      try {
        outcome = consumer.handler(delivery);
      } catch (error) {
        fail(error);
        return;
      }
      if (outcome && typeof outcome.then === 'function') outcome.then(settle, fail);
      else settle();
    });
  }

  private replier(address: string, correlationId: number): (message: TransportMessage) => Promise<void> {
    let sent = false;
    return async (message) => {
      if (sent)
        throw new InvalidStateError(
          `A reply to request ${correlationId} was already sent; send exactly one.`,
        );
      const body = copyMessage(message, 'reply');
      sent = true;
      // The requester's promise settles in a later microtask anyway: no hop needed here.
      const sink = this.replySinks.get(address);
      if (sink) sink(correlationId, body);
      else this.logger.debug({ correlationId }, 'reply for a closed connection dropped');
    };
  }
}

/**
 * The in-process bus several `MemoryTransport` connections attach to, like hosts to one RabbitMQ.
 * Create one per test or per process; it holds no global state.
 */
export class MemoryBroker {
  /** @internal */
  readonly [CORE]: BrokerCore;

  constructor(options: { logger?: Logger } = {}) {
    this[CORE] = new BrokerCore(options.logger ?? silentLogger());
  }

  /** Messages waiting in the topic or direct queue of `route` (0 when it was never declared). */
  depth(route: Route): number {
    if (route.kind === 'fanout') {
      let total = 0;
      for (const queue of this[CORE].fanouts.get(route.topic) ?? []) total += queue.messages.length;
      return total;
    }
    return this[CORE].queues.get(routeName(route))?.messages.length ?? 0;
  }
}

export interface MemoryTransportOptions {
  /** The bus to attach to; a private one by default (then only this connection's consumers hear it). */
  readonly broker?: MemoryBroker;
  readonly logger?: Logger;
}

interface PendingRequest {
  readonly resolve: (message: TransportMessage) => void;
  readonly reject: (error: unknown) => void;
  /** `Date.now()` after which the request times out. */
  readonly deadline: number;
  readonly target: RequestRoute;
  readonly timeoutMs: number;
}

/** setTimeout's longest delay; longer ones would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The embedded transport: one connection to a `MemoryBroker`. Broker semantics match the AMQP
 * transport's: round-robin shared queues kept until consumed, per-host queues, fanout copies,
 * prefetch windows, requeue of unacknowledged messages on close. Messages are copied on the way
 * in (checked to be JSON data, see `copyMessage`) and again per delivery, so nothing is shared and
 * only JSON values survive, without going through JSON text.
 */
export class MemoryTransport extends Transport {
  readonly broker: MemoryBroker;
  private readonly logger: Logger;
  private connected = false;
  private replyAddress = '';
  /** In send order; correlation ids are this connection's own counter. */
  private readonly pending = new Map<number, PendingRequest>();
  private nextCorrelationId = 0;
  private readonly consumers = new Set<ConsumerState>();
  /**
   * One timer for every pending request, armed for the earliest deadline (a timer per request
   * cost more than the in-process round trip). Unreferenced while nothing is pending.
   */
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(options: MemoryTransportOptions = {}) {
    super();
    this.logger = options.logger ?? silentLogger();
    this.broker = options.broker ?? new MemoryBroker({ logger: this.logger });
  }

  override async connect(): Promise<void> {
    if (this.connected) return;
    this.replyAddress = `reply_${randomUUID().replaceAll('-', '')}`;
    this.broker[CORE].replySinks.set(this.replyAddress, (id, body) => this.onReply(id, body));
    this.connected = true;
  }

  override async close(): Promise<void> {
    if (!this.connected) return;
    this.connected = false;
    const core = this.broker[CORE];
    core.replySinks.delete(this.replyAddress);
    for (const consumer of this.consumers) core.unsubscribe(consumer, true);
    this.consumers.clear();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const request of pending) {
      request.reject(
        new TransportUnavailableError(
          `The transport was closed while a request to ${routeName(request.target)} awaited its reply.`,
        ),
      );
    }
  }

  override async consume(
    bindings: Route | readonly Route[],
    handler: DeliveryHandler,
    options: ConsumeOptions,
  ): Promise<Consumer> {
    this.assertConnected('consume');
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
    const consumer: ConsumerState = {
      logger: this.logger,
      prefetch: options.prefetch,
      handler,
      queues: [],
      unacked: new Map(),
      active: true,
      pumpFrom: 0,
    };
    this.consumers.add(consumer);
    this.broker[CORE].subscribe(consumer, routes);
    return {
      cancel: async () => {
        this.broker[CORE].unsubscribe(consumer, false);
        // Kept until its handlers in flight settle: close() before then puts their messages back.
        if (consumer.unacked.size === 0) this.consumers.delete(consumer);
        else consumer.drained = () => this.consumers.delete(consumer);
      },
    };
  }

  override async publish(target: Route, message: TransportMessage): Promise<void> {
    this.assertConnected('publish');
    checkRoute(target, '/target');
    this.broker[CORE].enqueue(target, { body: copyMessage(message, 'message'), redelivered: false });
  }

  override request(
    target: RequestRoute,
    message: TransportMessage,
    options: RequestOptions,
  ): Promise<TransportMessage> {
    return new Promise<TransportMessage>((resolve, reject) => {
      this.assertConnected('request');
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
      const body = copyMessage(message, 'message');
      const correlationId = this.nextCorrelationId++;
      const deadline = Date.now() + options.timeoutMs;
      this.pending.set(correlationId, { resolve, reject, deadline, target, timeoutMs: options.timeoutMs });
      if (deadline < this.timerAt) this.arm(deadline);
      else if (this.pending.size === 1) this.timer?.ref();
      this.broker[CORE].enqueue(target, {
        body,
        reply: { address: this.replyAddress, correlationId },
        redelivered: false,
      });
    });
  }

  private onReply(correlationId: number, body: TransportMessage): void {
    const pending = this.pending.get(correlationId);
    if (!pending) {
      this.logger.debug({ correlationId }, 'late reply dropped: its request already timed out');
      return;
    }
    this.pending.delete(correlationId);
    // The armed timer stays (re-armed or dropped when it fires); it just stops holding the process.
    if (this.pending.size === 0) this.timer?.unref();
    pending.resolve(body);
  }

  private arm(deadline: number): void {
    clearTimeout(this.timer);
    this.timerAt = deadline;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(deadline - Date.now())));
    this.timer = setTimeout(() => this.sweep(), delay);
  }

  /** Time out every request past its deadline; re-arm for the earliest one left. */
  private sweep(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    const expired: PendingRequest[] = [];
    for (const [id, request] of this.pending) {
      if (request.deadline <= now) {
        this.pending.delete(id);
        expired.push(request);
      } else if (request.deadline < next) {
        next = request.deadline;
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.arm(next);
    for (const request of expired) {
      request.reject(
        new TimeoutError(`No reply on ${routeName(request.target)} within ${request.timeoutMs} ms`, {
          details: { target: request.target, timeoutMs: request.timeoutMs },
        }),
      );
    }
  }

  private assertConnected(operation: string): void {
    if (!this.connected) {
      throw new TransportUnavailableError(
        `MemoryTransport.${operation}() needs a connected transport: call connect() first (and not after close()).`,
      );
    }
  }
}

/** Frozen routes already checked (a client's default route is reused for every call). */
const checkedRoutes = new WeakSet<object>();

function checkRoute(route: unknown, path: string): asserts route is Route {
  if (typeof route === 'object' && route !== null && checkedRoutes.has(route)) return;
  if (validatorOf(RouteSchema).Check(route)) {
    // Only a frozen route stays valid: anything else could be changed after this check.
    if (Object.isFrozen(route)) checkedRoutes.add(route as object);
    return;
  }
  const issues = schemaIssues(RouteSchema, route);
  if (issues.length > 0) {
    throw new InvalidInputError(
      'Invalid route',
      issues.map((i) => ({ path: `${path}${i.path}`, message: i.message })),
    );
  }
}

/** Config of the memory transport plugin: it takes none. */
export const MemoryTransportConfig = Type.Object({}, { additionalProperties: false });

/**
 * A `transport` plugin manifest whose connections all attach to `broker`: how services of one
 * process (`stratus up`) share a bus without any global state.
 */
export function memoryTransportPluginFor(broker: MemoryBroker) {
  return definePlugin({
    name: '@stratus/core#memory',
    kind: 'transport',
    contract: '^1.0.0',
    description: 'In-process message bus (embedded default): connections attached to one MemoryBroker.',
    config: MemoryTransportConfig,
    create: (_config, env) => new MemoryTransport({ broker, logger: env.logger }),
  });
}

/**
 * The embedded default transport plugin. Each created transport gets a private broker; to let
 * several services talk, share one transport instance or use `memoryTransportPluginFor(broker)`.
 */
export const memoryTransportPlugin = definePlugin({
  name: '@stratus/core#memory',
  kind: 'transport',
  contract: '^1.0.0',
  description: 'In-process message bus (embedded default); each transport has a private broker.',
  config: MemoryTransportConfig,
  create: (_config, env) => new MemoryTransport({ logger: env.logger }),
});
