// Resolves this application's plugins by package name, prints the validated config, then runs
// the volume service on the embedded default and drives one volume through its lifecycle.
import {
  checkConfiguredPlugins,
  createLogger,
  loadConfig,
  MemoryTransport,
  openDatabase,
  RequestContext,
  RpcClient,
  Service,
  ServiceRegistry,
} from '@stratus/core';
import { VolumeApi } from '@stratus/manager-volume/client';

const here = new URL('.', import.meta.url).pathname;
const loaded = await loadConfig({ cwd: here });
const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });

console.log(`config: ${loaded.file}`);
const checks = await checkConfiguredPlugins(loaded);
for (const c of checks) {
  const where = c.resolved?.packageName
    ? `${c.resolved.packageName}@${c.resolved.packageVersion}`
    : 'built in';
  console.log(
    `  ${c.at.padEnd(24)} ${c.kind.padEnd(14)} ${c.spec.padEnd(40)} ${c.error ? `ERROR ${c.error.message}` : `ok (${where})`}`,
  );
}
if (checks.some((c) => c.error)) process.exit(1);
console.log(JSON.stringify({ ...loaded.config, services: loaded.config.services }, null, 2));

const store = await openDatabase(loaded.config.database.url);
const transport = new MemoryTransport({ logger });
await transport.connect();
const service = Service.fromConfig('volume', {
  settings: loaded.config,
  root: loaded.root,
  logger,
  store,
  transport,
});
await service.start();

const api = new VolumeApi({ store, rpc: new RpcClient(transport, { defaultTimeoutMs: 10_000 }) });
const ctx = new RequestContext({ userId: 'demo', projectId: 'demo-project' });
const volume = await api.create(ctx, { size: 1, name: 'example' });
console.log(`\ncreated volume ${volume.id} (${volume.status})`);
const available = await waitFor(
  () => api.get(ctx, volume.id),
  (v) => v.status !== 'creating',
);
console.log(`volume ${available.id} is ${available.status} on ${available.host}`);

const [record] = await new ServiceRegistry(store).list({ binary: 'stratus-volume' });
console.log(
  `service ${record.binary} on ${record.host}: ${record.up ? 'up' : 'down'}, capabilities ${JSON.stringify(record.capabilities)}`,
);

await api.delete(ctx, volume.id);
await waitFor(
  () => api.list(ctx),
  (list) => !list.some((v) => v.id === volume.id),
);
console.log(`volume ${volume.id} deleted`);

await service.stop();
await transport.close();
await store.close();

async function waitFor(read, done) {
  for (let i = 0; i < 200; i++) {
    const value = await read();
    if (done(value)) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('timed out waiting for the volume service');
}
