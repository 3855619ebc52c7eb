import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import sinon from 'sinon';
import {
  CommandFailedError,
  CommandNotAllowedError,
  CommandNotFoundError,
  CommandTimeoutError,
  ConfigInvalidError,
  isCommandTimeout,
  StratusError,
} from '../../src/errors.js';
import { Executor } from '../../src/exec/index.js';
import { createLogger, type Logger } from '../../src/log/logger.js';

const NODE = process.execPath;

/** Node scripts run as real child processes (no shell anywhere). */
const SCRIPTS = {
  // argv: <counterFile> <stdinLog> <failures> <failCode>: exits failCode the first <failures> runs.
  counter: `
    const fs = require('node:fs');
    const [counter, stdinLog, failures, code] = process.argv.slice(2);
    const n = fs.existsSync(counter) ? Number(fs.readFileSync(counter, 'utf8')) : 0;
    fs.writeFileSync(counter, String(n + 1));
    let input = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (c) => { input += c; });
    process.stdin.on('end', () => {
      fs.appendFileSync(stdinLog, input + '\\n');
      if (n < Number(failures)) { process.stderr.write('not yet ' + n + '\\n'); process.exit(Number(code)); }
      process.stdout.write('done after ' + (n + 1));
    });`,
  // argv: <log> <id> <ms>: appends "start id", waits, appends "end id".
  span: `
    const fs = require('node:fs');
    const [log, id, ms] = process.argv.slice(2);
    fs.appendFileSync(log, 'start ' + id + '\\n');
    setTimeout(() => fs.appendFileSync(log, 'end ' + id + '\\n'), Number(ms));`,
  // argv: <dir> <me> <other>: creates <me>, then waits for <other>; exits 1 if it never appears.
  rendezvous: `
    const fs = require('node:fs');
    const path = require('node:path');
    const [dir, me, other] = process.argv.slice(2);
    fs.writeFileSync(path.join(dir, me), '');
    const until = Date.now() + 8000;
    const poll = () => {
      if (fs.existsSync(path.join(dir, other))) process.exit(0);
      if (Date.now() > until) process.exit(1);
      setTimeout(poll, 10);
    };
    poll();`,
  // Writes its arguments to stderr and exits 2.
  complain: `process.stderr.write('bad args: ' + process.argv.slice(2).join(' ') + '\\n'); process.exit(2);`,
  // Ignores SIGTERM and never ends.
  stubborn: `process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);`,
};

