import { definePlugin } from '@stratus/core';
import { FakeComputeConfig, FakeVolumeConfig } from './config.js';
import { FakeComputeDriver } from './fake-compute-driver.js';
import { FakeVolumeDriver } from './fake-volume-driver.js';

export { FakeComputeConfig, FakeVolumeConfig } from './config.js';
export {
  COMPUTE_METHODS,
  type ComputeMethod,
  FakeComputeDriver,
  type FakeInstanceView,
} from './fake-compute-driver.js';
export {
  FakeVolumeDriver,
  type FakeVolumeView,
  VOLUME_METHODS,
  type VolumeMethod,
} from './fake-volume-driver.js';
export { FakeInstrument, Faults, type Persistence, type RecordedCall } from './faults.js';
export { BACKEND_NAME } from './names.js';

const NAME = '@stratus/driver-fake';

/** The in-memory volume driver (`@stratus/driver-fake#volume`). */
export const volume = definePlugin({
  name: NAME,
  kind: 'volume-driver',
  contract: '^1.0.0',
  description:
    'In-memory volume backend shaped like LVM + iSCSI, with capacity accounting and failure injection',
  config: FakeVolumeConfig,
  create: (config, env) => new FakeVolumeDriver(config, env),
});

/** The in-memory hypervisor (`@stratus/driver-fake#compute`). */
export const compute = definePlugin({
  name: NAME,
  kind: 'compute-driver',
  contract: '^1.0.0',
  description:
    "In-memory hypervisor following Nova's FakeConnection, with resource accounting and failure injection",
  config: FakeComputeConfig,
  create: (config, env) => new FakeComputeDriver(config, env),
});

export default [volume, compute];
