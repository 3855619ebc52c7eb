/**
 * Scenario 2 — RPC over RabbitMQ, every system on the same broker in the same run, interleaved:
 * Stratus (RpcClient → AmqpTransport → RpcServer), bare amqplib (direct reply-to, noDelay,
 * prefetch 256: the broker's floor), Moleculer 0.14 AMQP transporter tuned (prefetch 256, noDelay)
 * and default, and Python oslo.messaging. Servers run in their own processes; Node clients run in
 * this process, the oslo client in its own Python process.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { RequestContext, RpcClient } from '@stratus/core';
import { AmqpTransport } from '@stratus/transport-amqp';
import { type Channel, type ConfirmChannel, connect } from 'amqplib';
import { ServiceBroker } from 'moleculer';
import {
  AMQP_URL,
  BENCH_DIR,
  type Mode,
  PYTHON,
  requireService,
  startNodeWorker,
  startWorker,
  type Worker,
} from '../lib/env.js';
import type { Recorder } from '../lib/report.js';
import { closedLoop, type Measurement } from '../lib/stats.js';

const run = promisify(execFile);
const PAYLOAD = 'x'.repeat(100);

interface Client {
  readonly name: string;
  /** Levels this system is measured at (Moleculer's defaults run one call at a time). */
  readonly levels?: (mode: Mode) => readonly number[];
  call?(): Promise<unknown>;
  cast?(): Promise<unknown>;
  /** Whole measurement in another process (oslo). */
  measure?(concurrency: number, mode: Mode): Promise<Measurement>;
  close(): Promise<void>;
}

async function stratusClient(exchange: string, topic: string): Promise<Client> {
  const transport = new AmqpTransport({ urls: [AMQP_URL], controlExchange: exchange });
  await transport.connect();
  const client = new RpcClient(transport, { topic, defaultTimeoutMs: 60_000 });
  const ctx = RequestContext.admin();
  return {
    name: 'Stratus',
    call: () => client.call(ctx, {}, 'echo', { payload: PAYLOAD }),
    cast: () => client.cast(ctx, {}, 'sink', { payload: PAYLOAD }),
    close: async () => {
      await transport.close();
      // Topic queues outlive connections (as oslo's do): remove the bench's.
      const admin = await connect(AMQP_URL);
      const ch = await admin.createChannel();
      for (const queue of transport.declaredQueues()) await ch.deleteQueue(queue).catch(() => undefined);
      await ch.deleteExchange(exchange).catch(() => undefined);
      await admin.close().catch(() => undefined);
    },
  };
}

async function amqplibClient(queue: string): Promise<Client> {
  const connection = await connect(AMQP_URL, { noDelay: true });
  const channel: Channel = await connection.createChannel();
  const confirm: ConfirmChannel = await connection.createConfirmChannel();
  const pending = new Map<string, (body: Buffer) => void>();
  let next = 0;
  await channel.consume(
    'amq.rabbitmq.reply-to',
    (msg) => {
      if (!msg) return;
      const id = msg.properties.correlationId as string;
      pending.get(id)?.(msg.content);
      pending.delete(id);
    },
    { noAck: true },
  );
  return {
    name: 'amqplib',
    call: () =>
      new Promise((resolve) => {
        const id = String(next++);
        pending.set(id, (body) => resolve(JSON.parse(body.toString())));
        channel.publish('', queue, Buffer.from(JSON.stringify({ payload: PAYLOAD })), {
          replyTo: 'amq.rabbitmq.reply-to',
          correlationId: id,
        });
      }),
    cast: () =>
      new Promise<void>((resolve, reject) => {
        confirm.publish(
          '',
          `${queue}.cast`,
          Buffer.from(JSON.stringify({ payload: PAYLOAD })),
          {},
          (error) => (error ? reject(error) : resolve()),
        );
      }),
    close: () => connection.close(),
  };
}

