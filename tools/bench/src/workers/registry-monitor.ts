/**
 * The registry scenario's monitor, in a process of its own as the API or `stratus service list`
 * would be: lists every service of one binary with its up/down state every `everyMs` for `seconds`,
 * then writes the timings to `outFile` as JSON and exits.
 * Args: pgUrl binary expectedCount everyMs seconds outFile
 */
import { writeFileSync } from 'node:fs';
import { openDatabase, ServiceRegistry } from '@stratus/core';

const [url = '', binary = '', expectedArg = '0', everyArg = '5000', secondsArg = '10', outFile = ''] =
  process.argv.slice(2);
const expected = Number(expectedArg);
const everyMs = Number(everyArg);
const store = await openDatabase(url, { poolSize: 1 });
const registry = new ServiceRegistry(store, { serviceDownTimeSec: 60 });
// One listing before the clock starts, as a long-running API process has warmed its query path.
await registry.list({ binary });
console.log('READY');

const end = performance.now() + Number(secondsArg) * 1000;
const listMs: number[] = [];
const wrongCounts: number[] = [];
let falseDowns = 0;
while (performance.now() + everyMs <= end) {
  await new Promise((resolve) => setTimeout(resolve, everyMs));
  const t0 = performance.now();
  const services = await registry.list({ binary });
  listMs.push(performance.now() - t0);
  if (services.length !== expected) wrongCounts.push(services.length);
  falseDowns += services.filter((s) => !s.up).length;
}
writeFileSync(outFile, JSON.stringify({ listMs, falseDowns, wrongCounts }));
await store.close();
