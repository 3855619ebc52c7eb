import type { Static, TSchema } from 'typebox';
import type { PluginEnv } from '../contracts/driver.js';
import type { PluginKind } from '../contracts/versions.js';
import type { CommandFilter } from '../exec/filters.js';
import type { MigrationSet } from '../store/migrations.js';

const PLUGIN_BRAND = Symbol.for('@stratus/core:plugin');

/**
 * What a plugin package default-exports (or an array of them). `create` receives config that has
 * already had defaults applied and passed `config`'s schema.
 */
export interface PluginManifest<K extends PluginKind = PluginKind, C extends TSchema = TSchema, I = unknown> {
  /** The npm package name (equals package.json "name"); used in messages and the registry. */
  readonly name: string;
  readonly kind: K;
  /** Semver range of core's contract version for `kind` that this plugin implements, e.g. `^1.0.0`. */
  readonly contract: string;
  /** typebox schema of the plugin's own config section. */
  readonly config?: C;
  readonly description?: string;
  /** Managers only: the kind of driver the manager loads from its service's `driver` entry. */
  readonly driverKind?: 'volume-driver' | 'compute-driver';
  /** The plugin's tables, applied with core's before a service using it starts (`stratus db migrate`). */
  readonly migrations?: readonly MigrationSet[];
  /** Commands this plugin may run through `env.executor`; anything else is refused. */
  readonly commands?: readonly CommandFilter[];
  readonly create: (config: Static<C>, env: PluginEnv) => I | Promise<I>;
}

/** Declare a plugin. Freezes the manifest; adds nothing global. */
export function definePlugin<const K extends PluginKind, C extends TSchema, I>(
  manifest: PluginManifest<K, C, I>,
): PluginManifest<K, C, I> {
  const copy = { ...manifest };
  Object.defineProperty(copy, PLUGIN_BRAND, { value: true });
  return Object.freeze(copy);
}

/** True for manifests made by definePlugin (from any copy of core). */
export function isBrandedManifest(value: unknown): boolean {
  return (
    typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PLUGIN_BRAND] === true
  );
}
