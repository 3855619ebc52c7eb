/**
 * A recorded-command fake of core's Executor that behaves like one host's lvm2 + tgt: it checks
 * every argv against the driver's command filters (as the real Executor does), records it, and
 * answers with the output, exit code and stderr the real tools give (taken from lvm2 2.03.16 and
 * tgt 1.0.85 in the lvm-vm guest).
 */
import {
  CommandFailedError,
  CommandNotAllowedError,
  type CommandResult,
  type Executor,
  matchFilters,
  type RunOptions,
} from '@stratus/core';
import { LVM_COMMANDS } from '../../src/index.js';

const GiB = 1024 ** 3;
const EXTENT = 4 * 1024 ** 2;

interface FakeLv {
  name: string;
  sizeBytes: number;
  /** s = thick snapshot, V = thin, t = thin pool, - = linear. */
  kind: '-' | 's' | 'V' | 't';
  origin: string;
  pool: string;
  tags: string[];
  active: boolean;
}

interface FakeTgtTarget {
  tid: number;
  iqn: string;
  luns: Map<number, string>;
  accounts: string[];
  acls: string[];
}

export interface RecordedRun {
  readonly argv: readonly string[];
  readonly options: RunOptions;
}

interface Fault {
  readonly match: (argv: readonly string[]) => boolean;
  readonly exitCode: number;
  readonly stderr: string;
  readonly stdout: string;
}

export class FakeLvmHost {
  readonly runs: RecordedRun[] = [];
  readonly lvs = new Map<string, FakeLv>();
  readonly targets = new Map<number, FakeTgtTarget>();
  readonly accounts = new Map<string, string>();
  readonly vgs: Map<string, { sizeBytes: number }>;
  readonly #faults: Fault[] = [];
  /** Concurrent runs right now, and the most seen at once. */
  active = 0;
  maxActive = 0;
  /** Hold every run this long (ms) so concurrency can be observed. */
  delayMs = 0;
  tgtdRunning = true;

  constructor(vg = 'volumes', sizeGiB = 100) {
    this.vgs = new Map([[vg, { sizeBytes: sizeGiB * GiB }]]);
  }

  /** The fake as the Executor type the driver's env wants. */
  get executor(): Executor {
    return this as unknown as Executor;
  }

  /** Make the next run whose argv contains every `words` fail with `exitCode`/`stderr`. */
  failNext(words: readonly string[], exitCode: number, stderr: string, stdout = ''): this {
    this.#faults.push({ match: (argv) => words.every((w) => argv.includes(w)), exitCode, stderr, stdout });
    return this;
  }

  /** argv of every recorded run, the `env LC_ALL=C` prefix included. */
  get commands(): string[][] {
    return this.runs.map((r) => [...r.argv]);
  }

  /** Runs whose argv includes every word. */
  ran(...words: string[]): RecordedRun[] {
    return this.runs.filter((r) => words.every((w) => r.argv.includes(w)));
  }

