/**
 * Versions a scaffolded driver starts with. `CORE_RANGE` is the @stratus/core (and testkit) range
 * its peer and dev dependencies name; a test checks it still admits the workspace's core.
 */
export const CORE_RANGE = '>=0.1.0 <1.0.0';

/** Dev tooling of the scaffold, the versions the Stratus repository itself builds with. */
export const TOOL_VERSIONS = Object.freeze({
  __TYPEBOX_RANGE__: '^1.4.3',
  __TYPES_MOCHA__: '10.0.10',
  __TYPES_NODE__: '20.19.8',
  __CHAI__: '6.3.0',
  __MOCHA__: '12.0.3',
  __TSX__: '4.23.15',
  __TYPESCRIPT__: '6.0.3',
});
