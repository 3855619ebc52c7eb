import type { Options } from 'tsup';

/**
 * Shared build options: Node ESM only, declarations, dependencies never bundled — except typebox
 * and kysely. Each ships hundreds of small ESM files (typebox ~700, kysely ~260) and Node 20's ESM
 * loader pays ~0.3–0.5 ms per file: loading them as files cost ~0.5 s of every `stratus serve`
 * start-up (BENCHMARKS.md, scenario 4). Bundled, each package loads one file. Several copies in a
 * process are safe: typebox schemas are plain JSON (`~kind` string keys) and kysely's query
 * builders are duck-typed (`toOperationNode`), so values from one copy work with another.
 * Declarations still import both packages (dts resolve is off), so types stay shared.
 */
export const base: Options = {
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: false,
  treeshake: true,
  noExternal: [/^typebox(\/.*)?$/, /^kysely(\/.*)?$/],
  // tsup's default rewrites `node:crypto` to `crypto`.
  removeNodeProtocol: false,
};
