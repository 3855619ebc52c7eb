import {
  coreMigrations,
  migrate,
  openDatabase,
  type RpcClient,
  type Service,
  type Store,
} from '@stratus/core';
import { FakeVolumeConfig, FakeVolumeDriver, volume as fakeVolumeManifest } from '@stratus/driver-fake';
import { admin, InProcessCluster, waitFor, withInstance } from '@stratus/testkit/fixtures';
import Value from 'typebox/value';
import { VolumeApi } from '../src/client.js';
import volumePlugin, { type VolumeApiOptions, type VolumeManager, volumeMigrations } from '../src/index.js';

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

/**
 * Volume services on a shared MemoryBroker and store, plus a VolumeApi and an RpcClient.
 * `stop()` stops every service and closes what was opened.
 */
export class Cluster extends InProcessCluster {
  /** The store the services get, when it must differ from the API's (e.g. to inject an outage). */
  serviceStore: Store | undefined;
  rpc!: RpcClient;
  api!: VolumeApi;

  static async open(
    options: { databaseUrl?: string; store?: Store; api?: Partial<VolumeApiOptions> } = {},
  ): Promise<Cluster> {
    const store = options.store ?? (await openDatabase(options.databaseUrl ?? 'sqlite::memory:'));
    const cluster = new Cluster({ store, name: 'volume' });
    await migrate(store, [coreMigrations, volumeMigrations]);
    cluster.rpc = await cluster.rpcClient();
    cluster.api = new VolumeApi({ store, rpc: cluster.rpc, ...options.api });
    return cluster;
  }

  /** Start a volume service on `host` with the fake driver (or `options.driver`). */
  async startHost(host: string, options: HostOptions = {}): Promise<Service> {
    return this.startService({
      name: 'volume',
      host,
      manager: volumePlugin,
      managerConfig: options.managerConfig,
      driver: options.driver ? withInstance(fakeVolumeManifest, options.driver) : fakeVolumeManifest,
      driverConfig: options.driverConfig,
      store: this.serviceStore,
    });
  }

  /** A persistent fake with the default config, for `startHost(host, { driver })`. */
  persistentDriver(host = 'st-1'): PersistentFakeVolumeDriver {
    const config = Value.Default(FakeVolumeConfig, {}) as FakeVolumeConfig;
    return new PersistentFakeVolumeDriver(config, this.driverEnv(host));
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
