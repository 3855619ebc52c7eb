export * from './client.js';
export * from './endpoints.js';
export * from './envelope.js';
export * from './errors.js';
export * from './memory-transport.js';
export * from './server.js';
export * from './signing.js';
