import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** A package written into the fixture app's node_modules. */
export interface FixturePackage {
  readonly name: string;
  readonly version?: string;
  /** Source of index.js (ESM). */
  readonly source: string;
}

/**
 * An application folder outside the workspace with its own node_modules in pnpm's strict
 * layout: each package lives under node_modules/.pnpm/<name>@<version>/node_modules/<name>
 * and node_modules/<name> is a symlink to it.
 */
export async function createApp(
  packages: readonly FixturePackage[],
): Promise<{ root: string; dispose(): Promise<void> }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'stratus-app-'));
  await writeFile(
    path.join(root, 'package.json'),
    JSON.stringify({ name: 'fixture-app', private: true, type: 'module' }),
  );
  for (const pkg of packages) {
    const version = pkg.version ?? '1.0.0';
    const storeDir = path.join(
      root,
      'node_modules',
      '.pnpm',
      `${pkg.name.replace('/', '+')}@${version}`,
      'node_modules',
      pkg.name,
    );
    await mkdir(storeDir, { recursive: true });
    await writeFile(
      path.join(storeDir, 'package.json'),
      JSON.stringify({ name: pkg.name, version, type: 'module', exports: { '.': './index.js' } }),
    );
    await writeFile(path.join(storeDir, 'index.js'), pkg.source);
    const link = path.join(root, 'node_modules', pkg.name);
    await mkdir(path.dirname(link), { recursive: true });
    await symlink(storeDir, link, 'dir');
  }
  return { root, dispose: () => rm(root, { recursive: true, force: true }) };
}

/** An ESM module exporting a manifest literal; `create` echoes its config. */
export function manifestSource(fields: Record<string, unknown>, exportAs = 'export default'): string {
  return `${exportAs} ${manifestLiteral(fields)};\n`;
}

export function manifestLiteral(fields: Record<string, unknown>): string {
  return `Object.freeze({ ...${JSON.stringify(fields)}, create: (config, env) => ({ config, host: env.host }) })`;
}
