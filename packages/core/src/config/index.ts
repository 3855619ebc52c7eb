export * from './load.js';
export * from './plugins.js';
export * from './schema.js';
