export * from './manifest.js';
export * from './resolve.js';
