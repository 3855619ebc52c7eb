/**
 * The volume-driver conformance suite: the executable form of core's `VolumeDriver` contract.
 * Every volume driver runs it (the fake, LVM, third-party backends):
 *
 * ```ts
 * import { describeVolumeDriver } from '@stratus/testkit/volume-driver';
 * import { volume } from '@acme/stratus-driver-x';
 * describeVolumeDriver({ manifest: volume, config: { pool: 'test' } });
 * ```
 */
import { randomUUID } from 'node:crypto';
import {
  ConnectionInfo,
  type Connector,
  IscsiConnectionData,
  type SnapshotSpec,
  type VolumeDriver,
  VolumeModelUpdate,
  type VolumeSpec,
  VolumeStats,
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
export type VolumeSuiteKey =
  | 'manifest'
  | 'volumes'
  | 'badInput'
  | 'capacity'
  | 'createPastCapacity'
  | 'snapshots'
  | 'fromSnapshot'
  | 'extend'
  | 'exports';

export interface VolumeDriverSuiteOptions extends DriverSuiteOptions<VolumeSuiteKey> {
  /** Size of the volumes the suite creates, in GiB (default 1); keep it small for real backends. */
  readonly sizeGiB?: number;
  /** The initiator the suite connects as. Default: host `conformance-initiator`, a made-up IQN. */
  readonly connector?: Connector;
  /** Stats may differ from exact arithmetic by this much, in GiB (default 0.05: rounding by real backends). */
  readonly capacityToleranceGiB?: number;
}

const CONTRACT_METHODS = [
  'setup',
  'checkForSetupError',
  'close',
  'createVolume',
  'createVolumeFromSnapshot',
  'deleteVolume',
  'createSnapshot',
  'deleteSnapshot',
  'extendVolume',
  'createExport',
  'ensureExport',
  'removeExport',
  'initializeConnection',
  'terminateConnection',
  'getVolumeStats',
  'listVolumes',
] as const;

/** One test's driver and everything it created, so a real backend is left clean. */
class VolumeHarness {
  readonly #volumes = new Map<string, VolumeSpec>();
  readonly #snapshots = new Map<string, SnapshotSpec>();
  #counter = 0;

  constructor(
    readonly driver: VolumeDriver,
    readonly sizeGiB: number,
    readonly runId: string,
  ) {}

  /** A spec for a new volume (tracked for cleanup); not created. */
  volumeSpec(sizeGiB = this.sizeGiB): VolumeSpec {
    const spec: VolumeSpec = {
      id: randomUUID(),
      name: `volume-${this.runId}-${++this.#counter}`,
      sizeGiB,
      projectId: 'conformance',
    };
    this.#volumes.set(spec.name, spec);
    return spec;
  }

  /** Create a volume; returns its spec with any provider fields the driver returned. */
  async createVolume(sizeGiB = this.sizeGiB): Promise<VolumeSpec> {
    const spec = this.volumeSpec(sizeGiB);
    return { ...spec, ...(await this.driver.createVolume(spec)) };
  }

  /** A spec for a new snapshot of `volume` (tracked for cleanup); not created. */
  snapshotSpec(volume: VolumeSpec): SnapshotSpec {
    const spec: SnapshotSpec = {
      id: randomUUID(),
      name: `snapshot-${this.runId}-${++this.#counter}`,
      volumeId: volume.id,
      volumeName: volume.name,
      volumeSizeGiB: volume.sizeGiB,
    };
    this.#snapshots.set(spec.name, spec);
    return spec;
  }

  async createSnapshot(volume: VolumeSpec): Promise<SnapshotSpec> {
    const spec = this.snapshotSpec(volume);
    await this.driver.createSnapshot(spec);
    return spec;
  }

  async names(): Promise<string[]> {
    return (await this.driver.listVolumes()).map((v) => v.name);
  }

  /** Delete what this test made, snapshots first; errors are ignored (the test already reported). */
  async cleanup(): Promise<void> {
    for (const s of [...this.#snapshots.values()].reverse())
      await quietly(() => this.driver.deleteSnapshot(s));
    for (const v of [...this.#volumes.values()].reverse()) {
      await quietly(() => this.driver.removeExport(v));
      await quietly(() => this.driver.deleteVolume(v));
    }
  }
}

/**
 * Register the volume-driver conformance suite for `options.manifest`. Each test gets a fresh
 * driver from `manifest.create(config with defaults, env)`, after `setup()` and
 * `checkForSetupError()`, and closes it afterwards, deleting what it created first.
 */
export function describeVolumeDriver(options: VolumeDriverSuiteOptions): void {
  const sizeGiB = options.sizeGiB ?? 1;
  const tolerance = options.capacityToleranceGiB ?? 0.05;
  const connector: Connector = options.connector ?? {
    host: 'conformance-initiator',
    initiator: 'iqn.1993-08.org.debian:01:conformance',
    ip: '127.0.0.1',
  };

  describeDriverSuite<VolumeSuiteKey, VolumeDriver, VolumeHarness>(
    {
      kind: 'volume-driver',
      contract: 'VolumeDriver',
      contractMethods: CONTRACT_METHODS,
      options,
      manifestKey: 'manifest',
      harness: (driver, runId) => new VolumeHarness(driver, sizeGiB, runId),
    },
    (test, runner) => {
      runner.describe('volumes', () => {
        test(['volumes'], 'createVolume makes a volume that listVolumes reports with its size', async (h) => {
          const v = await h.createVolume();
          const listed = (await h.driver.listVolumes()).find((b) => b.name === v.name);
          expect(listed, `${v.name} in listVolumes`).to.not.equal(undefined);
          expect(listed?.sizeGiB).to.be.closeTo(sizeGiB, tolerance);
        });

        test(['volumes'], 'createVolume returns nothing or a VolumeModelUpdate', async (h) => {
          const update = await h.driver.createVolume(h.volumeSpec());
          if (update !== undefined) expectSchema(VolumeModelUpdate, update, 'createVolume result');
        });

        test(
          ['volumes'],
          'createVolume of a volume that already exists with the same size succeeds',
          async (h) => {
            const v = await h.createVolume();
            await h.driver.createVolume(v);
            expect((await h.names()).filter((n) => n === v.name)).to.have.length(1);
          },
        );

        test(['volumes'], 'deleteVolume removes the volume from listVolumes', async (h) => {
          const v = await h.createVolume();
          await h.driver.deleteVolume(v);
          expect(await h.names()).to.not.include(v.name);
        });

        test(
          ['volumes'],
          'deleteVolume of a volume that is not there succeeds, twice in a row too',
          async (h) => {
            const v = await h.createVolume();
            await h.driver.deleteVolume(v);
            await h.driver.deleteVolume(v);
            await h.driver.deleteVolume(h.volumeSpec());
          },
        );

        test(['volumes'], 'listVolumes reflects every create and delete', async (h) => {
          const a = await h.createVolume();
          const b = await h.createVolume();
          expect(await h.names()).to.include.members([a.name, b.name]);
          await h.driver.deleteVolume(a);
          const names = await h.names();
          expect(names).to.include(b.name);
          expect(names).to.not.include(a.name);
        });
      });

      runner.describe('bad input', () => {
        for (const name of ['-leading-dash', 'has space', '../escape', 'semi;colon', 'a'.repeat(129)]) {
          test(
            ['badInput'],
            `createVolume named ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length} chars)` : name)} is InvalidInput and creates nothing`,
            async (h) => {
              const spec = { ...h.volumeSpec(), name };
              await expectRejection(
                h.driver.createVolume(spec),
                'INVALID_INPUT',
                `createVolume(${JSON.stringify(name)})`,
              );
              expect(await h.names()).to.not.include(name);
            },
          );
        }

        for (const size of [0, -1, 1.5]) {
          test(['badInput'], `createVolume of ${size} GiB is InvalidInput and creates nothing`, async (h) => {
            const spec = h.volumeSpec(size);
            await expectRejection(
              h.driver.createVolume(spec),
              'INVALID_INPUT',
              `createVolume of ${size} GiB`,
            );
            expect(await h.names()).to.not.include(spec.name);
          });
        }
      });

      runner.describe('capacity and stats', () => {
        test(
          ['capacity'],
          'getVolumeStats, cached or fresh, matches VolumeStats with free ≤ total',
          async ({ driver }) => {
            for (const refresh of [false, true]) {
              const stats = await driver.getVolumeStats(refresh);
              expectSchema(VolumeStats, stats, `getVolumeStats(${refresh})`);
              expect(stats.freeCapacityGiB).to.be.at.most(stats.totalCapacityGiB + tolerance);
            }
          },
        );

        test(
          ['capacity'],
          'a create shows in fresh stats (thick: free shrinks by its size; thin: provisioned grows by it) and a delete restores them',
          async (h) => {
            const before = await h.driver.getVolumeStats(true);
            const v = await h.createVolume();
            const during = await h.driver.getVolumeStats(true);
            if (before.thinProvisioning) {
              expect(during.provisionedCapacityGiB, 'provisioned after create').to.be.closeTo(
                before.provisionedCapacityGiB + sizeGiB,
                tolerance,
              );
              expect(during.freeCapacityGiB, 'free after create').to.be.at.most(
                before.freeCapacityGiB + tolerance,
              );
            } else {
              expect(during.freeCapacityGiB, 'free after create').to.be.closeTo(
                before.freeCapacityGiB - sizeGiB,
                tolerance,
              );
            }
            await h.driver.deleteVolume(v);
            const afterwards = await h.driver.getVolumeStats(true);
            expect(afterwards.freeCapacityGiB, 'free after delete').to.be.closeTo(
              before.freeCapacityGiB,
              tolerance,
            );
            expect(afterwards.provisionedCapacityGiB, 'provisioned after delete').to.be.closeTo(
              before.provisionedCapacityGiB,
              tolerance,
            );
          },
        );

        test(
          ['capacity', 'createPastCapacity'],
          'a volume larger than the free (thin: provisionable) space is DriverFailure with reason insufficient_capacity and creates nothing',
          async (h) => {
            const stats = await h.driver.getVolumeStats(true);
            const room = stats.thinProvisioning
              ? stats.totalCapacityGiB * (stats.maxOverSubscriptionRatio ?? 1) - stats.provisionedCapacityGiB
              : stats.freeCapacityGiB;
            const spec = h.volumeSpec(Math.floor(room) + 1);
            const error = await expectRejection(
              h.driver.createVolume(spec),
              'DRIVER_FAILURE',
              `createVolume of ${spec.sizeGiB} GiB`,
            );
            expect(error.details.reason).to.equal('insufficient_capacity');
            expect(await h.names()).to.not.include(spec.name);
            const afterwards = await h.driver.getVolumeStats(true);
            expect(afterwards.freeCapacityGiB).to.be.closeTo(stats.freeCapacityGiB, tolerance);
          },
        );
      });

      runner.describe('snapshots', () => {
        test(['snapshots'], 'createSnapshot of a volume that does not exist is NotFound', async (h) => {
          const ghost = h.volumeSpec();
          await expectRejection(
            h.driver.createSnapshot(h.snapshotSpec(ghost)),
            'NOT_FOUND',
            'createSnapshot of a missing volume',
          );
        });

        test(
          ['snapshots'],
          'deleteVolume of a volume with a snapshot is InvalidState and keeps it; after deleteSnapshot it succeeds',
          async (h) => {
            const v = await h.createVolume();
            const s = await h.createSnapshot(v);
            await expectRejection(h.driver.deleteVolume(v), 'INVALID_STATE', 'deleteVolume with a snapshot');
            expect(await h.names()).to.include(v.name);
            await h.driver.deleteSnapshot(s);
            await h.driver.deleteVolume(v);
            expect(await h.names()).to.not.include(v.name);
          },
        );

        test(
          ['snapshots'],
          'deleteSnapshot of a snapshot that is not there succeeds, twice in a row too',
          async (h) => {
            const v = await h.createVolume();
            const s = await h.createSnapshot(v);
            await h.driver.deleteSnapshot(s);
            await h.driver.deleteSnapshot(s);
            await h.driver.deleteSnapshot(h.snapshotSpec(v));
          },
        );

        test(['snapshots'], 'a snapshot is not listed as a volume', async (h) => {
          const v = await h.createVolume();
          const s = await h.createSnapshot(v);
          expect(await h.names()).to.not.include(s.name);
        });
      });

      runner.describe('volumes from snapshots', () => {
        test(
          ['snapshots', 'fromSnapshot'],
          'createVolumeFromSnapshot makes a listed volume of the requested size that outlives the snapshot and its source',
          async (h) => {
            const source = await h.createVolume();
            const s = await h.createSnapshot(source);
            const copy = h.volumeSpec(sizeGiB + 1);
            const update = await h.driver.createVolumeFromSnapshot(copy, s);
            if (update !== undefined)
              expectSchema(VolumeModelUpdate, update, 'createVolumeFromSnapshot result');
            const listed = (await h.driver.listVolumes()).find((b) => b.name === copy.name);
            expect(listed?.sizeGiB, `${copy.name} size`).to.be.closeTo(sizeGiB + 1, tolerance);
            await h.driver.deleteSnapshot(s);
            await h.driver.deleteVolume(source);
            expect(await h.names()).to.include(copy.name);
            await h.driver.deleteVolume(copy);
          },
        );

        test(
          ['snapshots', 'fromSnapshot'],
          'createVolumeFromSnapshot of a snapshot that does not exist is NotFound',
          async (h) => {
            const source = await h.createVolume();
            const ghost = h.snapshotSpec(source);
            const copy = h.volumeSpec();
            await expectRejection(
              h.driver.createVolumeFromSnapshot(copy, ghost),
              'NOT_FOUND',
              'from a missing snapshot',
            );
            expect(await h.names()).to.not.include(copy.name);
          },
        );

        test(
          ['snapshots', 'fromSnapshot'],
          'createVolumeFromSnapshot smaller than the snapshot is InvalidInput and creates nothing',
          async (h) => {
            const source = await h.createVolume(sizeGiB + 1);
            const s = await h.createSnapshot(source);
            const copy = h.volumeSpec(sizeGiB);
            await expectRejection(
              h.driver.createVolumeFromSnapshot(copy, s),
              'INVALID_INPUT',
              'a smaller volume from a snapshot',
            );
            expect(await h.names()).to.not.include(copy.name);
          },
        );
      });

      runner.describe('extend', () => {
        test(['extend'], 'extendVolume to a larger size grows the volume', async (h) => {
          const v = await h.createVolume();
          await h.driver.extendVolume(v, sizeGiB + 1);
          const listed = (await h.driver.listVolumes()).find((b) => b.name === v.name);
          expect(listed?.sizeGiB).to.be.closeTo(sizeGiB + 1, tolerance);
        });

        test(
          ['extend'],
          'extendVolume to the same or a smaller size is InvalidInput and keeps the size',
          async (h) => {
            const v = await h.createVolume(sizeGiB + 1);
            await expectRejection(
              h.driver.extendVolume(v, sizeGiB + 1),
              'INVALID_INPUT',
              'extendVolume to the same size',
            );
            await expectRejection(
              h.driver.extendVolume(v, sizeGiB),
              'INVALID_INPUT',
              'extendVolume to a smaller size',
            );
            const listed = (await h.driver.listVolumes()).find((b) => b.name === v.name);
            expect(listed?.sizeGiB).to.be.closeTo(sizeGiB + 1, tolerance);
          },
        );

        test(['extend'], 'extendVolume of a volume that does not exist is NotFound', async (h) => {
          await expectRejection(
            h.driver.extendVolume(h.volumeSpec(), sizeGiB + 1),
            'NOT_FOUND',
            'extendVolume of a missing volume',
          );
        });
      });

      runner.describe('exports and connections', () => {
        /** Create, export, and return the volume as the manager stores it (with the provider fields). */
        const exported = async (h: VolumeHarness): Promise<VolumeSpec> => {
          const v = await h.createVolume();
          const update = await h.driver.createExport(v, connector);
          if (update !== undefined) expectSchema(VolumeModelUpdate, update, 'createExport result');
          return { ...v, ...update };
        };

        test(
          ['exports'],
          'initializeConnection of an exported volume returns ConnectionInfo (iSCSI data when iscsi)',
          async (h) => {
            const v = await exported(h);
            const info = await h.driver.initializeConnection(v, connector);
            expectSchema(ConnectionInfo, info, 'initializeConnection result');
            if (info.driverVolumeType === 'iscsi') {
              expectSchema(IscsiConnectionData, info.data, 'iSCSI connection data');
              expect(info.data.volumeId).to.equal(v.id);
            }
          },
        );

        test(
          ['exports'],
          'initializeConnection twice for the same connector gives the same target',
          async (h) => {
            const v = await exported(h);
            const first = await h.driver.initializeConnection(v, connector);
            const second = await h.driver.initializeConnection(v, connector);
            expect(second.driverVolumeType).to.equal(first.driverVolumeType);
            expect(second.data.targetIqn).to.deep.equal(first.data.targetIqn);
            expect(second.data.targetPortal).to.deep.equal(first.data.targetPortal);
          },
        );

        test(
          ['exports'],
          'ensureExport with the stored provider fields is idempotent and the volume stays connectable',
          async (h) => {
            const v = await exported(h);
            await h.driver.ensureExport(v);
            await h.driver.ensureExport(v);
            expectSchema(
              ConnectionInfo,
              await h.driver.initializeConnection(v, connector),
              'connection after ensureExport',
            );
          },
        );

        test(
          ['exports'],
          'createExport again with the stored provider fields succeeds and the volume stays connectable',
          async (h) => {
            const v = await exported(h);
            const again = await h.driver.createExport(v, connector);
            const stored = { ...v, ...again };
            expectSchema(
              ConnectionInfo,
              await h.driver.initializeConnection(stored, connector),
              'connection after re-export',
            );
          },
        );

        test(
          ['exports'],
          'terminateConnection succeeds, and again when the connection is already gone',
          async (h) => {
            const v = await exported(h);
            await h.driver.initializeConnection(v, connector);
            await h.driver.terminateConnection(v, connector);
            await h.driver.terminateConnection(v, connector);
          },
        );

        test(['exports'], 'removeExport succeeds, and again when the export is already gone', async (h) => {
          const v = await exported(h);
          await h.driver.removeExport(v);
          await h.driver.removeExport(v);
        });

        test(
          ['exports'],
          'createExport and initializeConnection of a volume that does not exist are NotFound',
          async (h) => {
            const ghost = h.volumeSpec();
            await expectRejection(
              h.driver.createExport(ghost, connector),
              'NOT_FOUND',
              'createExport of a missing volume',
            );
            await expectRejection(
              h.driver.initializeConnection(ghost, connector),
              'NOT_FOUND',
              'initializeConnection of a missing volume',
            );
          },
        );

        test(
          ['exports'],
          'an exported volume with a connection can still be deleted once unexported',
          async (h) => {
            const v = await exported(h);
            await h.driver.initializeConnection(v, connector);
            await h.driver.terminateConnection(v, connector);
            await h.driver.removeExport(v);
            await h.driver.deleteVolume(v);
            expect(await h.names()).to.not.include(v.name);
          },
        );
      });
    },
  );
}
