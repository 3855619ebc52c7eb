/**
 * À la carte: every publishable @stratus package is packed, and the tarballs are installed outside
 * the workspace, the way an operator's project and a vendor's driver repository get them. Needs a
 * built workspace (`pnpm turbo run build`), npm and pnpm on PATH, and the npm registry for
 * third-party dependencies. STRATUS_PACK_MANAGERS=npm|pnpm narrows the installers,
 * STRATUS_PACK_PACKAGES=<name,...> the packages, STRATUS_PACK_KEEP=1 keeps the temp folder.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';
import {
  copyFixture,
  copyProject,
  fileSpecs,
  installApp,
  installEnv,
  installedCopies,
  type PackageManager,
  pinnedInLockfile,
} from '../src/app.js';
import { run } from '../src/run.js';
import { importableEntries, type Packed, packAll, publishablePackages, REPO_ROOT } from '../src/workspace.js';

const managers = (process.env.STRATUS_PACK_MANAGERS ?? 'npm,pnpm').split(',') as PackageManager[];
const only = process.env.STRATUS_PACK_PACKAGES?.split(',').filter(Boolean);
const REQUIRED = ['@stratus/core', '@stratus/testkit', '@stratus/driver-fake', '@stratus/manager-volume'];
const DRIVER = '@acme/stratus-driver-files';
const FUTURE_DRIVER = '@acme/stratus-driver-future';

/** What the packed package.json of every package must not contain: workspace-only ranges. */
const WORKSPACE_RANGE = /"(workspace|catalog):/;

let work: string;
let packed: Packed[];
let tarballs: Record<string, string>;
let driverDir: string;

/** The tarballs of the @stratus packages plus the two third-party drivers. */
const allTarballs = () => ({ ...tarballs });

async function catalogVersion(name: string): Promise<string> {
  const ws = parseYaml(await readFile(path.join(REPO_ROOT, 'pnpm-workspace.yaml'), 'utf8')) as {
    catalog?: Record<string, string>;
  };
  const version = ws.catalog?.[name];
  if (!version) throw new Error(`pnpm-workspace.yaml has no catalog entry for ${name}`);
  return version;
}

/** npm pack a plain folder into the tarballs folder; returns the tarball path. */
async function npmPack(dir: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', path.join(work, 'tarballs')], {
    cwd: dir,
    env: installEnv(),
  });
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string }>;
  if (!info) throw new Error(`npm pack printed no file name in ${dir}`);
  return path.join(work, 'tarballs', info.filename);
}

/** Point a project's @stratus dev dependencies and the whole tree at the tarballs (npm overrides). */
async function useTarballs(dir: string): Promise<void> {
  const file = path.join(dir, 'package.json');
  const pkg = JSON.parse(await readFile(file, 'utf8')) as Record<string, Record<string, string> | undefined>;
  const stratus = fileSpecs(
    Object.fromEntries(Object.entries(tarballs).filter(([name]) => name.startsWith('@stratus/'))),
  );
  for (const field of ['dependencies', 'devDependencies'] as const) {
    const deps = pkg[field];
    if (!deps) continue;
    for (const name of Object.keys(deps)) if (stratus[name]) deps[name] = stratus[name];
  }
  pkg.overrides = stratus;
  await writeFile(file, `${JSON.stringify(pkg, null, 2)}\n`);
}

/** Run a setup step and print how long it took, so the CI log shows where the minutes go. */
async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const result = await fn();
  console.log(`      [${what}: ${((performance.now() - start) / 1000).toFixed(1)} s]`);
  return result;
}

/** Mocha's "N passing" / "N failing" from a run's output. */
function mochaSummary(output: string): { passing: number; failing: number } {
  const passing = Number(/(\d+) passing/.exec(output)?.[1] ?? 0);
  const failing = Number(/(\d+) failing/.exec(output)?.[1] ?? 0);
  return { passing, failing };
}

