import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** dpkg-query's format: a literal ${Version}, not a template. */
const DPKG_VERSION = ['$', '{Version}'].join('');

/** tools/bench */
export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The repository root. */
export const REPO_DIR = path.resolve(BENCH_DIR, '../..');
/** Scratch folder for configs and databases; config files there resolve plugins from tools/bench/node_modules. */
export const RUN_DIR = path.join(BENCH_DIR, '.run');
export const CLI_BIN = path.join(REPO_DIR, 'packages/cli/dist/bin.js');
export const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';

export const AMQP_URL = process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';
/** A database of its own: other test suites use `test`. */
export const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const PG_DB = process.env.BENCH_PG_DB ?? 'stratus_bench';
export const PG_URL = PG_ADMIN_URL.replace(/\/[^/]*$/, `/${PG_DB}`);

/** Run modes: smoke = seconds, for CI; full = `pnpm bench`. */
export interface Mode {
  readonly smoke: boolean;
  readonly reps: number;
  /** Measured window per point, seconds. */
  readonly seconds: number;
  readonly warmupSeconds: number;
}

export function loadAverage(): number {
  return os.loadavg()[0] ?? 0;
}

/** True when a TCP connect to host:port succeeds within 1 s. */
export function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Returns a reason to skip when the service is down, or throws under CI (where the services are
 * started by .ci/run, so a missing one is a failure, not a skip).
 */
export async function requireService(what: 'rabbitmq' | 'postgres'): Promise<string | undefined> {
  const url = new URL(what === 'rabbitmq' ? AMQP_URL : PG_ADMIN_URL);
  const port = Number(url.port || (what === 'rabbitmq' ? 5672 : 5432));
  if (await reachable(url.hostname, port)) return undefined;
  const reason = `${what} is not reachable at ${url.hostname}:${port}`;
  if (process.env.CI) throw new Error(`${reason} (CI is set: .ci/run starts it)`);
  return reason;
}

async function versionOf(file: string, args: string[], pattern: RegExp): Promise<string> {
  try {
    const { stdout, stderr } = await run(file, args, { timeout: 15_000 });
    return pattern.exec(stdout + stderr)?.[1] ?? '?';
  } catch {
    return '?';
  }
}

/**
 * Version of an installed package, from its package.json: looked up next to the bench first, then
 * found by walking up from the file Node resolves for it (some packages do not export
 * ./package.json, and pnpm may place them elsewhere).
 */
export function packageVersion(name: string): string {
  const candidates = [path.join(BENCH_DIR, 'node_modules', name, 'package.json')];
  try {
    let dir = path.dirname(createRequire(path.join(BENCH_DIR, 'package.json')).resolve(name));
    while (dir !== path.dirname(dir)) {
      candidates.push(path.join(dir, 'package.json'));
      dir = path.dirname(dir);
    }
  } catch {
    // Not resolvable from the bench: only the direct path is tried.
  }
  for (const file of candidates) {
    try {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Missing or unreadable: try the next candidate.
    }
  }
  return '?';
}

/** What the figures were measured on. */
export async function machineInfo(): Promise<Record<string, unknown>> {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? '?',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    rabbitmq: await versionOf('dpkg-query', ['-W', '-f', DPKG_VERSION, 'rabbitmq-server'], /^(\S+)/),
    postgres: await versionOf('psql', ['--version'], /(\d+\.\d+)/),
    oslo: await versionOf('dpkg-query', ['-W', '-f', DPKG_VERSION, 'python3-oslo.messaging'], /^(\S+)/),
    moleculer: packageVersion('moleculer'),
    amqplib: packageVersion('amqplib'),
  };
}

/** A child process that prints `READY` (or a JSON line with `ready`) once it serves. */
export interface Worker {
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Spawn a worker and wait for a stdout line matching `ready` (default: `READY`).
 * @throws when it exits first or does not get ready within `timeoutMs`.
 */
export function startWorker(
  file: string,
  args: readonly string[],
  options: { ready?: RegExp; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<Worker> {
  const ready = options.ready ?? /^READY\b/;
  const child = spawn(file, [...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
    cwd: options.cwd ?? BENCH_DIR,
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise<Worker>((resolve, reject) => {
    let isReady = false;
    let buffer = '';
    const timer = setTimeout(() => {
      void stop();
      reject(
        new Error(
          `${path.basename(args[args.length - 1] ?? file)} not ready within ${options.timeoutMs ?? 60_000} ms: ${stderr}`,
        ),
      );
    }, options.timeoutMs ?? 60_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      // After ready, output is drained and dropped.
      if (isReady) return;
      buffer += chunk.toString();
      let index = buffer.indexOf('\n');
      while (index >= 0) {
        const line = buffer.slice(0, index);
        buffer = buffer.slice(index + 1);
        if (!isReady && ready.test(line)) {
          isReady = true;
          clearTimeout(timer);
          resolve({ child, stop });
        }
        index = buffer.indexOf('\n');
      }
    });
    child.once('exit', (code, signal) => {
      if (isReady) return;
      clearTimeout(timer);
      reject(
        new Error(`${[file, ...args].join(' ')} exited (${code ?? signal}) before it was ready: ${stderr}`),
      );
    });
  });
}

/** `node --import tsx <bench>/src/workers/<name>.ts args…` */
export function startNodeWorker(name: string, args: readonly string[], options: { timeoutMs?: number } = {}) {
  return startWorker(
    process.execPath,
    ['--import', 'tsx', path.join(BENCH_DIR, 'src/workers', `${name}.ts`), ...args],
    options,
  );
}

/** Peak and current RSS (MiB) of a live process, from /proc. */
export async function rssOf(pid: number): Promise<{ rss: number; peak: number }> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}
