/**
 * The file mode: a plain-format pg_dump, streamed. Schema DDL before the data goes out as it is read; at the first
 * COPY the rest of the file is scanned once for the tables whose data it holds (the TRUNCATE naming them must come
 * before any row, and the scan also finds a cut-off dump before a single row is written); then the rows, then the
 * sequence values and the post-data DDL, in the dump's own order.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { KashoError, type Logger } from '@kasho/common';
import type { Relation, TableName } from '@kasho/common/gen/kasho/change_stream';
import { CopyFormatError, decodeCopyRow } from './copy-text.js';
import { DumpInterpreter, type StatementAction } from './dump-interpreter.js';
import { locate, readDumpItems, rowError, type SnapshotEmitter } from './dump-reader.js';
import { DumpSyntaxError, DumpTokenizer } from './dump-tokenizer.js';
import { displayName } from './sql-lexer.js';

/** Read size: large reads keep the per-chunk overhead small on multi-gigabyte dumps. */
const READ_CHUNK = 1 << 20;

interface OpenCopy {
  /** undefined for Kasho's own tables, whose rows are skipped. */
  relation: Relation | undefined;
  columns: number;
  label: string;
}

/** Classifies a statement, placing a malformed COPY header at its line. */
function interpret(interpreter: DumpInterpreter, sql: string, line: number): StatementAction {
  try {
    return interpreter.statement(sql, line);
  } catch (error) {
    if (error instanceof CopyFormatError)
      throw new DumpSyntaxError(`this COPY statement ${error.message}`, line);
    throw error;
  }
}

export async function loadDumpFile(
  path: string,
  emitter: SnapshotEmitter,
  logger: Logger,
): Promise<DumpInterpreter> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new KashoError(`Dump file ${path} not found`);
  if (!info.isFile()) {
    throw new KashoError(
      `${path} is not a regular file`,
      'pg-bootstrap-sync reads the data section of the dump twice (once to list its tables); write the dump to a file first.',
    );
  }
  const progress = emitter.progress;
  const interpreter = new DumpInterpreter((message) => logger.warn(message));
  const tokenizer = new DumpTokenizer();
  let copy: OpenCopy | undefined;
  let scanned = false;
  const stream = createReadStream(path, { highWaterMark: READ_CHUNK });
  try {
    for await (const items of readDumpItems(stream, tokenizer, 0, (bytes) => (progress.bytes += bytes))) {
      for (const item of items) {
        if (item.kind === 'copy-row') {
          if (!copy?.relation) continue;
          let values: (string | null)[];
          try {
            values = decodeCopyRow(item.data, copy.columns);
          } catch (error) {
            throw rowError(error, path, item.line, copy.label);
          }
          const batch = emitter.row(copy.relation, values);
          if (batch) await emitter.emit(batch);
        } else if (item.kind === 'copy-end') {
          if (copy?.relation) progress.tablesDone += 1;
          copy = undefined;
        } else if (item.kind === 'meta') {
          interpreter.meta();
        } else {
          const action = interpret(interpreter, item.sql, item.line);
          if (action.kind === 'ddl') {
            await emitter.ddl(action.sql, action.searchPath);
          } else if (action.kind === 'copy') {
            if (!scanned) {
              scanned = true;
              logger.info(`Listing the tables whose data ${path} holds...`);
              const tables = await scanDataTables(
                path,
                item.offset,
                item.line,
                interpreter.searchPath,
                tokenizer,
              );
              progress.tablesTotal = tables.length;
              logger.info(`${tables.length} tables with data; loading them`);
              await emitter.truncate(tables);
            }
            const { header } = action;
            copy = {
              relation: action.kasho
                ? undefined
                : emitter.relation(header.table, interpreter.columnsFor(header)),
              columns: header.columns.length,
              label: displayName(header.table),
            };
          }
        }
      }
    }
  } catch (error) {
    throw locate(error, path);
  } finally {
    stream.destroy();
  }
  return interpreter;
}

/**
 * The tables with a COPY block from the first one to the end of the file, in order, Kasho's left out. Reads the data
 * section a second time: the tokenizer's state at the COPY statement is all it needs to start there.
 */
async function scanDataTables(
  path: string,
  offset: number,
  line: number,
  searchPath: string,
  current: DumpTokenizer,
): Promise<TableName[]> {
  const interpreter = new DumpInterpreter();
  interpreter.searchPath = searchPath;
  const tokenizer = new DumpTokenizer(line, current.standardConformingStrings);
  const tables: TableName[] = [];
  const seen = new Set<string>();
  const stream = createReadStream(path, { start: offset, highWaterMark: READ_CHUNK });
  try {
    for await (const items of readDumpItems(stream, tokenizer, offset)) {
      for (const item of items) {
        if (item.kind !== 'statement') continue;
        const action = interpret(interpreter, item.sql, item.line);
        if (action.kind !== 'copy' || action.kasho) continue;
        const key = `${action.header.table.schema}\u0000${action.header.table.name}`;
        if (seen.has(key)) continue;
        seen.add(key);
        tables.push(action.header.table);
      }
    }
  } finally {
    stream.destroy();
  }
  return tables;
}
