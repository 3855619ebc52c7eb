import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CONTRACTS,
  type LoadedConfig,
  loadConfig,
  type PluginKind,
  type PluginManifest,
  parsePluginConfig,
  type ResolvedConfig,
  type ResolvedPlugin,
  resolvePlugin,
  type ServiceConfig,
  StratusError,
} from '@stratus/core';
import type { Io } from './io.js';

/** The services `stratus up` runs when the config names none: the all-in-one local deployment. */
export const LOCAL_SERVICES: Readonly<Record<string, ServiceConfig>> = Object.freeze({
  api: { manager: { plugin: '@stratus/api' } },
  volume: {
    manager: { plugin: '@stratus/manager-volume' },
    driver: { plugin: '@stratus/driver-fake#volume' },
  },
  compute: {
    manager: { plugin: '@stratus/manager-compute' },
    driver: { plugin: '@stratus/driver-fake#compute' },
  },
});

/** Packages the CLI depends on itself, so they resolve even when the application did not install them. */
export const BUNDLED_PACKAGES: readonly string[] = [
  '@stratus/api',
  '@stratus/manager-volume',
  '@stratus/manager-compute',
  '@stratus/driver-fake',
];

/** The CLI package's own folder: plugins it depends on resolve from here. */
export const CLI_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A plugin resolved for this deployment; `bundled` when it came from the CLI's own dependencies. */
export type LocatedPlugin<K extends PluginKind = PluginKind> = ResolvedPlugin<K> & {
  readonly bundled: boolean;
};

/**
 * Resolve a plugin from the application root; a package the CLI ships with (manager-volume,
 * driver-fake, ...) falls back to the CLI's own copy when the application has not installed it,
 * so `npx stratus up` works in an empty folder.
 */
export async function locatePlugin<K extends PluginKind>(
  spec: string,
  kind: K,
  root: string,
): Promise<LocatedPlugin<K>> {
  try {
    return { ...(await resolvePlugin(spec, kind, { root })), bundled: false };
  } catch (error) {
    const pkg = spec.split('#')[0] ?? spec;
    if (!StratusError.is(error, 'PLUGIN_NOT_FOUND') || !BUNDLED_PACKAGES.includes(pkg)) throw error;
    return { ...(await resolvePlugin(spec, kind, { root: CLI_ROOT })), bundled: true };
  }
}

/** A loaded config plus the services it runs (the built-in local ones when it names none). */
export interface Deployment extends LoadedConfig {
  readonly config: ResolvedConfig;
  /** True when the config names no services and the local all-in-one set is used. */
  readonly builtInServices: boolean;
}

export interface DeploymentFlags {
  readonly config?: string | undefined;
  readonly dataDir?: string | undefined;
  readonly host?: string | undefined;
}

/** Load the folder's config (file < env < flags); with no services in it, use {@link LOCAL_SERVICES}. */
export async function loadDeployment(flags: DeploymentFlags, io: Io): Promise<Deployment> {
  const overrides: Record<string, unknown> = {};
  if (flags.dataDir) overrides.dataDir = path.resolve(io.cwd, flags.dataDir);
  if (flags.host) overrides.host = flags.host;
  const loaded = await loadConfig({
    cwd: io.cwd,
    env: io.env,
    overrides,
    ...(flags.config ? { file: flags.config } : {}),
  });
  const builtInServices = Object.keys(loaded.config.services).length === 0;
  const config = builtInServices ? { ...loaded.config, services: { ...LOCAL_SERVICES } } : loaded.config;
  return { ...loaded, config, builtInServices };
}

/** One plugin named by the deployment, checked (see `stratus plugins check`). */
export interface PluginReport {
  /** JSON path in the config, e.g. `/services/volume/driver`. */
  readonly at: string;
  readonly kind: PluginKind;
  readonly spec: string;
  readonly packageName?: string;
  readonly packageVersion?: string;
  readonly bundled?: boolean;
  /** The plugin's contract range, and the version core provides. */
  readonly contract?: string;
  readonly coreContract: string;
  readonly ok: boolean;
  readonly problem?: string;
  readonly code?: string;
  /** Set on success; the manifest, for migrations and driver creation. */
  readonly manifest?: PluginManifest;
  /** The plugin's config with defaults applied, when valid. */
  readonly pluginConfig?: unknown;
}

/**
 * Resolve every plugin of the deployment (transport, each service's manager and driver) and
 * validate each one's config section; problems are collected so one run shows all of them.
 */
export async function checkPlugins(deployment: Deployment): Promise<PluginReport[]> {
  const { config, root } = deployment;
  const reports: PluginReport[] = [];
  reports.push(await check('/transport', 'transport', config.transport.plugin, config.transport.config));
  for (const [name, service] of Object.entries(config.services)) {
    const at = `/services/${name}`;
    const manager = await check(`${at}/manager`, 'manager', service.manager.plugin, service.manager.config);
    reports.push(manager);
    const driverKind = (manager.manifest as PluginManifest<'manager'> | undefined)?.driverKind;
    if (service.driver && manager.ok && !driverKind) {
      reports.push({
        at: `${at}/driver`,
        kind: 'volume-driver',
        spec: service.driver.plugin,
        coreContract: '-',
        ok: false,
        problem: `${manager.manifest?.name} loads no driver; remove ${at}/driver`,
        code: 'CONFIG_INVALID',
      });
    } else if (driverKind && !service.driver) {
      reports.push({
        at: `${at}/driver`,
        kind: driverKind,
        spec: '(none)',
        coreContract: CONTRACTS[driverKind],
        ok: false,
        problem: `${manager.manifest?.name} needs a ${driverKind}: name one in ${at}/driver`,
        code: 'CONFIG_INVALID',
      });
    } else if (driverKind && service.driver) {
      reports.push(await check(`${at}/driver`, driverKind, service.driver.plugin, service.driver.config));
    }
  }
  return reports;

  async function check(at: string, kind: PluginKind, spec: string, raw: unknown): Promise<PluginReport> {
    const base = { at, kind, spec, coreContract: CONTRACTS[kind] };
    let resolved: LocatedPlugin | undefined;
    try {
      resolved = await locatePlugin(spec, kind, root);
      const pluginConfig = parsePluginConfig(resolved.manifest, raw ?? {}, `${at}/config`);
      return { ...base, ...describeResolved(resolved), ok: true, manifest: resolved.manifest, pluginConfig };
    } catch (error) {
      if (!StratusError.is(error)) throw error;
      return {
        ...base,
        ...(resolved ? describeResolved(resolved) : {}),
        ok: false,
        problem: error.message,
        code: error.code,
      };
    }
  }
}

function describeResolved(resolved: LocatedPlugin) {
  return {
    ...(resolved.packageName ? { packageName: resolved.packageName } : {}),
    ...(resolved.packageVersion ? { packageVersion: resolved.packageVersion } : {}),
    bundled: resolved.bundled,
    contract: resolved.manifest.contract,
  };
}
