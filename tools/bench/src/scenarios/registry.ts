/**
 * Scenario 5 — service registry at scale: N simulated services heartbeating into PostgreSQL
 * (`ServiceRegistry.reportState`, one UPDATE each), spread evenly over the report interval, while
 * a monitor lists every service with its up/down state. All services share this process and one
 * connection pool — a real fleet holds N connections — so this measures the database's side.
 */
import { openDatabase, ServiceRegistry } from '@stratus/core';
import { sql } from 'kysely';
import { type Mode, PG_URL, requireService } from '../lib/env.js';
import { ensureBenchDatabase } from '../lib/pg.js';
import type { Recorder } from '../lib/report.js';
import { quantile, sleep } from '../lib/stats.js';

const BINARY = 'stratus-bench';

export async function runRegistry(mode: Mode, rec: Recorder): Promise<string | undefined> {
  const down = await requireService('postgres');
  if (down) return down;
  await ensureBenchDatabase();
  const store = await openDatabase(PG_URL, { poolSize: 10 });
  const { coreMigrations, migrate } = await import('@stratus/core');
  await migrate(store, [coreMigrations]);
  const registry = new ServiceRegistry(store, { serviceDownTimeSec: 60 });
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
      let falseDowns = 0;
      const listMs: number[] = [];
      const inFlight = new Set<number>();
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
      const monitor = (async () => {
        while (performance.now() < end) {
          await sleep(listEveryMs);
          const t0 = performance.now();
          const services = await registry.list({ binary: BINARY });
          listMs.push(performance.now() - t0);
          if (services.length !== n) throw new Error(`listed ${services.length} services, expected ${n}`);
          falseDowns += services.filter((s) => !s.up).length;
        }
      })();
      await Promise.all([scheduler, monitor]);
      while (inFlight.size > 0) await sleep(20);
      const seconds = (performance.now() - start) / 1000;
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
    'All simulated services share this process and one pool of 10 PostgreSQL connections: a real fleet would hold one connection per service (N connections), which this does not reproduce.',
  );
  return undefined;
}
