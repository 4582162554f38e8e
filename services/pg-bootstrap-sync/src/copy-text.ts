/**
 * COPY's text format, as pg_dump and `COPY ... TO STDOUT` write it: tab-separated fields, `\N` for NULL,
 * backslash escapes. Decoding gives each column's text exactly as the server prints it. Pure.
 */
import { isUtf8 } from 'node:buffer';
import {
  isName,
  isSymbol,
  isWord,
  readDottedName,
  toQualifiedName,
  tokenize,
  type QualifiedName,
} from './sql-lexer.js';

/** A row that is not valid COPY text; the message never holds row data. */
export class CopyFormatError extends Error {}

export interface CopyHeader {
  table: QualifiedName;
  columns: string[];
}

const TAB = 0x09;
const BACKSLASH = 0x5c;

/** Shared output space for de-escaping: grows for a long row, and is given back after one. */
const SCRATCH_SIZE = 64 * 1024;
const SCRATCH_KEEP = 16 * 1024 * 1024;
let scratch = Buffer.allocUnsafe(SCRATCH_SIZE);

/**
 * The values of one row (the line without its terminator): null for `\N`, else the de-escaped text. The text must
 * be UTF-8, as pg_dump writes it with client_encoding UTF8.
 */
export function decodeCopyRow(line: Buffer, columnCount: number): (string | null)[] {
  if (!isUtf8(line)) throw new CopyFormatError('is not valid UTF-8');
  let values: (string | null)[];
  if (columnCount === 0 && line.length === 0) {
    values = [];
  } else if (line.indexOf(BACKSLASH) < 0) {
    values = [];
    let start = 0;
    for (let tab = line.indexOf(TAB); tab >= 0; tab = line.indexOf(TAB, start)) {
      values.push(line.toString('utf8', start, tab));
      start = tab + 1;
    }
    values.push(line.toString('utf8', start));
  } else {
    values = decodeEscaped(line);
  }
  if (values.length !== columnCount) {
    throw new CopyFormatError(`has ${values.length} fields where ${columnCount} columns were expected`);
  }
  return values;
}

function hexValue(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  return -1;
}

function octalValue(byte: number | undefined): number {
  return byte !== undefined && byte >= 0x30 && byte <= 0x37 ? byte - 0x30 : -1;
}

/** The slow path, byte by byte, following PostgreSQL's CopyReadAttributesText. */
function decodeEscaped(line: Buffer): (string | null)[] {
  if (scratch.length < line.length) scratch = Buffer.allocUnsafe(Math.max(line.length, scratch.length * 2));
  const out = scratch;
  const values: (string | null)[] = [];
  const n = line.length;
  let o = 0;
  let fieldOut = 0;
  let rawStart = 0;
  let escapedByte = false;
  const endField = (rawEnd: number) => {
    if (rawEnd - rawStart === 2 && line[rawStart] === BACKSLASH && line[rawStart + 1] === 0x4e) {
      values.push(null);
    } else {
      if (escapedByte) {
        const bytes = out.subarray(fieldOut, o);
        if (bytes.includes(0))
          throw new CopyFormatError('has a field with a NUL byte (\\0), which text cannot hold');
        if (!isUtf8(bytes)) throw new CopyFormatError('has an escaped byte sequence that is not valid UTF-8');
      }
      values.push(out.toString('utf8', fieldOut, o));
    }
    fieldOut = o;
    escapedByte = false;
  };
  let i = 0;
  while (i < n) {
    const b = line[i]!;
    if (b === TAB) {
      endField(i);
      i += 1;
      rawStart = i;
      continue;
    }
    if (b !== BACKSLASH) {
      out[o++] = b;
      i += 1;
      continue;
    }
    // A lone backslash at the very end is dropped, as the server does.
    if (i + 1 >= n) {
      i += 1;
      continue;
    }
    const c = line[i + 1]!;
    i += 2;
    switch (c) {
      case 0x62:
        out[o++] = 0x08;
        break;
      case 0x66:
        out[o++] = 0x0c;
        break;
      case 0x6e:
        out[o++] = 0x0a;
        break;
      case 0x72:
        out[o++] = 0x0d;
        break;
      case 0x74:
        out[o++] = 0x09;
        break;
      case 0x76:
        out[o++] = 0x0b;
        break;
      case 0x78: {
        let value = hexValue(line[i]);
        if (value < 0) {
          out[o++] = c;
          break;
        }
        i += 1;
        const second = hexValue(line[i]);
        if (second >= 0) {
          value = value * 16 + second;
          i += 1;
        }
        out[o++] = value;
        if (value === 0 || value >= 0x80) escapedByte = true;
        break;
      }
      default: {
        let value = octalValue(c);
        if (value < 0) {
          out[o++] = c;
          break;
        }
        for (let digits = 1; digits < 3 && octalValue(line[i]) >= 0; digits += 1) {
          value = value * 8 + octalValue(line[i]);
          i += 1;
        }
        value &= 0xff;
        out[o++] = value;
        if (value === 0 || value >= 0x80) escapedByte = true;
      }
    }
  }
  endField(n);
  if (scratch.length > SCRATCH_KEEP) scratch = Buffer.allocUnsafe(SCRATCH_SIZE);
  return values;
}

/** `COPY schema.table (col, ...) FROM stdin`: the table and its column list. */
export function parseCopyHeader(sql: string, defaultSchema: string): CopyHeader {
  const tokens = tokenize(sql);
  const fail = (): never => {
    throw new CopyFormatError(
      'is not a COPY statement in the form pg_dump writes (COPY table (columns) FROM stdin, text format)',
    );
  };
  if (!isWord(tokens[0], 'copy')) fail();
  const dotted = readDottedName(tokens, 1);
  const table = dotted && toQualifiedName(dotted.parts, defaultSchema);
  if (!dotted || !table) return fail();
  let i = dotted.next;
  const columns: string[] = [];
  if (isSymbol(tokens[i], '(')) {
    i += 1;
    while (!isSymbol(tokens[i], ')')) {
      if (!isName(tokens[i])) fail();
      columns.push(tokens[i]!.value);
      i += 1;
      if (isSymbol(tokens[i], ',')) i += 1;
      else if (!isSymbol(tokens[i], ')')) fail();
    }
    i += 1;
  }
  if (!isWord(tokens[i], 'from') || !isWord(tokens[i + 1], 'stdin') || i + 2 !== tokens.length) fail();
  return { table, columns };
}
