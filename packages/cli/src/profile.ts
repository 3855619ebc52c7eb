import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { findConfigFile, loadConfig } from '@stratus/core';
import { CliError, ExitCode } from './exit.js';
import type { Io } from './io.js';

/** Where client commands find a deployment: written by `stratus up`, or by hand. */
export interface Profile {
  /** Base URL of the API (its Identity v3 lives at `<endpoint>/v3`). */
  readonly endpoint: string;
  readonly username: string;
  readonly password: string;
  readonly project: string;
  readonly userDomain?: string;
  readonly projectDomain?: string;
}

const REQUIRED_FIELDS = ['endpoint', 'username', 'password', 'project'] as const;
const OPTIONAL_FIELDS = ['userDomain', 'projectDomain'] as const;

/** Problems of a parsed profile, as `field message` strings (typebox is not a CLI dependency). */
function profileIssues(value: unknown): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return ['/ must be an object'];
  const record = value as Record<string, unknown>;
  const issues: string[] = [];
  for (const field of REQUIRED_FIELDS) {
    if (typeof record[field] !== 'string' || record[field] === '')
      issues.push(`/${field} must be a non-empty string`);
  }
  for (const field of OPTIONAL_FIELDS) {
    if (record[field] !== undefined && typeof record[field] !== 'string')
      issues.push(`/${field} must be a string`);
  }
  return issues;
}

/** Name of the profile file inside a data directory. */
export const PROFILE_FILE = 'profile.json';
const DEFAULT_DATA_DIR = '.stratus';

/** The profile of a data directory: `<dataDir>/profile.json`. */
export function profilePath(dataDir: string): string {
  return path.join(dataDir, PROFILE_FILE);
}

/** Reads a profile; `undefined` when the file does not exist, a typed error when it is broken. */
export async function readProfile(file: string): Promise<Profile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`Cannot read the profile ${file}: ${(error as Error).message}`, {
      hint: 'Check its permissions (it should belong to you, mode 0600).',
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CliError(`The profile ${file} is not valid JSON (${(error as Error).message})`, {
      hint: 'Delete it and run stratus up again, or fix it by hand.',
    });
  }
  const issues = profileIssues(value);
  if (issues.length) {
    throw new CliError(`The profile ${file} is invalid: ${issues.join('; ')}`, {
      hint: 'It needs endpoint, username, password and project.',
    });
  }
  return value as Profile;
}

/** Writes a profile readable only by its owner (it holds a password), replacing any old one atomically. */
export async function writeProfile(file: string, profile: Profile): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(profile, null, 2)}\n`, { mode: 0o600 });
  await chmod(temp, 0o600);
  await rename(temp, file);
}

/** Connection flags as commander hands them over. */
export interface ConnectionFlags {
  readonly endpoint?: string;
  readonly username?: string;
  readonly password?: string;
  readonly project?: string;
  readonly profile?: string;
  readonly config?: string;
}

/** A resolved connection, and where it came from (for error messages). */
export interface Connection extends Profile {
  readonly source: string;
}

/**
 * Endpoint and credentials, field by field: flags, then `STRATUS_*` (or OpenStack's `OS_*`)
 * environment, then a profile: `--profile`, `STRATUS_PROFILE`, `./.stratus/profile.json`, or
 * `<dataDir>/profile.json` of the folder's config.
 */
export async function resolveConnection(flags: ConnectionFlags, io: Io): Promise<Connection> {
  const env = io.env;
  const profileFile = await findProfile(flags, io);
  const profile = profileFile ? await readProfile(profileFile) : undefined;
  if (flags.profile && !profile) {
    throw new CliError(`The profile ${profileFile} does not exist`, {
      exitCode: ExitCode.USAGE,
      hint: 'Pass the profile.json written by stratus up (in its data directory).',
    });
  }
  const pick = (flag: string | undefined, names: readonly string[], fallback: string | undefined) =>
    flag ?? names.map((n) => env[n]).find((v) => v !== undefined && v !== '') ?? fallback;
  const endpoint = pick(flags.endpoint, ['STRATUS_ENDPOINT', 'OS_AUTH_URL'], profile?.endpoint);
  const username = pick(flags.username, ['STRATUS_USERNAME', 'OS_USERNAME'], profile?.username);
  const password = pick(flags.password, ['STRATUS_PASSWORD', 'OS_PASSWORD'], profile?.password);
  const project = pick(flags.project, ['STRATUS_PROJECT', 'OS_PROJECT_NAME'], profile?.project);
  if (!endpoint) {
    throw new CliError(
      'No Stratus deployment found for this folder (no --endpoint, no STRATUS_ENDPOINT, no .stratus/profile.json)',
      {
        exitCode: ExitCode.UNREACHABLE,
        hint: 'Start one here with "stratus up" (in another terminal), or pass --endpoint URL --username NAME --password PASS --project NAME.',
      },
    );
  }
  const missing = [
    ['username', username],
    ['password', password],
    ['project', project],
  ].filter(([, v]) => !v);
  if (missing.length) {
    throw new CliError(`No ${missing.map(([n]) => n).join(', ')} for ${endpoint}`, {
      exitCode: ExitCode.UNREACHABLE,
      hint: 'Pass --username/--password/--project, set STRATUS_USERNAME/STRATUS_PASSWORD/STRATUS_PROJECT, or use the profile stratus up wrote.',
    });
  }
  const userDomain = env.OS_USER_DOMAIN_NAME ?? profile?.userDomain;
  const projectDomain = env.OS_PROJECT_DOMAIN_NAME ?? profile?.projectDomain;
  return {
    endpoint: endpoint.replace(/\/+$/, '').replace(/\/v3$/, ''),
    username: username as string,
    password: password as string,
    project: project as string,
    ...(userDomain ? { userDomain } : {}),
    ...(projectDomain ? { projectDomain } : {}),
    source: profileFile && profile ? profileFile : 'flags and environment',
  };
}

async function findProfile(flags: ConnectionFlags, io: Io): Promise<string | undefined> {
  if (flags.profile) return path.resolve(io.cwd, flags.profile);
  if (io.env.STRATUS_PROFILE) return path.resolve(io.cwd, io.env.STRATUS_PROFILE);
  const local = profilePath(path.resolve(io.cwd, DEFAULT_DATA_DIR));
  if (await readable(local)) return local;
  const configFile = flags.config ? path.resolve(io.cwd, flags.config) : findConfigFile(io.cwd);
  if (!configFile) return undefined;
  try {
    const { config } = await loadConfig({ file: configFile, cwd: io.cwd, env: io.env });
    const candidate = profilePath(config.dataDir);
    return (await readable(candidate)) ? candidate : undefined;
  } catch {
    return undefined;
  }
}

async function readable(file: string): Promise<boolean> {
  try {
    await readFile(file);
    return true;
  } catch {
    return false;
  }
}
