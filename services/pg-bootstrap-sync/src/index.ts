export { loadConfig, type BootstrapSyncConfig } from './config.js';
