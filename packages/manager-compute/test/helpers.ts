import {
  coreMigrations,
  migrate,
  openDatabase,
  type RpcClient,
  type Service,
  type Store,
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
import { admin, InProcessCluster, waitFor, withInstance } from '@stratus/testkit/fixtures';
import Value from 'typebox/value';
import { ComputeApi, type ComputeApiOptions, computeMigrations } from '../src/client.js';
import computePlugin, { type ComputeManager } from '../src/index.js';

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
 * `stop()` stops every service and closes what was opened.
 */
export class Cluster extends InProcessCluster {
  /** The store compute services use, when not `store` (e.g. one that can be made to fail). */
  computeStore: Store | undefined;
  rpc!: RpcClient;
  api!: ComputeApi;
  volumes!: VolumeApi;

  static async open(
    options: { databaseUrl?: string; store?: Store; api?: Partial<ComputeApiOptions> } = {},
  ): Promise<Cluster> {
    const store = options.store ?? (await openDatabase(options.databaseUrl ?? 'sqlite::memory:'));
    const cluster = new Cluster({ store, name: 'compute', settings: { rpcResponseTimeout: 3 } });
    await migrate(store, [coreMigrations, volumeMigrations, computeMigrations]);
    cluster.rpc = await cluster.rpcClient();
    cluster.volumes = new VolumeApi({ store, rpc: cluster.rpc });
    cluster.api = new ComputeApi({ store, rpc: cluster.rpc, ...options.api });
    return cluster;
  }

  /** A persistent fake hypervisor with the default config, for `startCompute(host, { driver })`. */
  persistentDriver(host = 'cp-1'): PersistentFakeComputeDriver {
    const config = Value.Default(FakeComputeConfig, {}) as FakeComputeConfig;
    return new PersistentFakeComputeDriver(config, this.driverEnv(host));
  }

  /** Start a compute service on `host` with the fake hypervisor (or `options.driver`). */
  async startCompute(host: string, options: HostOptions = {}): Promise<Service> {
    return this.startService({
      name: 'compute',
      host,
      manager: computePlugin,
      managerConfig: options.managerConfig,
      driver: options.driver ? withInstance(fakeComputeManifest, options.driver) : fakeComputeManifest,
      driverConfig: options.driverConfig,
      store: this.computeStore,
    });
  }

  /** Start a volume service on `host` with the fake volume backend. */
  async startVolume(host: string): Promise<Service> {
    return this.startService({ name: 'volume', host, manager: volumePlugin, driver: fakeVolumeManifest });
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
