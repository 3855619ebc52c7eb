import { Readable } from 'node:stream';
import type { Io } from '../../src/io.js';

/** An Io that records what commands write; `tty` makes stderr look like a terminal. */
export function fakeIo(
  options: { cwd?: string; env?: Record<string, string>; tty?: boolean; stdin?: string } = {},
) {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: {
      write: (chunk: string) => {
        stdout += chunk;
        return true;
      },
      isTTY: options.tty ?? false,
    },
    stderr: {
      write: (chunk: string) => {
        stderr += chunk;
        return true;
      },
      isTTY: options.tty ?? false,
    },
    stdin: Readable.from([options.stdin ?? '']) as unknown as Io['stdin'],
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
  };
  return { io, stdout: () => stdout, stderr: () => stderr };
}
