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
  RequestContext,
  RpcClient,
  Service,
  type Store,
  silentLogger,
} from '@stratus/core';
import { FakeVolumeConfig, FakeVolumeDriver, volume as fakeVolumeManifest } from '@stratus/driver-fake';
import Value from 'typebox/value';
import { VolumeApi } from '../src/client.js';
import volumePlugin, { type VolumeApiOptions, type VolumeManager, volumeMigrations } from '../src/index.js';

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

export interface HostOptions {
  /** Use this driver instance instead of a fresh fake (kept across restarts). */
  readonly driver?: FakeVolumeDriver;
  readonly driverConfig?: Record<string, unknown>;
  readonly managerConfig?: Record<string, unknown>;
}

/** A volume driver whose `close()` keeps its state, so one backend outlives a service restart. */
export class PersistentFakeVolumeDriver extends FakeVolumeDriver {
  override async close(): Promise<void> {}
}

/** A persistent fake with the default config, for `startHost(host, { driver })`. */
export function persistentDriver(cluster: Cluster, host = 'st-1'): PersistentFakeVolumeDriver {
  const config = Value.Default(FakeVolumeConfig, {}) as FakeVolumeConfig;
  return new PersistentFakeVolumeDriver(config, {
    host,
    logger: silentLogger(),
    executor: new Executor({ filters: [], rootHelper: [], logger: silentLogger() }),
    dataDir: cluster.tmp,
  });
}

/**
 * Volume services on a shared MemoryBroker and store, plus a VolumeApi and an RpcClient.
 * `close()` stops every service and closes what was opened.
 */
export class Cluster {
  readonly broker = new MemoryBroker();
  readonly services: Service[] = [];
  readonly transports: MemoryTransport[] = [];
  readonly tmp = mkdtempSync(path.join(tmpdir(), 'stratus-volume-'));
  store!: Store;
  /** The store the services get, when it must differ from the API's (e.g. to inject an outage). */
  serviceStore: Store | undefined;
  rpc!: RpcClient;
  api!: VolumeApi;

  static async open(
    options: { databaseUrl?: string; store?: Store; api?: Partial<VolumeApiOptions> } = {},
  ): Promise<Cluster> {
    const cluster = new Cluster();
    cluster.store = options.store ?? (await openDatabase(options.databaseUrl ?? 'sqlite::memory:'));
    await migrate(cluster.store, [coreMigrations, volumeMigrations]);
    const transport = await cluster.transport();
    cluster.rpc = new RpcClient(transport, { defaultTimeoutMs: 2000 });
    cluster.api = new VolumeApi({ store: cluster.store, rpc: cluster.rpc, ...options.api });
    return cluster;
  }

  async transport(): Promise<MemoryTransport> {
    const transport = new MemoryTransport({ broker: this.broker });
    await transport.connect();
    this.transports.push(transport);
    return transport;
  }

  /** Start a volume service on `host` with the fake driver (or `options.driver`). */
  async startHost(host: string, options: HostOptions = {}): Promise<Service> {
    const { config: settings, root } = await loadConfig({
      cwd: this.tmp,
      env: {},
      overrides: {
        host,
        reportInterval: 0.05,
        gracefulShutdownTimeout: 0.1,
        rpcResponseTimeout: 2,
        database: { url: 'sqlite::memory:' },
        log: { level: 'silent' },
      },
    });
    const shared = options.driver;
    const driver = shared
      ? definePlugin({
          name: '@stratus/driver-fake',
          kind: 'volume-driver',
          contract: '^1.0.0',
          config: FakeVolumeConfig,
          create: () => shared,
        })
      : fakeVolumeManifest;
    const service = new Service({
      name: 'volume',
      settings,
      root,
      manager: volumePlugin,
      managerConfig: options.managerConfig ?? {},
      driver,
      driverConfig: options.driverConfig ?? {},
      logger: silentLogger(),
      store: this.serviceStore ?? this.store,
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

export function managerOf(service: Service): VolumeManager {
  return service.manager as VolumeManager;
}

export function fakeOf(service: Service): FakeVolumeDriver {
  return managerOf(service).driver as FakeVolumeDriver;
}

/** Wait until the volume reaches one of `statuses` (as admin, deleted rows included). */
export async function volumeStatus(cluster: Cluster, id: string, statuses: readonly string[]) {
  const ctx = admin.elevated(true);
  return waitFor(
    () => cluster.api.get(ctx, id),
    (v) => statuses.includes(v.status),
    `volume ${id} to be ${statuses.join('|')}`,
  );
}

export async function snapshotStatus(cluster: Cluster, id: string, statuses: readonly string[]) {
  const ctx = admin.elevated(true);
  return waitFor(
    () => cluster.api.getSnapshot(ctx, id),
    (s) => statuses.includes(s.status),
    `snapshot ${id} to be ${statuses.join('|')}`,
  );
}

/** The StratusError code a promise rejects with (fails the test when it resolves). */
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
