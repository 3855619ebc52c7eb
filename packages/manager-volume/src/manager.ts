import {
  type CallInfo,
  type ConnectionInfo,
  currentTimestamp,
  defineEndpoints,
  endpoint,
  InvalidStateError,
  Manager,
  type ManagerEnv,
  NotFoundError,
  type PeriodicTaskTable,
  PreparedQuery,
  periodicTask,
  type RequestContext,
  retryWhileStoreUnavailable,
  type SnapshotSpec,
  StratusError,
  transitionStatus,
  type VolumeDriver,
  type VolumeModelUpdate,
  type VolumeSpec,
  type VolumeStats,
  withDriverTimeout,
  withStoreErrors,
} from '@stratus/core';
import type { Kysely } from 'kysely';
import type { VolumeManagerConfig } from './config.js';
import {
  errorReason,
  type SnapshotRow,
  snapshotName,
  type VolumeDatabase,
  type VolumeRow,
  volumeName,
} from './tables.js';
import {
  AttachVolumeArgs,
  ConnectionArgs,
  CreateSnapshotArgs,
  CreateVolumeArgs,
  ExtendVolumeArgs,
  SnapshotIdArgs,
  VOLUME_RPC_VERSION,
  VolumeIdArgs,
} from './wire.js';

/** `error_reason` of operations a restart cut short. */
export const INTERRUPTED_REASON = 'interrupted by a service restart';

/** Transient states left by a crash, and where `initHost` moves them. */
const RECOVER_VOLUMES = {
  creating: 'error',
  deleting: 'error_deleting',
  extending: 'error_extending',
} as const;
const RECOVER_SNAPSHOTS = { creating: 'error', deleting: 'error_deleting' } as const;

/**
 * The volume service's business logic on one storage host (Nova's VolumeManager). Every state
 * change is a conditional update; a driver failure leaves the row in its error state with
 * `error_reason`; redelivered messages for work already done change nothing.
 */
export class VolumeManager extends Manager<VolumeDriver> {
  readonly rpcVersion = VOLUME_RPC_VERSION;
  readonly config: VolumeManagerConfig;
  readonly endpoints;
  readonly #db: Kysely<VolumeDatabase>;
  /** Volume and snapshot ids with a handler running here, so a redelivery does not run twice. */
  readonly #busy = new Set<string>();
  #stopping = false;
  /** Read on every operation: compiled once. */
  readonly #readVolume: PreparedQuery<{ id: string }, VolumeRow>;
  readonly #readLiveVolume: PreparedQuery<{ id: string }, VolumeRow>;
  readonly #claimVolume: PreparedQuery<{ id: string; host: string }, VolumeRow>;
  #stats: VolumeStats | undefined;
  #statsStale = true;

