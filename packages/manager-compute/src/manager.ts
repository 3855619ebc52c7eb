import {
  type AvailableResources,
  type CallInfo,
  type ComputeDriver,
  type ConnectionInfo,
  type Connector,
  defineEndpoints,
  endpoint,
  InvalidStateError,
  type Logger,
  Manager,
  type ManagerEnv,
  NotFoundError,
  type PeriodicTaskTable,
  type PowerState,
  periodicTask,
  RequestContext,
  retryWhileStoreUnavailable,
  StratusError,
  toBoolean,
  withDriverTimeout,
} from '@stratus/core';
import { VolumeApi } from '@stratus/manager-volume/client';
import { sql } from 'kysely';
import type { ComputeManagerConfig } from './config.js';
import { type InstanceGuard, InstanceStore, type InstanceUpdate } from './instance-store.js';
import { ACTIONS, type ActionRule, ATTACHABLE, vmStateOfPower } from './states.js';
import {
  connectionInfoOf,
  errorReason,
  type InstanceRow,
  instanceName,
  instanceSpec,
  type VolumeAttachmentRow,
} from './tables.js';
import type { TaskState, VmState } from './types.js';
import {
  AttachVolumeArgs,
  COMPUTE_RPC_VERSION,
  DetachVolumeArgs,
  InstanceIdArgs,
  RebootArgs,
  RescueArgs,
} from './wire.js';

/** `error_reason` of operations a restart cut short. */
export const INTERRUPTED_REASON = 'interrupted by a service restart';

/** `error_reason` of an instance the hypervisor no longer has. */
export const MISSING_REASON =
  'the hypervisor no longer knows this instance (removed outside Stratus?); terminate it, or hard-reboot it if the driver can recreate it';

/** Power actions whose outcome `initHost` reads back from the hypervisor's power state. */
const POWER_TASKS: ReadonlySet<TaskState> = new Set([
  'rebooting',
  'rebooting_hard',
  'stopping',
  'starting',
  'pausing',
  'unpausing',
  'suspending',
  'resuming',
]);

/**
 * The compute service's business logic on one hypervisor host (Nova's ComputeManager). The API
 * sets `task_state`; the handler here runs the driver and settles vm_state, power_state and clears
 * task_state with conditional updates. Requests for one instance run one at a time on this host;
 * a request whose task_state is no longer current (a redelivery) changes nothing.
 */
export class ComputeManager extends Manager<ComputeDriver> {
  readonly rpcVersion = COMPUTE_RPC_VERSION;
  readonly config: ComputeManagerConfig;
  readonly endpoints;
  /** The volume API this host uses for connections and attach bookkeeping. */
  readonly volumes: VolumeApi;
  readonly #instances: InstanceStore;
  /** Per-instance queue: the tail promise of the requests running for that instance here. */
  readonly #queues = new Map<string, Promise<void>>();
  #stopping = false;
  /** Aborted at stop: store retries give up and leave their message unacknowledged for redelivery. */
  readonly #stop = new AbortController();
  #resources: AvailableResources | undefined;
  #resourcesStale = true;

