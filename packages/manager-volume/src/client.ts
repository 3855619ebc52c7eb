import { randomUUID } from 'node:crypto';
import {
  ConnectionInfo,
  Connector,
  currentTimestamp,
  ForbiddenError,
  InvalidInputError,
  InvalidStateError,
  keysetPage,
  NotFoundError,
  PreparedQuery,
  QuotaExceededError,
  type RequestContext,
  type RpcClient,
  type Store,
  schemaIssues,
  transitionStatus,
  withStoreErrors,
} from '@stratus/core';
import { type Kysely, type SelectQueryBuilder, sql, type Transaction } from 'kysely';
import type { TSchema } from 'typebox';
import {
  type SnapshotRow,
  type SnapshotsTable,
  toSnapshot,
  toVolume,
  type VolumeDatabase,
  type VolumeRow,
  type VolumesTable,
} from './tables.js';
import {
  AttachInput,
  CreateSnapshotInput,
  CreateVolumeInput,
  ListSnapshotsOptions,
  ListVolumesOptions,
  type Snapshot,
  type SnapshotStatus,
  UpdateVolumeInput,
  type Volume,
  type VolumeQuotas,
  type VolumeStatus,
} from './types.js';
import { VOLUME_RPC_VERSION, VOLUME_TOPIC } from './wire.js';

export { volumeMigrations } from './migrations.js';
export * from './tables.js';
export * from './types.js';
export * from './wire.js';

export interface VolumeApiOptions {
  /** The store holding the `volumes` and `snapshots` tables (migrated with `volumeMigrations`). */
  readonly store: Store;
  /** Sends casts and calls to the volume hosts. */
  readonly rpc: RpcClient;
  /** The volume service's topic; default `volume`. */
  readonly topic?: string;
  /** Largest volume, in GiB; default 1000. */
  readonly maxSizeGiB?: number;
  /** Per-project limits; defaults: 10 volumes, 1000 GiB, 10 snapshots. */
  readonly quotas?: Partial<VolumeQuotas>;
  /** Timeout of the RPC calls (connections, attach, detach) in ms; the RpcClient's default otherwise. */
  readonly callTimeoutMs?: number;
}

/** The values `create` inserts; everything else of a new row is fixed. */
type NewVolume = {
  id: string;
  projectId: string | null;
  userId: string | null;
  size: number;
  name: string | null;
  description: string | null;
  snapshotId: string | null;
};
type UsageRow = { volumes: number | string | bigint; gigabytes: number | string | bigint };

/** Statuses a volume may be deleted from (`error_deleting` to retry a failed deletion). */
const DELETABLE: readonly VolumeStatus[] = ['available', 'error', 'error_extending', 'error_deleting'];
const SNAPSHOT_DELETABLE: readonly SnapshotStatus[] = ['available', 'error', 'error_deleting'];
const CONNECTABLE: readonly VolumeStatus[] = ['available', 'attaching', 'in-use', 'detaching'];

/**
 * The volume service's typed API, for the HTTP API and compute: validates, checks quotas and
 * states with conditional updates, writes the rows and sends the RPCs. Every read is scoped to the
 * caller's project unless the context is admin; another project's volume is `NotFound`.
 */
export class VolumeApi {
  readonly topic: string;
  readonly maxSizeGiB: number;
  readonly quotas: VolumeQuotas;
  readonly #store: Store;
  readonly #db: Kysely<VolumeDatabase>;
  readonly #rpc: RpcClient;
  readonly #callTimeoutMs: number | undefined;
  /** `get` is polled: its query is compiled once per kind of scope (see {@link #volumeRead}). */
  readonly #volumeReads = new Map<string, PreparedQuery<{ id: string; projectId: string }, VolumeRow>>();
  readonly #deletes = new Map<
    string,
    PreparedQuery<{ id: string; projectId: string }, { host: string | null }>
  >();
  /** The statements of every `create`, compiled once. */
  readonly #insertVolume: PreparedQuery<NewVolume, VolumeRow>;
  readonly #usage: Record<'project' | 'none', PreparedQuery<{ projectId: string }, UsageRow>>;