  constructor(config: VolumeManagerConfig, env: ManagerEnv) {
    super(env);
    this.config = config;
    this.#db = env.store.db as Kysely<VolumeDatabase>;
    this.#readVolume = new PreparedQuery(
      (slot) => this.#db.selectFrom('volumes').selectAll().where('id', '=', slot('id')),
      ['id'],
    );
    const now = currentTimestamp(env.store.dialect);
    this.#claimVolume = new PreparedQuery(
      (slot) =>
        this.#db
          .updateTable('volumes')
          .set({ host: slot('host'), updated_at: now })
          .where('id', '=', slot('id'))
          .where('deleted', '=', false)
          .where('status', '=', 'creating')
          .where((eb) => eb.or([eb('host', 'is', null), eb('host', '=', slot('host'))]))
          .returningAll(),
      ['id', 'host'],
    );
    this.#readLiveVolume = new PreparedQuery(
      (slot) =>
        this.#db.selectFrom('volumes').selectAll().where('id', '=', slot('id')).where('deleted', '=', false),
      ['id'],
    );
    this.endpoints = defineEndpoints({
      create_volume: endpoint(CreateVolumeArgs, (ctx, args, call) =>
        this.#untilStored(call, () => this.createVolume(ctx, args, call)),
      ),
      delete_volume: endpoint(VolumeIdArgs, (ctx, args, call) =>
        this.#untilStored(call, () => this.deleteVolume(ctx, args, call)),
      ),
      create_snapshot: endpoint(CreateSnapshotArgs, (ctx, args, call) =>
        this.#untilStored(call, () => this.createSnapshot(ctx, args, call)),
      ),
      delete_snapshot: endpoint(SnapshotIdArgs, (ctx, args, call) =>
        this.#untilStored(call, () => this.deleteSnapshot(ctx, args, call)),
      ),
      extend_volume: endpoint(ExtendVolumeArgs, (ctx, args, call) =>
        this.#untilStored(call, () => this.extendVolume(ctx, args, call)),
      ),
      initialize_connection: endpoint(ConnectionArgs, (ctx, args) => this.initializeConnection(ctx, args)),
      terminate_connection: endpoint(ConnectionArgs, (ctx, args) => this.terminateConnection(ctx, args)),
      attach_volume: endpoint(AttachVolumeArgs, (ctx, args) => this.attachVolume(ctx, args)),
      detach_volume: endpoint(VolumeIdArgs, (ctx, args) => this.detachVolume(ctx, args)),
    });
  }

  override get periodicTasks(): PeriodicTaskTable {
    return {
      refresh_volume_stats: periodicTask(() => this.#refreshStats(), {
        spacing: this.config.statsRefreshInterval,
      }),
    };
  }

  /**
   * Re-export every available/in-use volume of this host (a failure marks that volume `error`),
   * and move operations a crash cut short to their error state.
   */
  override async initHost(): Promise<void> {
    const volumes = await this.#run('list volumes of this host', () =>
      this.#db
        .selectFrom('volumes')
        .selectAll()
        .where('host', '=', this.host)
        .where('deleted', '=', false)
        .where('status', 'in', [
          'available',
          'in-use',
          ...Object.keys(RECOVER_VOLUMES),
        ] as VolumeRow['status'][])
        .execute(),
    );
    let exported = 0;
    let recovered = 0;
    for (const volume of volumes) {
      if (volume.status === 'available' || volume.status === 'in-use') {
        try {
          await this.driver.ensureExport(this.#spec(volume));
          exported++;
        } catch (error) {
          this.logger.error(
            { err: error, volumeId: volume.id },
            `could not re-export volume ${volume.id}; marking it error`,
          );
          await this.#transition('volumes', volume.id, [volume.status], 'error', {
            error_reason: `export could not be re-created at service start: ${errorReason(error)}`,
          });
        }
        continue;
      }
      const to = RECOVER_VOLUMES[volume.status as keyof typeof RECOVER_VOLUMES];
      if (
        await this.#transition('volumes', volume.id, [volume.status], to, {
          error_reason: INTERRUPTED_REASON,
        })
      ) {
        recovered++;
        this.logger.warn(
          { volumeId: volume.id, from: volume.status, to },
          `volume ${volume.id} was ${volume.status} when the service stopped`,
        );
      }
    }
    const snapshots = await this.#run('list interrupted snapshots of this host', () =>
      this.#db
        .selectFrom('snapshots')
        .innerJoin('volumes', 'volumes.id', 'snapshots.volume_id')
        .select(['snapshots.id', 'snapshots.status'])
        .where('volumes.host', '=', this.host)
        .where('snapshots.deleted', '=', false)
        .where('snapshots.status', 'in', ['creating', 'deleting'])
        .execute(),
    );
    for (const snapshot of snapshots) {
      const to = RECOVER_SNAPSHOTS[snapshot.status as keyof typeof RECOVER_SNAPSHOTS];
      if (
        await this.#transition('snapshots', snapshot.id, [snapshot.status], to, {
          error_reason: INTERRUPTED_REASON,
        })
      ) {
        recovered++;
        this.logger.warn(
          { snapshotId: snapshot.id, to },
          `snapshot ${snapshot.id} was ${snapshot.status} when the service stopped`,
        );
      }
    }
    this.logger.info({ exported, recovered }, 'volume host initialised');
  }

  /**
   * From here on, an operation cut short by the driver closing is left in its transient state:
   * the next `initHost` moves it to error, as after a crash (the store may be closing too).
   */
  override async cleanupHost(): Promise<void> {
    this.#stopping = true;
  }

  /** The driver's capacity figures, published with each heartbeat for placement. */
  override async capabilities(): Promise<Record<string, unknown>> {
    if (this.#statsStale || !this.#stats) {
      await this.#refreshStats().catch((error: unknown) => {
        this.logger.warn(
          { err: error },
          'could not read the volume backend stats; the last known ones stay published',
        );
      });
    }
    return this.#stats ? { ...this.#stats } : {};
  }

  /** `create_volume`: take the volume for this host, create and export it, → `available` (or `error`). */
  async createVolume(_ctx: RequestContext, args: CreateVolumeArgs, call: CallInfo): Promise<string> {
    const id = args.volume_id;
    if (!this.#claim(id)) return id;
    try {
      // The claimed row comes back with the update: no second read.
      const volume = await this.#run(`claim volume ${id}`, () =>
        this.#claimVolume.executeTakeFirst(this.#db, { id, host: this.host }),
      );
      if (!volume) {
        const row = await this.#volume(id, { withDeleted: true });
        if (!row) throw new NotFoundError('Volume', id);
        if (row.status === 'creating') {
          throw new InvalidStateError(`Volume ${id} is being created by ${row.host}, not ${this.host}.`);
        }
        call.logger.info(
          { volumeId: id, status: row.status },
          'create_volume for a volume past creating: nothing to do',
        );
        return id;
      }
      await this.#driverStep(
        'volumes',
        id,
        'creating',
        'error',
        async () => {
          const spec = this.#spec(volume);
          let update: VolumeModelUpdate | undefined;
          if (args.snapshot_id) {
            update = await this.driver.createVolumeFromSnapshot(
              spec,
              await this.#snapshotSpec(args.snapshot_id),
            );
          } else {
            update = await this.driver.createVolume(spec);
          }
          const exported = await this.driver.createExport({ ...spec, ...update });
          const merged = { ...update, ...exported };
          return {
            ...(merged.providerLocation === undefined ? {} : { provider_location: merged.providerLocation }),
            ...(merged.providerAuth === undefined ? {} : { provider_auth: merged.providerAuth }),
          };
        },
        'available',
      );
      call.logger.info({ volumeId: id }, `volume ${id} created`);
      return id;
    } finally {
      this.#busy.delete(id);
    }
  }

  /** `delete_volume`: remove export and data, then soft-delete the row (or `error_deleting`). */
  async deleteVolume(_ctx: RequestContext, args: VolumeIdArgs, call: CallInfo): Promise<void> {
    const id = args.volume_id;
    if (!this.#claim(id)) return;
    try {
      const volume = await this.#volume(id, { withDeleted: true });
      if (!volume || volume.status === 'deleted') {
        call.logger.info({ volumeId: id }, 'delete_volume for a volume already deleted: nothing to do');
        return;
      }
      this.#assertLocal(volume);
      if (volume.status !== 'deleting') {
        throw new InvalidStateError(
          `Volume ${id} is ${volume.status}, not deleting; delete it through the volume API.`,
        );
      }
      const spec = this.#spec(volume);
      try {
        await this.#bounded(`volume ${id} (deleting)`, async () => {
          await this.driver.removeExport(spec);
          await this.driver.deleteVolume(spec);
        });
      } catch (error) {
        if (this.#stopping) return this.#leftForRecovery(id, error);
        if (StratusError.is(error, 'INVALID_STATE')) {
          // The backend says it is busy (Nova's VolumeIsBusy): keep it, exported, as it was.
          await this.driver.ensureExport(spec).catch(() => undefined);
          await this.#record('volumes', id, ['deleting'], 'available', {
            error_reason: `delete refused by the backend: ${errorReason(error)}`,
          });
          call.logger.warn(
            { volumeId: id, err: error },
            `volume ${id} is busy on the backend; it stays available`,
          );
          return;
        }
        await this.#record('volumes', id, ['deleting'], 'error_deleting', {
          error_reason: errorReason(error),
        });
        throw error;
      }
      const now = currentTimestamp(this.env.store.dialect);
      await this.#record('volumes', id, ['deleting'], 'deleted', { deleted: true, deleted_at: now });
      this.#statsStale = true;
      call.logger.info({ volumeId: id }, `volume ${id} deleted`);
    } finally {
      this.#busy.delete(id);
    }
  }

  /** `create_snapshot`: take the snapshot on the backend, → `available` (or `error`). */
  async createSnapshot(_ctx: RequestContext, args: CreateSnapshotArgs, call: CallInfo): Promise<string> {
    const id = args.snapshot_id;
    if (!this.#claim(id)) return id;
    try {
      const snapshot = await this.#snapshot(id);
      if (!snapshot) throw new NotFoundError('Snapshot', id);
      if (snapshot.status !== 'creating') {
        call.logger.info(
          { snapshotId: id, status: snapshot.status },
          'create_snapshot past creating: nothing to do',
        );
        return id;
      }
      const volume = await this.#volume(snapshot.volume_id);
      if (!volume) throw new NotFoundError('Volume', snapshot.volume_id);
      this.#assertLocal(volume);
      await this.#driverStep(
        'snapshots',
        id,
        'creating',
        'error',
        async () => {
          const update = await this.driver.createSnapshot(this.#toSnapshotSpec(snapshot));
          return update?.providerLocation === undefined ? {} : { provider_location: update.providerLocation };
        },
        'available',
      );
      call.logger.info({ snapshotId: id }, `snapshot ${id} created`);
      return id;
    } finally {
      this.#busy.delete(id);
    }
  }

  /** `delete_snapshot`: delete on the backend, then soft-delete the row (or `error_deleting`). */
  async deleteSnapshot(_ctx: RequestContext, args: SnapshotIdArgs, call: CallInfo): Promise<void> {
    const id = args.snapshot_id;
    if (!this.#claim(id)) return;
    try {
      const snapshot = await this.#snapshot(id, { withDeleted: true });
      if (!snapshot || snapshot.status === 'deleted') {
        call.logger.info({ snapshotId: id }, 'delete_snapshot for a snapshot already deleted: nothing to do');
        return;
      }
      if (snapshot.status !== 'deleting') {
        throw new InvalidStateError(
          `Snapshot ${id} is ${snapshot.status}, not deleting; delete it through the volume API.`,
        );
      }
      const now = currentTimestamp(this.env.store.dialect);
      await this.#driverStep(
        'snapshots',
        id,
        'deleting',
        'error_deleting',
        async () => {
          await this.driver.deleteSnapshot(this.#toSnapshotSpec(snapshot));
          return { deleted: true, deleted_at: now };
        },
        'deleted',
      );
      call.logger.info({ snapshotId: id }, `snapshot ${id} deleted`);
    } finally {
      this.#busy.delete(id);
    }
  }

  /** `extend_volume`: grow on the backend, store the new size, → `available` (or `error_extending`). */
  async extendVolume(_ctx: RequestContext, args: ExtendVolumeArgs, call: CallInfo): Promise<void> {
    const id = args.volume_id;
    if (!this.#claim(id)) return;
    try {
      const volume = await this.#volume(id);
      if (!volume) throw new NotFoundError('Volume', id);
      this.#assertLocal(volume);
      if (volume.status !== 'extending') {
        if (volume.size_gib === args.new_size) {
          call.logger.info({ volumeId: id }, 'extend_volume already done: nothing to do');
          return;
        }
        throw new InvalidStateError(
          `Volume ${id} is ${volume.status}, not extending; extend it through the volume API.`,
        );
      }
      await this.#driverStep(
        'volumes',
        id,
        'extending',
        'error_extending',
        async () => {
          await this.driver.extendVolume(this.#spec(volume), args.new_size);
          return { size_gib: args.new_size };
        },
        'available',
      );
      call.logger.info({ volumeId: id, sizeGiB: args.new_size }, `volume ${id} extended`);
    } finally {
      this.#busy.delete(id);
    }
  }

  /** `initialize_connection` (call): let the connector reach the volume; returns how. */
  async initializeConnection(_ctx: RequestContext, args: ConnectionArgs): Promise<ConnectionInfo> {
    const volume = await this.#localVolume(args.volume_id);
    return this.driver.initializeConnection(this.#spec(volume), args.connector);
  }

  /** `terminate_connection` (call): revoke the connector's access. */
  async terminateConnection(_ctx: RequestContext, args: ConnectionArgs): Promise<void> {
    const volume = await this.#localVolume(args.volume_id);
    await this.driver.terminateConnection(this.#spec(volume), args.connector);
  }

  /** `attach_volume` (call): a reserved (`attaching`) volume becomes `in-use` by the instance. */
  async attachVolume(_ctx: RequestContext, args: AttachVolumeArgs): Promise<void> {
    const volume = await this.#localVolume(args.volume_id);
    const done = await this.#transition('volumes', volume.id, ['attaching'], 'in-use', {
      attach_status: 'attached',
      instance_id: args.instance_id,
      mountpoint: args.mountpoint,
    });
    if (done) return;
    const current = await this.#localVolume(args.volume_id);
    if (current.status === 'in-use' && current.instance_id === args.instance_id) return;
    throw new InvalidStateError(
      `Volume ${volume.id} is ${current.status}; attach_volume needs it reserved (attaching) first: use VolumeApi.attach.`,
    );
  }

  /** `detach_volume` (call): a `detaching` volume becomes `available`. */
  async detachVolume(_ctx: RequestContext, args: VolumeIdArgs): Promise<void> {
    const volume = await this.#localVolume(args.volume_id);
    const done = await this.#transition('volumes', volume.id, ['detaching'], 'available', {
      attach_status: 'detached',
      instance_id: null,
      mountpoint: null,
    });
    if (done) return;
    const current = await this.#localVolume(args.volume_id);
    if (current.status === 'available' && current.attach_status === 'detached') return;
    throw new InvalidStateError(
      `Volume ${volume.id} is ${current.status}; detach_volume needs it detaching first: use VolumeApi.detach.`,
    );
  }

  // --- internals ---

  /**
   * Run the driver work of one operation, then move the row `from → success` with what it
   * returned; on failure `from → failure` with the reason, and rethrow.
   */
  async #driverStep(
    table: 'volumes' | 'snapshots',
    id: string,
    from: string,
    failure: string,
    work: () => Promise<Record<string, unknown>>,
    success: string,
  ): Promise<void> {
    let set: Record<string, unknown>;
    try {
      set = await this.#bounded(`${table === 'volumes' ? 'volume' : 'snapshot'} ${id} (${from})`, work);
    } catch (error) {
      if (this.#stopping) return this.#leftForRecovery(id, error);
      await this.#record(table, id, [from], failure, { error_reason: errorReason(error) });
      this.#statsStale = true;
      throw error;
    }
    this.#statsStale = true;
    const moved = await this.#record(table, id, [from], success, { ...set, error_reason: null });
    if (!moved)
      this.logger.warn(
        { table, id, from, to: success },
        `${table} ${id} left ${from} while the driver worked`,
      );
  }

  /** Backend work bounded by `driverTimeout`: a hung backend must not hold a row and a handler forever. */
  #bounded<T>(what: string, work: () => Promise<T>): Promise<T> {
    return withDriverTimeout(work, {
      seconds: this.config.driverTimeout,
      what,
      backend: 'volume backend',
      logger: this.logger,
    });
  }

  /**
   * Run a cast handler again while the database is unreachable: nobody waits for a cast and it is
   * acknowledged once the handler returns, so failing would drop it. The handlers are idempotent.
   */
  #untilStored<T>(call: CallInfo, handler: () => Promise<T>): Promise<T> {
    return retryWhileStoreUnavailable(handler, { logger: call.logger, what: call.method });
  }

  #leftForRecovery(id: string, error: unknown): void {
    this.logger.warn(
      { id, err: error },
      `operation on ${id} cut short by the service stopping; the next start moves it to its error state`,
    );
  }

  #claim(id: string): boolean {
    if (this.#busy.has(id)) {
      this.logger.info({ id }, `a request for ${id} is already running here; this duplicate is ignored`);
      return false;
    }
    this.#busy.add(id);
    return true;
  }

  #assertLocal(volume: VolumeRow): void {
    if (volume.host !== this.host) {
      throw new InvalidStateError(
        `Volume ${volume.id} is served by ${volume.host ?? 'no host'}, not ${this.host}; send the request to volume.${volume.host}.`,
        { details: { volumeId: volume.id, host: volume.host } },
      );
    }
  }

  async #localVolume(id: string): Promise<VolumeRow> {
    const volume = await this.#volume(id);
    if (!volume) throw new NotFoundError('Volume', id);
    this.#assertLocal(volume);
    return volume;
  }

  #spec(volume: VolumeRow): VolumeSpec {
    return {
      id: volume.id,
      name: volumeName(volume.id),
      sizeGiB: Number(volume.size_gib),
      projectId: volume.project_id,
      providerLocation: volume.provider_location,
      providerAuth: volume.provider_auth,
    };
  }

  #toSnapshotSpec(snapshot: SnapshotRow): SnapshotSpec {
    return {
      id: snapshot.id,
      name: snapshotName(snapshot.id),
      volumeId: snapshot.volume_id,
      volumeName: volumeName(snapshot.volume_id),
      volumeSizeGiB: Number(snapshot.volume_size_gib),
    };
  }

  async #snapshotSpec(id: string): Promise<SnapshotSpec> {
    const snapshot = await this.#snapshot(id);
    if (!snapshot) throw new NotFoundError('Snapshot', id);
    if (snapshot.status !== 'available') {
      throw new InvalidStateError(
        `Snapshot ${id} is ${snapshot.status}; a volume can only be made from an available one.`,
      );
    }
    return this.#toSnapshotSpec(snapshot);
  }

  #volume(id: string, options: { withDeleted?: boolean } = {}): Promise<VolumeRow | undefined> {
    const read = options.withDeleted ? this.#readVolume : this.#readLiveVolume;
    return this.#run(`read volume ${id}`, () => read.executeTakeFirst(this.#db, { id }));
  }

  #snapshot(id: string, options: { withDeleted?: boolean } = {}): Promise<SnapshotRow | undefined> {
    return this.#run(`read snapshot ${id}`, () => {
      let query = this.#db.selectFrom('snapshots').selectAll().where('id', '=', id);
      if (!options.withDeleted) query = query.where('deleted', '=', false);
      return query.executeTakeFirst();
    });
  }

  /**
   * {@link #transition} for the outcome of backend work already done: while the database is
   * unreachable, wait for it and record the outcome then, rather than fail and have the whole
   * handler (and so the backend work) run again.
   */
  #record(
    table: 'volumes' | 'snapshots',
    id: string,
    from: readonly string[],
    to: string,
    set: Record<string, unknown> = {},
  ): Promise<boolean> {
    return retryWhileStoreUnavailable(() => this.#transition(table, id, from, to, set), {
      logger: this.logger,
      what: `record ${table} ${id} as ${to}`,
    });
  }

  #transition(
    table: 'volumes' | 'snapshots',
    id: string,
    from: readonly string[],
    to: string,
    set: Record<string, unknown> = {},
  ): Promise<boolean> {
    return transitionStatus(this.env.store.db, table, id, {
      from,
      to,
      set: { ...set, updated_at: currentTimestamp(this.env.store.dialect) },
    });
  }

  async #refreshStats(): Promise<void> {
    this.#stats = await this.driver.getVolumeStats(true);
    this.#statsStale = false;
  }

  #run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return withStoreErrors({ operation, url: this.env.store.url }, fn);
  }
}
