import { randomBytes, randomUUID } from 'node:crypto';
import {
  Flavor,
  ForbiddenError,
  InvalidInputError,
  InvalidStateError,
  isRemoteError,
  keysetPage,
  NotFoundError,
  RebootType,
  type RequestContext,
  type RpcClient,
  type Store,
  StratusError,
  schemaIssues,
  toBoolean,
} from '@stratus/core';
import { VolumeApi } from '@stratus/manager-volume/client';
import { type SelectQueryBuilder, sql } from 'kysely';
import type { TSchema } from 'typebox';
import { InstanceStore } from './instance-store.js';
import { ACTIONS, type ActionRule, ATTACHABLE, CONSOLE_READABLE, DETACHABLE, TERMINABLE } from './states.js';
import {
  type ComputeDatabase,
  type InstanceRow,
  toAttachment,
  toInstance,
  type VolumeAttachmentRow,
} from './tables.js';
import {
  AttachVolumeInput,
  DEFAULT_FLAVORS,
  type FlavorTable,
  type Instance,
  ListInstancesOptions,
  RescueInput,
  RunInstanceInput,
  type VmState,
  type VolumeAttachment,
} from './types.js';
import { COMPUTE_RPC_VERSION, COMPUTE_TOPIC } from './wire.js';

export { computeMigrations } from './migrations.js';
export * from './states.js';
export * from './tables.js';
export * from './types.js';
export * from './wire.js';

export interface ComputeApiOptions {
  /** The store holding the compute (and volume) tables. */
  readonly store: Store;
  /** Sends casts and calls to the compute hosts. */
  readonly rpc: RpcClient;
  /** The compute service's topic; default `compute`. */
  readonly topic?: string;
  /** Flavors `run` accepts by name; default OpenStack's m1.tiny … m1.xlarge. */
  readonly flavors?: FlavorTable;
  /** Timeout of the RPC calls (console, attach, detach) in ms; the RpcClient's default otherwise. */
  readonly callTimeoutMs?: number;
  /** The volume API used to check volumes before attaching; one on the same store and rpc otherwise. */
  readonly volumeApi?: VolumeApi;
  /** The volume service's topic, for the default `volumeApi`; default `volume`. */
  readonly volumeTopic?: string;
}

/** The outcome of `rescue`: the instance (`rescuing`) and the rescue image's admin password. */
export interface RescueResult {
  readonly instance: Instance;
  readonly password: string;
}

/**
 * The compute service's typed API, for the HTTP API and the CLI: validates input and the state an
 * action needs (one conditional update, so a pause of a stopped instance is `InvalidState` and never
 * reaches a driver), sets `task_state`, then sends the RPC. Reads are scoped to the caller's project
 * unless the context is admin; another project's instance is `NotFound`.
 */
export class ComputeApi {
  readonly topic: string;
  readonly flavors: FlavorTable;
  readonly volumes: VolumeApi;
  readonly #instances: InstanceStore;
  readonly #rpc: RpcClient;
  readonly #callTimeoutMs: number | undefined;

  constructor(options: ComputeApiOptions) {
    this.#instances = new InstanceStore(options.store);
    this.#rpc = options.rpc;
    this.topic = options.topic ?? COMPUTE_TOPIC;
    this.#callTimeoutMs = options.callTimeoutMs;
    this.flavors = Object.freeze({ ...(options.flavors ?? DEFAULT_FLAVORS) });
    const bad = Object.entries(this.flavors).flatMap(([name, f]) =>
      schemaIssues(Flavor, { name, ...f }).map((i) => ({
        path: `/flavors/${name}${i.path}`,
        message: i.message,
      })),
    );
    if (bad.length) throw new InvalidInputError('Invalid ComputeApi flavors', bad);
    this.volumes =
      options.volumeApi ??
      new VolumeApi({
        store: options.store,
        rpc: options.rpc,
        ...(options.volumeTopic === undefined ? {} : { topic: options.volumeTopic }),
        ...(options.callTimeoutMs === undefined ? {} : { callTimeoutMs: options.callTimeoutMs }),
      });
  }

