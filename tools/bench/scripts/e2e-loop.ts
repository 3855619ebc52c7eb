/**
 * Quick loop for profiling scenario 3 (embedded: MemoryTransport + SQLite) against the built packages:
 *   node --import tsx [--cpu-prof] scripts/e2e-loop.ts [seconds] [reps] [concurrency]
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { RequestContext } from '@stratus/core';
import { RUN_DIR } from '../src/lib/env.js';
import { closedLoop } from '../src/lib/stats.js';
import { volumeCycle } from '../src/lib/volume.js';
import { embedded } from '../src/scenarios/e2e.js';

const seconds = Number(process.argv[2] ?? 3);
const reps = Number(process.argv[3] ?? 1);
const concurrency = Number(process.argv[4] ?? 64);
// SQL_TIMES=1: time every statement by SQL text (better-sqlite3 runs them synchronously).
const sqlTimes = new Map<string, { n: number; ms: number }>();
if (process.env.SQL_TIMES) {
  const { createRequire } = await import('node:module');
  const req = createRequire(new URL('../../../packages/core/package.json', import.meta.url));
  const Database = req('better-sqlite3') as { prototype: { prepare(text: string): Record<string, unknown> } };
  const original = Database.prototype.prepare;
  Database.prototype.prepare = function (text: string) {
    const statement = original.call(this, text) as Record<string, (...a: unknown[]) => unknown>;
    const timed =
      (name: string) =>
      (...args: unknown[]) => {
        const t = performance.now();
        try {
          return statement[name]?.(...args);
        } finally {
          const entry = sqlTimes.get(`${name} ${text}`) ?? { n: 0, ms: 0 };
          entry.n++;
          entry.ms += performance.now() - t;
          sqlTimes.set(`${name} ${text}`, entry);
        }
      };
    return { reader: statement.reader, readonly: statement.readonly, all: timed('all'), run: timed('run'), iterate: timed('iterate') };
  };
}
const ctx = new RequestContext({ userId: 'bench', projectId: 'bench', roles: ['member'] });
const dir = path.join(RUN_DIR, `e2e-loop-${process.pid}`);
rmSync(dir, { recursive: true, force: true });
const d = await embedded(dir);
// PRAGMAS="wal_autocheckpoint=10000;…": try SQLite settings on the bench's store.
for (const pragma of (process.env.PRAGMAS ?? '').split(';').filter(Boolean)) {
  const { sql } = await import('kysely');
  await sql.raw(`pragma ${pragma}`).execute(d.store.db);
}
try {
  for (let rep = 0; rep < reps; rep++) {
    const cpu0 = process.cpuUsage();
    const m = await closedLoop(concurrency, seconds, () => volumeCycle(d.api, ctx));
    const cpu = process.cpuUsage(cpu0);
    // CPU time per cycle holds on a loaded machine where the rate does not: 1e6 / it is the rate
    // one idle core would give, were the loop never idle.
    const perCycle = (cpu.user + cpu.system) / m.ops;
    console.log(
      `@${concurrency}: ${m.rate.toFixed(0)} cycles/s p50 ${m.p50.toFixed(1)} ms p99 ${m.p99.toFixed(1)} ms errors ${m.errors}; CPU ${perCycle.toFixed(0)} µs/cycle (user ${(cpu.user / m.ops).toFixed(0)}, sys ${(cpu.system / m.ops).toFixed(0)}) → ${(1e6 / perCycle).toFixed(0)} cycles/s per busy core`,
    );
  }
} finally {
  for (const [text, { n, ms }] of [...sqlTimes].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15))
    console.log(
      `${ms.toFixed(0).padStart(6)} ms ${String(n).padStart(7)} × ${((ms / n) * 1000).toFixed(0).padStart(5)} µs  ${text.slice(0, 160)}`,
    );
  await d.close();
  rmSync(dir, { recursive: true, force: true });
}
