import Type, { type Static } from 'typebox';
import { Driver } from './driver.js';

/** A volume as a driver sees it. `name` is the backend name (e.g. `volume-<id>`), already validated. */
export const VolumeSpec = Type.Object({
  id: Type.String({ minLength: 1 }),
  name: Type.String({ minLength: 1 }),
  sizeGiB: Type.Integer({ minimum: 1 }),
  projectId: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  providerLocation: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  providerAuth: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});
export type VolumeSpec = Static<typeof VolumeSpec>;

export const SnapshotSpec = Type.Object({
  id: Type.String({ minLength: 1 }),
  name: Type.String({ minLength: 1 }),
  volumeId: Type.String({ minLength: 1 }),
  volumeName: Type.String({ minLength: 1 }),
  volumeSizeGiB: Type.Integer({ minimum: 1 }),
});
export type SnapshotSpec = Static<typeof SnapshotSpec>;

/** What the manager stores after create/export: where the volume is, and its access secret. */
export const VolumeModelUpdate = Type.Object({
  providerLocation: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  providerAuth: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});
export type VolumeModelUpdate = Static<typeof VolumeModelUpdate>;

/** The initiator side of a connection (os-brick's connector properties). */
export const Connector = Type.Object({
  host: Type.String({ minLength: 1 }),
  initiator: Type.Optional(Type.String({ minLength: 1 })),
  ip: Type.Optional(Type.String()),
  multipath: Type.Optional(Type.Boolean()),
});
export type Connector = Static<typeof Connector>;

/** iSCSI connection data, shaped as Cinder returns it (camelCase). */
export const IscsiConnectionData = Type.Object({
  targetPortal: Type.String(),
  targetIqn: Type.String(),
  targetLun: Type.Integer({ minimum: 0 }),
  volumeId: Type.String(),
  authMethod: Type.Optional(Type.Literal('CHAP')),
  authUsername: Type.Optional(Type.String()),
  authPassword: Type.Optional(Type.String()),
});
export type IscsiConnectionData = Static<typeof IscsiConnectionData>;

/** What a compute host needs to attach a volume: the protocol and its data. */
export const ConnectionInfo = Type.Object({
  driverVolumeType: Type.String({ minLength: 1 }),
  data: Type.Record(Type.String(), Type.Unknown()),
});
export type ConnectionInfo = Static<typeof ConnectionInfo>;

export const VolumeStats = Type.Object({
  backendName: Type.String(),
  vendorName: Type.String(),
  driverVersion: Type.String(),
  storageProtocol: Type.String(),
  totalCapacityGiB: Type.Number({ minimum: 0 }),
  freeCapacityGiB: Type.Number({ minimum: 0 }),
  provisionedCapacityGiB: Type.Number({ minimum: 0 }),
  thinProvisioning: Type.Boolean(),
  maxOverSubscriptionRatio: Type.Optional(Type.Number({ minimum: 1 })),
});
export type VolumeStats = Static<typeof VolumeStats>;

/** A volume the backend holds, whether or not the database knows it. */
export const BackendVolume = Type.Object({
  name: Type.String(),
  sizeGiB: Type.Number({ minimum: 0 }),
});
export type BackendVolume = Static<typeof BackendVolume>;

/**
 * The volume-driver contract (`CONTRACTS['volume-driver']`). Errors: `NotFound` for a missing
 * volume or snapshot where one is required, `InvalidInput` for a bad size or name, `InvalidState`
 * for an operation the backend refuses in its current state (delete with snapshots),
 * `QuotaExceeded`-free `DriverFailure` with `details.reason = 'insufficient_capacity'` when full,
 * `CommandFailed` when a backend command fails.
 */
export abstract class VolumeDriver extends Driver {
  /** Create an empty volume of `sizeGiB`. Creating one that already exists with that size succeeds. */
  abstract createVolume(volume: VolumeSpec): Promise<VolumeModelUpdate | undefined>;

  /** Create `volume` holding the data of `snapshot`; `volume.sizeGiB >= snapshot.volumeSizeGiB`. */
  abstract createVolumeFromSnapshot(
    volume: VolumeSpec,
    snapshot: SnapshotSpec,
  ): Promise<VolumeModelUpdate | undefined>;

  /**
   * Delete the volume and its data. Deleting a volume that is not there succeeds (idempotent);
   * a volume that still has snapshots is refused with `InvalidState`.
   */
  abstract deleteVolume(volume: VolumeSpec): Promise<void>;

  /** Take a point-in-time snapshot; a missing volume is `NotFound`. */
  abstract createSnapshot(snapshot: SnapshotSpec): Promise<VolumeModelUpdate | undefined>;

  /** Delete a snapshot; deleting one that is not there succeeds. */
  abstract deleteSnapshot(snapshot: SnapshotSpec): Promise<void>;

  /** Grow to `newSizeGiB`; a size not larger than the current one is `InvalidInput`. */
  abstract extendVolume(volume: VolumeSpec, newSizeGiB: number): Promise<void>;

  /** Export the volume to initiators; returns the provider location/auth to store. */
  abstract createExport(volume: VolumeSpec, connector?: Connector): Promise<VolumeModelUpdate | undefined>;

  /** Re-create the export after a restart from the stored provider fields. Idempotent. */
  abstract ensureExport(volume: VolumeSpec): Promise<void>;

  /** Remove the export. Removing one that is not there succeeds. */
  abstract removeExport(volume: VolumeSpec): Promise<void>;

  /** Allow `connector` to reach the volume and say how. */
  abstract initializeConnection(volume: VolumeSpec, connector: Connector): Promise<ConnectionInfo>;

  /** Revoke `connector`'s access. Terminating an absent connection succeeds. */
  abstract terminateConnection(volume: VolumeSpec, connector: Connector): Promise<void>;

  /** Capacity of the backend; `refresh` asks for fresh figures instead of a cached copy. */
  abstract getVolumeStats(refresh?: boolean): Promise<VolumeStats>;

  /** Every volume the backend holds (for reconciliation with the database). */
  abstract listVolumes(): Promise<BackendVolume[]>;
}
