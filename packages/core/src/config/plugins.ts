import type { PluginKind } from '../contracts/versions.js';
import { StratusError } from '../errors.js';
import { parsePluginConfig, type ResolvedPlugin, resolvePlugin } from '../plugin/resolve.js';
import type { LoadedConfig } from './load.js';

/** One plugin named in config, checked: resolved and its config validated, or the error. */
export interface PluginCheck {
  /** JSON path of the reference in the config, e.g. `/services/volume/driver`. */
  readonly at: string;
  readonly kind: PluginKind;
  readonly spec: string;
  readonly resolved?: ResolvedPlugin;
  /** The plugin's config with defaults applied, when valid. */
  readonly config?: unknown;
  readonly error?: StratusError;
}

/**
 * Resolve every plugin the config names (transport, each service's manager and driver) and
 * validate each one's config section. Problems are collected, not thrown, so one run shows all.
 * A driver's kind is the one its manager's manifest declares in `driverKind`.
 */
export async function checkConfiguredPlugins(
  loaded: LoadedConfig,
  driverKindOf: (
    service: string,
    manager: ResolvedPlugin<'manager'>,
  ) => PluginKind | undefined = defaultDriverKind,
): Promise<PluginCheck[]> {
  const { config, root } = loaded;
  const checks: PluginCheck[] = [];
  checks.push(await check('/transport', 'transport', config.transport.plugin, config.transport.config));
  for (const [name, service] of Object.entries(config.services)) {
    const at = `/services/${name}`;
    const manager = await check(`${at}/manager`, 'manager', service.manager.plugin, service.manager.config);
    checks.push(manager);
    if (service.driver && manager.resolved) {
      const kind = driverKindOf(name, manager.resolved as ResolvedPlugin<'manager'>);
      if (kind) checks.push(await check(`${at}/driver`, kind, service.driver.plugin, service.driver.config));
    }
  }
  return checks;

  async function check(at: string, kind: PluginKind, spec: string, raw: unknown): Promise<PluginCheck> {
    try {
      const resolved = await resolvePlugin(spec, kind, { root });
      const pluginConfig = parsePluginConfig(resolved.manifest, raw ?? {}, `${at}/config`);
      return { at, kind, spec, resolved, config: pluginConfig };
    } catch (error) {
      if (!StratusError.is(error)) throw error;
      return { at, kind, spec, error };
    }
  }
}

function defaultDriverKind(_service: string, manager: ResolvedPlugin<'manager'>): PluginKind | undefined {
  return manager.manifest.driverKind;
}
