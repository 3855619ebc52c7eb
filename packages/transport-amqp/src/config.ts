import Type, { type Static } from 'typebox';

/** TLS material and checks handed to Node's `tls.connect` for `amqps://` URLs. */
export const AmqpTlsConfig = Type.Object(
  {
    ca: Type.Optional(
      Type.String({ minLength: 1, description: 'CA bundle: PEM text, or the path of a PEM file' }),
    ),
    cert: Type.Optional(
      Type.String({ minLength: 1, description: 'Client certificate: PEM text, or the path of a PEM file' }),
    ),
    key: Type.Optional(
      Type.String({ minLength: 1, description: 'Client private key: PEM text, or the path of a PEM file' }),
    ),
    passphrase: Type.Optional(Type.String({ description: 'Passphrase of `key`' })),
    servername: Type.Optional(
      Type.String({ minLength: 1, description: 'SNI name and name checked in the certificate' }),
    ),
    rejectUnauthorized: Type.Boolean({
      default: true,
      description: 'Refuse a broker certificate that does not chain to `ca`; false only for testing',
    }),
  },
  { additionalProperties: false },
);
export type AmqpTlsConfig = Static<typeof AmqpTlsConfig>;

const AmqpUrl = Type.String({
  pattern: '^amqps?://',
  description: 'amqp://user:password@host:5672/vhost (amqps:// for TLS); URL-encode special characters',
});

/** Config of the `@stratus/transport-amqp` plugin (`transport.config` in stratus.yaml). */
export const AmqpTransportConfig = Type.Object(
  {
    urls: Type.Array(AmqpUrl, {
      minItems: 1,
      default: ['amqp://guest:guest@127.0.0.1:5672/'],
      description: 'Brokers to connect to, tried in order; on a lost connection the next one is tried first',
    }),
    controlExchange: Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[A-Za-z0-9_.:-]+$',
      default: 'openstack',
      description: "oslo.messaging's control_exchange: the topic exchange topic and host queues are bound to",
    }),
    heartbeatSec: Type.Integer({
      minimum: 0,
      maximum: 3600,
      default: 30,
      description:
        'AMQP heartbeat interval; a silent broker is declared dead after two missed beats. 0 disables',
    }),
    prefetch: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 65535,
        description:
          "Unacknowledged deliveries per consumer; default: the consumer's own window (the service's maxConcurrency)",
      }),
    ),
    confirm: Type.Boolean({
      default: true,
      description: 'Resolve publish() (casts) only on the broker confirm, so a cast is never silently lost',
    }),
    publishViaControlExchange: Type.Boolean({
      default: false,
      description:
        "Publish calls and casts through the control exchange, as oslo.messaging does, instead of straight to the topic or host queue through the default exchange (same queue, cheaper routing for the broker). Set it when something else is bound to the control exchange with a topic's routing key and must see Stratus's messages",
    }),
    durableQueues: Type.Boolean({
      default: false,
      description:
        "oslo.messaging's amqp_durable_queues: durable control exchange and topic queues, persistent messages. Must match the Python services sharing the broker",
    }),
    connectTimeoutMs: Type.Integer({
      minimum: 1,
      default: 5000,
      description: 'TCP/TLS connect timeout per broker URL',
    }),
    reconnect: Type.Object(
      {
        minDelayMs: Type.Integer({ minimum: 0, default: 200, description: 'First reconnect delay' }),
        maxDelayMs: Type.Integer({ minimum: 1, default: 30000, description: 'Reconnect delay cap' }),
        jitter: Type.Number({
          minimum: 0,
          maximum: 1,
          default: 0.3,
          description:
            'Random spread of each delay, as a fraction of it (avoids every host reconnecting at once)',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    maxRedeliveries: Type.Integer({
      minimum: 0,
      maximum: 1000,
      default: 5,
      description:
        'Times a message whose handler never settled (the consumer died) is redelivered before it goes to the dead-letter queue',
    }),
    deadLetterQueue: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        description: 'Queue receiving poison messages; default `<controlExchange>:dead-letter`',
      }),
    ),
    tls: Type.Optional(AmqpTlsConfig),
  },
  { additionalProperties: false },
);
export type AmqpTransportConfig = Static<typeof AmqpTransportConfig>;
