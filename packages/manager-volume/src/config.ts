import Type, { type Static } from 'typebox';

/** Config of the volume manager (`services.volume.manager.config`). Every field has a default. */
export const VolumeManagerConfig = Type.Object(
  {
    statsRefreshInterval: Type.Number({
      minimum: 1,
      default: 60,
      description:
        'Seconds between reads of the backend capacity (published with the heartbeat); operations that change capacity also refresh it',
    }),
  },
  { additionalProperties: false },
);
export type VolumeManagerConfig = Static<typeof VolumeManagerConfig>;
