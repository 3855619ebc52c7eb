import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  coreMigrations,
  definePlugin,
  Executor,
  loadConfig,
  MemoryBroker,
  MemoryTransport,
  migrate,
  openDatabase,
  type PluginManifest,
  RequestContext,
  RpcClient,
  Service,
  type Store,
  silentLogger,
} from '@stratus/core';
import {
  FakeComputeConfig,
  FakeComputeDriver,
  type FakeVolumeDriver,
  compute as fakeComputeManifest,
  volume as fakeVolumeManifest,
} from '@stratus/driver-fake';
import volumePlugin, { type VolumeManager } from '@stratus/manager-volume';
import { VolumeApi, volumeMigrations } from '@stratus/manager-volume/client';
import Value from 'typebox/value';
import { ComputeApi, type ComputeApiOptions, computeMigrations } from '../src/client.js';
import computePlugin, { type ComputeManager } from '../src/index.js';

export const projectA = new RequestContext({ userId: 'alice', projectId: 'project-a', roles: ['member'] });
export const projectB = new RequestContext({ userId: 'bob', projectId: 'project-b', roles: ['member'] });
export const admin = RequestContext.admin({ userId: 'root', projectId: 'admin-project' });

/** Poll `read` until `done` holds (bounded), and return the last value read. */
export async function waitFor<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  what: string,
  timeoutMs = 3000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A compute driver whose `close()` keeps its instances, so one hypervisor outlives a service restart. */
export class PersistentFakeComputeDriver extends FakeComputeDriver {
  override async close(): Promise<void> {}
}

export interface HostOptions {
  readonly driver?: FakeComputeDriver;
  readonly driverConfig?: Record<string, unknown>;
  readonly managerConfig?: Record<string, unknown>;
}

/**
 * Compute and volume services on one MemoryBroker and one store, plus the two APIs.
 * `close()` stops every service and closes what was opened.
 */
export class Cluster {
  readonly broker = new MemoryBroker();
  readonly services: Service[] = [];
  readonly transports: MemoryTransport[] = [];
  readonly tmp = mkdtempSync(path.join(tmpdir(), 'stratus-compute-'));
  store!: Store;
  /** The store compute services use, when not `store` (e.g. one that can be made to fail). */
  computeStore: Store | undefined;
  rpc!: RpcClient;
  api!: ComputeApi;
  volumes!: VolumeApi;

  static async open(
    options: { databaseUrl?: string; store?: Store; api?: Partial<ComputeApiOptions> } = {},
  ): Promise<Cluster> {
    const cluster = new Cluster();
    cluster.store = options.store ?? (await openDatabase(options.databaseUrl ?? 'sqlite::memory:'));
    await migrate(cluster.store, [coreMigrations, volumeMigrations, computeMigrations]);
    cluster.rpc = new RpcClient(await cluster.transport(), { defaultTimeoutMs: 3000 });
    cluster.volumes = new VolumeApi({ store: cluster.store, rpc: cluster.rpc });
    cluster.api = new ComputeApi({ store: cluster.store, rpc: cluster.rpc, ...options.api });
    return cluster;
  }

  async transport(): Promise<MemoryTransport> {
    const transport = new MemoryTransport({ broker: this.broker });
    await transport.connect();
    this.transports.push(transport);
    return transport;
  }

  /** A persistent fake hypervisor with the default config, for `startCompute(host, { driver })`. */
  persistentDriver(host = 'cp-1'): PersistentFakeComputeDriver {
    const config = Value.Default(FakeComputeConfig, {}) as FakeComputeConfig;
    return new PersistentFakeComputeDriver(config, {
      host,
      logger: silentLogger(),
      executor: new Executor({ filters: [], rootHelper: [], logger: silentLogger() }),
      dataDir: this.tmp,
    });
  }

  /** Start a compute service on `host` with the fake hypervisor (or `options.driver`). */
  async startCompute(host: string, options: HostOptions = {}): Promise<Service> {
    const shared = options.driver;
    const driver = shared
      ? definePlugin({
          name: '@stratus/driver-fake',
          kind: 'compute-driver',
          contract: '^1.0.0',
          config: FakeComputeConfig,
          create: () => shared,
        })
      : fakeComputeManifest;
    return this.#start('compute', host, computePlugin, driver, options);
  }

  /** Start a volume service on `host` with the fake volume backend. */
  async startVolume(host: string): Promise<Service> {
    return this.#start('volume', host, volumePlugin, fakeVolumeManifest, {});
  }

  async #start(
    name: string,
    host: string,
    manager: PluginManifest,
    driver: PluginManifest,
    options: HostOptions,
  ): Promise<Service> {
    const { config: settings, root } = await loadConfig({
      cwd: this.tmp,
      env: {},
      overrides: {
        host,
        reportInterval: 0.05,
        gracefulShutdownTimeout: 0.1,
        rpcResponseTimeout: 3,
        database: { url: 'sqlite::memory:' },
        log: { level: 'silent' },
      },
    });
    const service = new Service({
      name,
      settings,
      root,
      manager,
      managerConfig: options.managerConfig ?? {},
      driver,
      driverConfig: options.driverConfig ?? {},
      logger: silentLogger(),
      store: (name === 'compute' ? this.computeStore : undefined) ?? this.store,
      transport: await this.transport(),
    });
    await service.start();
    this.services.push(service);
    return service;
  }

  async close(): Promise<void> {
    for (const service of this.services) await service.stop().catch(() => undefined);
    for (const transport of this.transports) await transport.close();
    await this.store.close();
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

export function computeOf(service: Service): ComputeManager {
  return service.manager as ComputeManager;
}

export function hypervisorOf(service: Service): FakeComputeDriver {
  return computeOf(service).driver as FakeComputeDriver;
}

export function volumeBackendOf(service: Service): FakeVolumeDriver {
  return (service.manager as VolumeManager).driver as FakeVolumeDriver;
}

/** Wait until the instance is idle (task_state null) or gone, and return it (deleted rows included). */
export async function settled(cluster: Cluster, id: string) {
  const ctx = admin.elevated(true);
  return waitFor(
    () => cluster.api.get(ctx, id),
    (i) => i.taskState === null,
    `instance ${id} to settle`,
  );
}

/** Wait until the volume reaches one of `statuses`. */
export async function volumeStatus(cluster: Cluster, id: string, statuses: readonly string[]) {
  return waitFor(
    () => cluster.volumes.get(admin, id),
    (v) => statuses.includes(v.status),
    `volume ${id} to be ${statuses.join('|')}`,
  );
}

/** The StratusError a promise rejects with (fails the test when it resolves). */
export async function rejectionOf(
  promise: Promise<unknown>,
): Promise<{ code: string; message: string; details: Record<string, unknown> }> {
  try {
    await promise;
  } catch (error) {
    return error as { code: string; message: string; details: Record<string, unknown> };
  }
  throw new Error('expected the promise to reject, but it resolved');
}
