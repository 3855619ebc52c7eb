import { existsSync } from 'node:fs';
import {
  type ConnectionInfo,
  definePlugin,
  type PluginEnv,
  type SnapshotSpec,
  StratusError,
  type VolumeDriver,
  type VolumeModelUpdate,
  type VolumeSpec,
  type VolumeStats,
} from '@stratus/core';
import { expect } from 'chai';
import sinon from 'sinon';
import { defaultRunner } from '../src/runner.js';
import { describeVolumeDriver } from '../src/volume-driver.js';
import { failures, MiniRunner, outcomesOf, type TestOutcome } from './support/mini-runner.js';
import { computeManifest, ReferenceVolumeDriver, volumeManifest } from './support/reference-drivers.js';

async function runSuite(
  options: Omit<Parameters<typeof describeVolumeDriver>[0], 'runner'>,
): Promise<TestOutcome[]> {
  const runner = new MiniRunner();
  describeVolumeDriver({ ...options, runner });
  return runner.run();
}

/** Each breaks one rule of the contract; the suite must fail the test stating that rule. */
const BROKEN: Array<[string, new (capacityGiB: number) => VolumeDriver, string]> = [
  [
    'deleteVolume of a missing volume throws',
    class extends ReferenceVolumeDriver {
      override async deleteVolume(v: VolumeSpec) {
        this.require(v.name);
        return super.deleteVolume(v);
      }
    },
    'deleteVolume of a volume that is not there succeeds',
  ],
  [
    'deleteVolume ignores snapshots',
    class extends ReferenceVolumeDriver {
      override async deleteVolume(v: VolumeSpec) {
        this.volumes.delete(v.name);
      }
    },
    'deleteVolume of a volume with a snapshot is InvalidState',
  ],
  [
    'createSnapshot of a missing volume succeeds',
    class extends ReferenceVolumeDriver {
      override async createSnapshot(s: SnapshotSpec): Promise<VolumeModelUpdate | undefined> {
        this.snapshots.set(s.name, { volume: s.volumeName, size: 0 });
        return undefined;
      }
    },
    'createSnapshot of a volume that does not exist is NotFound',
  ],
  [
    'extendVolume accepts a smaller size',
    class extends ReferenceVolumeDriver {
      override async extendVolume(v: VolumeSpec, size: number) {
        this.require(v.name).size = size;
      }
    },
    'extendVolume to the same or a smaller size is InvalidInput',
  ],
  [
    'no capacity check',
    class extends ReferenceVolumeDriver {
      protected override need(): void {}
    },
    'a volume larger than the free',
  ],
  [
    'stats that never change',
    class extends ReferenceVolumeDriver {
      override async getVolumeStats(): Promise<VolumeStats> {
        return { ...(await super.getVolumeStats()), freeCapacityGiB: 20, provisionedCapacityGiB: 0 };
      }
    },
    'a create shows in fresh stats',
  ],
  [
    'any name accepted',
    class extends ReferenceVolumeDriver {
      override async createVolume(v: VolumeSpec): Promise<VolumeModelUpdate | undefined> {
        this.volumes.set(v.name, { id: v.id, size: v.sizeGiB, exported: false });
        return undefined;
      }
    },
    'createVolume named "has space" is InvalidInput',
  ],
  [
    'connection info without a volume type',
    class extends ReferenceVolumeDriver {
      override async initializeConnection(v: VolumeSpec): Promise<ConnectionInfo> {
        return { data: { volumeId: v.id } } as unknown as ConnectionInfo;
      }
    },
    'initializeConnection of an exported volume returns ConnectionInfo',
  ],
  [
    'a second createVolume of the same volume fails',
    class extends ReferenceVolumeDriver {
      override async createVolume(v: VolumeSpec): Promise<VolumeModelUpdate | undefined> {
        if (this.volumes.has(v.name)) throw new Error('exists');
        return super.createVolume(v);
      }
    },
    'createVolume of a volume that already exists with the same size succeeds',
  ],
];

