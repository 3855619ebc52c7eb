import {
  type BackendVolume,
  ConflictError,
  type ConnectionInfo,
  type Connector,
  DriverFailureError,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
  type PluginEnv,
  type SnapshotSpec,
  VolumeDriver,
  type VolumeModelUpdate,
  type VolumeSpec,
  type VolumeStats,
} from '@stratus/core';
import type { __Backend__DriverConfig } from './config.js';

/** Names reach command lines and APIs: validate them before anything else. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * The __backend__ volume driver. This skeleton keeps volumes in memory so the conformance suite
 * passes from the first `npm test`; replace each `TODO` with calls to your backend (through
 * `this.env.executor.run([...])` for commands your manifest declares, or your backend's client
 * library), and run the suite again after each one.
 */
export class __Backend__VolumeDriver extends VolumeDriver {
  readonly #config: __Backend__DriverConfig;
  readonly env: PluginEnv;
  // TODO: remove with the in-memory skeleton.
  readonly #volumes = new Map<string, { id: string; sizeGiB: number }>();
  readonly #snapshots = new Map<string, { volumeName: string; sizeGiB: number }>();

  constructor(config: __Backend__DriverConfig, env: PluginEnv) {
    super();
    this.#config = config;
    this.env = env;
  }

  override async setup(): Promise<void> {
    // TODO: connect, create the pool if it is yours to create. Must be idempotent.
  }

  override async checkForSetupError(): Promise<void> {
    // TODO: throw a DriverFailureError saying what is missing (a pool, a command, a credential).
  }

  async createVolume(volume: VolumeSpec): Promise<VolumeModelUpdate | undefined> {
    checkName(volume.name, '/volume/name');
    checkSize(volume.sizeGiB, '/volume/sizeGiB');
    const existing = this.#volumes.get(volume.name);
    if (existing) {
      if (existing.sizeGiB === volume.sizeGiB) return undefined;
      throw new ConflictError(
        `Volume ${volume.name} already exists with ${existing.sizeGiB} GiB; delete it first.`,
      );
    }
    this.#reserve(volume.sizeGiB, volume.name);
    this.#volumes.set(volume.name, { id: volume.id, sizeGiB: volume.sizeGiB }); // TODO: create on the backend
    return undefined;
  }

  async createVolumeFromSnapshot(
    volume: VolumeSpec,
    snapshot: SnapshotSpec,
  ): Promise<VolumeModelUpdate | undefined> {
    checkName(volume.name, '/volume/name');
    checkSize(volume.sizeGiB, '/volume/sizeGiB');
    checkName(snapshot.name, '/snapshot/name');
    const source = this.#snapshots.get(snapshot.name);
    if (!source) throw new NotFoundError('snapshot', snapshot.name);
    if (volume.sizeGiB < source.sizeGiB) {
      throw new InvalidInputError('A volume made from a snapshot must be at least as large as the snapshot', [
        { path: '/volume/sizeGiB', message: `is smaller than ${source.sizeGiB} GiB` },
      ]);
    }
    return this.createVolume(volume); // TODO: clone the snapshot on the backend
  }

