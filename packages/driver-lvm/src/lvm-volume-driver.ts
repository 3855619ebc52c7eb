import { randomBytes } from 'node:crypto';
import {
  type BackendVolume,
  ConflictError,
  type ConnectionInfo,
  Connector,
  DriverFailureError,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
  type PluginEnv,
  SnapshotSpec,
  schemaIssues,
  VolumeDriver,
  type VolumeModelUpdate,
  VolumeSpec,
  type VolumeStats,
} from '@stratus/core';
import type { TSchema } from 'typebox';
import { LVM_COMMANDS, lvmArgv, reportArgv, SNAPSHOT_TAG } from './commands.js';
import type { LvmDriverConfig } from './config.js';
import {
  checkSize,
  checkTargetIqn,
  contractNameOf,
  devicePath,
  INITIATOR_NAME,
  lvNameOf,
  mapperName,
} from './names.js';
import { type LvReport, parseLvs, parseVgs, type VgReport } from './parse.js';
import { type CommandExecutor, CommandRunner, isCommandFailure, type Sleep } from './runner.js';
import { type ExportSpec, FakeTarget, LioadmTarget, type TargetHelper, TgtadmTarget } from './targets.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const DRIVER_VERSION = '1.0.0';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const CHAP_USER = /^[A-Za-z0-9]{8,32}$/;
const CHAP_SECRET = /^[A-Za-z0-9]{12,32}$/;
/** Retries of `vgs`/`lvs` after a segfault or timeout. */
const REPORT_RETRIES = 2;

/** What the driver needs from core's PluginEnv; `executor` may be a stub with `run` only. */
export type LvmDriverEnv = Omit<PluginEnv, 'executor'> & { readonly executor: CommandExecutor };

/** Test seams: time and randomness. */
export interface LvmDriverInternals {
  readonly sleep?: Sleep;
  readonly randomBytes?: (size: number) => Uint8Array;
}

/** How the driver provisions: resolved from `lvmType` (and, for `auto`, from the host). */
export type LvmMode = 'default' | 'thin';

function invalidInput(message: string, path: string, why: string): InvalidInputError {
  return new InvalidInputError(message, [{ path, message: why }]);
}

function checkShape(schema: TSchema, value: unknown, what: string, at: string): void {
  const issues = schemaIssues(schema, value);
  if (issues.length) {
    throw new InvalidInputError(
      `Invalid ${what}`,
      issues.map((i) => ({ path: `${at}${i.path}`, message: i.message })),
    );
  }
}

function stderrMatches(e: unknown, pattern: RegExp): boolean {
  return isCommandFailure(e) && pattern.test(e.stderr);
}

function isSnapshot(lv: LvReport): boolean {
  return lv.tags.includes(SNAPSHOT_TAG) || lv.attr[0] === 's' || lv.attr[0] === 'S';
}

