import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TSchema } from 'typebox';
import { ConfigInvalidError, type InvalidField } from '../errors.js';
import { withDefaults } from '../schema.js';
import { StratusConfig } from './schema.js';

export const CONFIG_FILE_NAMES = [
  'stratus.config.json',
  'stratus.config.yaml',
  'stratus.config.yml',
] as const;
const ENV_PREFIX = 'STRATUS_';

/** Config with every default applied and every path absolute. */
export interface ResolvedConfig extends StratusConfig {
  readonly host: string;
  readonly dataDir: string;
  readonly database: { readonly url: string; readonly sqliteSynchronous?: 'normal' | 'full' };
}

export interface LoadedConfig {
  readonly config: ResolvedConfig;
  /** The application root plugins resolve from: the config file's folder, else cwd. */
  readonly root: string;
  /** The file read, if one was found. */
  readonly file?: string;
}

export interface LoadConfigOptions {
  /** An explicit config file; otherwise stratus.config.{json,yaml,yml} is looked for in `cwd`. */
  readonly file?: string;
  readonly cwd?: string;
  /** `STRATUS_*` variables; `process.env` by default. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Highest precedence (command-line flags), deep-merged over file and env. */
  readonly overrides?: Readonly<Record<string, unknown>>;
}

/**
 * Read the deployment config: file < `STRATUS_*` env < overrides, then defaults, then strict
 * validation listing every problem at once. Nested keys in env use `__`:
 * `STRATUS_DATABASE__URL=postgres://...`, `STRATUS_LOG__LEVEL=debug`, `STRATUS_REPORT_INTERVAL=5`.
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const file = options.file ? path.resolve(cwd, options.file) : findConfigFile(cwd);
  const root = file ? path.dirname(file) : cwd;
  const subject = file ? `stratus config (${file})` : 'stratus config';

  const fromFile = file ? await readConfigFile(file) : {};
  const fromEnv = configFromEnv(options.env ?? process.env);
  const merged = deepMerge(deepMerge(fromFile, fromEnv.values), options.overrides ?? {});

  const { value, issues } = withDefaults(StratusConfig, merged);
  const problems: InvalidField[] = [...fromEnv.issues, ...issues];
  if (problems.length) throw new ConfigInvalidError(subject, problems);

  const dataDir = path.resolve(root, value.dataDir);
  const config: ResolvedConfig = {
    ...value,
    host: value.host ?? os.hostname(),
    dataDir,
    database: {
      url: value.database.url ?? `sqlite:${path.join(dataDir, 'stratus.db')}`,
      sqliteSynchronous: value.database.sqliteSynchronous ?? 'normal',
    },
  };
  return file ? { config, root, file } : { config, root };
}

export function findConfigFile(dir: string): string | undefined {
  for (const name of CONFIG_FILE_NAMES) {
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new ConfigInvalidError(`stratus config (${file})`, [
      { path: '/', message: `cannot be read: ${(cause as Error).message}` },
    ]);
  }
  // yaml is loaded only for a YAML file: its ~90 CommonJS files cost ~50 ms of every start-up.
  const parseYaml = file.endsWith('.json') ? undefined : (await import('yaml')).parse;
  let parsed: unknown;
  try {
    parsed = parseYaml ? parseYaml(text) : JSON.parse(text);
  } catch (cause) {
    throw new ConfigInvalidError(`stratus config (${file})`, [
      {
        path: '/',
        message: `is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(cause as Error).message}`,
      },
    ]);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigInvalidError(`stratus config (${file})`, [{ path: '/', message: 'must be an object' }]);
  }
  return parsed as Record<string, unknown>;
}

/**
 * `STRATUS_A_B__C_D` → `{ aB: { cD } }`. Only variables naming a top-level config key are taken,
 * so unrelated `STRATUS_*` variables are left alone. Values are JSON where the schema wants a
 * number, boolean, array or object, and kept as strings where it wants a string.
 */
export function configFromEnv(env: Readonly<Record<string, string | undefined>>): {
  values: Record<string, unknown>;
  issues: InvalidField[];
} {
  const values: Record<string, unknown> = {};
  const issues: InvalidField[] = [];
  const top = StratusConfig.properties as Record<string, TSchema>;
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined) continue;
    const keys = name.slice(ENV_PREFIX.length).split('__').map(camelCase);
    const first = keys[0];
    if (!first || !(first in top)) continue;
    const schema = schemaAt(StratusConfig, keys);
    let value: unknown = raw;
    if (schema && !wantsString(schema)) {
      try {
        value = JSON.parse(raw);
      } catch {
        issues.push({ path: `/${keys.join('/')}`, message: `${name} is not valid JSON: ${raw}` });
        continue;
      }
    }
    setPath(values, keys, value);
  }
  return { values, issues };
}

function schemaAt(schema: TSchema, keys: readonly string[]): TSchema | undefined {
  let current: TSchema | undefined = schema;
  for (const key of keys) {
    if (!current) return undefined;
    const s = current as {
      properties?: Record<string, TSchema>;
      patternProperties?: Record<string, TSchema>;
    };
    current =
      s.properties?.[key] ?? (s.patternProperties ? Object.values(s.patternProperties)[0] : undefined);
  }
  return current;
}

function wantsString(schema: TSchema): boolean {
  const s = schema as { type?: unknown; anyOf?: TSchema[]; const?: unknown };
  if (s.type === 'string') return true;
  if (typeof s.const === 'string') return true;
  return Array.isArray(s.anyOf) && s.anyOf.every(wantsString);
}

function camelCase(part: string): string {
  return part.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function setPath(target: Record<string, unknown>, keys: readonly string[], value: unknown): void {
  let node = target;
  keys.forEach((key, i) => {
    if (i === keys.length - 1) {
      node[key] = value;
      return;
    }
    const next = node[key];
    if (isObject(next)) {
      node = next;
    } else {
      const created: Record<string, unknown> = {};
      node[key] = created;
      node = created;
    }
  });
}

/** Objects merge key by key; anything else (arrays included) is replaced. */
export function deepMerge(
  base: Readonly<Record<string, unknown>>,
  over: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
    const existing = out[key];
    out[key] = isObject(existing) && isObject(value) ? deepMerge(existing, value) : value;
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
