import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { type RunResult, run } from './run.js';
import { REPO_ROOT } from './workspace.js';

export type PackageManager = 'npm' | 'pnpm';

/** Env for installs: better-sqlite3 compiles against the machine's Node headers when present. */
export function installEnv(): Record<string, string> {
  const env: Record<string, string> = { npm_config_fund: 'false', npm_config_audit: 'false' };
  if (existsSync('/usr/include/node/node.h')) env.npm_config_nodedir = '/usr';
  return env;
}

/** `file:` specs for local tarballs, keyed by package name. */
export function fileSpecs(tarballs: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(tarballs).map(([name, file]) => [name, `file:${file}`]));
}

export interface AppOptions {
  readonly manager: PackageManager;
  /** Every dependency of the app: `file:` tarballs and registry ranges alike. */
  readonly dependencies: Readonly<Record<string, string>>;
  /** Forced for the whole tree, so transitive `@stratus/*` also come from the tarballs. */
  readonly overrides: Readonly<Record<string, string>>;
}

/**
 * Write a fresh application folder (package.json, and for pnpm its own pnpm-workspace.yaml with
 * the overrides and the packages allowed to build) and install it with `manager`. pnpm uses the
 * machine's default store, so packages built once (better-sqlite3) are reused across runs.
 */
export async function installApp(dir: string, options: AppOptions): Promise<RunResult> {
  await mkdir(dir, { recursive: true });
  const pkg: Record<string, unknown> = {
    name: `stratus-pack-test-${options.manager}`,
    private: true,
    version: '0.0.0',
    type: 'module',
    dependencies: options.dependencies,
  };
  if (options.manager === 'npm') pkg.overrides = options.overrides;
  await writeFile(path.join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  if (options.manager === 'pnpm') {
    const settings = {
      // Not a workspace of packages: the file only carries this project's pnpm settings.
      allowBuilds: { 'better-sqlite3': true, esbuild: true },
      overrides: options.overrides,
      nodeLinker: 'isolated',
    };
    await writeFile(path.join(dir, 'pnpm-workspace.yaml'), stringifyYaml(settings));
    return run('pnpm', ['install', '--no-frozen-lockfile', '--reporter=append-only'], {
      cwd: dir,
      env: installEnv(),
    });
  }
  return run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: dir,
    env: installEnv(),
  });
}

/** Copy a fixture file or folder of tools/pack-test/fixtures into `target`. */
export async function copyFixture(name: string, target: string): Promise<void> {
  const source = path.join(REPO_ROOT, 'tools', 'pack-test', 'fixtures', name);
  if (name.endsWith('.mjs')) await copyFile(source, target);
  else await cp(source, target, { recursive: true });
}

/** Copy a project folder, leaving out what an install or build makes. */
export async function copyProject(source: string, target: string): Promise<void> {
  const skipped = new Set(['node_modules', 'dist', 'package-lock.json', 'pnpm-lock.yaml']);
  await cp(source, target, {
    recursive: true,
    filter: (src) => !skipped.has(path.basename(src)) && !src.endsWith('.tgz'),
  });
}

/** What a lockfile pins for one package: its version and where it comes from. */
export interface Pinned {
  readonly version: string;
  readonly resolved: string;
}

/**
 * Every copy of `name` the app's lockfile records (one entry per copy). npm: the
 * `node_modules/.../<name>` entries of package-lock.json; pnpm: the `packages` keys of
 * pnpm-lock.yaml for `name`.
 */
export async function pinnedInLockfile(
  dir: string,
  manager: PackageManager,
  name: string,
): Promise<Pinned[]> {
  if (manager === 'npm') {
    const lock = JSON.parse(await readFile(path.join(dir, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string; resolved?: string }>;
    };
    return Object.entries(lock.packages)
      .filter(([key]) => key === `node_modules/${name}` || key.endsWith(`/node_modules/${name}`))
      .map(([, entry]) => ({ version: entry.version ?? '', resolved: entry.resolved ?? '' }));
  }
  const lock = parseYaml(await readFile(path.join(dir, 'pnpm-lock.yaml'), 'utf8')) as {
    packages?: Record<string, { version?: string; resolution?: { tarball?: string } }>;
  };
  return Object.entries(lock.packages ?? {})
    .filter(([key]) => key.startsWith(`${name}@`))
    .map(([key, entry]) => ({
      version: entry.version ?? key.slice(name.length + 1),
      resolved: entry.resolution?.tarball ?? key.slice(name.length + 1),
    }));
}

/** Every installed copy of `name` under the app's node_modules (pnpm's .pnpm store included). */
export async function installedCopies(dir: string, name: string): Promise<string[]> {
  const copies: string[] = [];
  const walk = async (modules: string, depth: number): Promise<void> => {
    if (depth > 6 || !existsSync(modules)) return;
    const direct = path.join(modules, name);
    if (existsSync(path.join(direct, 'package.json'))) copies.push(direct);
    for (const entry of await readdir(modules, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const scoped = entry.name.startsWith('@') ? await readdir(path.join(modules, entry.name)) : [''];
      for (const sub of scoped) {
        const nested = path.join(modules, entry.name, sub, 'node_modules');
        if (entry.name !== '.pnpm') await walk(nested, depth + 1);
      }
    }
  };
  await walk(path.join(dir, 'node_modules'), 0);
  const store = path.join(dir, 'node_modules', '.pnpm');
  if (existsSync(store)) {
    const flat = name.replace('/', '+');
    for (const entry of await readdir(store)) {
      if (entry.startsWith(`${flat}@`)) copies.push(path.join(store, entry, 'node_modules', name));
    }
    // pnpm's top-level entries are symlinks into .pnpm; count the real copies only.
    return copies.filter((c) => c.includes(`${path.sep}.pnpm${path.sep}`));
  }
  return copies;
}
