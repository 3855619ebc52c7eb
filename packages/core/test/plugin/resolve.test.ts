import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import Type from 'typebox';
import {
  CONTRACTS,
  createPlugin,
  definePlugin,
  type PluginEnv,
  parsePluginConfig,
  resolvePlugin,
  StratusError,
  silentLogger,
  splitSpec,
} from '../../src/index.js';
import { createApp, manifestLiteral, manifestSource } from './app-fixture.js';

const driverConfig = {
  type: 'object',
  properties: {
    volumeGroup: { type: 'string', minLength: 1 },
    thin: { type: 'boolean', default: false },
  },
  required: ['volumeGroup'],
  additionalProperties: false,
};

async function rejection(promise: Promise<unknown>): Promise<StratusError> {
  try {
    await promise;
  } catch (error) {
    if (StratusError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('resolvePlugin', () => {
  let app: Awaited<ReturnType<typeof createApp>>;

  before(async () => {
    app = await createApp([
      {
        name: '@acme/stratus-driver-x',
        version: '2.3.4',
        source: manifestSource({
          name: '@acme/stratus-driver-x',
          kind: 'volume-driver',
          contract: '^1.0.0',
          config: driverConfig,
        }),
      },
      {
        name: 'stratus-multi',
        source: [
          `export const vol = ${manifestLiteral({ name: 'stratus-multi', kind: 'volume-driver', contract: '^1.0.0' })};`,
          `export const comp = ${manifestLiteral({ name: 'stratus-multi', kind: 'compute-driver', contract: '^1.0.0' })};`,
          'export default [vol, comp];',
        ].join('\n'),
      },
      { name: 'not-a-plugin', source: 'export default function hello() { return 42; }\n' },
      { name: 'no-default', source: 'export const x = 1;\n' },
      {
        name: 'future-driver',
        source: manifestSource({ name: 'future-driver', kind: 'volume-driver', contract: '^2.0.0' }),
      },
      {
        name: 'bad-contract',
        source: manifestSource({ name: 'bad-contract', kind: 'volume-driver', contract: 'banana' }),
      },
      { name: 'broken-import', source: 'import "does-not-exist-anywhere";\nexport default {};\n' },
    ]);
    await writeFile(
      path.join(app.root, 'local-driver.js'),
      manifestSource({ name: 'local-driver', kind: 'volume-driver', contract: '^1.0.0' }),
    );
  });
  after(() => app.dispose());

  it('imports a package by name from the application root, not from core', async () => {
    const resolved = await resolvePlugin('@acme/stratus-driver-x', 'volume-driver', { root: app.root });
    expect(resolved.manifest.name).to.equal('@acme/stratus-driver-x');
    expect(resolved.packageName).to.equal('@acme/stratus-driver-x');
    expect(resolved.packageVersion).to.equal('2.3.4');
    expect(resolved.url).to.match(/node_modules\/\.pnpm\//);
  });

  it('picks the manifest of the requested kind from an exported array', async () => {
    const vol = await resolvePlugin('stratus-multi', 'volume-driver', { root: app.root });
    const comp = await resolvePlugin('stratus-multi', 'compute-driver', { root: app.root });
    expect(vol.manifest.kind).to.equal('volume-driver');
    expect(comp.manifest.kind).to.equal('compute-driver');
  });

  it('resolves pkg#export to a named export', async () => {
    const resolved = await resolvePlugin('stratus-multi#comp', 'compute-driver', { root: app.root });
    expect(resolved.manifest.kind).to.equal('compute-driver');
  });

  it('resolves a relative path from the application root', async () => {
    const resolved = await resolvePlugin('./local-driver.js', 'volume-driver', { root: app.root });
    expect(resolved.manifest.name).to.equal('local-driver');
  });

  it('accepts a manifest object without any lookup', async () => {
    const manifest = definePlugin({
      name: 'inline',
      kind: 'transport',
      contract: '^1.0.0',
      create: () => ({}),
    });
    const resolved = await resolvePlugin(manifest, 'transport', { root: '/nonexistent' });
    expect(resolved.manifest).to.equal(manifest);
    expect(resolved.spec).to.equal('<manifest>');
  });

  it('fails with PLUGIN_NOT_FOUND and the pnpm add line when the package is not installed', async () => {
    const error = await rejection(
      resolvePlugin('@acme/stratus-driver-missing', 'volume-driver', { root: app.root }),
    );
    expect(error.code).to.equal('PLUGIN_NOT_FOUND');
    expect(error.message).to.contain('pnpm add @acme/stratus-driver-missing');
    expect(error.message).to.contain(app.root);
  });

  it('names the package, not the export, in the pnpm add line', async () => {
    const error = await rejection(resolvePlugin('@acme/gone#volume', 'volume-driver', { root: app.root }));
    expect(error.message).to.contain('pnpm add @acme/gone');
    expect(error.message).not.to.contain('pnpm add @acme/gone#');
  });

  it('fails with PLUGIN_NOT_FOUND for a missing relative path', async () => {
    const error = await rejection(resolvePlugin('./nope.js', 'volume-driver', { root: app.root }));
    expect(error.code).to.equal('PLUGIN_NOT_FOUND');
    expect(error.message).to.contain(`${path.join(app.root, 'nope.js')} does not exist`);
  });

  it("cannot see the application's packages from another folder (strict layout)", async () => {
    const error = await rejection(
      resolvePlugin('@acme/stratus-driver-x', 'volume-driver', { root: path.dirname(app.root) }),
    );
    expect(error.code).to.equal('PLUGIN_NOT_FOUND');
  });

  it('fails with PLUGIN_INVALID when the export is not a manifest', async () => {
    const error = await rejection(resolvePlugin('not-a-plugin', 'volume-driver', { root: app.root }));
    expect(error.code).to.equal('PLUGIN_INVALID');
    expect(error.message).to.contain('"not-a-plugin" is not a Stratus plugin');
    expect(error.message).to.contain('definePlugin');
  });

  it('fails with PLUGIN_INVALID when there is no default export', async () => {
    const error = await rejection(resolvePlugin('no-default', 'volume-driver', { root: app.root }));
    expect(error.code).to.equal('PLUGIN_INVALID');
    expect(error.message).to.contain('no default export');
  });

  it('fails with PLUGIN_INVALID naming the exports when #export does not exist', async () => {
    const error = await rejection(resolvePlugin('stratus-multi#nope', 'volume-driver', { root: app.root }));
    expect(error.code).to.equal('PLUGIN_INVALID');
    expect(error.message).to.contain('vol').and.to.contain('comp');
  });

  it('fails with PLUGIN_INVALID when the module itself cannot load', async () => {
    const error = await rejection(resolvePlugin('broken-import', 'volume-driver', { root: app.root }));
    expect(error.code).to.equal('PLUGIN_INVALID');
    expect(error.message).to.contain('does-not-exist-anywhere');
  });

  it('fails with PLUGIN_KIND_MISMATCH naming both kinds', async () => {
    const error = await rejection(
      resolvePlugin('@acme/stratus-driver-x', 'compute-driver', { root: app.root }),
    );
    expect(error.code).to.equal('PLUGIN_KIND_MISMATCH');
    expect(error.message).to.contain('is a volume-driver');
    expect(error.message).to.contain('a compute-driver was expected');
  });

  it("fails with CONTRACT_MISMATCH naming the range and core's version", async () => {
    const error = await rejection(resolvePlugin('future-driver', 'volume-driver', { root: app.root }));
    expect(error.code).to.equal('CONTRACT_MISMATCH');
    expect(error.message).to.contain('^2.0.0');
    expect(error.message).to.contain(CONTRACTS['volume-driver']);
  });

  it('fails with PLUGIN_INVALID when the contract is not a semver range', async () => {
    const error = await rejection(resolvePlugin('bad-contract', 'volume-driver', { root: app.root }));
    expect(error.code).to.equal('PLUGIN_INVALID');
    expect(error.message).to.contain('"banana"');
  });
});

describe('plugin config', () => {
  const manifest = definePlugin({
    name: '@acme/stratus-driver-x',
    kind: 'volume-driver',
    contract: '^1.0.0',
    config: Type.Object(
      {
        volumeGroup: Type.String({ minLength: 1 }),
        thin: Type.Boolean({ default: false }),
        clearSizeMiB: Type.Integer({ minimum: 0, default: 0 }),
      },
      { additionalProperties: false },
    ),
    create: (config, env) => ({ config, host: env.host }),
  });
  const env: PluginEnv = {
    host: 'st-3',
    logger: silentLogger(),
    dataDir: '/tmp',
    executor: undefined as never,
  };

  it('applies defaults and passes validated config to create()', async () => {
    const instance = await createPlugin<'volume-driver', { config: unknown; host: string }>(
      manifest,
      { volumeGroup: 'vg0' },
      env,
    );
    expect(instance).to.deep.equal({
      config: { volumeGroup: 'vg0', thin: false, clearSizeMiB: 0 },
      host: 'st-3',
    });
  });

  it('lists every problem with its JSON path under the given prefix, and never coerces', () => {
    let error: unknown;
    try {
      parsePluginConfig(
        manifest,
        { thin: 'yes', clearSizeMiB: -1, extra: 1 },
        '/services/volume/driver/config',
      );
    } catch (e) {
      error = e;
    }
    expect(StratusError.is(error, 'CONFIG_INVALID')).to.equal(true);
    const paths = (error as { issues: { path: string }[] }).issues.map((i) => i.path).sort();
    expect(paths).to.deep.equal([
      '/services/volume/driver/config/clearSizeMiB',
      '/services/volume/driver/config/extra',
      '/services/volume/driver/config/thin',
      '/services/volume/driver/config/volumeGroup',
    ]);
    expect((error as Error).message).to.contain('@acme/stratus-driver-x');
  });

  it('refuses config for a plugin that takes none', () => {
    const bare = definePlugin({ name: 'bare', kind: 'transport', contract: '^1.0.0', create: () => ({}) });
    expect(() => parsePluginConfig(bare, { x: 1 })).to.throw(/takes no config/);
    expect(parsePluginConfig(bare, {})).to.deep.equal({});
  });

  it("does not change the caller's raw config object", () => {
    const raw = { volumeGroup: 'vg0' };
    parsePluginConfig(manifest, raw);
    expect(raw).to.deep.equal({ volumeGroup: 'vg0' });
  });
});

describe('splitSpec', () => {
  it('splits pkg#export and leaves the rest alone', () => {
    expect(splitSpec('@a/b#vol')).to.deep.equal({ specifier: '@a/b', exportName: 'vol' });
    expect(splitSpec('@a/b')).to.deep.equal({ specifier: '@a/b' });
    expect(splitSpec('#internal')).to.deep.equal({ specifier: '#internal' });
  });
});
