export * from './context.js';
export * from './contracts/index.js';
export * from './errors.js';
export * from './exec/index.js';
export * from './log/logger.js';
export * from './plugin/index.js';
export * from './schema.js';
export * from './config/index.js';
