import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type Logger,
  loadConfig,
  MemoryBroker,
  MemoryTransport,
  openDatabase,
  RpcClient,
  Service,
  type Store,
  silentLogger,
} from '@stratus/core';
import { compute as fakeCompute, volume as fakeVolume } from '@stratus/driver-fake';
import computePlugin from '@stratus/manager-compute';
import volumePlugin from '@stratus/manager-volume';
import type { FastifyInstance } from 'fastify';
import apiPlugin, { type ApiManager, buildApp, hashPassword } from '../../src/index.js';
import { login, type Session } from './client.js';

/** A user the harness creates (through the API's config bootstrap). */
export interface TestUser {
  readonly name: string;
  readonly password: string;
  readonly project: string;
  readonly roles: readonly string[];
}

export const USERS = {
  admin: { name: 'admin', password: 'admin-secret', project: 'admin', roles: ['admin'] },
  alice: { name: 'alice', password: 'alice-secret', project: 'project-a', roles: ['member'] },
  bob: { name: 'bob', password: 'bob-secret', project: 'project-b', roles: ['member'] },
} as const satisfies Record<string, TestUser>;

export interface AllInOneOptions {
  /** Extra `@stratus/api` config, merged over the harness's (users are added). */
  readonly apiConfig?: Record<string, unknown>;
  /** Port to listen on; 0 (default) picks a free one. */
  readonly port?: number;
  readonly logger?: Logger;
  /** `sqlite:<file>`; an in-memory database by default. */
  readonly databaseUrl?: string;
}

/**
 * API + volume + compute services in one process, as `stratus up` runs them: one SQLite store,
 * one MemoryBroker (each service with its own MemoryTransport), fake drivers. The API listens on
 * 127.0.0.1 (a free port by default); `app.inject()` works too.
 */
export class AllInOne {
  readonly broker = new MemoryBroker();
  readonly tmp = mkdtempSync(path.join(tmpdir(), 'stratus-api-'));
  readonly services: Service[] = [];
  readonly transports: MemoryTransport[] = [];
  readonly apps: FastifyInstance[] = [];
  store!: Store;
  apiService!: Service;

  static async start(options: AllInOneOptions = {}): Promise<AllInOne> {
    const aio = new AllInOne();
    try {
      await aio.#start(options);
    } catch (error) {
      await aio.stop();
      throw error;
    }
    return aio;
  }

  async #start(options: AllInOneOptions): Promise<void> {
    const logger = options.logger ?? silentLogger();
    this.store = await openDatabase(options.databaseUrl ?? 'sqlite::memory:');
    const { config: settings, root } = await loadConfig({
      cwd: this.tmp,
      env: {},
      overrides: {
        host: 'aio-1',
        reportInterval: 0.2,
        gracefulShutdownTimeout: 1,
        rpcResponseTimeout: 5,
        database: { url: 'sqlite::memory:' },
        log: { level: 'silent' },
      },
    });
    const common = { settings, root, logger, store: this.store };
    const users = await Promise.all(
      Object.values(USERS).map(async (u) => ({
        name: u.name,
        // A cheap scrypt cost keeps the suite fast; verification reads the cost from the hash.
        passwordHash: await hashPassword(u.password, { N: 1024 }),
        project: u.project,
        roles: [...u.roles],
      })),
    );
    const volume = new Service({
      ...common,
      name: 'volume',
      manager: volumePlugin,
      managerConfig: {},
      driver: fakeVolume,
      driverConfig: {},
      transport: await this.transport(),
    });
    const compute = new Service({
      ...common,
      name: 'compute',
      manager: computePlugin,
      managerConfig: {},
      driver: fakeCompute,
      driverConfig: {},
      transport: await this.transport(),
    });
    this.apiService = new Service({
      ...common,
      name: 'api',
      manager: apiPlugin,
      managerConfig: {
        listen: { host: '127.0.0.1', port: options.port ?? 0 },
        users,
        ...options.apiConfig,
      },
      transport: await this.transport(),
    });
    for (const service of [volume, compute, this.apiService]) {
      await service.start();
      this.services.push(service);
    }
  }

  /**
   * A second API app on the same store and broker that checks every response body against its
   * route's schema (a mismatch is a 500), for route tests. Closed by `stop()`.
   */
  async testApp(config: Record<string, unknown> = {}): Promise<FastifyInstance> {
    const app = await buildApp({
      store: this.store,
      rpc: new RpcClient(await this.transport(), { defaultTimeoutMs: 5000 }),
      config,
      validateResponses: true,
    });
    this.apps.push(app);
    return app;
  }

  async transport(): Promise<MemoryTransport> {
    const transport = new MemoryTransport({ broker: this.broker });
    await transport.connect();
    this.transports.push(transport);
    return transport;
  }

  get manager(): ApiManager {
    return this.apiService.manager as ApiManager;
  }

  /** The API's Fastify instance (for `inject`). */
  get app(): FastifyInstance {
    const app = this.manager.app;
    if (!app) throw new Error('the API is not running');
    return app;
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return this.manager.url as string;
  }

  service(name: string): Service {
    const found = this.services.find((s) => s.name === name);
    if (!found) throw new Error(`no service ${name}`);
    return found;
  }

  async stop(): Promise<void> {
    for (const app of this.apps) await app.close().catch(() => undefined);
    for (const service of [...this.services].reverse()) await service.stop().catch(() => undefined);
    for (const transport of this.transports) await transport.close().catch(() => undefined);
    await this.store?.close();
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** A deployment with a route-test app and the three USERS logged in to it. */
export interface SignedIn {
  readonly aio: AllInOne;
  readonly app: FastifyInstance;
  readonly alice: Session;
  readonly bob: Session;
  readonly admin: Session;
}

/**
 * Starts an AllInOne, opens its `testApp(config)` and logs alice, bob and admin in to it. The
 * deployment is stopped again when a step fails (the caller has nothing to stop then).
 */
export async function startSignedIn(config: Record<string, unknown> = {}): Promise<SignedIn> {
  const aio = await AllInOne.start();
  try {
    const app = await aio.testApp(config);
    const alice = await login(app, USERS.alice);
    const bob = await login(app, USERS.bob);
    const admin = await login(app, USERS.admin);
    return { aio, app, alice, bob, admin };
  } catch (error) {
    await aio.stop();
    throw error;
  }
}

/** Poll `read` until `done` holds (bounded), and return the last value read. */
export async function waitFor<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
