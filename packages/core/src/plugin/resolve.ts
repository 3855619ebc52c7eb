import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolve as resolveFrom } from 'import-meta-resolve';
// The two functions, not semver's index: it loads every one of its ~50 files at start-up.
import satisfies from 'semver/functions/satisfies.js';
import validRange from 'semver/ranges/valid.js';
import type { TSchema } from 'typebox';
import type { PluginEnv } from '../contracts/driver.js';
import { CONTRACTS, PLUGIN_KINDS, type PluginKind } from '../contracts/versions.js';
import {
  ConfigInvalidError,
  ContractMismatchError,
  PluginInvalidError,
  PluginKindMismatchError,
  PluginNotFoundError,
  StratusError,
} from '../errors.js';
import { withDefaults } from '../schema.js';
import type { PluginManifest } from './manifest.js';

const CORE_PACKAGE = '@stratus/core';

/** A package name (`@acme/stratus-driver-x`), `pkg#exportName`, a relative or absolute path, or a manifest. */
export type PluginSpec = string | PluginManifest;

export interface ResolveOptions {
  /** The application's folder (the config file's folder, else cwd). Never core's own folder. */
  readonly root: string;
}

/** A manifest checked against core, and where it came from (for `stratus plugins list`). */
export interface ResolvedPlugin<K extends PluginKind = PluginKind> {
  readonly manifest: PluginManifest<K>;
  /** The spec as written, or `<manifest>` when an object was given. */
  readonly spec: string;
  /** The resolved module URL; undefined for a manifest object. */
  readonly url?: string;
  /** package.json name and version of the package the module belongs to, when found. */
  readonly packageName?: string;
  readonly packageVersion?: string;
}

/**
 * Find a plugin of `kind` and check it against this core: the module is imported from the
 * application root (under pnpm's strict layout core cannot see the app's dependencies), its
 * manifest shape, kind and contract range are checked. Every failure is a typed PluginError
 * whose message says what to do.
 */
export async function resolvePlugin<K extends PluginKind>(
  spec: PluginSpec,
  kind: K,
  options: ResolveOptions,
): Promise<ResolvedPlugin<K>> {
  if (typeof spec !== 'string') {
    return { manifest: checkManifest(spec, kind, '<manifest>'), spec: '<manifest>' };
  }
  const { specifier, exportName } = splitSpec(spec);
  // Core's own plugins (the memory transport) come from this very copy of core, installed or not.
  const url = specifier === CORE_PACKAGE ? CORE_PACKAGE : locate(spec, specifier, options.root);
  let mod: Record<string, unknown>;
  try {
    mod = (url === CORE_PACKAGE ? await import('../index.js') : await import(url)) as Record<string, unknown>;
  } catch (cause) {
    throw new PluginInvalidError(spec, `importing ${url} failed (${(cause as Error).message})`, { cause });
  }
  const pkg = await owningPackage(url);
  const manifest = pickManifest(mod, spec, kind, exportName);
  return {
    manifest: checkManifest(manifest, kind, spec),
    spec,
    url,
    ...(pkg ? { packageName: pkg.name, packageVersion: pkg.version } : {}),
  };
}

/**
 * Apply the manifest's config defaults and validate; every problem is listed at once with its JSON
 * path under `at` (e.g. `/services/volume/driver/config`).
 */
export function parsePluginConfig<K extends PluginKind>(
  manifest: PluginManifest<K>,
  raw: unknown,
  at = '',
): unknown {
  if (!manifest.config) {
    if (raw !== undefined && !(isPlainObject(raw) && Object.keys(raw).length === 0)) {
      throw new ConfigInvalidError(manifest.name, [
        { path: at || '/', message: 'this plugin takes no config' },
      ]);
    }
    return {};
  }
  const { value, issues } = withDefaults(manifest.config as TSchema, raw ?? {});
  if (issues.length) {
    throw new ConfigInvalidError(
      manifest.name,
      issues.map((i) => ({ path: `${at}${i.path}`, message: i.message })),
    );
  }
  return value;
}

/** Validate config, then call the plugin's `create`. A throwing `create` keeps its typed error. */
export async function createPlugin<K extends PluginKind, I = unknown>(
  manifest: PluginManifest<K>,
  rawConfig: unknown,
  env: PluginEnv,
): Promise<I> {
  const config = parsePluginConfig(manifest, rawConfig);
  try {
    return (await manifest.create(config as never, env)) as I;
  } catch (cause) {
    if (StratusError.is(cause)) throw cause;
    throw new PluginInvalidError(manifest.name, `create() threw: ${(cause as Error)?.message ?? cause}`, {
      cause,
    });
  }
}

