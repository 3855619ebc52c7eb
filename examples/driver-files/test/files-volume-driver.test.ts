import { mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPlugin, Executor, silentLogger } from '@stratus/core';
import { expect } from 'chai';
import manifest, { type FilesVolumeDriver } from '../src/index.js';

const GiB = 1024 ** 3;

describe('FilesVolumeDriver on disk', () => {
  let dataDir: string;
  let driver: FilesVolumeDriver;

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'files-driver-'));
    const env = { host: 'test', logger: silentLogger(), executor: new Executor({ filters: [] }), dataDir };
    driver = await createPlugin<'volume-driver', FilesVolumeDriver>(manifest, { directory: 'pool' }, env);
    await driver.setup();
  });

  afterEach(async () => {
    await driver.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const volume = (name: string, sizeGiB = 1) => ({ id: `id-${name}`, name, sizeGiB });

  it('keeps a volume as a sparse image of its size under <dataDir>/<directory>/volumes', async () => {
    await driver.createVolume(volume('v1', 2));
    const info = await stat(path.join(dataDir, 'pool', 'volumes', 'v1.img'));
    expect(info.size).to.equal(2 * GiB);
    expect(info.blocks * 512).to.be.below(GiB);
  });

  it('makes a snapshot an independent copy: writes to the volume do not reach it', async function () {
    this.timeout(120_000); // reads a 1 GiB image with data in it
    await driver.createVolume(volume('v1'));
    const image = path.join(dataDir, 'pool', 'volumes', 'v1.img');
    await writeFile(image, 'before', { flag: 'r+' });
    await driver.createSnapshot({
      id: 's',
      name: 's1',
      volumeId: 'id-v1',
      volumeName: 'v1',
      volumeSizeGiB: 1,
    });
    await writeFile(image, 'after!', { flag: 'r+' });
    await driver.createVolumeFromSnapshot(volume('v2', 2), {
      id: 's',
      name: 's1',
      volumeId: 'id-v1',
      volumeName: 'v1',
      volumeSizeGiB: 1,
    });
    const copy = path.join(dataDir, 'pool', 'volumes', 'v2.img');
    const handle = await open(copy, 'r');
    const { buffer } = await handle.read(Buffer.alloc(6), 0, 6, 0);
    await handle.close();
    expect(buffer.toString()).to.equal('before');
    expect((await stat(copy)).size).to.equal(2 * GiB);
  });

  it('exports a local device path and sees the same volumes after a restart', async () => {
    await driver.createVolume(volume('v1'));
    const info = await driver.initializeConnection(volume('v1'), { host: 'compute-1' });
    expect(info).to.deep.equal({
      driverVolumeType: 'local',
      data: { devicePath: path.join(dataDir, 'pool', 'volumes', 'v1.img'), volumeId: 'id-v1' },
    });
    const env = { host: 'test', logger: silentLogger(), executor: new Executor({ filters: [] }), dataDir };
    const restarted = await createPlugin<'volume-driver', FilesVolumeDriver>(
      manifest,
      { directory: 'pool' },
      env,
    );
    await restarted.setup();
    expect(await restarted.listVolumes()).to.deep.equal([{ name: 'v1', sizeGiB: 1 }]);
  });

  it('removes temporary files a crash left behind when it starts', async () => {
    const leftover = path.join(dataDir, 'pool', 'volumes', '.abc123.tmp');
    await writeFile(leftover, 'half a copy');
    await driver.setup();
    const exists = await stat(leftover).then(
      () => true,
      () => false,
    );
    expect(exists).to.equal(false);
  });
});