  async deleteVolume(volume: VolumeSpec): Promise<void> {
    checkName(volume.name, '/volume/name');
    const snapshots = [...this.#snapshots.entries()].filter(([, s]) => s.volumeName === volume.name);
    if (snapshots.length > 0) {
      throw new InvalidStateError(`Volume ${volume.name} has snapshots; delete them before the volume.`, {
        details: { reason: 'has_snapshots', snapshots: snapshots.map(([name]) => name) },
      });
    }
    this.#volumes.delete(volume.name); // TODO: delete on the backend; a missing volume is not an error
  }

  async createSnapshot(snapshot: SnapshotSpec): Promise<VolumeModelUpdate | undefined> {
    checkName(snapshot.name, '/snapshot/name');
    checkName(snapshot.volumeName, '/snapshot/volumeName');
    const volume = this.#volumes.get(snapshot.volumeName);
    if (!volume) throw new NotFoundError('volume', snapshot.volumeName);
    if (this.#snapshots.has(snapshot.name)) return undefined;
    this.#reserve(volume.sizeGiB, snapshot.name);
    this.#snapshots.set(snapshot.name, { volumeName: snapshot.volumeName, sizeGiB: volume.sizeGiB }); // TODO
    return undefined;
  }

  async deleteSnapshot(snapshot: SnapshotSpec): Promise<void> {
    checkName(snapshot.name, '/snapshot/name');
    this.#snapshots.delete(snapshot.name); // TODO: delete on the backend; a missing snapshot is not an error
  }

  async extendVolume(volume: VolumeSpec, newSizeGiB: number): Promise<void> {
    checkName(volume.name, '/volume/name');
    checkSize(newSizeGiB, '/newSizeGiB');
    const record = this.#volumes.get(volume.name);
    if (!record) throw new NotFoundError('volume', volume.name);
    if (newSizeGiB <= record.sizeGiB) {
      throw new InvalidInputError('A volume can only grow', [
        { path: '/newSizeGiB', message: `is not larger than ${record.sizeGiB} GiB` },
      ]);
    }
    this.#reserve(newSizeGiB - record.sizeGiB, volume.name);
    record.sizeGiB = newSizeGiB; // TODO: grow on the backend
  }

  async createExport(volume: VolumeSpec, _connector?: Connector): Promise<VolumeModelUpdate | undefined> {
    this.#require(volume.name);
    // TODO: create the target; return what the manager must store to re-create it after a restart.
    return { providerLocation: `__backend__:${volume.name}`, providerAuth: null };
  }

  async ensureExport(volume: VolumeSpec): Promise<void> {
    this.#require(volume.name); // TODO: re-create the target from volume.providerLocation / providerAuth
  }

  async removeExport(volume: VolumeSpec): Promise<void> {
    checkName(volume.name, '/volume/name'); // TODO: remove the target; a missing one is not an error
  }

  async initializeConnection(volume: VolumeSpec, _connector: Connector): Promise<ConnectionInfo> {
    this.#require(volume.name);
    // TODO: allow the connector; return 'iscsi' data (IscsiConnectionData) or your protocol's.
    return {
      driverVolumeType: 'local',
      data: { devicePath: `/dev/__backend__/${volume.name}`, volumeId: volume.id },
    };
  }

  async terminateConnection(volume: VolumeSpec, _connector: Connector): Promise<void> {
    checkName(volume.name, '/volume/name'); // TODO: revoke the connector; a missing one is not an error
  }

  async getVolumeStats(_refresh?: boolean): Promise<VolumeStats> {
    const used = this.#used();
    return {
      backendName: this.#config.backendName,
      vendorName: '__backend__',
      driverVersion: '0.1.0',
      storageProtocol: 'local',
      totalCapacityGiB: this.#config.capacityGiB,
      freeCapacityGiB: this.#config.capacityGiB - used,
      provisionedCapacityGiB: used,
      thinProvisioning: false,
    };
  }

  async listVolumes(): Promise<BackendVolume[]> {
    return [...this.#volumes.entries()].map(([name, v]) => ({ name, sizeGiB: v.sizeGiB }));
  }

  #require(name: string): void {
    checkName(name, '/volume/name');
    if (!this.#volumes.has(name)) throw new NotFoundError('volume', name);
  }

  #used(): number {
    let used = 0;
    for (const v of this.#volumes.values()) used += v.sizeGiB;
    for (const s of this.#snapshots.values()) used += s.sizeGiB;
    return used;
  }

  #reserve(sizeGiB: number, what: string): void {
    const free = this.#config.capacityGiB - this.#used();
    if (sizeGiB > free) {
      throw new DriverFailureError(
        `Not enough space for ${what}: ${sizeGiB} GiB requested, ${free} GiB free.`,
        { details: { reason: 'insufficient_capacity', requestedGiB: sizeGiB, freeGiB: free } },
      );
    }
  }
}

function checkName(name: unknown, path: string): void {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InvalidInputError('Invalid backend name', [
      { path, message: 'must be 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit' },
    ]);
  }
}

function checkSize(size: unknown, path: string): void {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) {
    throw new InvalidInputError('Invalid size', [
      { path, message: 'is not a whole number of GiB of at least 1' },
    ]);
  }
}