  constructor(config: ComputeManagerConfig, env: ManagerEnv) {
    super(env);
    this.config = config;
    this.#instances = new InstanceStore(env.store);
    this.volumes = new VolumeApi({
      store: env.store,
      rpc: env.rpc,
      topic: config.volumeTopic,
      ...(config.volumeCallTimeoutMs === undefined ? {} : { callTimeoutMs: config.volumeCallTimeoutMs }),
    });
    // Casts: nobody waits for them and they are acknowledged when the handler returns, so a
    // database outage is waited out rather than failing (which would drop the request).
    const act = (rule: ActionRule, work: (row: InstanceRow) => Promise<void>) =>
      endpoint(InstanceIdArgs, (ctx, args, call) =>
        this.#untilStored(call, () => this.#powerAction(ctx, args.instance_id, rule, call, work)),
      );
    this.endpoints = defineEndpoints({
      run_instance: endpoint(InstanceIdArgs, (ctx, args, call) =>
        this.#untilStored(call, () => this.runInstance(ctx, args, call)),
      ),
      terminate_instance: endpoint(InstanceIdArgs, (ctx, args, call) =>
        this.#untilStored(call, () => this.terminateInstance(ctx, args, call)),
      ),
      reboot_instance: endpoint(RebootArgs, (ctx, args, call) =>
        this.#untilStored(call, () =>
          this.#powerAction(
            ctx,
            args.instance_id,
            args.reboot_type === 'HARD' ? ACTIONS.reboot_hard : ACTIONS.reboot_soft,
            call,
            (row) => this.driver.reboot(instanceSpec(row), args.reboot_type),
          ),
        ),
      ),
      stop_instance: act(ACTIONS.stop, (row) => this.driver.powerOff(instanceSpec(row))),
      start_instance: act(ACTIONS.start, (row) => this.driver.powerOn(instanceSpec(row))),
      pause_instance: act(ACTIONS.pause, (row) => this.driver.pause(instanceSpec(row))),
      unpause_instance: act(ACTIONS.unpause, (row) => this.driver.unpause(instanceSpec(row))),
      suspend_instance: act(ACTIONS.suspend, (row) => this.driver.suspend(instanceSpec(row))),
      resume_instance: act(ACTIONS.resume, (row) => this.driver.resume(instanceSpec(row))),
      rescue_instance: endpoint(RescueArgs, (ctx, args, call) =>
        this.#untilStored(call, () =>
          this.#powerAction(ctx, args.instance_id, ACTIONS.rescue, call, (row) =>
            this.driver.rescue(instanceSpec(row), args.rescue_password),
          ),
        ),
      ),
      unrescue_instance: act(ACTIONS.unrescue, (row) => this.driver.unrescue(instanceSpec(row))),
      get_console_output: endpoint(InstanceIdArgs, (ctx, args) => this.getConsoleOutput(ctx, args)),
      attach_volume: endpoint(AttachVolumeArgs, (ctx, args, call) => this.attachVolume(ctx, args, call)),
      detach_volume: endpoint(DetachVolumeArgs, (ctx, args, call) => this.detachVolume(ctx, args, call)),
    });
  }

  override get periodicTasks(): PeriodicTaskTable {
    return {
      sync_power_states: periodicTask(() => this.syncPowerStates(), {
        spacing: this.config.syncPowerStateInterval,
      }),
      report_available_resources: periodicTask(() => this.#refreshResources(), {
        spacing: this.config.resourceRefreshInterval,
      }),
      poll_rescued_instances: periodicTask(() => this.pollRescuedInstances(), {
        spacing: this.config.rescuePollInterval,
      }),
    };
  }

  /** The connector this host presents to volume hosts. */
  get connector(): Connector {
    return {
      host: this.host,
      initiator: this.config.iscsiInitiator ?? `iqn.2010-10.org.stratus:${this.host}`,
    };
  }

  /**
   * Reconcile this host's rows with the hypervisor: a `deleting` instance is deleted; one cut short
   * while building goes to `error`; other interrupted tasks are cleared, the vm_state taken from the
   * power state; an instance the hypervisor no longer has is marked `error` (power `nostate`);
   * attachments cut short are completed or undone.
   */
  override async initHost(): Promise<void> {
    const ctx = RequestContext.admin({ requestId: `init-host-${this.host}` });
    const known = new Set(await this.driver.listInstances());
    const rows = await this.#hostRows();
    let recovered = 0;
    for (const row of rows) {
      const name = instanceName(row.id);
      if (row.task_state === 'deleting') {
        await this.#terminate(ctx, row.id, this.logger).catch((error: unknown) => {
          this.logger.error(
            { err: error, instanceId: row.id },
            `could not finish deleting instance ${row.id}`,
          );
        });
        recovered++;
        continue;
      }
      if (row.vm_state === 'building') {
        if (
          await this.#instances.update(
            row.id,
            { vmStates: ['building'] },
            { vm_state: 'error', task_state: null, error_reason: INTERRUPTED_REASON },
          )
        ) {
          recovered++;
          this.logger.warn(
            { instanceId: row.id },
            `instance ${row.id} was being built when the service stopped`,
          );
        }
        continue;
      }
      if (!known.has(name)) {
        const set =
          row.vm_state === 'error'
            ? { power_state: 'nostate' as const, task_state: null }
            : {
                vm_state: 'error' as const,
                power_state: 'nostate' as const,
                task_state: null,
                error_reason: MISSING_REASON,
              };
        await this.#instances.update(row.id, {}, set);
        this.logger.warn({ instanceId: row.id, name }, `instance ${row.id} is missing from the hypervisor`);
        recovered++;
        continue;
      }
      if (row.task_state !== null) {
        const power = await this.#power(row, row.power_state);
        const vm: VmState = POWER_TASKS.has(row.task_state)
          ? (vmStateOfPower(power) ?? row.vm_state)
          : row.vm_state;
        await this.#instances.update(
          row.id,
          { taskStates: [row.task_state] },
          {
            vm_state: vm,
            task_state: null,
            power_state: power,
            error_reason: `${row.task_state} ${INTERRUPTED_REASON}; state read back from the hypervisor`,
          },
        );
        this.logger.warn(
          { instanceId: row.id, task: row.task_state, vmState: vm },
          `instance ${row.id} was ${row.task_state} when the service stopped`,
        );
        recovered++;
      }
    }
    recovered += await this.#recoverAttachments(ctx);
    await this.syncPowerStates();
    await this.#refreshResources().catch((error: unknown) => {
      this.logger.warn({ err: error }, 'could not read the hypervisor resources');
    });
    this.logger.info({ instances: rows.length, recovered }, 'compute host initialised');
  }

  /** From here on, an operation cut short by the driver closing is left for the next `initHost`. */
  override async cleanupHost(): Promise<void> {
    this.#stopping = true;
    this.#stop.abort();
  }

  /** The hypervisor's resources (vcpus, memory, disk: total and used), published with each heartbeat. */
  override async capabilities(): Promise<Record<string, unknown>> {
    if (this.#resourcesStale || !this.#resources) {
      await this.#refreshResources().catch((error: unknown) => {
        this.logger.warn(
          { err: error },
          'could not read the hypervisor resources; the last known ones stay published',
        );
      });
    }
    return this.#resources ? { ...this.#resources } : {};
  }

  /** `run_instance`: take the instance for this host (`scheduling` → `spawning`), spawn it → `active` or `error`. */
  async runInstance(_ctx: RequestContext, args: InstanceIdArgs, call: CallInfo): Promise<void> {
    const id = args.instance_id;
    await this.#serial(id, async () => {
      const claimed = await this.#instances.update(
        id,
        { vmStates: ['building'], taskStates: ['scheduling'] },
        { host: this.host, task_state: 'spawning' },
      );
      const row = await this.#instances.get(id, { withDeleted: true });
      if (!row) throw new NotFoundError('Instance', id);
      // Spawning here without a claim: an earlier attempt of this request claimed it, then lost the
      // database (this request holds the instance's queue, so no other handler is on it).
      const resumed = !claimed && row.host === this.host && row.task_state === 'spawning';
      if (!claimed && !resumed) {
        call.logger.info(
          { instanceId: id, vmState: row.vm_state, taskState: row.task_state },
          'run_instance for an instance past scheduling: nothing to do',
        );
        return;
      }
      try {
        if (resumed && (await this.#power(row, 'nostate')) !== 'nostate') {
          call.logger.warn({ instanceId: id }, 'run_instance resumed: the hypervisor already has it');
        } else {
          await this.#bounded(`instance ${id} (spawning)`, () => this.driver.spawn(instanceSpec(row)));
        }
      } catch (error) {
        this.#resourcesStale = true;
        if (this.#stopping) return this.#leftForRecovery(id, error);
        const failed = {
          vm_state: 'error' as const,
          power_state: await this.#power(row, 'nostate'),
          error_reason: `spawn failed: ${errorReason(error)}`,
        };
        await this.#finish(id, 'spawning', failed);
        throw error;
      }
      this.#resourcesStale = true;
      await this.#finish(id, 'spawning', {
        vm_state: 'active',
        power_state: await this.#power(row, 'running'),
        launched_at: this.#instances.now(),
        error_reason: null,
      });
      call.logger.info({ instanceId: id }, `instance ${id} spawned`);
    });
  }

  /** `terminate_instance`: detach its volumes, destroy it, soft-delete the row (or `error` with the reason). */
  async terminateInstance(
    ctx: RequestContext,
    args: InstanceIdArgs,
    call: Pick<CallInfo, 'logger'>,
  ): Promise<void> {
    await this.#terminate(ctx, args.instance_id, call.logger);
  }

  /** `get_console_output` (call). */
  async getConsoleOutput(_ctx: RequestContext, args: InstanceIdArgs): Promise<string> {
    const row = await this.#localRow(args.instance_id);
    return this.driver.getConsoleOutput(instanceSpec(row));
  }

  /**
   * `attach_volume` (call), for an attachment the API recorded `attaching`: connection from the
   * volume host → hypervisor attach → the volume's bookkeeping (`in-use`). A failure at any step
   * undoes the steps before it (the volume stays `available`, with no connection left) and is rethrown.
   */
  async attachVolume(ctx: RequestContext, args: AttachVolumeArgs, call: CallInfo): Promise<void> {
    const { instance_id: instanceId, volume_id: volumeId, mountpoint } = args;
    await this.#serial(instanceId, async () => {
      // Reads before any work are waited out in an outage: failing would leave the API's
      // `attaching` row behind (after a remote error it leaves the row to this host).
      const [attachment, row] = await this.#untilStored(call, () =>
        Promise.all([this.#attachment(instanceId, volumeId), this.#instances.get(instanceId)]),
      );
      if (attachment?.status !== 'attaching' || attachment.mountpoint !== mountpoint) {
        throw new InvalidStateError(
          `No attach of volume ${volumeId} at ${mountpoint} is pending for instance ${instanceId}; use ComputeApi.attachVolume.`,
          { details: { instanceId, volumeId, status: attachment?.status ?? null } },
        );
      }
      const refusal = !row
        ? new NotFoundError('Instance', instanceId)
        : row.host !== this.host
          ? this.#notLocal(row)
          : row.task_state === 'deleting' || !ATTACHABLE.includes(row.vm_state)
            ? new InvalidStateError(
                `Instance ${instanceId} is ${row.task_state ?? row.vm_state}; a volume can only be attached when it is ${ATTACHABLE.join(', ')}.`,
              )
            : toBoolean(row.locked) && !ctx.isAdmin
              ? lockedError(instanceId, 'attach a volume to')
              : undefined;
      if (refusal || !row) {
        await this.#removeAttachment(attachment.id);
        throw refusal;
      }
      const spec = instanceSpec(row);
      const admin = ctx.elevated();
      const log = call.logger.child({ instanceId, volumeId, mountpoint });

      let info: ConnectionInfo;
      try {
        info = await this.volumes.initializeConnection(admin, volumeId, this.connector);
      } catch (error) {
        log.warn({ err: error }, 'attach failed at initialize_connection; nothing to undo');
        await this.#removeAttachment(attachment.id);
        throw error;
      }
      await this.#setAttachment(attachment.id, { connection_info: JSON.stringify(info) });

      try {
        await this.driver.attachVolume(spec, info, mountpoint);
      } catch (error) {
        log.warn({ err: error }, 'attach failed in the hypervisor; revoking the connection');
        await this.#undo(log, 'terminate the connection', () =>
          this.volumes.terminateConnection(admin, volumeId, this.connector),
        );
        await this.#removeAttachment(attachment.id);
        throw error;
      }

      try {
        await this.volumes.attach(admin, volumeId, { instanceId, mountpoint });
      } catch (error) {
        log.warn({ err: error }, 'attach failed at the volume bookkeeping; detaching and revoking');
        await this.#undo(log, 'detach in the hypervisor', () =>
          this.driver.detachVolume(spec, info, mountpoint),
        );
        await this.#undo(log, 'terminate the connection', () =>
          this.volumes.terminateConnection(admin, volumeId, this.connector),
        );
        await this.#removeAttachment(attachment.id);
        throw error;
      }
      await this.#setAttachment(attachment.id, { status: 'attached' });
      log.info(`volume ${volumeId} attached to instance ${instanceId} at ${mountpoint}`);
    });
  }

  /**
   * `detach_volume` (call), for an attachment the API moved to `detaching`: hypervisor detach →
   * revoke the connection → the volume's bookkeeping (`available`); a failure undoes the steps
   * before it (the attachment is `attached` again) and is rethrown.
   */
  async detachVolume(ctx: RequestContext, args: DetachVolumeArgs, call: CallInfo): Promise<void> {
    const { instance_id: instanceId, volume_id: volumeId } = args;
    await this.#serial(instanceId, async () => {
      const [attachment, row] = await this.#untilStored(call, () =>
        Promise.all([this.#attachment(instanceId, volumeId), this.#instances.get(instanceId)]),
      );
      if (!attachment) {
        call.logger.info({ instanceId, volumeId }, 'detach_volume for a volume not attached: nothing to do');
        return;
      }
      if (attachment.status !== 'detaching') {
        throw new InvalidStateError(
          `Volume ${volumeId} is ${attachment.status} on instance ${instanceId}, not detaching; use ComputeApi.detachVolume.`,
        );
      }
      if (!row) throw new NotFoundError('Instance', instanceId);
      if (row.host !== this.host) throw this.#notLocal(row);
      if (toBoolean(row.locked) && !ctx.isAdmin) {
        await this.#setAttachment(attachment.id, { status: 'attached' });
        throw lockedError(instanceId, 'detach a volume from');
      }
      try {
        await this.#detach(ctx, row, attachment, call.logger);
      } catch (error) {
        await this.#setAttachment(attachment.id, { status: 'attached' });
        throw error;
      }
    });
  }

  /**
   * Periodic: record the hypervisor's power state of every instance of this host (missing →
   * `nostate`); an `active` instance the hypervisor reports shut down or crashed becomes `stopped`.
   * Instances with a request running here are skipped.
   */
  async syncPowerStates(): Promise<void> {
    const known = new Set(await this.driver.listInstances());
    for (const row of await this.#hostRows()) {
      if (this.#queues.has(row.id) || row.vm_state === 'building') continue;
      const power = known.has(instanceName(row.id)) ? await this.#power(row, undefined) : 'nostate';
      if (power === undefined) continue;
      if (power !== row.power_state) {
        await this.#instances.run(`sync power state of instance ${row.id}`, () =>
          this.#instances.db
            .updateTable('instances')
            .set({ power_state: power, updated_at: this.#instances.now() })
            .where('id', '=', row.id)
            .where('deleted', '=', false)
            .where('power_state', '=', row.power_state)
            .execute(),
        );
        this.logger.info(
          { instanceId: row.id, from: row.power_state, to: power },
          `power state of instance ${row.id} is ${power}`,
        );
      }
      if (
        (power === 'shutdown' || power === 'crashed') &&
        row.vm_state === 'active' &&
        row.task_state === null
      ) {
        if (
          await this.#instances.update(
            row.id,
            { vmStates: ['active'], taskStates: [null] },
            { vm_state: 'stopped' },
          )
        ) {
          this.logger.warn(
            { instanceId: row.id, power },
            `instance ${row.id} was ${power} by the hypervisor: stopped`,
          );
        }
      }
    }
  }

  /** Periodic: unrescue the instances of this host rescued longer than `rescueTimeoutSec` (on the store's clock). */
  async pollRescuedInstances(): Promise<void> {
    const timeout = this.config.rescueTimeoutSec;
    if (!(timeout > 0)) return;
    const cutoff =
      this.store.dialect === 'postgres'
        ? sql<Date>`CURRENT_TIMESTAMP - make_interval(secs => ${timeout})`
        : sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ${`-${timeout} seconds`})`;
    const rows = await this.#instances.run('list expired rescues', () =>
      this.#instances.db
        .selectFrom('instances')
        .select('id')
        .where('host', '=', this.host)
        .where('deleted', '=', false)
        .where('vm_state', '=', 'rescued')
        .where('task_state', 'is', null)
        .where('rescued_at', '<=', cutoff)
        .execute(),
    );
    const ctx = RequestContext.admin({ requestId: `rescue-timeout-${this.host}` });
    for (const { id } of rows) {
      const rule = ACTIONS.unrescue;
      if (
        !(await this.#instances.update(
          id,
          { vmStates: rule.from, taskStates: [null] },
          { task_state: rule.task },
        ))
      )
        continue;
      this.logger.info(
        { instanceId: id, timeout },
        `instance ${id} rescued for over ${timeout} s: unrescuing`,
      );
      await this.#powerAction(ctx, id, rule, { logger: this.logger }, (row) =>
        this.driver.unrescue(instanceSpec(row)),
      ).catch((error: unknown) => {
        this.logger.error({ err: error, instanceId: id }, `could not unrescue instance ${id}`);
      });
    }
  }

  // --- internals ---

  /**
   * A power action the API asked for (task_state `rule.task`): run `work`, then `rule.to` with the
   * driver's power state; on failure task_state goes back to null, vm_state stays, the reason is kept.
   */
  async #powerAction(
    ctx: RequestContext,
    id: string,
    rule: ActionRule,
    call: Pick<CallInfo, 'logger'>,
    work: (row: InstanceRow) => Promise<void>,
  ): Promise<void> {
    await this.#serial(id, async () => {
      const row = await this.#localRow(id);
      if (row.task_state !== rule.task) {
        call.logger.info(
          { instanceId: id, taskState: row.task_state, expected: rule.task },
          `${rule.method} for an instance that is not ${rule.task}: nothing to do`,
        );
        return;
      }
      if (toBoolean(row.locked) && !ctx.isAdmin) {
        await this.#instances.update(id, { taskStates: [rule.task] }, { task_state: null });
        throw lockedError(id, rule.verb);
      }
      try {
        await this.#bounded(`instance ${id} (${rule.task})`, () => work(row));
      } catch (error) {
        if (this.#stopping) return this.#leftForRecovery(id, error);
        await this.#record(
          id,
          { taskStates: [rule.task] },
          {
            task_state: null,
            power_state: await this.#power(row, row.power_state),
            error_reason: `${rule.verb} failed: ${errorReason(error)}`,
          },
        );
        throw error;
      }
      await this.#finish(id, rule.task, {
        vm_state: rule.to,
        power_state: await this.#power(row, row.power_state),
        error_reason: null,
        ...(rule.to === 'rescued' ? { rescued_at: this.#instances.now() } : {}),
        ...(rule.task === 'unrescuing' ? { rescued_at: null } : {}),
      });
      call.logger.info({ instanceId: id, vmState: rule.to }, `instance ${id}: ${rule.verb} done`);
    });
  }

  async #terminate(ctx: RequestContext, id: string, logger: Logger): Promise<void> {
    await this.#serial(id, async () => {
      const row = await this.#instances.get(id, { withDeleted: true });
      if (!row || toBoolean(row.deleted)) {
        logger.info({ instanceId: id }, 'terminate_instance for an instance already deleted: nothing to do');
        return;
      }
      if (row.host !== this.host) throw this.#notLocal(row);
      if (row.task_state !== 'deleting') {
        throw new InvalidStateError(
          `Instance ${id} is not being deleted (task_state ${row.task_state ?? 'null'}); terminate it through the compute API.`,
        );
      }
      if (toBoolean(row.locked) && !ctx.isAdmin) {
        await this.#instances.update(id, { taskStates: ['deleting'] }, { task_state: null });
        throw lockedError(id, 'terminate');
      }
      try {
        for (const attachment of await this.#attachmentsOf(id)) {
          if (attachment.status === 'attaching' && attachment.connection_info === null) {
            // Its attach_volume has not run (it would hold this instance's queue): nothing was done.
            await this.#removeAttachment(attachment.id);
            continue;
          }
          await this.#detach(ctx, row, attachment, logger);
        }
        await this.#bounded(`instance ${id} (deleting)`, () => this.driver.destroy(instanceSpec(row)));
      } catch (error) {
        if (this.#stopping) return this.#leftForRecovery(id, error);
        // A database (here or the volume host's) out of reach: every step before was undone or is
        // safe to run again, so the whole terminate is retried rather than the instance failed.
        if (StratusError.is(error, 'STORE_UNAVAILABLE')) throw error;
        await this.#record(
          id,
          { taskStates: ['deleting'] },
          {
            vm_state: 'error',
            task_state: null,
            power_state: await this.#power(row, row.power_state),
            error_reason: `terminate failed: ${errorReason(error)}`,
          },
        );
        throw error;
      }
      this.#resourcesStale = true;
      const now = this.#instances.now();
      await this.#record(
        id,
        { taskStates: ['deleting'] },
        {
          vm_state: 'deleted',
          task_state: null,
          power_state: 'nostate',
          terminated_at: now,
          deleted: true,
          deleted_at: now,
        },
      );
      logger.info({ instanceId: id }, `instance ${id} terminated`);
    });
  }

  /**
   * Detach one volume: hypervisor → revoke the connection → volume bookkeeping → remove the row.
   * A failure undoes the earlier steps and is rethrown.
   */
  async #detach(
    ctx: RequestContext,
    row: InstanceRow,
    attachment: VolumeAttachmentRow,
    logger: Logger,
  ): Promise<void> {
    const spec = instanceSpec(row);
    const admin = ctx.elevated();
    const { volume_id: volumeId, mountpoint } = attachment;
    const log = logger.child({ instanceId: row.id, volumeId, mountpoint });
    const info = connectionInfoOf(attachment);
    let detached = false;
    if (info) {
      try {
        await this.driver.detachVolume(spec, info, mountpoint);
        detached = true;
      } catch (error) {
        // An instance gone from the hypervisor has nothing attached any more (Nova skips it too).
        if (!StratusError.is(error, 'NOT_FOUND')) throw error;
        log.warn('instance missing from the hypervisor; skipping its detach there');
      }
    }
    const reattach = async () => {
      if (detached && info)
        await this.#undo(log, 'reattach in the hypervisor', () =>
          this.driver.attachVolume(spec, info, mountpoint),
        );
    };
    try {
      await this.volumes.terminateConnection(admin, volumeId, this.connector);
    } catch (error) {
      await reattach();
      throw error;
    }
    try {
      await this.volumes.detach(admin, volumeId);
    } catch (error) {
      const volume = await this.volumes.get(admin, volumeId).catch(() => undefined);
      // Already detached on the volume side (e.g. an earlier attempt got this far): done.
      if (!(volume && volume.status === 'available' && volume.attachStatus === 'detached')) {
        await this.#undo(log, 'reconnect the volume', async () => {
          const again = await this.volumes.initializeConnection(admin, volumeId, this.connector);
          if (detached) await this.driver.attachVolume(spec, again, mountpoint);
        });
        throw error;
      }
    }
    await this.#removeAttachment(attachment.id);
    log.info(`volume ${volumeId} detached from instance ${row.id}`);
  }

  /** Attachments of this host's instances cut short by a stop: complete or undo each. */
  async #recoverAttachments(ctx: RequestContext): Promise<number> {
    const rows = await this.#instances.run('list interrupted attachments', () =>
      this.#instances.db
        .selectFrom('volume_attachments')
        .innerJoin('instances', 'instances.id', 'volume_attachments.instance_id')
        .selectAll('volume_attachments')
        .where('instances.host', '=', this.host)
        .where('volume_attachments.status', 'in', ['attaching', 'detaching'])
        .execute(),
    );
    for (const attachment of rows) {
      const volume = await this.volumes.get(ctx, attachment.volume_id).catch(() => undefined);
      const inUseHere = volume?.status === 'in-use' && volume.instanceId === attachment.instance_id;
      const log = this.logger.child({ instanceId: attachment.instance_id, volumeId: attachment.volume_id });
      if (inUseHere) {
        await this.#setAttachment(attachment.id, { status: 'attached' });
        log.warn(`${attachment.status} of volume ${attachment.volume_id} was cut short; it stays attached`);
        continue;
      }
      const instance = await this.#instances.get(attachment.instance_id, { withDeleted: true });
      const info = connectionInfoOf(attachment);
      if (instance && info) {
        await this.#undo(log, 'detach in the hypervisor', () =>
          this.driver.detachVolume(instanceSpec(instance), info, attachment.mountpoint),
        );
        await this.#undo(log, 'terminate the connection', () =>
          this.volumes.terminateConnection(ctx, attachment.volume_id, this.connector),
        );
      }
      await this.#removeAttachment(attachment.id);
      log.warn(`${attachment.status} of volume ${attachment.volume_id} was cut short; it was undone`);
    }
    return rows.length;
  }

  /**
   * Clear task_state `task` and apply `set`; when task_state changed meanwhile (a terminate took
   * over), apply `set` and leave task_state to the newer request.
   */
  async #finish(id: string, task: TaskState, set: InstanceUpdate): Promise<void> {
    if (await this.#record(id, { taskStates: [task] }, { ...set, task_state: null })) return;
    await this.#record(id, {}, set);
  }

  /**
   * A conditional update recording the outcome of hypervisor work already done: while the
   * database is unreachable, wait for it, rather than fail and have the work run again.
   */
  #record(id: string, guard: InstanceGuard, set: InstanceUpdate): Promise<boolean> {
    return retryWhileStoreUnavailable(() => this.#instances.update(id, guard, set), {
      logger: this.logger,
      what: `record instance ${id}`,
      signal: this.#stop.signal,
    });
  }

  /** Run a cast handler (or the reads before a call's work) again while the database is unreachable. */
  #untilStored<T>(call: Pick<CallInfo, 'logger' | 'method'>, handler: () => Promise<T>): Promise<T> {
    return retryWhileStoreUnavailable(handler, {
      logger: call.logger,
      what: call.method,
      signal: this.#stop.signal,
    });
  }

  /** Hypervisor work bounded by `driverTimeout`: a hung hypervisor must not hold an instance's task forever. */
  #bounded<T>(what: string, work: () => Promise<T>): Promise<T> {
    return withDriverTimeout(work, {
      seconds: this.config.driverTimeout,
      what,
      backend: 'hypervisor',
      logger: this.logger,
    });
  }

  /** The driver's power state of `row`; `nostate` when it has no such instance, `fallback` on other errors. */
  async #power<F extends PowerState | undefined>(row: InstanceRow, fallback: F): Promise<PowerState | F> {
    try {
      const info = await this.#bounded(`instance ${row.id} (power state)`, () =>
        this.driver.getInfo(instanceSpec(row)),
      );
      return info.state;
    } catch (error) {
      if (StratusError.is(error, 'NOT_FOUND')) return 'nostate';
      this.logger.warn({ err: error, instanceId: row.id }, 'could not read the power state');
      return fallback;
    }
  }

  /** Run `fn` after the requests already queued for `id` on this host, one at a time. */
  async #serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(id) ?? Promise.resolve();
    let release!: () => void;
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => done);
    this.#queues.set(id, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#queues.get(id) === tail) this.#queues.delete(id);
    }
  }

  async #undo(log: Logger, what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      log.error({ err: error }, `could not ${what} while undoing; it needs an operator`);
    }
  }

  #leftForRecovery(id: string, error: unknown): void {
    this.logger.warn(
      { instanceId: id, err: error },
      `operation on instance ${id} cut short by the service stopping; the next start settles it`,
    );
  }

  #notLocal(row: InstanceRow): InvalidStateError {
    return new InvalidStateError(
      `Instance ${row.id} runs on ${row.host ?? 'no host'}, not ${this.host}; send the request to compute.${row.host}.`,
      { details: { instanceId: row.id, host: row.host } },
    );
  }

  async #localRow(id: string): Promise<InstanceRow> {
    const row = await this.#instances.get(id);
    if (!row) throw new NotFoundError('Instance', id);
    if (row.host !== this.host) throw this.#notLocal(row);
    return row;
  }

  #hostRows(): Promise<InstanceRow[]> {
    return this.#instances.run('list instances of this host', () =>
      this.#instances.db
        .selectFrom('instances')
        .selectAll()
        .where('host', '=', this.host)
        .where('deleted', '=', false)
        .execute(),
    );
  }

  #attachment(instanceId: string, volumeId: string): Promise<VolumeAttachmentRow | undefined> {
    return this.#instances.run(`read attachment of volume ${volumeId}`, () =>
      this.#instances.db
        .selectFrom('volume_attachments')
        .selectAll()
        .where('instance_id', '=', instanceId)
        .where('volume_id', '=', volumeId)
        .executeTakeFirst(),
    );
  }

  #attachmentsOf(instanceId: string): Promise<VolumeAttachmentRow[]> {
    return this.#instances.run(`list attachments of instance ${instanceId}`, () =>
      this.#instances.db
        .selectFrom('volume_attachments')
        .selectAll()
        .where('instance_id', '=', instanceId)
        .orderBy('created_at')
        .execute(),
    );
  }

  // Attachment writes record what was done (or undone) on the volume host and the hypervisor:
  // they wait out a database outage rather than leave the row saying otherwise.
  async #setAttachment(
    id: string,
    set: { status?: VolumeAttachmentRow['status']; connection_info?: string },
  ): Promise<void> {
    await this.#stored(`update attachment ${id}`, () =>
      this.#instances.db
        .updateTable('volume_attachments')
        .set({ ...set, updated_at: this.#instances.now() })
        .where('id', '=', id)
        .execute(),
    );
  }

  async #removeAttachment(id: string): Promise<void> {
    await this.#stored(`remove attachment ${id}`, () =>
      this.#instances.db.deleteFrom('volume_attachments').where('id', '=', id).execute(),
    );
  }

  #stored<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return retryWhileStoreUnavailable(() => this.#instances.run(what, fn), {
      logger: this.logger,
      what,
      signal: this.#stop.signal,
    });
  }

  async #refreshResources(): Promise<void> {
    this.#resources = await this.driver.getAvailableResources();
    this.#resourcesStale = false;
  }
}

function lockedError(id: string, verb: string): InvalidStateError {
  return new InvalidStateError(`Instance ${id} is locked; only an administrator may ${verb} it.`, {
    details: { instanceId: id, reason: 'locked' },
  });
}
