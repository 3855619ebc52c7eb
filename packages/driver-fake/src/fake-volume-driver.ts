import { randomBytes } from 'node:crypto';
import {
  type BackendVolume,
  ConflictError,
  type ConnectionInfo,
  Connector,
  DriverFailureError,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
  type PluginEnv,
  SnapshotSpec,
  VolumeDriver,
  type VolumeModelUpdate,
  VolumeSpec,
  type VolumeStats,
} from '@stratus/core';
import type { FakeVolumeConfig } from './config.js';
import { FakeInstrument, type Faults, type RecordedCall } from './faults.js';
import { checkName, checkShape, checkSize } from './names.js';
import { StateFile } from './state-file.js';

/** Every method of the volume contract, each of which can be targeted by failure injection. */
export const VOLUME_METHODS = [
  'setup',
  'checkForSetupError',
  'createVolume',
  'createVolumeFromSnapshot',
  'deleteVolume',
  'createSnapshot',
  'deleteSnapshot',
  'extendVolume',
  'createExport',
  'ensureExport',
  'removeExport',
  'initializeConnection',
  'terminateConnection',
  'getVolumeStats',
  'listVolumes',
] as const;
export type VolumeMethod = (typeof VOLUME_METHODS)[number];

interface ExportRecord {
  readonly targetIqn: string;
  readonly username: string;
  readonly secret: string;
}

interface VolumeRecord {
  readonly id: string;
  readonly name: string;
  sizeGiB: number;
  /** Space actually taken from the pool: the size when thick; copied data only when thin. */
  allocatedGiB: number;
  /** Snapshot the data came from, if any. */
  readonly origin: string | null;
  export: ExportRecord | undefined;
  readonly connections: Map<string, Connector>;
}

interface SnapshotRecord {
  readonly id: string;
  readonly name: string;
  readonly volumeName: string;
  /** Size of the volume when the snapshot was taken: what a volume made from it needs at least. */
  readonly volumeSizeGiB: number;
  readonly provisionedGiB: number;
  readonly allocatedGiB: number;
}

/** A copy of what the fake holds for one volume, for tests. */
export interface FakeVolumeView {
  readonly id: string;
  readonly name: string;
  readonly sizeGiB: number;
  readonly allocatedGiB: number;
  readonly origin: string | null;
  readonly snapshots: string[];
  /** `providerLocation` of the export, or null when not exported. */
  readonly exportedAs: string | null;
  readonly connectors: Connector[];
}

const DRIVER_VERSION = '1.0.0';

/** Methods that only read the backend; every other method changes it and, with `stateFile`, is written out. */
const READ_ONLY: readonly VolumeMethod[] = ['setup', 'checkForSetupError', 'getVolumeStats', 'listVolumes'];

/** The `stateFile` format. */
interface SavedState {
  readonly volumes: Array<Omit<VolumeRecord, 'connections'> & { connections: Array<[string, Connector]> }>;
  readonly snapshots: SnapshotRecord[];
}

/**
 * An in-memory volume backend that behaves like an LVM volume group exported over iSCSI:
 * capacity is accounted (thick or thin), snapshots take space and pin their volume, exports carry
 * CHAP credentials, and connections are recorded per connector. Nothing touches the host.
 */
export class FakeVolumeDriver extends VolumeDriver {
  readonly config: FakeVolumeConfig;
  readonly #env: PluginEnv;
  readonly #instrument: FakeInstrument<VolumeMethod>;
  readonly #volumes = new Map<string, VolumeRecord>();
  readonly #snapshots = new Map<string, SnapshotRecord>();
  #stats: VolumeStats | undefined;

