import { DriverFailureError } from '@stratus/core';
import { LVS_COLUMNS, SEPARATOR, VGS_COLUMNS } from './commands.js';

/** One volume group as `vgs` reports it (sizes in bytes). */
export interface VgReport {
  readonly name: string;
  readonly sizeBytes: number;
  readonly freeBytes: number;
  readonly extentBytes: number;
  readonly lvCount: number;
}

/** One logical volume as `lvs` reports it (sizes in bytes). */
export interface LvReport {
  readonly name: string;
  /** The 10-character attribute string, e.g. `-wi-a-----`, `owi-a-s---`, `Vwi-a-tz--`. */
  readonly attr: string;
  readonly sizeBytes: number;
  /** Origin LV of a snapshot (thick or thin), or ''. */
  readonly origin: string;
  /** Thin pool of a thin LV, or ''. */
  readonly pool: string;
  /** Data usage of a thin pool/LV or thick snapshot, in percent; null when not reported. */
  readonly dataPercent: number | null;
  readonly tags: readonly string[];
}

function malformed(command: string, why: string, line: string): DriverFailureError {
  return new DriverFailureError(
    `Cannot parse the output of ${command}: ${why} in ${JSON.stringify(line)}. The driver runs LVM with LC_ALL=C and --units b --nosuffix; check that the root helper does not alter its output.`,
    { details: { reason: 'unparseable_output', command, line } },
  );
}

function fields(command: string, line: string, count: number): string[] {
  const parts = line.trim().split(SEPARATOR);
  if (parts.length !== count) {
    throw malformed(
      command,
      `expected ${count} fields separated by "${SEPARATOR}", got ${parts.length}`,
      line,
    );
  }
  return parts.map((p) => p.trim());
}

function bytes(command: string, value: string, column: string, line: string): number {
  if (!/^[0-9]{1,18}$/.test(value))
    throw malformed(command, `${column} "${value}" is not a whole number of bytes`, line);
  return Number(value);
}

function percent(command: string, value: string, line: string): number | null {
  if (value === '') return null;
  if (!/^[0-9]{1,3}(\.[0-9]{1,6})?$/.test(value)) {
    throw malformed(command, `data_percent "${value}" is not a decimal number with a "." point`, line);
  }
  return Number(value);
}

function lines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l.trim() !== '');
}

/**
 * Parse `vgs --noheadings --units b --nosuffix --separator | -o <VGS_COLUMNS>`. Strict: every line
 * must have exactly the asked columns with whole byte counts; anything else (a locale's decimal
 * comma, a unit suffix, a warning on stdout) is a DriverFailure rather than a wrong number.
 */
export function parseVgs(stdout: string): VgReport[] {
  return lines(stdout).map((line) => {
    const [name, size, free, extent, count] = fields('vgs', line, VGS_COLUMNS.length) as [
      string,
      string,
      string,
      string,
      string,
    ];
    if (name === '') throw malformed('vgs', 'vg_name is empty', line);
    if (!/^[0-9]{1,9}$/.test(count))
      throw malformed('vgs', `lv_count "${count}" is not a whole number`, line);
    return {
      name,
      sizeBytes: bytes('vgs', size, 'vg_size', line),
      freeBytes: bytes('vgs', free, 'vg_free', line),
      extentBytes: bytes('vgs', extent, 'vg_extent_size', line),
      lvCount: Number(count),
    };
  });
}

/** Parse `lvs --noheadings --units b --nosuffix --separator | -o <LVS_COLUMNS>`, as strictly as {@link parseVgs}. */
export function parseLvs(stdout: string): LvReport[] {
  return lines(stdout).map((line) => {
    const [name, attr, size, origin, pool, data, tags] = fields('lvs', line, LVS_COLUMNS.length) as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    if (name === '') throw malformed('lvs', 'lv_name is empty', line);
    if (!/^.{10}$/.test(attr)) throw malformed('lvs', `lv_attr "${attr}" is not 10 characters`, line);
    return {
      name,
      attr,
      sizeBytes: bytes('lvs', size, 'lv_size', line),
      origin,
      pool,
      dataPercent: percent('lvs', data, line),
      tags: tags === '' ? [] : tags.split(','),
    };
  });
}

/** One target as `tgtadm --mode target --op show` lists it. */
export interface TgtTarget {
  readonly tid: number;
  readonly iqn: string;
  readonly luns: readonly number[];
  readonly backingStores: readonly string[];
  readonly accounts: readonly string[];
  readonly acls: readonly string[];
}

/** Parse `tgtadm --lld iscsi --mode target --op show` (tgt 1.0.x layout). */
export function parseTgtTargets(stdout: string): TgtTarget[] {
  const targets: Array<{
    tid: number;
    iqn: string;
    luns: number[];
    backingStores: string[];
    accounts: string[];
    acls: string[];
  }> = [];
  let section = '';
  for (const raw of stdout.split('\n')) {
    const target = /^Target ([0-9]+): (\S+)$/.exec(raw);
    if (target) {
      targets.push({
        tid: Number(target[1]),
        iqn: target[2] as string,
        luns: [],
        backingStores: [],
        accounts: [],
        acls: [],
      });
      section = '';
      continue;
    }
    const current = targets.at(-1);
    if (!current) continue;
    const line = raw.trim();
    if (/^[A-Za-z_ ]+ information:$/.test(line)) {
      section = line;
      continue;
    }
    if (section === 'LUN information:') {
      const lun = /^LUN: ([0-9]+)$/.exec(line);
      if (lun) current.luns.push(Number(lun[1]));
      const store = /^Backing store path: (\/\S+)$/.exec(line);
      if (store) current.backingStores.push(store[1] as string);
    } else if (section === 'Account information:' && line !== '') {
      current.accounts.push(line.replace(/ \(outgoing\)$/, ''));
    } else if (section === 'ACL information:' && line !== '') {
      current.acls.push(line);
    }
  }
  return targets;
}
