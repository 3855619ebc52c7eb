/**
 * Scenario 3 — end-to-end volume lifecycle through `VolumeApi` with the fake driver:
 * create → available → delete → gone, closed loop at concurrency 1 and 64, on
 * (a) the embedded default (MemoryTransport + SQLite, API and service in one process, as `stratus up`)
 * (b) RabbitMQ + PostgreSQL with two `stratus serve volume` processes and the API in this process.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  coreMigrations,
  loadConfig,
  MemoryBroker,
  MemoryTransport,
  migrate,
  openDatabase,
  RequestContext,
  RpcClient,
  Service,
  type Store,
  StratusError,
  silentLogger,
} from '@stratus/core';
import { volume as fakeVolume } from '@stratus/driver-fake';
import volumePlugin, { volumeMigrations } from '@stratus/manager-volume';
import { VolumeApi } from '@stratus/manager-volume/client';
import { AmqpTransport } from '@stratus/transport-amqp';
import { sql } from 'kysely';
import {
  AMQP_URL,
  CLI_BIN,
  type Mode,
  PG_URL,
  RUN_DIR,
  requireService,
  startWorker,
  type Worker,
} from '../lib/env.js';
import { ensureBenchDatabase } from '../lib/pg.js';
import type { Recorder } from '../lib/report.js';
import { closedLoop } from '../lib/stats.js';
import { UNLIMITED, volumeCycle } from '../lib/volume.js';

interface Deployment {
  readonly name: string;
  readonly api: VolumeApi;
  close(): Promise<void>;
}

const ctx = new RequestContext({ userId: 'bench', projectId: 'bench', roles: ['member'] });

/** API + one volume service in this process on a MemoryBroker and a SQLite file (WAL). */
export async function embedded(dir: string): Promise<Deployment & { service: Service; store: Store }> {
  mkdirSync(dir, { recursive: true });
  const { config: settings, root } = await loadConfig({
    cwd: dir,
    env: {},
    overrides: { host: 'bench-embedded', dataDir: dir, log: { level: 'silent' } },
  });
  const store = await openDatabase(settings.database.url);
  await migrate(store, [coreMigrations, volumeMigrations]);
  const broker = new MemoryBroker();
  const serviceTransport = new MemoryTransport({ broker });
  const apiTransport = new MemoryTransport({ broker });
  await serviceTransport.connect();
  await apiTransport.connect();
  const service = new Service({
    name: 'volume',
    settings,
    root,
    manager: volumePlugin,
    managerConfig: {},
    driver: fakeVolume,
    driverConfig: { capacityGiB: 1_000_000 },
    logger: silentLogger(),
    store,
    transport: serviceTransport,
  });
  await service.start();
  const api = new VolumeApi({ store, rpc: new RpcClient(apiTransport), quotas: UNLIMITED });
  return {
    name: 'embedded (MemoryTransport + SQLite)',
    api,
    service,
    store,
    close: async () => {
      await service.stop();
      await apiTransport.close();
      await serviceTransport.close();
      await store.close();
    },
  };
}