async function moleculerClient(namespace: string, variant: 'tuned' | 'default'): Promise<Client> {
  const broker = new ServiceBroker({
    namespace,
    nodeID: `bench-client-${variant}-${process.pid}`,
    logger: false,
    metrics: false,
    tracing: false,
    serializer: 'JSON',
    requestTimeout: 60_000,
    transporter: {
      type: 'AMQP',
      options:
        variant === 'tuned'
          ? { url: AMQP_URL, prefetch: 256, socketOptions: { noDelay: true } }
          : { url: AMQP_URL },
    },
  });
  await broker.start();
  await broker.waitForServices(['bench'], 30_000);
  return {
    name: variant === 'tuned' ? 'Moleculer AMQP tuned' : 'Moleculer AMQP default',
    ...(variant === 'default' ? { levels: (mode: Mode) => (mode.smoke ? [1] : [1, 16, 128]) } : {}),
    call: () => broker.call('bench.echo', { payload: PAYLOAD }),
    close: () => broker.stop(),
  };
}

function osloClient(topic: string): Client {
  const script = path.join(BENCH_DIR, 'python/oslo_client.py');
  return {
    name: 'oslo.messaging',
    measure: async (concurrency, mode) => {
      const { stdout } = await run(
        PYTHON,
        [
          script,
          AMQP_URL,
          topic,
          String(concurrency),
          String(mode.seconds),
          String(mode.warmupSeconds),
          String(PAYLOAD.length),
        ],
        { timeout: (mode.seconds + mode.warmupSeconds) * 1000 + 120_000 },
      );
      const m = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Measurement;
      if (m.ops === 0) throw new Error(`oslo client completed no call (${m.errors} errors)`);
      return m;
    },
    close: async () => {},
  };
}

async function measure(
  client: Client,
  op: 'call' | 'cast',
  concurrency: number,
  mode: Mode,
): Promise<Measurement> {
  if (client.measure) return client.measure(concurrency, mode);
  const fn = op === 'call' ? client.call : client.cast;
  if (!fn) throw new Error(`${client.name} has no ${op}`);
  const bound = () => fn.call(client);
  if (mode.warmupSeconds > 0) await closedLoop(concurrency, mode.warmupSeconds, bound);
  return closedLoop(concurrency, mode.seconds, bound);
}

