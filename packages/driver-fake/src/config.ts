import Type, { type Static } from 'typebox';

/** Config of the in-memory volume backend. Every field has a default, so `{}` is a valid config. */
export const FakeVolumeConfig = Type.Object(
  {
    capacityGiB: Type.Integer({
      minimum: 1,
      default: 1000,
      description: 'Size of the simulated volume group / pool, in GiB.',
    }),
    thin: Type.Boolean({
      default: false,
      description:
        'Thin provisioning: volumes and snapshots allocate no space up front (a volume made from a snapshot allocates the copied data), and the sum of provisioned sizes may reach capacityGiB × maxOverSubscriptionRatio.',
    }),
    maxOverSubscriptionRatio: Type.Number({
      minimum: 1,
      default: 20,
      description:
        "With thin: how far provisioned space may exceed capacityGiB (Cinder's max_over_subscription_ratio).",
    }),
    snapshotReserveRatio: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      default: 1,
      description:
        "Without thin: share of its volume's size a snapshot reserves (LVM reserves the whole volume size: 1), rounded up to whole GiB.",
    }),
    targetPrefix: Type.String({
      minLength: 1,
      default: 'iqn.2010-10.org.openstack:',
      description: "iSCSI target IQN prefix; a volume's target is <targetPrefix><volume name>.",
    }),
    portal: Type.String({
      pattern: '^[^\\s,]+:[0-9]{1,5}$',
      default: '127.0.0.1:3260',
      description: 'iSCSI portal <ip>:<port> reported in provider locations and connection info.',
    }),
    backendName: Type.String({
      minLength: 1,
      default: 'fake',
      description: 'Backend name reported in volume stats (for placement).',
    }),
    stateFile: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "JSON file the backend's volumes, snapshots and exports are kept in (relative to the data directory), so they outlive the process like LVM volumes do; without it everything is in memory.",
      }),
    ),
  },
  { additionalProperties: false },
);
export type FakeVolumeConfig = Static<typeof FakeVolumeConfig>;

/** Config of the in-memory hypervisor. Every field has a default, so `{}` is a valid config. */
export const FakeComputeConfig = Type.Object(
  {
    vcpus: Type.Integer({ minimum: 1, default: 16, description: 'Virtual CPUs the simulated host offers.' }),
    memoryMiB: Type.Integer({
      minimum: 1,
      default: 32768,
      description: 'Memory the simulated host offers, in MiB.',
    }),
    localDiskGiB: Type.Integer({
      minimum: 0,
      default: 500,
      description: 'Local disk for instance root disks, in GiB.',
    }),
    hypervisorHostname: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Hostname reported in available resources; defaults to the host the service runs on.',
      }),
    ),
    stateFile: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "JSON file the hypervisor's instances (power states, attached volumes) are kept in (relative to the data directory), so they outlive the process like VMs outlive a dead nova-compute; without it everything is in memory.",
      }),
    ),
  },
  { additionalProperties: false },
);
export type FakeComputeConfig = Static<typeof FakeComputeConfig>;
