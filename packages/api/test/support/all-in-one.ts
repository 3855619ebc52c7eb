import { type Logger, openDatabase, type PluginSpec, type Service } from '@stratus/core';
import { compute as fakeCompute, volume as fakeVolume } from '@stratus/driver-fake';
import computePlugin from '@stratus/manager-compute';
import volumePlugin from '@stratus/manager-volume';
import { InProcessCluster } from '@stratus/testkit/fixtures';
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
  /** The host every service runs on; `aio-1` by default. */
  readonly host?: string;
  /** The volume service's driver and its config; the fake driver by default. */
  readonly volumeDriver?: { readonly plugin: PluginSpec; readonly config?: Record<string, unknown> };
}

/**
 * API + volume + compute services in one process, as `stratus up` runs them: one SQLite store,
 * one MemoryBroker (each service with its own MemoryTransport), fake drivers. The API listens on
 * 127.0.0.1 (a free port by default); `app.inject()` works too.
 */
export class AllInOne extends InProcessCluster {
  readonly apps: FastifyInstance[] = [];
  apiService!: Service;

  static async start(options: AllInOneOptions = {}): Promise<AllInOne> {
    const aio = new AllInOne({
      store: await openDatabase(options.databaseUrl ?? 'sqlite::memory:'),
      name: 'api',
      settings: { reportInterval: 0.2, gracefulShutdownTimeout: 1, rpcResponseTimeout: 5 },
      logger: options.logger,
    });
    try {
      await aio.#start(options);
    } catch (error) {
      await aio.stop();
      throw error;
    }
    return aio;
  }

  async #start(options: AllInOneOptions): Promise<void> {
    const host = options.host ?? 'aio-1';
    const users = await Promise.all(
      Object.values(USERS).map(async (u) => ({
        name: u.name,
        // A cheap scrypt cost keeps the suite fast; verification reads the cost from the hash.
        passwordHash: await hashPassword(u.password, { N: 1024 }),
        project: u.project,
        roles: [...u.roles],
      })),
    );
    await this.startService({
      name: 'volume',
      host,
      manager: volumePlugin,
      driver: options.volumeDriver?.plugin ?? fakeVolume,
      driverConfig: options.volumeDriver?.config,
    });
    await this.startService({ name: 'compute', host, manager: computePlugin, driver: fakeCompute });
    this.apiService = await this.startService({
      name: 'api',
      host,
      manager: apiPlugin,
      managerConfig: {
        listen: { host: '127.0.0.1', port: options.port ?? 0 },
        users,
        ...options.apiConfig,
      },
    });
  }

  /**
   * A second API app on the same store and broker that checks every response body against its
   * route's schema (a mismatch is a 500), for route tests. Closed by `stop()`.
   */
  async testApp(config: Record<string, unknown> = {}): Promise<FastifyInstance> {
    const app = await buildApp({
      store: this.store,
      rpc: await this.rpcClient(),
      config,
      validateResponses: true,
    });
    this.apps.push(app);
    return app;
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

  override async stop(): Promise<void> {
    for (const app of this.apps) await app.close().catch(() => undefined);
    await super.stop();
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
