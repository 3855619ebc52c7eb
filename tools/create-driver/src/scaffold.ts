import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CORE_RANGE, TOOL_VERSIONS } from './versions.js';

/** npm's rules for a package name, lower case, optionally scoped. */
const PACKAGE_NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;

/** The contract kinds a template exists for. */
export const KINDS = ['volume-driver'] as const;
export type DriverKind = (typeof KINDS)[number];

export interface ScaffoldOptions {
  /** The npm package name, e.g. `@acme/stratus-driver-ceph` or `stratus-driver-ceph`. */
  readonly packageName: string;
  /** Folder to create; default `./<name without scope>` under `cwd`. */
  readonly dir?: string;
  readonly cwd?: string;
  readonly kind?: DriverKind;
  /** Override the @stratus/core range (peer and dev dependencies). */
  readonly coreRange?: string;
}

export interface ScaffoldResult {
  readonly dir: string;
  /** Written files, relative to `dir`. */
  readonly files: string[];
  /** Backend id derived from the name (`ceph`), and the class prefix (`Ceph`). */
  readonly backend: string;
  readonly className: string;
}

/** A refused scaffold: the message says what to change. */
export class ScaffoldError extends Error {
  override readonly name = 'ScaffoldError';
}

/** `@acme/stratus-driver-ceph-rbd` → `ceph-rbd`; without the prefix, the unscoped name. */
export function backendOf(packageName: string): string {
  const bare = packageName.replace(/^@[^/]+\//, '');
  return bare.replace(/^stratus-driver-/, '') || bare;
}

/** `ceph-rbd` → `CephRbd`. */
export function classPrefixOf(backend: string): string {
  const words = backend.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const joined = words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');
  return /^[A-Za-z]/.test(joined) ? joined : `Driver${joined}`;
}

/**
 * Write a new driver package from the template of `kind`: package.json with @stratus/core as a
 * peer, manifest, config schema, a working skeleton driver, the 3-line conformance test, README.
 * Refuses an invalid package name and a non-empty target folder.
 */
export async function scaffold(options: ScaffoldOptions): Promise<ScaffoldResult> {
  const { packageName } = options;
  if (!PACKAGE_NAME.test(packageName) || packageName.length > 214) {
    throw new ScaffoldError(
      `"${packageName}" is not a valid npm package name; use lower case, e.g. @acme/stratus-driver-ceph or stratus-driver-ceph.`,
    );
  }
  const kind = options.kind ?? 'volume-driver';
  if (!KINDS.includes(kind)) {
    throw new ScaffoldError(`There is no template for kind "${kind}"; available: ${KINDS.join(', ')}.`);
  }
  const backend = backendOf(packageName);
  const className = classPrefixOf(backend);
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const dir = path.resolve(cwd, options.dir ?? packageName.replace(/^@[^/]+\//, ''));
  if (existsSync(dir) && (await readdir(dir)).length > 0) {
    throw new ScaffoldError(`${dir} exists and is not empty; choose another folder with --dir.`);
  }
  const tokens: Record<string, string> = {
    ...TOOL_VERSIONS,
    __PACKAGE__: packageName,
    __CORE_RANGE__: options.coreRange ?? CORE_RANGE,
    __Backend__: className,
    __backend__: backend,
  };
  const template = templateDir(kind);
  const files: string[] = [];
  for (const relative of await listFiles(template)) {
    const target = targetName(relative).replaceAll('__backend__', backend);
    const text = fill(await readFile(path.join(template, relative), 'utf8'), tokens);
    await mkdir(path.dirname(path.join(dir, target)), { recursive: true });
    await writeFile(path.join(dir, target), text);
    files.push(target);
  }
  return { dir, files: files.sort(), backend, className };
}

/** Replace every `__TOKEN__`; a token left over is a template bug, reported rather than shipped. */
export function fill(text: string, tokens: Readonly<Record<string, string>>): string {
  let out = text;
  for (const [token, value] of Object.entries(tokens)) out = out.replaceAll(token, value);
  const left = /__[A-Za-z_]+__/.exec(out);
  if (left)
    throw new ScaffoldError(
      `Template token ${left[0]} has no value; this is a bug in @stratus/create-driver.`,
    );
  return out;
}

/** The template folder shipped next to dist/ (`files: ["dist", "templates"]`). */
export function templateDir(kind: DriverKind): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'templates', kind);
}

/**
 * Template files whose real name cannot ship: npm drops `.gitignore` from tarballs, and a nested
 * `package.json` would be read as a package (publint flags its `exports`).
 */
const RENAMED: Readonly<Record<string, string>> = {
  gitignore: '.gitignore',
  '_package.json': 'package.json',
};

function targetName(relative: string): string {
  return RENAMED[relative] ?? relative;
}

async function listFiles(root: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(root, prefix), { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(root, relative)));
    else out.push(relative);
  }
  return out;
}
