import { buildBehavior, type Behavior, type BuildEnv, type ValueFn } from './catalogue.js';
import { tableKey, type ColumnRule, type TableRules, type TransformConfig } from './config.js';
import { StrictModeError, TransformError, TransformFailure } from './errors.js';
import { describeType, fitAuthored, parseColumnType, type ColumnType } from './fit.js';
import { DEVELOPMENT_KEY, Keyer } from './keyed.js';
import { PasswordCache } from './passwords.js';
import { mapArray, parseArray, serializeArray } from './pgarray.js';
import type { TemplateValue } from './template.js';

export interface TableRef {
  schema: string;
  name: string;
}

export interface ColumnInfo {
  name: string;
  /** format_type output, e.g. `character varying(255)`, `numeric(10,2)`, `text[]`. */
  typeName: string;
}

/**
 * A column value in PostgreSQL's text form. `unchanged` is an unchanged TOAST value (or, for an old key, a column
 * that is not part of the key): not sent, so it cannot be transformed and is returned as is.
 */
export type TransformValue = { kind: 'text'; text: string } | { kind: 'null' } | { kind: 'unchanged' };

export interface TransformerOptions {
  /** TRANSFORM_SECRET; undefined or empty means the fixed development key (a warning is logged). */
  secret: string | undefined;
  logger?: { warn(message: string): unknown };
}

export interface Transformer {
  readonly strict: boolean;
  /** Whether transforms.yml lists the table (rows of other tables pass through untouched). */
  hasRules(table: TableRef): boolean;
  /**
   * Checks a table's columns against its rules without transforming anything: throws StrictModeError for a column
   * without a rule in strict mode, TransformError for a template reading a column the table lacks.
   */
  checkColumns(table: TableRef, columns: readonly ColumnInfo[]): void;
  /** Transforms a new row (insert, update, bootstrap copy). The result has one value per column. */
  transformRow(
    table: TableRef,
    columns: readonly ColumnInfo[],
    values: readonly TransformValue[],
  ): TransformValue[];
  /**
   * Transforms an old key or old row (update and delete lookups) the same way, so it finds the transformed row.
   * Columns the change does not carry must be passed as `unchanged`; they are left alone.
   */
  transformKey(
    table: TableRef,
    columns: readonly ColumnInfo[],
    values: readonly TransformValue[],
  ): TransformValue[];
}

interface ValueOp {
  index: number;
  rule: ColumnRule;
  column: ColumnInfo;
  type: ColumnType;
  apply: ValueFn | null;
}

interface RowOp {
  index: number;
  rule: ColumnRule;
  column: ColumnInfo;
  type: ColumnType;
  behavior: Extract<Behavior, { kind: 'row' }>;
  readsOwnValue: boolean;
}

interface Plan {
  valueOps: ValueOp[];
  rowOps: RowOp[];
  indexOf: Map<string, number>;
  booleans: boolean[];
}

interface CompiledTable {
  rules: TableRules;
  behaviors: Map<string, Behavior>;
  plans: Map<string, Plan>;
  warned: Set<string>;
}

const NO_VALUE_HINT =
  'Templates and passwords can only read values a change carries: not a large (TOASTed) value left unchanged by ' +
  'an update, and for an old key only the replica identity columns.';

