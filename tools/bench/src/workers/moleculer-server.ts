/**
 * Moleculer 0.14 node with the AMQP transporter serving `bench.echo` (params validated).
 * Args: url namespace tuned|default. tuned = prefetch 256 + noDelay; default = the transporter's
 * defaults (prefetch 1, Nagle on).
 */
import { ServiceBroker } from 'moleculer';

const [url = 'amqp://guest:guest@127.0.0.1:5672/', namespace = 'bench', variant = 'tuned'] =
  process.argv.slice(2);
const broker = new ServiceBroker({
  namespace,
  nodeID: `bench-server-${variant}-${process.pid}`,
  logger: false,
  validator: true,
  metrics: false,
  tracing: false,
  serializer: 'JSON',
  transporter: {
    type: 'AMQP',
    options: variant === 'tuned' ? { url, prefetch: 256, socketOptions: { noDelay: true } } : { url },
  },
});
broker.createService({
  name: 'bench',
  actions: {
    echo: { params: { payload: 'string' }, handler: (ctx) => (ctx.params as { payload: string }).payload },
  },
});
await broker.start();
console.log('READY');
process.once('SIGTERM', async () => {
  await broker.stop();
  process.exit(0);
});
