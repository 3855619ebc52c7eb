import type { BooleanColumn, TimestampColumn } from '@stratus/core';
import { toBoolean, toDate, toDateOrNull } from '@stratus/core';
import type { ColumnType, Selectable } from 'kysely';
import type { AttachStatus, Snapshot, SnapshotStatus, Volume, VolumeStatus } from './types.js';

/** A nullable timestamp column: written as a Date or `currentTimestamp()`, read back with `toDateOrNull()`. */
type NullableTimestampColumn = ColumnType<
  Date | string | null,
  Date | string | null | undefined,
  Date | string | null
>;

/** Row of the `volumes` table (snake_case, as stored). */
export interface VolumesTable {
  id: string;
  project_id: string | null;
  user_id: string | null;
  /** The volume host that created it; null until a manager picks up `create_volume`. */
  host: string | null;
  size_gib: number;
  name: string | null;
  description: string | null;
  status: VolumeStatus;
  attach_status: AttachStatus;
  instance_id: string | null;
  mountpoint: string | null;
  provider_location: string | null;
  /** The export's access secret (CHAP); never returned by `VolumeApi`. */
  provider_auth: string | null;
  source_snapshot_id: string | null;
  error_reason: string | null;
  created_at: TimestampColumn;
  updated_at: TimestampColumn;
  deleted_at: NullableTimestampColumn;
  deleted: BooleanColumn;
}

/** Row of the `snapshots` table. */
export interface SnapshotsTable {
  id: string;
  project_id: string | null;
  user_id: string | null;
  volume_id: string;
  volume_size_gib: number;
  name: string | null;
  description: string | null;
  status: SnapshotStatus;
  provider_location: string | null;
  error_reason: string | null;
  created_at: TimestampColumn;
  updated_at: TimestampColumn;
  deleted_at: NullableTimestampColumn;
  deleted: BooleanColumn;
}

/** The tables owned by `@stratus/manager-volume`. */
export interface VolumeDatabase {
  volumes: VolumesTable;
  snapshots: SnapshotsTable;
}

export type VolumeRow = Selectable<VolumesTable>;
export type SnapshotRow = Selectable<SnapshotsTable>;

/** Backend name of a volume (Nova's `volume_name_template`). */
export function volumeName(id: string): string {
  return `volume-${id}`;
}

/** Backend name of a snapshot (Nova's `snapshot_name_template`). */
export function snapshotName(id: string): string {
  return `snapshot-${id}`;
}

/** Longest error reason kept in a row; longer ones are cut. */
export const MAX_ERROR_REASON = 1000;

/** A failure as stored in `error_reason`: its message, bounded. */
export function errorReason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > MAX_ERROR_REASON ? `${text.slice(0, MAX_ERROR_REASON - 1)}…` : text;
}

/** A row as the public camelCase record (without the export secret). */
export function toVolume(row: VolumeRow): Volume {
  return {
    id: row.id,
    projectId: row.project_id,
    userId: row.user_id,
    host: row.host,
    sizeGiB: Number(row.size_gib),
    name: row.name,
    description: row.description,
    status: row.status,
    attachStatus: row.attach_status,
    instanceId: row.instance_id,
    mountpoint: row.mountpoint,
    providerLocation: row.provider_location,
    sourceSnapshotId: row.source_snapshot_id,
    errorReason: row.error_reason,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
    deletedAt: toDateOrNull(row.deleted_at),
    deleted: toBoolean(row.deleted),
  };
}

export function toSnapshot(row: SnapshotRow): Snapshot {
  return {
    id: row.id,
    projectId: row.project_id,
    userId: row.user_id,
    volumeId: row.volume_id,
    volumeSizeGiB: Number(row.volume_size_gib),
    name: row.name,
    description: row.description,
    status: row.status,
    providerLocation: row.provider_location,
    errorReason: row.error_reason,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
    deletedAt: toDateOrNull(row.deleted_at),
    deleted: toBoolean(row.deleted),
  };
}
