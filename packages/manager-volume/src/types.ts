import Type, { type Static, type TSchema } from 'typebox';

/** Volume lifecycle (see the README for the transitions). `deleted` is the final, soft-deleted state. */
export const VolumeStatus = Type.Union([
  Type.Literal('creating'),
  Type.Literal('available'),
  Type.Literal('attaching'),
  Type.Literal('in-use'),
  Type.Literal('detaching'),
  Type.Literal('deleting'),
  Type.Literal('extending'),
  Type.Literal('error'),
  Type.Literal('error_deleting'),
  Type.Literal('error_extending'),
  Type.Literal('deleted'),
]);
export type VolumeStatus = Static<typeof VolumeStatus>;

export const AttachStatus = Type.Union([
  Type.Literal('detached'),
  Type.Literal('attaching'),
  Type.Literal('attached'),
  Type.Literal('detaching'),
]);
export type AttachStatus = Static<typeof AttachStatus>;

export const SnapshotStatus = Type.Union([
  Type.Literal('creating'),
  Type.Literal('available'),
  Type.Literal('deleting'),
  Type.Literal('error'),
  Type.Literal('error_deleting'),
  Type.Literal('deleted'),
]);
export type SnapshotStatus = Static<typeof SnapshotStatus>;

const DateTime = Type.Unsafe<Date>({ type: 'string', format: 'date-time' });
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** A volume as `VolumeApi` returns it. The export secret (`provider_auth`) is never included. */
export const Volume = Type.Object({
  id: Type.String(),
  projectId: Nullable(Type.String()),
  userId: Nullable(Type.String()),
  /** The volume host serving it; null until a manager picked up its creation. */
  host: Nullable(Type.String()),
  sizeGiB: Type.Integer({ minimum: 1 }),
  name: Nullable(Type.String()),
  description: Nullable(Type.String()),
  status: VolumeStatus,
  attachStatus: AttachStatus,
  instanceId: Nullable(Type.String()),
  mountpoint: Nullable(Type.String()),
  providerLocation: Nullable(Type.String()),
  sourceSnapshotId: Nullable(Type.String()),
  /** Why the last operation failed (status `error*`). */
  errorReason: Nullable(Type.String()),
  createdAt: DateTime,
  updatedAt: DateTime,
  deletedAt: Nullable(DateTime),
  deleted: Type.Boolean(),
});
export type Volume = Static<typeof Volume>;

export const Snapshot = Type.Object({
  id: Type.String(),
  projectId: Nullable(Type.String()),
  userId: Nullable(Type.String()),
  volumeId: Type.String(),
  /** Size of the volume when the snapshot was taken: the least a volume made from it needs. */
  volumeSizeGiB: Type.Integer({ minimum: 1 }),
  name: Nullable(Type.String()),
  description: Nullable(Type.String()),
  status: SnapshotStatus,
  providerLocation: Nullable(Type.String()),
  errorReason: Nullable(Type.String()),
  createdAt: DateTime,
  updatedAt: DateTime,
  deletedAt: Nullable(DateTime),
  deleted: Type.Boolean(),
});
export type Snapshot = Static<typeof Snapshot>;

/** Display name and description: what Nova's `display_name`/`display_description` held. */
const DisplayName = Type.String({ maxLength: 255 });

export const CreateVolumeInput = Type.Object(
  {
    /** GiB, a whole number from 1 to the API's `maxSizeGiB`. */
    size: Type.Integer({ minimum: 1 }),
    name: Type.Optional(DisplayName),
    description: Type.Optional(DisplayName),
    /** Make the volume from this snapshot (same project, `available`, size at least the snapshot's). */
    snapshotId: Type.Optional(Type.String({ minLength: 1, maxLength: 36 })),
  },
  { additionalProperties: false },
);
export type CreateVolumeInput = Static<typeof CreateVolumeInput>;

/** What a volume's owner may rename: its name and description (Cinder's PUT /volumes/{id}). */
export const UpdateVolumeInput = Type.Object(
  {
    name: Type.Optional(Type.Union([DisplayName, Type.Null()])),
    description: Type.Optional(Type.Union([DisplayName, Type.Null()])),
  },
  { additionalProperties: false },
);
export type UpdateVolumeInput = Static<typeof UpdateVolumeInput>;

export const CreateSnapshotInput = Type.Object(
  {
    name: Type.Optional(DisplayName),
    description: Type.Optional(DisplayName),
    /** Snapshot an `in-use` volume too (its data may be inconsistent). */
    force: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type CreateSnapshotInput = Static<typeof CreateSnapshotInput>;

export const AttachInput = Type.Object(
  {
    instanceId: Type.String({ minLength: 1, maxLength: 255 }),
    /** Device path inside the instance, e.g. `/dev/vdb`. */
    mountpoint: Type.String({ pattern: '^/dev/[a-z][a-z0-9]{1,31}$' }),
  },
  { additionalProperties: false },
);
export type AttachInput = Static<typeof AttachInput>;

export const ListVolumesOptions = Type.Object(
  {
    status: Type.Optional(VolumeStatus),
    /** Page size, 1-1000 (default 1000). */
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    /** Id of the last volume of the previous page. */
    marker: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
export type ListVolumesOptions = Static<typeof ListVolumesOptions>;

export const ListSnapshotsOptions = Type.Object(
  {
    volumeId: Type.Optional(Type.String({ minLength: 1 })),
    status: Type.Optional(SnapshotStatus),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    marker: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
export type ListSnapshotsOptions = Static<typeof ListSnapshotsOptions>;

/** Per-project limits enforced by `VolumeApi`. */
export const VolumeQuotas = Type.Object(
  {
    volumes: Type.Integer({ minimum: 0, default: 10 }),
    gigabytes: Type.Integer({ minimum: 0, default: 1000 }),
    snapshots: Type.Integer({ minimum: 0, default: 10 }),
  },
  { additionalProperties: false },
);
export type VolumeQuotas = Static<typeof VolumeQuotas>;