  constructor(config: FakeVolumeConfig, env: PluginEnv) {
    super();
    this.config = { ...config };
    this.#env = env;
    const stateFile = config.stateFile ? new StateFile<SavedState>(config.stateFile, env.dataDir) : undefined;
    const saved = stateFile?.load();
    for (const v of saved?.volumes ?? []) {
      this.#volumes.set(v.name, { ...v, connections: new Map(v.connections) });
    }
    for (const s of saved?.snapshots ?? []) this.#snapshots.set(s.name, s);
    this.#instrument = new FakeInstrument(
      'FakeVolumeDriver',
      VOLUME_METHODS,
      stateFile && { readOnly: READ_ONLY, save: () => stateFile.save(this.#savedState()) },
    );
  }

  #savedState(): SavedState {
    return {
      volumes: [...this.#volumes.values()].map((v) => ({ ...v, connections: [...v.connections] })),
      snapshots: [...this.#snapshots.values()],
    };
  }

  /** Failure injection: `failNext`, `hangNext`, `releaseHangs`, `clear`. */
  get faults(): Faults<VolumeMethod> {
    return this.#instrument.faults;
  }

  /** Copies of every contract call received, oldest first (including ones that failed). */
  get calls(): Array<RecordedCall<VolumeMethod>> {
    return this.#instrument.calls;
  }

  /** Forget recorded calls. */
  clearCalls(): void {
    this.#instrument.clearCalls();
  }

  override setup(): Promise<void> {
    return this.#instrument.invoke('setup', [], () => {
      this.#env.logger.debug(
        { capacityGiB: this.config.capacityGiB, thin: this.config.thin },
        'fake volume backend ready',
      );
    });
  }

  override checkForSetupError(): Promise<void> {
    return this.#instrument.invoke('checkForSetupError', [], () => {});
  }

  override async close(): Promise<void> {
    this.#instrument.close();
  }

  createVolume(volume: VolumeSpec): Promise<VolumeModelUpdate | undefined> {
    return this.#instrument.invoke('createVolume', [volume], () => {
      this.#checkVolume(volume, '/volume');
      if (this.#sameVolumeExists(volume)) return undefined;
      this.#reserve(volume.sizeGiB, this.config.thin ? 0 : volume.sizeGiB, `volume ${volume.name}`);
      this.#addVolume(volume, this.config.thin ? 0 : volume.sizeGiB, null);
      return undefined;
    });
  }

  createVolumeFromSnapshot(
    volume: VolumeSpec,
    snapshot: SnapshotSpec,
  ): Promise<VolumeModelUpdate | undefined> {
    return this.#instrument.invoke('createVolumeFromSnapshot', [volume, snapshot], () => {
      this.#checkVolume(volume, '/volume');
      this.#checkSnapshot(snapshot, '/snapshot');
      const source = this.#snapshots.get(snapshot.name);
      if (!source) throw new NotFoundError('snapshot', snapshot.name);
      if (volume.sizeGiB < source.volumeSizeGiB) {
        throw new InvalidInputError(
          'A volume made from a snapshot must be at least as large as the snapshot',
          [
            {
              path: '/volume/sizeGiB',
              message: `${volume.sizeGiB} GiB is smaller than snapshot ${snapshot.name}'s ${source.volumeSizeGiB} GiB`,
            },
          ],
        );
      }
      if (this.#sameVolumeExists(volume)) return undefined;
      // Thin: the copied data is what gets allocated; thick: the whole volume.
      const allocated = this.config.thin ? source.volumeSizeGiB : volume.sizeGiB;
      this.#reserve(volume.sizeGiB, allocated, `volume ${volume.name}`);
      this.#addVolume(volume, allocated, source.name);
      return undefined;
    });
  }

  deleteVolume(volume: VolumeSpec): Promise<void> {
    return this.#instrument.invoke('deleteVolume', [volume], () => {
      checkName(volume?.name, '/volume/name');
      const record = this.#volumes.get(volume.name);
      if (!record) return;
      const snapshots = this.#snapshotsOf(volume.name);
      if (snapshots.length) {
        throw new InvalidStateError(
          `Volume ${volume.name} has ${snapshots.length} snapshot(s) (${snapshots.join(', ')}); delete them before the volume.`,
          { details: { reason: 'has_snapshots', volume: volume.name, snapshots } },
        );
      }
      this.#volumes.delete(volume.name);
    });
  }

  createSnapshot(snapshot: SnapshotSpec): Promise<VolumeModelUpdate | undefined> {
    return this.#instrument.invoke('createSnapshot', [snapshot], () => {
      this.#checkSnapshot(snapshot, '/snapshot');
      const volume = this.#volumes.get(snapshot.volumeName);
      if (!volume) throw new NotFoundError('volume', snapshot.volumeName);
      const existing = this.#snapshots.get(snapshot.name);
      if (existing) {
        if (existing.volumeName === snapshot.volumeName) return undefined;
        throw new ConflictError(
          `Snapshot ${snapshot.name} already exists for volume ${existing.volumeName}; choose another snapshot name.`,
        );
      }
      this.#assertNameFree(snapshot.name, 'snapshot');
      const provisioned = this.config.thin
        ? volume.sizeGiB
        : Math.ceil(volume.sizeGiB * this.config.snapshotReserveRatio);
      const allocated = this.config.thin ? 0 : provisioned;
      this.#reserve(provisioned, allocated, `snapshot ${snapshot.name}`);
      this.#snapshots.set(snapshot.name, {
        id: snapshot.id,
        name: snapshot.name,
        volumeName: volume.name,
        volumeSizeGiB: volume.sizeGiB,
        provisionedGiB: provisioned,
        allocatedGiB: allocated,
      });
      return undefined;
    });
  }

  deleteSnapshot(snapshot: SnapshotSpec): Promise<void> {
    return this.#instrument.invoke('deleteSnapshot', [snapshot], () => {
      checkName(snapshot?.name, '/snapshot/name');
      this.#snapshots.delete(snapshot.name);
    });
  }

  extendVolume(volume: VolumeSpec, newSizeGiB: number): Promise<void> {
    return this.#instrument.invoke('extendVolume', [volume, newSizeGiB], () => {
      checkName(volume?.name, '/volume/name');
      checkSize(newSizeGiB, '/newSizeGiB');
      const record = this.#require(volume.name);
      if (newSizeGiB <= record.sizeGiB) {
        throw new InvalidInputError('A volume can only grow', [
          {
            path: '/newSizeGiB',
            message: `${newSizeGiB} GiB is not larger than the current ${record.sizeGiB} GiB of ${volume.name}`,
          },
        ]);
      }
      const growth = newSizeGiB - record.sizeGiB;
      const allocated = this.config.thin ? 0 : growth;
      this.#reserve(growth, allocated, `extending ${volume.name} by ${growth} GiB`);
      record.sizeGiB = newSizeGiB;
      record.allocatedGiB += allocated;
    });
  }

  createExport(volume: VolumeSpec, connector?: Connector): Promise<VolumeModelUpdate | undefined> {
    return this.#instrument.invoke(
      'createExport',
      connector === undefined ? [volume] : [volume, connector],
      () => {
        checkName(volume?.name, '/volume/name');
        const record = this.#require(volume.name);
        record.export ??= {
          targetIqn: `${this.config.targetPrefix}${record.name}`,
          username: randomBytes(10).toString('hex'),
          secret: randomBytes(16).toString('hex'),
        };
        return this.#modelUpdate(record.export);
      },
    );
  }

  ensureExport(volume: VolumeSpec): Promise<void> {
    return this.#instrument.invoke('ensureExport', [volume], () => {
      checkName(volume?.name, '/volume/name');
      const record = this.#require(volume.name);
      if (record.export) return;
      // Nothing stored means the volume was never exported: there is nothing to re-create.
      if (!volume.providerLocation) return;
      record.export = this.#parseProvider(volume);
    });
  }

  removeExport(volume: VolumeSpec): Promise<void> {
    return this.#instrument.invoke('removeExport', [volume], () => {
      checkName(volume?.name, '/volume/name');
      const record = this.#volumes.get(volume.name);
      if (!record) return;
      // Tearing down the target drops its sessions, as tgtadm does.
      record.export = undefined;
      record.connections.clear();
    });
  }

  initializeConnection(volume: VolumeSpec, connector: Connector): Promise<ConnectionInfo> {
    return this.#instrument.invoke('initializeConnection', [volume, connector], () => {
      checkName(volume?.name, '/volume/name');
      checkShape(Connector, connector, 'connector', '/connector');
      const record = this.#require(volume.name);
      if (!record.export) {
        throw new InvalidStateError(
          `Volume ${volume.name} is not exported; call createExport (or ensureExport with the stored provider fields) before initializeConnection.`,
          { details: { reason: 'not_exported', volume: volume.name } },
        );
      }
      record.connections.set(connectorKey(connector), structuredClone(connector));
      return {
        driverVolumeType: 'iscsi',
        data: {
          targetPortal: this.config.portal,
          targetIqn: record.export.targetIqn,
          targetLun: 1,
          volumeId: record.id,
          authMethod: 'CHAP',
          authUsername: record.export.username,
          authPassword: record.export.secret,
        },
      };
    });
  }

  terminateConnection(volume: VolumeSpec, connector: Connector): Promise<void> {
    return this.#instrument.invoke('terminateConnection', [volume, connector], () => {
      checkName(volume?.name, '/volume/name');
      checkShape(Connector, connector, 'connector', '/connector');
      this.#volumes.get(volume.name)?.connections.delete(connectorKey(connector));
    });
  }

  getVolumeStats(refresh = false): Promise<VolumeStats> {
    return this.#instrument.invoke('getVolumeStats', [refresh], () => {
      if (refresh || !this.#stats) this.#stats = this.#computeStats();
      return { ...this.#stats };
    });
  }

  listVolumes(): Promise<BackendVolume[]> {
    return this.#instrument.invoke('listVolumes', [], () =>
      [...this.#volumes.values()].map((v) => ({ name: v.name, sizeGiB: v.sizeGiB })),
    );
  }

  /** What the fake holds for `name` (a copy), or undefined. Not recorded as a call. */
  inspectVolume(name: string): FakeVolumeView | undefined {
    const v = this.#volumes.get(name);
    if (!v) return undefined;
    return {
      id: v.id,
      name: v.name,
      sizeGiB: v.sizeGiB,
      allocatedGiB: v.allocatedGiB,
      origin: v.origin,
      snapshots: this.#snapshotsOf(name),
      exportedAs: v.export ? (this.#modelUpdate(v.export).providerLocation ?? null) : null,
      connectors: [...v.connections.values()].map((c) => structuredClone(c)),
    };
  }

  /** Names of the snapshots the fake holds. Not recorded as a call. */
  listSnapshots(): string[] {
    return [...this.#snapshots.keys()];
  }

  #checkVolume(volume: VolumeSpec, at: string): void {
    checkShape(VolumeSpec, volume, 'volume', at);
    checkName(volume.name, `${at}/name`);
  }

  #checkSnapshot(snapshot: SnapshotSpec, at: string): void {
    checkShape(SnapshotSpec, snapshot, 'snapshot', at);
    checkName(snapshot.name, `${at}/name`);
    checkName(snapshot.volumeName, `${at}/volumeName`);
  }

  /** True when `volume` already exists with its size (an idempotent retry); Conflict when the size differs. */
  #sameVolumeExists(volume: VolumeSpec): boolean {
    const existing = this.#volumes.get(volume.name);
    if (!existing) {
      this.#assertNameFree(volume.name, 'volume');
      return false;
    }
    if (existing.sizeGiB === volume.sizeGiB) return true;
    throw new ConflictError(
      `Volume ${volume.name} already exists with ${existing.sizeGiB} GiB, not ${volume.sizeGiB} GiB; delete it or use extendVolume.`,
    );
  }

  /** Volumes and snapshots share one namespace, as LVs in a volume group do. */
  #assertNameFree(name: string, as: 'volume' | 'snapshot'): void {
    const takenBy =
      as === 'volume' ? this.#snapshots.has(name) && 'snapshot' : this.#volumes.has(name) && 'volume';
    if (takenBy) {
      throw new ConflictError(
        `The name ${name} is already used by a ${takenBy} on this backend; choose another ${as} name.`,
      );
    }
  }

  #addVolume(volume: VolumeSpec, allocatedGiB: number, origin: string | null): void {
    this.#volumes.set(volume.name, {
      id: volume.id,
      name: volume.name,
      sizeGiB: volume.sizeGiB,
      allocatedGiB,
      origin,
      export: undefined,
      connections: new Map(),
    });
  }

  #require(name: string): VolumeRecord {
    const record = this.#volumes.get(name);
    if (!record) throw new NotFoundError('volume', name);
    return record;
  }

  #snapshotsOf(volumeName: string): string[] {
    return [...this.#snapshots.values()].filter((s) => s.volumeName === volumeName).map((s) => s.name);
  }

  #usage(): { provisioned: number; allocated: number } {
    let provisioned = 0;
    let allocated = 0;
    for (const v of this.#volumes.values()) {
      provisioned += v.sizeGiB;
      allocated += v.allocatedGiB;
    }
    for (const s of this.#snapshots.values()) {
      provisioned += s.provisionedGiB;
      allocated += s.allocatedGiB;
    }
    return { provisioned, allocated };
  }

  /** Refuse, like a full volume group, when `provisioned`/`allocated` more GiB do not fit. */
  #reserve(provisioned: number, allocated: number, what: string): void {
    const usage = this.#usage();
    const capacity = this.config.capacityGiB;
    const free = capacity - usage.allocated;
    const limit = this.config.thin ? capacity * this.config.maxOverSubscriptionRatio : capacity;
    const room = limit - usage.provisioned;
    if (allocated > free || (this.config.thin && provisioned > room)) {
      const thinNote = this.config.thin
        ? `, ${room} GiB left to provision at over-subscription ratio ${this.config.maxOverSubscriptionRatio}`
        : '';
      throw new DriverFailureError(
        `Insufficient free space on backend ${this.config.backendName} for ${what}: ${provisioned} GiB requested, ${free} GiB free${thinNote}. Delete volumes or snapshots, or raise capacityGiB.`,
        {
          details: {
            reason: 'insufficient_capacity',
            requestedGiB: provisioned,
            freeGiB: free,
            ...(this.config.thin ? { provisionableGiB: room } : {}),
          },
        },
      );
    }
  }

  #computeStats(): VolumeStats {
    const { provisioned, allocated } = this.#usage();
    return {
      backendName: this.config.backendName,
      vendorName: 'Stratus',
      driverVersion: DRIVER_VERSION,
      storageProtocol: 'iSCSI',
      totalCapacityGiB: this.config.capacityGiB,
      freeCapacityGiB: this.config.capacityGiB - allocated,
      provisionedCapacityGiB: provisioned,
      thinProvisioning: this.config.thin,
      ...(this.config.thin ? { maxOverSubscriptionRatio: this.config.maxOverSubscriptionRatio } : {}),
    };
  }

  #modelUpdate(e: ExportRecord): VolumeModelUpdate {
    return {
      providerLocation: `${this.config.portal},1 ${e.targetIqn} 1`,
      providerAuth: `CHAP ${e.username} ${e.secret}`,
    };
  }

  /** Rebuild an export from `"<portal>,<tpgt> <iqn> <lun>"` and `"CHAP <user> <secret>"`. */
  #parseProvider(volume: VolumeSpec): ExportRecord {
    const location = /^\S+,\d+ (\S+)(?: \d+)?$/.exec(volume.providerLocation ?? '');
    const auth = /^CHAP (\S+) (\S+)$/.exec(volume.providerAuth ?? '');
    const fields = [
      ...(location
        ? []
        : [{ path: '/volume/providerLocation', message: 'is not "<ip>:<port>,<tpgt> <iqn> <lun>"' }]),
      ...(auth ? [] : [{ path: '/volume/providerAuth', message: 'is not "CHAP <username> <secret>"' }]),
    ];
    if (!location || !auth) {
      throw new InvalidInputError(
        `Cannot re-create the export of ${volume.name} from its stored provider fields`,
        fields,
      );
    }
    return { targetIqn: location[1] as string, username: auth[1] as string, secret: auth[2] as string };
  }
}

function connectorKey(c: Connector): string {
  return `${c.host}\0${c.initiator ?? ''}`;
}
