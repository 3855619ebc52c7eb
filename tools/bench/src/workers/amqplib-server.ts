/**
 * Bare amqplib request/reply server, the floor the broker sets: consumes `<queue>` (prefetch 256,
 * manual ack) and answers on `replyTo`; consumes `<queue>.cast` and acks. Args: url queue.
 */
import { connect } from 'amqplib';

const [url = 'amqp://guest:guest@127.0.0.1:5672/', queue = 'bench.amqplib'] = process.argv.slice(2);
const connection = await connect(url, { noDelay: true });
const channel = await connection.createChannel();
await channel.prefetch(256);
await channel.assertQueue(queue, { durable: false, autoDelete: true });
await channel.assertQueue(`${queue}.cast`, { durable: false, autoDelete: true });
await channel.consume(queue, (msg) => {
  if (!msg) return;
  const { payload } = JSON.parse(msg.content.toString()) as { payload: string };
  channel.publish('', msg.properties.replyTo as string, Buffer.from(JSON.stringify({ result: payload })), {
    correlationId: msg.properties.correlationId as string,
  });
  channel.ack(msg);
});
await channel.consume(`${queue}.cast`, (msg) => {
  if (!msg) return;
  JSON.parse(msg.content.toString());
  channel.ack(msg);
});
console.log('READY');
process.once('SIGTERM', async () => {
  await connection.close();
  process.exit(0);
});
