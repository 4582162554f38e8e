import { ValueKind, type Value } from '@kasho/common';
import type { CellValue } from './sql.js';

import type { Transformer, TransformValue } from '../transforms/index.js';

/** The part of the transform engine the applier uses. */
export type RowTransformer = Pick<Transformer, 'transformRow' | 'transformKey'>;

export function toTransformValue(value: Value): TransformValue {
  switch (value.kind) {
    case ValueKind.NULL:
      return { kind: 'null' };
    case ValueKind.UNCHANGED_TOAST:
      return { kind: 'unchanged' };
    default:
      return { kind: 'text', text: value.text };
  }
}

export function toCell(value: TransformValue): CellValue {
  if (value.kind === 'text') return value.text;
  return value.kind === 'null' ? null : undefined;
}
