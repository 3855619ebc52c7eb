import {
  type AvailableResources,
  ComputeDriver,
  ConnectionInfo,
  DriverFailureError,
  type InstanceInfo,
  InstanceSpec,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
  type PluginEnv,
  PowerState,
  RebootType,
} from '@stratus/core';
import type { FakeComputeConfig } from './config.js';
import { FakeInstrument, type Faults, type RecordedCall } from './faults.js';
import { checkName, checkShape } from './names.js';
import { StateFile } from './state-file.js';

/** Every method of the compute contract, each of which can be targeted by failure injection. */
export const COMPUTE_METHODS = [
  'setup',
  'checkForSetupError',
  'spawn',
  'destroy',
  'reboot',
  'powerOff',
  'powerOn',
  'pause',
  'unpause',
  'suspend',
  'resume',
  'rescue',
  'unrescue',
  'getInfo',
  'listInstances',
  'getConsoleOutput',
  'attachVolume',
  'detachVolume',
  'getAvailableResources',
] as const;
export type ComputeMethod = (typeof COMPUTE_METHODS)[number];

/** Methods that only read the hypervisor; every other method changes it and, with `stateFile`, is written out. */
const READ_ONLY: readonly ComputeMethod[] = [
  'setup',
  'checkForSetupError',
  'getInfo',
  'listInstances',
  'getConsoleOutput',
  'getAvailableResources',
];

/** A guest block device name such as `/dev/vdb` or `/dev/sdc`. */
const MOUNTPOINT = /^\/dev\/[a-z]+[a-z0-9]*$/;

interface Attachment {
  readonly volumeId: string | null;
  readonly connectionInfo: ConnectionInfo;
}

interface InstanceRecord {
  readonly spec: InstanceSpec;
  state: PowerState;
  /** Set while rescued: the rescue password and the state to go back to. */
  rescue: { readonly password: string; readonly previous: PowerState } | undefined;
  readonly mounts: Map<string, Attachment>;
  /** Accumulated CPU time of earlier running periods, and when the current one began. */
  cpuTimeNs: number;
  runningSince: number | undefined;
  boots: number;
}

/** The `stateFile` format. */
interface SavedState {
  readonly instances: Array<Omit<InstanceRecord, 'mounts'> & { mounts: Array<[string, Attachment]> }>;
}

/** A copy of what the fake holds for one instance, for tests. */
export interface FakeInstanceView {
  readonly name: string;
  readonly id: string;
  readonly state: PowerState;
  readonly rescued: boolean;
  readonly rescuePassword: string | null;
  readonly boots: number;
  /** Mountpoint → connection info the volume was attached with. */
  readonly mounts: Record<string, ConnectionInfo>;
}

/**
 * An in-memory hypervisor following Nova's FakeConnection, with real power-state rules and
 * resource accounting: instances take vCPUs, memory and root disk until destroyed, and each
 * power action is refused (`InvalidState`) from a state a hypervisor would refuse it in.
 */
export class FakeComputeDriver extends ComputeDriver {
  readonly config: FakeComputeConfig;
  readonly hypervisorHostname: string;
  readonly #env: PluginEnv;
  readonly #instrument: FakeInstrument<ComputeMethod>;
  readonly #instances = new Map<string, InstanceRecord>();
  readonly #stateFile: StateFile<SavedState> | undefined;

