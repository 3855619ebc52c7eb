/**
 * The version of each plugin contract this @stratus/core provides. A plugin's manifest names a
 * semver range of its kind's contract; resolution refuses a plugin whose range excludes it.
 * Adding an optional member is a minor bump; changing or removing one is a major.
 */
export const CONTRACTS = Object.freeze({
  manager: '1.0.0',
  'volume-driver': '1.0.0',
  'compute-driver': '1.0.0',
  transport: '1.0.0',
} as const);

export type PluginKind = keyof typeof CONTRACTS;
export const PLUGIN_KINDS = Object.freeze(Object.keys(CONTRACTS) as PluginKind[]);
