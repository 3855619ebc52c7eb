import { defineConfig } from 'tsup';
import { base } from '../../tsup.base.js';

export default defineConfig({
  ...base,
  entry: ['src/transport.ts', 'src/volume-driver.ts', 'src/compute-driver.ts', 'src/fixtures.ts'],
});
