export * from './compute-driver.js';
export * from './driver.js';
export * from './transport.js';
export * from './versions.js';
export * from './volume-driver.js';
