/**
 * What to do with each statement of a dump: run it on the target as DDL, read the rows of a COPY, track a session
 * setting, or leave it out. Left out: session settings, ownership and privileges (the target has its own roles),
 * event triggers and publications/subscriptions (replication plumbing of the source, superuser-only), database-
 * and role-level statements, large objects (the stream has no way to carry them), extension comments (only the
 * extension's owner may set them) and everything that belongs to Kasho itself. Pure.
 */
import { parseCopyHeader, type CopyHeader } from './copy-text.js';
import { parseTableDefinition, type TableDefinition } from './create-table.js';
import {
  isName,
  isSymbol,
  isWord,
  parseQualifiedNameText,
  readDottedName,
  tokenize,
  type QualifiedName,
  type Token,
} from './sql-lexer.js';

export type SkipReason =
  | 'session setting'
  | 'ownership'
  | 'privileges'
  | 'event trigger'
  | 'extension comment'
  | 'kasho object'
  | 'publication or subscription'
  | 'database or role'
  | 'large object'
  | 'security label'
  | 'transaction control';

export type Classification =
  | { action: 'apply'; definition: TableDefinition | undefined }
  | { action: 'skip'; reason: SkipReason }
  | { action: 'search-path'; value: string }
  | {
      action: 'setting';
      name: 'client_encoding' | 'standard_conforming_strings' | 'check_function_bodies';
      value: string;
    }
  | { action: 'copy'; header: CopyHeader; kasho: boolean };

export interface ClassifyContext {
  /** The search_path in force, as set_config() takes it ('' after pg_dump's preamble). */
  searchPath: string;
  standardConformingStrings: boolean;
}

/** Kasho's DDL capture (prepare-primary-db.sh); its schema `kasho` is Kasho's too. */
const KASHO_OBJECTS = new Set([
  'kasho_ddl_log',
  'kasho_ddl_log_id_seq',
  'kasho_log_ddl',
  'kasho_cleanup_ddl_log',
]);
const KASHO_SCHEMA = 'kasho';

const LARGE_OBJECT_FUNCTIONS = new Set([
  'lo_create',
  'lo_open',
  'lowrite',
  'lo_close',
  'lo_import',
  'lo_from_bytea',
  'lo_put',
]);

export function isKashoTable(table: QualifiedName): boolean {
  return table.schema === KASHO_SCHEMA || KASHO_OBJECTS.has(table.name);
}

/** The schema an unqualified name is created in under `searchPath`. */
export function defaultSchema(searchPath: string): string {
  for (const element of searchPath.split(',')) {
    const trimmed = element.trim();
    if (trimmed === '' || trimmed === 'pg_catalog' || trimmed === '"$user"' || trimmed === '$user') continue;
    return trimmed.startsWith('"') ? trimmed.slice(1, -1).replace(/""/g, '"') : trimmed.toLowerCase();
  }
  return 'public';
}

const skip = (reason: SkipReason): Classification => ({ action: 'skip', reason });
const APPLY: Classification = { action: 'apply', definition: undefined };

export function classifyStatement(sql: string, context: ClassifyContext): Classification {
  let tokens: Token[];
  try {
    tokens = tokenize(sql, context.standardConformingStrings);
  } catch {
    // Not ours to judge: the target will say what is wrong with it.
    return APPLY;
  }
  const word = (i: number) => (tokens[i]?.type === 'word' ? tokens[i]!.value : undefined);
  const schema = defaultSchema(context.searchPath);
  switch (word(0)) {
    case 'set':
      return classifySet(sql, tokens);
    case 'reset':
      return skip('session setting');
    case 'select':
      return classifySelect(tokens, schema);
    case 'copy': {
      const header = parseCopyHeader(sql, schema);
      return { action: 'copy', header, kasho: isKashoTable(header.table) };
    }
    case 'grant':
    case 'revoke':
      return skip('privileges');
    case 'begin':
    case 'commit':
    case 'start':
    case 'end':
    case 'rollback':
      return skip('transaction control');
    case 'security':
      return skip('security label');
    default:
      break;
  }
  if (word(0) === 'alter' && word(1) === 'default' && word(2) === 'privileges') return skip('privileges');
  if (word(0) === 'alter' && hasOwnerTo(tokens)) return skip('ownership');
  if (refersToKasho(tokens)) return skip('kasho object');
  const object = objectKind(tokens);
  if (object === 'event trigger') return skip('event trigger');
  if (object === 'publication' || object === 'subscription') return skip('publication or subscription');
  if (object === 'database' || object === 'role' || object === 'large object') {
    return skip(object === 'large object' ? 'large object' : 'database or role');
  }
  if (object === 'extension' && word(0) === 'comment') return skip('extension comment');
  if (word(0) === 'create' && (object === 'table' || object === 'type')) {
    return { action: 'apply', definition: parseTableDefinition(sql, schema) };
  }
  return APPLY;
}

