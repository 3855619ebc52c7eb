import { expect } from 'chai';
import { run } from '../../src/program.js';
import { fakeIo } from '../support/io.js';

describe('stratus command line', () => {
  it('prints help with the exit codes and exits 0', async () => {
    const { io, stdout } = fakeIo();
    expect(await run(['--help'], io)).to.equal(0);
    expect(stdout()).to.include('Exit codes:');
    for (const command of [
      'up',
      'serve',
      'volume',
      'server',
      'service',
      'user',
      'plugins',
      'config',
      'db',
      'doctor',
    ]) {
      expect(stdout()).to.match(new RegExp(`\\n  ${command}\\b`));
    }
  });

  it('has --help on nested commands, showing the inherited connection options', async () => {
    const { io, stdout } = fakeIo();
    expect(await run(['volume', 'snapshot', 'create', '--help'], io)).to.equal(0);
    expect(stdout()).to.include('--wait');
    expect(stdout()).to.include('--endpoint');
  });

  it('turns an unknown option into one line, a hint and exit 2', async () => {
    const { io, stderr } = fakeIo();
    expect(await run(['volume', 'list', '--bogus'], io)).to.equal(2);
    expect(stderr()).to.equal(
      `stratus: unknown option '--bogus'\nhint: run "stratus volume list --help" for usage.\n`,
    );
  });

  it('points an unknown subcommand at its parent help', async () => {
    const { io, stderr } = fakeIo();
    expect(await run(['volume', 'lst'], io)).to.equal(2);
    expect(stderr()).to.include("unknown command 'lst'");
    expect(stderr()).to.include('(Did you mean list?)');
    expect(stderr()).to.include('stratus volume --help');
  });

  it('treats a group without its subcommand as a usage error', async () => {
    const { io } = fakeIo();
    expect(await run(['volume'], io)).to.equal(2);
  });

  it('rejects a bad value before contacting anything', async () => {
    const { io, stderr } = fakeIo({ env: { STRATUS_ENDPOINT: 'http://127.0.0.1:9' } });
    expect(await run(['volume', 'create', '--size', 'big'], io)).to.equal(2);
    expect(stderr()).to.equal('stratus: --size must be a whole number of at least 1, got "big"\n');
  });
});
