import { defineConfig } from 'tsup';
import { base } from '../../tsup.base.js';

export default defineConfig({
  ...base,
  entry: ['src/index.ts', 'src/exec/rootwrap-cli.ts'],
  // Also bundled: semver and import-meta-resolve, small stateless helpers of plugin resolution whose
  // ~20 files cost ~12 ms of every start-up. pino (stateful, worker transports) and yaml (loaded
  // only for YAML configs) stay external.
  noExternal: [...(base.noExternal ?? []), /^semver(\/.*)?$/, /^import-meta-resolve$/],
});
