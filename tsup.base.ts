import type { Options } from 'tsup';

/** Shared build options: Node ESM only, declarations, dependencies never bundled. */
export const base: Options = {
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: false,
  treeshake: true,
  // tsup's default rewrites `node:crypto` to `crypto`.
  removeNodeProtocol: false,
};
