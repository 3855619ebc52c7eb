import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import {
  type ControlReply,
  type ControlRequest,
  isControlReply,
  isReadyMessage,
  type ReadyMessage,
} from './control.js';

const run = promisify(execFile);

/** This package's folder: the services resolve `@stratus/*` plugins from its node_modules. */
export const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SERVE = path.join(PACKAGE_DIR, 'bin', 'serve.ts');

/** The broker and database under test; override with STRATUS_TEST_AMQP_URL / STRATUS_TEST_PG_URL. */
export const AMQP_URL = process.env.STRATUS_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';
export const PG_URL = process.env.STRATUS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A control request before the harness numbers it. */
export type ControlRequestBody = ControlRequest extends infer R
  ? R extends unknown
    ? Omit<R, 'id'>
    : never
  : never;

/** What a deployment host runs: a volume service, a compute service. */
export type HostRole = 'volume' | 'compute';

/** One running `bin/serve.ts` child. */
export interface HostProcess {
  readonly host: string;
  readonly role: HostRole | 'client';
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) once the child is gone. */
  readonly exited: Promise<number | string>;
}

/** Settings shared by every process of one deployment (and its client). */
export interface DeploymentSettings {
  /** `postgres://.../stratus_deploy_<hex>`: a database created for this run. */
  readonly databaseUrl: string;
  /** `amqp://.../stratus-deploy-<hex>`: a vhost created for this run. */
  readonly amqpUrl: string;
  readonly controlExchange: string;
  /** The transport config every process uses. */
  readonly transportConfig: Readonly<Record<string, unknown>>;
}

/** Thrown by a `waitFor` probe when the awaited state can no longer come: the wait stops at once. */
export class GiveUp extends Error {}

/**
 * Bounded polling: resolves with the first truthy value of `probe`, or throws naming `what`. A probe
 * that throws is retried (a transient failure) unless it throws {@link GiveUp}.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  { timeoutMs = 30_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = undefined;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      last = error;
    }
    if (Date.now() > until) {
      const why = last ? ` (last error: ${(last as Error).message})` : '';
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** rabbitmqctl with an argument array (never a shell); throws with its stderr on failure. */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 90_000 });
  return stdout;
}

/** Why this harness cannot run here (one line), or undefined when it can. */
/** Skips the suite with a one-line reason when RabbitMQ or PostgreSQL is missing; under `CI` that fails instead. */
export async function skipWithoutEnvironment(suite: { skip(): void }): Promise<void> {
  const problem = await environmentProblem();
  if (!problem) return;
  if (process.env.CI) throw new Error(`${problem} (CI is set, so this fails instead of skipping)`);
  console.log(`      skipped: ${problem}`);
  suite.skip();
}

export async function environmentProblem(): Promise<string | undefined> {
  try {
    await rabbitmqctl('-q', 'list_vhosts');
  } catch (error) {
    const first = (error as Error).message.split('\n')[0];
    return `RabbitMQ is not running or rabbitmqctl cannot manage it (${first})`;
  }
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
  } catch (error) {
    return `PostgreSQL is not reachable at ${redact(PG_URL)} (${(error as Error).message})`;
  } finally {
    await client.end().catch(() => {});
  }
  return undefined;
}

function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

/**
 * A throw-away multi-process deployment: its own PostgreSQL database, RabbitMQ vhost and temp folder
 * of config files and logs; hosts are `bin/serve.ts` children, each the leader of its own process
 * group so that `kill` reaches everything it started. `destroy()` removes all of it, even after a
 * failed test.
 */
export class Deployment {
  readonly id: string;
  readonly dir: string;
  readonly settings: DeploymentSettings;
  readonly #hosts = new Map<string, HostProcess>();
  /** Every child ever started, so destroy() also reaps ones a test replaced. */
  readonly #children = new Set<HostProcess>();
  readonly #database: string;
  readonly #vhost: string;
  #nextControlId = 1;

  private constructor(id: string, dir: string, database: string, vhost: string) {
    this.id = id;
    this.dir = dir;
    this.#database = database;
    this.#vhost = vhost;
    const databaseUrl = new URL(PG_URL);
    databaseUrl.pathname = `/${database}`;
    const amqpUrl = new URL(AMQP_URL);
    amqpUrl.pathname = `/${encodeURIComponent(vhost)}`;
    const controlExchange = `stratus-deploy-${id}`;
    this.settings = {
      databaseUrl: databaseUrl.toString(),
      amqpUrl: amqpUrl.toString(),
      controlExchange,
      transportConfig: {
        urls: [amqpUrl.toString()],
        controlExchange,
        // Durable queues and persistent messages: accepted casts must survive a broker restart.
        durableQueues: true,
        reconnect: { minDelayMs: 200, maxDelayMs: 2000 },
      },
    };
  }

