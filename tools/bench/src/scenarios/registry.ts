/**
 * Scenario 5 — service registry at scale: N simulated services heartbeating into PostgreSQL
 * (`ServiceRegistry.reportState`, one UPDATE each), spread evenly over the report interval, while
 * a monitor lists every service with its up/down state. All services share this process and one
 * connection pool — a real fleet holds N connections — so this measures the database's side.
 * The monitor is a process of its own (workers/registry-monitor.ts), as the API or an operator's
 * CLI would be: sharing the fleet's pool it queued behind thousands of heartbeats and timed out
 * waiting for a connection, and sharing its event loop it timed the fleet's work too.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { openDatabase, ServiceRegistry } from '@stratus/core';
import { sql } from 'kysely';
import { type Mode, PG_URL, RUN_DIR, requireService, startNodeWorker } from '../lib/env.js';
import { ensureBenchDatabase } from '../lib/pg.js';
import type { Recorder } from '../lib/report.js';
import { quantile, sleep } from '../lib/stats.js';

const BINARY = 'stratus-bench';
/** Connections the simulated fleet shares; leaves room under max_connections (100) for other users. */
const FLEET_POOL = 20;

export async function runRegistry(mode: Mode, rec: Recorder): Promise<string | undefined> {
  const down = await requireService('postgres');
  if (down) return down;
  await ensureBenchDatabase();
  const store = await openDatabase(PG_URL, { poolSize: FLEET_POOL });
  const { coreMigrations, migrate } = await import('@stratus/core');
  await migrate(store, [coreMigrations]);
  const registry = new ServiceRegistry(store, { serviceDownTimeSec: 60 });
  mkdirSync(RUN_DIR, { recursive: true });
  const monitorFile = path.join(RUN_DIR, `registry-monitor-${process.pid}.json`);
  const sizes = mode.smoke ? [100] : [1_000, 5_000, 10_000];
  const intervalMs = mode.smoke ? 1_000 : 10_000;
  const listEveryMs = mode.smoke ? 500 : 5_000;
  try {
    for (const n of sizes) {
      await sql`delete from services where ${sql.ref('binary')} = ${BINARY}`.execute(store.db);
      // Register with a few concurrent writers, as services starting together would.
      const ids: number[] = new Array(n);
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < n) {
            const i = next++;
            const record = await registry.register({
              host: `bench-${i}`,
              binary: BINARY,
              topic: 'bench',
              version: '0',
            });
            ids[i] = record.id;
          }
        }),
      );

      let beats = 0;
      let failed = 0;
      let late = 0;
      let missed = 0;
      const inFlight = new Set<number>();
      const monitor = await startNodeWorker('registry-monitor', [
        PG_URL,
        BINARY,
        String(n),
        String(listEveryMs),
        String(mode.seconds),
        monitorFile,
      ]);
      const monitorDone = new Promise<number | null>((resolve) => {
        if (monitor.child.exitCode !== null) resolve(monitor.child.exitCode);
        else monitor.child.once('exit', (code) => resolve(code));
      });
      const start = performance.now();
      const end = start + mode.seconds * 1000;
      // Service i beats at start + i/n·interval + k·interval; a beat still running skips its turn (counted missed).
      const beat = async (i: number, scheduled: number) => {
        if (inFlight.has(i)) {
          missed++;
          return;
        }
        inFlight.add(i);
        try {
          await registry.reportState(ids[i] as number);
          beats++;
          if (performance.now() - scheduled > 1_000) late++;
        } catch {
          failed++;
        } finally {
          inFlight.delete(i);
        }
      };
      const scheduler = (async () => {
        let k = 0;
        while (performance.now() < end) {
          const now = performance.now();
          // Fire every beat due up to now.
          while (k < Number.MAX_SAFE_INTEGER) {
            const round = Math.floor(k / n);
            const i = k % n;
            const due = start + round * intervalMs + (i / n) * intervalMs;
            if (due > now || due > end) break;
            void beat(i, due);
            k++;
          }
          await sleep(20);
        }
      })();
      await scheduler;
      while (inFlight.size > 0) await sleep(20);
      const seconds = (performance.now() - start) / 1000;
      const code = await monitorDone;
      if (code !== 0) throw new Error(`the registry monitor exited with ${code}`);
      const result = JSON.parse(readFileSync(monitorFile, 'utf8')) as {
        listMs: number[];
        falseDowns: number;
        wrongCounts: number[];
      };
      rmSync(monitorFile, { force: true });
      if (result.wrongCounts.length > 0) {
        throw new Error(`the monitor listed ${result.wrongCounts.join(', ')} services, expected ${n}`);
      }
      const { listMs, falseDowns } = result;
      const sorted = Float64Array.from(listMs).sort();
      const label = `N = ${n.toLocaleString('en-US')}`;
      rec.add(`${n}:writes`, `${label}: heartbeat writes/s`, 'PostgreSQL', 'writes/s', beats / seconds);
      rec.add(
        `${n}:expected`,
        `${label}: heartbeat writes/s due`,
        'PostgreSQL',
        'writes/s',
        n / (intervalMs / 1000),
      );
      rec.add(
        `${n}:falseDown`,
        `${label}: services seen down while alive (sum over listings)`,
        'PostgreSQL',
        'count',
        falseDowns,
      );
      rec.add(`${n}:late`, `${label}: heartbeats landing > 1 s after due`, 'PostgreSQL', 'count', late);
      rec.add(`${n}:missed`, `${label}: heartbeats missed or failed`, 'PostgreSQL', 'count', missed + failed);
      rec.add(
        `${n}:list50`,
        `${label}: list all with up/down, p50`,
        'PostgreSQL',
        'ms',
        quantile(sorted, 0.5),
      );
      rec.add(`${n}:listMax`, `${label}: list all with up/down, max`, 'PostgreSQL', 'ms', sorted.at(-1) ?? 0);
      console.log(
        `  N=${n}: ${(beats / seconds).toFixed(0)} writes/s, late ${late}, missed ${missed + failed}, false downs ${falseDowns}, list p50 ${quantile(sorted, 0.5).toFixed(1)} ms max ${(sorted.at(-1) ?? 0).toFixed(1)} ms`,
      );
      await sql`delete from services where ${sql.ref('binary')} = ${BINARY}`.execute(store.db);
    }
  } finally {
    await store.close();
  }
  const top = sizes.at(-1) as number;
  rec.target(
    `services seen down while alive, N = ${top.toLocaleString('en-US')}`,
    `${top}:falseDown`,
    'count',
    '<=',
    0,
  );
  rec.target(
    `list all services with state, N = ${top.toLocaleString('en-US')} (max)`,
    `${top}:listMax`,
    'ms',
    '<=',
    100,
  );
  rec.notes.push(
    `Each simulated service reports every ${intervalMs / 1000} s for ${mode.seconds} s (beats spread evenly over the interval); service_down_time 60 s, judged on the database clock. A monitor lists every service with its up/down state every ${listEveryMs / 1000} s.`,
    `All simulated services share this process and one pool of ${FLEET_POOL} PostgreSQL connections: a real fleet would hold one connection per service (N connections), which this does not reproduce. The monitor is a separate Node process with one connection of its own (as the API would be); it lists once before the clock starts (a running API has warmed up).`,
  );
  return undefined;
}
