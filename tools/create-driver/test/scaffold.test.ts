import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { backendOf, CORE_RANGE, classPrefixOf, fill, ScaffoldError, scaffold } from '../src/index.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

describe('create-driver scaffold', () => {
  let cwd: string;

  beforeEach(async () => {
    cwd = await mkdtemp(path.join(tmpdir(), 'create-driver-'));
  });

  afterEach(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  it('derives the backend id and class prefix from the package name', () => {
    expect(backendOf('@acme/stratus-driver-ceph-rbd')).to.equal('ceph-rbd');
    expect(backendOf('stratus-driver-nfs')).to.equal('nfs');
    expect(backendOf('@acme/blockstore')).to.equal('blockstore');
    expect(classPrefixOf('ceph-rbd')).to.equal('CephRbd');
    expect(classPrefixOf('3par')).to.equal('Driver3par');
  });

  it('writes a package with manifest, config schema, driver, conformance test and README', async () => {
    const result = await scaffold({ packageName: '@acme/stratus-driver-ceph-rbd', cwd });
    expect(result.dir).to.equal(path.join(cwd, 'stratus-driver-ceph-rbd'));
    expect(result.files).to.include.members([
      '.gitignore',
      '.mocharc.json',
      'README.md',
      'package.json',
      'src/ceph-rbd-volume-driver.ts',
      'src/config.ts',
      'src/index.ts',
      'test/conformance.test.ts',
      'tsconfig.build.json',
      'tsconfig.json',
    ]);
    const pkg = JSON.parse(await readFile(path.join(result.dir, 'package.json'), 'utf8'));
    expect(pkg.name).to.equal('@acme/stratus-driver-ceph-rbd');
    expect(pkg.peerDependencies).to.deep.equal({ '@stratus/core': CORE_RANGE });
    expect(pkg.dependencies).to.not.have.property('@stratus/core');
    expect(pkg.keywords).to.include.members(['stratus-plugin', 'stratus-driver', 'volume-driver']);
    const index = await readFile(path.join(result.dir, 'src/index.ts'), 'utf8');
    expect(index).to.include("name: '@acme/stratus-driver-ceph-rbd'");
    expect(index).to.include("import { CephRbdVolumeDriver } from './ceph-rbd-volume-driver.js'");
    const test = await readFile(path.join(result.dir, 'test/conformance.test.ts'), 'utf8');
    expect(test.split('\n').filter((l) => l.trim())).to.have.length(3);
  });

  it('honours --dir and --core-range', async () => {
    const result = await scaffold({
      packageName: 'stratus-driver-nfs',
      cwd,
      dir: 'x/nfs',
      coreRange: '^1.0.0',
    });
    expect(result.dir).to.equal(path.join(cwd, 'x/nfs'));
    const pkg = JSON.parse(await readFile(path.join(result.dir, 'package.json'), 'utf8'));
    expect(pkg.peerDependencies['@stratus/core']).to.equal('^1.0.0');
    expect(pkg.devDependencies['@stratus/testkit']).to.equal('^1.0.0');
  });

  it('refuses an invalid package name and a folder that is not empty', async () => {
    for (const bad of ['Acme-Driver', '@acme/', '../escape', 'has space']) {
      await scaffold({ packageName: bad, cwd }).then(
        () => expect.fail(`${bad} was accepted`),
        (error: unknown) => expect(error).to.be.instanceOf(ScaffoldError),
      );
    }
    await writeFile(path.join(cwd, 'keep.txt'), 'x');
    await scaffold({ packageName: 'stratus-driver-x', cwd, dir: '.' }).then(
      () => expect.fail('a non-empty folder was accepted'),
      (error: unknown) => expect((error as Error).message).to.include('is not empty'),
    );
  });

  it('reports a template token without a value instead of writing it', () => {
    expect(() => fill('name: __PACKAGE__ __NOPE__', { __PACKAGE__: 'x' })).to.throw(
      ScaffoldError,
      '__NOPE__',
    );
  });

  it("starts drivers on a @stratus/core range that admits the workspace's core", async () => {
    const core = JSON.parse(await readFile(path.join(REPO, 'packages/core/package.json'), 'utf8'));
    const bounds = /^>=(\d+)\.(\d+)\.(\d+) <(\d+)\.(\d+)\.(\d+)$/.exec(CORE_RANGE);
    expect(bounds, `${CORE_RANGE} is ">=lowest <next-major"`).to.not.equal(null);
    const n = (a: number[]) => a.reduce((acc, x) => acc * 10_000 + x, 0);
    const version = n(String(core.version).split('.').map(Number));
    const nums = (bounds ?? []).slice(1).map(Number);
    expect(version, `core ${core.version} >= lower bound`).to.be.at.least(n(nums.slice(0, 3)));
    expect(version, `core ${core.version} < upper bound`).to.be.below(n(nums.slice(3, 6)));
  });
});