describe('à la carte: @stratus packages installed from tarballs outside the workspace', () => {
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'stratus-pack-'));
    await mkdir(path.join(work, 'tarballs'));
    const publishable = await publishablePackages(REPO_ROOT, only);
    packed = await timed(`pack ${publishable.length} packages`, () =>
      packAll(publishable, path.join(work, 'tarballs')),
    );
    tarballs = Object.fromEntries(packed.map((p) => [p.manifest.name, p.tarball]));
    for (const name of REQUIRED) {
      if (!tarballs[name]) throw new Error(`${name} was not packed; it is needed by every case here.`);
    }

    // The vendor's driver: its own folder and toolchain, @stratus/* only from the tarballs.
    driverDir = path.join(work, 'driver-files');
    await copyProject(path.join(REPO_ROOT, 'examples', 'driver-files'), driverDir);
    await useTarballs(driverDir);
    await timed(`npm install ${DRIVER}`, () =>
      run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
        cwd: driverDir,
        env: installEnv(),
      }),
    );
    tarballs[DRIVER] = await timed(`build and pack ${DRIVER}`, () => npmPack(driverDir));

    const future = path.join(work, 'future-driver');
    await copyFixture('future-driver', future);
    tarballs[FUTURE_DRIVER] = await npmPack(future);
  });

  after(async () => {
    if (work && !process.env.STRATUS_PACK_KEEP) await rm(work, { recursive: true, force: true });
    else if (work) console.log(`kept ${work}`);
  });

  describe('packed tarballs', () => {
    it('ship only their "files", README, LICENSE, CHANGELOG and a package.json with real version ranges', async () => {
      for (const p of packed) {
        const { stdout } = await run('tar', ['-tzf', p.tarball], { cwd: work });
        const shipped = (p.manifest.files ?? []).map((f) => `package/${f.replace(/\/$/, '')}`);
        const always = /^package\/(README\.md|LICENSE|CHANGELOG\.md|package\.json)$/;
        const stray = stdout
          .split('\n')
          .filter(Boolean)
          .filter((f) => !always.test(f) && !shipped.some((s) => f === s || f.startsWith(`${s}/`)));
        expect(stray, `${p.manifest.name} ships files outside "files"`).to.deep.equal([]);
        const json = await run('tar', ['-xzOf', p.tarball, 'package/package.json'], { cwd: work });
        expect(json.stdout, `${p.manifest.name}'s packed package.json`).to.not.match(WORKSPACE_RANGE);
      }
    });

    it('pass publint and arethetypeswrong (ESM types resolve for consumers)', async () => {
      const bin = (name: string) => path.join(REPO_ROOT, 'tools', 'pack-test', 'node_modules', '.bin', name);
      for (const p of packed) {
        const lint = await run(bin('publint'), ['--strict', p.tarball], { cwd: work, allowFailure: true });
        expect(lint.code, `publint ${p.manifest.name}:\n${lint.stdout}${lint.stderr}`).to.equal(0);
        const types = await run(
          bin('attw'),
          [p.tarball, '--profile', 'esm-only', '--format', 'table-flipped'],
          {
            cwd: work,
            allowFailure: true,
          },
        );
        expect(types.code, `attw ${p.manifest.name}:\n${types.stdout}${types.stderr}`).to.equal(0);
      }
    });

    it('declare @stratus/core as a peer dependency (never a dependency) in every plugin package', async () => {
      for (const p of packed) {
        const json = JSON.parse(
          (await run('tar', ['-xzOf', p.tarball, 'package/package.json'], { cwd: work })).stdout,
        ) as {
          name: string;
          dependencies?: Record<string, string>;
          peerDependencies?: Record<string, string>;
          keywords?: string[];
        };
        // Applications (the CLI) and tools own their core; only plugins must share the app's.
        if (!json.keywords?.includes('stratus-plugin')) continue;
        expect(json.peerDependencies ?? {}, `${json.name} peerDependencies`).to.have.property(
          '@stratus/core',
        );
        expect(json.dependencies ?? {}, `${json.name} dependencies`).to.not.have.property('@stratus/core');
      }
    });
  });

  describe(`a third-party driver (${DRIVER}) in its own folder`, () => {
    it('passes the volume-driver conformance suite against the packed @stratus/core and @stratus/testkit', async () => {
      const result = await run('npm', ['test'], { cwd: driverDir, allowFailure: true });
      const summary = mochaSummary(result.stdout);
      expect(summary.failing, result.stdout.slice(-4000)).to.equal(0);
      expect(result.code, result.stderr.slice(-2000)).to.equal(0);
      expect(summary.passing).to.be.greaterThan(30);
    });

    it("typechecks against the packed packages' type declarations", async () => {
      await run('npx', ['--no-install', 'tsc', '--noEmit'], { cwd: driverDir });
    });
  });

  describe('a driver scaffolded by @stratus/create-driver', () => {
    it('is a package with a manifest, a config schema and the conformance suite, and its tests pass', async () => {
      // The scaffolder is a workspace package: a missing tarball is a failure, never a skip.
      const creator = tarballs['@stratus/create-driver'];
      expect(creator, 'the packed @stratus/create-driver tarball').to.be.a('string');
      const scaffolds = path.join(work, 'scaffolds');
      await mkdir(scaffolds);
      await run(
        'npm',
        ['exec', '--yes', `--package=${creator}`, '--', 'create-driver', '@vendor/stratus-driver-demo'],
        { cwd: scaffolds, env: installEnv() },
      );
      const dir = path.join(scaffolds, 'stratus-driver-demo');
      await useTarballs(dir);
      await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
        cwd: dir,
        env: installEnv(),
      });
      const result = await run('npm', ['test'], { cwd: dir, allowFailure: true });
      expect(mochaSummary(result.stdout).failing, result.stdout.slice(-4000)).to.equal(0);
      expect(result.code, result.stderr.slice(-2000)).to.equal(0);
      await run('npm', ['run', 'build'], { cwd: dir });
      await run('npx', ['--no-install', 'tsc', '--noEmit'], { cwd: dir });
    });
  });

  for (const manager of managers) {
    describe(`an application installed with ${manager}`, () => {
      let app: string;

      before(async () => {
        app = path.join(work, `app-${manager}`);
        const files = fileSpecs(allTarballs());
        const stratus = Object.fromEntries(
          Object.entries(files).filter(([name]) => name.startsWith('@stratus/')),
        );
        const betterSqlite = await catalogVersion('better-sqlite3');
        await timed(`${manager} install of the application`, () =>
          installApp(app, {
            manager,
            dependencies: { ...files, 'better-sqlite3': betterSqlite },
            overrides: stratus,
          }),
        );
        await copyFixture('volume-app.mjs', path.join(app, 'volume-app.mjs'));
        await copyFixture('import-all.mjs', path.join(app, 'import-all.mjs'));
        const service = (driver: unknown) => ({ manager: { plugin: '@stratus/manager-volume' }, driver });
        await writeFile(
          path.join(app, 'stratus.config.json'),
          JSON.stringify({
            host: `pack-${manager}`,
            reportInterval: 1,
            services: {
              volume: service({ plugin: DRIVER, config: { directory: 'images', capacityGiB: 10 } }),
              volume_fake: {
                ...service({ plugin: '@stratus/driver-fake#volume', config: { capacityGiB: 10 } }),
                topic: 'volume_fake',
                enabled: false,
              },
            },
          }),
        );
        await writeFile(
          path.join(app, 'future.config.json'),
          JSON.stringify({ services: { volume: service({ plugin: FUTURE_DRIVER, config: {} }) } }),
        );
      });

      it('pins every installed @stratus package and driver in the lockfile to the packed version', async () => {
        for (const p of [...packed.map((x) => x.manifest), { name: DRIVER, version: '1.0.0' }]) {
          const pins = await pinnedInLockfile(app, manager, p.name);
          expect(pins, `${p.name} in the ${manager} lockfile`).to.have.length(1);
          expect(pins[0]?.version, `${p.name} version`).to.equal(p.version);
          expect(pins[0]?.resolved, `${p.name} source`).to.include(path.basename(tarballs[p.name] ?? ''));
        }
      });

      it('holds exactly one copy of @stratus/core, shared by the manager and every driver', async () => {
        expect(await installedCopies(app, '@stratus/core')).to.have.length(1);
      });

      it('imports every entry point of every package (no undeclared dependency)', async () => {
        const entries = packed.flatMap((p) => importableEntries(p.manifest)).concat(DRIVER);
        const { stdout } = await run('node', ['import-all.mjs', ...entries], { cwd: app, timeoutMs: 60_000 });
        const results = JSON.parse(stdout) as Record<string, string>;
        const broken = Object.entries(results).filter(([, r]) => r !== 'ok');
        expect(Object.fromEntries(broken)).to.deep.equal({});
      });

      it('runs a volume service with drivers named by package name, and creates and deletes a volume', async () => {
        const { stdout } = await run('node', ['volume-app.mjs', 'stratus.config.json'], {
          cwd: app,
          timeoutMs: 60_000,
        });
        const report = JSON.parse(stdout) as {
          plugins: Array<{ at: string; package?: string; version?: string; url?: string }>;
          volume: { status: string; host: string; errorReason: string | null };
          imagesWhileAvailable: string[];
          imagesAfterDelete: string[];
        };
        const at = (p: string) => report.plugins.find((x) => x.at === p);
        expect(at('/services/volume/driver')).to.include({ package: DRIVER, version: '1.0.0' });
        expect(at('/services/volume_fake/driver')?.package).to.equal('@stratus/driver-fake');
        expect(at('/services/volume/manager')?.package).to.equal('@stratus/manager-volume');
        // Core's own memory transport resolves to core itself; everything else to a file in the app.
        for (const p of report.plugins.filter((x) => x.url?.startsWith('file:'))) {
          expect(p.url, `${p.at} resolved inside the app`).to.include(`app-${manager}/node_modules`);
        }
        expect(report.volume, JSON.stringify(report.volume)).to.include({
          status: 'available',
          host: `pack-${manager}`,
        });
        expect(report.imagesWhileAvailable).to.have.length(1);
        expect(report.imagesWhileAvailable[0]).to.match(/\.img$/);
        expect(report.imagesAfterDelete).to.deep.equal([]);
      });

      it('refuses a driver whose contract range excludes the installed core, naming both versions', async () => {
        const result = await run('node', ['volume-app.mjs', 'future.config.json'], {
          cwd: app,
          allowFailure: true,
          timeoutMs: 60_000,
        });
        expect(result.code).to.equal(2);
        expect(result.stderr).to.include('/services/volume/driver: CONTRACT_MISMATCH');
        expect(result.stderr).to.include(`"${FUTURE_DRIVER}" supports the volume-driver contract ^2.0.0`);
        expect(result.stderr).to.match(/this @stratus\/core provides volume-driver 1\.\d+\.\d+/);
      });

      it('reports a driver whose @stratus/core peer range excludes the installed core, naming both versions', async () => {
        const core = packed.find((p) => p.manifest.name === '@stratus/core')?.manifest.version ?? '';
        const dir = path.join(work, `peer-driver-${manager}`);
        await mkdir(dir);
        await writeFile(
          path.join(dir, 'package.json'),
          JSON.stringify({
            name: '@acme/stratus-driver-next',
            version: '1.0.0',
            type: 'module',
            peerDependencies: { '@stratus/core': '^9.0.0' },
          }),
        );
        await writeFile(path.join(dir, 'index.js'), 'export default null;\n');
        const tarball = await npmPack(dir);
        if (manager === 'npm') {
          // A project of its own: npm applies the app's `overrides` to peer ranges too, which would
          // hide the conflict a registry install shows.
          const plain = path.join(work, 'peer-app-npm');
          await mkdir(plain);
          await writeFile(
            path.join(plain, 'package.json'),
            JSON.stringify({
              name: 'peer-app',
              private: true,
              dependencies: {
                '@stratus/core': `file:${tarballs['@stratus/core']}`,
                '@acme/stratus-driver-next': `file:${tarball}`,
              },
            }),
          );
          const result = await run('npm', ['install', '--no-audit', '--no-fund'], {
            cwd: plain,
            env: installEnv(),
            allowFailure: true,
          });
          const output = result.stdout + result.stderr;
          expect(result.code, 'npm refuses the conflicting peer').to.not.equal(0);
          expect(output).to.include('ERESOLVE');
          expect(output).to.include(`Found: @stratus/core@${core}`);
          expect(output).to.include('peer @stratus/core@"^9.0.0" from @acme/stratus-driver-next@1.0.0');
          return;
        }
        // pnpm installs with a warning; `pnpm peers check` names the wanted range and what is installed.
        await run('pnpm', ['add', `file:${tarball}`, '--reporter=append-only'], {
          cwd: app,
          env: installEnv(),
        });
        const check = await run('pnpm', ['peers', 'check'], { cwd: app, allowFailure: true });
        const output = check.stdout + check.stderr;
        expect(output).to.include('unmet peer @stratus/core');
        expect(output).to.match(new RegExp(`Installed: .*stratus-core-${core.replaceAll('.', '\\.')}\\.tgz`));
        expect(output).to.match(/\^9\.0\.0:\s+@acme\/stratus-driver-next@1\.0\.0/);
      });
    });
  }
});
