/**
 * Closed-loop call throughput over RabbitMQ: N callers, each issuing the next `echo` call as soon
 * as the previous returns (100-byte string payload), through RpcClient → AmqpTransport → RpcServer.
 *
 *   npx tsx scripts/bench.ts [concurrency...]      (default: 1 16)
 *   STRATUS_BENCH_URL=amqp://... STRATUS_BENCH_SECONDS=10 npx tsx scripts/bench.ts 1 16 128
 */
import { defineEndpoints, endpoint, RequestContext, RpcClient, RpcServer } from '@stratus/core';
import Type from 'typebox';
import { AmqpTransport } from '../src/index.js';

const url = process.env.STRATUS_BENCH_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';
const seconds = Number(process.env.STRATUS_BENCH_SECONDS ?? 5);
const levels = process.argv.slice(2).map(Number);
const controlExchange = `stratus-bench-${process.pid}`;
const topic = `bench_${process.pid}`;

const serverTransport = new AmqpTransport({ urls: [url], controlExchange });
const clientTransport = new AmqpTransport({ urls: [url], controlExchange });
await serverTransport.connect();
await clientTransport.connect();
const server = new RpcServer(serverTransport, {
  topic,
  host: 'bench',
  version: '1.0',
  maxConcurrency: 256,
  endpoints: defineEndpoints({
    echo: endpoint(Type.Object({ payload: Type.String() }), (_ctx, { payload }) => payload),
  }),
});
await server.start();
const client = new RpcClient(clientTransport, { topic, defaultTimeoutMs: 30_000 });
const ctx = RequestContext.admin();
const payload = 'x'.repeat(100);

async function measure(
  concurrency: number,
  ms: number,
): Promise<{ calls: number; p50: number; p99: number }> {
  const latencies: number[] = [];
  const until = Date.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) {
        const start = performance.now();
        await client.call(ctx, {}, 'echo', { payload });
        latencies.push(performance.now() - start);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { calls: latencies.length, p50: at(0.5), p99: at(0.99) };
}

for (const concurrency of levels.length > 0 ? levels : [1, 16]) {
  await measure(concurrency, 1000); // warm-up
  const { calls, p50, p99 } = await measure(concurrency, seconds * 1000);
  console.log(
    `concurrency ${String(concurrency).padStart(3)}: ${Math.round(calls / seconds)} calls/s  p50 ${p50.toFixed(2)} ms  p99 ${p99.toFixed(2)} ms`,
  );
}

await server.stop();
await serverTransport.close();
await clientTransport.close();
// Remove the bench topology (the queues outlive the connections, as oslo's do).
const { connect } = await import('amqplib');
const admin = await connect(url);
const ch = await admin.createChannel();
for (const queue of [topic, `${topic}.bench`]) await ch.deleteQueue(queue);
await ch.deleteExchange(controlExchange);
await admin.close();
