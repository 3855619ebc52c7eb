export * from './executor.js';
export * from './filters.js';
export * from './rootwrap.js';
