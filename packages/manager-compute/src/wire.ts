import { RebootType } from '@stratus/core';
import Type, { type Static } from 'typebox';

/** The compute RPC API version (`major.minor`) served by `ComputeManager` and sent by `ComputeApi`. */
export const COMPUTE_RPC_VERSION = '1.0';

/** The compute service's default RPC topic. */
export const COMPUTE_TOPIC = 'compute';

const Id = Type.String({ minLength: 1, maxLength: 36 });

/** Keyword args of the compute RPC methods, snake_case on the wire as in Nova. */
export const InstanceIdArgs = Type.Object({ instance_id: Id }, { additionalProperties: false });
export type InstanceIdArgs = Static<typeof InstanceIdArgs>;

export const RebootArgs = Type.Object(
  { instance_id: Id, reboot_type: RebootType },
  { additionalProperties: false },
);
export type RebootArgs = Static<typeof RebootArgs>;

export const RescueArgs = Type.Object(
  { instance_id: Id, rescue_password: Type.String({ minLength: 1, maxLength: 255 }) },
  { additionalProperties: false },
);
export type RescueArgs = Static<typeof RescueArgs>;

export const AttachVolumeArgs = Type.Object(
  {
    instance_id: Id,
    volume_id: Id,
    mountpoint: Type.String({ minLength: 1, maxLength: 255 }),
  },
  { additionalProperties: false },
);
export type AttachVolumeArgs = Static<typeof AttachVolumeArgs>;

export const DetachVolumeArgs = Type.Object(
  { instance_id: Id, volume_id: Id },
  { additionalProperties: false },
);
export type DetachVolumeArgs = Static<typeof DetachVolumeArgs>;