describe('describeVolumeDriver', () => {
  afterEach(() => sinon.restore());

  it('passes every test against a driver that keeps the contract, and runs more than 30 of them', async () => {
    const outcomes = await runSuite({ manifest: volumeManifest() });
    expect(failures(outcomes)).to.deep.equal([]);
    expect(outcomes.filter((o) => o.state === 'passed').length).to.be.greaterThan(30);
    expect(
      outcomes.every((o) => o.title.startsWith('volume-driver conformance: reference-volume > ')),
    ).to.equal(true);
  });

  for (const [broken, Driver, rule] of BROKEN) {
    it(`fails "${rule}" for a driver where ${broken}`, async () => {
      const outcomes = outcomesOf(await runSuite({ manifest: volumeManifest(Driver) }), rule);
      expect(outcomes.map((o) => o.state)).to.include('failed');
    });
  }

  it('shows skipped tests as pending, with the reason in the title', async () => {
    const outcomes = await runSuite({
      manifest: volumeManifest(),
      skip: { createPastCapacity: 'the pool grows on demand', extend: 'no online resize' },
    });
    const pending = outcomes.filter((o) => o.state === 'pending');
    expect(pending.map((o) => o.title)).to.have.length(4);
    expect(outcomesOf(outcomes, 'a volume larger than the free')[0]?.title).to.match(
      /\[skipped: the pool grows on demand \(createPastCapacity\)\]$/,
    );
    expect(outcomesOf(outcomes, 'extendVolume to a larger size')[0]?.state).to.equal('pending');
    expect(failures(outcomes)).to.deep.equal([]);
  });

  it('skips with a generic reason when skip is an array', async () => {
    const outcomes = await runSuite({ manifest: volumeManifest(), skip: ['exports'] });
    const exports = outcomesOf(outcomes, 'initializeConnection of an exported volume');
    expect(exports[0]?.state).to.equal('pending');
    expect(exports[0]?.title).to.include('[skipped:');
  });

  it('fails every test with PLUGIN_KIND_MISMATCH when given a manifest of another kind', async () => {
    const outcomes = await runSuite({ manifest: computeManifest() });
    expect(outcomes.length).to.be.greaterThan(0);
    for (const o of outcomes) {
      expect(o.state, o.title).to.equal('failed');
      expect(StratusError.is(o.error, 'PLUGIN_KIND_MISMATCH'), o.title).to.equal(true);
    }
  });

  it('fails with CONTRACT_MISMATCH when the manifest wants a contract this core does not provide', async () => {
    const manifest = definePlugin({ ...volumeManifest(), contract: '^2.0.0' });
    const [outcome] = outcomesOf(await runSuite({ manifest }), 'the manifest is a volume-driver');
    expect(StratusError.is(outcome?.error, 'CONTRACT_MISMATCH')).to.equal(true);
  });

  it('validates the config like core does: a wrong type fails with CONFIG_INVALID', async () => {
    const [outcome] = outcomesOf(
      await runSuite({ manifest: volumeManifest(), config: { capacityGiB: 'lots' } }),
      'createVolume makes a volume',
    );
    expect(StratusError.is(outcome?.error, 'CONFIG_INVALID')).to.equal(true);
  });

  it('creates each driver with defaults applied, a silent env and a temporary dataDir it removes afterwards', async () => {
    const seen: Array<{ config: unknown; env: PluginEnv; dataDirExisted: boolean }> = [];
    const base = volumeManifest();
    const manifest = definePlugin({
      ...base,
      create: (config, env) => {
        seen.push({ config, env, dataDirExisted: existsSync(env.dataDir) });
        return base.create(config, env);
      },
    });
    const outcomes = await runSuite({ manifest });
    expect(failures(outcomes)).to.deep.equal([]);
    expect(seen.length).to.be.greaterThan(outcomes.length - 1);
    const first = seen[0];
    expect(first?.config).to.deep.equal({ capacityGiB: 20 });
    expect(first?.env.host).to.equal('conformance-host');
    expect(first?.dataDirExisted).to.equal(true);
    expect(first?.env.logger.level).to.equal('silent');
    expect(existsSync(first?.env.dataDir ?? '')).to.equal(false);
    const refused = await first?.env.executor.run(['lvcreate', '--help']).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(StratusError.is(refused, 'COMMAND_NOT_ALLOWED')).to.equal(true);
  });

  it('passes env overrides through to create()', async () => {
    let host: string | undefined;
    const base = volumeManifest();
    const manifest = definePlugin({
      ...base,
      create: (config, env) => {
        host = env.host;
        return base.create(config, env);
      },
    });
    await runSuite({ manifest, env: { host: 'st-3' } });
    expect(host).to.equal('st-3');
  });

  it('deletes what each test created and closes its driver', async () => {
    const drivers: ReferenceVolumeDriver[] = [];
    const closed = sinon.spy(ReferenceVolumeDriver.prototype, 'close');
    const manifest = volumeManifest(
      class extends ReferenceVolumeDriver {
        constructor(capacityGiB: number) {
          super(capacityGiB);
          drivers.push(this);
        }
      },
    );
    await runSuite({ manifest });
    expect(closed.callCount).to.equal(drivers.length);
    for (const d of drivers) {
      expect([...d.volumes.keys()]).to.deep.equal([]);
      expect([...d.snapshots.keys()]).to.deep.equal([]);
    }
  });
});

describe('defaultRunner', () => {
  const globals = globalThis as Record<string, unknown>;
  let saved: unknown;
  beforeEach(() => {
    saved = globals.it;
  });
  afterEach(() => {
    globals.it = saved;
  });

  it('calls the mocha global of the same name when used, not when created', () => {
    const runner = defaultRunner();
    const stub = sinon.stub();
    globals.it = stub;
    const body = () => {};
    runner.it('a title', body);
    expect(stub.calledOnceWithExactly('a title', body)).to.equal(true);
  });

  it('says to run under mocha or pass a runner when the global is missing', () => {
    const runner = defaultRunner();
    globals.it = undefined;
    expect(() => runner.it('x', () => {})).to.throw(
      /run this conformance suite under mocha, or pass a 'runner'/,
    );
  });
});