  /** Create the database, the vhost and the temp folder. */
  static async create(): Promise<Deployment> {
    const id = randomBytes(4).toString('hex');
    const database = `stratus_deploy_${id}`;
    const vhost = `stratus-deploy-${id}`;
    const dir = await mkdtemp(path.join(os.tmpdir(), `stratus-deploy-${id}-`));
    const deployment = new Deployment(id, dir, database, vhost);
    try {
      const user = decodeURIComponent(new URL(AMQP_URL).username || 'guest');
      // rabbitmqctl boots an Erlang VM per command (seconds): overlap it with the database.
      await Promise.all([
        withAdminDb((db) => db.query(`create database ${database}`)),
        rabbitmqctl('-q', 'add_vhost', vhost).then(() =>
          rabbitmqctl('-q', 'set_permissions', '-p', vhost, user, '.*', '.*', '.*'),
        ),
      ]);
    } catch (error) {
      await deployment.destroy();
      throw error;
    }
    return deployment;
  }

  /** The host process named `host`, if running (or started and not yet reaped). */
  host(host: string): HostProcess {
    const proc = this.#hosts.get(host);
    if (!proc) throw new Error(`no host ${host} in this deployment`);
    return proc;
  }

  /**
   * Write `<dir>/<host>.json`: one service (`volume` or `compute`) on fake drivers, by package name;
   * `overrides` replace top-level keys (`maxConcurrency`, ...).
   */
  async writeConfig(
    host: string,
    role: HostRole,
    overrides: Readonly<Record<string, unknown>> = {},
    managerConfig: Readonly<Record<string, unknown>> = {},
  ): Promise<string> {
    // The backend outlives its process, as LVM volumes and running VMs do, so a SIGKILLed host
    // restarts with what its backend held.
    const stateFile = path.join(this.dir, `${host}.backend.json`);
    const services =
      role === 'volume'
        ? {
            volume: {
              manager: {
                plugin: '@stratus/manager-volume',
                config: { statsRefreshInterval: 5, ...managerConfig },
              },
              driver: { plugin: '@stratus/driver-fake#volume', config: { capacityGiB: 2000, stateFile } },
            },
          }
        : {
            compute: {
              manager: {
                plugin: '@stratus/manager-compute',
                config: { syncPowerStateInterval: 5, ...managerConfig },
              },
              // Room for a fault case's boots (m1.tiny: 1 vCPU, 512 MiB) even when one host takes them all.
              driver: {
                plugin: '@stratus/driver-fake#compute',
                config: { vcpus: 256, memoryMiB: 262144, stateFile },
              },
            },
          };
    const config = {
      host,
      database: { url: this.settings.databaseUrl },
      transport: { plugin: '@stratus/transport-amqp', config: this.settings.transportConfig },
      log: { level: process.env.STRATUS_DEPLOY_LOG_LEVEL ?? 'info' },
      reportInterval: 1,
      serviceDownTime: 4,
      rpcResponseTimeout: 20,
      gracefulShutdownTimeout: 10,
      services,
      ...overrides,
    };
    const file = path.join(this.dir, `${host}.json`);
    await writeFile(file, `${JSON.stringify(config, null, 2)}\n`);
    return file;
  }

