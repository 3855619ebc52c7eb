import { describeVolumeDriver } from '@stratus/testkit/volume-driver';
import { volume } from '../src/index.js';

describeVolumeDriver({ manifest: volume });
describeVolumeDriver({ name: 'thin', manifest: volume, config: { thin: true, capacityGiB: 50 } });
