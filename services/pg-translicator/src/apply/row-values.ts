import { ValueKind, type Value } from '@kasho/common';
import type { CellValue } from './sql.js';

/** The transform engine's view of a value. */
export type TransformValue = { kind: 'text'; text: string } | { kind: 'null' } | { kind: 'unchanged' };

export interface RowTransformer {
  transformRow(
    table: { schema: string; name: string },
    columns: ReadonlyArray<{ name: string; typeName: string }>,
    values: TransformValue[],
  ): TransformValue[];
}

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
