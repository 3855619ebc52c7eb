/**
 * The compute-driver conformance suite: the executable form of core's `ComputeDriver` contract.
 * Every hypervisor driver runs it:
 *
 * ```ts
 * import { describeComputeDriver } from '@stratus/testkit/compute-driver';
 * import { compute } from '@acme/stratus-driver-x';
 * describeComputeDriver({ manifest: compute, config: {} });
 * ```
 */
import { randomUUID } from 'node:crypto';
import {
  AvailableResources,
  type ComputeDriver,
  type ConnectionInfo,
  type Flavor,
  InstanceInfo,
  type InstanceSpec,
  type PowerState,
} from '@stratus/core';
import { expect } from 'chai';
import {
  type DriverSuiteOptions,
  describeDriverSuite,
  expectRejection,
  expectSchema,
  quietly,
} from './driver-harness.js';

export type { DriverSuiteOptions, ManifestLike } from './driver-harness.js';
export { defaultRunner, type SuiteFn, type SuiteRunner } from './runner.js';

/** Keys for `skip`: a group, or a single capability-gated test. */
export type ComputeSuiteKey =
  | 'manifest'
  | 'lifecycle'
  | 'unknownInstance'
  | 'power'
  | 'pause'
  | 'suspend'
  | 'rescue'
  | 'console'
  | 'volumes'
  | 'resources'
  | 'spawnPastResources';

export interface ComputeDriverSuiteOptions extends DriverSuiteOptions<ComputeSuiteKey> {
  /** Flavor of the instances the suite spawns. Default: 1 vCPU, 64 MiB, 1 GiB root. */
  readonly flavor?: Flavor;
  /** Image the suite boots. Default `conformance-image`. */
  readonly imageRef?: string;
  /**
   * Connection info of the n-th (0-based) volume the suite attaches. Default: made-up iSCSI data;
   * a real hypervisor needs a real target (or skip `volumes`).
   */
  readonly connectionInfo?: (n: number) => ConnectionInfo;
  /** Two free guest device names for attach tests. Default `/dev/vdb`, `/dev/vdc`. */
  readonly mountpoints?: readonly [string, string];
}

const CONTRACT_METHODS = [
  'setup',
  'checkForSetupError',
  'close',
  'spawn',
  'destroy',
  'reboot',
  'powerOff',
  'powerOn',
  'pause',
  'unpause',
  'suspend',
  'resume',
  'rescue',
  'unrescue',
  'getInfo',
  'listInstances',
  'getConsoleOutput',
  'attachVolume',
  'detachVolume',
  'getAvailableResources',
] as const;

/** One test's driver and the instances it spawned, so a real hypervisor is left clean. */
class ComputeHarness {
  readonly #instances = new Map<string, InstanceSpec>();
  #counter = 0;

  constructor(
    readonly driver: ComputeDriver,
    readonly flavor: Flavor,
    readonly imageRef: string,
    readonly runId: string,
  ) {}

  /** A spec for a new instance (tracked for cleanup); not spawned. */
  instanceSpec(flavor: Flavor = this.flavor): InstanceSpec {
    const spec: InstanceSpec = {
      id: randomUUID(),
      name: `instance-${this.runId}-${++this.#counter}`,
      projectId: 'conformance',
      imageRef: this.imageRef,
      flavor,
    };
    this.#instances.set(spec.name, spec);
    return spec;
  }

  async spawn(): Promise<InstanceSpec> {
    const spec = this.instanceSpec();
    await this.driver.spawn(spec);
    return spec;
  }

  async state(instance: InstanceSpec): Promise<PowerState> {
    return (await this.driver.getInfo(instance)).state;
  }

