import { describeComputeDriver } from '@stratus/testkit/compute-driver';
import { compute } from '../src/index.js';

describeComputeDriver({ manifest: compute });
