/**
 * CPU time and peak RSS of `stratus serve volume` (fake driver, SQLite) up to its ready line, for
 * comparing builds of the CLI on a loaded machine, where wall time swings and CPU time does not:
 *   node --import tsx scripts/startup-cpu.ts [reps] [label=/abs/packages/cli/dist/bin.js …]
 * Each build needs its own tree (its config folder resolves the plugins from that tree's tools/bench).
 * Runs the builds interleaved; prints wall ms, CPU ms (utime + stime from /proc) and VmHWM per start.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CLI_BIN } from '../src/lib/env.js';
import { writeStartupConfig } from '../src/scenarios/startup.js';

const reps = Number(process.argv[2] ?? 5);
const builds = (process.argv.length > 3 ? process.argv.slice(3) : [`current=${CLI_BIN}`]).map((spec) => {
  const [label, bin] = spec.split('=') as [string, string];
  // <tree>/packages/cli/dist/bin.js → <tree>/tools/bench/.run
  const runDir = path.resolve(path.dirname(bin), '../../../tools/bench/.run', `startup-cpu-${process.pid}`);
  return { label, bin, runDir };
});
const ticks = 100; // USER_HZ on Linux

async function once(bin: string, dir: string) {
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [bin, 'serve', 'volume', '--config', path.join(dir, 'stratus.config.json')],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('is ready on')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited ${code} before ready: ${out.slice(-2000)}`)));
  });
  const ms = performance.now() - t0;
  const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const cpuMs = ((Number(stat[11]) + Number(stat[12])) / ticks) * 1000;
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
  return { ms, cpuMs, hwm };
}

for (const { runDir } of builds) {
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  writeStartupConfig(runDir, 'startup-cpu');
}
try {
  for (let rep = 0; rep < reps; rep++) {
    for (const { label, bin, runDir } of builds) {
      const r = await once(bin, runDir);
      console.log(
        `${label.padEnd(10)} ${r.ms.toFixed(0).padStart(5)} ms  cpu ${r.cpuMs.toFixed(0).padStart(4)} ms  ${r.hwm.toFixed(1)} MiB`,
      );
    }
  }
} finally {
  for (const { runDir } of builds) rmSync(runDir, { recursive: true, force: true });
}
