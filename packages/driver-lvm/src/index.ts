import { definePlugin } from '@stratus/core';
import { LVM_COMMANDS } from './commands.js';
import { LvmDriverConfig } from './config.js';
import { LvmVolumeDriver } from './lvm-volume-driver.js';

export {
  LOCALE,
  LVM_COMMANDS,
  LVS_COLUMNS,
  lvmArgv,
  reportArgv,
  SEPARATOR,
  SNAPSHOT_TAG,
  VGS_COLUMNS,
} from './commands.js';
export { IQN_PREFIX_PATTERN, LvmDriverConfig, VG_NAME_PATTERN } from './config.js';
export {
  type LvmDriverEnv,
  type LvmDriverInternals,
  type LvmMode,
  LvmVolumeDriver,
} from './lvm-volume-driver.js';
export {
  BACKEND_NAME,
  contractNameOf,
  devicePath,
  INITIATOR_NAME,
  lvNameOf,
  mapperName,
  TARGET_IQN,
} from './names.js';
export {
  type LvReport,
  parseLvs,
  parseTgtTargets,
  parseVgs,
  type TgtTarget,
  type VgReport,
} from './parse.js';
export { type CommandExecutor, CommandRunner, SEGFAULT_EXIT, type Sleep } from './runner.js';
export { type ExportSpec, FakeTarget, LioadmTarget, type TargetHelper, TgtadmTarget } from './targets.js';

/** The LVM2 volume driver (`@stratus/driver-lvm`). */
export const volume = definePlugin({
  name: '@stratus/driver-lvm',
  kind: 'volume-driver',
  contract: '^1.0.0',
  description: 'LVM2 logical volumes (thick or thin) exported over iSCSI with tgt or LIO',
  config: LvmDriverConfig,
  commands: LVM_COMMANDS,
  create: (config, env) => new LvmVolumeDriver(config, env),
});

export default volume;
