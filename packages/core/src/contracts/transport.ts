import Type, { type Static } from 'typebox';

/**
 * The transport contract: how RPC envelopes travel between hosts. Shaped after an AMQP broker
 * (the queue/exchange table of nova-2011 §3.5) so a RabbitMQ transport maps onto it directly:
 *
 * | route                              | AMQP                                              |
 * |------------------------------------|---------------------------------------------------|
 * | `{ kind: 'topic', topic }`         | shared work queue `<topic>` (round-robin)          |
 * | `{ kind: 'direct', topic, host }`  | per-host work queue `<topic>.<host>`               |
 * | `{ kind: 'fanout', topic }`        | exchange `<topic>_fanout`, one exclusive queue per consumer |
 *
 * Request/reply is a transport primitive (`request()` + `Delivery.reply`), so a broker transport
 * chooses the reply mechanism: RabbitMQ direct reply-to, one reply queue per process, or
 * oslo.messaging's `_reply_q`/`_msg_id`. The reply address is transport metadata, not part of
 * the RPC envelope.
 */

/** Topic names: no dots (a dot separates topic and host in queue names). */
const TopicName = Type.String({ minLength: 1, maxLength: 255, pattern: '^[A-Za-z0-9_-]+$' });
/** Host names may contain dots (`node7.example.com`), never whitespace. */
const HostName = Type.String({ minLength: 1, maxLength: 255, pattern: '^[^\\s]+$' });

/** The shared queue of a topic: each message goes to exactly one of its consumers, across hosts. */
export const TopicRoute = Type.Object(
  { kind: Type.Literal('topic'), topic: TopicName },
  { additionalProperties: false },
);
export type TopicRoute = Static<typeof TopicRoute>;

/** One host's own queue of a topic (`<topic>.<host>`). */
export const DirectRoute = Type.Object(
  { kind: Type.Literal('direct'), topic: TopicName, host: HostName },
  { additionalProperties: false },
);
export type DirectRoute = Static<typeof DirectRoute>;

/** Every current consumer of the topic's fanout gets its own copy; nothing is kept for later ones. */
export const FanoutRoute = Type.Object(
  { kind: Type.Literal('fanout'), topic: TopicName },
  { additionalProperties: false },
);
export type FanoutRoute = Static<typeof FanoutRoute>;

/** Where a message goes (`publish`) or comes from (`consume`). */
export const Route = Type.Union([TopicRoute, DirectRoute, FanoutRoute]);
export type Route = Static<typeof Route>;

/** Routes that can answer a request: exactly one consumer gets the message. */
export const RequestRoute = Type.Union([TopicRoute, DirectRoute]);
export type RequestRoute = Static<typeof RequestRoute>;

/**
 * What crosses a transport: a JSON object. The receiver never shares an object with the sender
 * and only JSON values survive (a `Date` arrives as its ISO string, `undefined` members vanish).
 * Broker transports serialise it to JSON text. MemoryTransport gives the receiver the same result
 * without text: a structural copy sharing only immutable values (strings, numbers, booleans,
 * null), which is stricter than JSON where JSON would silently mangle data — functions, symbols,
 * bigints, NaN/±Infinity, `undefined` inside arrays, class instances without `toJSON` (`Map`,
 * `Set`, typed arrays) and cycles are refused with `InvalidInputError` naming the path — so a
 * message accepted in process also crosses a JSON wire unchanged.
 */
export const TransportMessage = Type.Record(Type.String(), Type.Unknown());
export type TransportMessage = Record<string, unknown>;

/** The broker-level name of a route: `volume`, `volume.st-3`, `volume_fanout`. */
export function routeName(route: Route): string {
  switch (route.kind) {
    case 'topic':
      return route.topic;
    case 'direct':
      return `${route.topic}.${route.host}`;
    case 'fanout':
      return `${route.topic}_fanout`;
  }
}

