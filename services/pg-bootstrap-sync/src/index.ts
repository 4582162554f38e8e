export { loadConfig, type BootstrapSyncConfig } from './config.js';
export { decodeCopyRow, parseCopyHeader } from './copy-text.js';
export { classifyStatement } from './classify.js';
export { EventBuilder, snapshotRelation } from './event-builder.js';
