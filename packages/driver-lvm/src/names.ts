import { InvalidInputError } from '@stratus/core';

/** Contract names (volumes, snapshots): what LVM, iSCSI and a command line all carry safely. */
export const BACKEND_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Initiator names: `iqn.` / `eui.` / `naa.` forms, restricted to characters safe on a command line. */
export const INITIATOR_NAME =
  /^(iqn\.[0-9]{4}-[0-9]{2}\.[A-Za-z0-9.-]+(:[A-Za-z0-9.:_-]+)?|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$/;
/** Full target IQNs as the driver builds them. */
export const TARGET_IQN = /^iqn\.[0-9]{4}-[0-9]{2}\.[a-z0-9][a-z0-9.-]*:[A-Za-z0-9.:_-]+$/;

// LVM reserves these inside LV names for its hidden sub-LVs (lvm2 lib/metadata/lv_manip.c).
const RESERVED_PARTS = [
  '_cdata',
  '_cmeta',
  '_corig',
  '_cpool',
  '_cvol',
  '_wcorig',
  '_mimage',
  '_mlog',
  '_pmspare',
  '_rimage',
  '_rmeta',
  '_tdata',
  '_tmeta',
  '_vdata',
  '_vorigin',
  '_imeta',
  '_iorig',
];

// The device-mapper name `<vg>-<lv>` (dashes doubled) must fit DM_NAME_LEN (128 with the NUL).
const DM_NAME_MAX = 127;

function invalid(path: string, name: unknown, why: string): InvalidInputError {
  return new InvalidInputError('Invalid backend name', [{ path, message: `${JSON.stringify(name)} ${why}` }]);
}

/**
 * The LV name for a contract name, after checking it. LVM refuses LV names that start with
 * `snapshot` (Nova's `_escape_snapshot` adds a leading `_`); names starting `pvmove` or holding one
 * of LVM's reserved sub-LV suffixes are refused with InvalidInput.
 */
export function lvNameOf(name: unknown, path: string, vg: string): string {
  if (typeof name !== 'string' || !BACKEND_NAME.test(name)) {
    throw invalid(
      path,
      name,
      'must be 1-128 characters of letters, digits, ".", "_" or "-", starting with a letter or digit',
    );
  }
  if (name.startsWith('pvmove')) throw invalid(path, name, 'starts with "pvmove", which LVM reserves');
  const reserved = RESERVED_PARTS.find((p) => name.includes(p));
  if (reserved)
    throw invalid(path, name, `contains "${reserved}", which LVM reserves for its own sub-volumes`);
  const lv = name.startsWith('snapshot') ? `_${name}` : name;
  if (mapperName(vg, lv).length > DM_NAME_MAX) {
    throw invalid(
      path,
      name,
      `is too long: "${vg}-${lv}" with dashes doubled exceeds ${DM_NAME_MAX} characters`,
    );
  }
  return lv;
}

/** The contract name of an LV (undoes the `_snapshot` escape). */
export function contractNameOf(lv: string): string {
  return lv.startsWith('_snapshot') ? lv.slice(1) : lv;
}

/** The device-mapper name of VG/LV: every `-` doubled, joined by `-`. */
export function mapperName(vg: string, lv: string): string {
  return `${vg.replaceAll('-', '--')}-${lv.replaceAll('-', '--')}`;
}

/** The block device of VG/LV as LVM links it. */
export function devicePath(vg: string, lv: string): string {
  return `/dev/${vg}/${lv}`;
}

/** Throw InvalidInput unless `size` is a whole number of GiB, at least 1. */
export function checkSize(size: unknown, path: string): asserts size is number {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) {
    throw new InvalidInputError('Invalid size', [
      { path, message: `${JSON.stringify(size)} is not a whole number of GiB of at least 1` },
    ]);
  }
}

/** Throw InvalidInput unless `iqn` is a target IQN the driver may put on a command line. */
export function checkTargetIqn(iqn: string, path: string): void {
  if (!TARGET_IQN.test(iqn) || iqn.length > 223) {
    throw new InvalidInputError('Invalid target IQN', [
      { path, message: `${JSON.stringify(iqn)} is not an iqn. name of at most 223 characters` },
    ]);
  }
}