  /**
   * Boot an instance: the row is inserted `building`/`scheduling` and `run_instance` is cast to the
   * topic (any compute host takes it and becomes its host). Returns the row as written; poll `get`
   * for `active` or `error` (with `errorReason`).
   * @throws InvalidInputError naming each bad field (an unknown flavor lists the known ones).
   */
  async run(ctx: RequestContext, input: RunInstanceInput): Promise<Instance> {
    check(RunInstanceInput, input, 'Invalid instance');
    const flavor = this.#flavor(input.flavor);
    const projectId = this.#projectOf(ctx, 'run an instance');
    const id = randomUUID();
    const now = this.#instances.now();
    await this.#instances.run(`create instance ${id}`, () =>
      this.#db
        .insertInto('instances')
        .values({
          id,
          project_id: projectId,
          user_id: ctx.userId,
          host: null,
          name: input.name,
          flavor_name: flavor.name,
          vcpus: flavor.vcpus,
          memory_mib: flavor.memoryMiB,
          root_gib: flavor.rootGiB,
          image_ref: input.imageRef,
          vm_state: 'building',
          task_state: 'scheduling',
          power_state: 'nostate',
          locked: false,
          locked_by: null,
          error_reason: null,
          launched_at: null,
          terminated_at: null,
          rescued_at: null,
          created_at: now,
          updated_at: now,
          deleted_at: null,
          deleted: false,
        })
        .execute(),
    );
    const created = await this.get(ctx, id);
    try {
      await this.#rpc.cast(
        ctx,
        { topic: this.topic },
        'run_instance',
        { instance_id: id },
        this.#castOptions(),
      );
    } catch (error) {
      await this.#instances
        .update(
          id,
          { taskStates: ['scheduling'] },
          {
            vm_state: 'error',
            task_state: null,
            error_reason: `run_instance could not be sent to ${this.topic}: ${(error as Error).message}`,
          },
        )
        .catch(() => false);
      throw error;
    }
    return created;
  }

  /**
   * Delete an instance from any state but `deleted` (task_state → `deleting`); its host detaches its
   * volumes, destroys it, and soft-deletes the row. One that never got a host is deleted at once.
   */
  async terminate(ctx: RequestContext, id: string): Promise<void> {
    await this.#row(ctx, id);
    const moved = await this.#instances.update(
      id,
      { vmStates: TERMINABLE, notTaskState: 'deleting', unlocked: !ctx.isAdmin },
      { task_state: 'deleting' },
    );
    if (!moved) throw await this.#whyNot(ctx, id, 'terminate', TERMINABLE, true);
    const row = await this.#row(ctx, id);
    if (row.host === null) {
      // Never taken by a host (the claim needs `scheduling`, now gone): nothing exists anywhere.
      const now = this.#instances.now();
      await this.#instances.update(
        id,
        { taskStates: ['deleting'] },
        { vm_state: 'deleted', task_state: null, terminated_at: now, deleted: true, deleted_at: now },
      );
      return;
    }
    await this.#castOrRevert(ctx, row.host, 'terminate_instance', { instance_id: id }, id, 'deleting');
  }

  /** Reboot: `SOFT` (default) asks the guest, from `active`; `HARD` resets it, also from paused, stopped or error. */
  async reboot(ctx: RequestContext, id: string, type: RebootType = 'SOFT'): Promise<Instance> {
    check(RebootType, type, 'Invalid reboot type', '/type');
    return this.#act(ctx, id, type === 'HARD' ? ACTIONS.reboot_hard : ACTIONS.reboot_soft, {
      reboot_type: type,
    });
  }

  /** Power off (`active`, `paused`, `suspended` → `stopped`). */
  stop(ctx: RequestContext, id: string): Promise<Instance> {
    return this.#act(ctx, id, ACTIONS.stop);
  }

  /** Power on (`stopped` → `active`). */
  start(ctx: RequestContext, id: string): Promise<Instance> {
    return this.#act(ctx, id, ACTIONS.start);
  }

  /** `active` → `paused`. */
  pause(ctx: RequestContext, id: string): Promise<Instance> {
    return this.#act(ctx, id, ACTIONS.pause);
  }

  /** `paused` → `active`. */
  unpause(ctx: RequestContext, id: string): Promise<Instance> {
    return this.#act(ctx, id, ACTIONS.unpause);
  }

  /** `active`, `paused` → `suspended`. */
  suspend(ctx: RequestContext, id: string): Promise<Instance> {
    return this.#act(ctx, id, ACTIONS.suspend);
  }

  /** `suspended` → `active`. */
  resume(ctx: RequestContext, id: string): Promise<Instance> {
    return this.#act(ctx, id, ACTIONS.resume);
  }

  /**
   * Boot from the rescue image (`active`, `stopped` → `rescued`), keeping the instance's disk.
   * Resolves the password of the rescue image's admin account (generated unless given).
   */
  async rescue(ctx: RequestContext, id: string, input: RescueInput = {}): Promise<RescueResult> {
    check(RescueInput, input, 'Invalid rescue');
    const password = input.password ?? randomBytes(12).toString('base64url');
    const instance = await this.#act(ctx, id, ACTIONS.rescue, { rescue_password: password });
    return { instance, password };
  }

  /** Back to the instance's own disk (`rescued` → `active`). */
  unrescue(ctx: RequestContext, id: string): Promise<Instance> {
    return this.#act(ctx, id, ACTIONS.unrescue);
  }

  /** The guest's console log (a call to its host). */
  async getConsoleOutput(ctx: RequestContext, id: string): Promise<string> {
    const row = await this.#row(ctx, id);
    if (!CONSOLE_READABLE.includes(row.vm_state) || row.host === null) {
      throw new InvalidStateError(
        `Instance ${id} is ${row.vm_state}; its console can be read when it is ${CONSOLE_READABLE.join(', ')}.`,
        { details: { instanceId: id, vmState: row.vm_state } },
      );
    }
    const output = await this.#rpc.call(
      ctx,
      { topic: this.topic, host: row.host },
      'get_console_output',
      { instance_id: id },
      this.#callOptions(),
    );
    return typeof output === 'string' ? output : '';
  }

  /**
   * Attach an `available` volume of the caller's project at `mountpoint`: an attachment row is
   * recorded (`attaching`), then the instance's host is called; it connects the volume on its
   * volume host, attaches it in the hypervisor and records it `in-use`, undoing every step on a
   * failure. Resolves the attachment (`attached`).
   * @throws InvalidStateError when the instance or the volume is not in a state to attach, or the
   *   volume or device is taken; NotFound for a volume the caller cannot see.
   */
  async attachVolume(ctx: RequestContext, id: string, input: AttachVolumeInput): Promise<VolumeAttachment> {
    check(AttachVolumeInput, input, 'Invalid attachment');
    const row = await this.#row(ctx, id);
    const volume = await this.volumes.get(ctx, input.volumeId);
    if (volume.status !== 'available') {
      throw new InvalidStateError(
        `Volume ${volume.id} is ${volume.status}${volume.instanceId ? ` (instance ${volume.instanceId})` : ''}; only an available volume can be attached.`,
        { details: { volumeId: volume.id, status: volume.status } },
      );
    }
    const attachmentId = randomUUID();
    const now = this.#instances.now();
    const recorded = await this.#instances
      .run(`record attachment of volume ${volume.id}`, () =>
        this.#db.transaction().execute(async (trx) => {
          // Touching the instance row checks its state and locks it against a racing terminate.
          const touched = await trx
            .updateTable('instances')
            .set({ updated_at: now })
            .where('id', '=', id)
            .where('deleted', '=', false)
            .where('vm_state', 'in', [...ATTACHABLE])
            .where('task_state', 'is', null)
            .where('host', 'is not', null)
            .$if(!ctx.isAdmin, (q) => q.where('locked', '=', false))
            .executeTakeFirst();
          if (touched.numUpdatedRows !== 1n) return false;
          await trx
            .insertInto('volume_attachments')
            .values({
              id: attachmentId,
              instance_id: id,
              volume_id: volume.id,
              mountpoint: input.mountpoint,
              status: 'attaching',
              connection_info: null,
              created_at: now,
              updated_at: now,
            })
            .execute();
          return true;
        }),
      )
      .catch(async (error: unknown) => {
        if (StratusError.is(error, 'CONFLICT')) throw await this.#whyTaken(id, volume.id, input.mountpoint);
        throw error;
      });
    if (!recorded) throw await this.#whyNot(ctx, id, 'attach a volume to', ATTACHABLE);
    try {
      await this.#rpc.call(
        ctx,
        { topic: this.topic, host: row.host as string },
        'attach_volume',
        { instance_id: id, volume_id: volume.id, mountpoint: input.mountpoint },
        this.#callOptions(),
      );
    } catch (error) {
      // The host undoes what it did and removes the row itself; only when the request cannot
      // have reached it is the row ours to remove. After a timeout it may still be working.
      if (!isRemoteError(error) && !StratusError.is(error, 'TIMEOUT')) {
        await this.#instances
          .run(`remove attachment ${attachmentId}`, () =>
            this.#db
              .deleteFrom('volume_attachments')
              .where('id', '=', attachmentId)
              .where('status', '=', 'attaching')
              .execute(),
          )
          .catch(() => undefined);
      }
      throw error;
    }
    return toAttachment(await this.#attachmentRow(id, volume.id));
  }

  /**
   * Detach a volume from the instance (its attachment `attached` → `detaching`, then a call to the
   * instance's host, which detaches it in the hypervisor, revokes the connection and makes the
   * volume `available`).
   */
  async detachVolume(ctx: RequestContext, id: string, volumeId: string): Promise<void> {
    check(AttachVolumeInput.properties.volumeId, volumeId, 'Invalid volume id', '/volumeId');
    const row = await this.#row(ctx, id);
    const attachment = await this.#attachmentRow(id, volumeId);
    const now = this.#instances.now();
    const moved = await this.#instances.run(`detach volume ${volumeId}`, () =>
      this.#db.transaction().execute(async (trx) => {
        const touched = await trx
          .updateTable('instances')
          .set({ updated_at: now })
          .where('id', '=', id)
          .where('deleted', '=', false)
          .where('vm_state', 'in', [...DETACHABLE])
          .where('task_state', 'is', null)
          .$if(!ctx.isAdmin, (q) => q.where('locked', '=', false))
          .executeTakeFirst();
        if (touched.numUpdatedRows !== 1n) return 'instance';
        const result = await trx
          .updateTable('volume_attachments')
          .set({ status: 'detaching', updated_at: now })
          .where('id', '=', attachment.id)
          .where('status', '=', 'attached')
          .executeTakeFirst();
        return result.numUpdatedRows === 1n ? 'ok' : 'attachment';
      }),
    );
    if (moved === 'instance') throw await this.#whyNot(ctx, id, 'detach a volume from', DETACHABLE);
    if (moved === 'attachment') {
      const current = await this.#attachmentRow(id, volumeId);
      throw new InvalidStateError(
        `Volume ${volumeId} is ${current.status} on instance ${id}; wait until that finishes, then retry.`,
        { details: { instanceId: id, volumeId, status: current.status } },
      );
    }
    try {
      await this.#rpc.call(
        ctx,
        { topic: this.topic, host: row.host as string },
        'detach_volume',
        { instance_id: id, volume_id: volumeId },
        this.#callOptions(),
      );
    } catch (error) {
      if (!isRemoteError(error) && !StratusError.is(error, 'TIMEOUT')) {
        await this.#instances
          .run(`restore attachment ${attachment.id}`, () =>
            this.#db
              .updateTable('volume_attachments')
              .set({ status: 'attached', updated_at: this.#instances.now() })
              .where('id', '=', attachment.id)
              .where('status', '=', 'detaching')
              .execute(),
          )
          .catch(() => undefined);
      }
      throw error;
    }
  }

  /** The volumes attached (or being attached) to an instance, oldest first. */
  async listAttachments(ctx: RequestContext, id: string): Promise<VolumeAttachment[]> {
    await this.#row(ctx, id);
    const rows = await this.#instances.run(`list attachments of instance ${id}`, () =>
      this.#db
        .selectFrom('volume_attachments')
        .selectAll()
        .where('instance_id', '=', id)
        .orderBy('created_at')
        .orderBy('id')
        .execute(),
    );
    return rows.map(toAttachment);
  }

  /**
   * Lock the instance: from now on only admins may act on it. An admin's lock can only be lifted
   * by an admin; locking again is a no-op.
   */
  async lock(ctx: RequestContext, id: string): Promise<Instance> {
    await this.#row(ctx, id);
    await this.#instances.run(`lock instance ${id}`, () =>
      this.#db
        .updateTable('instances')
        .set({ locked: true, locked_by: ctx.isAdmin ? 'admin' : 'owner', updated_at: this.#instances.now() })
        .where('id', '=', id)
        .where('deleted', '=', false)
        // Never turn an admin's lock into the owner's.
        .$if(!ctx.isAdmin, (q) => q.where('locked', '=', false))
        .execute(),
    );
    return this.get(ctx, id);
  }

  /** Unlock the instance (a non-admin only when its project locked it). Unlocking an unlocked one is a no-op. */
  async unlock(ctx: RequestContext, id: string): Promise<Instance> {
    await this.#row(ctx, id);
    const result = await this.#instances.run(`unlock instance ${id}`, () =>
      this.#db
        .updateTable('instances')
        .set({ locked: false, locked_by: null, updated_at: this.#instances.now() })
        .where('id', '=', id)
        .where('deleted', '=', false)
        .where('locked', '=', true)
        .$if(!ctx.isAdmin, (q) => q.where('locked_by', '=', 'owner'))
        .executeTakeFirst(),
    );
    if (result.numUpdatedRows !== 1n) {
      const row = await this.#row(ctx, id);
      if (row.locked_by === 'admin' && !ctx.isAdmin) {
        throw new ForbiddenError(`Instance ${id} was locked by an administrator; ask one to unlock it.`, {
          details: { instanceId: id, lockedBy: 'admin' },
        });
      }
    }
    return this.get(ctx, id);
  }

  /** One instance of the caller's project (any project for admin). @throws NotFoundError */
  async get(ctx: RequestContext, id: string): Promise<Instance> {
    return toInstance(await this.#row(ctx, id));
  }

  /** The caller's instances, oldest first, a page at a time (`marker` = last id of the previous page). */
  async list(ctx: RequestContext, options: ListInstancesOptions = {}): Promise<Instance[]> {
    check(ListInstancesOptions, options, 'Invalid instance listing');
    return this.#instances.run('list instances', async () => {
      const visible = this.#scoped(ctx);
      let query = visible.selectAll();
      if (options.vmState !== undefined) query = query.where('vm_state', '=', options.vmState);
      if (options.host !== undefined) query = query.where('host', '=', options.host);
      return (await keysetPage(visible, query, options, 'instance')).map(toInstance);
    });
  }

  // --- internals ---

  get #db() {
    return this.#instances.db;
  }

  /** Move task_state null → `rule.task` from `rule.from` (one conditional update), then cast. */
  async #act(
    ctx: RequestContext,
    id: string,
    rule: ActionRule,
    args: Record<string, unknown> = {},
  ): Promise<Instance> {
    await this.#row(ctx, id);
    const moved = await this.#instances.update(
      id,
      { vmStates: rule.from, taskStates: [null], unlocked: !ctx.isAdmin },
      { task_state: rule.task },
    );
    if (!moved) throw await this.#whyNot(ctx, id, rule.verb, rule.from);
    const row = await this.#row(ctx, id);
    if (row.host === null) {
      await this.#instances.update(id, { taskStates: [rule.task] }, { task_state: null });
      throw new InvalidStateError(`Instance ${id} has no host; it cannot be ${rule.verb}ed.`);
    }
    await this.#castOrRevert(ctx, row.host, rule.method, { instance_id: id, ...args }, id, rule.task);
    return toInstance(row);
  }

  /** Why a guarded update did not apply, as the typed error to throw. */
  async #whyNot(
    ctx: RequestContext,
    id: string,
    verb: string,
    from: readonly VmState[],
    anyTask = false,
  ): Promise<StratusError> {
    const row = await this.#row(ctx, id);
    const details = {
      instanceId: id,
      vmState: row.vm_state,
      taskState: row.task_state,
      locked: toBoolean(row.locked),
    };
    if (toBoolean(row.locked) && !ctx.isAdmin) {
      const how =
        row.locked_by === 'admin' ? 'an administrator locked it; ask one to unlock it' : 'unlock it first';
      return new InvalidStateError(`Instance ${id} is locked: ${how}, then ${verb} it.`, {
        details: { ...details, reason: 'locked' },
      });
    }
    if (row.task_state !== null && (!anyTask || row.task_state === 'deleting')) {
      return new InvalidStateError(
        `Instance ${id} is busy (${row.task_state}); wait until that finishes, then ${verb} it.`,
        { details: { ...details, reason: 'busy' } },
      );
    }
    return new InvalidStateError(
      `Instance ${id} is ${row.vm_state}; to ${verb} it, it must be ${from.join(' or ')}.`,
      { details: { ...details, reason: 'vm_state' } },
    );
  }

  async #whyTaken(id: string, volumeId: string, mountpoint: string): Promise<StratusError> {
    const taken = await this.#instances.run(`read attachments of volume ${volumeId}`, () =>
      this.#db
        .selectFrom('volume_attachments')
        .selectAll()
        .where((eb) =>
          eb.or([
            eb('volume_id', '=', volumeId),
            eb.and([eb('instance_id', '=', id), eb('mountpoint', '=', mountpoint)]),
          ]),
        )
        .executeTakeFirst(),
    );
    if (taken && taken.volume_id !== volumeId) {
      return new InvalidStateError(
        `Device ${mountpoint} of instance ${id} is taken by volume ${taken.volume_id}; choose another device name.`,
        { details: { instanceId: id, mountpoint, volumeId: taken.volume_id, reason: 'mountpoint_in_use' } },
      );
    }
    return new InvalidStateError(
      `Volume ${volumeId} is already being attached${taken ? ` to instance ${taken.instance_id}` : ''}; detach it first.`,
      { details: { volumeId, instanceId: taken?.instance_id ?? null, reason: 'volume_in_use' } },
    );
  }

  async #castOrRevert(
    ctx: RequestContext,
    host: string,
    method: string,
    args: Record<string, unknown>,
    id: string,
    task: NonNullable<InstanceRow['task_state']>,
  ): Promise<void> {
    try {
      await this.#rpc.cast(ctx, { topic: this.topic, host }, method, args, this.#castOptions());
    } catch (error) {
      await this.#instances.update(id, { taskStates: [task] }, { task_state: null }).catch(() => false);
      throw error;
    }
  }

  #flavor(requested: RunInstanceInput['flavor']): Flavor {
    if (typeof requested !== 'string') return requested;
    const known = this.flavors[requested];
    if (!known) {
      throw new InvalidInputError('Invalid instance', [
        {
          path: '/flavor',
          message: `unknown flavor ${JSON.stringify(requested)}; known: ${Object.keys(this.flavors).join(', ')}`,
        },
      ]);
    }
    return { name: requested, ...known };
  }

  #projectOf(ctx: RequestContext, action: string): string | null {
    if (ctx.projectId !== null) return ctx.projectId;
    if (ctx.isAdmin) return null;
    throw new ForbiddenError(`To ${action}, the request context must name a project (or be admin).`);
  }

  #scoped(ctx: RequestContext): SelectQueryBuilder<ComputeDatabase, 'instances', object> {
    let query = this.#db.selectFrom('instances');
    if (!ctx.readDeleted) query = query.where('deleted', '=', false);
    if (!ctx.isAdmin)
      query =
        ctx.projectId === null
          ? query.where(sql<boolean>`1 = 0`)
          : query.where('project_id', '=', ctx.projectId);
    return query;
  }

  async #row(ctx: RequestContext, id: string): Promise<InstanceRow> {
    const row = await this.#instances.run(`read instance ${id}`, () =>
      this.#scoped(ctx).selectAll().where('id', '=', String(id)).executeTakeFirst(),
    );
    if (!row) throw new NotFoundError('Instance', String(id));
    return row;
  }

  async #attachmentRow(instanceId: string, volumeId: string): Promise<VolumeAttachmentRow> {
    const row = await this.#instances.run(`read attachment of volume ${volumeId}`, () =>
      this.#db
        .selectFrom('volume_attachments')
        .selectAll()
        .where('instance_id', '=', instanceId)
        .where('volume_id', '=', volumeId)
        .executeTakeFirst(),
    );
    if (!row) throw new NotFoundError('Volume attachment', `${volumeId} on instance ${instanceId}`);
    return row;
  }

  #castOptions(): { version: string } {
    return { version: COMPUTE_RPC_VERSION };
  }

  #callOptions(): { version: string; timeout?: number } {
    return this.#callTimeoutMs === undefined
      ? { version: COMPUTE_RPC_VERSION }
      : { version: COMPUTE_RPC_VERSION, timeout: this.#callTimeoutMs };
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
