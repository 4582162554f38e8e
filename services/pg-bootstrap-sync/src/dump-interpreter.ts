/**
 * Follows a dump statement by statement the way psql would run it: keeps the search_path and string syntax in force,
 * learns the column types of every table it creates, and says for each statement whether it is DDL for the target,
 * the start of a table's rows, or nothing for the target. Pure.
 */
import { classifyStatement, type SkipReason } from './classify.js';
import type { CopyHeader } from './copy-text.js';
import { TableCatalog } from './create-table.js';
import { DumpSyntaxError } from './dump-tokenizer.js';
import type { ColumnSpec } from './event-builder.js';
import { displayName } from './sql-lexer.js';

export type StatementAction =
  | { kind: 'ddl'; sql: string; searchPath: string }
  | { kind: 'copy'; header: CopyHeader; kasho: boolean }
  | { kind: 'none' };

const NONE: StatementAction = { kind: 'none' };
const ROUTINE = /^create\s+(?:or\s+replace\s+)?(?:function|procedure)\s/i;

/** Used when the dump does not say a column's type (a typed table whose type is not in it, say). */
export const FALLBACK_TYPE = 'text';

export class DumpInterpreter {
  /** pg_dump's preamble sets it to '' before anything else; '' also stands for "not set" until then. */
  searchPath = '';
  standardConformingStrings = true;
  /** pg_dump turns it off so that SQL functions may name tables created after them. */
  checkFunctionBodies = true;
  readonly catalog = new TableCatalog();
  readonly skipped = new Map<SkipReason | 'psql meta-command', number>();
  private largeObjectsWarned = false;

  constructor(private readonly warn: (message: string) => void = () => undefined) {}

  statement(sql: string, line: number): StatementAction {
    const classified = classifyStatement(sql, {
      searchPath: this.searchPath,
      standardConformingStrings: this.standardConformingStrings,
    });
    switch (classified.action) {
      case 'search-path':
        this.searchPath = classified.value;
        return NONE;
      case 'setting':
        if (classified.name === 'standard_conforming_strings') {
          this.standardConformingStrings = classified.value.toLowerCase() !== 'off';
        } else if (classified.name === 'check_function_bodies') {
          this.checkFunctionBodies = !/^(off|false|no|0)$/i.test(classified.value);
        } else if (!/^utf-?8$/i.test(classified.value)) {
          throw new DumpSyntaxError(
            `the dump was written in client encoding ${classified.value}; pg-bootstrap-sync reads UTF8 dumps (run pg_dump with --encoding=UTF8)`,
            line,
          );
        }
        return NONE;
      case 'skip':
        this.skipped.set(classified.reason, (this.skipped.get(classified.reason) ?? 0) + 1);
        if (classified.reason === 'large object' && !this.largeObjectsWarned) {
          this.largeObjectsWarned = true;
          this.warn(
            `Line ${line}: the dump holds large objects, which the change stream cannot carry; they are left out`,
          );
        }
        return NONE;
      case 'copy':
        return { kind: 'copy', header: classified.header, kasho: classified.kasho };
      case 'apply':
        if (classified.definition) this.catalog.add(classified.definition);
        return { kind: 'ddl', sql: this.withSessionSettings(sql), searchPath: this.searchPath };
    }
  }

  /**
   * A Ddl event carries only its search_path, so a setting the dump relies on for a statement travels inside it: a
   * routine created while check_function_bodies is off is created the same way on the target (SET LOCAL lasts to
   * the end of the target's transaction and only relaxes the checking of function bodies).
   */
  private withSessionSettings(sql: string): string {
    if (this.checkFunctionBodies || !ROUTINE.test(sql)) return sql;
    return `SET LOCAL check_function_bodies = false;\n${sql}`;
  }

  meta(): void {
    this.skipped.set('psql meta-command', (this.skipped.get('psql meta-command') ?? 0) + 1);
  }

  /** The columns of a COPY with their types from the dump's CREATE TABLE; unknown types fall back to text. */
  columnsFor(header: CopyHeader): ColumnSpec[] {
    const unknown: string[] = [];
    const columns = header.columns.map((name) => {
      const typeName = this.catalog.columnType(header.table, name);
      if (typeName === undefined) unknown.push(name);
      return { name, typeName: typeName ?? FALLBACK_TYPE };
    });
    if (unknown.length > 0) {
      this.warn(
        `${displayName(header.table)}: the dump does not give the type of column(s) ${unknown.join(', ')}; they are sent as ${FALLBACK_TYPE}`,
      );
    }
    return columns;
  }

  mergeSkipped(other: DumpInterpreter): void {
    for (const [reason, count] of other.skipped)
      this.skipped.set(reason, (this.skipped.get(reason) ?? 0) + count);
  }

  /** "12 session setting, 3 kasho object, ..." for the summary. */
  describeSkipped(): string {
    return [...this.skipped].map(([reason, count]) => `${count} ${reason}`).join(', ');
  }
}
