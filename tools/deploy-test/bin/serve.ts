/**
 * Runs the services of one Stratus config file in this process, as `stratus serve` would:
 * `loadConfig` → `Service.fromConfig` per service → `Launcher` (SIGTERM/SIGINT stop, SIGHUP reloads).
 *
 *   node --import tsx bin/serve.ts --config vol-a.json [--service volume] [--root <dir>]
 *
 * `--root` is the folder plugins resolve from (default: the config file's folder). When started with
 * an IPC channel (by the deployment test), it reports `ready` and answers the control messages of
 * `../src/control.ts` (fault injection, backend inspection); without one it is a plain service runner.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, Launcher, type LogLevel, loadConfig, Service } from '@stratus/core';
import { countCreates, handleControl, isControlRequest } from '../src/control.js';

const { values } = parseArgs({
  options: {
    config: { type: 'string', short: 'c' },
    service: { type: 'string', short: 's', multiple: true },
    root: { type: 'string' },
  },
  strict: true,
});

if (!values.config) {
  process.stderr.write('usage: serve --config <stratus.config.json> [--service <name>]... [--root <dir>]\n');
  process.exit(2);
}
const file = path.resolve(values.config);

const loaded = await loadConfig({ file });
const { config } = loaded;
const root = values.root ? path.resolve(values.root) : loaded.root;
const logger = createLogger({ level: config.log.level as LogLevel }).child({
  host: config.host,
  pid: process.pid,
});

const names =
  values.service && values.service.length > 0
    ? values.service
    : Object.entries(config.services)
        .filter(([, entry]) => entry.enabled !== false)
        .map(([name]) => name);
if (names.length === 0) {
  logger.error(`no service to run: ${file} defines none under "services"`);
  process.exit(2);
}

const services = names.map((name) => Service.fromConfig(name, { settings: config, root, logger }));
const launcher = new Launcher({
  services,
  logger,
  reloadConfig: async () => (await loadConfig({ file })).config,
});

try {
  await launcher.launch();
} catch (err) {
  logger.fatal({ err }, 'could not start; see the error above');
  process.exit(1);
}

if (process.send) {
  countCreates(services);
  process.on('message', (message: unknown) => {
    if (!isControlRequest(message)) return;
    void handleControl(services, message).then((reply) => process.send?.(reply));
  });
  process.send({ type: 'ready', host: config.host, pid: process.pid, services: names });
}

const results = await launcher.wait();
const pending = results.reduce((sum, r) => sum + r.pending, 0);
// The IPC channel (when present) would keep the event loop alive.
process.disconnect?.();
process.exitCode = pending > 0 ? 3 : 0;
