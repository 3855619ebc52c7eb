export * from './heartbeat.js';
export * from './launcher.js';
export * from './periodic.js';
export * from './service.js';
