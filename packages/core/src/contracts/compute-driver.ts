import Type, { type Static } from 'typebox';
import { Driver } from './driver.js';
import type { ConnectionInfo } from './volume-driver.js';

/** Power state as the hypervisor reports it (Nova's power_state). */
export const PowerState = Type.Union([
  Type.Literal('nostate'),
  Type.Literal('running'),
  Type.Literal('paused'),
  Type.Literal('shutdown'),
  Type.Literal('crashed'),
  Type.Literal('suspended'),
]);
export type PowerState = Static<typeof PowerState>;

export const Flavor = Type.Object({
  name: Type.String({ minLength: 1 }),
  vcpus: Type.Integer({ minimum: 1 }),
  memoryMiB: Type.Integer({ minimum: 1 }),
  rootGiB: Type.Integer({ minimum: 0 }),
});
export type Flavor = Static<typeof Flavor>;

/** An instance as a driver sees it. `name` is the backend name (e.g. `instance-<id>`). */
export const InstanceSpec = Type.Object({
  id: Type.String({ minLength: 1 }),
  name: Type.String({ minLength: 1 }),
  projectId: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  imageRef: Type.String({ minLength: 1 }),
  flavor: Flavor,
});
export type InstanceSpec = Static<typeof InstanceSpec>;

export const InstanceInfo = Type.Object({
  state: PowerState,
  maxMemoryMiB: Type.Integer({ minimum: 0 }),
  memoryMiB: Type.Integer({ minimum: 0 }),
  vcpus: Type.Integer({ minimum: 0 }),
  cpuTimeNs: Type.Integer({ minimum: 0 }),
});
export type InstanceInfo = Static<typeof InstanceInfo>;

export const AvailableResources = Type.Object({
  vcpus: Type.Integer({ minimum: 0 }),
  vcpusUsed: Type.Integer({ minimum: 0 }),
  memoryMiB: Type.Integer({ minimum: 0 }),
  memoryMiBUsed: Type.Integer({ minimum: 0 }),
  localDiskGiB: Type.Integer({ minimum: 0 }),
  localDiskGiBUsed: Type.Integer({ minimum: 0 }),
  hypervisorType: Type.String(),
  hypervisorVersion: Type.String(),
  hypervisorHostname: Type.String(),
});
export type AvailableResources = Static<typeof AvailableResources>;

export const RebootType = Type.Union([Type.Literal('SOFT'), Type.Literal('HARD')]);
export type RebootType = Static<typeof RebootType>;

/**
 * The compute-driver contract (`CONTRACTS['compute-driver']`): a hypervisor on one host.
 * Operations on an instance the driver does not know throw `NotFound`, except `destroy`,
 * which succeeds (idempotent). A state the hypervisor refuses is `InvalidState`.
 */
export abstract class ComputeDriver extends Driver {
  /** Create and start the instance; on failure nothing of it is left behind. */
  abstract spawn(instance: InstanceSpec): Promise<void>;
  /** Stop and remove the instance and its local disks. Destroying an unknown instance succeeds. */
  abstract destroy(instance: InstanceSpec): Promise<void>;
  abstract reboot(instance: InstanceSpec, type: RebootType): Promise<void>;
  abstract powerOff(instance: InstanceSpec): Promise<void>;
  abstract powerOn(instance: InstanceSpec): Promise<void>;
  abstract pause(instance: InstanceSpec): Promise<void>;
  abstract unpause(instance: InstanceSpec): Promise<void>;
  abstract suspend(instance: InstanceSpec): Promise<void>;
  abstract resume(instance: InstanceSpec): Promise<void>;
  /** Boot the instance from a rescue image, keeping its disk attached. */
  abstract rescue(instance: InstanceSpec, rescuePassword: string): Promise<void>;
  abstract unrescue(instance: InstanceSpec): Promise<void>;
  abstract getInfo(instance: InstanceSpec): Promise<InstanceInfo>;
  /** Backend names of every instance the hypervisor holds. */
  abstract listInstances(): Promise<string[]>;
  abstract getConsoleOutput(instance: InstanceSpec): Promise<string>;
  /** Connect the volume described by `connectionInfo` at `mountpoint` (e.g. `/dev/vdb`). */
  abstract attachVolume(
    instance: InstanceSpec,
    connectionInfo: ConnectionInfo,
    mountpoint: string,
  ): Promise<void>;
  /** Disconnect it. Detaching a volume that is not attached succeeds. */
  abstract detachVolume(
    instance: InstanceSpec,
    connectionInfo: ConnectionInfo,
    mountpoint: string,
  ): Promise<void>;
  abstract getAvailableResources(): Promise<AvailableResources>;
}
