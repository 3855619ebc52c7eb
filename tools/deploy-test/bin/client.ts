/**
 * The client side of the deployment recipe, as its own OS process: reads a Stratus config (any host's
 * file will do: it uses `database.url` and `transport.config`), then creates volumes, boots an
 * instance, attaches a volume of each volume host, detaches, terminates and deletes everything.
 * Progress goes to stderr; the report (`ScenarioReport`) is printed on stdout as one JSON line.
 *
 *   node --import tsx bin/client.ts --config vol-a.json [--volumes 6]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '@stratus/core';
import { connectClient, demoContext } from '../src/client.js';
import { runScenario } from '../src/scenario.js';

const { values } = parseArgs({
  options: {
    config: { type: 'string', short: 'c' },
    volumes: { type: 'string', default: '6' },
  },
  strict: true,
});
if (!values.config) {
  process.stderr.write('usage: client --config <stratus.config.json> [--volumes N]\n');
  process.exit(2);
}
const volumes = Number(values.volumes);
if (!Number.isInteger(volumes) || volumes < 1) {
  process.stderr.write(`--volumes must be a positive integer, not ${values.volumes}\n`);
  process.exit(2);
}

const { config } = await loadConfig({ file: path.resolve(values.config) });
if (config.transport.plugin !== '@stratus/transport-amqp') {
  process.stderr.write(`this client speaks AMQP only; ${values.config} uses ${config.transport.plugin}\n`);
  process.exit(2);
}

const client = await connectClient({
  databaseUrl: config.database.url,
  transportConfig: config.transport.config ?? {},
  callTimeoutSec: config.rpcResponseTimeout,
});
try {
  const report = await runScenario(client, demoContext(), {
    volumes,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${JSON.stringify(report)}\n`);
} catch (error) {
  process.stderr.write(`scenario failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
} finally {
  await client.close();
}
