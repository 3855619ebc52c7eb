import type { BooleanColumn, ConnectionInfo, InstanceSpec, PowerState, TimestampColumn } from '@stratus/core';
import { toBoolean, toDate, toDateOrNull } from '@stratus/core';
import type { ColumnType, Selectable } from 'kysely';
import type { AttachmentStatus, Instance, LockedBy, TaskState, VmState, VolumeAttachment } from './types.js';

/** A nullable timestamp column: written as a Date or `currentTimestamp()`, read back with `toDateOrNull()`. */
type NullableTimestampColumn = ColumnType<
  Date | string | null,
  Date | string | null | undefined,
  Date | string | null
>;

/** Row of the `instances` table (snake_case, as stored). */
export interface InstancesTable {
  id: string;
  project_id: string | null;
  user_id: string | null;
  /** The compute host running it; null until a manager takes `run_instance`. */
  host: string | null;
  name: string;
  flavor_name: string;
  vcpus: number;
  memory_mib: number;
  root_gib: number;
  image_ref: string;
  vm_state: VmState;
  task_state: TaskState | null;
  power_state: PowerState;
  locked: BooleanColumn;
  locked_by: LockedBy | null;
  error_reason: string | null;
  launched_at: NullableTimestampColumn;
  terminated_at: NullableTimestampColumn;
  rescued_at: NullableTimestampColumn;
  created_at: TimestampColumn;
  updated_at: TimestampColumn;
  deleted_at: NullableTimestampColumn;
  deleted: BooleanColumn;
}

/** Row of the `volume_attachments` table: removed once the volume is detached. */
export interface VolumeAttachmentsTable {
  id: string;
  instance_id: string;
  /** At most one attachment row per volume (unique). */
  volume_id: string;
  mountpoint: string;
  status: AttachmentStatus;
  /** JSON of the `ConnectionInfo` the volume host answered; null until the connection is made. */
  connection_info: string | null;
  created_at: TimestampColumn;
  updated_at: TimestampColumn;
}

/** The tables owned by `@stratus/manager-compute`. */
export interface ComputeDatabase {
  instances: InstancesTable;
  volume_attachments: VolumeAttachmentsTable;
}

export type InstanceRow = Selectable<InstancesTable>;
export type VolumeAttachmentRow = Selectable<VolumeAttachmentsTable>;

/** Backend name of an instance (Nova's `instance_name_template`). */
export function instanceName(id: string): string {
  return `instance-${id}`;
}

/** Longest error reason kept in a row; longer ones are cut. */
export const MAX_ERROR_REASON = 1000;

/** A failure as stored in `error_reason`: its message, bounded. */
export function errorReason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > MAX_ERROR_REASON ? `${text.slice(0, MAX_ERROR_REASON - 1)}…` : text;
}

/** What the driver is told about an instance. */
export function instanceSpec(row: InstanceRow): InstanceSpec {
  return {
    id: row.id,
    name: instanceName(row.id),
    projectId: row.project_id,
    imageRef: row.image_ref,
    flavor: {
      name: row.flavor_name,
      vcpus: Number(row.vcpus),
      memoryMiB: Number(row.memory_mib),
      rootGiB: Number(row.root_gib),
    },
  };
}

/** A row as the public camelCase record. */
export function toInstance(row: InstanceRow): Instance {
  return {
    id: row.id,
    projectId: row.project_id,
    userId: row.user_id,
    host: row.host,
    name: row.name,
    flavor: instanceSpec(row).flavor,
    imageRef: row.image_ref,
    vmState: row.vm_state,
    taskState: row.task_state,
    powerState: row.power_state,
    locked: toBoolean(row.locked),
    lockedBy: row.locked_by,
    errorReason: row.error_reason,
    launchedAt: toDateOrNull(row.launched_at),
    terminatedAt: toDateOrNull(row.terminated_at),
    rescuedAt: toDateOrNull(row.rescued_at),
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
    deletedAt: toDateOrNull(row.deleted_at),
    deleted: toBoolean(row.deleted),
  };
}

export function toAttachment(row: VolumeAttachmentRow): VolumeAttachment {
  return {
    id: row.id,
    instanceId: row.instance_id,
    volumeId: row.volume_id,
    mountpoint: row.mountpoint,
    status: row.status,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

/** The stored connection info of an attachment, or undefined when none was recorded. */
export function connectionInfoOf(row: VolumeAttachmentRow): ConnectionInfo | undefined {
  return row.connection_info === null ? undefined : (JSON.parse(row.connection_info) as ConnectionInfo);
}
