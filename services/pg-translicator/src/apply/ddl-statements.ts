/**
 * A captured DDL entry holds the client's whole query text, which may carry several statements ("CREATE TABLE a
 * (...); INSERT INTO a ..."). Only the schema changes are replayed: the rows an INSERT in the same text wrote
 * arrive as row changes anyway, and running it again would double them.
 */

/** Splits SQL text into statements at top-level semicolons, honouring quotes, dollar quotes and comments. */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let start = 0;
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? n : end + 1;
    } else if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
    } else if (c === "'" || c === '"') {
      i++;
      while (i < n) {
        if (sql[i] === c) {
          if (sql[i + 1] === c) i += 2;
          else break;
        } else if (c === "'" && sql[i] === '\\' && isEscapeString(sql, start, i)) i += 2;
        else i++;
      }
      i++;
    } else if (c === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64));
      if (tag && !/[A-Za-z0-9_]/.test(sql[i - 1] ?? ' ')) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        i = end === -1 ? n : end + tag[0].length;
      } else i++;
    } else if (c === ';') {
      pushStatement(statements, sql.slice(start, i));
      start = i + 1;
      i++;
    } else i++;
  }
  pushStatement(statements, sql.slice(start));
  return statements;
}

/** E'...' strings treat backslash as an escape; standard strings do not. */
function isEscapeString(sql: string, from: number, at: number): boolean {
  const opening = sql.lastIndexOf("'", at - 1);
  for (let j = opening; j >= from; j = sql.lastIndexOf("'", j - 1)) {
    const before = sql[j - 1];
    if (before === 'E' || before === 'e') return true;
    break;
  }
  return false;
}

function pushStatement(statements: string[], text: string): void {
  if (stripComments(text).trim() !== '') statements.push(text.trim());
}

function stripComments(text: string): string {
  return text.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
}

const NOT_DDL = new Set([
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'MERGE',
  'COPY',
  'WITH',
  'VALUES',
  'TABLE',
  'BEGIN',
  'START',
  'COMMIT',
  'END',
  'ROLLBACK',
  'ABORT',
  'SAVEPOINT',
  'RELEASE',
  'SET',
  'RESET',
  'SHOW',
  'EXPLAIN',
  'PREPARE',
  'EXECUTE',
  'DEALLOCATE',
  'DECLARE',
  'FETCH',
  'MOVE',
  'CLOSE',
  'LISTEN',
  'NOTIFY',
  'UNLISTEN',
  'LOCK',
  'VACUUM',
  'ANALYZE',
  'CHECKPOINT',
  'DISCARD',
  'LOAD',
  'CALL',
  'DO',
  'TRUNCATE',
  // Privileges are the target's own business (the snapshot is taken with --no-privileges too).
  'GRANT',
  'REVOKE',
]);

/** Ownership changes name roles that need not exist on the target. */
const OWNER_CHANGE = /\bOWNER\s+TO\b/i;

const CREATE_TABLE_AS =
  /^\s*CREATE\s+(?:(?:GLOBAL|LOCAL)\s+)?(?:(?:TEMP|TEMPORARY|UNLOGGED)\s+)?TABLE\b[\s\S]*?\bAS\s*\(?\s*(?:SELECT|WITH|VALUES|TABLE|EXECUTE)\b/i;

/**
 * The statements of a captured query text that change the schema, in order. `CREATE TABLE ... AS` creates the
 * table only: the rows it wrote on the source arrive as row changes.
 */
export function schemaStatements(sql: string): string[] {
  return splitStatements(sql)
    .filter((statement) => {
      const text = stripComments(statement).trim();
      const keyword = /^[A-Za-z]+/.exec(text)?.[0]?.toUpperCase();
      return keyword !== undefined && !NOT_DDL.has(keyword) && !OWNER_CHANGE.test(text);
    })
    .map((statement) => (CREATE_TABLE_AS.test(stripComments(statement)) ? withNoData(statement) : statement));
}

function withNoData(statement: string): string {
  const trimmed = statement.replace(/\s+WITH\s+DATA\s*$/i, '');
  return /\bWITH\s+NO\s+DATA\s*$/i.test(trimmed) ? trimmed : `${trimmed} WITH NO DATA`;
}

/** `CREATE INDEX CONCURRENTLY` cannot run inside the transaction the applier uses; the plain form is equivalent. */
export function runnableInTransaction(statement: string): string {
  return statement.replace(
    /^(\s*(?:CREATE\s+(?:UNIQUE\s+)?INDEX|DROP\s+INDEX|REINDEX(?:\s+\w+)?))\s+CONCURRENTLY\b/i,
    '$1',
  );
}
