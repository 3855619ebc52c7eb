import { describeVolumeDriver } from '@stratus/testkit/volume-driver';
import manifest from '../src/index.js';

describeVolumeDriver({ manifest, config: { capacityGiB: 20 } });