/** The kind of object a CREATE, ALTER, DROP or COMMENT ON statement is about, e.g. "event trigger". */
function objectKind(tokens: Token[]): string | undefined {
  let i: number;
  if (isWord(tokens[0], 'create', 'alter', 'drop')) i = 1;
  else if (isWord(tokens[0], 'comment') && isWord(tokens[1], 'on')) i = 2;
  else return undefined;
  if (isWord(tokens[i], 'or') && isWord(tokens[i + 1], 'replace')) i += 2;
  while (
    isWord(tokens[i], 'global', 'local', 'temp', 'temporary', 'unlogged', 'unique', 'trusted', 'procedural')
  ) {
    i += 1;
  }
  const first = tokens[i]?.type === 'word' ? tokens[i]!.value : undefined;
  const second = tokens[i + 1]?.type === 'word' ? tokens[i + 1]!.value : undefined;
  if (first === 'event' && second === 'trigger') return 'event trigger';
  if (first === 'large' && second === 'object') return 'large object';
  if (first === 'role' || first === 'group') return 'role';
  if (first === 'user' && second !== 'mapping') return 'role';
  return first;
}

function hasOwnerTo(tokens: Token[]): boolean {
  for (let i = 1; i + 1 < tokens.length; i += 1) {
    if (isWord(tokens[i], 'owner') && isWord(tokens[i + 1], 'to')) return true;
  }
  return false;
}

/** Whether the statement names one of Kasho's objects or anything in its schema. */
function refersToKasho(tokens: Token[]): boolean {
  for (let i = 0; i < tokens.length; i += 1) {
    if (!isName(tokens[i]) || isSymbol(tokens[i - 1], '.')) continue;
    const dotted = readDottedName(tokens, i)!;
    const { parts } = dotted;
    if (parts.some((part) => KASHO_OBJECTS.has(part))) return true;
    if (parts.length >= 2 && parts[0] === KASHO_SCHEMA) return true;
    if (parts.length === 1 && parts[0] === KASHO_SCHEMA && isWord(tokens[i - 1], 'schema')) return true;
    i = dotted.next - 1;
  }
  return false;
}

function classifySet(sql: string, tokens: Token[]): Classification {
  let i = 1;
  if (isWord(tokens[i], 'session', 'local')) i += 1;
  const name = tokens[i]?.type === 'word' ? tokens[i]!.value : undefined;
  const valueAt = isSymbol(tokens[i + 1], '=') || isWord(tokens[i + 1], 'to') ? i + 2 : -1;
  if (valueAt < 0) return skip('session setting');
  if (name === 'search_path')
    return { action: 'search-path', value: searchPathValue(sql, tokens.slice(valueAt)) };
  if (
    name === 'client_encoding' ||
    name === 'standard_conforming_strings' ||
    name === 'check_function_bodies'
  ) {
    const value = tokens[valueAt];
    return { action: 'setting', name, value: value?.value ?? '' };
  }
  return skip('session setting');
}

/** `SET search_path = a, "B", 'c'` as the text set_config() takes: a, "B", c. */
function searchPathValue(sql: string, tokens: Token[]): string {
  if (isWord(tokens[0], 'default')) return '"$user", public';
  return tokens
    .filter((token) => !isSymbol(token, ','))
    .map((token) => {
      if (token.type !== 'string') return sql.slice(token.start, token.end);
      return /^[a-z_][a-z0-9_]*$/.test(token.value) ? token.value : `"${token.value.replace(/"/g, '""')}"`;
    })
    .join(', ');
}

function classifySelect(tokens: Token[], schema: string): Classification {
  const called = readDottedName(tokens, 1);
  if (!called || !isSymbol(tokens[called.next], '(')) return APPLY;
  const fn = called.parts[called.parts.length - 1]!;
  const firstArg = tokens[called.next + 1];
  if (fn === 'set_config') {
    const value = tokens[called.next + 3];
    if (firstArg?.type === 'string' && firstArg.value === 'search_path' && value?.type === 'string') {
      return { action: 'search-path', value: value.value };
    }
    return skip('session setting');
  }
  if (fn === 'setval') {
    const sequence = firstArg?.type === 'string' ? parseQualifiedNameText(firstArg.value, schema) : undefined;
    return sequence && isKashoTable(sequence) ? skip('kasho object') : APPLY;
  }
  if (LARGE_OBJECT_FUNCTIONS.has(fn)) return skip('large object');
  return APPLY;
}