/** Two `stratus serve volume` processes on RabbitMQ + PostgreSQL; the API here. */
async function distributed(dir: string, tag: string): Promise<Deployment> {
  await ensureBenchDatabase();
  mkdirSync(dir, { recursive: true });
  const controlExchange = `stratus-bench-e2e-${tag}`;
  // Queue names are global to the vhost: a topic of its own keeps other users of `volume` apart.
  const topic = `volume_bench_${tag}`;
  writeFileSync(
    path.join(dir, 'stratus.config.json'),
    JSON.stringify({
      dataDir: path.join(dir, 'data'),
      log: { level: 'info' },
      database: { url: PG_URL },
      transport: { plugin: '@stratus/transport-amqp', config: { urls: [AMQP_URL], controlExchange } },
      services: {
        volume: {
          topic,
          manager: { plugin: '@stratus/manager-volume' },
          driver: { plugin: '@stratus/driver-fake#volume', config: { capacityGiB: 1_000_000 } },
        },
      },
    }),
  );
  const store = await openDatabase(PG_URL, { poolSize: 20 });
  await migrate(store, [coreMigrations, volumeMigrations]);
  // Rows of earlier runs would slow the quota counts down run after run.
  await sql`delete from volumes`.execute(store.db);
  const workers: Worker[] = [];
  const transport = new AmqpTransport({ urls: [AMQP_URL], controlExchange });
  try {
    for (const host of ['bench-vol-1', 'bench-vol-2']) {
      workers.push(
        await startWorker(
          process.execPath,
          [CLI_BIN, 'serve', 'volume', '--config', path.join(dir, 'stratus.config.json'), '--host', host],
          {
            ready: /is ready on/,
            cwd: dir,
          },
        ),
      );
    }
    await transport.connect();
  } catch (error) {
    await Promise.all(workers.map((w) => w.stop()));
    await store.close();
    throw error;
  }
  const api = new VolumeApi({ store, rpc: new RpcClient(transport), topic, quotas: UNLIMITED });
  return {
    name: 'RabbitMQ + PostgreSQL, 2 volume processes',
    api,
    close: async () => {
      await Promise.all(workers.map((w) => w.stop()));
      const queues = transport
        .declaredQueues()
        .concat([topic, `${topic}.bench-vol-1`, `${topic}.bench-vol-2`]);
      const { connect } = await import('amqplib');
      const admin = await connect(AMQP_URL);
      const ch = await admin.createChannel();
      for (const queue of queues) await ch.deleteQueue(queue, { ifUnused: false }).catch(() => undefined);
      await ch.deleteExchange(controlExchange).catch(() => undefined);
      await admin.close().catch(() => undefined);
      await transport.close();
      await store.close();
    },
  };
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/** An error as `CODE: message`, ids blanked so that one cause is counted once whatever volume it hit. */
function failureReason(error: unknown): string {
  const code = StratusError.is(error) ? error.code : error instanceof Error ? error.name : typeof error;
  const message = error instanceof Error ? error.message : String(error);
  return `${code}: ${message.replace(UUID, '<id>').slice(0, 300)}`;
}

/** The few most frequent distinct reasons with their counts, or '' when nothing failed. */
function describeFailures(failures: ReadonlyMap<string, number>, shown = 3): string {
  const sorted = [...failures].sort((a, b) => b[1] - a[1]);
  const listed = sorted.slice(0, shown).map(([reason, n]) => `${n} × ${reason}`);
  if (sorted.length > shown) listed.push(`${sorted.length - shown} other reason(s)`);
  return listed.join('; ');
}

export async function runE2e(mode: Mode, rec: Recorder): Promise<string | undefined> {
  const base = path.join(RUN_DIR, `e2e-${process.pid}`);
  rmSync(base, { recursive: true, force: true });
  const deployments: Deployment[] = [await embedded(path.join(base, 'embedded'))];
  let skipped: string | undefined;
  try {
    skipped = (await requireService('rabbitmq')) ?? (await requireService('postgres'));
    if (skipped) rec.notes.push(`RabbitMQ + PostgreSQL not measured: ${skipped}.`);
    else deployments.push(await distributed(path.join(base, 'amqp'), String(process.pid)));
    for (let rep = 0; rep < mode.reps; rep++) {
      for (const concurrency of [1, 64]) {
        for (const d of deployments) {
          const failures = new Map<string, number>();
          const run = () =>
            volumeCycle(d.api, ctx).catch((error: unknown) => {
              const reason = failureReason(error);
              failures.set(reason, (failures.get(reason) ?? 0) + 1);
              throw error;
            });
          if (mode.warmupSeconds > 0) await closedLoop(concurrency, mode.warmupSeconds, run);
          failures.clear();
          const m = await closedLoop(concurrency, mode.seconds, run);
          const key = `${d.name}:${concurrency}`;
          const point = `create+delete cycles, concurrency ${concurrency}`;
          rec.add(key, point, d.name, 'cycles/s', m.rate);
          rec.add(`${key}:p50`, `${point}, cycle latency p50`, d.name, 'ms', m.p50);
          rec.add(`${key}:p99`, `${point}, cycle latency p99`, d.name, 'ms', m.p99);
          if (m.errors > 0) rec.add(`${key}:errors`, `${point}, failed cycles`, d.name, 'errors', m.errors);
          const reasons = describeFailures(failures);
          if (reasons)
            rec.notes.push(
              `${d.name} @${concurrency}, repetition ${rep + 1}: ${m.errors} failed cycles: ${reasons}.`,
            );
          console.log(
            `  ${d.name} @${concurrency}: ${m.rate.toFixed(0)} cycles/s p50 ${m.p50.toFixed(1)} ms p99 ${m.p99.toFixed(1)} ms errors ${m.errors}${reasons ? ` (${reasons})` : ''}`,
          );
        }
      }
    }
  } finally {
    for (const d of deployments) await d.close().catch((error: unknown) => console.error(error));
    rmSync(base, { recursive: true, force: true });
  }
  rec.target(
    'embedded create+delete cycles/s at concurrency 64',
    'embedded (MemoryTransport + SQLite):64',
    'cycles/s',
    '>=',
    2000,
  );
  rec.notes.push(
    'A cycle = `VolumeApi.create` (row + cast) → poll `get` every 1 ms until `available` → `VolumeApi.delete` (conditional update + cast) → poll until gone: 2 RPCs, ~4 writes and the polling reads per cycle. Quotas raised out of the way; fake driver.',
    'Embedded: API and volume service share one process, a MemoryBroker and one SQLite file (WAL), as `stratus up` runs them. Distributed: two `stratus serve volume` processes (hosts bench-vol-1/2) on RabbitMQ + PostgreSQL, the API in the bench process.',
  );
  return undefined;
}
