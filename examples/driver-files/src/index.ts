import { definePlugin } from '@stratus/core';
import { FilesDriverConfig } from './config.js';
import { FilesVolumeDriver } from './files-volume-driver.js';

export { FilesDriverConfig } from './config.js';
export { FilesVolumeDriver } from './files-volume-driver.js';

/** The manifest Stratus resolves when a config names `@acme/stratus-driver-files`. */
const manifest = definePlugin({
  name: '@acme/stratus-driver-files',
  kind: 'volume-driver',
  contract: '^1.0.0',
  description: 'Volumes as sparse image files in a directory; snapshots are sparse copies',
  config: FilesDriverConfig,
  create: (config, env) => new FilesVolumeDriver(config, env),
});

export default manifest;