  async cleanup(): Promise<void> {
    for (const i of [...this.#instances.values()].reverse()) await quietly(() => this.driver.destroy(i));
  }
}

/**
 * Register the compute-driver conformance suite for `options.manifest`. Each test gets a fresh
 * driver from `manifest.create(config with defaults, env)`, after `setup()` and
 * `checkForSetupError()`, and closes it afterwards, destroying what it spawned first.
 */
export function describeComputeDriver(options: ComputeDriverSuiteOptions): void {
  const flavor: Flavor = options.flavor ?? { name: 'conformance.tiny', vcpus: 1, memoryMiB: 64, rootGiB: 1 };
  const imageRef = options.imageRef ?? 'conformance-image';
  const [mountA, mountB] = options.mountpoints ?? ['/dev/vdb', '/dev/vdc'];
  const connectionInfo =
    options.connectionInfo ??
    ((n: number): ConnectionInfo => ({
      driverVolumeType: 'iscsi',
      data: {
        targetPortal: '127.0.0.1:3260',
        targetIqn: `iqn.2010-10.org.openstack:volume-conformance-${n}`,
        targetLun: 1,
        volumeId: `conformance-volume-${n}`,
      },
    }));

  describeDriverSuite<ComputeSuiteKey, ComputeDriver, ComputeHarness>(
    {
      kind: 'compute-driver',
      contract: 'ComputeDriver',
      contractMethods: CONTRACT_METHODS,
      options,
      manifestKey: 'manifest',
      harness: (driver, runId) => new ComputeHarness(driver, flavor, imageRef, runId),
    },
    (test, runner) => {
      runner.describe('spawn and destroy', () => {
        test(
          ['lifecycle'],
          'spawn starts the instance: getInfo says running and matches InstanceInfo',
          async (h) => {
            const i = await h.spawn();
            const info = await h.driver.getInfo(i);
            expectSchema(InstanceInfo, info, 'getInfo result');
            expect(info.state).to.equal('running');
          },
        );

        test(
          ['lifecycle'],
          'listInstances reports spawned instances by backend name, and not destroyed ones',
          async (h) => {
            const a = await h.spawn();
            const b = await h.spawn();
            expect(await h.driver.listInstances()).to.include.members([a.name, b.name]);
            await h.driver.destroy(a);
            const names = await h.driver.listInstances();
            expect(names).to.include(b.name);
            expect(names).to.not.include(a.name);
          },
        );

        test(['lifecycle'], 'after destroy, getInfo of the instance is NotFound', async (h) => {
          const i = await h.spawn();
          await h.driver.destroy(i);
          await expectRejection(h.driver.getInfo(i), 'NOT_FOUND', 'getInfo after destroy');
        });

        test(
          ['lifecycle'],
          'destroy of an unknown instance succeeds, and destroying twice succeeds',
          async (h) => {
            await h.driver.destroy(h.instanceSpec());
            const i = await h.spawn();
            await h.driver.destroy(i);
            await h.driver.destroy(i);
          },
        );
      });

      runner.describe('unknown instances', () => {
        const calls: Array<[string, (d: ComputeDriver, i: InstanceSpec) => Promise<unknown>]> = [
          ['getInfo', (d, i) => d.getInfo(i)],
          ['reboot', (d, i) => d.reboot(i, 'SOFT')],
          ['powerOff', (d, i) => d.powerOff(i)],
          ['powerOn', (d, i) => d.powerOn(i)],
          ['pause', (d, i) => d.pause(i)],
          ['unpause', (d, i) => d.unpause(i)],
          ['suspend', (d, i) => d.suspend(i)],
          ['resume', (d, i) => d.resume(i)],
          ['rescue', (d, i) => d.rescue(i, 'conformance-rescue')],
          ['unrescue', (d, i) => d.unrescue(i)],
          ['getConsoleOutput', (d, i) => d.getConsoleOutput(i)],
          ['attachVolume', (d, i) => d.attachVolume(i, connectionInfo(0), mountA)],
          ['detachVolume', (d, i) => d.detachVolume(i, connectionInfo(0), mountA)],
        ];
        for (const [method, call] of calls) {
          test(
            ['unknownInstance'],
            `${method} of an instance the hypervisor does not know is NotFound`,
            async (h) => {
              await expectRejection(
                call(h.driver, h.instanceSpec()),
                'NOT_FOUND',
                `${method} of an unknown instance`,
              );
            },
          );
        }
      });

      runner.describe('power states', () => {
        test(['power'], 'reboot SOFT and HARD leave a running instance running', async (h) => {
          const i = await h.spawn();
          await h.driver.reboot(i, 'SOFT');
          expect(await h.state(i)).to.equal('running');
          await h.driver.reboot(i, 'HARD');
          expect(await h.state(i)).to.equal('running');
        });

        test(
          ['power'],
          'powerOff moves a running instance to shutdown, powerOn back to running',
          async (h) => {
            const i = await h.spawn();
            await h.driver.powerOff(i);
            expect(await h.state(i)).to.equal('shutdown');
            await h.driver.powerOn(i);
            expect(await h.state(i)).to.equal('running');
          },
        );

        test(['pause'], 'pause moves a running instance to paused, unpause back to running', async (h) => {
          const i = await h.spawn();
          await h.driver.pause(i);
          expect(await h.state(i)).to.equal('paused');
          await h.driver.unpause(i);
          expect(await h.state(i)).to.equal('running');
        });

        test(['pause'], 'pause of a shutdown instance is InvalidState and leaves it shutdown', async (h) => {
          const i = await h.spawn();
          await h.driver.powerOff(i);
          await expectRejection(h.driver.pause(i), 'INVALID_STATE', 'pause of a shutdown instance');
          expect(await h.state(i)).to.equal('shutdown');
        });

        test(
          ['suspend'],
          'suspend moves a running instance to suspended, resume back to running',
          async (h) => {
            const i = await h.spawn();
            await h.driver.suspend(i);
            expect(await h.state(i)).to.equal('suspended');
            await h.driver.resume(i);
            expect(await h.state(i)).to.equal('running');
          },
        );

        test(
          ['rescue'],
          'rescue leaves the instance running (from the rescue image), unrescue too',
          async (h) => {
            const i = await h.spawn();
            await h.driver.rescue(i, 'conformance-rescue');
            expect(await h.state(i)).to.equal('running');
            await h.driver.unrescue(i);
            expect(await h.state(i)).to.equal('running');
          },
        );

        test(['rescue'], 'unrescue of an instance that is not rescued is InvalidState', async (h) => {
          const i = await h.spawn();
          await expectRejection(h.driver.unrescue(i), 'INVALID_STATE', 'unrescue without rescue');
          expect(await h.state(i)).to.equal('running');
        });
      });

      runner.describe('console', () => {
        test(['console'], 'getConsoleOutput of a running instance is a non-empty string', async (h) => {
          const i = await h.spawn();
          const output = await h.driver.getConsoleOutput(i);
          expect(output).to.be.a('string').and.not.equal('');
        });
      });

      runner.describe('volumes', () => {
        test(['volumes'], 'attachVolume at a free mountpoint then detachVolume succeed', async (h) => {
          const i = await h.spawn();
          await h.driver.attachVolume(i, connectionInfo(0), mountA);
          await h.driver.detachVolume(i, connectionInfo(0), mountA);
        });

        test(['volumes'], 'attachVolume at an occupied mountpoint is InvalidState', async (h) => {
          const i = await h.spawn();
          await h.driver.attachVolume(i, connectionInfo(0), mountA);
          await expectRejection(
            h.driver.attachVolume(i, connectionInfo(1), mountA),
            'INVALID_STATE',
            'attach at a busy mountpoint',
          );
          await h.driver.attachVolume(i, connectionInfo(1), mountB);
        });

        test(['volumes'], 'detachVolume of a mountpoint with nothing attached succeeds', async (h) => {
          const i = await h.spawn();
          await h.driver.detachVolume(i, connectionInfo(0), mountB);
        });

        test(['volumes'], 'a mountpoint can be reused once its volume is detached', async (h) => {
          const i = await h.spawn();
          await h.driver.attachVolume(i, connectionInfo(0), mountA);
          await h.driver.detachVolume(i, connectionInfo(0), mountA);
          await h.driver.attachVolume(i, connectionInfo(1), mountA);
          await h.driver.detachVolume(i, connectionInfo(1), mountA);
        });
      });

      runner.describe('resources', () => {
        test(
          ['resources'],
          'getAvailableResources matches AvailableResources with used ≤ total',
          async ({ driver }) => {
            const r = await driver.getAvailableResources();
            expectSchema(AvailableResources, r, 'getAvailableResources result');
            expect(r.memoryMiBUsed).to.be.at.most(r.memoryMiB);
            expect(r.localDiskGiBUsed).to.be.at.most(r.localDiskGiB);
            expect(r.hypervisorHostname).to.not.equal('');
          },
        );

        test(
          ['resources'],
          'spawn adds at least the flavor to the used resources and destroy gives it back',
          async (h) => {
            const before = await h.driver.getAvailableResources();
            const i = await h.spawn();
            const during = await h.driver.getAvailableResources();
            expect(during.vcpusUsed, 'vcpusUsed after spawn').to.be.at.least(before.vcpusUsed + flavor.vcpus);
            expect(during.memoryMiBUsed, 'memoryMiBUsed after spawn').to.be.at.least(
              before.memoryMiBUsed + flavor.memoryMiB,
            );
            expect(during.localDiskGiBUsed, 'localDiskGiBUsed after spawn').to.be.at.least(
              before.localDiskGiBUsed + flavor.rootGiB,
            );
            await h.driver.destroy(i);
            const afterwards = await h.driver.getAvailableResources();
            expect(afterwards.vcpusUsed, 'vcpusUsed after destroy').to.equal(before.vcpusUsed);
            expect(afterwards.memoryMiBUsed, 'memoryMiBUsed after destroy').to.be.at.most(
              during.memoryMiBUsed - flavor.memoryMiB,
            );
            expect(afterwards.localDiskGiBUsed, 'localDiskGiBUsed after destroy').to.be.at.most(
              during.localDiskGiBUsed - flavor.rootGiB,
            );
          },
        );

        test(
          ['resources', 'spawnPastResources'],
          'spawn of a flavor needing more memory than is free is DriverFailure with reason insufficient_resources and leaves nothing',
          async (h) => {
            const r = await h.driver.getAvailableResources();
            const big: Flavor = {
              ...flavor,
              name: 'conformance.huge',
              memoryMiB: r.memoryMiB - r.memoryMiBUsed + 1,
            };
            const spec = h.instanceSpec(big);
            const error = await expectRejection(
              h.driver.spawn(spec),
              'DRIVER_FAILURE',
              `spawn with ${big.memoryMiB} MiB`,
            );
            expect(error.details.reason).to.equal('insufficient_resources');
            expect(await h.driver.listInstances()).to.not.include(spec.name);
            const afterwards = await h.driver.getAvailableResources();
            expect(afterwards.memoryMiBUsed).to.equal(r.memoryMiBUsed);
          },
        );
      });
    },
  );
}
