export { loadConfig, type TranslicatorConfig } from './config.js';
