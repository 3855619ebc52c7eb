import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import {
  Launcher,
  type Logger,
  type LogLevel,
  MemoryTransport,
  migrate,
  openDatabase,
  type PluginManifest,
  Service,
  type Store,
  type Transport,
} from '@stratus/core';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { checkPlugins, type Deployment, loadDeployment, type PluginReport } from '../deployment.js';
import { CliError, ExitCode, usageError } from '../exit.js';
import type { FakeFaults } from '../local-backend.js';
import { localLogger } from '../logging.js';
import { type Profile, profilePath, readProfile, writeProfile } from '../profile.js';
import { migrationSets } from '../store.js';

interface UpFlags {
  readonly config?: string;
  readonly port?: string;
  readonly dataDir?: string;
  readonly host?: string;
  readonly verbose?: boolean;
  readonly logLevel?: string;
}

const ADMIN = { username: 'admin', project: 'admin' } as const;
const API_PACKAGE = '@stratus/api';
const FAKE_PACKAGE = '@stratus/driver-fake';
const LOCK_FILE = 'up.pid';

/** `stratus up`. */
export function registerUp(program: Command, ctx: CliContext): void {
  program
    .command('up')
    .description(
      'run API + volume + compute in this process on the embedded default (SQLite in ./.stratus, in-memory transport, fake drivers); Ctrl-C stops it',
    )
    .option(
      '-c, --config <file>',
      'deployment config file (default: ./stratus.config.{json,yaml}, else built-in)',
    )
    .option('-p, --port <n>', 'API port (default 8776; 0 picks a free one)')
    .option('-d, --data-dir <dir>', 'folder for the database, logs and profile (default ./.stratus)')
    .option('--host <name>', "this host's name in the service registry (default: the OS hostname)")
    .option('-v, --verbose', 'show info logs in the terminal too (they are always in <data-dir>/stratus.log)')
    .option('--log-level <level>', 'level written to <data-dir>/stratus.log', 'info')
    .action((flags: UpFlags) => up(ctx, flags));
}

async function up(ctx: CliContext, flags: UpFlags): Promise<void> {
  const { io } = ctx;
  const requested = flags.port === undefined ? undefined : parsePort(flags.port);
  // The endpoint goes into the profile, so a "any free port" request is settled before start.
  const port = requested === 0 ? await freePort() : requested;
  const deployment = await loadDeployment(flags, io);
  const { config } = deployment;
  const lock = path.join(config.dataDir, LOCK_FILE);
  await claimDataDir(lock, config.dataDir);

  const logFile = path.join(config.dataDir, 'stratus.log');
  const logs = localLogger({
    file: logFile,
    level: (flags.logLevel ?? 'info') as LogLevel,
    showLevel: flags.verbose ? 'info' : 'warn',
    terminal: io.stderr,
  });
  const logger = logs.logger;
  let store: Store | undefined;
  let transport: Transport | undefined;
  try {
    // Loaded here: it pulls in the managers' table helpers, which client commands never need.
    const { parseFakeFaults, persistentFakeCompute, persistentFakeVolume } = await import(
      '../local-backend.js'
    );
    const faults = parseFakeFaults(io.env.STRATUS_FAKE_FAULTS);
    const reports = await checkPlugins(deployment);
    const broken = reports.filter((r) => !r.ok);
    if (broken.length) {
      throw new CliError(
        `Cannot start: ${broken.map((r) => `${r.at} (${r.spec}): ${r.problem}`).join('\n')}`,
        { hint: 'stratus plugins check lists every plugin and its problem.' },
      );
    }
    store = await openDatabase(config.database.url, {
      logger,
      sqliteSynchronous: config.database.sqliteSynchronous,
    });
    await migrate(store, await migrationSets(deployment));
    // The embedded transport is shared by every service of this process; any other is per service.
    if (config.transport.plugin.startsWith('@stratus/core#memory')) {
      transport = new MemoryTransport({ logger });
      await transport.connect();
    }

    const services = buildServices(deployment, reports, {
      store,
      transport,
      logger,
      port,
      faults,
      wrapVolume: persistentFakeVolume,
      wrapCompute: persistentFakeCompute,
    });
    const apiService = services.find((s) => managerOf(reports, s.name)?.name === API_PACKAGE);
    const login = apiService ? await ensureAdmin(store, config.dataDir) : undefined;

    const launcher = new Launcher({ services, logger });
    try {
      await launcher.launch();
    } catch (error) {
      throw startFailure(error, logFile);
    }

    const endpoint = apiService ? apiEndpoint(apiService, deployment, port) : undefined;
    let profileFile: string | undefined;
    if (endpoint && login) {
      profileFile = profilePath(config.dataDir);
      await writeProfile(profileFile, { ...login.profile, endpoint });
    }
    await writeFile(lock, `${JSON.stringify({ pid: process.pid, endpoint: endpoint ?? null })}\n`);
    io.stdout.write(banner(deployment, services, { endpoint, login, profileFile, logFile, cwd: io.cwd }));

    await launcher.wait();
    io.stdout.write('Stratus stopped.\n');
  } finally {
    await transport?.close().catch(() => undefined);
    await store?.close().catch(() => undefined);
    await logs.close();
    await rm(lock, { force: true });
  }
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw usageError(`--port must be an integer from 0 to 65535, got "${text}"`);
  }
  return port;
}