  constructor(config: FakeComputeConfig, env: PluginEnv) {
    super();
    this.config = { ...config };
    this.#env = env;
    this.hypervisorHostname = config.hypervisorHostname ?? env.host;
    this.#stateFile = config.stateFile ? new StateFile(config.stateFile, env.dataDir) : undefined;
    // Instances saved by an earlier process kept running meanwhile, as VMs do when nova-compute dies.
    for (const i of this.#stateFile?.load()?.instances ?? []) {
      this.#instances.set(i.spec.name, { ...i, mounts: new Map(i.mounts) });
    }
    this.#instrument = new FakeInstrument(
      'FakeComputeDriver',
      COMPUTE_METHODS,
      this.#stateFile && { readOnly: READ_ONLY, save: () => this.#save() },
    );
  }

  /** Failure injection: `failNext`, `hangNext`, `releaseHangs`, `clear`. */
  get faults(): Faults<ComputeMethod> {
    return this.#instrument.faults;
  }

  /** Copies of every contract call received, oldest first (including ones that failed). */
  get calls(): Array<RecordedCall<ComputeMethod>> {
    return this.#instrument.calls;
  }

  /** Forget recorded calls. */
  clearCalls(): void {
    this.#instrument.clearCalls();
  }

  override setup(): Promise<void> {
    return this.#instrument.invoke('setup', [], () => {
      this.#env.logger.debug({ hypervisorHostname: this.hypervisorHostname }, 'fake hypervisor ready');
    });
  }

  override checkForSetupError(): Promise<void> {
    return this.#instrument.invoke('checkForSetupError', [], () => {});
  }

  override async close(): Promise<void> {
    this.#instrument.close();
  }

  spawn(instance: InstanceSpec): Promise<void> {
    return this.#instrument.invoke('spawn', [instance], () => {
      checkShape(InstanceSpec, instance, 'instance', '/instance');
      checkName(instance.name, '/instance/name');
      if (this.#instances.has(instance.name)) {
        throw new InvalidStateError(
          `Instance ${instance.name} already exists on ${this.hypervisorHostname}; destroy it before spawning it again.`,
          { details: { reason: 'exists', instance: instance.name } },
        );
      }
      this.#admit(instance);
      this.#instances.set(instance.name, {
        spec: structuredClone(instance),
        state: 'nostate',
        rescue: undefined,
        mounts: new Map(),
        cpuTimeNs: 0,
        runningSince: undefined,
        boots: 0,
      });
      this.#boot(this.#get(instance.name));
    });
  }

  destroy(instance: InstanceSpec): Promise<void> {
    return this.#instrument.invoke('destroy', [instance], () => {
      checkName(instance?.name, '/instance/name');
      if (!this.#instances.delete(instance.name)) {
        this.#env.logger.warn(
          { instance: instance.name },
          'destroy of an instance the hypervisor does not know',
        );
      }
    });
  }

  reboot(instance: InstanceSpec, type: RebootType): Promise<void> {
    return this.#instrument.invoke('reboot', [instance, type], () => {
      checkShape(RebootType, type, 'reboot type', '/type');
      const record = this.#require(instance);
      // A soft reboot asks the guest; only a running guest can answer. A hard one resets the VM.
      if (type === 'SOFT') this.#expect(record, 'reboot (SOFT)', ['running']);
      else this.#expect(record, 'reboot (HARD)', ['running', 'paused', 'shutdown', 'crashed', 'nostate']);
      this.#halt(record);
      this.#boot(record);
    });
  }

  powerOff(instance: InstanceSpec): Promise<void> {
    return this.#instrument.invoke('powerOff', [instance], () => {
      const record = this.#require(instance);
      this.#halt(record);
      record.state = 'shutdown';
    });
  }

  powerOn(instance: InstanceSpec): Promise<void> {
    return this.#instrument.invoke('powerOn', [instance], () => {
      const record = this.#require(instance);
      this.#expect(record, 'powerOn', ['running', 'shutdown', 'crashed', 'nostate']);
      if (record.state !== 'running') this.#boot(record);
    });
  }

  pause(instance: InstanceSpec): Promise<void> {
    return this.#instrument.invoke('pause', [instance], () => {
      const record = this.#require(instance);
      this.#expect(record, 'pause', ['running', 'paused']);
      this.#halt(record);
      record.state = 'paused';
    });
  }

  unpause(instance: InstanceSpec): Promise<void> {
    return this.#instrument.invoke('unpause', [instance], () => {
      const record = this.#require(instance);
      this.#expect(record, 'unpause', ['running', 'paused']);
      this.#run(record);
    });
  }

  suspend(instance: InstanceSpec): Promise<void> {
    return this.#instrument.invoke('suspend', [instance], () => {
      const record = this.#require(instance);
      this.#expect(record, 'suspend', ['running', 'paused', 'suspended']);
      this.#halt(record);
      record.state = 'suspended';
    });
  }

  resume(instance: InstanceSpec): Promise<void> {
    return this.#instrument.invoke('resume', [instance], () => {
      const record = this.#require(instance);
      this.#expect(record, 'resume', ['running', 'suspended']);
      this.#run(record);
    });
  }

  rescue(instance: InstanceSpec, rescuePassword: string): Promise<void> {
    return this.#instrument.invoke('rescue', [instance, rescuePassword], () => {
      const record = this.#require(instance);
      if (typeof rescuePassword !== 'string' || rescuePassword.length === 0) {
        throw new InvalidInputError('Invalid rescue password', [
          { path: '/rescuePassword', message: 'must be a non-empty string' },
        ]);
      }
      if (record.rescue) {
        throw new InvalidStateError(`Instance ${record.spec.name} is already rescued; unrescue it first.`, {
          details: { reason: 'rescued', instance: record.spec.name },
        });
      }
      this.#expect(record, 'rescue', ['running', 'shutdown', 'crashed']);
      record.rescue = { password: rescuePassword, previous: record.state };
      this.#halt(record);
      this.#boot(record);
    });
  }

  unrescue(instance: InstanceSpec): Promise<void> {
    return this.#instrument.invoke('unrescue', [instance], () => {
      const record = this.#require(instance);
      if (!record.rescue) {
        throw new InvalidStateError(
          `Instance ${record.spec.name} is not rescued; there is nothing to unrescue.`,
          {
            details: { reason: 'not_rescued', instance: record.spec.name },
          },
        );
      }
      record.rescue = undefined;
      // Back to the instance's own disk: the guest boots from it.
      this.#halt(record);
      this.#boot(record);
    });
  }

  getInfo(instance: InstanceSpec): Promise<InstanceInfo> {
    return this.#instrument.invoke('getInfo', [instance], () => {
      const record = this.#require(instance);
      const { flavor } = record.spec;
      const resident = record.state === 'running' || record.state === 'paused';
      return {
        state: record.state,
        maxMemoryMiB: flavor.memoryMiB,
        memoryMiB: resident ? flavor.memoryMiB : 0,
        vcpus: flavor.vcpus,
        cpuTimeNs:
          record.cpuTimeNs + (record.runningSince === undefined ? 0 : this.#sinceNs(record.runningSince)),
      };
    });
  }

  listInstances(): Promise<string[]> {
    return this.#instrument.invoke('listInstances', [], () => [...this.#instances.keys()]);
  }

  getConsoleOutput(instance: InstanceSpec): Promise<string> {
    return this.#instrument.invoke('getConsoleOutput', [instance], () => {
      const record = this.#require(instance);
      const { spec } = record;
      const lines: string[] = [];
      for (let boot = 1; boot <= record.boots; boot++) {
        lines.push(
          `[    0.000000] Linux version 2.6.38-fake (stratus@${this.hypervisorHostname}) boot ${boot}`,
          `[    0.000000] Command line: root=/dev/vda console=ttyS0`,
          `[    0.120000] Memory: ${spec.flavor.memoryMiB * 1024}k available, ${spec.flavor.vcpus} CPU(s)`,
          `[    1.500000] EXT4-fs (vda): mounted filesystem (image ${spec.imageRef})`,
          `cloud-init: instance-id ${spec.id}, hostname ${spec.name}`,
          `${spec.name} login:`,
        );
      }
      if (record.rescue) lines.push(`[    0.000000] Booted rescue image for ${spec.name}`);
      return `${lines.join('\n')}\n`;
    });
  }

  attachVolume(instance: InstanceSpec, connectionInfo: ConnectionInfo, mountpoint: string): Promise<void> {
    return this.#instrument.invoke('attachVolume', [instance, connectionInfo, mountpoint], () => {
      const record = this.#require(instance);
      checkShape(ConnectionInfo, connectionInfo, 'connection info', '/connectionInfo');
      checkMountpoint(mountpoint);
      const occupant = record.mounts.get(mountpoint);
      if (occupant) {
        throw new InvalidStateError(
          `Mountpoint ${mountpoint} of instance ${record.spec.name} is already in use${occupant.volumeId ? ` by volume ${occupant.volumeId}` : ''}; choose a free device name or detach it first.`,
          { details: { reason: 'mountpoint_in_use', instance: record.spec.name, mountpoint } },
        );
      }
      const volumeId = typeof connectionInfo.data.volumeId === 'string' ? connectionInfo.data.volumeId : null;
      if (volumeId !== null) {
        for (const [at, a] of record.mounts) {
          if (a.volumeId === volumeId) {
            throw new InvalidStateError(
              `Volume ${volumeId} is already attached to instance ${record.spec.name} at ${at}; detach it before attaching it again.`,
              { details: { reason: 'already_attached', instance: record.spec.name, mountpoint: at } },
            );
          }
        }
      }
      record.mounts.set(mountpoint, { volumeId, connectionInfo: structuredClone(connectionInfo) });
    });
  }

  detachVolume(instance: InstanceSpec, connectionInfo: ConnectionInfo, mountpoint: string): Promise<void> {
    return this.#instrument.invoke('detachVolume', [instance, connectionInfo, mountpoint], () => {
      const record = this.#require(instance);
      checkMountpoint(mountpoint);
      record.mounts.delete(mountpoint);
    });
  }

  getAvailableResources(): Promise<AvailableResources> {
    return this.#instrument.invoke('getAvailableResources', [], () => {
      const used = this.#used();
      return {
        vcpus: this.config.vcpus,
        vcpusUsed: used.vcpus,
        memoryMiB: this.config.memoryMiB,
        memoryMiBUsed: used.memoryMiB,
        localDiskGiB: this.config.localDiskGiB,
        localDiskGiBUsed: used.diskGiB,
        hypervisorType: 'fake',
        hypervisorVersion: '1.0.0',
        hypervisorHostname: this.hypervisorHostname,
      };
    });
  }

  /**
   * Test hook: change an instance's power state behind the manager's back, as a guest shutting
   * itself down or a hypervisor crash would. Not recorded and not subject to injection.
   */
  setPowerState(name: string, state: PowerState): void {
    checkShape(PowerState, state, 'power state', '/state');
    const record = this.#instances.get(name);
    if (!record) throw new NotFoundError('instance', name);
    if (state === 'running') {
      if (record.state !== 'running') this.#run(record);
    } else {
      this.#halt(record);
      record.state = state;
    }
    this.#save();
  }

  /** Test hook: the VM vanishes from the hypervisor (Nova's `test_remove_vm`). Not recorded. */
  removeInstance(name: string): void {
    if (!this.#instances.delete(name)) throw new NotFoundError('instance', name);
    this.#save();
  }

  /** What the fake holds for `name` (a copy), or undefined. Not recorded as a call. */
  inspectInstance(name: string): FakeInstanceView | undefined {
    const r = this.#instances.get(name);
    if (!r) return undefined;
    return {
      name: r.spec.name,
      id: r.spec.id,
      state: r.state,
      rescued: r.rescue !== undefined,
      rescuePassword: r.rescue?.password ?? null,
      boots: r.boots,
      mounts: Object.fromEntries([...r.mounts].map(([at, a]) => [at, structuredClone(a.connectionInfo)])),
    };
  }

  /** With `stateFile`: write every instance out (the contract methods do it through the instrument). */
  #save(): void {
    this.#stateFile?.save({
      instances: [...this.#instances.values()].map((r) => ({ ...r, mounts: [...r.mounts] })),
    });
  }

  #require(instance: InstanceSpec): InstanceRecord {
    checkName(instance?.name, '/instance/name');
    return this.#get(instance.name);
  }

  #get(name: string): InstanceRecord {
    const record = this.#instances.get(name);
    if (!record) throw new NotFoundError('instance', name);
    return record;
  }

  #expect(record: InstanceRecord, action: string, allowed: readonly PowerState[]): void {
    if (!allowed.includes(record.state)) {
      throw new InvalidStateError(
        `Cannot ${action} instance ${record.spec.name} while it is ${record.state}; it must be ${allowed.join(' or ')}.`,
        { details: { reason: 'power_state', instance: record.spec.name, state: record.state, action } },
      );
    }
  }

  #boot(record: InstanceRecord): void {
    record.boots++;
    this.#run(record);
  }

  #run(record: InstanceRecord): void {
    record.state = 'running';
    record.runningSince ??= Date.now();
  }

  #halt(record: InstanceRecord): void {
    if (record.runningSince !== undefined) record.cpuTimeNs += this.#sinceNs(record.runningSince);
    record.runningSince = undefined;
  }

  #sinceNs(since: number): number {
    return Math.max(0, Date.now() - since) * 1_000_000;
  }

  #used(): { vcpus: number; memoryMiB: number; diskGiB: number } {
    let vcpus = 0;
    let memoryMiB = 0;
    let diskGiB = 0;
    for (const { spec } of this.#instances.values()) {
      vcpus += spec.flavor.vcpus;
      memoryMiB += spec.flavor.memoryMiB;
      diskGiB += spec.flavor.rootGiB;
    }
    return { vcpus, memoryMiB, diskGiB };
  }

  /** Refuse, like a full host, when the flavor does not fit in what is left. */
  #admit(instance: InstanceSpec): void {
    const used = this.#used();
    const { flavor } = instance;
    const short = [
      ['vcpus', flavor.vcpus, this.config.vcpus - used.vcpus],
      ['memoryMiB', flavor.memoryMiB, this.config.memoryMiB - used.memoryMiB],
      ['localDiskGiB', flavor.rootGiB, this.config.localDiskGiB - used.diskGiB],
    ].filter(([, need, free]) => (need as number) > (free as number)) as Array<[string, number, number]>;
    if (short.length) {
      throw new DriverFailureError(
        `Insufficient resources on ${this.hypervisorHostname} to spawn ${instance.name} (flavor ${flavor.name}): ${short
          .map(([what, need, free]) => `${what} needs ${need}, ${free} free`)
          .join('; ')}. Destroy instances or pick a smaller flavor.`,
        {
          details: {
            reason: 'insufficient_resources',
            short: Object.fromEntries(short.map(([what, need, free]) => [what, { need, free }])),
          },
        },
      );
    }
  }
}

function checkMountpoint(mountpoint: unknown): void {
  if (typeof mountpoint !== 'string' || !MOUNTPOINT.test(mountpoint)) {
    throw new InvalidInputError('Invalid mountpoint', [
      { path: '/mountpoint', message: `${JSON.stringify(mountpoint)} is not a device name such as /dev/vdb` },
    ]);
  }
}
