export { CATALOGUE } from './catalogue.js';
export {
  displayTable,
  loadTransformsFile,
  parseTransforms,
  tableKey,
  type ColumnRule,
  type TableRules,
  type TransformConfig,
} from './config.js';
export { StrictModeError, TransformError } from './errors.js';
export {
  createTransformer,
  type ColumnInfo,
  type TableRef,
  type TransformValue,
  type Transformer,
  type TransformerOptions,
} from './transformer.js';
