/**
 * Column types from the CREATE TABLE (and composite CREATE TYPE) statements of a dump. pg_dump prints each column
 * as `name type[ COLLATE c][ DEFAULT e][ NOT NULL]...` with the type as format_type() gives it under an empty
 * search_path ("character varying(255)", "timestamp with time zone", "public.mood", "integer[]"), which is what
 * Relation.columns[].type_name carries. Pure.
 */
import {
  isName,
  isSymbol,
  isWord,
  readDottedName,
  toQualifiedName,
  tokenize,
  type QualifiedName,
  type Token,
} from './sql-lexer.js';

export interface ColumnDefinition {
  name: string;
  /** undefined when the element names no type (`col WITH OPTIONS ...` of a typed table). */
  type: string | undefined;
}

export interface TableDefinition {
  kind: 'table' | 'type';
  name: QualifiedName;
  columns: ColumnDefinition[];
  /** INHERITS (...) and PARTITION OF parents: columns not printed here come from them. */
  parents: QualifiedName[];
  /** CREATE TABLE ... OF type: the columns come from the composite type. */
  ofType: QualifiedName | undefined;
}

/** Words that end a column's type in a column definition. */
const TYPE_END = new Set([
  'collate',
  'default',
  'not',
  'null',
  'constraint',
  'generated',
  'check',
  'references',
  'primary',
  'unique',
  'compression',
  'storage',
]);

/** Words that start a table element that is not a column. */
const NOT_A_COLUMN = new Set(['constraint', 'check', 'unique', 'primary', 'foreign', 'exclude', 'like']);

/** The type of one column definition's text after the name, e.g. "text DEFAULT 'x;y'::text NOT NULL" -> "text". */
export function columnType(definition: string): string | undefined {
  return typeOf(definition, tokenize(definition), 0, undefined);
}

/** One column definition, e.g. `"order" numeric(30,10) NOT NULL`. */
export function parseColumnDefinition(definition: string): ColumnDefinition | undefined {
  return columnOf(definition, tokenize(definition), 0, undefined);
}

function typeOf(sql: string, tokens: Token[], from: number, to: number | undefined): string | undefined {
  const end = to ?? tokens.length;
  let depth = 0;
  let last = -1;
  for (let i = from; i < end; i += 1) {
    const token = tokens[i]!;
    if (depth === 0 && token.type === 'word' && TYPE_END.has(token.value)) break;
    if (depth === 0 && i === from && isWord(token, 'with')) break;
    if (isSymbol(token, '(') || isSymbol(token, '[')) depth += 1;
    if (isSymbol(token, ')') || isSymbol(token, ']')) depth -= 1;
    last = i;
  }
  if (last < from || depth !== 0) return undefined;
  return sql.slice(tokens[from]!.start, tokens[last]!.end);
}

function columnOf(
  sql: string,
  tokens: Token[],
  from: number,
  to: number | undefined,
): ColumnDefinition | undefined {
  const first = tokens[from];
  if (!isName(first) || (first!.type === 'word' && NOT_A_COLUMN.has(first!.value))) return undefined;
  return { name: first!.value, type: typeOf(sql, tokens, from + 1, to) };
}

