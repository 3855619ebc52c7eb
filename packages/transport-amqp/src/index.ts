import { definePlugin } from '@stratus/core';
import { AmqpTransport } from './amqp-transport.js';
import { AmqpTransportConfig } from './config.js';

export {
  AmqpTransport,
  type AmqpTransportConfigInput,
  type AmqpTransportOptions,
  type AmqpTransportState,
  DEAD_QUEUE_HEADER,
  DEAD_REASON_HEADER,
  REDELIVERIES_HEADER,
  redact,
} from './amqp-transport.js';
export { AmqpTlsConfig, AmqpTransportConfig } from './config.js';
export * as wire from './wire.js';

/**
 * The `transport` plugin: RabbitMQ with oslo.messaging's wire format. In stratus.yaml:
 * `transport: { plugin: '@stratus/transport-amqp', config: { urls: ['amqp://user:pw@rabbit:5672/'] } }`.
 */
const amqpTransportPlugin = definePlugin({
  name: '@stratus/transport-amqp',
  kind: 'transport',
  contract: '^1.0.0',
  description: "RabbitMQ transport, wire-compatible with oslo.messaging's rabbit driver",
  config: AmqpTransportConfig,
  create: (config, env) =>
    new AmqpTransport(config, { logger: env.logger, connectionName: `stratus:${env.host}:${process.pid}` }),
});

export default amqpTransportPlugin;
