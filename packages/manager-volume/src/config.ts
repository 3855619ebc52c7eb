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
    driverTimeout: Type.Number({
      minimum: 0,
      default: 600,
      description:
        'Seconds one backend operation (create, delete, snapshot, extend) may take before its volume or snapshot is put in its error state and the handler is freed; 0 waits forever',
    }),
  },
  { additionalProperties: false },
);
export type VolumeManagerConfig = Static<typeof VolumeManagerConfig>;
