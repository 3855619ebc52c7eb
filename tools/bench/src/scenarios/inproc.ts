/**
 * Scenario 1 — in-process RPC: Stratus RpcClient → MemoryTransport → RpcServer (envelope and
 * argument validation on) against Moleculer 0.14's local action call with parameter validation on.
 * Casts are measured to the point the handler ran (Moleculer: a local event with params validation).
 */
import {
  defineEndpoints,
  endpoint,
  MemoryBroker,
  MemoryTransport,
  RequestContext,
  RpcClient,
  RpcServer,
} from '@stratus/core';
import { type Context, ServiceBroker } from 'moleculer';
import Type from 'typebox';
import type { Mode } from '../lib/env.js';
import type { Recorder } from '../lib/report.js';
import { closedLoop } from '../lib/stats.js';

const PAYLOADS = { small: 'x'.repeat(100), '10KiB': 'x'.repeat(10 * 1024) } as const;

interface System {
  readonly name: string;
  call(payload: string): Promise<unknown>;
  cast(payload: string): Promise<unknown>;
  close(): Promise<void>;
}

/** Casts resolve when the handler has run: each caller waits on its own sequence number. */
class Waiters {
  #next = 0;
  readonly #pending = new Map<number, () => void>();
  wait(): [number, Promise<void>] {
    const id = this.#next++;
    return [id, new Promise<void>((resolve) => this.#pending.set(id, resolve))];
  }
  done(id: number): void {
    const resolve = this.#pending.get(id);
    this.#pending.delete(id);
    resolve?.();
  }
}

async function stratus(): Promise<System> {
  const broker = new MemoryBroker();
  const serverTransport = new MemoryTransport({ broker });
  const clientTransport = new MemoryTransport({ broker });
  await serverTransport.connect();
  await clientTransport.connect();
  const waiters = new Waiters();
  const server = new RpcServer(serverTransport, {
    topic: 'bench',
    host: 'local',
    version: '1.0',
    maxConcurrency: 256,
    endpoints: defineEndpoints({
      echo: endpoint(Type.Object({ payload: Type.String() }), (_ctx, { payload }) => payload),
      sink: endpoint(Type.Object({ payload: Type.String(), id: Type.Integer() }), (_ctx, { id }) => {
        waiters.done(id);
      }),
    }),
  });
  await server.start();
  const client = new RpcClient(clientTransport, { topic: 'bench' });
  const ctx = RequestContext.admin();
  // Validation must be on: a bad argument is refused.
  const refused = await client.call(ctx, {}, 'echo', { payload: 42 }).then(
    () => false,
    (error: { code?: string }) => error.code === 'INVALID_INPUT',
  );
  if (!refused) throw new Error('Stratus accepted an invalid argument: validation is off');
  return {
    name: 'Stratus',
    call: (payload) => client.call(ctx, {}, 'echo', { payload }),
    cast: async (payload) => {
      const [id, handled] = waiters.wait();
      await client.cast(ctx, {}, 'sink', { payload, id });
      await handled;
    },
    close: async () => {
      await server.stop();
      await clientTransport.close();
      await serverTransport.close();
    },
  };
}

async function moleculer(): Promise<System> {
  const broker = new ServiceBroker({
    nodeID: 'bench-local',
    logger: false,
    validator: true,
    metrics: false,
    tracing: false,
  });
  const waiters = new Waiters();
  broker.createService({
    name: 'bench',
    actions: {
      echo: { params: { payload: 'string' }, handler: (ctx) => (ctx.params as { payload: string }).payload },
    },
    events: {
      'bench.sink': {
        params: { payload: 'string', id: 'number' },
        handler: (ctx: Context<{ id: number }>) => waiters.done(ctx.params.id),
      },
    },
  });
  await broker.start();
  const refused = await broker.call('bench.echo', { payload: 42 }).then(
    () => false,
    (error: { name?: string }) => error.name === 'ValidationError',
  );
  if (!refused) throw new Error('Moleculer accepted an invalid argument: validation is off');
  return {
    name: 'Moleculer',
    call: (payload) => broker.call('bench.echo', { payload }),
    cast: async (payload) => {
      const [id, handled] = waiters.wait();
      await broker.emit('bench.sink', { payload, id });
      await handled;
    },
    close: () => broker.stop(),
  };
}

export async function runInproc(mode: Mode, rec: Recorder): Promise<undefined> {
  const systems = [await stratus(), await moleculer()];
  const levels = [1, 64];
  try {
    for (let rep = 0; rep < mode.reps; rep++) {
      for (const concurrency of levels) {
        for (const [size, payload] of Object.entries(PAYLOADS)) {
          for (const op of ['call', 'cast'] as const) {
            const point = `${op}, ${concurrency} caller${concurrency > 1 ? 's' : ''}, ${size}`;
            for (const system of systems) {
              const key = `${system.name}:${op}:${concurrency}:${size}`;
              const run = () => (op === 'call' ? system.call(payload) : system.cast(payload));
              if (mode.warmupSeconds > 0) await closedLoop(concurrency, mode.warmupSeconds, run);
              const m = await closedLoop(concurrency, mode.seconds, run);
              if (m.errors > 0) throw new Error(`${system.name} ${point}: ${m.errors} errors`);
              rec.add(key, `${point}`, system.name, `${op}s/s`, m.rate);
              rec.add(`${key}:p50`, `${point} p50`, system.name, 'µs', m.p50 * 1000);
              rec.add(`${key}:p99`, `${point} p99`, system.name, 'µs', m.p99 * 1000);
            }
            rec.ratio(
              `${point}: Stratus ÷ Moleculer local`,
              `Stratus:${op}:${concurrency}:${size}`,
              `Moleculer:${op}:${concurrency}:${size}`,
              op === 'call' ? 1 : undefined,
            );
          }
        }
      }
    }
  } finally {
    for (const system of systems) await system.close();
  }
  rec.target(
    'call throughput ÷ Moleculer local, 1 caller, small',
    'call, 1 caller, small: Stratus ÷ Moleculer local',
    '×',
    '>=',
    1,
  );
  rec.target(
    'call throughput ÷ Moleculer local, 64 callers, small',
    'call, 64 callers, small: Stratus ÷ Moleculer local',
    '×',
    '>=',
    1,
  );
  rec.target(
    'call throughput ÷ Moleculer local, 64 callers, 10 KiB',
    'call, 64 callers, 10KiB: Stratus ÷ Moleculer local',
    '×',
    '>=',
    1,
  );
  rec.notes.push(
    'Both systems in one process, loggers off, validation on (checked: each refuses a non-string payload). Stratus copies every message (request on publish and again per delivery, reply once) so nothing is shared between sender and receiver, as the transport contract requires — a structural copy checked to be JSON data, not JSON text; Moleculer passes the params object by reference.',
    'A cast is timed until its handler ran (Moleculer: `broker.emit` of a local event with params validation).',
  );
  return undefined;
}
