/**
 * The lvm-vm harness (../shared/tools/lvm-vm): a QEMU guest with real lvm2 and tgt, reached through
 * a root helper. One VM instance of its own (a 12 GiB sparse disk), booted fresh once per run.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Executor } from '@stratus/core';
import { LVM_COMMANDS } from '../../src/index.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root: packages/driver-lvm/test/vm → four levels up. */
export const REPO_ROOT = path.resolve(here, '../../../..');
export const LVM_VM = path.resolve(REPO_ROOT, '../shared/tools/lvm-vm/lvm-vm');
export const VG = 'volumes';

/** The VM's own instance and disk, so a developer's default VM is left alone. */
export const VM_ENV: Readonly<Record<string, string>> = Object.freeze({
  LVM_VM_INSTANCE: 'stratus-driver-lvm',
  LVM_VM_DISK_SIZE: '12G',
  LVM_VM_VG: VG,
});

let booting: Promise<string | undefined> | undefined;

/**
 * Boot the VM once (fresh disk). Resolves undefined when ready, or the reason it cannot run.
 * Under CI (unless STRATUS_LVM_VM=skip) a missing or broken harness is a failure, not a skip.
 */
export function bootVm(): Promise<string | undefined> {
  booting ??= (async () => {
    if (process.env.STRATUS_LVM_VM === 'skip') return 'STRATUS_LVM_VM=skip';
    if (!existsSync(LVM_VM)) return `the lvm-vm harness is not at ${LVM_VM}`;
    try {
      await run(LVM_VM, ['start', '--fresh'], {
        env: { ...process.env, ...VM_ENV },
        timeout: 900_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      return undefined;
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      return `lvm-vm start failed: ${(err.stderr ?? err.message).trim().split('\n').slice(-3).join(' | ')}`;
    }
  })();
  return booting;
}

/** In a mocha `before`: skip the suite (or fail under CI) when the VM cannot run. */
export async function requireVm(ctx: Mocha.Context): Promise<void> {
  ctx.timeout(900_000);
  const reason = await bootVm();
  if (reason === undefined) return;
  if (process.env.CI && process.env.STRATUS_LVM_VM !== 'skip') {
    throw new Error(`The real-LVM suite cannot run under CI: ${reason}. Set STRATUS_LVM_VM=skip to skip it.`);
  }
  console.log(`    skipped: ${reason}`);
  ctx.skip();
}

/** An Executor with the driver's filters whose root helper runs commands inside the VM. */
export function vmExecutor(): Executor {
  return new Executor({
    filters: LVM_COMMANDS,
    rootHelper: [LVM_VM, 'exec', '--'],
    env: VM_ENV,
    defaultTimeoutMs: 300_000,
  });
}

/** Run a command in the guest directly (test setup and checks only; not through the filters). */
export async function guest(
  argv: readonly string[],
  input?: string,
): Promise<{ stdout: string; stderr: string }> {
  const args = [input === undefined ? '--no-stdin' : '', '--', ...argv].filter((a) => a !== '');
  return new Promise((resolve, reject) => {
    const child = execFile(
      LVM_VM,
      ['exec', ...args],
      { env: { ...process.env, ...VM_ENV }, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(Object.assign(error, { stdout, stderr }));
        else resolve({ stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

// A root-level hook (this module is loaded once per mocha run): stop the VM this run booted, so
// no qemu outlives the tests. Its disk holds nothing of value; the next run boots fresh.
after(async function () {
  this.timeout(180_000);
  if (booting && (await booting) === undefined) await stopVm();
});

/** Stop the VM and delete its disk. */
export async function stopVm(): Promise<void> {
  await run(LVM_VM, ['stop', '--purge'], { env: { ...process.env, ...VM_ENV }, timeout: 120_000 }).catch(
    () => undefined,
  );
}
