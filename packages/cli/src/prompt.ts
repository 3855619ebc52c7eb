import { CliError, ExitCode, usageError } from './exit.js';
import type { Io } from './io.js';

/** Reads all of stdin (for `--password-stdin`), without the trailing newline. */
export async function readStdin(io: Io): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** Asks for a secret on the terminal without echoing it. Only call when stdin is a TTY. */
export async function promptSecret(io: Io, question: string): Promise<string> {
  const stdin = io.stdin as NodeJS.ReadStream;
  io.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      const onData = (chunk: string) => {
        for (const char of chunk) {
          if (char === '\r' || char === '\n') {
            stdin.off('data', onData);
            io.stderr.write('\n');
            resolve(value);
            return;
          }
          if (char === '\u0003') {
            stdin.off('data', onData);
            io.stderr.write('\n');
            reject(new CliError('Cancelled', { exitCode: ExitCode.FAILED }));
            return;
          }
          if (char === '\u007f' || char === '\b') value = value.slice(0, -1);
          else value += char;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}

/**
 * A new password from `--password`, `--password-stdin`, or typed twice on a terminal.
 * Without any of them (a script), `undefined`: the caller decides (generate one, or fail).
 */
export async function newPassword(
  io: Io,
  flags: { password?: string; passwordStdin?: boolean },
): Promise<string | undefined> {
  if (flags.password !== undefined && flags.passwordStdin) {
    throw usageError('Give either --password or --password-stdin, not both');
  }
  let password: string | undefined;
  if (flags.passwordStdin) password = await readStdin(io);
  else if (flags.password !== undefined) password = flags.password;
  else if (io.stdin.isTTY) {
    password = await promptSecret(io, 'New password: ');
    const again = await promptSecret(io, 'Repeat it: ');
    if (again !== password) throw usageError('The two passwords differ; nothing was changed');
  }
  if (password !== undefined && password.length < 8) {
    throw usageError('The password must have at least 8 characters');
  }
  return password;
}
