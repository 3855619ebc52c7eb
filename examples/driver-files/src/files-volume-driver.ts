import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import {
  access,
  copyFile,
  mkdir,
  open,
  readdir,
  rename,
  rm,
  rmdir,
  stat,
  statfs,
  truncate,
} from 'node:fs/promises';
import path from 'node:path';
import {
  type BackendVolume,
  ConflictError,
  type ConnectionInfo,
  type Connector,
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
import type { FilesDriverConfig } from './config.js';

const GiB = 1024 ** 3;
const DRIVER_VERSION = '1.0.0';
/** Names become file names: no separators, no leading dot or dash, nothing a shell would mind. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const IMAGE = /^([A-Za-z0-9][A-Za-z0-9._-]{0,127})\.img$/;
const COPY_CHUNK = 4 * 1024 * 1024;
const ZEROES = Buffer.alloc(COPY_CHUNK);

/**
 * Volumes as sparse image files: `<directory>/volumes/<name>.img`, created by truncating to the
 * size (no space is allocated until data is written), grown by truncating larger. A snapshot is a
 * sparse copy (a reflink where the filesystem has them) at `<directory>/snapshots/<volume>/<name>.img`,
 * so a volume's snapshots are found by listing one folder and nothing is kept in memory: a restarted
 * driver sees exactly what is on disk. The export is a local path, for a compute host on the same
 * machine (a loop device, or a hypervisor that opens files).
 */
export class FilesVolumeDriver extends VolumeDriver {
  /** Absolute folder holding `volumes/` and `snapshots/`. */
  readonly directory: string;
  readonly config: FilesDriverConfig;
  readonly #env: PluginEnv;
  #stats: VolumeStats | undefined;
  /** Mutations run one at a time, so a capacity check and the write it guards cannot interleave. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(config: FilesDriverConfig, env: PluginEnv) {
    super();
    this.config = { ...config };
    this.#env = env;
    this.directory = path.resolve(env.dataDir, config.directory);
  }

  override async setup(): Promise<void> {
    await mkdir(this.#volumesDir, { recursive: true });
    await mkdir(this.#snapshotsDir, { recursive: true });
    // Leftovers of a copy or create cut short by a crash; finished images are renamed into place.
    for (const dir of [this.#volumesDir, ...(await this.#snapshotFolders())]) {
      for (const entry of await readdir(dir)) {
        if (entry.startsWith('.') && entry.endsWith('.tmp')) await rm(path.join(dir, entry), { force: true });
      }
    }
    this.#env.logger.debug({ directory: this.directory }, 'file volume backend ready');
  }

  override async checkForSetupError(): Promise<void> {
    try {
      await access(this.#volumesDir, constants.R_OK | constants.W_OK);
      await access(this.#snapshotsDir, constants.R_OK | constants.W_OK);
    } catch (cause) {
      throw new DriverFailureError(
        `The volume directory ${this.directory} is not readable and writable by this process; create it or fix its owner, or set "directory" in the driver config.`,
        { cause, details: { reason: 'directory_unusable', directory: this.directory } },
      );
    }
  }

  createVolume(volume: VolumeSpec): Promise<VolumeModelUpdate | undefined> {
    return this.#serial(async () => {
      checkShape(VolumeSpec, volume, 'volume', '/volume');
      checkName(volume.name, '/volume/name');
      checkSize(volume.sizeGiB, '/volume/sizeGiB');
      if (await this.#sameVolumeExists(volume)) return undefined;
      await this.#reserve(volume.sizeGiB, `volume ${volume.name}`);
      const tmp = this.#tempFile(this.#volumesDir);
      try {
        const handle = await open(tmp, 'wx');
        await handle.truncate(volume.sizeGiB * GiB);
        await handle.close();
        await rename(tmp, this.#volumePath(volume.name));
      } catch (cause) {
        await rm(tmp, { force: true });
        throw failure(`Creating the image of ${volume.name} failed`, cause);
      }
      return undefined;
    });
  }

  createVolumeFromSnapshot(
    volume: VolumeSpec,
    snapshot: SnapshotSpec,
  ): Promise<VolumeModelUpdate | undefined> {
    return this.#serial(async () => {
      checkShape(VolumeSpec, volume, 'volume', '/volume');
      checkShape(SnapshotSpec, snapshot, 'snapshot', '/snapshot');
      checkName(volume.name, '/volume/name');
      checkSize(volume.sizeGiB, '/volume/sizeGiB');
      checkName(snapshot.name, '/snapshot/name');
      checkName(snapshot.volumeName, '/snapshot/volumeName');
      const source = this.#snapshotPath(snapshot.volumeName, snapshot.name);
      const sourceBytes = await sizeOf(source);
      if (sourceBytes === undefined) throw new NotFoundError('snapshot', snapshot.name);
      if (volume.sizeGiB * GiB < sourceBytes) {
        throw new InvalidInputError(
          'A volume made from a snapshot must be at least as large as the snapshot',
          [
            {
              path: '/volume/sizeGiB',
              message: `${volume.sizeGiB} GiB is smaller than snapshot ${snapshot.name}'s ${sourceBytes / GiB} GiB`,
            },
          ],
        );
      }
      if (await this.#sameVolumeExists(volume)) return undefined;
      await this.#reserve(volume.sizeGiB, `volume ${volume.name}`);
      const tmp = this.#tempFile(this.#volumesDir);
      try {
        await sparseCopy(source, tmp);
        await truncate(tmp, volume.sizeGiB * GiB);
        await rename(tmp, this.#volumePath(volume.name));
      } catch (cause) {
        await rm(tmp, { force: true });
        throw failure(`Copying snapshot ${snapshot.name} into volume ${volume.name} failed`, cause);
      }
      return undefined;
    });
  }

  deleteVolume(volume: VolumeSpec): Promise<void> {
    return this.#serial(async () => {
      checkName(volume?.name, '/volume/name');
      const snapshots = await this.#snapshotsOf(volume.name);
      if (snapshots.length > 0) {
        throw new InvalidStateError(
          `Volume ${volume.name} has ${snapshots.length} snapshot(s) (${snapshots.join(', ')}); delete them before the volume.`,
          { details: { reason: 'has_snapshots', volume: volume.name, snapshots } },
        );
      }
      await rm(this.#volumePath(volume.name), { force: true });
    });
  }

  createSnapshot(snapshot: SnapshotSpec): Promise<VolumeModelUpdate | undefined> {
    return this.#serial(async () => {
      checkShape(SnapshotSpec, snapshot, 'snapshot', '/snapshot');
      checkName(snapshot.name, '/snapshot/name');
      checkName(snapshot.volumeName, '/snapshot/volumeName');
      const source = this.#volumePath(snapshot.volumeName);
      const bytes = await sizeOf(source);
      if (bytes === undefined) throw new NotFoundError('volume', snapshot.volumeName);
      const target = this.#snapshotPath(snapshot.volumeName, snapshot.name);
      if ((await sizeOf(target)) !== undefined) return undefined;
      await this.#reserve(Math.ceil(bytes / GiB), `snapshot ${snapshot.name}`);
      const folder = path.dirname(target);
      await mkdir(folder, { recursive: true });
      const tmp = this.#tempFile(folder);
      try {
        await sparseCopy(source, tmp);
        await rename(tmp, target);
      } catch (cause) {
        await rm(tmp, { force: true });
        throw failure(`Copying volume ${snapshot.volumeName} into snapshot ${snapshot.name} failed`, cause);
      }
      return undefined;
    });
  }

  deleteSnapshot(snapshot: SnapshotSpec): Promise<void> {
    return this.#serial(async () => {
      checkName(snapshot?.name, '/snapshot/name');
      checkName(snapshot.volumeName, '/snapshot/volumeName');
      await rm(this.#snapshotPath(snapshot.volumeName, snapshot.name), { force: true });
      // The folder only groups a volume's snapshots; an empty one is noise.
      await rmdir(path.join(this.#snapshotsDir, snapshot.volumeName)).catch(() => undefined);
    });
  }

  extendVolume(volume: VolumeSpec, newSizeGiB: number): Promise<void> {
    return this.#serial(async () => {
      checkName(volume?.name, '/volume/name');
      checkSize(newSizeGiB, '/newSizeGiB');
      const file = this.#volumePath(volume.name);
      const bytes = await sizeOf(file);
      if (bytes === undefined) throw new NotFoundError('volume', volume.name);
      if (newSizeGiB * GiB <= bytes) {
        throw new InvalidInputError('A volume can only grow', [
          {
            path: '/newSizeGiB',
            message: `${newSizeGiB} GiB is not larger than the current ${bytes / GiB} GiB of ${volume.name}`,
          },
        ]);
      }
      await this.#reserve(newSizeGiB - Math.ceil(bytes / GiB), `extending ${volume.name}`);
      await truncate(file, newSizeGiB * GiB).catch((cause: unknown) => {
        throw failure(`Extending the image of ${volume.name} failed`, cause);
      });
    });
  }

  async createExport(volume: VolumeSpec, _connector?: Connector): Promise<VolumeModelUpdate | undefined> {
    const file = await this.#requireVolume(volume);
    return { providerLocation: `local:${file}`, providerAuth: null };
  }

  async ensureExport(volume: VolumeSpec): Promise<void> {
    // A local path needs no target to re-create; only check the image is still there.
    await this.#requireVolume(volume);
  }

  async removeExport(volume: VolumeSpec): Promise<void> {
    checkName(volume?.name, '/volume/name');
  }

  async initializeConnection(volume: VolumeSpec, connector: Connector): Promise<ConnectionInfo> {
    const devicePath = await this.#requireVolume(volume);
    if (typeof connector?.host !== 'string' || connector.host === '') {
      throw new InvalidInputError('Invalid connector', [{ path: '/connector/host', message: 'is required' }]);
    }
    return { driverVolumeType: 'local', data: { devicePath, volumeId: volume.id } };
  }

  async terminateConnection(volume: VolumeSpec, _connector: Connector): Promise<void> {
    checkName(volume?.name, '/volume/name');
  }

  async getVolumeStats(refresh = false): Promise<VolumeStats> {
    if (refresh || !this.#stats) this.#stats = await this.#computeStats();
    return { ...this.#stats };
  }

  async listVolumes(): Promise<BackendVolume[]> {
    const volumes: BackendVolume[] = [];
    for (const entry of await readdir(this.#volumesDir)) {
      const name = IMAGE.exec(entry)?.[1];
      const bytes = name === undefined ? undefined : await sizeOf(path.join(this.#volumesDir, entry));
      if (name !== undefined && bytes !== undefined) volumes.push({ name, sizeGiB: bytes / GiB });
    }
    return volumes;
  }

  get #volumesDir(): string {
    return path.join(this.directory, 'volumes');
  }

  get #snapshotsDir(): string {
    return path.join(this.directory, 'snapshots');
  }

  #volumePath(name: string): string {
    return path.join(this.#volumesDir, `${name}.img`);
  }

  #snapshotPath(volumeName: string, name: string): string {
    return path.join(this.#snapshotsDir, volumeName, `${name}.img`);
  }

  #tempFile(folder: string): string {
    return path.join(folder, `.${randomBytes(6).toString('hex')}.tmp`);
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #requireVolume(volume: VolumeSpec): Promise<string> {
    checkName(volume?.name, '/volume/name');
    const file = this.#volumePath(volume.name);
    if ((await sizeOf(file)) === undefined) throw new NotFoundError('volume', volume.name);
    return file;
  }

  /** True when the volume exists with this size (a retried create); Conflict when its size differs. */
  async #sameVolumeExists(volume: VolumeSpec): Promise<boolean> {
    const bytes = await sizeOf(this.#volumePath(volume.name));
    if (bytes === undefined) return false;
    if (bytes === volume.sizeGiB * GiB) return true;
    throw new ConflictError(
      `Volume ${volume.name} already exists with ${bytes / GiB} GiB, not ${volume.sizeGiB} GiB; delete it or use extendVolume.`,
    );
  }

  async #snapshotFolders(): Promise<string[]> {
    const entries = await readdir(this.#snapshotsDir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => path.join(this.#snapshotsDir, e.name));
  }

  async #snapshotsOf(volumeName: string): Promise<string[]> {
    try {
      const entries = await readdir(path.join(this.#snapshotsDir, volumeName));
      return entries.flatMap((e) => IMAGE.exec(e)?.[1] ?? []);
    } catch {
      return [];
    }
  }

  /** Refuse, like a full pool, when `sizeGiB` more would exceed capacity × over-subscription. */
  async #reserve(sizeGiB: number, what: string): Promise<void> {
    const stats = await this.getVolumeStats(true);
    const limit = stats.totalCapacityGiB * this.config.maxOverSubscriptionRatio;
    const room = limit - stats.provisionedCapacityGiB;
    if (sizeGiB > room) {
      throw new DriverFailureError(
        `Insufficient space on backend ${this.config.backendName} for ${what}: ${sizeGiB} GiB requested, ${room.toFixed(2)} GiB left to provision (capacity ${stats.totalCapacityGiB.toFixed(2)} GiB × over-subscription ${this.config.maxOverSubscriptionRatio}). Delete volumes or snapshots, or raise capacityGiB or maxOverSubscriptionRatio.`,
        { details: { reason: 'insufficient_capacity', requestedGiB: sizeGiB, provisionableGiB: room } },
      );
    }
  }

  async #computeStats(): Promise<VolumeStats> {
    const fs = await statfs(this.directory);
    const fsTotal = (fs.blocks * fs.bsize) / GiB;
    const fsFree = (fs.bavail * fs.bsize) / GiB;
    let provisioned = 0;
    let allocated = 0;
    const folders = [this.#volumesDir, ...(await this.#snapshotFolders())];
    for (const folder of folders) {
      for (const entry of await readdir(folder)) {
        if (!IMAGE.test(entry)) continue;
        const info = await stat(path.join(folder, entry)).catch(() => undefined);
        if (!info) continue;
        provisioned += info.size / GiB;
        allocated += (info.blocks * 512) / GiB;
      }
    }
    const total = this.config.capacityGiB ?? fsTotal;
    const free = Math.max(0, Math.min(fsFree, total - allocated));
    return {
      backendName: this.config.backendName,
      vendorName: 'Acme',
      driverVersion: DRIVER_VERSION,
      storageProtocol: 'local',
      totalCapacityGiB: total,
      freeCapacityGiB: free,
      provisionedCapacityGiB: provisioned,
      thinProvisioning: true,
      maxOverSubscriptionRatio: this.config.maxOverSubscriptionRatio,
    };
  }
}

/** Size in bytes of a regular file, or undefined when there is none. */
async function sizeOf(file: string): Promise<number | undefined> {
  try {
    const info = await stat(file);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Copy `source` to a new file `target` keeping holes: a reflink when the filesystem can (btrfs,
 * XFS), else chunk by chunk, seeking over all-zero chunks so an empty 100 GiB image stays empty.
 */
async function sparseCopy(source: string, target: string): Promise<void> {
  try {
    await copyFile(source, target, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE_FORCE);
    return;
  } catch {
    await rm(target, { force: true });
  }
  const from = await open(source, 'r');
  const to = await open(target, 'wx');
  try {
    const { size, blocks } = await from.stat();
    // Nothing allocated means nothing written: the copy is all hole, no need to read it.
    if (blocks === 0) {
      await to.truncate(size);
      return;
    }
    const buffer = Buffer.alloc(COPY_CHUNK);
    for (let position = 0; position < size; ) {
      const { bytesRead } = await from.read(buffer, 0, COPY_CHUNK, position);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      if (!chunk.equals(ZEROES.subarray(0, bytesRead))) await to.write(chunk, 0, bytesRead, position);
      position += bytesRead;
    }
    await to.truncate(size);
  } finally {
    await from.close();
    await to.close();
  }
}

function checkName(name: unknown, at: string): void {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InvalidInputError('Invalid backend name', [
      {
        path: at,
        message: `${JSON.stringify(name)} must be 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      },
    ]);
  }
}

function checkSize(size: unknown, at: string): void {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) {
    throw new InvalidInputError('Invalid size', [
      { path: at, message: `${JSON.stringify(size)} is not a whole number of GiB of at least 1` },
    ]);
  }
}

function checkShape(schema: TSchema, value: unknown, what: string, at: string): void {
  const issues = schemaIssues(schema, value);
  if (issues.length > 0) {
    throw new InvalidInputError(
      `Invalid ${what}`,
      issues.map((i) => ({ path: `${at}${i.path}`, message: i.message })),
    );
  }
}

/** A filesystem error as the typed failure the manager records (`errorReason`), cause kept. */
function failure(message: string, cause: unknown): DriverFailureError {
  const code = (cause as NodeJS.ErrnoException)?.code;
  const hint = code === 'ENOSPC' ? ' The filesystem is full; free space or lower capacityGiB.' : '';
  return new DriverFailureError(`${message}: ${(cause as Error)?.message ?? cause}.${hint}`, {
    cause,
    details: {
      reason: code === 'ENOSPC' ? 'insufficient_capacity' : 'io_error',
      ...(code ? { errno: code } : {}),
    },
  });
}
