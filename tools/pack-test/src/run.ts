import { spawn } from 'node:child_process';

/** The outcome of a finished command. */
export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly cwd: string;
  /** Merged over process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Kill the command after this long; default 10 minutes. */
  readonly timeoutMs?: number;
  /** Resolve with a failing exit code instead of throwing (for tests of error output). */
  readonly allowFailure?: boolean;
}

/**
 * Run `command args...` (an argument array, never a shell) and collect its output. A non-zero exit
 * throws an error carrying the tail of both streams, unless `allowFailure`.
 */
export function run(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timeoutMs = options.timeoutMs ?? 10 * 60 * 1000;
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`Cannot start ${command}: ${error.message}. Is it installed and on PATH?`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, stdout, stderr };
      if (code === 0 || options.allowFailure) {
        resolve(result);
        return;
      }
      const why = signal ? `was killed by ${signal} (time limit ${timeoutMs} ms)` : `exited with ${code}`;
      reject(
        new Error(
          `${[command, ...args].join(' ')} in ${options.cwd} ${why}\n--- stdout (tail)\n${tail(stdout)}\n--- stderr (tail)\n${tail(stderr)}`,
        ),
      );
    });
  });
}

function tail(text: string, lines = 40): string {
  return text.split('\n').slice(-lines).join('\n');
}
