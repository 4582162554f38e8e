export * from './api/schema.js';
export * from './api/pipeline.js';
export { buildCrd, renderCrdYaml, CRD_FILE, CRD_NAME } from './api/crd.js';
export { Controller, type ControllerOptions } from './controller/controller.js';
export * from './controller/dependencies.js';
export { LeaderElector } from './controller/leader-election.js';
export { OperatorMetrics } from './controller/metrics.js';