/** The index of the parenthesis closing the one at `open`, or -1. */
function closingParen(tokens: Token[], open: number): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i += 1) {
    if (isSymbol(tokens[i], '(')) depth += 1;
    else if (isSymbol(tokens[i], ')')) {
      depth -= 1;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** The comma-separated elements between the parentheses at `open` and `close`, as token index ranges. */
function elements(tokens: Token[], open: number, close: number): [number, number][] {
  const ranges: [number, number][] = [];
  let depth = 0;
  let start = open + 1;
  for (let i = open + 1; i < close; i += 1) {
    const token = tokens[i]!;
    if (isSymbol(token, '(') || isSymbol(token, '[')) depth += 1;
    else if (isSymbol(token, ')') || isSymbol(token, ']')) depth -= 1;
    else if (depth === 0 && isSymbol(token, ',')) {
      ranges.push([start, i]);
      start = i + 1;
    }
  }
  if (start < close) ranges.push([start, close]);
  return ranges;
}

function nameList(tokens: Token[], open: number, close: number, defaultSchema: string): QualifiedName[] {
  const names: QualifiedName[] = [];
  for (const [from] of elements(tokens, open, close)) {
    const dotted = readDottedName(tokens, from);
    const name = dotted && toQualifiedName(dotted.parts, defaultSchema);
    if (name) names.push(name);
  }
  return names;
}

/**
 * `CREATE [UNLOGGED] TABLE name (...)`, `... PARTITION OF parent ...`, `... OF type ...` or
 * `CREATE TYPE name AS (...)`; undefined for anything else.
 */
export function parseTableDefinition(sql: string, defaultSchema: string): TableDefinition | undefined {
  let tokens: Token[];
  try {
    tokens = tokenize(sql);
  } catch {
    return undefined;
  }
  if (!isWord(tokens[0], 'create')) return undefined;
  let i = 1;
  while (isWord(tokens[i], 'global', 'local', 'temp', 'temporary', 'unlogged')) i += 1;
  const kind = isWord(tokens[i], 'table') ? 'table' : isWord(tokens[i], 'type') ? 'type' : undefined;
  if (!kind) return undefined;
  i += 1;
  if (isWord(tokens[i], 'if') && isWord(tokens[i + 1], 'not') && isWord(tokens[i + 2], 'exists')) i += 3;
  const dotted = readDottedName(tokens, i);
  const name = dotted && toQualifiedName(dotted.parts, defaultSchema);
  if (!dotted || !name) return undefined;
  i = dotted.next;
  const definition: TableDefinition = { kind, name, columns: [], parents: [], ofType: undefined };
  if (kind === 'type') {
    if (!isWord(tokens[i], 'as') || !isSymbol(tokens[i + 1], '(')) return undefined;
    i += 1;
  } else if (isWord(tokens[i], 'of')) {
    const type = readDottedName(tokens, i + 1);
    definition.ofType = type && toQualifiedName(type.parts, defaultSchema);
    i = type ? type.next : i + 1;
  } else if (isWord(tokens[i], 'partition') && isWord(tokens[i + 1], 'of')) {
    const parent = readDottedName(tokens, i + 2);
    const parentName = parent && toQualifiedName(parent.parts, defaultSchema);
    if (parentName) definition.parents.push(parentName);
    i = parent ? parent.next : i + 2;
  }
  if (isSymbol(tokens[i], '(')) {
    const close = closingParen(tokens, i);
    if (close < 0) return undefined;
    for (const [from, to] of elements(tokens, i, close)) {
      const column = columnOf(sql, tokens, from, to);
      if (column) definition.columns.push(column);
    }
    i = close + 1;
  }
  if (isWord(tokens[i], 'inherits') && isSymbol(tokens[i + 1], '(')) {
    const close = closingParen(tokens, i + 1);
    if (close > 0) definition.parents.push(...nameList(tokens, i + 1, close, defaultSchema));
  }
  return definition;
}

/** Resolves column types through a table's own definition, its parents and its composite type. */
export class TableCatalog {
  private readonly definitions = new Map<string, TableDefinition>();

  add(definition: TableDefinition): void {
    this.definitions.set(key(definition.name), definition);
  }

  /** The type of `column` of `table`, or undefined when the dump does not say. */
  columnType(table: QualifiedName, column: string, seen = new Set<string>()): string | undefined {
    const definition = this.definitions.get(key(table));
    if (!definition || seen.has(key(table))) return undefined;
    seen.add(key(table));
    const own = definition.columns.find((c) => c.name === column)?.type;
    if (own) return own;
    for (const parent of [...definition.parents, ...(definition.ofType ? [definition.ofType] : [])]) {
      const inherited = this.columnType(parent, column, seen);
      if (inherited) return inherited;
    }
    return undefined;
  }
}

function key(name: QualifiedName): string {
  return `${name.schema}\u0000${name.name}`;
}