export async function runAmqp(mode: Mode, rec: Recorder): Promise<string | undefined> {
  const down = await requireService('rabbitmq');
  if (down) return down;
  const id = `${process.pid}`;
  const exchange = `stratus-bench-${id}`;
  const topic = `bench_${id}`;
  const queue = `bench.amqplib.${id}`;
  const osloTopic = `bench_oslo_${id}`;
  const workers: Worker[] = [];
  const clients: Client[] = [];
  try {
    // Servers start in parallel: each takes seconds on a loaded machine.
    workers.push(
      ...(await Promise.all([
        startNodeWorker('stratus-amqp-server', [AMQP_URL, exchange, topic]),
        startNodeWorker('amqplib-server', [AMQP_URL, queue]),
        startNodeWorker('moleculer-server', [AMQP_URL, `bench-tuned-${id}`, 'tuned']),
        startNodeWorker('moleculer-server', [AMQP_URL, `bench-default-${id}`, 'default']),
        startWorker(PYTHON, [path.join(BENCH_DIR, 'python/oslo_server.py'), AMQP_URL, osloTopic], {
          timeoutMs: 60_000,
        }),
      ])),
    );
    const stratus = await stratusClient(exchange, topic);
    const amqplib = await amqplibClient(queue);
    clients.push(stratus, amqplib);
    const tuned = await moleculerClient(`bench-tuned-${id}`, 'tuned');
    clients.push(tuned);
    const untuned = await moleculerClient(`bench-default-${id}`, 'default');
    clients.push(untuned);
    const oslo = osloClient(osloTopic);
    clients.push(oslo);

    const callers = [stratus, amqplib, tuned, untuned, oslo];
    const levels = [1, 16, 128];
    for (let rep = 0; rep < mode.reps; rep++) {
      for (const concurrency of levels) {
        const point = `call, ${concurrency} caller${concurrency > 1 ? 's' : ''}`;
        for (const client of callers) {
          if (client.levels && !client.levels(mode).includes(concurrency)) continue;
          const m = await measure(client, 'call', concurrency, mode);
          const key = `${client.name}:call:${concurrency}`;
          rec.add(key, point, client.name, 'calls/s', m.rate);
          rec.add(`${key}:p50`, `${point} p50`, client.name, 'ms', m.p50);
          rec.add(`${key}:p99`, `${point} p99`, client.name, 'ms', m.p99);
          if (m.errors > 0) rec.add(`${key}:errors`, `${point} errors`, client.name, 'errors', m.errors);
          console.log(
            `  ${client.name} ${point}: ${m.rate.toFixed(0)}/s p50 ${m.p50.toFixed(2)} ms p99 ${m.p99.toFixed(2)} ms`,
          );
        }
        rec.ratio(
          `${point}: Stratus ÷ bare amqplib`,
          `Stratus:call:${concurrency}`,
          `amqplib:call:${concurrency}`,
          0.9,
        );
        rec.ratio(
          `${point}: Stratus ÷ Moleculer AMQP tuned`,
          `Stratus:call:${concurrency}`,
          `Moleculer AMQP tuned:call:${concurrency}`,
          1,
        );
        rec.ratio(
          `${point}: Stratus ÷ Moleculer AMQP default`,
          `Stratus:call:${concurrency}`,
          `Moleculer AMQP default:call:${concurrency}`,
        );
        rec.ratio(
          `${point}: Stratus ÷ oslo.messaging`,
          `Stratus:call:${concurrency}`,
          `oslo.messaging:call:${concurrency}`,
          5,
        );
      }
      for (const concurrency of [1, 16]) {
        const point = `cast (publisher confirm), ${concurrency} caller${concurrency > 1 ? 's' : ''}`;
        for (const client of [stratus, amqplib]) {
          const m = await measure(client, 'cast', concurrency, mode);
          const key = `${client.name}:cast:${concurrency}`;
          rec.add(key, point, client.name, 'casts/s', m.rate);
          rec.add(`${key}:p50`, `${point} p50`, client.name, 'ms', m.p50);
          console.log(`  ${client.name} ${point}: ${m.rate.toFixed(0)}/s p50 ${m.p50.toFixed(2)} ms`);
        }
        rec.ratio(
          `${point}: Stratus ÷ bare amqplib`,
          `Stratus:cast:${concurrency}`,
          `amqplib:cast:${concurrency}`,
          0.8,
        );
      }
    }
  } finally {
    for (const client of clients) await client.close().catch(() => undefined);
    await Promise.all(workers.map((w) => w.stop()));
  }
  for (const n of [1, 16, 128]) {
    const p = `call, ${n} caller${n > 1 ? 's' : ''}`;
    rec.target(`calls/s ÷ bare amqplib @${n}`, `${p}: Stratus ÷ bare amqplib`, '×', '>=', 0.9);
    rec.target(`calls/s ÷ Moleculer AMQP tuned @${n}`, `${p}: Stratus ÷ Moleculer AMQP tuned`, '×', '>=', 1);
    rec.target(`calls/s ÷ oslo.messaging @${n}`, `${p}: Stratus ÷ oslo.messaging`, '×', '>=', 5);
  }
  for (const n of [1, 16]) {
    const p = `cast (publisher confirm), ${n} caller${n > 1 ? 's' : ''}`;
    rec.target(`confirmed casts/s ÷ bare amqplib @${n}`, `${p}: Stratus ÷ bare amqplib`, '×', '>=', 0.8);
  }
  rec.notes.push(
    "Closed loop: N callers each issue the next call when the previous returned; payload a 100-byte string. Client, server and broker share the machine's cores, so every figure is contention-bound (see reference/peers-measured.md).",
    'Stratus: oslo.messaging wire format on requests (envelope 2.0, `_context_*`, `_reply_q` for oslo servers, the call timeout as message TTL), envelope and argument validation on the server, default transport config. Between Stratus peers a call is answered over direct reply-to; calls are published without waiting for a confirm, casts resolve on the publisher confirm. bare amqplib: JSON `{payload}`, direct reply-to, noDelay, prefetch 256; its casts are confirm-channel publishes awaited one by one per caller.',
    "Moleculer AMQP default = the transporter's defaults (prefetch 1, Nagle on): one request at a time; tuned = prefetch 256 + noDelay. oslo.messaging: `executor=threading`, one client with N threads (Python GIL-bound).",
  );
  return undefined;
}
