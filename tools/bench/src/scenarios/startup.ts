/**
 * Scenario 4 — start-up: wall time from spawning `stratus serve volume` (fake driver, SQLite,
 * embedded memory transport) to its "ready" log line, which it writes after registering,
 * consuming and writing its first heartbeat; and the process's peak RSS (VmHWM) at that point.
 * Each repetition starts once on a fresh data folder (migrations run) and once more on it (warm).
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLI_BIN, type Mode, RUN_DIR, rssOf, startWorker } from '../lib/env.js';
import type { Recorder } from '../lib/report.js';

async function startOnce(dir: string): Promise<{ ms: number; peakMiB: number }> {
  const started = performance.now();
  const worker = await startWorker(
    process.execPath,
    [CLI_BIN, 'serve', 'volume', '--config', path.join(dir, 'stratus.config.json')],
    { ready: /is ready on/, timeoutMs: 60_000, cwd: dir },
  );
  const ms = performance.now() - started;
  try {
    const { peak } = await rssOf(worker.child.pid as number);
    return { ms, peakMiB: peak };
  } finally {
    await worker.stop();
  }
}

/**
 * A `stratus serve volume` config (fake driver, SQLite under `dir`) in `dir`. The config's folder is the
 * plugin root: tools/bench/node_modules has the volume plugins.
 */
export function writeStartupConfig(dir: string, host: string): void {
  writeFileSync(
    path.join(dir, 'stratus.config.json'),
    JSON.stringify({
      host,
      dataDir: path.join(dir, 'data'),
      log: { level: 'info' },
      services: {
        volume: {
          manager: { plugin: '@stratus/manager-volume' },
          driver: { plugin: '@stratus/driver-fake#volume' },
        },
      },
    }),
  );
}

export async function runStartup(mode: Mode, rec: Recorder): Promise<string | undefined> {
  if (!existsSync(CLI_BIN))
    throw new Error(
      `${CLI_BIN} is missing: build the CLI first (pnpm turbo run build --filter=@stratus/cli)`,
    );
  for (let rep = 0; rep < mode.reps; rep++) {
    const dir = path.join(RUN_DIR, `startup-${process.pid}-${rep}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeStartupConfig(dir, 'bench-startup');
    try {
      const fresh = await startOnce(dir);
      rec.add(
        'fresh:ms',
        'spawn → ready, fresh data folder (migrations run)',
        'stratus serve volume',
        'ms',
        fresh.ms,
      );
      rec.add('fresh:rss', 'peak RSS at ready, fresh', 'stratus serve volume', 'MiB', fresh.peakMiB);
      const warm = await startOnce(dir);
      rec.add('warm:ms', 'spawn → ready, existing data folder', 'stratus serve volume', 'ms', warm.ms);
      rec.add(
        'warm:rss',
        'peak RSS at ready, existing data folder',
        'stratus serve volume',
        'MiB',
        warm.peakMiB,
      );
      console.log(
        `  fresh ${fresh.ms.toFixed(0)} ms ${fresh.peakMiB.toFixed(1)} MiB; warm ${warm.ms.toFixed(0)} ms ${warm.peakMiB.toFixed(1)} MiB`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  rec.target('start-up (spawn → ready), existing data folder', 'warm:ms', 'ms', '<=', 300);
  rec.target('start-up (spawn → ready), fresh data folder', 'fresh:ms', 'ms', '<=', 300);
  rec.target('peak RSS at ready', 'fresh:rss', 'MiB', '<=', 90);
  rec.notes.push(
    '`node packages/cli/dist/bin.js serve volume --config …` (fake driver, SQLite in the data folder, embedded memory transport); "ready" is the service\'s `stratus-volume is ready on <host>` log line, written after registration, consuming and the first heartbeat. Peak RSS = VmHWM from /proc at that moment.',
  );
  return undefined;
}
