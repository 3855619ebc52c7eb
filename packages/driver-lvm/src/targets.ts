import { DriverFailureError } from '@stratus/core';
import { parseTgtTargets, type TgtTarget } from './parse.js';
import { type CommandRunner, isCommandFailure } from './runner.js';

/** What one volume's export consists of. Every field was validated before it gets here. */
export interface ExportSpec {
  readonly iqn: string;
  readonly lvName: string;
  readonly device: string;
  readonly username: string;
  readonly secret: string;
}

/** An iSCSI target implementation (Cinder's target helpers). Every method is idempotent. */
export interface TargetHelper {
  /** The LUN initiators find the volume at. */
  readonly lun: number;
  /** Throw a DriverFailure saying what to start or install when the target cannot serve. */
  check(): Promise<void>;
  /** Create whatever of the export is missing: target, LUN, CHAP, access. */
  ensure(spec: ExportSpec): Promise<void>;
  exists(iqn: string): Promise<boolean>;
  /** Remove the target (and its CHAP account when `username` is known). Absent is fine. */
  remove(iqn: string, lvName: string, username: string | undefined): Promise<void>;
  /** Let `initiator` in (LIO keeps per-initiator ACLs; tgt lets everyone with the CHAP secret in). */
  allow(spec: ExportSpec, initiator: string | undefined): Promise<void>;
  /** Revoke `initiator`; absent is fine. */
  disallow(spec: ExportSpec, initiator: string | undefined): Promise<void>;
}

/** Runs `fn`s one after another: tid allocation and partial-state repair must not interleave. */
class Serial {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(fn, fn);
    this.#tail = next.catch(() => undefined);
    return next;
  }
}

function failedWith(e: unknown, pattern: RegExp): boolean {
  return isCommandFailure(e) && pattern.test(`${e.stderr}\n${e.stdout}`);
}

/**
 * tgt through `tgtadm`: one target per volume (`tid` = first free number), the LV as LUN 1 (tgt
 * keeps LUN 0 for its controller), an incoming CHAP account bound to the target, and the
 * `ALL` initiator-address ACL: the CHAP secret is the access control, as with Cinder's TgtAdm,
 * so the export survives a restart of the volume service without knowing its initiators.
 */
export class TgtadmTarget implements TargetHelper {
  readonly lun = 1;
  readonly #runner: CommandRunner;
  readonly #lld: 'iscsi' | 'iser';
  readonly #serial = new Serial();

  constructor(runner: CommandRunner, protocol: 'iscsi' | 'iser') {
    this.#runner = runner;
    this.#lld = protocol;
  }

  #argv(mode: 'target' | 'logicalunit' | 'account', op: string, ...rest: string[]): string[] {
    return ['tgtadm', '--lld', this.#lld, '--mode', mode, '--op', op, ...rest];
  }

  async #targets(): Promise<TgtTarget[]> {
    try {
      const { stdout } = await this.#runner.run(this.#argv('target', 'show'));
      return parseTgtTargets(stdout);
    } catch (e) {
      if (failedWith(e, /can't send the request|not connected|tgtd/i)) {
        throw new DriverFailureError(
          'tgtd is not running on this host: start it (systemctl start tgt) or set targetHelper to lioadm.',
          { cause: e, details: { reason: 'target_unavailable' } },
        );
      }
      throw e;
    }
  }

  async check(): Promise<void> {
    await this.#targets();
  }

