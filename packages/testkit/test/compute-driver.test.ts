import { type AvailableResources, type ComputeDriver, type InstanceSpec, StratusError } from '@stratus/core';
import { expect } from 'chai';
import { describeComputeDriver } from '../src/compute-driver.js';
import { failures, MiniRunner, outcomesOf, type TestOutcome } from './support/mini-runner.js';
import { computeManifest, ReferenceComputeDriver, volumeManifest } from './support/reference-drivers.js';

async function runSuite(
  options: Omit<Parameters<typeof describeComputeDriver>[0], 'runner'>,
): Promise<TestOutcome[]> {
  const runner = new MiniRunner();
  describeComputeDriver({ ...options, runner });
  return runner.run();
}

/** Each breaks one rule of the contract; the suite must fail the test stating that rule. */
const BROKEN: Array<[string, new (memoryMiB: number) => ComputeDriver, string]> = [
  [
    'destroy of an unknown instance throws',
    class extends ReferenceComputeDriver {
      override async destroy(i: InstanceSpec) {
        this.vm(i);
        return super.destroy(i);
      }
    },
    'destroy of an unknown instance succeeds',
  ],
  [
    'pause works from any state',
    class extends ReferenceComputeDriver {
      override async pause(i: InstanceSpec) {
        this.vm(i).state = 'paused';
      }
    },
    'pause of a shutdown instance is InvalidState',
  ],
  [
    'powerOff does not change the state',
    class extends ReferenceComputeDriver {
      override async powerOff(i: InstanceSpec) {
        this.vm(i);
      }
    },
    'powerOff moves a running instance to shutdown',
  ],
  [
    'getConsoleOutput of an unknown instance returns text',
    class extends ReferenceComputeDriver {
      override async getConsoleOutput() {
        return 'nothing';
      }
    },
    'getConsoleOutput of an instance the hypervisor does not know is NotFound',
  ],
  [
    'attachVolume overwrites a busy mountpoint',
    class extends ReferenceComputeDriver {
      override async attachVolume(i: InstanceSpec) {
        this.vm(i);
      }
    },
    'attachVolume at an occupied mountpoint is InvalidState',
  ],
  [
    'resources never count instances',
    class extends ReferenceComputeDriver {
      override async getAvailableResources(): Promise<AvailableResources> {
        return {
          ...(await super.getAvailableResources()),
          vcpusUsed: 0,
          memoryMiBUsed: 0,
          localDiskGiBUsed: 0,
        };
      }
    },
    'spawn adds at least the flavor to the used resources',
  ],
  [
    'spawn ignores memory',
    class extends ReferenceComputeDriver {
      override async spawn(i: InstanceSpec) {
        this.vms.set(i.name, { spec: i, state: 'running', rescued: false, mounts: new Set() });
      }
    },
    'spawn of a flavor needing more memory than is free',
  ],
  [
    'spawn leaves the instance in nostate',
    class extends ReferenceComputeDriver {
      override async spawn(i: InstanceSpec) {
        await super.spawn(i);
        this.vm(i).state = 'nostate';
      }
    },
    'spawn starts the instance',
  ],
  [
    'unrescue works without rescue',
    class extends ReferenceComputeDriver {
      override async unrescue(i: InstanceSpec) {
        this.vm(i).rescued = false;
      }
    },
    'unrescue of an instance that is not rescued is InvalidState',
  ],
];

describe('describeComputeDriver', () => {
  it('passes every test against a driver that keeps the contract, and runs more than 30 of them', async () => {
    const outcomes = await runSuite({ manifest: computeManifest() });
    expect(failures(outcomes)).to.deep.equal([]);
    expect(outcomes.filter((o) => o.state === 'passed').length).to.be.greaterThan(30);
  });

  for (const [broken, Driver, rule] of BROKEN) {
    it(`fails "${rule}" for a driver where ${broken}`, async () => {
      const outcomes = outcomesOf(await runSuite({ manifest: computeManifest(Driver) }), rule);
      expect(outcomes.map((o) => o.state)).to.include('failed');
    });
  }

  it('shows skipped groups as pending, with the reason in the title', async () => {
    const outcomes = await runSuite({
      manifest: computeManifest(),
      skip: { volumes: 'no iSCSI initiator in CI' },
    });
    const attach = outcomesOf(outcomes, 'attachVolume at a free mountpoint');
    expect(attach[0]?.state).to.equal('pending');
    expect(attach[0]?.title).to.match(/\[skipped: no iSCSI initiator in CI \(volumes\)\]$/);
    expect(outcomes.filter((o) => o.state === 'pending')).to.have.length(4);
    expect(failures(outcomes)).to.deep.equal([]);
  });

  it('uses the flavor, image and mountpoints it is given', async () => {
    const spawned: InstanceSpec[] = [];
    const mounts: string[] = [];
    const manifest = computeManifest(
      class extends ReferenceComputeDriver {
        override async spawn(i: InstanceSpec) {
          spawned.push(i);
          return super.spawn(i);
        }
        override async attachVolume(...args: Parameters<ReferenceComputeDriver['attachVolume']>) {
          mounts.push(args[2]);
          return super.attachVolume(...args);
        }
      },
    );
    const flavor = { name: 'm1.small', vcpus: 2, memoryMiB: 256, rootGiB: 3 };
    const outcomes = await runSuite({
      manifest,
      flavor,
      imageRef: 'cirros',
      mountpoints: ['/dev/sdb', '/dev/sdc'],
    });
    expect(failures(outcomes)).to.deep.equal([]);
    expect(spawned.filter((i) => i.flavor.name === 'm1.small').length).to.be.greaterThan(10);
    expect(spawned.every((i) => i.imageRef === 'cirros')).to.equal(true);
    expect(new Set(mounts)).to.deep.equal(new Set(['/dev/sdb', '/dev/sdc']));
  });

  it('fails every test with PLUGIN_KIND_MISMATCH when given a volume-driver manifest', async () => {
    const outcomes = await runSuite({ manifest: volumeManifest() });
    for (const o of outcomes) {
      expect(StratusError.is(o.error, 'PLUGIN_KIND_MISMATCH'), o.title).to.equal(true);
    }
  });

  it('destroys what each test spawned', async () => {
    const drivers: ReferenceComputeDriver[] = [];
    const manifest = computeManifest(
      class extends ReferenceComputeDriver {
        constructor(memoryMiB: number) {
          super(memoryMiB);
          drivers.push(this);
        }
      },
    );
    await runSuite({ manifest });
    expect(drivers.length).to.be.greaterThan(30);
    for (const d of drivers) expect([...d.vms.keys()]).to.deep.equal([]);
  });
});
