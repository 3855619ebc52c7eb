export * from './manager.js';
export * from './resilience.js';
