/** Stratus RPC server on RabbitMQ: `echo` (calls) and `sink` (casts). Args: url controlExchange topic. */
import { defineEndpoints, endpoint, RpcServer } from '@stratus/core';
import { AmqpTransport } from '@stratus/transport-amqp';
import Type from 'typebox';

const [url = 'amqp://guest:guest@127.0.0.1:5672/', controlExchange = 'stratus-bench', topic = 'bench'] =
  process.argv.slice(2);
const transport = new AmqpTransport({ urls: [url], controlExchange });
await transport.connect();
const server = new RpcServer(transport, {
  topic,
  host: 'bench',
  version: '1.0',
  maxConcurrency: 256,
  endpoints: defineEndpoints({
    echo: endpoint(Type.Object({ payload: Type.String() }), (_ctx, { payload }) => payload),
    sink: endpoint(Type.Object({ payload: Type.String() }), () => undefined),
  }),
});
await server.start();
console.log('READY');
process.once('SIGTERM', async () => {
  await server.stop({ timeoutMs: 1000 });
  await transport.close();
  process.exit(0);
});