/** The manifest's shape, kind and contract, checked in that order. */
export function checkManifest<K extends PluginKind>(
  value: unknown,
  kind: K,
  spec: string,
): PluginManifest<K> {
  const reason = shapeProblem(value);
  if (reason) throw new PluginInvalidError(spec, reason);
  const manifest = value as PluginManifest;
  if (manifest.kind !== kind) throw new PluginKindMismatchError(spec, kind, manifest.kind);
  const provided = CONTRACTS[kind];
  if (!satisfies(provided, manifest.contract, { includePrerelease: true })) {
    throw new ContractMismatchError(spec, kind, manifest.contract, provided);
  }
  return manifest as PluginManifest<K>;
}

function shapeProblem(value: unknown): string | undefined {
  if (!isPlainObject(value)) return `its export is ${describe(value)}, not a manifest object`;
  const m = value as Partial<Record<keyof PluginManifest, unknown>>;
  if (typeof m.name !== 'string' || !m.name) return 'the manifest has no "name"';
  if (typeof m.kind !== 'string' || !(PLUGIN_KINDS as readonly string[]).includes(m.kind)) {
    return `the manifest's "kind" is ${JSON.stringify(m.kind)}; expected one of ${PLUGIN_KINDS.join(', ')}`;
  }
  if (typeof m.contract !== 'string' || validRange(m.contract) === null) {
    return `the manifest's "contract" ${JSON.stringify(m.contract)} is not a semver range such as "^1.0.0"`;
  }
  if (typeof m.create !== 'function') return 'the manifest has no create() function';
  if (m.config !== undefined && !isPlainObject(m.config))
    return 'the manifest\'s "config" is not a typebox schema';
  return undefined;
}

function pickManifest(
  mod: Record<string, unknown>,
  spec: string,
  kind: PluginKind,
  exportName: string | undefined,
): unknown {
  if (exportName !== undefined) {
    if (!(exportName in mod)) {
      const names = Object.keys(mod).filter((k) => k !== 'default');
      throw new PluginInvalidError(
        spec,
        `the module has no export "${exportName}" (it exports: ${names.join(', ') || 'nothing named'})`,
      );
    }
    return mod[exportName];
  }
  if (!('default' in mod)) {
    throw new PluginInvalidError(spec, 'the module has no default export');
  }
  const exported = mod.default;
  if (!Array.isArray(exported)) return exported;
  const ofKind = exported.filter((m) => isPlainObject(m) && (m as { kind?: unknown }).kind === kind);
  if (ofKind.length === 1) return ofKind[0];
  if (ofKind.length > 1) {
    throw new PluginInvalidError(
      spec,
      `it exports ${ofKind.length} ${kind} manifests; name one with "${spec}#export"`,
    );
  }
  const kinds = exported.map((m) =>
    isPlainObject(m) ? String((m as { kind?: unknown }).kind) : describe(m),
  );
  throw new PluginKindMismatchError(spec, kind, kinds.join(' and ') || 'an empty list');
}

/** Where `specifier` resolves from the application root, or PluginNotFound. */
function locate(spec: string, specifier: string, root: string): string {
  const absoluteRoot = path.resolve(root);
  if (isPathLike(specifier)) {
    const file = specifier.startsWith('file:')
      ? fileURLToPath(specifier)
      : path.resolve(absoluteRoot, specifier);
    // A file URL resolves whether or not the file exists.
    if (!existsSync(file)) throw new PluginNotFoundError(spec, absoluteRoot, { file });
    return pathToFileURL(file).href;
  }
  try {
    return resolveFrom(specifier, pathToFileURL(`${absoluteRoot}${path.sep}`).href);
  } catch (cause) {
    throw new PluginNotFoundError(spec, absoluteRoot, { cause });
  }
}

export function splitSpec(spec: string): { specifier: string; exportName?: string } {
  const hash = spec.lastIndexOf('#');
  // `#` at 0 is a package import map entry, not an export name.
  if (hash <= 0) return { specifier: spec };
  return { specifier: spec.slice(0, hash), exportName: spec.slice(hash + 1) };
}

function isPathLike(specifier: string): boolean {
  return (
    specifier.startsWith('./') ||
    specifier.startsWith('../') ||
    specifier.startsWith('/') ||
    specifier.startsWith('file:') ||
    specifier === '.' ||
    specifier === '..'
  );
}

/** Walk up from the module to its package.json (packages need not export it). */
async function owningPackage(url: string): Promise<{ name: string; version: string } | undefined> {
  if (!url.startsWith('file:')) return undefined;
  let dir = path.dirname(fileURLToPath(url));
  for (;;) {
    try {
      const json = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (typeof json.name === 'string' && typeof json.version === 'string') {
        return { name: json.name, version: json.version };
      }
    } catch {
      // no package.json here; keep walking
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
