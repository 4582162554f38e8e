export * from './config.js';
export * from './errors.js';
export * from './logger.js';
export * from './lsn.js';
export * from './main.js';
export * from './redact.js';
