import { describeVolumeDriver } from '@stratus/testkit/volume-driver';
import { volume } from '../../src/index.js';
import { FakeLvmHost } from '../support/fake-lvm.js';

// The conformance suite against the recorded-command fake: every command line the driver builds
// passes its own filters, and the fake answers as lvm2/tgt do. One host for the whole suite, as a
// real volume group would be.
for (const lvmType of ['default', 'thin'] as const) {
  const host = new FakeLvmHost('volumes', 100);
  describeVolumeDriver({
    manifest: volume,
    name: `@stratus/driver-lvm (${lvmType}, recorded-command fake)`,
    config: { volumeGroup: 'volumes', lvmType, retryDelayMs: 0 },
    env: { executor: host.executor },
  });
}
