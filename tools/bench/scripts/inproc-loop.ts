/**
 * Quick loop for profiling scenario 1 against core's sources (no build):
 *   [STRATUS_CORES=label=/abs/index.js,…] node --import tsx [--cpu-prof] scripts/inproc-loop.ts [stratus|both] [seconds] [reps]
 * Prints calls/s for Stratus (and Moleculer, interleaved) at 1 and 64 callers, small and 10 KiB.
 */
import { ServiceBroker } from 'moleculer';
import Type from 'typebox';
import { closedLoop } from '../src/lib/stats.js';

// STRATUS_CORES="before=/abs/orig/index.js,after=/abs/new/index.js" measures several builds of core
// side by side (interleaved, same load); default: the built @stratus/core.
type Core = typeof import('@stratus/core');
const cores: [string, Core][] = [];
for (const spec of (process.env.STRATUS_CORES ?? 'Stratus=@stratus/core').split(',')) {
  const [label, path] = spec.split('=') as [string, string];
  cores.push([label, (await import(path)) as Core]);
}
const which = process.argv[2] ?? 'both';
const seconds = Number(process.argv[3] ?? 1);
const reps = Number(process.argv[4] ?? 1);
const PAYLOADS = { small: 'x'.repeat(100), '10KiB': 'x'.repeat(10 * 1024) } as const;

async function stratus(core: Core) {
  const { defineEndpoints, endpoint, MemoryBroker, MemoryTransport, RequestContext, RpcClient, RpcServer } =
    core;
  const broker = new MemoryBroker();
  const st = new MemoryTransport({ broker });
  const ct = new MemoryTransport({ broker });
  await st.connect();
  await ct.connect();
  const server = new RpcServer(st, {
    topic: 'bench',
    host: 'local',
    version: '1.0',
    maxConcurrency: 256,
    endpoints: defineEndpoints({
      echo: endpoint(Type.Object({ payload: Type.String() }), (_ctx, { payload }) => payload),
    }),
  });
  await server.start();
  const client = new RpcClient(ct, { topic: 'bench' });
  const ctx = RequestContext.admin();
  return (payload: string) => client.call(ctx, {}, 'echo', { payload });
}

async function moleculer() {
  const broker = new ServiceBroker({
    nodeID: 'x',
    logger: false,
    validator: true,
    metrics: false,
    tracing: false,
  });
  broker.createService({
    name: 'bench',
    actions: {
      echo: { params: { payload: 'string' }, handler: (ctx) => (ctx.params as { payload: string }).payload },
    },
  });
  await broker.start();
  return (payload: string) => broker.call('bench.echo', { payload });
}

const systems: [string, (p: string) => Promise<unknown>][] = [];
for (const [label, core] of cores) systems.push([label, await stratus(core)]);
if (which === 'both') systems.push(['Moleculer', await moleculer()]);
for (let rep = 0; rep < reps; rep++) {
  for (const concurrency of [1, 64]) {
    for (const [size, payload] of Object.entries(PAYLOADS)) {
      // ONLY="64 x small" measures one point (for a focused profile).
      if (process.env.ONLY && process.env.ONLY !== `${concurrency} x ${size}`) continue;
      const rates: number[] = [];
      const cpus: number[] = [];
      for (const [, call] of systems) {
        await closedLoop(concurrency, Math.min(0.5, seconds), () => call(payload));
        const cpu0 = process.cpuUsage();
        const m = await closedLoop(concurrency, seconds, () => call(payload));
        const cpu = process.cpuUsage(cpu0);
        if (m.errors) throw new Error(`${m.errors} errors`);
        rates.push(m.rate);
        // CPU µs per call (harness included): steadier than the rate on a loaded machine.
        cpus.push((cpu.user + cpu.system) / m.ops);
      }
      // Every system against the last one (Moleculer when it runs).
      const last = rates.length - 1;
      const ratio =
        which === 'both'
          ? systems
              .slice(0, last)
              .map(
                ([n], i) =>
                  ` ${n}÷Moleculer ${((rates[i] ?? 0) / (rates[last] ?? 1)).toFixed(3)} (CPU ${((cpus[last] ?? 0) / (cpus[i] ?? 1)).toFixed(3)})`,
              )
              .join('')
          : '';
      console.log(
        `${concurrency} x ${size}: ${systems.map(([n], i) => `${n} ${Math.round(rates[i] ?? 0)}/s ${(cpus[i] ?? 0).toFixed(2)}µs`).join('  ')}${ratio}`,
      );
    }
  }
}
process.exit(0);