// lv_attr[0]: t = thin pool, p = pvmove, v = virtual, e/i/l/I/L = LVM's own metadata or images.
function isVolume(lv: LvReport): boolean {
  return !isSnapshot(lv) && !'tpveilIL'.includes(lv.attr[0] ?? '');
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/**
 * The LVM2 volume driver: each volume is a logical volume in `volumeGroup` (thick, or thin in a
 * thin pool), exported over iSCSI by a target helper (tgt or LIO). Every command goes through
 * core's Executor with {@link LVM_COMMANDS}, as `env LC_ALL=C …` for LVM, at most
 * `maxConcurrentCommands` at once, each with a time limit.
 */
export class LvmVolumeDriver extends VolumeDriver {
  readonly config: Readonly<LvmDriverConfig>;
  /** Thin pool LV name (`thinPoolName`, default `<volumeGroup>-pool`). */
  readonly thinPool: string;
  readonly #env: LvmDriverEnv;
  readonly #runner: CommandRunner;
  readonly #target: TargetHelper;
  readonly #sleep: Sleep;
  readonly #random: (size: number) => Uint8Array;
  #mode: LvmMode | undefined;
  #stats: VolumeStats | undefined;

  constructor(config: LvmDriverConfig, env: LvmDriverEnv, internals: LvmDriverInternals = {}) {
    super();
    this.config = Object.freeze({ ...config });
    this.thinPool = config.thinPoolName ?? `${config.volumeGroup}-pool`;
    this.#env = env;
    this.#sleep = internals.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#random = internals.randomBytes ?? randomBytes;
    this.#runner = new CommandRunner({
      executor: env.executor,
      logger: env.logger,
      maxConcurrent: config.maxConcurrentCommands,
      timeoutMs: config.commandTimeoutMs,
      sleep: this.#sleep,
    });
    this.#target =
      config.targetHelper === 'tgtadm'
        ? new TgtadmTarget(this.#runner, config.iscsiProtocol)
        : config.targetHelper === 'lioadm'
          ? new LioadmTarget(this.#runner)
          : new FakeTarget();
    if (config.lvmType === 'default') this.#mode = 'default';
    if (config.lvmType === 'thin') this.#mode = 'thin';
  }

  /** The command filters this driver runs under (the manifest's `commands`). */
  static readonly commands = LVM_COMMANDS;

  /** `default` or `thin`; for `lvmType: auto`, known after `setup()` (or the first call). */
  get mode(): LvmMode | undefined {
    return this.#mode;
  }

  /** Resolve `auto`, and create the thin pool at `thinPoolShare` of the VG's free space when missing. */
  override async setup(): Promise<void> {
    // A missing VG shows here as lvs failing (thin, auto) or in checkForSetupError (default).
    const mode = await this.#resolveMode();
    if (mode !== 'thin') return;
    const lvs = await this.#lvs();
    if (lvs.some((lv) => lv.name === this.thinPool)) return;
    const percent = Math.max(1, Math.min(100, Math.floor(this.config.thinPoolShare * 100)));
    this.#env.logger.info(
      { volumeGroup: this.config.volumeGroup, thinPool: this.thinPool, percentOfFree: percent },
      'creating thin pool',
    );
    try {
      await this.#runner.run(
        lvmArgv('lvcreate', [
          '--yes',
          '--type=thin-pool',
          `--extents=${percent}%FREE`,
          `--name=${this.thinPool}`,
          `/dev/${this.config.volumeGroup}`,
        ]),
      );
    } catch (e) {
      // Two services starting at once: the other one made it.
      if (!stderrMatches(e, /already exists/))
        throw this.#lvmFailure(e, `creating thin pool ${this.thinPool}`);
    }
  }

  /** Volume group present, thin pool present when thin, dd and the target helper usable. */
  override async checkForSetupError(): Promise<void> {
    const mode = await this.#resolveMode();
    // Thin asks lvs, which fails the same way when the VG is missing; default asks vgs.
    if (mode === 'default') await this.#vg();
    if (mode === 'thin') {
      const pool = (await this.#lvs()).find((lv) => lv.name === this.thinPool);
      if (pool?.attr[0] !== 't') {
        throw new DriverFailureError(
          `Thin pool ${this.config.volumeGroup}/${this.thinPool} does not exist${pool ? ' (an LV of that name is not a thin pool)' : ''}: run setup() (the service does at start), create it with lvcreate --type thin-pool, or set lvmType to default.`,
          { details: { reason: 'thin_pool_missing', thinPool: this.thinPool } },
        );
      }
    }
    if (mode === 'default') {
      try {
        await this.#runner.run(['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=1M', 'count=0']);
      } catch (e) {
        throw new DriverFailureError(
          'dd cannot run on this host (needed to copy snapshots and wipe thick volumes): install coreutils or fix the root helper.',
          { cause: e, details: { reason: 'command_missing', command: 'dd' } },
        );
      }
    }
    await this.#target.check();
  }

  async createVolume(volume: VolumeSpec): Promise<VolumeModelUpdate | undefined> {
    checkShape(VolumeSpec, volume, 'volume', '/volume');
    const lv = this.#lvName(volume.name, '/volume/name');
    checkSize(volume.sizeGiB, '/volume/sizeGiB');
    const mode = await this.#resolveMode();
    if (mode === 'thin') await this.#checkThinRoom(volume.sizeGiB, `volume ${volume.name}`);
    const args =
      mode === 'thin'
        ? ['--yes', `--name=${lv}`, '--thin', `--virtualsize=${volume.sizeGiB}g`, this.#ref(this.thinPool)]
        : ['--yes', `--name=${lv}`, `--size=${volume.sizeGiB}g`, `/dev/${this.config.volumeGroup}`];
    try {
      await this.#runner.run(lvmArgv('lvcreate', args));
    } catch (e) {
      if (stderrMatches(e, /already exists/)) return this.#sameVolume(lv, volume);
      throw this.#lvmFailure(e, `creating volume ${volume.name}`, volume.sizeGiB);
    } finally {
      this.#stats = undefined;
    }
    this.#env.logger.info({ volume: volume.name, sizeGiB: volume.sizeGiB, mode }, 'created volume');
    return undefined;
  }

  async createVolumeFromSnapshot(
    volume: VolumeSpec,
    snapshot: SnapshotSpec,
  ): Promise<VolumeModelUpdate | undefined> {
    checkShape(VolumeSpec, volume, 'volume', '/volume');
    checkShape(SnapshotSpec, snapshot, 'snapshot', '/snapshot');
    const lv = this.#lvName(volume.name, '/volume/name');
    const snapLv = this.#lvName(snapshot.name, '/snapshot/name');
    checkSize(volume.sizeGiB, '/volume/sizeGiB');
    const lvs = await this.#lvs();
    const source = lvs.find((l) => l.name === snapLv && isSnapshot(l));
    if (!source) throw new NotFoundError('snapshot', snapshot.name);
    if (volume.sizeGiB < snapshot.volumeSizeGiB) {
      throw invalidInput(
        'A volume made from a snapshot must be at least as large as the snapshot',
        '/volume/sizeGiB',
        `${volume.sizeGiB} GiB is smaller than snapshot ${snapshot.name}'s ${snapshot.volumeSizeGiB} GiB`,
      );
    }
    if (lvs.some((l) => l.name === lv)) return this.#sameVolume(lv, volume, lvs);
    this.#stats = undefined;
    if (source.pool !== '') {
      // Thin: a writable thin snapshot of the snapshot, activated like any volume, then grown.
      await this.#checkThinRoom(volume.sizeGiB, `volume ${volume.name}`);
      await this.#runner
        .run(
          lvmArgv('lvcreate', [
            '--yes',
            `--name=${lv}`,
            '--snapshot',
            '--setactivationskip=n',
            this.#ref(snapLv),
          ]),
        )
        .catch((e) => {
          throw this.#lvmFailure(e, `creating volume ${volume.name} from snapshot ${snapshot.name}`);
        });
      if (volume.sizeGiB * GiB > source.sizeBytes) {
        await this.#undoOnFailure(lv, () =>
          this.#runner.run(lvmArgv('lvextend', [`--size=${volume.sizeGiB}g`, this.#ref(lv)])),
        );
      }
    } else {
      await this.createVolume(volume);
      await this.#undoOnFailure(lv, () =>
        this.#dd(
          devicePath(this.config.volumeGroup, snapLv),
          devicePath(this.config.volumeGroup, lv),
          snapshot.volumeSizeGiB * 1024,
        ),
      );
    }
    this.#env.logger.info({ volume: volume.name, snapshot: snapshot.name }, 'created volume from snapshot');
    return undefined;
  }

  async deleteVolume(volume: VolumeSpec): Promise<void> {
    const lv = this.#lvName(volume?.name, '/volume/name');
    const lvs = await this.#lvs();
    const target = lvs.find((l) => l.name === lv);
    if (!target || !isVolume(target)) return;
    const snapshots = lvs.filter((l) => l.origin === lv && isSnapshot(l)).map((l) => contractNameOf(l.name));
    if (snapshots.length) {
      throw new InvalidStateError(
        `Volume ${volume.name} has ${snapshots.length} snapshot(s) (${snapshots.join(', ')}); delete them before the volume.`,
        { details: { reason: 'has_snapshots', volume: volume.name, snapshots } },
      );
    }
    this.#stats = undefined;
    if (target.pool === '') await this.#clear(devicePath(this.config.volumeGroup, lv), target.sizeBytes);
    await this.#remove(lv);
    this.#env.logger.info({ volume: volume.name }, 'deleted volume');
  }

  async createSnapshot(snapshot: SnapshotSpec): Promise<VolumeModelUpdate | undefined> {
    checkShape(SnapshotSpec, snapshot, 'snapshot', '/snapshot');
    const snapLv = this.#lvName(snapshot.name, '/snapshot/name');
    const volLv = this.#lvName(snapshot.volumeName, '/snapshot/volumeName');
    const lvs = await this.#lvs();
    const origin = lvs.find((l) => l.name === volLv && isVolume(l));
    if (!origin) throw new NotFoundError('volume', snapshot.volumeName);
    const existing = lvs.find((l) => l.name === snapLv);
    if (existing) {
      if (isSnapshot(existing) && existing.origin === volLv) return undefined;
      throw new ConflictError(
        `The name ${snapshot.name} is already used by another logical volume in ${this.config.volumeGroup}; choose another snapshot name.`,
      );
    }
    const thin = origin.pool !== '';
    // A thick snapshot reserves its origin's whole size, so it can never overflow and go invalid.
    const size = thin ? [] : [`--size=${Math.ceil(origin.sizeBytes / GiB)}g`];
    this.#stats = undefined;
    try {
      await this.#runner.run(
        lvmArgv('lvcreate', [
          '--yes',
          `--name=${snapLv}`,
          '--snapshot',
          ...size,
          `--addtag=${SNAPSHOT_TAG}`,
          this.#ref(volLv),
        ]),
      );
    } catch (e) {
      throw this.#lvmFailure(e, `creating snapshot ${snapshot.name}`, Math.ceil(origin.sizeBytes / GiB));
    }
    this.#env.logger.info({ snapshot: snapshot.name, volume: snapshot.volumeName, thin }, 'created snapshot');
    return undefined;
  }

  async deleteSnapshot(snapshot: SnapshotSpec): Promise<void> {
    const snapLv = this.#lvName(snapshot?.name, '/snapshot/name');
    const target = (await this.#lvs()).find((l) => l.name === snapLv);
    if (!target || !isSnapshot(target)) return;
    this.#stats = undefined;
    if (target.pool === '') {
      // A thick snapshot's exception store holds the origin's old blocks: wipe it, not the
      // snapshot view (writing there would only copy more blocks into it).
      await this.#clear(`/dev/mapper/${mapperName(this.config.volumeGroup, snapLv)}-cow`, target.sizeBytes);
    }
    await this.#remove(snapLv);
    this.#env.logger.info({ snapshot: snapshot.name }, 'deleted snapshot');
  }

  async extendVolume(volume: VolumeSpec, newSizeGiB: number): Promise<void> {
    const lv = this.#lvName(volume?.name, '/volume/name');
    checkSize(newSizeGiB, '/newSizeGiB');
    const current = (await this.#lvs()).find((l) => l.name === lv && isVolume(l));
    if (!current) throw new NotFoundError('volume', volume.name);
    if (newSizeGiB * GiB <= current.sizeBytes) {
      throw invalidInput(
        'A volume can only grow',
        '/newSizeGiB',
        `${newSizeGiB} GiB is not larger than the current ${round2(current.sizeBytes / GiB)} GiB of ${volume.name}`,
      );
    }
    const growth = Math.ceil(newSizeGiB - current.sizeBytes / GiB);
    if (current.pool !== '') await this.#checkThinRoom(growth, `extending ${volume.name}`);
    this.#stats = undefined;
    try {
      await this.#runner.run(lvmArgv('lvextend', [`--size=${newSizeGiB}g`, this.#ref(lv)]));
    } catch (e) {
      if (stderrMatches(e, /resized only while inactive/)) {
        throw new InvalidStateError(
          `Volume ${volume.name} has thick snapshots, and LVM cannot grow an active snapshot origin; delete its snapshots first.`,
          { cause: e, details: { reason: 'has_snapshots', volume: volume.name } },
        );
      }
      throw this.#lvmFailure(e, `extending volume ${volume.name}`, growth);
    }
    this.#env.logger.info({ volume: volume.name, newSizeGiB }, 'extended volume');
  }

  async createExport(volume: VolumeSpec, connector?: Connector): Promise<VolumeModelUpdate | undefined> {
    const lv = this.#lvName(volume?.name, '/volume/name');
    if (connector !== undefined) this.#checkConnector(connector);
    await this.#requireVolume(lv, volume.name);
    const stored = this.#stored(volume, lv);
    const spec = stored ?? {
      iqn: this.#iqn(lv),
      lvName: lv,
      device: devicePath(this.config.volumeGroup, lv),
      username: this.#randomString(20),
      secret: this.#randomString(16),
    };
    await this.#target.ensure(spec);
    this.#env.logger.info({ volume: volume.name, targetIqn: spec.iqn }, 'exported volume');
    return this.#modelUpdate(spec);
  }

  async ensureExport(volume: VolumeSpec): Promise<void> {
    const lv = this.#lvName(volume?.name, '/volume/name');
    await this.#requireVolume(lv, volume.name);
    const stored = this.#stored(volume, lv);
    // Nothing stored: the volume was never exported, so there is nothing to re-create.
    if (!stored) return;
    await this.#target.ensure(stored);
  }

  async removeExport(volume: VolumeSpec): Promise<void> {
    const lv = this.#lvName(volume?.name, '/volume/name');
    let stored: ExportSpec | undefined;
    try {
      stored = this.#stored(volume, lv);
    } catch {
      // Unparseable stored fields: remove what this driver would have created.
    }
    await this.#target.remove(stored?.iqn ?? this.#iqn(lv), lv, stored?.username);
    this.#env.logger.info({ volume: volume.name }, 'removed export');
  }

  async initializeConnection(volume: VolumeSpec, connector: Connector): Promise<ConnectionInfo> {
    const lv = this.#lvName(volume?.name, '/volume/name');
    this.#checkConnector(connector);
    await this.#requireVolume(lv, volume.name);
    const spec = this.#stored(volume, lv);
    if (!spec) {
      throw new InvalidStateError(
        `Volume ${volume.name} is not exported; call createExport (and store its provider fields) before initializeConnection.`,
        { details: { reason: 'not_exported', volume: volume.name } },
      );
    }
    // After a reboot of the storage host the target is gone until ensureExport; heal it here too.
    if (!(await this.#target.exists(spec.iqn))) await this.#target.ensure(spec);
    await this.#target.allow(spec, connector.initiator);
    return {
      driverVolumeType: this.config.iscsiProtocol,
      data: {
        targetPortal: this.config.targetPortal,
        targetIqn: spec.iqn,
        targetLun: this.#target.lun,
        volumeId: volume.id,
        authMethod: 'CHAP',
        authUsername: spec.username,
        authPassword: spec.secret,
      },
    };
  }

  async terminateConnection(volume: VolumeSpec, connector: Connector): Promise<void> {
    const lv = this.#lvName(volume?.name, '/volume/name');
    this.#checkConnector(connector);
    let spec: ExportSpec | undefined;
    try {
      spec = this.#stored(volume, lv);
    } catch {
      return;
    }
    if (spec) await this.#target.disallow(spec, connector.initiator);
  }

  async getVolumeStats(refresh = false): Promise<VolumeStats> {
    if (refresh || !this.#stats) this.#stats = await this.#computeStats();
    return { ...this.#stats };
  }

  async listVolumes(): Promise<BackendVolume[]> {
    return (await this.#lvs())
      .filter(isVolume)
      .map((lv) => ({ name: contractNameOf(lv.name), sizeGiB: lv.sizeBytes / GiB }));
  }

  // ---------------------------------------------------------------- internals

  #lvName(name: unknown, path: string): string {
    return lvNameOf(name, path, this.config.volumeGroup);
  }

  /** How LVM commands name an LV: `/dev/<vg>/<lv>` (LVM strips `/dev/`; see LVM_COMMANDS). */
  #ref(lv: string): string {
    return devicePath(this.config.volumeGroup, lv);
  }

  #iqn(lv: string): string {
    const iqn = `${this.config.targetPrefix}${lv}`;
    checkTargetIqn(iqn, '/volume/name');
    return iqn;
  }

  #checkConnector(connector: Connector): void {
    checkShape(Connector, connector, 'connector', '/connector');
    if (connector.initiator !== undefined && !INITIATOR_NAME.test(connector.initiator)) {
      throw invalidInput(
        'Invalid connector',
        '/connector/initiator',
        `${JSON.stringify(connector.initiator)} is not an iqn./eui./naa. initiator name`,
      );
    }
  }

  async #resolveMode(): Promise<LvmMode> {
    if (this.#mode) return this.#mode;
    const lvs = await this.#lvs();
    let mode: LvmMode = 'default';
    if (lvs.some((lv) => lv.name === this.thinPool && lv.attr[0] === 't')) mode = 'thin';
    else {
      const { stdout } = await this.#runner.run(lvmArgv('lvm', ['segtypes']));
      if (stdout.split('\n').some((l) => l.trim() === 'thin-pool')) mode = 'thin';
    }
    this.#env.logger.info({ lvmType: 'auto', mode }, 'resolved LVM provisioning mode');
    this.#mode = mode;
    return mode;
  }

  async #vg(): Promise<VgReport> {
    const vg = this.config.volumeGroup;
    let stdout: string;
    try {
      ({ stdout } = await this.#runner.report(
        reportArgv('vgs', vg),
        REPORT_RETRIES,
        this.config.retryDelayMs,
      ));
    } catch (e) {
      throw this.#lvmFailure(e, `reading volume group ${vg}`);
    }
    const found = parseVgs(stdout).find((r) => r.name === vg);
    if (!found) {
      throw new DriverFailureError(
        `vgs printed no line for volume group ${vg}: create it (vgcreate ${vg} <device>) or fix volumeGroup.`,
        { details: { reason: 'volume_group_missing', volumeGroup: vg } },
      );
    }
    return found;
  }

  async #lvs(): Promise<LvReport[]> {
    try {
      const { stdout } = await this.#runner.report(
        reportArgv('lvs', this.config.volumeGroup),
        REPORT_RETRIES,
        this.config.retryDelayMs,
      );
      return parseLvs(stdout);
    } catch (e) {
      throw this.#lvmFailure(e, `listing logical volumes of ${this.config.volumeGroup}`);
    }
  }

  async #requireVolume(lv: string, name: string): Promise<LvReport> {
    const found = (await this.#lvs()).find((l) => l.name === lv && isVolume(l));
    if (!found) throw new NotFoundError('volume', name);
    return found;
  }

  /** An existing LV named like `volume`: the same size is an idempotent retry, another is a conflict. */
  async #sameVolume(lv: string, volume: VolumeSpec, known?: LvReport[]): Promise<undefined> {
    const existing = (known ?? (await this.#lvs())).find((l) => l.name === lv);
    if (existing && isVolume(existing) && existing.sizeBytes === volume.sizeGiB * GiB) return undefined;
    const what =
      existing && isVolume(existing) ? `a volume of ${round2(existing.sizeBytes / GiB)} GiB` : 'a snapshot';
    throw new ConflictError(
      `Logical volume ${lv} already exists in ${this.config.volumeGroup} as ${what}, not a ${volume.sizeGiB} GiB volume; delete it or use extendVolume.`,
    );
  }

  /** Thin: refuse what would push provisioned space past pool size × maxOverSubscriptionRatio. */
  async #checkThinRoom(sizeGiB: number, what: string): Promise<void> {
    const stats = await this.#computeStats();
    const room = stats.totalCapacityGiB * this.config.maxOverSubscriptionRatio - stats.provisionedCapacityGiB;
    if (sizeGiB > room) {
      throw new DriverFailureError(
        `Insufficient provisionable space in thin pool ${this.#ref(this.thinPool)} for ${what}: ${sizeGiB} GiB requested, ${round2(room)} GiB left at over-subscription ratio ${this.config.maxOverSubscriptionRatio}. Delete volumes, grow the pool, or raise maxOverSubscriptionRatio.`,
        {
          details: { reason: 'insufficient_capacity', requestedGiB: sizeGiB, provisionableGiB: round2(room) },
        },
      );
    }
  }

  async #computeStats(): Promise<VolumeStats> {
    const mode = await this.#resolveMode();
    const lvs = await this.#lvs();
    const base = {
      backendName: this.config.backendName,
      vendorName: 'Open Source',
      driverVersion: DRIVER_VERSION,
      storageProtocol: this.config.iscsiProtocol === 'iser' ? 'iSER' : 'iSCSI',
    };
    if (mode === 'thin') {
      const pool = lvs.find((l) => l.name === this.thinPool);
      if (!pool) {
        throw new DriverFailureError(
          `Thin pool ${this.#ref(this.thinPool)} does not exist: run setup() or create it with lvcreate --type thin-pool.`,
          { details: { reason: 'thin_pool_missing', thinPool: this.thinPool } },
        );
      }
      const total = pool.sizeBytes / GiB;
      const used = (total * (pool.dataPercent ?? 0)) / 100;
      const provisioned = lvs.filter((l) => l.pool === this.thinPool).reduce((s, l) => s + l.sizeBytes, 0);
      return {
        ...base,
        totalCapacityGiB: round2(total),
        freeCapacityGiB: Math.max(0, round2(total - used)),
        provisionedCapacityGiB: round2(provisioned / GiB),
        thinProvisioning: true,
        maxOverSubscriptionRatio: this.config.maxOverSubscriptionRatio,
      };
    }
    const vg = await this.#vg();
    const provisioned = lvs.reduce((s, l) => s + l.sizeBytes, 0);
    return {
      ...base,
      totalCapacityGiB: round2(vg.sizeBytes / GiB),
      freeCapacityGiB: round2(vg.freeBytes / GiB),
      provisionedCapacityGiB: round2(provisioned / GiB),
      thinProvisioning: false,
    };
  }

  /** Wipe a thick device per `volumeClear`, at most `volumeClearSizeMiB` (0: all) of its `sizeBytes`. */
  async #clear(device: string, sizeBytes: number): Promise<void> {
    if (this.config.volumeClear === 'none') return;
    const whole = Math.ceil(sizeBytes / MiB);
    const limit = this.config.volumeClearSizeMiB;
    const count = limit > 0 ? Math.min(limit, whole) : whole;
    await this.#runner.run(
      ['dd', 'if=/dev/zero', `of=${device}`, 'bs=1M', `count=${count}`, 'oflag=direct'],
      { unpooled: true, timeoutMs: this.#copyTimeout(count) },
    );
  }

  async #dd(from: string, to: string, mib: number): Promise<void> {
    await this.#runner.run(
      ['dd', `if=${from}`, `of=${to}`, 'bs=1M', `count=${mib}`, 'iflag=direct', 'oflag=direct'],
      { unpooled: true, timeoutMs: this.#copyTimeout(mib) },
    );
  }

  #copyTimeout(mib: number): number {
    return this.config.commandTimeoutMs * Math.max(1, Math.ceil(mib / 1024));
  }

  /** Run `step`; when it fails, remove the half-made LV `lv` (best effort) and rethrow. */
  async #undoOnFailure(lv: string, step: () => Promise<unknown>): Promise<void> {
    try {
      await step();
    } catch (e) {
      await this.#remove(lv).catch((undo) =>
        this.#env.logger.error({ lv, err: undo }, 'could not remove a half-made volume; remove it by hand'),
      );
      throw this.#lvmFailure(e, `preparing ${lv}`);
    }
  }

  /** `lvremove --force`, retried with backoff and `udevadm settle` while the device is busy. */
  async #remove(lv: string): Promise<void> {
    try {
      await this.#runner.retrying(lvmArgv('lvremove', ['--force', this.#ref(lv)]), {
        retries: this.config.lvremoveRetries,
        delayMs: this.config.retryDelayMs,
        retryIf: (e) => /in use|busy|open logical volume/i.test(e.stderr),
        between: () => this.#settle(),
      });
    } catch (e) {
      // A retry can find the LV already gone (the busy attempt did remove it): that is success.
      if (stderrMatches(e, /Failed to find logical volume/)) return;
      throw this.#lvmFailure(e, `removing ${this.#ref(lv)}`);
    }
  }

  /** Let udev finish with the device, where udev exists; any failure is only logged. */
  async #settle(): Promise<void> {
    try {
      await this.#runner.run(['udevadm', 'settle']);
    } catch (e) {
      this.#env.logger.debug({ err: e }, 'udevadm settle failed or is not installed; going on');
    }
  }

  /** A typed error for an LVM failure: missing VG or command and full VG are told apart. */
  #lvmFailure(e: unknown, what: string, requestedGiB?: number): unknown {
    if (!isCommandFailure(e)) return e;
    const vg = this.config.volumeGroup;
    if (/Volume group "[^"]*" not found/.test(e.stderr)) {
      return new DriverFailureError(
        `Volume group ${vg} does not exist on ${this.#env.host} (while ${what}): create it (vgcreate ${vg} <device>) or fix volumeGroup.`,
        { cause: e, details: { reason: 'volume_group_missing', volumeGroup: vg } },
      );
    }
    if (/insufficient free space|insufficient suitable allocatable extents/i.test(e.stderr)) {
      return new DriverFailureError(
        `Insufficient free space in volume group ${vg} for ${what}${requestedGiB ? ` (${requestedGiB} GiB)` : ''}: delete volumes or snapshots, or add a physical volume (vgextend).`,
        {
          cause: e,
          details: { reason: 'insufficient_capacity', ...(requestedGiB ? { requestedGiB } : {}) },
        },
      );
    }
    if (e.exitCode === 127) {
      return new DriverFailureError(
        `A command is missing on ${this.#env.host} (while ${what}): install lvm2 (and thin-provisioning-tools for thin), or fix the root helper. ${e.message}`,
        { cause: e, details: { reason: 'command_missing', argv: e.argv } },
      );
    }
    return e;
  }

  /** The export stored in the volume's provider fields, or undefined when there is none. */
  #stored(volume: VolumeSpec, lv: string): ExportSpec | undefined {
    const { providerLocation: location, providerAuth: auth } = volume;
    if (!location && !auth) return undefined;
    const loc = /^\S+,[0-9]+ (\S+) [0-9]+$/.exec(location ?? '');
    const chap = /^CHAP (\S+) (\S+)$/.exec(auth ?? '');
    const fields = [
      ...(loc && checkedIqn(loc[1] as string)
        ? []
        : [{ path: '/volume/providerLocation', message: 'is not "<ip>:<port>,<tpgt> <iqn> <lun>"' }]),
      ...(chap && CHAP_USER.test(chap[1] as string) && CHAP_SECRET.test(chap[2] as string)
        ? []
        : [
            {
              path: '/volume/providerAuth',
              message: 'is not "CHAP <username> <secret>" (letters and digits)',
            },
          ]),
    ];
    if (fields.length || !loc || !chap) {
      throw new InvalidInputError(`Cannot use the stored export of ${volume.name}`, fields);
    }
    return {
      iqn: loc[1] as string,
      lvName: lv,
      device: devicePath(this.config.volumeGroup, lv),
      username: chap[1] as string,
      secret: chap[2] as string,
    };
  }

  #modelUpdate(spec: ExportSpec): VolumeModelUpdate {
    return {
      providerLocation: `${this.config.targetPortal},1 ${spec.iqn} ${this.#target.lun}`,
      providerAuth: `CHAP ${spec.username} ${spec.secret}`,
    };
  }

  /** Letters and digits only: safe in tgtadm/targetcli arguments and accepted by every initiator. */
  #randomString(length: number): string {
    let out = '';
    while (out.length < length) {
      for (const byte of this.#random(length * 2)) {
        // 248 = 4 × 62: bytes above it would bias the first characters.
        if (byte < 248 && out.length < length) out += ALNUM[byte % 62];
      }
    }
    return out;
  }
}

function checkedIqn(iqn: string): boolean {
  try {
    checkTargetIqn(iqn, '');
    return true;
  } catch {
    return false;
  }
}