/** One message handed to a consumer. */
export interface Delivery {
  /** A private copy of what was published. */
  readonly message: TransportMessage;
  /** The binding of the consumer it arrived on. */
  readonly route: Route;
  /** True when the message was handed out before and not acknowledged (its consumer went away). */
  readonly redelivered: boolean;
  /**
   * Present when the sender is waiting in `request()`: sends its answer, at most once (a second
   * call throws). A reply reaching a requester that has timed out or gone is dropped by the
   * transport. Rejects when `message` is not JSON-serialisable.
   */
  readonly reply?: (message: TransportMessage) => Promise<void>;
}

/**
 * Handles one delivery. The message is acknowledged when the returned promise settles. A rejection
 * also settles it: it is dropped, not requeued (a half-done RPC run twice is worse than once), and
 * the transport logs it. Only a consumer vanishing (`close()`, a lost connection) before the
 * promise settles puts the message back for another consumer.
 */
export type DeliveryHandler = (delivery: Delivery) => Promise<void> | void;

export interface ConsumeOptions {
  /**
   * Most deliveries this consumer handles at once, over all of its bindings. A transport may hold
   * up to this many unacknowledged per bound queue (AMQP: a per-queue `basic.qos`, the transport
   * queueing what exceeds the window); the rest wait in the broker's queues. An integer ≥ 1.
   */
  readonly prefetch: number;
}

/** A running subscription. */
export interface Consumer {
  /**
   * Stop new deliveries. Handlers already running finish and acknowledge normally; queued
   * messages stay in shared/direct queues for other consumers; a fanout queue of this consumer is
   * deleted with it. Idempotent.
   */
  cancel(): Promise<void>;
}

export interface RequestOptions {
  /** Reject with a `TimeoutError` (code `TIMEOUT`) when no reply arrived within this many ms. */
  readonly timeoutMs: number;
}

/**
 * A connection to a message bus. Implementations are created by a `transport` plugin; the RPC
 * layer (`RpcClient`, `RpcServer`) is written against this class only. The executable contract
 * is `describeTransport()` in `@stratus/testkit/transport`.
 *
 * Every operation other than `connect()` rejects with `TransportUnavailableError` while the
 * transport is not connected (before `connect()`, after `close()`).
 */
export abstract class Transport {
  /** Open the connection (and the reply channel for `request()`). Idempotent. */
  abstract connect(): Promise<void>;

  /**
   * Cancel every consumer of this connection, put their unacknowledged messages back in their
   * queues (marked `redelivered`), reject pending `request()`s with `TransportUnavailableError`
   * and release the connection. Replies to this connection's requests arriving later are dropped.
   * Idempotent.
   */
  abstract close(): Promise<void>;

  /**
   * Subscribe `handler` to one route, or to several sharing one prefetch window (a service
   * consumes `topic`, `topic.host` and the fanout with one concurrency bound). Messages published
   * to a topic or direct route before any consumer existed are kept and delivered now, in order.
   * Rejects with `InvalidInputError` for a malformed route or prefetch.
   */
  abstract consume(
    bindings: Route | readonly Route[],
    handler: DeliveryHandler,
    options: ConsumeOptions,
  ): Promise<Consumer>;

  /**
   * Send a message nobody answers (a cast). Resolves once the transport has accepted it (a broker
   * transport: on publisher confirm). A topic or direct message with no consumer yet is kept
   * until one appears (a broker transport declares the queue); a fanout message reaches the
   * consumers present now. Rejects with `InvalidInputError` when `message` is not a JSON object.
   */
  abstract publish(target: Route, message: TransportMessage): Promise<void>;

  /**
   * Send a message and wait for its single reply (`Delivery.reply`). Rejects with `TimeoutError`
   * after `timeoutMs`; a reply arriving after that is dropped and never resolves another request.
   * Fanout routes are refused with `InvalidInputError` (several replies would race).
   */
  abstract request(
    target: RequestRoute,
    message: TransportMessage,
    options: RequestOptions,
  ): Promise<TransportMessage>;
}
