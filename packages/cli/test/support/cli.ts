import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(PACKAGE_DIR, 'dist', 'bin.js');

async function newestSource(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? await newestSource(full) : statSync(full).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when it is missing or older than src/ (tests spawn the real binary). */
export async function ensureBuilt(): Promise<void> {
  const fresh =
    existsSync(BIN) && statSync(BIN).mtimeMs >= (await newestSource(path.join(PACKAGE_DIR, 'src')));
  if (fresh) return;
  await run(path.join(PACKAGE_DIR, 'node_modules', '.bin', 'tsup'), [], {
    cwd: PACKAGE_DIR,
    timeout: 300_000,
  });
}

/** The environment without the caller's STRATUS_* / OS_* settings, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('STRATUS_') && !key.startsWith('OS_')) env[key] = value;
  }
  return { ...env, ...extra };
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `stratus <args>` to completion in `cwd`. */
export function stratus(
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string>; input?: string },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: cleanEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** A running `stratus up`. */
export interface UpProcess {
  readonly child: ChildProcess;
  readonly endpoint: string;
  /** Everything printed so far. */
  output(): { stdout: string; stderr: string };
  /** Sends SIGINT and resolves with the exit code. */
  stop(): Promise<number>;
}

/** Starts `stratus up` in `cwd` and resolves once it is ready (its banner is printed). */
export function startUp(
  cwd: string,
  args: readonly string[] = ['--port', '0'],
  env: Record<string, string> = {},
  timeoutMs = 90_000,
): Promise<UpProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'up', ...args], { cwd, env: cleanEnv(env), stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    let exited: Promise<number> | undefined;
    const exit = new Promise<number>((r) =>
      child.on('exit', (code, signal) => r(code ?? (signal ? 128 : -1))),
    );
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`stratus up did not become ready within ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const match = /API\s+(http:\/\/\S+)/.exec(stdout);
      if (stdout.includes('Press Ctrl-C') && match?.[1]) {
        clearTimeout(timer);
        resolve({
          child,
          endpoint: match[1],
          output: () => ({ stdout, stderr }),
          stop: () => {
            if (!exited) {
              child.kill('SIGINT');
              exited = exit;
            }
            return exited;
          },
        });
      }
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    void exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`stratus up exited with ${code} before it was ready:\n${stdout}\n${stderr}`));
    });
  });
}

/** A fresh temporary folder, removed by the returned function. */
export async function tempDir(prefix = 'stratus-cli-'): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
