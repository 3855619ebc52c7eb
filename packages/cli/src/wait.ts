import { CliError, ExitCode } from './exit.js';
import type { OutStream } from './io.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** Where a polled resource is: still changing, settled, settled in error, or gone. */
export type Phase = 'pending' | 'done' | 'error';

export interface WaitOptions<T> {
  /** Progress goes here, only when it is a terminal. */
  readonly stream: OutStream;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** E.g. `volume 3f2a…`. */
  readonly label: string;
  /** Current state; `undefined` when the resource is gone (a delete finished). */
  readonly poll: () => Promise<T | undefined>;
  readonly phase: (resource: T | undefined) => Phase;
  /** Shown next to the spinner, e.g. `creating`. */
  readonly describe: (resource: T | undefined) => string;
  readonly intervalMs?: number;
  readonly timeoutSec?: number;
  /** Injected by tests; real timers otherwise. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

export interface WaitResult<T> {
  readonly phase: 'done' | 'error';
  readonly resource: T | undefined;
}

/** Whether progress may be drawn on `stream`: a terminal that is not `TERM=dumb`. */
export function canAnimate(
  stream: OutStream,
  env: Readonly<Record<string, string | undefined>> = {},
): boolean {
  return stream.isTTY === true && env.TERM !== 'dumb';
}

/**
 * Poll until the resource leaves its transitional state. On a terminal a spinner shows the
 * current status and elapsed time (redrawn in place); otherwise nothing is printed. Resolves with
 * the final state (`error` included: the caller decides the exit code); throws when it times out.
 */
export async function waitFor<T>(options: WaitOptions<T>): Promise<WaitResult<T>> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const intervalMs = options.intervalMs ?? 500;
  const timeoutMs = (options.timeoutSec ?? 600) * 1000;
  const animate = canAnimate(options.stream, options.env);
  const started = now();
  let status = 'waiting';
  let frame = 0;
  const draw = () => {
    const elapsed = Math.floor((now() - started) / 1000);
    options.stream.write(
      `\r\x1b[2K${FRAMES[frame++ % FRAMES.length]} ${options.label}: ${status} (${elapsed}s)`,
    );
  };
  const ticker = animate ? setInterval(draw, 120) : undefined;
  try {
    for (;;) {
      const resource = await options.poll();
      const phase = options.phase(resource);
      status = options.describe(resource);
      if (phase !== 'pending') {
        if (animate) {
          const seconds = ((now() - started) / 1000).toFixed(1);
          options.stream.write(
            `\r\x1b[2K${phase === 'done' ? '✓' : '✗'} ${options.label}: ${status} (${seconds}s)\n`,
          );
        }
        return { phase, resource };
      }
      if (animate) draw();
      if (now() - started >= timeoutMs) {
        if (animate) options.stream.write('\r\x1b[2K');
        throw new CliError(`${options.label} is still ${status} after ${options.timeoutSec ?? 600} s`, {
          exitCode: ExitCode.FAILED,
          hint: 'It may still finish: check with the show command, or wait longer with --wait-timeout SECONDS.',
        });
      }
      await sleep(intervalMs);
    }
  } finally {
    if (ticker) clearInterval(ticker);
  }
}
