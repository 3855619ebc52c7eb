import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { BIN, cleanEnv, ensureBuilt, startUp, stratus, tempDir, type UpProcess } from '../support/cli.js';

const run = promisify(execFile);
const TMUX = ['/usr/bin/tmux', '/usr/local/bin/tmux'].find((p) => existsSync(p));
const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] volume slow: creating \(\d+s\)/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the argv given after it, prints `EXIT=<code>`, and keeps the pane open for capture. */
const WRAPPER =
  "const r = require('node:child_process').spawnSync(process.execPath, process.argv.slice(1), { stdio: 'inherit' });" +
  "console.log('EXIT=' + r.status); setTimeout(() => {}, 120000)"; // no trailing ';': tmux reads it as a command separator

describe('--wait progress on a terminal (tmux) and without one (real binary)', function () {
  this.timeout(180_000);
  let dir: string;
  let remove: (() => Promise<void>) | undefined;
  let up: UpProcess | undefined;
  const session = 'stratus-cli-test';
  // A private tmux server: never touch (or depend on) anyone else's sessions.
  const socket = () => `${dir}/tmux.sock`;

  before(async function () {
    if (!TMUX) {
      if (process.env.CI)
        throw new Error('tmux is required for the terminal test under CI: apt-get install -y tmux');
      console.log('      skipped: tmux is not installed (apt-get install -y tmux)');
      this.skip();
    }
    await ensureBuilt();
    ({ dir, remove } = await tempDir());
    // Creating a volume takes 4 s, so there is progress to see.
    up = await startUp(dir, ['--port', '0'], {
      STRATUS_FAKE_FAULTS: JSON.stringify({ volume: { createVolume: { delayMs: 4000 } } }),
    });
  });
  after(async () => {
    if (TMUX && dir) await run(TMUX, ['-S', socket(), 'kill-server']).catch(() => undefined);
    await up?.stop();
    await remove?.();
  });

  it('shows a spinner with the current status in place, then a final line, and exits 0', async () => {
    const tmux = TMUX as string;
    const env = cleanEnv({ LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', TERM: 'xterm-256color' });
    // The words after the session options are the command's argv: tmux runs it without a shell.
    const argv = [BIN, 'volume', 'create', '--size', '1', '--name', 'slow', '--wait'];
    await run(
      tmux,
      [
        '-S',
        socket(),
        '-u',
        'new-session',
        '-d',
        '-s',
        session,
        '-x',
        '160',
        '-y',
        '40',
        '-c',
        dir,
        process.execPath,
        '-e',
        WRAPPER,
        ...argv,
      ],
      { env },
    );
    const screens: string[] = [];
    let final = '';
    for (let i = 0; i < 300 && !/EXIT=\d+/.test(final); i++) {
      final = (await run(tmux, ['-S', socket(), 'capture-pane', '-p', '-t', session], { env })).stdout;
      screens.push(final);
      await sleep(200);
    }
    expect(final, 'the command did not finish').to.match(/EXIT=0/);
    expect(
      screens.some((s) => SPINNER.test(s)),
      screens.join('\n----\n'),
    ).to.equal(true);
    expect(final).to.match(/✓ volume slow: available \(\d+\.\ds\)/);
    expect(final).to.match(/status\s+available/);
    // Redrawn in place: no progress line is left behind.
    expect(final).to.not.include('volume slow: creating');
  });

  it('prints no progress when not on a terminal', async () => {
    const result = await stratus(['volume', 'create', '--size', '1', '--name', 'piped', '--wait', '--json'], {
      cwd: dir,
    });
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stderr).to.equal('');
    expect(result.stdout).to.not.include('\x1b');
    expect(JSON.parse(result.stdout).status).to.equal('available');
  });
});
