import type { CommandFilter } from '@stratus/core';

// Building blocks of the filters' argument patterns. None can match a leading `-` except the
// literal options listed, so a name can never be taken for an option.
const VG = '[A-Za-z0-9_+][A-Za-z0-9_+.-]{0,126}';
const LV = '[A-Za-z0-9_+][A-Za-z0-9_+.-]{0,127}';
const DEV = `/dev/${VG}/${LV}`;
const SIZE = '[1-9][0-9]{0,8}g';
const IQN = 'iqn\\.[0-9]{4}-[0-9]{2}\\.[a-z0-9][a-z0-9.-]*:[A-Za-z0-9.:_-]+';
const INITIATOR = `iqn\\.[0-9]{4}-[0-9]{2}\\.[A-Za-z0-9.-]+(:[A-Za-z0-9.:_-]+)?|eui\\.[0-9A-Fa-f]{16}|naa\\.[0-9A-Fa-f]{16,32}`;
const CHAP_USER = '[A-Za-z0-9]{8,32}';
const CHAP_SECRET = '[A-Za-z0-9]{12,32}';

/** Columns the driver asks `vgs` for, in order. */
export const VGS_COLUMNS = ['vg_name', 'vg_size', 'vg_free', 'vg_extent_size', 'lv_count'] as const;
/** Columns the driver asks `lvs` for, in order. */
export const LVS_COLUMNS = [
  'lv_name',
  'lv_attr',
  'lv_size',
  'origin',
  'pool_lv',
  'data_percent',
  'lv_tags',
] as const;
/** Field separator of `vgs`/`lvs` reports; no VG, LV or tag name can contain it. */
export const SEPARATOR = '|';
/** Tag the driver puts on every snapshot LV, so thin snapshots are told apart from volumes. */
export const SNAPSHOT_TAG = 'stratus_snapshot';
/** LVM commands run as `env LC_ALL=C <command>`: the root helper (sudo) may not pass the locale. */
export const LOCALE = ['env', 'LC_ALL=C'] as const;

// LVM arguments are all `--option=value` or `/dev/...` paths: with `env` in front, no argument the
// filters allow could be taken by env for a program to run (env refuses unknown options, and a
// /dev path is not executable). Filters are not positional, so this is what keeps them strict.
const REPORT = ['--noheadings', '--units=b', '--nosuffix', '--separator=\\|'];

function lvm(command: string, args: readonly string[]): CommandFilter {
  return { command: 'env', asRoot: true, args: ['LC_ALL=C', command, ...args].map((s) => new RegExp(s)) };
}

function plain(command: string, args: readonly string[]): CommandFilter {
  return { command, asRoot: true, args: args.map((s) => new RegExp(s)) };
}

/**
 * Every command the driver may run (nova-rootwrap's filters), each with strict argument patterns.
 * The executor refuses anything else before a process starts.
 */
export const LVM_COMMANDS: readonly CommandFilter[] = Object.freeze([
  lvm('vgs', [...REPORT, `--options=${VGS_COLUMNS.join(',')}`, `/dev/${VG}`]),
  lvm('lvs', [...REPORT, `--options=${LVS_COLUMNS.join(',')}`, `/dev/${VG}`]),
  lvm('lvm', ['segtypes']),
  lvm('lvcreate', [
    '--yes',
    `--name=${LV}`,
    `--size=${SIZE}`,
    '--thin',
    `--virtualsize=${SIZE}`,
    '--snapshot',
    '--setactivationskip=n',
    `--addtag=${SNAPSHOT_TAG}`,
    '--type=thin-pool',
    '--extents=([1-9][0-9]?|100)%FREE',
    `/dev/${VG}`,
    DEV,
  ]),
  lvm('lvextend', [`--size=${SIZE}`, DEV]),
  lvm('lvremove', ['--force', DEV]),
  plain('udevadm', ['settle']),
  plain('dd', [
    'if=/dev/zero',
    `if=${DEV}`,
    `of=${DEV}`,
    'of=/dev/null',
    'bs=1M',
    'count=[0-9]{1,9}',
    'iflag=direct',
    'oflag=direct',
  ]),
  plain('tgtadm', [
    '--lld',
    'iscsi|iser',
    '--mode',
    'target|logicalunit|account',
    '--op',
    'show|new|delete|bind',
    '--tid',
    '[1-9][0-9]{0,5}',
    '--lun',
    '1',
    '--targetname',
    IQN,
    '--backing-store',
    DEV,
    '--user',
    CHAP_USER,
    '--password',
    CHAP_SECRET,
    '--initiator-address',
    'ALL',
    '--force',
  ]),
  plain('targetcli', [
    '/backstores/block',
    `/backstores/block/${LV}`,
    '/iscsi',
    `/iscsi/${IQN}`,
    `/iscsi/${IQN}/tpg1`,
    `/iscsi/${IQN}/tpg1/luns`,
    `/iscsi/${IQN}/tpg1/acls`,
    `/iscsi/${IQN}/tpg1/acls/(${INITIATOR})`,
    'create|delete|set|ls|saveconfig|attribute|auth',
    `name=${LV}`,
    `dev=${DEV}`,
    LV,
    IQN,
    INITIATOR,
    'authentication=1',
    'generate_node_acls=0',
    `userid=${CHAP_USER}`,
    `password=${CHAP_SECRET}`,
  ]),
]);

/** `env LC_ALL=C <command> <args>`. */
export function lvmArgv(command: string, args: readonly string[]): string[] {
  return [...LOCALE, command, ...args];
}

/** The machine-readable report argv of `vgs`/`lvs` for one VG. */
export function reportArgv(command: 'vgs' | 'lvs', vg: string): string[] {
  const columns = command === 'vgs' ? VGS_COLUMNS : LVS_COLUMNS;
  return lvmArgv(command, [
    '--noheadings',
    '--units=b',
    '--nosuffix',
    `--separator=${SEPARATOR}`,
    `--options=${columns.join(',')}`,
    `/dev/${vg}`,
  ]);
}
