import Type, { type Static } from 'typebox';

/** Volume group names LVM accepts that are also safe on a command line (no leading `-`). */
export const VG_NAME_PATTERN = '^[A-Za-z0-9_+][A-Za-z0-9_+.-]{0,126}$';
/** iSCSI qualified name prefix: `iqn.<yyyy-mm>.<reversed domain>[:<anything safe>]`. */
export const IQN_PREFIX_PATTERN = '^iqn\\.[0-9]{4}-[0-9]{2}\\.[a-z0-9][a-z0-9.-]*(:[A-Za-z0-9.:_-]*)?$';

/** Config of `@stratus/driver-lvm`. Every field but `volumeGroup` has a default. */
export const LvmDriverConfig = Type.Object(
  {
    volumeGroup: Type.String({
      pattern: VG_NAME_PATTERN,
      default: 'stratus-volumes',
      description: 'The LVM volume group that holds every volume (must exist; the driver never creates it).',
    }),
    lvmType: Type.Union([Type.Literal('default'), Type.Literal('thin'), Type.Literal('auto')], {
      default: 'default',
      description:
        '`default`: thick linear LVs. `thin`: thin LVs in a thin pool (created when missing). `auto`: thin when the pool exists or LVM supports thin pools, else default.',
    }),
    thinPoolName: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_+][A-Za-z0-9_+.-]{0,126}$',
        description: 'Thin pool LV name. Default: `<volumeGroup>-pool`.',
      }),
    ),
    thinPoolShare: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      default: 0.95,
      description:
        "Share of the volume group's free space the thin pool takes when the driver creates it (rounded down to whole percent).",
    }),
    maxOverSubscriptionRatio: Type.Number({
      minimum: 1,
      default: 20,
      description:
        'Thin only: how far provisioned space may exceed the pool size; creates past it are refused.',
    }),
    volumeClear: Type.Union([Type.Literal('none'), Type.Literal('zero')], {
      default: 'zero',
      description:
        'How a thick volume (or thick snapshot) is wiped before removal. Thin LVs are never wiped: their blocks come back zeroed.',
    }),
    volumeClearSizeMiB: Type.Integer({
      minimum: 0,
      default: 0,
      description: 'Wipe only the first N MiB of each volume; 0 wipes all of it.',
    }),
    targetHelper: Type.Union([Type.Literal('tgtadm'), Type.Literal('lioadm'), Type.Literal('fake')], {
      default: 'tgtadm',
      description:
        'iSCSI target: `tgtadm` (tgt, LUN 1), `lioadm` (LIO through targetcli, LUN 0), or `fake` (in memory, no target; tests).',
    }),
    targetPrefix: Type.String({
      pattern: IQN_PREFIX_PATTERN,
      default: 'iqn.2010-10.org.openstack:',
      description: "Target IQN prefix; a volume's target is `<targetPrefix><LV name>`.",
    }),
    targetPortal: Type.String({
      pattern: '^([0-9]{1,3}(\\.[0-9]{1,3}){3}|\\[[0-9A-Fa-f:.]+\\]):[0-9]{1,5}$',
      default: '127.0.0.1:3260',
      description: 'Portal `<ip>:<port>` initiators connect to (IPv6 in brackets).',
    }),
    iscsiProtocol: Type.Union([Type.Literal('iscsi'), Type.Literal('iser')], {
      default: 'iscsi',
      description: 'Transport of the export; reported as the connection info `driverVolumeType`.',
    }),
    backendName: Type.String({
      minLength: 1,
      default: 'lvm',
      description: 'Backend name reported in volume stats (for placement).',
    }),
    commandTimeoutMs: Type.Integer({
      minimum: 1000,
      default: 120000,
      description:
        'Time limit of each LVM or target command. Data copies and wipes (dd) get this much per GiB.',
    }),
    maxConcurrentCommands: Type.Integer({
      minimum: 1,
      default: 4,
      description: 'At most this many LVM/target commands run at once (LVM serialises on its lock anyway).',
    }),
    lvremoveRetries: Type.Integer({
      minimum: 0,
      default: 3,
      description:
        'Extra lvremove attempts when the LV is in use or the device is busy, with backoff and `udevadm settle`.',
    }),
    retryDelayMs: Type.Integer({
      minimum: 0,
      default: 1000,
      description: 'First backoff between retries; doubles each attempt.',
    }),
  },
  { additionalProperties: false },
);
export type LvmDriverConfig = Static<typeof LvmDriverConfig>;
