export { loadConfig, type ChangeStreamConfig } from './config.js';
