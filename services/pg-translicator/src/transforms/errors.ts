import { KashoError } from '@kasho/common';

/**
 * `strict: true` and a table with rules has a column without one (typically a column added by DDL): the pipeline
 * stops rather than copy a column nobody has classified.
 */
export class StrictModeError extends KashoError {
  constructor(
    readonly table: string,
    readonly columns: readonly string[],
    file: string,
  ) {
    super(
      `strict mode: ${columns.length === 1 ? 'column' : 'columns'} ${columns.join(', ')} of ${table} ` +
        `${columns.length === 1 ? 'has' : 'have'} no rule in ${file}`,
      `Add a rule for ${columns.length === 1 ? 'it' : 'each'} under ${table} (use Keep to copy a column unchanged), then restart pg-translicator.`,
    );
  }
}

/** A value could not be transformed. The message names table, column and transform, never the value. */
export class TransformError extends KashoError {}

/**
 * Raised inside a transform with a reason that holds no row value; the transformer adds table, column and type.
 */
export class TransformFailure extends Error {}
