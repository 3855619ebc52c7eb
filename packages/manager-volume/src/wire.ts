import { Connector } from '@stratus/core';
import Type, { type Static } from 'typebox';

/** The volume RPC API version (`major.minor`) served by `VolumeManager` and sent by `VolumeApi`. */
export const VOLUME_RPC_VERSION = '1.0';

/** The volume service's default RPC topic. */
export const VOLUME_TOPIC = 'volume';

const Id = Type.String({ minLength: 1, maxLength: 36 });

/** Keyword args of each volume RPC method, snake_case on the wire as in Nova. */
export const CreateVolumeArgs = Type.Object(
  { volume_id: Id, snapshot_id: Type.Optional(Type.Union([Id, Type.Null()])) },
  { additionalProperties: false },
);
export type CreateVolumeArgs = Static<typeof CreateVolumeArgs>;

export const VolumeIdArgs = Type.Object({ volume_id: Id }, { additionalProperties: false });
export type VolumeIdArgs = Static<typeof VolumeIdArgs>;

export const CreateSnapshotArgs = Type.Object(
  { volume_id: Id, snapshot_id: Id },
  { additionalProperties: false },
);
export type CreateSnapshotArgs = Static<typeof CreateSnapshotArgs>;

export const SnapshotIdArgs = Type.Object({ snapshot_id: Id }, { additionalProperties: false });
export type SnapshotIdArgs = Static<typeof SnapshotIdArgs>;

export const ExtendVolumeArgs = Type.Object(
  { volume_id: Id, new_size: Type.Integer({ minimum: 1 }) },
  { additionalProperties: false },
);
export type ExtendVolumeArgs = Static<typeof ExtendVolumeArgs>;

export const ConnectionArgs = Type.Object(
  { volume_id: Id, connector: Connector },
  { additionalProperties: false },
);
export type ConnectionArgs = Static<typeof ConnectionArgs>;

export const AttachVolumeArgs = Type.Object(
  {
    volume_id: Id,
    instance_id: Type.String({ minLength: 1, maxLength: 255 }),
    mountpoint: Type.String({ minLength: 1, maxLength: 255 }),
  },
  { additionalProperties: false },
);
export type AttachVolumeArgs = Static<typeof AttachVolumeArgs>;