export function createTransformer(config: TransformConfig, options: TransformerOptions): Transformer {
  const secret = options.secret === undefined || options.secret === '' ? undefined : options.secret;
  if (secret === undefined) {
    options.logger?.warn(
      'TRANSFORM_SECRET is not set: transforms use the fixed development key, so anyone can reproduce the fake ' +
        'values and test guesses of the originals. Set TRANSFORM_SECRET to a long random string for real data.',
    );
  }
  const env: BuildEnv = { keyer: new Keyer(secret ?? DEVELOPMENT_KEY), passwords: new PasswordCache() };
  const tables = new Map<string, CompiledTable>();
  for (const [key, rules] of config.tables) {
    const behaviors = new Map<string, Behavior>();
    for (const [column, rule] of rules.columns) behaviors.set(column, buildBehavior(rule, env));
    tables.set(key, {
      rules,
      behaviors,
      plans: new Map(),
      warned: new Set(),
    });
  }

  const describe = (table: CompiledTable, op: { column: ColumnInfo; rule: ColumnRule }) =>
    `${table.rules.display}.${op.column.name} (${op.rule.type})`;

  const failure = (table: CompiledTable, op: ValueOp | RowOp, error: unknown): TransformError => {
    if (error instanceof TransformError) return error;
    // Messages of unexpected errors may quote the value; only the error's class is kept.
    const reason =
      error instanceof TransformFailure ? error.message : `unexpected ${(error as Error)?.name ?? 'error'}`;
    return new TransformError(
      `Cannot transform ${describe(table, op)}: ${reason}`,
      `The column's type is ${op.column.typeName}; check the rule at ${op.rule.location}.`,
    );
  };

  const buildPlan = (table: CompiledTable, columns: readonly ColumnInfo[]): Plan => {
    const { rules } = table;
    const indexOf = new Map(columns.map((c, i) => [c.name, i]));
    if (config.strict) {
      const missing = columns.filter((c) => !rules.columns.has(c.name)).map((c) => c.name);
      if (missing.length > 0) throw new StrictModeError(rules.display, missing, config.file);
    }
    for (const [column, rule] of rules.columns) {
      if (!indexOf.has(column) && !table.warned.has(column)) {
        table.warned.add(column);
        options.logger?.warn(
          `${rules.display} has no column ${column}; the rule at ${rule.location} is not used`,
        );
      }
    }
    const valueOps: ValueOp[] = [];
    columns.forEach((column, index) => {
      const behavior = table.behaviors.get(column.name);
      const rule = rules.columns.get(column.name);
      if (!behavior || !rule || (behavior.kind !== 'value' && behavior.kind !== 'null')) return;
      const apply = behavior.kind === 'value' ? behavior.apply : null;
      valueOps.push({ index, rule, column, type: parseColumnType(column.typeName), apply });
    });
    const rowOps: RowOp[] = [];
    for (const name of rules.rowOrder) {
      const index = indexOf.get(name);
      const behavior = table.behaviors.get(name);
      const rule = rules.columns.get(name);
      const column = index === undefined ? undefined : columns[index];
      if (index === undefined || column === undefined || behavior?.kind !== 'row' || rule === undefined)
        continue;
      for (const field of behavior.fields) {
        if (!indexOf.has(field)) {
          throw new TransformError(
            `${rules.display}.${name} (${rule.type}) reads column ${field}, which ${rules.display} does not have`,
            `Fix the template at ${rule.location}.`,
          );
        }
      }
      rowOps.push({
        index,
        rule,
        column,
        type: parseColumnType(column.typeName),
        behavior,
        readsOwnValue: behavior.usesOwnValue || behavior.fields.includes(name),
      });
    }
    const booleans = columns.map((c) => {
      const type = parseColumnType(c.typeName);
      return type.family === 'bool';
    });
    return { valueOps, rowOps, indexOf, booleans };
  };

  const planFor = (table: CompiledTable, columns: readonly ColumnInfo[]): Plan => {
    // Keyed by content, not by array identity: a caller may reuse and change its column list after DDL.
    let signature = '';
    for (const column of columns) signature += `${column.name}\0${column.typeName}\0`;
    let plan = table.plans.get(signature);
    if (plan === undefined) {
      plan = buildPlan(table, columns);
      table.plans.set(signature, plan);
    }
    return plan;
  };

  const applyValue = (op: ValueOp, text: string): string | null => {
    const apply = op.apply;
    if (apply === null) return null;
    const type = op.type;
    if (type.family !== 'array') return apply(text, type);
    const parsed = parseArray(text, type.delimiter);
    const items = mapArray(parsed.items, (element) => apply(element, type.element));
    return serializeArray({ prefix: parsed.prefix, items }, type.delimiter);
  };

  const transform = (
    tableRef: TableRef,
    columns: readonly ColumnInfo[],
    values: readonly TransformValue[],
    oldKey: boolean,
  ): TransformValue[] => {
    const table = tables.get(tableKey(tableRef.schema, tableRef.name));
    if (table === undefined) return values.slice();
    const plan = planFor(table, columns);
    const out = values.slice();
    for (const op of plan.valueOps) {
      const value = values[op.index];
      if (value?.kind !== 'text') continue;
      try {
        const text = applyValue(op, value.text);
        out[op.index] = text === null ? { kind: 'null' } : { kind: 'text', text };
      } catch (error) {
        throw failure(table, op, error);
      }
    }
    for (const op of plan.rowOps) {
      const own = values[op.index];
      if (own === undefined || own.kind === 'null') continue;
      if (own.kind === 'unchanged' && (oldKey || op.readsOwnValue)) {
        if (oldKey) continue;
        throw new TransformError(
          `Cannot compute ${describe(table, op)}: it reads its own value, which this change does not carry`,
          NO_VALUE_HINT,
        );
      }
      const lookup = (field: string): TemplateValue => {
        const index = plan.indexOf.get(field) as number;
        const value = field === op.column.name ? values[index] : out[index];
        if (value === undefined || value.kind === 'unchanged') {
          throw new TransformError(
            `Cannot compute ${describe(table, op)}: it reads ${field}, whose value this change does not carry`,
            NO_VALUE_HINT,
          );
        }
        if (value.kind === 'null') return null;
        return plan.booleans[index] ? value.text === 't' : value.text;
      };
      let text: string;
      try {
        text = op.behavior.evaluate(lookup, own.kind === 'text' ? own.text : undefined);
      } catch (error) {
        throw failure(table, op, error);
      }
      const fitted = op.type.family === 'array' ? text : fitAuthored(text, op.type);
      if (fitted === undefined) {
        throw failure(
          table,
          op,
          new TransformFailure(
            `the result is not a valid ${describeType(op.type as Exclude<ColumnType, { family: 'array' }>)}`,
          ),
        );
      }
      out[op.index] = { kind: 'text', text: fitted };
    }
    return out;
  };

  return {
    strict: config.strict,
    hasRules: (table) => tables.has(tableKey(table.schema, table.name)),
    checkColumns(tableRef, columns) {
      const table = tables.get(tableKey(tableRef.schema, tableRef.name));
      if (table !== undefined) planFor(table, columns);
    },
    transformRow: (table, columns, values) => transform(table, columns, values, false),
    transformKey: (table, columns, values) => transform(table, columns, values, true),
  };
}
