/**
 * Minimal drivers that keep the contracts, used to check the conformance suites themselves: the
 * suites must pass them, and fail each deliberately broken subclass on the rule it breaks.
 * (The testkit may not depend on @stratus/driver-fake; the fake runs the suites in its own package.)
 */
import {
  type AvailableResources,
  type BackendVolume,
  ComputeDriver,
  type ConnectionInfo,
  DriverFailureError,
  definePlugin,
  type InstanceInfo,
  type InstanceSpec,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
  type PowerState,
  type SnapshotSpec,
  VolumeDriver,
  type VolumeModelUpdate,
  type VolumeSpec,
  type VolumeStats,
} from '@stratus/core';
import Type from 'typebox';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function checkName(name: string): void {
  if (!NAME.test(name)) throw new InvalidInputError('bad name', [{ path: '/name', message: name }]);
}

export class ReferenceVolumeDriver extends VolumeDriver {
  readonly volumes = new Map<string, { id: string; size: number; exported: boolean }>();
  readonly snapshots = new Map<string, { volume: string; size: number }>();

  constructor(readonly capacityGiB: number) {
    super();
  }

  protected used(): number {
    let used = 0;
    for (const v of this.volumes.values()) used += v.size;
    for (const s of this.snapshots.values()) used += s.size;
    return used;
  }

  protected need(size: number): void {
    if (size > this.capacityGiB - this.used()) {
      throw new DriverFailureError('full', { details: { reason: 'insufficient_capacity' } });
    }
  }

  async createVolume(v: VolumeSpec): Promise<VolumeModelUpdate | undefined> {
    checkName(v.name);
    if (!Number.isInteger(v.sizeGiB) || v.sizeGiB < 1) throw new InvalidInputError('bad size');
    if (this.volumes.get(v.name)?.size === v.sizeGiB) return undefined;
    this.need(v.sizeGiB);
    this.volumes.set(v.name, { id: v.id, size: v.sizeGiB, exported: false });
    return undefined;
  }

  async createVolumeFromSnapshot(v: VolumeSpec, s: SnapshotSpec): Promise<VolumeModelUpdate | undefined> {
    const snap = this.snapshots.get(s.name);
    if (!snap) throw new NotFoundError('snapshot', s.name);
    if (v.sizeGiB < snap.size) throw new InvalidInputError('too small');
    return this.createVolume(v);
  }

  async deleteVolume(v: VolumeSpec): Promise<void> {
    if ([...this.snapshots.values()].some((s) => s.volume === v.name))
      throw new InvalidStateError('has snapshots');
    this.volumes.delete(v.name);
  }

  async createSnapshot(s: SnapshotSpec): Promise<VolumeModelUpdate | undefined> {
    const v = this.volumes.get(s.volumeName);
    if (!v) throw new NotFoundError('volume', s.volumeName);
    this.need(v.size);
    this.snapshots.set(s.name, { volume: s.volumeName, size: v.size });
    return undefined;
  }

  async deleteSnapshot(s: SnapshotSpec): Promise<void> {
    this.snapshots.delete(s.name);
  }

  async extendVolume(v: VolumeSpec, size: number): Promise<void> {
    const record = this.require(v.name);
    if (size <= record.size) throw new InvalidInputError('only bigger');
    this.need(size - record.size);
    record.size = size;
  }

  async createExport(v: VolumeSpec): Promise<VolumeModelUpdate | undefined> {
    this.require(v.name).exported = true;
    return { providerLocation: `127.0.0.1:3260,1 iqn.test:${v.name} 1`, providerAuth: 'CHAP user secret' };
  }

  async ensureExport(v: VolumeSpec): Promise<void> {
    if (v.providerLocation) this.require(v.name).exported = true;
  }

  async removeExport(v: VolumeSpec): Promise<void> {
    const record = this.volumes.get(v.name);
    if (record) record.exported = false;
  }

  async initializeConnection(v: VolumeSpec): Promise<ConnectionInfo> {
    const record = this.require(v.name);
    if (!record.exported) throw new InvalidStateError('not exported');
    return {
      driverVolumeType: 'iscsi',
      data: {
        targetPortal: '127.0.0.1:3260',
        targetIqn: `iqn.test:${v.name}`,
        targetLun: 1,
        volumeId: record.id,
      },
    };
  }

  async terminateConnection(): Promise<void> {}

  async getVolumeStats(): Promise<VolumeStats> {
    const used = this.used();
    return {
      backendName: 'reference',
      vendorName: 'test',
      driverVersion: '1',
      storageProtocol: 'iSCSI',
      totalCapacityGiB: this.capacityGiB,
      freeCapacityGiB: this.capacityGiB - used,
      provisionedCapacityGiB: used,
      thinProvisioning: false,
    };
  }

  async listVolumes(): Promise<BackendVolume[]> {
    return [...this.volumes].map(([name, v]) => ({ name, sizeGiB: v.size }));
  }

  protected require(name: string) {
    const record = this.volumes.get(name);
    if (!record) throw new NotFoundError('volume', name);
    return record;
  }
}

export const ReferenceVolumeConfig = Type.Object(
  { capacityGiB: Type.Integer({ minimum: 1, default: 20 }) },
  { additionalProperties: false },
);