/** One `stratus up` per data directory: two would share the database and fight over the port. */
async function claimDataDir(lock: string, dataDir: string): Promise<void> {
  let previous: { pid?: unknown; endpoint?: unknown } | undefined;
  try {
    previous = JSON.parse(await readFile(lock, 'utf8')) as { pid?: unknown };
  } catch {
    previous = undefined;
  }
  if (previous && typeof previous.pid === 'number' && previous.pid !== process.pid && isAlive(previous.pid)) {
    throw new CliError(
      `stratus up is already running for ${dataDir} (pid ${previous.pid}${previous.endpoint ? `, API ${previous.endpoint}` : ''})`,
      {
        hint: 'Use that one (client commands in this folder find it), stop it with Ctrl-C, or pass --data-dir.',
      },
    );
  }
  await writeFile(lock, `${JSON.stringify({ pid: process.pid })}\n`).catch(async () => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dataDir, { recursive: true });
    await writeFile(lock, `${JSON.stringify({ pid: process.pid })}\n`);
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function managerOf(reports: readonly PluginReport[], service: string): PluginManifest | undefined {
  return reports.find((r) => r.at === `/services/${service}/manager`)?.manifest;
}

interface BuildOptions {
  readonly store: Store;
  readonly transport: Transport | undefined;
  readonly logger: Logger;
  readonly port: number | undefined;
  readonly faults: FakeFaults;
  readonly wrapVolume: typeof import('../local-backend.js').persistentFakeVolume;
  readonly wrapCompute: typeof import('../local-backend.js').persistentFakeCompute;
}

function buildServices(
  deployment: Deployment,
  reports: readonly PluginReport[],
  options: BuildOptions,
): Service[] {
  const { config, root } = deployment;
  const services: Service[] = [];
  for (const [name, entry] of Object.entries(config.services)) {
    if (entry.enabled === false) continue;
    const manager = managerOf(reports, name) as PluginManifest<'manager'>;
    let driver = reports.find((r) => r.at === `/services/${name}/driver`)?.manifest;
    if (driver?.name === FAKE_PACKAGE && driver.kind === 'volume-driver') {
      driver = options.wrapVolume(
        driver as PluginManifest<'volume-driver'>,
        options.store,
        options.logger,
        options.faults,
      );
    } else if (driver?.name === FAKE_PACKAGE && driver.kind === 'compute-driver') {
      driver = options.wrapCompute(
        driver as PluginManifest<'compute-driver'>,
        options.store,
        options.logger,
        options.faults,
      );
    }
    let managerConfig = entry.manager.config;
    if (manager.name === API_PACKAGE && options.port !== undefined) {
      const listen = (managerConfig?.listen ?? {}) as Record<string, unknown>;
      managerConfig = { ...managerConfig, listen: { ...listen, port: options.port } };
    }
    services.push(
      new Service({
        name,
        settings: config,
        root,
        manager,
        ...(managerConfig ? { managerConfig } : {}),
        ...(driver ? { driver, driverConfig: entry.driver?.config } : {}),
        ...(entry.topic ? { topic: entry.topic } : {}),
        logger: options.logger,
        store: options.store,
        ...(options.transport ? { transport: options.transport } : {}),
      }),
    );
  }
  if (!services.length) {
    throw new CliError('Every service in the config is disabled; there is nothing to run', {
      hint: 'Set enabled: true on at least one entry of services, or remove the services section.',
    });
  }
  return services;
}

interface Login {
  readonly profile: Omit<Profile, 'endpoint'>;
  /** Set when the password is new: it is printed once. */
  readonly newPassword?: string;
}

/**
 * The local admin: created with a random password on first run; on later runs the profile's
 * password is checked and reset when it no longer works (a deleted profile, a fresh database).
 */
async function ensureAdmin(store: Store, dataDir: string): Promise<Login> {
  const { IdentityStore } = await import('@stratus/api');
  const identity = new IdentityStore(store);
  const saved = await readProfile(profilePath(dataDir)).catch(() => undefined);
  const user = await identity.userByName(ADMIN.username);
  const base = { username: ADMIN.username, project: ADMIN.project };
  if (user && saved?.username === ADMIN.username && (await identity.checkPassword(user, saved.password))) {
    return { profile: { ...base, password: saved.password } };
  }
  const password = randomBytes(12).toString('base64url');
  if (user) await identity.setPassword(ADMIN.username, password);
  else await identity.addUser({ name: ADMIN.username, password, project: ADMIN.project, roles: ['admin'] });
  return { profile: { ...base, password }, newPassword: password };
}

/** The API's URL: what the manager reports when it can, else the configured address. */
function apiEndpoint(service: Service, deployment: Deployment, port: number | undefined): string {
  const manager = service.manager as unknown as { url?: unknown; address?: unknown } | undefined;
  if (typeof manager?.url === 'string') return manager.url.replace(/\/+$/, '');
  if (typeof manager?.address === 'string') return manager.address.replace(/\/+$/, '');
  const config = (deployment.config.services[service.name]?.manager.config ?? {}) as {
    listen?: { host?: string; port?: number };
    publicUrl?: string;
  };
  if (config.publicUrl) return config.publicUrl.replace(/\/+$/, '');
  const host = config.listen?.host ?? '127.0.0.1';
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port ?? config.listen?.port ?? 8776}`;
}

function startFailure(error: unknown, logFile: string): unknown {
  const message = error instanceof Error ? error.message : String(error);
  if (/EADDRINUSE/.test(message)) {
    return new CliError(`The API port is already in use (${message})`, {
      exitCode: ExitCode.FAILED,
      hint: 'Pass another one with --port N (or --port 0 for any free port), or stop what uses it.',
      cause: error,
    });
  }
  if (error instanceof CliError) return error;
  return Object.assign(error instanceof Error ? error : new Error(message), {
    message: `${message}\n(the full log is in ${logFile})`,
  });
}

function banner(
  deployment: Deployment,
  services: readonly Service[],
  info: {
    endpoint: string | undefined;
    login: Login | undefined;
    profileFile: string | undefined;
    logFile: string;
    cwd: string;
  },
): string {
  const rel = (p: string) => {
    const r = path.relative(info.cwd, p);
    return r && !r.startsWith('..') ? `./${r}` : p;
  };
  const lines = [
    `Stratus is running: ${services.map((s) => s.name).join(', ')} on ${deployment.config.host}`,
    `  data      ${rel(deployment.config.dataDir)} (database ${deployment.config.database.url.startsWith('sqlite:') ? 'SQLite' : 'PostgreSQL'}, log ${rel(info.logFile)})`,
  ];
  if (info.endpoint) lines.push(`  API       ${info.endpoint}`);
  if (info.login?.newPassword) {
    lines.push(
      `  login     user ${info.login.profile.username}, password ${info.login.newPassword}, project ${info.login.profile.project}  (shown once)`,
    );
  }
  if (info.profileFile) {
    const defaultProfile = path.join(info.cwd, '.stratus', 'profile.json');
    lines.push(
      info.profileFile === defaultProfile
        ? `  profile   ${rel(info.profileFile)}: stratus commands run in this folder use it`
        : `  profile   ${info.profileFile}: export STRATUS_PROFILE=${info.profileFile} to use it from elsewhere`,
    );
    lines.push(
      '',
      'Try, in another terminal:',
      '  stratus volume create --size 1 --name data --wait',
      '  stratus server create web --flavor m1.tiny --image cirros --wait',
      '  stratus server attach web data --wait',
      '  stratus service list',
    );
  }
  lines.push('', 'Press Ctrl-C to stop.', '');
  return lines.join('\n');
}

/** A free TCP port on 127.0.0.1 (tests and `--port 0` fallbacks). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