  async run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const match = matchFilters(LVM_COMMANDS, argv);
    if (!match.allowed) throw new CommandNotAllowedError(argv, match.reason);
    this.runs.push({ argv: [...argv], options });
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      const faultAt = this.#faults.findIndex((f) => f.match(argv));
      if (faultAt >= 0) {
        const [fault] = this.#faults.splice(faultAt, 1) as [Fault];
        throw new CommandFailedError(argv, {
          exitCode: fault.exitCode,
          stdout: fault.stdout,
          stderr: fault.stderr,
        });
      }
      const stdout = this.#dispatch(argv);
      return { argv, exitCode: 0, stdout, stderr: '', durationMs: 1 };
    } finally {
      this.active--;
    }
  }

  #fail(argv: readonly string[], exitCode: number, stderr: string): never {
    throw new CommandFailedError(argv, { exitCode, stdout: '', stderr: `  ${stderr}\n` });
  }

  #dispatch(argv: readonly string[]): string {
    const [cmd] = argv;
    if (cmd === 'env') return this.#lvm(argv, argv.slice(2));
    if (cmd === 'dd' || cmd === 'udevadm') return '';
    if (cmd === 'tgtadm') return this.#tgtadm(argv);
    if (cmd === 'targetcli') return '';
    return this.#fail(argv, 127, `${cmd}: not found`);
  }

  /** `--name=value` (LVM, as the driver passes it) or `--name value` (tgtadm). */
  #opt(args: readonly string[], name: string): string | undefined {
    const joined = args.find((a) => a.startsWith(`${name}=`));
    if (joined !== undefined) return joined.slice(name.length + 1);
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  }

  #has(args: readonly string[], name: string): boolean {
    return args.some((a) => a === name || a.startsWith(`${name}=`));
  }

  #vgUsed(): number {
    let used = 0;
    for (const lv of this.lvs.values()) if (lv.kind !== 'V') used += lv.sizeBytes;
    return used;
  }

  #lvm(argv: readonly string[], args: readonly string[]): string {
    const [command, ...rest] = args;
    const vgName = [...this.vgs.keys()][0] as string;
    const vg = this.vgs.get(vgName) as { sizeBytes: number };
    // LVM strips /dev/ from VG and LV names; the driver always passes /dev/<vg>[/<lv>].
    const last = (rest.at(-1) ?? '').replace(/^\/dev\//, '');
    switch (command) {
      case 'vgs': {
        if (!this.vgs.has(last))
          this.#fail(argv, 5, `Volume group "${last}" not found\n  Cannot process volume group ${last}`);
        return `  ${vgName}|${vg.sizeBytes}|${vg.sizeBytes - this.#vgUsed()}|${EXTENT}|${this.lvs.size}\n`;
      }
      case 'lvs': {
        if (!this.vgs.has(last))
          this.#fail(argv, 5, `Volume group "${last}" not found\n  Cannot process volume group ${last}`);
        return [...this.lvs.values()]
          .map((lv) => {
            const originOf = [...this.lvs.values()].some((o) => o.origin === lv.name && o.kind === 's');
            const type = lv.kind === '-' ? (originOf ? 'o' : '-') : lv.kind;
            const attr = `${type}wi-${lv.active ? 'a' : '-'}-${lv.kind === 'V' ? 'tz-' : '---'}-`;
            const data = lv.kind === 't' ? '12.50' : lv.kind === 'V' || lv.kind === 's' ? '0.00' : '';
            return `  ${lv.name}|${attr}|${lv.sizeBytes}|${lv.origin}|${lv.pool}|${data}|${lv.tags.join(',')}`;
          })
          .join('\n');
      }
      case 'lvm':
        return '  linear\n  striped\n  snapshot\n  thin-pool\n  thin\n';
      case 'lvcreate':
        return this.#lvcreate(argv, rest, vg.sizeBytes);
      case 'lvextend': {
        const lv = this.#lvRef(argv, last);
        const size = this.#size(this.#opt(rest, '--size'));
        if ([...this.lvs.values()].some((s) => s.origin === lv.name && s.kind === 's')) {
          this.#fail(
            argv,
            5,
            'Snapshot origin volumes can be resized only while inactive: try lvchange -an.',
          );
        }
        if (lv.kind !== 'V' && size - lv.sizeBytes > vg.sizeBytes - this.#vgUsed()) {
          this.#fail(
            argv,
            5,
            `Volume group "${vgName}" has insufficient free space (1 extents): 2 required.`,
          );
        }
        lv.sizeBytes = size;
        return '';
      }
      case 'lvremove': {
        const name = last.split('/')[1] as string;
        const lv = this.lvs.get(name);
        if (!lv) this.#fail(argv, 5, `Failed to find logical volume "${last}"`);
        // lvremove --force of a thick origin takes its snapshots with it, as real LVM does.
        for (const s of [...this.lvs.values()])
          if (s.origin === name && s.kind === 's') this.lvs.delete(s.name);
        this.lvs.delete(name);
        return '';
      }
      default:
        return this.#fail(argv, 127, `${command}: not found`);
    }
  }

  #size(text: string | undefined): number {
    return Number((text ?? '0g').replace(/g$/, '')) * GiB;
  }

  #lvRef(argv: readonly string[], ref: string): FakeLv {
    const lv = this.lvs.get(ref.replace(/^\/dev\//, '').split('/')[1] ?? '');
    if (!lv) this.#fail(argv, 5, `Failed to find logical volume "${ref}"`);
    return lv;
  }

  #lvcreate(argv: readonly string[], args: readonly string[], vgBytes: number): string {
    const name = this.#opt(args, '--name') as string;
    const last = (args.at(-1) as string).replace(/^\/dev\//, '');
    const vgName = [...this.vgs.keys()][0] as string;
    if (name.startsWith('snapshot')) {
      this.#fail(argv, 3, 'Names starting "snapshot" are reserved. Please choose a different LV name.');
    }
    if (this.lvs.has(name))
      this.#fail(argv, 5, `Logical Volume "${name}" already exists in volume group "${vgName}"`);
    const free = vgBytes - this.#vgUsed();
    const tags = this.#has(args, '--addtag') ? [this.#opt(args, '--addtag') as string] : [];
    const room = (bytes: number) => {
      if (bytes > free) {
        this.#fail(
          argv,
          5,
          `Volume group "${vgName}" has insufficient free space (${Math.floor(free / EXTENT)} extents): ${bytes / EXTENT} required.`,
        );
      }
    };
    let lv: FakeLv;
    if (this.#has(args, '--type')) {
      const percent = Number((this.#opt(args, '--extents') ?? '100%FREE').replace('%FREE', ''));
      const size = Math.floor((free * percent) / 100 / EXTENT) * EXTENT;
      lv = { name, sizeBytes: size, kind: 't', origin: '', pool: '', tags, active: true };
    } else if (args.includes('--thin')) {
      const pool = this.#lvRef(argv, last);
      lv = {
        name,
        sizeBytes: this.#size(this.#opt(args, '--virtualsize')),
        kind: 'V',
        origin: '',
        pool: pool.name,
        tags,
        active: true,
      };
    } else if (args.includes('--snapshot')) {
      const origin = this.#lvRef(argv, last);
      if (origin.kind === 'V') {
        lv = {
          name,
          sizeBytes: origin.sizeBytes,
          kind: 'V',
          origin: origin.name,
          pool: origin.pool,
          tags,
          active: this.#has(args, '--setactivationskip'),
        };
      } else {
        const size = this.#size(this.#opt(args, '--size'));
        room(size);
        lv = { name, sizeBytes: size, kind: 's', origin: origin.name, pool: '', tags, active: true };
      }
    } else {
      const size = this.#size(this.#opt(args, '--size'));
      room(size);
      lv = { name, sizeBytes: size, kind: '-', origin: '', pool: '', tags, active: true };
    }
    this.lvs.set(name, lv);
    return `  Logical volume "${name}" created.\n`;
  }

  #tgtadm(argv: readonly string[]): string {
    if (!this.tgtdRunning) {
      this.#fail(
        argv,
        107,
        'tgtadm: failed to send request hdr to tgt daemon, Transport endpoint is not connected',
      );
    }
    const mode = this.#opt(argv, '--mode');
    const op = this.#opt(argv, '--op');
    const tid = Number(this.#opt(argv, '--tid'));
    const target = this.targets.get(tid);
    const user = this.#opt(argv, '--user');
    const noTarget = () => this.#fail(argv, 22, "tgtadm: can't find the target");
    if (mode === 'target' && op === 'show') {
      return [...this.targets.values()]
        .sort((a, b) => a.tid - b.tid)
        .map((t) =>
          [
            `Target ${t.tid}: ${t.iqn}`,
            '    System information:',
            '        Driver: iscsi',
            '        State: ready',
            '    I_T nexus information:',
            '    LUN information:',
            '        LUN: 0',
            '            Type: controller',
            '            Backing store path: None',
            ...[...t.luns].flatMap(([lun, path]) => [
              `        LUN: ${lun}`,
              '            Type: disk',
              `            Backing store path: ${path}`,
            ]),
            '    Account information:',
            ...t.accounts.map((a) => `        ${a}`),
            '    ACL information:',
            ...t.acls.map((a) => `        ${a}`),
          ].join('\n'),
        )
        .join('\n')
        .concat(this.targets.size ? '\n' : '');
    }
    if (mode === 'target' && op === 'new') {
      const iqn = this.#opt(argv, '--targetname') as string;
      if (target || [...this.targets.values()].some((t) => t.iqn === iqn)) {
        this.#fail(argv, 22, 'tgtadm: this target already exists');
      }
      this.targets.set(tid, { tid, iqn, luns: new Map(), accounts: [], acls: [] });
      return '';
    }
    if (mode === 'target' && op === 'delete') {
      if (!target) return noTarget();
      for (const a of target.accounts) this.accounts.set(a, this.accounts.get(a) ?? '');
      this.targets.delete(tid);
      return '';
    }
    if (mode === 'target' && op === 'bind') {
      if (!target) return noTarget();
      if (target.acls.includes('ALL'))
        this.#fail(argv, 22, 'tgtadm: this access control rule already exists');
      target.acls.push('ALL');
      return '';
    }
    if (mode === 'logicalunit' && op === 'new') {
      if (!target) return noTarget();
      target.luns.set(Number(this.#opt(argv, '--lun')), this.#opt(argv, '--backing-store') as string);
      return '';
    }
    if (mode === 'account' && op === 'new') {
      if (this.accounts.has(user as string)) this.#fail(argv, 22, 'tgtadm: this account already exists');
      this.accounts.set(user as string, this.#opt(argv, '--password') as string);
      return '';
    }
    if (mode === 'account' && op === 'bind') {
      if (!target) return noTarget();
      target.accounts.push(user as string);
      return '';
    }
    if (mode === 'account' && op === 'delete') {
      if (!this.accounts.has(user as string)) this.#fail(argv, 22, "tgtadm: can't find the account");
      this.accounts.delete(user as string);
      return '';
    }
    return this.#fail(argv, 22, 'tgtadm: unknown operation');
  }
}