  /**
   * Start `bin/serve.ts` for `host` as its own process group and wait for its `ready` message.
   * A host name already used (after a kill) is started again with the same config.
   */
  async start(
    host: string,
    role: HostRole,
    {
      timeoutMs = 60_000,
      overrides = {},
      managerConfig = {},
    }: {
      timeoutMs?: number;
      /** Top-level config keys to replace (`maxConcurrency`, `database`, `transport`, ...). */
      overrides?: Readonly<Record<string, unknown>>;
      /** Merged into the manager's config (`driverTimeout`, ...). */
      managerConfig?: Readonly<Record<string, unknown>>;
    } = {},
  ): Promise<HostProcess> {
    const running = this.#hosts.get(host);
    if (running && running.child.exitCode === null && running.child.signalCode === null) {
      throw new Error(`host ${host} is already running (pid ${running.pid})`);
    }
    const config = await this.writeConfig(host, role, overrides, managerConfig);
    const logFile = path.join(this.dir, `${host}.log`);
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, ['--import', 'tsx', SERVE, '--config', config, '--root', PACKAGE_DIR], {
        cwd: PACKAGE_DIR,
        detached: true,
        stdio: ['ignore', fd, fd, 'ipc'],
        env: { ...process.env },
      });
    } finally {
      closeSync(fd);
    }
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not start the ${host} process (see ${logFile})`);
    const exited = new Promise<number | string>((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    });
    const proc: HostProcess = { host, role, child, pid, logFile, exited };
    this.#hosts.set(host, proc);
    this.#children.add(proc);

    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<ReadyMessage>((resolve) => {
          const onMessage = (message: unknown) => {
            if (!isReadyMessage(message)) return;
            child.off('message', onMessage);
            resolve(message);
          };
          child.on('message', onMessage);
        }),
        exited.then((how) => {
          throw new Error(`${host} exited (${how}) before it was ready:\n${this.logTail(host)}`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${host} was not ready after ${timeoutMs} ms:\n${this.logTail(host)}`)),
            timeoutMs,
          );
        }),
      ]);
    } catch (error) {
      killGroup(proc, 'SIGKILL');
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return proc;
  }

  /**
   * Run `bin/client.ts` against this deployment as its own OS process (and process group), reading
   * `<host>.json`; resolves with its exit code, stdout and stderr, or kills it after `timeoutMs`.
   */
  async runClient(
    configHost: string,
    args: readonly string[] = [],
    { timeoutMs = 120_000 } = {},
  ): Promise<{ code: number | string; stdout: string; stderr: string }> {
    const config = path.join(this.dir, `${configHost}.json`);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(PACKAGE_DIR, 'bin', 'client.ts'), '--config', config, ...args],
      { cwd: PACKAGE_DIR, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const pid = child.pid;
    if (pid === undefined) throw new Error('could not start bin/client.ts');
    const exited = new Promise<number | string>((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    });
    // 'close' follows 'exit' and the end of both pipes, so the output is complete by then.
    const closed = new Promise<number | string>((resolve) => {
      child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    });
    const proc: HostProcess = { host: 'client', role: 'client', child, pid, logFile: '', exited };
    this.#children.add(proc);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      const code = await Promise.race([
        closed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            killGroup(proc, 'SIGKILL');
            reject(new Error(`bin/client.ts did not finish within ${timeoutMs} ms; stderr:\n${stderr}`));
          }, timeoutMs);
        }),
      ]);
      return { code, stdout, stderr };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Send `signal` to the host's whole process group; resolves once the process has exited. */
  async kill(host: string, signal: NodeJS.Signals, { timeoutMs = 30_000 } = {}): Promise<number | string> {
    const proc = this.host(host);
    killGroup(proc, signal);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        proc.exited,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${host} did not exit within ${timeoutMs} ms of ${signal}`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Send a control request to a host's fake driver (see `control.ts`) and wait for the answer. */
  async control<T>(host: string, request: ControlRequestBody, { timeoutMs = 10_000 } = {}): Promise<T> {
    const { child } = this.host(host);
    const id = this.#nextControlId++;
    let timer: NodeJS.Timeout | undefined;
    let onMessage: ((message: unknown) => void) | undefined;
    try {
      const reply = await new Promise<ControlReply>((resolve, reject) => {
        onMessage = (message: unknown) => {
          if (isControlReply(message) && message.id === id) resolve(message);
        };
        child.on('message', onMessage);
        timer = setTimeout(
          () => reject(new Error(`${host} did not answer ${request.type} in time`)),
          timeoutMs,
        );
        child.send({ ...request, id } as ControlRequest, (error) => {
          if (error) reject(error);
        });
      });
      if (!reply.ok) throw new Error(`${host}: ${reply.error}`);
      return reply.result as T;
    } finally {
      clearTimeout(timer);
      if (onMessage) child.off('message', onMessage);
    }
  }

  /** The last lines of a host's log (for failure messages). */
  logTail(host: string, lines = 40): string {
    try {
      const text = readFileSync(path.join(this.dir, `${host}.log`), 'utf8');
      return text.split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Every host's log tail, for a failed test's output. */
  allLogTails(lines = 25): string {
    return [...this.#hosts.keys()].map((h) => `--- ${h} ---\n${this.logTail(h, lines)}`).join('\n');
  }

  /**
   * SIGKILL every child still alive (whole process groups), then drop the database, delete the vhost
   * (its queues and exchanges with it) and the temp folder. Safe to call twice, and after a failure.
   */
  async destroy({ keepDir = false } = {}): Promise<void> {
    const alive = [...this.#children].filter((p) => p.child.exitCode === null && p.child.signalCode === null);
    for (const proc of alive) killGroup(proc, 'SIGKILL');
    await Promise.race([Promise.all(alive.map((p) => p.exited)), sleep(10_000)]);
    this.#children.clear();
    this.#hosts.clear();
    await Promise.all([
      withAdminDb((db) => db.query(`drop database if exists ${this.#database} with (force)`)).catch(() => {}),
      rabbitmqctl('-q', 'delete_vhost', this.#vhost).catch(() => {}),
    ]);
    if (!keepDir) await rm(this.dir, { recursive: true, force: true });
  }
}

/** Signal a child's process group; a group already gone is fine. */
function killGroup(proc: HostProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-proc.pid, signal);
  } catch {
    try {
      proc.child.kill(signal);
    } catch {
      // already gone
    }
  }
}

async function withAdminDb<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}
