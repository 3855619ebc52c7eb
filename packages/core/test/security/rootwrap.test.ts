import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import fc from 'fast-check';
import { StratusError } from '../../src/errors.js';
import { Executor } from '../../src/exec/executor.js';
import { type CommandFilter, matchFilters } from '../../src/exec/filters.js';
import {
  authorizeRootwrap,
  filterFileOf,
  parseFilterFile,
  ROOTWRAP_EXIT,
  resolveExecutable,
} from '../../src/exec/rootwrap.js';

const CORE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(CORE, 'src/exec/rootwrap-cli.ts');
const TMP = tmpdir().replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Strict filters in the style of a real driver: names never start with `-`, no `..`. */
const DRIVER_FILTERS: CommandFilter[] = [
  {
    command: 'touch',
    asRoot: true,
    args: [/--no-create/, new RegExp(`${TMP}/stratus-rw-[A-Za-z0-9]+/ok-[a-z0-9]{1,16}`)],
  },
  {
    command: 'env',
    asRoot: true,
    args: [/LC_ALL=C/, /lvs/, /--units=b/, /\/dev\/[A-Za-z0-9_+][A-Za-z0-9_+.-]{0,126}/i],
  },
  { command: 'false', asRoot: true },
  { command: 'echo', asRoot: false },
];

/** Values that must never get past a strict filter. */
const HOSTILE = fc.oneof(
  fc.constantFrom(
    '-rf',
    '--force',
    '-',
    '--',
    '../../etc/shadow',
    '/etc/passwd',
    '$(id)',
    '`id`',
    'a;rm -rf /',
    'a|b',
    'a&&b',
    'a\nb',
    '*',
    '~root',
  ),
  fc
    .tuple(
      fc.string({ maxLength: 8 }),
      fc.constantFrom(';', '|', '&', '$(', '`', '>', '<', '\n', ' ', '..', '\\', '"', "'", '*', '?'),
      fc.string({ maxLength: 8 }),
    )
    .map(([a, m, b]) => a + m + b),
  fc.string({ maxLength: 12 }).map((s) => `-${s}`),
);

