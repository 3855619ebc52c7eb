export * from './executor.js';
export * from './filters.js';