async function rejection(promise: Promise<unknown>): Promise<StratusError> {
  try {
    await promise;
  } catch (err) {
    if (StratusError.is(err)) return err;
    throw err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

function memoryLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const raw: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (s: string) => raw.push(s) } });
  return { logger, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('exec/Executor', () => {
  let dir: string;
  const script = (name: keyof typeof SCRIPTS) => path.join(dir, `${name}.cjs`);

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'stratus-exec-'));
    for (const [name, source] of Object.entries(SCRIPTS))
      await writeFile(path.join(dir, `${name}.cjs`), source);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe('allowed commands', () => {
    it('runs an allowed command and returns its output', async () => {
      const ex = new Executor({ filters: [{ command: '/bin/echo' }] });
      const r = await ex.run(['/bin/echo', 'hello', 'world']);
      expect(r).to.include({ exitCode: 0, stdout: 'hello world\n', stderr: '' });
      expect(r.argv).to.deep.equal(['/bin/echo', 'hello', 'world']);
      expect(r.durationMs).to.be.a('number');
    });

    it('passes arguments verbatim, with no shell to interpret them', async () => {
      const ex = new Executor({ filters: [{ command: '/bin/echo' }] });
      const r = await ex.run(['/bin/echo', '$HOME', '`id`', 'a;b', '*']);
      expect(r.stdout).to.equal('$HOME `id` a;b *\n');
    });

    it('finds a bare-name command on the minimal PATH', async () => {
      const file = path.join(dir, 'by-bare-name');
      const ex = new Executor({ filters: [{ command: 'touch' }] });
      await ex.run(['touch', file]);
      expect(existsSync(file)).to.equal(true);
    });
  });

  describe('refusals (nothing is started)', () => {
    it('refuses a command no filter names', async () => {
      const file = path.join(dir, 'never-created-1');
      const ex = new Executor({ filters: [{ command: '/bin/echo' }] });
      const err = await rejection(ex.run(['/usr/bin/touch', file]));
      expect(err).to.be.instanceOf(CommandNotAllowedError);
      expect(err.code).to.equal('COMMAND_NOT_ALLOWED');
      expect(err.message).to.contain('/usr/bin/touch').and.contain('command filters');
      expect(existsSync(file)).to.equal(false);
    });

    it('does not let a bare-name filter allow an absolute path, nor the reverse', async () => {
      const file = path.join(dir, 'never-created-2');
      const bare = new Executor({ filters: [{ command: 'touch' }] });
      expect((await rejection(bare.run(['/usr/bin/touch', file]))).code).to.equal('COMMAND_NOT_ALLOWED');
      expect((await rejection(bare.run(['/tmp/evil/touch', file]))).code).to.equal('COMMAND_NOT_ALLOWED');
      const absolute = new Executor({ filters: [{ command: '/usr/bin/touch' }] });
      expect((await rejection(absolute.run(['touch', file]))).code).to.equal('COMMAND_NOT_ALLOWED');
      expect(existsSync(file)).to.equal(false);
    });

    it('refuses arguments that match no pattern of the filter', async () => {
      const file = path.join(dir, 'never-created-3');
      const inDir = new RegExp(`${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/[a-z0-9-]+`);
      const ex = new Executor({ filters: [{ command: '/usr/bin/touch', args: [/-c/, inDir] }] });
      await ex.run(['/usr/bin/touch', '-c', file]); // allowed; -c creates nothing
      for (const bad of ['--force', ';rm -rf /', '../x', `${file}\nx`]) {
        const err = await rejection(ex.run(['/usr/bin/touch', bad, file]));
        expect(err.code, bad).to.equal('COMMAND_NOT_ALLOWED');
        expect(err.message).to.contain('argument 1');
      }
      expect(existsSync(file)).to.equal(false);
    });

    it('refuses NUL bytes, non-strings and an empty argv', async () => {
      const ex = new Executor({ filters: [{ command: '/bin/echo' }] });
      expect((await rejection(ex.run(['/bin/echo', 'a\0b']))).message).to.contain('NUL');
      expect((await rejection(ex.run(['/bin/echo', 5 as unknown as string]))).message).to.contain(
        'not a string',
      );
      expect((await rejection(ex.run([]))).code).to.equal('COMMAND_NOT_ALLOWED');
    });

    it('refuses bad filters and options when constructed', () => {
      expect(() => new Executor({ filters: [{ command: 'sbin/lvs' }] })).to.throw(
        ConfigInvalidError,
        '/filters/0/command',
      );
      expect(() => new Executor({ filters: [], maxConcurrent: 0 })).to.throw(
        ConfigInvalidError,
        '/maxConcurrent',
      );
      expect(() => new Executor({ filters: [], rootHelper: ['sudo', ''] })).to.throw(
        ConfigInvalidError,
        '/rootHelper/1',
      );
    });
  });

  describe('root helper', () => {
    const rootHelper = ['/usr/bin/env', 'STRATUS_AS_ROOT=yes'];

    it('prefixes the root helper for asRoot filters only', async () => {
      const ex = new Executor({
        rootHelper,
        filters: [
          { command: '/usr/bin/printenv', asRoot: true },
          { command: '/bin/echo', asRoot: false },
        ],
      });
      const r = await ex.run(['/usr/bin/printenv', 'STRATUS_AS_ROOT']);
      expect(r.stdout).to.equal('yes\n');
      expect(r.argv).to.deep.equal([...rootHelper, '/usr/bin/printenv', 'STRATUS_AS_ROOT']);
      expect((await ex.run(['/bin/echo', 'plain'])).argv).to.deep.equal(['/bin/echo', 'plain']);
    });

    it('does not prefix commands whose filter is not asRoot', async () => {
      const ex = new Executor({ rootHelper, filters: [{ command: '/usr/bin/printenv' }] });
      const err = await rejection(ex.run(['/usr/bin/printenv', 'STRATUS_AS_ROOT']));
      expect(err).to.be.instanceOf(CommandFailedError);
      expect((err as CommandFailedError).exitCode).to.equal(1);
    });

    it('runs asRoot commands directly when the root helper is empty (running as root already)', async () => {
      const ex = new Executor({ rootHelper: [], filters: [{ command: '/bin/echo', asRoot: true }] });
      const r = await ex.run(['/bin/echo', 'direct']);
      expect(r.argv).to.deep.equal(['/bin/echo', 'direct']);
      expect(r.stdout).to.equal('direct\n');
    });

    it('names a missing root helper when it cannot start', async () => {
      const ex = new Executor({
        rootHelper: ['/nonexistent/sudo'],
        filters: [{ command: '/bin/echo', asRoot: true }],
      });
      const err = await rejection(ex.run(['/bin/echo', 'x']));
      expect(err).to.be.instanceOf(CommandNotFoundError);
      expect(err.message).to.contain('"/nonexistent/sudo" does not exist');
    });
  });

  describe('environment, stdin and cwd', () => {
    afterEach(() => {
      delete process.env.STRATUS_LEAK;
    });

    it('gives a minimal env with LC_ALL=C, merged with executor and run env, without the parent env', async () => {
      process.env.STRATUS_LEAK = 'leaked';
      const ex = new Executor({
        filters: [{ command: '/usr/bin/env' }],
        env: { A: 'executor', B: 'executor' },
      });
      const r = await ex.run(['/usr/bin/env'], { env: { B: 'run' } });
      const vars = Object.fromEntries(
        r.stdout
          .trim()
          .split('\n')
          .map((l) => l.split(/=(.*)/s).slice(0, 2)),
      );
      expect(vars).to.include({ LC_ALL: 'C', A: 'executor', B: 'run' });
      expect(vars).to.have.property('PATH');
      expect(vars).not.to.have.property('STRATUS_LEAK');
    });

    it('writes input to stdin and closes it', async () => {
      const ex = new Executor({ filters: [{ command: '/bin/cat' }] });
      expect((await ex.run(['/bin/cat'], { input: 'line one\nline two' })).stdout).to.equal(
        'line one\nline two',
      );
      expect((await ex.run(['/bin/cat'], { input: Buffer.from([0x68, 0x69]) })).stdout).to.equal('hi');
    });

    it('gives an empty stdin when there is no input, so a reader does not hang', async () => {
      const ex = new Executor({ filters: [{ command: '/bin/cat' }] });
      expect((await ex.run(['/bin/cat'])).stdout).to.equal('');
    });

    it('runs in cwd, and says so when cwd does not exist', async () => {
      const ex = new Executor({ filters: [{ command: '/bin/pwd' }] });
      expect((await ex.run(['/bin/pwd'], { cwd: dir })).stdout.trim()).to.equal(dir);
      const err = await rejection(ex.run(['/bin/pwd'], { cwd: path.join(dir, 'missing') }));
      expect(err).to.be.instanceOf(CommandFailedError).and.not.instanceOf(CommandNotFoundError);
      expect(err.message).to.contain('working directory');
    });
  });

  describe('exit codes', () => {
    const ex = new Executor({
      filters: [{ command: '/bin/false' }, { command: '/bin/true' }, { command: NODE }],
    });

    it('throws CommandFailedError with argv, exit code and output for a non-zero exit', async () => {
      const err = await rejection(ex.run([NODE, script('complain'), 'x', 'y']));
      expect(err).to.be.instanceOf(CommandFailedError);
      const failed = err as CommandFailedError;
      expect(failed.exitCode).to.equal(2);
      expect(failed.argv).to.deep.equal([NODE, script('complain'), 'x', 'y']);
      expect(failed.stderr).to.equal('bad args: x y\n');
      expect(failed.message).to.contain('exited with 2').and.contain('bad args: x y');
      expect(failed.retryable).to.equal(false);
    });

    it('accepts the listed exit codes only', async () => {
      expect((await ex.run(['/bin/false'], { checkExitCode: [0, 1] })).exitCode).to.equal(1);
      const err = await rejection(ex.run(['/bin/true'], { checkExitCode: [1] }));
      expect((err as CommandFailedError).exitCode).to.equal(0);
    });

    it('never throws for an exit code when checkExitCode is false', async () => {
      expect((await ex.run(['/bin/false'], { checkExitCode: false })).exitCode).to.equal(1);
    });
  });

  describe('retries', () => {
    let n = 0;
    const files = () => {
      n++;
      return { counter: path.join(dir, `count-${n}`), stdinLog: path.join(dir, `stdin-${n}`) };
    };
    const runs = async (file: string) => Number(await readFile(file, 'utf8'));

    it('retries listed exit codes and returns the first success, delivering stdin every time', async () => {
      const { counter, stdinLog } = files();
      const mem = memoryLogger();
      const ex = new Executor({ filters: [{ command: NODE }], logger: mem.logger });
      const r = await ex.run([NODE, script('counter'), counter, stdinLog, '2', '3'], {
        input: 'payload',
        retries: 3,
        retryOnExitCodes: [3],
        retryDelayMs: 0,
      });
      expect(r.stdout).to.equal('done after 3');
      expect(await runs(counter)).to.equal(3);
      expect(await readFile(stdinLog, 'utf8')).to.equal('payload\npayload\npayload\n');
      const warns = mem.lines().filter((l) => l.level === 40);
      expect(warns.map((l) => l.attempt)).to.deep.equal([2, 3]);
      expect(warns[0]?.msg).to.contain('attempt 2 of 4');
    });

    it('gives up after retries extra attempts and throws the last failure', async () => {
      const { counter, stdinLog } = files();
      const ex = new Executor({ filters: [{ command: NODE }] });
      const err = await rejection(
        ex.run([NODE, script('counter'), counter, stdinLog, '99', '1'], {
          input: 'foo',
          retries: 3,
          retryOnExitCodes: [1],
          retryDelayMs: 0,
        }),
      );
      expect((err as CommandFailedError).exitCode).to.equal(1);
      expect((err as CommandFailedError).stderr).to.equal('not yet 3\n');
      expect(await runs(counter)).to.equal(4);
      expect((await readFile(stdinLog, 'utf8')).split('\n').filter((l) => l === 'foo')).to.have.length(4);
    });

    it('does not retry exit codes that are not listed, nor a success', async () => {
      const a = files();
      const ex = new Executor({ filters: [{ command: NODE }] });
      await rejection(
        ex.run([NODE, script('counter'), a.counter, a.stdinLog, '5', '3'], {
          retries: 5,
          retryOnExitCodes: [4],
        }),
      );
      expect(await runs(a.counter)).to.equal(1);
      const b = files();
      await ex.run([NODE, script('counter'), b.counter, b.stdinLog, '0', '3'], {
        retries: 5,
        retryOnExitCodes: [3],
      });
      expect(await runs(b.counter)).to.equal(1);
    });

    it('retries when retryIf says so, passing it the failure', async () => {
      const { counter, stdinLog } = files();
      const ex = new Executor({ filters: [{ command: NODE }] });
      const retryIf = sinon.spy((err: CommandFailedError) => err.stderr.startsWith('not yet'));
      await ex.run([NODE, script('counter'), counter, stdinLog, '1', '7'], {
        retries: 1,
        retryIf,
        retryDelayMs: 0,
      });
      expect(retryIf.calledOnce).to.equal(true);
      expect(retryIf.firstCall.args[0].exitCode).to.equal(7);
      expect(await runs(counter)).to.equal(2);
    });

    it('waits retryDelayMs between attempts through the injected sleep', async () => {
      const { counter, stdinLog } = files();
      const sleep = sinon.stub().resolves();
      const ex = new Executor({ filters: [{ command: NODE }], sleep });
      await ex.run([NODE, script('counter'), counter, stdinLog, '2', '3'], {
        retries: 2,
        retryOnExitCodes: [3],
        retryDelayMs: 250,
      });
      expect(sleep.args).to.deep.equal([[250], [250]]);
    });
  });

  describe('timeouts', () => {
    it('kills a command that runs too long and throws a retryable timeout', async () => {
      const ex = new Executor({ filters: [{ command: '/bin/sleep' }] });
      const err = await rejection(ex.run(['/bin/sleep', '30'], { timeoutMs: 100 }));
      expect(err).to.be.instanceOf(CommandTimeoutError).and.instanceOf(CommandFailedError);
      expect(isCommandTimeout(err)).to.equal(true);
      expect(err.retryable).to.equal(true);
      expect(err.details).to.include({ timedOut: true, timeoutMs: 100, signal: 'SIGTERM' });
      expect(err.message).to.contain('did not finish within 100 ms');
    });

    it('uses defaultTimeoutMs when a run gives none', async () => {
      const ex = new Executor({ filters: [{ command: '/bin/sleep' }], defaultTimeoutMs: 100 });
      expect(isCommandTimeout(await rejection(ex.run(['/bin/sleep', '30'])))).to.equal(true);
    });

    it('sends SIGKILL when SIGTERM is ignored', async () => {
      const ex = new Executor({ filters: [{ command: NODE }], killGraceMs: 100 });
      // Long enough for node to install its SIGTERM handler first.
      const err = await rejection(ex.run([NODE, script('stubborn')], { timeoutMs: 1500 }));
      expect(err.details).to.include({ timedOut: true, signal: 'SIGKILL' });
    });

    it('is told apart from an ordinary failure', async () => {
      const ex = new Executor({ filters: [{ command: '/bin/false' }] });
      expect(isCommandTimeout(await rejection(ex.run(['/bin/false'], { timeoutMs: 5000 })))).to.equal(false);
    });
  });

  describe('missing executables', () => {
    it('reports a bare name missing from PATH as exit code 127 with what to do', async () => {
      const ex = new Executor({ filters: [{ command: 'stratus-no-such-tool' }] });
      const err = await rejection(ex.run(['stratus-no-such-tool', '--version']));
      expect(err).to.be.instanceOf(CommandNotFoundError).and.instanceOf(CommandFailedError);
      expect((err as CommandFailedError).exitCode).to.equal(127);
      expect(err.message).to.contain('"stratus-no-such-tool" was not found on PATH').and.contain('Install');
      expect(err.details).to.include({ notFound: true });
    });

    it('reports a missing absolute path the same way', async () => {
      const ex = new Executor({ filters: [{ command: '/nonexistent/bin/lvs' }] });
      const err = await rejection(ex.run(['/nonexistent/bin/lvs']));
      expect((err as CommandFailedError).exitCode).to.equal(127);
      expect(err.message).to.contain('"/nonexistent/bin/lvs" does not exist');
    });
  });

  describe('concurrency', () => {
    it('runs one command at a time with maxConcurrent 1, in call order', async () => {
      const log = path.join(dir, 'spans-1');
      const ex = new Executor({ filters: [{ command: NODE }], maxConcurrent: 1 });
      await Promise.all(['a', 'b', 'c'].map((id) => ex.run([NODE, script('span'), log, id, '100'])));
      expect((await readFile(log, 'utf8')).trim().split('\n')).to.deep.equal([
        'start a',
        'end a',
        'start b',
        'end b',
        'start c',
        'end c',
      ]);
    });

    it('runs commands side by side when the pool allows', async () => {
      // Each waits for the other to start: this only succeeds when both run at once.
      const ex = new Executor({ filters: [{ command: NODE }], maxConcurrent: 2 });
      const results = await Promise.all([
        ex.run([NODE, script('rendezvous'), dir, 'left', 'right']),
        ex.run([NODE, script('rendezvous'), dir, 'right', 'left']),
      ]);
      expect(results.map((r) => r.exitCode)).to.deep.equal([0, 0]);
    });

    it('shares the pool with executors made by withFilters', async () => {
      const log = path.join(dir, 'spans-2');
      const base = new Executor({ filters: [], maxConcurrent: 1 });
      const one = base.withFilters([{ command: NODE }]);
      const two = base.withFilters([{ command: NODE }]);
      await Promise.all([
        one.run([NODE, script('span'), log, 'a', '100']),
        two.run([NODE, script('span'), log, 'b', '0']),
      ]);
      expect((await readFile(log, 'utf8')).trim().split('\n')).to.deep.equal([
        'start a',
        'end a',
        'start b',
        'end b',
      ]);
      expect((await rejection(base.run([NODE, '-e', '']))).code).to.equal('COMMAND_NOT_ALLOWED');
    });
  });

  describe('logging and redaction', () => {
    it('logs one debug line per command with argv and duration, and never the stdin input', async () => {
      const mem = memoryLogger();
      const ex = new Executor({ filters: [{ command: '/bin/cat' }], logger: mem.logger });
      await ex.run(['/bin/cat'], { input: 'stdin-secret-value' });
      const lines = mem.lines();
      expect(lines).to.have.length(1);
      expect(lines[0]).to.include({ level: 20, exitCode: 0 });
      expect(lines[0]?.argv).to.deep.equal(['/bin/cat']);
      expect(lines[0]?.durationMs).to.be.a('number');
      expect(JSON.stringify(lines)).not.to.contain('stdin-secret-value');
    });

    it('masks redacted positions in errors, their output and logs', async () => {
      const mem = memoryLogger();
      const ex = new Executor({ filters: [{ command: NODE }], logger: mem.logger });
      const err = await rejection(
        ex.run([NODE, script('complain'), '--chap-password', 'Hunter2Secret'], {
          redact: [3],
          retries: 1,
          retryOnExitCodes: [2],
          retryDelayMs: 0,
        }),
      );
      const failed = err as CommandFailedError;
      expect(failed.argv[3]).to.equal('[redacted]');
      expect(failed.stderr).to.equal('bad args: --chap-password [redacted]\n');
      expect(JSON.stringify(err.toJSON())).not.to.contain('Hunter2Secret');
      expect(mem.lines()).to.have.length(3);
      expect(JSON.stringify(mem.lines())).not.to.contain('Hunter2Secret');
    });

    it('masks redacted positions in refusals', async () => {
      const ex = new Executor({ filters: [{ command: '/bin/echo', args: [/--user/, /[a-z]+/] }] });
      const err = await rejection(ex.run(['/bin/echo', '--user', 'Hunter2Secret'], { redact: [2] }));
      expect(err.code).to.equal('COMMAND_NOT_ALLOWED');
      expect(JSON.stringify(err.toJSON())).not.to.contain('Hunter2Secret');
    });

    it('returns the real output on success', async () => {
      const ex = new Executor({ filters: [{ command: '/bin/echo' }] });
      const r = await ex.run(['/bin/echo', 'Hunter2Secret'], { redact: [1] });
      expect(r.argv).to.deep.equal(['/bin/echo', '[redacted]']);
      expect(r.stdout).to.equal('Hunter2Secret\n');
    });
  });
});
