/**
 * Reading a dump from a byte stream (a file, pg_dump's stdout) into tokenizer items, a chunk at a time, and the
 * emitter both modes hand DDL, TRUNCATE and rows to.
 */
import { KashoError } from '@kasho/common';
import type { Relation, TableName } from '@kasho/common/gen/kasho/change_stream';
import type { BatchSink } from './bootstrap-writer.js';
import { CopyFormatError } from './copy-text.js';
import { DumpSyntaxError, type DumpItem, type DumpTokenizer } from './dump-tokenizer.js';
import { snapshotRelation, type Batch, type ColumnSpec, type EventBuilder } from './event-builder.js';
import { LineSplitter, LineTooLongError } from './line-splitter.js';
import type { Progress } from './progress.js';

/**
 * The items of the lines in `stream`, one array per chunk read; the tokenizer is finished at the end, so an open
 * COPY block or statement throws. `offset` is the byte offset of the stream's start in the dump.
 */
export async function* readDumpItems(
  stream: AsyncIterable<Buffer>,
  tokenizer: DumpTokenizer,
  offset = 0,
  onBytes: (bytes: number) => void = () => undefined,
): AsyncGenerator<DumpItem[]> {
  const splitter = new LineSplitter();
  let at = offset;
  for await (const chunk of stream) {
    onBytes(chunk.length);
    const items: DumpItem[] = [];
    let lines: Buffer[];
    try {
      lines = splitter.push(chunk);
    } catch (error) {
      if (error instanceof LineTooLongError) throw new DumpSyntaxError(error.message, tokenizer.line + 1);
      throw error;
    }
    for (const line of lines) {
      const lineItems = tokenizer.push(line, at);
      at += line.length + 1;
      for (const item of lineItems) items.push(item);
    }
    if (items.length > 0) yield items;
  }
  const rest = splitter.end();
  if (rest) yield tokenizer.push(rest, at);
  tokenizer.finish();
}

/** Turns a tokenizer or COPY format error into the message a user sees: where, and what is wrong. */
export function locate(error: unknown, source: string): unknown {
  if (error instanceof DumpSyntaxError) return new KashoError(`${source}:${error.line}: ${error.message}`);
  return error;
}

/** A row that does not decode, located: never with its values. */
export function rowError(error: unknown, source: string, line: number, table: string): unknown {
  if (error instanceof CopyFormatError) {
    return new KashoError(`${source}:${line}: the COPY row of ${table} ${error.message}`);
  }
  return error;
}

/** Hands everything the snapshot holds to the event builder and each closed pseudo-transaction to the sink. */
export class SnapshotEmitter {
  private nextRelationId = 1;

  constructor(
    private readonly builder: EventBuilder,
    private readonly sink: BatchSink,
    readonly progress: Progress,
  ) {}

  async ddl(sql: string, searchPath: string): Promise<void> {
    this.progress.ddl += 1;
    await this.emit(this.builder.ddl(sql, searchPath));
  }

  async truncate(tables: TableName[]): Promise<void> {
    if (tables.length > 0) await this.emit(this.builder.truncate(tables));
  }

  relation(table: TableName, columns: ColumnSpec[]): Relation {
    return snapshotRelation(this.nextRelationId++, table, columns);
  }

  /** Adds a row; returns the batch it closed, which the caller must emit() before adding more. */
  row(relation: Relation, values: (string | null)[]): Batch | undefined {
    this.progress.rows += 1;
    return this.builder.row(relation, values);
  }

  async emit(batch: Batch | undefined): Promise<void> {
    if (batch) await this.sink.write(batch);
  }

  /** Closes the last pseudo-transaction. */
  async finish(): Promise<void> {
    await this.emit(this.builder.flush());
  }
}