  async exists(iqn: string): Promise<boolean> {
    return (await this.#targets()).some((t) => t.iqn === iqn);
  }

  ensure(spec: ExportSpec): Promise<void> {
    return this.#serial.run(async () => {
      let targets = await this.#targets();
      let target = targets.find((t) => t.iqn === spec.iqn);
      for (let attempt = 0; !target; attempt++) {
        const tid = Math.max(0, ...targets.map((t) => t.tid)) + 1;
        try {
          await this.#runner.run(this.#argv('target', 'new', '--tid', String(tid), '--targetname', spec.iqn));
          target = { tid, iqn: spec.iqn, luns: [], backingStores: [], accounts: [], acls: [] };
        } catch (e) {
          // Another tgtadm user took the tid (or created the same target) between show and new.
          if (attempt >= 2 || !failedWith(e, /already exists/)) throw e;
          targets = await this.#targets();
          target = targets.find((t) => t.iqn === spec.iqn);
        }
      }
      const tid = String(target.tid);
      if (!target.luns.includes(this.lun)) {
        await this.#runner.run(
          this.#argv(
            'logicalunit',
            'new',
            '--tid',
            tid,
            '--lun',
            String(this.lun),
            '--backing-store',
            spec.device,
          ),
        );
      }
      if (!target.accounts.includes(spec.username)) {
        try {
          // The secret must stay out of logs and errors: argv index 10 is masked.
          await this.#runner.run(
            this.#argv('account', 'new', '--user', spec.username, '--password', spec.secret),
            { redact: [10] },
          );
        } catch (e) {
          if (!failedWith(e, /already exists/)) throw e;
        }
        await this.#runner.run(this.#argv('account', 'bind', '--tid', tid, '--user', spec.username));
      }
      if (!target.acls.includes('ALL')) {
        await this.#runner.run(this.#argv('target', 'bind', '--tid', tid, '--initiator-address', 'ALL'));
      }
    });
  }

  remove(iqn: string, _lvName: string, username: string | undefined): Promise<void> {
    return this.#serial.run(async () => {
      const target = (await this.#targets()).find((t) => t.iqn === iqn);
      if (target) {
        try {
          await this.#runner.run(this.#argv('target', 'delete', '--force', '--tid', String(target.tid)));
        } catch (e) {
          if (!failedWith(e, /can't find the target/)) throw e;
        }
      }
      const account = username ?? target?.accounts[0];
      if (account === undefined) return;
      try {
        await this.#runner.run(this.#argv('account', 'delete', '--user', account));
      } catch (e) {
        if (!failedWith(e, /can't find the account/)) throw e;
      }
    });
  }

  async allow(): Promise<void> {}

  async disallow(): Promise<void> {}
}

/**
 * LIO through `targetcli` (the rtslib operations Cinder's `cinder-rtstool` performs): a block
 * backstore per LV, a target with its LV as LUN 0, authentication on, and one node ACL with the
 * volume's CHAP credentials per connecting initiator. The configuration is saved after each
 * change so the target service restores it at boot.
 */
export class LioadmTarget implements TargetHelper {
  readonly lun = 0;
  readonly #runner: CommandRunner;
  readonly #serial = new Serial();

  constructor(runner: CommandRunner) {
    this.#runner = runner;
  }

  async #cli(args: string[], tolerate?: RegExp, redact?: number[]): Promise<void> {
    try {
      await this.#runner.run(['targetcli', ...args], redact ? { redact } : {});
    } catch (e) {
      if (!tolerate || !failedWith(e, tolerate)) throw e;
    }
  }

  async check(): Promise<void> {
    try {
      await this.#runner.run(['targetcli', '/iscsi', 'ls']);
    } catch (e) {
      throw new DriverFailureError(
        'targetcli cannot reach LIO on this host: install targetcli-fb and load target_core_mod/iscsi_target_mod, or set targetHelper to tgtadm.',
        { cause: e, details: { reason: 'target_unavailable' } },
      );
    }
  }

  async exists(iqn: string): Promise<boolean> {
    try {
      await this.#runner.run(['targetcli', `/iscsi/${iqn}`, 'ls']);
      return true;
    } catch (e) {
      if (failedWith(e, /No such path/i)) return false;
      throw e;
    }
  }

  ensure(spec: ExportSpec): Promise<void> {
    return this.#serial.run(async () => {
      const exists = /already exists|exists/i;
      await this.#cli(['/backstores/block', 'create', `name=${spec.lvName}`, `dev=${spec.device}`], exists);
      await this.#cli(['/iscsi', 'create', spec.iqn], exists);
      await this.#cli(
        [`/iscsi/${spec.iqn}/tpg1/luns`, 'create', `/backstores/block/${spec.lvName}`],
        /already|exists/i,
      );
      await this.#cli([
        `/iscsi/${spec.iqn}/tpg1`,
        'set',
        'attribute',
        'authentication=1',
        'generate_node_acls=0',
      ]);
      await this.#cli(['saveconfig']);
    });
  }

  remove(iqn: string, lvName: string): Promise<void> {
    return this.#serial.run(async () => {
      await this.#cli(['/iscsi', 'delete', iqn], /No such|does not exist|not found/i);
      await this.#cli(['/backstores/block', 'delete', lvName], /No such|does not exist|not found/i);
      await this.#cli(['saveconfig']);
    });
  }

  allow(spec: ExportSpec, initiator: string | undefined): Promise<void> {
    if (initiator === undefined) {
      return Promise.reject(
        new DriverFailureError(
          'LIO exports need the initiator name of the connecting host: pass connector.initiator.',
          { details: { reason: 'initiator_required' } },
        ),
      );
    }
    return this.#serial.run(async () => {
      await this.#cli([`/iscsi/${spec.iqn}/tpg1/acls`, 'create', initiator], /already|exists/i);
      // argv: targetcli <path> set auth userid=U password=P; index 5 holds the secret.
      await this.#cli(
        [
          `/iscsi/${spec.iqn}/tpg1/acls/${initiator}`,
          'set',
          'auth',
          `userid=${spec.username}`,
          `password=${spec.secret}`,
        ],
        undefined,
        [5],
      );
      await this.#cli(['saveconfig']);
    });
  }

  disallow(spec: ExportSpec, initiator: string | undefined): Promise<void> {
    if (initiator === undefined) return Promise.resolve();
    return this.#serial.run(async () => {
      await this.#cli(
        [`/iscsi/${spec.iqn}/tpg1/acls`, 'delete', initiator],
        /No such|does not exist|not found/i,
      );
      await this.#cli(['saveconfig']);
    });
  }
}

/** No target at all: exports are remembered in memory only (development and tests). */
export class FakeTarget implements TargetHelper {
  readonly lun = 1;
  /** IQN → export and the initiators let in. */
  readonly exports = new Map<string, { spec: ExportSpec; initiators: Set<string> }>();

  async check(): Promise<void> {}

  async ensure(spec: ExportSpec): Promise<void> {
    if (!this.exports.has(spec.iqn)) this.exports.set(spec.iqn, { spec, initiators: new Set() });
  }

  async exists(iqn: string): Promise<boolean> {
    return this.exports.has(iqn);
  }

  async remove(iqn: string): Promise<void> {
    this.exports.delete(iqn);
  }

  async allow(spec: ExportSpec, initiator: string | undefined): Promise<void> {
    if (initiator !== undefined) this.exports.get(spec.iqn)?.initiators.add(initiator);
  }

  async disallow(spec: ExportSpec, initiator: string | undefined): Promise<void> {
    if (initiator !== undefined) this.exports.get(spec.iqn)?.initiators.delete(initiator);
  }
}
