import { definePlugin } from '@stratus/core';
import { __Backend__VolumeDriver } from './__backend__-volume-driver.js';
import { __Backend__DriverConfig } from './config.js';

export { __Backend__VolumeDriver } from './__backend__-volume-driver.js';
export { __Backend__DriverConfig } from './config.js';

/** What Stratus resolves when a config names "__PACKAGE__". `name` must equal package.json's. */
const manifest = definePlugin({
  name: '__PACKAGE__',
  kind: 'volume-driver',
  // The range of @stratus/core's volume-driver contract this driver implements (CONTRACTS['volume-driver']).
  contract: '^1.0.0',
  description: 'Volumes on __backend__',
  config: __Backend__DriverConfig,
  // Every command the driver may run through env.executor; anything else is refused. For example:
  // commands: [{ command: 'democli', asRoot: true, args: [/create|delete/, /[A-Za-z0-9._-]{1,128}/, /\d+G/] }],
  commands: [],
  create: (config, env) => new __Backend__VolumeDriver(config, env),
});

export default manifest;
