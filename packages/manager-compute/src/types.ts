import { Flavor, PowerState, RebootType } from '@stratus/core';
import Type, { type Static, type TSchema } from 'typebox';

/** The user-visible, stable state of an instance (Nova's `vm_state`). `deleted` is final. */
export const VmState = Type.Union([
  Type.Literal('building'),
  Type.Literal('active'),
  Type.Literal('paused'),
  Type.Literal('suspended'),
  Type.Literal('stopped'),
  Type.Literal('rescued'),
  Type.Literal('error'),
  Type.Literal('deleted'),
]);
export type VmState = Static<typeof VmState>;

/**
 * What is being done to an instance right now (Nova's `task_state`); null when idle. The API sets
 * it before sending the request, the manager clears it when the driver is done.
 */
export const TaskState = Type.Union([
  Type.Literal('scheduling'),
  Type.Literal('spawning'),
  Type.Literal('rebooting'),
  Type.Literal('rebooting_hard'),
  Type.Literal('stopping'),
  Type.Literal('starting'),
  Type.Literal('pausing'),
  Type.Literal('unpausing'),
  Type.Literal('suspending'),
  Type.Literal('resuming'),
  Type.Literal('rescuing'),
  Type.Literal('unrescuing'),
  Type.Literal('deleting'),
]);
export type TaskState = Static<typeof TaskState>;

/** An attachment's progress: the row exists from the API's request until the volume is detached. */
export const AttachmentStatus = Type.Union([
  Type.Literal('attaching'),
  Type.Literal('attached'),
  Type.Literal('detaching'),
]);
export type AttachmentStatus = Static<typeof AttachmentStatus>;

/** Who locked an instance: a non-admin may only unlock what its project locked. */
export const LockedBy = Type.Union([Type.Literal('owner'), Type.Literal('admin')]);
export type LockedBy = Static<typeof LockedBy>;

const DateTime = Type.Unsafe<Date>({ type: 'string', format: 'date-time' });
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** An instance as `ComputeApi` returns it. */
export const Instance = Type.Object({
  id: Type.String(),
  projectId: Nullable(Type.String()),
  userId: Nullable(Type.String()),
  /** The compute host running it; null until a manager took `run_instance`. */
  host: Nullable(Type.String()),
  /** Display name. */
  name: Type.String(),
  flavor: Flavor,
  imageRef: Type.String(),
  vmState: VmState,
  taskState: Nullable(TaskState),
  /** As the hypervisor last reported it. */
  powerState: PowerState,
  locked: Type.Boolean(),
  lockedBy: Nullable(LockedBy),
  /** Why the last operation failed. */
  errorReason: Nullable(Type.String()),
  launchedAt: Nullable(DateTime),
  terminatedAt: Nullable(DateTime),
  rescuedAt: Nullable(DateTime),
  createdAt: DateTime,
  updatedAt: DateTime,
  deletedAt: Nullable(DateTime),
  deleted: Type.Boolean(),
});
export type Instance = Static<typeof Instance>;

/** A volume attached (or being attached) to an instance. */
export const VolumeAttachment = Type.Object({
  id: Type.String(),
  instanceId: Type.String(),
  volumeId: Type.String(),
  mountpoint: Type.String(),
  status: AttachmentStatus,
  createdAt: DateTime,
  updatedAt: DateTime,
});
export type VolumeAttachment = Static<typeof VolumeAttachment>;

const DisplayName = Type.String({ minLength: 1, maxLength: 255 });
const FlavorName = Type.String({ minLength: 1, maxLength: 255 });

export const RunInstanceInput = Type.Object(
  {
    name: DisplayName,
    /** A flavor name from the API's `flavors`, or a full flavor. */
    flavor: Type.Union([FlavorName, Flavor]),
    /** The image to boot from (an id or a reference the driver understands). */
    imageRef: Type.String({ minLength: 1, maxLength: 255 }),
  },
  { additionalProperties: false },
);
export type RunInstanceInput = Static<typeof RunInstanceInput>;

export const RebootInput = RebootType;

export const RescueInput = Type.Object(
  {
    /** Password of the rescue image's admin account; a random one is made when absent. */
    password: Type.Optional(Type.String({ minLength: 8, maxLength: 255 })),
  },
  { additionalProperties: false },
);
export type RescueInput = Static<typeof RescueInput>;

/** A guest device name, e.g. `/dev/vdb` (the same rule as the volume API's). */
export const Mountpoint = Type.String({ pattern: '^/dev/[a-z][a-z0-9]{1,31}$' });

export const AttachVolumeInput = Type.Object(
  {
    volumeId: Type.String({ minLength: 1, maxLength: 36 }),
    mountpoint: Mountpoint,
  },
  { additionalProperties: false },
);
export type AttachVolumeInput = Static<typeof AttachVolumeInput>;

export const ListInstancesOptions = Type.Object(
  {
    vmState: Type.Optional(VmState),
    /** Admin only in practice: other projects' instances are never visible to a member. */
    host: Type.Optional(Type.String({ minLength: 1 })),
    /** Page size, 1-1000 (default 1000). */
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    /** Id of the last instance of the previous page. */
    marker: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
export type ListInstancesOptions = Static<typeof ListInstancesOptions>;

/** Flavors by name: `ComputeApi`'s `flavors` option (the deployment config's). */
export type FlavorTable = Readonly<Record<string, Omit<Flavor, 'name'>>>;

/** OpenStack's classic flavors: vCPUs, memory MiB, root disk GiB. */
export const DEFAULT_FLAVORS: FlavorTable = Object.freeze({
  'm1.tiny': { vcpus: 1, memoryMiB: 512, rootGiB: 1 },
  'm1.small': { vcpus: 1, memoryMiB: 2048, rootGiB: 20 },
  'm1.medium': { vcpus: 2, memoryMiB: 4096, rootGiB: 40 },
  'm1.large': { vcpus: 4, memoryMiB: 8192, rootGiB: 80 },
  'm1.xlarge': { vcpus: 8, memoryMiB: 16384, rootGiB: 160 },
});