  constructor(options: VolumeApiOptions) {
    this.#store = options.store;
    this.#db = options.store.db as Kysely<VolumeDatabase>;
    this.#rpc = options.rpc;
    this.topic = options.topic ?? VOLUME_TOPIC;
    this.maxSizeGiB = options.maxSizeGiB ?? 1000;
    this.quotas = { volumes: 10, gigabytes: 1000, snapshots: 10, ...options.quotas };
    this.#callTimeoutMs = options.callTimeoutMs;
    const now = currentTimestamp(this.#store.dialect);
    this.#insertVolume = new PreparedQuery<NewVolume, VolumeRow>(
      (slot) =>
        this.#db
          .insertInto('volumes')
          .values({
            id: slot('id'),
            project_id: slot('projectId'),
            user_id: slot('userId'),
            host: null,
            size_gib: slot('size'),
            name: slot('name'),
            description: slot('description'),
            status: 'creating',
            attach_status: 'detached',
            instance_id: null,
            mountpoint: null,
            provider_location: null,
            provider_auth: null,
            source_snapshot_id: slot('snapshotId'),
            error_reason: null,
            created_at: now,
            updated_at: now,
            deleted_at: null,
            deleted: false,
          })
          .returningAll(),
      ['id', 'projectId', 'userId', 'size', 'name', 'description', 'snapshotId'],
    );
    const usage = (scope: 'project' | 'none') =>
      new PreparedQuery<{ projectId: string }, UsageRow>(
        (slot) =>
          this.#db
            .selectFrom('volumes')
            .select((eb) => [
              eb.fn.countAll<number | string | bigint>().as('volumes'),
              eb.fn.coalesce(eb.fn.sum<number | string | bigint>('size_gib'), sql<number>`0`).as('gigabytes'),
            ])
            .where('deleted', '=', false)
            .where(
              scope === 'none'
                ? sql<boolean>`project_id is null`
                : sql<boolean>`project_id = ${slot('projectId')}`,
            ),
        scope === 'none' ? [] : ['projectId'],
      );
    this.#usage = { project: usage('project'), none: usage('none') };
    const bad = [
      ...(Number.isInteger(this.maxSizeGiB) && this.maxSizeGiB >= 1
        ? []
        : [{ path: '/maxSizeGiB', message: 'must be an integer >= 1' }]),
      ...Object.entries(this.quotas)
        .filter(([, v]) => !Number.isInteger(v) || v < 0)
        .map(([k]) => ({ path: `/quotas/${k}`, message: 'must be an integer >= 0' })),
    ];
    if (bad.length) throw new InvalidInputError('Invalid VolumeApi options', bad);
  }

