/**
 * A small lexer for single SQL statements as pg_dump writes them: enough to read names, keywords and literals
 * without being fooled by quotes, dollar quoting or comments. Pure.
 */

export type TokenType =
  /** An unquoted identifier or keyword; `value` is folded to lower case, as PostgreSQL does. */
  | 'word'
  /** A double-quoted identifier; `value` is its exact name. */
  | 'quoted'
  /** A string constant ('...', E'...', B'...', X'...', U&'...'); `value` is its content. */
  | 'string'
  /** A dollar-quoted string; `value` is its content. */
  | 'dollar'
  | 'number'
  /** $1, $2, ... */
  | 'param'
  /** Punctuation: ( ) [ ] , ; . : and operators. */
  | 'symbol';

export interface Token {
  type: TokenType;
  value: string;
  /** Offsets of the token in the statement text. */
  start: number;
  end: number;
}

export interface QualifiedName {
  schema: string;
  name: string;
}

const WORD_START = /[A-Za-z_\u0080-\uffff]/;
const WORD_PART = /[A-Za-z0-9_$\u0080-\uffff]/;
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;
const NUMBER = /(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/y;
const OPERATOR_CHARS = '+-*/<>=~!@#%^&|`?';

function isWordStart(char: string | undefined): boolean {
  return char !== undefined && WORD_START.test(char);
}

export function isWordPart(char: string | undefined): boolean {
  return char !== undefined && WORD_PART.test(char);
}

export class SqlSyntaxError extends Error {}

/** The tokens of `sql`, comments dropped. `standardStrings` is standard_conforming_strings. */
export function tokenize(sql: string, standardStrings = true): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f') {
      i += 1;
    } else if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (c === '/' && next === '*') {
      i = skipBlockComment(sql, i);
    } else if (c === "'") {
      i = readString(sql, i, i, !standardStrings, tokens);
    } else if ((c === 'E' || c === 'e') && next === "'") {
      i = readString(sql, i, i + 1, true, tokens);
    } else if ((c === 'B' || c === 'b' || c === 'X' || c === 'x' || c === 'N' || c === 'n') && next === "'") {
      i = readString(sql, i, i + 1, false, tokens);
    } else if ((c === 'U' || c === 'u') && next === '&' && sql[i + 2] === "'") {
      i = readString(sql, i, i + 2, false, tokens);
    } else if ((c === 'U' || c === 'u') && next === '&' && sql[i + 2] === '"') {
      i = readQuoted(sql, i, i + 2, tokens);
    } else if (c === '"') {
      i = readQuoted(sql, i, i, tokens);
    } else if (c === '$') {
      DOLLAR_TAG.lastIndex = i;
      const tag = DOLLAR_TAG.exec(sql);
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        if (close < 0) throw new SqlSyntaxError(`unterminated dollar-quoted string ${tag[0]}`);
        tokens.push({
          type: 'dollar',
          value: sql.slice(i + tag[0].length, close),
          start: i,
          end: close + tag[0].length,
        });
        i = close + tag[0].length;
      } else if (next !== undefined && next >= '0' && next <= '9') {
        let end = i + 1;
        while (end < n && sql[end]! >= '0' && sql[end]! <= '9') end += 1;
        tokens.push({ type: 'param', value: sql.slice(i, end), start: i, end });
        i = end;
      } else {
        tokens.push({ type: 'symbol', value: '$', start: i, end: i + 1 });
        i += 1;
      }
    } else if (isWordStart(c)) {
      let end = i + 1;
      while (end < n && isWordPart(sql[end])) end += 1;
      tokens.push({ type: 'word', value: sql.slice(i, end).toLowerCase(), start: i, end });
      i = end;
    } else if ((c >= '0' && c <= '9') || (c === '.' && next !== undefined && next >= '0' && next <= '9')) {
      NUMBER.lastIndex = i;
      const match = NUMBER.exec(sql)!;
      tokens.push({ type: 'number', value: match[0], start: i, end: i + match[0].length });
      i += match[0].length;
    } else if (c === ':' && next === ':') {
      tokens.push({ type: 'symbol', value: '::', start: i, end: i + 2 });
      i += 2;
    } else if (OPERATOR_CHARS.includes(c)) {
      let end = i + 1;
      while (
        end < n &&
        OPERATOR_CHARS.includes(sql[end]!) &&
        !(sql[end] === '-' && sql[end + 1] === '-') &&
        !(sql[end] === '/' && sql[end + 1] === '*')
      ) {
        end += 1;
      }
      tokens.push({ type: 'symbol', value: sql.slice(i, end), start: i, end });
      i = end;
    } else {
      tokens.push({ type: 'symbol', value: c, start: i, end: i + 1 });
      i += 1;
    }
  }
  return tokens;
}

