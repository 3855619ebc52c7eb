import { definePlugin, type ManagerEnv } from '@stratus/core';
import { volumeMigrations } from '@stratus/manager-volume/client';
import { ComputeManagerConfig } from './config.js';
import { ComputeManager } from './manager.js';
import { computeMigrations } from './migrations.js';

export * from './client.js';
export { ComputeManagerConfig } from './config.js';
export { type InstanceGuard, InstanceStore, type InstanceUpdate } from './instance-store.js';
export { ComputeManager, INTERRUPTED_REASON, MISSING_REASON } from './manager.js';

/** The compute service's manager plugin: `services.compute.manager.plugin = "@stratus/manager-compute"`. */
const computePlugin = definePlugin({
  name: '@stratus/manager-compute',
  kind: 'manager',
  contract: '^1.0.0',
  description:
    "Compute service (Nova's ComputeManager): instances on one hypervisor host, their power states and volume attachments",
  driverKind: 'compute-driver',
  // The volume tables too: this manager records attachments through the volume API on the same store.
  migrations: [volumeMigrations, computeMigrations],
  config: ComputeManagerConfig,
  create: (config, env) => new ComputeManager(config, env as ManagerEnv),
});

export default computePlugin;
