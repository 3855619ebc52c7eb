/**
 * Time `ServiceRegistry.list` of N services in PostgreSQL (the bench database), for comparing builds
 * of core on a loaded machine: prints client CPU per listing (process.cpuUsage) and wall quantiles.
 *   node --import tsx scripts/registry-list.ts [n] [listings] [label=/abs/packages/core/dist/index.js …]
 * Seeds N rows under a binary of its own (kept between runs, removed with `--clean`).
 */
import { PG_URL } from '../src/lib/env.js';
import { ensureBenchDatabase } from '../src/lib/pg.js';
import { quantile } from '../src/lib/stats.js';

type Core = typeof import('@stratus/core');
const args = process.argv.slice(2).filter((a) => a !== '--clean');
const n = Number(args[0] ?? 10_000);
const listings = Number(args[1] ?? 15);
const specs = args.length > 2 ? args.slice(2) : ['current=@stratus/core'];
const BINARY = 'stratus-bench-list';

await ensureBenchDatabase();
const cores: [string, Core][] = [];
for (const spec of specs) {
  const [label, url] = spec.split('=') as [string, string];
  cores.push([label, (await import(url)) as Core]);
}
const [, first] = cores[0] as [string, Core];
const seed = await first.openDatabase(PG_URL, { poolSize: 2 });
await first.migrate(seed, [first.coreMigrations]);
const have = await seed.db
  .selectFrom('services')
  .select((eb) => eb.fn.countAll<number>().as('n'))
  .where('binary', '=', BINARY)
  .executeTakeFirstOrThrow();
if (Number(have.n) !== n || process.argv.includes('--clean')) {
  await seed.db.deleteFrom('services').where('binary', '=', BINARY).execute();
  for (let i = 0; i < n && !process.argv.includes('--clean'); i += 1000) {
    const rows = Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({
      host: `list-${i + j}`,
      binary: BINARY,
      topic: 'bench',
      availability_zone: 'nova',
      version: '0',
    }));
    await seed.db.insertInto('services').values(rows).execute();
  }
}
await seed.close();
if (process.argv.includes('--clean')) process.exit(0);

for (let round = 0; round < 2; round++) {
  for (const [label, core] of cores) {
    const store = await core.openDatabase(PG_URL, { poolSize: 1 });
    const registry = new core.ServiceRegistry(store);
    await registry.list({ binary: BINARY });
    const times: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < listings; i++) {
      const t0 = performance.now();
      const listed = await registry.list({ binary: BINARY });
      times.push(performance.now() - t0);
      if (listed.length !== n) throw new Error(`listed ${listed.length}, expected ${n}`);
    }
    const cpu = process.cpuUsage(cpu0);
    const sorted = Float64Array.from(times).sort();
    console.log(
      `${label.padEnd(10)} n=${n}: cpu/listing ${((cpu.user + cpu.system) / 1000 / listings).toFixed(1)} ms, p50 ${quantile(sorted, 0.5).toFixed(1)} ms, min ${sorted[0]?.toFixed(1)}, max ${sorted.at(-1)?.toFixed(1)}`,
    );
    await store.close();
  }
}
