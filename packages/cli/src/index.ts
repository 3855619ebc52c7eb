export { type CliContext, withConfig, withJson } from './context.js';
export {
  BUNDLED_PACKAGES,
  checkPlugins,
  type Deployment,
  LOCAL_SERVICES,
  loadDeployment,
  locatePlugin,
  type PluginReport,
} from './deployment.js';
export { CliError, ExitCode, exitCodeFor, formatError } from './exit.js';
export { type Io, type OutStream, processIo } from './io.js';
export {
  type Connection,
  type Profile,
  profilePath,
  readProfile,
  resolveConnection,
  writeProfile,
} from './profile.js';
export { CLI_VERSION, createProgram, run } from './program.js';
