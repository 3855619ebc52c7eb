import { definePlugin, type ManagerEnv } from '@stratus/core';
import { VolumeManagerConfig } from './config.js';
import { VolumeManager } from './manager.js';
import { volumeMigrations } from './migrations.js';

export * from './client.js';
export { VolumeManagerConfig } from './config.js';
export { INTERRUPTED_REASON, VolumeManager } from './manager.js';

/** The volume service's manager plugin: `services.volume.manager.plugin = "@stratus/manager-volume"`. */
const volumePlugin = definePlugin({
  name: '@stratus/manager-volume',
  kind: 'manager',
  contract: '^1.0.0',
  description:
    "Volume service (Nova's VolumeManager): volumes, snapshots, exports and connections on one storage host",
  driverKind: 'volume-driver',
  migrations: [volumeMigrations],
  config: VolumeManagerConfig,
  create: (config, env) => new VolumeManager(config, env as ManagerEnv),
});

export default volumePlugin;