/** A volume-driver manifest around `Driver` (a subclass of ReferenceVolumeDriver). */
export function volumeManifest(Driver: new (capacityGiB: number) => VolumeDriver = ReferenceVolumeDriver) {
  return definePlugin({
    name: 'reference-volume',
    kind: 'volume-driver',
    contract: '^1.0.0',
    config: ReferenceVolumeConfig,
    create: (config) => new Driver(config.capacityGiB),
  });
}

interface Vm {
  spec: InstanceSpec;
  state: PowerState;
  rescued: boolean;
  mounts: Set<string>;
}

export class ReferenceComputeDriver extends ComputeDriver {
  readonly vms = new Map<string, Vm>();

  constructor(readonly memoryMiB: number) {
    super();
  }

  protected vm(i: InstanceSpec): Vm {
    const vm = this.vms.get(i.name);
    if (!vm) throw new NotFoundError('instance', i.name);
    return vm;
  }

  protected from(vm: Vm, allowed: PowerState[], to: PowerState): void {
    if (!allowed.includes(vm.state)) throw new InvalidStateError(`not from ${vm.state}`);
    vm.state = to;
  }

  protected usedMemory(): number {
    return [...this.vms.values()].reduce((sum, vm) => sum + vm.spec.flavor.memoryMiB, 0);
  }

  async spawn(i: InstanceSpec): Promise<void> {
    if (i.flavor.memoryMiB > this.memoryMiB - this.usedMemory()) {
      throw new DriverFailureError('full', { details: { reason: 'insufficient_resources' } });
    }
    this.vms.set(i.name, { spec: i, state: 'running', rescued: false, mounts: new Set() });
  }

  async destroy(i: InstanceSpec): Promise<void> {
    this.vms.delete(i.name);
  }

  async reboot(i: InstanceSpec): Promise<void> {
    this.from(this.vm(i), ['running'], 'running');
  }

  async powerOff(i: InstanceSpec): Promise<void> {
    this.vm(i).state = 'shutdown';
  }

  async powerOn(i: InstanceSpec): Promise<void> {
    this.from(this.vm(i), ['running', 'shutdown'], 'running');
  }

  async pause(i: InstanceSpec): Promise<void> {
    this.from(this.vm(i), ['running', 'paused'], 'paused');
  }

  async unpause(i: InstanceSpec): Promise<void> {
    this.from(this.vm(i), ['running', 'paused'], 'running');
  }

  async suspend(i: InstanceSpec): Promise<void> {
    this.from(this.vm(i), ['running', 'suspended'], 'suspended');
  }

  async resume(i: InstanceSpec): Promise<void> {
    this.from(this.vm(i), ['running', 'suspended'], 'running');
  }

  async rescue(i: InstanceSpec): Promise<void> {
    const vm = this.vm(i);
    if (vm.rescued) throw new InvalidStateError('rescued');
    vm.rescued = true;
  }

  async unrescue(i: InstanceSpec): Promise<void> {
    const vm = this.vm(i);
    if (!vm.rescued) throw new InvalidStateError('not rescued');
    vm.rescued = false;
  }

  async getInfo(i: InstanceSpec): Promise<InstanceInfo> {
    const vm = this.vm(i);
    const { flavor } = vm.spec;
    return {
      state: vm.state,
      maxMemoryMiB: flavor.memoryMiB,
      memoryMiB: flavor.memoryMiB,
      vcpus: flavor.vcpus,
      cpuTimeNs: 0,
    };
  }

  async listInstances(): Promise<string[]> {
    return [...this.vms.keys()];
  }

  async getConsoleOutput(i: InstanceSpec): Promise<string> {
    return `booted ${this.vm(i).spec.name}\n`;
  }

  async attachVolume(i: InstanceSpec, _c: ConnectionInfo, mountpoint: string): Promise<void> {
    const vm = this.vm(i);
    if (vm.mounts.has(mountpoint)) throw new InvalidStateError('busy');
    vm.mounts.add(mountpoint);
  }

  async detachVolume(i: InstanceSpec, _c: ConnectionInfo, mountpoint: string): Promise<void> {
    this.vm(i).mounts.delete(mountpoint);
  }

  async getAvailableResources(): Promise<AvailableResources> {
    const vms = [...this.vms.values()];
    return {
      vcpus: 8,
      vcpusUsed: vms.reduce((sum, vm) => sum + vm.spec.flavor.vcpus, 0),
      memoryMiB: this.memoryMiB,
      memoryMiBUsed: this.usedMemory(),
      localDiskGiB: 100,
      localDiskGiBUsed: vms.reduce((sum, vm) => sum + vm.spec.flavor.rootGiB, 0),
      hypervisorType: 'reference',
      hypervisorVersion: '1',
      hypervisorHostname: 'reference-host',
    };
  }
}

export const ReferenceComputeConfig = Type.Object(
  { memoryMiB: Type.Integer({ minimum: 1, default: 4096 }) },
  { additionalProperties: false },
);

/** A compute-driver manifest around `Driver` (a subclass of ReferenceComputeDriver). */
export function computeManifest(Driver: new (memoryMiB: number) => ComputeDriver = ReferenceComputeDriver) {
  return definePlugin({
    name: 'reference-compute',
    kind: 'compute-driver',
    contract: '^1.0.0',
    config: ReferenceComputeConfig,
    create: (config) => new Driver(config.memoryMiB),
  });
}