  /**
   * Create a volume: the row is inserted `creating` and `create_volume` is cast to the topic (any
   * volume host takes it), or, from a snapshot, to the host holding the snapshot. Returns the row
   * as written (`creating`); poll `get` for the outcome.
   * @throws InvalidInputError naming each bad field; QuotaExceededError; NotFound / InvalidState for the snapshot.
   */
  async create(ctx: RequestContext, input: CreateVolumeInput): Promise<Volume> {
    check(CreateVolumeInput, input, 'Invalid volume');
    this.#checkSize(input.size, '/size');
    const projectId = this.#projectOf(ctx, 'create a volume');

    let host: string | undefined;
    if (input.snapshotId !== undefined) {
      const snapshot = await this.#snapshotRow(ctx, input.snapshotId);
      if (snapshot.status !== 'available') {
        throw new InvalidStateError(
          `Snapshot ${snapshot.id} is ${snapshot.status}; a volume can only be made from an available snapshot.`,
          { details: { snapshotId: snapshot.id, status: snapshot.status } },
        );
      }
      if (input.size < snapshot.volume_size_gib) {
        throw new InvalidInputError('Invalid volume', [
          {
            path: '/size',
            message: `${input.size} GiB is smaller than snapshot ${snapshot.id} (${snapshot.volume_size_gib} GiB); ask for at least ${snapshot.volume_size_gib}`,
          },
        ]);
      }
      host = (await this.#hostOf(snapshot.volume_id)) ?? undefined;
      if (!host)
        throw new InvalidStateError(
          `The volume of snapshot ${snapshot.id} has no host; it cannot be copied.`,
        );
    }

    const id = randomUUID();
    const inserted = await this.#run(`create volume ${id}`, () =>
      this.#db.transaction().execute(async (trx) => {
        await this.#lockProject(trx, projectId);
        const usage = await this.#volumeUsage(trx, projectId);
        this.#checkQuota(projectId, 'volumes', usage.volumes, 1, 'volume');
        this.#checkQuota(projectId, 'gigabytes', usage.gigabytes, input.size, 'GiB');
        const row = await this.#insertVolume.executeTakeFirst(trx, {
          id,
          projectId,
          userId: ctx.userId,
          size: input.size,
          name: input.name ?? null,
          description: input.description ?? null,
          snapshotId: input.snapshotId ?? null,
        });
        if (!row) throw new Error(`volume ${id} was inserted but not returned`);
        return row;
      }),
    );

    // The row as written, as `get` would return it (it is in the caller's project).
    const created = toVolume(inserted);
    await this.#castOrFail(
      ctx,
      host,
      'create_volume',
      { volume_id: id, snapshot_id: input.snapshotId ?? null },
      async (reason) => {
        await this.#transition('volumes', id, ['creating'], 'error', { error_reason: reason });
      },
    );
    return created;
  }

  /**
   * Start deleting a volume: `available|error|error_extending|error_deleting → deleting`, then
   * `delete_volume` is cast to its host. A volume that never got a host is deleted at once.
   * @throws InvalidStateError when it is attached, busy, or still has snapshots.
   */
  async delete(ctx: RequestContext, id: string): Promise<void> {
    const now = currentTimestamp(this.#store.dialect);
    const start = this.#startDelete(ctx);
    const params = { id: String(id), projectId: ctx.projectId ?? '' };
    const row = await this.#run(`delete volume ${id}`, () =>
      this.#store.dialect === 'postgres'
        ? this.#db.transaction().execute(async (trx) => {
            // Serialises with createSnapshot, which locks the same row before inserting.
            await this.#lockVolume(trx, id);
            return start.executeTakeFirst(trx, params);
          })
        : // One statement is its own transaction, and SQLite serialises writers anyway.
          start.executeTakeFirst(this.#db, params),
    );
    if (!row) throw await this.#whyNotDeletable(ctx, id);

    if (row.host === null) {
      // Never scheduled: nothing exists on any backend.
      await this.#transition('volumes', id, ['deleting'], 'deleted', { deleted: true, deleted_at: now });
      return;
    }
    await this.#castOrFail(ctx, row.host, 'delete_volume', { volume_id: id }, async (reason) => {
      await this.#transition('volumes', id, ['deleting'], 'error_deleting', { error_reason: reason });
    });
  }

  /** One volume of the caller's project (any project for admin). @throws NotFoundError */
  async get(ctx: RequestContext, id: string): Promise<Volume> {
    return toVolume(await this.#volumeRow(ctx, id));
  }

  /**
   * Rename a volume or change its description; any status but deleting. Only the row changes: the
   * backend never sees display names.
   * @throws InvalidInputError naming each bad field; NotFoundError
   */
  async update(ctx: RequestContext, id: string, input: UpdateVolumeInput): Promise<Volume> {
    check(UpdateVolumeInput, input, 'Invalid volume update');
    await this.#volumeRow(ctx, id);
    const changes = {
      ...(input.name !== undefined ? { name: input.name } : {}),
      ...(input.description !== undefined ? { description: input.description } : {}),
    };
    await this.#run(`update volume ${id}`, () =>
      this.#db
        .updateTable('volumes')
        .set({ ...changes, updated_at: currentTimestamp(this.#store.dialect) })
        .where('id', '=', id)
        .where('deleted', '=', false)
        .execute(),
    );
    return this.get(ctx, id);
  }

  /** The caller's volumes, oldest first, a page at a time (`marker` = last id of the previous page). */
  async list(ctx: RequestContext, options: ListVolumesOptions = {}): Promise<Volume[]> {
    check(ListVolumesOptions, options, 'Invalid volume listing');
    return this.#run('list volumes', async () => {
      const visible = this.#scopedVolumes(ctx);
      let query = visible.selectAll();
      if (options.status !== undefined) query = query.where('status', '=', options.status);
      return (await keysetPage(visible, query, options, 'volume')).map(toVolume);
    });
  }

  /**
   * Snapshot a volume: it must be `available` (or `in-use` with `force`). The row is inserted
   * `creating` and `create_snapshot` is cast to the volume's host.
   */
  async createSnapshot(
    ctx: RequestContext,
    volumeId: string,
    input: CreateSnapshotInput = {},
  ): Promise<Snapshot> {
    check(CreateSnapshotInput, input, 'Invalid snapshot');
    const volume = await this.#volumeRow(ctx, volumeId);
    const projectId = volume.project_id;
    const allowed: VolumeStatus[] = input.force ? ['available', 'in-use'] : ['available'];
    const id = randomUUID();
    const now = currentTimestamp(this.#store.dialect);
    const taken = await this.#run(`create snapshot of volume ${volumeId}`, () =>
      this.#db.transaction().execute(async (trx) => {
        await this.#lockProject(trx, projectId);
        // Touching the volume row locks it against a concurrent delete until this commits.
        const touched = await trx
          .updateTable('volumes')
          .set({ updated_at: now })
          .where('id', '=', volumeId)
          .where('deleted', '=', false)
          .where('status', 'in', allowed)
          .executeTakeFirst();
        if (touched.numUpdatedRows !== 1n) return false;
        const { count } = await trx
          .selectFrom('snapshots')
          .select((eb) => eb.fn.countAll<number | string | bigint>().as('count'))
          .where('deleted', '=', false)
          .where(
            projectId === null ? sql<boolean>`project_id is null` : sql<boolean>`project_id = ${projectId}`,
          )
          .executeTakeFirstOrThrow();
        this.#checkQuota(projectId, 'snapshots', Number(count), 1, 'snapshot');
        await trx
          .insertInto('snapshots')
          .values({
            id,
            project_id: projectId,
            user_id: ctx.userId,
            volume_id: volumeId,
            volume_size_gib: volume.size_gib,
            name: input.name ?? null,
            description: input.description ?? null,
            status: 'creating',
            provider_location: null,
            error_reason: null,
            created_at: now,
            updated_at: now,
            deleted_at: null,
            deleted: false,
          })
          .execute();
        return true;
      }),
    );
    if (!taken) {
      const current = await this.#volumeRow(ctx, volumeId);
      const hint =
        current.status === 'in-use' && !input.force
          ? ' Pass force: true to snapshot an attached volume (its data may be inconsistent).'
          : '';
      throw new InvalidStateError(
        `Volume ${volumeId} is ${current.status}; only ${allowed.join(' or ')} volumes can be snapshotted.${hint}`,
        { details: { volumeId, status: current.status } },
      );
    }
    const snapshot = await this.getSnapshot(ctx, id);
    await this.#castOrFail(
      ctx,
      volume.host ?? undefined,
      'create_snapshot',
      { volume_id: volumeId, snapshot_id: id },
      async (reason) => {
        await this.#transition('snapshots', id, ['creating'], 'error', { error_reason: reason });
      },
    );
    return snapshot;
  }

  /**
   * Start deleting a snapshot: `available|error|error_deleting → deleting`, then `delete_snapshot`
   * is cast to its volume's host. Refused while a volume is being created from it.
   */
  async deleteSnapshot(ctx: RequestContext, id: string): Promise<void> {
    const snapshot = await this.#snapshotRow(ctx, id);
    const now = currentTimestamp(this.#store.dialect);
    const moved = await this.#run(`delete snapshot ${id}`, async () => {
      const result = await this.#db
        .updateTable('snapshots')
        .set({ status: 'deleting', error_reason: null, updated_at: now })
        .where('id', '=', id)
        .where('deleted', '=', false)
        .where('status', 'in', [...SNAPSHOT_DELETABLE])
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('volumes')
                .select('volumes.id')
                .where('volumes.source_snapshot_id', '=', id)
                .where('volumes.status', '=', 'creating')
                .where('volumes.deleted', '=', false),
            ),
          ),
        )
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    });
    if (!moved) {
      const current = await this.#snapshotRow(ctx, id);
      const busy = SNAPSHOT_DELETABLE.includes(current.status)
        ? ' A volume is being created from it; wait until that volume is available or in error.'
        : '';
      throw new InvalidStateError(
        `Snapshot ${id} is ${current.status}; only ${SNAPSHOT_DELETABLE.join(', ')} snapshots can be deleted.${busy}`,
        { details: { snapshotId: id, status: current.status } },
      );
    }
    const host = await this.#hostOf(snapshot.volume_id);
    if (host === null) {
      await this.#transition('snapshots', id, ['deleting'], 'deleted', { deleted: true, deleted_at: now });
      return;
    }
    await this.#castOrFail(ctx, host, 'delete_snapshot', { snapshot_id: id }, async (reason) => {
      await this.#transition('snapshots', id, ['deleting'], 'error_deleting', { error_reason: reason });
    });
  }

  async getSnapshot(ctx: RequestContext, id: string): Promise<Snapshot> {
    return toSnapshot(await this.#snapshotRow(ctx, id));
  }

  async listSnapshots(ctx: RequestContext, options: ListSnapshotsOptions = {}): Promise<Snapshot[]> {
    check(ListSnapshotsOptions, options, 'Invalid snapshot listing');
    return this.#run('list snapshots', async () => {
      const visible = this.#scopedSnapshots(ctx);
      let query = visible.selectAll();
      if (options.volumeId !== undefined) query = query.where('volume_id', '=', options.volumeId);
      if (options.status !== undefined) query = query.where('status', '=', options.status);
      return (await keysetPage(visible, query, options, 'snapshot')).map(toSnapshot);
    });
  }

  /**
   * Grow a volume: `available → extending` (only if still at its current size), gigabyte quota
   * checked, then `extend_volume` is cast to its host.
   */
  async extend(ctx: RequestContext, id: string, newSize: number): Promise<Volume> {
    if (typeof newSize !== 'number' || !Number.isInteger(newSize) || newSize < 1) {
      throw new InvalidInputError('Invalid extend', [
        {
          path: '/newSize',
          message: `${JSON.stringify(newSize)} is not a whole number of GiB of at least 1`,
        },
      ]);
    }
    this.#checkSize(newSize, '/newSize');
    const volume = await this.#volumeRow(ctx, id);
    if (newSize <= volume.size_gib) {
      throw new InvalidInputError('Invalid extend', [
        {
          path: '/newSize',
          message: `${newSize} GiB is not larger than the volume's ${volume.size_gib} GiB`,
        },
      ]);
    }
    const now = currentTimestamp(this.#store.dialect);
    const moved = await this.#run(`extend volume ${id}`, () =>
      this.#db.transaction().execute(async (trx) => {
        await this.#lockProject(trx, volume.project_id);
        const usage = await this.#volumeUsage(trx, volume.project_id);
        this.#checkQuota(volume.project_id, 'gigabytes', usage.gigabytes, newSize - volume.size_gib, 'GiB');
        const result = await trx
          .updateTable('volumes')
          .set({ status: 'extending', error_reason: null, updated_at: now })
          .where('id', '=', id)
          .where('deleted', '=', false)
          .where('status', '=', 'available')
          .where('size_gib', '=', volume.size_gib)
          .executeTakeFirst();
        return result.numUpdatedRows === 1n;
      }),
    );
    if (!moved) {
      const current = await this.#volumeRow(ctx, id);
      throw new InvalidStateError(
        current.status === 'available'
          ? `Volume ${id} changed size meanwhile (now ${current.size_gib} GiB); read it again and retry.`
          : `Volume ${id} is ${current.status}; only available volumes can be extended (detach it first).`,
        { details: { volumeId: id, status: current.status } },
      );
    }
    const extending = await this.get(ctx, id);
    await this.#castOrFail(
      ctx,
      volume.host ?? undefined,
      'extend_volume',
      { volume_id: id, new_size: newSize },
      async (reason) => {
        await this.#transition('volumes', id, ['extending'], 'error_extending', { error_reason: reason });
      },
    );
    return extending;
  }

  /**
   * Let `connector` (a compute host's initiator) reach the volume: an RPC call to its host, which
   * answers with the protocol and target (portal, iqn, lun, CHAP).
   */
  async initializeConnection(ctx: RequestContext, id: string, connector: Connector): Promise<ConnectionInfo> {
    check(Connector, connector, 'Invalid connector', '/connector');
    const host = await this.#connectableHost(ctx, id);
    const info = await this.#rpc.call(
      ctx,
      { topic: this.topic, host },
      'initialize_connection',
      { volume_id: id, connector },
      this.#callOptions(),
    );
    const issues = schemaIssues(ConnectionInfo, info);
    if (issues.length) {
      throw new InvalidStateError(
        `Volume host ${host} answered initialize_connection with malformed connection info; check its driver.`,
        { details: { issues } },
      );
    }
    return info as ConnectionInfo;
  }

  /** Revoke `connector`'s access to the volume (a call to its host). */
  async terminateConnection(ctx: RequestContext, id: string, connector: Connector): Promise<void> {
    check(Connector, connector, 'Invalid connector', '/connector');
    const host = await this.#connectableHost(ctx, id);
    await this.#rpc.call(
      ctx,
      { topic: this.topic, host },
      'terminate_connection',
      { volume_id: id, connector },
      this.#callOptions(),
    );
  }

  /**
   * Record that `instanceId` uses the volume at `mountpoint`: reserve it (`available → attaching`,
   * conditional), then call its host, which makes it `in-use`. On failure the reservation is undone.
   */
  async attach(ctx: RequestContext, id: string, input: AttachInput): Promise<Volume> {
    check(AttachInput, input, 'Invalid attachment');
    const volume = await this.#volumeRow(ctx, id);
    const reserved = await this.#transition('volumes', id, ['available'], 'attaching', {
      attach_status: 'attaching',
      instance_id: input.instanceId,
      mountpoint: input.mountpoint,
    });
    if (!reserved) {
      const current = await this.#volumeRow(ctx, id);
      throw new InvalidStateError(
        `Volume ${id} is ${current.status}${current.instance_id ? ` (instance ${current.instance_id})` : ''}; only an available volume can be attached.`,
        { details: { volumeId: id, status: current.status, instanceId: current.instance_id } },
      );
    }
    try {
      await this.#rpc.call(
        ctx,
        { topic: this.topic, host: volume.host as string },
        'attach_volume',
        { volume_id: id, instance_id: input.instanceId, mountpoint: input.mountpoint },
        this.#callOptions(),
      );
    } catch (error) {
      await this.#transition('volumes', id, ['attaching'], 'available', {
        attach_status: 'detached',
        instance_id: null,
        mountpoint: null,
      }).catch(() => false);
      throw error;
    }
    return this.get(ctx, id);
  }

  /** Detach: `in-use → detaching` (conditional), then a call to its host, which makes it `available`. */
  async detach(ctx: RequestContext, id: string): Promise<Volume> {
    const volume = await this.#volumeRow(ctx, id);
    const moved = await this.#transition('volumes', id, ['in-use'], 'detaching', {
      attach_status: 'detaching',
    });
    if (!moved) {
      const current = await this.#volumeRow(ctx, id);
      throw new InvalidStateError(
        `Volume ${id} is ${current.status}; only an in-use volume can be detached.`,
        {
          details: { volumeId: id, status: current.status },
        },
      );
    }
    try {
      await this.#rpc.call(
        ctx,
        { topic: this.topic, host: volume.host as string },
        'detach_volume',
        { volume_id: id },
        this.#callOptions(),
      );
    } catch (error) {
      await this.#transition('volumes', id, ['detaching'], 'in-use', { attach_status: 'attached' }).catch(
        () => false,
      );
      throw error;
    }
    return this.get(ctx, id);
  }

  // --- internals ---

  #projectOf(ctx: RequestContext, action: string): string | null {
    if (ctx.projectId !== null) return ctx.projectId;
    if (ctx.isAdmin) return null;
    throw new ForbiddenError(`To ${action}, the request context must name a project (or be admin).`);
  }

  #checkSize(size: number, path: string): void {
    if (size > this.maxSizeGiB) {
      throw new InvalidInputError('Invalid volume size', [
        { path, message: `${size} GiB exceeds the largest volume allowed, ${this.maxSizeGiB} GiB` },
      ]);
    }
  }

  #checkQuota(
    projectId: string | null,
    resource: keyof VolumeQuotas,
    inUse: number,
    requested: number,
    unit: string,
  ): void {
    const limit = this.quotas[resource];
    if (inUse + requested <= limit) return;
    const units = (n: number) => `${n} ${unit}${unit === 'GiB' || n === 1 ? '' : 's'}`;
    throw new QuotaExceededError(
      `Quota exceeded for ${resource} in project ${projectId ?? '(none)'}: ${units(inUse)} in use of a limit of ${limit}, ${units(requested)} requested. Delete unused ${resource === 'snapshots' ? 'snapshots' : 'volumes'} or ask an administrator to raise the quota.`,
      { details: { projectId, resource, limit, inUse, requested } },
    );
  }

  /** PostgreSQL: serialise quota checks of one project (SQLite transactions already are serial). */
  async #lockProject(trx: Transaction<VolumeDatabase>, projectId: string | null): Promise<void> {
    if (this.#store.dialect !== 'postgres') return;
    await sql`select pg_advisory_xact_lock(hashtext(${`stratus-volume-quota:${projectId ?? ''}`}))`.execute(
      trx,
    );
  }

  async #lockVolume(trx: Transaction<VolumeDatabase>, id: string): Promise<void> {
    if (this.#store.dialect !== 'postgres') return;
    await trx.selectFrom('volumes').select('id').where('id', '=', id).forUpdate().execute();
  }

  async #volumeUsage(
    trx: Transaction<VolumeDatabase>,
    projectId: string | null,
  ): Promise<{ volumes: number; gigabytes: number }> {
    const row = await (projectId === null ? this.#usage.none : this.#usage.project).executeTakeFirst(trx, {
      projectId: projectId ?? '',
    });
    if (!row) throw new Error('the volume usage query returned no row');
    return { volumes: Number(row.volumes), gigabytes: Number(row.gigabytes) };
  }

  #scopedVolumes(ctx: RequestContext): SelectQueryBuilder<VolumeDatabase, 'volumes', object> {
    let query = this.#db.selectFrom('volumes');
    if (!ctx.readDeleted) query = query.where('deleted', '=', false);
    if (!ctx.isAdmin)
      query =
        ctx.projectId === null
          ? query.where(sql<boolean>`1 = 0`)
          : query.where('project_id', '=', ctx.projectId);
    return query;
  }

  #scopedSnapshots(ctx: RequestContext): SelectQueryBuilder<VolumeDatabase, 'snapshots', object> {
    let query = this.#db.selectFrom('snapshots');
    if (!ctx.readDeleted) query = query.where('deleted', '=', false);
    if (!ctx.isAdmin)
      query =
        ctx.projectId === null
          ? query.where(sql<boolean>`1 = 0`)
          : query.where('project_id', '=', ctx.projectId);
    return query;
  }

  /**
   * `available|error|… → deleting` unless the volume has snapshots, in the caller's scope (as `get`:
   * another project's volume is not found, not deleted), returning its host; compiled once per scope.
   */
  #startDelete(
    ctx: RequestContext,
  ): PreparedQuery<{ id: string; projectId: string }, { host: string | null }> {
    const key = `delete ${ctx.isAdmin ? 'a' : ctx.projectId === null ? 'n' : 'p'}`;
    let start = this.#deletes.get(key);
    if (!start) {
      const { isAdmin, projectId } = ctx;
      const now = currentTimestamp(this.#store.dialect);
      start = new PreparedQuery<{ id: string; projectId: string }, { host: string | null }>(
        (slot) => {
          let query = this.#db
            .updateTable('volumes')
            .set({ status: 'deleting', error_reason: null, updated_at: now })
            .where('id', '=', slot('id'))
            .where('deleted', '=', false)
            .where('status', 'in', [...DELETABLE])
            .where(({ not, exists, selectFrom }) =>
              not(
                exists(
                  selectFrom('snapshots')
                    .select('snapshots.id')
                    .where('snapshots.volume_id', '=', slot('id'))
                    .where('snapshots.deleted', '=', false),
                ),
              ),
            );
          if (!isAdmin)
            query =
              projectId === null
                ? query.where(sql<boolean>`1 = 0`)
                : query.where('project_id', '=', slot('projectId'));
          return query.returning('host');
        },
        ['id'],
      );
      this.#deletes.set(key, start);
    }
    return start;
  }

  /** The prepared form of `#scopedVolumes(ctx).selectAll().where('id', '=', id)`. */
  #volumeRead(ctx: RequestContext): PreparedQuery<{ id: string; projectId: string }, VolumeRow> {
    const key = `${ctx.readDeleted ? 'd' : '-'}${ctx.isAdmin ? 'a' : ctx.projectId === null ? 'n' : 'p'}`;
    let read = this.#volumeReads.get(key);
    if (!read) {
      const { readDeleted, isAdmin, projectId } = ctx;
      read = new PreparedQuery<{ id: string; projectId: string }, VolumeRow>(
        (slot) => {
          let query = this.#db.selectFrom('volumes');
          if (!readDeleted) query = query.where('deleted', '=', false);
          if (!isAdmin)
            query =
              projectId === null
                ? query.where(sql<boolean>`1 = 0`)
                : query.where('project_id', '=', slot('projectId'));
          return query.selectAll().where('id', '=', slot('id'));
        },
        ['id'],
      );
      this.#volumeReads.set(key, read);
    }
    return read;
  }

  async #volumeRow(ctx: RequestContext, id: string): Promise<VolumeRow> {
    const row = await this.#run(`read volume ${id}`, () =>
      this.#volumeRead(ctx).executeTakeFirst(this.#db, { id: String(id), projectId: ctx.projectId ?? '' }),
    );
    if (!row) throw new NotFoundError('Volume', String(id));
    return row;
  }

  async #snapshotRow(ctx: RequestContext, id: string): Promise<SnapshotRow> {
    const row = await this.#run(`read snapshot ${id}`, () =>
      this.#scopedSnapshots(ctx).selectAll().where('id', '=', String(id)).executeTakeFirst(),
    );
    if (!row) throw new NotFoundError('Snapshot', String(id));
    return row;
  }

  async #hostOf(volumeId: string): Promise<string | null> {
    const row = await this.#run(`read volume ${volumeId}`, () =>
      this.#db.selectFrom('volumes').select('host').where('id', '=', volumeId).executeTakeFirst(),
    );
    return row?.host ?? null;
  }

  async #connectableHost(ctx: RequestContext, id: string): Promise<string> {
    const volume = await this.#volumeRow(ctx, id);
    if (!CONNECTABLE.includes(volume.status) || volume.host === null) {
      throw new InvalidStateError(
        `Volume ${id} is ${volume.status}; connections are only made to ${CONNECTABLE.join(', ')} volumes.`,
        { details: { volumeId: id, status: volume.status } },
      );
    }
    return volume.host;
  }

  async #whyNotDeletable(ctx: RequestContext, id: string): Promise<Error> {
    const current = await this.#volumeRow(ctx, id);
    const snapshots = await this.#run(`count snapshots of volume ${id}`, () =>
      this.#db
        .selectFrom('snapshots')
        .select('id')
        .where('volume_id', '=', id)
        .where('deleted', '=', false)
        .execute(),
    );
    const details = { volumeId: id, status: current.status, snapshots: snapshots.map((s) => s.id) };
    if (['attaching', 'in-use', 'detaching'].includes(current.status)) {
      return new InvalidStateError(
        `Volume ${id} is ${current.status}${current.instance_id ? ` (instance ${current.instance_id})` : ''}; detach it before deleting it.`,
        { details },
      );
    }
    if (DELETABLE.includes(current.status) && snapshots.length > 0) {
      return new InvalidStateError(
        `Volume ${id} has ${snapshots.length} snapshot(s) (${details.snapshots.join(', ')}); delete them before the volume.`,
        { details },
      );
    }
    return new InvalidStateError(
      `Volume ${id} is ${current.status}; only ${DELETABLE.join(', ')} volumes can be deleted.`,
      { details },
    );
  }

  #transition(
    table: 'volumes' | 'snapshots',
    id: string,
    from: readonly string[],
    to: string,
    set: Partial<Record<keyof VolumesTable | keyof SnapshotsTable, unknown>> = {},
  ): Promise<boolean> {
    return transitionStatus(this.#store.db, table, id, {
      from,
      to,
      set: { ...set, updated_at: currentTimestamp(this.#store.dialect) },
    });
  }

  /** Cast; when the transport refuses it, record why with `onFailure` and rethrow. */
  async #castOrFail(
    ctx: RequestContext,
    host: string | undefined,
    method: string,
    args: Record<string, unknown>,
    onFailure: (reason: string) => Promise<void>,
  ): Promise<void> {
    const target = host === undefined ? { topic: this.topic } : { topic: this.topic, host };
    try {
      await this.#rpc.cast(ctx, target, method, args, { version: VOLUME_RPC_VERSION });
    } catch (error) {
      const where = host === undefined ? this.topic : `${this.topic}.${host}`;
      await onFailure(`${method} could not be sent to ${where}: ${(error as Error).message}`).catch(
        () => undefined,
      );
      throw error;
    }
  }

  #callOptions(): { version: string; timeout?: number } {
    return this.#callTimeoutMs === undefined
      ? { version: VOLUME_RPC_VERSION }
      : { version: VOLUME_RPC_VERSION, timeout: this.#callTimeoutMs };
  }

  #run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return withStoreErrors({ operation, url: this.#store.url }, fn);
  }
}

function check(schema: TSchema, value: unknown, message: string, at = ''): void {
  const issues = schemaIssues(schema, value);
  if (issues.length) {
    throw new InvalidInputError(
      message,
      issues.map((i) => ({ path: `${at}${i.path}`, message: i.message })),
    );
  }
}
