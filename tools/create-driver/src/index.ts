export {
  backendOf,
  classPrefixOf,
  type DriverKind,
  fill,
  KINDS,
  ScaffoldError,
  type ScaffoldOptions,
  type ScaffoldResult,
  scaffold,
  templateDir,
} from './scaffold.js';
export { CORE_RANGE, TOOL_VERSIONS } from './versions.js';
