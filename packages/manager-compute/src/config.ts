import Type, { type Static } from 'typebox';

/** Config of the compute manager (`services.compute.manager.config`). Every field has a default. */
export const ComputeManagerConfig = Type.Object(
  {
    syncPowerStateInterval: Type.Number({
      minimum: 1,
      default: 60,
      description:
        'Seconds between power-state syncs: the hypervisor is authoritative; an active instance it reports shut down becomes stopped',
    }),
    resourceRefreshInterval: Type.Number({
      minimum: 1,
      default: 60,
      description:
        'Seconds between reads of the hypervisor resources (vCPUs, memory, disk: total and used), published with the heartbeat',
    }),
    rescueTimeoutSec: Type.Number({
      minimum: 0,
      default: 0,
      description: 'Unrescue instances rescued for longer than this many seconds; 0 never does',
    }),
    rescuePollInterval: Type.Number({
      minimum: 1,
      default: 60,
      description: 'Seconds between checks for rescues past rescueTimeoutSec',
    }),
    driverTimeout: Type.Number({
      minimum: 0,
      default: 600,
      description:
        'Seconds one hypervisor operation (spawn, destroy, a power action, reading a power state) may take before its instance is put in its error state and the handler is freed; 0 waits forever',
    }),
    volumeTopic: Type.String({
      minLength: 1,
      default: 'volume',
      description: 'Topic of the volume service this host attaches volumes from',
    }),
    volumeCallTimeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'Timeout of the calls to volume hosts, in ms; the service rpcResponseTimeout otherwise',
      }),
    ),
    iscsiInitiator: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "This host's iSCSI initiator name, sent in the connector; iqn.2010-10.org.stratus:<host> otherwise",
      }),
    ),
  },
  { additionalProperties: false },
);
export type ComputeManagerConfig = Static<typeof ComputeManagerConfig>;
