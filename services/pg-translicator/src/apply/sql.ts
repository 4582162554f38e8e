/**
 * SQL text for applying changes. Identifiers are always quoted; values never enter the text, they travel as
 * parameters ($n). Pure functions: the applier runs what they return.
 */

export interface TableRef {
  schema: string;
  name: string;
}

export interface ColumnRef {
  name: string;
  /** format_type() of the column, e.g. "jsonb", "numeric(10,2)". */
  typeName: string;
}

/** A value as the applier holds it: text form, NULL, or unchanged TOAST (not sent by the source). */
export type CellValue = string | null | undefined;

export interface Statement {
  text: string;
  values: (string | null)[];
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function qualifiedName(table: TableRef): string {
  return `${quoteIdent(table.schema)}.${quoteIdent(table.name)}`;
}

/** PostgreSQL's limit on parameters in one statement. */
export const MAX_PARAMETERS = 65_535;

/** INSERT of several rows with the same columns; the caller keeps rows × columns within MAX_PARAMETERS. */
export function insertRows(
  table: TableRef,
  columns: readonly ColumnRef[],
  rows: readonly (string | null)[][],
): Statement {
  if (columns.length === 0) {
    // A table without columns still has rows; each is one DEFAULT VALUES insert.
    return {
      text: rows.map(() => `INSERT INTO ${qualifiedName(table)} DEFAULT VALUES`).join('; '),
      values: [],
    };
  }
  const names = columns.map((column) => quoteIdent(column.name)).join(', ');
  const values: (string | null)[] = [];
  const tuples = rows.map((row) => {
    const placeholders = row.map((value) => {
      values.push(value);
      return `$${values.length}`;
    });
    return `(${placeholders.join(', ')})`;
  });
  return { text: `INSERT INTO ${qualifiedName(table)} (${names}) VALUES ${tuples.join(', ')}`, values };
}

/**
 * Types without a usable `=` operator (json, point, xml, ...) are compared through their text output, rendered by
 * the target on both sides so session settings cannot make equal values differ.
 */
const NO_EQUALITY = /^(json|xml|point|line|lseg|box|path|polygon|circle|txid_snapshot|pg_snapshot)(\[\])?$/;

function matchCondition(column: ColumnRef, value: string | null, values: (string | null)[]): string {
  const name = quoteIdent(column.name);
  if (value === null) return `${name} IS NULL`;
  values.push(value);
  if (NO_EQUALITY.test(column.typeName)) {
    return `${name}::text = ($${values.length}::${column.typeName})::text`;
  }
  return `${name} = $${values.length}`;
}

export interface RowLocator {
  /** Columns and values that identify the row (replica identity key, or the whole old row for FULL). */
  columns: readonly ColumnRef[];
  values: readonly CellValue[];
  /** REPLICA IDENTITY FULL: several identical rows may match; change exactly one, as PostgreSQL does. */
  full: boolean;
}

function whereClause(table: TableRef, locator: RowLocator, values: (string | null)[]): string {
  const conditions: string[] = [];
  locator.columns.forEach((column, i) => {
    const value = locator.values[i];
    if (value === undefined) return;
    conditions.push(matchCondition(column, value, values));
  });
  if (conditions.length === 0)
    throw new Error(`no identity values to locate a row of ${qualifiedName(table)}`);
  const where = conditions.join(' AND ');
  return locator.full ? `ctid = (SELECT ctid FROM ${qualifiedName(table)} WHERE ${where} LIMIT 1)` : where;
}

/** UPDATE setting every column except unchanged-TOAST ones; undefined when nothing is left to set. */
export function updateRow(
  table: TableRef,
  columns: readonly ColumnRef[],
  newValues: readonly CellValue[],
  locator: RowLocator,
): Statement | undefined {
  const values: (string | null)[] = [];
  const assignments: string[] = [];
  columns.forEach((column, i) => {
    const value = newValues[i];
    if (value === undefined) return;
    values.push(value);
    assignments.push(`${quoteIdent(column.name)} = $${values.length}`);
  });
  if (assignments.length === 0) return undefined;
  const where = whereClause(table, locator, values);
  return { text: `UPDATE ${qualifiedName(table)} SET ${assignments.join(', ')} WHERE ${where}`, values };
}

export function deleteRow(table: TableRef, locator: RowLocator): Statement {
  const values: (string | null)[] = [];
  const where = whereClause(table, locator, values);
  return { text: `DELETE FROM ${qualifiedName(table)} WHERE ${where}`, values };
}

export function truncateTables(
  tables: readonly TableRef[],
  cascade: boolean,
  restartIdentity: boolean,
): Statement {
  const names = tables.map(qualifiedName).join(', ');
  return {
    text: `TRUNCATE ${names}${restartIdentity ? ' RESTART IDENTITY' : ''}${cascade ? ' CASCADE' : ''}`,
    values: [],
  };
}

/** Sets search_path for the rest of the transaction, as the DDL statement was captured with. */
export function setSearchPath(searchPath: string): Statement {
  return { text: `SELECT set_config('search_path', $1, true)`, values: [searchPath] };
}