function skipBlockComment(sql: string, from: number): number {
  let depth = 0;
  let i = from;
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth += 1;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth -= 1;
      i += 2;
      if (depth === 0) return i;
    } else {
      i += 1;
    }
  }
  throw new SqlSyntaxError('unterminated /* comment');
}

function readString(sql: string, start: number, quote: number, escapes: boolean, tokens: Token[]): number {
  let value = '';
  let i = quote + 1;
  for (;;) {
    if (i >= sql.length) throw new SqlSyntaxError('unterminated quoted string');
    const c = sql[i]!;
    if (c === "'") {
      if (sql[i + 1] === "'") {
        value += "'";
        i += 2;
        continue;
      }
      tokens.push({ type: 'string', value, start, end: i + 1 });
      return i + 1;
    }
    if (escapes && c === '\\') {
      const e = sql[i + 1] ?? '';
      value += ({ n: '\n', t: '\t', r: '\r', b: '\b', f: '\f' } as Record<string, string>)[e] ?? e;
      i += 2;
      continue;
    }
    value += c;
    i += 1;
  }
}

function readQuoted(sql: string, start: number, quote: number, tokens: Token[]): number {
  let value = '';
  let i = quote + 1;
  for (;;) {
    const close = sql.indexOf('"', i);
    if (close < 0) throw new SqlSyntaxError('unterminated quoted identifier');
    value += sql.slice(i, close);
    if (sql[close + 1] === '"') {
      value += '"';
      i = close + 2;
      continue;
    }
    tokens.push({ type: 'quoted', value, start, end: close + 1 });
    return close + 1;
  }
}

export function isName(token: Token | undefined): boolean {
  return token !== undefined && (token.type === 'word' || token.type === 'quoted');
}

export function isWord(token: Token | undefined, ...words: string[]): boolean {
  return token !== undefined && token.type === 'word' && words.includes(token.value);
}

export function isSymbol(token: Token | undefined, symbol: string): boolean {
  return token !== undefined && token.type === 'symbol' && token.value === symbol;
}

/** A dotted name (a, a.b, a.b.c) starting at `index`: its parts and the index after it. */
export function readDottedName(
  tokens: Token[],
  index: number,
): { parts: string[]; next: number } | undefined {
  if (!isName(tokens[index])) return undefined;
  const parts = [tokens[index]!.value];
  let i = index + 1;
  while (isSymbol(tokens[i], '.') && isName(tokens[i + 1])) {
    parts.push(tokens[i + 1]!.value);
    i += 2;
  }
  return { parts, next: i };
}

/** A table or type name; an unqualified one lives in `defaultSchema`. */
export function toQualifiedName(parts: string[], defaultSchema: string): QualifiedName | undefined {
  if (parts.length === 1) return { schema: defaultSchema, name: parts[0]! };
  if (parts.length === 2) return { schema: parts[0]!, name: parts[1]! };
  return undefined;
}

/** An identifier for SQL text: always quoted, so keywords and mixed case are safe. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteQualifiedName(table: QualifiedName): string {
  return `${quoteIdent(table.schema)}.${quoteIdent(table.name)}`;
}

/** A qualified name for messages: quoted only where needed to read it back. */
export function displayName(table: QualifiedName): string {
  const show = (name: string) => (/^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`);
  return `${show(table.schema)}.${show(table.name)}`;
}

/** Parses text such as a regclass literal ('public.seq', '"My Schema"."Seq"') into a qualified name. */
export function parseQualifiedNameText(text: string, defaultSchema: string): QualifiedName | undefined {
  try {
    const tokens = tokenize(text);
    const dotted = readDottedName(tokens, 0);
    if (!dotted || dotted.next !== tokens.length) return undefined;
    return toQualifiedName(dotted.parts, defaultSchema);
  } catch {
    return undefined;
  }
}
