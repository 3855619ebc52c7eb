/**
 * Scenario 6 — soak: one `stratus serve volume` process (fake driver, RabbitMQ + PostgreSQL)
 * answering 200,000 `initialize_connection` RPC calls from a VolumeApi in this process. The
 * service is run unmodified with a preloaded monitor (workers/loop-monitor.mjs) that reports its
 * event-loop delay and memory on SIGUSR2.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { coreMigrations, migrate, openDatabase, RequestContext, RpcClient } from '@stratus/core';
import { volumeMigrations } from '@stratus/manager-volume';
import { VolumeApi } from '@stratus/manager-volume/client';
import { AmqpTransport } from '@stratus/transport-amqp';
import { sql } from 'kysely';
import {
  AMQP_URL,
  BENCH_DIR,
  CLI_BIN,
  type Mode,
  PG_URL,
  RUN_DIR,
  requireService,
  rssOf,
  startWorker,
} from '../lib/env.js';
import { ensureBenchDatabase } from '../lib/pg.js';
import type { Recorder } from '../lib/report.js';
import { sleep } from '../lib/stats.js';
import { UNLIMITED } from '../lib/volume.js';

interface LoopReport {
  p99: number;
  max: number;
  rss: number;
  heapUsed: number;
  rssAfterGc: number;
  heapUsedAfterGc: number;
  external: number;
  at: number;
}

const ctx = new RequestContext({ userId: 'bench', projectId: 'bench', roles: ['member'] });

export async function runSoak(mode: Mode, rec: Recorder): Promise<string | undefined> {
  const down = (await requireService('rabbitmq')) ?? (await requireService('postgres'));
  if (down) return down;
  // BENCH_SOAK_CALLS shortens (or lengthens) the run when investigating.
  const total = Number(process.env.BENCH_SOAK_CALLS ?? 0) || (mode.smoke ? 2_000 : 200_000);
  const warmup = mode.smoke ? 200 : 5_000;
  const concurrency = 16;
  await ensureBenchDatabase();
  const dir = path.join(RUN_DIR, `soak-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const controlExchange = `stratus-bench-soak-${process.pid}`;
  // Queue names are global to the vhost: a topic of its own keeps other users of `volume` apart.
  const topic = `volume_bench_${process.pid}`;
  const loopFile = path.join(dir, 'loop.json');
  writeFileSync(
    path.join(dir, 'stratus.config.json'),
    JSON.stringify({
      host: 'bench-soak',
      dataDir: path.join(dir, 'data'),
      log: { level: 'info' },
      database: { url: PG_URL },
      transport: { plugin: '@stratus/transport-amqp', config: { urls: [AMQP_URL], controlExchange } },
      services: {
        volume: {
          topic,
          manager: { plugin: '@stratus/manager-volume' },
          driver: { plugin: '@stratus/driver-fake#volume' },
        },
      },
    }),
  );
  const store = await openDatabase(PG_URL, { poolSize: 10 });
  await migrate(store, [coreMigrations, volumeMigrations]);
  await sql`delete from volumes`.execute(store.db);
  const worker = await startWorker(
    process.execPath,
    [
      '--expose-gc',
      '--import',
      path.join(BENCH_DIR, 'src/workers/loop-monitor.mjs'),
      CLI_BIN,
      'serve',
      'volume',
      '--config',
      path.join(dir, 'stratus.config.json'),
    ],
    { ready: /is ready on/, cwd: dir, env: { BENCH_LOOP_FILE: loopFile } },
  );
  const pid = worker.child.pid as number;
  const transport = new AmqpTransport({ urls: [AMQP_URL], controlExchange });
  const report = async (): Promise<LoopReport> => {
    rmSync(loopFile, { force: true });
    process.kill(pid, 'SIGUSR2');
    for (let i = 0; i < 500 && !existsSync(loopFile); i++) await sleep(10);
    return JSON.parse(readFileSync(loopFile, 'utf8')) as LoopReport;
  };
  try {
    await transport.connect();
    const api = new VolumeApi({ store, rpc: new RpcClient(transport), topic, quotas: UNLIMITED });
    const volumes: string[] = [];
    for (let i = 0; i < concurrency; i++)
      volumes.push((await api.create(ctx, { size: 1, name: `soak-${i}` })).id);
    for (const id of volumes) {
      while ((await api.get(ctx, id)).status !== 'available') await sleep(10);
    }
    let sent = 0;
    let failed = 0;
    // Failures by code and message, so a failing run says why.
    const failures = new Map<string, number>();
    const drive = async (count: number) => {
      sent = 0;
      await Promise.all(
        volumes.map(async (id) => {
          while (sent < count) {
            sent++;
            await api
              .initializeConnection(ctx, id, {
                host: 'bench-compute',
                initiator: 'iqn.1993-08.org.debian:01:bench',
              })
              .catch((error: unknown) => {
                failed++;
                const key = `${(error as { code?: string }).code ?? 'error'}: ${(error as Error).message}`;
                failures.set(key, (failures.get(key) ?? 0) + 1);
              });
          }
        }),
      );
    };
    await drive(warmup);
    const startReport = await report();
    const startRss = await rssOf(pid);
    const samples: number[] = [startRss.rss];
    const t0 = performance.now();
    const sampler = setInterval(() => {
      rssOf(pid).then(
        (r) => samples.push(r.rss),
        () => undefined,
      );
    }, 5_000);
    await drive(total);
    clearInterval(sampler);
    const seconds = (performance.now() - t0) / 1000;
    const endRss = await rssOf(pid);
    const endReport = await report();
    const sys = 'stratus serve volume';
    rec.add(
      'rate',
      `initialize_connection calls/s over ${total.toLocaleString('en-US')} calls`,
      sys,
      'calls/s',
      total / seconds,
    );
    rec.add('failed', 'failed calls', sys, 'count', failed);
    rec.add('loopP99', 'event-loop delay p99 during the run', sys, 'ms', endReport.p99);
    rec.add('loopMax', 'event-loop delay max during the run', sys, 'ms', endReport.max);
    rec.add(
      'rssStart',
      `RSS at start (after ${warmup.toLocaleString('en-US')} warm-up calls)`,
      sys,
      'MiB',
      startRss.rss,
    );
    rec.add('rssEnd', 'RSS at end', sys, 'MiB', endRss.rss);
    rec.add('rssPeak', 'peak RSS', sys, 'MiB', endRss.peak);
    rec.add('rssStartGc', 'RSS at start, after a full GC', sys, 'MiB', startReport.rssAfterGc);
    rec.add('rssEndGc', 'RSS at end, after a full GC', sys, 'MiB', endReport.rssAfterGc);
    rec.add('heapStartGc', 'JS heap used at start, after a full GC', sys, 'MiB', startReport.heapUsedAfterGc);
    rec.add('heapEndGc', 'JS heap used at end, after a full GC', sys, 'MiB', endReport.heapUsedAfterGc);
    console.log(
      `  ${total} calls in ${seconds.toFixed(1)} s (${(total / seconds).toFixed(0)}/s), failed ${failed}; loop p99 ${endReport.p99.toFixed(1)} ms; RSS ${startRss.rss.toFixed(1)} → ${endRss.rss.toFixed(1)} MiB (after GC ${startReport.rssAfterGc.toFixed(1)} → ${endReport.rssAfterGc.toFixed(1)}); heap after GC ${startReport.heapUsedAfterGc.toFixed(1)} → ${endReport.heapUsedAfterGc.toFixed(1)} MiB`,
    );
    for (const [what, count] of failures) console.log(`  failed ${count}×: ${what}`);
    rec.notes.push(
      `RSS sampled every 5 s: ${samples.map((s) => s.toFixed(0)).join(', ')} MiB.`,
      'Growth is judged on the JS heap after a forced full GC (retained objects) against RSS (which also holds memory V8 and glibc keep reserved after a peak and return lazily).',
    );
    for (const id of volumes) await api.delete(ctx, id).catch(() => undefined);
  } finally {
    await worker.stop();
    await transport.close();
    const { connect } = await import('amqplib');
    const admin = await connect(AMQP_URL);
    const ch = await admin.createChannel();
    for (const queue of [topic, `${topic}.bench-soak`]) await ch.deleteQueue(queue).catch(() => undefined);
    await ch.deleteExchange(controlExchange).catch(() => undefined);
    await admin.close().catch(() => undefined);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  rec.notes.push(
    `One \`stratus serve volume\` process (fake driver, RabbitMQ + PostgreSQL), ${concurrency} concurrent callers each hammering \`initialize_connection\` on its own volume (a DB read in the API, an RPC call, the manager's DB read and the driver's export lookup).`,
  );
  return undefined;
}