describe('security: command filters and stratus-rootwrap', function () {
  this.timeout(30_000);
  let dir: string;
  let filterDir: string;
  let config: string;

  function writeConfig(filters: CommandFilter[], extra: Record<string, unknown> = {}): void {
    writeFileSync(path.join(filterDir, 'driver.json'), JSON.stringify(filterFileOf(filters, '@acme/driver')));
    writeFileSync(config, JSON.stringify({ filterDirs: [filterDir], ...extra }));
  }

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'stratus-rw-'));
    chmodSync(dir, 0o755);
    filterDir = path.join(dir, 'rootwrap.d');
    mkdirSync(filterDir, { mode: 0o755 });
    config = path.join(dir, 'rootwrap.json');
    writeConfig(DRIVER_FILTERS);
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('the in-process filters (Executor)', () => {
    it('refuses hostile arguments and undeclared commands before any process starts (property)', async () => {
      const executor = new Executor({ filters: DRIVER_FILTERS });
      const marker = path.join(dir, 'ok-ran');
      await fc.assert(
        fc.asyncProperty(
          HOSTILE,
          fc.constantFrom('touch', 'env', 'rm', 'sh', '/usr/bin/touch', './touch'),
          async (arg, command) => {
            fc.pre(arg !== '--no-create');
            const argv = command === 'env' ? ['env', 'LC_ALL=C', 'lvs', arg] : [command, arg, marker];
            try {
              await executor.run(argv);
              expect.fail(`ran ${JSON.stringify(argv)}`);
            } catch (error) {
              expect(StratusError.is(error, 'COMMAND_NOT_ALLOWED'), String(error)).to.equal(true);
            }
          },
        ),
        { numRuns: 300 },
      );
      expect(existsSync(marker)).to.equal(false);
    });
  });

  describe('filter files', () => {
    it('keep exactly the decisions of the filters they were made from (property)', () => {
      const parsed = parseFilterFile(JSON.parse(JSON.stringify(filterFileOf(DRIVER_FILTERS))), 'driver.json');
      const rootOnly = DRIVER_FILTERS.filter((f) => f.asRoot);
      expect(parsed.map((f) => f.command)).to.deep.equal(rootOnly.map((f) => f.command));
      fc.assert(
        fc.property(
          fc.constantFrom('touch', 'env', 'false', 'echo'),
          fc.array(
            fc.oneof(HOSTILE, fc.constantFrom('--no-create', 'LC_ALL=C', 'lvs', '/dev/VG0', `${dir}/ok-a1`)),
            { maxLength: 4 },
          ),
          (command, args) => {
            const argv = [command, ...args];
            expect(matchFilters(parsed, argv).allowed).to.equal(matchFilters(rootOnly, argv).allowed);
          },
        ),
        { numRuns: 500 },
      );
    });

    it('are refused when malformed, naming the entry', () => {
      const bad = [
        { filters: [{ command: 'touch', args: ['(unclosed'] }] },
        { filters: [{ command: 'bin/touch' }] },
        { filters: [{ command: 'touch', args: [{ source: 'x', flags: 'g' }] }] },
        { filters: 'all' },
      ];
      for (const file of bad) {
        expect(() => parseFilterFile(file, 'x.json'))
          .to.throw()
          .that.satisfies((e: unknown) => StratusError.is(e, 'CONFIG_INVALID'));
      }
    });
  });

  describe('authorizeRootwrap()', () => {
    it('allows a declared command and resolves it only in execDirs', () => {
      const decision = authorizeRootwrap(config, ['touch', '--no-create', `${dir}/ok-a1`]);
      expect(decision).to.deep.include({
        allowed: true,
        executable: resolveExecutable('touch', ['/usr/bin', '/bin']),
      });
    });

    it('refuses undeclared commands, hostile arguments and paths outside the filters with exit 99', () => {
      const refused = [
        ['rm', '-rf', '/'],
        ['touch', `${dir}/../ok-x`],
        ['touch', '--no-create', '-r', '/etc/shadow', `${dir}/ok-a`],
        ['/tmp/evil/touch', `${dir}/ok-a`],
        ['./touch', `${dir}/ok-a`],
        ['echo', 'hi'], // declared, but not as a root command: never in a filter file
        ['env', 'LC_ALL=C', 'sh', '-c', 'id'],
        ['touch', `${dir}/ok-a;id`],
      ];
      for (const argv of refused) {
        const decision = authorizeRootwrap(config, argv);
        expect(decision, JSON.stringify(argv)).to.deep.include({
          allowed: false,
          exitCode: ROOTWRAP_EXIT.UNAUTHORIZED,
        });
      }
    });

    it('refuses everything when the config or a filter file could be changed by someone but root', () => {
      expect(authorizeRootwrap(config, ['false'])).to.include({ allowed: true });
      chmodSync(path.join(filterDir, 'driver.json'), 0o666);
      expect(authorizeRootwrap(config, ['false'])).to.include({
        allowed: false,
        exitCode: ROOTWRAP_EXIT.BAD_CONFIG,
      });
      chmodSync(path.join(filterDir, 'driver.json'), 0o644);
      chmodSync(filterDir, 0o777);
      expect(authorizeRootwrap(config, ['false'])).to.include({
        allowed: false,
        exitCode: ROOTWRAP_EXIT.BAD_CONFIG,
      });
      chmodSync(filterDir, 0o755);
      chmodSync(config, 0o620);
      expect(authorizeRootwrap(config, ['false'])).to.include({
        allowed: false,
        exitCode: ROOTWRAP_EXIT.BAD_CONFIG,
      });
      chmodSync(config, 0o644);
      if (process.geteuid?.() === 0) {
        chownSync(path.join(filterDir, 'driver.json'), 4242, 4242);
        const decision = authorizeRootwrap(config, ['false'], { uid: 0 });
        expect(decision).to.include({ allowed: false, exitCode: ROOTWRAP_EXIT.BAD_CONFIG });
        expect((decision as { reason: string }).reason).to.match(/owned by uid 4242/);
      }
      expect(authorizeRootwrap('relative/rootwrap.json', ['false'])).to.include({
        exitCode: ROOTWRAP_EXIT.BAD_CONFIG,
      });
      writeFileSync(config, '{"filterDirs": "not-a-list"}');
      expect(authorizeRootwrap(config, ['false'])).to.include({ exitCode: ROOTWRAP_EXIT.BAD_CONFIG });
    });

    it('does not look executables up on PATH, only in execDirs', () => {
      const bin = path.join(dir, 'bin');
      mkdirSync(bin, { mode: 0o755 });
      writeFileSync(path.join(bin, 'helper'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
      writeConfig([{ command: 'helper', asRoot: true }], { execDirs: ['/usr/sbin', '/usr/bin'] });
      expect(authorizeRootwrap(config, ['helper'])).to.include({
        allowed: false,
        exitCode: ROOTWRAP_EXIT.NOT_FOUND,
      });
      writeConfig([{ command: 'helper', asRoot: true }], { execDirs: [bin] });
      expect(authorizeRootwrap(config, ['helper'])).to.deep.include({
        allowed: true,
        executable: path.join(bin, 'helper'),
      });
    });
  });

  describe('the stratus-rootwrap program', () => {
    /** The program as sudo would run it. */
    function rootwrap(...argv: string[]) {
      return spawnSync(process.execPath, ['--import', 'tsx', CLI, ...argv], { cwd: CORE, encoding: 'utf8' });
    }

    it('runs an allowed command and passes its exit code through', () => {
      const file = `${dir}/ok-made`;
      writeConfig([
        { command: 'touch', asRoot: true, args: [new RegExp(`${dir}/ok-[a-z]+`)] },
        { command: 'false', asRoot: true },
      ]);
      const ran = rootwrap(config, 'touch', file);
      expect(ran.status, ran.stderr).to.equal(0);
      expect(existsSync(file)).to.equal(true);
      expect(rootwrap(config, 'false').status).to.equal(1);
    });

    it('refuses anything else with exit 99 and a reason on stderr, running nothing', () => {
      const escaped = `${dir}/escaped`;
      const refused = rootwrap(config, 'touch', escaped);
      expect(refused.status).to.equal(ROOTWRAP_EXIT.UNAUTHORIZED);
      expect(refused.stderr).to.match(/stratus-rootwrap: refused .*matches none of the patterns/);
      expect(existsSync(escaped)).to.equal(false);
      expect(rootwrap(config).status).to.equal(ROOTWRAP_EXIT.NO_COMMAND);
    });

    it('as an Executor root helper, enforces its own filters even when the driver declared too much', async () => {
      const file = `${dir}/other-file`;
      // A careless driver allows touch with any argument; rootwrap's filter file is stricter.
      const executor = new Executor({
        filters: [{ command: 'touch', asRoot: true }],
        rootHelper: [process.execPath, '--import', 'tsx', CLI, config],
      });
      try {
        await executor.run(['touch', file], { cwd: CORE });
        expect.fail('ran');
      } catch (error) {
        expect(StratusError.is(error, 'COMMAND_FAILED'), String(error)).to.equal(true);
        expect((error as { exitCode: number }).exitCode).to.equal(ROOTWRAP_EXIT.UNAUTHORIZED);
      }
      expect(existsSync(file)).to.equal(false);
      const ok = await executor.run(['touch', '--no-create', `${dir}/ok-abc`], { cwd: CORE });
      expect(ok.exitCode).to.equal(0);
    });
  });
});
