import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './run.js';

/** The monorepo root (this file is tools/pack-test/src/workspace.ts). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The parts of a package.json the pack test reads. */
export interface PackageJson {
  readonly name: string;
  readonly version: string;
  readonly private?: boolean;
  readonly exports?: Record<string, unknown>;
  readonly bin?: string | Record<string, string>;
  readonly dependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
  readonly peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  readonly files?: readonly string[];
}

/** A workspace package that is published, and its packed tarball once packed. */
export interface Publishable {
  readonly dir: string;
  readonly manifest: PackageJson;
}

export interface Packed extends Publishable {
  /** Absolute path of the .tgz `pnpm pack` wrote. */
  readonly tarball: string;
}

export async function readPackageJson(dir: string): Promise<PackageJson> {
  return JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/**
 * Every non-private package under packages/ and tools/, sorted by name, so the test covers new
 * packages as they appear. `only` (names) narrows the list, e.g. from STRATUS_PACK_PACKAGES.
 */
export async function publishablePackages(
  root = REPO_ROOT,
  only?: readonly string[],
): Promise<Publishable[]> {
  const found: Publishable[] = [];
  for (const group of ['packages', 'tools']) {
    const base = path.join(root, group);
    if (!existsSync(base)) continue;
    for (const entry of await readdir(base, { withFileTypes: true })) {
      const dir = path.join(base, entry.name);
      if (!entry.isDirectory() || !existsSync(path.join(dir, 'package.json'))) continue;
      const manifest = await readPackageJson(dir);
      if (manifest.private) continue;
      if (only && !only.includes(manifest.name)) continue;
      found.push({ dir, manifest });
    }
  }
  return found.sort((a, b) => a.manifest.name.localeCompare(b.manifest.name));
}

/**
 * `pnpm pack` each package into `destination` (pnpm rewrites `workspace:` and `catalog:` ranges to
 * real versions, as publishing does). A package whose `files` include `dist` must have been built.
 */
export async function packAll(packages: readonly Publishable[], destination: string): Promise<Packed[]> {
  const packed: Packed[] = [];
  for (const pkg of packages) {
    if (pkg.manifest.files?.includes('dist') && !existsSync(path.join(pkg.dir, 'dist'))) {
      throw new Error(
        `${pkg.manifest.name} has no dist/ to pack; build the workspace first (pnpm turbo run build from the repository root).`,
      );
    }
    const { stdout } = await run('pnpm', ['pack', '--pack-destination', destination, '--json'], {
      cwd: pkg.dir,
      timeoutMs: 120_000,
    });
    packed.push({ ...pkg, tarball: tarballFrom(stdout, destination, pkg.manifest) });
  }
  return packed;
}

/** The tarball path from `pnpm pack --json`, else the name pnpm gives it. */
function tarballFrom(stdout: string, destination: string, manifest: PackageJson): string {
  try {
    const parsed = JSON.parse(stdout.slice(stdout.indexOf('{'))) as { filename?: string };
    if (parsed.filename) return path.resolve(destination, parsed.filename);
  } catch {
    // older output: fall through to the conventional name
  }
  const base = manifest.name.replace(/^@/, '').replace('/', '-');
  return path.join(destination, `${base}-${manifest.version}.tgz`);
}

/** Entry points a consumer can import: every `exports` key except JSON files. */
export function importableEntries(manifest: PackageJson): string[] {
  const keys = manifest.exports ? Object.keys(manifest.exports) : ['.'];
  return keys
    .filter((k) => !k.endsWith('.json') && !k.includes('*'))
    .map((k) => (k === '.' ? manifest.name : `${manifest.name}/${k.slice(2)}`));
}
